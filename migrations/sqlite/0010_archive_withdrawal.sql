-- A sent issue can be withdrawn from the public archive and its feed, and put back.
-- The issue says whether it is withdrawn now (and by whom); the changes table keeps
-- every withdrawal and putting back, with who and when.
ALTER TABLE issues ADD COLUMN withdrawn_at INTEGER;
ALTER TABLE issues ADD COLUMN withdrawn_by TEXT;

CREATE TABLE issue_archive_changes (
    id         BLOB PRIMARY KEY,
    issue_id   BLOB NOT NULL REFERENCES issues (id),
    change     TEXT NOT NULL CHECK (change IN ('withdrawn', 'restored')),
    changed_by TEXT NOT NULL,
    changed_at INTEGER NOT NULL
);

CREATE INDEX issue_archive_changes_by_issue ON issue_archive_changes (issue_id, changed_at);
