//! Joining: a sign-up (a person, their pending subscription, the token and the
//! confirmation mail, in one transaction) and its confirmation.

use crate::audience::subscription::{
    ConfirmOutcome, SignupAction, SignupOutcome, SubscriptionStatus, confirmation, signup_action,
};
use anyhow::{Context, anyhow};
use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::{QueuedSignup, SIGNUP_BATCH, SqliteStore, rows::ms};
use crate::audience::subscriber::NewSubscriber;
use crate::store::{ConfirmRequest, SignupRequest, SignupStore};

/// The writes every sign-up that sends a mail makes, after its first statement.
macro_rules! signup_writes {
    () => {
        "INSERT INTO confirmation_tokens (token_hash, subscriber_id, list_id, created_at, expires_at)
         VALUES ($4, $1, $2, $3, $5);
         INSERT INTO consent_events
           (id, subscriber_id, list_id, kind, method, occurred_at, ip, user_agent, wording_version, wording_hash)
         VALUES ($6, $1, $2, 'signup', $7, $3, $8, $9, $10, $11);
         INSERT INTO outbox (id, kind, recipient, subscriber_id, payload, next_attempt_at, created_at)
         VALUES ($12, $13, (SELECT email FROM subscribers WHERE id = $1), $1, $18, $3, $3)"
    };
}

/// Someone already subscribed who signs up again is reminded, at most a cap a day: one
/// statement, so the count and the insert cannot be split.
const REMIND: &str =
    "INSERT INTO outbox (id, kind, recipient, subscriber_id, payload, next_attempt_at, created_at)
     SELECT $1, $2, s.email, s.id, $3, $4, $4 FROM subscribers s
     WHERE s.id = $5
       AND (SELECT count(*) FROM outbox o
            WHERE o.subscriber_id = $5 AND o.kind = $2 AND o.created_at > $6) < $7";

/// Group commit: every sign-up waiting when the writer is free goes into one
/// transaction. SQLite has one writer at a time anyway; batching pays for BEGIN,
/// COMMIT and the hand-offs between tasks once per batch instead of once per sign-up,
/// and nobody waits on SQLite's busy handler. If the transaction fails, every sign-up
/// in it gets the error (nothing of the batch is kept, so nothing is half-written).
pub(super) async fn write_signups(writer: SqlitePool, mut queue: mpsc::Receiver<QueuedSignup>) {
    let mut batch = Vec::with_capacity(SIGNUP_BATCH);
    while queue.recv_many(&mut batch, SIGNUP_BATCH).await > 0 {
        let requests: Vec<&SignupRequest> = batch.iter().map(|(req, _)| req).collect();
        let result = record_signups(&writer, &requests).await;
        for (i, (_, reply)) in batch.drain(..).enumerate() {
            let answer = match &result {
                Ok(outcomes) => Ok(outcomes[i]),
                Err(err) => Err(anyhow!("{err:#}")),
            };
            // The request may have gone (client hung up); its sign-up stands anyway.
            let _ = reply.send(answer);
        }
    }
}

pub(super) async fn record_signups(
    writer: &SqlitePool,
    requests: &[&SignupRequest],
) -> anyhow::Result<Vec<SignupOutcome>> {
    let mut tx = writer
        .begin_with("BEGIN IMMEDIATE")
        .await
        .context("Failed to begin the sign-up transaction")?;
    let mut outcomes = Vec::with_capacity(requests.len());
    for req in requests {
        outcomes.push(record_signup(&mut tx, req).await?);
    }
    tx.commit().await.context("Failed to commit the sign-ups")?;
    Ok(outcomes)
}

/// One sign-up inside the batch's transaction: two round trips to SQLite's thread, the
/// first to learn what we know of the address, the second for everything it writes.
pub(super) async fn record_signup(
    conn: &mut SqliteConnection,
    req: &SignupRequest,
) -> anyhow::Result<SignupOutcome> {
    let now = ms(req.now);
    let person = &req.subscriber;

    if !super::budgets::use_form_token(conn, &req.form_nonce, req.now).await? {
        return Ok(SignupOutcome::FormTokenUsed);
    }
    if let Some(scope) = super::budgets::overrun(conn, &req.budget_keys, &req.budgets).await? {
        return Ok(SignupOutcome::OverBudget(scope));
    }
    let suppression = super::suppressions::admission(conn, &req.suppression_keys, now).await?;
    let past_suppression = match suppression {
        Some((_, false)) => return Ok(SignupOutcome::Suppressed),
        Some((key, true)) => Some(key),
        None => None,
    };
    let (subscriber_id, status, recent) =
        find_or_add_subscriber(conn, req.new_subscriber_id, person, req.list_id, now).await?;

    let sql = match signup_action(status, recent, req.resend_cap) {
        SignupAction::Subscribe => concat!(
            "INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at)
             VALUES ($1, $2, 'pending', $3, $3);",
            signup_writes!()
        ),
        // Not confirmed yet: the latest details typed are the ones to keep.
        SignupAction::Invite => concat!(
            "UPDATE subscribers SET name = $15, organisation = $16, locality = $17, updated_at = $3
             WHERE id = $1;",
            signup_writes!()
        ),
        SignupAction::Nothing => return Ok(SignupOutcome::ResendCapReached),
        SignupAction::Remind => {
            let queued = sqlx::query(REMIND)
                .bind(req.reminder.id)
                .bind(&req.reminder.kind)
                .bind(&req.reminder.payload)
                .bind(now)
                .bind(subscriber_id)
                .bind(now - 24 * 3600 * 1000)
                .bind(req.resend_cap)
                .execute(&mut *conn)
                .await
                .context("Failed to queue the already-subscribed mail")?;
            if queued.rows_affected() == 0 {
                return Ok(SignupOutcome::AlreadyConfirmed);
            }
            if let Some(key) = &past_suppression {
                super::suppressions::admitted(conn, key, subscriber_id, req.reminder.id, now)
                    .await?;
            }
            super::budgets::count_mail(conn, &req.budget_keys).await?;
            return Ok(SignupOutcome::ReminderQueued);
        }
    };
    let mail = &req.invitation.mail;
    sqlx::query(sql)
        .bind(subscriber_id)
        .bind(req.list_id)
        .bind(now)
        .bind(&req.invitation.token_hash[..])
        .bind(ms(req.invitation.token_expires_at))
        .bind(req.event_id)
        .bind(req.consent.method.as_str())
        .bind(req.consent.ip.as_deref())
        .bind(req.consent.user_agent.as_deref())
        .bind(&req.wording_version)
        .bind(&req.wording_hash)
        .bind(mail.id)
        .bind(&mail.kind)
        .bind(&mail.recipient)
        .bind(person.name.as_str())
        .bind(person.organisation.as_ref().map(|o| o.as_str()))
        .bind(person.locality.map(|l| l.slug()))
        .bind(&mail.payload)
        .execute(&mut *conn)
        .await
        .context("Failed to store the token, consent event and confirmation mail")?;
    if let Some(key) = &past_suppression {
        super::suppressions::admitted(conn, key, subscriber_id, mail.id, now).await?;
    }
    super::budgets::count_mail(conn, &req.budget_keys).await?;
    Ok(SignupOutcome::ConfirmationQueued)
}

/// The subscriber with this address, added if new: their id, their subscription to the
/// list (if any), and how many confirmation mails they were sent in the last day.
pub(super) async fn find_or_add_subscriber(
    conn: &mut SqliteConnection,
    new_id: Uuid,
    person: &NewSubscriber,
    list_id: Uuid,
    now: i64,
) -> anyhow::Result<(Uuid, Option<SubscriptionStatus>, i64)> {
    let row = sqlx::query(
        "INSERT INTO subscribers (id, email, name, organisation, locality, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6)
         ON CONFLICT (email_key) DO NOTHING;
         SELECT s.id, sub.status,
           (SELECT count(*) FROM confirmation_tokens t
            WHERE t.subscriber_id = s.id AND t.list_id = $7 AND t.created_at > $8) AS recent
         FROM subscribers s
         LEFT JOIN subscriptions sub ON sub.subscriber_id = s.id AND sub.list_id = $7
         WHERE s.email_key = lower($2)",
    )
    .bind(new_id)
    .bind(person.email.as_str())
    .bind(person.name.as_str())
    .bind(person.organisation.as_ref().map(|o| o.as_str()))
    .bind(person.locality.map(|l| l.slug()))
    .bind(now)
    .bind(list_id)
    .bind(now - 24 * 3600 * 1000)
    .fetch_one(&mut *conn)
    .await
    .context("Failed to store the subscriber")?;
    let status: Option<&str> = row.try_get("status")?;
    Ok((
        row.try_get("id")?,
        status.map(SubscriptionStatus::parse).transpose()?,
        row.try_get("recent")?,
    ))
}

#[async_trait]
impl SignupStore for SqliteStore {
    #[tracing::instrument(skip_all)]
    async fn record_signup(&self, req: &SignupRequest) -> anyhow::Result<SignupOutcome> {
        let (reply, outcome) = oneshot::channel();
        self.signups
            .send((req.clone(), reply))
            .await
            .map_err(|_| anyhow!("The sign-up writer has stopped"))?;
        outcome
            .await
            .map_err(|_| anyhow!("The sign-up writer stopped before answering"))?
    }

    #[tracing::instrument(skip_all)]
    async fn confirm_subscription(&self, req: &ConfirmRequest) -> anyhow::Result<ConfirmOutcome> {
        let now = ms(req.now);
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .context("Failed to begin the confirmation transaction")?;
        let row = sqlx::query(
            "SELECT t.subscriber_id, t.list_id, t.expires_at, t.used_at, sub.status
             FROM confirmation_tokens t
             JOIN subscriptions sub ON sub.subscriber_id = t.subscriber_id AND sub.list_id = t.list_id
             WHERE t.token_hash = $1",
        )
        .bind(&req.token_hash[..])
        .fetch_optional(&mut *tx)
        .await
        .context("Failed to look up the confirmation token")?;
        let Some(row) = row else {
            return Ok(ConfirmOutcome::Unknown);
        };
        let subscriber_id: Uuid = row.try_get("subscriber_id")?;
        let list_id: Uuid = row.try_get("list_id")?;
        let expires_at: i64 = row.try_get("expires_at")?;
        let used_at: Option<i64> = row.try_get("used_at")?;
        let status = SubscriptionStatus::parse(row.try_get("status")?)?;
        let decided = confirmation(status, used_at.is_some(), expires_at <= now);
        if let Some(kind) = decided.event {
            sqlx::query(
                "UPDATE subscriptions SET status = 'confirmed', confirmed_at = $3, updated_at = $3
                 WHERE subscriber_id = $1 AND list_id = $2",
            )
            .bind(subscriber_id)
            .bind(list_id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .context("Failed to confirm the subscription")?;
            sqlx::query(
                "INSERT INTO consent_events (id, subscriber_id, list_id, kind, method, occurred_at, ip, user_agent)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(req.event_id)
            .bind(subscriber_id)
            .bind(list_id)
            .bind(kind.as_str())
            .bind(req.consent.method.as_str())
            .bind(now)
            .bind(req.consent.ip.as_deref())
            .bind(req.consent.user_agent.as_deref())
            .execute(&mut *tx)
            .await
            .context("Failed to record the consent event")?;
            // A mailbox that confirms works: a bounce no longer stands against it.
            super::suppressions::lift_on_confirming(&mut tx, subscriber_id, now).await?;
            sqlx::query(
                "INSERT INTO outbox (id, kind, recipient, subscriber_id, payload, next_attempt_at, created_at)
                 SELECT $1, $2, email, id, $3, $4, $4 FROM subscribers WHERE id = $5",
            )
            .bind(req.welcome.id)
            .bind(&req.welcome.kind)
            .bind(&req.welcome.payload)
            .bind(now)
            .bind(subscriber_id)
            .execute(&mut *tx)
            .await
            .context("Failed to queue the welcome mail")?;
        }
        if decided.uses_token {
            sqlx::query("UPDATE confirmation_tokens SET used_at = $2 WHERE token_hash = $1")
                .bind(&req.token_hash[..])
                .bind(now)
                .execute(&mut *tx)
                .await
                .context("Failed to mark the token used")?;
        }
        tx.commit()
            .await
            .context("Failed to commit the confirmation")?;
        Ok(decided.outcome)
    }
}
