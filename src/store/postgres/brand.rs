//! The brand's versions and the consent sentences.

use anyhow::Context;
use async_trait::async_trait;

use super::PostgresStore;
use crate::{
    brand::BrandVersion,
    store::{BrandStore, NewBrand, mapping},
};

macro_rules! brand_select {
    ($rest:literal) => {
        concat!(
            "SELECT b.version, b.brand, b.consent_version, c.text AS consent_text
             FROM brand_versions b JOIN consent_wordings c ON c.version = b.consent_version ",
            $rest
        )
    };
}

#[async_trait]
impl BrandStore for PostgresStore {
    async fn current_brand(&self) -> anyhow::Result<BrandVersion> {
        let row = sqlx::query(brand_select!("ORDER BY b.version DESC LIMIT 1"))
            .fetch_one(&self.pool)
            .await
            .context("Failed to load the brand")?;
        mapping::brand_version(&row)
    }

    async fn brand_version(&self, version: i64) -> anyhow::Result<Option<BrandVersion>> {
        let row = sqlx::query(brand_select!("WHERE b.version = $1"))
            .bind(version)
            .fetch_optional(&self.pool)
            .await
            .context("Failed to load a version of the brand")?;
        row.as_ref().map(mapping::brand_version).transpose()
    }

    async fn save_brand(&self, brand: &NewBrand<'_>) -> anyhow::Result<BrandVersion> {
        let json =
            serde_json::to_string(brand.brand).context("Failed to write the brand as JSON")?;
        let hash = crate::tokens::sha256_hex(brand.brand.consent_text.as_bytes());
        let mut tx = self
            .pool
            .begin()
            .await
            .context("Failed to start saving the brand")?;
        // One save at a time: the next version number and the consent lookup are read
        // and written under the lock (concurrent saves would collide on the key).
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('brand_versions'))")
            .execute(&mut *tx)
            .await
            .context("Failed to lock the brand's versions")?;
        let known: Option<String> = sqlx::query_scalar(
            "SELECT version FROM consent_wordings WHERE hash = $1 ORDER BY created_at LIMIT 1",
        )
        .bind(&hash)
        .fetch_optional(&mut *tx)
        .await
        .context("Failed to look up the consent sentence")?;
        let consent_version = match known {
            Some(version) => version,
            None => {
                sqlx::query(
                    "INSERT INTO consent_wordings (version, text, hash, created_by, created_at)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(brand.consent_version)
                .bind(&brand.brand.consent_text)
                .bind(&hash)
                .bind(brand.by)
                .bind(brand.now)
                .execute(&mut *tx)
                .await
                .context("Failed to save the consent sentence")?;
                brand.consent_version.to_owned()
            }
        };
        let version: i64 = sqlx::query_scalar(
            "INSERT INTO brand_versions (version, brand, consent_version, created_by, created_at)
             SELECT coalesce(max(version), 0) + 1, $1, $2, $3, $4 FROM brand_versions
             RETURNING version",
        )
        .bind(&json)
        .bind(&consent_version)
        .bind(brand.by)
        .bind(brand.now)
        .fetch_one(&mut *tx)
        .await
        .context("Failed to save the brand")?;
        tx.commit().await.context("Failed to commit the brand")?;
        Ok(BrandVersion::new(
            version,
            consent_version,
            brand.brand.clone(),
        ))
    }

    async fn consent_text(&self, version: &str) -> anyhow::Result<Option<String>> {
        sqlx::query_scalar("SELECT text FROM consent_wordings WHERE version = $1")
            .bind(version)
            .fetch_optional(&self.pool)
            .await
            .context("Failed to load a consent sentence")
    }
}
