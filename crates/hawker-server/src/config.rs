//! Layered configuration: built-in defaults, then an optional TOML file (`HAWKER_CONFIG`, or
//! `./hawker.toml` if present), then `HAWKER_*` environment variables. `hawker config
//! --print-defaults` prints every setting with its default.

use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Every setting. Each field `x` can be set as `x = …` in the TOML file or `HAWKER_X=…`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on; port 0 picks a free one.
    pub listen: String,
    /// Where the SQLite database and uploaded images live.
    pub data_dir: PathBuf,
    /// `sqlite://path/to/file.db`; empty means `<data_dir>/hawker.db`. May hold a password, so it
    /// is redacted from `Debug`.
    pub database_url: String,
    /// `development` or `production`. Production refuses the test payment provider unless
    /// `allow_test_payments` is set.
    pub environment: String,
    /// `test` is the only built-in provider (see README, "Payments").
    pub payment_provider: String,
    /// Lets production run with the test payment provider (a demo instance, never a real shop).
    pub allow_test_payments: bool,
    /// Seconds an unpaid reservation holds its units before they return to stock.
    pub reservation_hold_s: i64,
    /// Most buy decisions committed in one transaction (one fsync).
    pub commit_batch_max: usize,
    /// SQLite's `synchronous` pragma: `full` (durable, the default) or `normal` (faster, can lose
    /// the last commits on power loss; never for a real shop).
    pub sqlite_synchronous: String,
    /// Argon2id memory cost in KiB (OWASP: at least 19456).
    pub argon2_memory_kib: u32,
    /// Argon2id iterations.
    pub argon2_iterations: u32,
    /// Password hashes (log-ins, sign-ups) that may wait for a core; more are refused with 503
    /// and `Retry-After` (one hash runs per core but one, each with `argon2_memory_kib`).
    pub password_hash_queue: usize,
    /// Mark cookies `Secure` always. Without it they are marked `Secure` when the request came
    /// over HTTPS through a trusted proxy (`X-Forwarded-Proto: https`).
    pub secure_cookies: bool,
    /// Seconds a log-in session lasts (the cookie's `Max-Age`, and the server forgets it after).
    pub session_lifetime_s: i64,
    /// Seconds an API token lasts from its creation; then it stops working.
    pub api_token_lifetime_s: i64,
    /// Largest image upload in bytes.
    pub max_upload_bytes: usize,
    /// Batches of room messages (a room sends one per batch window, see `live::room`) a viewer
    /// may fall behind before getting a fresh snapshot instead.
    pub viewer_buffer: usize,
    /// The auction bid increments: `[from_cents, step_cents]` rows, from 0 upwards (set in the
    /// TOML file). Each auction publishes the table it ran with in its log.
    pub auction_increments: Vec<[i64; 2]>,
    /// The UDP port for all WebRTC media (WHIP and WHEP); 0 picks a free one.
    pub media_port: u16,
    /// The address publishers and viewers reach the media port at, advertised as the server's
    /// ICE candidate. The default works on this machine only; set the public address to serve
    /// other machines.
    pub public_ip: String,
    /// Most WHEP viewers of one show, counted once connected.
    pub max_viewers_per_show: usize,
    /// Most WebRTC sessions (publishers and viewers) on this server.
    pub max_media_sessions: usize,
    /// Seconds viewers wait for a host whose connection dropped before the video goes off air.
    pub reconnect_grace_s: u64,
    /// Log-in attempts per account per minute (a burst of this many, then one per 60/n s).
    pub login_attempts_per_account_per_minute: u32,
    /// Log-in attempts per client address per minute.
    pub login_attempts_per_client_per_minute: u32,
    /// Sign-ups per client address per hour.
    pub signups_per_client_per_hour: u32,
    /// WHEP offers (each starts a WebRTC session) per client address per minute.
    pub media_offers_per_client_per_minute: u32,
    /// Most video sessions one client address holds (several viewers behind one NAT).
    pub media_sessions_per_client: usize,
    /// Most video sessions of one client address still connecting (they expire in seconds).
    pub pending_media_per_client: usize,
    /// Most live-room sockets one client address holds open, over all shows.
    pub sockets_per_client: usize,
    /// Image uploads (product photos, show covers) per account per hour.
    pub uploads_per_account_per_hour: u32,
    /// Reverse proxies (addresses or networks such as `10.0.0.0/8`) whose `X-Forwarded-For`
    /// names the client. Empty: the peer address is the client. Env: comma-separated.
    pub trusted_proxies: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./hawker-data"),
            database_url: String::new(),
            environment: "development".into(),
            payment_provider: "test".into(),
            allow_test_payments: false,
            reservation_hold_s: 600,
            commit_batch_max: 2048,
            sqlite_synchronous: "full".into(),
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            password_hash_queue: 32,
            secure_cookies: false,
            session_lifetime_s: 30 * 24 * 3600,
            api_token_lifetime_s: 365 * 24 * 3600,
            max_upload_bytes: 5 * 1024 * 1024,
            viewer_buffer: 256,
            // Whatnot's table: $1 steps, $2 from $30, $3 from $50, $5 from $100, $10 from $300,
            // $20 from $1,000, $50 from $2,000.
            auction_increments: vec![
                [0, 100],
                [3_000, 200],
                [5_000, 300],
                [10_000, 500],
                [30_000, 1_000],
                [100_000, 2_000],
                [200_000, 5_000],
            ],
            media_port: 8189,
            public_ip: "127.0.0.1".into(),
            max_viewers_per_show: 500,
            max_media_sessions: 2_000,
            reconnect_grace_s: 120,
            login_attempts_per_account_per_minute: 10,
            login_attempts_per_client_per_minute: 60,
            signups_per_client_per_hour: 20,
            media_offers_per_client_per_minute: 60,
            media_sessions_per_client: 20,
            pending_media_per_client: 4,
            sockets_per_client: 50,
            uploads_per_account_per_hour: 120,
            trusted_proxies: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut shown = self.clone();
        if shown.database_url.contains('@') {
            shown.database_url = "<redacted>".into();
        }
        f.write_str(&toml::to_string(&shown).unwrap_or_default())
    }
}

impl Config {
    /// Defaults, then the TOML file, then the environment.
    pub fn load() -> anyhow::Result<Self> {
        let path = std::env::var("HAWKER_CONFIG").ok().map(PathBuf::from);
        let file = match &path {
            Some(p) => Some(
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
            ),
            None => std::fs::read_to_string("hawker.toml").ok(),
        };
        let mut config: Config = match file {
            Some(text) => toml::from_str(&text).context("parsing the configuration file")?,
            None => Config::default(),
        };
        config.apply_env(|key| std::env::var(key).ok())?;
        Ok(config)
    }

    /// Applies `HAWKER_*` variables found by `get`.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        fn parse<T: std::str::FromStr>(key: &str, raw: String) -> anyhow::Result<T> {
            raw.parse()
                .map_err(|_| anyhow::anyhow!("{key}: cannot parse {raw:?}"))
        }
        if let Some(v) = get("HAWKER_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = get("HAWKER_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = get("HAWKER_DATABASE_URL") {
            self.database_url = v;
        }
        if let Some(v) = get("HAWKER_ENVIRONMENT") {
            self.environment = v;
        }
        if let Some(v) = get("HAWKER_PAYMENT_PROVIDER") {
            self.payment_provider = v;
        }
        if let Some(v) = get("HAWKER_ALLOW_TEST_PAYMENTS") {
            self.allow_test_payments = parse("HAWKER_ALLOW_TEST_PAYMENTS", v)?;
        }
        if let Some(v) = get("HAWKER_RESERVATION_HOLD_S") {
            self.reservation_hold_s = parse("HAWKER_RESERVATION_HOLD_S", v)?;
        }
        if let Some(v) = get("HAWKER_COMMIT_BATCH_MAX") {
            self.commit_batch_max = parse("HAWKER_COMMIT_BATCH_MAX", v)?;
        }
        if let Some(v) = get("HAWKER_SQLITE_SYNCHRONOUS") {
            self.sqlite_synchronous = v;
        }
        if let Some(v) = get("HAWKER_ARGON2_MEMORY_KIB") {
            self.argon2_memory_kib = parse("HAWKER_ARGON2_MEMORY_KIB", v)?;
        }
        if let Some(v) = get("HAWKER_ARGON2_ITERATIONS") {
            self.argon2_iterations = parse("HAWKER_ARGON2_ITERATIONS", v)?;
        }
        if let Some(v) = get("HAWKER_PASSWORD_HASH_QUEUE") {
            self.password_hash_queue = parse("HAWKER_PASSWORD_HASH_QUEUE", v)?;
        }
        if let Some(v) = get("HAWKER_SECURE_COOKIES") {
            self.secure_cookies = parse("HAWKER_SECURE_COOKIES", v)?;
        }
        if let Some(v) = get("HAWKER_SESSION_LIFETIME_S") {
            self.session_lifetime_s = parse("HAWKER_SESSION_LIFETIME_S", v)?;
        }
        if let Some(v) = get("HAWKER_API_TOKEN_LIFETIME_S") {
            self.api_token_lifetime_s = parse("HAWKER_API_TOKEN_LIFETIME_S", v)?;
        }
        if let Some(v) = get("HAWKER_MAX_UPLOAD_BYTES") {
            self.max_upload_bytes = parse("HAWKER_MAX_UPLOAD_BYTES", v)?;
        }
        if let Some(v) = get("HAWKER_VIEWER_BUFFER") {
            self.viewer_buffer = parse("HAWKER_VIEWER_BUFFER", v)?;
        }
        if let Some(v) = get("HAWKER_MEDIA_PORT") {
            self.media_port = parse("HAWKER_MEDIA_PORT", v)?;
        }
        if let Some(v) = get("HAWKER_PUBLIC_IP") {
            self.public_ip = v;
        }
        if let Some(v) = get("HAWKER_MAX_VIEWERS_PER_SHOW") {
            self.max_viewers_per_show = parse("HAWKER_MAX_VIEWERS_PER_SHOW", v)?;
        }
        if let Some(v) = get("HAWKER_MAX_MEDIA_SESSIONS") {
            self.max_media_sessions = parse("HAWKER_MAX_MEDIA_SESSIONS", v)?;
        }
        if let Some(v) = get("HAWKER_RECONNECT_GRACE_S") {
            self.reconnect_grace_s = parse("HAWKER_RECONNECT_GRACE_S", v)?;
        }
        if let Some(v) = get("HAWKER_LOGIN_ATTEMPTS_PER_ACCOUNT_PER_MINUTE") {
            self.login_attempts_per_account_per_minute =
                parse("HAWKER_LOGIN_ATTEMPTS_PER_ACCOUNT_PER_MINUTE", v)?;
        }
        if let Some(v) = get("HAWKER_LOGIN_ATTEMPTS_PER_CLIENT_PER_MINUTE") {
            self.login_attempts_per_client_per_minute =
                parse("HAWKER_LOGIN_ATTEMPTS_PER_CLIENT_PER_MINUTE", v)?;
        }
        if let Some(v) = get("HAWKER_SIGNUPS_PER_CLIENT_PER_HOUR") {
            self.signups_per_client_per_hour = parse("HAWKER_SIGNUPS_PER_CLIENT_PER_HOUR", v)?;
        }
        if let Some(v) = get("HAWKER_MEDIA_OFFERS_PER_CLIENT_PER_MINUTE") {
            self.media_offers_per_client_per_minute =
                parse("HAWKER_MEDIA_OFFERS_PER_CLIENT_PER_MINUTE", v)?;
        }
        if let Some(v) = get("HAWKER_MEDIA_SESSIONS_PER_CLIENT") {
            self.media_sessions_per_client = parse("HAWKER_MEDIA_SESSIONS_PER_CLIENT", v)?;
        }
        if let Some(v) = get("HAWKER_PENDING_MEDIA_PER_CLIENT") {
            self.pending_media_per_client = parse("HAWKER_PENDING_MEDIA_PER_CLIENT", v)?;
        }
        if let Some(v) = get("HAWKER_SOCKETS_PER_CLIENT") {
            self.sockets_per_client = parse("HAWKER_SOCKETS_PER_CLIENT", v)?;
        }
        if let Some(v) = get("HAWKER_UPLOADS_PER_ACCOUNT_PER_HOUR") {
            self.uploads_per_account_per_hour = parse("HAWKER_UPLOADS_PER_ACCOUNT_PER_HOUR", v)?;
        }
        if let Some(v) = get("HAWKER_TRUSTED_PROXIES") {
            self.trusted_proxies = v
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect();
        }
        Ok(())
    }

    /// The database URL, with the default filled in.
    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("hawker.db").display())
        } else {
            self.database_url.clone()
        }
    }

    pub fn increments(
        &self,
    ) -> Result<hawker_core::auction::Increments, hawker_core::InvalidInput> {
        hawker_core::auction::Increments::new(
            self.auction_increments
                .iter()
                .map(|[from, step]| (*from, *step))
                .collect(),
        )
    }

    /// The media plane's settings.
    pub fn media(&self) -> anyhow::Result<hawker_media::MediaConfig> {
        let public_ip: std::net::IpAddr = self.public_ip.parse().map_err(|_| {
            anyhow::anyhow!("public_ip must be an IP address, not {:?}", self.public_ip)
        })?;
        if public_ip.is_unspecified() {
            anyhow::bail!("public_ip must be the address clients reach, not {public_ip}");
        }
        if self.reconnect_grace_s > 3_600 {
            anyhow::bail!("reconnect_grace_s must be at most 3600 (an hour)");
        }
        Ok(hawker_media::MediaConfig {
            port: self.media_port,
            public_ip,
            max_viewers_per_show: self.max_viewers_per_show,
            max_sessions: self.max_media_sessions,
            max_sessions_per_client: self.media_sessions_per_client,
            max_pending_per_client: self.pending_media_per_client,
            reconnect_grace: std::time::Duration::from_secs(self.reconnect_grace_s),
        })
    }

    pub fn uploads_dir(&self) -> PathBuf {
        self.data_dir.join("uploads")
    }

    /// Refuses settings that would be dangerous, with a message saying how to fix them.
    pub fn validate(&self) -> anyhow::Result<()> {
        match self.environment.as_str() {
            "development" | "production" => {}
            other => anyhow::bail!("environment must be development or production, not {other:?}"),
        }
        if self.payment_provider != "test" {
            anyhow::bail!(
                "payment_provider {:?} is unknown; the built-in provider is \"test\"",
                self.payment_provider
            );
        }
        if self.environment == "production"
            && self.payment_provider == "test"
            && !self.allow_test_payments
        {
            anyhow::bail!(
                "refusing to start: production uses the TEST payment provider, which moves no money. \
                 Configure a real provider, or set HAWKER_ALLOW_TEST_PAYMENTS=true for a demo instance."
            );
        }
        match self.sqlite_synchronous.as_str() {
            "full" | "normal" => {}
            other => anyhow::bail!("sqlite_synchronous must be full or normal, not {other:?}"),
        }
        if self.reservation_hold_s < 5 {
            anyhow::bail!("reservation_hold_s must be at least 5");
        }
        self.increments()
            .map_err(|e| anyhow::anyhow!("auction_increments: {e}"))?;
        self.media()?;
        if self.commit_batch_max == 0 {
            anyhow::bail!("commit_batch_max must be at least 1");
        }
        Ok(())
    }

    /// The defaults as a TOML file, for `hawker config --print-defaults`.
    pub fn defaults_toml() -> String {
        let mut out = String::from(
            "# Hawker settings and their defaults. Each key `x` can also be set as HAWKER_X.\n",
        );
        out.push_str(&toml::to_string(&Config::default()).unwrap_or_default());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_refuses_the_test_provider_unless_allowed() {
        let mut c = Config {
            environment: "production".into(),
            ..Config::default()
        };
        let err = c
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("TEST payment provider"), "{err}");
        c.allow_test_payments = true;
        assert!(c.validate().is_ok());
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn the_default_increments_are_the_documented_table() {
        assert_eq!(
            Config::default().increments().ok(),
            Some(hawker_core::auction::Increments::standard())
        );
        let bad = Config {
            auction_increments: vec![[100, 5]],
            ..Config::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn environment_overrides_defaults() {
        let mut c = Config::default();
        c.apply_env(|k| (k == "HAWKER_LISTEN").then(|| "0.0.0.0:9000".to_string()))
            .expect("applies");
        assert_eq!(c.listen, "0.0.0.0:9000");
        assert!(
            c.apply_env(|k| (k == "HAWKER_RESERVATION_HOLD_S").then(|| "soon".to_string()))
                .is_err()
        );
        assert!(Config::defaults_toml().contains("listen = \"127.0.0.1:8080\""));
    }
}
