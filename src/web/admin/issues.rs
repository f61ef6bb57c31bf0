//! The issue pages of the staff UI: the list, the editor with its preview, test
//! copies, scheduling in UK time, pause, resume and cancel, the live progress of a
//! send, and the report once it is done. The rules live in `issue_actions`, shared
//! with the API; this module only turns them into pages.

use std::collections::BTreeMap;

use axum::{
    Extension, Form,
    extract::{FromRequestParts, Path, Query, State},
    http::{StatusCode, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
    routing::{MethodRouter, get, post},
};
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    AdminFrame, Staff,
    issue_form::{IssueForm, Reach, SegmentForm, list_choices, locality_choices},
};
use crate::{
    fields::FieldError,
    issues::{DEFAULT_TEMPLATE, Issue, IssueStatus, IssueTransition, TEMPLATES},
    store::FailedCopy,
    store::IssueStats,
    time::{uk_date_time, uk_form_parts},
    web::{
        AppError, AppState,
        issue_actions::{self as actions, ActionError, PREVIEW_POLICY},
        pages::{MessagePage, render},
    },
};

/// What an issue page may load: its preview in a frame, and the script that keeps
/// the progress bar up to date.
pub(super) const ISSUE_PAGE_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; frame-src 'self'; script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// How many failed copies the report lists.
const FAILURES_SHOWN: u32 = 100;

pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/admin/issues", get(list).post(create)),
        ("/admin/issues/new", get(new_issue)),
        ("/admin/issues/{id}", get(show).post(save)),
        ("/admin/issues/{id}/preview", get(preview)),
        (
            "/admin/issues/{id}/progress",
            get(super::issue_status::progress),
        ),
        ("/admin/issues/{id}/test", post(send_test)),
        (
            "/admin/issues/{id}/schedule",
            post(super::issue_status::schedule),
        ),
        (
            "/admin/issues/{id}/send-now",
            post(super::issue_status::send_now),
        ),
        (
            "/admin/issues/{id}/cancel",
            post(super::issue_status::cancel),
        ),
        ("/admin/issues/{id}/pause", post(super::issue_status::pause)),
        (
            "/admin/issues/{id}/resume",
            post(super::issue_status::resume),
        ),
        (
            "/admin/issues/{id}/delete",
            post(super::issue_status::delete),
        ),
        (
            "/admin/issues/{id}/withdraw",
            post(super::issue_status::withdraw),
        ),
        (
            "/admin/issues/{id}/restore",
            post(super::issue_status::restore),
        ),
        (
            "/admin/progress.js",
            get(super::issue_status::progress_script),
        ),
        ("/admin/editor.js", get(super::issue_status::editor_script)),
        ("/admin/reach", get(super::issue_form::reach)),
    ]
}

/// The `{id}` of an issue page; one that is not a UUID names no issue.
pub struct PageIssueId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for PageIssueId {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<Uuid>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| PageIssueId(id))
            .map_err(|_| not_found())
    }
}

fn not_found() -> AppError {
    AppError::page(
        StatusCode::NOT_FOUND,
        MessagePage::new(
            "No such issue",
            &["There is no issue at this address. It may have been mistyped."],
        ),
    )
}

/// A refusal as a page: missing issues are 404; anything else is shown on the issue.
pub(super) fn page_error(err: ActionError) -> AppError {
    match err {
        ActionError::NotFound => not_found(),
        ActionError::Internal(err) => AppError::Internal(err),
        other => AppError::page(
            StatusCode::CONFLICT,
            MessagePage::new("That could not be done", &[&other.to_string()]),
        ),
    }
}

#[derive(Serialize)]
struct IssueRow {
    id: Uuid,
    subject: String,
    status: &'static str,
    when: String,
    stats: IssueStats,
}

#[derive(Serialize)]
struct ListView {
    #[serde(flatten)]
    frame: AdminFrame,
    issues: Vec<IssueRow>,
    notice: Option<&'static str>,
}

fn when(issue: &Issue) -> String {
    issue
        .finished_at
        .or(issue.send_at)
        .map(uk_date_time)
        .unwrap_or_default()
}

#[tracing::instrument(skip_all)]
async fn list(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Query(query): Query<Done>,
) -> Result<Response, AppError> {
    let mut issues = Vec::new();
    for issue in state.store.issues().await? {
        issues.push(IssueRow {
            id: issue.id,
            subject: issue.subject.clone(),
            status: issue.status.as_str(),
            when: when(&issue),
            stats: state.store.issue_stats(issue.id).await?,
        });
    }
    let view = ListView {
        frame: AdminFrame::of(&staff),
        issues,
        notice: (query.done.as_deref() == Some("deleted")).then_some("The draft is deleted."),
    };
    Ok(render("pages/admin_issues.html", "Issues", &view).into_response())
}

#[derive(Serialize, Default)]
struct ScheduleForm {
    date: String,
    time: String,
}

/// Everything the issue page shows; which parts depends on the issue's status.
#[derive(Serialize)]
struct IssueView {
    #[serde(flatten)]
    frame: AdminFrame,
    /// None for a new issue.
    id: Option<Uuid>,
    status: &'static str,
    editable: bool,
    in_progress: bool,
    /// Its status can change by itself (scheduled, sending, paused): the page's script
    /// follows it.
    watched: bool,
    paused: bool,
    cancellable: bool,
    deletable: bool,
    /// Sent: in the archive, or withdrawn from it.
    archived: bool,
    archive_path: String,
    /// Who withdrew it from the archive, and when.
    withdrawn: Option<(String, String)>,
    when: String,
    form: IssueForm,
    templates: &'static [&'static str],
    errors: BTreeMap<String, String>,
    error_list: Vec<FieldError>,
    /// A refusal, or a template that does not render.
    problem: Option<String>,
    notice: Option<&'static str>,
    text_preview: Option<String>,
    schedule: ScheduleForm,
    test_email: String,
    stats: IssueStats,
    /// Why it paused itself (its bounces or complaints), while paused.
    paused_reason: Option<String>,
    failures: Vec<FailedCopy>,
    /// Each bounce and complaint of its copies, with the evidence.
    returns: Vec<super::issue_report::ReturnLine>,
    /// Unsubscribes through this issue's links, per UK day: (day, that day, in all).
    unsubscribes_by_day: Vec<(String, i64, i64)>,
    /// Images uploaded before, newest first, to pick from.
    library: Vec<super::issue_images::LibraryImage>,
    /// The accessibility check, while the issue can still change.
    preflight: Option<crate::issues::preflight::Report>,
    preflight_problems: usize,
    /// Who sent it despite the check's problems, and when.
    sent_anyway: Option<(String, String)>,
    /// The localities a segment can pick: (slug, name).
    localities: Vec<(&'static str, &'static str)>,
    /// Every list, to choose the one it goes to: (slug, name).
    lists: Vec<(String, String)>,
    /// Who it would reach if it went now (a saved issue that has not gone yet).
    reach: Option<Reach>,
}

impl IssueView {
    fn new(staff: &Staff) -> Self {
        let tomorrow = Utc::now() + Duration::days(1);
        let (date, _) = uk_form_parts(tomorrow);
        IssueView {
            frame: AdminFrame::of(staff),
            id: None,
            status: IssueStatus::Draft.as_str(),
            editable: true,
            in_progress: false,
            watched: false,
            paused: false,
            cancellable: false,
            deletable: false,
            archived: false,
            archive_path: String::new(),
            withdrawn: None,
            when: String::new(),
            form: IssueForm {
                template: DEFAULT_TEMPLATE.into(),
                list: crate::store::DEFAULT_LIST.into(),
                segment: SegmentForm::of(None),
                ..IssueForm::default()
            },
            templates: TEMPLATES,
            errors: BTreeMap::new(),
            error_list: Vec::new(),
            problem: None,
            notice: None,
            text_preview: None,
            schedule: ScheduleForm {
                date,
                time: "09:00".into(),
            },
            test_email: staff.user.email.clone(),
            stats: IssueStats::default(),
            paused_reason: None,
            failures: Vec::new(),
            returns: Vec::new(),
            unsubscribes_by_day: Vec::new(),
            library: Vec::new(),
            preflight: None,
            preflight_problems: 0,
            sent_anyway: None,
            localities: locality_choices(),
            lists: Vec::new(),
            reach: None,
        }
    }

    fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors
            .iter()
            .map(|e| (e.field.to_string(), e.message.clone()))
            .collect();
        self.error_list = errors;
        self
    }
}

/// The page of an existing issue, from what the database holds.
async fn issue_view(state: &AppState, staff: &Staff, issue: &Issue) -> Result<IssueView, AppError> {
    let status = issue.status;
    let mut view = IssueView::new(staff);
    view.id = Some(issue.id);
    view.status = status.as_str();
    view.editable = status.is_editable();
    view.in_progress = matches!(status, IssueStatus::Sending | IssueStatus::Paused);
    view.paused = status == IssueStatus::Paused;
    view.watched = view.in_progress || status == IssueStatus::Scheduled;
    view.cancellable = IssueTransition::Cancel.allowed_from(status);
    view.deletable = status.is_deletable();
    view.archived = status.is_archived();
    view.archive_path = format!("/archive/{}", issue.slug());
    view.withdrawn = issue
        .withdrawn
        .as_ref()
        .map(|w| (w.by.clone(), uk_date_time(w.at)));
    view.when = when(issue);
    view.form = IssueForm::of(issue);
    view.lists = list_choices(state).await?;
    if let Some(send_at) = issue.send_at {
        let (date, time) = uk_form_parts(send_at);
        view.schedule = ScheduleForm { date, time };
    }
    match actions::preview(state, issue).await {
        Ok((html, text)) => {
            view.text_preview = Some(text);
            if view.editable {
                let report = crate::issues::preflight::check(&issue.body_markdown, &html);
                view.preflight_problems = report.problems().count();
                view.preflight = Some(report);
            }
        }
        Err(ActionError::Unrenderable(reason)) => view.problem = Some(reason),
        Err(err) => return Err(page_error(err)),
    }
    view.stats = state.store.issue_stats(issue.id).await?;
    view.failures = state
        .store
        .failed_deliveries(issue.id, FAILURES_SHOWN)
        .await?;
    view.paused_reason = issue.paused_reason.clone();
    if view.editable {
        view.library = super::issue_images::library(state).await?;
        view.reach = Some(Reach::of(&actions::audience(state, issue).await?));
    }
    view.sent_anyway = issue
        .sent_anyway
        .as_ref()
        .map(|s| (s.by.clone(), uk_date_time(s.at)));
    view.returns = super::issue_report::returns(state, issue.id).await?;
    view.unsubscribes_by_day =
        super::issue_report::by_uk_day(&state.store.issue_unsubscribe_times(issue.id).await?);
    Ok(view)
}

fn issue_page(status: StatusCode, view: &IssueView) -> Response {
    let title = match (
        &view.id,
        view.error_list.is_empty() && view.problem.is_none(),
    ) {
        (None, true) => "New issue".to_owned(),
        (None, false) => "Error: New issue".to_owned(),
        (Some(_), true) => view.form.subject.clone(),
        (Some(_), false) => format!("Error: {}", view.form.subject),
    };
    (
        status,
        [(header::CONTENT_SECURITY_POLICY, ISSUE_PAGE_POLICY)],
        render("pages/admin_issue.html", &title, view),
    )
        .into_response()
}

async fn new_issue(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
) -> Result<Response, AppError> {
    let mut view = IssueView::new(&staff);
    view.lists = list_choices(&state).await?;
    Ok(issue_page(StatusCode::OK, &view))
}

#[tracing::instrument(skip_all)]
async fn create(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let form = IssueForm::read(&pairs);
    let created = match form.content() {
        Ok(content) => actions::create(&state, content, form.list().map(str::to_owned)).await,
        Err(err) => Err(err),
    };
    match created {
        Ok(issue) => Ok(done(issue.id, "saved")),
        Err(ActionError::Invalid(errors)) => {
            let view = IssueView {
                form,
                lists: list_choices(&state).await?,
                ..IssueView::new(&staff)
            }
            .with_errors(errors);
            Ok(issue_page(StatusCode::UNPROCESSABLE_ENTITY, &view))
        }
        Err(err) => Err(page_error(err)),
    }
}

/// Back to the issue's page, saying what was done.
pub(super) fn done(id: Uuid, what: &str) -> Response {
    Redirect::to(&format!("/admin/issues/{id}?done={what}")).into_response()
}

#[derive(Deserialize)]
struct Done {
    done: Option<String>,
}

/// What was just done, said only while it is still true: a "Scheduled." notice left in
/// the address must not stay once the issue has gone out.
fn notice(done: Option<&str>, issue: &Issue) -> Option<&'static str> {
    use IssueStatus::*;
    let status = issue.status;
    let (words, still_true) = match done? {
        "saved" => ("Saved.", true),
        "test" => ("A test copy is on its way to you.", true),
        "image" => ("The image is added at the end of the body.", true),
        "scheduled" => ("Scheduled.", status == Scheduled),
        "sending" => ("Sending now.", status == Sending),
        "cancelled" => (
            "Cancelled: no more copies will go out.",
            status == Cancelled,
        ),
        "paused" => (
            "Paused: no more copies go out until you resume.",
            status == Paused,
        ),
        "resumed" => ("Sending again.", status == Sending),
        "withdrawn" => ("Withdrawn from the archive.", issue.withdrawn.is_some()),
        "restored" => (
            "Back in the archive.",
            status == Sent && issue.withdrawn.is_none(),
        ),
        _ => return None,
    };
    still_true.then_some(words)
}

#[tracing::instrument(skip_all)]
async fn show(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    PageIssueId(id): PageIssueId,
    Query(query): Query<Done>,
) -> Result<Response, AppError> {
    let issue = actions::issue(&state, id).await.map_err(page_error)?;
    let mut view = issue_view(&state, &staff, &issue).await?;
    view.notice = notice(query.done.as_deref(), &issue);
    Ok(issue_page(StatusCode::OK, &view))
}

/// Shows the issue page again with what went wrong, and the fields as typed.
pub(super) async fn refused(
    state: &AppState,
    staff: &Staff,
    id: Uuid,
    err: ActionError,
    form: Option<IssueForm>,
) -> Result<Response, AppError> {
    let issue = actions::issue(state, id).await.map_err(page_error)?;
    let mut view = issue_view(state, staff, &issue).await?;
    if let Some(form) = form {
        view.form = form;
    }
    let status = match err {
        ActionError::Invalid(errors) => {
            return Ok(issue_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                &view.with_errors(errors),
            ));
        }
        ActionError::Conflict(reason) => {
            view.problem = Some(reason);
            StatusCode::CONFLICT
        }
        ActionError::Unrenderable(reason) => {
            view.problem = Some(reason);
            StatusCode::UNPROCESSABLE_ENTITY
        }
        ActionError::Limited(reason) => {
            view.problem = Some(reason);
            StatusCode::TOO_MANY_REQUESTS
        }
        err @ ActionError::Preflight(_) => {
            view.problem = Some(err.to_string());
            StatusCode::UNPROCESSABLE_ENTITY
        }
        other => return Err(page_error(other)),
    };
    Ok(issue_page(status, &view))
}

#[tracing::instrument(skip_all)]
async fn save(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    PageIssueId(id): PageIssueId,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let form = IssueForm::read(&pairs);
    let saved = match form.content() {
        Ok(content) => actions::update(&state, id, content, form.list()).await,
        Err(err) => Err(err),
    };
    match saved {
        Ok(issue) => Ok(done(issue.id, "saved")),
        Err(err) => refused(&state, &staff, id, err, Some(form)).await,
    }
}

/// The HTML mail as a recipient sees it, for the editor's frame.
async fn preview(
    State(state): State<AppState>,
    PageIssueId(id): PageIssueId,
) -> Result<Response, AppError> {
    let issue = actions::issue(&state, id).await.map_err(page_error)?;
    let (html, _) = actions::preview(&state, &issue).await.map_err(page_error)?;
    Ok(framed_preview(html))
}

/// A mail's HTML for a frame in one of our pages: nothing in it runs.
pub(super) fn framed_preview(html: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned()),
            (
                header::CONTENT_SECURITY_POLICY,
                PREVIEW_POLICY.replace("frame-ancestors 'none'", "frame-ancestors 'self'"),
            ),
            (header::X_FRAME_OPTIONS, "SAMEORIGIN".to_owned()),
        ],
        html,
    )
        .into_response()
}

#[derive(Deserialize)]
struct TestForm {
    #[serde(default)]
    email: String,
}

#[tracing::instrument(skip_all)]
async fn send_test(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    PageIssueId(id): PageIssueId,
    Form(form): Form<TestForm>,
) -> Result<Response, AppError> {
    let requested_by = format!("staff:{}", staff.user.id);
    match actions::send_test(&state, id, &form.email, &requested_by).await {
        Ok(()) => Ok(done(id, "test")),
        Err(err) => refused(&state, &staff, id, err, None).await,
    }
}
