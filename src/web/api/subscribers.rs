//! `/api/subscribers`: find people (by list, search, status and segment), read
//! everything we hold about one, add one (an import of one: a source note is
//! required), change their details or the lists they are on, and erase them.

use axum::{
    Extension, Json,
    extract::{FromRequestParts, Path, Query, State, rejection::QueryRejection},
    http::{StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{ApiCaller, ApiJson};
use crate::{
    audience::{
        import::{self, ImportRow, Mode, RowStatus},
        preferences::ListChanges,
        segment::Segment,
        subscriber::{Locality, Organisation, SubscriberEmail, SubscriberName},
        subscription::SubscriptionStatus,
    },
    fields::FieldError,
    store::{
        ConsentContext, ConsentMethod, ConsentRecord, MailingList, PersonDetails, PreferenceChange,
        SubscriberQuery, SubscriberSummary,
    },
    web::{
        AppError, AppState, ErrorBody,
        subscriber_actions::{self as actions, Held, ImportNow, ListStanding},
    },
};

/// Subscribers per page when the caller does not say; and the most.
const PER_PAGE: u32 = 50;
const MAX_PER_PAGE: u32 = 500;
/// Lists one change may leave, at most.
const MAX_LEAVE: usize = 100;

/// What the checks accept that the derived schemas cannot say: a name is one line with
/// something in it, and neither it nor an organisation has `<` or `>`; a source note
/// has 10 characters or more once trimmed; a locality is a slug or empty.
pub fn rules(spec: &mut serde_json::Value) {
    use super::issues::{LINE, LINE_INK, TEXT, TEXT_INK};
    let plain = r"[^<>\u0000-\u001F\u007F-\u009F]";
    let plain_ink = r"[^\s<>\u0000-\u001F\u007F-\u009F]";
    let name = format!("^{plain}*{plain_ink}{plain}*$");
    let organisation = format!("^{plain}*$");
    let note = format!("^{TEXT}*{TEXT_INK}{TEXT}{{8,}}{TEXT_INK}{TEXT}*$");
    let line = format!("^{LINE}*$");
    let filled_line = format!("^{LINE}*{LINE_INK}{LINE}*$");
    let localities: Vec<&str> = std::iter::once("")
        .chain(Locality::ALL.into_iter().map(Locality::slug))
        .collect();
    let schemas = &mut spec["components"]["schemas"];
    for (schema, field, pattern) in [
        ("NewSubscriberBody", "email", &filled_line),
        ("NewSubscriberBody", "name", &name),
        ("NewSubscriberBody", "organisation", &organisation),
        ("NewSubscriberBody", "source_note", &note),
        ("SubscriberChangesBody", "name", &name),
        ("SubscriberChangesBody", "organisation", &organisation),
    ] {
        schemas[schema]["properties"][field]["pattern"] = pattern.as_str().into();
    }
    schemas["NewSubscriberBody"]["properties"]["email"]["format"] = "email".into();
    for schema in ["NewSubscriberBody", "SubscriberChangesBody"] {
        // `null`, as the field may be, is the same as leaving it out.
        schemas[schema]["properties"]["locality"]["enum"] = super::or_null(&localities);
    }
    // The segment is JSON in the query string: the same conditions an issue takes.
    let parameters = spec["paths"]["/api/subscribers"]["get"]["parameters"]
        .as_array_mut()
        .into_iter()
        .flatten();
    for parameter in parameters {
        match parameter["name"].as_str() {
            Some("segment") => {
                parameter.as_object_mut().map(|p| p.remove("schema"));
                parameter["content"] = serde_json::json!({
                    "application/json": {"schema": {"$ref": "#/components/schemas/Segment"}}
                });
            }
            Some("search" | "list") => parameter["schema"]["pattern"] = line.as_str().into(),
            _ => {}
        }
    }
}

/// The list named by a request (`list`, a slug), or the default list; 404 for none.
pub async fn list_named(state: &AppState, slug: Option<&str>) -> Result<MailingList, AppError> {
    match slug.filter(|s| !s.is_empty()) {
        None => Ok(state.store.default_list().await?),
        Some(slug) => state.store.list_by_slug(slug).await?.ok_or_else(|| {
            AppError::json(
                StatusCode::NOT_FOUND,
                "There is no list with that slug: GET /api/lists lists them.",
            )
        }),
    }
}

/// The `{id}` of a subscriber; one that is not a UUID names nobody.
pub struct SubscriberId(Uuid);

fn no_such_subscriber() -> AppError {
    AppError::json(
        StatusCode::NOT_FOUND,
        "There is no such subscriber: they may have been erased.",
    )
}

impl<S: Send + Sync> FromRequestParts<S> for SubscriberId {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<Uuid>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| SubscriberId(id))
            .map_err(|_| no_such_subscriber())
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SubscriberParams {
    /// The list's slug; "In Partnership" if not given.
    list: Option<String>,
    /// Part of an address, name or organisation.
    #[param(max_length = 200)]
    search: Option<String>,
    /// Only people in this status on the list.
    #[param(inline)]
    status: Option<SubscriptionStatus>,
    /// Only people in this segment (JSON: the conditions an issue's `segment` takes).
    segment: Option<String>,
    /// The page, from 1.
    #[param(minimum = 1, maximum = 1000000)]
    page: Option<u32>,
    /// People per page (1 to 500; 50 if not given).
    #[param(minimum = 1, maximum = 500)]
    per_page: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct SubscriberListBody {
    /// By address.
    subscribers: Vec<SubscriberSummary>,
    /// How many match in all.
    total: i64,
    page: u32,
    per_page: u32,
}

#[utoipa::path(
    get,
    path = "/api/subscribers",
    params(SubscriberParams),
    responses(
        (status = 200, description = "A page of the list's subscribers that match, by address; `status` is theirs on this list", body = SubscriberListBody),
        (status = 404, description = "No such list", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn list_subscribers(
    State(state): State<AppState>,
    params: Result<Query<SubscriberParams>, QueryRejection>,
) -> Result<Json<SubscriberListBody>, AppError> {
    let Query(params) = params.map_err(|_| {
        AppError::json(
            StatusCode::UNPROCESSABLE_ENTITY,
            "status must be one of pending, confirmed, unsubscribed, bounced, complained; page and per_page whole numbers.",
        )
    })?;
    let per_page = params.per_page.unwrap_or(PER_PAGE);
    let page = params.page.unwrap_or(1);
    if !(1..=MAX_PER_PAGE).contains(&per_page) || !(1..=1_000_000).contains(&page) {
        return Err(AppError::json(
            StatusCode::UNPROCESSABLE_ENTITY,
            "per_page must be from 1 to 500, and page from 1 to 1000000.",
        ));
    }
    super::one_line("search", params.search.as_deref())?;
    super::one_line("list", params.list.as_deref())?;
    let search = params.search.unwrap_or_default();
    if search.chars().count() > 200 {
        return Err(AppError::json(
            StatusCode::UNPROCESSABLE_ENTITY,
            "search must be 200 characters or fewer.",
        ));
    }
    let segment = match params.segment.as_deref().filter(|s| !s.trim().is_empty()) {
        None => None,
        Some(text) => serde_json::from_str::<Segment>(text)
            .map_err(|err| {
                format!(
                    "segment must be the JSON an issue's segment takes, such as [{{\"field\": \"locality\", \"operator\": \"in\", \"value\": [\"stroud\"]}}]: {err}"
                )
            })
            .and_then(|segment| segment.check())
            .map_err(|problem| AppError::Invalid(vec![FieldError::new("segment", problem)]))?,
    };
    let list = list_named(&state, params.list.as_deref()).await?;
    let found = state
        .store
        .subscribers(&SubscriberQuery {
            list_id: list.id,
            search: &search,
            status: params.status,
            segment: segment.as_ref(),
            offset: (page - 1).saturating_mul(per_page),
            limit: per_page,
        })
        .await?;
    Ok(Json(SubscriberListBody {
        subscribers: found.subscribers,
        total: found.total,
        page,
        per_page,
    }))
}

/// Everything we hold about a person.
#[derive(Serialize, ToSchema)]
pub struct SubscriberBody {
    id: Uuid,
    email: String,
    name: String,
    organisation: Option<String>,
    locality: Option<String>,
    created_at: DateTime<Utc>,
    /// Every list they have been on, with where they stand now.
    subscriptions: Vec<ListStanding>,
    /// Everything they agreed to or withdrew, and every change, oldest first.
    ledger: Vec<ConsentRecord>,
}

impl From<Held> for SubscriberBody {
    fn from(held: Held) -> Self {
        let person = held.person;
        Self {
            id: person.id,
            email: person.email,
            name: person.name,
            organisation: person.organisation,
            locality: person.locality,
            created_at: person.created_at,
            subscriptions: held.subscriptions,
            ledger: held.ledger,
        }
    }
}

async fn held(state: &AppState, id: Uuid) -> Result<Held, AppError> {
    actions::held(state, id)
        .await?
        .ok_or_else(no_such_subscriber)
}

#[utoipa::path(
    get,
    path = "/api/subscribers/{id}",
    params(("id" = Uuid, Path, description = "The subscriber's id")),
    responses(
        (status = 200, description = "The person, their lists, and their ledger", body = SubscriberBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn get_subscriber(
    State(state): State<AppState>,
    SubscriberId(id): SubscriberId,
) -> Result<Json<SubscriberBody>, AppError> {
    Ok(Json(held(&state, id).await?.into()))
}

/// A person to add to a list, on the lawful basis in `source_note`: an import of one.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubscriberBody {
    #[schema(max_length = 254)]
    email: String,
    #[schema(max_length = 256)]
    name: String,
    #[serde(default)]
    #[schema(max_length = 256)]
    organisation: String,
    /// A locality's slug, or empty.
    #[serde(default)]
    locality: String,
    /// The list's slug; "In Partnership" if not given.
    list: Option<String>,
    /// Where their details came from and why they may be emailed.
    #[schema(max_length = 1000)]
    source_note: String,
    /// `confirmed`: subscribed now, on that basis; `invite`: sent a confirmation email,
    /// subscribed only if they confirm.
    mode: Mode,
}

/// Each field's problem, as the sign-up form would say it.
fn details_of(
    name: &str,
    organisation: &str,
    locality: &str,
) -> Result<PersonDetails, Vec<FieldError>> {
    let mut errors = Vec::new();
    let name = SubscriberName::parse(name)
        .map_err(|m| errors.push(FieldError::new("name", m)))
        .ok();
    let organisation = Organisation::parse(organisation)
        .map_err(|m| errors.push(FieldError::new("organisation", m)))
        .ok();
    let locality = Locality::parse(locality)
        .map_err(|m| errors.push(FieldError::new("locality", m)))
        .ok();
    match (name, organisation, locality) {
        (Some(name), Some(organisation), Some(locality)) => Ok(PersonDetails {
            name,
            organisation,
            locality,
        }),
        _ => Err(errors),
    }
}

#[utoipa::path(
    post,
    path = "/api/subscribers",
    request_body = NewSubscriberBody,
    responses(
        (status = 201, description = "Added: confirmed, or sent a confirmation email (pending until they confirm)", body = SubscriberBody),
        (status = 200, description = "Already subscribed (or sent enough confirmation emails today): unchanged", body = SubscriberBody),
        (status = 409, description = "They left this list (or it bounced, or they complained): only they can subscribe again", body = ErrorBody),
        (status = 404, description = "No such list", body = ErrorBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn add_subscriber(
    State(state): State<AppState>,
    Extension(caller): Extension<ApiCaller>,
    ApiJson(body): ApiJson<NewSubscriberBody>,
) -> Result<Response, AppError> {
    let mut errors = Vec::new();
    let email = SubscriberEmail::parse(&body.email)
        .map_err(|m| errors.push(FieldError::new("email", m)))
        .ok();
    let details = details_of(&body.name, &body.organisation, &body.locality)
        .map_err(|mut e| errors.append(&mut e))
        .ok();
    if let Some(problem) = import::source_note_problem(&body.source_note) {
        errors.push(FieldError::new("source_note", problem));
    }
    let (Some(email), Some(details), true) = (email, details, errors.is_empty()) else {
        return Err(AppError::Invalid(errors));
    };
    let list = list_named(&state, body.list.as_deref()).await?;
    let row = ImportRow {
        line: 2,
        email: email.as_str().to_owned(),
        name: details.name.as_str().to_owned(),
        organisation: details
            .organisation
            .as_ref()
            .map_or(String::new(), |o| o.as_str().to_owned()),
        locality: details.locality.map_or("", Locality::slug).to_owned(),
        status: RowStatus::Ready,
        reason: None,
    };
    let record = actions::import_now(
        &state,
        ImportNow {
            list: &list,
            created_by: format!("API token \u{201c}{}\u{201d}", caller.0),
            file_name: "one person, by the API".into(),
            source_note: &body.source_note,
            mode: body.mode,
            rows: vec![row],
        },
    )
    .await?;
    let outcome = state
        .store
        .import_rows(record.id, None, 0, 0, 1)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("An import of one has no row"))?;
    let status = match outcome.status {
        RowStatus::Added | RowStatus::Invited => StatusCode::CREATED,
        RowStatus::Unchanged => StatusCode::OK,
        RowStatus::Refused | RowStatus::Ready => {
            return Err(AppError::json(
                StatusCode::CONFLICT,
                outcome
                    .reason
                    .unwrap_or_else(|| "They cannot be added to this list.".into()),
            ));
        }
    };
    let id = state
        .store
        .subscriber_id(email.as_str())
        .await?
        .ok_or_else(|| anyhow::anyhow!("An imported person is not there"))?;
    let body = SubscriberBody::from(held(&state, id).await?);
    Ok((
        status,
        [(header::LOCATION, format!("/api/subscribers/{id}"))],
        Json(body),
    )
        .into_response())
}

/// What to change: only the fields given change. To put someone on a list, add them
/// (`POST /api/subscribers`): that needs a source note.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriberChangesBody {
    #[schema(max_length = 256)]
    name: Option<String>,
    /// Empty clears it.
    #[schema(max_length = 256)]
    organisation: Option<String>,
    /// A locality's slug; empty clears it.
    locality: Option<String>,
    /// The slugs of lists they leave (recorded as an unsubscribe by the API).
    #[schema(max_items = 100)]
    leave: Option<Vec<String>>,
}

#[utoipa::path(
    patch,
    path = "/api/subscribers/{id}",
    params(("id" = Uuid, Path, description = "The subscriber's id")),
    request_body = SubscriberChangesBody,
    responses(
        (status = 200, description = "Changed, each change in the ledger", body = SubscriberBody),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn update_subscriber(
    State(state): State<AppState>,
    SubscriberId(id): SubscriberId,
    ApiJson(body): ApiJson<SubscriberChangesBody>,
) -> Result<Json<SubscriberBody>, AppError> {
    let before = held(&state, id).await?;
    let person = &before.person;
    let details = details_of(
        body.name.as_deref().unwrap_or(&person.name),
        body.organisation
            .as_deref()
            .unwrap_or(person.organisation.as_deref().unwrap_or_default()),
        body.locality
            .as_deref()
            .unwrap_or(person.locality.as_deref().unwrap_or_default()),
    );
    let lists = state.store.lists().await?;
    let mut errors = details.as_ref().err().cloned().unwrap_or_default();
    let mut leave = Vec::new();
    if body.leave.as_ref().is_some_and(|l| l.len() > MAX_LEAVE) {
        errors.push(FieldError::new(
            "leave",
            format!("Name {MAX_LEAVE} lists at most."),
        ));
    }
    for slug in body.leave.iter().flatten().take(MAX_LEAVE) {
        match lists.iter().find(|l| &l.slug == slug) {
            Some(list) => leave.push(list.id),
            None => errors.push(FieldError::new(
                "leave",
                format!(
                    "There is no list “{}”.",
                    slug.chars().take(60).collect::<String>()
                ),
            )),
        }
    }
    let (Ok(details), true) = (details, errors.is_empty()) else {
        return Err(AppError::Invalid(errors));
    };
    let changed = details.name.as_str() != person.name
        || details.organisation.as_ref().map(|o| o.as_str()) != person.organisation.as_deref()
        || details.locality.map(Locality::slug) != person.locality.as_deref();
    let current = state.store.subscriptions_of(id).await?;
    let on = |list: &Uuid| {
        current.iter().any(|(l, status)| {
            l == list
                && matches!(
                    status,
                    SubscriptionStatus::Confirmed | SubscriptionStatus::Pending
                )
        })
    };
    leave.retain(|list| on(list));
    leave.dedup();
    // A change of details is recorded against a list they are on, or were.
    let ledger_list = current
        .iter()
        .map(|(list, _)| *list)
        .find(|list| on(list))
        .or(current.first().map(|(list, _)| *list));
    if let (Some(ledger_list), true) = (ledger_list, changed || !leave.is_empty()) {
        let brand = super::super::branding::brand();
        state
            .store
            .change_preferences(&PreferenceChange {
                subscriber_id: id,
                details: changed.then_some(details),
                ledger_list,
                lists: ListChanges {
                    join: Vec::new(),
                    leave,
                },
                consent: ConsentContext {
                    method: ConsentMethod::Api,
                    ip: None,
                    user_agent: None,
                },
                wording_version: brand.consent_version.clone(),
                wording_hash: brand.consent_hash(),
                now: Utc::now(),
            })
            .await?;
        tracing::info!(subscriber = %id, "Subscriber changed by the API");
    }
    Ok(Json(held(&state, id).await?.into()))
}

#[utoipa::path(
    delete,
    path = "/api/subscribers/{id}",
    params(("id" = Uuid, Path, description = "The subscriber's id")),
    responses(
        (status = 204, description = "Erased: their personal data is gone everywhere it was kept; the anonymised ledger stays, with the erasure in it"),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn erase_subscriber(
    State(state): State<AppState>,
    Extension(caller): Extension<ApiCaller>,
    SubscriberId(id): SubscriberId,
) -> Result<StatusCode, AppError> {
    let person = held(&state, id).await?.person;
    crate::audience::erasure::erase(
        state.store.as_ref(),
        &state.secret,
        (id, &person.email),
        ConsentMethod::Api,
        Utc::now(),
    )
    .await?;
    tracing::info!(subscriber = %id, token = %caller.0, "Subscriber erased by the API");
    Ok(StatusCode::NO_CONTENT)
}
