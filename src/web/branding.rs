//! The brand every page shows. Each request passes `with_brand`, which puts the current
//! brand where `pages::render` finds it, so no page can show another (or forget it).
//! The brand is read from the database at most every few seconds per instance
//! (`recent`).

use std::sync::Arc;

use axum::{extract::Request, extract::State, middleware::Next, response::Response};

use super::{AppState, recent::Recent};
use crate::{brand::BrandVersion, store::Store};

tokio::task_local! {
    static BRAND: Arc<BrandVersion>;
}

#[derive(Default)]
pub struct BrandCache(Recent<BrandVersion>);

impl BrandCache {
    /// The current brand. If the database cannot be reached, the last one read (or the
    /// first version), so that the page saying so still looks right.
    pub async fn current(&self, store: &dyn Store) -> Arc<BrandVersion> {
        if let Some(brand) = self.0.fresh() {
            return brand;
        }
        match store.current_brand().await {
            Ok(brand) => self.saved(brand),
            Err(err) => {
                tracing::error!(error = format!("{err:#}"), "Failed to read the brand");
                self.0
                    .last()
                    .unwrap_or_else(|| Arc::new(BrandVersion::first()))
            }
        }
    }

    /// A brand just saved (or read): used from now on.
    pub fn saved(&self, brand: BrandVersion) -> Arc<BrandVersion> {
        self.0.saved(brand)
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
