//! The staff web UI under `/admin`: sign-in, sessions, CSRF, and the pages.
//!
//! - A session is a random cookie (`nl_session`: HttpOnly, SameSite=Lax, Secure when
//!   PUBLIC_URL is https); the database keeps only its SHA-256.
//! - Every request to a page behind the sign-in passes `require_staff`, which sends
//!   anyone without a live session to `/admin/login`, and refuses any state-changing
//!   request whose form lacks the session's CSRF token. So no handler can forget either.
//! - The admin-only pages (users, tokens, imports, export, erasure) are a sub-router
//!   behind `require_admin`, a layer inside `require_staff`.
//! - Signing in and out is in `sign_in` (the sign-in form has its own CSRF token, tied
//!   to a nonce cookie, and failed sign-ins are counted: too many, and sign-in waits);
//!   the issue pages are in `issues`, the dashboard in `dashboard`.

mod access;
mod account;
mod bounces;
mod brand;
mod chart;
mod dashboard;
mod imports;
mod issue_form;
mod issue_images;
mod issue_report;
mod issue_status;
mod issues;
mod lists;
mod sign_in;
mod subscribers;
mod templates;

use dashboard::dashboard;
use sign_in::{logout, signed_in};

use axum::{
    Extension, Router,
    body::{Body, to_bytes},
    extract::{DefaultBodyLimit, Request, State},
    http::{HeaderMap, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    routing::{MethodRouter, get, post},
};
use serde::Serialize;

use super::{
    AppError, AppState,
    pages::{MessagePage, private},
};
use crate::staff::{Role, StaffUser};

/// The sign-in page. (The pages reached from a mailed link, or mid sign-in, need no
/// session either: `account::public_routes`.)
pub const LOGIN_PATH: &str = "/admin/login";

/// The signed-in staff member, put in the request by `require_staff`.
#[derive(Clone)]
pub struct Staff {
    pub user: StaffUser,
    /// The SHA-256 of their session's cookie.
    pub session: [u8; 32],
    /// The token every form of theirs must send back as `csrf`.
    pub csrf: String,
}

type Routes = Vec<(&'static str, MethodRouter<AppState>)>;

/// The pages behind the sign-in that every staff member may use.
fn staff_routes() -> Routes {
    let mut routes = vec![("/admin", get(dashboard)), ("/admin/logout", post(logout))];
    routes.extend(issues::routes());
    routes.extend(issue_images::routes());
    routes.extend(subscribers::routes());
    routes.extend(bounces::routes());
    routes.extend(account::routes());
    routes
}

/// The pages only admins may use: users, tokens, imports, exporting and erasing
/// people. `require_admin` guards them all, as a layer.
fn admin_routes() -> Routes {
    let mut routes = subscribers::admin_routes();
    routes.extend(imports::routes());
    routes.extend(access::routes());
    routes.extend(bounces::admin_routes());
    routes.extend(brand::routes());
    routes.extend(templates::routes());
    routes.extend(lists::routes());
    routes.extend(account::admin_routes());
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
    let public = routed(account::public_routes());
    Router::new()
        .route(LOGIN_PATH, sign_in::login_route())
        .merge(public)
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
        session: crate::tokens::sha256(session.as_bytes()),
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

fn to_login() -> Response {
    Redirect::to("/admin/login").into_response()
}

fn csrf_refused() -> Response {
    csrf_refused_error().into_response()
}

fn csrf_refused_error() -> AppError {
    AppError::page(
        StatusCode::FORBIDDEN,
        MessagePage::new(
            "That form has expired",
            &[
                "Go back, reload the page and try again. (Its security token was missing or out of date.)",
            ],
        ),
    )
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
