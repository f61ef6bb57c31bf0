//! Sign-up and confirmation: `GET /`, `POST /subscriptions`, and
//! `GET`/`POST /subscriptions/confirm`.
//!
//! A valid sign-up always gets the same answer, whatever we already knew of the
//! address, so the form cannot be used to find out who is subscribed. The mail is
//! written to the outbox in the sign-up's transaction and sent by the worker, so a
//! relay that is down never loses a sign-up.

use crate::audience::subscription::{ConfirmOutcome, RESEND_CAP, SignupOutcome};
use std::collections::BTreeMap;

use axum::{
    Form, Json, Router,
    extract::{
        Query, State,
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
    audience::budgets::{BudgetKeys, BudgetScope},
    audience::subscriber::Locality,
    fields::FieldError,
    sending::outbox::{ListNames, WELCOME, WelcomePayload},
    store::{
        ConfirmRequest, ConsentContext, ConsentMethod, Invitation, MailingList, NewOutboxMail,
        SignupRequest,
    },
    tokens::{ConfirmationToken, FormToken, FormTokenProblem},
};

mod form;

pub use form::SignupForm;
use form::Submission;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(signup_page))
        .route("/subscriptions", post(subscribe))
        .route("/subscriptions/form-token", get(form_token))
        .route("/subscriptions/edit", post(edit_signup))
        .route("/subscriptions/confirm", get(confirm_page).post(confirm))
}

#[derive(Serialize)]
struct LocalityOption {
    slug: &'static str,
    label: &'static str,
}

/// The form, with a new token of its own (every time it is shown).
fn signup_form_page(
    state: &AppState,
    lists: &Offered,
    form: &SignupForm,
    errors: &[FieldError],
    suggestion: Option<&str>,
) -> axum::response::Html<String> {
    let error_map: BTreeMap<&str, &str> = errors
        .iter()
        .map(|e| (e.field.as_ref(), e.message.as_str()))
        .collect();
    let localities: Vec<LocalityOption> = Locality::ALL
        .iter()
        .map(|l| LocalityOption {
            slug: l.slug(),
            label: l.label(),
        })
        .collect();
    let offered = &lists.offered;
    let ticked: Vec<&str> = if form.lists.is_empty() && form.choosing.is_none() {
        vec![crate::store::DEFAULT_LIST]
    } else {
        form.lists.iter().map(String::as_str).collect()
    };
    let choices: Vec<_> = offered
        .iter()
        .map(|l| {
            json!({
                "slug": l.slug,
                "name": l.name,
                "description": l.description,
                "ticked": ticked.contains(&l.slug.as_str()),
            })
        })
        .collect();
    render(
        "pages/signup.html",
        "Sign up",
        &json!({
            "lists": choices,
            "choosing": offered.len() > 1,
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
            "form_token": FormToken::new(Utc::now()).sign(&state.secret),
            "suggestion": suggestion,
        }),
    )
}

/// The public lists, which the sign-up form offers.
pub(super) struct Offered {
    offered: Vec<MailingList>,
}

impl Offered {
    pub(super) async fn now(state: &AppState) -> anyhow::Result<Self> {
        // Every sign-up needs them; staff change them rarely (`list_actions` forgets them).
        let offered = match state.lists.fresh() {
            Some(lists) => lists,
            None => state.lists.saved(state.store.lists().await?),
        };
        Ok(Offered {
            offered: offered.iter().filter(|l| l.public).cloned().collect(),
        })
    }

    /// The lists a sign-up chose: those ticked, all of them offered; none ticked where
    /// no choice was offered (or by a JSON client) is the default list.
    fn chosen(&self, form: &SignupForm) -> Result<Vec<MailingList>, FieldError> {
        if form.lists.is_empty() {
            if form.choosing.is_some() {
                return Err(FieldError::new(
                    "lists",
                    "Choose at least one newsletter to sign up for.",
                ));
            }
            return self
                .offered
                .iter()
                .find(|l| l.slug == crate::store::DEFAULT_LIST)
                .or(self.offered.first())
                .map(|l| vec![l.clone()])
                .ok_or_else(|| FieldError::new("lists", "No newsletter is open to sign-ups."));
        }
        let mut chosen: Vec<MailingList> = Vec::new();
        for slug in &form.lists {
            let Some(list) = self.offered.iter().find(|l| &l.slug == slug) else {
                return Err(FieldError::new(
                    "lists",
                    "Choose from the newsletters offered on this page.",
                ));
            };
            if !chosen.contains(list) {
                chosen.push(list.clone());
            }
        }
        Ok(chosen)
    }
}

/// The lists as people read their names (the newsletter named as the brand names it).
pub(super) fn names_of(lists: &[MailingList]) -> String {
    ListNames::of(lists).words(&super::branding::brand().brand.newsletter)
}

#[tracing::instrument(skip_all)]
async fn signup_page(State(state): State<AppState>) -> Result<Response, AppError> {
    let lists = Offered::now(&state).await?;
    Ok(private(signup_form_page(
        &state,
        &lists,
        &SignupForm::default(),
        &[],
        None,
    )))
}

/// A form token for a JSON client, which sends it back as `form_token` with the
/// sign-up, no sooner than `not_before`.
#[tracing::instrument(skip_all)]
async fn form_token(State(state): State<AppState>) -> Response {
    let now = Utc::now();
    let not_before =
        now + chrono::TimeDelta::from_std(state.settings.signup_form_min_age).unwrap_or_default();
    private(Json(json!({
        "form_token": FormToken::new(now).sign(&state.secret),
        "not_before": not_before.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "expires": (now + FormToken::LIFETIME).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })))
}

/// The words for a form token that was refused.
fn form_token_error(problem: FormTokenProblem) -> FieldError {
    let message = match problem {
        FormTokenProblem::Missing => {
            "This form could not be checked. Please check your details and send it again."
        }
        FormTokenProblem::TooSoon => {
            "That was sent very quickly after the page opened. Please check your details and send it again."
        }
        FormTokenProblem::Expired => {
            "This page was open for more than a day. Please check your details and send it again."
        }
        FormTokenProblem::Used => {
            "This form was sent already. If you meant to sign up again, check your details and send it again."
        }
    };
    FieldError::new("form_token", message)
}

/// Over a budget: 429, with when to try again (the next hour).
fn over_budget(state: &AppState, scope: BudgetScope, domain: &str, json: bool) -> Response {
    let now = Utc::now();
    let next_hour =
        BudgetKeys::new(String::new(), "", now).window_start + chrono::TimeDelta::hours(1);
    let retry_after = (next_hour - now).num_seconds().max(1).to_string();
    let again = format!(
        "Please try again after {}.",
        crate::time::uk_date_time(next_hour)
    );
    let (title, text) = match scope {
        BudgetScope::Client => (
            "Too many sign-ups from your network".to_owned(),
            format!(
                "We have sent as many confirmation emails as we can for sign-ups from your internet connection this hour. {again}"
            ),
        ),
        BudgetScope::Domain => (
            format!("Too many sign-ups for addresses at {domain}"),
            format!(
                "We have sent as many confirmation emails to addresses at {domain} as we can this hour. {again}"
            ),
        ),
        BudgetScope::Total => (
            "Too many sign-ups just now".to_owned(),
            format!("We have sent as many confirmation emails as we can this hour. {again}"),
        ),
    };
    tracing::warn!(budget = scope.as_str(), "Sign-up refused: over budget");
    let headers = [(header::RETRY_AFTER, retry_after)];
    if json {
        (
            StatusCode::TOO_MANY_REQUESTS,
            headers,
            Json(json!({ "error": text })),
        )
            .into_response()
    } else {
        let page = MessagePage::new(
            &title,
            &[
                &text,
                &format!(
                    "Nothing was sent, and nothing about you was kept. {} will still be here.",
                    state.list.name
                ),
            ],
        );
        (StatusCode::TOO_MANY_REQUESTS, headers, render_page(&page)).into_response()
    }
}

/// The consent sentence the person agreed to, by version and hash: the one their page
/// showed, if it is one we know, else the current one.
async fn shown_wording(state: &AppState, form: &SignupForm) -> anyhow::Result<(String, String)> {
    let current = super::branding::brand();
    if let Some(version) = form
        .consent_version
        .as_deref()
        .filter(|v| *v != current.consent_version)
        && let Some(text) = state.store.consent_text(version).await?
    {
        return Ok((
            version.to_owned(),
            crate::tokens::sha256_hex(text.as_bytes()),
        ));
    }
    Ok((current.consent_version.clone(), current.consent_hash()))
}

#[tracing::instrument(skip_all, fields(json = submission.json))]
async fn subscribe(
    State(state): State<AppState>,
    client: ClientInfo,
    submission: Submission,
) -> Result<Response, AppError> {
    let Submission { mut form, json } = submission;
    let chose_email = match form.use_email.take() {
        Some(chosen) => {
            form.email = Some(chosen);
            true
        }
        None => false,
    };
    if form.honeypot_filled() {
        tracing::info!("Honeypot filled: answered as usual, nothing stored");
        return Ok(pending_response(&state, json, &form));
    }
    let now = Utc::now();
    // Every problem at once: the token's, then each field's.
    let token = FormToken::check(
        &state.secret,
        form.form_token.as_deref(),
        now,
        state.settings.signup_form_min_age,
    );
    let parsed = form.parse();
    let offered = Offered::now(&state).await?;
    let chosen = offered.chosen(&form);
    let refuse = |errors: Vec<FieldError>| -> Result<Response, AppError> {
        if json {
            return Err(AppError::Invalid(errors));
        }
        Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            private(signup_form_page(&state, &offered, &form, &errors, None)),
        )
            .into_response())
    };
    let (token, subscriber, lists) = match (token, parsed, chosen) {
        (Ok(token), Ok(subscriber), Ok(lists)) => (token, subscriber, lists),
        (token, parsed, chosen) => {
            let mut errors: Vec<FieldError> =
                token.err().map(form_token_error).into_iter().collect();
            errors.extend(chosen.err());
            errors.extend(parsed.err().unwrap_or_default());
            return refuse(errors);
        }
    };
    // A near miss of a domain people here use (`gmial.com`): ask before mailing it.
    // Nothing is stored, and the form token is still unused.
    if !json && !chose_email {
        let address = subscriber.email.as_str();
        let (local, domain) = address.rsplit_once('@').unwrap_or_default();
        if let Some(meant) = crate::audience::typos::suggested_domain(domain) {
            let suggestion = format!("{local}@{meant}");
            return Ok(private(signup_form_page(
                &state,
                &offered,
                &form,
                &[],
                Some(&suggestion),
            ))
            .into_response());
        }
    }

    let (wording_version, wording_hash) = shown_wording(&state, &form).await?;
    let request = SignupRequest {
        new_subscriber_id: Uuid::now_v7(),
        list_ids: lists.iter().map(|l| l.id).collect(),
        invitation: Invitation::new(
            &state.secret,
            ListNames::of(&lists),
            state.settings.confirmation_ttl,
            subscriber.email.as_str(),
            now,
            false,
        )?,
        reminder: crate::sending::outbox::already_subscribed(&lists[0], subscriber.email.as_str())?,
        consent: client.consent(if json {
            ConsentMethod::Api
        } else {
            ConsentMethod::Form
        }),
        wording_version,
        wording_hash,
        now,
        resend_cap: RESEND_CAP,
        form_nonce: token.nonce,
        budget_keys: BudgetKeys::new(client.network(), subscriber.email.as_str(), now),
        budgets: state.settings.signup_budgets,
        suppression_keys: state.secret.address_keys(subscriber.email.as_str()),
        subscriber,
    };
    let outcome = state.store.record_signup(&request).await?;
    tracing::info!(?outcome, "Sign-up handled");
    match outcome {
        SignupOutcome::ConfirmationQueued | SignupOutcome::ReminderQueued => {
            state.outbox_wake.notify_one()
        }
        SignupOutcome::FormTokenUsed => {
            return refuse(vec![form_token_error(FormTokenProblem::Used)]);
        }
        SignupOutcome::OverBudget(scope) => {
            return Ok(over_budget(
                &state,
                scope,
                &request.budget_keys.domain,
                json,
            ));
        }
        SignupOutcome::AlreadyConfirmed
        | SignupOutcome::ResendCapReached
        | SignupOutcome::Suppressed => {}
    }
    Ok(pending_response(&state, json, &form))
}

/// The one answer to every valid sign-up: the same whoever the address belongs to. It
/// shows the address as typed, so a typo is seen, with a way back to correct it.
fn pending_response(state: &AppState, json: bool, form: &SignupForm) -> Response {
    if json {
        return Json(json!({ "status": "pending" })).into_response();
    }
    let context = json!({
        "ttl_days": state.settings.confirmation_ttl.as_secs().div_ceil(86_400),
        "email": form.email.as_deref().unwrap_or_default().trim(),
        "form": form,
    });
    private(render(
        "pages/check_inbox.html",
        "Check your inbox",
        &context,
    ))
    .into_response()
}

/// "Not the right address?": the form again, filled in as it was sent, to correct.
#[tracing::instrument(skip_all)]
async fn edit_signup(
    State(state): State<AppState>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let form = SignupForm {
        consent: None,
        ..SignupForm::from_pairs(pairs)
    };
    let offered = Offered::now(&state).await?;
    Ok(private(signup_form_page(&state, &offered, &form, &[], None)).into_response())
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
    // The lists the link asks about, for the words of the welcome mail and the page.
    let asked = state.store.token_lists(&token.hash()).await?;
    let lists: Vec<MailingList> = state
        .store
        .lists()
        .await?
        .into_iter()
        .filter(|l| asked.contains(&l.id))
        .collect();
    let first = lists.first().unwrap_or(&state.list);
    let list = if lists.is_empty() {
        state.list.name.clone()
    } else {
        names_of(&lists)
    };
    let outcome = state
        .store
        .confirm_subscription(&ConfirmRequest {
            token_hash: token.hash(),
            consent: client.consent(ConsentMethod::Link),
            now: Utc::now(),
            welcome: NewOutboxMail {
                id: Uuid::now_v7(),
                kind: WELCOME.into(),
                recipient: String::new(),
                payload: serde_json::to_string(&WelcomePayload {
                    lists: ListNames::of(&lists),
                    list_id: first.id,
                })
                .map_err(anyhow::Error::from)?,
            },
        })
        .await?;
    tracing::info!(?outcome, "Confirmation");
    if outcome == ConfirmOutcome::Confirmed {
        state.outbox_wake.notify_one();
    }
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
