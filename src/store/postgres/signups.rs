//! Joining: a sign-up (a person, their pending subscription, the token and the
//! confirmation mail, in one transaction) and its confirmation.

use crate::audience::budgets::BudgetScope;
use crate::audience::subscription::{
    ConfirmOutcome, SignupOutcome, SubscriptionStatus, combined_outcome, confirmation,
};
use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sqlx::{PgConnection, PgPool, Row};
use std::collections::HashMap;
use uuid::Uuid;

use super::PostgresStore;
use crate::store::signup_batch::{Decided, Found, Person, budget_rows, decide};
use crate::store::signups::SignupWriter;
use crate::store::{ConfirmRequest, KnownSubscriber, SignupRequest, SignupStore};

/// Marks every form token of the batch used, returning those no one used before.
const USE_FORM_TOKENS: &str = "INSERT INTO used_form_tokens (nonce, used_at)
     SELECT * FROM UNNEST($1::bytea[], $2::timestamptz[])
     ON CONFLICT DO NOTHING
     RETURNING nonce";

/// Makes the budget rows exist, outside the transaction, so that the transaction only
/// locks rows (inserting them there could deadlock two instances' batches). Sorted,
/// so two of these statements take the rows in one order too.
const ENSURE_BUDGETS: &str = "INSERT INTO signup_budgets (scope, key, window_start)
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::timestamptz[])
     ON CONFLICT DO NOTHING";

/// The batch's budget rows, locked in one order, so two instances cannot deadlock and
/// count each mail once.
const LOCK_BUDGETS: &str = "SELECT b.scope, b.key, b.window_start, b.mails
     FROM signup_budgets b
     JOIN UNNEST($1::text[], $2::text[], $3::timestamptz[]) AS w(scope, key, window_start)
       USING (scope, key, window_start)
     ORDER BY b.scope, b.key, b.window_start
     FOR UPDATE OF b";

/// The people already known by these address keys, locked (in one order), with the
/// confirmation and "already subscribed" mails each was sent since `$2`.
const LOCK_PEOPLE: &str = "SELECT s.id, s.email, s.email_key,
       (SELECT count(DISTINCT t.token_hash) FROM confirmation_tokens t
        WHERE t.subscriber_id = s.id AND t.created_at > $2) AS recent,
       (SELECT count(*) FROM outbox o
        WHERE o.subscriber_id = s.id AND o.kind = $3 AND o.created_at > $2) AS reminders
     FROM subscribers s
     WHERE s.email_key = ANY($1)
     ORDER BY s.id
     FOR UPDATE OF s";

/// New people; one that another writer added meanwhile is not added twice.
const ADD_PEOPLE: &str =
    "INSERT INTO subscribers (id, email, name, organisation, locality, created_at, updated_at)
     SELECT id, email, name, organisation, locality, at, at
     FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])
       AS n(id, email, name, organisation, locality, at)
     ON CONFLICT (email_key) DO NOTHING";

/// The details typed replace those kept (for someone confirmed on no list).
const UPDATE_DETAILS: &str = "UPDATE subscribers s
     SET name = d.name, organisation = d.organisation, locality = d.locality, updated_at = d.at
     FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
       AS d(id, name, organisation, locality, at)
     WHERE s.id = d.id";

/// Each list an invitation asks about: a pending subscription where it is new, a
/// token row and a consent event.
const INVITE: &str = "WITH chosen AS (
       SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::bytea[], $4::timestamptz[],
                            $5::timestamptz[], $6::uuid[], $7::text[], $8::text[], $9::text[],
                            $10::text[], $11::text[])
         AS c(subscriber_id, list_id, token_hash, at, expires_at, event_id, method, ip,
              user_agent, wording_version, wording_hash)
     ), subscription AS (
       INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at)
       SELECT subscriber_id, list_id, 'pending', at, at FROM chosen
       ON CONFLICT (subscriber_id, list_id) DO NOTHING
     ), token AS (
       INSERT INTO confirmation_tokens (token_hash, subscriber_id, list_id, created_at, expires_at)
       SELECT token_hash, subscriber_id, list_id, at, expires_at FROM chosen
     )
     INSERT INTO consent_events
       (id, subscriber_id, list_id, kind, method, occurred_at, ip, user_agent, wording_version, wording_hash)
     SELECT event_id, subscriber_id, list_id, 'signup', method, at, ip, user_agent,
            wording_version, wording_hash
     FROM chosen";

const QUEUE_MAILS: &str = "INSERT INTO outbox
       (id, kind, recipient, subscriber_id, payload, next_attempt_at, created_at, past_suppression)
     SELECT id, kind, recipient, subscriber_id, payload, at, at, past_suppression
     FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::text[], $6::timestamptz[],
                 $7::bool[])
       AS m(id, kind, recipient, subscriber_id, payload, at, past_suppression)";

/// A suppressed address's mail goes past its entry: the entry remembers when (and whose
/// it is).
const ADMITTED: &str = "UPDATE suppressions s
     SET last_admitted_at = a.at, subscriber_id = coalesce(s.subscriber_id, a.subscriber_id)
     FROM UNNEST($1::bytea[], $2::uuid[], $3::timestamptz[]) AS a(address_key, subscriber_id, at)
     WHERE s.address_key = a.address_key";

const COUNT_BUDGETS: &str = "INSERT INTO signup_budgets (scope, key, window_start, mails, refused)
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::timestamptz[], $4::bigint[], $5::bigint[])
     ON CONFLICT (scope, key, window_start) DO UPDATE
     SET mails = signup_budgets.mails + excluded.mails,
         refused = signup_budgets.refused + excluded.refused";

/// A batch in one transaction, with a few multi-row statements whatever its size: the
/// reads, then `signup_batch::decide`, then the writes.
#[async_trait]
impl SignupWriter for PgPool {
    #[tracing::instrument(skip_all, fields(batch = batch.len()))]
    async fn write(&self, batch: &[&SignupRequest]) -> anyhow::Result<Vec<SignupOutcome>> {
        let mut rows: Vec<(&str, String, DateTime<Utc>)> = batch
            .iter()
            .flat_map(|req| budget_rows(&req.budget_keys))
            .map(|(scope, key, window)| (scope.as_str(), key, window))
            .collect();
        rows.sort();
        rows.dedup();
        let (scopes, keys, windows) = columns3(&rows);
        sqlx::query(ENSURE_BUDGETS)
            .bind(&scopes)
            .bind(&keys)
            .bind(&windows)
            .execute(self)
            .await
            .context("Failed to make the sign-up budgets")?;
        // Another writer (another instance, an import) may add one of the batch's new
        // people between our reads and our insert: then the batch is tried again, and
        // finds them.
        for _ in 0..3 {
            let mut tx = self
                .begin()
                .await
                .context("Failed to begin the sign-up transaction")?;
            let found = find(&mut tx, batch, (&scopes, &keys, &windows)).await?;
            let decided = decide(batch, found);
            if add_people(&mut tx, &decided.new_people).await? {
                write_decided(&mut tx, &decided).await?;
                tx.commit().await.context("Failed to commit the sign-ups")?;
                return Ok(decided.outcomes);
            }
        }
        anyhow::bail!("Other writers kept adding this batch's new people")
    }
}

fn columns3<A: Clone, B: Clone, C: Clone>(rows: &[(A, B, C)]) -> (Vec<A>, Vec<B>, Vec<C>) {
    let mut columns = (Vec::new(), Vec::new(), Vec::new());
    for (a, b, c) in rows {
        columns.0.push(a.clone());
        columns.1.push(b.clone());
        columns.2.push(c.clone());
    }
    columns
}

/// What the database holds that the batch depends on, its rows locked.
async fn find(
    conn: &mut PgConnection,
    batch: &[&SignupRequest],
    (scopes, keys, windows): (&[&str], &[String], &[DateTime<Utc>]),
) -> anyhow::Result<Found> {
    let nonces: Vec<Vec<u8>> = batch.iter().map(|req| req.form_nonce.to_vec()).collect();
    let used_at: Vec<DateTime<Utc>> = batch.iter().map(|req| req.now).collect();
    let fresh: Vec<Vec<u8>> = sqlx::query_scalar(USE_FORM_TOKENS)
        .bind(&nonces)
        .bind(&used_at)
        .fetch_all(&mut *conn)
        .await
        .context("Failed to record the form tokens")?;
    let budgets: Vec<(String, String, DateTime<Utc>, i64)> = sqlx::query_as(LOCK_BUDGETS)
        .bind(scopes)
        .bind(keys)
        .bind(windows)
        .fetch_all(&mut *conn)
        .await
        .context("Failed to read the sign-up budgets")?;
    let address_keys: Vec<Vec<u8>> = batch
        .iter()
        .flat_map(|req| super::suppressions::key_list(&req.suppression_keys))
        .collect();
    let suppressions: Vec<(Vec<u8>, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT address_key, last_admitted_at FROM suppressions WHERE address_key = ANY($1)",
    )
    .bind(&address_keys)
    .fetch_all(&mut *conn)
    .await
    .context("Failed to check the suppression list")?;
    let email_keys: Vec<String> = batch.iter().map(|req| req.subscriber.email.key()).collect();
    let since = used_at.iter().min().copied().unwrap_or_else(Utc::now) - Duration::hours(24);
    let people: Vec<(Uuid, String, String, i64, i64)> = sqlx::query_as(LOCK_PEOPLE)
        .bind(&email_keys)
        .bind(since)
        .bind(batch.first().map(|req| req.reminder.kind.as_str()))
        .fetch_all(&mut *conn)
        .await
        .context("Failed to read the subscribers")?;
    let ids: Vec<Uuid> = people.iter().map(|p| p.0).collect();
    let mut statuses: HashMap<Uuid, Vec<(Uuid, String)>> = HashMap::new();
    if !ids.is_empty() {
        let rows: Vec<(Uuid, Uuid, String)> = sqlx::query_as(
            "SELECT subscriber_id, list_id, status FROM subscriptions WHERE subscriber_id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await
        .context("Failed to read the subscriptions")?;
        for (subscriber, list, status) in rows {
            statuses.entry(subscriber).or_default().push((list, status));
        }
    }

    let mut found = Found {
        fresh_nonces: fresh
            .into_iter()
            .filter_map(|n| n.try_into().ok())
            .collect(),
        suppressions: suppressions.into_iter().collect(),
        ..Found::default()
    };
    for (scope, key, window, mails) in budgets {
        let scope = BudgetScope::parse(&scope).context("An unknown budget scope")?;
        found.budgets.insert((scope, key, window), mails);
    }
    for (id, email, email_key, recent, reminders) in people {
        let statuses = statuses.remove(&id).unwrap_or_default();
        let confirmed_anywhere = statuses.iter().any(|(_, status)| status == "confirmed");
        let known = KnownSubscriber::new(id, statuses, confirmed_anywhere, recent)?;
        found.people.insert(
            email_key,
            Person {
                email,
                known,
                reminders,
            },
        );
    }
    Ok(found)
}

/// Adds the batch's new people; false if another writer added one of them meanwhile.
async fn add_people(conn: &mut PgConnection, people: &[&SignupRequest]) -> anyhow::Result<bool> {
    if people.is_empty() {
        return Ok(true);
    }
    let ids: Vec<Uuid> = people.iter().map(|req| req.new_subscriber_id).collect();
    let emails: Vec<&str> = people.iter().map(|r| r.subscriber.email.as_str()).collect();
    let (names, organisations, localities) = details(people.iter().copied());
    let at: Vec<DateTime<Utc>> = people.iter().map(|req| req.now).collect();
    let added = sqlx::query(ADD_PEOPLE)
        .bind(&ids)
        .bind(&emails)
        .bind(&names)
        .bind(&organisations)
        .bind(&localities)
        .bind(&at)
        .execute(&mut *conn)
        .await
        .context("Failed to store the subscribers")?;
    Ok(added.rows_affected() == people.len() as u64)
}

/// The name, organisation and locality typed, as three columns.
fn details<'a>(
    requests: impl Iterator<Item = &'a SignupRequest>,
) -> (
    Vec<&'a str>,
    Vec<Option<&'a str>>,
    Vec<Option<&'static str>>,
) {
    let mut columns = (Vec::new(), Vec::new(), Vec::new());
    for req in requests {
        let person = &req.subscriber;
        columns.0.push(person.name.as_str());
        columns
            .1
            .push(person.organisation.as_ref().map(|o| o.as_str()));
        columns.2.push(person.locality.map(|l| l.slug()));
    }
    columns
}

/// Everything else the batch writes, one statement for each kind of row.
async fn write_decided(conn: &mut PgConnection, decided: &Decided<'_>) -> anyhow::Result<()> {
    if !decided.details.is_empty() {
        let ids: Vec<Uuid> = decided.details.iter().map(|(id, _)| *id).collect();
        let (names, organisations, localities) = details(decided.details.iter().map(|d| d.1));
        let at: Vec<DateTime<Utc>> = decided.details.iter().map(|(_, req)| req.now).collect();
        sqlx::query(UPDATE_DETAILS)
            .bind(&ids)
            .bind(&names)
            .bind(&organisations)
            .bind(&localities)
            .bind(&at)
            .execute(&mut *conn)
            .await
            .context("Failed to keep the details typed")?;
    }
    if !decided.invited.is_empty() {
        let mut c = InviteColumns::default();
        for invited in &decided.invited {
            let req = invited.req;
            for list in &invited.lists {
                c.subscribers.push(invited.subscriber);
                c.lists.push(*list);
                c.tokens.push(req.invitation.token_hash.to_vec());
                c.at.push(req.now);
                c.expires.push(req.invitation.token_expires_at);
                c.events.push(Uuid::now_v7());
                c.methods.push(req.consent.method.as_str());
                c.ips.push(req.consent.ip.as_deref());
                c.user_agents.push(req.consent.user_agent.as_deref());
                c.wording_versions.push(req.wording_version.as_str());
                c.wording_hashes.push(req.wording_hash.as_str());
            }
        }
        sqlx::query(INVITE)
            .bind(&c.subscribers)
            .bind(&c.lists)
            .bind(&c.tokens)
            .bind(&c.at)
            .bind(&c.expires)
            .bind(&c.events)
            .bind(&c.methods)
            .bind(&c.ips)
            .bind(&c.user_agents)
            .bind(&c.wording_versions)
            .bind(&c.wording_hashes)
            .execute(&mut *conn)
            .await
            .context("Failed to store the subscriptions, tokens and consent events")?;
    }
    if !decided.mails.is_empty() {
        let mails = &decided.mails;
        sqlx::query(QUEUE_MAILS)
            .bind(mails.iter().map(|m| m.mail.id).collect::<Vec<_>>())
            .bind(
                mails
                    .iter()
                    .map(|m| m.mail.kind.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                mails
                    .iter()
                    .map(|m| m.recipient.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(mails.iter().map(|m| m.subscriber).collect::<Vec<_>>())
            .bind(
                mails
                    .iter()
                    .map(|m| m.mail.payload.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(mails.iter().map(|m| m.at).collect::<Vec<_>>())
            .bind(mails.iter().map(|m| m.past_suppression).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await
            .context("Failed to queue the sign-up mails")?;
    }
    if !decided.admitted.is_empty() {
        let (keys, subscribers, at) = columns3(&decided.admitted);
        sqlx::query(ADMITTED)
            .bind(&keys)
            .bind(&subscribers)
            .bind(&at)
            .execute(&mut *conn)
            .await
            .context("Failed to record mails past the suppression list")?;
    }
    if !decided.budgets.is_empty() {
        let mut c = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for ((scope, key, window), (mails, refused)) in &decided.budgets {
            c.0.push(scope.as_str());
            c.1.push(key.as_str());
            c.2.push(*window);
            c.3.push(*mails);
            c.4.push(*refused);
        }
        sqlx::query(COUNT_BUDGETS)
            .bind(&c.0)
            .bind(&c.1)
            .bind(&c.2)
            .bind(&c.3)
            .bind(&c.4)
            .execute(&mut *conn)
            .await
            .context("Failed to count the sign-ups against their budgets")?;
    }
    Ok(())
}

/// The columns of `INVITE`: one row for each list each invitation asks about.
#[derive(Default)]
struct InviteColumns<'a> {
    subscribers: Vec<Uuid>,
    lists: Vec<Uuid>,
    tokens: Vec<Vec<u8>>,
    at: Vec<DateTime<Utc>>,
    expires: Vec<DateTime<Utc>>,
    events: Vec<Uuid>,
    methods: Vec<&'static str>,
    ips: Vec<Option<&'a str>>,
    user_agents: Vec<Option<&'a str>>,
    wording_versions: Vec<&'a str>,
    wording_hashes: Vec<&'a str>,
}

#[async_trait]
impl SignupStore for PostgresStore {
    #[tracing::instrument(skip_all)]
    async fn record_signup(&self, req: &SignupRequest) -> anyhow::Result<SignupOutcome> {
        self.signups.record(req).await
    }

    async fn delete_expired_signups(
        &self,
        expired_before: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<u64> {
        // Never confirmed on any list, and no link left that works.
        const EXPIRED: &str = "EXISTS (SELECT 1 FROM subscriptions p WHERE p.subscriber_id = s.id)
             AND NOT EXISTS (SELECT 1 FROM subscriptions p
                             WHERE p.subscriber_id = s.id AND p.status <> 'pending')
             AND NOT EXISTS (SELECT 1 FROM confirmation_tokens t
                             WHERE t.subscriber_id = s.id AND t.expires_at >= $1)";
        let mut tx = self
            .pool
            .begin()
            .await
            .context("Failed to begin deleting expired sign-ups")?;
        // Lock them first, skipping any a sign-up holds; then check again in a new
        // statement, which sees every sign-up that committed before the locks were
        // taken (later ones wait for this transaction).
        let candidates: Vec<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT s.id FROM subscribers s WHERE {EXPIRED} FOR UPDATE OF s SKIP LOCKED"
        )))
        .bind(expired_before)
        .fetch_all(&mut *tx)
        .await
        .context("Failed to find the sign-ups never confirmed")?;
        let deleted = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM subscribers s WHERE s.id = ANY($2) AND {EXPIRED}"
        )))
        .bind(expired_before)
        .bind(&candidates)
        .execute(&mut *tx)
        .await
        .context("Failed to delete the sign-ups never confirmed")?;
        tx.commit()
            .await
            .context("Failed to commit deleting expired sign-ups")?;
        Ok(deleted.rows_affected())
    }

    async fn token_lists(&self, token_hash: &[u8; 32]) -> anyhow::Result<Vec<Uuid>> {
        sqlx::query_scalar(
            "SELECT list_id FROM confirmation_tokens WHERE token_hash = $1 ORDER BY list_id",
        )
        .bind(&token_hash[..])
        .fetch_all(&self.pool)
        .await
        .context("Failed to read a confirmation token's lists")
    }

    #[tracing::instrument(skip_all)]
    async fn confirm_subscription(&self, req: &ConfirmRequest) -> anyhow::Result<ConfirmOutcome> {
        let mut tx = self
            .pool
            .begin()
            .await
            .context("Failed to begin the confirmation transaction")?;
        let rows = sqlx::query(
            "SELECT t.subscriber_id, t.list_id, t.expires_at, t.used_at, sub.status
             FROM confirmation_tokens t
             JOIN subscriptions sub ON sub.subscriber_id = t.subscriber_id AND sub.list_id = t.list_id
             WHERE t.token_hash = $1
             ORDER BY t.list_id
             FOR UPDATE OF t, sub",
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
            let expires_at: DateTime<Utc> = row.try_get("expires_at")?;
            let used_at: Option<DateTime<Utc>> = row.try_get("used_at")?;
            let status = SubscriptionStatus::parse(row.try_get("status")?)?;
            let decided = confirmation(status, used_at.is_some(), expires_at <= req.now);
            outcomes.push(decided.outcome);
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
                .bind(req.now)
                .execute(&mut *tx)
                .await
                .context("Failed to mark the token used")?;
            }
        }
        if let Some(subscriber_id) = confirmed_now {
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
        tx.commit()
            .await
            .context("Failed to commit the confirmation")?;
        Ok(combined_outcome(outcomes))
    }
}
