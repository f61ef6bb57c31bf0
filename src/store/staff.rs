//! Staff accounts, their sessions and sign-in attempts, and API tokens.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::staff::StaffUser;

/// A sign-in attempt to count: its keys (who, from where) with the most failures each
/// may have since `since`.
#[derive(Clone, Debug)]
pub struct LoginAttempt<'a> {
    pub id: Uuid,
    pub limits: &'a [(String, i64)],
    pub since: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginAdmission {
    Admitted,
    /// A key has had too many failures: the password is not checked.
    Throttled,
}

use super::{Creation, Removal};

/// A staff user as sign-in needs them: with their password hash.
#[derive(Clone, Debug)]
pub struct StaffLogin {
    pub user: StaffUser,
    pub password_hash: String,
}

/// A staff user as the users page lists them.
#[derive(Clone, Debug)]
pub struct StaffMember {
    pub user: StaffUser,
    pub added_at: DateTime<Utc>,
}

/// An API token as the tokens page lists it (never the token, nor its hash).
#[derive(Clone, Debug)]
pub struct ApiTokenRecord {
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait StaffStore: Send + Sync {
    /// Stores a new API token's hash under `name`, unless a live token has that name.
    async fn create_api_token(
        &self,
        id: Uuid,
        name: &str,
        token_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Creation>;
    /// Revokes the live token called `name`, if there is one.
    async fn revoke_api_token(&self, name: &str, now: DateTime<Utc>) -> anyhow::Result<Removal>;
    /// The name of the live token with this hash.
    async fn api_token_name(&self, token_hash: &[u8; 32]) -> anyhow::Result<Option<String>>;
    /// Adds a staff user with this password hash, unless the address is taken.
    async fn create_staff_user(
        &self,
        user: &StaffUser,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Creation>;
    /// The staff user with this (normalised) address, and their password hash.
    async fn staff_login(&self, email: &str) -> anyhow::Result<Option<StaffLogin>>;
    async fn create_session(
        &self,
        token_hash: &[u8; 32],
        user_id: Uuid,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> anyhow::Result<()>;
    /// Every staff user, by address, with when they were added.
    async fn staff_users(&self) -> anyhow::Result<Vec<StaffMember>>;
    /// Removes a staff user and ends their sessions.
    async fn delete_staff_user(&self, id: Uuid) -> anyhow::Result<Removal>;
    /// Every API token's name, when it was made, and when it was revoked, newest first.
    async fn api_tokens(&self) -> anyhow::Result<Vec<ApiTokenRecord>>;
    /// Whose unexpired session this is.
    async fn session_user(
        &self,
        token_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<StaffUser>>;
    async fn delete_session(&self, token_hash: &[u8; 32]) -> anyhow::Result<()>;
    /// Counts a sign-in attempt under each of its keys, unless a key has reached its
    /// limit: in one step, before the password is checked, so that parallel attempts
    /// cannot outrun the limits. An attempt counts as failed until it is forgotten.
    async fn admit_login(&self, attempt: &LoginAttempt<'_>) -> anyhow::Result<LoginAdmission>;
    /// Takes back an attempt that succeeded (or was never checked), and forgets every
    /// failure under the keys `clear`.
    async fn forget_login_attempt(&self, id: Uuid, clear: &[String]) -> anyhow::Result<()>;
}
