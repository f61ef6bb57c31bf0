//! The subscriber pages of the staff UI: a paged, searchable list, each person's
//! details and consent ledger, unsubscribing someone by hand, and erasure (admins
//! only), which removes their personal data and keeps the anonymised ledger.

use axum::{
    Extension,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    routing::{MethodRouter, get, post},
};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{AdminFrame, Staff, lists::ChosenList};
use crate::{
    audience::subscriber::Locality,
    audience::subscription::is_erased_address,
    store::{ConsentContext, ConsentMethod, ConsentRecord, SubscriberSummary, UnsubscribeRequest},
    store::{MailingList, SubscriberPage, SubscriberQuery},
    time::uk_date_time,
    tokens::UnsubscribeToken,
    web::{
        AppError, AppState,
        pages::{MessagePage, render},
        subscriber_actions,
    },
};

/// Subscribers per page of the list.
const PAGE_SIZE: u32 = 50;

pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/admin/subscribers", get(list)),
        ("/admin/subscribers/{id}", get(show)),
        ("/admin/subscribers/{id}/unsubscribe", post(unsubscribe)),
    ]
}

/// Everyone's personal data at once, and erasing a person: admins only.
pub fn admin_routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/admin/subscribers/export.csv", get(export)),
        ("/admin/subscribers/{id}/erase", post(erase)),
    ]
}

fn not_found() -> AppError {
    AppError::page(
        StatusCode::NOT_FOUND,
        MessagePage::new(
            "No such subscriber",
            &[
                "There is no subscriber at this address. Their data may have been erased, or the address mistyped.",
            ],
        ),
    )
}

/// The subscriber in the path, on the list; 404 for anything else.
async fn subscriber(
    state: &AppState,
    id: &str,
    list: &MailingList,
) -> Result<SubscriberSummary, AppError> {
    let id = Uuid::parse_str(id).map_err(|_| not_found())?;
    state
        .store
        .subscriber(id, list.id)
        .await?
        .ok_or_else(not_found)
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: Option<u32>,
}

#[derive(Serialize)]
struct Row {
    #[serde(flatten)]
    subscriber: SubscriberSummary,
    since: String,
    /// `Forest of Dean`, not `forest-of-dean`.
    locality_name: Option<String>,
}

#[derive(Serialize)]
struct ListView {
    #[serde(flatten)]
    frame: AdminFrame,
    list: MailingList,
    lists: Vec<MailingList>,
    q: String,
    /// `q` as it goes in a link.
    q_encoded: String,
    rows: Vec<Row>,
    total: i64,
    page: u32,
    pages: u32,
    first: i64,
    last: i64,
}

#[tracing::instrument(skip_all)]
async fn list(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    ChosenList { list, lists }: ChosenList,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, AppError> {
    let Query(query) = query.unwrap_or(Query(ListQuery {
        q: String::new(),
        page: None,
    }));
    let q: String = query.q.trim().chars().take(200).collect();
    let page = query.page.unwrap_or(1).clamp(1, 1_000_000);
    let SubscriberPage { subscribers, total } = state
        .store
        .subscribers(&SubscriberQuery::search(
            list.id,
            &q,
            (page - 1) * PAGE_SIZE,
            PAGE_SIZE,
        ))
        .await?;
    let pages = u32::try_from(total.max(1) as u64)
        .unwrap_or(u32::MAX)
        .div_ceil(PAGE_SIZE);
    let first = i64::from((page - 1) * PAGE_SIZE) + 1;
    let view = ListView {
        frame: AdminFrame::of(&staff),
        list,
        lists,
        q_encoded: url::form_urlencoded::byte_serialize(q.as_bytes()).collect(),
        q,
        last: first + subscribers.len() as i64 - 1,
        first,
        rows: subscribers
            .into_iter()
            .map(|subscriber| Row {
                since: uk_date_time(subscriber.created_at),
                locality_name: subscriber.locality.as_deref().map(Locality::name_of),
                subscriber,
            })
            .collect(),
        total,
        page,
        pages,
    };
    Ok(render("pages/admin_subscribers.html", "Subscribers", &view).into_response())
}

#[derive(Serialize)]
struct LedgerLine {
    #[serde(flatten)]
    record: ConsentRecord,
    when: String,
    /// The consent sentence that version stood for, as the person saw it.
    wording: Option<String>,
}

#[derive(Serialize)]
struct DetailView {
    #[serde(flatten)]
    frame: AdminFrame,
    /// The list the page is about (its status, and the buttons).
    list: MailingList,
    /// Their status on every list they have been on: (list name, status).
    subscriptions: Vec<(String, &'static str)>,
    subscriber: SubscriberSummary,
    locality_name: Option<String>,
    ledger: Vec<LedgerLine>,
    /// Already erased: nothing personal is left to erase.
    erased: bool,
    notice: Option<&'static str>,
}

#[derive(Deserialize)]
struct Done {
    done: Option<String>,
}

#[tracing::instrument(skip_all)]
async fn show(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    ChosenList { list, lists }: ChosenList,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, AppError> {
    let subscriber = subscriber(&state, &id, &list).await?;
    let mut ledger = Vec::new();
    let mut wordings = std::collections::HashMap::new();
    for record in state.store.consent_ledger(subscriber.id).await? {
        let wording = match &record.wording_version {
            Some(version) => {
                if !wordings.contains_key(version) {
                    let text = state.store.consent_text(version).await?;
                    wordings.insert(version.clone(), text);
                }
                wordings[version].clone()
            }
            None => None,
        };
        ledger.push(LedgerLine {
            when: uk_date_time(record.occurred_at),
            wording,
            record,
        });
    }
    let subscriptions = state
        .store
        .subscriptions_of(subscriber.id)
        .await?
        .into_iter()
        .filter_map(|(id, status)| {
            let list = lists.iter().find(|l| l.id == id)?;
            Some((list.name.clone(), status.as_str()))
        })
        .collect();
    let view = DetailView {
        frame: AdminFrame::of(&staff),
        list,
        subscriptions,
        notice: match done.done.as_deref() {
            Some("unsubscribed") => Some("Unsubscribed: they will get no more issues."),
            Some("erased") => {
                Some("Erased: their personal data is gone; the ledger stays, anonymised.")
            }
            _ => None,
        },
        ledger,
        erased: is_erased_address(&subscriber.email),
        locality_name: subscriber.locality.as_deref().map(Locality::name_of),
        subscriber,
    };
    let title = view.subscriber.email.clone();
    Ok(render("pages/admin_subscriber.html", &title, &view).into_response())
}

/// Every subscriber of the list as CSV, read and sent a page at a time, so a list of
/// any length streams in constant memory. Admins only: it is everyone's personal data.
#[tracing::instrument(skip_all)]
async fn export(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    ChosenList { list, .. }: ChosenList,
) -> Result<Response, AppError> {
    tracing::info!(by = %staff.user.id, "Subscribers exported");
    Ok(subscriber_actions::export(&state, &list)?)
}

#[tracing::instrument(skip_all)]
async fn unsubscribe(
    State(state): State<AppState>,
    ChosenList { list, .. }: ChosenList,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let subscriber = subscriber(&state, &id, &list).await?;
    state
        .store
        .unsubscribe(&UnsubscribeRequest {
            token: UnsubscribeToken {
                subscriber_id: subscriber.id,
                list_id: list.id,
                issue_id: None,
            },
            everything: false,
            consent: ConsentContext {
                method: ConsentMethod::Admin,
                ip: None,
                user_agent: None,
            },
            now: Utc::now(),
        })
        .await?;
    tracing::info!(subscriber = %subscriber.id, "Unsubscribed by staff");
    Ok(Redirect::to(&format!(
        "/admin/subscribers/{}?done=unsubscribed&list={}",
        subscriber.id, list.slug
    ))
    .into_response())
}

#[tracing::instrument(skip_all)]
async fn erase(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    ChosenList { list, .. }: ChosenList,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let subscriber = subscriber(&state, &id, &list).await?;
    crate::audience::erasure::erase(
        state.store.as_ref(),
        &state.secret,
        (subscriber.id, &subscriber.email),
        ConsentMethod::Admin,
        Utc::now(),
    )
    .await?;
    tracing::info!(subscriber = %subscriber.id, by = %staff.user.id, "Subscriber erased");
    Ok(Redirect::to(&format!(
        "/admin/subscribers/{}?done=erased&list={}",
        subscriber.id, list.slug
    ))
    .into_response())
}
