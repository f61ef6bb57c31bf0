//! Joining: a sign-up (a person, their pending subscription, the token and the
//! confirmation mail, in one transaction) and its confirmation.

use crate::audience::subscription::{ConfirmOutcome, SignupOutcome, SubscriptionStatus};
use anyhow::{Context, anyhow};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use tokio::sync::{mpsc, oneshot};
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
    pub subscriber: NewSubscriber,
    /// The lists chosen (at least one); one confirmation mail asks about them all.
    pub list_ids: Vec<Uuid>,
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
    pub consent: ConsentContext,
    pub now: DateTime<Utc>,
    /// Queued when the subscription is confirmed now; the store addresses it to the
    /// subscriber (its `recipient` is not used).
    pub welcome: NewOutboxMail,
}

#[async_trait]
pub trait SignupStore: Send + Sync {
    async fn record_signup(&self, signup: &SignupRequest) -> anyhow::Result<SignupOutcome>;
    /// Deletes the people who never confirmed any list and whose every confirmation
    /// link expired before `expired_before`; their ledger stays, anonymised. Returns
    /// how many were deleted.
    async fn delete_expired_signups(&self, expired_before: DateTime<Utc>) -> anyhow::Result<u64>;
    /// The lists a confirmation token asks about, oldest list first.
    async fn token_lists(&self, token_hash: &[u8; 32]) -> anyhow::Result<Vec<Uuid>>;
    /// Confirms every list the token asks about (each as `audience::subscription::confirmation`
    /// decides), with one welcome mail if any is confirmed now.
    async fn confirm_subscription(
        &self,
        confirm: &ConfirmRequest,
    ) -> anyhow::Result<ConfirmOutcome>;
}

/// What a sign-up (or an import) finds of an address, read with its row locked.
#[derive(Clone, Debug)]
pub(crate) struct KnownSubscriber {
    pub id: Uuid,
    statuses: HashMap<Uuid, SubscriptionStatus>,
    /// Confirmed on some list (any list, not only those chosen).
    pub confirmed_anywhere: bool,
    /// Confirmation mails sent to them in the last 24 hours, for any lists.
    pub recent: i64,
}

impl KnownSubscriber {
    pub fn new(
        id: Uuid,
        statuses: Vec<(Uuid, String)>,
        confirmed_anywhere: bool,
        recent: i64,
    ) -> anyhow::Result<Self> {
        let statuses = statuses
            .into_iter()
            .map(|(list, status)| Ok((list, SubscriptionStatus::parse(&status)?)))
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            id,
            statuses,
            confirmed_anywhere,
            recent,
        })
    }

    /// Their subscription to the list, if they have one.
    pub fn status(&self, list: Uuid) -> Option<SubscriptionStatus> {
        self.statuses.get(&list).copied()
    }

    pub fn statuses_of(&self, lists: &[Uuid]) -> Vec<(Uuid, Option<SubscriptionStatus>)> {
        lists.iter().map(|l| (*l, self.status(*l))).collect()
    }

    /// As they are once invited to `lists`: pending where they were not subscribed,
    /// and one more confirmation mail in the last 24 hours.
    pub fn invited(&mut self, lists: &[Uuid]) {
        for list in lists {
            self.statuses
                .entry(*list)
                .or_insert(SubscriptionStatus::Pending);
        }
        self.recent += 1;
    }
}

/// Writes a batch of sign-ups in one transaction, an outcome for each in order.
#[async_trait]
pub(crate) trait SignupWriter: Send + Sync + 'static {
    /// The most sign-ups one transaction takes.
    const MOST: usize = 128;

    async fn write(&self, batch: &[&SignupRequest]) -> anyhow::Result<Vec<SignupOutcome>>;
}

type QueuedSignup = (
    SignupRequest,
    oneshot::Sender<anyhow::Result<SignupOutcome>>,
);

/// Group commit: sign-ups wait here for the one task that writes them, and every
/// sign-up waiting when it is free goes into one transaction. That pays for BEGIN,
/// COMMIT, the hand-offs between tasks and the locks every sign-up takes (the total
/// budget's row) once per batch instead of once per sign-up. If the transaction fails,
/// every sign-up in it gets the error (nothing of the batch is kept, so nothing is
/// half-written).
pub(crate) struct SignupQueue(mpsc::Sender<QueuedSignup>);

impl SignupQueue {
    /// The writer runs as a task beside the requests.
    pub fn start<W: SignupWriter>(writer: W) -> Self {
        let (sender, queue) = mpsc::channel(4 * W::MOST);
        tokio::spawn(serve(writer, queue));
        Self(sender)
    }

    /// The writer runs on a thread of its own, made there by `make` (so that what it
    /// connects belongs to that thread's runtime). A batch waits on its database round
    /// trips one after another, and every sign-up waits on the batch: on a thread of
    /// its own the writer is woken by the operating system as each answer comes, not
    /// when the request tasks ahead of it in the runtime's queue are done.
    pub fn start_on_own_thread<W: SignupWriter>(
        make: impl FnOnce() -> W + Send + 'static,
    ) -> anyhow::Result<Self> {
        let (sender, queue) = mpsc::channel(4 * W::MOST);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("Failed to start the sign-up writer's runtime")?;
        std::thread::Builder::new()
            .name("signup-writer".into())
            .spawn(move || runtime.block_on(async move { serve(make(), queue).await }))
            .context("Failed to start the sign-up writer's thread")?;
        Ok(Self(sender))
    }

    pub async fn record(&self, req: &SignupRequest) -> anyhow::Result<SignupOutcome> {
        let (reply, outcome) = oneshot::channel();
        self.0
            .send((req.clone(), reply))
            .await
            .map_err(|_| anyhow!("The sign-up writer has stopped"))?;
        outcome
            .await
            .map_err(|_| anyhow!("The sign-up writer stopped before answering"))?
    }
}

/// Takes every sign-up waiting, writes them as one batch and answers each, until the
/// queue's last sender (the store) is gone.
async fn serve<W: SignupWriter>(writer: W, mut queue: mpsc::Receiver<QueuedSignup>) {
    let mut batch = Vec::with_capacity(W::MOST);
    while queue.recv_many(&mut batch, W::MOST).await > 0 {
        let requests: Vec<&SignupRequest> = batch.iter().map(|(req, _)| req).collect();
        let result = writer.write(&requests).await;
        for (i, (_, reply)) in batch.drain(..).enumerate() {
            let answer = match &result {
                Ok(outcomes) => outcomes
                    .get(i)
                    .copied()
                    .ok_or_else(|| anyhow!("The sign-up writer gave no outcome for one")),
                Err(err) => Err(anyhow!("{err:#}")),
            };
            // The request may have gone (client hung up); its sign-up stands.
            let _ = reply.send(answer);
        }
    }
}
