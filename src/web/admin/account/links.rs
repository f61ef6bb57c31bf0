//! Mailed links for staff: invitations (an admin sends one; the invitee chooses their
//! password) and password resets ("forgot your password", with the same answer
//! whatever the address). Each link works once, until it expires; only the SHA-256 of
//! its token is kept, and its mail is derived again from the key, as a
//! confirmation's is.

use axum::{
    Extension, Form,
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};

use super::{by_field, new_password_hash};
use crate::{
    audience::subscriber::SubscriberEmail,
    fields::FieldError,
    sending::outbox::{STAFF_INVITE, STAFF_RESET, staff_link_mail},
    staff::{Role, StaffUser, normalise_email},
    store::{
        Creation, LinkPurpose, LinkQueued, LoginAdmission, LoginAttempt, NewStaffLink, Removal,
    },
    tokens::ConfirmationToken,
    web::{
        AppError, AppState, ClientInfo,
        admin::{Staff, access::users_page},
        pages::{MessagePage, private, render, render_page},
    },
};

/// How long an invitation works.
const INVITATION_DAYS: i64 = 3;
/// How long a reset link works.
const RESET_MINUTES: i64 = 60;
/// Links of one kind an address is sent at most in an hour.
const LINKS_PER_HOUR: i64 = 3;
/// "Forgot your password" requests from one network in the sign-in window.
const FORGOT_PER_CLIENT: i64 = 20;

#[derive(Deserialize, Serialize, Default)]
#[serde(default)]
pub(in crate::web::admin) struct InviteForm {
    pub email: String,
    pub role: String,
}

/// An admin invites someone: the mail with the link that makes their account.
#[tracing::instrument(skip_all)]
pub(super) async fn invite(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Form(form): Form<InviteForm>,
) -> Result<Response, AppError> {
    let mut errors = Vec::new();
    let email = SubscriberEmail::parse(&form.email)
        .map_err(|m| errors.push(FieldError::new("invite-email", m)))
        .ok();
    let role = Role::parse(&form.role)
        .map_err(|_| errors.push(FieldError::new("invite-role", "Choose editor or admin.")))
        .ok();
    let (Some(email), Some(role)) = (email, role) else {
        return users_page(&state, &staff, &form, errors, None).await;
    };
    let email = normalise_email(email.as_str());
    let now = Utc::now();
    let expires_at = now + Duration::days(INVITATION_DAYS);
    let (mail, token_hash) =
        staff_link_mail(&state.secret, STAFF_INVITE, Some(role.as_str()), expires_at)?;
    let queued = state
        .store
        .create_staff_link(&NewStaffLink {
            token_hash,
            purpose: LinkPurpose::Invite,
            email: email.clone(),
            role: Some(role),
            created_by: Some(staff.user.id),
            now,
            expires_at,
            hourly_cap: LINKS_PER_HOUR,
            mail,
        })
        .await?;
    tracing::info!(?queued, by = %staff.user.id, "Staff invitation");
    match queued {
        LinkQueued::Queued => {
            state.outbox_wake.notify_one();
            let notice = format!(
                "Invitation sent to {email}. The link works until {}.",
                crate::time::uk_date_time(expires_at)
            );
            users_page(
                &state,
                &staff,
                &InviteForm::default(),
                Vec::new(),
                Some(notice),
            )
            .await
        }
        LinkQueued::HasAccount => {
            let errors = vec![FieldError::new(
                "invite-email",
                "This address has an account already.",
            )];
            users_page(&state, &staff, &form, errors, None).await
        }
        LinkQueued::NotSent => {
            let errors = vec![FieldError::new(
                "invite-email",
                format!(
                    "This address has had {LINKS_PER_HOUR} invitations this hour. Try again later."
                ),
            )];
            users_page(&state, &staff, &form, errors, None).await
        }
    }
}

#[derive(Deserialize)]
pub(super) struct TokenParams {
    token: Option<String>,
}

/// The live link a page's `?token=` names, of this purpose.
async fn live_link(
    state: &AppState,
    params: &TokenParams,
    purpose: LinkPurpose,
) -> Result<([u8; 32], crate::store::StaffLink), AppError> {
    let hash = params
        .token
        .as_deref()
        .and_then(ConfirmationToken::parse)
        .map(|t| t.hash());
    let link = match hash {
        Some(hash) => state.store.staff_link(&hash, Utc::now()).await?,
        None => None,
    };
    match (hash, link) {
        (Some(hash), Some(link)) if link.purpose == purpose => Ok((hash, link)),
        _ => Err(AppError::page(
            StatusCode::NOT_FOUND,
            match purpose {
                LinkPurpose::Invite => MessagePage::new(
                    "This invitation does not work",
                    &[
                        "It may have been used already, or it has expired (invitations work for three days). Ask an admin to invite you again.",
                    ],
                ),
                LinkPurpose::Reset => MessagePage::new(
                    "This link does not work",
                    &[
                        "It may have been used already, or it has expired (reset links work for an hour).",
                        "You can ask for a new one from the sign-in page.",
                    ],
                ),
            },
        )),
    }
}

#[derive(Serialize)]
struct PasswordView<'a> {
    heading: &'a str,
    intro: String,
    action: String,
    button: &'a str,
    errors: std::collections::BTreeMap<String, String>,
    error_list: &'a [FieldError],
}

fn password_page(
    heading: &str,
    intro: String,
    action: String,
    button: &str,
    errors: &[FieldError],
) -> Response {
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let title = if errors.is_empty() {
        heading.to_owned()
    } else {
        format!("Error: {heading}")
    };
    let view = PasswordView {
        heading,
        intro,
        action,
        button,
        errors: by_field(errors),
        error_list: errors,
    };
    private((status, render("pages/admin_password.html", &title, &view)))
}

fn invitation_form(token: &str, link: &crate::store::StaffLink, errors: &[FieldError]) -> Response {
    let role = link.role.map_or("editor", Role::as_str);
    password_page(
        "Make your account",
        format!(
            "You are invited as an {role}. Choose a password for {}: at least {} characters. A few words you will remember are a good password.",
            link.email,
            crate::staff::MIN_PASSWORD_CHARS
        ),
        format!("/admin/invitation?token={token}"),
        "Make my account",
        errors,
    )
}

pub(super) async fn invitation_page(
    State(state): State<AppState>,
    Query(params): Query<TokenParams>,
) -> Result<Response, AppError> {
    let (_, link) = live_link(&state, &params, LinkPurpose::Invite).await?;
    Ok(invitation_form(
        params.token.as_deref().unwrap_or_default(),
        &link,
        &[],
    ))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct NewPasswordForm {
    password: String,
    confirm: String,
}

#[tracing::instrument(skip_all)]
pub(super) async fn accept_invitation(
    State(state): State<AppState>,
    Query(params): Query<TokenParams>,
    Form(form): Form<NewPasswordForm>,
) -> Result<Response, AppError> {
    let (hash, link) = live_link(&state, &params, LinkPurpose::Invite).await?;
    let token = params.token.as_deref().unwrap_or_default();
    let password_hash = match new_password_hash(&state, &form.password, &form.confirm).await? {
        Ok(hash) => hash,
        Err(errors) => return Ok(invitation_form(token, &link, &errors)),
    };
    let user = StaffUser {
        id: uuid::Uuid::now_v7(),
        email: link.email.clone(),
        role: link.role.unwrap_or(Role::Editor),
    };
    match state
        .store
        .accept_invitation(&hash, &user, &password_hash, Utc::now())
        .await?
    {
        // Choosing the password was signing in (with the second step, when everyone
        // must use one).
        Creation::Created => {
            tracing::info!(user = %user.id, "Invitation accepted");
            super::two_factor::after_password(&state, &user).await
        }
        Creation::Taken => Err(AppError::page(
            StatusCode::CONFLICT,
            MessagePage::new(
                "This invitation was used already",
                &["If you made your account, sign in at /admin/login."],
            ),
        )),
    }
}

#[derive(Serialize)]
struct ForgotView<'a> {
    email: &'a str,
    errors: std::collections::BTreeMap<String, String>,
    error_list: &'a [FieldError],
}

fn forgot_form(email: &str, errors: &[FieldError]) -> Response {
    let (status, title) = if errors.is_empty() {
        (StatusCode::OK, "Forgot your password")
    } else {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Error: Forgot your password",
        )
    };
    let view = ForgotView {
        email,
        errors: by_field(errors),
        error_list: errors,
    };
    private((status, render("pages/admin_forgot.html", title, &view)))
}

pub(super) async fn forgot_page() -> Response {
    forgot_form("", &[])
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ForgotForm {
    email: String,
}

/// Mails a reset link if the address has an account (at most a few an hour); the
/// answer is the same whatever the address.
#[tracing::instrument(skip_all)]
pub(super) async fn forgot(
    State(state): State<AppState>,
    client: ClientInfo,
    Form(form): Form<ForgotForm>,
) -> Result<Response, AppError> {
    let email = match SubscriberEmail::parse(&form.email) {
        Ok(email) => normalise_email(email.as_str()),
        Err(message) => {
            return Ok(forgot_form(
                &form.email,
                &[FieldError::new("email", message)],
            ));
        }
    };
    let now = Utc::now();
    // Counted like failed sign-ins, and never forgotten: a bound on one client.
    let limits = [(format!("forgot:{}", client.network()), FORGOT_PER_CLIENT)];
    let attempt = LoginAttempt {
        id: uuid::Uuid::now_v7(),
        limits: &limits,
        since: crate::staff::sessions::failures_since(now),
        now,
    };
    if state.store.admit_login(&attempt).await? == LoginAdmission::Throttled {
        return Err(AppError::page(
            StatusCode::TOO_MANY_REQUESTS,
            MessagePage::new(
                "Too many requests",
                &["Wait a quarter of an hour, then try again."],
            ),
        ));
    }
    let expires_at = now + Duration::minutes(RESET_MINUTES);
    let (mail, token_hash) = staff_link_mail(&state.secret, STAFF_RESET, None, expires_at)?;
    let queued = state
        .store
        .create_staff_link(&NewStaffLink {
            token_hash,
            purpose: LinkPurpose::Reset,
            email: email.clone(),
            role: None,
            created_by: None,
            now,
            expires_at,
            hourly_cap: LINKS_PER_HOUR,
            mail,
        })
        .await?;
    tracing::info!(?queued, "Password reset asked for");
    if queued == LinkQueued::Queued {
        state.outbox_wake.notify_one();
    }
    Ok(private(render_page(&MessagePage::new(
        "Check your inbox",
        &[
            &format!(
                "If {email} has an account, we have sent it a link to choose a new password. The link works for an hour."
            ),
            "Nothing arrived? Check the address and your spam folder, or ask an admin.",
        ],
    ))))
}

fn reset_form(token: &str, link: &crate::store::StaffLink, errors: &[FieldError]) -> Response {
    password_page(
        "Choose a new password",
        format!(
            "For {}: at least {} characters. Saving it signs you out everywhere you are signed in.",
            link.email,
            crate::staff::MIN_PASSWORD_CHARS
        ),
        format!("/admin/reset?token={token}"),
        "Save my new password",
        errors,
    )
}

pub(super) async fn reset_page(
    State(state): State<AppState>,
    Query(params): Query<TokenParams>,
) -> Result<Response, AppError> {
    let (_, link) = live_link(&state, &params, LinkPurpose::Reset).await?;
    Ok(reset_form(
        params.token.as_deref().unwrap_or_default(),
        &link,
        &[],
    ))
}

#[tracing::instrument(skip_all)]
pub(super) async fn reset(
    State(state): State<AppState>,
    Query(params): Query<TokenParams>,
    Form(form): Form<NewPasswordForm>,
) -> Result<Response, AppError> {
    let (hash, link) = live_link(&state, &params, LinkPurpose::Reset).await?;
    let token = params.token.as_deref().unwrap_or_default();
    let password_hash = match new_password_hash(&state, &form.password, &form.confirm).await? {
        Ok(hash) => hash,
        Err(errors) => return Ok(reset_form(token, &link, &errors)),
    };
    match state
        .store
        .reset_password(&hash, &password_hash, Utc::now())
        .await?
    {
        Removal::Removed => {
            tracing::info!(user = ?link.user_id, "Password reset");
            Ok(Redirect::to("/admin/login?reset=done").into_response())
        }
        Removal::NotFound => Err(AppError::page(
            StatusCode::NOT_FOUND,
            MessagePage::new(
                "This link was used already",
                &["You can ask for a new one from the sign-in page."],
            ),
        )),
    }
}
