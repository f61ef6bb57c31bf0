-- The preference page: a person changes their own details ('details'), joins and
-- leaves lists, and downloads what we hold ('export'), by the page ('preferences').
-- SQLite widens a CHECK only by rebuilding the table; it is copied whole, and nothing
-- refers to it.
CREATE TABLE consent_events_new (
    id              BLOB PRIMARY KEY,
    subscriber_id   BLOB REFERENCES subscribers (id) ON DELETE SET NULL,
    list_id         BLOB NOT NULL REFERENCES lists (id),
    kind            TEXT NOT NULL CHECK (kind IN ('signup', 'confirm', 'unsubscribe',
        'resubscribe', 'import', 'erase', 'bounce', 'complaint', 'details', 'export')),
    method          TEXT NOT NULL CHECK (method IN ('form', 'api', 'link', 'one-click',
        'import', 'admin', 'mail', 'webhook', 'mailto', 'preferences')),
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
    wording_version, wording_hash, issue_id, import_id, inbound_id
FROM consent_events;
DROP TABLE consent_events;
ALTER TABLE consent_events_new RENAME TO consent_events;
CREATE INDEX consent_events_by_subscriber ON consent_events (subscriber_id, occurred_at);
CREATE INDEX consent_events_by_issue ON consent_events (issue_id) WHERE issue_id IS NOT NULL;
