//! Checked inputs of the catalog and of buying: titles, quantities, stock levels.

use serde::Serialize;

use crate::InvalidInput;
use crate::ids::{ProductId, VariantId};

/// How many units one order may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Quantity(u32);

impl Quantity {
    pub const MAX: u32 = 100;

    pub fn new(n: i64) -> Result<Self, InvalidInput> {
        if (1..=i64::from(Self::MAX)).contains(&n) {
            Ok(Self(n as u32))
        } else {
            Err(InvalidInput::new(
                "quantity",
                format!("must be between 1 and {}", Self::MAX),
            ))
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// Units on hand for a variant, or units offered in a flash sale.
pub fn stock_level(field: &'static str, n: i64) -> Result<u32, InvalidInput> {
    const MAX_STOCK: i64 = 1_000_000;
    if (0..=MAX_STOCK).contains(&n) {
        Ok(n as u32)
    } else {
        Err(InvalidInput::new(
            field,
            format!("must be between 0 and {MAX_STOCK}"),
        ))
    }
}

/// Trimmed, non-empty text of at most `max` characters.
pub fn text(field: &'static str, raw: &str, max: usize) -> Result<String, InvalidInput> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(InvalidInput::new(field, "must not be empty"));
    }
    if trimmed.chars().any(unwanted_char) {
        return Err(InvalidInput::new(
            field,
            "must not hold control characters or text-direction overrides",
        ));
    }
    if trimmed.chars().count() > max {
        return Err(InvalidInput::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// Characters no name, title or chat line needs, and that can hurt: control characters other
/// than newline and tab (NUL included), and the bidirectional overrides and isolates, which
/// make text display in another order than it is read (`U+202E` turns `gpj.exe` around).
pub fn unwanted_char(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A seller's change to the catalog outside a live show, appended to the same log as the shows'
/// commerce events, so every price and stock change has a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum CatalogEvent {
    /// A variant was created or edited; the fields are its state afterwards.
    VariantSet {
        product_id: ProductId,
        variant_id: VariantId,
        name: String,
        price_cents: i64,
        stock: i64,
    },
    /// A variant was removed from sale (kept for its past orders).
    VariantUnlisted {
        product_id: ProductId,
        variant_id: VariantId,
    },
    ProductArchived {
        product_id: ProductId,
    },
}
