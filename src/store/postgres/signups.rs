//! Joining: a sign-up (a person, their pending subscription, the token and the
//! confirmation mail, in one transaction) and its confirmation.

use crate::audience::subscription::{
    ConfirmOutcome, SignupAction, SignupOutcome, SubscriptionStatus, confirmation, signup_action,
};
use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sqlx::Row;
use uuid::Uuid;

use super::PostgresStore;
use crate::store::{ConfirmRequest, SignupRequest, SignupStore};

/// The writes every sign-up that sends a mail makes, as the rest of one statement
/// after its first common table expression.
macro_rules! signup_writes {
    () => {
        "token AS (
           INSERT INTO confirmation_tokens (token_hash, subscriber_id, list_id, created_at, expires_at)
           VALUES ($4, $1, $2, $3, $5)
         ), consent AS (
           INSERT INTO consent_events
             (id, subscriber_id, list_id, kind, method, occurred_at, ip, user_agent, wording_version, wording_hash)
           VALUES ($6, $1, $2, 'signup', $7, $3, $8, $9, $10, $11)
         )
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

#[async_trait]
impl SignupStore for PostgresStore {
    #[tracing::instrument(skip_all)]
    async fn record_signup(&self, req: &SignupRequest) -> anyhow::Result<SignupOutcome> {
        let person = &req.subscriber;
        super::budgets::ensure_rows(&self.pool, &req.budget_keys).await?;
        let mut tx = self
            .pool
            .begin()
            .await
            .context("Failed to begin the sign-up transaction")?;
        if !super::budgets::use_form_token(&mut tx, &req.form_nonce, req.now).await? {
            tx.commit().await.context("Failed to commit the sign-up")?;
            return Ok(SignupOutcome::FormTokenUsed);
        }
        if let Some(scope) =
            super::budgets::overrun(&mut tx, &req.budget_keys, &req.budgets).await?
        {
            tx.commit().await.context("Failed to commit the sign-up")?;
            return Ok(SignupOutcome::OverBudget(scope));
        }
        let suppression =
            super::suppressions::admission(&mut tx, &req.suppression_keys, req.now).await?;
        let past_suppression = match suppression {
            Some((_, false)) => {
                tx.commit().await.context("Failed to commit the sign-up")?;
                return Ok(SignupOutcome::Suppressed);
            }
            Some((key, true)) => Some(key),
            None => None,
        };

        // Two sign-ups of one new address at once: the second INSERT waits for the
        // first to commit and then does nothing; the row lock below orders the rest.
        sqlx::query(
            "INSERT INTO subscribers (id, email, name, organisation, locality, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)
             ON CONFLICT (email_key) DO NOTHING",
        )
        .bind(req.new_subscriber_id)
        .bind(person.email.as_str())
        .bind(person.name.as_str())
        .bind(person.organisation.as_ref().map(|o| o.as_str()))
        .bind(person.locality.map(|l| l.slug()))
        .bind(req.now)
        .execute(&mut *tx)
        .await
        .context("Failed to store the subscriber")?;

        let row = sqlx::query(
            "SELECT s.id, sub.status,
               (SELECT count(*) FROM confirmation_tokens t
                WHERE t.subscriber_id = s.id AND t.list_id = $2 AND t.created_at > $3) AS recent
             FROM subscribers s
             LEFT JOIN subscriptions sub ON sub.subscriber_id = s.id AND sub.list_id = $2
             WHERE s.email_key = lower($1 COLLATE \"C\")
             FOR UPDATE OF s",
        )
        .bind(person.email.as_str())
        .bind(req.list_id)
        .bind(req.now - Duration::hours(24))
        .fetch_one(&mut *tx)
        .await
        .context("Failed to read the subscription")?;
        let subscriber_id: Uuid = row.try_get("id")?;
        let status: Option<&str> = row.try_get("status")?;
        let status = status.map(SubscriptionStatus::parse).transpose()?;
        let recent: i64 = row.try_get("recent")?;

        let sql = match signup_action(status, recent, req.resend_cap) {
            SignupAction::Subscribe => concat!(
                "WITH subscription AS (
                   INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at)
                   VALUES ($1, $2, 'pending', $3, $3)
                 ), ",
                signup_writes!()
            ),
            // Not confirmed yet: the latest details typed are the ones to keep.
            SignupAction::Invite => concat!(
                "WITH details AS (
                   UPDATE subscribers SET name = $15, organisation = $16, locality = $17, updated_at = $3
                   WHERE id = $1
                 ), ",
                signup_writes!()
            ),
            SignupAction::Nothing => {
                tx.commit().await.context("Failed to commit the sign-up")?;
                return Ok(SignupOutcome::ResendCapReached);
            }
            SignupAction::Remind => {
                let queued = sqlx::query(REMIND)
                    .bind(req.reminder.id)
                    .bind(&req.reminder.kind)
                    .bind(&req.reminder.payload)
                    .bind(req.now)
                    .bind(subscriber_id)
                    .bind(req.now - Duration::hours(24))
                    .bind(req.resend_cap)
                    .execute(&mut *tx)
                    .await
                    .context("Failed to queue the already-subscribed mail")?;
                let outcome = if queued.rows_affected() > 0 {
                    if let Some(key) = &past_suppression {
                        super::suppressions::admitted(
                            &mut tx,
                            key,
                            subscriber_id,
                            req.reminder.id,
                            req.now,
                        )
                        .await?;
                    }
                    super::budgets::count_mail(&mut tx, &req.budget_keys).await?;
                    SignupOutcome::ReminderQueued
                } else {
                    SignupOutcome::AlreadyConfirmed
                };
                tx.commit().await.context("Failed to commit the sign-up")?;
                return Ok(outcome);
            }
        };
        let mail = &req.invitation.mail;
        sqlx::query(sql)
            .bind(subscriber_id)
            .bind(req.list_id)
            .bind(req.now)
            .bind(&req.invitation.token_hash[..])
            .bind(req.invitation.token_expires_at)
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
            .execute(&mut *tx)
            .await
            .context("Failed to store the token, consent event and confirmation mail")?;
        if let Some(key) = &past_suppression {
            super::suppressions::admitted(&mut tx, key, subscriber_id, mail.id, req.now).await?;
        }
        super::budgets::count_mail(&mut tx, &req.budget_keys).await?;
        tx.commit().await.context("Failed to commit the sign-up")?;
        Ok(SignupOutcome::ConfirmationQueued)
    }

    #[tracing::instrument(skip_all)]
    async fn confirm_subscription(&self, req: &ConfirmRequest) -> anyhow::Result<ConfirmOutcome> {
        let mut tx = self
            .pool
            .begin()
            .await
            .context("Failed to begin the confirmation transaction")?;
        let row = sqlx::query(
            "SELECT t.subscriber_id, t.list_id, t.expires_at, t.used_at, sub.status
             FROM confirmation_tokens t
             JOIN subscriptions sub ON sub.subscriber_id = t.subscriber_id AND sub.list_id = t.list_id
             WHERE t.token_hash = $1
             FOR UPDATE OF t, sub",
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
        let expires_at: DateTime<Utc> = row.try_get("expires_at")?;
        let used_at: Option<DateTime<Utc>> = row.try_get("used_at")?;
        let status = SubscriptionStatus::parse(row.try_get("status")?)?;
        let decided = confirmation(status, used_at.is_some(), expires_at <= req.now);
        if let Some(kind) = decided.event {
            sqlx::query(
                "WITH confirmed AS (
                   UPDATE subscriptions SET status = 'confirmed', confirmed_at = $3, updated_at = $3
                   WHERE subscriber_id = $1 AND list_id = $2
                 )
                 INSERT INTO consent_events (id, subscriber_id, list_id, kind, method, occurred_at, ip, user_agent)
                 VALUES ($4, $1, $2, $5, $6, $3, $7, $8)",
            )
            .bind(subscriber_id)
            .bind(list_id)
            .bind(req.now)
            .bind(req.event_id)
            .bind(kind.as_str())
            .bind(req.consent.method.as_str())
            .bind(req.consent.ip.as_deref())
            .bind(req.consent.user_agent.as_deref())
            .execute(&mut *tx)
            .await
            .context("Failed to confirm the subscription")?;
            // A mailbox that confirms works: a bounce no longer stands against it.
            super::suppressions::lift_on_confirming(&mut tx, subscriber_id, req.now).await?;
            sqlx::query(
                "INSERT INTO outbox (id, kind, recipient, subscriber_id, payload, next_attempt_at, created_at)
                 SELECT $1, $2, email, id, $3, $4, $4 FROM subscribers WHERE id = $5",
            )
            .bind(req.welcome.id)
            .bind(&req.welcome.kind)
            .bind(&req.welcome.payload)
            .bind(req.now)
            .bind(subscriber_id)
            .execute(&mut *tx)
            .await
            .context("Failed to queue the welcome mail")?;
        }
        if decided.uses_token {
            sqlx::query("UPDATE confirmation_tokens SET used_at = $2 WHERE token_hash = $1")
                .bind(&req.token_hash[..])
                .bind(req.now)
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
