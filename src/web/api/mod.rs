//! The staff JSON API under `/api`: every route needs `Authorization: Bearer <token>`
//! (tokens come from `newsletter admin create-token`). Routes are registered through
//! `OpenApiRouter`, which builds `GET /api/openapi.json` from the same handlers, so
//! the spec cannot drift from the code. What every route can answer (401, and 400, 404,
//! 413, 415, 422 where they apply) is added to the spec in one place, `common_answers`,
//! and every error, axum's own included, is an `ErrorBody`.

mod issues;
mod lists;
mod returns;
mod subscribers;

use axum::{
    Extension, Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, FromRequest, Request, State, rejection::JsonRejection},
    http::{StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{Http, HttpAuthScheme, SecurityScheme},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use std::sync::Arc;

use super::{AppError, AppState, ErrorBody, STAFF_BODY_LIMIT};
use crate::{issues::TEMPLATES, tokens::sha256};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "newsletter staff API",
        description = "Write, preview, schedule and follow newsletter issues; find, add, change, export, import and erase subscribers; keep the lists; read what comes back (bounces, complaints) and keep the suppression list. Every route needs a bearer token from `newsletter admin create-token NAME`."
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
        .routes(routes!(
            issues::get_issue,
            issues::update_issue,
            issues::delete_issue
        ))
        .routes(routes!(issues::withdraw_issue))
        .routes(routes!(issues::restore_issue))
        .routes(routes!(issues::preview_issue))
        .routes(routes!(issues::schedule_issue))
        .routes(routes!(issues::cancel_issue))
        .routes(routes!(issues::pause_issue))
        .routes(routes!(issues::resume_issue))
        .routes(routes!(issues::issue_stats))
        .routes(routes!(issues::send_test))
        .routes(routes!(returns::list_bounces))
        .routes(routes!(
            returns::list_suppressions,
            returns::add_suppression
        ))
        .routes(routes!(returns::lift_suppression))
        .routes(routes!(returns::import_suppressions))
        .routes(routes!(
            subscribers::list_subscribers,
            subscribers::add_subscriber
        ))
        .routes(routes!(
            subscribers::get_subscriber,
            subscribers::update_subscriber,
            subscribers::erase_subscriber
        ))
        .routes(routes!(lists::export_subscribers))
        .routes(routes!(lists::import_subscribers))
        .routes(routes!(lists::list_lists, lists::create_list))
        .routes(routes!(lists::update_list))
        .split_for_parts();
    // The providers' webhooks are in the spec, but not behind the token: each checks
    // its provider's own signature.
    let (webhooks, webhook_spec) = super::webhooks::routes().split_for_parts();
    let mut spec = spec;
    spec.merge(webhook_spec);
    let spec = finished(spec);
    router
        .route("/api/openapi.json", get(openapi_json))
        .layer(Extension(Arc::new(spec)))
        .route_layer(middleware::from_fn_with_state(state, require_token))
        .layer(DefaultBodyLimit::max(STAFF_BODY_LIMIT))
        .merge(webhooks)
        .layer(middleware::from_fn(errors_as_json))
}

/// The spec, with the lists there are now as the values `list` may take.
async fn openapi_json(
    State(state): State<AppState>,
    Extension(spec): Extension<Arc<Value>>,
) -> Result<Json<Value>, AppError> {
    let mut spec = Value::clone(&spec);
    let slugs = or_null(state.store.lists().await?.into_iter().map(|l| l.slug));
    let schemas = &mut spec["components"]["schemas"];
    for schema in [
        "NewIssueBody",
        "IssueChangesBody",
        "NewSubscriberBody",
        "SubscriberImportBody",
    ] {
        schemas[schema]["properties"]["list"]["enum"] = slugs.clone();
    }
    let mut listed = slugs;
    listed.as_array_mut().map(Vec::pop);
    schemas["SubscriberChangesBody"]["properties"]["leave"]["items"]["enum"] = listed;
    Ok(Json(spec))
}

/// The values a field may take; `null`, as the field may be, means the default.
fn or_null<T: serde::Serialize>(values: impl IntoIterator<Item = T>) -> Value {
    let mut values: Vec<Value> = values.into_iter().map(|v| json!(v)).collect();
    values.push(Value::Null);
    Value::Array(values)
}

/// The generated spec as served: the answers every route can give, the templates there
/// are, and links from a new issue to what can be done with it (for clients that
/// follow links, such as schemathesis's stateful tests).
fn finished(spec: utoipa::openapi::OpenApi) -> Value {
    let mut spec = serde_json::to_value(spec).expect("the OpenAPI document is JSON");
    issues::rules(&mut spec);
    returns::rules(&mut spec);
    subscribers::rules(&mut spec);
    lists::rules(&mut spec);
    for schema in ["NewIssueBody", "IssueChangesBody"] {
        spec["components"]["schemas"][schema]["properties"]["template"]["enum"] =
            or_null(TEMPLATES);
    }
    // Links from a new issue or subscriber to what can be done with it.
    let mut links = [
        ("/api/issues", serde_json::Map::new()),
        ("/api/subscribers", serde_json::Map::new()),
    ];
    let paths = spec["paths"].as_object_mut().expect("the spec has paths");
    for (path, item) in paths.iter_mut() {
        let item = item.as_object_mut().expect("a path item is an object");
        for (method, operation) in item.iter_mut() {
            common_answers(path, operation);
            for (resource, links) in links.iter_mut() {
                if path.starts_with(&format!("{resource}/{{id}}")) {
                    let id = operation["operationId"].clone();
                    links.insert(
                        format!("{method}_{}", id.as_str().unwrap_or(method)),
                        json!({"operationId": id, "parameters": {"id": "$response.body#/id"}}),
                    );
                }
            }
        }
    }
    for (resource, links) in links {
        spec["paths"][resource]["post"]["responses"]["201"]["links"] = Value::Object(links);
    }
    spec
}

/// Adds to one operation what every route of its kind can answer, where the route has
/// not said it more precisely itself.
fn common_answers(path: &str, operation: &mut Value) {
    let takes_body = operation.get("requestBody").is_some();
    let answers = [
        (true, "401", "No valid API token."),
        (
            true,
            "422",
            "A field's problem (also a control character in any text, query string included).",
        ),
        (
            path.contains("{id}"),
            "404",
            "No such issue or subscriber (an id that is not a UUID names none).",
        ),
        (takes_body, "400", "The body is not JSON."),
        (
            takes_body,
            "413",
            "The body is larger than 3 MiB (an issue at its largest fits, however it is escaped).",
        ),
        (
            takes_body,
            "415",
            "The body is not sent as application/json.",
        ),
    ];
    let responses = operation["responses"]
        .as_object_mut()
        .expect("an operation has responses");
    for (applies, status, description) in answers {
        if applies && !responses.contains_key(status) {
            responses.insert(
                status.into(),
                json!({
                    "description": description,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
                }),
            );
        }
    }
}

/// Every error from the API is JSON in one shape, even those axum answers itself (405,
/// a body limit) and a 500's page.
async fn errors_as_json(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !status.is_client_error() && !status.is_server_error() || is_json {
        return response;
    }
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => "This address does not answer that method.".into(),
        s if s.is_server_error() => {
            "Something went wrong on our side; it has been logged. Try again in a few minutes."
                .into()
        }
        s => s.canonical_reason().unwrap_or("Refused").to_owned() + ".",
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    let body = serde_json::to_vec(&ErrorBody::new(message)).expect("an error body is JSON");
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// The name of the API token a request came with.
#[derive(Clone, Debug)]
pub struct ApiCaller(pub String);

/// The token of `Authorization: Bearer <token>`, if the request has one.
pub(crate) fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        // The scheme's name is case-insensitive (RFC 9110): `bearer` works too.
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
}

/// Lets a request through only with a live API token, and says whose it is.
async fn require_token(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, AppError> {
    let Some(token) = bearer_token(req.headers()) else {
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

/// `Json<T>` whose rejections are `AppError`s: 415 without a JSON content type, 413
/// over the limit, 422 for a control character in any string (the text check, after the
/// token), 400 for broken JSON, 422 for a body of the wrong shape.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        if essence != "application/json" {
            return Err(AppError::json(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Send the body as JSON, with Content-Type: application/json.",
            ));
        }
        let headers = req.headers().clone();
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            let status = rejection.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                return AppError::json(
                    status,
                    format!(
                        "The body is larger than the API accepts ({} MiB).",
                        STAFF_BODY_LIMIT / (1024 * 1024)
                    ),
                );
            }
            AppError::json(status, rejection.body_text())
        })?;
        super::input::check_body(&headers, &bytes, true)?;
        Json::<T>::from_bytes(&bytes)
            .map(|Json(value)| ApiJson(value))
            .map_err(|rejection: JsonRejection| {
                AppError::json(rejection.status(), rejection.body_text())
            })
    }
}

/// A query parameter that is one line has no control character at all (the text
/// check lets line breaks and tabs through everywhere, for text).
pub fn one_line(name: &str, value: Option<&str>) -> Result<(), AppError> {
    match value {
        Some(value) if value.chars().any(char::is_control) => Err(AppError::json(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("{name} must be one line, without control characters."),
        )),
        _ => Ok(()),
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
