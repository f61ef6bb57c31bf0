//! Signing in and out: the sign-in form (with its own CSRF token, tied to a nonce
//! cookie), the session cookie, and the count of failed sign-ins (see
//! `staff::sessions` for the limits).

use axum::{
    Form,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::{MethodRouter, get},
};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::super::{
    AppError, AppState, ClientInfo,
    pages::{private, render},
};
use crate::{
    staff::{self, StaffUser, sessions},
    store::{LoginAdmission, LoginAttempt},
    tokens::{self, sha256},
};

/// `GET` shows the sign-in form; `POST` signs in.
pub(super) fn login_route() -> MethodRouter<AppState> {
    get(login_page).post(login)
}

const SESSION_COOKIE: &str = "nl_session";
/// The sign-in form's nonce (and any other form shown before a session).
pub(super) const LOGIN_COOKIE: &str = "nl_login";

/// The request's session cookie and whose live session it is.
pub(super) async fn signed_in(
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

/// The value of cookie `name`, if the request has it.
pub(super) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
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
pub(super) fn set_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    max_age_seconds: i64,
) -> String {
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
    notice: Option<&'static str>,
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

#[derive(Deserialize)]
struct LoginParams {
    reset: Option<String>,
}

async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Query(params): axum::extract::Query<LoginParams>,
) -> Result<Response, AppError> {
    if signed_in(&state, &headers).await?.is_some() {
        return Ok(Redirect::to("/admin").into_response());
    }
    let view = LoginView {
        notice: params
            .reset
            .is_some()
            .then_some("Your password is changed. Sign in with it."),
        ..LoginView::default()
    };
    Ok(login_form(&state, StatusCode::OK, view))
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
    let keys = sessions::SignInKeys::new(&email, &client.network());
    let attempt = LoginAttempt {
        id: uuid::Uuid::now_v7(),
        limits: &keys.limits,
        since: sessions::failures_since(now),
        now,
    };
    if state.store.admit_login(&attempt).await? == LoginAdmission::Throttled {
        tracing::warn!("Sign-in refused: too many failed attempts");
        return Ok(again(
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "Too many failed attempts. Wait {} minutes, then try again.",
                sessions::FAILURE_WINDOW_MINUTES
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
        .forget_login_attempt(attempt.id, &keys.cleared_on_success())
        .await?;
    super::account::after_password(&state, &user).await
}

/// Signs `user` in: a new session, its cookie, and the way to the dashboard (`to`).
/// `clear` names cookies of the steps before, to remove.
pub(super) async fn start_session(
    state: &AppState,
    user: &StaffUser,
    clear: &[&str],
    mut response: Response,
) -> Result<Response, AppError> {
    let now = Utc::now();
    let session = tokens::generate_api_token();
    state
        .store
        .create_session(
            &sha256(session.as_bytes()),
            user.id,
            now,
            sessions::session_ends(now),
        )
        .await?;
    tracing::info!(user = %user.id, "Signed in");
    let headers = response.headers_mut();
    let session = set_cookie(
        state,
        SESSION_COOKIE,
        &session,
        sessions::SESSION_HOURS * 3600,
    );
    let cleared = clear.iter().map(|name| set_cookie(state, name, "", 0));
    for cookie in std::iter::once(session).chain(cleared) {
        headers.append(
            header::SET_COOKIE,
            cookie.parse().expect("a cookie is a valid header"),
        );
    }
    Ok(response)
}

#[tracing::instrument(skip_all)]
pub(super) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
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
