-- What comes back: bounces, complaints and unsubscribes by mail, kept with their
-- evidence; the suppression list; and an issue that pauses itself.

ALTER TABLE subscriptions
    DROP CONSTRAINT subscriptions_status_check,
    ADD CONSTRAINT subscriptions_status_check CHECK (status IN
        ('pending', 'confirmed', 'unsubscribed', 'bounced', 'complained'));

-- A message that came back, as it came (`raw`), and what the service read in it.
-- `dedupe_key` makes taking the same message twice (a second instance, an MTA's
-- retry, a provider's repeated webhook) a no-op. The copy it refers to is named by
-- `issue_id` and `subscriber_id` (an issue's copy) or `outbox_id` (any other mail).
CREATE TABLE inbound_messages (
    id            UUID PRIMARY KEY,
    received_at   TIMESTAMPTZ NOT NULL,
    source        TEXT NOT NULL,
    dedupe_key    BYTEA NOT NULL UNIQUE,
    kind          TEXT NOT NULL CHECK (kind IN
        ('hard', 'soft', 'warning', 'complaint', 'auto-reply', 'unsubscribe', 'unknown')),
    outcome       TEXT NOT NULL CHECK (outcome IN
        ('ended', 'counted', 'ignored', 'unattributed', 'unrecognised')),
    status_code   TEXT,
    diagnostic    TEXT,
    recipients    TEXT,
    message_id    TEXT,
    read_as       TEXT NOT NULL,
    issue_id      UUID,
    subscriber_id UUID,
    outbox_id     UUID,
    -- The copy's recipient, as the suppression list keys it: soft bounces count per address.
    address_key   BYTEA,
    raw           BYTEA
);
CREATE INDEX inbound_messages_by_time ON inbound_messages (received_at);
CREATE INDEX inbound_messages_by_address
    ON inbound_messages (address_key, kind, received_at) WHERE address_key IS NOT NULL;
CREATE INDEX inbound_messages_by_subscriber
    ON inbound_messages (subscriber_id) WHERE subscriber_id IS NOT NULL;
CREATE INDEX inbound_messages_by_issue
    ON inbound_messages (issue_id, kind) WHERE issue_id IS NOT NULL;

-- The ledger gains the endings that mail brings (a bounce, a complaint) and the ways
-- they come (by mail, by a provider's webhook, by mail to the List-Unsubscribe
-- address), with the message that was the evidence.
ALTER TABLE consent_events
    DROP CONSTRAINT consent_events_kind_check,
    ADD CONSTRAINT consent_events_kind_check CHECK (kind IN ('signup', 'confirm',
        'unsubscribe', 'resubscribe', 'import', 'erase', 'bounce', 'complaint')),
    DROP CONSTRAINT consent_events_method_check,
    ADD CONSTRAINT consent_events_method_check CHECK (method IN ('form', 'api', 'link',
        'one-click', 'import', 'admin', 'mail', 'webhook', 'mailto')),
    ADD COLUMN inbound_id UUID REFERENCES inbound_messages (id);

-- Outbox mail to a suppressed address is skipped, unless the sign-up that queued it
-- was let past the suppression (once a month).
ALTER TABLE outbox
    DROP CONSTRAINT outbox_status_check,
    ADD CONSTRAINT outbox_status_check
        CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'skipped')),
    ADD COLUMN past_suppression BOOLEAN NOT NULL DEFAULT false;

-- The suppression list: addresses no mail goes to. An address is kept only as a keyed
-- hash (HMAC under the secret key), so that erasing a person keeps their suppression
-- without keeping their address; `domain` is kept for staff's overview. The
-- subscriber it belongs to, while there is one, links it to their page.
CREATE TABLE suppressions (
    address_key      BYTEA PRIMARY KEY,
    subscriber_id    UUID REFERENCES subscribers (id) ON DELETE SET NULL,
    domain           TEXT NOT NULL,
    reason           TEXT NOT NULL CHECK (reason IN ('bounce', 'complaint', 'manual', 'import')),
    added_by         TEXT NOT NULL,
    inbound_id       UUID REFERENCES inbound_messages (id),
    note             TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    -- When a sign-up last got a confirmation mail past this entry (one a month).
    last_admitted_at TIMESTAMPTZ
);
CREATE INDEX suppressions_by_subscriber ON suppressions (subscriber_id) WHERE subscriber_id IS NOT NULL;
CREATE INDEX suppressions_by_time ON suppressions (created_at);

-- Every entry added and lifted, by whom: the list's own ledger.
CREATE TABLE suppression_changes (
    id          UUID PRIMARY KEY,
    address_key BYTEA NOT NULL,
    change      TEXT NOT NULL CHECK (change IN ('added', 'lifted')),
    reason      TEXT NOT NULL,
    changed_by  TEXT NOT NULL,
    note        TEXT,
    changed_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX suppression_changes_by_key ON suppression_changes (address_key, changed_at);

-- Why an issue paused itself (the circuit breaker), until it is resumed.
ALTER TABLE issues ADD COLUMN paused_reason TEXT;
