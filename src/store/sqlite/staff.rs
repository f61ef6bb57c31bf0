//! Staff accounts, their sessions and sign-in attempts, and API tokens.

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    SqliteStore,
    rows::{from_ms, ms},
};
use crate::staff::StaffUser;
use crate::store::mapping::{self, Columns};
use crate::store::{
    ApiTokenRecord, Creation, LoginAdmission, LoginAttempt, Removal, StaffLogin, StaffMember,
    StaffStore, creation,
};

#[async_trait]
impl StaffStore for SqliteStore {
    async fn create_api_token(
        &self,
        id: Uuid,
        name: &str,
        token_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Creation> {
        let inserted = sqlx::query(
            "INSERT INTO api_tokens (id, name, token_hash, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(id)
        .bind(name)
        .bind(&token_hash[..])
        .bind(ms(now))
        .execute(&self.writer)
        .await;
        creation(inserted, "Failed to store the API token")
    }

    async fn revoke_api_token(&self, name: &str, now: DateTime<Utc>) -> anyhow::Result<Removal> {
        let revoked = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL",
        )
        .bind(name)
        .bind(ms(now))
        .execute(&self.writer)
        .await
        .context("Failed to revoke the API token")?;
        Ok(Removal::of(revoked.rows_affected()))
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
    ) -> anyhow::Result<Creation> {
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
        creation(inserted, "Failed to store the staff user")
    }

    async fn staff_login(&self, email: &str) -> anyhow::Result<Option<StaffLogin>> {
        let row =
            sqlx::query("SELECT id, email, role, password_hash FROM staff_users WHERE email = $1")
                .bind(email)
                .fetch_optional(&self.reader)
                .await
                .context("Failed to look up the staff user")?;
        row.map(|row| {
            Ok(StaffLogin {
                user: mapping::staff_user(&row)?,
                password_hash: row.text("password_hash")?,
            })
        })
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

    async fn staff_users(&self) -> anyhow::Result<Vec<StaffMember>> {
        let rows =
            sqlx::query("SELECT id, email, role, created_at FROM staff_users ORDER BY email")
                .fetch_all(&self.reader)
                .await
                .context("Failed to list the staff users")?;
        rows.iter()
            .map(|row| {
                Ok(StaffMember {
                    user: mapping::staff_user(row)?,
                    added_at: row.time("created_at")?,
                })
            })
            .collect()
    }

    async fn delete_staff_user(&self, id: Uuid) -> anyhow::Result<Removal> {
        let mut tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .context("Failed to begin removing a staff user")?;
        // Their links go with them, and the invitations they sent: none may make an
        // account again.
        sqlx::query(
            "DELETE FROM staff_links
             WHERE created_by = $1 OR email = (SELECT email FROM staff_users WHERE id = $1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await
        .context("Failed to remove the staff user's links")?;
        let deleted = sqlx::query("DELETE FROM staff_users WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .context("Failed to remove the staff user")?;
        tx.commit()
            .await
            .context("Failed to commit removing a staff user")?;
        Ok(Removal::of(deleted.rows_affected()))
    }

    async fn api_tokens(&self) -> anyhow::Result<Vec<ApiTokenRecord>> {
        let rows = sqlx::query_as(
            "SELECT name, created_at, revoked_at FROM api_tokens ORDER BY created_at DESC, name",
        )
        .fetch_all(&self.reader)
        .await
        .context("Failed to list the API tokens")?;
        let rows: Vec<(String, i64, Option<i64>)> = rows;
        Ok(rows
            .into_iter()
            .map(|(name, created, revoked)| ApiTokenRecord {
                name,
                created_at: from_ms(created),
                revoked_at: revoked.map(from_ms),
            })
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
        row.map(|row| mapping::staff_user(&row)).transpose()
    }

    async fn delete_session(&self, token_hash: &[u8; 32]) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM staff_sessions WHERE token_hash = $1")
            .bind(&token_hash[..])
            .execute(&self.writer)
            .await
            .context("Failed to delete the session")?;
        Ok(())
    }

    async fn admit_login(&self, attempt: &LoginAttempt<'_>) -> anyhow::Result<LoginAdmission> {
        super::logins::admit(&self.writer, attempt).await
    }

    async fn forget_login_attempt(&self, id: Uuid, clear: &[String]) -> anyhow::Result<()> {
        super::logins::forget(&self.writer, id, clear).await
    }
}
