//! "Manage your subscription" on the site: an address, and the link mailed to it if
//! it is a subscriber's (the same answer whoever it belongs to, within the sign-up
//! budgets and a few links a day for each person).

use axum::{Form, extract::State, http::StatusCode, response::Response};
use chrono::Utc;
use serde_json::json;

use crate::{
    audience::{budgets::BudgetKeys, subscriber::SubscriberEmail, subscription::RESEND_CAP},
    fields::FieldError,
    store::{LinkFor, LinkOutcome, LinkRequest},
    tokens::FormToken,
    web::{
        AppState, ClientInfo,
        error::AppError,
        pages::{MessagePage, private, render, render_page},
    },
};

/// "Manage your subscription" on the site: the address to mail the link to.
fn request_form(
    state: &AppState,
    email: &str,
    errors: &[FieldError],
) -> axum::response::Html<String> {
    let by_field: std::collections::BTreeMap<&str, &str> = errors
        .iter()
        .map(|e| (e.field.as_ref(), e.message.as_str()))
        .collect();
    let title = if errors.is_empty() {
        "Manage your subscription"
    } else {
        "Error: Manage your subscription"
    };
    render(
        "pages/preferences_request.html",
        title,
        &json!({
            "email": email,
            "errors": by_field,
            "error_list": errors,
            "form_token": FormToken::new(Utc::now()).sign(&state.secret),
        }),
    )
}

pub(super) async fn request_page(State(state): State<AppState>) -> Response {
    private(request_form(&state, "", &[]))
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub(super) struct LinkForm {
    email: String,
    form_token: Option<String>,
    website: String,
}

/// Mails the link if the address is a subscriber's, within the sign-up budgets; the
/// answer is the same whoever the address belongs to.
#[tracing::instrument(skip_all)]
pub(super) async fn request_link(
    State(state): State<AppState>,
    client: ClientInfo,
    Form(form): Form<LinkForm>,
) -> Result<Response, AppError> {
    let sent = |email: &str| {
        private(render_page(&MessagePage::new(
            "Check your inbox",
            &[
                &format!(
                    "If {email} is on our lists, we have sent it a link to manage its subscription. It may take a few minutes to arrive."
                ),
                "Nothing arrived? Check the address, and your spam folder.",
            ],
        )))
    };
    if !form.website.trim().is_empty() {
        return Ok(sent(form.email.trim()));
    }
    let now = Utc::now();
    let token = FormToken::check(
        &state.secret,
        form.form_token.as_deref(),
        now,
        state.settings.signup_form_min_age,
    );
    let email = SubscriberEmail::parse(&form.email);
    let (token, email) = match (token, email) {
        (Ok(token), Ok(email)) => (token, email),
        (token, email) => {
            let mut errors = Vec::new();
            if token.is_err() {
                errors.push(FieldError::new(
                    "form_token",
                    "This form could not be checked. Please send it again.",
                ));
            }
            if let Err(message) = email {
                errors.push(FieldError::new("email", message));
            }
            return Ok(private((
                StatusCode::UNPROCESSABLE_ENTITY,
                request_form(&state, &form.email, &errors),
            )));
        }
    };
    let outcome = state
        .store
        .request_preferences_link(&LinkRequest {
            to: LinkFor::Address(email.as_str().to_owned()),
            mail: crate::sending::outbox::preferences_link(&state.list)?,
            form_nonce: Some(token.nonce),
            budget_keys: BudgetKeys::new(client.network(), email.as_str(), now),
            budgets: state.settings.signup_budgets,
            daily_cap: RESEND_CAP,
            now,
        })
        .await?;
    tracing::info!(?outcome, "Preference link asked for");
    match outcome {
        LinkOutcome::Queued => state.outbox_wake.notify_one(),
        LinkOutcome::NotSent => {}
        LinkOutcome::FormTokenUsed => {
            let errors = [FieldError::new(
                "form_token",
                "This form was sent already. Please send it again.",
            )];
            return Ok(private((
                StatusCode::UNPROCESSABLE_ENTITY,
                request_form(&state, email.as_str(), &errors),
            )));
        }
        LinkOutcome::OverBudget(_) => {
            let page = MessagePage::new(
                "Too many requests just now",
                &["We have sent as many emails as we can this hour. Please try again in an hour."],
            );
            return Ok(private((StatusCode::TOO_MANY_REQUESTS, render_page(&page))));
        }
    }
    Ok(sent(email.as_str()))
}
