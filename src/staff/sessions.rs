//! The rules of signing in: how long a session lasts, and how many failed sign-ins
//! each key may have before sign-in waits. The web layer reads and writes the cookies;
//! the store counts the attempts.

use chrono::{DateTime, Duration, Utc};

/// A session lasts a working day.
pub const SESSION_HOURS: i64 = 12;
/// Failed sign-ins are counted over this many minutes...
pub const FAILURE_WINDOW_MINUTES: i64 = 15;
/// ...and each key may have this many before sign-in waits.
const FAILURES_PER_ADDRESS_AND_CLIENT: i64 = 5;
const FAILURES_PER_CLIENT: i64 = 20;
const FAILURES_PER_ADDRESS: i64 = 50;

/// What one sign-in attempt is counted under, with each key's limit.
pub struct SignInKeys {
    pub limits: [(String, i64); 3],
}

impl SignInKeys {
    /// Per address and client: the limit a guesser meets. Per client: one client trying
    /// many addresses. Per address from anywhere, higher: guessing spread over many
    /// clients, without letting someone elsewhere lock the person out at five.
    pub fn new(email: &str, network: &str) -> Self {
        Self {
            limits: [
                (
                    format!("pair:{email}|{network}"),
                    FAILURES_PER_ADDRESS_AND_CLIENT,
                ),
                (format!("ip:{network}"), FAILURES_PER_CLIENT),
                (format!("address:{email}"), FAILURES_PER_ADDRESS),
            ],
        }
    }

    /// The keys whose failures a successful sign-in forgets: only the pair's, so that
    /// signing in does not wipe out the count of someone guessing from elsewhere.
    pub fn cleared_on_success(&self) -> [String; 1] {
        [self.limits[0].0.clone()]
    }
}

/// Failures since this time count.
pub fn failures_since(now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::minutes(FAILURE_WINDOW_MINUTES)
}

/// When a session made now ends.
pub fn session_ends(now: DateTime<Utc>) -> DateTime<Utc> {
    now + Duration::hours(SESSION_HOURS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_success_clears_only_the_pair() {
        let keys = SignInKeys::new("jo@example.org", "192.0.2.0");
        assert_eq!(keys.limits.len(), 3);
        assert_eq!(keys.cleared_on_success(), ["pair:jo@example.org|192.0.2.0"]);
        assert!(keys.limits.iter().all(|(_, limit)| *limit >= 5));
    }
}
