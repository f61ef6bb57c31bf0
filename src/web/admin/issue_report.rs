//! What the issue page reports of a sent (or sending) issue, beyond its numbers: its
//! unsubscribes day by day, and each bounce and complaint of its copies with the
//! receiving system's words.

use chrono::Utc;
use serde::Serialize;
use uuid::Uuid;

use crate::{
    time::{uk_date, uk_date_time},
    web::{AppError, AppState},
};

/// How many bounces and complaints the page lists.
const RETURNS_SHOWN: u32 = 100;

/// A bounce or complaint of one copy, as the issue's report lists it.
#[derive(Serialize)]
pub(super) struct ReturnLine {
    when: String,
    email: String,
    kind: &'static str,
    status: String,
    diagnostic: String,
}

/// The issue's bounces and complaints, newest first.
pub(super) async fn returns(state: &AppState, issue_id: Uuid) -> Result<Vec<ReturnLine>, AppError> {
    Ok(state
        .store
        .inbound_messages(crate::store::InboundFilter::Issue(issue_id), RETURNS_SHOWN)
        .await?
        .into_iter()
        .map(|m| ReturnLine {
            when: uk_date_time(m.received_at),
            email: m.email.unwrap_or_else(|| m.recipients.join(", ")),
            kind: match m.kind.as_str() {
                "hard" => "Bounced for good",
                "soft" => "Bounced for now",
                "complaint" => "Reported as spam",
                _ => "Unsubscribed by email",
            },
            status: m.status.unwrap_or_default(),
            diagnostic: m.diagnostic.unwrap_or_default(),
        })
        .collect())
}

/// Times, oldest first, counted per UK day: (the day, that day's count, the running total).
pub(super) fn by_uk_day(times: &[chrono::DateTime<Utc>]) -> Vec<(String, i64, i64)> {
    let mut days: Vec<(String, i64, i64)> = Vec::new();
    for (total, at) in (1..).zip(times) {
        let day = uk_date(*at);
        match days.last_mut() {
            Some((last, count, in_all)) if *last == day => {
                *count += 1;
                *in_all = total;
            }
            _ => days.push((day, 1, total)),
        }
    }
    days
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsubscribes_are_counted_by_uk_day() {
        let at = |text: &str| text.parse::<chrono::DateTime<Utc>>().unwrap();
        // 23:30 UTC on 30 June is 00:30 on 1 July in the UK (BST).
        let times = [
            at("2026-06-30T22:00:00Z"),
            at("2026-06-30T23:30:00Z"),
            at("2026-07-01T08:00:00Z"),
            at("2026-07-03T12:00:00Z"),
        ];
        assert_eq!(
            by_uk_day(&times),
            [
                ("30 June 2026".to_owned(), 1, 1),
                ("1 July 2026".to_owned(), 2, 3),
                ("3 July 2026".to_owned(), 1, 4),
            ]
        );
        assert!(by_uk_day(&[]).is_empty());
    }
}
