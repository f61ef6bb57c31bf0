//! Times as people in Gloucestershire read them: Europe/London, with BST handled.

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
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

/// The UK date and time of `at` as a form shows them: ("2026-11-30", "10:15").
pub fn uk_form_parts(at: DateTime<Utc>) -> (String, String) {
    let local = at.with_timezone(&London);
    (
        local.format("%Y-%m-%d").to_string(),
        local.format("%H:%M").to_string(),
    )
}

/// The moment a date ("2026-11-30") and time ("10:15") name in the UK. In the hour the
/// clocks go back, the first of the two is meant; the hour they skip is refused.
pub fn from_uk_form(date: &str, time: &str) -> Result<DateTime<Utc>, String> {
    let date = NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d")
        .map_err(|_| "Enter the date as year-month-day, like 2026-12-01.".to_owned())?;
    let time = NaiveTime::parse_from_str(time.trim(), "%H:%M")
        .map_err(|_| "Enter the time as hours and minutes, like 09:30.".to_owned())?;
    match London.from_local_datetime(&NaiveDateTime::new(date, time)) {
        LocalResult::Single(at) | LocalResult::Ambiguous(at, _) => Ok(at.to_utc()),
        LocalResult::None => Err(
            "That time does not exist in the UK: the clocks go forward an hour that night. Choose another time."
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_times_are_uk_times() {
        let winter = from_uk_form("2026-12-01", "09:30").unwrap();
        assert_eq!(winter.to_rfc3339(), "2026-12-01T09:30:00+00:00");
        let summer = from_uk_form("2026-07-01", "09:30").unwrap();
        assert_eq!(summer.to_rfc3339(), "2026-07-01T08:30:00+00:00");
        assert_eq!(uk_form_parts(summer), ("2026-07-01".into(), "09:30".into()));
        // 29 March 2026: 01:00 to 02:00 does not happen.
        assert!(
            from_uk_form("2026-03-29", "01:30")
                .unwrap_err()
                .contains("does not exist")
        );
        // 25 October 2026: 01:00 to 02:00 happens twice; the first (BST) is meant.
        let twice = from_uk_form("2026-10-25", "01:30").unwrap();
        assert_eq!(twice.to_rfc3339(), "2026-10-25T00:30:00+00:00");
        assert!(from_uk_form("1 Dec", "09:30").is_err());
        assert!(from_uk_form("2026-12-01", "9.30am").is_err());
    }

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
