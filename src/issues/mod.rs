//! Newsletter issues: what staff write, and the states an issue moves through.
//!
//! draft -> scheduled -> sending -> sent, with paused (from sending) and cancelled (from
//! anything not yet sent). Content can change only while draft or scheduled.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::audience::segment::Segment;
use crate::fields::FieldError;

pub mod compose;
pub mod html_check;
pub mod markdown;
pub mod media;
pub mod preflight;
pub mod templates;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IssueStatus {
    Draft,
    Scheduled,
    Sending,
    Sent,
    Cancelled,
    Paused,
}

impl IssueStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IssueStatus::Draft => "draft",
            IssueStatus::Scheduled => "scheduled",
            IssueStatus::Sending => "sending",
            IssueStatus::Sent => "sent",
            IssueStatus::Cancelled => "cancelled",
            IssueStatus::Paused => "paused",
        }
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        [
            IssueStatus::Draft,
            IssueStatus::Scheduled,
            IssueStatus::Sending,
            IssueStatus::Sent,
            IssueStatus::Cancelled,
            IssueStatus::Paused,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| anyhow::anyhow!("Unknown issue status {text:?}"))
    }

    /// The statuses in which subject, preheader, body and template may still change.
    pub const EDITABLE: &'static [IssueStatus] = &[IssueStatus::Draft, IssueStatus::Scheduled];

    /// Whether subject, preheader, body and template may still change.
    pub fn is_editable(self) -> bool {
        Self::EDITABLE.contains(&self)
    }

    /// Only a draft can be deleted: anything later has been, or is being, sent.
    pub fn is_deletable(self) -> bool {
        self == IssueStatus::Draft
    }

    /// Only a sent issue is in the public archive, to be withdrawn from it or put back.
    pub fn is_archived(self) -> bool {
        self == IssueStatus::Sent
    }
}

/// A change of status that staff ask for. The scheduler's own moves (scheduled to
/// sending when due, sending to sent when the last copy has gone) are the stores'.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssueTransition {
    /// From a draft, or a new time for a scheduled issue.
    Schedule(DateTime<Utc>),
    /// For good, from anything not yet all sent: unsent copies are cancelled with it.
    Cancel,
    /// Stops new copies going out.
    Pause,
    Resume,
}

impl IssueTransition {
    /// The statuses it may start from.
    pub fn from(self) -> &'static [IssueStatus] {
        use IssueStatus::*;
        match self {
            IssueTransition::Schedule(_) => IssueStatus::EDITABLE,
            IssueTransition::Cancel => &[Draft, Scheduled, Sending, Paused],
            IssueTransition::Pause => &[Sending],
            IssueTransition::Resume => &[Paused],
        }
    }

    /// The status it leads to.
    pub fn to(self) -> IssueStatus {
        match self {
            IssueTransition::Schedule(_) => IssueStatus::Scheduled,
            IssueTransition::Cancel => IssueStatus::Cancelled,
            IssueTransition::Pause => IssueStatus::Paused,
            IssueTransition::Resume => IssueStatus::Sending,
        }
    }

    /// When the issue is to go, for a schedule.
    pub fn send_at(self) -> Option<DateTime<Utc>> {
        match self {
            IssueTransition::Schedule(at) => Some(at),
            _ => None,
        }
    }

    /// Whether an issue in `status` may take it.
    pub fn allowed_from(self, status: IssueStatus) -> bool {
        self.from().contains(&status)
    }
}

/// The issue templates staff can choose from (`issues::templates::SHIPPED`).
pub const TEMPLATES: &[&str] = &["standard", "announcement"];
pub const DEFAULT_TEMPLATE: &str = "standard";

#[derive(Clone, Debug)]
pub struct Issue {
    pub id: Uuid,
    /// 1, 2, 3... in the order issues were made: short enough for a return address.
    pub number: i64,
    pub list_slug: String,
    pub subject: String,
    pub preheader: String,
    pub body_markdown: String,
    pub template: String,
    pub status: IssueStatus,
    pub send_at: Option<DateTime<Utc>>,
    /// When the last copy went out.
    pub finished_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set while a sent issue is kept out of the public archive and feed.
    pub withdrawn: Option<Withdrawal>,
    /// Why it paused itself (its bounces or complaints), while it is paused.
    pub paused_reason: Option<String>,
    /// The template and brand versions it went out with, once it started sending.
    pub template_version: Option<i64>,
    pub brand_version: Option<i64>,
    /// Who scheduled it despite the preflight's problems, and when.
    pub sent_anyway: Option<Withdrawal>,
    /// The part of its list it goes to; `None` is the whole list.
    pub segment: Option<Segment>,
}

/// Who did something to an issue that is recorded with them (took it out of the public
/// archive, sent it despite the preflight), and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Withdrawal {
    pub at: DateTime<Utc>,
    /// The staff member's address, or `API token "NAME"`.
    pub by: String,
}

impl Issue {
    /// The issue's address in the archive: its subject's words, then the random end of
    /// its id (so two issues with one subject still differ).
    pub fn slug(&self) -> String {
        let mut words = String::new();
        for c in self.subject.to_lowercase().chars() {
            if c.is_ascii_alphanumeric() {
                words.push(c);
            } else if !words.is_empty() && !words.ends_with('-') {
                words.push('-');
            }
        }
        let words: String = words.trim_end_matches('-').chars().take(60).collect();
        let id = self.id.simple().to_string();
        format!("{}-{}", words.trim_end_matches('-'), &id[id.len() - 12..])
    }
}

/// A new issue that has passed every check.
#[derive(Clone, Debug)]
pub struct NewIssue {
    pub id: Uuid,
    pub list_id: Uuid,
    pub content: IssueContent,
    pub now: DateTime<Utc>,
}

/// What staff write. In a change, `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct IssueContent {
    pub subject: Option<String>,
    pub preheader: Option<String>,
    pub body_markdown: Option<String>,
    pub template: Option<String>,
    /// `Some(None)` sends it to the whole list again.
    pub segment: Option<Option<Segment>>,
    /// Another list to send it to (one that exists: `issue_actions` looks it up).
    pub list_id: Option<Uuid>,
}

/// The longest each field may be, in characters (Unicode scalar values, as JSON Schema's
/// `maxLength` counts), before any trimming: the API's schema says the same.
pub const MAX_SUBJECT: usize = 200;
pub const MAX_PREHEADER: usize = 250;
pub const MAX_BODY: usize = 200_000;

impl IssueContent {
    /// Checks the fields that are present; `complete` also requires subject and body.
    pub fn check(self, complete: bool) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut problem =
            |field: &'static str, message: String| errors.push(FieldError::new(field, message));
        match &self.subject {
            None if complete => problem("subject", "Give the issue a subject.".into()),
            Some(s) if s.trim().is_empty() => {
                problem("subject", "Give the issue a subject.".into())
            }
            Some(s) if s.chars().count() > MAX_SUBJECT => problem(
                "subject",
                format!("The subject must be {MAX_SUBJECT} characters or fewer."),
            ),
            Some(s) if s.chars().any(char::is_control) => problem(
                "subject",
                "The subject must be one line, without control characters.".into(),
            ),
            _ => {}
        }
        if let Some(p) = &self.preheader {
            if p.chars().count() > MAX_PREHEADER {
                problem(
                    "preheader",
                    format!("The preheader must be {MAX_PREHEADER} characters or fewer."),
                );
            } else if p.chars().any(char::is_control) {
                problem(
                    "preheader",
                    "The preheader must be one line, without control characters.".into(),
                );
            }
        }
        match &self.body_markdown {
            None if complete => problem("body_markdown", "Write the body of the issue.".into()),
            Some(b) if b.trim().is_empty() => {
                problem("body_markdown", "Write the body of the issue.".into())
            }
            Some(b) if b.chars().count() > MAX_BODY => problem(
                "body_markdown",
                format!("The body must be {MAX_BODY} characters or fewer."),
            ),
            Some(b) => {
                if let Some(message) = crate::issues::markdown::link_problem(b) {
                    problem("body_markdown", message);
                }
                let undescribed = crate::issues::markdown::images_without_alt_text(b);
                if !undescribed.is_empty() {
                    problem(
                        "body_markdown",
                        format!(
                            "Describe every image for people who cannot see it, as ![what it shows](address). Missing for: {}.",
                            undescribed.join(", ")
                        ),
                    );
                }
            }
            None => {}
        }
        if let Some(t) = &self.template
            && !TEMPLATES.contains(&t.as_str())
        {
            problem(
                "template",
                format!("Choose a template from: {}.", TEMPLATES.join(", ")),
            );
        }
        let segment = match self.segment {
            Some(Some(segment)) => match segment.check() {
                Ok(segment) => Some(segment),
                Err(message) => {
                    problem("segment", message);
                    None
                }
            },
            other => other,
        };
        if errors.is_empty() {
            Ok(Self {
                subject: self.subject.map(|s| s.trim().to_owned()),
                preheader: self.preheader.map(|p| p.trim().to_owned()),
                segment,
                ..self
            })
        } else {
            Err(errors)
        }
    }
}

/// What became of a change to an issue (its content, or its status).
#[derive(Debug)]
pub enum IssueChange {
    Changed(Box<Issue>),
    NotFound,
    /// Not allowed from the status the issue is in.
    Refused(IssueStatus),
}

/// What became of a request to delete a draft.
impl IssueChange {
    /// What a conditional change came to: `issue` is the issue as it is now (if it is
    /// there at all), `applied` whether the change's condition held.
    pub fn after(issue: Option<Issue>, applied: bool) -> Self {
        match issue {
            None => IssueChange::NotFound,
            Some(issue) if !applied => IssueChange::Refused(issue.status),
            Some(issue) => IssueChange::Changed(Box::new(issue)),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum DraftDeletion {
    Deleted,
    NotFound,
    /// Not a draft (any more).
    Refused(IssueStatus),
}

impl DraftDeletion {
    /// Why a draft was not deleted, from the issue as it is now: not there, or no
    /// longer a draft.
    pub fn refused(issue: Option<Issue>) -> Self {
        match issue {
            Some(issue) => DraftDeletion::Refused(issue.status),
            None => DraftDeletion::NotFound,
        }
    }
}

/// Taking a sent issue out of the public archive, or putting it back, by whom and when.
#[derive(Debug)]
pub struct ArchiveChange<'a> {
    pub id: Uuid,
    pub issue_id: Uuid,
    pub withdraw: bool,
    pub by: &'a str,
    pub at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_start_only_where_they_may() {
        use IssueStatus::*;
        let all = [Draft, Scheduled, Sending, Sent, Cancelled, Paused];
        let allowed = |t: IssueTransition| -> Vec<IssueStatus> {
            all.into_iter().filter(|s| t.allowed_from(*s)).collect()
        };
        let at = Utc::now();
        assert_eq!(allowed(IssueTransition::Schedule(at)), [Draft, Scheduled]);
        assert_eq!(
            allowed(IssueTransition::Cancel),
            [Draft, Scheduled, Sending, Paused]
        );
        assert_eq!(allowed(IssueTransition::Pause), [Sending]);
        assert_eq!(allowed(IssueTransition::Resume), [Paused]);
        assert_eq!(IssueTransition::Schedule(at).send_at(), Some(at));
        assert_eq!(IssueTransition::Cancel.send_at(), None);
        for t in [
            IssueTransition::Cancel,
            IssueTransition::Pause,
            IssueTransition::Resume,
        ] {
            assert!(
                !t.allowed_from(t.to()),
                "{t:?} does not start where it ends"
            );
        }
        assert_eq!(
            all.into_iter()
                .filter(|s| s.is_editable())
                .collect::<Vec<_>>(),
            [Draft, Scheduled]
        );
    }
    use chrono::Utc;

    fn content(subject: &str, body: &str) -> IssueContent {
        IssueContent {
            subject: Some(subject.into()),
            body_markdown: Some(body.into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_complete_issue_needs_subject_and_body() {
        let fields = |r: Result<IssueContent, Vec<FieldError>>| {
            r.unwrap_err()
                .iter()
                .map(|e| e.field.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            fields(IssueContent::default().check(true)),
            vec!["subject", "body_markdown"]
        );
        assert!(IssueContent::default().check(false).is_ok());
        assert_eq!(fields(content(" ", "Body").check(true)), vec!["subject"]);
        assert_eq!(fields(content("S\n2", "Body").check(true)), vec!["subject"]);
        assert_eq!(
            fields(content(&"s".repeat(201), "Body").check(true)),
            vec!["subject"]
        );
    }

    #[test]
    fn templates_must_exist_and_text_is_trimmed() {
        let mut c = content("  Winter issue ", "Body");
        c.template = Some("fancy".into());
        assert_eq!(c.clone().check(true).unwrap_err()[0].field, "template");
        c.template = Some("standard".into());
        assert_eq!(
            c.check(true).unwrap().subject.as_deref(),
            Some("Winter issue")
        );
    }

    #[test]
    fn slugs_are_readable_and_end_with_the_id() {
        let issue = Issue {
            id: Uuid::parse_str("019ab0c0-0000-7000-8000-0123456789ab").unwrap(),
            number: 1,
            list_slug: "in-partnership".into(),
            subject: "  In Partnership: Winter 2026 — ILPs & Know Your Patch!".into(),
            preheader: String::new(),
            body_markdown: String::new(),
            template: "standard".into(),
            status: IssueStatus::Sent,
            send_at: None,
            finished_at: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            withdrawn: None,
            paused_reason: None,
            template_version: None,
            brand_version: None,
            sent_anyway: None,
            segment: None,
        };
        assert_eq!(
            issue.slug(),
            "in-partnership-winter-2026-ilps-know-your-patch-0123456789ab"
        );
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            "draft",
            "scheduled",
            "sending",
            "sent",
            "cancelled",
            "paused",
        ] {
            assert_eq!(IssueStatus::parse(s).unwrap().as_str(), s);
        }
        assert!(IssueStatus::parse("lost").is_err());
        assert!(IssueStatus::Scheduled.is_editable());
        assert!(!IssueStatus::Sending.is_editable());
    }
}
