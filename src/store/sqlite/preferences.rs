//! A person's own page: who they are, and the changes they make there.

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{SqliteStore, rows::ms};
use crate::store::{
    ConsentContext, LinkFor, LinkOutcome, LinkRequest, Person, PreferenceChange, PreferenceStore,
    mapping,
};

/// One ledger event of a change to a person (from their page, or by staff).
const EVENT: &str = "INSERT INTO consent_events
       (id, subscriber_id, list_id, kind, method, occurred_at, ip, user_agent, wording_version, wording_hash)
     VALUES ($1, $2, $3, $4, $10, $5, $6, $7, $8, $9)";

/// The link mail, queued only for a subscriber we know (one person per mailbox), and
/// at most a cap a day: one statement, so the count and the insert cannot be split.
const QUEUE_LINK: &str =
    "INSERT INTO outbox (id, kind, recipient, subscriber_id, payload, next_attempt_at, created_at)
     SELECT $1, $2, s.email, s.id, $3, $4, $4 FROM subscribers s
     WHERE (s.email_key = lower($5) OR s.id = $6)
       AND (SELECT count(*) FROM outbox o
            WHERE o.subscriber_id = s.id AND o.kind = $2 AND o.created_at > $7) < $8";

#[async_trait]
impl PreferenceStore for SqliteStore {
    async fn person(&self, id: Uuid) -> anyhow::Result<Option<Person>> {
        let row = sqlx::query(
            "SELECT id, email, name, organisation, locality, created_at FROM subscribers WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.reader)
        .await
        .context("Failed to load a subscriber")?;
        row.as_ref().map(mapping::person).transpose()
    }

    async fn subscriber_id(&self, email: &str) -> anyhow::Result<Option<Uuid>> {
        sqlx::query_scalar("SELECT id FROM subscribers WHERE email_key = $1")
            .bind(crate::audience::subscriber::mailbox_key(email))
            .fetch_optional(&self.reader)
            .await
            .context("Failed to find a subscriber by address")
    }

    #[tracing::instrument(skip_all)]
    async fn change_preferences(&self, change: &PreferenceChange) -> anyhow::Result<()> {
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .context("Failed to begin changing preferences")?;
        let event = |list: Uuid, kind: &'static str, wording: bool| {
            sqlx::query(EVENT)
                .bind(Uuid::now_v7())
                .bind(change.subscriber_id)
                .bind(list)
                .bind(kind)
                .bind(ms(change.now))
                .bind(change.consent.ip.clone())
                .bind(change.consent.user_agent.clone())
                .bind(wording.then(|| change.wording_version.clone()))
                .bind(wording.then(|| change.wording_hash.clone()))
                .bind(change.consent.method.as_str())
        };
        if let Some(details) = &change.details {
            sqlx::query(
                "UPDATE subscribers SET name = $2, organisation = $3, locality = $4, updated_at = $5
                 WHERE id = $1",
            )
            .bind(change.subscriber_id)
            .bind(details.name.as_str())
            .bind(details.organisation.as_ref().map(|o| o.as_str()))
            .bind(details.locality.map(|l| l.slug()))
            .bind(ms(change.now))
            .execute(&mut *tx)
            .await
            .context("Failed to change the subscriber's details")?;
            event(change.ledger_list, "details", false)
                .execute(&mut *tx)
                .await
                .context("Failed to record the change of details")?;
        }
        for (list, kind) in &change.lists.join {
            let joined: Option<Uuid> = sqlx::query_scalar(
                "INSERT INTO subscriptions
                   (subscriber_id, list_id, status, created_at, confirmed_at, updated_at)
                 VALUES ($1, $2, 'confirmed', $3, $3, $3)
                 ON CONFLICT (subscriber_id, list_id) DO UPDATE
                   SET status = 'confirmed', confirmed_at = $3, updated_at = $3
                   WHERE subscriptions.status <> 'confirmed'
                 RETURNING list_id",
            )
            .bind(change.subscriber_id)
            .bind(*list)
            .bind(ms(change.now))
            .fetch_optional(&mut *tx)
            .await
            .context("Failed to join a list")?;
            if joined.is_some() {
                event(*list, kind.as_str(), true)
                    .execute(&mut *tx)
                    .await
                    .context("Failed to record joining a list")?;
            }
        }
        for list in &change.lists.leave {
            let left: Option<Uuid> = sqlx::query_scalar(
                "UPDATE subscriptions SET status = 'unsubscribed', unsubscribed_at = $3, updated_at = $3
                 WHERE subscriber_id = $1 AND list_id = $2 AND status IN ('pending', 'confirmed')
                 RETURNING list_id",
            )
            .bind(change.subscriber_id)
            .bind(*list)
            .bind(ms(change.now))
            .fetch_optional(&mut *tx)
            .await
            .context("Failed to leave a list")?;
            if left.is_some() {
                event(*list, "unsubscribe", false)
                    .execute(&mut *tx)
                    .await
                    .context("Failed to record leaving a list")?;
            }
        }
        tx.commit()
            .await
            .context("Failed to commit the preferences")?;
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    async fn request_preferences_link(&self, req: &LinkRequest) -> anyhow::Result<LinkOutcome> {
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .context("Failed to begin a link request")?;
        let outcome = link_request(&mut tx, req).await?;
        tx.commit()
            .await
            .context("Failed to commit a link request")?;
        Ok(outcome)
    }

    async fn record_export(
        &self,
        subscriber_id: Uuid,
        ledger_list: Uuid,
        consent: &ConsentContext,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        sqlx::query(EVENT)
            .bind(Uuid::now_v7())
            .bind(subscriber_id)
            .bind(ledger_list)
            .bind("export")
            .bind(ms(now))
            .bind(consent.ip.as_deref())
            .bind(consent.user_agent.as_deref())
            .bind(None::<String>)
            .bind(None::<String>)
            .bind(consent.method.as_str())
            .execute(&self.writer)
            .await
            .context("Failed to record the download")?;
        Ok(())
    }
}

/// The request, inside its transaction.
async fn link_request(
    conn: &mut sqlx::SqliteConnection,
    req: &LinkRequest,
) -> anyhow::Result<LinkOutcome> {
    if let Some(nonce) = &req.form_nonce
        && !super::budgets::use_form_token(conn, nonce, req.now).await?
    {
        return Ok(LinkOutcome::FormTokenUsed);
    }
    if let Some(scope) = super::budgets::overrun(conn, &req.budget_keys, &req.budgets).await? {
        return Ok(LinkOutcome::OverBudget(scope));
    }
    // Counted whether or not the address is known: the time taken says nothing.
    super::budgets::count_mail(conn, &req.budget_keys).await?;
    let (email, subscriber) = match &req.to {
        LinkFor::Address(email) => (Some(email.as_str()), None),
        LinkFor::Subscriber(id) => (None, Some(*id)),
    };
    let queued = sqlx::query(QUEUE_LINK)
        .bind(req.mail.id)
        .bind(&req.mail.kind)
        .bind(&req.mail.payload)
        .bind(ms(req.now))
        .bind(email)
        .bind(subscriber)
        .bind(ms(req.now) - 24 * 3600 * 1000)
        .bind(req.daily_cap)
        .execute(&mut *conn)
        .await
        .context("Failed to queue the link mail")?;
    if queued.rows_affected() == 0 {
        return Ok(LinkOutcome::NotSent);
    }
    Ok(LinkOutcome::Queued)
}
