//! What every handler, socket and page can reach: the use cases' [`Services`] and what only the
//! HTTP adapters need. Extractors take the part they need through `FromRef`.

use std::sync::Arc;

use axum::extract::FromRef;

use crate::limits::TrustedProxies;
use crate::service::Services;
use crate::store::Store;

/// Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    /// Whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Arc<TrustedProxies>,
}

impl FromRef<AppState> for Services {
    fn from_ref(state: &AppState) -> Self {
        state.services.clone()
    }
}

impl FromRef<AppState> for Arc<dyn Store> {
    fn from_ref(state: &AppState) -> Self {
        state.services.store.clone()
    }
}

impl FromRef<AppState> for Arc<TrustedProxies> {
    fn from_ref(state: &AppState) -> Self {
        state.trusted_proxies.clone()
    }
}
