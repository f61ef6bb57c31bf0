//! What changes an issue's status from its page: schedule, send now (after one more
//! question that says how many people it goes to), cancel, pause and resume; deleting a
//! draft; withdrawing a sent issue from the archive and putting it back. The rules are
//! in `issue_actions`, shared with the API.

use axum::{
    Extension, Form, Json,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use super::{
    AdminFrame, Staff,
    issues::{PageIssueId, done, page_error, refused},
};
use crate::{
    fields::FieldError,
    store::IssueStats,
    time::from_uk_form,
    web::{
        AppError, AppState,
        issue_actions::{self as actions, ActionError, SendAt},
        pages::render,
    },
};

#[tracing::instrument(skip_all)]
pub async fn schedule(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    PageIssueId(id): PageIssueId,
    Form(form): Form<ScheduleFields>,
) -> Result<Response, AppError> {
    let send_at = match from_uk_form(&form.date, &form.time) {
        Ok(send_at) => send_at,
        Err(message) => {
            let err = ActionError::Invalid(vec![FieldError::new("send_at", message)]);
            return refused(&state, &staff, id, err, None).await;
        }
    };
    let anyway = form.send_anyway.as_ref().map(|_| staff.user.email.as_str());
    match actions::schedule(&state, id, SendAt::At(send_at), anyway).await {
        Ok(_) => Ok(done(id, "scheduled")),
        Err(err) => refused(&state, &staff, id, err, None).await,
    }
}

#[derive(Deserialize)]
pub struct ScheduleFields {
    #[serde(default)]
    date: String,
    #[serde(default)]
    time: String,
    /// Ticked: send it despite the accessibility check's problems.
    send_anyway: Option<String>,
}

#[derive(Deserialize)]
pub struct SendNowFields {
    /// `yes` once the person has seen how many people it goes to.
    #[serde(default)]
    confirm: String,
    send_anyway: Option<String>,
}

#[derive(Serialize)]
struct SendNowView {
    #[serde(flatten)]
    frame: AdminFrame,
    id: uuid::Uuid,
    subject: String,
    list: String,
    /// The segment in words, if it is not everyone on the list.
    segment: Option<String>,
    recipients: i64,
    send_anyway: bool,
}

/// Send now: the first press shows how many people the issue will go to and asks once
/// more; only the answer to that sends it.
#[tracing::instrument(skip_all)]
pub async fn send_now(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    PageIssueId(id): PageIssueId,
    Form(form): Form<SendNowFields>,
) -> Result<Response, AppError> {
    let anyway = form.send_anyway.as_ref().map(|_| staff.user.email.as_str());
    if form.confirm == "yes" {
        return match actions::schedule(&state, id, SendAt::Now, anyway).await {
            Ok(_) => Ok(done(id, "sending")),
            Err(err) => refused(&state, &staff, id, err, None).await,
        };
    }
    let issue = match actions::sendable(&state, id).await {
        // Asked before the question, not after it: the check's problems come first.
        Ok((_, report)) if report.has_problems() && anyway.is_none() => {
            let err = ActionError::Preflight(Box::new(report));
            return refused(&state, &staff, id, err, None).await;
        }
        Ok((issue, _)) => issue,
        Err(err) => return refused(&state, &staff, id, err, None).await,
    };
    let audience = actions::audience(&state, &issue).await?;
    let view = SendNowView {
        frame: AdminFrame::of(&staff),
        id,
        subject: issue.subject,
        list: audience.list,
        segment: audience.segment,
        recipients: audience.people,
        send_anyway: anyway.is_some(),
    };
    let title = format!("Send \u{201c}{}\u{201d} now?", view.subject);
    Ok(render("pages/admin_send_now.html", &title, &view).into_response())
}

pub async fn cancel(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    PageIssueId(id): PageIssueId,
) -> Result<Response, AppError> {
    match actions::cancel(&state, id).await {
        Ok(_) => Ok(done(id, "cancelled")),
        Err(err) => refused(&state, &staff, id, err, None).await,
    }
}

pub async fn pause(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    PageIssueId(id): PageIssueId,
) -> Result<Response, AppError> {
    match actions::pause(&state, id).await {
        Ok(_) => Ok(done(id, "paused")),
        Err(err) => refused(&state, &staff, id, err, None).await,
    }
}

pub async fn resume(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    PageIssueId(id): PageIssueId,
) -> Result<Response, AppError> {
    match actions::resume(&state, id).await {
        Ok(_) => Ok(done(id, "resumed")),
        Err(err) => refused(&state, &staff, id, err, None).await,
    }
}

/// Deletes a draft, and goes back to the list.
pub async fn delete(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    PageIssueId(id): PageIssueId,
) -> Result<Response, AppError> {
    match actions::delete(&state, id).await {
        Ok(()) => Ok(axum::response::Redirect::to("/admin/issues?done=deleted").into_response()),
        Err(err) => refused(&state, &staff, id, err, None).await,
    }
}

pub async fn withdraw(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    PageIssueId(id): PageIssueId,
) -> Result<Response, AppError> {
    match actions::change_archive(&state, id, true, &staff.user.email).await {
        Ok(_) => Ok(done(id, "withdrawn")),
        Err(err) => refused(&state, &staff, id, err, None).await,
    }
}

pub async fn restore(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    PageIssueId(id): PageIssueId,
) -> Result<Response, AppError> {
    match actions::change_archive(&state, id, false, &staff.user.email).await {
        Ok(_) => Ok(done(id, "restored")),
        Err(err) => refused(&state, &staff, id, err, None).await,
    }
}

#[derive(Serialize)]
pub(super) struct Progress {
    status: &'static str,
    #[serde(flatten)]
    stats: IssueStats,
}

/// The numbers the progress bar shows, for the script that keeps it current.
pub(super) async fn progress(
    State(state): State<AppState>,
    PageIssueId(id): PageIssueId,
) -> Result<Json<Progress>, AppError> {
    let issue = actions::issue(&state, id).await.map_err(page_error)?;
    Ok(Json(Progress {
        status: issue.status.as_str(),
        stats: state.store.issue_stats(id).await?,
    }))
}

pub(super) async fn progress_script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("progress.js"),
    )
        .into_response()
}

pub(super) async fn editor_script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("editor.js"),
    )
        .into_response()
}
