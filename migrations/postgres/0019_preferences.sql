-- The preference page: a person changes their own details ('details'), joins and
-- leaves lists, and downloads what we hold ('export'), by the page ('preferences').
ALTER TABLE consent_events
    DROP CONSTRAINT consent_events_kind_check,
    ADD CONSTRAINT consent_events_kind_check CHECK (kind IN ('signup', 'confirm',
        'unsubscribe', 'resubscribe', 'import', 'erase', 'bounce', 'complaint', 'details',
        'export')),
    DROP CONSTRAINT consent_events_method_check,
    ADD CONSTRAINT consent_events_method_check CHECK (method IN ('form', 'api', 'link',
        'one-click', 'import', 'admin', 'mail', 'webhook', 'mailto', 'preferences'));
