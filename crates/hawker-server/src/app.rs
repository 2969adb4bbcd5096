//! Building and running the server: `App::build(config)` binds the listener and restores every
//! live show's owner; `run_until_stopped` serves until the shutdown future resolves.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::clock::Clock;
use crate::config::Config;
use crate::live::{Hub, LiveSettings};
use crate::passwords::Passwords;
use crate::payments::{PaymentProvider, TestProvider};
use crate::service::{Services, accounts, orders, shows};
use crate::store::{self, ShowFilter, ShowStatus, Store};
use crate::{api, media, pages};

pub use crate::state::AppState;

pub struct App {
    listener: TcpListener,
    router: Router,
    state: AppState,
    test_payments: Option<Arc<TestProvider>>,
}

impl App {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with(config, Clock::system(), |store| store).await
    }

    /// Like [`App::build`], on `clock` (tests move a manual one), with the opened store wrapped
    /// by `wrap` (tests inject storage faults).
    pub async fn build_with(
        config: Config,
        clock: Clock,
        wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
    ) -> anyhow::Result<Self> {
        config.validate()?;
        let synchronous_full = config.sqlite_synchronous == "full";
        let store =
            wrap(store::open(&config.database_url(), synchronous_full, clock.clone()).await?);
        // Only a head start: without it each session's first lookup reads the database.
        match store.warm_sessions().await {
            Ok(sessions) => tracing::info!(sessions, "sessions loaded"),
            Err(e) => tracing::warn!("sessions not loaded at start: {e}"),
        }
        // A charge is retried or looked up only while its reservation is held.
        let remember_ms = (config.reservation_hold_s + 120) * 1000;
        let test = Arc::new(TestProvider::new(clock.clone(), remember_ms));
        let payments: Arc<dyn PaymentProvider> = test.clone();
        let hub = Hub::new(
            store.clone(),
            payments.clone(),
            clock.clone(),
            LiveSettings {
                reservation_hold_ms: config.reservation_hold_s * 1000,
                commit_batch_max: config.commit_batch_max,
                viewer_buffer: config.viewer_buffer,
            },
        );
        let passwords = Passwords::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.password_hash_queue,
        )?;
        let listener = TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let (media, media_events) = hawker_media::Media::start(config.media()?)
            .with_context(|| format!("binding the media port {}", config.media_port))?;
        let limits = Arc::new(crate::limits::Limits::new(&config, clock.clone()));
        let trusted_proxies = Arc::new(crate::limits::TrustedProxies::parse(
            &config.trusted_proxies,
        )?);
        tokio::spawn(crate::limits::prune_every(
            limits.clone(),
            std::time::Duration::from_secs(60),
        ));
        let services = Services {
            config: Arc::new(config),
            clock,
            store,
            payments,
            hub,
            media,
            passwords,
            limits,
            paying: Arc::default(),
        };
        restore_owners(&services).await?;
        tokio::spawn(shows::relay_video_events(services.clone(), media_events));
        tokio::spawn(orders::send_due_refunds(
            services.clone(),
            std::time::Duration::from_secs(60),
        ));
        tokio::spawn(accounts::expire_tokens(services.clone()));
        tokio::spawn(crate::service::upkeep::maintain_store(
            services.clone(),
            std::time::Duration::from_secs(300),
        ));
        let state = AppState {
            services,
            trusted_proxies,
        };
        let router = router(state.clone());
        Ok(Self {
            listener,
            router,
            state,
            test_payments: Some(test),
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The built-in test provider, for tests that count charges.
    pub fn test_payments(&self) -> Option<Arc<TestProvider>> {
        self.test_payments.clone()
    }

    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        // No Nagle: a live socket's small batch must leave now, not wait for the last one's ack.
        let listener = self.listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        // One router for every connection: serving `Router` itself would rebuild its route table
        // per connection (axum calls `with_state(())` for each), ten thousand times at a sale's start.
        // With the peer's address, which the abuse limits key on (`limits::ClientIp`).
        axum::serve(
            listener,
            self.router
                .into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving HTTP")
    }
}

/// After a restart, every live show (and every ended show with unpaid reservations) gets its
/// owner back, rebuilt from the database, before the first request is served.
async fn restore_owners(s: &Services) -> anyhow::Result<()> {
    let live = ShowFilter {
        status: Some(ShowStatus::Live),
        ..ShowFilter::default()
    };
    let store = &s.store;
    let live_shows = store::every(|page| {
        let live = &live;
        async move { store.shows(live, &page).await }
    })
    .await?;
    for show in live_shows {
        s.hub
            .open(&show)
            .await
            .map_err(|e| anyhow::anyhow!("restoring show {}: {e:?}", show.id))?;
    }
    for show_id in s.store.shows_with_unsettled_commerce().await? {
        if let Some(show) = s.store.show(show_id).await? {
            s.hub
                .open(&show)
                .await
                .map_err(|e| anyhow::anyhow!("restoring show {}: {e:?}", show.id))?;
        }
    }
    let resumed = orders::resume_payments(s).await?;
    if resumed > 0 {
        tracing::info!("paying for {resumed} reservation(s) left open by the last run");
    }
    Ok(())
}

fn router(state: AppState) -> Router {
    let uploads = DefaultBodyLimit::max(state.services.config.max_upload_bytes + 64 * 1024);
    Router::new()
        .merge(api::router().route_layer(uploads))
        .merge(api::fallback())
        .merge(pages::router())
        .route("/media/{name}", get(media::serve))
        .route("/static/{*path}", get(pages::assets::serve))
        .layer(axum::middleware::from_fn(catch_panics))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

/// What pages may load: scripts, styles and connections only from this server (the pages have
/// no inline script or style), images also as `data:`/`blob:`, and no page may frame them.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; \
    object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Headers on every answer: a page with one-tap buy must not be framed by another site
/// (clickjacking), types are not sniffed, and other sites see only our origin as referrer.
async fn security_headers(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "strict-origin-when-cross-origin"),
    ] {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    response
}

/// A bug must not reach a client as a dropped connection: a panicking handler answers a plain
/// 500 with a request id (logged with the panic), and the server keeps serving.
async fn catch_panics(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use futures_util::FutureExt;
    match std::panic::AssertUnwindSafe(next.run(req))
        .catch_unwind()
        .await
    {
        Ok(response) => response,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            crate::error::AppError::Internal(anyhow::anyhow!("handler panicked: {what}"))
                .into_response()
        }
    }
}
