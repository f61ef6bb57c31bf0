//! Leaving: `GET /unsubscribe?token=` shows what will happen and a button (mail scanners
//! follow links, so a GET changes nothing); `POST /unsubscribe?token=` unsubscribes.
//! The POST also takes RFC 8058's `List-Unsubscribe=One-Click` body, which mail clients
//! send without cookies or a page; it answers 200, never a redirect, and is idempotent.
//! A link leaves the list it came with; the page's second button (`everything=yes`)
//! leaves every list.

use crate::audience::subscription::UnsubscribeOutcome;
use axum::{
    Router,
    body::Bytes,
    extract::{Query, State, rejection::QueryRejection},
    http::StatusCode,
    response::Response,
    routing::get,
};
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::{
    AppState, ClientInfo,
    error::AppError,
    pages::{MessagePage, private, render, render_page},
    subscriptions::names_of,
};
use crate::{
    sending::outbox::and_joined,
    store::{ConsentMethod, UnsubscribeRequest},
    tokens::UnsubscribeToken,
};

pub fn router() -> Router<AppState> {
    Router::new().route("/unsubscribe", get(unsubscribe_page).post(unsubscribe))
}

#[derive(Deserialize)]
pub(super) struct TokenParams {
    token: Option<String>,
}

pub(super) fn verify(
    state: &AppState,
    params: Result<Query<TokenParams>, QueryRejection>,
) -> Result<UnsubscribeToken, AppError> {
    params
        .ok()
        .and_then(|Query(p)| p.token)
        .and_then(|token| UnsubscribeToken::verify(&state.secret, &token))
        .ok_or_else(|| {
            AppError::page(
                StatusCode::BAD_REQUEST,
                MessagePage::new(
                    "This unsubscribe link does not work",
                    &[
                        "It may have been cut short or changed. Open it straight from the email, or copy the whole link into your browser.",
                        "Every issue has its own unsubscribe link at the foot of the email.",
                    ],
                ),
            )
        })
}

/// The name of the list the token names, and the names of the other lists the person
/// is on now.
async fn lists_of(
    state: &AppState,
    token: &UnsubscribeToken,
) -> Result<(String, Vec<String>), AppError> {
    let lists = state.store.lists().await?;
    let name = |id: Uuid| {
        lists
            .iter()
            .find(|l| l.id == id)
            .map(|l| names_of(std::slice::from_ref(l)))
    };
    let this = name(token.list_id).unwrap_or_else(|| names_of(&[]));
    let others = state
        .store
        .subscriptions_of(token.subscriber_id)
        .await?
        .into_iter()
        .filter(|(list, status)| *list != token.list_id && !status.has_ended())
        .filter_map(|(list, _)| name(list))
        .collect();
    Ok((this, others))
}

#[tracing::instrument(skip_all)]
async fn unsubscribe_page(
    State(state): State<AppState>,
    params: Result<Query<TokenParams>, QueryRejection>,
) -> Result<Response, AppError> {
    let token = verify(&state, params)?;
    let subscriber = state
        .store
        .subscriber(token.subscriber_id, token.list_id)
        .await?;
    let (list, others) = lists_of(&state, &token).await?;
    match subscriber {
        // Opened again after leaving: say so, rather than offer the button again.
        Some(s) if s.status.has_ended() && others.is_empty() => {
            Ok(private(render_page(&MessagePage::new(
                "You have already unsubscribed",
                &[
                    &format!("{} receives no more issues of {list}.", masked(&s.email)),
                    "Changed your mind? You can sign up again at any time on our home page.",
                ],
            ))))
        }
        Some(s) => Ok(private(render(
            "pages/unsubscribe.html",
            "Unsubscribe",
            &json!({
                "token": token.sign(&state.secret),
                "address": masked(&s.email),
                "list": list,
                "left_already": s.status.has_ended(),
                "others": others,
            }),
        ))),
        None => Ok(private(render_page(&MessagePage::new(
            "You are not subscribed",
            &[&format!("This address does not receive {list}.")],
        )))),
    }
}

/// An address shown partly, so the person can tell it is theirs and someone who sees
/// the page over their shoulder (or a forwarded link) learns little: `j•••@example.org`.
pub(super) fn masked(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}\u{2022}\u{2022}\u{2022}@{domain}")
        }
        None => "\u{2022}\u{2022}\u{2022}".into(),
    }
}

#[tracing::instrument(skip_all)]
async fn unsubscribe(
    State(state): State<AppState>,
    client: ClientInfo,
    params: Result<Query<TokenParams>, QueryRejection>,
    body: Bytes,
) -> Result<Response, AppError> {
    let token = verify(&state, params)?;
    // RFC 8058 allows the body as a form or as multipart: look for the words themselves.
    let one_click = body
        .windows(b"List-Unsubscribe=One-Click".len())
        .any(|w| w == b"List-Unsubscribe=One-Click");
    let method = if one_click {
        ConsentMethod::OneClick
    } else {
        ConsentMethod::Link
    };
    // The page's second button; never part of a one-click request.
    let everything = !one_click
        && body
            .split(|b| *b == b'&')
            .any(|field| field == b"everything=yes");
    let (list, others) = lists_of(&state, &token).await?;
    let outcome = state
        .store
        .unsubscribe(&UnsubscribeRequest {
            token,
            everything,
            consent: client.consent(method),
            now: Utc::now(),
        })
        .await?;
    tracing::info!(?outcome, one_click, everything, issue = ?token.issue_id, "Unsubscribe");
    let mut left = vec![list.clone()];
    if everything {
        left.extend(others);
    }
    let left: Vec<&str> = left.iter().map(String::as_str).collect();
    let list = &and_joined(&left);
    let page = match outcome {
        UnsubscribeOutcome::Unsubscribed if everything => MessagePage::new(
            "You have left every newsletter",
            &[&format!(
                "You will receive no more issues of {list} at this address. If you change your mind, you can sign up again at any time."
            )],
        ),
        UnsubscribeOutcome::Unsubscribed => MessagePage::new(
            "You have unsubscribed",
            &[&format!(
                "You will receive no more issues of {list} at this address. If you change your mind, you can sign up again at any time."
            )],
        ),
        UnsubscribeOutcome::AlreadyUnsubscribed => MessagePage::new(
            "You have already unsubscribed",
            &[&format!(
                "You will receive no more issues of {list} at this address."
            )],
        ),
        UnsubscribeOutcome::NotSubscribed => MessagePage::new(
            "You are not subscribed",
            &[&format!("This address does not receive {list}.")],
        ),
    };
    Ok(private(render_page(&page)))
}
