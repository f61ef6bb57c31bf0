-- Leases by expiry: the mails being sent are few (those in flight), and
-- `outbox_by_claimant` finds them. Without this index a claim writes one index entry
-- less a row.
DROP INDEX outbox_leased;
