-- Staff who use the web UI: argon2 password hashes, database sessions (only the
-- SHA-256 of the cookie kept), and failed logins, counted to slow down guessing.

CREATE TABLE staff_users (
    id            BLOB PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'editor')),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE staff_sessions (
    token_hash BLOB PRIMARY KEY,
    user_id    BLOB NOT NULL REFERENCES staff_users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE INDEX staff_sessions_by_user ON staff_sessions (user_id);

-- One row per failed login, under the address tried and under the client's IP.
CREATE TABLE login_failures (
    key        TEXT NOT NULL,
    failed_at  INTEGER NOT NULL
);

CREATE INDEX login_failures_by_key ON login_failures (key, failed_at);
