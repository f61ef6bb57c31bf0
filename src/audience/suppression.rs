//! The suppression list: addresses no mail goes to, whatever their subscription says.
//! An entry is made by a hard bounce or a complaint (the pipeline in `inbound`), or by
//! staff (one address, or a CSV from a previous provider), and is kept as a keyed hash
//! of the address (`KeyRing::address_keys`), so that erasing a person leaves their
//! suppression in force without leaving their address.
//!
//! The rules, in plain Rust for both stores: a sign-up from a suppressed address gets a
//! confirmation mail at most once a month; confirming lifts a bounce (they fixed their
//! mailbox), never a complaint, which only staff lift.

use chrono::{DateTime, Duration, Utc};

/// Why an address is suppressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SuppressionReason {
    /// Hard bounces (or enough soft ones): the address does not take mail.
    Bounce,
    /// The person reported a mail as spam.
    Complaint,
    /// Added by staff.
    Manual,
    /// From a previous provider's suppression list.
    Import,
}

impl SuppressionReason {
    pub const ALL: [SuppressionReason; 4] = [
        SuppressionReason::Bounce,
        SuppressionReason::Complaint,
        SuppressionReason::Manual,
        SuppressionReason::Import,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionReason::Bounce => "bounce",
            SuppressionReason::Complaint => "complaint",
            SuppressionReason::Manual => "manual",
            SuppressionReason::Import => "import",
        }
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == text)
            .ok_or_else(|| anyhow::anyhow!("Unknown suppression reason {text:?}"))
    }

    /// Whether the person confirming a subscription lifts it: only a bounce, since a
    /// mailbox that works again is what a confirmation shows.
    pub fn lifted_by_confirming(self) -> bool {
        self == SuppressionReason::Bounce
    }
}

/// How often a suppressed address may be sent a confirmation mail when it signs up.
pub const ADMISSION_INTERVAL: Duration = Duration::days(30);

/// Whether a sign-up from a suppressed address gets its confirmation mail, given when
/// the last one past the suppression went.
pub fn admits_confirmation(last_admitted_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last_admitted_at.is_none_or(|at| now - at >= ADMISSION_INTERVAL)
}

/// The part of an address staff see beside an entry: its domain, lower-cased.
pub fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, domain)| domain)
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suppressed_address_is_invited_once_a_month() {
        let now = Utc::now();
        assert!(admits_confirmation(None, now));
        assert!(!admits_confirmation(Some(now - Duration::days(29)), now));
        assert!(admits_confirmation(Some(now - Duration::days(30)), now));
    }

    #[test]
    fn only_a_bounce_is_lifted_by_confirming() {
        for reason in SuppressionReason::ALL {
            assert_eq!(SuppressionReason::parse(reason.as_str()).unwrap(), reason);
            assert_eq!(
                reason.lifted_by_confirming(),
                reason == SuppressionReason::Bounce
            );
        }
    }

    #[test]
    fn the_domain_is_kept_lower_cased() {
        assert_eq!(domain_of("Jo@NHS.Net"), "nhs.net");
        assert_eq!(domain_of("no-at-sign"), "");
    }
}
