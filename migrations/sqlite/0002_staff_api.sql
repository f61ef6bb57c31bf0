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
    started_at    INTEGER,
    finished_at   INTEGER,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE INDEX issues_due ON issues (send_at) WHERE status = 'scheduled';

CREATE INDEX issues_by_created ON issues (created_at);

-- Which issue prompted a consent event (an unsubscribe from an issue's link).
ALTER TABLE consent_events ADD COLUMN issue_id BLOB REFERENCES issues (id) ON DELETE SET NULL;
CREATE INDEX consent_events_by_issue ON consent_events (issue_id) WHERE issue_id IS NOT NULL;

-- One row per recipient of an issue: the primary key is what makes "each recipient
-- gets an issue once" hold, whatever crashes or restarts happen while it goes out.
CREATE TABLE deliveries (
    issue_id        BLOB NOT NULL REFERENCES issues (id),
    subscriber_id   BLOB NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    status          TEXT NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'skipped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    last_error      TEXT,
    smtp_reply      TEXT,
    sent_at         INTEGER,
    PRIMARY KEY (issue_id, subscriber_id)
);

CREATE INDEX deliveries_queued ON deliveries (next_attempt_at) WHERE status = 'queued';
CREATE INDEX deliveries_leased ON deliveries (lease_until) WHERE status = 'sending';
