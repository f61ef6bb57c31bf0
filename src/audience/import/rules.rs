//! The import's vocabulary and its rules: what becomes of each row, decided here in
//! plain Rust; the stores find the facts and write what this decides.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::audience::subscription::{RESEND_CAP, SubscriptionStatus};

/// How long the per-row report of an import is kept.
pub const REPORT_DAYS: i64 = 30;
/// Rows imported per transaction.
pub const BATCH: u32 = 2000;

/// What becomes of the people imported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Subscribed at once, on the lawful basis in the source note.
    Confirmed,
    /// Sent a confirmation mail: subscribed only if they confirm.
    Invite,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Confirmed => "confirmed",
            Mode::Invite => "invite",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "confirmed" => Some(Mode::Confirmed),
            "invite" => Some(Mode::Invite),
            _ => None,
        }
    }
}

/// A row's verdict: before the import (`Ready`, `Refused`, `Unchanged`) and after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RowStatus {
    Ready,
    Refused,
    /// Already subscribed, or sent enough confirmation mails already.
    Unchanged,
    /// Subscribed, confirmed.
    Added,
    /// Sent a confirmation mail.
    Invited,
}

impl RowStatus {
    pub const ALL: [RowStatus; 5] = [
        RowStatus::Ready,
        RowStatus::Added,
        RowStatus::Invited,
        RowStatus::Unchanged,
        RowStatus::Refused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RowStatus::Ready => "ready",
            RowStatus::Refused => "refused",
            RowStatus::Unchanged => "unchanged",
            RowStatus::Added => "added",
            RowStatus::Invited => "invited",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// One row of the file: its values (as read, or as they will be stored) and verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ImportRow {
    /// Its line in the file (the header is line 1).
    pub line: i64,
    pub email: String,
    pub name: String,
    pub organisation: String,
    /// The locality's slug once checked; as written in the file if refused.
    pub locality: String,
    pub status: RowStatus,
    pub reason: Option<String>,
}

/// How many of an import's rows have each status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportCounts([i64; RowStatus::ALL.len()]);

impl ImportCounts {
    /// From (status, count) rows, as both stores read them.
    pub fn from_rows(rows: Vec<(String, i64)>) -> anyhow::Result<Self> {
        let mut counts = Self::default();
        for (status, count) in rows {
            let status = RowStatus::parse(&status)
                .ok_or_else(|| anyhow::anyhow!("An imported row has the status {status:?}"))?;
            counts.0[Self::place(status)] = count;
        }
        Ok(counts)
    }

    fn place(status: RowStatus) -> usize {
        RowStatus::ALL
            .iter()
            .position(|s| *s == status)
            .unwrap_or_default()
    }

    /// How many rows have `status`.
    pub fn of(&self, status: RowStatus) -> i64 {
        self.0[Self::place(status)]
    }

    pub fn total(&self) -> i64 {
        self.0.iter().sum()
    }

    /// The statuses some row has, with their counts, in `RowStatus::ALL`'s order.
    pub fn present(&self) -> impl Iterator<Item = (RowStatus, i64)> + '_ {
        RowStatus::ALL
            .into_iter()
            .map(|status| (status, self.of(status)))
            .filter(|(_, count)| *count > 0)
    }

    /// Counts as people read them, in a fixed order: "added 2, refused 1".
    pub fn summary(&self) -> String {
        self.present()
            .map(|(status, count)| format!("{} {count}", status.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// An import: who made it, of which file, on what lawful basis, and to what effect.
#[derive(Clone, Debug, Serialize)]
pub struct ImportRecord {
    pub id: Uuid,
    pub list_id: Uuid,
    /// The staff member's address, or `command line`.
    pub created_by: String,
    pub file_name: String,
    pub source_note: String,
    pub mode: Mode,
    pub created_at: DateTime<Utc>,
    pub applied_at: Option<DateTime<Utc>>,
}

impl ImportRecord {
    /// Whether its per-row report has been deleted.
    pub fn report_expired(&self, now: DateTime<Utc>) -> bool {
        self.created_at < report_cutoff(now)
    }
}

/// Imports made before this have had their rows deleted.
pub fn report_cutoff(now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::days(REPORT_DAYS)
}

/// What an import does to one person, given their subscription now (if any) and how
/// many confirmation mails they were sent in the last day. Both stores decide by it.
pub fn outcome(
    status: Option<SubscriptionStatus>,
    recent_invitations: i64,
    mode: Mode,
) -> (RowStatus, Option<&'static str>) {
    if let Some(settled) = status.and_then(settled) {
        return settled;
    }
    match (status, mode) {
        (_, Mode::Confirmed) => (RowStatus::Added, None),
        (Some(_), Mode::Invite) if recent_invitations >= RESEND_CAP => (
            RowStatus::Unchanged,
            Some("Sent enough confirmation emails in the last day already."),
        ),
        (_, Mode::Invite) => (RowStatus::Invited, None),
    }
}

const UNSUBSCRIBED: &str =
    "They unsubscribed: only they can subscribe again, by signing up themselves.";

const BOUNCED: &str = "Mail to them bounced: only they can subscribe again, by signing up.";

const COMPLAINED: &str =
    "They reported an issue as spam: only they can subscribe again, by signing up.";

/// What is settled for someone on the list already, whatever the import's mode: a
/// confirmed person is left as they are, and only a person who left may come back.
pub fn settled(status: SubscriptionStatus) -> Option<(RowStatus, Option<&'static str>)> {
    match status {
        SubscriptionStatus::Confirmed => Some((RowStatus::Unchanged, Some("Already subscribed."))),
        SubscriptionStatus::Unsubscribed => Some((RowStatus::Refused, Some(UNSUBSCRIBED))),
        SubscriptionStatus::Bounced => Some((RowStatus::Refused, Some(BOUNCED))),
        SubscriptionStatus::Complained => Some((RowStatus::Refused, Some(COMPLAINED))),
        SubscriptionStatus::Pending => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_import_never_resubscribes_and_respects_the_resend_cap() {
        use RowStatus::*;
        use SubscriptionStatus::{Confirmed, Pending, Unsubscribed};
        assert_eq!(outcome(None, 0, Mode::Confirmed).0, Added);
        assert_eq!(outcome(Some(Pending), 9, Mode::Confirmed).0, Added);
        assert_eq!(outcome(None, 0, Mode::Invite).0, Invited);
        assert_eq!(outcome(Some(Pending), 1, Mode::Invite).0, Invited);
        assert_eq!(
            outcome(Some(Pending), RESEND_CAP, Mode::Invite).0,
            Unchanged
        );
        for mode in [Mode::Confirmed, Mode::Invite] {
            assert_eq!(outcome(Some(Confirmed), 0, mode).0, Unchanged);
            assert_eq!(outcome(Some(Unsubscribed), 0, mode).0, Refused);
        }
    }
}
