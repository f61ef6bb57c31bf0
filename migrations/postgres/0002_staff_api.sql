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
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

CREATE INDEX issues_by_created ON issues (created_at);

-- Which issue prompted a consent event (an unsubscribe from an issue's link).
ALTER TABLE consent_events ADD COLUMN issue_id UUID REFERENCES issues (id) ON DELETE SET NULL;
CREATE INDEX consent_events_by_issue ON consent_events (issue_id) WHERE issue_id IS NOT NULL;
