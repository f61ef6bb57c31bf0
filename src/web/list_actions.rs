//! What staff can do with the lists, shared by the JSON API and the web UI: add one,
//! change one. The rules that hold whichever way the change comes are here.

use chrono::Utc;
use uuid::Uuid;

use super::AppState;
use crate::{
    audience::lists::ListDetails,
    fields::FieldError,
    store::{Creation, DEFAULT_LIST, MailingList, Removal},
};

/// Why a list could not be added or changed.
pub enum ListRefusal {
    /// What the details would clash with: a list of that slug, the default list's rule.
    Conflict(FieldError),
    /// It is gone (another person, another instance).
    NotFound,
}

/// Adds a list with these details; its slug comes from its name.
pub async fn create(
    state: &AppState,
    details: &ListDetails,
) -> anyhow::Result<Result<MailingList, ListRefusal>> {
    let slug = details.slug();
    let id = Uuid::now_v7();
    match state
        .store
        .create_list(id, &slug, details, Utc::now())
        .await?
    {
        Creation::Created => {
            state.lists.forget();
            tracing::info!(list = %slug, "List added");
            Ok(Ok(MailingList {
                id,
                slug,
                name: details.name.clone(),
                description: details.description.clone(),
                public: details.public,
            }))
        }
        Creation::Taken => Ok(Err(ListRefusal::Conflict(FieldError::new(
            "name",
            format!("There is a list at /{slug} already: give this one another name."),
        )))),
    }
}

/// Changes a list's details (its slug stays, so links to it keep working). The
/// default list stays public: sign-ups that choose no list join it.
pub async fn update(
    state: &AppState,
    list: &MailingList,
    details: &ListDetails,
) -> anyhow::Result<Result<(), ListRefusal>> {
    if list.slug == DEFAULT_LIST && !details.public {
        return Ok(Err(ListRefusal::Conflict(FieldError::new(
            "public",
            "Sign-ups that choose no list join this one, so it stays public.",
        ))));
    }
    match state.store.update_list(list.id, details).await? {
        Removal::Removed => {
            state.lists.forget();
            tracing::info!(list = %list.slug, "List changed");
            Ok(Ok(()))
        }
        Removal::NotFound => Ok(Err(ListRefusal::NotFound)),
    }
}
