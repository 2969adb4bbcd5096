//! Payments go through [`PaymentProvider`]. The only built-in provider is [`TestProvider`]: it
//! moves no money, every page says so, and production configuration refuses it unless explicitly
//! allowed (see `Config::validate`).
//!
//! **Invariant**: a charge is keyed by the order id, and a provider answers a repeated key with
//! the first charge. That, not care at the call sites, is what makes "never charge twice" hold
//! across retries and restarts.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use hawker_core::time::Timestamp;

use crate::clock::Clock;

/// One charge request; `idempotency_key` is the order id.
#[derive(Debug, Clone)]
pub struct ChargeRequest {
    pub idempotency_key: String,
    pub payment_method: String,
    pub amount_cents: i64,
    pub currency: hawker_core::money::Currency,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// The provider's reference, kept on the order for refunds.
    pub id: String,
    pub amount_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    #[error("{0}")]
    Declined(String),
    /// The provider could not be reached or answered ambiguously; the charge may or may not exist.
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait PaymentProvider: Send + Sync + 'static {
    /// Shown to operators and on the test banner.
    fn name(&self) -> &'static str;
    /// Whether this provider moves no real money.
    fn is_test(&self) -> bool;
    /// Whether `method` names a payment method this provider can charge, and its label.
    fn method_label(&self, method: &str) -> Option<String>;
    /// Methods to offer a buyer who has none saved (the test provider's documented cards).
    fn suggested_methods(&self) -> Vec<(String, String)>;
    /// Charges once per idempotency key; a repeat returns the first outcome.
    async fn charge(&self, req: &ChargeRequest) -> Result<Charge, PaymentError>;
    /// The charge made under this key, if any (used to settle reservations after a crash).
    async fn lookup(&self, idempotency_key: &str) -> Result<Option<Charge>, PaymentError>;
    async fn refund(&self, charge_id: &str) -> Result<(), PaymentError>;
}

/// The documented test methods: `pm_card_visa` succeeds, `pm_card_declined` is declined,
/// `pm_card_slow` succeeds after two seconds.
pub const TEST_METHODS: [(&str, &str); 3] = [
    ("pm_card_visa", "Test Visa •••• 4242 (succeeds)"),
    ("pm_card_declined", "Test card (always declined)"),
    ("pm_card_slow", "Test card (succeeds after 2 s)"),
];

/// Keeps its charges in memory, each for at least [`TestProvider::new`]'s `remember_ms`: after a restart it
/// knows none, so reservations left by a crash mid-charge expire and return their stock, as they
/// would if a real charge had failed. A charge is only retried or looked up while its reservation
/// is held, so remembering it a little longer than the hold is enough; remembering every charge
/// would grow the server's memory with every order of a show that never ends.
pub struct TestProvider {
    clock: Clock,
    /// Outcomes by idempotency key: the amount charged, or why not. A plain mutex: held only to
    /// read or insert, never across an `.await`.
    charges: Mutex<Remembered<Result<i64, PaymentError>>>,
    /// Refunded charge ids.
    refunds: Mutex<Remembered<()>>,
    /// Every time it was asked to charge, retries with a known key included.
    asked: std::sync::atomic::AtomicUsize,
    /// Every time it was asked to refund, repeats included.
    refund_requests: std::sync::atomic::AtomicUsize,
}

/// Keys remembered for at least a window and at most two: in two generations, the older emptied
/// whole when the newer is a window old. Emptying a whole map, rather than removing keys one by
/// one as they age, leaves the table no deleted slots to outgrow, so a show that never ends keeps
/// the same memory (keys removed singly under steady churn doubled the table once more, 16 MiB
/// at 1,000 charges a second, minutes into an hour's run).
struct Remembered<V> {
    window_ms: i64,
    /// When `newer` started.
    since: Timestamp,
    newer: HashMap<Box<str>, V>,
    older: HashMap<Box<str>, V>,
}

impl<V> Remembered<V> {
    fn new(window_ms: i64, now: Timestamp) -> Self {
        Self {
            window_ms,
            since: now,
            newer: HashMap::new(),
            older: HashMap::new(),
        }
    }

    fn get(&self, key: &str) -> Option<&V> {
        self.newer.get(key).or_else(|| self.older.get(key))
    }

    /// Remembers `value` under `key` unless a value is already remembered; answers the one that
    /// stands.
    fn remember(&mut self, now: Timestamp, key: &str, value: V) -> &V {
        self.age(now);
        if self.older.contains_key(key) {
            return &self.older[key];
        }
        self.newer.entry(key.into()).or_insert(value)
    }

    fn age(&mut self, now: Timestamp) {
        if now < self.since.plus_ms(self.window_ms) {
            return;
        }
        // Everything in `older` is now more than a window old; so is `newer` after two windows.
        // The tables trade places and the emptied one keeps its size: a generation fills to the
        // last one's length without doubling its way up again, so the memory stays where it is
        // instead of peaking at every turn with a new table copied out of a half-sized one.
        std::mem::swap(&mut self.older, &mut self.newer);
        self.newer.clear();
        if now >= self.since.plus_ms(2 * self.window_ms) {
            self.older.clear();
        }
        self.since = now;
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.newer.iter().chain(&self.older).map(|(k, v)| (&**k, v))
    }
}

impl Default for TestProvider {
    /// On the system clock, remembering charges for a day.
    fn default() -> Self {
        Self::new(Clock::system(), 86_400_000)
    }
}

impl TestProvider {
    /// `remember_ms`: how long a charge is remembered (its key answered with it, `lookup` finding
    /// it); at least as long as a reservation is held.
    pub fn new(clock: Clock, remember_ms: i64) -> Self {
        let now = clock.now();
        Self {
            clock,
            charges: Mutex::new(Remembered::new(remember_ms, now)),
            refunds: Mutex::new(Remembered::new(remember_ms, now)),
            asked: Default::default(),
            refund_requests: Default::default(),
        }
    }

    /// How many distinct successful charges it remembers (tests use it to prove nobody pays twice).
    pub fn successful_charges(&self) -> usize {
        self.charges
            .lock()
            .map(|c| c.iter().filter(|(_, r)| r.is_ok()).count())
            .unwrap_or(0)
    }

    /// How many times it was asked to charge, a known key's retries included.
    pub fn charges_asked(&self) -> usize {
        self.asked.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many times a refund was asked for, repeats of one charge included.
    pub fn refund_requests(&self) -> usize {
        self.refund_requests
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn refunded(&self) -> Vec<String> {
        self.refunds
            .lock()
            .map(|r| r.iter().map(|(id, ())| id.to_owned()).collect())
            .unwrap_or_default()
    }
}

#[async_trait]
impl PaymentProvider for TestProvider {
    fn name(&self) -> &'static str {
        "test"
    }

    fn is_test(&self) -> bool {
        true
    }

    fn method_label(&self, method: &str) -> Option<String> {
        TEST_METHODS
            .iter()
            .find(|(m, _)| *m == method)
            .map(|(_, label)| (*label).to_owned())
    }

    fn suggested_methods(&self) -> Vec<(String, String)> {
        TEST_METHODS
            .iter()
            .map(|(m, l)| ((*m).to_owned(), (*l).to_owned()))
            .collect()
    }

    async fn charge(&self, req: &ChargeRequest) -> Result<Charge, PaymentError> {
        self.asked
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let key = req.idempotency_key.as_str();
        if let Some(first) = self
            .charges
            .lock()
            .map_err(|_| PaymentError::Unavailable("poisoned".into()))?
            .get(key)
        {
            return charge_of(key, first);
        }
        let outcome = match req.payment_method.as_str() {
            "pm_card_visa" => Ok(()),
            "pm_card_slow" => {
                tokio::time::sleep(Duration::from_secs(2)).await;
                Ok(())
            }
            "pm_card_declined" => Err(PaymentError::Declined("your card was declined".into())),
            other => Err(PaymentError::Declined(format!(
                "unknown test payment method {other:?}"
            ))),
        };
        let outcome = outcome.map(|()| req.amount_cents);
        let mut charges = self
            .charges
            .lock()
            .map_err(|_| PaymentError::Unavailable("poisoned".into()))?;
        // A concurrent retry may have finished first; the first outcome stands.
        let first = charges.remember(self.clock.now(), key, outcome);
        charge_of(key, first)
    }

    async fn lookup(&self, idempotency_key: &str) -> Result<Option<Charge>, PaymentError> {
        let charges = self
            .charges
            .lock()
            .map_err(|_| PaymentError::Unavailable("poisoned".into()))?;
        Ok(charges
            .get(idempotency_key)
            .and_then(|outcome| charge_of(idempotency_key, outcome).ok()))
    }

    async fn refund(&self, charge_id: &str) -> Result<(), PaymentError> {
        self.refund_requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.refunds
            .lock()
            .map_err(|_| PaymentError::Unavailable("poisoned".into()))?
            .remember(self.clock.now(), charge_id, ());
        Ok(())
    }
}

/// The charge a remembered outcome stands for: its id is made from the key, so only the amount
/// is kept.
fn charge_of(key: &str, outcome: &Result<i64, PaymentError>) -> Result<Charge, PaymentError> {
    outcome.clone().map(|amount_cents| Charge {
        id: format!("ch_test_{key}"),
        amount_cents,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(key: &str, pm: &str) -> ChargeRequest {
        ChargeRequest {
            idempotency_key: key.into(),
            payment_method: pm.into(),
            amount_cents: 100,
            currency: hawker_core::money::Currency::USD,
        }
    }

    #[tokio::test]
    async fn a_repeated_key_returns_the_first_outcome() {
        let p = TestProvider::default();
        let first = p.charge(&req("o1", "pm_card_visa")).await;
        assert!(first.is_ok());
        assert_eq!(p.charge(&req("o1", "pm_card_declined")).await, first);
        assert!(matches!(
            p.charge(&req("o2", "pm_card_declined")).await,
            Err(PaymentError::Declined(_))
        ));
        assert_eq!(p.successful_charges(), 1);
        assert_eq!(p.lookup("o1").await, Ok(first.ok()));
        assert_eq!(p.lookup("o3").await, Ok(None));
    }

    #[test]
    fn a_new_generation_reuses_a_table_sized_for_the_last() {
        let start = Timestamp(0);
        let mut keys = Remembered::new(1_000, start);
        for i in 0..10_000 {
            keys.remember(start, &format!("o{i}"), ());
        }
        let full = keys.newer.capacity();
        // Two turns on, the first generation's table holds the newest keys: no table was
        // allocated and none grew.
        keys.remember(start.plus_ms(1_000), "a", ());
        keys.remember(start.plus_ms(2_000), "b", ());
        assert_eq!(keys.newer.capacity(), full);
        assert_eq!(keys.newer.len() + keys.older.len(), 2);
    }

    #[tokio::test]
    async fn charges_are_remembered_for_their_window_then_let_go() {
        let clock = Clock::manual();
        let p = TestProvider::new(clock.clone(), 60_000);
        let first = p.charge(&req("o1", "pm_card_visa")).await;
        clock.advance(59_000);
        p.charge(&req("o2", "pm_card_visa")).await.expect("charged");
        assert_eq!(p.charge(&req("o1", "pm_card_declined")).await, first);
        // A window on, the first generation is the older one and still answers.
        clock.advance(2_000);
        p.charge(&req("o3", "pm_card_visa")).await.expect("charged");
        assert_eq!(p.charge(&req("o1", "pm_card_declined")).await, first);
        assert_eq!(p.successful_charges(), 3);
        // Another window on, it is dropped whole; what came after stays.
        clock.advance(60_000);
        p.charge(&req("o4", "pm_card_visa")).await.expect("charged");
        assert_eq!(p.lookup("o1").await, Ok(None));
        assert_eq!(p.lookup("o2").await, Ok(None));
        assert!(p.lookup("o3").await.is_ok_and(|c| c.is_some()));
        assert_eq!(p.successful_charges(), 2);
        // After a long quiet spell nothing old is answered.
        clock.advance(500_000);
        p.refund("ch_test_o4").await.expect("refunded");
        p.charge(&req("o5", "pm_card_visa")).await.expect("charged");
        assert_eq!(p.lookup("o4").await, Ok(None));
        assert_eq!(p.successful_charges(), 1);
        assert_eq!(p.refunded(), ["ch_test_o4"]);
    }
}
