//! What a person's fresh mailed link adds to their page: downloading what we hold about
//! them, and erasing it. From the long-lived link in an issue (which may have been
//! forwarded) the page offers to mail them that link first.

use axum::{
    Form, Json,
    extract::{Query, State, rejection::QueryRejection},
    http::{StatusCode, header},
    response::Response,
};
use chrono::Utc;
use serde_json::json;

use super::{Access, TokenParams, access, fields_of, show, standing, value};
use crate::{
    audience::{budgets::BudgetKeys, subscription::RESEND_CAP},
    store::{ConsentMethod, LinkFor, LinkOutcome, LinkRequest},
    web::{
        AppState, ClientInfo,
        error::AppError,
        pages::{MessagePage, private, render_page},
        subscriber_actions,
        unsubscribe::masked,
    },
};

/// Downloading and erasing need the fresh link; the page says how to get one.
fn needs_fresh_link(access: &Access) -> Result<(), AppError> {
    if access.full {
        return Ok(());
    }
    Err(AppError::page(
        StatusCode::FORBIDDEN,
        MessagePage::new(
            "We need to email you a link first",
            &[
                "To download or erase what we hold about you, open the link we email you: it works for 24 hours. Ask for it on your subscription page.",
            ],
        ),
    ))
}

/// Mails the person a fresh link to their page (at most a few a day, within the
/// sign-up budgets), and shows the page again saying so.
#[tracing::instrument(skip_all)]
pub(super) async fn mail_link(
    State(state): State<AppState>,
    client: ClientInfo,
    params: Result<Query<TokenParams>, QueryRejection>,
) -> Result<Response, AppError> {
    let access = access(&state, params)?;
    let standing = standing(&state, &access).await?;
    let list = state
        .store
        .lists()
        .await?
        .into_iter()
        .find(|l| l.id == access.list_id)
        .unwrap_or_else(|| (*state.list).clone());
    let now = Utc::now();
    let outcome = state
        .store
        .request_preferences_link(&LinkRequest {
            to: LinkFor::Subscriber(standing.person.id),
            mail: crate::sending::outbox::preferences_link(&list)?,
            form_nonce: None,
            budget_keys: BudgetKeys::new(client.network(), &standing.person.email, now),
            budgets: state.settings.signup_budgets,
            daily_cap: RESEND_CAP,
            now,
        })
        .await?;
    tracing::info!(?outcome, subscriber = %standing.person.id, "Fresh preference link asked for");
    let notice = match outcome {
        LinkOutcome::Queued => {
            state.outbox_wake.notify_one();
            format!(
                "We have sent a link to {}. Open it within 24 hours to download or erase what we hold about you.",
                masked(&standing.person.email)
            )
        }
        LinkOutcome::NotSent => format!(
            "We have sent {} as many links as we send in a day. Please use one of those, or try again tomorrow.",
            masked(&standing.person.email)
        ),
        LinkOutcome::OverBudget(_) | LinkOutcome::FormTokenUsed => {
            let page = MessagePage::new(
                "Too many requests just now",
                &["We have sent as many emails as we can this hour. Please try again in an hour."],
            );
            return Ok(private((StatusCode::TOO_MANY_REQUESTS, render_page(&page))));
        }
    };
    Ok(show(
        &access,
        &standing,
        &fields_of(&standing),
        &[],
        Some(&notice),
    ))
}

/// Everything we hold about the person, as a JSON file: who they are, their lists,
/// and their ledger (a subject access request in one click).
#[tracing::instrument(skip_all)]
pub(super) async fn download(
    State(state): State<AppState>,
    client: ClientInfo,
    params: Result<Query<TokenParams>, QueryRejection>,
) -> Result<Response, AppError> {
    let access = access(&state, params)?;
    needs_fresh_link(&access)?;
    let person = standing(&state, &access).await?.person;
    let held = subscriber_actions::held(&state, person.id)
        .await?
        .ok_or_else(super::nothing_held)?;
    let now = Utc::now();
    state
        .store
        .record_export(
            person.id,
            access.list_id,
            &client.consent(ConsentMethod::Preferences),
            now,
        )
        .await?;
    tracing::info!(subscriber = %person.id, "Data downloaded by its subject");
    let body = json!({
        "downloaded_at": now,
        "person": held.person,
        "subscriptions": held.subscriptions,
        "ledger": held.ledger,
    });
    Ok(private((
        [(
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"my-newsletter-data.json\"",
        )],
        Json(body),
    )))
}

/// Erases the person as staff erasure does, once they tick that they mean it.
#[tracing::instrument(skip_all)]
pub(super) async fn erase(
    State(state): State<AppState>,
    params: Result<Query<TokenParams>, QueryRejection>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let access = access(&state, params)?;
    needs_fresh_link(&access)?;
    let standing = standing(&state, &access).await?;
    if value(&pairs, "confirm") != "yes" {
        let errors = [crate::fields::FieldError::new(
            "confirm",
            "Tick the box to say you want everything erased.",
        )];
        return Ok(show(
            &access,
            &standing,
            &fields_of(&standing),
            &errors,
            None,
        ));
    }
    crate::audience::erasure::erase(
        state.store.as_ref(),
        &state.secret,
        (standing.person.id, &standing.person.email),
        ConsentMethod::Preferences,
        Utc::now(),
    )
    .await?;
    tracing::info!(subscriber = %standing.person.id, "Erased at its subject's request");
    Ok(private(render_page(
        &MessagePage::new(
            "Everything is erased",
            &[
                "We have erased your address, your name and your other details, and you will receive nothing more from us.",
                "We keep only a record, with nothing that names you, of when you joined and left each newsletter.",
            ],
        )
        .offering_signup(),
    )))
}
