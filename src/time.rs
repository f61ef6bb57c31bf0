//! Times as people in Gloucestershire read them: Europe/London, with BST handled.

use chrono::{DateTime, Utc};
use chrono_tz::Europe::London;

/// "Monday 30 November 2026 at 10:15 (UK time)".
pub fn uk_date_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&London)
        .format("%A %-d %B %Y at %H:%M (UK time)")
        .to_string()
}

/// "30 November 2026", the day in the UK.
pub fn uk_date(at: DateTime<Utc>) -> String {
    at.with_timezone(&London).format("%-d %B %Y").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summer_time_is_an_hour_ahead_of_utc() {
        let winter = DateTime::parse_from_rfc3339("2026-11-30T10:15:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            uk_date_time(winter),
            "Monday 30 November 2026 at 10:15 (UK time)"
        );
        let summer = DateTime::parse_from_rfc3339("2026-07-01T10:15:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            uk_date_time(summer),
            "Wednesday 1 July 2026 at 11:15 (UK time)"
        );
    }
}
