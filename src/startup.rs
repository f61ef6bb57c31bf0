//! Putting the service together: open and migrate the database, settle the secret keys,
//! bind the listener, and run the HTTP server and the outbox worker side by side.

use std::{future::Future, net::SocketAddr, sync::Arc};

use anyhow::{Context, bail};
use tokio::{
    net::TcpListener,
    sync::{Notify, watch},
};

use crate::{
    inbound::{imap::ImapSettings, intake::Intake},
    metrics::Metrics,
    secrets,
    sending::mail::Mailer,
    sending::outbox::OutboxWorker,
    sending::scheduler::Scheduler,
    settings::Settings,
    store::{self, Store},
    web::{
        AppState, Shared, router,
        server::{self, HttpLimits},
    },
};

pub struct Application {
    listener: TcpListener,
    state: AppState,
    worker: OutboxWorker,
    scheduler: Scheduler,
    /// Reads the bounce mailbox, when `BOUNCE_IMAP_URL` names one.
    bounce_mailbox: Option<(ImapSettings, Intake)>,
    /// Serves `/metrics` alone, when `METRICS_ADDRESS` names an address.
    metrics_listener: Option<TcpListener>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        if let Some(problem) = settings.public_url_problem() {
            bail!(problem);
        }
        let store = open_store(&settings).await?;
        let secret = secrets::load(&settings, store.as_ref()).await?;
        let list = Arc::new(store.default_list().await?);
        let metrics = Arc::new(Metrics::new());
        let mailer = Arc::new(Mailer::from_settings(&settings, metrics.clone()).await?);
        let listener = TcpListener::bind(&settings.bind_address)
            .await
            .with_context(|| format!("Failed to listen on {}", settings.bind_address))?;
        let metrics_listener = match &settings.metrics_address {
            Some(address) => Some(
                TcpListener::bind(address)
                    .await
                    .with_context(|| format!("Failed to listen on METRICS_ADDRESS {address}"))?,
            ),
            None => None,
        };
        let settings = Arc::new(settings);
        let outbox_wake = Arc::new(Notify::new());
        let worker = OutboxWorker::new(
            store.clone(),
            mailer,
            secret.clone(),
            settings.clone(),
            outbox_wake.clone(),
            metrics.clone(),
        )?;
        let scheduler = Scheduler {
            store: store.clone(),
            interval: settings.scheduler_interval,
            wake: Arc::new(Notify::new()),
            mail_wake: outbox_wake.clone(),
            unconfirmed_grace: settings.unconfirmed_grace,
            left_retention: settings.left_retention,
            secret: secret.clone(),
        };
        let bounce_mailbox = settings.bounce_imap.clone().map(|imap| {
            (
                imap,
                Intake::new(store.clone(), secret.clone(), settings.clone()),
            )
        });
        let state = AppState::new(Shared {
            store,
            settings,
            secret,
            list,
            outbox_wake,
            scheduler_wake: scheduler.wake.clone(),
            password_checks: crate::staff::PasswordChecks::for_this_machine(),
            sns_certificates: Arc::default(),
            brand: Arc::default(),
            lists: Arc::default(),
            metrics,
            metrics_scrape: Arc::default(),
        });
        Ok(Self {
            listener,
            state,
            worker,
            scheduler,
            bounce_mailbox,
            metrics_listener,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where `/metrics` is served on its own (`METRICS_ADDRESS`), if it is.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .map(|l| l.local_addr().expect("a bound listener has an address"))
    }

    /// Serves until `shutdown` completes; then the worker finishes its batch and
    /// requests in flight finish, for at most `SHUTDOWN_GRACE_SECONDS`. Past that it
    /// returns anyway: rows claimed and not recorded are under a lease, and another
    /// start takes them up when it runs out.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let grace = self.state.settings.shutdown_grace;
        let (asked_tx, asked) = watch::channel(false);
        let shutdown = async move {
            shutdown.await;
            let _ = asked_tx.send(true);
        };
        let (stop_worker, worker_stopped) = watch::channel(false);
        let worker = self
            .state
            .settings
            .mail
            .worker
            .then(|| tokio::spawn(self.worker.run_until_stopped(worker_stopped.clone())));
        let bounce_mailbox = self.bounce_mailbox.map(|(imap, intake)| {
            tokio::spawn(crate::inbound::imap::run_until_stopped(
                imap,
                intake,
                worker_stopped.clone(),
            ))
        });
        let scheduler = tokio::spawn(self.scheduler.run_until_stopped(worker_stopped));
        let store = self.state.store.clone();
        let limits = HttpLimits {
            header_read_timeout: self.state.settings.http_header_timeout,
            max_connections: self.state.settings.http_max_connections,
        };
        let metrics_server = self.metrics_listener.map(|listener| {
            let mut asked = asked.clone();
            tokio::spawn(server::serve(
                listener,
                crate::web::metrics::private_router(self.state.clone()),
                limits,
                async move {
                    let _ = asked.wait_for(|asked| *asked).await;
                },
            ))
        });
        let app = router(self.state);
        let work = async {
            server::serve(self.listener, app, limits, shutdown).await;
            let _ = stop_worker.send(true);
            if let Some(worker) = worker {
                worker.await.context("The mail worker panicked")?;
            }
            scheduler.await.context("The scheduler panicked")?;
            if let Some(mailbox) = bounce_mailbox {
                mailbox
                    .await
                    .context("The bounce mailbox reader panicked")?;
            }
            if let Some(metrics_server) = metrics_server {
                metrics_server
                    .await
                    .context("The metrics server panicked")?;
            }
            store.close().await;
            Ok(())
        };
        let grace_over = async {
            let mut asked = asked.clone();
            if asked.wait_for(|asked| *asked).await.is_err() {
                std::future::pending::<()>().await;
            }
            tracing::info!(grace_seconds = grace.as_secs(), "Shutting down");
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            result = work => result,
            () = grace_over => {
                tracing::warn!(
                    grace_seconds = grace.as_secs(),
                    "The shutdown grace period is over: stopping with work in flight (claimed mail is leased, and taken up again after a restart)"
                );
                Ok(())
            }
        }
    }
}

/// Connects to `DATABASE_URL`, brings its schema up to date, and saves the shipped
/// issue templates that it does not have yet (as their first version).
pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    let store = store::connect(&settings.database_url, settings.database_max_connections).await?;
    store.migrate().await?;
    let now = chrono::Utc::now();
    let shipped: Vec<store::NewTemplateVersion> = crate::issues::templates::SHIPPED
        .iter()
        .map(|t| store::NewTemplateVersion {
            name: t.name,
            html: t.html,
            text: t.text,
            shipped: true,
            by: "newsletter",
            now,
        })
        .collect();
    store.seed_templates(&shipped).await?;
    Ok(store)
}
