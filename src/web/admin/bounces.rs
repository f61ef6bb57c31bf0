//! The Bounces page: what came back lately and what it did, the messages kept for a
//! person (their raw text for admins), and the suppression list, where staff search,
//! add, import a previous provider's list, and lift entries.

use axum::{
    Extension, Form,
    extract::{Path, Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::{MethodRouter, get, post},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{AdminFrame, FormParts, Staff};
use crate::{
    store::{InboundFilter, InboundSummary, Removal, SuppressionEntry},
    time::uk_date_time,
    web::{
        AppError, AppState,
        pages::{MessagePage, render},
        suppression_actions as actions,
    },
};

/// Entries and messages a page shows.
const PAGE_SIZE: u32 = 50;

pub fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/admin/bounces", get(page)),
        ("/admin/suppressions", post(add)),
        ("/admin/suppressions/lift", post(lift)),
        ("/admin/suppressions/import", post(import)),
    ]
}

/// A message as it came holds people's words and addresses: admins only.
pub fn admin_routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![("/admin/bounces/{id}/raw", get(raw))]
}

#[derive(Deserialize)]
struct PageQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    done: Option<String>,
}

#[derive(Serialize)]
struct MessageLine {
    id: Uuid,
    when: String,
    kind: &'static str,
    outcome: &'static str,
    status: String,
    diagnostic: String,
    address: String,
    source: String,
}

impl From<InboundSummary> for MessageLine {
    fn from(m: InboundSummary) -> Self {
        MessageLine {
            id: m.id,
            when: uk_date_time(m.received_at),
            kind: m.kind.as_str(),
            outcome: match m.outcome.as_str() {
                "ended" => "Ended the subscription",
                "counted" => "Counted (soft)",
                "ignored" => "Nothing to do",
                "unattributed" => "About no copy of ours",
                _ => "Not understood",
            },
            status: m.status.unwrap_or_default(),
            diagnostic: m.diagnostic.unwrap_or_default(),
            address: m.email.unwrap_or_else(|| m.recipients.join(", ")),
            source: m.source,
        }
    }
}

#[derive(Serialize)]
struct EntryLine {
    key: String,
    who: String,
    reason: &'static str,
    added_by: String,
    note: String,
    when: String,
}

impl From<SuppressionEntry> for EntryLine {
    fn from(e: SuppressionEntry) -> Self {
        EntryLine {
            who: e
                .email
                // Only a subscriber's address is shown: the list itself keeps none.
                .unwrap_or_else(|| format!("an address at {}", e.domain)),
            key: e.key,
            reason: match e.reason.as_str() {
                "bounce" => "Bounced",
                "complaint" => "Reported as spam",
                "manual" => "Added by staff",
                "left" => "Left, details erased",
                _ => "Imported",
            },
            added_by: e.added_by,
            note: e.note.unwrap_or_default(),
            when: uk_date_time(e.created_at),
        }
    }
}

#[derive(Serialize)]
struct BouncesView {
    #[serde(flatten)]
    frame: AdminFrame,
    q: String,
    notice: Option<String>,
    error: Option<String>,
    total: i64,
    entries: Vec<EntryLine>,
    returns: Vec<MessageLine>,
    unrecognised: Vec<MessageLine>,
}

async fn view(
    state: &AppState,
    staff: &Staff,
    q: &str,
    notice: Option<String>,
    error: Option<String>,
) -> Result<BouncesView, AppError> {
    let q = q.trim();
    let page = actions::page(state, Some(q), 0, PAGE_SIZE).await?;
    let lines =
        |messages: Vec<InboundSummary>| messages.into_iter().map(MessageLine::from).collect();
    Ok(BouncesView {
        frame: AdminFrame::of(staff),
        q: q.to_owned(),
        notice,
        error,
        total: page.total,
        entries: page.entries.into_iter().map(EntryLine::from).collect(),
        returns: lines(
            state
                .store
                .inbound_messages(InboundFilter::Returns, PAGE_SIZE)
                .await?,
        ),
        unrecognised: lines(
            state
                .store
                .inbound_messages(InboundFilter::NeedsAPerson, PAGE_SIZE)
                .await?,
        ),
    })
}

fn show(status: StatusCode, view: &BouncesView) -> Response {
    (status, render("pages/admin_bounces.html", "Bounces", view)).into_response()
}

async fn page(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Query(query): Query<PageQuery>,
) -> Result<Response, AppError> {
    let notice = match query.done.as_deref() {
        Some("added") => Some("Added: nothing more is sent to that address.".to_owned()),
        Some("listed") => Some("That address was on the list already.".to_owned()),
        Some("lifted") => Some("Lifted: mail goes to that address again.".to_owned()),
        _ => None,
    };
    let view = view(&state, &staff, &query.q, notice, None).await?;
    Ok(show(StatusCode::OK, &view))
}

#[derive(Deserialize)]
struct AddForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    note: String,
}

fn by(staff: &Staff) -> String {
    staff.user.email.clone()
}

#[tracing::instrument(skip_all)]
async fn add(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Form(form): Form<AddForm>,
) -> Result<Response, AppError> {
    let address = match actions::address("email", &form.email) {
        Ok(address) => address,
        Err(problem) => {
            let view = view(&state, &staff, "", None, Some(problem.message)).await?;
            return Ok(show(StatusCode::UNPROCESSABLE_ENTITY, &view));
        }
    };
    let note: String = form.note.chars().take(500).collect();
    let added = actions::add(&state, &address, Some(&note), &by(&staff)).await?;
    let done = if added { "added" } else { "listed" };
    Ok(Redirect::to(&format!("/admin/bounces?done={done}")).into_response())
}

#[derive(Deserialize)]
struct LiftForm {
    #[serde(default)]
    key: String,
}

#[tracing::instrument(skip_all)]
async fn lift(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    Form(form): Form<LiftForm>,
) -> Result<Response, AppError> {
    match actions::lift(&state, &form.key, None, &by(&staff)).await? {
        Removal::Removed => Ok(Redirect::to("/admin/bounces?done=lifted").into_response()),
        Removal::NotFound => {
            let view = view(
                &state,
                &staff,
                "",
                None,
                Some("That entry is not on the list any more.".into()),
            )
            .await?;
            Ok(show(StatusCode::NOT_FOUND, &view))
        }
    }
}

#[tracing::instrument(skip_all)]
async fn import(
    State(state): State<AppState>,
    Extension(staff): Extension<Staff>,
    form: Option<Extension<FormParts>>,
) -> Result<Response, AppError> {
    let form = form.map(|Extension(form)| form).unwrap_or_default();
    let file = form
        .part("file")
        .filter(|f| f.file_name.as_deref().is_some_and(|n| !n.is_empty()));
    let outcome = match file {
        None => Err("Choose a CSV file to import.".to_owned()),
        Some(file) => actions::import(&state, &file.data, &by(&staff)).await?,
    };
    let (status, notice, error) = match outcome {
        Ok(done) => {
            let mut notice = format!(
                "Imported: {} added, {} on the list already.",
                done.added, done.already_listed
            );
            if let Some(first) = done.refused.first() {
                notice.push_str(&format!(
                    " {} lines hold no address (the first, line {}: {}).",
                    done.refused.len(),
                    first.line,
                    first.problem
                ));
            }
            (StatusCode::OK, Some(notice), None)
        }
        Err(problem) => (StatusCode::UNPROCESSABLE_ENTITY, None, Some(problem)),
    };
    let view = view(&state, &staff, "", notice, error).await?;
    Ok(show(status, &view))
}

/// The message as it came, as text (never rendered as a page).
async fn raw(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, AppError> {
    let not_kept = || {
        AppError::page(
            StatusCode::NOT_FOUND,
            MessagePage::new(
                "No such message",
                &["It is not kept: the address is mistyped, or its person's data was erased."],
            ),
        )
    };
    let id = Uuid::parse_str(&id).map_err(|_| not_kept())?;
    let raw = state.store.inbound_raw(id).await?.ok_or_else(not_kept)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        String::from_utf8_lossy(&raw).into_owned(),
    )
        .into_response())
}
