//! The suppression list: looked up by any of an address's keys, added to and lifted
//! with a record of each change.

use std::collections::HashSet;

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::PostgresStore;
use crate::audience::suppression::{SuppressionReason, domain_of};
use crate::store::{
    NewSuppression, Removal, SuppressionChange, SuppressionPage, SuppressionStore, mapping,
};

/// Puts an address on the list (under `key`, the current key's hash) unless one of its
/// `keys` is there already; a complaint replaces a bounce, which confirming would lift.
/// Returns whether the list changed.
#[allow(clippy::too_many_arguments)]
pub(super) async fn suppress(
    conn: &mut PgConnection,
    keys: &[[u8; 32]],
    key: &[u8; 32],
    subscriber_id: Option<Uuid>,
    address: &str,
    reason: SuppressionReason,
    inbound_id: Option<Uuid>,
    by: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let existing = sqlx::query(
        "SELECT address_key, reason FROM suppressions
         WHERE address_key = ANY($1)",
    )
    .bind(key_list(keys))
    .fetch_optional(&mut *conn)
    .await
    .context("Failed to look up the suppression list")?;
    let changed = match existing {
        None => {
            sqlx::query(
                "INSERT INTO suppressions (address_key, subscriber_id, domain, reason, added_by,
                   inbound_id, created_at)
                 VALUES ($1, coalesce($2, (SELECT id FROM subscribers WHERE email_key = lower($3))),
                         $4, $5, $6, $7, $8)",
            )
            .bind(&key[..])
            .bind(subscriber_id)
            .bind(address)
            .bind(domain_of(address))
            .bind(reason.as_str())
            .bind(by)
            .bind(inbound_id)
            .bind(now)
            .execute(&mut *conn)
            .await
            .context("Failed to add to the suppression list")?;
            true
        }
        Some(row) => {
            let at: Vec<u8> = row.try_get("address_key")?;
            let was = SuppressionReason::parse(row.try_get("reason")?)?;
            let stronger =
                was == SuppressionReason::Bounce && reason == SuppressionReason::Complaint;
            sqlx::query(
                "UPDATE suppressions SET subscriber_id = coalesce(subscriber_id, $2),
                   reason = CASE WHEN $3 THEN $4 ELSE reason END,
                   inbound_id = CASE WHEN $3 THEN $5 ELSE inbound_id END
                 WHERE address_key = $1",
            )
            .bind(&at)
            .bind(subscriber_id)
            .bind(stronger)
            .bind(reason.as_str())
            .bind(inbound_id)
            .execute(&mut *conn)
            .await
            .context("Failed to update the suppression list")?;
            stronger
        }
    };
    if changed {
        record_change(conn, key, "added", reason.as_str(), by, None, now).await?;
    }
    Ok(changed)
}

async fn record_change(
    conn: &mut PgConnection,
    key: &[u8],
    change: &str,
    reason: &str,
    by: &str,
    note: Option<&str>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO suppression_changes (id, address_key, change, reason, changed_by, note, changed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(Uuid::now_v7())
    .bind(key)
    .bind(change)
    .bind(reason)
    .bind(by)
    .bind(note)
    .bind(now)
    .execute(&mut *conn)
    .await
    .context("Failed to record a change to the suppression list")?;
    Ok(())
}

/// Lifts the subscriber's suppressions that confirming lifts (a bounce, their having
/// left), recording each: they showed that their mailbox works, and that they want it.
pub(super) async fn lift_on_confirming(
    conn: &mut PgConnection,
    subscriber_id: Uuid,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let lifted: Vec<(Vec<u8>, String)> = sqlx::query_as(
        "DELETE FROM suppressions WHERE subscriber_id = $1 AND reason = ANY($2)
         RETURNING address_key, reason",
    )
    .bind(subscriber_id)
    .bind(SuppressionReason::lifted_by_confirming_names())
    .fetch_all(&mut *conn)
    .await
    .context("Failed to lift the suppressions confirming lifts")?;
    for (key, reason) in lifted {
        record_change(conn, &key, "lifted", &reason, "confirmation", None, now).await?;
    }
    Ok(())
}

/// Keys as the array `= ANY(...)` reads.
pub(super) fn key_list(keys: &[[u8; 32]]) -> Vec<Vec<u8>> {
    keys.iter().map(|k| k.to_vec()).collect()
}

#[async_trait]
impl SuppressionStore for PostgresStore {
    async fn suppressed(&self, keys: &[[u8; 32]]) -> anyhow::Result<HashSet<[u8; 32]>> {
        if keys.is_empty() {
            return Ok(HashSet::new());
        }
        let found: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT address_key FROM suppressions
             WHERE address_key = ANY($1)",
        )
        .bind(key_list(keys))
        .fetch_all(&self.pool)
        .await
        .context("Failed to check the suppression list")?;
        Ok(found
            .into_iter()
            .filter_map(|key| key.try_into().ok())
            .collect())
    }

    async fn add_suppressions(
        &self,
        entries: &[NewSuppression],
        change: &SuppressionChange,
    ) -> anyhow::Result<u64> {
        let mut tx = self
            .pool
            .begin()
            .await
            .context("Failed to begin adding to the suppression list")?;
        let mut added = 0;
        for entry in entries {
            let Some(key) = entry.keys.first() else {
                continue;
            };
            let changed = suppress(
                &mut tx,
                &entry.keys,
                key,
                None,
                &entry.address,
                entry.reason,
                None,
                &change.by,
                change.now,
            )
            .await?;
            if changed {
                added += 1;
                if let Some(note) = &entry.note {
                    sqlx::query("UPDATE suppressions SET note = $2 WHERE address_key = $1")
                        .bind(&key[..])
                        .bind(note)
                        .execute(&mut *tx)
                        .await
                        .context("Failed to note a suppression")?;
                }
            }
        }
        tx.commit()
            .await
            .context("Failed to commit adding to the suppression list")?;
        Ok(added)
    }

    async fn lift_suppression(
        &self,
        keys: &[[u8; 32]],
        note: Option<&str>,
        change: &SuppressionChange,
    ) -> anyhow::Result<Removal> {
        let mut tx = self
            .pool
            .begin()
            .await
            .context("Failed to begin lifting a suppression")?;
        let lifted: Option<(Vec<u8>, String)> = sqlx::query_as(
            "DELETE FROM suppressions WHERE address_key = ANY($1)
             RETURNING address_key, reason",
        )
        .bind(key_list(keys))
        .fetch_optional(&mut *tx)
        .await
        .context("Failed to lift a suppression")?;
        let Some((key, reason)) = lifted else {
            return Ok(Removal::NotFound);
        };
        record_change(
            &mut tx, &key, "lifted", &reason, &change.by, note, change.now,
        )
        .await?;
        tx.commit()
            .await
            .context("Failed to commit lifting a suppression")?;
        Ok(Removal::Removed)
    }

    async fn suppressions(
        &self,
        only: Option<&[[u8; 32]]>,
        offset: u32,
        limit: u32,
    ) -> anyhow::Result<SuppressionPage> {
        let only = only.map(key_list);
        let matching = "FROM suppressions p LEFT JOIN subscribers s ON s.id = p.subscriber_id
             WHERE $1::bytea[] IS NULL OR p.address_key = ANY($1)";
        // Only our own constant text is joined here.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT p.address_key, p.subscriber_id, s.email, p.domain, p.reason, p.added_by,
                    p.note, p.inbound_id, p.created_at
             {matching} ORDER BY p.created_at DESC, p.address_key LIMIT $2 OFFSET $3"
        )))
        .bind(only.as_ref())
        .bind(i64::from(limit))
        .bind(i64::from(offset))
        .fetch_all(&self.pool)
        .await
        .context("Failed to list the suppression list")?;
        let total: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) {matching}")))
                .bind(only.as_ref())
                .fetch_one(&self.pool)
                .await
                .context("Failed to count the suppression list")?;
        Ok(SuppressionPage {
            entries: rows
                .iter()
                .map(mapping::suppression_entry)
                .collect::<anyhow::Result<_>>()?,
            total,
        })
    }
}
