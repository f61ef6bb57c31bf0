-- Leases by expiry: the mails being sent are few (those in flight), and
-- `outbox_by_claimant` finds them. Without this index a claim writes one index entry
-- less a row, and a renewed lease, which changes only `lease_until`, can be updated in
-- place (a HOT update). (The same index of an issue's copies stays: without it the
-- planner, before it has statistics for a new issue's copies, walked all of them to
-- find the few being sent, and sending fell to 0.7 of its rate.)
DROP INDEX outbox_leased;
