//! The staff web UI under `/admin`: sign-in, sessions, CSRF, and the pages.
//!
//! - A session is a random cookie (`nl_session`: HttpOnly, SameSite=Lax, Secure when
//!   PUBLIC_URL is https); the database keeps only its SHA-256.
//! - Every request to a page behind the sign-in passes `require_staff`, which sends
//!   anyone without a live session to `/admin/login`, and refuses any state-changing
//!   request whose form lacks the session's CSRF token. So no handler can forget either.
//! - The issue pages are in `issues`.
//! - The sign-in form has its own CSRF token, tied to a nonce cookie, and failed
//!   sign-ins are counted per address and per IP: too many, and sign-in waits.

mod access;
mod chart;
mod imports;
mod issue_status;
mod issues;
mod subscribers;

use axum::{
    Extension, Form, Router,
    body::{Body, to_bytes},
    extract::{DefaultBodyLimit, Request, State},
    http::{HeaderMap, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    routing::{MethodRouter, get, post},
};
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{
    AppError, AppState, ClientInfo,
    pages::{MessagePage, private, render},
};
use crate::{
    audience::budgets::BudgetScope,
    audience::subscription::SubscriptionStatus,
    issues::IssueStatus,
    staff::{self, Role, StaffUser},
    store::{LoginAdmission, LoginAttempt},
    time::uk_date_time,
    tokens::{self, sha256},
};

/// The one page under `/admin` that needs no session.
pub const LOGIN_PATH: &str = "/admin/login";
const SESSION_COOKIE: &str = "nl_session";
const LOGIN_COOKIE: &str = "nl_login";
/// A session lasts a working day.
const SESSION_HOURS: i64 = 12;
/// Failed sign-ins counted over this many minutes...
const FAILURE_WINDOW_MINUTES: i64 = 15;
/// ...and how many each key may have before sign-in waits.
const FAILURES_PER_ADDRESS_AND_CLIENT: i64 = 5;
const FAILURES_PER_CLIENT: i64 = 20;
const FAILURES_PER_ADDRESS: i64 = 50;

/// The signed-in staff member, put in the request by `require_staff`.
#[derive(Clone)]
pub struct Staff {
    pub user: StaffUser,
    /// The token every form of theirs must send back as `csrf`.
    pub csrf: String,
}

type Routes = Vec<(&'static str, MethodRouter<AppState>)>;

/// The pages behind the sign-in that every staff member may use.
fn staff_routes() -> Routes {
    let mut routes = vec![("/admin", get(dashboard)), ("/admin/logout", post(logout))];
    routes.extend(issues::routes());
    routes.extend(subscribers::routes());
    routes
}

/// The pages only admins may use: users, tokens, imports, exporting and erasing
/// people. `require_admin` guards them all, as a layer.
fn admin_routes() -> Routes {
    let mut routes = subscribers::admin_routes();
    routes.extend(imports::routes());
    routes.extend(access::routes());
    routes
}

/// What every page behind the sign-in shows around its content: who is signed in,
/// and the CSRF token for the sign-out button.
#[derive(Serialize)]
pub struct AdminFrame {
    email: String,
    csrf: String,
    is_admin: bool,
}

impl AdminFrame {
    pub fn of(staff: &Staff) -> Self {
        AdminFrame {
            email: staff.user.email.clone(),
            csrf: staff.csrf.clone(),
            is_admin: staff.user.role == Role::Admin,
        }
    }
}

/// Every path behind the sign-in. The test that checks each one sends strangers to the
/// sign-in page reads this list, so a page added to the router is covered.
pub fn protected_paths() -> Vec<&'static str> {
    let mut paths = paths(staff_routes());
    paths.extend(admin_paths());
    paths
}

/// Every path only admins may use (the test that editors are refused reads it).
pub fn admin_paths() -> Vec<&'static str> {
    paths(admin_routes())
}

fn paths(routes: Routes) -> Vec<&'static str> {
    routes.into_iter().map(|(path, _)| path).collect()
}

fn routed(routes: Routes) -> Router<AppState> {
    routes
        .into_iter()
        .fold(Router::new(), |router, (path, route)| {
            router.route(path, route)
        })
}

pub fn router(state: AppState) -> Router<AppState> {
    let admin = routed(admin_routes()).route_layer(middleware::from_fn(require_admin));
    let protected = routed(staff_routes())
        .merge(admin)
        // Outermost: a session (and CSRF) first; then, for admin pages, the role.
        .route_layer(middleware::from_fn_with_state(state, require_staff))
        // `require_staff` has read the body, within its own limits; the handlers read it
        // again from memory.
        .layer(DefaultBodyLimit::max(super::STAFF_BODY_LIMIT));
    Router::new()
        .route(LOGIN_PATH, get(login_page).post(login))
        .merge(protected)
}

/// Lets through only a live session; checks CSRF on anything but GET and HEAD.
async fn require_staff(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (session, user) = match signed_in(&state, request.headers()).await {
        Ok(Some(signed_in)) => signed_in,
        Ok(None) => return to_login(),
        Err(err) => return AppError::Internal(err).into_response(),
    };
    let staff = Staff {
        csrf: state.secret.csrf_token(&session),
        user,
    };
    let mut request = if matches!(*request.method(), Method::GET | Method::HEAD) {
        request
    } else {
        let (mut parts, body) = request.into_parts();
        let multipart = header_text(&parts.headers, header::CONTENT_TYPE.as_str())
            .filter(|t| t.trim_start().starts_with("multipart/form-data"));
        let limit = if multipart.is_some() {
            IMPORT_LIMIT
        } else {
            super::STAFF_BODY_LIMIT
        };
        let Ok(bytes) = to_bytes(body, limit).await else {
            return AppError::page(
                StatusCode::PAYLOAD_TOO_LARGE,
                MessagePage::new(
                    "Too much",
                    &[&format!(
                        "That form sent more than this page accepts ({} MB at most).",
                        limit.div_ceil(1024 * 1024)
                    )],
                ),
            )
            .into_response();
        };
        if let Err(refused) = super::input::check_body(&parts.headers, &bytes, false) {
            return refused.into_response();
        }
        let sent = match multipart {
            Some(content_type) => match FormParts::read(&content_type, bytes.clone()).await {
                Ok(form) => {
                    let csrf = form.text("csrf");
                    parts.extensions.insert(form);
                    csrf
                }
                Err(problem) => {
                    return AppError::page(
                        StatusCode::BAD_REQUEST,
                        MessagePage::new(
                            "We could not read that upload",
                            &["Go back and try again.", &problem],
                        ),
                    )
                    .into_response();
                }
            },
            None => url::form_urlencoded::parse(&bytes)
                .find(|(name, _)| name == "csrf")
                .map(|(_, value)| value.into_owned()),
        }
        .or_else(|| header_text(&parts.headers, "x-csrf-token"));
        if !sent.is_some_and(|token| state.secret.csrf_valid(&session, &token)) {
            return csrf_refused();
        }
        Request::from_parts(parts, Body::from(bytes))
    };
    request.extensions_mut().insert(staff);
    private(next.run(request).await)
}

/// The most a `multipart/form-data` form may send: a CSV file to import.
pub const IMPORT_LIMIT: usize = 10 * 1024 * 1024;

/// A `multipart/form-data` form's fields, read by `require_staff` (to check its CSRF
/// token) and put in the request for the handler.
#[derive(Clone, Default)]
pub struct FormParts(Vec<FormPart>);

#[derive(Clone)]
pub struct FormPart {
    pub name: String,
    pub file_name: Option<String>,
    pub data: axum::body::Bytes,
}

impl FormParts {
    async fn read(content_type: &str, body: axum::body::Bytes) -> Result<Self, String> {
        let boundary = multer::parse_boundary(content_type).map_err(|e| e.to_string())?;
        let body = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
        let mut multipart = multer::Multipart::new(body, boundary);
        let mut parts = Vec::new();
        while let Some(field) = multipart.next_field().await.map_err(|e| e.to_string())? {
            let name = field.name().unwrap_or_default().to_owned();
            let file_name = field.file_name().map(str::to_owned);
            let data = field.bytes().await.map_err(|e| e.to_string())?;
            parts.push(FormPart {
                name,
                file_name,
                data,
            });
        }
        Ok(Self(parts))
    }

    /// The first part called `name`.
    pub fn part(&self, name: &str) -> Option<&FormPart> {
        self.0.iter().find(|p| p.name == name)
    }

    /// The text of the first part called `name`, if it is UTF-8.
    pub fn text(&self, name: &str) -> Option<String> {
        self.part(name)
            .and_then(|p| std::str::from_utf8(&p.data).ok())
            .map(str::to_owned)
    }
}

/// Refuses editors what only admins may do.
async fn require_admin(
    Extension(staff): Extension<Staff>,
    request: Request,
    next: Next,
) -> Response {
    if staff.user.role == Role::Admin {
        return next.run(request).await;
    }
    AppError::page(
        StatusCode::FORBIDDEN,
        MessagePage::new(
            "Only admins can do this",
            &["Ask an admin of the newsletter to do it, or to make you an admin."],
        ),
    )
    .into_response()
}

/// The request's session cookie and whose live session it is.
async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> anyhow::Result<Option<(String, StaffUser)>> {
    let Some(session) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let user = state
        .store
        .session_user(&sha256(session.as_bytes()), Utc::now())
        .await?;
    Ok(user.map(|user| (session, user)))
}

fn to_login() -> Response {
    Redirect::to("/admin/login").into_response()
}

fn csrf_refused() -> Response {
    AppError::page(
        StatusCode::FORBIDDEN,
        MessagePage::new(
            "That form has expired",
            &["Go back, reload the page and try again. (Its security token was missing or out of date.)"],
        ),
    )
    .into_response()
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The value of cookie `name`, if the request has it.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, value)| *key == name && !value.is_empty())
        .map(|(_, value)| value.to_owned())
}

/// A `Set-Cookie` value for `/admin`: HttpOnly, SameSite=Lax, Secure over https.
fn set_cookie(state: &AppState, name: &str, value: &str, max_age_seconds: i64) -> String {
    let secure = if state.settings.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{name}={value}; Path=/admin; Max-Age={max_age_seconds}; HttpOnly; SameSite=Lax{secure}"
    )
}

#[derive(Serialize, Default)]
struct LoginView {
    email: String,
    error: Option<String>,
    csrf: String,
}

/// The sign-in form, with a fresh nonce cookie and the CSRF token tied to it.
fn login_form(state: &AppState, status: StatusCode, view: LoginView) -> Response {
    let nonce = tokens::generate_api_token();
    let view = LoginView {
        csrf: state.secret.csrf_token(&nonce),
        ..view
    };
    let title = if view.error.is_some() {
        "Error: Sign in"
    } else {
        "Sign in"
    };
    private((
        status,
        [(
            header::SET_COOKIE,
            set_cookie(state, LOGIN_COOKIE, &nonce, 3600),
        )],
        render("pages/admin_login.html", title, &view),
    ))
}

async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    if signed_in(&state, &headers).await?.is_some() {
        return Ok(Redirect::to("/admin").into_response());
    }
    Ok(login_form(&state, StatusCode::OK, LoginView::default()))
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

#[tracing::instrument(skip_all)]
async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    let email = staff::normalise_email(&form.email);
    let again = |status, error: &str| {
        login_form(
            &state,
            status,
            LoginView {
                email: email.clone(),
                error: Some(error.to_owned()),
                ..LoginView::default()
            },
        )
    };
    let nonce_ok = cookie(&headers, LOGIN_COOKIE)
        .is_some_and(|nonce| state.secret.csrf_valid(&nonce, &form.csrf));
    if !nonce_ok {
        return Ok(again(
            StatusCode::FORBIDDEN,
            "The sign-in form had expired. Please try again.",
        ));
    }
    if email.is_empty() || form.password.is_empty() {
        return Ok(again(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Enter your email address and your password.",
        ));
    }

    let now = Utc::now();
    // Per address and client: the limit a guesser meets. Per client: one client trying
    // many addresses. Per address from anywhere, higher: guessing spread over many
    // clients, without letting someone elsewhere lock the person out at five.
    let network = client.network();
    let pair_key = format!("pair:{email}|{network}");
    let limits = [
        (pair_key.clone(), FAILURES_PER_ADDRESS_AND_CLIENT),
        (format!("ip:{network}"), FAILURES_PER_CLIENT),
        (format!("address:{email}"), FAILURES_PER_ADDRESS),
    ];
    let attempt = LoginAttempt {
        id: uuid::Uuid::now_v7(),
        limits: &limits,
        since: now - Duration::minutes(FAILURE_WINDOW_MINUTES),
        now,
    };
    if state.store.admit_login(&attempt).await? == LoginAdmission::Throttled {
        tracing::warn!("Sign-in refused: too many failed attempts");
        return Ok(again(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "Too many failed attempts. Wait {FAILURE_WINDOW_MINUTES} minutes, then try again."
            ),
        ));
    }

    let found = state.store.staff_login(&email).await?;
    let (user, hash) = found.map(|f| (f.user, f.password_hash)).unzip();
    let Ok(matches) = state.password_checks.matches(form.password, hash).await? else {
        // Not checked, so not a failure.
        state.store.forget_login_attempt(attempt.id, &[]).await?;
        tracing::warn!("Sign-in deferred: too many password checks at once");
        let mut busy = again(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many people are signing in at once. Please try again in a few seconds.",
        );
        busy.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
        return Ok(busy);
    };
    let Some(user) = user.filter(|_| matches) else {
        tracing::info!("Sign-in refused: wrong address or password");
        return Ok(again(
            StatusCode::UNAUTHORIZED,
            "The email address or the password is not right.",
        ));
    };

    state
        .store
        .forget_login_attempt(attempt.id, &[pair_key])
        .await?;
    let session = tokens::generate_api_token();
    state
        .store
        .create_session(
            &sha256(session.as_bytes()),
            user.id,
            now,
            now + Duration::hours(SESSION_HOURS),
        )
        .await?;
    tracing::info!(user = %user.id, "Signed in");
    let mut response = Redirect::to("/admin").into_response();
    let headers = response.headers_mut();
    for cookie in [
        set_cookie(&state, SESSION_COOKIE, &session, SESSION_HOURS * 3600),
        set_cookie(&state, LOGIN_COOKIE, "", 0),
    ] {
        headers.append(
            header::SET_COOKIE,
            cookie.parse().expect("a cookie is a valid header"),
        );
    }
    Ok(response)
}

#[tracing::instrument(skip_all)]
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    if let Some(session) = cookie(&headers, SESSION_COOKIE) {
        state
            .store
            .delete_session(&sha256(session.as_bytes()))
            .await?;
    }
    Ok((
        [(
            header::SET_COOKIE,
            set_cookie(&state, SESSION_COOKIE, "", 0),
        )],
        Redirect::to("/admin/login"),
    )
        .into_response())
}

#[derive(Serialize)]
struct IssueLine {
    id: uuid::Uuid,
    subject: String,
    status: &'static str,
    when: Option<String>,
    recipients: i64,
    sent: i64,
    failed: i64,
    pending: i64,
    unsubscribed: i64,
}

/// Sign-ups turned away by the budgets on confirmation mails in the last 24 hours.
#[derive(Serialize)]
struct RefusedSignups {
    client: i64,
    domain: i64,
    total: i64,
}

#[derive(Serialize)]
struct DashboardView {
    #[serde(flatten)]
    frame: AdminFrame,
    chart: chart::Chart,
    counts: Vec<(SubscriptionStatus, i64)>,
    next: Option<IssueLine>,
    recent: Vec<IssueLine>,
    refused: RefusedSignups,
}

/// How many issues the dashboard shows.
const RECENT_ISSUES: usize = 5;

async fn dashboard(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
) -> Result<Response, AppError> {
    let counts = state
        .store
        .subscriber_counts(state.list.id)
        .await?
        .by_status();
    let today = Utc::now().date_naive();
    let days = state
        .store
        .daily_signups_and_unsubscribes(
            state.list.id,
            chart::first_monday(today)
                .and_hms_opt(0, 0, 0)
                .expect("midnight exists")
                .and_utc(),
        )
        .await?;
    let chart = chart::weekly(&days, today);
    let issues = state.store.issues().await?;
    let line = |issue: &crate::issues::Issue, stats: crate::store::IssueStats| IssueLine {
        id: issue.id,
        subject: issue.subject.clone(),
        status: issue.status.as_str(),
        when: issue.finished_at.or(issue.send_at).map(uk_date_time),
        recipients: stats.recipients,
        sent: stats.sent,
        failed: stats.failed,
        pending: stats.pending,
        unsubscribed: stats.unsubscribed,
    };
    let next = match issues
        .iter()
        .filter(|i| i.status == IssueStatus::Scheduled)
        .min_by_key(|i| i.send_at)
    {
        Some(issue) => Some(line(issue, state.store.issue_stats(issue.id).await?)),
        None => None,
    };
    let mut recent = Vec::new();
    for issue in issues.iter().take(RECENT_ISSUES) {
        recent.push(line(issue, state.store.issue_stats(issue.id).await?));
    }
    let refused = state
        .store
        .budget_refusals(Utc::now() - chrono::TimeDelta::hours(24))
        .await?;
    let refused_by = |scope| {
        refused
            .iter()
            .find(|(s, _)| *s == scope)
            .map_or(0, |(_, n)| *n)
    };
    let view = DashboardView {
        frame: AdminFrame::of(&staff),
        chart,
        counts,
        next,
        recent,
        refused: RefusedSignups {
            client: refused_by(BudgetScope::Client),
            domain: refused_by(BudgetScope::Domain),
            total: refused_by(BudgetScope::Total),
        },
    };
    Ok(render("pages/admin_dashboard.html", "Dashboard", &view).into_response())
}
