//! The outbox worker: claims due rows under a lease, renders and sends them, and
//! records each outcome. Transient failures come back with exponential backoff until
//! `max_attempts`; permanent ones are marked failed with the relay's reply. A row
//! whose lease runs out (its worker died) is claimed again.
//!
//! The worker is woken at once when a row is added (`Notify`), and otherwise sleeps
//! until the next row is due, at most `poll_interval` (rows may come from other
//! instances sharing the database).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use lettre::message::Mailbox;
use serde::{Deserialize, Serialize};
use tokio::{
    sync::{Notify, Semaphore, watch},
    task::JoinSet,
};

use crate::{
    mail::{Mailer, OutgoingMail, SendError, build_message},
    settings::Settings,
    store::{OutboxMail, OutboxResult, Store},
    templates::templates,
    tokens::SecretKey,
};

pub const CONFIRMATION: &str = "confirmation";

/// What a confirmation mail's templates need, besides the token.
#[derive(Serialize, Deserialize)]
pub struct ConfirmationPayload {
    pub list_name: String,
    /// When the link stops working, already written for people (UK time).
    pub expires: String,
}

/// What one batch did, so a caller (or a test) can tell an idle worker from a busy one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BatchOutcome {
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
}

impl BatchOutcome {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Clone)]
pub struct OutboxWorker {
    store: Arc<dyn Store>,
    mailer: Arc<Mailer>,
    secret: SecretKey,
    settings: Arc<Settings>,
    from: Mailbox,
    wake: Arc<Notify>,
}

impl OutboxWorker {
    pub fn new(
        store: Arc<dyn Store>,
        mailer: Arc<Mailer>,
        secret: SecretKey,
        settings: Arc<Settings>,
        wake: Arc<Notify>,
    ) -> anyhow::Result<Self> {
        let from = settings
            .mail_from
            .parse()
            .map_err(|e| anyhow::anyhow!("MAIL_FROM is not a valid address: {e}"))?;
        Ok(Self {
            store,
            mailer,
            secret,
            settings,
            from,
            wake,
        })
    }

    /// Works until `shutdown` turns true, finishing the batch in hand.
    pub async fn run_until_stopped(self, mut shutdown: watch::Receiver<bool>) {
        let poll = self.settings.mail.poll_interval;
        while !*shutdown.borrow() {
            let idle_for = match self.run_batch().await {
                Ok(outcome) if !outcome.is_empty() => continue,
                Ok(_) => self.time_until_next_due().await.min(poll),
                Err(err) => {
                    tracing::error!(
                        error = format!("{err:#}"),
                        "The outbox worker failed; trying again shortly"
                    );
                    poll
                }
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(idle_for) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    async fn time_until_next_due(&self) -> std::time::Duration {
        match self.store.next_outbox_due().await {
            Ok(Some(due)) => (due - Utc::now()).to_std().unwrap_or_default(),
            Ok(None) => self.settings.mail.poll_interval,
            Err(err) => {
                tracing::error!(
                    error = format!("{err:#}"),
                    "Failed to read when the next mail is due"
                );
                self.settings.mail.poll_interval
            }
        }
    }

    /// Claims one batch of due rows, sends them `concurrency` at a time, and records
    /// every outcome in one transaction.
    #[tracing::instrument(skip_all)]
    pub async fn run_batch(&self) -> anyhow::Result<BatchOutcome> {
        let mail = &self.settings.mail;
        let now = Utc::now();
        let lease = chrono::Duration::from_std(mail.lease)?;
        let claimed = self
            .store
            .claim_outbox(now, now + lease, mail.batch_size)
            .await?;
        if claimed.is_empty() {
            return Ok(BatchOutcome::default());
        }

        let permits = Arc::new(Semaphore::new(mail.concurrency));
        let mut sends = JoinSet::new();
        for row in claimed {
            let worker = self.clone();
            let permits = permits.clone();
            sends.spawn(async move {
                let _permit = permits.acquire_owned().await;
                worker.deliver(row).await
            });
        }
        let mut results = Vec::new();
        let mut outcome = BatchOutcome::default();
        while let Some(joined) = sends.join_next().await {
            let result = joined?;
            match &result {
                OutboxResult::Sent { .. } => outcome.sent += 1,
                OutboxResult::Retry { .. } => outcome.retrying += 1,
                OutboxResult::Failed { .. } => outcome.failed += 1,
            }
            results.push(result);
        }
        self.store.record_outbox_results(&results).await?;
        Ok(outcome)
    }

    #[tracing::instrument(skip_all, fields(outbox_id = %row.id, kind = %row.kind, attempt = row.attempts))]
    async fn deliver(&self, row: OutboxMail) -> OutboxResult {
        let sent = match self.render(&row) {
            Ok(mail) => match build_message(&self.from, mail) {
                Ok(message) => self.mailer.send(message).await,
                Err(err) => Err(err),
            },
            Err(err) => Err(err),
        };
        match sent {
            Ok(reply) => {
                tracing::info!("Mail sent");
                OutboxResult::Sent {
                    id: row.id,
                    reply,
                    at: Utc::now(),
                }
            }
            Err(SendError::Transient(error))
                if (row.attempts as u32) < self.settings.mail.max_attempts =>
            {
                let next_attempt_at = self.next_attempt_at(row.attempts);
                tracing::warn!(%error, %next_attempt_at, "Mail not sent; will try again");
                OutboxResult::Retry {
                    id: row.id,
                    error,
                    next_attempt_at,
                }
            }
            Err(SendError::Transient(error) | SendError::Permanent(error)) => {
                tracing::warn!(%error, "Mail failed for good");
                OutboxResult::Failed { id: row.id, error }
            }
        }
    }

    /// `retry_base`, doubling with each attempt made, capped at `retry_max`.
    fn next_attempt_at(&self, attempts: i32) -> DateTime<Utc> {
        let mail = &self.settings.mail;
        let doublings = attempts.saturating_sub(1).clamp(0, 30) as u32;
        let delay = mail
            .retry_base
            .saturating_mul(2u32.saturating_pow(doublings))
            .min(mail.retry_max);
        Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX)
    }

    fn render(&self, row: &OutboxMail) -> Result<OutgoingMail, SendError> {
        // A row we cannot render will not render on a retry either.
        let permanent = |e: anyhow::Error| SendError::Permanent(format!("{e:#}"));
        match row.kind.as_str() {
            CONFIRMATION => {
                let payload: ConfirmationPayload =
                    serde_json::from_str(&row.payload).map_err(|e| permanent(e.into()))?;
                let sealed = row.sealed_secret.as_deref().ok_or_else(|| {
                    permanent(anyhow::anyhow!("The confirmation token is missing"))
                })?;
                let token = self
                    .secret
                    .open(sealed, row.id.as_bytes())
                    .map_err(permanent)?;
                let confirm_url = format!(
                    "{}/subscriptions/confirm?token={}",
                    self.settings.public_url,
                    token.encode()
                );
                if self.mailer.writes_files() {
                    // Development without a relay: the issue asks for the link in the log.
                    tracing::info!(%confirm_url, "No SMTP_URL: confirmation link");
                }
                let context = serde_json::json!({
                    "list_name": payload.list_name,
                    "confirm_url": confirm_url,
                    "expires": payload.expires,
                });
                Ok(OutgoingMail {
                    to: row.recipient.clone(),
                    subject: format!("Confirm your subscription to {}", payload.list_name),
                    text: templates()
                        .render("email/confirmation.txt", &context)
                        .map_err(permanent)?,
                    html: templates()
                        .render("email/confirmation.html", &context)
                        .map_err(permanent)?,
                })
            }
            other => Err(permanent(anyhow::anyhow!("Unknown mail kind {other:?}"))),
        }
    }
}
