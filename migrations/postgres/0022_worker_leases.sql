-- Claimed mail names the worker (one id per running process) that claimed it. While a
-- worker lives it renews its leases, which are short, so that when it dies another
-- worker takes its rows within seconds rather than minutes.
ALTER TABLE outbox ADD COLUMN claimed_by UUID;
ALTER TABLE deliveries ADD COLUMN claimed_by UUID;
CREATE INDEX outbox_by_claimant ON outbox (claimed_by) WHERE status = 'sending';
CREATE INDEX deliveries_by_claimant ON deliveries (claimed_by) WHERE status = 'sending';
