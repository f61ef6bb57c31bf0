-- Budgets on confirmation mails (see src/budgets.rs): per client network, per
-- recipient domain and in total, per hour; `refused` counts the sign-ups turned away,
-- for the dashboard. Rows older than two days are deleted by the hourly housekeeping.
CREATE TABLE signup_budgets (
    scope        TEXT NOT NULL CHECK (scope IN ('client', 'domain', 'total')),
    key          TEXT NOT NULL,
    window_start TIMESTAMPTZ NOT NULL,
    mails        BIGINT NOT NULL DEFAULT 0,
    refused      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, key, window_start)
);

CREATE INDEX signup_budgets_by_window ON signup_budgets (window_start);

-- Sign-up form tokens already used (their random part): each works once. Kept a day,
-- as long as a token lives.
CREATE TABLE used_form_tokens (
    nonce   BYTEA PRIMARY KEY,
    used_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX used_form_tokens_by_time ON used_form_tokens (used_at);
