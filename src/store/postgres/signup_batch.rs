//! Sign-ups written in batches (`SignupQueue`): each batch in one transaction of four
//! round trips whatever its size (`BEGIN` with its lock, the read, the write, `COMMIT`),
//! with `store::signup_batch::decide` between the read and the write. Few round trips matter more than anything here: on a busy machine
//! each one waits for a turn on a core.

use crate::audience::budgets::BudgetScope;
use crate::audience::subscription::SignupOutcome;
use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use sqlx::{PgConnection, PgPool};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

use crate::store::signup_batch::{BudgetRow, Decided, Found, Person, budget_rows, decide};
use crate::store::signups::SignupWriter;
use crate::store::{KnownSubscriber, SignupRequest};

/// Makes the budget rows exist, outside the transaction, so that the transaction only
/// locks rows (inserting them there could deadlock two instances' batches). Sorted,
/// so two of these statements take the rows in one order too.
const ENSURE_BUDGETS: &str = "INSERT INTO signup_budgets (scope, key, window_start)
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::timestamptz[])
     ON CONFLICT DO NOTHING";

/// Each batch's transaction starts with this, in one round trip: a lock that every
/// instance's batches take in turn, so that the statement after it, which reads the
/// database as it was when the statement began, sees every batch committed before.
const BEGIN: &str = "BEGIN; SELECT pg_advisory_xact_lock(hashtext('signup_batches'))";

/// Everything a batch reads, in one statement, once it holds `BEGIN`'s lock: it marks
/// the form tokens used (sorted, and returns those no one used before), locks the
/// budget rows and the people already known by these address keys (each in one order,
/// against the other writers: imports, staff, the preference page's budget); with the
/// suppression entries and, for
/// each person, their subscriptions and the confirmation and "already subscribed"
/// mails they were sent since `$9`. One row per thing found, `part` saying which.
const READ: &str = "WITH used AS (
       INSERT INTO used_form_tokens (nonce, used_at)
       SELECT * FROM UNNEST($1::bytea[], $2::timestamptz[])
       ON CONFLICT DO NOTHING
       RETURNING nonce
     ), budgets AS (
       SELECT b.scope, b.key, b.window_start, b.mails
       FROM signup_budgets b
       JOIN UNNEST($3::text[], $4::text[], $5::timestamptz[]) AS w(scope, key, window_start)
         USING (scope, key, window_start)
       ORDER BY b.scope, b.key, b.window_start
       FOR UPDATE OF b
     ), people AS (
       SELECT s.id, s.email, s.email_key,
         (SELECT count(DISTINCT t.token_hash) FROM confirmation_tokens t
          WHERE t.subscriber_id = s.id AND t.created_at > $9) AS recent,
         (SELECT count(*) FROM outbox o
          WHERE o.subscriber_id = s.id AND o.kind = $8 AND o.created_at > $9) AS reminders
       FROM subscribers s
       WHERE s.email_key = ANY($7)
       ORDER BY s.id
       FOR UPDATE OF s
     )
     SELECT 'nonce' AS part, NULL::uuid AS id, NULL::uuid AS list, NULL::text AS a,
            NULL::text AS b, NULL::timestamptz AS at, NULL::bigint AS n, NULL::bigint AS m,
            nonce AS bytes
     FROM used
     UNION ALL
     SELECT 'budget', NULL, NULL, scope, key, window_start, mails, NULL, NULL FROM budgets
     UNION ALL
     SELECT 'suppression', NULL, NULL, NULL, NULL, last_admitted_at, NULL, NULL, address_key
     FROM suppressions WHERE address_key = ANY($6)
     UNION ALL
     SELECT 'person', id, NULL, email, email_key, NULL, recent, reminders, NULL FROM people
     UNION ALL
     SELECT 'subscription', c.subscriber_id, c.list_id, c.status, NULL, NULL, NULL, NULL, NULL
     FROM subscriptions c JOIN people p ON p.id = c.subscriber_id";

/// Everything a batch writes, in one statement: the new people (as the first of their
/// sign-ups typed them, with the details of the last), the details typed for people
/// already known, and for each list an invitation asks about a pending subscription
/// where it is new, a token row and a consent event; the mails; the suppression
/// entries a mail goes past; and the budgets' counts. A new person that another
/// writer added meanwhile is not added (and the rows naming them then fail their
/// foreign key: the batch is tried again).
const WRITE: &str = "WITH added AS (
       INSERT INTO subscribers (id, email, name, organisation, locality, created_at, updated_at)
       SELECT id, email, name, organisation, locality, at, at
       FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])
         AS n(id, email, name, organisation, locality, at)
       ON CONFLICT (email_key) DO NOTHING
       RETURNING id
     ), details AS (
       UPDATE subscribers s
       SET name = d.name, organisation = d.organisation, locality = d.locality, updated_at = d.at
       FROM UNNEST($7::uuid[], $8::text[], $9::text[], $10::text[], $11::timestamptz[])
         AS d(id, name, organisation, locality, at)
       WHERE s.id = d.id
     ), chosen AS (
       SELECT * FROM UNNEST($12::uuid[], $13::uuid[], $14::bytea[], $15::timestamptz[],
                            $16::timestamptz[], $17::uuid[], $18::text[], $19::text[],
                            $20::text[], $21::text[], $22::text[])
         AS c(subscriber_id, list_id, token_hash, at, expires_at, event_id, method, ip,
              user_agent, wording_version, wording_hash)
     ), subscription AS (
       INSERT INTO subscriptions (subscriber_id, list_id, status, created_at, updated_at)
       SELECT subscriber_id, list_id, 'pending', at, at FROM chosen
       ON CONFLICT (subscriber_id, list_id) DO NOTHING
     ), token AS (
       INSERT INTO confirmation_tokens (token_hash, subscriber_id, list_id, created_at, expires_at)
       SELECT token_hash, subscriber_id, list_id, at, expires_at FROM chosen
     ), consent AS (
       INSERT INTO consent_events
         (id, subscriber_id, list_id, kind, method, occurred_at, ip, user_agent, wording_version,
          wording_hash)
       SELECT event_id, subscriber_id, list_id, 'signup', method, at, ip, user_agent,
              wording_version, wording_hash
       FROM chosen
     ), mail AS (
       INSERT INTO outbox
         (id, kind, recipient, subscriber_id, payload, next_attempt_at, created_at, past_suppression)
       SELECT id, kind, recipient, subscriber_id, payload, at, at, past_suppression
       FROM UNNEST($23::uuid[], $24::text[], $25::text[], $26::uuid[], $27::text[],
                   $28::timestamptz[], $29::bool[])
         AS m(id, kind, recipient, subscriber_id, payload, at, past_suppression)
     ), admitted AS (
       UPDATE suppressions s
       SET last_admitted_at = a.at, subscriber_id = coalesce(s.subscriber_id, a.subscriber_id)
       FROM UNNEST($30::bytea[], $31::uuid[], $32::timestamptz[]) AS a(address_key, subscriber_id, at)
       WHERE s.address_key = a.address_key
     ), budget AS (
       INSERT INTO signup_budgets (scope, key, window_start, mails, refused)
       SELECT * FROM UNNEST($33::text[], $34::text[], $35::timestamptz[], $36::bigint[],
                            $37::bigint[])
       ON CONFLICT (scope, key, window_start) DO UPDATE
       SET mails = signup_budgets.mails + excluded.mails,
           refused = signup_budgets.refused + excluded.refused
     )
     SELECT count(*) FROM added";

/// Writes batches of sign-ups, on a connection of its own.
pub(super) struct SignupBatches {
    pool: PgPool,
    /// The budget rows made this hour, so that `ENSURE_BUDGETS` runs only for new ones.
    made: std::sync::Mutex<HashSet<BudgetRow>>,
}

impl SignupBatches {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            made: Default::default(),
        }
    }

    /// Makes the batch's budget rows exist; those made before this hour are known.
    async fn ensure_budgets(&self, batch: &[&SignupRequest]) -> anyhow::Result<()> {
        let mut rows: Vec<BudgetRow> = {
            let made = self.made.lock().expect("not poisoned");
            batch
                .iter()
                .flat_map(|req| budget_rows(&req.budget_keys))
                .filter(|row| !made.contains(row))
                .collect()
        };
        if rows.is_empty() {
            return Ok(());
        }
        rows.sort_by(|a, b| (a.0.as_str(), &a.1, a.2).cmp(&(b.0.as_str(), &b.1, b.2)));
        rows.dedup();
        sqlx::query(ENSURE_BUDGETS)
            .bind(rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.1.as_str()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.2).collect::<Vec<_>>())
            .execute(&self.pool)
            .await
            .context("Failed to make the sign-up budgets")?;
        let mut made = self.made.lock().expect("not poisoned");
        let hour = rows.iter().map(|r| r.2).max();
        made.retain(|row| Some(row.2) >= hour);
        made.extend(rows);
        Ok(())
    }
}

#[async_trait]
impl SignupWriter for SignupBatches {
    /// A batch's writes go to the server in one message of about 700 bytes a sign-up.
    /// sqlx 0.9.0 leaves Nagle's algorithm on (its TCP_NODELAY fix is not released),
    /// and a message the kernel takes in two writes then waits for the server's
    /// delayed acknowledgement, 40 ms; 16 sign-ups stay within one write.
    const MOST: usize = 16;

    #[tracing::instrument(skip_all, fields(batch = batch.len()))]
    async fn write(&self, batch: &[&SignupRequest]) -> anyhow::Result<Vec<SignupOutcome>> {
        self.ensure_budgets(batch).await?;
        // Another writer (an import, staff adding someone) may add one of the batch's
        // new people between its reads and its writes, or deadlock with it: then the
        // batch is tried again, and finds them.
        for attempt in 1..=3 {
            match self.try_once(batch).await {
                Ok(Some(outcomes)) => return Ok(outcomes),
                Ok(None) => tracing::info!(attempt, "A new person was added meanwhile"),
                Err(err) if attempt < 3 && worth_again(&err) => {
                    tracing::warn!(attempt, error = format!("{err:#}"), "Sign-ups tried again");
                }
                Err(err) => return Err(err),
            }
        }
        anyhow::bail!("The sign-ups met other writers three times")
    }
}

impl SignupBatches {
    /// The batch in one transaction; `None` if another writer added one of its new
    /// people meanwhile (nothing of it is kept).
    async fn try_once(
        &self,
        batch: &[&SignupRequest],
    ) -> anyhow::Result<Option<Vec<SignupOutcome>>> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .context("Failed to reach PostgreSQL for the sign-ups")?;
        // Whatever fails, the transaction is ended before the connection goes back
        // (a lock that timed out leaves it open and aborted).
        let written = async {
            sqlx::raw_sql(BEGIN)
                .execute(&mut *conn)
                .await
                .context("Failed to begin the sign-up transaction")?;
            let decided = decide(batch, read(&mut conn, batch).await?);
            Ok::<_, anyhow::Error>(
                write(&mut conn, &decided)
                    .await?
                    .then_some(decided.outcomes),
            )
        }
        .await;
        let end = match &written {
            Ok(Some(_)) => "COMMIT",
            _ => "ROLLBACK",
        };
        if let Err(err) = sqlx::raw_sql(end).execute(&mut *conn).await {
            // Never back in the pool half-way through a transaction.
            conn.close_on_drop();
            return Err(err).context("Failed to end the sign-up transaction");
        }
        written
    }
}

/// A deadlock or a serialization failure: the transaction is undone, and may work if
/// tried again.
fn worth_again(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<sqlx::Error>()
            .and_then(|e| e.as_database_error())
            .and_then(|e| e.code())
            .is_some_and(|code| code == "40P01" || code == "40001")
    })
}

/// One row of `READ`: (part, id, list, a, b, at, n, m, bytes).
type Part = (
    String,
    Option<Uuid>,
    Option<Uuid>,
    Option<String>,
    Option<String>,
    Option<DateTime<Utc>>,
    Option<i64>,
    Option<i64>,
    Option<Vec<u8>>,
);

/// What the database holds that the batch depends on, its rows locked.
async fn read(conn: &mut PgConnection, batch: &[&SignupRequest]) -> anyhow::Result<Found> {
    let mut nonces: Vec<(Vec<u8>, DateTime<Utc>)> = batch
        .iter()
        .map(|req| (req.form_nonce.to_vec(), req.now))
        .collect();
    nonces.sort();
    nonces.dedup_by(|a, b| a.0 == b.0);
    let rows: Vec<BudgetRow> = batch
        .iter()
        .flat_map(|req| budget_rows(&req.budget_keys))
        .collect();
    let since = batch
        .iter()
        .map(|req| req.now)
        .min()
        .unwrap_or_else(Utc::now)
        - Duration::hours(24);
    let parts: Vec<Part> = sqlx::query_as(READ)
        .bind(nonces.iter().map(|n| n.0.as_slice()).collect::<Vec<_>>())
        .bind(nonces.iter().map(|n| n.1).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.1.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.2).collect::<Vec<_>>())
        .bind(
            batch
                .iter()
                .flat_map(|req| super::suppressions::key_list(&req.suppression_keys))
                .collect::<Vec<_>>(),
        )
        .bind(
            batch
                .iter()
                .map(|req| req.subscriber.email.key())
                .collect::<Vec<_>>(),
        )
        .bind(batch.first().map(|req| req.reminder.kind.as_str()))
        .bind(since)
        .fetch_all(&mut *conn)
        .await
        .context("Failed to read what the sign-ups depend on")?;

    let mut found = Found::default();
    let mut people = Vec::new();
    let mut statuses: HashMap<Uuid, Vec<(Uuid, String)>> = HashMap::new();
    let missing = || anyhow::anyhow!("A sign-up read without a value it needs");
    for (part, id, list, a, b, at, n, m, bytes) in parts {
        match part.as_str() {
            "nonce" => {
                if let Ok(nonce) = bytes.ok_or_else(missing)?.try_into() {
                    found.fresh_nonces.insert(nonce);
                }
            }
            "budget" => {
                let scope = BudgetScope::parse(&a.ok_or_else(missing)?)
                    .context("An unknown budget scope")?;
                let row = (scope, b.ok_or_else(missing)?, at.ok_or_else(missing)?);
                found.budgets.insert(row, n.ok_or_else(missing)?);
            }
            "person" => people.push((id.ok_or_else(missing)?, a, b, n, m)),
            "suppression" => {
                found.suppressions.insert(bytes.ok_or_else(missing)?, at);
            }
            "subscription" => statuses
                .entry(id.ok_or_else(missing)?)
                .or_default()
                .push((list.ok_or_else(missing)?, a.ok_or_else(missing)?)),
            other => anyhow::bail!("An unknown part of a sign-up read: {other}"),
        }
    }
    for (id, email, email_key, recent, reminders) in people {
        let statuses = statuses.remove(&id).unwrap_or_default();
        let confirmed_anywhere = statuses.iter().any(|(_, status)| status == "confirmed");
        let person = Person {
            email: email.ok_or_else(missing)?,
            known: KnownSubscriber::new(
                id,
                statuses,
                confirmed_anywhere,
                recent.ok_or_else(missing)?,
            )?,
            reminders: reminders.ok_or_else(missing)?,
            added: None,
        };
        found.people.insert(email_key.ok_or_else(missing)?, person);
    }
    Ok(found)
}

/// Writes what the batch decided; false if another writer added one of its new
/// people meanwhile (the transaction is then of no use).
async fn write(conn: &mut PgConnection, decided: &Decided<'_>) -> anyhow::Result<bool> {
    let added = &decided.new_people;
    let (names, organisations, localities) = details(added.iter().map(|p| p.details));
    let (detail_names, detail_organisations, detail_localities) =
        details(decided.details.iter().map(|d| d.1));
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
    let mails = &decided.mails;
    let admitted = &decided.admitted;
    let budgets: Vec<(&BudgetRow, &(i64, i64))> = decided.budgets.iter().collect();
    let written = sqlx::query_scalar::<_, i64>(WRITE)
        .bind(
            added
                .iter()
                .map(|p| p.first.new_subscriber_id)
                .collect::<Vec<_>>(),
        )
        .bind(
            added
                .iter()
                .map(|p| p.first.subscriber.email.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(&names)
        .bind(&organisations)
        .bind(&localities)
        .bind(added.iter().map(|p| p.first.now).collect::<Vec<_>>())
        .bind(decided.details.iter().map(|d| d.0).collect::<Vec<_>>())
        .bind(&detail_names)
        .bind(&detail_organisations)
        .bind(&detail_localities)
        .bind(decided.details.iter().map(|d| d.1.now).collect::<Vec<_>>())
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
        .bind(admitted.iter().map(|a| a.0.as_slice()).collect::<Vec<_>>())
        .bind(admitted.iter().map(|a| a.1).collect::<Vec<_>>())
        .bind(admitted.iter().map(|a| a.2).collect::<Vec<_>>())
        .bind(
            budgets
                .iter()
                .map(|(r, _)| r.0.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            budgets
                .iter()
                .map(|(r, _)| r.1.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(budgets.iter().map(|(r, _)| r.2).collect::<Vec<_>>())
        .bind(budgets.iter().map(|(_, n)| n.0).collect::<Vec<_>>())
        .bind(budgets.iter().map(|(_, n)| n.1).collect::<Vec<_>>())
        .fetch_one(&mut *conn)
        .await;
    match written {
        Ok(count) => Ok(count == added.len() as i64),
        Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => Ok(false),
        Err(e) => Err(e).context("Failed to store the sign-ups"),
    }
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

/// The columns of `WRITE`'s `chosen`: one row for each list each invitation asks about.
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
