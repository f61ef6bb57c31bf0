//! The kinds of single mail the outbox sends, and what each row's payload holds: never
//! a secret (a confirmation's token is derived again from the key and the mail's id).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{
    keys::KeyRing,
    store::{Invitation, NewOutboxMail},
};

pub const CONFIRMATION: &str = "confirmation";
pub const WELCOME: &str = "welcome";
/// To someone already subscribed who signs up again: nothing to confirm, and the way out.
pub const ALREADY_SUBSCRIBED: &str = "already_subscribed";
pub const ISSUE_TEST: &str = "issue_test";

/// What a confirmation mail's templates need, besides the token.
#[derive(Serialize, Deserialize)]
pub struct ConfirmationPayload {
    pub list_name: String,
    /// When the link stops working, already written for people (UK time).
    pub expires: String,
    /// Staff imported them and invite them; they did not ask themselves.
    #[serde(default)]
    pub invited: bool,
    /// The key the token is derived from (with the mail's id). Mails queued by an
    /// earlier version have none: their token is sealed into the row instead.
    #[serde(default)]
    pub key_id: Option<String>,
}

impl Invitation {
    /// A confirmation mail to `recipient` for the list `list_name`, with a new token
    /// that works for `ttl`; only the token's hash is kept, and the worker derives the
    /// token again from the key and the mail's id. `invited` when staff imported them,
    /// rather than their asking.
    pub fn new(
        keys: &KeyRing,
        list_name: &str,
        ttl: Duration,
        recipient: &str,
        now: DateTime<Utc>,
        invited: bool,
    ) -> anyhow::Result<Self> {
        let token_expires_at = now + chrono::Duration::from_std(ttl)?;
        let id = Uuid::now_v7();
        let key = keys.current();
        let token = key.confirmation_token(id.as_bytes());
        let payload = ConfirmationPayload {
            list_name: list_name.to_owned(),
            expires: crate::time::uk_date_time(token_expires_at),
            invited,
            key_id: Some(key.id.to_string()),
        };
        Ok(Self {
            token_hash: token.hash(),
            token_expires_at,
            mail: NewOutboxMail {
                id,
                kind: CONFIRMATION.into(),
                recipient: recipient.to_owned(),
                payload: serde_json::to_string(&payload)?,
            },
        })
    }
}

/// What a welcome or already-subscribed mail needs: the list, to name it and to sign
/// the unsubscribe link.
#[derive(Serialize, Deserialize)]
pub struct WelcomePayload {
    pub list_name: String,
    pub list_id: Uuid,
}

/// The already-subscribed mail for a sign-up, queued by the store only if the person is
/// subscribed already (and not reminded too often).
pub fn already_subscribed(
    list: &crate::store::MailingList,
    recipient: &str,
) -> anyhow::Result<NewOutboxMail> {
    Ok(NewOutboxMail {
        id: Uuid::now_v7(),
        kind: ALREADY_SUBSCRIBED.into(),
        recipient: recipient.to_owned(),
        payload: serde_json::to_string(&WelcomePayload {
            list_name: list.name.clone(),
            list_id: list.id,
        })?,
    })
}

/// A test copy of an issue, composed from its content when it is sent.
#[derive(Serialize, Deserialize)]
pub struct IssueTestPayload {
    pub issue_id: Uuid,
}
