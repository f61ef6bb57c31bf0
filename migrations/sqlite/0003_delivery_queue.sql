-- Sending an issue to a million people must not slow down as it goes.
--
-- The queue indexes lead with the issue, so that "is anything of this issue left?"
-- (asked after every batch) and "which of this issue's rows are due?" read a few
-- index entries instead of walking past every row already sent.
--
-- No foreign keys, as in PostgreSQL (see its 0003 for why), and a status for the
-- copies of a cancelled issue: SQLite can change neither without rebuilding the table.
CREATE TABLE deliveries_new (
    issue_id        BLOB NOT NULL,
    subscriber_id   BLOB NOT NULL,
    status          TEXT NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'skipped', 'cancelled')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    last_error      TEXT,
    smtp_reply      TEXT,
    sent_at         INTEGER,
    PRIMARY KEY (issue_id, subscriber_id)
);
INSERT INTO deliveries_new SELECT
    issue_id, subscriber_id, status, attempts, next_attempt_at, lease_until,
    last_error, smtp_reply, sent_at
FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_new RENAME TO deliveries;

CREATE INDEX deliveries_queued ON deliveries (issue_id, next_attempt_at) WHERE status = 'queued';
CREATE INDEX deliveries_leased ON deliveries (issue_id, lease_until) WHERE status = 'sending';
