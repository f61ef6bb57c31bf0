-- Two indexes every sign-up or claim paid for and no query needs:
-- * the address's own uniqueness: `email_key` (the address in lower case) is unique
--   already, which says more, and every lookup goes by it;
-- * leases by expiry: the rows being sent are few (those in flight), and
--   `outbox_by_claimant` finds them; without this index a renewed lease, which
--   changes only `lease_until`, can be updated in place (a HOT update).
ALTER TABLE subscribers DROP CONSTRAINT subscribers_email_key;
DROP INDEX outbox_leased;
