//! The mailing lists.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Creation, Removal};
use crate::audience::lists::ListDetails;

/// The slug of the list made by the first migration, "In Partnership": what a sign-up
/// joins when it names no list, and an issue goes to when it names none.
pub const DEFAULT_LIST: &str = "in-partnership";

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MailingList {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub description: String,
    /// Offered on the sign-up form and the preference page.
    pub public: bool,
}

#[async_trait]
pub trait ListStore: Send + Sync {
    async fn list_by_slug(&self, slug: &str) -> anyhow::Result<Option<MailingList>>;
    /// Every list: the first one made first, then by name.
    async fn lists(&self) -> anyhow::Result<Vec<MailingList>>;
    /// Adds a list; a slug in use already is `Taken`.
    async fn create_list(
        &self,
        id: Uuid,
        slug: &str,
        details: &ListDetails,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Creation>;
    /// Changes a list's name, description and whether it is public (never its slug).
    async fn update_list(&self, id: Uuid, details: &ListDetails) -> anyhow::Result<Removal>;
    async fn default_list(&self) -> anyhow::Result<MailingList> {
        self.list_by_slug(DEFAULT_LIST)
            .await?
            .ok_or_else(|| anyhow::anyhow!("The list {DEFAULT_LIST:?} is missing"))
    }
}
