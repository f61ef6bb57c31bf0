//! The one way in for every message that comes back (the IMAP poller, the pipe, the
//! webhooks all call `Intake::take`): read it, find the copy it is about, and hand
//! both to the store, which keeps the message and acts on it in one transaction.

use std::sync::Arc;

use chrono::Utc;
use uuid::Uuid;

use super::{Reading, read, read_for, return_path::CopyRef};
use crate::{
    audience::subscription::is_erased_address,
    keys::KeyRing,
    settings::Settings,
    store::{ConsentMethod, InboundRecord, Store, Taken},
    tokens::sha256,
};

#[derive(Clone)]
pub struct Intake {
    store: Arc<dyn Store>,
    ring: KeyRing,
    settings: Arc<Settings>,
}

impl Intake {
    pub fn new(store: Arc<dyn Store>, ring: KeyRing, settings: Arc<Settings>) -> Self {
        Self {
            store,
            ring,
            settings,
        }
    }

    /// Takes one raw message (RFC 5322, as it arrived) from `source` (`imap`, `pipe`).
    /// The same message taken again is stored once (`Taken::Duplicate`).
    #[tracing::instrument(skip_all, fields(source))]
    pub async fn take_mail(&self, source: &str, raw: &[u8]) -> anyhow::Result<Taken> {
        let (reading, copy) = match &self.settings.bounce_address {
            Some(mailbox) => read_for(raw, mailbox, &self.ring),
            None => {
                let reading = read(raw);
                let copy = reading
                    .message_id
                    .as_deref()
                    .and_then(|id| CopyRef::from_message_id(id, &self.ring));
                (reading, copy)
            }
        };
        self.take(
            source,
            sha256(raw),
            reading,
            copy,
            raw.to_vec(),
            ConsentMethod::Mail,
        )
        .await
    }

    /// Takes one event a provider reported by webhook. The copy is the one its envelope
    /// sender names (our return address), or our Message-ID, or the reference we gave
    /// the provider; an event that names none counts against nobody.
    #[tracing::instrument(skip_all, fields(source))]
    pub async fn take_event(
        &self,
        source: &str,
        event: super::webhooks::Event,
    ) -> anyhow::Result<Taken> {
        use super::return_path::Returned;
        let by_sender = event.envelope_sender.as_deref().and_then(|sender| {
            let mailbox = self.settings.bounce_address.as_deref()?;
            match Returned::from_address(sender, mailbox, &self.ring)? {
                Returned::Bounce(copy) => Some(copy),
                Returned::Unsubscribe(_) => None,
            }
        });
        let copy = by_sender
            .or_else(|| {
                let id = event.reading.message_id.as_deref()?;
                CopyRef::from_message_id(id, &self.ring)
            })
            .or_else(|| CopyRef::decode(event.reference.as_deref()?, &self.ring));
        let dedupe = sha256(event.id.as_bytes());
        self.take(
            source,
            dedupe,
            event.reading,
            copy,
            event.raw,
            ConsentMethod::Webhook,
        )
        .await
    }

    /// Stores a reading (of a mail, or of a provider's event) and acts on it.
    pub async fn take(
        &self,
        source: &str,
        dedupe_key: [u8; 32],
        reading: Reading,
        copy: Option<CopyRef>,
        raw: Vec<u8>,
        method: ConsentMethod,
    ) -> anyhow::Result<Taken> {
        let copy = match copy {
            Some(copy) => self.store.known_copy(&copy).await?,
            None => None,
        };
        // An erased person's copy counts against nobody: their address is gone.
        let address_keys = match &copy {
            Some(copy) if !copy.recipient.is_empty() && !is_erased_address(&copy.recipient) => {
                self.ring.address_keys(&copy.recipient)
            }
            _ => Vec::new(),
        };
        let record = InboundRecord {
            id: Uuid::now_v7(),
            received_at: Utc::now(),
            source: source.to_owned(),
            dedupe_key,
            reading,
            copy,
            address_keys,
            raw,
            method,
            soft: self.settings.soft_bounces,
            breaker: self.settings.breaker,
        };
        let taken = self.store.record_inbound(&record).await?;
        match taken {
            Taken::Stored {
                outcome,
                paused_issue,
            } => tracing::info!(
                kind = record.reading.kind.as_str(),
                outcome = outcome.as_str(),
                paused_issue,
                "Took a message that came back"
            ),
            Taken::Duplicate => tracing::info!("Took a message that was taken before"),
        }
        Ok(taken)
    }
}
