-- The queue indexes lead with the issue, so that "is anything of this issue left?"
-- (asked after every batch) and "when is this issue's next row due?" read one index
-- entry instead of walking the issue's sent rows, which grew with every batch.
DROP INDEX deliveries_queued;
DROP INDEX deliveries_leased;
CREATE INDEX deliveries_queued ON deliveries (issue_id, next_attempt_at) WHERE status = 'queued';
CREATE INDEX deliveries_leased ON deliveries (issue_id, lease_until) WHERE status = 'sending';
