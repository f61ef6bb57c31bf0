-- Images staff upload, re-encoded without metadata, kept under the SHA-256 of their
-- bytes (so uploading one twice keeps one copy) and served from here: every instance
-- shares them. Times are Unix milliseconds.
CREATE TABLE media (
    hash         TEXT PRIMARY KEY,
    content_type TEXT NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'image/gif')),
    width        INTEGER NOT NULL CHECK (width > 0),
    height       INTEGER NOT NULL CHECK (height > 0),
    byte_count   INTEGER NOT NULL,
    bytes        BLOB NOT NULL,
    file_name    TEXT NOT NULL,
    uploaded_by  TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);

CREATE INDEX media_newest_first ON media (created_at DESC);
