//! Who is asking: passwords (argon2id), session cookies and API tokens, CSRF.
//!
//! Tokens are random 32-byte secrets; only their SHA-256 is stored. A browser session is a cookie
//! (`HttpOnly; SameSite=Lax`) plus a CSRF token that cookie-authenticated writes must echo
//! (`X-CSRF-Token` header for the API, `_csrf` field for forms). Bearer tokens need no CSRF token:
//! browsers never attach them by themselves.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Semaphore;

use crate::clock;
use crate::error::AppError;
use crate::state::AppState;
use crate::store::{TokenKind, User};
use hawker_core::time::Timestamp;
use std::time::Duration;

pub const SESSION_COOKIE: &str = "hawker_session";
/// Double-submit cookie protecting the log-in and sign-up forms (no session exists yet).
pub const FORM_CSRF_COOKIE: &str = "hawker_csrf";

/// Hex of `bytes` random bytes.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// A show's stream key: the Bearer token its host (console or OBS) publishes video with.
pub fn new_stream_key() -> String {
    format!("sk_{}", random_token(24))
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Argon2id with the configured cost, bounded: each hash takes `argon2_memory_kib` of memory
/// (19 MiB by default) and a core for tens of milliseconds, so at most one per core but one run
/// at once (the last core stays free for pages and shows), `password_hash_queue` more wait, and
/// the rest are refused at once with 503 and `Retry-After`. Without the bound, 400 concurrent wrong
/// passwords took 3.2 GiB and 204 threads, and the home page 18 s.
#[derive(Clone)]
pub struct Passwords {
    params: Params,
    /// Hashes running now; a permit is held for the whole blocking computation.
    running: Arc<Semaphore>,
    /// Hashes waiting for a permit, and how many may.
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
    /// A hash of a random password, verified against when an e-mail is unknown, so that a
    /// log-in takes as long whether or not the account exists.
    dummy: Arc<str>,
}

impl Passwords {
    /// `max_waiting`: how many hashes may wait for a permit before more are refused.
    pub fn new(memory_kib: u32, iterations: u32, max_waiting: usize) -> anyhow::Result<Self> {
        let params = Params::new(memory_kib, iterations, 1, None)
            .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let at_once = cores.saturating_sub(1).max(1);
        let mut passwords = Self {
            params,
            running: Arc::new(Semaphore::new(at_once)),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting,
            dummy: Arc::from(""),
        };
        passwords.dummy = Arc::from(hash_with(&passwords.argon2(), &random_token(16))?);
        Ok(passwords)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Runs `job` on a blocking thread once a permit is free; 503 if too many already wait.
    async fn bounded<T: Send + 'static>(
        &self,
        job: impl FnOnce(Argon2<'static>) -> T + Send + 'static,
    ) -> Result<T, AppError> {
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let busy = || AppError::busy("too many log-ins at once; try again in a second");
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(busy());
        }
        let permit = {
            let _waiting = Waiting(&self.waiting);
            self.running
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| busy())?
        };
        let argon = self.argon2();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job(argon)
        })
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("password hashing failed: {e}")))
    }

    /// Hashes off the async threads: argon2 is deliberately slow.
    pub async fn hash(&self, password: &str) -> Result<String, AppError> {
        let password = password.to_owned();
        Ok(self
            .bounded(move |argon| hash_with(&argon, &password))
            .await??)
    }

    /// Whether `password` matches `hash`; with no hash (an unknown e-mail) it checks the dummy
    /// hash, taking the same time, and answers `false`.
    pub async fn verify(&self, hash: Option<&str>, password: &str) -> Result<bool, AppError> {
        let known = hash.is_some();
        let hash = hash.map_or_else(|| self.dummy.to_string(), str::to_owned);
        let password = password.to_owned();
        let matches = self
            .bounded(move |argon| {
                PasswordHash::new(&hash)
                    .is_ok_and(|parsed| argon.verify_password(password.as_bytes(), &parsed).is_ok())
            })
            .await?;
        Ok(known && matches)
    }
}

fn hash_with(argon: &Argon2<'static>, password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Ok(argon
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing: {e}"))?
        .to_string())
}

pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// How the request proved who it is.
#[derive(Debug, Clone)]
pub enum Via {
    Bearer { token_hash: String },
    Session { token_hash: String, csrf: String },
}

/// The signed-in user. As an extractor it answers 401 when nobody is signed in, and 403 when a
/// cookie-authenticated API write lacks the session's CSRF token.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    pub via: Via,
}

impl CurrentUser {
    /// The CSRF token pages embed; empty for Bearer clients.
    pub fn csrf(&self) -> &str {
        match &self.via {
            Via::Session { csrf, .. } => csrf,
            Via::Bearer { .. } => "",
        }
    }

    /// The hash of the token or session this request came with.
    pub fn token_hash(&self) -> &str {
        match &self.via {
            Via::Bearer { token_hash } | Via::Session { token_hash, .. } => token_hash,
        }
    }

    /// Checks a form's `_csrf` field (pages; the API checks the header in the extractor).
    pub fn check_form_csrf(&self, submitted: &str) -> Result<(), AppError> {
        match &self.via {
            Via::Session { csrf, .. } if csrf != submitted => Err(AppError::forbidden(
                "the form expired; reload the page and try again",
            )),
            _ => Ok(()),
        }
    }
}

/// The signed-in user, if any. A bad Bearer token is still an error: the client meant to sign in.
#[derive(Debug, Clone)]
pub struct MaybeUser(pub Option<CurrentUser>);

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(auth) = parts.headers.get(header::AUTHORIZATION) {
            let token = auth
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .ok_or_else(AppError::unauthorized)?;
            let hash = token_hash(token.trim());
            let (user, _) = state
                .store
                .user_by_token(&hash)
                .await?
                .ok_or_else(AppError::unauthorized)?;
            return Ok(Self(Some(CurrentUser {
                user,
                via: Via::Bearer { token_hash: hash },
            })));
        }
        Ok(Self(cookie_session(state, &parts.headers).await?))
    }
}

/// The signed-in user of the session cookie, if there is one and it stands.
pub async fn cookie_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<CurrentUser>, AppError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let hash = token_hash(token);
    Ok(state
        .store
        .user_by_token(&hash)
        .await?
        .and_then(|(user, csrf)| {
            csrf.map(|csrf| CurrentUser {
                user,
                via: Via::Session {
                    token_hash: hash,
                    csrf,
                },
            })
        }))
}

/// Whether a cookie-authenticated write echoes its session's CSRF token (`X-CSRF-Token`).
pub fn csrf_echoed(user: &CurrentUser, headers: &HeaderMap) -> bool {
    match &user.via {
        Via::Session { csrf, .. } => {
            let sent = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
            sent.is_some_and(|sent| same_secret(sent.as_bytes(), csrf.as_bytes()))
        }
        Via::Bearer { .. } => true,
    }
}

/// Compares without stopping at the first difference, so timing does not reveal a secret.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let MaybeUser(user) = MaybeUser::from_request_parts(parts, state).await?;
        let user = user.ok_or_else(AppError::unauthorized)?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe && parts.uri.path().starts_with("/api/") && !csrf_echoed(&user, &parts.headers) {
            return Err(AppError::forbidden(
                "missing or wrong X-CSRF-Token header for a cookie-authenticated request",
            ));
        }
        Ok(user)
    }
}

/// `Set-Cookie` for a new session that lasts `lifetime_s`.
pub fn session_cookie(token: &str, lifetime_s: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={lifetime_s}{secure}"
    )
}

/// Deletes sessions and API tokens past their lifetime, for the life of the server: a stolen
/// token stops working even if nobody logs out. Checks a few times per lifetime and at most
/// once a minute, so a token outlives its lifetime by at most a minute.
pub async fn expire_tokens(state: AppState) {
    let lifetimes = [
        (TokenKind::Session, state.config.session_lifetime_s),
        (TokenKind::Api, state.config.api_token_lifetime_s),
    ];
    let shortest_ms = lifetimes.iter().map(|(_, s)| s.saturating_mul(250)).min();
    let every = Duration::from_millis(shortest_ms.unwrap_or(60_000).clamp(100, 60_000) as u64);
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let now = clock::now();
        for (kind, lifetime_s) in lifetimes {
            let before = Timestamp(now.0.saturating_sub(lifetime_s.saturating_mul(1000)));
            match state.store.delete_tokens_created_before(kind, before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(n, ?kind, "expired tokens deleted"),
                Err(e) => tracing::warn!("expiring tokens: {e}"),
            }
        }
    }
}

pub fn clear_session_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
}
