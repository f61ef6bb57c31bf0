//! A person's own page, `/preferences?token=`: reached by the signed link every mail
//! carries (the one its unsubscribe link carries too). The GET only shows; a POST
//! changes their name, organisation and locality, the lists they are on (joining a
//! public list, or leaving one, or all), or downloads what we hold about them as JSON.
//! Each change is an event in their ledger. `/preferences/request` mails the link to
//! an address that asks (the same answer whoever it belongs to, within the sign-up
//! budgets).

use axum::{
    Form, Json, Router,
    extract::{Query, State, rejection::QueryRejection},
    http::{StatusCode, header},
    response::Response,
    routing::{get, post},
};
use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use super::{
    AppState, ClientInfo,
    error::AppError,
    pages::{MessagePage, private, render, render_page},
    unsubscribe::{TokenParams, masked, verify},
};
use crate::{
    audience::{
        budgets::BudgetKeys,
        preferences::list_changes,
        subscriber::{Locality, Organisation, SubscriberEmail, SubscriberName},
        subscription::SubscriptionStatus,
    },
    fields::FieldError,
    store::{
        ConsentMethod, LinkOutcome, LinkRequest, MailingList, Person, PersonDetails,
        PreferenceChange,
    },
    tokens::{FormToken, UnsubscribeToken},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/preferences", get(page).post(change))
        .route("/preferences/data", post(download))
        .route("/preferences/request", get(request_page).post(request_link))
}

/// The person the link is for, their lists now, and the lists the page offers them:
/// every public list, and any private one they are on.
struct Standing {
    person: Person,
    current: Vec<(Uuid, SubscriptionStatus)>,
    offered: Vec<MailingList>,
}

async fn standing(state: &AppState, token: &UnsubscribeToken) -> Result<Standing, AppError> {
    let person = state
        .store
        .person(token.subscriber_id)
        .await?
        .filter(|p| !crate::audience::subscription::is_erased_address(&p.email))
        .ok_or_else(|| {
            AppError::page(
                StatusCode::NOT_FOUND,
                MessagePage::new(
                    "We hold nothing about this address",
                    &["Its details may have been erased. You can sign up again at any time."],
                )
                .offering_signup(),
            )
        })?;
    let current = state.store.subscriptions_of(person.id).await?;
    let on = |list: &MailingList| {
        current
            .iter()
            .any(|(id, status)| *id == list.id && !status.has_ended())
    };
    let offered = state
        .store
        .lists()
        .await?
        .into_iter()
        .filter(|l| l.public || on(l))
        .collect();
    Ok(Standing {
        person,
        current,
        offered,
    })
}

/// The page's fields, as typed (or as they are, when it is first shown).
#[derive(serde::Serialize, Default)]
struct Fields {
    name: String,
    organisation: String,
    locality: String,
    lists: Vec<String>,
}

fn show(
    state: &AppState,
    token: &UnsubscribeToken,
    standing: &Standing,
    fields: &Fields,
    errors: &[FieldError],
    notice: Option<&str>,
) -> Response {
    let errors_by_field: std::collections::BTreeMap<&str, &str> = errors
        .iter()
        .map(|e| (e.field.as_ref(), e.message.as_str()))
        .collect();
    let lists: Vec<_> = standing
        .offered
        .iter()
        .map(|l| {
            json!({
                "slug": l.slug,
                "name": super::subscriptions::names_of(std::slice::from_ref(l)),
                "description": l.description,
                "ticked": fields.lists.contains(&l.slug),
            })
        })
        .collect();
    let localities: Vec<_> = Locality::ALL
        .iter()
        .map(|l| json!({"slug": l.slug(), "label": l.label()}))
        .collect();
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let title = if errors.is_empty() {
        "Your subscription"
    } else {
        "Error: Your subscription"
    };
    let page = render(
        "pages/preferences.html",
        title,
        &json!({
            "token": token.sign(&state.secret),
            "address": masked(&standing.person.email),
            "form": fields,
            "lists": lists,
            "localities": localities,
            "errors": errors_by_field,
            "error_list": errors,
            "notice": notice,
        }),
    );
    private((status, page))
}

fn fields_of(standing: &Standing) -> Fields {
    let person = &standing.person;
    Fields {
        name: person.name.clone(),
        organisation: person.organisation.clone().unwrap_or_default(),
        locality: person.locality.clone().unwrap_or_default(),
        lists: standing
            .offered
            .iter()
            .filter(|l| {
                standing
                    .current
                    .iter()
                    .any(|(id, s)| *id == l.id && *s == SubscriptionStatus::Confirmed)
            })
            .map(|l| l.slug.clone())
            .collect(),
    }
}

#[tracing::instrument(skip_all)]
async fn page(
    State(state): State<AppState>,
    params: Result<Query<TokenParams>, QueryRejection>,
) -> Result<Response, AppError> {
    let token = verify(&state, params)?;
    let standing = standing(&state, &token).await?;
    Ok(show(
        &state,
        &token,
        &standing,
        &fields_of(&standing),
        &[],
        None,
    ))
}

#[tracing::instrument(skip_all)]
async fn change(
    State(state): State<AppState>,
    client: ClientInfo,
    params: Result<Query<TokenParams>, QueryRejection>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let token = verify(&state, params)?;
    let standing = standing(&state, &token).await?;
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let leave_all = field("action") == "leave-all";
    let mut fields = Fields {
        name: field("name"),
        organisation: field("organisation"),
        locality: field("locality"),
        lists: pairs
            .iter()
            .filter(|(n, _)| n == "lists")
            .map(|(_, v)| v.clone())
            .collect(),
    };
    if leave_all {
        fields = Fields {
            lists: Vec::new(),
            ..fields_of(&standing)
        };
    }
    let mut errors = Vec::new();
    let name = SubscriberName::parse(&fields.name)
        .map_err(|m| errors.push(FieldError::new("name", m)))
        .ok();
    let organisation = Organisation::parse(&fields.organisation)
        .map_err(|m| errors.push(FieldError::new("organisation", m)))
        .ok();
    let locality = Locality::parse(&fields.locality)
        .map_err(|m| errors.push(FieldError::new("locality", m)))
        .ok();
    let mut ticked = Vec::new();
    for slug in &fields.lists {
        match standing.offered.iter().find(|l| &l.slug == slug) {
            Some(list) => ticked.push(list.id),
            None => errors.push(FieldError::new(
                "lists",
                "Choose from the newsletters on this page.",
            )),
        }
    }
    let (Some(name), Some(organisation), Some(locality), true) =
        (name, organisation, locality, errors.is_empty())
    else {
        return Ok(show(&state, &token, &standing, &fields, &errors, None));
    };
    let person = &standing.person;
    let details_changed = name.as_str() != person.name
        || organisation.as_ref().map(|o| o.as_str()) != person.organisation.as_deref()
        || locality.map(|l| l.slug()) != person.locality.as_deref();
    let offered: Vec<Uuid> = standing.offered.iter().map(|l| l.id).collect();
    let lists = list_changes(&standing.current, &offered, &ticked);
    let brand = super::branding::brand();
    state
        .store
        .change_preferences(&PreferenceChange {
            subscriber_id: person.id,
            details: details_changed.then_some(PersonDetails {
                name,
                organisation,
                locality,
            }),
            ledger_list: token.list_id,
            lists,
            consent: client.consent(ConsentMethod::Preferences),
            wording_version: brand.consent_version.clone(),
            wording_hash: brand.consent_hash(),
            now: Utc::now(),
        })
        .await?;
    tracing::info!(subscriber = %person.id, leave_all, "Preferences changed");
    let standing = self::standing(&state, &token).await?;
    let notice = if leave_all {
        "You have left every newsletter. You will receive no more issues; you can tick any of them again here."
    } else {
        "Saved. Your choices are as shown below."
    };
    Ok(show(
        &state,
        &token,
        &standing,
        &fields_of(&standing),
        &[],
        Some(notice),
    ))
}

/// Everything we hold about the person, as a JSON file: who they are, their lists,
/// and their ledger (a subject access request in one click).
#[tracing::instrument(skip_all)]
async fn download(
    State(state): State<AppState>,
    client: ClientInfo,
    params: Result<Query<TokenParams>, QueryRejection>,
) -> Result<Response, AppError> {
    let token = verify(&state, params)?;
    let standing = standing(&state, &token).await?;
    let lists = state.store.lists().await?;
    let subscriptions: Vec<_> = standing
        .current
        .iter()
        .filter_map(|(id, status)| {
            let list = lists.iter().find(|l| l.id == *id)?;
            Some(json!({"list": list.name, "status": status.as_str()}))
        })
        .collect();
    let ledger = state.store.consent_ledger(standing.person.id).await?;
    let now = Utc::now();
    state
        .store
        .record_export(
            standing.person.id,
            token.list_id,
            &client.consent(ConsentMethod::Preferences),
            now,
        )
        .await?;
    tracing::info!(subscriber = %standing.person.id, "Data downloaded by its subject");
    let body = json!({
        "downloaded_at": now,
        "person": standing.person,
        "subscriptions": subscriptions,
        "ledger": ledger,
    });
    Ok(private((
        [(
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"my-newsletter-data.json\"",
        )],
        Json(body),
    )))
}

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

async fn request_page(State(state): State<AppState>) -> Response {
    private(request_form(&state, "", &[]))
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct LinkForm {
    email: String,
    form_token: Option<String>,
    website: String,
}

/// Mails the link if the address is a subscriber's, within the sign-up budgets; the
/// answer is the same whoever the address belongs to.
#[tracing::instrument(skip_all)]
async fn request_link(
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
            email: email.as_str().to_owned(),
            mail: crate::sending::outbox::preferences_link(&state.list)?,
            form_nonce: token.nonce,
            budget_keys: BudgetKeys::new(client.network(), email.as_str(), now),
            budgets: state.settings.signup_budgets,
            now,
        })
        .await?;
    tracing::info!(?outcome, "Preference link asked for");
    match outcome {
        LinkOutcome::Queued => state.outbox_wake.notify_one(),
        LinkOutcome::Unknown => {}
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
