//! The mailing lists.

use async_trait::async_trait;
use uuid::Uuid;

/// The slug of the list every sign-up joins, created by the first migration.
pub const DEFAULT_LIST: &str = "in-partnership";

/// The newsletter everyone signs up to, created by the first migration.
#[derive(Clone, Debug)]
pub struct MailingList {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
}

#[async_trait]
pub trait ListStore: Send + Sync {
    async fn list_by_slug(&self, slug: &str) -> anyhow::Result<Option<MailingList>>;
    /// Every list's slug, in order.
    async fn list_slugs(&self) -> anyhow::Result<Vec<String>>;
    async fn default_list(&self) -> anyhow::Result<MailingList> {
        self.list_by_slug(DEFAULT_LIST)
            .await?
            .ok_or_else(|| anyhow::anyhow!("The list {DEFAULT_LIST:?} is missing"))
    }
}
