//! `/api/issues`: create, list, read and change newsletter issues.

use axum::{
    Json,
    extract::{FromRequestParts, Path, Query, State, rejection::QueryRejection},
    http::{StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{ApiJson, created};
use crate::{
    domain::SubscriberEmail,
    issue_mail::ComposedIssue,
    issues::{Issue, IssueChange, IssueContent, IssueStatus, NewIssue},
    outbox::{ISSUE_TEST, IssueTestPayload},
    store::{DEFAULT_LIST, IssueStats, NewOutboxMail},
    web::{AppError, AppState},
};

/// An issue as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct IssueView {
    id: Uuid,
    /// The slug of the list it goes to.
    list: String,
    subject: String,
    preheader: String,
    body_markdown: String,
    template: String,
    status: IssueStatus,
    send_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Issue> for IssueView {
    fn from(issue: Issue) -> Self {
        Self {
            id: issue.id,
            list: issue.list_slug,
            subject: issue.subject,
            preheader: issue.preheader,
            body_markdown: issue.body_markdown,
            template: issue.template,
            status: issue.status,
            send_at: issue.send_at,
            created_at: issue.created_at,
            updated_at: issue.updated_at,
        }
    }
}

/// A new issue. `template` defaults to `standard`, `list` to `in-partnership`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIssueBody {
    subject: Option<String>,
    #[serde(default)]
    preheader: Option<String>,
    body_markdown: Option<String>,
    template: Option<String>,
    list: Option<String>,
}

/// The fields to change; those left out stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueChangesBody {
    subject: Option<String>,
    preheader: Option<String>,
    body_markdown: Option<String>,
    template: Option<String>,
}

/// `{"error": "..."}`
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    error: String,
}

/// `{"status": "invalid", "errors": [{"field": "...", "message": "..."}]}`
#[derive(Serialize, ToSchema)]
pub struct InvalidBody {
    status: String,
    errors: Vec<FieldErrorBody>,
}

#[derive(Serialize, ToSchema)]
pub struct FieldErrorBody {
    field: String,
    message: String,
}

/// The `{id}` of an issue; one that is not a UUID names no issue.
pub struct IssueId(Uuid);

impl<S: Send + Sync> FromRequestParts<S> for IssueId {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<Uuid>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| IssueId(id))
            .map_err(|_| not_found())
    }
}

fn not_found() -> AppError {
    AppError::json(StatusCode::NOT_FOUND, "There is no issue with that id.")
}

#[utoipa::path(
    post,
    path = "/api/issues",
    request_body = NewIssueBody,
    responses(
        (status = 201, description = "Created, as a draft", body = IssueView),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 422, description = "A field's problem", body = InvalidBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn create_issue(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewIssueBody>,
) -> Result<Response, AppError> {
    let content = IssueContent {
        subject: body.subject,
        preheader: body.preheader,
        body_markdown: body.body_markdown,
        template: body.template,
    }
    .check(true);
    let slug = body.list.unwrap_or_else(|| DEFAULT_LIST.to_owned());
    let list = state.store.list_by_slug(&slug).await?;
    let (content, list) = match (content, list) {
        (Ok(content), Some(list)) => (content, list),
        (content, list) => {
            let mut errors = content.err().unwrap_or_default();
            if list.is_none() {
                errors.push(crate::domain::FieldError {
                    field: "list",
                    message: format!("There is no list called {slug:?}."),
                });
            }
            return Err(AppError::Invalid(errors));
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
    Ok(created(
        format!("/api/issues/{}", issue.id),
        IssueView::from(issue),
    ))
}

#[utoipa::path(
    get,
    path = "/api/issues",
    responses(
        (status = 200, description = "Every issue, newest first", body = Vec<IssueView>),
        (status = 401, description = "No valid API token", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn list_issues(State(state): State<AppState>) -> Result<Json<Vec<IssueView>>, AppError> {
    let issues = state.store.issues().await?;
    Ok(Json(issues.into_iter().map(IssueView::from).collect()))
}

#[utoipa::path(
    get,
    path = "/api/issues/{id}",
    params(("id" = Uuid, Path, description = "The issue's id")),
    responses(
        (status = 200, body = IssueView),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 404, description = "No such issue", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn get_issue(
    State(state): State<AppState>,
    IssueId(id): IssueId,
) -> Result<Json<IssueView>, AppError> {
    let issue = state.store.issue(id).await?.ok_or_else(not_found)?;
    Ok(Json(issue.into()))
}

#[utoipa::path(
    patch,
    path = "/api/issues/{id}",
    params(("id" = Uuid, Path, description = "The issue's id")),
    request_body = IssueChangesBody,
    responses(
        (status = 200, description = "Changed", body = IssueView),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 404, description = "No such issue", body = ErrorBody),
        (status = 409, description = "The issue is no longer draft or scheduled", body = ErrorBody),
        (status = 422, description = "A field's problem", body = InvalidBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn update_issue(
    State(state): State<AppState>,
    IssueId(id): IssueId,
    ApiJson(body): ApiJson<IssueChangesBody>,
) -> Result<Json<IssueView>, AppError> {
    let changes = IssueContent {
        subject: body.subject,
        preheader: body.preheader,
        body_markdown: body.body_markdown,
        template: body.template,
    }
    .check(false)
    .map_err(AppError::Invalid)?;
    match state.store.update_issue(id, &changes, Utc::now()).await? {
        IssueChange::Changed(issue) => Ok(Json(issue.into())),
        IssueChange::NotFound => Err(not_found()),
        IssueChange::Refused(status) => Err(AppError::json(
            StatusCode::CONFLICT,
            format!(
                "This issue is {}: only a draft or scheduled issue can be changed.",
                status.as_str()
            ),
        )),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PreviewParams {
    /// `html` (the default) or `text`: which part of the mail to show.
    format: Option<PreviewFormat>,
}

#[derive(Deserialize, ToSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PreviewFormat {
    Html,
    Text,
}

#[utoipa::path(
    get,
    path = "/api/issues/{id}/preview",
    params(("id" = Uuid, Path, description = "The issue's id"), PreviewParams),
    responses(
        (status = 200, description = "The mail as a recipient sees it", content_type = "text/html", body = String),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 404, description = "No such issue", body = ErrorBody),
        (status = 422, description = "Unknown format, or the template does not render", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn preview_issue(
    State(state): State<AppState>,
    IssueId(id): IssueId,
    params: Result<Query<PreviewParams>, QueryRejection>,
) -> Result<Response, AppError> {
    let Query(params) = params.map_err(|_| {
        AppError::json(
            StatusCode::UNPROCESSABLE_ENTITY,
            "format must be html or text.",
        )
    })?;
    let issue = state.store.issue(id).await?.ok_or_else(not_found)?;
    let list = state
        .store
        .list_by_slug(&issue.list_slug)
        .await?
        .ok_or_else(|| anyhow::anyhow!("The issue's list is missing"))?;
    let composed = ComposedIssue::compose(&issue, &list.name)
        .map_err(|e| AppError::json(StatusCode::UNPROCESSABLE_ENTITY, format!("{e:#}")))?;
    // A preview's link leads nowhere: it names no subscriber.
    let (html, text) = composed.personalise(&format!(
        "{}/unsubscribe?token=preview",
        state.settings.public_url
    ));
    Ok(match params.format.unwrap_or(PreviewFormat::Html) {
        PreviewFormat::Html => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                // The issue's own images may come from anywhere on the web.
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; frame-ancestors 'none'",
                ),
            ],
            html,
        )
            .into_response(),
        PreviewFormat::Text => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response(),
    })
}

/// When to send: RFC 3339 with an offset (`2026-12-01T09:00:00Z`, or
/// `2026-07-01T09:00:00+01:00` for 9 a.m. in London in summer). A time in the past
/// means now.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBody {
    send_at: DateTime<chrono::FixedOffset>,
}

/// Applies a status change and answers 200 with the issue, 404, or 409 with why not.
async fn change_status(
    state: &AppState,
    id: Uuid,
    from: &[IssueStatus],
    to: IssueStatus,
    send_at: Option<DateTime<Utc>>,
    refusal: &str,
) -> Result<Json<IssueView>, AppError> {
    match state
        .store
        .transition_issue(id, from, to, send_at, Utc::now())
        .await?
    {
        IssueChange::Changed(issue) => {
            tracing::info!(issue = %id, status = to.as_str(), "Issue status changed");
            Ok(Json(issue.into()))
        }
        IssueChange::NotFound => Err(not_found()),
        IssueChange::Refused(status) => Err(AppError::json(
            StatusCode::CONFLICT,
            format!("This issue is {}: {refusal}", status.as_str()),
        )),
    }
}

#[utoipa::path(
    post,
    path = "/api/issues/{id}/schedule",
    params(("id" = Uuid, Path, description = "The issue's id")),
    request_body = ScheduleBody,
    responses(
        (status = 200, description = "Scheduled", body = IssueView),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 404, description = "No such issue", body = ErrorBody),
        (status = 409, description = "Not a draft or scheduled issue", body = ErrorBody),
        (status = 422, description = "A bad time, or the template does not render", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn schedule_issue(
    State(state): State<AppState>,
    IssueId(id): IssueId,
    ApiJson(body): ApiJson<ScheduleBody>,
) -> Result<Json<IssueView>, AppError> {
    let issue = state.store.issue(id).await?.ok_or_else(not_found)?;
    let list = state
        .store
        .list_by_slug(&issue.list_slug)
        .await?
        .ok_or_else(|| anyhow::anyhow!("The issue's list is missing"))?;
    // Found out now, not halfway through sending.
    ComposedIssue::compose(&issue, &list.name)
        .map_err(|e| AppError::json(StatusCode::UNPROCESSABLE_ENTITY, format!("{e:#}")))?;
    let send_at = body.send_at.to_utc().max(Utc::now());
    let scheduled = change_status(
        &state,
        id,
        &[IssueStatus::Draft, IssueStatus::Scheduled],
        IssueStatus::Scheduled,
        Some(send_at),
        "only a draft or scheduled issue can be scheduled.",
    )
    .await?;
    state.scheduler_wake.notify_one();
    Ok(scheduled)
}

#[utoipa::path(
    post,
    path = "/api/issues/{id}/cancel",
    params(("id" = Uuid, Path, description = "The issue's id")),
    responses(
        (status = 200, description = "Cancelled for good: no more copies go out", body = IssueView),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 404, description = "No such issue", body = ErrorBody),
        (status = 409, description = "Already sent or cancelled", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn cancel_issue(
    State(state): State<AppState>,
    IssueId(id): IssueId,
) -> Result<Json<IssueView>, AppError> {
    change_status(
        &state,
        id,
        &[
            IssueStatus::Draft,
            IssueStatus::Scheduled,
            IssueStatus::Sending,
            IssueStatus::Paused,
        ],
        IssueStatus::Cancelled,
        None,
        "only an issue not yet sent can be cancelled.",
    )
    .await
}

#[utoipa::path(
    post,
    path = "/api/issues/{id}/pause",
    params(("id" = Uuid, Path, description = "The issue's id")),
    responses(
        (status = 200, description = "Paused: no new copies go out until it resumes", body = IssueView),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 404, description = "No such issue", body = ErrorBody),
        (status = 409, description = "Not sending", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn pause_issue(
    State(state): State<AppState>,
    IssueId(id): IssueId,
) -> Result<Json<IssueView>, AppError> {
    change_status(
        &state,
        id,
        &[IssueStatus::Sending],
        IssueStatus::Paused,
        None,
        "only an issue that is sending can be paused.",
    )
    .await
}

#[utoipa::path(
    post,
    path = "/api/issues/{id}/resume",
    params(("id" = Uuid, Path, description = "The issue's id")),
    responses(
        (status = 200, description = "Sending again, to those not yet sent to", body = IssueView),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 404, description = "No such issue", body = ErrorBody),
        (status = 409, description = "Not paused", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn resume_issue(
    State(state): State<AppState>,
    IssueId(id): IssueId,
) -> Result<Json<IssueView>, AppError> {
    let resumed = change_status(
        &state,
        id,
        &[IssueStatus::Paused],
        IssueStatus::Sending,
        None,
        "only a paused issue can be resumed.",
    )
    .await?;
    state.outbox_wake.notify_one();
    Ok(resumed)
}

#[utoipa::path(
    get,
    path = "/api/issues/{id}/stats",
    params(("id" = Uuid, Path, description = "The issue's id")),
    responses(
        (status = 200, body = IssueStats),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 404, description = "No such issue", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn issue_stats(
    State(state): State<AppState>,
    IssueId(id): IssueId,
) -> Result<Json<IssueStats>, AppError> {
    state.store.issue(id).await?.ok_or_else(not_found)?;
    Ok(Json(state.store.issue_stats(id).await?))
}

/// Where to send a test copy.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestBody {
    email: String,
}

/// `{"status": "queued"}`
#[derive(Serialize, ToSchema)]
pub struct QueuedBody {
    status: String,
}

#[utoipa::path(
    post,
    path = "/api/issues/{id}/test",
    params(("id" = Uuid, Path, description = "The issue's id")),
    request_body = TestBody,
    responses(
        (status = 202, description = "A copy marked [Test] is on its way", body = QueuedBody),
        (status = 401, description = "No valid API token", body = ErrorBody),
        (status = 404, description = "No such issue", body = ErrorBody),
        (status = 422, description = "A bad address, or the template does not render", body = InvalidBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn send_test(
    State(state): State<AppState>,
    IssueId(id): IssueId,
    ApiJson(body): ApiJson<TestBody>,
) -> Result<Response, AppError> {
    let email = SubscriberEmail::parse(&body.email).map_err(|message| {
        AppError::Invalid(vec![crate::domain::FieldError {
            field: "email",
            message,
        }])
    })?;
    let issue = state.store.issue(id).await?.ok_or_else(not_found)?;
    let list = state
        .store
        .list_by_slug(&issue.list_slug)
        .await?
        .ok_or_else(|| anyhow::anyhow!("The issue's list is missing"))?;
    ComposedIssue::compose(&issue, &list.name)
        .map_err(|e| AppError::json(StatusCode::UNPROCESSABLE_ENTITY, format!("{e:#}")))?;
    state
        .store
        .queue_mail(
            &NewOutboxMail {
                id: Uuid::now_v7(),
                kind: ISSUE_TEST.into(),
                recipient: email.as_str().to_owned(),
                payload: serde_json::to_string(&IssueTestPayload { issue_id: id })
                    .map_err(anyhow::Error::from)?,
                sealed_secret: None,
            },
            Utc::now(),
        )
        .await?;
    state.outbox_wake.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        Json(QueuedBody {
            status: "queued".into(),
        }),
    )
        .into_response())
}
