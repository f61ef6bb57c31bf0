//! The HTTP edge: shared state, one router per module merged here, and the layers every
//! response passes through (body limit, security headers, a trace span per request).

pub mod admin;
mod api;
mod archive;
pub mod branding;
pub mod client;
mod error;
mod health;
mod input;
pub mod issue_actions;
pub mod list_actions;
mod media;
pub mod metrics;
mod pages;
mod preferences;
pub mod recent;
pub mod server;
pub mod subscriber_actions;
mod subscriptions;
pub mod suppression_actions;
mod unsubscribe;
mod webhooks;

use std::sync::Arc;

use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath, Request, State},
    http::{HeaderValue, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use tokio::sync::Notify;
use tower_http::trace::TraceLayer;

pub use client::ClientInfo;
pub use error::{AppError, ErrorBody};

use crate::{
    keys::KeyRing,
    settings::Settings,
    store::{MailingList, Store},
};

/// Everything a handler needs, shared: every request clones it, for one reference
/// count (its parts cloned one by one were 1.6 % of a sign-up's time).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What `AppState` shares.
pub struct Shared {
    pub store: Arc<dyn Store>,
    pub settings: Arc<Settings>,
    pub secret: KeyRing,
    pub list: Arc<MailingList>,
    /// Wakes the mail worker when a mail is queued or an issue resumes.
    pub outbox_wake: Arc<Notify>,
    /// Wakes the scheduler when an issue is scheduled.
    pub scheduler_wake: Arc<Notify>,
    /// Bounds the staff password checks running at once.
    pub password_checks: crate::staff::PasswordChecks,
    /// The SNS signing certificates fetched so far (for SES's webhook).
    pub sns_certificates: Arc<crate::inbound::webhooks::ses::CertificateCache>,
    /// The current brand, read at most every few seconds.
    pub brand: Arc<branding::BrandCache>,
    /// Every list, for the sign-up form, read at most every few seconds.
    pub lists: Arc<recent::Recent<Vec<crate::store::MailingList>>>,
    /// This process's counters, for `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Taken by a scrape while it reads the database.
    pub metrics_scrape: Arc<tokio::sync::Mutex<()>>,
}

/// Public form bodies are small; anything bigger is not a sign-up.
const BODY_LIMIT: usize = 16 * 1024;

/// What staff send (the API's JSON, the staff pages' forms) may hold an issue at its
/// largest, 200,000 characters, however it is encoded: 12 bytes a character at worst (a
/// JSON escape pair such as `\ud83d\ude00`, or a 4-byte character percent-encoded).
/// Read only once the sender's credentials have been checked.
pub const STAFF_BODY_LIMIT: usize = 3 * 1024 * 1024;

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(subscriptions::router())
        .merge(unsubscribe::router())
        .merge(preferences::router())
        .merge(archive::router())
        .merge(media::router())
        .merge(api::router(state.clone()))
        .merge(admin::router(state.clone()))
        .merge(health::router())
        .merge(metrics::router(&state))
        .route("/favicon.svg", get(favicon))
        .route("/favicon.ico", get(favicon))
        .route("/focus-errors.js", get(focus_errors))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(input::refuse_bad_text))
        // Inside the task `finish_even_if_the_client_leaves` spawns, which does not
        // inherit task-locals.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            branding::with_brand,
        ))
        .layer(middleware::from_fn(finish_even_if_the_client_leaves))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security_headers,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::count_requests,
        ))
        .layer(
            // The span names the route, never the query string: links carry tokens.
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let route = req
                    .extensions()
                    .get::<MatchedPath>()
                    .map_or("(no route)", |p| p.as_str());
                tracing::info_span!("http", method = %req.method(), route)
            }),
        )
        .with_state(state)
}

/// Runs the rest of the request in a task of its own, so that a client that hangs up
/// does not cancel the handler halfway through a transaction (a cancelled `begin()`
/// can leave a pooled PostgreSQL connection inside a transaction, holding locks: sqlx
/// issues #4385 and #4393). What was started is finished; the answer is dropped.
async fn finish_even_if_the_client_leaves(req: Request, next: Next) -> Response {
    use tracing::Instrument;
    match tokio::spawn(next.run(req).in_current_span()).await {
        Ok(response) => response,
        Err(err) => {
            tracing::error!(error = %err, "A request handler panicked");
            AppError::Internal(anyhow::anyhow!("A request handler panicked")).into_response()
        }
    }
}

/// The site's icon: an envelope in the brand's blue. Browsers that ask for
/// `/favicon.ico` take the SVG too.
async fn favicon() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("static/favicon.svg"),
    )
}

/// The one script every page may load: see the file.
async fn focus_errors() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("static/focus-errors.js"),
    )
}

/// What a browser may do with our pages: nothing they do not need.
const PERMISSIONS_POLICY: &str = "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()";

async fn security_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    // Served over https (behind a proxy, as PUBLIC_URL says): browsers keep to https.
    if state.settings.public_url.starts_with("https://") {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    headers.insert(
        header::HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static(PERMISSIONS_POLICY),
    );
    let set = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ];
    for (name, value) in set {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    headers
        .entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("same-origin"));
    response
}
