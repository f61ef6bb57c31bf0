//! The scheduler: starts issues whose time has come. It looks at least every
//! `scheduler_interval` (30 s at most), sooner when the next issue is due sooner, and at
//! once when an issue is scheduled. Starting an issue is the store's conditional update
//! plus `INSERT ... SELECT`, so with several instances on one database exactly one
//! starts it; the mail worker is then woken to send. Every hour it also deletes what
//! is kept only for a while (see `housekeeping`).

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use tokio::sync::{Notify, watch};

use crate::store::Store;

/// How often old data is deleted.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(3600);

pub struct Scheduler {
    pub store: Arc<dyn Store>,
    pub interval: Duration,
    /// Woken when an issue is scheduled.
    pub wake: Arc<Notify>,
    /// The mail worker's wake-up.
    pub mail_wake: Arc<Notify>,
    /// How long after its link expired a sign-up never confirmed is kept.
    pub unconfirmed_grace: Duration,
    /// How long someone who left every list is kept, before only their anonymised
    /// ledger and a suppression entry stay.
    pub left_retention: Duration,
    /// Keys the suppression entries of those reduced.
    pub secret: crate::keys::KeyRing,
}

/// Starts every issue that is due and wakes the mail worker; returns how many started.
/// The scheduler's tick, and Send now's: an issue sent now is already sending when the
/// person who sent it sees its page.
pub async fn start_due(store: &dyn Store, mail_wake: &Notify) -> anyhow::Result<usize> {
    let now = Utc::now();
    let started = store.start_due_issues(now).await?;
    if started > 0 {
        // An issue with no recipients has nothing for the worker to finish.
        store.finish_sent_issues(now).await?;
        mail_wake.notify_one();
    }
    Ok(started)
}

impl Scheduler {
    /// Starts what is due; returns how many issues started.
    pub async fn tick(&self) -> anyhow::Result<usize> {
        start_due(&*self.store, &self.mail_wake).await
    }

    /// Deletes what is kept only for a while: the rows of old imports, sign-up budgets
    /// and used form tokens once no budget or token can need them (two days: the
    /// dashboard shows the last 24 hours, a form token lives one day), sign-ups never
    /// confirmed, `unconfirmed_grace` after their link expired, and the people who left
    /// every list more than `left_retention` ago (`audience::erasure`).
    pub async fn housekeeping(&self) -> anyhow::Result<()> {
        let now = Utc::now();
        // A time further back than a date can be keeps everything, never nothing.
        let before = |kept: Duration| {
            chrono::TimeDelta::from_std(kept)
                .ok()
                .and_then(|kept| now.checked_sub_signed(kept))
        };
        if let Some(expired_before) = before(self.unconfirmed_grace) {
            let deleted = self.store.delete_expired_signups(expired_before).await?;
            if deleted > 0 {
                tracing::info!(deleted, "Sign-ups never confirmed are deleted");
            }
        }
        if let Some(left_before) = before(self.left_retention) {
            let reduced = crate::audience::erasure::reduce_departed(
                self.store.as_ref(),
                &self.secret,
                left_before,
                now,
            )
            .await?;
            if reduced > 0 {
                tracing::info!(
                    reduced,
                    "People who left long ago are reduced to their ledger"
                );
            }
        }
        self.store
            .delete_import_rows_before(crate::audience::import::report_cutoff(now))
            .await?;
        self.store
            .delete_signup_records_before(now - chrono::TimeDelta::days(2))
            .await
    }

    pub async fn run_until_stopped(self, mut shutdown: watch::Receiver<bool>) {
        let mut housekept: Option<tokio::time::Instant> = None;
        while !*shutdown.borrow() {
            if let Err(err) = self.tick().await {
                tracing::error!(error = format!("{err:#}"), "The scheduler failed");
            }
            if housekept.is_none_or(|at| at.elapsed() >= HOUSEKEEPING_INTERVAL) {
                housekept = Some(tokio::time::Instant::now());
                if let Err(err) = self.housekeeping().await {
                    tracing::error!(error = format!("{err:#}"), "Housekeeping failed");
                }
            }
            let wait = match self.store.next_issue_due().await {
                Ok(Some(due)) => (due - Utc::now()).to_std().unwrap_or_default(),
                Ok(None) => self.interval,
                Err(err) => {
                    tracing::error!(error = format!("{err:#}"), "Failed to read the schedule");
                    self.interval
                }
            }
            .min(self.interval);
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}
