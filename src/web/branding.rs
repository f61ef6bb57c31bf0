//! The brand every page shows. Each request passes `with_brand`, which puts the current
//! brand where `pages::render` finds it, so no page can show another (or forget it).
//! The brand is read from the database at most every few seconds per instance: a
//! change made on another instance shows within that time, one made here at once.

use std::{
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use axum::{extract::Request, extract::State, middleware::Next, response::Response};

use super::AppState;
use crate::{brand::BrandVersion, store::Store};

/// How long a brand read from the database is used before it is read again.
const FRESH_FOR: Duration = Duration::from_secs(5);

tokio::task_local! {
    static BRAND: Arc<BrandVersion>;
}

#[derive(Default)]
pub struct BrandCache {
    slot: RwLock<Option<(Instant, Arc<BrandVersion>)>>,
}

impl BrandCache {
    /// The current brand. If the database cannot be reached, the last one read (or the
    /// first version), so that the page saying so still looks right.
    pub async fn current(&self, store: &dyn Store) -> Arc<BrandVersion> {
        let cached = self.slot.read().ok().and_then(|slot| slot.clone());
        if let Some((read_at, brand)) = &cached
            && read_at.elapsed() < FRESH_FOR
        {
            return brand.clone();
        }
        match store.current_brand().await {
            Ok(brand) => self.saved(brand),
            Err(err) => {
                tracing::error!(error = format!("{err:#}"), "Failed to read the brand");
                cached.map_or_else(|| Arc::new(BrandVersion::first()), |(_, brand)| brand)
            }
        }
    }

    /// A brand just saved (or read): used from now on.
    pub fn saved(&self, brand: BrandVersion) -> Arc<BrandVersion> {
        let brand = Arc::new(brand);
        if let Ok(mut slot) = self.slot.write() {
            *slot = Some((Instant::now(), brand.clone()));
        }
        brand
    }
}

/// Runs the request with the current brand in reach of `brand()`.
pub async fn with_brand(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let brand = state.brand.current(&*state.store).await;
    BRAND.scope(brand, next.run(request)).await
}

/// The brand of the request being handled (the first version outside a request).
pub fn brand() -> Arc<BrandVersion> {
    BRAND
        .try_with(Arc::clone)
        .unwrap_or_else(|_| Arc::new(BrandVersion::first()))
}
