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

use crate::app::AppState;
use crate::error::AppError;
use crate::store::User;

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

/// Argon2id with the configured cost.
#[derive(Clone)]
pub struct Passwords {
    params: Params,
}

impl Passwords {
    pub fn new(memory_kib: u32, iterations: u32) -> anyhow::Result<Self> {
        let params = Params::new(memory_kib, iterations, 1, None)
            .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        Ok(Self { params })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Hashes off the async threads: argon2 is deliberately slow.
    pub async fn hash(&self, password: &str) -> anyhow::Result<String> {
        let argon = self.argon2();
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut salt = [0u8; 16];
            rand::rng().fill_bytes(&mut salt);
            let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
            Ok(argon
                .hash_password(password.as_bytes(), &salt)
                .map_err(|e| anyhow::anyhow!("hashing: {e}"))?
                .to_string())
        })
        .await?
    }

    pub async fn verify(&self, hash: &str, password: &str) -> bool {
        let argon = self.argon2();
        let (hash, password) = (hash.to_owned(), password.to_owned());
        tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .is_ok_and(|parsed| argon.verify_password(password.as_bytes(), &parsed).is_ok())
        })
        .await
        .unwrap_or(false)
    }
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
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Ok(Self(None));
        };
        let hash = token_hash(token);
        Ok(Self(state.store.user_by_token(&hash).await?.and_then(
            |(user, csrf)| {
                csrf.map(|csrf| CurrentUser {
                    user,
                    via: Via::Session {
                        token_hash: hash,
                        csrf,
                    },
                })
            },
        )))
    }
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
        if let Via::Session { csrf, .. } = &user.via
            && !safe
            && parts.uri.path().starts_with("/api/")
        {
            let sent = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok());
            if sent != Some(csrf.as_str()) {
                return Err(AppError::forbidden(
                    "missing or wrong X-CSRF-Token header for a cookie-authenticated request",
                ));
            }
        }
        Ok(user)
    }
}

/// `Set-Cookie` for a new session.
pub fn session_cookie(token: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age=2592000{secure}")
}

pub fn clear_session_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
}
