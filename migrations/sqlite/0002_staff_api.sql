-- The staff API: bearer tokens (only their SHA-256 kept), and newsletter issues.

CREATE TABLE api_tokens (
    id         BLOB PRIMARY KEY,
    name       TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

-- A name names one live token; revoked ones stay for the record.
CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;

CREATE TABLE issues (
    id            BLOB PRIMARY KEY,
    list_id       BLOB NOT NULL REFERENCES lists (id),
    subject       TEXT NOT NULL,
    preheader     TEXT NOT NULL,
    body_markdown TEXT NOT NULL,
    template      TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'draft'
        CHECK (status IN ('draft', 'scheduled', 'sending', 'sent', 'cancelled', 'paused')),
    send_at       INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE INDEX issues_by_created ON issues (created_at);

-- Which issue prompted a consent event (an unsubscribe from an issue's link).
ALTER TABLE consent_events ADD COLUMN issue_id BLOB REFERENCES issues (id) ON DELETE SET NULL;
CREATE INDEX consent_events_by_issue ON consent_events (issue_id) WHERE issue_id IS NOT NULL;
