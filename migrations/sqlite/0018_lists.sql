-- Lists staff make besides "In Partnership": each has a description and is public
-- (offered on the sign-up form) or private (staff add people to it).
ALTER TABLE lists ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE lists ADD COLUMN public INTEGER NOT NULL DEFAULT 1 CHECK (public IN (0, 1));

-- One confirmation mail confirms every list chosen in one sign-up: a token has a row
-- per list it confirms. SQLite changes a primary key only by rebuilding the table;
-- nothing refers to this one.
CREATE TABLE confirmation_tokens_new (
    token_hash    BLOB NOT NULL,
    subscriber_id BLOB NOT NULL,
    list_id       BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    used_at       INTEGER,
    PRIMARY KEY (token_hash, list_id),
    FOREIGN KEY (subscriber_id, list_id) REFERENCES subscriptions (subscriber_id, list_id)
        ON DELETE CASCADE
);
INSERT INTO confirmation_tokens_new SELECT
    token_hash, subscriber_id, list_id, created_at, expires_at, used_at
FROM confirmation_tokens;
DROP TABLE confirmation_tokens;
ALTER TABLE confirmation_tokens_new RENAME TO confirmation_tokens;
CREATE INDEX confirmation_tokens_by_subscription
    ON confirmation_tokens (subscriber_id, list_id, created_at);
