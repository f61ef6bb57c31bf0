//! Two-factor sign-in. After the right password, someone with two-factor sign-in
//! (or anyone, when an admin requires it) holds a signed cookie, `nl_pending`, that
//! names them for ten minutes and is not a session; the second step asks for a code
//! from their app, or a recovery code, and only then starts the session. Someone
//! required to use it who has not set it up does so in that step.
//!
//! Setting up shows a new secret (as a QR code and as text); the page carries it
//! sealed to the person (`KeyRing::seal_two_factor`), and it is kept only once a code
//! from it is typed back. Codes are counted like failed sign-ins, five in a quarter
//! of an hour.

use axum::{
    Extension, Form,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{busy, by_field};
use crate::{
    fields::FieldError,
    staff::{StaffUser, sessions, two_factor},
    store::{LoginAdmission, LoginAttempt},
    web::{
        AppError, AppState,
        admin::{
            AdminFrame, Staff,
            sign_in::{cookie, set_cookie, start_session},
        },
        pages::{MessagePage, private, render},
    },
};

const PENDING_COOKIE: &str = "nl_pending";
/// How long the second step may take.
const PENDING_MINUTES: i64 = 10;
/// Wrong codes a person may type in the sign-in window.
const CODE_FAILURES: i64 = 5;

/// After the right password: the session, or the second step first.
pub(in crate::web::admin) async fn after_password(
    state: &AppState,
    user: &StaffUser,
) -> Result<Response, AppError> {
    let has = state.store.two_factor(user.id).await?.is_some();
    if !has && !state.store.two_factor_required().await? {
        return start_session(state, user, &[], Redirect::to("/admin").into_response()).await;
    }
    let expires = (Utc::now() + chrono::Duration::minutes(PENDING_MINUTES)).timestamp_millis();
    let body = format!("{}.{expires}", user.id);
    let value = format!(
        "{body}.{}",
        state.secret.csrf_token(&pending_message(&body))
    );
    let to = if has {
        "/admin/login/two-factor"
    } else {
        "/admin/login/two-factor/setup"
    };
    Ok((
        [(
            axum::http::header::SET_COOKIE,
            set_cookie(state, PENDING_COOKIE, &value, PENDING_MINUTES * 60),
        )],
        Redirect::to(to),
    )
        .into_response())
}

/// What the pending cookie's tag signs: its own purpose, so no other token is one.
fn pending_message(body: &str) -> String {
    format!("two-factor pending:{body}")
}

/// Whose second step this is (and the cookie, to tie the form's CSRF token to).
async fn pending(state: &AppState, headers: &HeaderMap) -> Result<(StaffUser, String), AppError> {
    let expired = || {
        AppError::page(
            StatusCode::UNAUTHORIZED,
            MessagePage::new(
                "Please sign in again",
                &[
                    "The sign-in took more than ten minutes, or it was not started here. Sign in again at /admin/login.",
                ],
            ),
        )
    };
    let value = cookie(headers, PENDING_COOKIE).ok_or_else(expired)?;
    let (body, tag) = value.rsplit_once('.').ok_or_else(expired)?;
    let (id, expires) = body.split_once('.').ok_or_else(expired)?;
    let live = expires
        .parse::<i64>()
        .is_ok_and(|at| at > Utc::now().timestamp_millis());
    if !live || !state.secret.csrf_valid(&pending_message(body), tag) {
        return Err(expired());
    }
    let id = uuid::Uuid::parse_str(id).map_err(|_| expired())?;
    let user = state
        .store
        .staff_users()
        .await?
        .into_iter()
        .map(|m| m.user)
        .find(|u| u.id == id)
        .ok_or_else(expired)?;
    Ok((user, value))
}

#[derive(Serialize)]
struct CodeView<'a> {
    csrf: String,
    error: Option<&'a str>,
}

fn code_form(state: &AppState, pending: &str, status: StatusCode, error: Option<&str>) -> Response {
    let title = if error.is_some() {
        "Error: Two-factor sign-in"
    } else {
        "Two-factor sign-in"
    };
    let view = CodeView {
        csrf: state.secret.csrf_token(pending),
        error,
    };
    private((status, render("pages/admin_two_factor.html", title, &view)))
}

pub(super) async fn second_step_page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let (_, value) = pending(&state, &headers).await?;
    Ok(code_form(&state, &value, StatusCode::OK, None))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct CodeForm {
    code: String,
    csrf: String,
    /// Setting up: the new secret, sealed to the person.
    sealed: String,
    /// Replacing one already on: their password.
    current: String,
}

/// Counts a code attempt; `false` once too many were wrong.
async fn admit_code(
    state: &AppState,
    user: &StaffUser,
) -> Result<Option<(uuid::Uuid, [(String, i64); 1])>, AppError> {
    let now = Utc::now();
    let limits = [(format!("two-factor:{}", user.id), CODE_FAILURES)];
    let attempt = LoginAttempt {
        id: uuid::Uuid::now_v7(),
        limits: &limits,
        since: sessions::failures_since(now),
        now,
    };
    if state.store.admit_login(&attempt).await? == LoginAdmission::Throttled {
        return Ok(None);
    }
    Ok(Some((attempt.id, limits)))
}

#[tracing::instrument(skip_all)]
pub(super) async fn second_step(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Result<Response, AppError> {
    let (user, value) = pending(&state, &headers).await?;
    if !state.secret.csrf_valid(&value, &form.csrf) {
        return Ok(code_form(
            &state,
            &value,
            StatusCode::FORBIDDEN,
            Some("The form had expired. Please try again."),
        ));
    }
    let Some((attempt, limits)) = admit_code(&state, &user).await? else {
        tracing::warn!(user = %user.id, "Two-factor sign-in refused: too many wrong codes");
        return Ok(code_form(
            &state,
            &value,
            StatusCode::TOO_MANY_REQUESTS,
            Some("Too many wrong codes. Wait a quarter of an hour, then sign in again."),
        ));
    };
    let Some(secret) = state.store.two_factor(user.id).await? else {
        return Ok(Redirect::to("/admin/login/two-factor/setup").into_response());
    };
    let key = state
        .secret
        .open_two_factor(&secret.sealed_secret, user.id.as_bytes())?;
    let now_step = two_factor::step_of(Utc::now().timestamp());
    let accepted = match two_factor::accepted_step(&key, &form.code, now_step, secret.last_step) {
        Some(step) => state.store.use_two_factor_step(user.id, step).await?,
        None => {
            let code = two_factor::normalised_recovery_code(&form.code);
            code.len() == 10
                && state
                    .store
                    .use_recovery_code(
                        user.id,
                        &state.secret.recovery_code_hashes(&code),
                        Utc::now(),
                    )
                    .await?
        }
    };
    if !accepted {
        // A code of now that was used before (a second sign-in within 30 seconds) is
        // refused as a replay would be; the person is told why.
        let used = two_factor::accepted_step(&key, &form.code, now_step, None).is_some();
        tracing::info!(user = %user.id, used, "Two-factor sign-in refused");
        let problem = if used {
            "That code has been used already: each works once. Wait for the next one your app shows (they change every 30 seconds), or use one of your recovery codes."
        } else {
            "That code is not right. Type the six digits your app shows now, or one of your recovery codes."
        };
        return Ok(code_form(
            &state,
            &value,
            StatusCode::UNAUTHORIZED,
            Some(problem),
        ));
    }
    let clear: Vec<String> = limits.iter().map(|(key, _)| key.clone()).collect();
    state.store.forget_login_attempt(attempt, &clear).await?;
    start_session(
        &state,
        &user,
        &[PENDING_COOKIE],
        Redirect::to("/admin").into_response(),
    )
    .await
}

#[derive(Serialize)]
struct SetupView {
    layout: &'static str,
    #[serde(flatten)]
    frame: Option<AdminFrame>,
    action: &'static str,
    csrf: String,
    sealed: String,
    /// The secret as text, in groups of four.
    secret: String,
    qr_svg: String,
    required: bool,
    /// It is on already: moving it to a new phone needs their password.
    replacing: bool,
    errors: std::collections::BTreeMap<String, String>,
    error_list: Vec<FieldError>,
}

/// Who is setting up, and where the form goes: mid sign-in, or from their account.
struct Setup<'a> {
    user: &'a StaffUser,
    frame: Option<AdminFrame>,
    action: &'static str,
    csrf: String,
}

impl<'a> Setup<'a> {
    /// Mid sign-in, with the pending cookie's value.
    fn pending(state: &AppState, user: &'a StaffUser, cookie: &str) -> Self {
        Setup {
            user,
            frame: None,
            action: "/admin/login/two-factor/setup",
            csrf: state.secret.csrf_token(cookie),
        }
    }

    /// From their account page.
    fn account(staff: &'a Staff) -> Self {
        Setup {
            user: &staff.user,
            frame: Some(AdminFrame::of(staff)),
            action: "/admin/account/two-factor",
            csrf: staff.csrf.clone(),
        }
    }
}

/// The setup page for a new secret, or for the one the form carried when its code was
/// wrong (with the errors).
async fn setup_form(
    state: &AppState,
    setup: Setup<'_>,
    retry: Option<(Vec<u8>, Vec<FieldError>)>,
) -> Result<Response, AppError> {
    let required = state.store.two_factor_required().await?;
    let replacing = setup.frame.is_some() && state.store.two_factor(setup.user.id).await?.is_some();
    let (secret, errors) = retry.unwrap_or_else(|| (two_factor::new_secret().to_vec(), Vec::new()));
    let secret = secret.as_slice();
    let issuer = super::super::super::branding::brand()
        .brand
        .newsletter
        .clone();
    let uri = two_factor::otpauth_uri(&issuer, &setup.user.email, secret);
    let qr_svg = qrcode::QrCode::new(uri.as_bytes())
        .map(|code| {
            code.render::<qrcode::render::svg::Color>()
                .min_dimensions(200, 200)
                .build()
        })
        // The renderer starts with an XML declaration, which has no place
        // inside an HTML page: keep the <svg> element only.
        .map(|svg| {
            svg.find("<svg")
                .map(|i| svg[i..].to_owned())
                .unwrap_or_default()
        })
        .unwrap_or_default();
    let text = two_factor::base32(secret);
    let grouped: Vec<&str> = text
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let title = if errors.is_empty() {
        "Set up two-factor sign-in"
    } else {
        "Error: Set up two-factor sign-in"
    };
    let view = SetupView {
        layout: if setup.frame.is_some() {
            "pages/admin_layout.html"
        } else {
            "pages/layout.html"
        },
        frame: setup.frame,
        action: setup.action,
        csrf: setup.csrf,
        sealed: URL_SAFE_NO_PAD.encode(
            state
                .secret
                .seal_two_factor(secret, setup.user.id.as_bytes()),
        ),
        secret: grouped.join(" "),
        qr_svg,
        required,
        replacing,
        errors: by_field(&errors),
        error_list: errors,
    };
    Ok(private((
        status,
        render("pages/admin_two_factor_setup.html", title, &view),
    )))
}

/// Checks the code typed against the sealed secret and, if it is right, turns
/// two-factor sign-in on: the recovery codes, to show once.
async fn finish_setup(
    state: &AppState,
    user: &StaffUser,
    form: &CodeForm,
) -> Result<Result<Vec<String>, (Vec<u8>, Vec<FieldError>)>, AppError> {
    let sealed = URL_SAFE_NO_PAD
        .decode(form.sealed.trim())
        .unwrap_or_default();
    let Ok(secret) = state.secret.open_two_factor(&sealed, user.id.as_bytes()) else {
        // Not a secret this page made for them: start again with a new one.
        let errors = vec![FieldError::new(
            "code",
            "Scan this new code, then type the code your app shows.",
        )];
        return Ok(Err((two_factor::new_secret().to_vec(), errors)));
    };
    let now_step = two_factor::step_of(Utc::now().timestamp());
    let Some(step) = two_factor::accepted_step(&secret, &form.code, now_step, None) else {
        let errors = vec![FieldError::new(
            "code",
            "That code is not right. Type the six digits your app shows now.",
        )];
        return Ok(Err((secret, errors)));
    };
    let (codes, hashes) = recovery_codes(state);
    state
        .store
        .enable_two_factor(user.id, &sealed, step, &hashes)
        .await?;
    tracing::info!(user = %user.id, "Two-factor sign-in set up");
    Ok(Ok(codes))
}

#[derive(Serialize)]
struct CodesView {
    layout: &'static str,
    #[serde(flatten)]
    frame: Option<AdminFrame>,
    codes: Vec<String>,
    next: &'static str,
}

fn codes_page(frame: Option<AdminFrame>, codes: Vec<String>, next: &'static str) -> Response {
    let view = CodesView {
        layout: if frame.is_some() {
            "pages/admin_layout.html"
        } else {
            "pages/layout.html"
        },
        frame,
        codes,
        next,
    };
    private(render(
        "pages/admin_recovery_codes.html",
        "Your recovery codes",
        &view,
    ))
}

pub(super) async fn pending_setup_page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let (user, value) = pending(&state, &headers).await?;
    setup_form(&state, Setup::pending(&state, &user, &value), None).await
}

/// Setting up mid sign-in (an admin requires it): once a code is right, the session
/// starts, and the recovery codes are shown.
#[tracing::instrument(skip_all)]
pub(super) async fn pending_setup(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<CodeForm>,
) -> Result<Response, AppError> {
    let (user, value) = pending(&state, &headers).await?;
    if !state.secret.csrf_valid(&value, &form.csrf) {
        return Err(super::super::csrf_refused_error());
    }
    if state.store.two_factor(user.id).await?.is_some() {
        return Ok(Redirect::to("/admin/login/two-factor").into_response());
    }
    if admit_code(&state, &user).await?.is_none() {
        return Err(AppError::page(
            StatusCode::TOO_MANY_REQUESTS,
            MessagePage::new(
                "Too many wrong codes",
                &["Wait a quarter of an hour, then sign in again."],
            ),
        ));
    }
    match finish_setup(&state, &user, &form).await? {
        Ok(codes) => {
            let page = codes_page(None, codes, "/admin");
            start_session(&state, &user, &[PENDING_COOKIE], page).await
        }
        Err(retry) => setup_form(&state, Setup::pending(&state, &user, &value), Some(retry)).await,
    }
}

pub(super) async fn setup_page(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
) -> Result<Response, AppError> {
    setup_form(&state, Setup::account(&staff), None).await
}

/// Setting up (or replacing) from the account page.
#[tracing::instrument(skip_all)]
pub(super) async fn setup(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Form(form): Form<CodeForm>,
) -> Result<Response, AppError> {
    // Moving it to a new phone is turning the old one off: it needs the password, so
    // that a session left open cannot lock its owner out.
    if state.store.two_factor(staff.user.id).await?.is_some()
        && !right_password(&state, &staff, form.current.clone()).await?
    {
        let sealed = URL_SAFE_NO_PAD
            .decode(form.sealed.trim())
            .unwrap_or_default();
        let secret = state
            .secret
            .open_two_factor(&sealed, staff.user.id.as_bytes())
            .unwrap_or_else(|_| two_factor::new_secret().to_vec());
        let errors = vec![FieldError::new(
            "current",
            "That is not your current password.",
        )];
        return setup_form(&state, Setup::account(&staff), Some((secret, errors))).await;
    }
    match finish_setup(&state, &staff.user, &form).await? {
        Ok(codes) => Ok(codes_page(
            Some(AdminFrame::of(&staff)),
            codes,
            "/admin/account",
        )),
        Err(retry) => setup_form(&state, Setup::account(&staff), Some(retry)).await,
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct PasswordCheck {
    current: String,
}

/// Ten new recovery codes to show once, and the keyed hashes to keep of them.
fn recovery_codes(state: &AppState) -> (Vec<String>, Vec<[u8; 32]>) {
    let codes = two_factor::new_recovery_codes();
    let hashes = codes
        .iter()
        .map(|c| {
            state
                .secret
                .recovery_code_hashes(&two_factor::normalised_recovery_code(c))[0]
        })
        .collect();
    (codes, hashes)
}

/// Whether `typed` is the signed-in person's password (a 503 when every check is busy).
async fn right_password(state: &AppState, staff: &Staff, typed: String) -> Result<bool, AppError> {
    let hash = state.store.password_hash(staff.user.id).await?;
    state
        .password_checks
        .matches(typed, hash)
        .await?
        .map_err(|_| busy())
}

/// Turns two-factor sign-in off, with their password, unless an admin requires it.
#[tracing::instrument(skip_all)]
pub(super) async fn turn_off(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Form(form): Form<PasswordCheck>,
) -> Result<Response, AppError> {
    if state.store.two_factor_required().await? {
        let errors = vec![FieldError::new(
            "off-current",
            "An admin requires two-factor sign-in of everyone, so it stays on.",
        )];
        return super::account_page(&state, &staff, errors, None).await;
    }
    if !right_password(&state, &staff, form.current).await? {
        let errors = vec![FieldError::new(
            "off-current",
            "That is not your current password.",
        )];
        return super::account_page(&state, &staff, errors, None).await;
    }
    state.store.disable_two_factor(staff.user.id).await?;
    tracing::info!(user = %staff.user.id, "Two-factor sign-in turned off");
    Ok(Redirect::to("/admin/account?done=two-factor-off").into_response())
}

/// Ten new recovery codes, in place of the old ones.
#[tracing::instrument(skip_all)]
pub(super) async fn new_recovery_codes(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Form(form): Form<PasswordCheck>,
) -> Result<Response, AppError> {
    if state.store.two_factor(staff.user.id).await?.is_none() {
        return Ok(Redirect::to("/admin/account").into_response());
    }
    if !right_password(&state, &staff, form.current).await? {
        let errors = vec![FieldError::new(
            "codes-current",
            "That is not your current password.",
        )];
        return super::account_page(&state, &staff, errors, None).await;
    }
    let (codes, hashes) = recovery_codes(&state);
    state
        .store
        .replace_recovery_codes(staff.user.id, &hashes)
        .await?;
    tracing::info!(user = %staff.user.id, "New recovery codes");
    Ok(codes_page(
        Some(AdminFrame::of(&staff)),
        codes,
        "/admin/account",
    ))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RequireForm {
    required: String,
}

/// An admin requires two-factor sign-in of everyone (or no longer does). Those
/// without it set it up at their next sign-in.
#[tracing::instrument(skip_all)]
pub(super) async fn require(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Form(form): Form<RequireForm>,
) -> Result<Response, AppError> {
    let required = form.required == "yes";
    state.store.require_two_factor(required).await?;
    tracing::info!(required, by = %staff.user.id, "Two-factor sign-in policy changed");
    Ok(Redirect::to("/admin/users").into_response())
}
