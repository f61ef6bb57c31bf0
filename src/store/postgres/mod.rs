//! PostgreSQL: for several instances behind a load balancer. Rows that two instances
//! could both act on are locked (`FOR UPDATE`), and work is claimed with
//! `FOR UPDATE SKIP LOCKED`, so instances share the outbox without waiting on each other.
//! One file per aggregate, with the same names as SQLite's.

use std::str::FromStr;

use anyhow::Context;
use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

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
mod signup_batch;
mod signups;
mod staff;
mod subscriptions;
mod suppressions;
mod templates;

use super::{POSTGRES_MIGRATIONS, Store, migrations::migrator, signups::SignupQueue};

pub struct PostgresStore {
    pool: PgPool,
    /// Sign-ups go to one task that writes them in batches.
    signups: SignupQueue,
}

impl PostgresStore {
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        // A second line behind finishing every request (web/mod.rs): a session left
        // inside a transaction is ended by the server, and no statement waits on a
        // lock for long, so one stuck connection cannot stall the mail worker.
        let options = PgConnectOptions::from_str(url)
            .context("Failed to parse the PostgreSQL DATABASE_URL")?
            .options([
                ("idle_in_transaction_session_timeout", "60s"),
                ("lock_timeout", "30s"),
            ]);
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect_with(options.clone())
            .await
            .context("Failed to connect to PostgreSQL")?;
        // Sign-ups have a connection of their own, on the writer's own thread. Its
        // statements look rows up by key, for arrays of keys, and are planned once: a
        // plan made when `subscribers` was small would read the whole table for every
        // batch ever after, so it may not scan a table that has an index to use.
        let signups = SignupQueue::start_on_own_thread(move || {
            // Its one connection is in use all the time: no ping before each batch (a
            // broken connection fails its batch, and the pool makes a new one).
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .test_before_acquire(false)
                .acquire_timeout(std::time::Duration::from_secs(10))
                .connect_lazy_with(options.options([("enable_seqscan", "off")]));
            signup_batch::SignupBatches::new(pool)
        })?;
        Ok(Self { signups, pool })
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn migrate(&self) -> anyhow::Result<()> {
        migrator(POSTGRES_MIGRATIONS)
            .run(&self.pool)
            .await
            .context("Failed to apply the PostgreSQL migrations")
    }

    async fn ping(&self) -> anyhow::Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .context("Failed to reach PostgreSQL")?;
        Ok(())
    }

    async fn schema_version(&self) -> anyhow::Result<Option<i64>> {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(&self.pool)
            .await
            .context("Failed to look for the migrations table")?;
        if !exists {
            return Ok(None);
        }
        sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&self.pool)
            .await
            .context("Failed to read which migrations are applied")
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
