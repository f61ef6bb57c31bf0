//! What staff can do to an issue, shared by the JSON API and the web UI: each action
//! checks its rules in one place and, when it refuses, says why in words for people.
//! The API turns a refusal into a JSON error; the web UI shows it on the page.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{AppError, AppState};
use crate::{
    audience::{segment::Segment, subscriber::SubscriberEmail},
    fields::FieldError,
    issues::{
        ArchiveChange, DraftDeletion, Issue, IssueChange, IssueContent, IssueStatus,
        IssueTransition, NewIssue,
    },
    issues::{compose::ComposedIssue, preflight::Report},
    sending::outbox::{ISSUE_TEST, IssueTestPayload},
    store::{DEFAULT_LIST, MailingList, NewOutboxMail, TestCopy},
};

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("There is no issue with that id.")]
    NotFound,
    /// The issue's status does not allow it.
    #[error("{0}")]
    Conflict(String),
    /// Fields with problems.
    #[error("Some fields have problems")]
    Invalid(Vec<FieldError>),
    /// The issue's template does not render with its content.
    #[error("{0}")]
    Unrenderable(String),
    /// Too many of these lately.
    #[error("{0}")]
    Limited(String),
    /// The accessibility preflight found problems, and no one chose to send it anyway.
    #[error("{}", preflight_words(.0))]
    Preflight(Box<Report>),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// How the JSON API answers a refusal.
impl From<ActionError> for AppError {
    fn from(err: ActionError) -> Self {
        match err {
            ActionError::NotFound => AppError::json(StatusCode::NOT_FOUND, err.to_string()),
            ActionError::Conflict(reason) => AppError::json(StatusCode::CONFLICT, reason),
            ActionError::Invalid(errors) => AppError::Invalid(errors),
            ActionError::Unrenderable(reason) => {
                AppError::json(StatusCode::UNPROCESSABLE_ENTITY, reason)
            }
            ActionError::Limited(reason) => AppError::json(StatusCode::TOO_MANY_REQUESTS, reason),
            ActionError::Preflight(report) => AppError::Invalid(preflight_errors(&report)),
            ActionError::Internal(err) => AppError::Internal(err),
        }
    }
}

/// What an issue's preview may load: its own styles, our images and images from
/// anywhere on the web, and nothing that runs.
pub const PREVIEW_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; form-action 'none'; base-uri 'none'; sandbox; frame-ancestors 'none'";

type Result<T> = std::result::Result<T, ActionError>;

fn preflight_words(report: &Report) -> String {
    let count = report.problems().count();
    format!(
        "The accessibility check found {count} problem{} in this issue. Fix {}, or choose to send it anyway.",
        if count == 1 { "" } else { "s" },
        if count == 1 { "it" } else { "them" }
    )
}

/// The preflight's problems, each as a problem with `send_anyway`: what sending it
/// anyway would overrule.
pub fn preflight_errors(report: &Report) -> Vec<FieldError> {
    report
        .problems()
        .map(|f| FieldError::new("send_anyway", f.message.clone()))
        .collect()
}

/// The accessibility preflight of the issue as it would go out now.
pub async fn preflight(state: &AppState, issue: &Issue) -> Result<Report> {
    let (html, _) = preview(state, issue).await?;
    Ok(crate::issues::preflight::check(&issue.body_markdown, &html))
}

/// A new draft on the list called `list_slug` (the default list if none).
#[tracing::instrument(skip_all)]
pub async fn create(
    state: &AppState,
    content: IssueContent,
    list_slug: Option<String>,
) -> Result<Issue> {
    let content = content.check(true);
    let list = list_named(state, list_slug.as_deref().unwrap_or(DEFAULT_LIST)).await?;
    let (content, list) = match (content, list) {
        (Ok(content), Ok(list)) => (content, list),
        (content, list) => {
            let mut errors = content.err().unwrap_or_default();
            errors.extend(list.err());
            return Err(ActionError::Invalid(errors));
        }
    };
    let issue = state
        .store
        .create_issue(&NewIssue {
            id: Uuid::now_v7(),
            list_id: list.id,
            content,
            now: Utc::now(),
        })
        .await?;
    tracing::info!(issue = %issue.id, "Issue created");
    Ok(issue)
}

/// The list an issue names, or the problem with the name.
async fn list_named(
    state: &AppState,
    slug: &str,
) -> anyhow::Result<std::result::Result<MailingList, FieldError>> {
    Ok(state
        .store
        .list_by_slug(slug)
        .await?
        .ok_or_else(|| FieldError::new("list", format!("There is no list called {slug:?}."))))
}

/// Changes the fields given, while the issue is a draft or scheduled.
#[tracing::instrument(skip_all, fields(issue = %id))]
///
/// A scheduled issue that passed the accessibility check (rather than being sent
/// anyway) must still pass it with the changes, or scheduling would be a way round it.
pub async fn update(
    state: &AppState,
    id: Uuid,
    changes: IssueContent,
    list_slug: Option<&str>,
) -> Result<Issue> {
    let list = match list_slug {
        Some(slug) => Some(list_named(state, slug).await?),
        None => None,
    };
    let changes = match (changes.check(false), list) {
        (Ok(changes), None) => changes,
        (Ok(changes), Some(Ok(list))) => IssueContent {
            list_id: Some(list.id),
            ..changes
        },
        (changes, list) => {
            let mut errors = changes.err().unwrap_or_default();
            errors.extend(list.and_then(|l| l.err()));
            return Err(ActionError::Invalid(errors));
        }
    };
    if let Some(current) = state.store.issue(id).await?
        && current.status == IssueStatus::Scheduled
        && current.sent_anyway.is_none()
    {
        let changed = Issue {
            subject: changes.subject.clone().unwrap_or(current.subject.clone()),
            preheader: changes
                .preheader
                .clone()
                .unwrap_or(current.preheader.clone()),
            body_markdown: changes
                .body_markdown
                .clone()
                .unwrap_or(current.body_markdown.clone()),
            template: changes.template.clone().unwrap_or(current.template.clone()),
            ..current
        };
        let report = preflight(state, &changed).await?;
        if report.has_problems() {
            return Err(ActionError::Preflight(Box::new(report)));
        }
    }
    match state.store.update_issue(id, &changes, Utc::now()).await? {
        IssueChange::Changed(issue) => Ok(*issue),
        IssueChange::NotFound => Err(ActionError::NotFound),
        IssueChange::Refused(status) => Err(ActionError::Conflict(format!(
            "This issue is {}: only a draft or scheduled issue can be changed.",
            status.as_str()
        ))),
    }
}

pub async fn issue(state: &AppState, id: Uuid) -> Result<Issue> {
    state.store.issue(id).await?.ok_or(ActionError::NotFound)
}

/// The issue composed as its recipients will get it.
async fn compose(state: &AppState, issue: &Issue) -> Result<ComposedIssue> {
    let (template, brand) = crate::issues::compose::versions(&*state.store, issue)
        .await?
        .map_err(|missing| ActionError::Unrenderable(missing.to_string()))?;
    ComposedIssue::compose(issue, &template, &brand, &state.settings.public_url)
        .map_err(|e| ActionError::Unrenderable(format!("{e:#}")))
}

/// The issue's HTML and text as a recipient sees them. The unsubscribe link in a
/// preview names no subscriber and leads nowhere.
pub async fn preview(state: &AppState, issue: &Issue) -> Result<(String, String)> {
    let composed = compose(state, issue).await?;
    Ok(composed.personalise(&state.settings.recipient_links("preview")))
}

/// The issue, if it may be scheduled or sent now (a draft or a scheduled issue whose
/// content is fit to go), and its accessibility preflight.
pub async fn sendable(state: &AppState, id: Uuid) -> Result<(Issue, Report)> {
    let issue = issue(state, id).await?;
    if !issue.status.is_editable() {
        return Err(ActionError::Conflict(format!(
            "This issue is {}: only a draft or a scheduled issue can be sent.",
            issue.status.as_str()
        )));
    }
    // Content saved before the link rules existed is checked again before it goes out.
    if let Some(message) = crate::issues::markdown::link_problem(&issue.body_markdown) {
        return Err(ActionError::Invalid(vec![FieldError::new(
            "body_markdown",
            message,
        )]));
    }
    let report = preflight(state, &issue).await?;
    Ok((issue, report))
}

/// Whom an issue would go to if it went now.
#[derive(Clone, Debug)]
pub struct Audience {
    /// The list's name.
    pub list: String,
    /// The segment in words; `None` is everyone on the list.
    pub segment: Option<String>,
    /// How many confirmed people on the list are in the segment.
    pub people: i64,
}

pub async fn audience(state: &AppState, issue: &Issue) -> anyhow::Result<Audience> {
    let list = state
        .store
        .list_by_slug(&issue.list_slug)
        .await?
        .ok_or_else(|| anyhow::anyhow!("The issue's list is missing"))?;
    audience_of(state, list, issue.segment.as_ref()).await
}

pub async fn audience_of(
    state: &AppState,
    list: MailingList,
    segment: Option<&Segment>,
) -> anyhow::Result<Audience> {
    Ok(Audience {
        people: state.store.reach(list.id, segment).await?,
        list: list.name,
        segment: segment.map(Segment::describe),
    })
}

/// When staff want an issue to go.
#[derive(Clone, Copy, Debug)]
pub enum SendAt {
    /// At once: only when asked for in so many words (`"now"`, or the Send now button).
    Now,
    /// At a time to come; one that has passed is refused, never taken to mean now.
    At(DateTime<Utc>),
}

/// Schedules a draft (or moves a scheduled issue), or sends it now. A template that does
/// not render is refused here, not found out halfway through.
#[tracing::instrument(skip_all, fields(issue = %id))]
///
/// The accessibility preflight must find no problems, unless `anyway` names who chose
/// to send it despite them (recorded with the issue).
pub async fn schedule(
    state: &AppState,
    id: Uuid,
    when: SendAt,
    anyway: Option<&str>,
) -> Result<Issue> {
    let now = Utc::now();
    let send_at = match when {
        SendAt::Now => now,
        SendAt::At(at) if at <= now => {
            return Err(ActionError::Invalid(vec![FieldError::new(
                "send_at",
                format!(
                    "That time has passed: {}. Choose a time to come, or send it now.",
                    crate::time::uk_date_time(at)
                ),
            )]));
        }
        SendAt::At(at) => at,
    };
    let (_, report) = sendable(state, id).await?;
    if report.has_problems() && anyway.is_none() {
        return Err(ActionError::Preflight(Box::new(report)));
    }
    let mut scheduled = change_status(
        state,
        id,
        IssueTransition::Schedule(send_at),
        "only a draft or scheduled issue can be scheduled.",
    )
    .await?;
    if let Some(by) = anyway.filter(|_| report.has_problems()) {
        state.store.record_sent_anyway(id, by, now).await?;
        tracing::info!(
            problems = report.problems().count(),
            "Scheduled despite the preflight"
        );
        scheduled = issue(state, id).await?;
    }
    if matches!(when, SendAt::Now) {
        crate::sending::scheduler::start_due(&*state.store, &state.outbox_wake).await?;
        return issue(state, id).await;
    }
    state.scheduler_wake.notify_one();
    Ok(scheduled)
}

/// Deletes a draft. Anything that has gone further is kept, for the record: cancel it,
/// or withdraw a sent issue from the archive.
#[tracing::instrument(skip_all, fields(issue = %id))]
pub async fn delete(state: &AppState, id: Uuid) -> Result<()> {
    match state.store.delete_draft(id).await? {
        DraftDeletion::Deleted => Ok(()),
        DraftDeletion::NotFound => Err(ActionError::NotFound),
        DraftDeletion::Refused(status) => Err(ActionError::Conflict(format!(
            "Only a draft can be deleted, and this issue is {}. {}",
            status.as_str(),
            match status {
                IssueStatus::Sent => "You can withdraw it from the archive instead.",
                IssueStatus::Cancelled => "A cancelled issue is kept, for the record.",
                _ => "You can cancel it instead.",
            }
        ))),
    }
}

/// Takes a sent issue out of the public archive and its feed (`withdraw`), or puts it
/// back; `by` says who, for the record.
#[tracing::instrument(skip_all, fields(issue = %id, withdraw))]
pub async fn change_archive(state: &AppState, id: Uuid, withdraw: bool, by: &str) -> Result<Issue> {
    let change = ArchiveChange {
        id: Uuid::now_v7(),
        issue_id: id,
        withdraw,
        by,
        at: Utc::now(),
    };
    match state.store.change_archive(&change).await? {
        IssueChange::Changed(issue) => Ok(*issue),
        IssueChange::NotFound => Err(ActionError::NotFound),
        IssueChange::Refused(status) => Err(ActionError::Conflict(format!(
            "Only a sent issue is in the archive, and this issue is {}.",
            status.as_str()
        ))),
    }
}

/// Stops an issue for good; copies not yet sent are cancelled.
pub async fn cancel(state: &AppState, id: Uuid) -> Result<Issue> {
    change_status(
        state,
        id,
        IssueTransition::Cancel,
        "only an issue that has not all gone out, and is not cancelled already, can be cancelled.",
    )
    .await
}

/// Stops new copies going out until it resumes.
pub async fn pause(state: &AppState, id: Uuid) -> Result<Issue> {
    change_status(
        state,
        id,
        IssueTransition::Pause,
        "only an issue that is sending can be paused.",
    )
    .await
}

/// Carries on sending, to those not yet sent to.
pub async fn resume(state: &AppState, id: Uuid) -> Result<Issue> {
    let resumed = change_status(
        state,
        id,
        IssueTransition::Resume,
        "only a paused issue can be resumed.",
    )
    .await?;
    state.outbox_wake.notify_one();
    Ok(resumed)
}

#[tracing::instrument(skip_all, fields(issue = %id, status = transition.to().as_str()))]
async fn change_status(
    state: &AppState,
    id: Uuid,
    transition: IssueTransition,
    refusal: &str,
) -> Result<Issue> {
    let to = transition.to();
    match state
        .store
        .transition_issue(id, transition, Utc::now())
        .await?
    {
        IssueChange::Changed(issue) => {
            tracing::info!(issue = %id, status = to.as_str(), "Issue status changed");
            Ok(*issue)
        }
        IssueChange::NotFound => Err(ActionError::NotFound),
        IssueChange::Refused(status) => Err(ActionError::Conflict(format!(
            "This issue is {}: {refusal}",
            status.as_str()
        ))),
    }
}

/// Test copies an hour, at most, for each API token and each staff member: enough to
/// check an issue many times over, and too few to mail strangers with.
pub const TEST_COPIES_PER_HOUR: i64 = 30;

/// Queues one copy marked as a test to `email`, asked for by `requested_by`
/// (`token:NAME` or `staff:ID`).
#[tracing::instrument(skip_all, fields(issue = %id))]
pub async fn send_test(state: &AppState, id: Uuid, email: &str, requested_by: &str) -> Result<()> {
    let email = SubscriberEmail::parse(email)
        .map_err(|message| ActionError::Invalid(vec![FieldError::new("email", message)]))?;
    let issue = issue(state, id).await?;
    compose(state, &issue).await?;
    let now = Utc::now();
    let queued = state
        .store
        .queue_test_copy(
            &NewOutboxMail {
                id: Uuid::now_v7(),
                kind: ISSUE_TEST.into(),
                recipient: email.as_str().to_owned(),
                payload: serde_json::to_string(&IssueTestPayload { issue_id: id })
                    .map_err(anyhow::Error::from)?,
            },
            requested_by,
            TEST_COPIES_PER_HOUR,
            now - chrono::TimeDelta::hours(1),
            now,
        )
        .await?;
    if queued == TestCopy::LimitReached {
        return Err(ActionError::Limited(format!(
            "You have sent {TEST_COPIES_PER_HOUR} test copies in the last hour, the most there may be. Try again later."
        )));
    }
    state.outbox_wake.notify_one();
    Ok(())
}
