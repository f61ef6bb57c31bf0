//! The relay's limits, `MAIL_RATE_PER_SECOND` and `MAIL_RATE_PER_HOUR`, held for every
//! instance together: a budget in the database, one row a window (a second, an hour,
//! as the clock counts them), that each worker takes copies from before it claims
//! them, and gives back what it could not use. The rule is here, in plain Rust; each
//! backend reads and writes the windows in one transaction.

use chrono::{DateTime, Utc};

/// Issue mails a second and an hour, at most, for all instances together (0: no limit).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    pub per_second: u32,
    pub per_hour: u32,
}

/// The windows a moment falls in: their starts, in Unix seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Windows {
    pub second: i64,
    pub hour: i64,
}

impl Windows {
    pub fn at(now: DateTime<Utc>) -> Self {
        let second = now.timestamp();
        Self {
            second,
            hour: second - second.rem_euclid(3600),
        }
    }
}

impl RateLimits {
    pub fn unlimited(&self) -> bool {
        self.per_second == 0 && self.per_hour == 0
    }

    /// How many of `wanted` copies the windows still allow at `now`, with `second` and
    /// `hour` already taken from them. Within the second, no more than can go out,
    /// spaced at the rate, before it ends: copies taken late in one second must not
    /// reach the relay in the next, beside that second's own.
    pub fn grant(&self, wanted: u32, second: i64, hour: i64, now: DateTime<Utc>) -> u32 {
        let left = |limit: u32, used: i64| {
            if limit == 0 {
                u32::MAX
            } else {
                u32::try_from((i64::from(limit) - used).max(0)).unwrap_or(0)
            }
        };
        let in_time = if self.per_second == 0 {
            u32::MAX
        } else {
            let remaining_ms = 1000 - u64::from(now.timestamp_subsec_millis().min(999));
            u32::try_from((u64::from(self.per_second) * remaining_ms).div_ceil(1000))
                .unwrap_or(u32::MAX)
        };
        wanted
            .min(left(self.per_second, second))
            .min(left(self.per_hour, hour))
            .min(in_time)
    }

    /// With nothing granted at `now`: when to ask again (the next second, or, when the
    /// hour's budget is spent, the next hour).
    pub fn next_window(&self, now: DateTime<Utc>, hour_used: i64) -> DateTime<Utc> {
        let windows = Windows::at(now);
        let next = if self.per_hour > 0 && hour_used >= i64::from(self.per_hour) {
            windows.hour + 3600
        } else {
            windows.second + 1
        };
        DateTime::from_timestamp(next, 0).unwrap_or(now)
    }
}

/// What the budget gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// Claim up to this many copies now (more than zero).
    Copies(u32),
    /// None until then.
    WaitUntil(DateTime<Utc>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_is_what_every_window_has_left() {
        let limits = RateLimits {
            per_second: 10,
            per_hour: 100,
        };
        let at = |ms: i64| DateTime::from_timestamp_millis(1_800_000_000_000 + ms).unwrap();
        assert_eq!(limits.grant(128, 0, 0, at(0)), 10);
        assert_eq!(limits.grant(128, 7, 0, at(0)), 3);
        assert_eq!(
            limits.grant(128, 12, 0, at(0)),
            0,
            "overdrawn by a give-back race"
        );
        assert_eq!(limits.grant(128, 0, 95, at(0)), 5);
        assert_eq!(limits.grant(2, 0, 0, at(0)), 2);
        assert_eq!(
            limits.grant(128, 0, 0, at(700)),
            3,
            "what goes out before the second ends"
        );
        assert_eq!(limits.grant(128, 0, 0, at(999)), 1);
        let open = RateLimits {
            per_second: 0,
            per_hour: 0,
        };
        assert!(open.unlimited());
        assert_eq!(open.grant(128, 1_000_000, 1_000_000, at(900)), 128);
    }

    #[test]
    fn windows_follow_the_clock_and_a_spent_hour_waits_for_the_next() {
        let now = DateTime::from_timestamp(7_200 + 1_800, 500_000_000).unwrap();
        assert_eq!(
            Windows::at(now),
            Windows {
                second: 9_000,
                hour: 7_200
            }
        );
        let limits = RateLimits {
            per_second: 10,
            per_hour: 100,
        };
        assert_eq!(limits.next_window(now, 50).timestamp(), 9_001);
        assert_eq!(limits.next_window(now, 100).timestamp(), 10_800);
    }
}
