//! Joining: a sign-up (a person, their pending subscription, the token and the
//! confirmation mail, in one transaction) and its confirmation.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{ConsentContext, NewOutboxMail};
use crate::{
    budgets::{BudgetKeys, BudgetScope, Budgets},
    domain::NewSubscriber,
};

/// Confirmation mails for one address in 24 hours, at most (sign-ups and imports).
pub const RESEND_CAP: i64 = 3;

/// A confirmation mail and its token: what asks a person to confirm a subscription.
#[derive(Clone, Debug)]
pub struct Invitation {
    pub token_hash: [u8; 32],
    pub token_expires_at: DateTime<Utc>,
    /// The mail; its token is derived from the key and the mail's id when it is built.
    /// The store addresses it to the subscriber's address as first typed (one person
    /// per mailbox), not to `recipient`, which may be another case of it.
    pub mail: NewOutboxMail,
}

/// Everything a sign-up writes, decided before the transaction starts; the store only
/// decides, from what it finds, which parts apply.
#[derive(Clone, Debug)]
pub struct SignupRequest {
    pub new_subscriber_id: Uuid,
    pub event_id: Uuid,
    pub subscriber: NewSubscriber,
    pub list_id: Uuid,
    pub invitation: Invitation,
    /// For someone already subscribed: a short "you are already subscribed" mail with
    /// their way out, sent instead of a confirmation (at most `resend_cap` a day).
    pub reminder: NewOutboxMail,
    pub consent: ConsentContext,
    pub wording_version: &'static str,
    pub wording_hash: String,
    pub now: DateTime<Utc>,
    /// At most this many confirmation mails for one subscription in 24 hours.
    pub resend_cap: i64,
    /// The random part of the sign-up form's token: each works once.
    pub form_nonce: [u8; 16],
    /// What this sign-up counts against, and the limits (see `budgets.rs`).
    pub budget_keys: BudgetKeys,
    pub budgets: Budgets,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignupOutcome {
    /// A confirmation mail is in the outbox.
    ConfirmationQueued,
    /// Already confirmed: an "already subscribed" mail is in the outbox.
    ReminderQueued,
    /// Already confirmed, and reminded often enough in the last 24 hours: nothing sent.
    AlreadyConfirmed,
    /// Pending, but enough confirmation mails went out in the last 24 hours.
    ResendCapReached,
    /// The form's token was used before: nothing stored.
    FormTokenUsed,
    /// A budget on confirmation mails is spent: nothing stored or sent.
    OverBudget(BudgetScope),
}

#[derive(Clone, Debug)]
pub struct ConfirmRequest {
    pub token_hash: [u8; 32],
    pub event_id: Uuid,
    pub consent: ConsentContext,
    pub now: DateTime<Utc>,
    /// Queued when the subscription is confirmed now; the store addresses it to the
    /// subscriber (its `recipient` is not used).
    pub welcome: NewOutboxMail,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfirmOutcome {
    Confirmed,
    /// The subscription was confirmed before (a second click, or another link).
    AlreadyConfirmed,
    /// The token was used and the subscription has since changed: links are single use.
    Used,
    Expired,
    Unknown,
}

#[async_trait]
pub trait SignupStore: Send + Sync {
    async fn record_signup(&self, signup: &SignupRequest) -> anyhow::Result<SignupOutcome>;
    async fn confirm_subscription(
        &self,
        confirm: &ConfirmRequest,
    ) -> anyhow::Result<ConfirmOutcome>;
}
