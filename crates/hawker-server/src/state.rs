//! What every handler, owner and socket can reach: the configuration, the store, the payment
//! provider, the hub of live shows, the media plane and the abuse limits.

use std::sync::Arc;

use crate::auth::Passwords;
use crate::config::Config;
use crate::live::Hub;
use crate::payments::PaymentProvider;
use crate::store::Store;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub payments: Arc<dyn PaymentProvider>,
    pub hub: Arc<Hub>,
    /// The media plane: WHIP in, WHEP out (its own thread and UDP socket).
    pub media: hawker_media::Media,
    pub passwords: Passwords,
    /// Log-in and sign-up limits per client address and per account.
    pub limits: Arc<crate::limits::Limits>,
    /// Whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Arc<crate::limits::TrustedProxies>,
    /// One payment at a time per reservation (`api/orders.rs`).
    pub paying: Arc<crate::api::orders::PaymentsUnderWay>,
}
