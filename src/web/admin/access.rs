//! Who may use the newsletter: the staff accounts and the API tokens. Admins only.
//! Admins invite people here by email (`account::links`), see who has two-factor
//! sign-in and may require it, and remove accounts; the first admin is made from the
//! shell (`newsletter admin create-user`). API tokens are made here (shown once) or
//! from the shell, and revoked here.

use axum::{
    Extension, Form,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    routing::{MethodRouter, get, post},
};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{AdminFrame, Staff, account::InviteForm};
use crate::{
    fields::FieldError,
    store::{Creation, Removal, StaffMember},
    time::uk_date_time,
    tokens,
    web::{
        AppError, AppState,
        pages::{MessagePage, render},
    },
};

pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/admin/users", get(users)),
        ("/admin/users/{id}/remove", post(remove_user)),
        ("/admin/tokens", get(api_tokens).post(create_token)),
        ("/admin/tokens/revoke", post(revoke_token)),
    ]
}

#[derive(Serialize)]
struct UserRow {
    id: Uuid,
    email: String,
    role: &'static str,
    added: String,
    is_you: bool,
}

#[derive(Serialize)]
struct InvitationRow {
    email: String,
    role: &'static str,
    expires: String,
}

#[derive(Serialize)]
struct UsersView<'a> {
    #[serde(flatten)]
    frame: AdminFrame,
    users: Vec<UserRow>,
    invitations: Vec<InvitationRow>,
    two_factor_required: bool,
    form: &'a InviteForm,
    errors: std::collections::BTreeMap<String, String>,
    error_list: Vec<FieldError>,
    notice: Option<String>,
}

/// The staff page, with the invitation form as typed and what became of it.
pub(super) async fn users_page(
    state: &AppState,
    staff: &Staff,
    form: &InviteForm,
    errors: Vec<FieldError>,
    notice: Option<String>,
) -> Result<Response, AppError> {
    let users = state
        .store
        .staff_users()
        .await?
        .into_iter()
        .map(|StaffMember { user, added_at }| UserRow {
            is_you: user.id == staff.user.id,
            id: user.id,
            email: user.email,
            role: user.role.as_str(),
            added: uk_date_time(added_at),
        })
        .collect();
    let invitations = state
        .store
        .pending_invitations(Utc::now())
        .await?
        .into_iter()
        .map(|i| InvitationRow {
            email: i.email,
            role: i.role.as_str(),
            expires: uk_date_time(i.expires_at),
        })
        .collect();
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let title = if errors.is_empty() {
        "Staff"
    } else {
        "Error: Staff"
    };
    let view = UsersView {
        frame: AdminFrame::of(staff),
        users,
        invitations,
        two_factor_required: state.store.two_factor_required().await?,
        form,
        errors: errors
            .iter()
            .map(|e| (e.field.to_string(), e.message.clone()))
            .collect(),
        error_list: errors,
        notice,
    };
    Ok((status, render("pages/admin_users.html", title, &view)).into_response())
}

async fn users(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
) -> Result<Response, AppError> {
    users_page(&state, &staff, &InviteForm::default(), Vec::new(), None).await
}

#[tracing::instrument(skip_all)]
async fn remove_user(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let id = Uuid::parse_str(&id).ok();
    if id == Some(staff.user.id) {
        return Err(AppError::page(
            StatusCode::CONFLICT,
            MessagePage::new(
                "You cannot remove yourself",
                &["Ask another admin to remove your account, so that someone can always sign in."],
            ),
        ));
    }
    match id {
        Some(id) if state.store.delete_staff_user(id).await? == Removal::Removed => {
            tracing::info!(user = %id, by = %staff.user.id, "Staff user removed");
            Ok(Redirect::to("/admin/users").into_response())
        }
        _ => Err(AppError::page(
            StatusCode::NOT_FOUND,
            MessagePage::new(
                "No such staff user",
                &["They may have been removed already."],
            ),
        )),
    }
}

#[derive(Serialize)]
struct TokenRow {
    name: String,
    made: String,
    revoked: Option<String>,
}

#[derive(Serialize)]
struct TokensView {
    #[serde(flatten)]
    frame: AdminFrame,
    tokens: Vec<TokenRow>,
    /// A token just made: shown this once.
    new_token: Option<(String, String)>,
    error: Option<String>,
    name: String,
}

async fn tokens_page(
    state: &AppState,
    staff: &Staff,
    status: StatusCode,
    new_token: Option<(String, String)>,
    error: Option<String>,
    name: String,
) -> Result<Response, AppError> {
    let tokens = state
        .store
        .api_tokens()
        .await?
        .into_iter()
        .map(|token| TokenRow {
            name: token.name,
            made: uk_date_time(token.created_at),
            revoked: token.revoked_at.map(uk_date_time),
        })
        .collect();
    let view = TokensView {
        frame: AdminFrame::of(staff),
        tokens,
        new_token,
        error,
        name,
    };
    let title = if view.error.is_some() {
        "Error: API tokens"
    } else {
        "API tokens"
    };
    // No cache keeps a new token: every page behind the sign-in is `no-store`.
    Ok((status, render("pages/admin_tokens.html", title, &view)).into_response())
}

async fn api_tokens(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
) -> Result<Response, AppError> {
    tokens_page(&state, &staff, StatusCode::OK, None, None, String::new()).await
}

#[derive(Deserialize)]
struct TokenForm {
    #[serde(default)]
    name: String,
}

#[tracing::instrument(skip_all)]
async fn create_token(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Form(form): Form<TokenForm>,
) -> Result<Response, AppError> {
    let Some(name) = tokens::api_token_name(&form.name).map(str::to_owned) else {
        let error = format!("Give the token a name of {}.", tokens::API_TOKEN_NAME_RULE);
        let typed = form.name.trim().to_owned();
        return tokens_page(
            &state,
            &staff,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            Some(error),
            typed,
        )
        .await;
    };
    let token = tokens::generate_api_token();
    let made = state
        .store
        .create_api_token(
            Uuid::now_v7(),
            &name,
            &tokens::sha256(token.as_bytes()),
            Utc::now(),
        )
        .await?;
    if made == Creation::Taken {
        let error = format!(
            "There is already a token called “{name}”: revoke it first, or choose another name."
        );
        return tokens_page(
            &state,
            &staff,
            StatusCode::CONFLICT,
            None,
            Some(error),
            name,
        )
        .await;
    }
    tracing::info!(by = %staff.user.id, "API token made");
    tokens_page(
        &state,
        &staff,
        StatusCode::CREATED,
        Some((name, token)),
        None,
        String::new(),
    )
    .await
}

#[tracing::instrument(skip_all)]
async fn revoke_token(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Form(form): Form<TokenForm>,
) -> Result<Response, AppError> {
    state.store.revoke_api_token(&form.name, Utc::now()).await?;
    tracing::info!(by = %staff.user.id, "API token revoked");
    Ok(Redirect::to("/admin/tokens").into_response())
}
