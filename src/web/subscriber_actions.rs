//! What staff can do with subscribers, shared by the JSON API and the web UI (and, for
//! what we hold about a person, their own preference page): export a list as CSV,
//! import people at once (a file, or one person), and read everything about a person.

use axum::{
    http::header,
    response::{IntoResponse, Response},
};
use chrono::Utc;
use serde::Serialize;
use uuid::Uuid;

use super::AppState;
use crate::{
    audience::{
        csv,
        import::{self, ImportRecord, ImportRow, Mode},
        subscription::SubscriptionStatus,
    },
    store::{ConsentRecord, ImportStart, MailingList, Person},
};

/// Every subscriber of the list as CSV, read and sent a page at a time, so a list of
/// any length streams in constant memory. It is everyone's personal data: only admins
/// and API tokens get here.
pub fn export(state: &AppState, list: &MailingList) -> anyhow::Result<Response> {
    let header = csv::header()?;
    let (store, list_id) = (state.store.clone(), list.id);
    let pages = futures_util::stream::unfold(Some(String::new()), move |after| {
        let store = store.clone();
        async move {
            let after = after?;
            let page = store
                .subscribers_after(list_id, &after, csv::PAGE)
                .await
                .and_then(|page| Ok((csv::rows(&page)?, page.last().map(|s| s.email.clone()))));
            match page {
                Ok((_, None)) => None,
                Ok((bytes, next)) => Some((Ok(bytes), next)),
                Err(err) => {
                    tracing::error!(error = format!("{err:#}"), "The export stopped");
                    Some((Err(std::io::Error::other("the export stopped")), None))
                }
            }
        }
    });
    let body = futures_util::stream::StreamExt::chain(
        futures_util::stream::once(async move { Ok(header) }),
        pages,
    );
    let filename = format!(
        "{}-subscribers-{}.csv",
        list.slug,
        Utc::now().format("%Y-%m-%d")
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        axum::body::Body::from_stream(body),
    )
        .into_response())
}

/// An import to make and apply at once, with no preview step between (the API's).
pub struct ImportNow<'a> {
    pub list: &'a MailingList,
    /// Who asked: an API token's name, as the import's record shows it.
    pub created_by: String,
    pub file_name: String,
    /// Checked already (`import::source_note_problem`).
    pub source_note: &'a str,
    pub mode: Mode,
    pub rows: Vec<ImportRow>,
}

/// Records the import with each row's verdict, as the web UI's preview does, then
/// applies it: the same checks, records and ledger events, whichever way it came.
pub async fn import_now(state: &AppState, request: ImportNow<'_>) -> anyhow::Result<ImportRecord> {
    let record = ImportRecord {
        id: Uuid::now_v7(),
        list_id: request.list.id,
        created_by: request.created_by,
        file_name: request.file_name,
        source_note: request.source_note.trim().to_owned(),
        mode: request.mode,
        created_at: Utc::now(),
        applied_at: None,
    };
    let store = state.store.as_ref();
    import::create(store, &state.secret, &record, request.rows).await?;
    anyhow::ensure!(
        store.start_import(record.id, Utc::now()).await? == ImportStart::Started,
        "A new import was started twice"
    );
    let inviter = import::Inviter {
        secret: &state.secret,
        list: request.list,
        ttl: state.settings.confirmation_ttl,
    };
    import::apply(store, &record, &inviter, |_| {}).await?;
    if record.mode == Mode::Invite {
        state.outbox_wake.notify_one();
    }
    tracing::info!(import = %record.id, "Import applied");
    Ok(record)
}

/// Where a person stands with one list.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ListStanding {
    /// The list's slug.
    pub list: String,
    /// The list's name.
    pub name: String,
    pub status: SubscriptionStatus,
}

/// Everything we hold about a person: a subject access request's answer.
#[derive(Clone, Debug)]
pub struct Held {
    pub person: Person,
    pub subscriptions: Vec<ListStanding>,
    /// Everything they agreed to or withdrew, oldest first.
    pub ledger: Vec<ConsentRecord>,
}

/// What we hold about the subscriber; `None` when there is no such person (or they
/// have been erased).
pub async fn held(state: &AppState, id: Uuid) -> anyhow::Result<Option<Held>> {
    let person = state.store.person(id).await?;
    let erased = |p: &Person| crate::audience::subscription::is_erased_address(&p.email);
    let Some(person) = person.filter(|p| !erased(p)) else {
        return Ok(None);
    };
    let lists = state.store.lists().await?;
    let subscriptions = state
        .store
        .subscriptions_of(id)
        .await?
        .into_iter()
        .filter_map(|(list_id, status)| {
            let list = lists.iter().find(|l| l.id == list_id)?;
            Some(ListStanding {
                list: list.slug.clone(),
                name: list.name.clone(),
                status,
            })
        })
        .collect();
    let ledger = state.store.consent_ledger(id).await?;
    Ok(Some(Held {
        person,
        subscriptions,
        ledger,
    }))
}
