//! Typed ids, so a show id is never passed where a user id belongs, and the idempotency key.

use serde::{Deserialize, Serialize};

use crate::InvalidInput;

macro_rules! id {
    ($(#[$doc:meta] $name:ident),* $(,)?) => {$(
        #[$doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}

id! {
    /// A user account (buyer, seller, moderator or admin).
    UserId,
    /// A product in a seller's catalog.
    ProductId,
    /// One buyable variant (size, shade) of a product; stock is counted per variant.
    VariantId,
    /// A show: scheduled, live or ended.
    ShowId,
    /// A flash sale inside a show.
    SaleId,
    /// An order (a reservation until it is paid).
    OrderId,
    /// A show-exclusive discount code.
    CodeId,
    /// A live auction of one unit of a variant.
    AuctionId,
}

/// The client's name for one attempt to buy; a retry with the same key gets the first answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub const MAX_LEN: usize = 200;

    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let ok_len = (1..=Self::MAX_LEN).contains(&raw.len());
        let ok_chars = raw.bytes().all(|b| b.is_ascii_graphic());
        if ok_len && ok_chars {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidInput::new(
                "Idempotency-Key",
                format!("must be 1 to {} visible ASCII characters", Self::MAX_LEN),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_key_rejects_empty_long_and_spaces() {
        assert!(IdempotencyKey::parse("abc-123").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(201)).is_err());
    }
}
