//! What staff can do with the suppression list and the messages that came back, shared
//! by the JSON API and the web UI: find an address, add addresses (one, or a previous
//! provider's CSV), lift an entry. Every change is recorded with who made it.

use chrono::Utc;

use super::AppState;
use crate::{
    audience::{
        subscriber::SubscriberEmail,
        suppression::{SuppressionReason, read_suppression_csv},
    },
    fields::FieldError,
    store::{NewSuppression, Removal, SuppressionChange, SuppressionPage},
    tokens::key_from_hex,
};

/// A page of the list; with `search`, only the entry for that address (or key).
pub async fn page(
    state: &AppState,
    search: Option<&str>,
    offset: u32,
    limit: u32,
) -> anyhow::Result<SuppressionPage> {
    let keys = search
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|search| match key_from_hex(search) {
            Some(key) => vec![key],
            None => state.secret.address_keys(search),
        });
    state
        .store
        .suppressions(keys.as_deref(), offset, limit)
        .await
}

/// An address from a staff member's form or request.
pub fn address(field: &'static str, raw: &str) -> Result<SubscriberEmail, FieldError> {
    SubscriberEmail::parse(raw).map_err(|problem| FieldError::new(field, problem))
}

fn entry(
    state: &AppState,
    address: &str,
    reason: SuppressionReason,
    note: Option<&str>,
) -> NewSuppression {
    NewSuppression {
        keys: state.secret.address_keys(address),
        address: address.to_owned(),
        reason,
        note: note
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned),
    }
}

/// Adds one address; whether it was not on the list before.
pub async fn add(
    state: &AppState,
    address: &SubscriberEmail,
    note: Option<&str>,
    by: &str,
) -> anyhow::Result<bool> {
    let added = state
        .store
        .add_suppressions(
            &[entry(
                state,
                address.as_str(),
                SuppressionReason::Manual,
                note,
            )],
            &change(by),
        )
        .await?;
    Ok(added > 0)
}

/// What importing a suppression CSV did.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SuppressionImport {
    /// Addresses put on the list.
    pub added: u64,
    /// Addresses that were on it already.
    pub already_listed: u64,
    /// Lines that hold no address: (line, what it held, why).
    pub refused: Vec<RefusedLine>,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RefusedLine {
    pub line: u64,
    pub value: String,
    pub problem: String,
}

/// Reads a CSV from a previous provider and adds every address in it. The error is
/// the file's problem, in words for people.
pub async fn import(
    state: &AppState,
    data: &[u8],
    by: &str,
) -> anyhow::Result<Result<SuppressionImport, String>> {
    let file = match read_suppression_csv(data) {
        Ok(file) => file,
        Err(problem) => return Ok(Err(problem)),
    };
    let entries: Vec<NewSuppression> = file
        .addresses
        .iter()
        .map(|address| entry(state, address, SuppressionReason::Import, None))
        .collect();
    let mut added = 0;
    for chunk in entries.chunks(500) {
        added += state.store.add_suppressions(chunk, &change(by)).await?;
    }
    Ok(Ok(SuppressionImport {
        added,
        already_listed: entries.len() as u64 - added,
        refused: file
            .refused
            .into_iter()
            .map(|(line, value, problem)| RefusedLine {
                line,
                value,
                problem,
            })
            .collect(),
    }))
}

/// Lifts the entry for an address (or a key, for an erased person's entry).
pub async fn lift(
    state: &AppState,
    address_or_key: &str,
    note: Option<&str>,
    by: &str,
) -> anyhow::Result<Removal> {
    let keys = match key_from_hex(address_or_key) {
        Some(key) => vec![key],
        None => state.secret.address_keys(address_or_key),
    };
    let note = note.map(str::trim).filter(|n| !n.is_empty());
    state.store.lift_suppression(&keys, note, &change(by)).await
}

fn change(by: &str) -> SuppressionChange {
    SuppressionChange {
        by: by.to_owned(),
        now: Utc::now(),
    }
}
