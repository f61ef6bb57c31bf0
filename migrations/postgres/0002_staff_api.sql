-- The staff API: bearer tokens (only their SHA-256 kept), and newsletter issues.

CREATE TABLE api_tokens (
    id         UUID PRIMARY KEY,
    name       TEXT NOT NULL,
    token_hash BYTEA NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);

-- A name names one live token; revoked ones stay for the record.
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;

CREATE TABLE issues (
    id            UUID PRIMARY KEY,
    list_id       UUID NOT NULL REFERENCES lists (id),
    subject       TEXT NOT NULL,
    preheader     TEXT NOT NULL,
    body_markdown TEXT NOT NULL,
    template      TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'draft'
        CHECK (status IN ('draft', 'scheduled', 'sending', 'sent', 'cancelled', 'paused')),
    send_at       TIMESTAMPTZ,
    started_at    TIMESTAMPTZ,
    finished_at   TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

CREATE INDEX issues_due ON issues (send_at) WHERE status = 'scheduled';

CREATE INDEX issues_by_created ON issues (created_at);

-- Which issue prompted a consent event (an unsubscribe from an issue's link).
ALTER TABLE consent_events ADD COLUMN issue_id UUID REFERENCES issues (id) ON DELETE SET NULL;
CREATE INDEX consent_events_by_issue ON consent_events (issue_id) WHERE issue_id IS NOT NULL;

-- One row per recipient of an issue: the primary key is what makes "each recipient
-- gets an issue once" hold, whatever crashes or restarts happen while it goes out.
CREATE TABLE deliveries (
    issue_id        UUID NOT NULL REFERENCES issues (id),
    subscriber_id   UUID NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    status          TEXT NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'skipped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    lease_until     TIMESTAMPTZ,
    last_error      TEXT,
    smtp_reply      TEXT,
    sent_at         TIMESTAMPTZ,
    PRIMARY KEY (issue_id, subscriber_id)
);

CREATE INDEX deliveries_queued ON deliveries (next_attempt_at) WHERE status = 'queued';
CREATE INDEX deliveries_leased ON deliveries (lease_until) WHERE status = 'sending';
