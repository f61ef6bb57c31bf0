//! What the database keeps about the secret keys: their ids, never the keys (and the
//! key an earlier version kept there, until it is moved out).

use anyhow::Context;
use async_trait::async_trait;
use chrono::Utc;

use super::SqliteStore;
use crate::store::KeyStore;

#[async_trait]
impl KeyStore for SqliteStore {
    async fn legacy_secret_key(&self) -> anyhow::Result<Option<String>> {
        sqlx::query_scalar("SELECT value FROM app_settings WHERE key = 'secret_key'")
            .fetch_optional(&self.writer)
            .await
            .context("Failed to look for a secret key in the database")
    }

    async fn forget_legacy_secret_key(&self) -> anyhow::Result<()> {
        // secure_delete zeroes the row's bytes; VACUUM rewrites the file without free
        // pages, and the checkpoint empties the WAL, so no copy of the key is left.
        let mut conn = self
            .writer
            .acquire()
            .await
            .context("Failed to reach SQLite")?;
        sqlx::query("DELETE FROM app_settings WHERE key = 'secret_key'")
            .execute(&mut *conn)
            .await
            .context("Failed to delete the secret key from the database")?;
        sqlx::query("VACUUM")
            .execute(&mut *conn)
            .await
            .context("Failed to vacuum the database")?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut *conn)
            .await
            .context("Failed to checkpoint the WAL")?;
        Ok(())
    }

    async fn signing_key_ids(&self) -> anyhow::Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT substr(key, 13) FROM app_settings WHERE key LIKE 'signing_key:%' ORDER BY key",
        )
        .fetch_all(&self.writer)
        .await
        .context("Failed to read the ids of the signing keys")
    }

    async fn record_signing_key_id(&self, id: &str) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO app_settings (key, value) VALUES ('signing_key:' || $1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(id)
        .bind(Utc::now().to_rfc3339())
        .execute(&self.writer)
        .await
        .context("Failed to record the signing key's id")?;
        Ok(())
    }
}
