//! Accounts and sessions: signing up, logging in, issuing tokens, and expiring them.

use std::time::Duration;

use hawker_core::account::{self, Role};
use hawker_core::time::Timestamp;

use super::{ServiceError, ServiceResult, Services};
use crate::limits::ClientIp;
use crate::secrets::{random_token, token_hash};
use crate::store::{NewUser, StoreError, TokenKind, User};

/// Creates an account (the API and the sign-up page): only buyers and sellers may sign
/// themselves up. Sign-ups are limited per client address.
pub async fn create_account(
    s: &Services,
    ClientIp(client): ClientIp,
    email: &str,
    password: &str,
    display_name: &str,
    role: &str,
) -> ServiceResult<User> {
    let role = match Role::parse(role) {
        Some(r @ (Role::Buyer | Role::Seller)) => r,
        _ => return Err(ServiceError::SelfServiceRole),
    };
    let email = account::email(email)?;
    let password = account::password(password)?;
    let display_name = account::display_name(display_name)?;
    s.limits.signup(client)?;
    let password_hash = s.passwords.hash(password).await?;
    let new = NewUser {
        email,
        password_hash,
        display_name,
        role,
    };
    s.store
        .create_user(&new, s.clock.now())
        .await
        .map_err(|e| match e {
            StoreError::Conflict(m) => ServiceError::EmailTaken(m),
            other => other.into(),
        })
}

/// A new token (a browser session, with its CSRF token, or an API token) for `user`; only its
/// hash is stored, so this is the only time it is seen.
pub async fn issue_token(s: &Services, user: &User, kind: TokenKind) -> ServiceResult<String> {
    let token = random_token(32);
    let csrf = (kind == TokenKind::Session).then(|| random_token(16));
    s.store
        .insert_token(
            &token_hash(&token),
            user.id,
            kind,
            csrf.as_deref(),
            s.clock.now(),
        )
        .await?;
    Ok(token)
}

/// Checks a password; the same answer, after the same work, for an unknown e-mail and a wrong
/// password. Attempts are limited per client address and per account.
pub async fn authenticate(
    s: &Services,
    ClientIp(client): ClientIp,
    email: &str,
    password: &str,
) -> ServiceResult<User> {
    // Keyed on the parsed address: a raw one could be megabytes, kept for a minute per attempt.
    let email = account::email(email);
    s.limits.login(client, email.as_deref().ok())?;
    let email = email.map_err(|_| ServiceError::WrongCredentials)?;
    let found = s.store.user_by_email(&email).await?;
    let hash = found.as_ref().map(|(_, hash)| hash.as_str());
    match (s.passwords.verify(hash, password).await?, found) {
        (true, Some((user, _))) => Ok(user),
        _ => Err(ServiceError::WrongCredentials),
    }
}

/// Deletes sessions and API tokens past their lifetime, for the life of the server: a stolen
/// token stops working even if nobody logs out. Checks a few times per lifetime and at most
/// once a minute, so a token outlives its lifetime by at most a minute.
pub async fn expire_tokens(s: Services) {
    let lifetimes = [
        (TokenKind::Session, s.config.session_lifetime_s),
        (TokenKind::Api, s.config.api_token_lifetime_s),
    ];
    let shortest_ms = lifetimes.iter().map(|(_, l)| l.saturating_mul(250)).min();
    let every = Duration::from_millis(shortest_ms.unwrap_or(60_000).clamp(100, 60_000) as u64);
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let now = s.clock.now();
        for (kind, lifetime_s) in lifetimes {
            let before = Timestamp(now.0.saturating_sub(lifetime_s.saturating_mul(1000)));
            match s.store.delete_tokens_created_before(kind, before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(n, ?kind, "expired tokens deleted"),
                Err(e) => tracing::warn!("expiring tokens: {e}"),
            }
        }
    }
}
