//! Password hashing (argon2id), bounded so that a crowd of log-ins cannot take the machine.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use tokio::sync::Semaphore;

use crate::secrets::random_token;

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Too many hashes wait already: try again in a second.
    #[error("too many log-ins at once; try again in a second")]
    Busy,
    #[error(transparent)]
    Failed(anyhow::Error),
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
    ) -> Result<T, PasswordError> {
        struct Waiting<'a>(&'a AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(PasswordError::Busy);
        }
        let permit = {
            let _waiting = Waiting(&self.waiting);
            self.running
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| PasswordError::Busy)?
        };
        let argon = self.argon2();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job(argon)
        })
        .await
        .map_err(|e| PasswordError::Failed(anyhow::anyhow!("password hashing failed: {e}")))
    }

    /// Hashes off the async threads: argon2 is deliberately slow.
    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let password = password.to_owned();
        self.bounded(move |argon| hash_with(&argon, &password))
            .await?
            .map_err(PasswordError::Failed)
    }

    /// Whether `password` matches `hash`; with no hash (an unknown e-mail) it checks the dummy
    /// hash, taking the same time, and answers `false`.
    pub async fn verify(&self, hash: Option<&str>, password: &str) -> Result<bool, PasswordError> {
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
