//! The one error type at the HTTP edge. A person's mistake is a 4xx that says what to do
//! (as a page, or as JSON for JSON clients); an internal fault is a 500 whose cause is
//! logged and never shown. Every error in JSON has one shape, `ErrorBody`.

use axum::{
    Json,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

use super::pages::{MessagePage, render_page};
use crate::fields::FieldError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Answered with a page that explains the problem.
    #[error("{}", page.title)]
    Page {
        status: StatusCode,
        page: MessagePage,
    },
    /// Answered with an `ErrorBody` that names no field.
    #[error("{message}")]
    Json { status: StatusCode, message: String },
    /// 422 with an `ErrorBody` that names each field's problem.
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// 401 with `WWW-Authenticate: Bearer` and an `ErrorBody`.
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
                (status, Json(ErrorBody::new(message))).into_response()
            }
            AppError::Invalid(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(ErrorBody::invalid(errors)),
            )
                .into_response(),
            AppError::Unauthorized(message) => (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(ErrorBody::new(message)),
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

/// Every error a JSON client is given, whatever its status: a sentence for a person, and
/// each field's problem when the problem lies with fields.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
#[schema(example = json!({
    "error": "Give the issue a subject.",
    "errors": [{"field": "subject", "message": "Give the issue a subject."}]
}))]
pub struct ErrorBody {
    /// What went wrong and what to do about it.
    pub error: String,
    /// Each field's problem, in the order of the fields; empty when no one field is at
    /// fault.
    pub errors: Vec<FieldProblem>,
}

/// One field's problem.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct FieldProblem {
    /// The field's name, or its path in a JSON body (such as `list.tags[1]`).
    pub field: String,
    pub message: String,
}

impl ErrorBody {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            error: message.into(),
            errors: Vec::new(),
        }
    }

    /// The fields' problems, and all of them in one sentence.
    fn invalid(errors: Vec<FieldError>) -> Self {
        let error = errors
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        Self {
            error,
            errors: errors
                .into_iter()
                .map(|e| FieldProblem {
                    field: e.field.into_owned(),
                    message: e.message,
                })
                .collect(),
        }
    }
}
