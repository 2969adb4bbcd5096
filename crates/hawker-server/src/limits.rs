//! Abuse limits for work any stranger can ask for: how often a client address or an account may
//! try to log in, sign up or offer to watch video (GCRA limiters from `governor`, keyed), how
//! many live sockets one address holds open ([`Occupancy`]), and who the client is when Hawker
//! runs behind a reverse proxy (`X-Forwarded-For`, believed only from `trusted_proxies`). The
//! request extractors that read them are in [`crate::auth`].
//!
//! Password hashing itself is bounded separately, by [`crate::passwords::Passwords`], and video
//! sessions per address by the media plane.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use governor::clock::Reference;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use hawker_core::ids::UserId;

use crate::clock::Clock;
use crate::config::Config;

/// Refused by a limit, for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TooOften {
    /// Too many attempts: the next one is allowed in `retry_after_s`.
    #[error("too many attempts; try again in {retry_after_s} s")]
    Attempts { retry_after_s: u64 },
    /// Too many live sockets open from this address.
    #[error("too many live connections from this address")]
    Sockets,
}

/// A GCRA limiter per key, on the server's clock.
type Limiter<K> =
    RateLimiter<K, DefaultKeyedStateStore<K>, ServerClock, NoOpMiddleware<ServerInstant>>;

/// The limiters, one per kind of attempt and key.
pub struct Limits {
    login_per_account: Limiter<String>,
    login_per_client: Limiter<IpAddr>,
    signup_per_client: Limiter<IpAddr>,
    media_offers_per_client: Limiter<IpAddr>,
    uploads_per_account: Limiter<i64>,
    sockets_per_client: Arc<Occupancy>,
    clock: ServerClock,
}

/// The server's [`Clock`] as `governor` reads time, so a test's manual clock moves the limits
/// too.
#[derive(Clone)]
struct ServerClock(Clock);

/// Nanoseconds of the clock's monotonic time: a wall clock stepped back must not lock clients
/// out, nor one stepped forward refill every limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct ServerInstant(u64);

impl std::ops::Add<Nanos> for ServerInstant {
    type Output = Self;

    fn add(self, other: Nanos) -> Self {
        Self(self.0.saturating_add(other.as_u64()))
    }
}

impl Reference for ServerInstant {
    fn duration_since(&self, earlier: Self) -> Nanos {
        self.0.saturating_sub(earlier.0).into()
    }

    fn saturating_sub(&self, duration: Nanos) -> Self {
        Self(self.0.saturating_sub(duration.as_u64()))
    }
}

impl governor::clock::Clock for ServerClock {
    type Instant = ServerInstant;

    fn now(&self) -> ServerInstant {
        ServerInstant(u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }
}

impl Limits {
    pub fn new(config: &Config, clock: Clock) -> Self {
        let clock = ServerClock(clock);
        fn keyed<K: Clone + std::hash::Hash + Eq>(quota: Quota, clock: &ServerClock) -> Limiter<K> {
            RateLimiter::hashmap_with_clock(quota, clock.clone())
        }
        let per_minute = |n: u32| Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        let per_hour = |n: u32| Quota::per_hour(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        Self {
            login_per_account: keyed(
                per_minute(config.login_attempts_per_account_per_minute),
                &clock,
            ),
            login_per_client: keyed(
                per_minute(config.login_attempts_per_client_per_minute),
                &clock,
            ),
            signup_per_client: keyed(per_hour(config.signups_per_client_per_hour), &clock),
            media_offers_per_client: keyed(
                per_minute(config.media_offers_per_client_per_minute),
                &clock,
            ),
            uploads_per_account: keyed(per_hour(config.uploads_per_account_per_hour), &clock),
            sockets_per_client: Occupancy::new(config.sockets_per_client),
            clock,
        }
    }

    /// A log-in attempt from `client` for `account` (an e-mail already parsed, so a key is at
    /// most 254 bytes; `None` when it did not parse): refused (429) once either has tried too
    /// often.
    pub fn login(&self, client: IpAddr, account: Option<&str>) -> Result<(), TooOften> {
        self.check(&self.login_per_client, &client)?;
        match account {
            Some(email) => self.check(&self.login_per_account, &email.to_owned()),
            None => Ok(()),
        }
    }

    pub fn signup(&self, client: IpAddr) -> Result<(), TooOften> {
        self.check(&self.signup_per_client, &client)
    }

    /// A WHEP offer: each builds a WebRTC session, so a client looping offers (and DELETEs)
    /// is slowed down here; the media plane bounds the sessions one address holds.
    pub fn media_offer(&self, client: IpAddr) -> Result<(), TooOften> {
        self.check(&self.media_offers_per_client, &client)
    }

    /// An image upload by `account`: each is up to `max_upload_bytes` on disk, kept forever.
    pub fn upload(&self, account: UserId) -> Result<(), TooOften> {
        self.check(&self.uploads_per_account, &account.0)
    }

    /// A seat for one live-room socket of `client`, held until the socket closes.
    pub fn socket(&self, client: IpAddr) -> Result<Seat, TooOften> {
        self.sockets_per_client
            .take(client)
            .ok_or(TooOften::Sockets)
    }

    fn check<K: Clone + std::hash::Hash + Eq>(
        &self,
        limiter: &Limiter<K>,
        key: &K,
    ) -> Result<(), TooOften> {
        use governor::clock::Clock as _;
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            TooOften::Attempts {
                retry_after_s: wait.as_secs().max(1),
            }
        })
    }

    /// Forgets keys whose limit has fully recovered, so the maps hold only recent strangers.
    pub fn prune(&self) {
        self.login_per_account.retain_recent();
        self.login_per_account.shrink_to_fit();
        self.login_per_client.retain_recent();
        self.login_per_client.shrink_to_fit();
        self.signup_per_client.retain_recent();
        self.signup_per_client.shrink_to_fit();
        self.media_offers_per_client.retain_recent();
        self.media_offers_per_client.shrink_to_fit();
        self.uploads_per_account.retain_recent();
        self.uploads_per_account.shrink_to_fit();
    }
}

/// How many of something long-lived (live sockets) each client address holds, up to a limit.
/// A [`Seat`] is given back when dropped, however its holder ends.
pub struct Occupancy {
    limit: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

impl Occupancy {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            held: Mutex::new(HashMap::new()),
        })
    }

    /// A seat for `client`, or `None` when it holds `limit` already.
    pub fn take(self: &Arc<Self>, client: IpAddr) -> Option<Seat> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let n = held.entry(client).or_default();
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(Seat {
            occupancy: self.clone(),
            client,
        })
    }

    #[cfg(test)]
    fn held_by(&self, client: IpAddr) -> usize {
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.get(&client).copied().unwrap_or(0)
    }
}

pub struct Seat {
    occupancy: Arc<Occupancy>,
    client: IpAddr,
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut held = self
            .occupancy
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = held.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.client);
            }
        }
    }
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

/// The address of the client a request came from, as [`TrustedProxies::client`] decides, which
/// the per-client limits key on. An IPv6 client is its /64: one subscriber gets a whole /64, so
/// keying on the full address would give an attacker 2^64 keys.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    pub fn of(ip: IpAddr) -> Self {
        Self(match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
            },
            v4 => v4,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_is_its_slash_64() {
        assert_eq!(
            ClientIp::of(ip("2001:db8:1:2:aaaa::1")).0,
            ip("2001:db8:1:2::")
        );
        assert_eq!(ClientIp::of(ip("::ffff:192.0.2.7")).0, ip("192.0.2.7"));
        assert_eq!(ClientIp::of(ip("192.0.2.7")).0, ip("192.0.2.7"));
    }

    #[test]
    fn seats_are_limited_per_client_and_given_back_when_dropped() {
        let sockets = Occupancy::new(2);
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        let first = sockets.take(a).expect("one");
        let _second = sockets.take(a).expect("two");
        assert!(sockets.take(a).is_none(), "a third from the same address");
        let _other = sockets.take(b).expect("another address is not affected");
        drop(first);
        assert!(sockets.take(a).is_some(), "a seat given back is free again");
        assert_eq!(sockets.held_by(b), 1);
    }

    #[test]
    fn a_limited_client_is_let_in_again_as_its_clock_moves() {
        let clock = Clock::manual();
        let config = Config {
            login_attempts_per_client_per_minute: 2,
            ..Config::default()
        };
        let limits = Limits::new(&config, clock.clone());
        let client = ip("192.0.2.1");
        assert!(limits.login(client, None).is_ok());
        assert!(limits.login(client, None).is_ok());
        assert_eq!(
            limits.login(client, None),
            Err(TooOften::Attempts { retry_after_s: 30 }),
            "one attempt comes back every 30 s"
        );
        assert!(
            limits.login(ip("192.0.2.2"), None).is_ok(),
            "others are not held"
        );
        clock.advance(29_000);
        assert!(limits.login(client, None).is_err());
        clock.advance(1_000);
        assert!(limits.login(client, None).is_ok());
    }

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
