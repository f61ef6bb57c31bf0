//! What the database keeps about the secret keys: their ids, never the keys (and the
//! key an earlier version kept there, until it is moved out).

use async_trait::async_trait;

#[async_trait]
pub trait KeyStore: Send + Sync {
    /// The secret key an earlier version kept in the database, if it is still there.
    async fn legacy_secret_key(&self) -> anyhow::Result<Option<String>>;
    /// Deletes that key so that no trace of it is left in the database files.
    async fn forget_legacy_secret_key(&self) -> anyhow::Result<()>;
    /// The ids of every key that has signed here (never the keys themselves).
    async fn signing_key_ids(&self) -> anyhow::Result<Vec<String>>;
    async fn record_signing_key_id(&self, id: &str) -> anyhow::Result<()>;
}
