//! Who is asking, as request extractors: the signed-in user (session cookie or API token, with
//! CSRF), the client's address and whether it came over HTTPS.
//!
//! Tokens are random 32-byte secrets; only their SHA-256 is stored ([`crate::secrets`]). A browser session is a cookie
//! (`HttpOnly; SameSite=Lax`) plus a CSRF token that cookie-authenticated writes must echo
//! (`X-CSRF-Token` header for the API, `_csrf` field for forms). Bearer tokens need no CSRF token:
//! browsers never attach them by themselves.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};

use crate::error::AppError;
use crate::limits::{ClientIp, TrustedProxies};
use crate::secrets::{same_secret, token_hash};
use crate::store::{Store, User};

pub const SESSION_COOKIE: &str = "hawker_session";
/// Double-submit cookie protecting the log-in and sign-up forms (no session exists yet).
pub const FORM_CSRF_COOKIE: &str = "hawker_csrf";

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

impl<S> FromRequestParts<S> for MaybeUser
where
    S: Send + Sync,
    Arc<dyn Store>: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let store = Arc::<dyn Store>::from_ref(state);
        if let Some(auth) = parts.headers.get(header::AUTHORIZATION) {
            let token = auth
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .ok_or_else(AppError::unauthorized)?;
            let hash = token_hash(token.trim());
            let (user, _) = store
                .user_by_token(&hash)
                .await?
                .ok_or_else(AppError::unauthorized)?;
            return Ok(Self(Some(CurrentUser {
                user,
                via: Via::Bearer { token_hash: hash },
            })));
        }
        Ok(Self(cookie_session(store.as_ref(), &parts.headers).await?))
    }
}

/// The signed-in user of the session cookie, if there is one and it stands.
pub async fn cookie_session(
    store: &dyn Store,
    headers: &HeaderMap,
) -> Result<Option<CurrentUser>, AppError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let hash = token_hash(token);
    Ok(store.user_by_token(&hash).await?.and_then(|(user, csrf)| {
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

impl<S> FromRequestParts<S> for CurrentUser
where
    S: Send + Sync,
    Arc<dyn Store>: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
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

pub fn clear_session_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
}

/// The address of the TCP peer (the client, or the proxy in front of us).
fn peer(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

impl<S> FromRequestParts<S> for ClientIp
where
    S: Send + Sync,
    Arc<TrustedProxies>: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let peer =
            peer(parts).ok_or_else(|| AppError::Internal(anyhow::anyhow!("no peer address")))?;
        let forwarded: Vec<&str> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        Ok(Self::of(
            Arc::<TrustedProxies>::from_ref(state).client(peer, &forwarded),
        ))
    }
}

/// Whether the client reached us over HTTPS: said by a trusted proxy's `X-Forwarded-Proto`
/// (its last value, which the proxy itself wrote). Hawker serves plain HTTP itself.
#[derive(Debug, Clone, Copy)]
pub struct Https(pub bool);

impl<S> FromRequestParts<S> for Https
where
    S: Send + Sync,
    Arc<TrustedProxies>: FromRef<S>,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let proxies = Arc::<TrustedProxies>::from_ref(state);
        let from_proxy = peer(parts).is_some_and(|ip| proxies.contains(ip));
        let proto = parts
            .headers
            .get_all("x-forwarded-proto")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .last()
            .map(str::trim);
        Ok(Self(
            from_proxy && proto.is_some_and(|p| p.eq_ignore_ascii_case("https")),
        ))
    }
}
