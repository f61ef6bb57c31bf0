-- Double opt-in sign-up: subscribers, lists, subscriptions, confirmation tokens, the
-- consent ledger, and the outbox the mail worker sends from.

CREATE TABLE app_settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE lists (
    id         UUID PRIMARY KEY,
    slug       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

INSERT INTO lists (id, slug, name, created_at)
VALUES ('019ab0c0-0000-7000-8000-000000000001', 'in-partnership', 'In Partnership', now());

CREATE TABLE subscribers (
    id           UUID PRIMARY KEY,
    email        TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    organisation TEXT,
    locality     TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE subscriptions (
    subscriber_id   UUID NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    list_id         UUID NOT NULL REFERENCES lists (id),
    status          TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'unsubscribed')),
    created_at      TIMESTAMPTZ NOT NULL,
    confirmed_at    TIMESTAMPTZ,
    unsubscribed_at TIMESTAMPTZ,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (subscriber_id, list_id)
);

CREATE INDEX subscriptions_by_list_status ON subscriptions (list_id, status);

-- Only the SHA-256 of a token is kept.
CREATE TABLE confirmation_tokens (
    token_hash    BYTEA PRIMARY KEY,
    subscriber_id UUID NOT NULL,
    list_id       UUID NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ NOT NULL,
    used_at       TIMESTAMPTZ,
    FOREIGN KEY (subscriber_id, list_id) REFERENCES subscriptions (subscriber_id, list_id)
        ON DELETE CASCADE
);

CREATE INDEX confirmation_tokens_by_subscription
    ON confirmation_tokens (subscriber_id, list_id, created_at);

-- Append-only: what a person agreed to or withdrew, when, how, and the wording shown.
-- subscriber_id is cleared on erasure; the anonymised event stays.
CREATE TABLE consent_events (
    id              UUID PRIMARY KEY,
    subscriber_id   UUID REFERENCES subscribers (id) ON DELETE SET NULL,
    list_id         UUID NOT NULL REFERENCES lists (id),
    kind            TEXT NOT NULL
        CHECK (kind IN ('signup', 'confirm', 'unsubscribe', 'resubscribe', 'import', 'erase')),
    method          TEXT NOT NULL
        CHECK (method IN ('form', 'api', 'link', 'one-click', 'import', 'admin')),
    occurred_at     TIMESTAMPTZ NOT NULL,
    ip              TEXT,
    user_agent      TEXT,
    wording_version TEXT,
    wording_hash    TEXT
);

CREATE INDEX consent_events_by_subscriber ON consent_events (subscriber_id, occurred_at);

-- Mail waiting to go out, and what became of it. `payload` is the template's context
-- (nothing secret); `sealed_secret` is an encrypted token, wiped once the row is done.
CREATE TABLE outbox (
    id              UUID PRIMARY KEY,
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    subscriber_id   UUID REFERENCES subscribers (id) ON DELETE CASCADE,
    payload         TEXT NOT NULL,
    sealed_secret   BYTEA,
    status          TEXT NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    lease_until     TIMESTAMPTZ,
    last_error      TEXT,
    smtp_reply      TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    sent_at         TIMESTAMPTZ
);

CREATE INDEX outbox_queued ON outbox (next_attempt_at) WHERE status = 'queued';
CREATE INDEX outbox_leased ON outbox (lease_until) WHERE status = 'sending';
