//! The mail worker. It works two queues, in the same way:
//! - the **outbox**: single mails caused by something a person did (a confirmation);
//! - **deliveries**: one row per recipient of an issue that is sending.
//!
//! It claims due rows under a short lease, in its own name, and renders and sends them
//! `concurrency` at a time; after a whole batch it claims the next while the last
//! one's copies are still going (`in_flight`). While it lives, a heartbeat renews its leases; when it dies,
//! they run out within `MAIL_LEASE_SECONDS` and another worker (or the same one,
//! restarted) claims the rows again. Each outcome goes to the `recorder` as the relay
//! answers, which writes everything waiting in one statement a queue: a crash sends
//! again only the copies that were in flight.
//!
//! Transient failures (4xx replies, network faults) come back with exponential backoff
//! until `max_attempts`; permanent ones (5xx) are failed with the relay's words. A
//! recipient who left after the issue started is skipped. Pausing or cancelling an
//! issue stops its claims at once.
//!
//! The worker is woken when mail is queued, and otherwise sleeps until the next row is
//! due, at most `poll_interval` (rows may come from other instances).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use lettre::message::{Mailbox, header::HeaderValue};
use tokio::{
    sync::{Notify, watch},
    time::Instant,
};
use uuid::Uuid;

use crate::{
    brand::BrandVersion,
    inbound::return_path::{CopyRef, ReturnAddresses},
    issues::compose::{self, ComposedIssue, EncodedIssue},
    keys::KeyRing,
    metrics::Metrics,
    sending::mail::{Mailer, OutgoingMail, Parts, SendError, build_message},
    sending::rate::{Grant, RateLimits},
    settings::Settings,
    store::{DeliveryJob, DeliveryResult, OutboxMail, OutboxResult, SendOutcome, Store},
    tokens::UnsubscribeToken,
};

mod in_flight;
mod kinds;
mod pace;
mod recorder;
mod render;

use in_flight::InFlight;
pub use kinds::*;
use pace::Pace;
use recorder::Recorder;

/// How long a worker that has drained the queues waits before it claims again, while
/// mail keeps coming: confirmations, queued one by one as people sign up, are then
/// claimed (and their outcomes written) tens at a time, not one or two a round. An
/// issue's copies, claimed in whole batches, never wait for it.
const GATHER: Duration = Duration::from_millis(5);

/// What one round of claims did, so the worker can tell idle from busy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
struct BatchOutcome {
    /// Copies handed out to send (or settled at once, as suppressed), or, once there
    /// was nothing more to claim, copies in flight that were waited for.
    copies: usize,
    /// The claim took a whole batch: more is likely waiting.
    full: bool,
    /// Issue copies may be due, but the rate budget allows no more until then.
    paced_until: Option<Instant>,
}

/// An issue ready to send: composed once, with the headers every copy shares.
struct IssueMail {
    composed: ComposedIssue,
    /// The parts in quoted-printable, for a relay.
    encoded: EncodedIssue,
    list_id_header: String,
    /// The issue's number, for its copies' return addresses.
    number: i64,
}

#[derive(Clone)]
pub struct OutboxWorker {
    store: Arc<dyn Store>,
    mailer: Arc<Mailer>,
    secret: KeyRing,
    settings: Arc<Settings>,
    from: Mailbox,
    wake: Arc<Notify>,
    issues: Arc<Mutex<HashMap<Uuid, Arc<IssueMail>>>>,
    pace: Arc<Pace>,
    /// The name this worker claims rows in, and renews their leases in. A batch that
    /// fails part-way gives the worker a new name: what it held under the old one then
    /// runs out, and is claimed again, rather than being renewed for ever.
    id: Arc<Mutex<Uuid>>,
    recorder: Recorder,
    metrics: Arc<Metrics>,
}

impl OutboxWorker {
    pub fn new(
        store: Arc<dyn Store>,
        mailer: Arc<Mailer>,
        secret: KeyRing,
        settings: Arc<Settings>,
        wake: Arc<Notify>,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        let from = settings
            .mail_from
            .parse()
            .map_err(|e| anyhow::anyhow!("MAIL_FROM is not a valid address: {e}"))?;
        let pace = Arc::new(Pace::new(settings.mail.rate_per_second));
        Ok(Self {
            mailer,
            secret,
            settings,
            from,
            wake,
            issues: Arc::default(),
            pace,
            id: Arc::new(Mutex::new(Uuid::now_v7())),
            recorder: Recorder::start(store.clone()),
            store,
            metrics,
        })
    }

    /// Works until `shutdown` turns true, finishing the batch in hand.
    pub async fn run_until_stopped(self, mut shutdown: watch::Receiver<bool>) {
        let poll = self.settings.mail.poll_interval;
        let heartbeat = tokio::spawn(self.clone().heartbeat());
        let mail = &self.settings.mail;
        let mut in_flight = InFlight::new(mail.concurrency, mail.batch_size as usize);
        while !*shutdown.borrow() {
            let idle_for = match self.run_batch(&mut in_flight).await {
                Ok(outcome) if outcome.copies > 0 && outcome.full => continue,
                Ok(outcome) if outcome.copies > 0 => {
                    tokio::select! {
                        _ = tokio::time::sleep(GATHER) => {}
                        _ = shutdown.changed() => {}
                    }
                    continue;
                }
                Ok(BatchOutcome {
                    paced_until: Some(until),
                    ..
                }) => until.saturating_duration_since(Instant::now()).min(poll),
                Ok(_) => self.time_until_next_due().await.min(poll),
                Err(err) => {
                    tracing::error!(
                        error = format!("{err:#}"),
                        "The mail worker failed; trying again shortly (what it had claimed goes out when its lease runs out)"
                    );
                    // The sends in flight finish, and are written, under the old name
                    // first: renamed while they went, their leases would run out and
                    // their copies go twice.
                    if let Err(err) = in_flight.finish().await {
                        tracing::error!(error = format!("{err:#}"), "The mail worker failed");
                    }
                    *self.id.lock().unwrap() = Uuid::now_v7();
                    poll
                }
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(idle_for) => {}
                _ = shutdown.changed() => {}
            }
        }
        if let Err(err) = in_flight.finish().await {
            tracing::error!(error = format!("{err:#}"), "The mail worker failed");
        }
        self.recorder.flush().await;
        heartbeat.abort();
    }

    fn id(&self) -> Uuid {
        *self.id.lock().unwrap()
    }

    /// Renews this worker's leases, a few times each lease, for as long as it runs.
    async fn heartbeat(self) {
        let lease = self.settings.mail.lease;
        let mut beats = tokio::time::interval(lease / 4);
        beats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            beats.tick().await;
            let Ok((_, until)) = self.lease() else {
                return;
            };
            let renewed = async {
                let id = self.id();
                self.store.renew_outbox_leases(id, until).await?;
                self.store.renew_delivery_leases(id, until).await
            };
            if let Err(err) = renewed.await {
                tracing::warn!(
                    error = format!("{err:#}"),
                    "Failed to renew the mail leases: another worker may take this one's mail"
                );
            }
        }
    }

    async fn time_until_next_due(&self) -> Duration {
        match self.store.next_mail_due().await {
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

    /// One batch from each queue, handed out to send. Only after a whole batch does
    /// the next claim go ahead while copies are in flight (an issue sending). Otherwise
    /// the queues are drained for now, and the copies in flight are waited for, so the
    /// next claim takes what came meanwhile in one batch (confirmations arriving one by
    /// one) rather than a row at a time. With nothing more to claim, everything sent is
    /// then written and finished issues are marked.
    async fn run_batch(&self, in_flight: &mut InFlight) -> anyhow::Result<BatchOutcome> {
        let outbox = self.run_outbox_batch(in_flight).await?;
        let mut outcome = self.run_delivery_batch(in_flight).await?;
        outcome.copies += outbox.copies;
        outcome.full |= outbox.full;
        if !outcome.full {
            let finished = in_flight.len();
            in_flight.finish().await?;
            if outcome.copies == 0 && outcome.paced_until.is_none() {
                self.recorder.flush().await;
                outcome.copies = finished;
            }
        }
        Ok(outcome)
    }

    fn lease(&self) -> anyhow::Result<(DateTime<Utc>, DateTime<Utc>)> {
        let now = Utc::now();
        Ok((
            now,
            now + chrono::Duration::from_std(self.settings.mail.lease)?,
        ))
    }

    /// Hands out a batch of the outbox.
    #[tracing::instrument(skip_all)]
    async fn run_outbox_batch(&self, in_flight: &mut InFlight) -> anyhow::Result<BatchOutcome> {
        let (now, lease_until) = self.lease()?;
        let wanted = self.settings.mail.batch_size;
        let claimed = self
            .store
            .claim_outbox(self.id(), now, lease_until, wanted)
            .await?;
        let full = claimed.len() == wanted as usize;
        let suppressed = self
            .suppressed(claimed.iter().map(|row| row.recipient.as_str()))
            .await?;
        let (claimed, not_sent): (Vec<_>, Vec<_>) = claimed
            .into_iter()
            .zip(suppressed)
            .partition(|(row, suppressed)| !suppressed || row.past_suppression);
        let outcome = BatchOutcome {
            copies: claimed.len() + not_sent.len(),
            full,
            paced_until: None,
        };
        for (row, _) in not_sent {
            self.outbox_done(OutboxResult {
                id: row.id,
                claimed_by: row.claimed_by,
                outcome: SendOutcome::Suppressed,
            })
            .await;
        }
        if claimed.is_empty() {
            return Ok(outcome);
        }
        // One brand for the batch, not a read per mail.
        let brand = Arc::new(self.store.current_brand().await?);
        let sends = claimed.into_iter().map(|(row, _)| {
            let (worker, brand) = (self.clone(), brand.clone());
            async move {
                let result = worker.send_outbox(row, &brand).await;
                worker.outbox_done(result).await;
            }
        });
        in_flight.start_all(sends).await.map(|()| outcome)
    }

    async fn outbox_done(&self, result: OutboxResult) {
        self.metrics.copy("outbox", &result.outcome);
        self.recorder.outbox(result).await;
    }

    async fn delivery_done(&self, result: DeliveryResult) {
        self.metrics.copy("deliveries", &result.outcome);
        self.recorder.delivery(result).await;
    }

    /// Hands out a batch of issue copies, within the rate budget.
    #[tracing::instrument(skip_all)]
    async fn run_delivery_batch(&self, in_flight: &mut InFlight) -> anyhow::Result<BatchOutcome> {
        let wanted = self.settings.mail.batch_size;
        let limits = RateLimits {
            per_second: self.settings.mail.rate_per_second,
            per_hour: self.settings.mail.rate_per_hour,
        };
        // With limits, what every instance sends together comes out of one budget.
        let (limit, taken_at) = if limits.unlimited() {
            (wanted, None)
        } else {
            let now = Utc::now();
            match self.store.take_send_budget(now, wanted, limits).await? {
                Grant::Copies(n) => (n, Some(now)),
                Grant::WaitUntil(at) => {
                    self.recorder.flush().await;
                    let wait = (at - Utc::now()).to_std().unwrap_or_default();
                    return Ok(BatchOutcome {
                        paced_until: Some(Instant::now() + wait),
                        ..BatchOutcome::default()
                    });
                }
            }
        };
        let (now, lease_until) = self.lease()?;
        let claimed = self
            .store
            .claim_deliveries(self.id(), now, lease_until, limit)
            .await?;
        if let Some(taken_at) = taken_at.filter(|_| claimed.len() < limit as usize) {
            self.store
                .return_send_budget(taken_at, limit - claimed.len() as u32)
                .await?;
        }
        if claimed.is_empty() {
            return Ok(BatchOutcome::default());
        }
        let full = claimed.len() == wanted as usize;
        let suppressed = self
            .suppressed(claimed.iter().map(|job| job.email.as_str()))
            .await?;
        let (claimed, not_sent): (Vec<_>, Vec<_>) = claimed
            .into_iter()
            .zip(suppressed)
            .partition(|(_, suppressed)| !suppressed);
        let copies = claimed.len() + not_sent.len();
        for (job, _) in not_sent {
            self.delivery_done(DeliveryResult {
                issue_id: job.issue_id,
                subscriber_id: job.subscriber_id,
                claimed_by: job.claimed_by,
                outcome: SendOutcome::Suppressed,
            })
            .await;
        }
        let sends = claimed.into_iter().map(|(job, _)| {
            let worker = self.clone();
            async move {
                let result = worker.send_delivery(job).await;
                worker.delivery_done(result).await;
            }
        });
        in_flight.start_all(sends).await.map(|()| BatchOutcome {
            copies,
            full,
            paced_until: None,
        })
    }

    /// Whether each of these addresses is on the suppression list: every batch asks,
    /// in one query, before any of it is sent.
    async fn suppressed<'a>(
        &self,
        addresses: impl Iterator<Item = &'a str>,
    ) -> anyhow::Result<Vec<bool>> {
        let keys: Vec<Vec<[u8; 32]>> = addresses
            .map(|address| self.secret.address_keys(address))
            .collect();
        let all: Vec<[u8; 32]> = keys.iter().flatten().copied().collect();
        let found = self.store.suppressed(&all).await?;
        Ok(keys
            .iter()
            .map(|keys| keys.iter().any(|key| found.contains(key)))
            .collect())
    }

    /// What a send's result means for its row. The relay's words are kept as text a
    /// database takes: no control characters (a NUL would fail every write of the
    /// batch), and not beyond 1,000 characters.
    fn outcome(&self, sent: Result<String, SendError>, attempts: i32) -> SendOutcome {
        let clean = |text: String| -> String {
            text.chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .take(1000)
                .collect()
        };
        let sent = match sent {
            Ok(reply) => Ok(clean(reply)),
            Err(SendError::Transient(error)) => Err(SendError::Transient(clean(error))),
            Err(SendError::Permanent(error)) => Err(SendError::Permanent(clean(error))),
        };
        match sent {
            Ok(reply) => SendOutcome::Sent {
                reply,
                at: Utc::now(),
            },
            Err(SendError::Transient(error))
                if (attempts as u32) < self.settings.mail.max_attempts =>
            {
                let next_attempt_at = self.next_attempt_at(attempts);
                tracing::warn!(%error, %next_attempt_at, "Mail not sent; will try again");
                SendOutcome::Retry {
                    error,
                    next_attempt_at,
                }
            }
            Err(SendError::Transient(error) | SendError::Permanent(error)) => {
                tracing::warn!(%error, "Mail failed for good");
                SendOutcome::Failed { error }
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

    #[tracing::instrument(skip_all, fields(outbox_id = %row.id, kind = %row.kind, attempt = row.attempts))]
    async fn send_outbox(&self, row: OutboxMail, brand: &BrandVersion) -> OutboxResult {
        let rendered = self
            .render_outbox(&row, brand)
            .await
            .map(|mail| OutgoingMail {
                returns: self.returns(CopyRef::Outbox { id: row.id }),
                ..mail
            });
        let sent = match rendered {
            Ok(mail) => match build_message(&self.from, mail, self.mailer.writes_files()) {
                Ok(message) => self.mailer.send(message).await,
                Err(err) => Err(err),
            },
            Err(err) => Err(err),
        };
        OutboxResult {
            id: row.id,
            claimed_by: row.claimed_by,
            outcome: self.outcome(sent, row.attempts),
        }
    }

    #[tracing::instrument(skip_all, fields(issue = %job.issue_id, attempt = job.attempts))]
    async fn send_delivery(&self, job: DeliveryJob) -> DeliveryResult {
        let outcome = if job.still_subscribed {
            let sent = match self.render_delivery(&job).await {
                Ok(mail) => match build_message(&self.from, mail, self.mailer.writes_files()) {
                    Ok(message) => {
                        self.pace.wait().await;
                        self.mailer.send(message).await
                    }
                    Err(err) => Err(err),
                },
                Err(err) => Err(err),
            };
            self.outcome(sent, job.attempts)
        } else {
            SendOutcome::Skipped
        };
        DeliveryResult {
            issue_id: job.issue_id,
            subscriber_id: job.subscriber_id,
            claimed_by: job.claimed_by,
            outcome,
        }
    }

    /// The issue, composed on first use and kept: its content is frozen while it sends.
    async fn issue_mail(&self, issue_id: Uuid) -> Result<Arc<IssueMail>, SendError> {
        if let Some(mail) = self.issues.lock().unwrap().get(&issue_id) {
            return Ok(mail.clone());
        }
        let mail = Arc::new(self.compose_issue(issue_id).await?);
        self.issues.lock().unwrap().insert(issue_id, mail.clone());
        Ok(mail)
    }

    /// The issue as it is now, composed.
    async fn compose_issue(&self, issue_id: Uuid) -> Result<IssueMail, SendError> {
        let transient = |e: anyhow::Error| SendError::Transient(format!("{e:#}"));
        let issue = self
            .store
            .issue(issue_id)
            .await
            .map_err(transient)?
            .ok_or_else(|| SendError::Permanent("The issue no longer exists".into()))?;
        let list = self
            .store
            .list_by_slug(&issue.list_slug)
            .await
            .map_err(transient)?
            .ok_or_else(|| SendError::Permanent("The issue's list no longer exists".into()))?;
        let (template, brand) = compose::versions(&*self.store, &issue)
            .await
            .map_err(transient)?
            .map_err(|missing| SendError::Permanent(missing.to_string()))?;
        let composed = ComposedIssue::compose(&issue, &template, &brand, &self.settings.public_url)
            .map_err(|e| SendError::Permanent(format!("{e:#}")))?;
        Ok(IssueMail {
            number: issue.number,
            encoded: composed.encoded(),
            composed,
            list_id_header: format!("{} <{}.{}>", list.name, list.slug, self.from.email.domain()),
        })
    }

    /// This copy's own addresses, when bounces have a mailbox (`BOUNCE_ADDRESS`).
    fn returns(&self, copy: CopyRef) -> Option<ReturnAddresses> {
        let mailbox = self.settings.bounce_address.as_deref()?;
        copy.addresses(mailbox, &self.secret)
    }

    async fn render_delivery(&self, job: &DeliveryJob) -> Result<OutgoingMail, SendError> {
        let issue = self.issue_mail(job.issue_id).await?;
        let token = UnsubscribeToken {
            subscriber_id: job.subscriber_id,
            list_id: job.list_id,
            issue_id: Some(job.issue_id),
        }
        .sign(&self.secret);
        let links = self.settings.recipient_links(&token);
        let unsubscribe_url = links.unsubscribe.clone();
        // Mail for a relay joins the parts encoded once; a file keeps them readable.
        let parts = if self.mailer.writes_files() {
            let (html, text) = issue.composed.personalise(&links);
            Parts::Plain { text, html }
        } else {
            let (html, text) = issue.encoded.personalise(&links);
            Parts::QuotedPrintable { text, html }
        };
        let returns = u32::try_from(issue.number).ok().and_then(|issue_number| {
            self.returns(CopyRef::Delivery {
                issue_number,
                subscriber_id: job.subscriber_id,
            })
        });
        // By mail: to the copy's own unsubscribe address when bounces have a mailbox.
        let mailto = match &returns {
            Some(returns) => format!("mailto:{}?subject=unsubscribe", returns.unsubscribe),
            None => format!("mailto:{}?subject=unsubscribe%20{token}", self.from.email),
        };
        Ok(OutgoingMail {
            to: job.email.clone(),
            subject: issue.composed.subject.clone(),
            parts,
            headers: vec![
                header(
                    "List-Unsubscribe",
                    format!("<{unsubscribe_url}>, <{mailto}>"),
                ),
                header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".into()),
                header("List-Id", issue.list_id_header.clone()),
            ],
            returns,
        })
    }
}

fn header(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(
        lettre::message::header::HeaderName::new_from_ascii_str(name),
        value,
    )
}
