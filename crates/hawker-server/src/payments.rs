//! Payments go through [`PaymentProvider`]. The only built-in provider is [`TestProvider`]: it
//! moves no money, every page says so, and production configuration refuses it unless explicitly
//! allowed (see `Config::validate`).
//!
//! **Invariant**: a charge is keyed by the order id, and a provider answers a repeated key with
//! the first charge. That, not care at the call sites, is what makes "never charge twice" hold
//! across retries and restarts.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
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

/// Keeps its charges in memory, each for [`TestProvider::new`]'s `remember_ms`: after a restart it
/// knows none, so reservations left by a crash mid-charge expire and return their stock, as they
/// would if a real charge had failed. A charge is only retried or looked up while its reservation
/// is held, so remembering it a little longer than the hold is enough; remembering every charge
/// would grow the server's memory with every order of a show that never ends.
pub struct TestProvider {
    clock: Clock,
    remember_ms: i64,
    /// Charges by idempotency key. A plain mutex: held only to read or insert, never across
    /// an `.await`.
    charges: Mutex<Charges>,
    /// Refunded charge ids.
    refunds: Mutex<Vec<String>>,
    /// Every time it was asked to charge, retries with a known key included.
    asked: std::sync::atomic::AtomicUsize,
    /// Every time it was asked to refund, repeats included.
    refund_requests: std::sync::atomic::AtomicUsize,
}

#[derive(Default)]
struct Charges {
    by_key: HashMap<String, Result<Charge, PaymentError>>,
    /// Keys in the order they were charged, to forget the oldest.
    made: VecDeque<(Timestamp, String)>,
}

impl Charges {
    fn forget_before(&mut self, cutoff: Timestamp) {
        while let Some((at, _)) = self.made.front()
            && *at < cutoff
        {
            if let Some((_, key)) = self.made.pop_front() {
                self.by_key.remove(&key);
            }
        }
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
        Self {
            clock,
            remember_ms,
            charges: Mutex::new(Charges::default()),
            refunds: Mutex::new(Vec::new()),
            asked: Default::default(),
            refund_requests: Default::default(),
        }
    }

    /// How many distinct successful charges it remembers (tests use it to prove nobody pays twice).
    pub fn successful_charges(&self) -> usize {
        self.charges
            .lock()
            .map(|c| c.by_key.values().filter(|r| r.is_ok()).count())
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
        self.refunds.lock().map(|r| r.clone()).unwrap_or_default()
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
        if let Some(first) = self
            .charges
            .lock()
            .map_err(|_| PaymentError::Unavailable("poisoned".into()))?
            .by_key
            .get(&req.idempotency_key)
        {
            return first.clone();
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
        let outcome = outcome.map(|()| Charge {
            id: format!("ch_test_{}", req.idempotency_key),
            amount_cents: req.amount_cents,
        });
        let mut charges = self
            .charges
            .lock()
            .map_err(|_| PaymentError::Unavailable("poisoned".into()))?;
        let now = self.clock.now();
        charges.forget_before(now.plus_ms(-self.remember_ms));
        // A concurrent retry may have finished first; the first outcome stands.
        let charges = &mut *charges;
        match charges.by_key.entry(req.idempotency_key.clone()) {
            Entry::Occupied(first) => first.get().clone(),
            Entry::Vacant(slot) => {
                charges.made.push_back((now, req.idempotency_key.clone()));
                slot.insert(outcome).clone()
            }
        }
    }

    async fn lookup(&self, idempotency_key: &str) -> Result<Option<Charge>, PaymentError> {
        let charges = self
            .charges
            .lock()
            .map_err(|_| PaymentError::Unavailable("poisoned".into()))?;
        Ok(charges
            .by_key
            .get(idempotency_key)
            .and_then(|r| r.clone().ok()))
    }

    async fn refund(&self, charge_id: &str) -> Result<(), PaymentError> {
        self.refund_requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut refunds = self
            .refunds
            .lock()
            .map_err(|_| PaymentError::Unavailable("poisoned".into()))?;
        if !refunds.iter().any(|r| r == charge_id) {
            refunds.push(charge_id.to_owned());
        }
        Ok(())
    }
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

    #[tokio::test]
    async fn charges_are_remembered_for_their_window_then_let_go() {
        let clock = Clock::manual();
        let p = TestProvider::new(clock.clone(), 60_000);
        let first = p.charge(&req("o1", "pm_card_visa")).await;
        clock.advance(59_000);
        p.charge(&req("o2", "pm_card_visa")).await.expect("charged");
        assert_eq!(p.charge(&req("o1", "pm_card_declined")).await, first);
        clock.advance(2_000);
        p.charge(&req("o3", "pm_card_visa")).await.expect("charged");
        assert_eq!(p.lookup("o1").await, Ok(None));
        assert!(p.lookup("o2").await.is_ok_and(|c| c.is_some()));
        assert_eq!(p.successful_charges(), 2);
    }
}
