-- Leases by expiry: the rows being sent are few (those in flight), and
-- `outbox_by_claimant` finds them. (PostgreSQL also drops the address's own unique
-- index, which `email_key` makes redundant; here it is part of the table, and taking it
-- out would mean copying the table.)
DROP INDEX outbox_leased;
