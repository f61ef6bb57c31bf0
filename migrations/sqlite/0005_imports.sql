-- Subscriber imports from CSV. `imports` is the lasting record of who imported which
-- file, and on what lawful basis (the source note); each consent event an import
-- makes points to it. `import_rows` is the file itself with each row's verdict: the
-- preview before the import, the report after. It holds personal data, so it is kept
-- only for a while (see `import.rs`) and erasure removes a person's rows.

CREATE TABLE imports (
    id          BLOB PRIMARY KEY,
    list_id     BLOB NOT NULL REFERENCES lists (id),
    created_by  TEXT NOT NULL,
    file_name   TEXT NOT NULL,
    source_note TEXT NOT NULL,
    mode        TEXT NOT NULL CHECK (mode IN ('confirmed', 'invite')),
    created_at  INTEGER NOT NULL,
    applied_at  INTEGER
);

CREATE TABLE import_rows (
    import_id    BLOB NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    line         INTEGER NOT NULL,
    email        TEXT NOT NULL,
    name         TEXT NOT NULL,
    organisation TEXT NOT NULL,
    locality     TEXT NOT NULL,
    status       TEXT NOT NULL
        CHECK (status IN ('ready', 'refused', 'unchanged', 'added', 'invited')),
    reason       TEXT,
    PRIMARY KEY (import_id, line)
);

CREATE INDEX import_rows_by_email ON import_rows (email);

ALTER TABLE consent_events ADD COLUMN import_id BLOB REFERENCES imports (id);
