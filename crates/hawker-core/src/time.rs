//! Wall-clock instants as plain numbers. The server's `clock` module is the only reader of the
//! real clock; here time is data, so rules are tested faster than real time.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch. Deadlines that must survive a restart are stored as this.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn plus_ms(self, ms: i64) -> Self {
        Self(self.0.saturating_add(ms))
    }

    pub fn plus_secs(self, s: i64) -> Self {
        self.plus_ms(s.saturating_mul(1000))
    }

    pub fn millis(self) -> i64 {
        self.0
    }
}
