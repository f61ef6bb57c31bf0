//! Issue templates and their versions.

use anyhow::Context;
use async_trait::async_trait;

use super::PostgresStore;
use crate::{
    issues::templates::MailTemplate,
    store::{NewTemplateVersion, TemplateStore, TemplateVersionInfo, mapping},
};

#[async_trait]
impl TemplateStore for PostgresStore {
    async fn seed_templates(&self, shipped: &[NewTemplateVersion<'_>]) -> anyhow::Result<()> {
        for v in shipped {
            sqlx::query(
                "INSERT INTO template_versions (name, version, html, text, shipped, created_by, created_at)
                 SELECT $1, 1, $2, $3, TRUE, $4, $5
                 WHERE NOT EXISTS (SELECT 1 FROM template_versions WHERE name = $1)
                 ON CONFLICT (name, version) DO NOTHING",
            )
            .bind(v.name)
            .bind(v.html)
            .bind(v.text)
            .bind(v.by)
            .bind(v.now)
            .execute(&self.pool)
            .await
            .context("Failed to save a shipped template")?;
        }
        Ok(())
    }

    async fn current_template(&self, name: &str) -> anyhow::Result<Option<MailTemplate>> {
        let row = sqlx::query(
            "SELECT name, version, html, text FROM template_versions
             WHERE name = $1 ORDER BY version DESC LIMIT 1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .context("Failed to load a template")?;
        row.as_ref().map(mapping::mail_template).transpose()
    }

    async fn template_version(
        &self,
        name: &str,
        version: i64,
    ) -> anyhow::Result<Option<MailTemplate>> {
        let row = sqlx::query(
            "SELECT name, version, html, text FROM template_versions WHERE name = $1 AND version = $2",
        )
        .bind(name)
        .bind(version)
        .fetch_optional(&self.pool)
        .await
        .context("Failed to load a version of a template")?;
        row.as_ref().map(mapping::mail_template).transpose()
    }

    async fn template_history(&self, name: &str) -> anyhow::Result<Vec<TemplateVersionInfo>> {
        let rows = sqlx::query(
            "SELECT version, shipped, created_by, created_at FROM template_versions
             WHERE name = $1 ORDER BY version DESC",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await
        .context("Failed to load a template's versions")?;
        rows.iter().map(mapping::template_version_info).collect()
    }

    async fn save_template(&self, v: &NewTemplateVersion<'_>) -> anyhow::Result<MailTemplate> {
        let mut tx = self
            .pool
            .begin()
            .await
            .context("Failed to start saving a template")?;
        // One save of a template at a time: concurrent saves would take the same number.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('template_versions:' || $1))")
            .bind(v.name)
            .execute(&mut *tx)
            .await
            .context("Failed to lock the template's versions")?;
        let version: i64 = sqlx::query_scalar(
            "INSERT INTO template_versions (name, version, html, text, shipped, created_by, created_at)
             SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4, $5, $6
             FROM template_versions WHERE name = $1
             RETURNING version",
        )
        .bind(v.name)
        .bind(v.html)
        .bind(v.text)
        .bind(v.shipped)
        .bind(v.by)
        .bind(v.now)
        .fetch_one(&mut *tx)
        .await
        .context("Failed to save a template")?;
        tx.commit().await.context("Failed to commit a template")?;
        Ok(MailTemplate {
            name: v.name.to_owned(),
            version,
            html: v.html.to_owned(),
            text: v.text.to_owned(),
        })
    }
}
