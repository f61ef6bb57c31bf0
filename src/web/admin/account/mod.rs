//! Staff looking after their own accounts, without a shell:
//!
//! - `links`: an admin invites someone by email (the link works once, for three
//!   days, and the invitee chooses their own password); "forgot your password" mails a
//!   reset link (an hour; the same answer whatever the address);
//! - `two_factor`: optional two-factor sign-in (RFC 6238) with recovery codes, which
//!   an admin may require of everyone; the sign-in's second step;
//! - here: the account page, where a staff member changes their own password.
//!
//! The shell commands (`newsletter admin create-user`) stay, for the first admin.

mod links;
mod two_factor;

pub(super) use links::InviteForm;
pub(super) use two_factor::after_password;

use axum::{
    Extension, Form,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    routing::{MethodRouter, get, post},
};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{AdminFrame, Staff};
use crate::{
    fields::FieldError,
    staff::{Busy, password_problem},
    web::{
        AppError, AppState,
        pages::{MessagePage, render},
    },
};

/// The pages reached before a session: from a mailed link, or mid sign-in.
pub fn public_routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        (
            "/admin/invitation",
            get(links::invitation_page).post(links::accept_invitation),
        ),
        ("/admin/forgot", get(links::forgot_page).post(links::forgot)),
        ("/admin/reset", get(links::reset_page).post(links::reset)),
        (
            "/admin/login/two-factor",
            get(two_factor::second_step_page).post(two_factor::second_step),
        ),
        (
            "/admin/login/two-factor/setup",
            get(two_factor::pending_setup_page).post(two_factor::pending_setup),
        ),
    ]
}

/// Every staff member's own account.
pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/admin/account", get(account)),
        ("/admin/account/password", post(change_password)),
        (
            "/admin/account/two-factor",
            get(two_factor::setup_page).post(two_factor::setup),
        ),
        ("/admin/account/two-factor/off", post(two_factor::turn_off)),
        (
            "/admin/account/recovery-codes",
            post(two_factor::new_recovery_codes),
        ),
    ]
}

/// Admins: invitations, and requiring two-factor sign-in.
pub fn admin_routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/admin/users/invite", post(links::invite)),
        ("/admin/users/two-factor", post(two_factor::require)),
    ]
}

/// A new password as typed twice: its hash, or what is wrong with it.
async fn new_password_hash(
    state: &AppState,
    password: &str,
    confirm: &str,
) -> Result<Result<String, Vec<FieldError>>, AppError> {
    if let Some(problem) = password_problem(password) {
        return Ok(Err(vec![FieldError::new("password", problem)]));
    }
    if password != confirm {
        return Ok(Err(vec![FieldError::new(
            "confirm",
            "The two passwords are not the same.",
        )]));
    }
    match state.password_checks.hash(password.to_owned()).await? {
        Ok(hash) => Ok(Ok(hash)),
        Err(Busy) => Err(busy()),
    }
}

fn busy() -> AppError {
    AppError::page(
        StatusCode::SERVICE_UNAVAILABLE,
        MessagePage::new(
            "Too busy just now",
            &["Too many people are signing in at once. Please try again in a few seconds."],
        ),
    )
}

/// `field: message` for the templates.
fn by_field(errors: &[FieldError]) -> std::collections::BTreeMap<String, String> {
    errors
        .iter()
        .map(|e| (e.field.to_string(), e.message.clone()))
        .collect()
}

#[derive(Serialize)]
struct AccountView {
    #[serde(flatten)]
    frame: AdminFrame,
    role: &'static str,
    two_factor: bool,
    two_factor_required: bool,
    recovery_codes_left: i64,
    errors: std::collections::BTreeMap<String, String>,
    error_list: Vec<FieldError>,
    notice: Option<&'static str>,
}

async fn account_page(
    state: &AppState,
    staff: &Staff,
    errors: Vec<FieldError>,
    notice: Option<&'static str>,
) -> Result<Response, AppError> {
    let two_factor = state.store.two_factor(staff.user.id).await?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let title = if errors.is_empty() {
        "Your account"
    } else {
        "Error: Your account"
    };
    let view = AccountView {
        frame: AdminFrame::of(staff),
        role: staff.user.role.as_str(),
        two_factor: two_factor.is_some(),
        two_factor_required: state.store.two_factor_required().await?,
        recovery_codes_left: two_factor.map_or(0, |t| t.recovery_codes_left),
        errors: by_field(&errors),
        error_list: errors,
        notice,
    };
    Ok((status, render("pages/admin_account.html", title, &view)).into_response())
}

#[derive(Deserialize)]
struct Done {
    done: Option<String>,
}

async fn account(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    axum::extract::Query(done): axum::extract::Query<Done>,
) -> Result<Response, AppError> {
    let notice = match done.done.as_deref() {
        Some("password") => {
            Some("Your password is changed. Any other sessions of yours have ended.")
        }
        Some("two-factor-off") => Some("Two-factor sign-in is off."),
        _ => None,
    };
    account_page(&state, &staff, Vec::new(), notice).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct PasswordForm {
    current: String,
    password: String,
    confirm: String,
}

/// A staff member's new password, once they give their current one. Their other
/// sessions end (this one stays).
#[tracing::instrument(skip_all)]
async fn change_password(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Form(form): Form<PasswordForm>,
) -> Result<Response, AppError> {
    let hash = state.store.password_hash(staff.user.id).await?;
    let Ok(matches) = state.password_checks.matches(form.current, hash).await? else {
        return Err(busy());
    };
    if !matches {
        let errors = vec![FieldError::new(
            "current",
            "That is not your current password.",
        )];
        return account_page(&state, &staff, errors, None).await;
    }
    let hash = match new_password_hash(&state, &form.password, &form.confirm).await? {
        Ok(hash) => hash,
        Err(errors) => return account_page(&state, &staff, errors, None).await,
    };
    state
        .store
        .change_password(staff.user.id, &hash, &staff.session, Utc::now())
        .await?;
    tracing::info!(user = %staff.user.id, "Password changed");
    Ok(Redirect::to("/admin/account?done=password").into_response())
}
