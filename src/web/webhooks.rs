//! `/webhooks/...`: one route per relay provider, each believed only with its own
//! signature or credentials (see `inbound::webhooks`), its events taken through the
//! same pipeline as bounce mail. A forged call gets 401 and changes nothing; a provider
//! not set up here gets 404; a failure to store gets 500, so the provider sends again.

use axum::{
    Json,
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{AppError, AppState, ErrorBody};
use crate::inbound::webhooks::{Event, Refusal, mailgun, postmark, sendgrid, ses};

/// A provider's call may be this large: an SES notification with the mail's headers,
/// or a batch of SendGrid events.
const WEBHOOK_LIMIT: usize = 1024 * 1024;

/// `{"taken": 1}`: how many events were stored (an event sent before counts too).
#[derive(Serialize, ToSchema)]
pub struct TakenBody {
    taken: usize,
}

/// The webhook routes, with their part of the API spec.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(ses_webhook))
        .routes(routes!(postmark_webhook))
        .routes(routes!(mailgun_webhook))
        .routes(routes!(sendgrid_webhook))
        .layer(DefaultBodyLimit::max(WEBHOOK_LIMIT))
}

impl From<Refusal> for AppError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::NotConfigured(settings) => AppError::json(
                StatusCode::NOT_FOUND,
                format!("This webhook is not set up here: set {settings}."),
            ),
            Refusal::Forged(why) => {
                tracing::warn!(%why, "A webhook call was refused");
                AppError::json(StatusCode::UNAUTHORIZED, format!("Refused: {why}."))
            }
            Refusal::Unreadable(why) => AppError::json(StatusCode::BAD_REQUEST, why),
        }
    }
}

async fn take(state: &AppState, source: &str, events: Vec<Event>) -> Result<Response, AppError> {
    let intake = crate::inbound::intake::Intake::new(
        state.store.clone(),
        state.secret.clone(),
        state.settings.clone(),
    );
    let mut taken = 0;
    for event in events {
        intake.take_event(source, event).await?;
        taken += 1;
    }
    Ok(Json(TakenBody { taken }).into_response())
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[utoipa::path(
    post,
    path = "/webhooks/ses",
    security(()),
    request_body(content = String, description = "An SNS message (SNS sends it as text/plain): a subscription confirmation, or a notification holding an SES Bounce or Complaint event", content_type = "text/plain"),
    responses(
        (status = 200, description = "Taken (or a subscription confirmed)", body = TakenBody),
        (status = 400, description = "Not an SNS message", body = ErrorBody),
        (status = 401, description = "Not signed by SNS, or from a topic not in SES_SNS_TOPIC_ARNS", body = ErrorBody),
        (status = 404, description = "SES is not set up here (SES_SNS_TOPIC_ARNS)", body = ErrorBody),
        (status = 413, description = "Larger than 1 MiB", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn ses_webhook(State(state): State<AppState>, body: Bytes) -> Result<Response, AppError> {
    match ses::read(&body, &state.settings.webhooks, &state.sns_certificates).await? {
        ses::Sns::Subscribe(url) => {
            ses::fetch(&url, 64 * 1024).await.map_err(|e| {
                AppError::Internal(e.context("Failed to confirm the SNS subscription"))
            })?;
            tracing::info!(topic_url = %url.host_str().unwrap_or_default(), "Confirmed the SNS subscription");
            Ok(Json(TakenBody { taken: 0 }).into_response())
        }
        ses::Sns::Notification(event) => take(&state, "ses", event.into_iter().collect()).await,
        ses::Sns::Other => Ok(Json(TakenBody { taken: 0 }).into_response()),
    }
}

#[utoipa::path(
    post,
    path = "/webhooks/postmark",
    security(()),
    request_body(content = String, description = "A Postmark Bounce or SpamComplaint event, with the webhook's basic auth", content_type = "application/json"),
    responses(
        (status = 200, description = "Taken", body = TakenBody),
        (status = 400, description = "Not a Postmark event", body = ErrorBody),
        (status = 401, description = "The basic auth is not POSTMARK_WEBHOOK_USER and _PASSWORD", body = ErrorBody),
        (status = 404, description = "Postmark is not set up here", body = ErrorBody),
        (status = 413, description = "Larger than 1 MiB", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn postmark_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let authorization = header_text(&headers, header::AUTHORIZATION.as_str());
    let event = postmark::read(authorization, &body, &state.settings.webhooks)?;
    take(&state, "postmark", event.into_iter().collect()).await
}

#[utoipa::path(
    post,
    path = "/webhooks/mailgun",
    security(()),
    request_body(content = String, description = "A Mailgun event (failed, complained), signed with the webhook signing key", content_type = "application/json"),
    responses(
        (status = 200, description = "Taken", body = TakenBody),
        (status = 400, description = "Not a Mailgun event", body = ErrorBody),
        (status = 401, description = "Not signed with MAILGUN_WEBHOOK_SIGNING_KEY, or more than 15 minutes old", body = ErrorBody),
        (status = 404, description = "Mailgun is not set up here", body = ErrorBody),
        (status = 413, description = "Larger than 1 MiB", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn mailgun_webhook(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Response, AppError> {
    let event = mailgun::read(&body, &state.settings.webhooks, now())?;
    take(&state, "mailgun", event.into_iter().collect()).await
}

#[utoipa::path(
    post,
    path = "/webhooks/sendgrid",
    security(()),
    request_body(content = String, description = "A list of SendGrid events, signed (X-Twilio-Email-Event-Webhook-Signature and -Timestamp)", content_type = "application/json"),
    responses(
        (status = 200, description = "Taken: the bounces, blocks and spam reports among the events", body = TakenBody),
        (status = 400, description = "Not a list of SendGrid events", body = ErrorBody),
        (status = 401, description = "Not signed with the key in SENDGRID_WEBHOOK_PUBLIC_KEY, or more than 15 minutes old", body = ErrorBody),
        (status = 404, description = "SendGrid is not set up here", body = ErrorBody),
        (status = 413, description = "Larger than 1 MiB", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn sendgrid_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let events = sendgrid::read(
        header_text(&headers, "x-twilio-email-event-webhook-signature"),
        header_text(&headers, "x-twilio-email-event-webhook-timestamp"),
        &body,
        &state.settings.webhooks,
        now(),
    )?;
    take(&state, "sendgrid", events).await
}
