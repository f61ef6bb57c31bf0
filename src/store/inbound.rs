//! Messages that came back (bounces, complaints, auto-replies, mails to an unsubscribe
//! address): each kept as it came with what was read in it, and acted on in the same
//! transaction as it is stored, by the rules of `inbound::verdict`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::ConsentMethod;
use crate::inbound::{
    Kind, Reading,
    return_path::CopyRef,
    verdict::{Breaker, Outcome, SoftBounces},
};

/// The copy a message names, as the store knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownCopy {
    /// An issue's copy: the issue and its list.
    pub issue: Option<(Uuid, Uuid)>,
    pub subscriber_id: Option<Uuid>,
    /// Any other mail: its outbox row.
    pub outbox_id: Option<Uuid>,
    /// The address the copy went to.
    pub recipient: String,
}

/// One message to store and act on.
#[derive(Clone, Debug)]
pub struct InboundRecord {
    pub id: Uuid,
    pub received_at: DateTime<Utc>,
    /// Where it came from: `imap`, `pipe`, or a provider's name.
    pub source: String,
    /// The same message taken twice has the same key, and is stored once.
    pub dedupe_key: [u8; 32],
    pub reading: Reading,
    pub copy: Option<KnownCopy>,
    /// The copy's recipient's keys (`KeyRing::address_keys`), current first; empty when
    /// the recipient is not known (then nothing counts against anyone).
    pub address_keys: Vec<[u8; 32]>,
    pub raw: Vec<u8>,
    /// How a bounce or complaint came: `Mail` or `Webhook`.
    pub method: ConsentMethod,
    pub soft: SoftBounces,
    pub breaker: Breaker,
}

/// What storing a message did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taken {
    Stored {
        outcome: Outcome,
        /// The issue it was about paused itself (the circuit breaker).
        paused_issue: bool,
    },
    /// Taken before (the same message again): nothing changed.
    Duplicate,
}

/// A stored message, as staff see it listed.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct InboundSummary {
    pub id: Uuid,
    pub received_at: DateTime<Utc>,
    pub source: String,
    #[schema(value_type = String, example = "hard")]
    pub kind: Kind,
    #[schema(value_type = String, example = "ended")]
    pub outcome: Outcome,
    /// The RFC 3463 status code.
    pub status: Option<String>,
    /// The receiving system's words.
    pub diagnostic: Option<String>,
    /// The addresses it named.
    pub recipients: Vec<String>,
    pub read_as: String,
    pub issue_id: Option<Uuid>,
    pub subscriber_id: Option<Uuid>,
    /// The recipient of the copy it was about, while they are subscribed.
    pub email: Option<String>,
}

/// Which stored messages to list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InboundFilter {
    /// Bounces and complaints that were acted on or counted.
    Returns,
    /// What a person should look at: not understood, or about no copy of ours.
    NeedsAPerson,
    /// One issue's bounces and complaints.
    Issue(Uuid),
}

#[async_trait]
pub trait InboundStore: Send + Sync {
    /// The copy a reference names, if it exists.
    async fn known_copy(&self, copy: &CopyRef) -> anyhow::Result<Option<KnownCopy>>;
    /// Stores the message and, in the same transaction, does what it decides: ends the
    /// subscription, suppresses the address, records the ledger event, and pauses the
    /// issue when its bounces or complaints pass the breaker's thresholds.
    async fn record_inbound(&self, record: &InboundRecord) -> anyhow::Result<Taken>;
    /// The newest `limit` stored messages that `filter` selects.
    async fn inbound_messages(
        &self,
        filter: InboundFilter,
        limit: u32,
    ) -> anyhow::Result<Vec<InboundSummary>>;
    /// The message as it came, while it is kept.
    async fn inbound_raw(&self, id: Uuid) -> anyhow::Result<Option<Vec<u8>>>;
}
