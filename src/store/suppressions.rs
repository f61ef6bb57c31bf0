//! The suppression list (see `audience::suppression`): checked before every send, kept
//! by keyed hash, changed by the pipeline and by staff, every change recorded.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::audience::suppression::SuppressionReason;

/// An address to put on the list.
#[derive(Clone, Debug)]
pub struct NewSuppression {
    /// `KeyRing::address_keys` of the address, current first.
    pub keys: Vec<[u8; 32]>,
    /// The address, only to find its subscriber (it is not stored).
    pub address: String,
    pub reason: SuppressionReason,
    pub note: Option<String>,
}

/// Who changes the list, and when.
#[derive(Clone, Debug)]
pub struct SuppressionChange {
    /// A staff member's address, or what did it (`confirmation`, `bounce`...).
    pub by: String,
    pub now: DateTime<Utc>,
}

/// An entry of the list, as staff see it.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SuppressionEntry {
    /// The entry's key, hex: what lifting it names.
    pub key: String,
    /// The address, while its subscriber is there (an erased person's entry has none).
    pub email: Option<String>,
    pub subscriber_id: Option<Uuid>,
    pub domain: String,
    #[schema(value_type = String, example = "bounce")]
    pub reason: SuppressionReason,
    pub added_by: String,
    pub note: Option<String>,
    /// The message that was the evidence.
    pub inbound_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct SuppressionPage {
    pub entries: Vec<SuppressionEntry>,
    pub total: i64,
}

#[async_trait]
pub trait SuppressionStore: Send + Sync {
    /// Which of these keys are on the list.
    async fn suppressed(&self, keys: &[[u8; 32]]) -> anyhow::Result<HashSet<[u8; 32]>>;
    /// Adds the addresses not on the list already; returns how many were added.
    async fn add_suppressions(
        &self,
        entries: &[NewSuppression],
        change: &SuppressionChange,
    ) -> anyhow::Result<u64>;
    /// Takes the address (by any of its keys) off the list.
    async fn lift_suppression(
        &self,
        keys: &[[u8; 32]],
        note: Option<&str>,
        change: &SuppressionChange,
    ) -> anyhow::Result<super::Removal>;
    /// A page of the list, newest first; `only` limits it to the entry of those keys.
    async fn suppressions(
        &self,
        only: Option<&[[u8; 32]]>,
        offset: u32,
        limit: u32,
    ) -> anyhow::Result<SuppressionPage>;
}
