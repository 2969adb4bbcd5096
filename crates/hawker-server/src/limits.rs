//! Abuse limits for work any stranger can ask for: how often a client address or an account may
//! try to log in or sign up (GCRA limiters from `governor`, keyed), and who the client is when
//! Hawker runs behind a reverse proxy (`X-Forwarded-For`, believed only from `trusted_proxies`).
//!
//! Password hashing itself is bounded separately, by [`crate::auth::Passwords`].

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::app::AppState;
use crate::config::Config;
use crate::error::AppError;

/// The limiters, one per kind of attempt and key.
pub struct Limits {
    login_per_account: DefaultKeyedRateLimiter<String>,
    login_per_client: DefaultKeyedRateLimiter<IpAddr>,
    signup_per_client: DefaultKeyedRateLimiter<IpAddr>,
}

impl Limits {
    pub fn new(config: &Config) -> Self {
        let per_minute = |n: u32| Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        let per_hour = |n: u32| Quota::per_hour(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        Self {
            login_per_account: RateLimiter::keyed(per_minute(
                config.login_attempts_per_account_per_minute,
            )),
            login_per_client: RateLimiter::keyed(per_minute(
                config.login_attempts_per_client_per_minute,
            )),
            signup_per_client: RateLimiter::keyed(per_hour(config.signups_per_client_per_hour)),
        }
    }

    /// A log-in attempt from `client` for `account` (an e-mail already parsed, so a key is at
    /// most 254 bytes; `None` when it did not parse): refused (429) once either has tried too
    /// often.
    pub fn login(&self, client: IpAddr, account: Option<&str>) -> Result<(), AppError> {
        check(&self.login_per_client, &client)?;
        match account {
            Some(email) => check(&self.login_per_account, &email.to_owned()),
            None => Ok(()),
        }
    }

    pub fn signup(&self, client: IpAddr) -> Result<(), AppError> {
        check(&self.signup_per_client, &client)
    }

    /// Forgets keys whose limit has fully recovered, so the maps hold only recent strangers.
    pub fn prune(&self) {
        self.login_per_account.retain_recent();
        self.login_per_account.shrink_to_fit();
        self.login_per_client.retain_recent();
        self.login_per_client.shrink_to_fit();
        self.signup_per_client.retain_recent();
        self.signup_per_client.shrink_to_fit();
    }
}

fn check<K: Clone + std::hash::Hash + Eq>(
    limiter: &DefaultKeyedRateLimiter<K>,
    key: &K,
) -> Result<(), AppError> {
    limiter.check_key(key).map_err(|not_until| {
        let wait = not_until.wait_time_from(Instant::now());
        AppError::rate_limited(wait.as_secs().max(1))
    })
}

/// Prunes the limiters every `every` for the life of the server.
pub async fn prune_every(limits: std::sync::Arc<Limits>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        limits.prune();
    }
}

/// Addresses (`10.0.0.7`) and networks (`10.0.0.0/8`, `fd00::/8`) of the reverse proxies whose
/// `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    pub fn parse(entries: &[String]) -> anyhow::Result<Self> {
        entries
            .iter()
            .map(|entry| {
                let (addr, bits) = entry.split_once('/').unwrap_or((entry, ""));
                let addr: IpAddr = addr
                    .trim()
                    .parse()
                    .map_err(|_| anyhow::anyhow!("trusted_proxies: {entry:?} is not an address"))?;
                let max = if addr.is_ipv4() { 32 } else { 128 };
                let bits = match bits.trim() {
                    "" => max,
                    b => b.parse().ok().filter(|b| *b <= max).ok_or_else(|| {
                        anyhow::anyhow!("trusted_proxies: bad prefix in {entry:?}")
                    })?,
                };
                Ok((addr, bits))
            })
            .collect::<anyhow::Result<_>>()
            .map(Self)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0
            .iter()
            .any(|(net, bits)| same_prefix(*net, ip, *bits))
    }

    /// The client behind `peer`: `peer` itself unless it is a trusted proxy; then the nearest
    /// address in `X-Forwarded-For` (read from the right) that is not a trusted proxy. Entries
    /// further left were written by the client and prove nothing.
    pub fn client(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let mut client = peer;
        for hop in forwarded_for
            .iter()
            .flat_map(|h| h.split(','))
            .rev()
            .map(str::trim)
        {
            match hop.parse::<IpAddr>() {
                Ok(ip) if self.contains(ip) => client = ip,
                Ok(ip) => return ip,
                Err(_) => return client,
            }
        }
        client
    }
}

fn same_prefix(net: IpAddr, ip: IpAddr, bits: u8) -> bool {
    let (net, ip, width) = match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => (u32::from(n) as u128, u32::from(i) as u128, 32),
        (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
        _ => return false,
    };
    let shift = width - u32::from(bits);
    shift >= width || (net >> shift) == (ip >> shift)
}

/// The address of the client a request came from, as [`TrustedProxies::client`] decides.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("no peer address")))?;
        let forwarded: Vec<&str> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        Ok(Self(state.trusted_proxies.client(peer, &forwarded)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxies =
            TrustedProxies::parse(&["10.0.0.0/8".into(), "fd00::1".into()]).expect("parses");
        // A stranger's own header is ignored.
        assert_eq!(
            proxies.client(ip("203.0.113.9"), &["1.2.3.4"]),
            ip("203.0.113.9")
        );
        // Through the proxy: the nearest untrusted hop, not what the client wrote on the left.
        assert_eq!(
            proxies.client(ip("10.1.2.3"), &["6.6.6.6, 198.51.100.7, 10.9.9.9"]),
            ip("198.51.100.7")
        );
        assert_eq!(
            proxies.client(ip("fd00::1"), &["2001:db8::5"]),
            ip("2001:db8::5")
        );
        // A garbled hop stops the walk at the last trusted one.
        assert_eq!(proxies.client(ip("10.1.2.3"), &["junk"]), ip("10.1.2.3"));
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["proxy.local".into()]).is_err());
        assert!(
            TrustedProxies::parse(&["0.0.0.0/0".into()])
                .expect("all")
                .contains(ip("8.8.8.8"))
        );
    }
}
