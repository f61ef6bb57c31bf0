-- A sign-in attempt is counted before its password is checked (so that parallel
-- attempts cannot outrun the limits); a successful one is then taken back by its id.
ALTER TABLE login_failures ADD COLUMN attempt_id UUID;

CREATE INDEX login_failures_by_attempt ON login_failures (attempt_id);
