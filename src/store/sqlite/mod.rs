//! SQLite: the embedded default. WAL mode, foreign keys on, a busy timeout, and one
//! writer connection: SQLite allows one writer at a time anyway, and queueing writes in
//! our own pool (rather than in SQLite's busy handler) keeps "database is locked" away
//! and latency even. Reads use a separate pool and run beside the writer under WAL.
//! Times are stored as Unix milliseconds (`rows.rs`). One file per aggregate, with the
//! same names as PostgreSQL's.

use std::{str::FromStr, time::Duration};

use anyhow::Context;
use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

mod accounts;
mod brand;
mod budgets;
mod deliveries;
mod imports;
mod inbound;
mod issue_archive;
mod issues;
mod keys;
mod lists;
mod logins;
mod media;
mod metrics;
mod outbox;
mod preferences;
mod rows;
mod signups;
mod staff;
mod subscriptions;
mod suppressions;
mod templates;

use super::{SQLITE_MIGRATIONS, Store, migrations::migrator, signups::SignupQueue};

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    /// Sign-ups go to one task that writes them in batches.
    signups: SignupQueue,
}

/// Makes a new database file that only its owner may read (SQLite gives its WAL and
/// shared-memory files the same permissions): it holds everyone's personal data.
fn create_private(path: &std::path::Path) -> anyhow::Result<()> {
    if path.as_os_str().is_empty() || path.to_str() == Some(":memory:") || path.exists() {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err).with_context(|| format!("Failed to create {}", path.display())),
    }
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
        create_private(options.get_filename())?;
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
        Ok(Self {
            signups: SignupQueue::start(writer.clone()),
            writer,
            reader,
        })
    }
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

    async fn schema_version(&self) -> anyhow::Result<Option<i64>> {
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = '_sqlx_migrations')",
        )
        .fetch_one(&self.reader)
        .await
        .context("Failed to look for the migrations table")?;
        if !exists {
            return Ok(None);
        }
        sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&self.reader)
            .await
            .context("Failed to read which migrations are applied")
    }

    async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}
