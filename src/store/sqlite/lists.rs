//! The mailing lists.

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::SqliteStore;
use crate::audience::lists::ListDetails;
use crate::store::{Creation, ListStore, MailingList, Removal, creation, mapping};

#[async_trait]
impl ListStore for SqliteStore {
    async fn list_by_slug(&self, slug: &str) -> anyhow::Result<Option<MailingList>> {
        let row = sqlx::query(concat!(
            "SELECT id, slug, name, description, public FROM lists",
            " WHERE slug = $1"
        ))
        .bind(slug)
        .fetch_optional(&self.reader)
        .await
        .context("Failed to load a list")?;
        row.as_ref().map(mapping::mailing_list).transpose()
    }

    async fn lists(&self) -> anyhow::Result<Vec<MailingList>> {
        let rows = sqlx::query(concat!(
            "SELECT id, slug, name, description, public FROM lists",
            " ORDER BY slug <> 'in-partnership', name, slug"
        ))
        .fetch_all(&self.reader)
        .await
        .context("Failed to load the lists")?;
        rows.iter().map(mapping::mailing_list).collect()
    }

    async fn create_list(
        &self,
        id: Uuid,
        slug: &str,
        details: &ListDetails,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Creation> {
        let inserted = sqlx::query(
            "INSERT INTO lists (id, slug, name, description, public, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(slug)
        .bind(&details.name)
        .bind(&details.description)
        .bind(details.public)
        .bind(super::rows::ms(now))
        .execute(&self.writer)
        .await;
        creation(inserted, "Failed to add the list")
    }

    async fn update_list(&self, id: Uuid, details: &ListDetails) -> anyhow::Result<Removal> {
        let updated =
            sqlx::query("UPDATE lists SET name = $2, description = $3, public = $4 WHERE id = $1")
                .bind(id)
                .bind(&details.name)
                .bind(&details.description)
                .bind(details.public)
                .execute(&self.writer)
                .await
                .context("Failed to change the list")?;
        Ok(Removal::of(updated.rows_affected()))
    }
}
