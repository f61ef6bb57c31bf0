//! Staff looking after their own accounts: invitations and password resets by mailed
//! link, their own password, two-factor sign-in and its recovery codes, and the rule
//! that everyone must use two-factor sign-in.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Creation, NewOutboxMail, Removal};
use crate::staff::{Role, StaffUser};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkPurpose {
    /// To someone who has no account yet: they choose their password.
    Invite,
    /// To someone who forgot their password.
    Reset,
}

impl LinkPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkPurpose::Invite => "invite",
            LinkPurpose::Reset => "reset",
        }
    }
}

/// A link to mail: only the SHA-256 of its token is kept, and the mail that carries it
/// is queued in the same transaction.
#[derive(Clone, Debug)]
pub struct NewStaffLink {
    pub token_hash: [u8; 32],
    pub purpose: LinkPurpose,
    /// Normalised (`staff::normalise_email`).
    pub email: String,
    /// An invitation's role.
    pub role: Option<Role>,
    pub created_by: Option<Uuid>,
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Links of this purpose one address is sent at most in an hour.
    pub hourly_cap: i64,
    /// Addressed by the store.
    pub mail: NewOutboxMail,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkQueued {
    Queued,
    /// An invitation to an address that has an account already.
    HasAccount,
    /// A reset for an address with no account, or one sent its cap this hour: nothing
    /// sent (and the person is told the same as when it is).
    NotSent,
}

impl LinkQueued {
    /// Whether a link is sent, given whether the address has an account and how many
    /// links of this purpose it was sent in the last hour. Both stores decide by it.
    pub(super) fn decide(link: &NewStaffLink, has_account: bool, sent_this_hour: i64) -> Self {
        match (link.purpose, has_account) {
            (LinkPurpose::Invite, true) => LinkQueued::HasAccount,
            (LinkPurpose::Reset, false) => LinkQueued::NotSent,
            _ if sent_this_hour >= link.hourly_cap => LinkQueued::NotSent,
            _ => LinkQueued::Queued,
        }
    }
}

/// A live (unused, unexpired) link.
#[derive(Clone, Debug)]
pub struct StaffLink {
    pub purpose: LinkPurpose,
    pub email: String,
    pub role: Option<Role>,
    pub user_id: Option<Uuid>,
}

impl StaffLink {
    /// From (purpose, email, role, user id), as both stores read it.
    pub(super) fn from_row(
        (purpose, email, role, user_id): (String, String, Option<String>, Option<Uuid>),
    ) -> anyhow::Result<Self> {
        Ok(StaffLink {
            purpose: match purpose.as_str() {
                "invite" => LinkPurpose::Invite,
                _ => LinkPurpose::Reset,
            },
            email,
            role: role.as_deref().map(Role::parse).transpose()?,
            user_id,
        })
    }
}

/// An invitation not yet taken up, as the staff page lists it.
#[derive(Clone, Debug)]
pub struct PendingInvitation {
    pub email: String,
    pub role: Role,
    pub expires_at: DateTime<Utc>,
}

/// A staff member's two-factor sign-in, if they have set it up.
#[derive(Clone, Debug)]
pub struct TwoFactor {
    /// Sealed by `KeyRing::seal_two_factor`.
    pub sealed_secret: Vec<u8>,
    /// The last time step whose code was accepted.
    pub last_step: Option<i64>,
    pub recovery_codes_left: i64,
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    async fn create_staff_link(&self, link: &NewStaffLink) -> anyhow::Result<LinkQueued>;
    /// The live link with this token hash.
    async fn staff_link(
        &self,
        token_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<StaffLink>>;
    /// Uses the invitation: the account is made with this password, once. `Taken`
    /// if the link is no longer live or the address has an account since.
    async fn accept_invitation(
        &self,
        token_hash: &[u8; 32],
        user: &StaffUser,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Creation>;
    /// Uses the reset link: the new password, and every session of theirs ended.
    /// `NotFound` if the link is no longer live.
    async fn reset_password(
        &self,
        token_hash: &[u8; 32],
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Removal>;
    async fn pending_invitations(
        &self,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<PendingInvitation>>;
    async fn password_hash(&self, user_id: Uuid) -> anyhow::Result<Option<String>>;
    /// Their new password; every other session of theirs ends.
    async fn change_password(
        &self,
        user_id: Uuid,
        password_hash: &str,
        keep_session: &[u8; 32],
        now: DateTime<Utc>,
    ) -> anyhow::Result<()>;
    async fn two_factor(&self, user_id: Uuid) -> anyhow::Result<Option<TwoFactor>>;
    /// Turns two-factor sign-in on with this secret (its first code's step used
    /// already) and these recovery code hashes, replacing any before.
    async fn enable_two_factor(
        &self,
        user_id: Uuid,
        sealed_secret: &[u8],
        step: i64,
        recovery_hashes: &[[u8; 32]],
    ) -> anyhow::Result<()>;
    async fn disable_two_factor(&self, user_id: Uuid) -> anyhow::Result<()>;
    /// Records that the code of `step` was used: false if that step or a later one
    /// was used already (a code works once).
    async fn use_two_factor_step(&self, user_id: Uuid, step: i64) -> anyhow::Result<bool>;
    /// Uses the unused recovery code with one of these hashes: false if there is none.
    async fn use_recovery_code(
        &self,
        user_id: Uuid,
        hashes: &[[u8; 32]],
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool>;
    async fn replace_recovery_codes(
        &self,
        user_id: Uuid,
        recovery_hashes: &[[u8; 32]],
    ) -> anyhow::Result<()>;
    /// Whether an admin requires two-factor sign-in of everyone.
    async fn two_factor_required(&self) -> anyhow::Result<bool>;
    async fn require_two_factor(&self, required: bool) -> anyhow::Result<()>;
}
