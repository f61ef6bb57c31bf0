-- Who asked for a test copy (`token:NAME` or `staff:ID`), so test copies can be
-- limited per API token and per staff member.
ALTER TABLE outbox ADD COLUMN requested_by TEXT;

CREATE INDEX outbox_test_copies ON outbox (requested_by, created_at) WHERE requested_by IS NOT NULL;
