-- Lists staff make besides "In Partnership": each has a description and is public
-- (offered on the sign-up form) or private (staff add people to it).
ALTER TABLE lists ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE lists ADD COLUMN public BOOLEAN NOT NULL DEFAULT true;

-- One confirmation mail confirms every list chosen in one sign-up: a token has a row
-- per list it confirms.
ALTER TABLE confirmation_tokens DROP CONSTRAINT confirmation_tokens_pkey;
ALTER TABLE confirmation_tokens ADD PRIMARY KEY (token_hash, list_id);
