//! The one error type at the HTTP edge. A person's mistake is a 4xx that says what to do
//! (as a page, or as JSON for JSON clients); an internal fault is a 500 whose cause is
//! logged and never shown.

use axum::{
    Json,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::pages::{MessagePage, render_page};
use crate::domain::FieldError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Answered with a page that explains the problem.
    #[error("{}", page.title)]
    Page {
        status: StatusCode,
        page: MessagePage,
    },
    /// Answered with `{"error": message}`.
    #[error("{message}")]
    Json { status: StatusCode, message: String },
    /// 422 with every field's problem: `{"status": "invalid", "errors": [...]}`.
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// 401 with `WWW-Authenticate: Bearer`.
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    pub fn page(status: StatusCode, page: MessagePage) -> Self {
        AppError::Page { status, page }
    }

    pub fn json(status: StatusCode, message: impl Into<String>) -> Self {
        AppError::Json {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::Page { status, page } => (status, render_page(&page)).into_response(),
            AppError::Json { status, message } => {
                (status, Json(json!({ "error": message }))).into_response()
            }
            AppError::Invalid(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({ "status": "invalid", "errors": errors })),
            )
                .into_response(),
            AppError::Unauthorized(message) => (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(json!({ "error": message })),
            )
                .into_response(),
            AppError::Internal(err) => {
                tracing::error!(error = format!("{err:#}"), "Internal error");
                let page = MessagePage::new(
                    "Sorry, something went wrong",
                    &["We could not finish that just now. Please try again in a few minutes."],
                );
                (StatusCode::INTERNAL_SERVER_ERROR, render_page(&page)).into_response()
            }
        }
    }
}
