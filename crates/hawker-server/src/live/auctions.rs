//! Auctions inside a show's commerce owner: each running [`LiveAuction`] wraps the pure
//! [`Auction`] rules with its hash chain, its bidders' pseudonyms and what viewers see.
//!
//! Every bid, accepted or refused, becomes a log entry in the owner's next group commit, so a
//! bidder is answered only once their bid is durable — like a buyer.

use std::collections::{HashMap, HashSet};

use hawker_core::auction::{Auction, Entry, Mode, Outcome, rebuild};
use hawker_core::commerce::ShowCommerce;
use hawker_core::ids::{AuctionId, ShowId, UserId, VariantId};
use hawker_core::protocol::{AuctionStatus, AuctionView};
use hawker_core::time::Timestamp;
use sha2::{Digest, Sha256};

use crate::auction_log::Chain;
use crate::store::{AuctionSummary, Batch, Store, StoreError};

/// A stable, private pseudonym: the same person is the same bidder throughout one auction, and
/// nobody without the auction's secret salt can tell who it is.
pub fn pseudonym(salt: &str, user: UserId) -> String {
    let digest = Sha256::digest(format!("{salt}:{user}").as_bytes());
    format!("bidder-{}", &hex::encode(digest)[..10])
}

pub struct LiveAuction {
    pub machine: Auction,
    pub variant_id: VariantId,
    pub chain: Chain,
    pub salt: String,
    /// Pseudonym → account and display name.
    pub bidders: HashMap<String, (UserId, String)>,
    pub bids: u64,
    pub paid: Option<bool>,
    /// Bidders whose charge for this lot failed (skipped by second-chance offers).
    pub declined: HashSet<String>,
    /// First answers to idempotent bid retries, by bidder and key (kept while the owner runs).
    pub answered: HashMap<(UserId, String), Outcome>,
}

impl LiveAuction {
    /// Appends entries to the chain and the batch, and refreshes the auction's summary there.
    pub fn log(&mut self, id: AuctionId, entries: &[Entry], batch: &mut Batch) {
        for e in entries {
            if matches!(e, Entry::Bid { .. }) {
                self.bids += 1;
            }
            if let Entry::Charge { paid, bidder, .. } = e {
                self.paid = Some(*paid);
                if !paid {
                    self.declined.insert(bidder.clone());
                }
            }
            batch.auction_log.push((id, self.chain.append(e)));
        }
        let s = self.machine.standing();
        let summary = AuctionSummary {
            id,
            ends_at: s.ends_at,
            ended: s.ended,
            winner: s.leader.clone(),
            price_cents: s.leader.as_ref().map(|_| s.price_cents),
        };
        batch.auction_summaries.retain(|a| a.id != id);
        batch.auction_summaries.push(summary);
    }

    pub fn view(&self, commerce: &ShowCommerce) -> AuctionView {
        let s = self.machine.standing();
        let variant = commerce.variant(self.variant_id);
        let leader = s.leader.as_ref().and_then(|p| self.bidders.get(p));
        let step = |p: i64| p + self.machine.terms().increments.step(p);
        let first = s.min_bid_cents;
        AuctionView {
            id: self.machine.id(),
            variant_id: self.variant_id,
            product_title: variant.map(|v| v.product_title.clone()).unwrap_or_default(),
            variant_name: variant.map(|v| v.name.clone()).unwrap_or_default(),
            image: variant.and_then(|v| v.image.clone()),
            currency: variant
                .map(|v| v.currency.to_string())
                .unwrap_or_else(|| "USD".into()),
            mode: match self.machine.terms().mode {
                Mode::Standard { .. } => "standard".into(),
                Mode::SuddenDeath => "sudden_death".into(),
            },
            status: if s.ended {
                AuctionStatus::Ended
            } else {
                AuctionStatus::Running
            },
            price_cents: s.price_cents,
            bids: self.bids,
            leader: leader.map(|(_, name)| name.clone()),
            leader_account: leader.map(|(id, _)| *id),
            you_lead: false,
            ends_at: s.ends_at,
            next_bids: if s.ended {
                Vec::new()
            } else {
                vec![first, step(first), step(step(first))]
            },
            final_hash: s.ended.then(|| self.chain.last_hash.clone()),
            paid: self.paid,
        }
    }
}

/// How long an ended auction stays in its owner's memory: late bids are told it ended, and a
/// winner's failed charge can go to the runner-up. One whose lot is still held, or whose win is
/// still being charged or its charge not yet logged, stays until that is done. After that it lives only in the store, so a
/// show that runs auctions all day keeps the memory of a few.
pub const ENDED_AUCTION_KEPT_MS: i64 = 10 * 60_000;

/// Whether an owner keeps an auction in memory at `now`; `in_play`: its lot is held, or its win
/// is reserved or its charge not yet logged.
pub fn kept_in_memory(ended: bool, ends_at: Timestamp, now: Timestamp, in_play: bool) -> bool {
    !ended || in_play || now.millis() - ends_at.millis() < ENDED_AUCTION_KEPT_MS
}

/// Rebuilds from their logs the auctions an owner keeps ([`kept_in_memory`]): running ones resume
/// with the same leader and deadline, recently ended ones come back for late bids and second
/// chances. `in_play`: the auctions whose lot or win the stored commerce still holds.
pub async fn load(
    store: &dyn Store,
    show: ShowId,
    now: Timestamp,
    in_play: &std::collections::BTreeSet<AuctionId>,
) -> Result<Vec<(AuctionId, LiveAuction)>, StoreError> {
    let mut out = Vec::new();
    for row in store.auctions_of_show(show).await? {
        let s = &row.summary;
        if !kept_in_memory(s.ended, s.ends_at, now, in_play.contains(&row.id)) {
            continue;
        }
        let log = store.auction_log(row.id).await?;
        let bodies: Vec<Entry> = log
            .iter()
            .map(|e| serde_json::from_str(&e.body))
            .collect::<Result<_, _>>()
            .map_err(|e| {
                StoreError::Backend(anyhow::anyhow!(
                    "auction {} has an unreadable log entry: {e}",
                    row.id
                ))
            })?;
        let (machine, _) = rebuild(&bodies).map_err(|e| {
            StoreError::Backend(anyhow::anyhow!(
                "auction {} log does not replay: {e}",
                row.id
            ))
        })?;
        let bidders = store
            .auction_bidders(row.id)
            .await?
            .into_iter()
            .map(|(p, user, name)| (p, (user, name)))
            .collect();
        let chain = Chain {
            seq: log.len() as u64,
            last_hash: log.last().map_or_else(
                || crate::auction_log::GENESIS.to_owned(),
                |e| e.hash.clone(),
            ),
        };
        let bids = bodies
            .iter()
            .filter(|b| matches!(b, Entry::Bid { .. }))
            .count() as u64;
        let paid = bodies.iter().rev().find_map(|b| match b {
            Entry::Charge { paid, .. } => Some(*paid),
            _ => None,
        });
        let declined = bodies
            .iter()
            .filter_map(|b| match b {
                Entry::Charge {
                    paid: false,
                    bidder,
                    ..
                } => Some(bidder.clone()),
                _ => None,
            })
            .collect();
        out.push((
            row.id,
            LiveAuction {
                machine,
                variant_id: row.variant_id,
                chain,
                salt: row.salt,
                bidders,
                bids,
                paid,
                declined,
                answered: HashMap::new(),
            },
        ));
    }
    Ok(out)
}

/// A maximum placed on a lineup variant before its auction starts; applied, in the order placed,
/// the moment the auction starts.
#[derive(Debug, Clone)]
pub struct PreBid {
    pub variant_id: VariantId,
    pub user: UserId,
    pub name: String,
    pub max_cents: i64,
}

/// The policy checks every bid passes before the rules see it, whichever way it arrives (HTTP,
/// the live socket, a pre-bid): the host may not bid on their own lot (`shill_bid`), and a bid
/// that would take the bidder's last 24 hours of orders past their own daily limit is refused
/// (`spending_limit`). A refusal is still sent to the owner, so the log records the attempt.
pub async fn bid_policy(
    store: &dyn Store,
    host: UserId,
    bidder: UserId,
    amount_cents: i64,
    now: hawker_core::time::Timestamp,
) -> Result<Option<String>, StoreError> {
    if bidder == host {
        return Ok(Some("shill_bid".to_owned()));
    }
    spending_policy(store, bidder, amount_cents, now).await
}

async fn spending_policy(
    store: &dyn Store,
    user: UserId,
    amount_cents: i64,
    now: hawker_core::time::Timestamp,
) -> Result<Option<String>, StoreError> {
    let Some(limit) = store
        .user(user)
        .await?
        .and_then(|u| u.daily_spend_limit_cents)
    else {
        return Ok(None);
    };
    let spent = store.spent_since(user, now.plus_ms(-86_400_000)).await?;
    Ok((spent + amount_cents > limit).then(|| "spending_limit".to_owned()))
}
