//! The mailing lists.

use anyhow::Context;
use async_trait::async_trait;

use super::PostgresStore;
use crate::store::mapping;
use crate::store::{ListStore, MailingList};

#[async_trait]
impl ListStore for PostgresStore {
    async fn list_by_slug(&self, slug: &str) -> anyhow::Result<Option<MailingList>> {
        let row = sqlx::query("SELECT id, slug, name FROM lists WHERE slug = $1")
            .bind(slug)
            .fetch_optional(&self.pool)
            .await
            .context("Failed to load a list")?;
        row.as_ref().map(mapping::mailing_list).transpose()
    }

    async fn list_slugs(&self) -> anyhow::Result<Vec<String>> {
        sqlx::query_scalar("SELECT slug FROM lists ORDER BY slug")
            .fetch_all(&self.pool)
            .await
            .context("Failed to load the lists")
    }
}
