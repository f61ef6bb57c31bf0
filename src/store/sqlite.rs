//! SQLite: the embedded default. WAL mode, foreign keys on, a busy timeout, and one
//! writer connection: SQLite allows one writer at a time anyway, and queueing writes in
//! our own pool (rather than in SQLite's busy handler) keeps "database is locked" away
//! and latency even. Reads use a separate pool and run beside the writer under WAL.
//! Times are stored as Unix milliseconds.

use std::{str::FromStr, time::Duration};

use anyhow::{Context, anyhow};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{
    Row,
    sqlite::{
        SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
        SqliteRow, SqliteSynchronous,
    },
};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

mod budgets;
mod issue_archive;
mod logins;

use crate::domain::NewSubscriber;
use crate::import::{self, ImportRecord, ImportRow, RowStatus};
use crate::issues::{
    ArchiveChange, DEFAULT_TEMPLATE, DraftDeletion, Issue, IssueChange, IssueContent, IssueStatus,
    NewIssue, Withdrawal,
};
use crate::staff::{Role, StaffUser};

use super::{
    ConfirmOutcome, ConfirmRequest, ConsentRecord, DeliveryJob, DeliveryResult, ImportBatch,
    ImportedPerson, IssueStats, MailingList, NewOutboxMail, OutboxMail, OutboxResult,
    SQLITE_MIGRATIONS, SendOutcome, SignupOutcome, SignupRequest, Store, SubscriberSummary,
    UnsubscribeOutcome, UnsubscribeRequest, import_counts, is_unique_violation,
    migrations::migrator,
};

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

/// The columns of an `ImportRecord`.
macro_rules! import_select {
    () => {
        "SELECT id, list_id, created_by, file_name, source_note, mode, created_at, applied_at
         FROM imports"
    };
}

/// The columns of an `Issue`, with its list's slug.
macro_rules! issue_select {
    () => {
        "SELECT i.id, l.slug AS list_slug, i.subject, i.preheader, i.body_markdown, i.template,
                i.status, i.send_at, i.finished_at, i.created_at, i.updated_at,
                i.withdrawn_at, i.withdrawn_by
         FROM issues i JOIN lists l ON l.id = i.list_id"
    };
}

/// Outcomes as the JSON array the batch updates read with `json_each`: each row's key
/// fields, and the columns its outcome sets (ids as hex, times as milliseconds).
fn outcomes_json<'a>(rows: impl Iterator<Item = (serde_json::Value, &'a SendOutcome)>) -> String {
    let rows: Vec<serde_json::Value> = rows
        .map(|(mut key, outcome)| {
            let columns = outcome.columns();
            key["status"] = columns.status.into();
            key["sent_at"] = columns.sent_at.map(ms).into();
            key["reply"] = columns.reply.into();
            key["next_attempt_at"] = columns.next_attempt_at.map(ms).into();
            key["error"] = columns.error.into();
            key
        })
        .collect();
    serde_json::Value::Array(rows).to_string()
}

fn issue_from_row(row: &SqliteRow) -> anyhow::Result<Issue> {
    Ok(Issue {
        id: row.try_get("id")?,
        list_slug: row.try_get("list_slug")?,
        subject: row.try_get("subject")?,
        preheader: row.try_get("preheader")?,
        body_markdown: row.try_get("body_markdown")?,
        template: row.try_get("template")?,
        status: IssueStatus::parse(row.try_get("status")?)?,
        send_at: row.try_get::<Option<i64>, _>("send_at")?.map(from_ms),
        finished_at: row.try_get::<Option<i64>, _>("finished_at")?.map(from_ms),
        created_at: from_ms(row.try_get("created_at")?),
        updated_at: from_ms(row.try_get("updated_at")?),
        withdrawn: match row.try_get::<Option<i64>, _>("withdrawn_at")? {
            Some(at) => Some(Withdrawal {
                at: from_ms(at),
                by: row.try_get("withdrawn_by")?,
            }),
            None => None,
        },
    })
}

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Sign-ups go to one task that writes them in batches (see `write_signups`).
    signups: mpsc::Sender<QueuedSignup>,
}

type QueuedSignup = (
    SignupRequest,
    oneshot::Sender<anyhow::Result<SignupOutcome>>,
);

/// The most sign-ups one transaction takes.
const SIGNUP_BATCH: usize = 128;

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl SqliteStore {
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .context("Failed to parse the SQLite DATABASE_URL")?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            // Deleted rows are overwritten with zeros, not left in free pages.
            .pragma("secure_delete", "ON")
            .busy_timeout(Duration::from_secs(10));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .context("Failed to open the SQLite database")?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .context("Failed to open the SQLite database for reading")?;
        let (signups, queue) = mpsc::channel(4 * SIGNUP_BATCH);
        tokio::spawn(write_signups(writer.clone(), queue));
        Ok(Self {
            writer,
            reader,
            signups,
        })
    }
}

/// Group commit: every sign-up waiting when the writer is free goes into one
/// transaction. SQLite has one writer at a time anyway; batching pays for BEGIN,
/// COMMIT and the hand-offs between tasks once per batch instead of once per sign-up,
/// and nobody waits on SQLite's busy handler. If the transaction fails, every sign-up
/// in it gets the error (nothing of the batch is kept, so nothing is half-written).
async fn write_signups(writer: SqlitePool, mut queue: mpsc::Receiver<QueuedSignup>) {
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

async fn record_signups(
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
async fn record_signup(
    conn: &mut SqliteConnection,
    req: &SignupRequest,
) -> anyhow::Result<SignupOutcome> {
    let now = ms(req.now);
    let person = &req.subscriber;

    if !budgets::use_form_token(conn, &req.form_nonce, req.now).await? {
        return Ok(SignupOutcome::FormTokenUsed);
    }
    if let Some(scope) = budgets::overrun(conn, &req.budget_keys, &req.budgets).await? {
        return Ok(SignupOutcome::OverBudget(scope));
    }
    let (subscriber_id, status, recent) =
        find_or_add_subscriber(conn, req.new_subscriber_id, person, req.list_id, now).await?;

    let sql = match status.as_deref() {
        Some("confirmed") => None,
        None => Some(concat!(
            "INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at)
             VALUES ($1, $2, 'pending', $3, $3);",
            signup_writes!()
        )),
        Some(_) if recent >= req.resend_cap => None,
        // Not confirmed yet: the latest details typed are the ones to keep.
        Some(_) => Some(concat!(
            "UPDATE subscribers SET name = $15, organisation = $16, locality = $17, updated_at = $3
             WHERE id = $1;",
            signup_writes!()
        )),
    };
    let Some(sql) = sql else {
        if status.as_deref() != Some("confirmed") {
            return Ok(SignupOutcome::ResendCapReached);
        }
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
        budgets::count_mail(conn, &req.budget_keys).await?;
        return Ok(SignupOutcome::ReminderQueued);
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
        .bind(req.wording_version)
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
    budgets::count_mail(conn, &req.budget_keys).await?;
    Ok(SignupOutcome::ConfirmationQueued)
}

/// The subscriber with this address, added if new: their id, their subscription to the
/// list (if any), and how many confirmation mails they were sent in the last day.
async fn find_or_add_subscriber(
    conn: &mut SqliteConnection,
    new_id: Uuid,
    person: &NewSubscriber,
    list_id: Uuid,
    now: i64,
) -> anyhow::Result<(Uuid, Option<String>, i64)> {
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
    Ok((
        row.try_get("id")?,
        row.try_get("status")?,
        row.try_get("recent")?,
    ))
}

/// One person of an import, inside the batch's transaction.
async fn import_person(
    conn: &mut SqliteConnection,
    batch: &ImportBatch<'_>,
    person: &ImportedPerson,
) -> anyhow::Result<()> {
    let now = ms(batch.now);
    let (subscriber_id, status, recent) = find_or_add_subscriber(
        conn,
        person.new_subscriber_id,
        &person.subscriber,
        batch.list_id,
        now,
    )
    .await?;
    let (outcome, reason) = import::outcome(status.as_deref(), recent, batch.mode);
    let sql = match outcome {
        RowStatus::Added => Some(
            "INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, confirmed_at, updated_at)
             VALUES ($1, $2, 'confirmed', $3, $3, $3)
             ON CONFLICT (subscriber_id, list_id)
             DO UPDATE SET status = 'confirmed', confirmed_at = $3, updated_at = $3;
             INSERT INTO consent_events (id, subscriber_id, list_id, kind, method, occurred_at, import_id)
             VALUES ($4, $1, $2, 'import', 'import', $3, $5)",
        ),
        RowStatus::Invited => Some(
            "INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at)
             VALUES ($1, $2, 'pending', $3, $3)
             ON CONFLICT (subscriber_id, list_id) DO NOTHING;
             INSERT INTO consent_events (id, subscriber_id, list_id, kind, method, occurred_at, import_id)
             VALUES ($4, $1, $2, 'signup', 'import', $3, $5);
             INSERT INTO confirmation_tokens (token_hash, subscriber_id, list_id, created_at, expires_at)
             VALUES ($6, $1, $2, $3, $7);
             INSERT INTO outbox (id, kind, recipient, subscriber_id, payload, next_attempt_at, created_at)
             VALUES ($8, $9, (SELECT email FROM subscribers WHERE id = $1), $1, $11, $3, $3)",
        ),
        _ => None,
    };
    if let Some(sql) = sql {
        let mut query = sqlx::query(sql)
            .bind(subscriber_id)
            .bind(batch.list_id)
            .bind(now)
            .bind(person.event_id)
            .bind(batch.import_id);
        if outcome == RowStatus::Invited {
            let invitation = person
                .invitation
                .as_ref()
                .context("An invitation to import has no mail")?;
            query = query
                .bind(&invitation.token_hash[..])
                .bind(ms(invitation.token_expires_at))
                .bind(invitation.mail.id)
                .bind(&invitation.mail.kind)
                .bind(&invitation.mail.recipient)
                .bind(&invitation.mail.payload);
        }
        query
            .execute(&mut *conn)
            .await
            .context("Failed to import a subscriber")?;
    }
    sqlx::query(
        // A note from reading the file (a locality left out) stays unless there is a reason now.
        "UPDATE import_rows SET status = $3, reason = coalesce($4, reason) WHERE import_id = $1 AND line = $2",
    )
    .bind(batch.import_id)
    .bind(person.line)
    .bind(outcome.as_str())
    .bind(reason)
    .execute(&mut *conn)
    .await
    .context("Failed to record an imported row's outcome")?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> anyhow::Result<()> {
        migrator(SQLITE_MIGRATIONS)
            .run(&self.writer)
            .await
            .context("Failed to apply the SQLite migrations")
    }

    async fn ping(&self) -> anyhow::Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .context("Failed to reach the SQLite database")?;
        Ok(())
    }

    async fn list_by_slug(&self, slug: &str) -> anyhow::Result<Option<MailingList>> {
        let row = sqlx::query("SELECT id, slug, name FROM lists WHERE slug = $1")
            .bind(slug)
            .fetch_optional(&self.reader)
            .await
            .context("Failed to load a list")?;
        row.map(|row| {
            Ok(MailingList {
                id: row.try_get("id")?,
                slug: row.try_get("slug")?,
                name: row.try_get("name")?,
            })
        })
        .transpose()
    }

    async fn list_slugs(&self) -> anyhow::Result<Vec<String>> {
        sqlx::query_scalar("SELECT slug FROM lists ORDER BY slug")
            .fetch_all(&self.reader)
            .await
            .context("Failed to load the lists")
    }

    async fn legacy_secret_key(&self) -> anyhow::Result<Option<String>> {
        sqlx::query_scalar("SELECT value FROM app_settings WHERE key = 'secret_key'")
            .fetch_optional(&self.writer)
            .await
            .context("Failed to look for a secret key in the database")
    }

    async fn forget_legacy_secret_key(&self) -> anyhow::Result<()> {
        // secure_delete zeroes the row's bytes; VACUUM rewrites the file without free
        // pages, and the checkpoint empties the WAL, so no copy of the key is left.
        let mut conn = self
            .writer
            .acquire()
            .await
            .context("Failed to reach SQLite")?;
        sqlx::query("DELETE FROM app_settings WHERE key = 'secret_key'")
            .execute(&mut *conn)
            .await
            .context("Failed to delete the secret key from the database")?;
        sqlx::query("VACUUM")
            .execute(&mut *conn)
            .await
            .context("Failed to vacuum the database")?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut *conn)
            .await
            .context("Failed to checkpoint the WAL")?;
        Ok(())
    }

    async fn signing_key_ids(&self) -> anyhow::Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT substr(key, 13) FROM app_settings WHERE key LIKE 'signing_key:%' ORDER BY key",
        )
        .fetch_all(&self.writer)
        .await
        .context("Failed to read the ids of the signing keys")
    }

    async fn record_signing_key_id(&self, id: &str) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO app_settings (key, value) VALUES ('signing_key:' || $1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(id)
        .bind(Utc::now().to_rfc3339())
        .execute(&self.writer)
        .await
        .context("Failed to record the signing key's id")?;
        Ok(())
    }

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
        let status: String = row.try_get("status")?;

        let outcome = match (status.as_str(), used_at) {
            ("confirmed", _) => ConfirmOutcome::AlreadyConfirmed,
            (_, Some(_)) => ConfirmOutcome::Used,
            _ if expires_at <= now => ConfirmOutcome::Expired,
            (previous, None) => {
                let kind = if previous == "unsubscribed" {
                    "resubscribe"
                } else {
                    "confirm"
                };
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
                .bind(kind)
                .bind(req.consent.method.as_str())
                .bind(now)
                .bind(req.consent.ip.as_deref())
                .bind(req.consent.user_agent.as_deref())
                .execute(&mut *tx)
                .await
                .context("Failed to record the consent event")?;
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
                ConfirmOutcome::Confirmed
            }
        };
        if used_at.is_none() && outcome != ConfirmOutcome::Expired {
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
        Ok(outcome)
    }

    async fn queue_test_copy(
        &self,
        mail: &NewOutboxMail,
        requested_by: &str,
        limit: i64,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let queued = sqlx::query(
            "INSERT INTO outbox (id, kind, recipient, payload, requested_by, next_attempt_at, created_at)
             SELECT $1, $2, $3, $4, $5, $6, $6
             WHERE (SELECT count(*) FROM outbox WHERE requested_by = $5 AND created_at > $7) < $8",
        )
        .bind(mail.id)
        .bind(&mail.kind)
        .bind(&mail.recipient)
        .bind(&mail.payload)
        .bind(requested_by)
        .bind(ms(now))
        .bind(ms(since))
        .bind(limit)
        .execute(&self.writer)
        .await
        .context("Failed to queue the test copy")?;
        Ok(queued.rows_affected() == 1)
    }

    #[tracing::instrument(skip_all)]
    async fn unsubscribe(&self, req: &UnsubscribeRequest) -> anyhow::Result<UnsubscribeOutcome> {
        let token = &req.token;
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .context("Failed to begin the unsubscribe transaction")?;
        let ended = sqlx::query(
            "UPDATE subscriptions SET status = 'unsubscribed', unsubscribed_at = $3, updated_at = $3
             WHERE subscriber_id = $1 AND list_id = $2 AND status <> 'unsubscribed'",
        )
        .bind(token.subscriber_id)
        .bind(token.list_id)
        .bind(ms(req.now))
        .execute(&mut *tx)
        .await
        .context("Failed to end the subscription")?;
        if ended.rows_affected() == 0 {
            let known: Option<String> = sqlx::query_scalar(
                "SELECT status FROM subscriptions WHERE subscriber_id = $1 AND list_id = $2",
            )
            .bind(token.subscriber_id)
            .bind(token.list_id)
            .fetch_optional(&mut *tx)
            .await
            .context("Failed to read the subscription")?;
            return Ok(match known {
                Some(_) => UnsubscribeOutcome::AlreadyUnsubscribed,
                None => UnsubscribeOutcome::NotSubscribed,
            });
        }
        sqlx::query(
            "INSERT INTO consent_events
               (id, subscriber_id, list_id, kind, method, occurred_at, ip, user_agent, issue_id)
             VALUES ($1, $2, $3, 'unsubscribe', $4, $5, $6, $7, $8)",
        )
        .bind(req.event_id)
        .bind(token.subscriber_id)
        .bind(token.list_id)
        .bind(req.consent.method.as_str())
        .bind(ms(req.now))
        .bind(req.consent.ip.as_deref())
        .bind(req.consent.user_agent.as_deref())
        .bind(token.issue_id)
        .execute(&mut *tx)
        .await
        .context("Failed to record the unsubscribe")?;
        tx.commit()
            .await
            .context("Failed to commit the unsubscribe")?;
        Ok(UnsubscribeOutcome::Unsubscribed)
    }

    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<OutboxMail>> {
        // One statement, on the one writer: no two claims can overlap.
        let rows = sqlx::query(
            "UPDATE outbox SET status = 'sending', attempts = attempts + 1, lease_until = $2
             WHERE id IN (
               SELECT id FROM outbox WHERE status = 'queued' AND next_attempt_at <= $1
               UNION ALL
               SELECT id FROM outbox WHERE status = 'sending' AND lease_until <= $1
               LIMIT $3)
             RETURNING id, subscriber_id, kind, recipient, payload, sealed_secret, attempts",
        )
        .bind(ms(now))
        .bind(ms(lease_until))
        .bind(i64::from(limit))
        .fetch_all(&self.writer)
        .await
        .context("Failed to claim outbox rows")?;
        rows.iter()
            .map(|row| {
                Ok(OutboxMail {
                    id: row.try_get("id")?,
                    subscriber_id: row.try_get("subscriber_id")?,
                    kind: row.try_get("kind")?,
                    recipient: row.try_get("recipient")?,
                    payload: row.try_get("payload")?,
                    sealed_secret: row.try_get("sealed_secret")?,
                    attempts: row.try_get("attempts")?,
                })
            })
            .collect()
    }

    async fn record_outbox_results(&self, results: &[OutboxResult]) -> anyhow::Result<()> {
        if results.is_empty() {
            return Ok(());
        }
        let rows = outcomes_json(results.iter().map(|r| {
            (
                serde_json::json!({ "id": r.id.simple().to_string() }),
                &r.outcome,
            )
        }));
        sqlx::query(
            "UPDATE outbox SET
               status = r.value ->> 'status',
               sent_at = r.value ->> 'sent_at',
               smtp_reply = r.value ->> 'reply',
               last_error = r.value ->> 'error',
               next_attempt_at = coalesce(r.value ->> 'next_attempt_at', next_attempt_at),
               sealed_secret = CASE WHEN r.value ->> 'status' = 'queued' THEN sealed_secret END,
               lease_until = NULL
             FROM json_each($1) AS r
             WHERE outbox.id = unhex(r.value ->> 'id')",
        )
        .bind(rows)
        .execute(&self.writer)
        .await
        .context("Failed to record the outbox results")?;
        Ok(())
    }

    async fn next_mail_due(&self) -> anyhow::Result<Option<DateTime<Utc>>> {
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT min(t) FROM (
               SELECT min(next_attempt_at) AS t FROM outbox WHERE status = 'queued'
               UNION ALL
               SELECT min(lease_until) FROM outbox WHERE status = 'sending'
               UNION ALL
               SELECT (SELECT min(next_attempt_at) FROM deliveries d
                       WHERE d.issue_id = i.id AND d.status = 'queued')
               FROM issues i WHERE i.status = 'sending'
               UNION ALL
               SELECT (SELECT min(lease_until) FROM deliveries d
                       WHERE d.issue_id = i.id AND d.status = 'sending')
               FROM issues i WHERE i.status = 'sending')",
        )
        .fetch_one(&self.reader)
        .await
        .context("Failed to read when the next mail is due")?;
        Ok(next.map(from_ms))
    }

    async fn create_api_token(
        &self,
        id: Uuid,
        name: &str,
        token_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO api_tokens (id, name, token_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(name)
        .bind(&token_hash[..])
        .bind(ms(now))
        .execute(&self.writer)
        .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(err) if is_unique_violation(&err) => Ok(false),
            Err(err) => Err(err).context("Failed to store the API token"),
        }
    }

    async fn revoke_api_token(&self, name: &str, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let revoked = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL",
        )
        .bind(name)
        .bind(ms(now))
        .execute(&self.writer)
        .await
        .context("Failed to revoke the API token")?;
        Ok(revoked.rows_affected() > 0)
    }

    async fn api_token_name(&self, token_hash: &[u8; 32]) -> anyhow::Result<Option<String>> {
        sqlx::query_scalar(
            "SELECT name FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(&token_hash[..])
        .fetch_optional(&self.reader)
        .await
        .context("Failed to look up the API token")
    }

    async fn create_staff_user(
        &self,
        user: &StaffUser,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let inserted = sqlx::query(
            "INSERT INTO staff_users (id, email, password_hash, role, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(user.id)
        .bind(&user.email)
        .bind(password_hash)
        .bind(user.role.as_str())
        .bind(ms(now))
        .execute(&self.writer)
        .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(err) if is_unique_violation(&err) => Ok(false),
            Err(err) => Err(err).context("Failed to store the staff user"),
        }
    }

    async fn staff_login(&self, email: &str) -> anyhow::Result<Option<(StaffUser, String)>> {
        let row =
            sqlx::query("SELECT id, email, role, password_hash FROM staff_users WHERE email = $1")
                .bind(email)
                .fetch_optional(&self.reader)
                .await
                .context("Failed to look up the staff user")?;
        row.map(|row| Ok((staff_user(&row)?, row.try_get("password_hash")?)))
            .transpose()
    }

    async fn create_session(
        &self,
        token_hash: &[u8; 32],
        user_id: Uuid,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO staff_sessions (token_hash, user_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&token_hash[..])
        .bind(user_id)
        .bind(ms(now))
        .bind(ms(expires_at))
        .execute(&self.writer)
        .await
        .context("Failed to store the session")?;
        // Sessions that ran out are of no use to anyone: they go as new ones come.
        sqlx::query("DELETE FROM staff_sessions WHERE expires_at <= $1")
            .bind(ms(now))
            .execute(&self.writer)
            .await
            .context("Failed to delete expired sessions")?;
        Ok(())
    }

    async fn staff_users(&self) -> anyhow::Result<Vec<(StaffUser, DateTime<Utc>)>> {
        let rows =
            sqlx::query("SELECT id, email, role, created_at FROM staff_users ORDER BY email")
                .fetch_all(&self.reader)
                .await
                .context("Failed to list the staff users")?;
        rows.iter()
            .map(|row| Ok((staff_user(row)?, from_ms(row.try_get("created_at")?))))
            .collect()
    }

    async fn delete_staff_user(&self, id: Uuid) -> anyhow::Result<bool> {
        let deleted = sqlx::query("DELETE FROM staff_users WHERE id = $1")
            .bind(id)
            .execute(&self.writer)
            .await
            .context("Failed to remove the staff user")?;
        Ok(deleted.rows_affected() > 0)
    }

    async fn api_tokens(
        &self,
    ) -> anyhow::Result<Vec<(String, DateTime<Utc>, Option<DateTime<Utc>>)>> {
        let rows = sqlx::query_as(
            "SELECT name, created_at, revoked_at FROM api_tokens ORDER BY created_at DESC, name",
        )
        .fetch_all(&self.reader)
        .await
        .context("Failed to list the API tokens")?;
        let rows: Vec<(String, i64, Option<i64>)> = rows;
        Ok(rows
            .into_iter()
            .map(|(name, created, revoked)| (name, from_ms(created), revoked.map(from_ms)))
            .collect())
    }

    async fn session_user(
        &self,
        token_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<StaffUser>> {
        let row = sqlx::query(
            "SELECT u.id, u.email, u.role FROM staff_sessions s JOIN staff_users u ON u.id = s.user_id
             WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(&token_hash[..])
        .bind(ms(now))
        .fetch_optional(&self.reader)
        .await
        .context("Failed to look up the session")?;
        row.map(|row| staff_user(&row)).transpose()
    }

    async fn delete_session(&self, token_hash: &[u8; 32]) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM staff_sessions WHERE token_hash = $1")
            .bind(&token_hash[..])
            .execute(&self.writer)
            .await
            .context("Failed to delete the session")?;
        Ok(())
    }

    async fn admit_login(
        &self,
        attempt: &super::LoginAttempt<'_>,
    ) -> anyhow::Result<super::LoginAdmission> {
        logins::admit(&self.writer, attempt).await
    }

    async fn forget_login_attempt(&self, id: Uuid, clear: &[String]) -> anyhow::Result<()> {
        logins::forget(&self.writer, id, clear).await
    }

    async fn subscriber_counts(&self, list_id: Uuid) -> anyhow::Result<Vec<(String, i64)>> {
        sqlx::query_as(
            "SELECT s.status, count(sub.status) FROM
               (SELECT 'pending' AS status, 1 AS place UNION ALL SELECT 'confirmed', 2
                UNION ALL SELECT 'unsubscribed', 3) s
             LEFT JOIN subscriptions sub ON sub.status = s.status AND sub.list_id = $1
             GROUP BY s.status, s.place ORDER BY s.place",
        )
        .bind(list_id)
        .fetch_all(&self.reader)
        .await
        .context("Failed to count the subscribers")
    }

    async fn subscribers(
        &self,
        list_id: Uuid,
        search: &str,
        offset: u32,
        limit: u32,
    ) -> anyhow::Result<(Vec<SubscriberSummary>, i64)> {
        let pattern = format!(
            "%{}%",
            search
                .trim()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let matching = "FROM subscribers s JOIN subscriptions sub ON sub.subscriber_id = s.id
             WHERE sub.list_id = $1
               AND (s.email LIKE $2 ESCAPE '\\' OR s.name LIKE $2 ESCAPE '\\'
                    OR coalesce(s.organisation, '') LIKE $2 ESCAPE '\\')";
        // Only our own constant text is joined here; the search is bound.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT s.id, s.email, s.name, s.organisation, s.locality, sub.status, s.created_at
             {matching} ORDER BY s.email LIMIT $3 OFFSET $4"
        )))
        .bind(list_id)
        .bind(&pattern)
        .bind(i64::from(limit))
        .bind(i64::from(offset))
        .fetch_all(&self.reader)
        .await
        .context("Failed to list the subscribers")?;
        let total: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) {matching}")))
                .bind(list_id)
                .bind(&pattern)
                .fetch_one(&self.reader)
                .await
                .context("Failed to count the subscribers")?;
        let page = rows
            .iter()
            .map(subscriber_summary)
            .collect::<anyhow::Result<_>>()?;
        Ok((page, total))
    }

    async fn subscriber(
        &self,
        id: Uuid,
        list_id: Uuid,
    ) -> anyhow::Result<Option<SubscriberSummary>> {
        let row = sqlx::query(
            "SELECT s.id, s.email, s.name, s.organisation, s.locality, sub.status, s.created_at
             FROM subscribers s JOIN subscriptions sub ON sub.subscriber_id = s.id
             WHERE s.id = $1 AND sub.list_id = $2",
        )
        .bind(id)
        .bind(list_id)
        .fetch_optional(&self.reader)
        .await
        .context("Failed to read the subscriber")?;
        row.as_ref().map(subscriber_summary).transpose()
    }

    async fn subscribers_after(
        &self,
        list_id: Uuid,
        after: &str,
        limit: u32,
    ) -> anyhow::Result<Vec<SubscriberSummary>> {
        let rows = sqlx::query(
            "SELECT s.id, s.email, s.name, s.organisation, s.locality, sub.status, s.created_at
             FROM subscribers s JOIN subscriptions sub ON sub.subscriber_id = s.id
             WHERE sub.list_id = $1 AND s.email > $2
             ORDER BY s.email LIMIT $3",
        )
        .bind(list_id)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .context("Failed to read a page of subscribers")?;
        rows.iter().map(subscriber_summary).collect()
    }

    async fn consent_ledger(&self, subscriber_id: Uuid) -> anyhow::Result<Vec<ConsentRecord>> {
        let rows = sqlx::query(
            "SELECT e.kind, e.method, e.occurred_at, e.ip, e.user_agent, e.wording_version,
                    i.subject AS issue_subject, e.import_id, imp.source_note AS import_note
             FROM consent_events e LEFT JOIN issues i ON i.id = e.issue_id
             LEFT JOIN imports imp ON imp.id = e.import_id
             WHERE e.subscriber_id = $1 ORDER BY e.occurred_at, e.id",
        )
        .bind(subscriber_id)
        .fetch_all(&self.reader)
        .await
        .context("Failed to read the consent ledger")?;
        rows.iter()
            .map(|row| {
                Ok(ConsentRecord {
                    kind: row.try_get("kind")?,
                    method: row.try_get("method")?,
                    occurred_at: from_ms(row.try_get("occurred_at")?),
                    ip: row.try_get("ip")?,
                    user_agent: row.try_get("user_agent")?,
                    wording_version: row.try_get("wording_version")?,
                    issue_subject: row.try_get("issue_subject")?,
                    import_id: row.try_get("import_id")?,
                    import_note: row.try_get("import_note")?,
                })
            })
            .collect()
    }

    async fn erase_subscriber(
        &self,
        id: Uuid,
        list_id: Uuid,
        event_id: Uuid,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let mut tx = self
            .writer
            .begin()
            .await
            .context("Failed to begin the erasure")?;
        // Rows of recent imports that name them (refused rows included).
        sqlx::query(
            "DELETE FROM import_rows
             WHERE lower(email) = (SELECT email_key FROM subscribers WHERE id = $1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await
        .context("Failed to erase the subscriber's imported rows")?;
        let erased = sqlx::query(
            "UPDATE subscribers SET email = $2, name = '', organisation = NULL, locality = NULL,
               updated_at = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(format!("erased-{}@erased.invalid", id.simple()))
        .bind(ms(now))
        .execute(&mut *tx)
        .await
        .context("Failed to erase the subscriber's details")?;
        if erased.rows_affected() == 0 {
            return Ok(false);
        }
        let statements = [
            "UPDATE subscriptions SET status = 'unsubscribed',
               unsubscribed_at = coalesce(unsubscribed_at, $2), updated_at = $2
             WHERE subscriber_id = $1",
            "UPDATE consent_events SET ip = NULL, user_agent = NULL WHERE subscriber_id = $1",
            "DELETE FROM confirmation_tokens WHERE subscriber_id = $1",
            "UPDATE outbox SET recipient = '', payload = '{}', sealed_secret = NULL,
               smtp_reply = NULL,
               last_error = CASE WHEN status IN ('queued', 'sending')
                            THEN 'Erased before it was sent' END,
               status = CASE WHEN status IN ('queued', 'sending') THEN 'failed' ELSE status END
             WHERE subscriber_id = $1",
            "UPDATE deliveries SET smtp_reply = NULL, last_error = NULL,
               status = CASE WHEN status IN ('queued', 'sending') THEN 'skipped' ELSE status END
             WHERE subscriber_id = $1",
        ];
        for statement in statements {
            sqlx::query(statement)
                .bind(id)
                .bind(ms(now))
                .execute(&mut *tx)
                .await
                .context("Failed to erase the subscriber's data")?;
        }
        sqlx::query(
            "INSERT INTO consent_events (id, subscriber_id, list_id, kind, method, occurred_at)
             VALUES ($1, $2, $3, 'erase', 'admin', $4)",
        )
        .bind(event_id)
        .bind(id)
        .bind(list_id)
        .bind(ms(now))
        .execute(&mut *tx)
        .await
        .context("Failed to record the erasure")?;
        tx.commit().await.context("Failed to commit the erasure")?;
        Ok(true)
    }

    async fn subscription_statuses(
        &self,
        list_id: Uuid,
        emails: &[String],
    ) -> anyhow::Result<Vec<(String, String)>> {
        sqlx::query_as(
            "SELECT s.email_key, sub.status
             FROM subscribers s JOIN subscriptions sub ON sub.subscriber_id = s.id
             WHERE sub.list_id = $1 AND s.email_key IN (SELECT lower(value) FROM json_each($2))",
        )
        .bind(list_id)
        .bind(serde_json::to_string(emails)?)
        .fetch_all(&self.reader)
        .await
        .context("Failed to look up subscriptions")
    }

    async fn create_import(&self, import: &ImportRecord, rows: &[ImportRow]) -> anyhow::Result<()> {
        let mut tx = self
            .writer
            .begin()
            .await
            .context("Failed to begin storing the import")?;
        sqlx::query(
            "INSERT INTO imports (id, list_id, created_by, file_name, source_note, mode, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(import.id)
        .bind(import.list_id)
        .bind(&import.created_by)
        .bind(&import.file_name)
        .bind(&import.source_note)
        .bind(import.mode.as_str())
        .bind(ms(import.created_at))
        .execute(&mut *tx)
        .await
        .context("Failed to store the import")?;
        for row in rows {
            sqlx::query(
                "INSERT INTO import_rows
                   (import_id, line, email, name, organisation, locality, status, reason)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(import.id)
            .bind(row.line)
            .bind(&row.email)
            .bind(&row.name)
            .bind(&row.organisation)
            .bind(&row.locality)
            .bind(row.status.as_str())
            .bind(row.reason.as_deref())
            .execute(&mut *tx)
            .await
            .context("Failed to store an imported row")?;
        }
        tx.commit().await.context("Failed to commit the import")
    }

    async fn import(&self, id: Uuid) -> anyhow::Result<Option<ImportRecord>> {
        let row = sqlx::query(concat!(import_select!(), " WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.reader)
            .await
            .context("Failed to read an import")?;
        row.as_ref().map(import_record).transpose()
    }

    async fn imports(&self, list_id: Uuid) -> anyhow::Result<Vec<ImportRecord>> {
        let rows = sqlx::query(concat!(
            import_select!(),
            " WHERE list_id = $1 ORDER BY created_at DESC, id DESC"
        ))
        .bind(list_id)
        .fetch_all(&self.reader)
        .await
        .context("Failed to read the imports")?;
        rows.iter().map(import_record).collect()
    }

    async fn import_counts(&self, id: Uuid) -> anyhow::Result<Vec<(RowStatus, i64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, count(*) FROM import_rows WHERE import_id = $1 GROUP BY status",
        )
        .bind(id)
        .fetch_all(&self.reader)
        .await
        .context("Failed to count an import's rows")?;
        import_counts(rows)
    }

    async fn import_rows(
        &self,
        id: Uuid,
        status: Option<RowStatus>,
        after_line: i64,
        offset: u32,
        limit: u32,
    ) -> anyhow::Result<Vec<ImportRow>> {
        let rows = sqlx::query(
            "SELECT line, email, name, organisation, locality, status, reason FROM import_rows
             WHERE import_id = $1 AND ($2 IS NULL OR status = $2) AND line > $5
             ORDER BY line LIMIT $3 OFFSET $4",
        )
        .bind(id)
        .bind(status.map(RowStatus::as_str))
        .bind(i64::from(limit))
        .bind(i64::from(offset))
        .bind(after_line)
        .fetch_all(&self.writer)
        .await
        .context("Failed to read an import's rows")?;
        rows.iter().map(import_row).collect()
    }

    async fn start_import(&self, id: Uuid, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let started =
            sqlx::query("UPDATE imports SET applied_at = $2 WHERE id = $1 AND applied_at IS NULL")
                .bind(id)
                .bind(ms(now))
                .execute(&self.writer)
                .await
                .context("Failed to start the import")?;
        Ok(started.rows_affected() == 1)
    }

    async fn discard_import(&self, id: Uuid) -> anyhow::Result<bool> {
        let deleted = sqlx::query("DELETE FROM imports WHERE id = $1 AND applied_at IS NULL")
            .bind(id)
            .execute(&self.writer)
            .await
            .context("Failed to discard the import")?;
        Ok(deleted.rows_affected() == 1)
    }

    async fn budget_refusals(
        &self,
        since: DateTime<Utc>,
    ) -> anyhow::Result<Vec<(crate::budgets::BudgetScope, i64)>> {
        budgets::refusals(&self.reader, since).await
    }

    async fn delete_signup_records_before(&self, cutoff: DateTime<Utc>) -> anyhow::Result<()> {
        budgets::delete_before(&self.writer, cutoff).await
    }

    async fn delete_import_rows_before(&self, cutoff: DateTime<Utc>) -> anyhow::Result<()> {
        sqlx::query(
            "DELETE FROM import_rows WHERE import_id IN
               (SELECT id FROM imports WHERE created_at < $1);
             DELETE FROM imports WHERE created_at < $1 AND applied_at IS NULL",
        )
        .bind(ms(cutoff))
        .execute(&self.writer)
        .await
        .context("Failed to delete old import rows")?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(rows = batch.people.len()))]
    async fn import_subscribers(&self, batch: &ImportBatch<'_>) -> anyhow::Result<()> {
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .context("Failed to begin the import's transaction")?;
        for person in batch.people {
            import_person(&mut tx, batch, person).await?;
        }
        tx.commit().await.context("Failed to commit the import")
    }

    async fn daily_signups_and_unsubscribes(
        &self,
        list_id: Uuid,
        since: DateTime<Utc>,
    ) -> anyhow::Result<Vec<(chrono::NaiveDate, i64, i64)>> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT date(occurred_at / 1000, 'unixepoch') AS day,
               sum(CASE WHEN kind = 'signup' THEN 1 ELSE 0 END),
               sum(CASE WHEN kind = 'unsubscribe' THEN 1 ELSE 0 END)
             FROM consent_events
             WHERE list_id = $1 AND occurred_at >= $2 AND kind IN ('signup', 'unsubscribe')
             GROUP BY 1 ORDER BY 1",
        )
        .bind(list_id)
        .bind(ms(since))
        .fetch_all(&self.reader)
        .await
        .context("Failed to count sign-ups and unsubscribes by day")?;
        rows.into_iter()
            .map(|(day, signups, unsubscribes)| {
                Ok((
                    day.parse().context("A day that is not a date")?,
                    signups,
                    unsubscribes,
                ))
            })
            .collect()
    }

    async fn create_issue(&self, issue: &NewIssue) -> anyhow::Result<Issue> {
        let content = &issue.content;
        sqlx::query(
            "INSERT INTO issues (id, list_id, subject, preheader, body_markdown, template, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(issue.id)
        .bind(issue.list_id)
        .bind(content.subject.as_deref().unwrap_or_default())
        .bind(content.preheader.as_deref().unwrap_or_default())
        .bind(content.body_markdown.as_deref().unwrap_or_default())
        .bind(content.template.as_deref().unwrap_or(DEFAULT_TEMPLATE))
        .bind(ms(issue.now))
        .execute(&self.writer)
        .await
        .context("Failed to store the issue")?;
        self.issue(issue.id)
            .await?
            .context("The new issue is missing")
    }

    async fn issues(&self) -> anyhow::Result<Vec<Issue>> {
        let rows = sqlx::query(concat!(issue_select!(), " ORDER BY i.created_at DESC"))
            .fetch_all(&self.reader)
            .await
            .context("Failed to list the issues")?;
        rows.iter().map(issue_from_row).collect()
    }

    async fn issue(&self, id: Uuid) -> anyhow::Result<Option<Issue>> {
        let row = sqlx::query(concat!(issue_select!(), " WHERE i.id = $1"))
            .bind(id)
            .fetch_optional(&self.writer)
            .await
            .context("Failed to load the issue")?;
        row.as_ref().map(issue_from_row).transpose()
    }

    async fn update_issue(
        &self,
        id: Uuid,
        changes: &IssueContent,
        now: DateTime<Utc>,
    ) -> anyhow::Result<IssueChange> {
        let updated = sqlx::query(
            "UPDATE issues SET
               subject = coalesce($2, subject),
               preheader = coalesce($3, preheader),
               body_markdown = coalesce($4, body_markdown),
               template = coalesce($5, template),
               updated_at = $6
             WHERE id = $1 AND status IN ('draft', 'scheduled')",
        )
        .bind(id)
        .bind(changes.subject.as_deref())
        .bind(changes.preheader.as_deref())
        .bind(changes.body_markdown.as_deref())
        .bind(changes.template.as_deref())
        .bind(ms(now))
        .execute(&self.writer)
        .await
        .context("Failed to update the issue")?;
        Ok(match self.issue(id).await? {
            None => IssueChange::NotFound,
            Some(issue) if updated.rows_affected() == 0 => IssueChange::Refused(issue.status),
            Some(issue) => IssueChange::Changed(Box::new(issue)),
        })
    }

    async fn delete_draft(&self, id: Uuid) -> anyhow::Result<DraftDeletion> {
        issue_archive::delete_draft(self, id).await
    }

    async fn change_archive(&self, change: &ArchiveChange<'_>) -> anyhow::Result<IssueChange> {
        issue_archive::change(self, change).await
    }

    async fn transition_issue(
        &self,
        id: Uuid,
        from: &[IssueStatus],
        to: IssueStatus,
        send_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<IssueChange> {
        // Up to four statuses to move from, padded with the first.
        let from_status = |i: usize| from.get(i).or(from.first()).map(|s| s.as_str());
        let mut tx = self
            .writer
            .begin()
            .await
            .context("Failed to start changing the issue's status")?;
        let changed = sqlx::query(
            "UPDATE issues SET status = $2, send_at = coalesce($3, send_at), updated_at = $4
             WHERE id = $1 AND status IN ($5, $6, $7, $8)",
        )
        .bind(id)
        .bind(to.as_str())
        .bind(send_at.map(ms))
        .bind(ms(now))
        .bind(from_status(0))
        .bind(from_status(1))
        .bind(from_status(2))
        .bind(from_status(3))
        .execute(&mut *tx)
        .await
        .context("Failed to change the issue's status")?;
        if changed.rows_affected() > 0 && to == IssueStatus::Cancelled {
            // Nobody else gets this issue: its unsent copies are cancelled with it.
            sqlx::query(
                "UPDATE deliveries SET status = 'cancelled' WHERE issue_id = $1 AND status = 'queued'",
            )
            .bind(id)
            .execute(&mut *tx)
            .await
            .context("Failed to cancel the issue's unsent copies")?;
        }
        tx.commit()
            .await
            .context("Failed to commit the issue's status")?;
        Ok(match self.issue(id).await? {
            None => IssueChange::NotFound,
            Some(issue) if changed.rows_affected() == 0 => IssueChange::Refused(issue.status),
            Some(issue) => IssueChange::Changed(Box::new(issue)),
        })
    }

    #[tracing::instrument(skip_all)]
    async fn start_due_issues(&self, now: DateTime<Utc>) -> anyhow::Result<usize> {
        let due: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM issues WHERE status = 'scheduled' AND send_at <= $1 ORDER BY send_at",
        )
        .bind(ms(now))
        .fetch_all(&self.reader)
        .await
        .context("Failed to find the issues that are due")?;
        let mut started = 0;
        for id in due {
            let clock = std::time::Instant::now();
            let mut tx = self
                .writer
                .begin_with("BEGIN IMMEDIATE")
                .await
                .context("Failed to begin starting an issue")?;
            let moved = sqlx::query(
                "UPDATE issues SET status = 'sending', started_at = $2, updated_at = $2
                 WHERE id = $1 AND status = 'scheduled' AND send_at <= $2",
            )
            .bind(id)
            .bind(ms(now))
            .execute(&mut *tx)
            .await
            .context("Failed to start the issue")?;
            if moved.rows_affected() == 0 {
                continue; // another instance started it
            }
            let recipients = sqlx::query(
                "INSERT INTO deliveries (issue_id, subscriber_id, next_attempt_at)
                 SELECT i.id, sub.subscriber_id, $2
                 FROM issues i JOIN subscriptions sub ON sub.list_id = i.list_id
                 WHERE i.id = $1 AND sub.status = 'confirmed'",
            )
            .bind(id)
            .bind(ms(now))
            .execute(&mut *tx)
            .await
            .context("Failed to queue the issue's deliveries")?;
            tx.commit()
                .await
                .context("Failed to commit starting the issue")?;
            tracing::info!(
                issue = %id,
                recipients = recipients.rows_affected(),
                queued_in_ms = clock.elapsed().as_millis() as u64,
                "Issue started"
            );
            started += 1;
        }
        Ok(started)
    }

    async fn next_issue_due(&self) -> anyhow::Result<Option<DateTime<Utc>>> {
        let next: Option<i64> =
            sqlx::query_scalar("SELECT min(send_at) FROM issues WHERE status = 'scheduled'")
                .fetch_one(&self.reader)
                .await
                .context("Failed to read when the next issue is due")?;
        Ok(next.map(from_ms))
    }

    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> anyhow::Result<Vec<DeliveryJob>> {
        // By rowid: SQLite answers `(issue_id, subscriber_id) IN (...)` with a scan of
        // the whole table, which made every claim slower than the last.
        let rows = sqlx::query(
            "UPDATE deliveries SET status = 'sending', attempts = attempts + 1, lease_until = $2
             WHERE rowid IN (
               SELECT d.rowid FROM deliveries d JOIN issues i ON i.id = d.issue_id
               WHERE i.status = 'sending' AND d.status = 'queued' AND d.next_attempt_at <= $1
               UNION ALL
               SELECT d.rowid FROM deliveries d JOIN issues i ON i.id = d.issue_id
               WHERE i.status = 'sending' AND d.status = 'sending' AND d.lease_until <= $1
               LIMIT $3)
             RETURNING issue_id, subscriber_id, attempts,
               (SELECT list_id FROM issues WHERE id = deliveries.issue_id) AS list_id,
               coalesce((SELECT email FROM subscribers WHERE id = deliveries.subscriber_id), '') AS email,
               coalesce((SELECT sub.status = 'confirmed'
                         FROM subscriptions sub JOIN issues i ON i.list_id = sub.list_id
                         WHERE i.id = deliveries.issue_id AND sub.subscriber_id = deliveries.subscriber_id),
                        0) AS still_subscribed",
        )
        .bind(ms(now))
        .bind(ms(lease_until))
        .bind(i64::from(limit))
        .fetch_all(&self.writer)
        .await
        .context("Failed to claim deliveries")?;
        rows.iter()
            .map(|row| {
                Ok(DeliveryJob {
                    issue_id: row.try_get("issue_id")?,
                    subscriber_id: row.try_get("subscriber_id")?,
                    list_id: row.try_get("list_id")?,
                    email: row.try_get("email")?,
                    still_subscribed: row.try_get("still_subscribed")?,
                    attempts: row.try_get("attempts")?,
                })
            })
            .collect()
    }

    async fn record_delivery_results(&self, results: &[DeliveryResult]) -> anyhow::Result<()> {
        if results.is_empty() {
            return Ok(());
        }
        let rows = outcomes_json(results.iter().map(|r| {
            (
                serde_json::json!({
                    "issue": r.issue_id.simple().to_string(),
                    "subscriber": r.subscriber_id.simple().to_string(),
                }),
                &r.outcome,
            )
        }));
        sqlx::query(
            "UPDATE deliveries SET
               status = r.value ->> 'status',
               sent_at = r.value ->> 'sent_at',
               smtp_reply = r.value ->> 'reply',
               last_error = r.value ->> 'error',
               next_attempt_at = coalesce(r.value ->> 'next_attempt_at', next_attempt_at),
               lease_until = NULL
             FROM json_each($1) AS r
             WHERE deliveries.issue_id = unhex(r.value ->> 'issue')
               AND deliveries.subscriber_id = unhex(r.value ->> 'subscriber')",
        )
        .bind(rows)
        .execute(&self.writer)
        .await
        .context("Failed to record the deliveries results")?;
        Ok(())
    }

    async fn finish_sent_issues(&self, now: DateTime<Utc>) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE issues SET status = 'sent', finished_at = $1, updated_at = $1
             WHERE status = 'sending'
               AND NOT EXISTS (SELECT 1 FROM deliveries d
                               WHERE d.issue_id = issues.id AND d.status = 'queued')
               AND NOT EXISTS (SELECT 1 FROM deliveries d
                               WHERE d.issue_id = issues.id AND d.status = 'sending')",
        )
        .bind(ms(now))
        .execute(&self.writer)
        .await
        .context("Failed to mark finished issues as sent")?;
        Ok(())
    }

    async fn issue_unsubscribe_times(&self, id: Uuid) -> anyhow::Result<Vec<DateTime<Utc>>> {
        let times: Vec<i64> = sqlx::query_scalar(
            "SELECT occurred_at FROM consent_events
             WHERE issue_id = $1 AND kind = 'unsubscribe' ORDER BY occurred_at",
        )
        .bind(id)
        .fetch_all(&self.reader)
        .await
        .context("Failed to read the issue's unsubscribes")?;
        Ok(times.into_iter().map(from_ms).collect())
    }

    async fn failed_deliveries(
        &self,
        id: Uuid,
        limit: u32,
    ) -> anyhow::Result<Vec<(String, String)>> {
        sqlx::query_as(
            "SELECT s.email, coalesce(d.last_error, '') FROM deliveries d
             JOIN subscribers s ON s.id = d.subscriber_id
             WHERE d.issue_id = $1 AND d.status = 'failed'
             ORDER BY s.email LIMIT $2",
        )
        .bind(id)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await
        .context("Failed to read the issue's failed copies")
    }

    async fn issue_stats(&self, id: Uuid) -> anyhow::Result<IssueStats> {
        let row = sqlx::query(
            "SELECT count(*) AS recipients,
               coalesce(sum(CASE WHEN status = 'sent' THEN 1 ELSE 0 END), 0) AS sent,
               coalesce(sum(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS failed,
               coalesce(sum(CASE WHEN status IN ('queued', 'sending') THEN 1 ELSE 0 END), 0) AS pending,
               coalesce(sum(CASE WHEN status = 'skipped' THEN 1 ELSE 0 END), 0) AS skipped,
               coalesce(sum(CASE WHEN status = 'cancelled' THEN 1 ELSE 0 END), 0) AS cancelled,
               (SELECT count(*) FROM consent_events
                WHERE issue_id = $1 AND kind = 'unsubscribe') AS unsubscribed
             FROM deliveries WHERE issue_id = $1",
        )
        .bind(id)
        .fetch_one(&self.reader)
        .await
        .context("Failed to count the issue's deliveries")?;
        Ok(IssueStats {
            recipients: row.try_get("recipients")?,
            sent: row.try_get("sent")?,
            failed: row.try_get("failed")?,
            pending: row.try_get("pending")?,
            skipped: row.try_get("skipped")?,
            cancelled: row.try_get("cancelled")?,
            unsubscribed: row.try_get("unsubscribed")?,
        })
    }

    async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

/// A staff user from a row with `id`, `email` and `role`.
fn staff_user(row: &sqlx::sqlite::SqliteRow) -> anyhow::Result<StaffUser> {
    Ok(StaffUser {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        role: Role::parse(row.try_get("role")?)?,
    })
}

fn import_record(row: &SqliteRow) -> anyhow::Result<ImportRecord> {
    Ok(ImportRecord {
        id: row.try_get("id")?,
        list_id: row.try_get("list_id")?,
        created_by: row.try_get("created_by")?,
        file_name: row.try_get("file_name")?,
        source_note: row.try_get("source_note")?,
        mode: import::Mode::parse(row.try_get("mode")?).context("An import has an unknown mode")?,
        created_at: from_ms(row.try_get("created_at")?),
        applied_at: row.try_get::<Option<i64>, _>("applied_at")?.map(from_ms),
    })
}

fn import_row(row: &SqliteRow) -> anyhow::Result<ImportRow> {
    Ok(ImportRow {
        line: row.try_get("line")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        organisation: row.try_get("organisation")?,
        locality: row.try_get("locality")?,
        status: RowStatus::parse(row.try_get("status")?)
            .context("An imported row has an unknown status")?,
        reason: row.try_get("reason")?,
    })
}

fn subscriber_summary(row: &sqlx::sqlite::SqliteRow) -> anyhow::Result<SubscriberSummary> {
    Ok(SubscriberSummary {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        organisation: row.try_get("organisation")?,
        locality: row.try_get("locality")?,
        status: row.try_get("status")?,
        created_at: from_ms(row.try_get("created_at")?),
    })
}
