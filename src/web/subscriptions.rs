//! Sign-up and confirmation: `GET /`, `POST /subscriptions`, and
//! `GET`/`POST /subscriptions/confirm`.
//!
//! A valid sign-up always gets the same answer, whatever we already knew of the
//! address, so the form cannot be used to find out who is subscribed. The mail is
//! written to the outbox in the sign-up's transaction and sent by the worker, so a
//! relay that is down never loses a sign-up.

use std::collections::BTreeMap;

use axum::{
    Form, Json, Router,
    extract::{
        FromRequest, Query, Request, State,
        rejection::{FormRejection, QueryRejection},
    },
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::{
    AppState, ClientInfo,
    error::AppError,
    pages::{MessagePage, private, render, render_page},
};
use crate::{
    domain::{
        ConsentWording, FieldError, Locality, NewSubscriber, Organisation, SubscriberEmail,
        SubscriberName,
    },
    outbox::{WELCOME, WelcomePayload},
    store::{
        ConfirmOutcome, ConfirmRequest, ConsentContext, ConsentMethod, Invitation, NewOutboxMail,
        RESEND_CAP, SignupOutcome, SignupRequest,
    },
    tokens::ConfirmationToken,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(signup_page))
        .route("/subscriptions", post(subscribe))
        .route("/subscriptions/confirm", get(confirm_page).post(confirm))
}

/// The sign-up form as submitted, every field optional so that a missing one is a
/// clear 422 rather than a parse failure.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct SignupForm {
    email: Option<String>,
    name: Option<String>,
    organisation: Option<String>,
    locality: Option<String>,
    consent: Option<Consent>,
    /// The honeypot: hidden from people, filled in by bots.
    #[serde(skip_serializing)]
    website: Option<String>,
}

/// `true` in JSON; the checkbox's value (`yes`, or a browser's `on`) in a form.
#[derive(Debug, Deserialize, Serialize)]
#[serde(untagged)]
enum Consent {
    Flag(bool),
    Text(String),
}

impl SignupForm {
    fn consent_given(&self) -> bool {
        match &self.consent {
            Some(Consent::Flag(given)) => *given,
            Some(Consent::Text(text)) => {
                matches!(
                    text.trim().to_ascii_lowercase().as_str(),
                    "yes" | "on" | "true" | "1"
                )
            }
            None => false,
        }
    }

    fn honeypot_filled(&self) -> bool {
        self.website
            .as_deref()
            .is_some_and(|w| !w.trim().is_empty())
    }

    /// Every field's problems at once, in the order of the form.
    fn parse(&self) -> Result<NewSubscriber, Vec<FieldError>> {
        let mut errors = Vec::new();
        fn check<T>(
            errors: &mut Vec<FieldError>,
            field: &'static str,
            result: Result<T, String>,
        ) -> Option<T> {
            result
                .map_err(|message| errors.push(FieldError { field, message }))
                .ok()
        }
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        let email = check(
            &mut errors,
            "email",
            SubscriberEmail::parse(&text(&self.email)),
        );
        let name = check(
            &mut errors,
            "name",
            SubscriberName::parse(&text(&self.name)),
        );
        let organisation = check(
            &mut errors,
            "organisation",
            Organisation::parse(&text(&self.organisation)),
        );
        let locality = check(
            &mut errors,
            "locality",
            Locality::parse(&text(&self.locality)),
        );
        let consent = check(
            &mut errors,
            "consent",
            if self.consent_given() {
                Ok(())
            } else {
                Err("Tick the box to say you would like to receive the newsletter.".into())
            },
        );
        match (email, name, organisation, locality, consent) {
            (Some(email), Some(name), Some(organisation), Some(locality), Some(())) => {
                Ok(NewSubscriber {
                    email,
                    name,
                    organisation,
                    locality,
                })
            }
            _ => Err(errors),
        }
    }
}

/// A sign-up from the web form or from a JSON client; the answer takes the same form.
pub struct Submission {
    form: SignupForm,
    json: bool,
}

impl<S: Send + Sync> FromRequest<S> for Submission {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("application/json"));
        if json {
            let Json(form) =
                Json::<SignupForm>::from_request(req, state)
                    .await
                    .map_err(|rejection| AppError::Json {
                        status: rejection.status(),
                        message: rejection.body_text(),
                    })?;
            Ok(Self { form, json })
        } else {
            let Form(form) =
                Form::<SignupForm>::from_request(req, state)
                    .await
                    .map_err(|rejection| {
                        AppError::page(
                            rejection.status(),
                            MessagePage::new(
                                "We could not read that form",
                                &[
                                    "Please go back to the sign-up form and try again.",
                                    &rejection.body_text(),
                                ],
                            )
                            .offering_signup(),
                        )
                    })?;
            Ok(Self { form, json })
        }
    }
}

#[derive(Serialize)]
struct LocalityOption {
    slug: &'static str,
    label: &'static str,
}

fn signup_form_page(form: &SignupForm, errors: &[FieldError]) -> axum::response::Html<String> {
    let error_map: BTreeMap<&str, &str> = errors
        .iter()
        .map(|e| (e.field, e.message.as_str()))
        .collect();
    let localities: Vec<LocalityOption> = Locality::ALL
        .iter()
        .map(|l| LocalityOption {
            slug: l.slug(),
            label: l.label(),
        })
        .collect();
    render(
        "pages/signup.html",
        "Sign up",
        &json!({
            "form": {
                "email": form.email.as_deref().unwrap_or(""),
                "name": form.name.as_deref().unwrap_or(""),
                "organisation": form.organisation.as_deref().unwrap_or(""),
                "locality": form.locality.as_deref().unwrap_or(""),
                "consent": form.consent_given(),
            },
            "errors": error_map,
            "error_list": errors,
            "localities": localities,
            "consent_text": ConsentWording::TEXT,
        }),
    )
}

#[tracing::instrument(skip_all)]
async fn signup_page() -> Response {
    signup_form_page(&SignupForm::default(), &[]).into_response()
}

#[tracing::instrument(skip_all, fields(json = submission.json))]
async fn subscribe(
    State(state): State<AppState>,
    client: ClientInfo,
    submission: Submission,
) -> Result<Response, AppError> {
    let Submission { form, json } = submission;
    if form.honeypot_filled() {
        tracing::info!("Honeypot filled: answered as usual, nothing stored");
        return Ok(pending_response(&state, json));
    }
    let subscriber = match form.parse() {
        Ok(subscriber) => subscriber,
        Err(errors) if json => return Err(AppError::Invalid(errors)),
        Err(errors) => {
            return Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                signup_form_page(&form, &errors),
            )
                .into_response());
        }
    };

    let now = Utc::now();
    let request = SignupRequest {
        new_subscriber_id: Uuid::now_v7(),
        event_id: Uuid::now_v7(),
        list_id: state.list.id,
        invitation: Invitation::new(
            &state.secret,
            &state.list.name,
            state.settings.confirmation_ttl,
            subscriber.email.as_str(),
            now,
            false,
        )?,
        subscriber,
        consent: client.consent(if json {
            ConsentMethod::Api
        } else {
            ConsentMethod::Form
        }),
        wording_version: ConsentWording::VERSION,
        wording_hash: ConsentWording::hash(),
        now,
        resend_cap: RESEND_CAP,
    };
    let outcome = state.store.record_signup(&request).await?;
    tracing::info!(?outcome, "Sign-up recorded");
    if outcome == SignupOutcome::ConfirmationQueued {
        state.outbox_wake.notify_one();
    }
    Ok(pending_response(&state, json))
}

/// The one answer to every valid sign-up.
fn pending_response(state: &AppState, json: bool) -> Response {
    if json {
        Json(json!({ "status": "pending" })).into_response()
    } else {
        render(
            "pages/check_inbox.html",
            "Check your inbox",
            &json!({ "ttl_days": state.settings.confirmation_ttl.as_secs().div_ceil(86_400) }),
        )
        .into_response()
    }
}

#[derive(Deserialize)]
struct TokenParams {
    token: Option<String>,
}

/// A token from the query or the form; anything unreadable is treated as no token.
fn parse_token(params: Option<TokenParams>) -> Result<ConfirmationToken, AppError> {
    params
        .and_then(|p| p.token)
        .as_deref()
        .and_then(ConfirmationToken::parse)
        .ok_or_else(|| {
            AppError::page(
                StatusCode::BAD_REQUEST,
                MessagePage::new(
                    "This link is not complete",
                    &[
                        "The confirmation link may have been cut short or changed. Open it straight from the email, or copy the whole link into your browser.",
                        "If it still does not work, sign up again and we will send you a new link.",
                    ],
                )
                .offering_signup(),
            )
        })
}

/// Shows a button and changes nothing: mail scanners follow links.
#[tracing::instrument(skip_all)]
async fn confirm_page(
    params: Result<Query<TokenParams>, QueryRejection>,
) -> Result<Response, AppError> {
    let token = parse_token(params.ok().map(|Query(p)| p))?;
    let page = render(
        "pages/confirm.html",
        "Confirm your subscription",
        &json!({ "token": token.encode() }),
    );
    Ok(private(page))
}

#[tracing::instrument(skip_all)]
async fn confirm(
    State(state): State<AppState>,
    client: ClientInfo,
    params: Result<Form<TokenParams>, FormRejection>,
) -> Result<Response, AppError> {
    let token = parse_token(params.ok().map(|Form(p)| p))?;
    let outcome = state
        .store
        .confirm_subscription(&ConfirmRequest {
            token_hash: token.hash(),
            event_id: Uuid::now_v7(),
            consent: client.consent(ConsentMethod::Link),
            now: Utc::now(),
            welcome: NewOutboxMail {
                id: Uuid::now_v7(),
                kind: WELCOME.into(),
                recipient: String::new(),
                payload: serde_json::to_string(&WelcomePayload {
                    list_name: state.list.name.clone(),
                    list_id: state.list.id,
                })
                .map_err(anyhow::Error::from)?,
            },
        })
        .await?;
    tracing::info!(?outcome, "Confirmation");
    if outcome == ConfirmOutcome::Confirmed {
        state.outbox_wake.notify_one();
    }
    let list = &state.list.name;
    let (status, page) = match outcome {
        ConfirmOutcome::Confirmed => (
            StatusCode::OK,
            MessagePage::new(
                "You are subscribed",
                &[&format!(
                    "Thank you. You will receive {list} by email, every quarter. Every issue has a link at the foot to unsubscribe."
                )],
            ),
        ),
        ConfirmOutcome::AlreadyConfirmed => (
            StatusCode::OK,
            MessagePage::new(
                "You are already subscribed",
                &[&format!("Your subscription to {list} was confirmed already. There is nothing more to do.")],
            ),
        ),
        ConfirmOutcome::Used => (
            StatusCode::GONE,
            MessagePage::new(
                "This link has already been used",
                &["Each confirmation link works once. To subscribe again, sign up and we will send you a new link."],
            )
            .offering_signup(),
        ),
        ConfirmOutcome::Expired => (
            StatusCode::GONE,
            MessagePage::new(
                "This link has expired",
                &["Confirmation links work for a limited time. Sign up again and we will send you a new link."],
            )
            .offering_signup(),
        ),
        ConfirmOutcome::Unknown => (
            StatusCode::NOT_FOUND,
            MessagePage::new(
                "We do not recognise this link",
                &["It may have been replaced by a newer one, or copied incompletely. Sign up again and we will send you a new link."],
            )
            .offering_signup(),
        ),
    };
    Ok(private((status, render_page(&page))))
}

impl ClientInfo {
    pub(super) fn consent(&self, method: ConsentMethod) -> ConsentContext {
        ConsentContext {
            method,
            ip: self.ip_text(),
            user_agent: self.user_agent.clone(),
        }
    }
}
