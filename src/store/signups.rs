//! Joining: a sign-up (a person, their pending subscription, the token and the
//! confirmation mail, in one transaction) and its confirmation.

use crate::audience::subscription::{ConfirmOutcome, SignupOutcome};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{ConsentContext, NewOutboxMail};
use crate::{
    audience::budgets::{BudgetKeys, Budgets},
    audience::subscriber::NewSubscriber,
};

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
    /// The consent sentence the person was shown (`consent_wordings`).
    pub wording_version: String,
    pub wording_hash: String,
    pub now: DateTime<Utc>,
    /// At most this many confirmation mails for one subscription in 24 hours.
    pub resend_cap: i64,
    /// The random part of the sign-up form's token: each works once.
    pub form_nonce: [u8; 16],
    /// What this sign-up counts against, and the limits (see `audience::budgets`).
    pub budget_keys: BudgetKeys,
    pub budgets: Budgets,
    /// The address's keys on the suppression list (`KeyRing::address_keys`): a
    /// suppressed address is sent a mail at most once a month.
    pub suppression_keys: Vec<[u8; 32]>,
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

#[async_trait]
pub trait SignupStore: Send + Sync {
    async fn record_signup(&self, signup: &SignupRequest) -> anyhow::Result<SignupOutcome>;
    async fn confirm_subscription(
        &self,
        confirm: &ConfirmRequest,
    ) -> anyhow::Result<ConfirmOutcome>;
}
