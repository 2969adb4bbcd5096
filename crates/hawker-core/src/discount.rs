//! Show-exclusive discount codes: who may use one, and how much it takes off.
//!
//! **Invariant**: a discount never exceeds the subtotal, so a total is never negative.

use serde::{Deserialize, Serialize};

use crate::InvalidInput;
use crate::ids::CodeId;
use crate::time::Timestamp;

/// What a code takes off an order's subtotal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Discount {
    /// 1 to 100 percent, rounded down to the cent in the buyer's favour of the seller.
    PercentOff(u8),
    /// A fixed amount in cents, capped at the subtotal.
    AmountOffCents(i64),
}

impl Discount {
    /// Exactly one of the two must be given, in range.
    pub fn from_parts(
        percent_off: Option<i64>,
        amount_off_cents: Option<i64>,
    ) -> Result<Self, InvalidInput> {
        match (percent_off, amount_off_cents) {
            (Some(p), None) if (1..=100).contains(&p) => Ok(Self::PercentOff(p as u8)),
            (Some(_), None) => Err(InvalidInput::new(
                "percent_off",
                "must be between 1 and 100",
            )),
            (None, Some(a)) if (1..=crate::money::Price::MAX_CENTS).contains(&a) => {
                Ok(Self::AmountOffCents(a))
            }
            (None, Some(_)) => Err(InvalidInput::new(
                "amount_off_cents",
                "must be a positive amount in cents",
            )),
            _ => Err(InvalidInput::new(
                "percent_off",
                "give exactly one of percent_off and amount_off_cents",
            )),
        }
    }

    /// The amount taken off `subtotal` cents: never negative, never more than the subtotal.
    pub fn amount_off(self, subtotal: i64) -> i64 {
        let subtotal = subtotal.max(0);
        let off = match self {
            Self::PercentOff(p) => subtotal.saturating_mul(i64::from(p.min(100))) / 100,
            Self::AmountOffCents(a) => a.max(0),
        };
        off.min(subtotal)
    }
}

/// A code as the host created it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CodeRule {
    pub id: CodeId,
    /// Normalised: upper-case letters, digits, `-` and `_`.
    pub code: String,
    pub discount: Discount,
    pub max_uses: u32,
    pub expires_at: Option<Timestamp>,
    pub first_order_only: bool,
}

/// Why a code cannot be used for this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodeRejected {
    #[error("this code does not exist in this show")]
    Unknown,
    #[error("this code has expired")]
    Expired,
    #[error("this code has been used up")]
    Exhausted,
    #[error("this code is only for a buyer's first order")]
    NotFirstOrder,
}

impl CodeRule {
    /// Whether `uses` earlier uses still leave room, at `now`, for this buyer.
    pub fn check(
        &self,
        now: Timestamp,
        uses: u32,
        buyer_has_ordered: bool,
    ) -> Result<(), CodeRejected> {
        if self.expires_at.is_some_and(|at| now >= at) {
            return Err(CodeRejected::Expired);
        }
        if uses >= self.max_uses {
            return Err(CodeRejected::Exhausted);
        }
        if self.first_order_only && buyer_has_ordered {
            return Err(CodeRejected::NotFirstOrder);
        }
        Ok(())
    }
}

/// Codes are matched case-insensitively: `spring10` and `SPRING10` are one code.
pub fn normalize_code(raw: &str) -> Result<String, InvalidInput> {
    let code = raw.trim().to_ascii_uppercase();
    let ok_len = (3..=32).contains(&code.len());
    let ok_chars = code
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok_len && ok_chars {
        Ok(code)
    } else {
        Err(InvalidInput::new(
            "code",
            "must be 3 to 32 letters, digits, '-' or '_'",
        ))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn discount_never_exceeds_subtotal(subtotal in 0i64..=10_000_000_000, p in 1i64..=100, a in 1i64..=100_000_000) {
            for d in [Discount::PercentOff(p as u8), Discount::AmountOffCents(a)] {
                let off = d.amount_off(subtotal);
                prop_assert!(off >= 0);
                prop_assert!(subtotal - off >= 0);
            }
        }
    }

    #[test]
    fn rules_in_order_expiry_then_uses_then_first_order() {
        let rule = CodeRule {
            id: CodeId(1),
            code: "LIVE10".into(),
            discount: Discount::PercentOff(10),
            max_uses: 2,
            expires_at: Some(Timestamp(1_000)),
            first_order_only: true,
        };
        assert_eq!(rule.check(Timestamp(999), 0, false), Ok(()));
        assert_eq!(
            rule.check(Timestamp(1_000), 0, false),
            Err(CodeRejected::Expired)
        );
        assert_eq!(
            rule.check(Timestamp(0), 2, false),
            Err(CodeRejected::Exhausted)
        );
        assert_eq!(
            rule.check(Timestamp(0), 1, true),
            Err(CodeRejected::NotFirstOrder)
        );
        assert_eq!(Discount::PercentOff(10).amount_off(1999), 199);
        assert_eq!(Discount::AmountOffCents(5000).amount_off(1999), 1999);
    }

    #[test]
    fn discount_needs_exactly_one_part() {
        assert!(Discount::from_parts(Some(10), Some(100)).is_err());
        assert!(Discount::from_parts(None, None).is_err());
        assert!(Discount::from_parts(Some(0), None).is_err());
        assert!(Discount::from_parts(Some(101), None).is_err());
        assert!(Discount::from_parts(None, Some(-1)).is_err());
        assert_eq!(normalize_code(" live-10 "), Ok("LIVE-10".into()));
        assert!(normalize_code("no spaces").is_err());
    }
}
