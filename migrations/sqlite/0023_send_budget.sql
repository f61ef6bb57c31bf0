-- The relay's limits for all instances together (see src/sending/rate.rs): copies
-- taken from each window, a second or an hour, named by its start in Unix seconds.
CREATE TABLE send_budget (
    period TEXT NOT NULL CHECK (period IN ('second', 'hour')),
    starts INTEGER NOT NULL,
    used   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (period, starts)
);
