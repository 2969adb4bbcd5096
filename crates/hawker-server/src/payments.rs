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

/// Keeps its charges in memory: after a restart it knows none, so reservations left by a crash
/// mid-charge expire and return their stock, as they would if a real charge had failed.
#[derive(Default)]
pub struct TestProvider {
    /// Charges by idempotency key. A plain mutex: held only to read or insert, never across
    /// an `.await`.
    charges: Mutex<HashMap<String, Result<Charge, PaymentError>>>,
    /// Refunded charge ids.
    refunds: Mutex<Vec<String>>,
    /// Every time it was asked to charge, retries with a known key included.
    asked: std::sync::atomic::AtomicUsize,
    /// Every time it was asked to refund, repeats included.
    refund_requests: std::sync::atomic::AtomicUsize,
}

impl TestProvider {
    /// How many distinct successful charges exist (tests use it to prove nobody pays twice).
    pub fn successful_charges(&self) -> usize {
        self.charges
            .lock()
            .map(|c| c.values().filter(|r| r.is_ok()).count())
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
        // A concurrent retry may have finished first; the first outcome stands.
        Ok(charges
            .entry(req.idempotency_key.clone())
            .or_insert(outcome)
            .clone()?)
    }

    async fn lookup(&self, idempotency_key: &str) -> Result<Option<Charge>, PaymentError> {
        let charges = self
            .charges
            .lock()
            .map_err(|_| PaymentError::Unavailable("poisoned".into()))?;
        Ok(charges.get(idempotency_key).and_then(|r| r.clone().ok()))
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
}
