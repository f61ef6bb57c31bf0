-- Who scheduled an issue despite the accessibility preflight's problems, and when.
ALTER TABLE issues ADD COLUMN sent_anyway_by TEXT;
ALTER TABLE issues ADD COLUMN sent_anyway_at TIMESTAMPTZ;
