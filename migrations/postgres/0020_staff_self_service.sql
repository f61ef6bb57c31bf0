-- Staff look after their own accounts: invitations and password resets by mailed
-- link (only the SHA-256 of the link's token kept), and optional two-factor sign-in
-- (RFC 6238), with its secret sealed by the secret key and its recovery codes kept
-- as keyed hashes. An admin may require two-factor sign-in of everyone.

ALTER TABLE staff_users ADD COLUMN two_factor_secret BYTEA;
-- The last time step whose code was accepted: a code works once.
ALTER TABLE staff_users ADD COLUMN two_factor_step BIGINT;

CREATE TABLE staff_recovery_codes (
    user_id   UUID NOT NULL REFERENCES staff_users (id) ON DELETE CASCADE,
    code_hash BYTEA NOT NULL,
    used_at   TIMESTAMPTZ,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE staff_links (
    token_hash BYTEA PRIMARY KEY,
    purpose    TEXT NOT NULL CHECK (purpose IN ('invite', 'reset')),
    email      TEXT NOT NULL,
    -- An invitation's role; a reset's account.
    role       TEXT CHECK (role IN ('admin', 'editor')),
    user_id    UUID REFERENCES staff_users (id) ON DELETE CASCADE,
    created_by UUID REFERENCES staff_users (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);

CREATE INDEX staff_links_by_email ON staff_links (email, created_at);

CREATE TABLE staff_policy (
    id                 INTEGER PRIMARY KEY CHECK (id = 1),
    require_two_factor BOOLEAN NOT NULL DEFAULT FALSE
);

INSERT INTO staff_policy (id, require_two_factor) VALUES (1, FALSE);
