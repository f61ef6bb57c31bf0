-- People who left every list are reduced, after a while, to their anonymised ledger
-- and a suppression entry of their own kind, `left`: it keeps them from being imported
-- or mailed again by mistake, and, like a bounce, it is lifted when they come back by
-- confirming a sign-up themselves. SQLite cannot change a CHECK, so the table is made
-- again (nothing refers to it).

CREATE TABLE suppressions_next (
    address_key      BLOB PRIMARY KEY,
    subscriber_id    BLOB REFERENCES subscribers (id) ON DELETE SET NULL,
    domain           TEXT NOT NULL,
    reason           TEXT NOT NULL CHECK (reason IN ('bounce', 'complaint', 'manual', 'import', 'left')),
    added_by         TEXT NOT NULL,
    inbound_id       BLOB REFERENCES inbound_messages (id),
    note             TEXT,
    created_at       INTEGER NOT NULL,
    -- When a sign-up last got a confirmation mail past this entry (one a month).
    last_admitted_at INTEGER
);
INSERT INTO suppressions_next
    (address_key, subscriber_id, domain, reason, added_by, inbound_id, note, created_at, last_admitted_at)
SELECT address_key, subscriber_id, domain, reason, added_by, inbound_id, note, created_at, last_admitted_at
FROM suppressions;
DROP TABLE suppressions;
ALTER TABLE suppressions_next RENAME TO suppressions;
CREATE INDEX suppressions_by_subscriber ON suppressions (subscriber_id) WHERE subscriber_id IS NOT NULL;
CREATE INDEX suppressions_by_time ON suppressions (created_at);

-- Their erasure is recorded as done by the retention rule ('retention').
CREATE TABLE consent_events_next (
    id              BLOB PRIMARY KEY,
    subscriber_id   BLOB REFERENCES subscribers (id) ON DELETE SET NULL,
    list_id         BLOB NOT NULL REFERENCES lists (id),
    kind            TEXT NOT NULL CHECK (kind IN ('signup', 'confirm', 'unsubscribe',
        'resubscribe', 'import', 'erase', 'bounce', 'complaint', 'details', 'export')),
    method          TEXT NOT NULL CHECK (method IN ('form', 'api', 'link', 'one-click',
        'import', 'admin', 'mail', 'webhook', 'mailto', 'preferences', 'retention')),
    occurred_at     INTEGER NOT NULL,
    ip              TEXT,
    user_agent      TEXT,
    wording_version TEXT,
    wording_hash    TEXT,
    issue_id        BLOB REFERENCES issues (id) ON DELETE SET NULL,
    import_id       BLOB REFERENCES imports (id),
    inbound_id      BLOB REFERENCES inbound_messages (id)
);
INSERT INTO consent_events_next SELECT
    id, subscriber_id, list_id, kind, method, occurred_at, ip, user_agent,
    wording_version, wording_hash, issue_id, import_id, inbound_id
FROM consent_events;
DROP TABLE consent_events;
ALTER TABLE consent_events_next RENAME TO consent_events;
CREATE INDEX consent_events_by_subscriber ON consent_events (subscriber_id, occurred_at);
CREATE INDEX consent_events_by_issue ON consent_events (issue_id) WHERE issue_id IS NOT NULL;
