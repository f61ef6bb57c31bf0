//! A person's own page, `/preferences?token=`. Two links reach it:
//!
//! - the long-lived link every mail carries (the one its unsubscribe link carries
//!   too): it shows their details and lists, and a POST changes them (a link scanner's
//!   GET changes nothing). Such a mail may have been forwarded, so this link neither
//!   downloads nor erases their data;
//! - a short-lived link (`ManageToken`, 24 hours) mailed to them when they ask, from
//!   the page or from `/preferences/request` on the site: it does all that and also
//!   downloads what we hold about them and erases it (`data.rs`).
//!
//! Each change is an event in their ledger.

mod data;
mod request;

use axum::{
    Form, Router,
    extract::{Query, State, rejection::QueryRejection},
    http::StatusCode,
    response::Response,
    routing::{get, post},
};
use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use super::{
    AppState, ClientInfo,
    error::AppError,
    pages::{MessagePage, private, render},
    unsubscribe::masked,
};
use crate::{
    audience::{
        preferences::list_changes,
        subscriber::{Locality, Organisation, SubscriberName},
        subscription::SubscriptionStatus,
    },
    fields::FieldError,
    store::{ConsentMethod, MailingList, Person, PersonDetails, PreferenceChange},
    tokens::{ManageToken, UnsubscribeToken},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/preferences", get(page).post(change))
        .route("/preferences/link", post(data::mail_link))
        .route("/preferences/data", post(data::download))
        .route("/preferences/erase", post(data::erase))
        .route(
            "/preferences/request",
            get(request::request_page).post(request::request_link),
        )
}

/// Who the link is for, and what it lets them do.
struct Access {
    subscriber_id: Uuid,
    /// The list the page's changes are recorded against.
    list_id: Uuid,
    /// A fresh mailed link: their data may be downloaded and erased.
    full: bool,
    /// The link's token, as given (the page's forms send it back).
    token: String,
}

#[derive(serde::Deserialize)]
struct TokenParams {
    token: Option<String>,
}

/// The link's access, or the page that says why it does not work.
fn access(
    state: &AppState,
    params: Result<Query<TokenParams>, QueryRejection>,
) -> Result<Access, AppError> {
    let token = params.ok().and_then(|Query(p)| p.token).unwrap_or_default();
    let token = token.trim().to_owned();
    if let Some(manage) = ManageToken::verify(&state.secret, &token) {
        if manage.expires_at < Utc::now() {
            return Err(AppError::page(
                StatusCode::GONE,
                MessagePage::new(
                    "This link has expired",
                    &[
                        "Links to download or erase your data work for 24 hours after we send them.",
                        "Ask for a new one from \"Manage your subscription\" at the foot of any of our pages, or from the link in any issue.",
                    ],
                ),
            ));
        }
        return Ok(Access {
            subscriber_id: manage.subscriber_id,
            list_id: manage.list_id,
            full: true,
            token,
        });
    }
    if let Some(link) = UnsubscribeToken::verify(&state.secret, &token) {
        return Ok(Access {
            subscriber_id: link.subscriber_id,
            list_id: link.list_id,
            full: false,
            token,
        });
    }
    Err(AppError::page(
        StatusCode::BAD_REQUEST,
        MessagePage::new(
            "This link does not work",
            &[
                "It may have been cut short or changed. Open it straight from the email, or copy the whole link into your browser.",
                "Every issue has a link to manage your subscription at the foot of the email.",
            ],
        ),
    ))
}

/// The person the link is for, their lists now, and the lists the page offers them:
/// every public list, and any private one they are on.
struct Standing {
    person: Person,
    current: Vec<(Uuid, SubscriptionStatus)>,
    offered: Vec<MailingList>,
}

/// The answer for a person whose details are gone.
fn nothing_held() -> AppError {
    AppError::page(
        StatusCode::NOT_FOUND,
        MessagePage::new(
            "We hold nothing about this address",
            &["Its details may have been erased. You can sign up again at any time."],
        )
        .offering_signup(),
    )
}

async fn standing(state: &AppState, access: &Access) -> Result<Standing, AppError> {
    let person = state
        .store
        .person(access.subscriber_id)
        .await?
        .filter(|p| !crate::audience::subscription::is_erased_address(&p.email))
        .ok_or_else(nothing_held)?;
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

/// Why a list cannot be joined again from the page, if it cannot: the mail world
/// ended it (sign-up, with its confirmation mail, is the way back).
fn stopped(status: Option<SubscriptionStatus>) -> Option<&'static str> {
    match status? {
        SubscriptionStatus::Bounced => Some(
            "We stopped sending this because mail to your address was refused. To receive it again, sign up on our home page.",
        ),
        SubscriptionStatus::Complained => Some(
            "We stopped sending this because a copy was reported as spam. To receive it again, sign up on our home page.",
        ),
        _ => None,
    }
}

impl Standing {
    fn status(&self, list: Uuid) -> Option<SubscriptionStatus> {
        self.current
            .iter()
            .find(|(id, _)| *id == list)
            .map(|(_, s)| *s)
    }
}

fn show(
    access: &Access,
    standing: &Standing,
    fields: &Fields,
    errors: &[FieldError],
    notice: Option<&str>,
) -> Response {
    let errors_by_field: std::collections::BTreeMap<&str, &str> = errors
        .iter()
        .map(|e| (e.field.as_ref(), e.message.as_str()))
        .collect();
    let shown = fields_of(standing).lists;
    let lists: Vec<_> = standing
        .offered
        .iter()
        .map(|l| {
            json!({
                "slug": l.slug,
                "name": super::subscriptions::names_of(std::slice::from_ref(l)),
                "description": l.description,
                "ticked": fields.lists.contains(&l.slug),
                "shown": shown.contains(&l.slug),
                "stopped": stopped(standing.status(l.id)),
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
            "token": access.token,
            "full": access.full,
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

/// The fields as they stand: their details, and the lists they are on.
fn fields_of(standing: &Standing) -> Fields {
    let person = &standing.person;
    Fields {
        name: person.name.clone(),
        organisation: person.organisation.clone().unwrap_or_default(),
        locality: person.locality.clone().unwrap_or_default(),
        lists: standing
            .offered
            .iter()
            .filter(|l| standing.status(l.id) == Some(SubscriptionStatus::Confirmed))
            .map(|l| l.slug.clone())
            .collect(),
    }
}

#[tracing::instrument(skip_all)]
async fn page(
    State(state): State<AppState>,
    params: Result<Query<TokenParams>, QueryRejection>,
) -> Result<Response, AppError> {
    let access = access(&state, params)?;
    let standing = standing(&state, &access).await?;
    Ok(show(&access, &standing, &fields_of(&standing), &[], None))
}

/// Every value a form sent under `name`.
fn values<'a>(pairs: &'a [(String, String)], name: &'a str) -> impl Iterator<Item = &'a str> {
    pairs
        .iter()
        .filter(move |(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The form's one value under `name`, or nothing.
fn value(pairs: &[(String, String)], name: &str) -> String {
    values(pairs, name).next().unwrap_or_default().to_owned()
}

/// The offered lists among `slugs`; `None` if one is not offered.
fn chosen(standing: &Standing, slugs: &[String]) -> Option<Vec<Uuid>> {
    slugs
        .iter()
        .map(|slug| {
            standing
                .offered
                .iter()
                .find(|l| &l.slug == slug)
                .map(|l| l.id)
        })
        .collect()
}

#[tracing::instrument(skip_all)]
async fn change(
    State(state): State<AppState>,
    client: ClientInfo,
    params: Result<Query<TokenParams>, QueryRejection>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, AppError> {
    let access = access(&state, params)?;
    let standing = standing(&state, &access).await?;
    let leave_all = value(&pairs, "action") == "leave-all";
    let as_shown = fields_of(&standing);
    let mut fields = Fields {
        name: value(&pairs, "name"),
        organisation: value(&pairs, "organisation"),
        locality: value(&pairs, "locality"),
        lists: values(&pairs, "lists").map(str::to_owned).collect(),
    };
    // What the page showed ticked: only the boxes changed since count, so a page left
    // open while they changed things elsewhere undoes nothing.
    let mut shown: Vec<String> = values(&pairs, "shown").map(str::to_owned).collect();
    if leave_all {
        fields = Fields {
            lists: Vec::new(),
            ..fields_of(&standing)
        };
        shown = as_shown.lists;
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
    let ticked = chosen(&standing, &fields.lists);
    // A list offered when the page was made may be gone since: not an error.
    let shown = chosen(&standing, &shown).unwrap_or_default();
    if ticked.is_none() {
        errors.push(FieldError::new(
            "lists",
            "Choose from the newsletters on this page.",
        ));
    }
    let (Some(name), Some(organisation), Some(locality), Some(ticked)) =
        (name, organisation, locality, ticked)
    else {
        return Ok(show(&access, &standing, &fields, &errors, None));
    };
    let person = &standing.person;
    let details_changed = name.as_str() != person.name
        || organisation.as_ref().map(|o| o.as_str()) != person.organisation.as_deref()
        || locality.map(|l| l.slug()) != person.locality.as_deref();
    let offered: Vec<Uuid> = standing.offered.iter().map(|l| l.id).collect();
    let lists = list_changes(&standing.current, &offered, &shown, &ticked);
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
            ledger_list: access.list_id,
            lists,
            consent: client.consent(ConsentMethod::Preferences),
            wording_version: brand.consent_version.clone(),
            wording_hash: brand.consent_hash(),
            now: Utc::now(),
        })
        .await?;
    tracing::info!(subscriber = %person.id, leave_all, "Preferences changed");
    let standing = self::standing(&state, &access).await?;
    let notice = if leave_all {
        "You have left every newsletter. You will receive no more issues; you can tick any of them again here."
    } else {
        "Saved. Your choices are as shown below."
    };
    Ok(show(
        &access,
        &standing,
        &fields_of(&standing),
        &[],
        Some(notice),
    ))
}
