-- People who left every list are reduced, after a while, to their anonymised ledger
-- and a suppression entry of their own kind, `left`: it keeps them from being imported
-- or mailed again by mistake, and, like a bounce, it is lifted when they come back by
-- confirming a sign-up themselves.

ALTER TABLE suppressions DROP CONSTRAINT suppressions_reason_check;
ALTER TABLE suppressions ADD CONSTRAINT suppressions_reason_check
    CHECK (reason IN ('bounce', 'complaint', 'manual', 'import', 'left'));

-- Their erasure is recorded as done by the retention rule ('retention').
ALTER TABLE consent_events
    DROP CONSTRAINT consent_events_method_check,
    ADD CONSTRAINT consent_events_method_check CHECK (method IN ('form', 'api', 'link',
        'one-click', 'import', 'admin', 'mail', 'webhook', 'mailto', 'preferences',
        'retention'));
