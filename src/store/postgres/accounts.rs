//! Staff looking after their own accounts: mailed links, passwords, two-factor.

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::PostgresStore;
use crate::staff::{Role, StaffUser};
use crate::store::{
    AccountStore, Creation, LinkQueued, NewStaffLink, PendingInvitation, Removal, StaffLink,
    TwoFactor,
};

type Time = DateTime<Utc>;

fn db_time(at: DateTime<Utc>) -> Time {
    at
}

fn time(at: Time) -> DateTime<Utc> {
    at
}

#[async_trait]
impl AccountStore for PostgresStore {
    #[tracing::instrument(skip_all)]
    async fn create_staff_link(&self, link: &NewStaffLink) -> anyhow::Result<LinkQueued> {
        let mut tx = self
            .pool
            .begin()
            .await
            .context("Failed to begin making a staff link")?;
        // One request for an address at a time, so parallel ones cannot all find the
        // hour's count under its cap.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(&link.email)
            .execute(&mut *tx)
            .await
            .context("Failed to wait for the address's other link requests")?;
        let account: Option<Uuid> =
            sqlx::query_scalar("SELECT id FROM staff_users WHERE email = $1")
                .bind(&link.email)
                .fetch_optional(&mut *tx)
                .await
                .context("Failed to look up a staff address")?;
        let recent: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM staff_links WHERE email = $1 AND purpose = $2 AND created_at > $3",
        )
        .bind(&link.email)
        .bind(link.purpose.as_str())
        .bind(db_time(link.now - chrono::Duration::hours(1)))
        .fetch_one(&mut *tx)
        .await
        .context("Failed to count a staff address's links")?;
        let outcome = LinkQueued::decide(link, account.is_some(), recent);
        if outcome != LinkQueued::Queued {
            return Ok(outcome);
        }
        sqlx::query(
            "INSERT INTO staff_links
               (token_hash, purpose, email, role, user_id, created_by, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&link.token_hash[..])
        .bind(link.purpose.as_str())
        .bind(&link.email)
        .bind(link.role.map(Role::as_str))
        .bind(account)
        .bind(link.created_by)
        .bind(db_time(link.now))
        .bind(db_time(link.expires_at))
        .execute(&mut *tx)
        .await
        .context("Failed to store a staff link")?;
        sqlx::query(
            "INSERT INTO outbox (id, kind, recipient, payload, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(link.mail.id)
        .bind(&link.mail.kind)
        .bind(&link.email)
        .bind(&link.mail.payload)
        .bind(db_time(link.now))
        .execute(&mut *tx)
        .await
        .context("Failed to queue a staff link's mail")?;
        tx.commit().await.context("Failed to commit a staff link")?;
        Ok(LinkQueued::Queued)
    }

    async fn staff_link(
        &self,
        token_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<StaffLink>> {
        let row: Option<(String, String, Option<String>, Option<Uuid>)> = sqlx::query_as(
            "SELECT purpose, email, role, user_id FROM staff_links
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(&token_hash[..])
        .bind(db_time(now))
        .fetch_optional(&self.pool)
        .await
        .context("Failed to look up a staff link")?;
        row.map(StaffLink::from_row).transpose()
    }

    #[tracing::instrument(skip_all)]
    async fn accept_invitation(
        &self,
        token_hash: &[u8; 32],
        user: &StaffUser,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Creation> {
        let mut tx = self
            .pool
            .begin()
            .await
            .context("Failed to begin accepting an invitation")?;
        let used = sqlx::query(
            "UPDATE staff_links SET used_at = $2
             WHERE token_hash = $1 AND purpose = 'invite' AND used_at IS NULL AND expires_at > $2",
        )
        .bind(&token_hash[..])
        .bind(db_time(now))
        .execute(&mut *tx)
        .await
        .context("Failed to use an invitation")?;
        if used.rows_affected() == 0 {
            return Ok(Creation::Taken);
        }
        let inserted = sqlx::query(
            "INSERT INTO staff_users (id, email, password_hash, role, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(user.id)
        .bind(&user.email)
        .bind(password_hash)
        .bind(user.role.as_str())
        .bind(db_time(now))
        .execute(&mut *tx)
        .await;
        if crate::store::creation(inserted, "Failed to store the invited staff user")?
            == Creation::Taken
        {
            return Ok(Creation::Taken);
        }
        // The address's other links die with this one: a second invitation must not
        // make the account again once it is removed.
        sqlx::query("UPDATE staff_links SET used_at = $2 WHERE email = $1 AND used_at IS NULL")
            .bind(&user.email)
            .bind(db_time(now))
            .execute(&mut *tx)
            .await
            .context("Failed to close the address's other links")?;
        tx.commit()
            .await
            .context("Failed to commit accepting an invitation")?;
        Ok(Creation::Created)
    }

    #[tracing::instrument(skip_all)]
    async fn reset_password(
        &self,
        token_hash: &[u8; 32],
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Removal> {
        let mut tx = self
            .pool
            .begin()
            .await
            .context("Failed to begin a password reset")?;
        let user: Option<Uuid> = sqlx::query_scalar(
            "UPDATE staff_links SET used_at = $2
             WHERE token_hash = $1 AND purpose = 'reset' AND used_at IS NULL AND expires_at > $2
             RETURNING user_id",
        )
        .bind(&token_hash[..])
        .bind(db_time(now))
        .fetch_optional(&mut *tx)
        .await
        .context("Failed to use a reset link")?
        .flatten();
        let Some(user) = user else {
            return Ok(Removal::NotFound);
        };
        set_password(&mut tx, user, password_hash, None, now).await?;
        tx.commit()
            .await
            .context("Failed to commit a password reset")?;
        Ok(Removal::Removed)
    }

    async fn pending_invitations(
        &self,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<PendingInvitation>> {
        let rows: Vec<(String, String, Time)> = sqlx::query_as(
            "SELECT email, role, expires_at FROM staff_links
             WHERE purpose = 'invite' AND used_at IS NULL AND expires_at > $1
               AND email NOT IN (SELECT email FROM staff_users)
             ORDER BY created_at DESC",
        )
        .bind(db_time(now))
        .fetch_all(&self.pool)
        .await
        .context("Failed to list the invitations")?;
        rows.into_iter()
            .map(|(email, role, expires)| {
                Ok(PendingInvitation {
                    email,
                    role: Role::parse(&role)?,
                    expires_at: time(expires),
                })
            })
            .collect()
    }

    async fn password_hash(&self, user_id: Uuid) -> anyhow::Result<Option<String>> {
        sqlx::query_scalar("SELECT password_hash FROM staff_users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await
            .context("Failed to read a password hash")
    }

    #[tracing::instrument(skip_all)]
    async fn change_password(
        &self,
        user_id: Uuid,
        password_hash: &str,
        keep_session: &[u8; 32],
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let mut tx = self
            .pool
            .begin()
            .await
            .context("Failed to begin a password change")?;
        set_password(&mut tx, user_id, password_hash, Some(keep_session), now).await?;
        tx.commit()
            .await
            .context("Failed to commit a password change")
    }

    async fn two_factor(&self, user_id: Uuid) -> anyhow::Result<Option<TwoFactor>> {
        let row: Option<(Option<Vec<u8>>, Option<i64>, i64)> = sqlx::query_as(
            "SELECT two_factor_secret, two_factor_step,
               (SELECT count(*) FROM staff_recovery_codes c WHERE c.user_id = u.id AND c.used_at IS NULL)
             FROM staff_users u WHERE id = $1",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await
        .context("Failed to read a two-factor secret")?;
        Ok(row.and_then(|(secret, last_step, left)| {
            Some(TwoFactor {
                sealed_secret: secret?,
                last_step,
                recovery_codes_left: left,
            })
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn enable_two_factor(
        &self,
        user_id: Uuid,
        sealed_secret: &[u8],
        step: i64,
        recovery_hashes: &[[u8; 32]],
    ) -> anyhow::Result<()> {
        let mut tx = self
            .pool
            .begin()
            .await
            .context("Failed to begin turning on two-factor sign-in")?;
        sqlx::query(
            "UPDATE staff_users SET two_factor_secret = $2, two_factor_step = $3 WHERE id = $1",
        )
        .bind(user_id)
        .bind(sealed_secret)
        .bind(step)
        .execute(&mut *tx)
        .await
        .context("Failed to store a two-factor secret")?;
        store_recovery_codes(&mut tx, user_id, recovery_hashes).await?;
        tx.commit()
            .await
            .context("Failed to commit turning on two-factor sign-in")
    }

    async fn disable_two_factor(&self, user_id: Uuid) -> anyhow::Result<()> {
        let mut tx = self
            .pool
            .begin()
            .await
            .context("Failed to begin turning off two-factor sign-in")?;
        sqlx::query(
            "UPDATE staff_users SET two_factor_secret = NULL, two_factor_step = NULL WHERE id = $1",
        )
        .bind(user_id)
        .execute(&mut *tx)
        .await
        .context("Failed to remove a two-factor secret")?;
        store_recovery_codes(&mut tx, user_id, &[]).await?;
        tx.commit()
            .await
            .context("Failed to commit turning off two-factor sign-in")
    }

    async fn use_two_factor_step(&self, user_id: Uuid, step: i64) -> anyhow::Result<bool> {
        let used = sqlx::query(
            "UPDATE staff_users SET two_factor_step = $2
             WHERE id = $1 AND (two_factor_step IS NULL OR two_factor_step < $2)",
        )
        .bind(user_id)
        .bind(step)
        .execute(&self.pool)
        .await
        .context("Failed to record a two-factor code")?;
        Ok(used.rows_affected() == 1)
    }

    async fn use_recovery_code(
        &self,
        user_id: Uuid,
        hashes: &[[u8; 32]],
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        for hash in hashes {
            let used = sqlx::query(
                "UPDATE staff_recovery_codes SET used_at = $3
                 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
            )
            .bind(user_id)
            .bind(&hash[..])
            .bind(db_time(now))
            .execute(&self.pool)
            .await
            .context("Failed to use a recovery code")?;
            if used.rows_affected() == 1 {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn replace_recovery_codes(
        &self,
        user_id: Uuid,
        recovery_hashes: &[[u8; 32]],
    ) -> anyhow::Result<()> {
        let mut tx = self
            .pool
            .begin()
            .await
            .context("Failed to begin replacing recovery codes")?;
        store_recovery_codes(&mut tx, user_id, recovery_hashes).await?;
        tx.commit()
            .await
            .context("Failed to commit replacing recovery codes")
    }

    async fn two_factor_required(&self) -> anyhow::Result<bool> {
        sqlx::query_scalar("SELECT require_two_factor FROM staff_policy WHERE id = 1")
            .fetch_optional(&self.pool)
            .await
            .context("Failed to read the staff policy")
            .map(|required| required.unwrap_or(false))
    }

    async fn require_two_factor(&self, required: bool) -> anyhow::Result<()> {
        sqlx::query("UPDATE staff_policy SET require_two_factor = $1 WHERE id = 1")
            .bind(required)
            .execute(&self.pool)
            .await
            .context("Failed to change the staff policy")?;
        Ok(())
    }
}

/// A new password, and every session of theirs but `keep` ended.
async fn set_password(
    conn: &mut sqlx::PgConnection,
    user_id: Uuid,
    password_hash: &str,
    keep: Option<&[u8; 32]>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE staff_users SET password_hash = $2, updated_at = $3 WHERE id = $1")
        .bind(user_id)
        .bind(password_hash)
        .bind(db_time(now))
        .execute(&mut *conn)
        .await
        .context("Failed to store a new password")?;
    sqlx::query("DELETE FROM staff_sessions WHERE user_id = $1 AND token_hash <> $2")
        .bind(user_id)
        .bind(keep.map_or(&[][..], |k| &k[..]))
        .execute(&mut *conn)
        .await
        .context("Failed to end the other sessions")?;
    // A reset link mailed before works no more: the password it would replace is gone.
    sqlx::query(
        "UPDATE staff_links SET used_at = $2 WHERE user_id = $1 AND purpose = 'reset' AND used_at IS NULL",
    )
    .bind(user_id)
    .bind(db_time(now))
    .execute(&mut *conn)
    .await
    .context("Failed to close the reset links")?;
    Ok(())
}

/// Their recovery codes, replaced by these.
async fn store_recovery_codes(
    conn: &mut sqlx::PgConnection,
    user_id: Uuid,
    hashes: &[[u8; 32]],
) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM staff_recovery_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await
        .context("Failed to remove old recovery codes")?;
    for hash in hashes {
        sqlx::query("INSERT INTO staff_recovery_codes (user_id, code_hash) VALUES ($1, $2)")
            .bind(user_id)
            .bind(&hash[..])
            .execute(&mut *conn)
            .await
            .context("Failed to store a recovery code")?;
    }
    Ok(())
}
