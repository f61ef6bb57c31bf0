//! Joining: a sign-up (a person, their pending subscription, the token and the
//! confirmation mail, in one transaction) and its confirmation.

use crate::audience::subscription::{
    ConfirmOutcome, SignupAction, SignupOutcome, SubscriptionStatus, combined_outcome,
    confirmation, signup_plan,
};
use anyhow::Context;
use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnection, SqlitePool};
use uuid::Uuid;

use super::{SqliteStore, rows::ms};
use crate::audience::subscriber::NewSubscriber;
use crate::store::signups::SignupWriter;
use crate::store::{ConfirmRequest, KnownSubscriber, SignupRequest, SignupStore};

/// Someone already subscribed who signs up again is reminded, at most a cap a day: one
/// statement, so the count and the insert cannot be split.
const REMIND: &str =
    "INSERT INTO outbox (id, kind, recipient, subscriber_id, payload, next_attempt_at, created_at)
     SELECT $1, $2, s.email, s.id, $3, $4, $4 FROM subscribers s
     WHERE s.id = $5
       AND (SELECT count(*) FROM outbox o
            WHERE o.subscriber_id = $5 AND o.kind = $2 AND o.created_at > $6) < $7";

/// SQLite has one writer at a time anyway: the batch (`SignupQueue`) runs its
/// sign-ups one after another in one transaction, and nobody waits on SQLite's busy
/// handler.
#[async_trait]
impl SignupWriter for SqlitePool {
    async fn write(&self, requests: &[&SignupRequest]) -> anyhow::Result<Vec<SignupOutcome>> {
        let mut tx = self
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
}

/// One sign-up inside the batch's transaction: three round trips to SQLite's thread,
/// to learn what we know of the address and its subscriptions, then one for
/// everything it writes.
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
    let known = find_or_add_subscriber(conn, req.new_subscriber_id, person, now).await?;
    let chosen = known.statuses_of(&req.list_ids);
    let plan = signup_plan(
        &chosen,
        known.confirmed_anywhere,
        known.recent,
        req.resend_cap,
    );
    let subscriber_id = known.id;
    match plan.action {
        SignupAction::Invite => {}
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
    // One statement per write, all sent at once: our own text, every value bound.
    let mut sql = String::new();
    if plan.keep_details_typed {
        // Not confirmed anywhere: the latest details typed are the ones to keep.
        sql.push_str(
            "UPDATE subscribers SET name = $13, organisation = $14, locality = $15, updated_at = $2
             WHERE id = $1;",
        );
    }
    for k in 0..plan.lists.len() {
        let (list, event) = (16 + 2 * k, 17 + 2 * k);
        sql.push_str(&format!(
            "INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at)
             VALUES ($1, ${list}, 'pending', $2, $2) ON CONFLICT DO NOTHING;
             INSERT INTO confirmation_tokens (token_hash, subscriber_id, list_id, created_at, expires_at)
             VALUES ($3, $1, ${list}, $2, $4);
             INSERT INTO consent_events
               (id, subscriber_id, list_id, kind, method, occurred_at, ip, user_agent, wording_version, wording_hash)
             VALUES (${event}, $1, ${list}, 'signup', $5, $2, $6, $7, $8, $9);"
        ));
    }
    sql.push_str(
        "INSERT INTO outbox (id, kind, recipient, subscriber_id, payload, next_attempt_at, created_at)
         VALUES ($10, $11, (SELECT email FROM subscribers WHERE id = $1), $1, $12, $2, $2)",
    );
    let mail = &req.invitation.mail;
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(subscriber_id)
        .bind(now)
        .bind(&req.invitation.token_hash[..])
        .bind(ms(req.invitation.token_expires_at))
        .bind(req.consent.method.as_str())
        .bind(req.consent.ip.as_deref())
        .bind(req.consent.user_agent.as_deref())
        .bind(&req.wording_version)
        .bind(&req.wording_hash)
        .bind(mail.id)
        .bind(&mail.kind)
        .bind(&mail.payload)
        .bind(person.name.as_str())
        .bind(person.organisation.as_ref().map(|o| o.as_str()))
        .bind(person.locality.map(|l| l.slug()));
    for list in &plan.lists {
        query = query.bind(*list).bind(Uuid::now_v7());
    }
    query
        .execute(&mut *conn)
        .await
        .context("Failed to store the tokens, consent events and confirmation mail")?;
    if let Some(key) = &past_suppression {
        super::suppressions::admitted(conn, key, subscriber_id, mail.id, now).await?;
    }
    super::budgets::count_mail(conn, &req.budget_keys).await?;
    Ok(SignupOutcome::ConfirmationQueued)
}

/// The subscriber with this address, added if new: what a sign-up needs to know.
pub(super) async fn find_or_add_subscriber(
    conn: &mut SqliteConnection,
    new_id: Uuid,
    person: &NewSubscriber,
    now: i64,
) -> anyhow::Result<KnownSubscriber> {
    let row = sqlx::query(
        "INSERT INTO subscribers (id, email, name, organisation, locality, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6)
         ON CONFLICT (email_key) DO NOTHING;
         SELECT s.id,
           (SELECT count(DISTINCT t.token_hash) FROM confirmation_tokens t
            WHERE t.subscriber_id = s.id AND t.created_at > $7) AS recent,
           EXISTS (SELECT 1 FROM subscriptions c
                   WHERE c.subscriber_id = s.id AND c.status = 'confirmed') AS confirmed_anywhere
         FROM subscribers s
         WHERE s.email_key = lower($2)",
    )
    .bind(new_id)
    .bind(person.email.as_str())
    .bind(person.name.as_str())
    .bind(person.organisation.as_ref().map(|o| o.as_str()))
    .bind(person.locality.map(|l| l.slug()))
    .bind(now)
    .bind(now - 24 * 3600 * 1000)
    .fetch_one(&mut *conn)
    .await
    .context("Failed to store the subscriber")?;
    let id: Uuid = row.try_get("id")?;
    let statuses = sqlx::query_as::<_, (Uuid, String)>(
        "SELECT list_id, status FROM subscriptions WHERE subscriber_id = $1",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await
    .context("Failed to read the subscriptions")?;
    KnownSubscriber::new(
        id,
        statuses,
        row.try_get("confirmed_anywhere")?,
        row.try_get("recent")?,
    )
}

#[async_trait]
impl SignupStore for SqliteStore {
    #[tracing::instrument(skip_all)]
    async fn record_signup(&self, req: &SignupRequest) -> anyhow::Result<SignupOutcome> {
        self.signups.record(req).await
    }

    async fn delete_expired_signups(
        &self,
        expired_before: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<u64> {
        let deleted = sqlx::query(
            "DELETE FROM subscribers WHERE id IN (
               SELECT s.id FROM subscribers s
               WHERE EXISTS (SELECT 1 FROM subscriptions p WHERE p.subscriber_id = s.id)
                 AND NOT EXISTS (SELECT 1 FROM subscriptions p
                                 WHERE p.subscriber_id = s.id AND p.status <> 'pending')
                 AND NOT EXISTS (SELECT 1 FROM confirmation_tokens t
                                 WHERE t.subscriber_id = s.id AND t.expires_at >= $1))",
        )
        .bind(ms(expired_before))
        .execute(&self.writer)
        .await
        .context("Failed to delete the sign-ups never confirmed")?;
        Ok(deleted.rows_affected())
    }

    async fn token_lists(&self, token_hash: &[u8; 32]) -> anyhow::Result<Vec<Uuid>> {
        sqlx::query_scalar(
            "SELECT list_id FROM confirmation_tokens WHERE token_hash = $1 ORDER BY list_id",
        )
        .bind(&token_hash[..])
        .fetch_all(&self.reader)
        .await
        .context("Failed to read a confirmation token's lists")
    }

    #[tracing::instrument(skip_all)]
    async fn confirm_subscription(&self, req: &ConfirmRequest) -> anyhow::Result<ConfirmOutcome> {
        let now = ms(req.now);
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .context("Failed to begin the confirmation transaction")?;
        let rows = sqlx::query(
            "SELECT t.subscriber_id, t.list_id, t.expires_at, t.used_at, sub.status
             FROM confirmation_tokens t
             JOIN subscriptions sub ON sub.subscriber_id = t.subscriber_id AND sub.list_id = t.list_id
             WHERE t.token_hash = $1
             ORDER BY t.list_id",
        )
        .bind(&req.token_hash[..])
        .fetch_all(&mut *tx)
        .await
        .context("Failed to look up the confirmation token")?;
        let mut outcomes = Vec::with_capacity(rows.len());
        let mut confirmed_now = None;
        for row in &rows {
            let subscriber_id: Uuid = row.try_get("subscriber_id")?;
            let list_id: Uuid = row.try_get("list_id")?;
            let expires_at: i64 = row.try_get("expires_at")?;
            let used_at: Option<i64> = row.try_get("used_at")?;
            let status = SubscriptionStatus::parse(row.try_get("status")?)?;
            let decided = confirmation(status, used_at.is_some(), expires_at <= now);
            outcomes.push(decided.outcome);
            if let Some(kind) = decided.event {
                sqlx::query(
                    "UPDATE subscriptions SET status = 'confirmed', confirmed_at = $3, updated_at = $3
                     WHERE subscriber_id = $1 AND list_id = $2;
                     INSERT INTO consent_events (id, subscriber_id, list_id, kind, method, occurred_at, ip, user_agent)
                     VALUES ($4, $1, $2, $5, $6, $3, $7, $8)",
                )
                .bind(subscriber_id)
                .bind(list_id)
                .bind(now)
                .bind(Uuid::now_v7())
                .bind(kind.as_str())
                .bind(req.consent.method.as_str())
                .bind(req.consent.ip.as_deref())
                .bind(req.consent.user_agent.as_deref())
                .execute(&mut *tx)
                .await
                .context("Failed to confirm the subscription")?;
                confirmed_now = Some(subscriber_id);
            }
            if decided.uses_token {
                sqlx::query(
                    "UPDATE confirmation_tokens SET used_at = $3 WHERE token_hash = $1 AND list_id = $2",
                )
                .bind(&req.token_hash[..])
                .bind(list_id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .context("Failed to mark the token used")?;
            }
        }
        if let Some(subscriber_id) = confirmed_now {
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
        tx.commit()
            .await
            .context("Failed to commit the confirmation")?;
        Ok(combined_outcome(outcomes))
    }
}
