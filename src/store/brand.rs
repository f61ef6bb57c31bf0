//! The brand's versions and the consent sentences (see `brand`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::brand::{Brand, BrandVersion};

/// A brand to save as the next version.
#[derive(Clone, Debug)]
pub struct NewBrand<'a> {
    pub brand: &'a Brand,
    /// The name its consent sentence gets if no version has these words yet.
    pub consent_version: &'a str,
    pub by: &'a str,
    pub now: DateTime<Utc>,
}

#[async_trait]
pub trait BrandStore: Send + Sync {
    /// The newest version (the migrations make the first).
    async fn current_brand(&self) -> anyhow::Result<BrandVersion>;
    async fn brand_version(&self, version: i64) -> anyhow::Result<Option<BrandVersion>>;
    /// Saves the next version. A consent sentence with the words of an earlier version
    /// keeps that version's name; new words get `consent_version`.
    async fn save_brand(&self, brand: &NewBrand<'_>) -> anyhow::Result<BrandVersion>;
    /// The words of a consent version, if it is known.
    async fn consent_text(&self, version: &str) -> anyhow::Result<Option<String>>;
}
