//! Typed ids, so a show id is never passed where a user id belongs, and the idempotency key.

use serde::{Deserialize, Serialize};

use crate::InvalidInput;
use crate::time::Timestamp;

macro_rules! id {
    ($(#[$doc:meta] $name:ident),* $(,)?) => {$(
        #[$doc]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[derive(schemars::JsonSchema)]
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

/// Mints the ids the server names itself (orders, sales, codes, auctions).
///
/// The high bits are the second the id was minted in, so a new row goes to the end of a table
/// or index ordered by id rather than to a random page of it: the pages a busy show writes stay
/// few and cached however large its history grows (a random id made every insert read and
/// rewrite a random page of a table gigabytes large). The low [`IdMint::LOW_BITS`] bits are a
/// keyed permutation of a counter, with a fresh key each second: ids minted in one second are
/// distinct and give away neither their neighbours nor how many were minted. Ids stay below
/// 2^53, so JavaScript numbers hold them exactly (seconds run out in 2092).
///
/// Time and randomness are inputs. Two mints (two processes) minting in the same second can
/// collide, so a new mint starts at the second after its first use: a server restarted at once
/// after a crash does not reuse the crashed one's second.
#[derive(Debug, Clone)]
pub struct IdMint {
    second: i64,
    counter: u32,
    key: u64,
}

impl Default for IdMint {
    fn default() -> Self {
        Self::new()
    }
}

impl IdMint {
    /// Seconds are counted from 2024-01-01T00:00:00Z.
    pub const EPOCH_S: i64 = 1_704_067_200;
    /// The bits of an id below its second: up to 4,194,304 ids a second, after which the mint
    /// borrows the next second.
    pub const LOW_BITS: u32 = 22;

    pub const fn new() -> Self {
        Self {
            second: 0,
            counter: 0,
            key: 0,
        }
    }

    /// The next id at wall-clock time `now`; `fresh_key` is asked for random bits once a second.
    pub fn next(&mut self, now: Timestamp, fresh_key: impl FnOnce() -> u64) -> i64 {
        let clock_second = (now.millis().div_euclid(1000) - Self::EPOCH_S).max(1);
        let second = if self.second == 0 {
            clock_second + 1
        } else if self.counter == 1 << Self::LOW_BITS {
            clock_second.max(self.second + 1)
        } else {
            // Never back: a wall clock stepped backwards must not mint a second twice.
            clock_second.max(self.second)
        };
        if second != self.second {
            self.second = second;
            self.counter = 0;
            self.key = fresh_key();
        }
        let low = permute(self.counter, self.key);
        self.counter += 1;
        (self.second << Self::LOW_BITS) | i64::from(low)
    }
}

/// A bijection on [`IdMint::LOW_BITS`]-bit numbers chosen by `key`: a four-round Feistel network
/// on two 11-bit halves (a bijection whatever its round function).
fn permute(n: u32, key: u64) -> u32 {
    const HALF: u32 = IdMint::LOW_BITS / 2;
    const MASK: u32 = (1 << HALF) - 1;
    let (mut left, mut right) = (n >> HALF, n & MASK);
    for round in 0..4 {
        let round_key = (key >> (16 * round)) as u32 & 0xffff;
        let mixed = (right ^ round_key)
            .wrapping_mul(0x9e37_79b1)
            .rotate_right(13)
            & MASK;
        (left, right) = (right, left ^ mixed);
    }
    (left << HALF) | right
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

    fn minted(mint: &mut IdMint, at_ms: i64, n: usize, key: u64) -> Vec<i64> {
        (0..n)
            .map(|_| mint.next(Timestamp(at_ms), || key))
            .collect()
    }

    const NOW_MS: i64 = 1_796_000_000_000; // late 2026

    #[test]
    fn ids_of_one_second_are_distinct_and_not_in_counting_order() {
        let mut mint = IdMint::new();
        let ids = minted(&mut mint, NOW_MS, 100_000, 0x0123_4567_89ab_cdef);
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        let rising = ids.windows(2).filter(|w| w[1] > w[0]).count();
        assert!(
            (40_000..60_000).contains(&rising),
            "about half of neighbours rise, as in a shuffle: {rising}"
        );
        assert!(ids.iter().all(|&id| id > 0 && id < 1 << 53));
    }

    #[test]
    fn the_low_bits_are_a_permutation_for_any_key() {
        for key in [0, 1, u64::MAX, 0x9e37_79b9_7f4a_7c15] {
            let mut seen = vec![false; 1 << IdMint::LOW_BITS];
            for n in 0..1u32 << IdMint::LOW_BITS {
                let low = permute(n, key) as usize;
                assert!(!seen[low], "key {key:#x}: {n} maps where another did");
                seen[low] = true;
            }
        }
    }

    #[test]
    fn later_seconds_mint_larger_ids_and_a_full_second_borrows_the_next() {
        let mut mint = IdMint::new();
        let first = minted(&mut mint, NOW_MS, 10, 7);
        // A new mint starts a second ahead, so a restarted server cannot repeat a crashed one's.
        let second_of = |id: i64| (id >> IdMint::LOW_BITS) + IdMint::EPOCH_S;
        assert_eq!(second_of(first[0]), NOW_MS / 1000 + 1);
        let later = minted(&mut mint, NOW_MS + 5_000, 10, 8);
        assert!(later.iter().min() > first.iter().max());
        // The wall clock stepping back does not go back to a second already used.
        let stepped_back = minted(&mut mint, NOW_MS - 60_000, 10, 9);
        assert!(
            stepped_back
                .iter()
                .all(|id| second_of(*id) == second_of(later[0]))
        );
        // Filling a second moves on to the next one instead of repeating its low bits.
        let mut full = IdMint::new();
        let ids = minted(&mut full, NOW_MS, (1 << IdMint::LOW_BITS) + 1, 3);
        let last = ids[ids.len() - 1];
        assert_eq!(second_of(last), second_of(ids[0]) + 1);
        assert!(last > *ids[..ids.len() - 1].iter().max().unwrap_or(&0));
    }

    #[test]
    fn ids_fit_a_javascript_number_until_2092() {
        let mut mint = IdMint::new();
        let id = mint.next(Timestamp(3_849_000_000_000), || u64::MAX);
        assert!(id < 1 << 53, "{id}");
    }

    #[test]
    fn idempotency_key_rejects_empty_long_and_spaces() {
        assert!(IdempotencyKey::parse("abc-123").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(201)).is_err());
    }
}
