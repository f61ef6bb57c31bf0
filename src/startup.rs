//! Putting the service together: open and migrate the database, settle the secret key,
//! bind the listener, and run the HTTP server and the outbox worker side by side.

use std::{future::Future, net::SocketAddr, sync::Arc};

use anyhow::Context;
use tokio::{
    net::TcpListener,
    sync::{Notify, watch},
};

use crate::{
    mail::Mailer,
    outbox::OutboxWorker,
    settings::Settings,
    store::{self, Store},
    tokens::SecretKey,
    web::{AppState, router},
};

pub struct Application {
    listener: TcpListener,
    state: AppState,
    worker: OutboxWorker,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let store = open_store(&settings).await?;
        let secret = match &settings.secret_key {
            Some(key) => key.clone(),
            None => store.secret_key(&SecretKey::generate_text()).await?,
        };
        let secret = SecretKey::new(&secret);
        let list = Arc::new(store.default_list().await?);
        let mailer = Arc::new(Mailer::from_settings(&settings).await?);
        let listener = TcpListener::bind(&settings.bind_address)
            .await
            .with_context(|| format!("Failed to listen on {}", settings.bind_address))?;
        let settings = Arc::new(settings);
        let outbox_wake = Arc::new(Notify::new());
        let worker = OutboxWorker::new(
            store.clone(),
            mailer,
            secret.clone(),
            settings.clone(),
            outbox_wake.clone(),
        )?;
        let state = AppState {
            store,
            settings,
            secret,
            list,
            outbox_wake,
        };
        Ok(Self {
            listener,
            state,
            worker,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes, then lets the worker finish its batch.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_worker, worker_stopped) = watch::channel(false);
        let worker = tokio::spawn(self.worker.run_until_stopped(worker_stopped));
        let store = self.state.store.clone();
        let app = router(self.state).into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .context("The HTTP server failed");
        let _ = stop_worker.send(true);
        worker.await.context("The outbox worker panicked")?;
        store.close().await;
        served
    }
}

/// Connects to `DATABASE_URL` and brings its schema up to date.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    let store = store::connect(&settings.database_url, settings.database_max_connections).await?;
    store.migrate().await?;
    Ok(store)
}
