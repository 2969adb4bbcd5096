//! Live auctions: one [`Auction`] per lot, decided by the server's clock in arrival order.
//!
//! Every input produces the [`Entry`]s of the auction's log. An entry's JSON body is what the
//! server hash-chains and publishes, and [`replay`] feeds the bodies back through the same rules:
//! a log whose recorded outcomes differ from what the rules give is refused at that entry.
//!
//! Rules (see `shared/research/txn-anchors.md` §3):
//! - A bid must be at least the current price plus the [`Increments`] step (the starting price for
//!   the first bid). The leader cannot outbid themself, but may raise their max.
//! - A max (proxy) bid bids just enough to lead, up to its maximum. When two maxima meet the price
//!   becomes the lower maximum plus one step, capped at the higher one; the earlier maximum wins a
//!   tie.
//! - **Standard** mode: an accepted bid with less than `extend_ms` left resets the clock to
//!   `extend_ms`. **Sudden death** never extends.
//! - A bid at or after the deadline is refused as closed; the close is an input like a bid.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::InvalidInput;
use crate::ids::AuctionId;
use crate::money::Price;
use crate::time::Timestamp;

#[cfg(test)]
mod tests;

/// The bid increment table: from each price (cents) upwards, the step (cents).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Increments(Vec<(i64, i64)>);

impl Increments {
    /// Whatnot's table: $1 steps, $2 from $30, $3 from $50, $5 from $100, $10 from $300, $20 from
    /// $1,000, $50 from $2,000.
    pub fn standard() -> Self {
        Self(vec![
            (0, 100),
            (3_000, 200),
            (5_000, 300),
            (10_000, 500),
            (30_000, 1_000),
            (100_000, 2_000),
            (200_000, 5_000),
        ])
    }

    /// Rows must start at 0, rise strictly, and have positive steps.
    pub fn new(rows: Vec<(i64, i64)>) -> Result<Self, InvalidInput> {
        let starts_at_zero = rows.first().is_some_and(|(from, _)| *from == 0);
        let rising = rows.windows(2).all(|w| w[0].0 < w[1].0);
        let positive = rows.iter().all(|(_, step)| *step > 0);
        if starts_at_zero && rising && positive {
            Ok(Self(rows))
        } else {
            Err(InvalidInput::new(
                "increments",
                "rows must start at 0, rise strictly and have positive steps",
            ))
        }
    }

    /// The step above `price`.
    pub fn step(&self, price: i64) -> i64 {
        self.0
            .iter()
            .rev()
            .find(|(from, _)| price >= *from)
            .map_or(100, |(_, step)| *step)
    }
}

/// How the auction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Mode {
    /// Soft close: a bid with less than `extend_ms` left resets the clock to `extend_ms`.
    Standard { extend_ms: i64 },
    /// Ends on time, whatever happens.
    SuddenDeath,
}

/// The published terms of an auction, fixed when it starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms {
    pub start_cents: i64,
    pub duration_ms: i64,
    #[serde(flatten)]
    pub mode: Mode,
    pub increments: Increments,
}

impl Terms {
    /// Duration 5–120 s; extension 1–60 s; a positive starting price.
    pub fn new(
        start_cents: i64,
        duration_s: i64,
        mode: Mode,
        increments: Increments,
    ) -> Result<Self, InvalidInput> {
        let start_cents = Price::new("start_cents", start_cents)?.cents();
        if !(5..=120).contains(&duration_s) {
            return Err(InvalidInput::new(
                "duration_s",
                "must be between 5 and 120 seconds",
            ));
        }
        if let Mode::Standard { extend_ms } = mode
            && !(1_000..=60_000).contains(&extend_ms)
        {
            return Err(InvalidInput::new(
                "extend_s",
                "must be between 1 and 60 seconds",
            ));
        }
        Ok(Self {
            start_cents,
            duration_ms: duration_s.saturating_mul(1000),
            mode,
            increments,
        })
    }
}

/// A manual bid at an exact amount, or a maximum the server bids up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BidKind {
    Bid,
    Max,
}

/// Why a bid was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Rejection {
    BidTooLow {
        min_cents: i64,
    },
    AuctionClosed,
    /// The leader bid against themself (a max bid may still raise their maximum).
    AlreadyWinning,
    /// A leader's new maximum must be above their current one.
    MaxNotHigher {
        max_cents: i64,
    },
    /// Not a price at all (zero, negative, or above the largest price).
    OutOfRange,
    /// Refused by the server's policy before the rules were applied (the seller bidding on their
    /// own lot, a spending limit). Changes nothing; recorded so the log has every bid.
    Policy {
        code: String,
    },
}

impl Rejection {
    /// The API's error code for this refusal.
    pub fn code(&self) -> &str {
        match self {
            Self::BidTooLow { .. } => "bid_too_low",
            Self::AuctionClosed => "auction_closed",
            Self::AlreadyWinning => "already_winning",
            Self::MaxNotHigher { .. } => "max_not_higher",
            Self::OutOfRange => "invalid_amount",
            Self::Policy { code } => code,
        }
    }
}

/// What a bid did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Accepted {
        price_cents: i64,
        leader: String,
        ends_at: Timestamp,
    },
    Rejected(Rejection),
}

/// One entry of the auction's log. Bidders are pseudonyms chosen by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Entry {
    Started {
        auction_id: AuctionId,
        lot: String,
        terms: Terms,
        at: Timestamp,
        ends_at: Timestamp,
    },
    Bid {
        bidder: String,
        kind: BidKind,
        amount_cents: i64,
        at: Timestamp,
        result: Outcome,
    },
    Extended {
        at: Timestamp,
        ends_at: Timestamp,
    },
    Ended {
        at: Timestamp,
        winner: Option<String>,
        price_cents: Option<i64>,
    },
    /// The winner's (or a second-chance bidder's) charge, as the server's payment provider
    /// answered. A fact from outside the rules: [`replay`] records it without recomputing it.
    Charge {
        at: Timestamp,
        bidder: String,
        price_cents: i64,
        paid: bool,
    },
}

/// Where an auction stands, for viewers and the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Standing {
    pub price_cents: i64,
    pub leader: Option<String>,
    pub ends_at: Timestamp,
    pub ended: bool,
    /// The smallest manual bid that would be accepted now.
    pub min_bid_cents: i64,
}

#[derive(Debug, Clone)]
pub struct Auction {
    id: AuctionId,
    terms: Terms,
    ends_at: Timestamp,
    /// The current price; meaningful once there is a leader.
    price: i64,
    leader: Option<String>,
    /// Each bidder's standing maximum and the order it was set in (earlier wins ties).
    maxima: BTreeMap<String, (i64, u64)>,
    next_order: u64,
    ended: bool,
}

impl Auction {
    pub fn start(id: AuctionId, lot: String, terms: Terms, now: Timestamp) -> (Self, Entry) {
        let ends_at = now.plus_ms(terms.duration_ms);
        let entry = Entry::Started {
            auction_id: id,
            lot,
            terms: terms.clone(),
            at: now,
            ends_at,
        };
        let auction = Self {
            id,
            price: terms.start_cents,
            terms,
            ends_at,
            leader: None,
            maxima: BTreeMap::new(),
            next_order: 0,
            ended: false,
        };
        (auction, entry)
    }

    pub fn id(&self) -> AuctionId {
        self.id
    }

    pub fn terms(&self) -> &Terms {
        &self.terms
    }

    pub fn standing(&self) -> Standing {
        Standing {
            price_cents: self.price,
            leader: self.leader.clone(),
            ends_at: self.ends_at,
            ended: self.ended,
            min_bid_cents: self.min_bid(),
        }
    }

    /// Bidders ranked by their maxima, best first (ties: earliest), for second-chance offers.
    pub fn ranking(&self) -> Vec<(String, i64)> {
        let mut all: Vec<_> = self
            .maxima
            .iter()
            .map(|(b, (m, order))| (b.clone(), *m, *order))
            .collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.2.cmp(&b.2)));
        all.into_iter().map(|(b, m, _)| (b, m)).collect()
    }

    fn min_bid(&self) -> i64 {
        match self.leader {
            None => self.terms.start_cents,
            Some(_) => self.price + self.terms.increments.step(self.price),
        }
    }

    /// Decides one bid at `now`. `policy` is a refusal the server decided before the rules (it is
    /// only recorded). Returns the log entries: the bid, and an extension if it caused one.
    pub fn bid(
        &mut self,
        now: Timestamp,
        bidder: &str,
        kind: BidKind,
        amount_cents: i64,
        policy: Option<String>,
    ) -> Vec<Entry> {
        let result = match policy {
            Some(code) => Outcome::Rejected(Rejection::Policy { code }),
            None => match self.decide(now, bidder, kind, amount_cents) {
                Ok(extends) => Outcome::Accepted {
                    price_cents: self.price,
                    leader: self.leader.clone().unwrap_or_default(),
                    ends_at: if extends {
                        self.extend(now).unwrap_or(self.ends_at)
                    } else {
                        self.ends_at
                    },
                },
                Err(r) => Outcome::Rejected(r),
            },
        };
        let mut entries = vec![Entry::Bid {
            bidder: bidder.to_owned(),
            kind,
            amount_cents,
            at: now,
            result: result.clone(),
        }];
        if let Outcome::Accepted { ends_at, .. } = result
            && ends_at != self.ends_at
        {
            self.ends_at = ends_at;
            entries.push(Entry::Extended { at: now, ends_at });
        }
        entries
    }

    /// The new deadline if an accepted bid at `now` extends the auction.
    fn extend(&self, now: Timestamp) -> Option<Timestamp> {
        match self.terms.mode {
            Mode::Standard { extend_ms } if self.ends_at.millis() - now.millis() < extend_ms => {
                Some(now.plus_ms(extend_ms))
            }
            _ => None,
        }
    }

    fn decide(
        &mut self,
        now: Timestamp,
        bidder: &str,
        kind: BidKind,
        amount: i64,
    ) -> Result<bool, Rejection> {
        if self.ended || now >= self.ends_at {
            return Err(Rejection::AuctionClosed);
        }
        if !(1..=Price::MAX_CENTS).contains(&amount) {
            return Err(Rejection::OutOfRange);
        }
        let leading = self.leader.as_deref() == Some(bidder);
        if leading {
            let current = self.maxima.get(bidder).map_or(self.price, |(m, _)| *m);
            return match kind {
                BidKind::Bid => Err(Rejection::AlreadyWinning),
                BidKind::Max if amount <= current => {
                    Err(Rejection::MaxNotHigher { max_cents: current })
                }
                BidKind::Max => {
                    // A secret raise: the price stays until somebody challenges it, and the
                    // clock does not move (a leader cannot keep an auction open by raising).
                    self.set_max(bidder, amount);
                    Ok(false)
                }
            };
        }
        let min = self.min_bid();
        if amount < min {
            return Err(Rejection::BidTooLow { min_cents: min });
        }
        if self.maxima.get(bidder).is_none_or(|(m, _)| amount > *m) {
            self.set_max(bidder, amount);
        }
        let Some(leader) = self.leader.clone() else {
            self.leader = Some(bidder.to_owned());
            self.price = match kind {
                BidKind::Bid => amount,
                BidKind::Max => self.terms.start_cents,
            };
            return Ok(true);
        };
        let (leader_max, leader_order) =
            self.maxima.get(&leader).copied().unwrap_or((self.price, 0));
        let (my_max, my_order) = self
            .maxima
            .get(bidder)
            .copied()
            .unwrap_or((amount, u64::MAX));
        let challenger_wins =
            my_max > leader_max || (my_max == leader_max && my_order < leader_order);
        let step = |p: i64| p + self.terms.increments.step(p);
        if challenger_wins {
            self.leader = Some(bidder.to_owned());
            self.price = match kind {
                // An explicit amount stands as bid, even above what beating the leader needed.
                BidKind::Bid => amount.max(step(leader_max).min(my_max)),
                BidKind::Max => step(leader_max).min(my_max),
            };
        } else {
            // The leader's maximum answers: just enough to stay ahead, capped at that maximum.
            self.price = if amount == leader_max {
                leader_max
            } else {
                step(amount).min(leader_max)
            };
        }
        Ok(true)
    }

    fn set_max(&mut self, bidder: &str, max: i64) {
        self.maxima
            .insert(bidder.to_owned(), (max, self.next_order));
        self.next_order += 1;
    }

    /// Ends the auction if its deadline has come; returns the `Ended` entry once.
    pub fn close_if_due(&mut self, now: Timestamp) -> Option<Entry> {
        if self.ended || now < self.ends_at {
            return None;
        }
        self.ended = true;
        Some(Entry::Ended {
            at: now,
            winner: self.leader.clone(),
            price_cents: self.leader.as_ref().map(|_| self.price),
        })
    }

    pub fn ended(&self) -> bool {
        self.ended
    }

    pub fn ends_at(&self) -> Timestamp {
        self.ends_at
    }
}

/// Where a log stops agreeing with the rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {index}: {message}")]
pub struct ReplayError {
    /// Zero-based position in the log.
    pub index: usize,
    pub message: String,
}

/// The outcome the rules give for a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    pub winner: Option<String>,
    pub price_cents: Option<i64>,
    pub ended: bool,
}

/// Re-runs the rules over a log's entries and checks that every recorded outcome, extension and
/// the end are exactly what the rules give.
pub fn replay(entries: &[Entry]) -> Result<Replayed, ReplayError> {
    rebuild(entries).map(|(_, outcome)| outcome)
}

/// [`replay`], keeping the auction as the log leaves it (to resume after a restart).
pub fn rebuild(entries: &[Entry]) -> Result<(Auction, Replayed), ReplayError> {
    let err = |index: usize, message: String| ReplayError { index, message };
    let Some(Entry::Started {
        auction_id,
        lot,
        terms,
        at,
        ..
    }) = entries.first()
    else {
        return Err(err(0, "the log must begin with the auction's start".into()));
    };
    let checked = Increments::new(terms.increments.0.clone()).and_then(|inc| {
        let mode = terms.mode;
        Terms::new(terms.start_cents, terms.duration_ms / 1000, mode, inc)
    });
    if checked.as_ref().ok() != Some(terms) {
        return Err(err(
            0,
            "the auction's terms break the rules (price, duration, extension or increments)".into(),
        ));
    }
    let (mut auction, started) = Auction::start(*auction_id, lot.clone(), terms.clone(), *at);
    if &started != entries.first().unwrap_or(&started) {
        return Err(err(0, "the start does not match its own terms".into()));
    }
    let mut last_at = *at;
    let mut expected_next: Vec<Entry> = Vec::new();
    let mut outcome = Replayed {
        winner: None,
        price_cents: None,
        ended: false,
    };
    for (index, entry) in entries.iter().enumerate().skip(1) {
        let entry_at = match entry {
            Entry::Started { .. } => return Err(err(index, "a second start".into())),
            Entry::Bid { at, .. }
            | Entry::Extended { at, .. }
            | Entry::Ended { at, .. }
            | Entry::Charge { at, .. } => *at,
        };
        if entry_at < last_at {
            return Err(err(index, "time runs backwards".into()));
        }
        last_at = entry_at;
        if !expected_next.is_empty() {
            let expected = expected_next.remove(0);
            if &expected != entry {
                return Err(err(index, format!("the rules give {expected:?} here")));
            }
            continue;
        }
        match entry {
            Entry::Bid {
                bidder,
                kind,
                amount_cents,
                at,
                result,
            } => {
                let policy = match result {
                    Outcome::Rejected(Rejection::Policy { code }) => Some(code.clone()),
                    _ => None,
                };
                // A bid arriving after the deadline first closes the auction, as the server does.
                if let Some(ended) = auction.close_if_due(*at) {
                    return Err(err(
                        index,
                        format!("the auction had already ended: {ended:?} must come first"),
                    ));
                }
                let mut produced = auction
                    .bid(*at, bidder, *kind, *amount_cents, policy)
                    .into_iter();
                let first = produced.next();
                if first.as_ref() != Some(entry) {
                    return Err(err(index, format!("the rules give {first:?}")));
                }
                expected_next.extend(produced);
            }
            Entry::Extended { .. } => return Err(err(index, "an extension no bid caused".into())),
            Entry::Ended { at, .. } => {
                let produced = auction.close_if_due(*at);
                if produced.as_ref() != Some(entry) {
                    return Err(err(
                        index,
                        format!(
                            "the rules give {produced:?} (deadline {})",
                            auction.ends_at().millis()
                        ),
                    ));
                }
                outcome = Replayed {
                    winner: auction.leader.clone(),
                    price_cents: auction.leader.as_ref().map(|_| auction.price),
                    ended: true,
                };
            }
            Entry::Charge { .. } if !auction.ended() => {
                return Err(err(index, "a charge before the end".into()));
            }
            Entry::Charge { .. } | Entry::Started { .. } => {}
        }
    }
    if let Some(missing) = expected_next.first() {
        return Err(err(
            entries.len(),
            format!("the log ends before {missing:?}"),
        ));
    }
    Ok((auction, outcome))
}
