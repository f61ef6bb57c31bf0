//! What a message that came back does, decided in plain Rust for both stores: the store
//! finds the facts (the copy's recipient, their soft bounces lately, the numbers
//! so far), calls these, and writes what they decide.
//!
//! - A hard bounce or a complaint ends the recipient's subscriptions (`bounced`,
//!   `complained`) and suppresses the address; so does the soft bounce that makes
//!   `soft_limit` of them within `soft_window` (they decay: older ones no longer count).
//! - A mail to an unsubscribe address ends the subscription to that list.
//! - Warnings and auto-replies change nothing. What was not understood, and any failure
//!   that names no copy of ours, is kept for a person and counts against nobody.

use chrono::Duration;

use super::Kind;

/// What became of a message, as staff see it listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It ended a subscription (and, for a failure or complaint, suppressed the address).
    Ended,
    /// A soft bounce, counted against the address.
    Counted,
    /// A warning, an auto-reply, or about a copy whose recipient is gone: nothing to do.
    Ignored,
    /// Understood, but about no copy of ours that could be found: kept for a person.
    Unattributed,
    /// Not understood: kept for a person.
    Unrecognised,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::Ended,
        Outcome::Counted,
        Outcome::Ignored,
        Outcome::Unattributed,
        Outcome::Unrecognised,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ended => "ended",
            Outcome::Counted => "counted",
            Outcome::Ignored => "ignored",
            Outcome::Unattributed => "unattributed",
            Outcome::Unrecognised => "unrecognised",
        }
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        Self::ALL
            .into_iter()
            .find(|o| o.as_str() == text)
            .ok_or_else(|| anyhow::anyhow!("Unknown inbound outcome {text:?}"))
    }

    /// Whether a person should look at it.
    pub fn needs_a_person(self) -> bool {
        matches!(self, Outcome::Unattributed | Outcome::Unrecognised)
    }
}

/// How a subscription ends because of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Every active subscription of the address ends as `bounced`; it is suppressed.
    Bounced,
    /// Every active subscription ends as `complained`; it is suppressed.
    Complained,
    /// The subscription to the copy's list ends as `unsubscribed`.
    Unsubscribed,
}

impl Ending {
    /// The status the subscription takes, and the ledger's kind for it.
    pub fn status_and_event(self) -> (&'static str, &'static str) {
        match self {
            Ending::Bounced => ("bounced", "bounce"),
            Ending::Complained => ("complained", "complaint"),
            Ending::Unsubscribed => ("unsubscribed", "unsubscribe"),
        }
    }

    /// The suppression it makes, if any.
    pub fn suppression(self) -> Option<crate::audience::suppression::SuppressionReason> {
        use crate::audience::suppression::SuppressionReason;
        match self {
            Ending::Bounced => Some(SuppressionReason::Bounce),
            Ending::Complained => Some(SuppressionReason::Complaint),
            Ending::Unsubscribed => None,
        }
    }
}

/// The limits that turn soft bounces into a hard one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoftBounces {
    /// This many soft bounces (of different copies) ...
    pub limit: i64,
    /// ... within this long count as a hard bounce.
    pub window: Duration,
}

impl Default for SoftBounces {
    fn default() -> Self {
        Self {
            limit: 3,
            window: Duration::days(30),
        }
    }
}

/// What a message does, given its kind, whether it names a copy whose recipient is
/// still known, and (for a soft bounce) how many soft bounces of other copies the
/// address had within the window.
pub fn decide(
    kind: Kind,
    recipient_known: bool,
    earlier_soft: i64,
    soft: &SoftBounces,
) -> (Outcome, Option<Ending>) {
    match kind {
        Kind::Unknown => (Outcome::Unrecognised, None),
        Kind::Warning | Kind::AutoReply => (Outcome::Ignored, None),
        _ if !recipient_known => (Outcome::Unattributed, None),
        Kind::Hard => (Outcome::Ended, Some(Ending::Bounced)),
        Kind::Complaint => (Outcome::Ended, Some(Ending::Complained)),
        Kind::Unsubscribe => (Outcome::Ended, Some(Ending::Unsubscribed)),
        Kind::Soft if earlier_soft + 1 >= soft.limit => (Outcome::Ended, Some(Ending::Bounced)),
        Kind::Soft => (Outcome::Counted, None),
    }
}

/// When an issue that is sending pauses itself: its hard bounces or complaints, as a
/// share of the copies sent so far, pass a threshold, once enough copies have gone
/// for the share to mean something.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Breaker {
    /// No pause before this many copies were sent.
    pub min_sent: i64,
    /// Hard bounces above this percentage of the copies sent pause the issue.
    pub hard_bounce_percent: f64,
    /// Complaints above this percentage pause it.
    pub complaint_percent: f64,
}

impl Default for Breaker {
    fn default() -> Self {
        Self {
            min_sent: 100,
            hard_bounce_percent: 5.0,
            complaint_percent: 0.3,
        }
    }
}

impl Breaker {
    /// Why the issue pauses, if it does, given its copies sent, its hard bounces and
    /// its complaints so far.
    pub fn trips(&self, sent: i64, hard: i64, complaints: i64) -> Option<String> {
        if sent < self.min_sent.max(1) {
            return None;
        }
        let percent = |n: i64| n as f64 * 100.0 / sent as f64;
        if percent(hard) > self.hard_bounce_percent {
            Some(format!(
                "Paused by itself: {hard} of the {sent} copies sent so far bounced for good \
                 ({:.1}%, more than the {}% allowed). Check the bounces before you resume.",
                percent(hard),
                self.hard_bounce_percent
            ))
        } else if percent(complaints) > self.complaint_percent {
            Some(format!(
                "Paused by itself: {complaints} of the {sent} people sent a copy so far \
                 reported it as spam ({:.2}%, more than the {}% allowed). Check the \
                 complaints before you resume.",
                percent(complaints),
                self.complaint_percent
            ))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_each_kind_does() {
        let soft = SoftBounces::default();
        assert_eq!(
            decide(Kind::Hard, true, 0, &soft),
            (Outcome::Ended, Some(Ending::Bounced))
        );
        assert_eq!(
            decide(Kind::Complaint, true, 0, &soft),
            (Outcome::Ended, Some(Ending::Complained))
        );
        assert_eq!(
            decide(Kind::Unsubscribe, true, 0, &soft),
            (Outcome::Ended, Some(Ending::Unsubscribed))
        );
        assert_eq!(decide(Kind::Warning, true, 0, &soft).0, Outcome::Ignored);
        assert_eq!(decide(Kind::AutoReply, false, 0, &soft).0, Outcome::Ignored);
        assert_eq!(
            decide(Kind::Unknown, true, 0, &soft).0,
            Outcome::Unrecognised
        );
        for kind in [Kind::Hard, Kind::Soft, Kind::Complaint, Kind::Unsubscribe] {
            assert_eq!(decide(kind, false, 9, &soft), (Outcome::Unattributed, None));
        }
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()).unwrap(), kind);
        }
        for outcome in Outcome::ALL {
            assert_eq!(Outcome::parse(outcome.as_str()).unwrap(), outcome);
        }
    }

    #[test]
    fn the_third_soft_bounce_in_the_window_is_a_hard_one() {
        let soft = SoftBounces::default();
        assert_eq!(decide(Kind::Soft, true, 0, &soft), (Outcome::Counted, None));
        assert_eq!(decide(Kind::Soft, true, 1, &soft), (Outcome::Counted, None));
        assert_eq!(
            decide(Kind::Soft, true, 2, &soft),
            (Outcome::Ended, Some(Ending::Bounced))
        );
    }

    #[test]
    fn the_breaker_waits_for_enough_copies_then_trips_above_its_thresholds() {
        let breaker = Breaker::default();
        assert_eq!(breaker.trips(99, 99, 99), None, "too few copies to judge");
        assert_eq!(
            breaker.trips(1000, 50, 3),
            None,
            "exactly at the thresholds"
        );
        let hard = breaker.trips(1000, 51, 0).unwrap();
        assert!(hard.contains("51 of the 1000"), "{hard}");
        let complaints = breaker.trips(1000, 0, 4).unwrap();
        assert!(complaints.contains("reported it as spam"), "{complaints}");
    }
}
