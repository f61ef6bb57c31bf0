//! The staff JSON API under `/api`: every route needs `Authorization: Bearer <token>`
//! (tokens come from `newsletter admin create-token`). Routes are registered through
//! `OpenApiRouter`, which builds `GET /api/openapi.json` from the same handlers, so
//! the spec cannot drift from the code.

mod issues;

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, FromRequest, Request, State, rejection::JsonRejection},
    http::{StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::de::DeserializeOwned;
use utoipa::{
    Modify, OpenApi,
    openapi::security::{Http, HttpAuthScheme, SecurityScheme},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{AppError, AppState};
use crate::tokens::sha256;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "newsletter staff API",
        description = "Write, preview, schedule and follow newsletter issues. Every route needs a bearer token from `newsletter admin create-token NAME`."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
            );
    }
}

/// The API routes, and the OpenAPI document that describes them.
pub fn router(state: AppState) -> Router<AppState> {
    let (router, spec) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(issues::create_issue, issues::list_issues))
        .routes(routes!(issues::get_issue, issues::update_issue))
        .routes(routes!(issues::preview_issue))
        .routes(routes!(issues::schedule_issue))
        .routes(routes!(issues::cancel_issue))
        .routes(routes!(issues::pause_issue))
        .routes(routes!(issues::resume_issue))
        .routes(routes!(issues::issue_stats))
        .routes(routes!(issues::send_test))
        .split_for_parts();
    let spec = spec
        .to_json()
        .expect("the OpenAPI document serialises to JSON");
    router
        .route(
            "/api/openapi.json",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], spec) }),
        )
        .route_layer(middleware::from_fn_with_state(state, require_token))
        // An issue's body may hold 200 KB of Markdown, written as JSON.
        .layer(DefaultBodyLimit::max(API_BODY_LIMIT))
}

/// The largest JSON body the API reads: an issue at its largest, escaped, with room.
pub const API_BODY_LIMIT: usize = 512 * 1024;

/// The name of the API token a request came with.
#[derive(Clone, Debug)]
pub struct ApiCaller(pub String);

/// Lets a request through only with a live API token, and says whose it is.
async fn require_token(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, AppError> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        // The scheme's name is case-insensitive (RFC 9110): `bearer` works too.
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(AppError::Unauthorized(
            "Send an API token as: Authorization: Bearer <token>.",
        ));
    };
    match state
        .store
        .api_token_name(&sha256(token.as_bytes()))
        .await?
    {
        Some(name) => {
            tracing::debug!(token = %name, "API request");
            req.extensions_mut().insert(ApiCaller(name));
            Ok(next.run(req).await)
        }
        None => Err(AppError::Unauthorized(
            "That API token is not valid: it may have been revoked.",
        )),
    }
}

/// `Json<T>` whose rejections are `AppError`s: 400 for broken JSON, 415 without a JSON
/// content type, 422 for a body of the wrong shape.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Json::<T>::from_request(req, state)
            .await
            .map(|Json(value)| ApiJson(value))
            .map_err(|rejection: JsonRejection| {
                AppError::json(rejection.status(), rejection.body_text())
            })
    }
}

/// 201 with the new resource and where it lives.
pub fn created(location: String, body: impl serde::Serialize) -> Response {
    (
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(body),
    )
        .into_response()
}
