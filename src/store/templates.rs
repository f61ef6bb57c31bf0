//! Issue templates and their versions (see `issues::templates`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::issues::templates::MailTemplate;

/// One saved version, as the history lists it.
#[derive(Clone, Debug)]
pub struct TemplateVersionInfo {
    pub version: i64,
    /// Saved from the shipped default (first, or restored).
    pub shipped: bool,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// A version to save.
#[derive(Clone, Debug)]
pub struct NewTemplateVersion<'a> {
    pub name: &'a str,
    pub html: &'a str,
    pub text: &'a str,
    pub shipped: bool,
    pub by: &'a str,
    pub now: DateTime<Utc>,
}

#[async_trait]
pub trait TemplateStore: Send + Sync {
    /// Saves each shipped template as version 1 of its name, if that name has none yet.
    async fn seed_templates(&self, shipped: &[NewTemplateVersion<'_>]) -> anyhow::Result<()>;
    /// The newest version of a template.
    async fn current_template(&self, name: &str) -> anyhow::Result<Option<MailTemplate>>;
    async fn template_version(
        &self,
        name: &str,
        version: i64,
    ) -> anyhow::Result<Option<MailTemplate>>;
    /// Every version of a template, newest first.
    async fn template_history(&self, name: &str) -> anyhow::Result<Vec<TemplateVersionInfo>>;
    /// Saves the next version.
    async fn save_template(&self, version: &NewTemplateVersion<'_>)
    -> anyhow::Result<MailTemplate>;
}
