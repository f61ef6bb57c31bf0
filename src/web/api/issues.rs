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
    audience::segment::Segment,
    fields::FieldError,
    issues::{Issue, IssueContent, IssueStatus, MAX_BODY, MAX_PREHEADER, MAX_SUBJECT, Withdrawal},
    store::IssueStats,
    web::{AppError, AppState, ErrorBody, issue_actions as actions},
};

/// What the server accepts that the derived schemas cannot say: `send_at` is `"now"` or
/// a date-time; and what the text check and `IssueContent::check` accept: one line has
/// no control character at all; text may have tabs and line breaks; "filled" means more
/// than white space. (The `\uXXXX` escapes are the regular expression's own.)
/// A character of one line: no control character at all.
pub const LINE: &str = r"[^\u0000-\u001F\u007F-\u009F]";
pub const LINE_INK: &str = r"[^\s\u0000-\u001F\u007F-\u009F]";
/// A character of text: tabs and line breaks, but no other control character.
pub const TEXT: &str = r"[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]";
pub const TEXT_INK: &str = r"[^\s\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]";

pub fn rules(spec: &mut serde_json::Value) {
    let filled_line = format!("^{LINE}*{LINE_INK}{LINE}*$");
    let filled_text = format!("^{TEXT}*{TEXT_INK}{TEXT}*$");
    let one_line = format!("^{LINE}*$");
    let fields = [
        ("subject", 1, MAX_SUBJECT, &filled_line),
        ("preheader", 0, MAX_PREHEADER, &one_line),
        ("body_markdown", 1, MAX_BODY, &filled_text),
    ];
    let send_at = &mut spec["components"]["schemas"]["ScheduleBody"]["properties"]["send_at"];
    send_at["anyOf"] = serde_json::json!([
        {"type": "string", "format": "date-time"},
        {"type": "string", "enum": ["now"]},
    ]);
    send_at.as_object_mut().map(|fields| fields.remove("type"));
    // A segment's conditions take no other fields; a locality condition names one or
    // more; a segment has at most `MAX_CONDITIONS` (as `Segment::check` says).
    let schemas = &mut spec["components"]["schemas"];
    if let Some(variants) = schemas["Condition"]["oneOf"].as_array_mut() {
        for variant in variants {
            variant["additionalProperties"] = false.into();
            if variant["properties"]
                .get("value")
                .is_some_and(|v| v["type"] == "array")
            {
                variant["properties"]["value"]["minItems"] = 1.into();
            }
            // A sign-up day is in the years `Segment::check` takes (1900 to 2200).
            if variant["properties"]
                .get("value")
                .is_some_and(|v| v["format"] == "date")
            {
                variant["properties"]["value"]["pattern"] =
                    r"^(19[0-9]{2}|2[01][0-9]{2}|2200)-".into();
            }
        }
    }
    schemas["Segment"]["maxItems"] = crate::audience::segment::MAX_CONDITIONS.into();
    for schema in ["NewIssueBody", "IssueChangesBody"] {
        for (field, min, max, pattern) in fields {
            let property = &mut spec["components"]["schemas"][schema]["properties"][field];
            property["minLength"] = min.into();
            property["maxLength"] = max.into();
            property["pattern"] = pattern.as_str().into();
        }
    }
}

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
    /// Set while a sent issue is kept out of the public archive and feed.
    withdrawn: Option<Withdrawal>,
    /// Why it paused itself (its bounces or complaints passed their limits), while it
    /// is paused; resuming clears it.
    paused_reason: Option<String>,
    /// Who scheduled it despite the accessibility preflight's problems, and when.
    sent_anyway: Option<Withdrawal>,
    /// The part of the list it goes to: every condition must hold. Empty: everyone.
    segment: Segment,
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
            withdrawn: issue.withdrawn,
            paused_reason: issue.paused_reason,
            sent_anyway: issue.sent_anyway,
            segment: issue.segment.unwrap_or_default(),
        }
    }
}

/// A new issue. `template` defaults to `standard`, `list` to `in-partnership`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIssueBody {
    /// One line.
    #[schema(required = true, value_type = String)]
    subject: Option<String>,
    /// One line shown after the subject in an inbox; may be empty.
    #[serde(default)]
    preheader: Option<String>,
    /// Markdown. Links may be `https:`, `http:`, `mailto:` or `tel:`, and every image
    /// needs a description: `![what it shows](address)`.
    #[schema(required = true, value_type = String)]
    body_markdown: Option<String>,
    /// One of the templates (see the enum).
    template: Option<String>,
    /// The slug of one of the lists (see the enum).
    list: Option<String>,
    /// The part of the list it goes to (every condition must hold); left out or empty,
    /// everyone on the list.
    segment: Option<Segment>,
}

/// The fields to change; those left out (or null) stay as they are.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueChangesBody {
    subject: Option<String>,
    preheader: Option<String>,
    body_markdown: Option<String>,
    template: Option<String>,
    /// Empty sends it to everyone on the list again.
    segment: Option<Segment>,
    /// The slug of another list to send it to (see the enum).
    list: Option<String>,
}

/// The `{id}` of an issue; one that is not a UUID names no issue.
pub struct IssueId(Uuid);

impl<S: Send + Sync> FromRequestParts<S> for IssueId {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<Uuid>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| IssueId(id))
            .map_err(|_| actions::ActionError::NotFound.into())
    }
}

#[utoipa::path(
    post,
    path = "/api/issues",
    request_body = NewIssueBody,
    responses(
        (status = 201, description = "Created, as a draft", body = IssueView),
        (status = 422, description = "A field's problem", body = ErrorBody),
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
        segment: body.segment.map(Some),
        list_id: None,
    };
    let issue = actions::create(&state, content, body.list).await?;
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
    )
)]
#[tracing::instrument(skip_all)]
pub async fn get_issue(
    State(state): State<AppState>,
    IssueId(id): IssueId,
) -> Result<Json<IssueView>, AppError> {
    Ok(Json(actions::issue(&state, id).await?.into()))
}

#[utoipa::path(
    patch,
    path = "/api/issues/{id}",
    params(("id" = Uuid, Path, description = "The issue's id")),
    request_body = IssueChangesBody,
    responses(
        (status = 200, description = "Changed", body = IssueView),
        (status = 409, description = "The issue is no longer draft or scheduled", body = ErrorBody),
        (status = 422, description = "A field's problem", body = ErrorBody),
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
        segment: body.segment.map(Some),
        list_id: None,
    };
    Ok(Json(
        actions::update(&state, id, changes, body.list.as_deref())
            .await?
            .into(),
    ))
}

#[utoipa::path(
    delete,
    path = "/api/issues/{id}",
    params(("id" = Uuid, Path, description = "The issue's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "Not a draft: cancel it, or withdraw a sent issue from the archive", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn delete_issue(
    State(state): State<AppState>,
    IssueId(id): IssueId,
) -> Result<StatusCode, AppError> {
    actions::delete(&state, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who is asking, as the record of an archive change shows it.
fn by(caller: &super::ApiCaller) -> String {
    format!("API token \u{201c}{}\u{201d}", caller.0)
}

#[utoipa::path(
    post,
    path = "/api/issues/{id}/withdraw",
    params(("id" = Uuid, Path, description = "The issue's id")),
    responses(
        (status = 200, description = "Out of the public archive and feed (recorded, with who and when)", body = IssueView),
        (status = 409, description = "Not a sent issue", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn withdraw_issue(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<super::ApiCaller>,
    IssueId(id): IssueId,
) -> Result<Json<IssueView>, AppError> {
    let issue = actions::change_archive(&state, id, true, &by(&caller)).await?;
    Ok(Json(issue.into()))
}

#[utoipa::path(
    post,
    path = "/api/issues/{id}/restore",
    params(("id" = Uuid, Path, description = "The issue's id")),
    responses(
        (status = 200, description = "Back in the public archive and feed (recorded)", body = IssueView),
        (status = 409, description = "Not a sent issue", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn restore_issue(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<super::ApiCaller>,
    IssueId(id): IssueId,
) -> Result<Json<IssueView>, AppError> {
    let issue = actions::change_archive(&state, id, false, &by(&caller)).await?;
    Ok(Json(issue.into()))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PreviewParams {
    /// `html` (the default) or `text`: which part of the mail to show.
    #[param(inline)]
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
        (status = 200, description = "The mail as a recipient sees it: its HTML, or with `format=text` its plain text", content(
            (String = "text/html"),
            (String = "text/plain"),
        )),
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
    let issue = actions::issue(&state, id).await?;
    let (html, text) = actions::preview(&state, &issue).await?;
    Ok(match params.format.unwrap_or(PreviewFormat::Html) {
        PreviewFormat::Html => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                // The issue's own images may come from anywhere on the web.
                (header::CONTENT_SECURITY_POLICY, actions::PREVIEW_POLICY),
            ],
            html,
        )
            .into_response(),
        PreviewFormat::Text => {
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
        }
    })
}

/// When to send.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBody {
    /// `"now"` to send at once, or a time to come in RFC 3339 with an offset
    /// (`2027-03-02T09:00:00Z`, or `2027-07-01T09:00:00+01:00` for 9 a.m. in London in
    /// summer). A time that has passed is refused (422): it never means now.
    send_at: String,
    /// Schedule it even though the accessibility preflight found problems (they are
    /// listed in a 422 otherwise). Recorded with the token's name.
    #[serde(default)]
    send_anyway: bool,
}

#[utoipa::path(
    post,
    path = "/api/issues/{id}/schedule",
    params(("id" = Uuid, Path, description = "The issue's id")),
    request_body = ScheduleBody,
    responses(
        (status = 200, description = "Scheduled", body = IssueView),
        (status = 409, description = "Not a draft or scheduled issue", body = ErrorBody),
        (status = 422, description = "A bad time, the template does not render, or the accessibility preflight found problems (each in `errors`, as `send_anyway`)", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn schedule_issue(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<super::ApiCaller>,
    IssueId(id): IssueId,
    ApiJson(body): ApiJson<ScheduleBody>,
) -> Result<Json<IssueView>, AppError> {
    // RFC 3339 only (years 0000 to 9999): chrono's own parsing would also take
    // `+12345-01-01T00:00:00Z`.
    let when = match body.send_at.as_str() {
        "now" => actions::SendAt::Now,
        text => actions::SendAt::At(
            DateTime::parse_from_rfc3339(text)
                .map_err(|_| {
                    AppError::Invalid(vec![FieldError::new(
                        "send_at",
                        "Give \"now\", or a time in RFC 3339 such as 2027-03-02T09:00:00Z.",
                    )])
                })?
                .to_utc(),
        ),
    };
    let anyway = body.send_anyway.then(|| by(&caller));
    Ok(Json(
        actions::schedule(&state, id, when, anyway.as_deref())
            .await?
            .into(),
    ))
}

#[utoipa::path(
    post,
    path = "/api/issues/{id}/cancel",
    params(("id" = Uuid, Path, description = "The issue's id")),
    responses(
        (status = 200, description = "Cancelled for good: no more copies go out", body = IssueView),
        (status = 409, description = "Already sent or cancelled", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn cancel_issue(
    State(state): State<AppState>,
    IssueId(id): IssueId,
) -> Result<Json<IssueView>, AppError> {
    Ok(Json(actions::cancel(&state, id).await?.into()))
}

#[utoipa::path(
    post,
    path = "/api/issues/{id}/pause",
    params(("id" = Uuid, Path, description = "The issue's id")),
    responses(
        (status = 200, description = "Paused: no new copies go out until it resumes", body = IssueView),
        (status = 409, description = "Not sending", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn pause_issue(
    State(state): State<AppState>,
    IssueId(id): IssueId,
) -> Result<Json<IssueView>, AppError> {
    Ok(Json(actions::pause(&state, id).await?.into()))
}

#[utoipa::path(
    post,
    path = "/api/issues/{id}/resume",
    params(("id" = Uuid, Path, description = "The issue's id")),
    responses(
        (status = 200, description = "Sending again, to those not yet sent to", body = IssueView),
        (status = 409, description = "Not paused", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn resume_issue(
    State(state): State<AppState>,
    IssueId(id): IssueId,
) -> Result<Json<IssueView>, AppError> {
    Ok(Json(actions::resume(&state, id).await?.into()))
}

#[utoipa::path(
    get,
    path = "/api/issues/{id}/stats",
    params(("id" = Uuid, Path, description = "The issue's id")),
    responses(
        (status = 200, body = IssueStats),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn issue_stats(
    State(state): State<AppState>,
    IssueId(id): IssueId,
) -> Result<Json<IssueStats>, AppError> {
    actions::issue(&state, id).await?;
    Ok(Json(state.store.issue_stats(id).await?))
}

/// Where to send a test copy.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestBody {
    /// An address with a domain name (not an IP address), in one alphabet.
    #[schema(format = Email, max_length = 254)]
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
        (status = 422, description = "A bad address, or the template does not render", body = ErrorBody),
        (status = 429, description = "Too many test copies from this token in the last hour", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn send_test(
    State(state): State<AppState>,
    axum::Extension(caller): axum::Extension<super::ApiCaller>,
    IssueId(id): IssueId,
    ApiJson(body): ApiJson<TestBody>,
) -> Result<Response, AppError> {
    actions::send_test(&state, id, &body.email, &format!("token:{}", caller.0)).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(QueuedBody {
            status: "queued".into(),
        }),
    )
        .into_response())
}
