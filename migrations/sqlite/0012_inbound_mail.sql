-- What comes back: bounces, complaints and unsubscribes by mail, kept with their
-- evidence; the suppression list; and an issue that pauses itself.
--
-- New statuses and ledger kinds need wider CHECKs, which SQLite can only change by
-- rebuilding the table. Every table rebuilt here is copied whole, and nothing that
-- refers to one is left pointing at the old table: confirmation tokens (the only
-- table that refers to subscriptions) are set aside and put back around it.

CREATE TEMP TABLE kept_tokens AS SELECT * FROM confirmation_tokens;
DROP TABLE confirmation_tokens;

CREATE TABLE subscriptions_new (
    subscriber_id   BLOB NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    list_id         BLOB NOT NULL REFERENCES lists (id),
    status          TEXT NOT NULL CHECK (status IN
        ('pending', 'confirmed', 'unsubscribed', 'bounced', 'complained')),
    created_at      INTEGER NOT NULL,
    confirmed_at    INTEGER,
    unsubscribed_at INTEGER,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (subscriber_id, list_id)
);
INSERT INTO subscriptions_new SELECT
    subscriber_id, list_id, status, created_at, confirmed_at, unsubscribed_at, updated_at
FROM subscriptions;
DROP TABLE subscriptions;
ALTER TABLE subscriptions_new RENAME TO subscriptions;
CREATE INDEX subscriptions_by_list_status ON subscriptions (list_id, status);

CREATE TABLE confirmation_tokens (
    token_hash    BLOB PRIMARY KEY,
    subscriber_id BLOB NOT NULL,
    list_id       BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    used_at       INTEGER,
    FOREIGN KEY (subscriber_id, list_id) REFERENCES subscriptions (subscriber_id, list_id)
        ON DELETE CASCADE
);
INSERT INTO confirmation_tokens SELECT
    token_hash, subscriber_id, list_id, created_at, expires_at, used_at
FROM kept_tokens;
DROP TABLE kept_tokens;
CREATE INDEX confirmation_tokens_by_subscription
    ON confirmation_tokens (subscriber_id, list_id, created_at);

-- A message that came back, as it came (`raw`), and what the service read in it.
-- `dedupe_key` makes taking the same message twice (a second instance, an MTA's
-- retry, a provider's repeated webhook) a no-op. The copy it refers to is named by
-- `issue_id` and `subscriber_id` (an issue's copy) or `outbox_id` (any other mail).
CREATE TABLE inbound_messages (
    id            BLOB PRIMARY KEY,
    received_at   INTEGER NOT NULL,
    source        TEXT NOT NULL,
    dedupe_key    BLOB NOT NULL UNIQUE,
    kind          TEXT NOT NULL CHECK (kind IN
        ('hard', 'soft', 'warning', 'complaint', 'auto-reply', 'unsubscribe', 'unknown')),
    outcome       TEXT NOT NULL CHECK (outcome IN
        ('ended', 'counted', 'ignored', 'unattributed', 'unrecognised')),
    status_code   TEXT,
    diagnostic    TEXT,
    recipients    TEXT,
    message_id    TEXT,
    read_as       TEXT NOT NULL,
    issue_id      BLOB,
    subscriber_id BLOB,
    outbox_id     BLOB,
    -- The copy's recipient, as the suppression list keys it: soft bounces count per address.
    address_key   BLOB,
    raw           BLOB
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
CREATE TABLE consent_events_new (
    id              BLOB PRIMARY KEY,
    subscriber_id   BLOB REFERENCES subscribers (id) ON DELETE SET NULL,
    list_id         BLOB NOT NULL REFERENCES lists (id),
    kind            TEXT NOT NULL CHECK (kind IN ('signup', 'confirm', 'unsubscribe',
        'resubscribe', 'import', 'erase', 'bounce', 'complaint')),
    method          TEXT NOT NULL CHECK (method IN ('form', 'api', 'link', 'one-click',
        'import', 'admin', 'mail', 'webhook', 'mailto')),
    occurred_at     INTEGER NOT NULL,
    ip              TEXT,
    user_agent      TEXT,
    wording_version TEXT,
    wording_hash    TEXT,
    issue_id        BLOB REFERENCES issues (id) ON DELETE SET NULL,
    import_id       BLOB REFERENCES imports (id),
    inbound_id      BLOB REFERENCES inbound_messages (id)
);
INSERT INTO consent_events_new SELECT
    id, subscriber_id, list_id, kind, method, occurred_at, ip, user_agent,
    wording_version, wording_hash, issue_id, import_id, NULL
FROM consent_events;
DROP TABLE consent_events;
ALTER TABLE consent_events_new RENAME TO consent_events;
CREATE INDEX consent_events_by_subscriber ON consent_events (subscriber_id, occurred_at);
CREATE INDEX consent_events_by_issue ON consent_events (issue_id) WHERE issue_id IS NOT NULL;

-- Outbox mail to a suppressed address is skipped, unless the sign-up that queued it
-- was let past the suppression (once a month).
CREATE TABLE outbox_new (
    id               BLOB PRIMARY KEY,
    kind             TEXT NOT NULL,
    recipient        TEXT NOT NULL,
    subscriber_id    BLOB REFERENCES subscribers (id) ON DELETE CASCADE,
    payload          TEXT NOT NULL,
    sealed_secret    BLOB,
    status           TEXT NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'skipped')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    lease_until      INTEGER,
    last_error       TEXT,
    smtp_reply       TEXT,
    created_at       INTEGER NOT NULL,
    sent_at          INTEGER,
    requested_by     TEXT,
    past_suppression INTEGER NOT NULL DEFAULT 0
);
INSERT INTO outbox_new SELECT
    id, kind, recipient, subscriber_id, payload, sealed_secret, status, attempts,
    next_attempt_at, lease_until, last_error, smtp_reply, created_at, sent_at,
    requested_by, 0
FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_queued ON outbox (next_attempt_at) WHERE status = 'queued';
CREATE INDEX outbox_leased ON outbox (lease_until) WHERE status = 'sending';
CREATE INDEX outbox_test_copies ON outbox (requested_by, created_at) WHERE requested_by IS NOT NULL;

-- The suppression list: addresses no mail goes to. An address is kept only as a keyed
-- hash (HMAC under the secret key), so that erasing a person keeps their suppression
-- without keeping their address; `domain` is kept for staff's overview. The
-- subscriber it belongs to, while there is one, links it to their page.
CREATE TABLE suppressions (
    address_key      BLOB PRIMARY KEY,
    subscriber_id    BLOB REFERENCES subscribers (id) ON DELETE SET NULL,
    domain           TEXT NOT NULL,
    reason           TEXT NOT NULL CHECK (reason IN ('bounce', 'complaint', 'manual', 'import')),
    added_by         TEXT NOT NULL,
    inbound_id       BLOB REFERENCES inbound_messages (id),
    note             TEXT,
    created_at       INTEGER NOT NULL,
    -- When a sign-up last got a confirmation mail past this entry (one a month).
    last_admitted_at INTEGER
);
CREATE INDEX suppressions_by_subscriber ON suppressions (subscriber_id) WHERE subscriber_id IS NOT NULL;
CREATE INDEX suppressions_by_time ON suppressions (created_at);

-- Every entry added and lifted, by whom: the list's own ledger.
CREATE TABLE suppression_changes (
    id          BLOB PRIMARY KEY,
    address_key BLOB NOT NULL,
    change      TEXT NOT NULL CHECK (change IN ('added', 'lifted')),
    reason      TEXT NOT NULL,
    changed_by  TEXT NOT NULL,
    note        TEXT,
    changed_at  INTEGER NOT NULL
);
CREATE INDEX suppression_changes_by_key ON suppression_changes (address_key, changed_at);

-- Why an issue paused itself (the circuit breaker), until it is resumed.
ALTER TABLE issues ADD COLUMN paused_reason TEXT;
