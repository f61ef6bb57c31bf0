//! `GET /metrics` (see `crate::metrics`), never public by default: on the public
//! address it exists only when `METRICS_TOKEN` is set, and needs that token; on
//! `METRICS_ADDRESS`, an address of its own for a private network, it needs the token
//! only when one is set. And the layer that counts every HTTP request.

use std::time::Instant;

use axum::{
    Router,
    extract::{MatchedPath, Request, State},
    http::{HeaderMap, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};

use super::{AppError, AppState, api::bearer_token};
use crate::{inbound::webhooks::same, metrics::CONTENT_TYPE};

/// The route on the public address, when a token guards it.
pub fn router(state: &AppState) -> Router<AppState> {
    match state.settings.metrics_token {
        Some(_) => Router::new().route("/metrics", get(metrics)),
        None => Router::new(),
    }
}

/// All that `METRICS_ADDRESS` serves.
pub fn private_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    if let Some(expected) = &state.settings.metrics_token {
        let given = bearer_token(&headers).unwrap_or_default();
        if !same(given.as_bytes(), expected.as_bytes()) {
            return Err(AppError::Unauthorized(
                "Send METRICS_TOKEN as: Authorization: Bearer <token>.",
            ));
        }
    }
    let now = chrono::Utc::now();
    // One scrape at a time reads the database; others wait their turn.
    let _turn = state.metrics_scrape.lock().await;
    let snapshot = match state.store.metrics_snapshot(now).await {
        Ok(snapshot) => Some(snapshot),
        Err(err) => {
            tracing::warn!(
                error = format!("{err:#}"),
                "Metrics: the database did not answer"
            );
            None
        }
    };
    let text = state
        .metrics
        .render(&state.store.pool_use(), snapshot.as_ref(), now);
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response())
}

/// Counts each request by its route's pattern, method and status, and times it.
pub async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let response = next.run(req).await;
    state.metrics.http_request(
        &method,
        route.as_deref().unwrap_or("(no route)"),
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}
