//! Prices in minor units (cents) with their currency. Amounts are `i64` cents; a [`Price`] is a
//! checked, positive amount below [`Price::MAX_CENTS`], so sums of a few thousand never overflow.

use serde::{Deserialize, Serialize};

use crate::InvalidInput;

/// An ISO 4217 code: three upper-case ASCII letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    pub const USD: Currency = Currency(*b"USD");

    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let bytes = raw.as_bytes();
        match bytes {
            [a, b, c] if bytes.iter().all(u8::is_ascii_uppercase) => Ok(Self([*a, *b, *c])),
            _ => Err(InvalidInput::new(
                "currency",
                "must be a three-letter ISO code such as USD",
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        // Constructed only from ASCII upper-case letters.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl std::fmt::Display for Currency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl schemars::JsonSchema for Currency {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Currency".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An ISO 4217 code: three upper-case ASCII letters.",
            "type": "string",
            "pattern": "^[A-Z]{3}$"
        })
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A unit price in cents: at least 1, at most [`Price::MAX_CENTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Price(i64);

impl Price {
    /// One million in major units.
    pub const MAX_CENTS: i64 = 100_000_000;

    pub fn new(field: &'static str, cents: i64) -> Result<Self, InvalidInput> {
        if (1..=Self::MAX_CENTS).contains(&cents) {
            Ok(Self(cents))
        } else {
            Err(InvalidInput::new(
                field,
                format!("must be between 1 and {} cents", Self::MAX_CENTS),
            ))
        }
    }

    pub fn cents(self) -> i64 {
        self.0
    }
}

/// Formats cents for people: `1999` in USD is `$19.99`.
pub fn format_cents(cents: i64, currency: &str) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    let symbol = match currency {
        "USD" => "$",
        "EUR" => "€",
        "GBP" => "£",
        _ => "",
    };
    let major = abs / 100;
    let minor = abs % 100;
    if symbol.is_empty() {
        format!("{sign}{major}.{minor:02} {currency}")
    } else {
        format!("{sign}{symbol}{major}.{minor:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_and_price_parse() {
        assert_eq!(
            Currency::parse("USD").map(|c| c.to_string()),
            Ok("USD".into())
        );
        assert!(Currency::parse("usd").is_err());
        assert!(Currency::parse("US").is_err());
        assert!(Price::new("price_cents", 0).is_err());
        assert!(Price::new("price_cents", -5).is_err());
        assert!(Price::new("price_cents", Price::MAX_CENTS + 1).is_err());
        assert_eq!(format_cents(1999, "USD"), "$19.99");
        assert_eq!(format_cents(5, "NOK"), "0.05 NOK");
    }
}
