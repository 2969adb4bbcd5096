//! The decision desk of one show's commerce: commands and the time in, decisions out — the
//! events to commit, the answers to give once they are durable, what to tell the room, which
//! charges to make. No IO: [`super::owner`] is the shell that reads and writes the store, talks
//! to the payment provider and runs the channels, as str0m's `Rtc` leaves its socket to its
//! caller. Tested here without a runtime.
//!
//! A turn is decided on the desk ([`Desk::decide_turn`]), written by the shell in one
//! transaction, then handed back ([`Desk::committed`]) for what follows from it. A turn that
//! could not be written is thrown away with the desk's state ([`Desk::restore`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use hawker_core::auction::{Auction, BidKind, Entry, Outcome, Terms};
use hawker_core::commerce::{
    BuyRejected, BuyRequest, DuplicateCode, Event, NotReserved, OrderLine, ReleaseReason, Restore,
    Sale, SaleEndReason, SaleRejected, SaleRequest, ShowCommerce,
};
use hawker_core::discount::{CodeRule, Discount};
use hawker_core::ids::{AuctionId, OrderId, ProductId, SaleId, UserId, VariantId};
use hawker_core::money::{Currency, format_cents};
use hawker_core::protocol::{HostStats, ProductCard, SaleView, ServerMsg, VariantCard};
use hawker_core::purchases::Purchases;
use hawker_core::time::Timestamp;
use tokio::sync::oneshot;

use super::auctions::{LiveAuction, PreBid, kept_in_memory, pseudonym};
use crate::auction_log::Chain;
use crate::store::{Batch, NewAuction, OrderMeta};

/// Why the owner said no. The adapters map each to what their clients see.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Refusal {
    #[error(transparent)]
    Buy(#[from] BuyRejected),
    #[error(transparent)]
    Sale(#[from] SaleRejected),
    #[error(transparent)]
    DuplicateCode(#[from] DuplicateCode),
    #[error(transparent)]
    NotReserved(#[from] NotReserved),
    #[error("this product is not in the show's lineup")]
    NotInLineup,
    #[error("this show has ended")]
    ShowEnded,
    /// The same buyer already used this idempotency key in this show: that order stands.
    #[error("duplicate idempotency key")]
    Duplicate(OrderId),
    #[error("no such auction in this show")]
    UnknownAuction,
    #[error("another auction is running in this show")]
    AuctionRunning,
    #[error("there is nobody left to offer this lot to, or its winner has paid")]
    NoSecondChance,
    /// The decision conflicts with what is stored (a constraint refused it) and was not saved;
    /// the rest of its batch was.
    #[error("this request conflicts with what is stored and was not saved")]
    NotSaved,
    #[error("the show's owner is unavailable; try again")]
    Unavailable,
    /// The owner stopped before it answered (its show ended, or it failed and is restarting).
    #[error("the show's owner stopped; try again")]
    Stopped,
}

/// How a reservation was settled.
#[derive(Debug, Clone)]
pub enum Settlement {
    /// `save_method`: remember the buyer's card in the same commit.
    Paid {
        payment_ref: Option<String>,
        save_method: Option<crate::store::SavedMethod>,
    },
    Released(ReleaseReason),
}

/// A committed reservation, with what the buyer's answer shows besides the core's line (so the
/// answer needs no read of what was just written).
#[derive(Debug, Clone)]
pub struct Reserved {
    pub line: OrderLine,
    pub at: Timestamp,
    pub product_id: ProductId,
    pub product_title: String,
    pub variant_name: String,
}

type Reply<T> = oneshot::Sender<Result<T, Refusal>>;

pub enum CommerceCmd {
    Buy {
        req: BuyRequest,
        meta: OrderMeta,
        buyer_name: String,
        reply: Reply<Reserved>,
    },
    Settle {
        order_id: OrderId,
        settlement: Settlement,
        reply: Option<Reply<()>>,
    },
    StartSale {
        req: SaleRequest,
        reply: Reply<Sale>,
    },
    EndSale {
        sale_id: SaleId,
        reply: Reply<()>,
    },
    CreateCode {
        rule: CodeRule,
        announce: bool,
        reply: Reply<()>,
    },
    Pin {
        product: Option<ProductId>,
        reply: Reply<Option<ProductCard>>,
    },
    /// Ends every sale and closes the room; the owner lives on until no reservation is left.
    EndShow {
        reply: Reply<()>,
    },
    /// A settlement check finished without settling (the provider was unreachable).
    Unchecked(OrderId),
    /// Starts an auction of one unit of `variant_id`; one auction runs at a time per show.
    StartAuction {
        id: AuctionId,
        variant_id: VariantId,
        lot: String,
        terms: Terms,
        salt: String,
        reply: Reply<(AuctionId, Timestamp)>,
    },
    /// A bid or max bid. `policy` is a refusal the caller decided (it is logged, nothing else);
    /// a repeated `key` from the same bidder gets the first answer.
    Bid {
        auction_id: AuctionId,
        bidder: UserId,
        name: String,
        kind: BidKind,
        amount_cents: i64,
        policy: Option<String>,
        key: Option<String>,
        reply: Reply<Outcome>,
    },
    /// A pre-bid was saved for a lineup variant; it joins that variant's next auction.
    PreBid(PreBid),
    /// The winner's charge failed: offer the lot to the best bidder whose charge has not failed,
    /// at their highest bid. Answers with their pseudonym and the price.
    SecondChance {
        auction_id: AuctionId,
        reply: Reply<(String, i64)>,
    },
    /// The winner's charge finished (internal).
    AuctionCharged {
        auction_id: AuctionId,
        bidder: String,
        price_cents: i64,
        paid: bool,
    },
}

/// What one turn collects before it commits.
#[derive(Default)]
pub struct Turn {
    pub batch: Batch,
    /// Each command's decision, in the commands' order; sent once the batch is durable.
    results: Vec<Result<Answer, Refusal>>,
    end_show: bool,
    /// The product to pin (or unpin) once the batch is saved.
    pin: Option<Option<ProductId>>,
    /// Auctions whose view changed.
    touched: BTreeSet<AuctionId>,
    /// Auction orders to charge once they are saved.
    to_charge: Vec<OrderId>,
    /// The turn's idempotency keys that already have a stored order (`None`: the read failed).
    stored_keys: Option<HashMap<(UserId, String), OrderId>>,
    /// Keys reserved in this turn, so two retries of one buy in it cannot both reserve (the
    /// unique constraint would then fail the whole batch). A later turn finds them stored.
    reserved_keys: HashMap<(UserId, String), OrderId>,
}

/// What a command's decision answers once the batch holding it is durable. Kept apart from the
/// command, so a command can be decided again after a failed commit.
pub enum Answer {
    Done,
    Reserved(Reserved),
    Sale(Sale),
    Card(Option<ProductCard>),
    Started(AuctionId, Timestamp),
    Bid(Outcome),
    Offered(String, i64),
}

impl CommerceCmd {
    /// Sends `result` to whoever asked; internal commands have nobody to tell.
    pub fn reply(self, result: Result<Answer, Refusal>) {
        fn send<T>(
            reply: Reply<T>,
            result: Result<Answer, Refusal>,
            pick: fn(Answer) -> Option<T>,
        ) {
            // `decide` answers each command with its own kind; another kind would be a bug.
            let _ = reply.send(result.and_then(|a| pick(a).ok_or(Refusal::Unavailable)));
        }
        match self {
            Self::Buy { reply, .. } => send(reply, result, |a| match a {
                Answer::Reserved(r) => Some(r),
                _ => None,
            }),
            Self::Settle {
                reply: Some(reply), ..
            }
            | Self::EndSale { reply, .. }
            | Self::CreateCode { reply, .. }
            | Self::EndShow { reply } => {
                send(reply, result, |a| matches!(a, Answer::Done).then_some(()))
            }
            Self::StartSale { reply, .. } => send(reply, result, |a| match a {
                Answer::Sale(s) => Some(s),
                _ => None,
            }),
            Self::Pin { reply, .. } => send(reply, result, |a| match a {
                Answer::Card(c) => Some(c),
                _ => None,
            }),
            Self::StartAuction { reply, .. } => send(reply, result, |a| match a {
                Answer::Started(id, ends_at) => Some((id, ends_at)),
                _ => None,
            }),
            Self::Bid { reply, .. } => send(reply, result, |a| match a {
                Answer::Bid(o) => Some(o),
                _ => None,
            }),
            Self::SecondChance { reply, .. } => send(reply, result, |a| match a {
                Answer::Offered(tag, price) => Some((tag, price)),
                _ => None,
            }),
            Self::Settle { reply: None, .. }
            | Self::Unchecked(_)
            | Self::PreBid(_)
            | Self::AuctionCharged { .. } => {}
        }
    }
}

/// The idempotency key of an order the server makes for an auction's winner (or, with `runner_up`,
/// for a second chance). It holds spaces, which no client's key can (`IdempotencyKey::parse`
/// takes visible ASCII only), so no buyer can take it first and make the order collide.
fn auction_order_key(auction_id: AuctionId, runner_up: Option<&str>) -> String {
    match runner_up {
        None => format!("server auction {auction_id}"),
        Some(tag) => format!("server auction {auction_id} second chance {tag}"),
    }
}

/// An auction order to charge: the winner's (or a second chance's) saved payment method, for
/// the order's total.
#[derive(Debug, Clone)]
pub struct Charge {
    pub auction_id: AuctionId,
    pub order_id: OrderId,
    pub user: UserId,
    /// The bidder's pseudonym in the auction's log.
    pub bidder: String,
    pub price_cents: i64,
    pub amount_cents: i64,
    pub currency: Currency,
}

/// What the shell does about a reservation whose hold ran out.
#[derive(Debug)]
pub enum Check {
    /// An auction order: charge it (again), under the same key.
    Charge(Charge),
    /// Ask the provider whether it was paid, then settle it either way.
    LookUp(OrderId),
}

/// What follows from a committed turn.
pub struct Committed {
    /// To the room, in this order.
    pub msgs: Vec<ServerMsg>,
    /// The product to pin (`Some(None)`: unpin), to save.
    pub pin: Option<Option<ProductId>>,
    /// Winners to charge now.
    pub charges: Vec<Charge>,
    /// The show ended in this turn: tell the room and close it.
    pub end_show: bool,
    /// Each command's answer, in the commands' order.
    pub results: Vec<Result<Answer, Refusal>>,
}

/// The desk's state: the core's commerce machine and what the owner remembers beside it.
pub struct Desk {
    commerce: ShowCommerce,
    hold_ms: i64,
    stats: HostStats,
    pinned: Option<ProductId>,
    /// The show ended: refuse new buys, settle what is reserved, then stop.
    closing: bool,
    /// Buyer names for purchase announcements.
    names: HashMap<OrderId, String>,
    /// Paid orders waiting to be announced, a rush gathered into one message.
    purchases: Purchases,
    /// Codes the host asked to announce once created.
    announce: HashSet<String>,
    /// Reservations whose hold ran out and are being checked with the payment provider.
    checking: HashSet<OrderId>,
    /// This show's auctions: the running one and those ended in the last minutes
    /// ([`kept_in_memory`]).
    auctions: BTreeMap<AuctionId, LiveAuction>,
    /// Pre-bids waiting for their variant's auction, oldest first.
    pre_bids: Vec<PreBid>,
}

/// A show's commerce as the database left it, for a new desk.
pub struct Restored {
    pub commerce: ShowCommerce,
    pub stats: HostStats,
    pub pinned: Option<ProductId>,
    /// The show has ended; the owner only settles what is left.
    pub closing: bool,
    pub auctions: Vec<(AuctionId, LiveAuction)>,
    pub pre_bids: Vec<PreBid>,
}

impl Desk {
    /// `hold_ms`: how long a reservation (an auction win's too) is held for its payment.
    pub fn new(restored: Restored, hold_ms: i64) -> Self {
        let Restored {
            commerce,
            stats,
            pinned,
            closing,
            auctions,
            pre_bids,
        } = restored;
        Self {
            commerce,
            hold_ms,
            stats,
            pinned,
            closing,
            names: HashMap::new(),
            purchases: Purchases::default(),
            announce: HashSet::new(),
            checking: HashSet::new(),
            auctions: auctions.into_iter().collect(),
            pre_bids,
        }
    }

    pub fn show_id(&self) -> hawker_core::ids::ShowId {
        self.commerce.show_id()
    }

    pub fn closing(&self) -> bool {
        self.closing
    }

    /// What a room hears when its owner starts: the host's numbers, the pinned product, the
    /// running sales and the auctions.
    pub fn initial_messages(&self) -> Vec<ServerMsg> {
        let mut initial = vec![ServerMsg::HostStats(self.stats)];
        if let Some(card) = self.pinned.and_then(|p| self.card(p)) {
            initial.push(ServerMsg::Pinned {
                product: Some(card),
            });
        }
        initial.extend(
            self.commerce
                .running_sales()
                .filter_map(|s| self.sale_view(s))
                .map(ServerMsg::Sale),
        );
        initial.extend(
            self.auctions
                .values()
                .map(|a| ServerMsg::Auction(a.view(&self.commerce))),
        );
        initial
    }

    /// Auction wins left reserved by a crash: charged at once rather than at their hold's end.
    pub fn unsettled_wins(&mut self) -> Vec<Charge> {
        let unsettled = self.commerce.due_reservations(Timestamp(i64::MAX));
        let wins: Vec<Charge> = unsettled
            .into_iter()
            .filter_map(|order_id| self.charge_for(order_id))
            .collect();
        self.checking.extend(wins.iter().map(|w| w.order_id));
        wins
    }

    /// Whether an ended show has nothing left to settle: no reservation, no running auction.
    pub fn settled(&self) -> bool {
        self.closing
            && self
                .commerce
                .due_reservations(Timestamp(i64::MAX))
                .is_empty()
            && self.auctions.values().all(|a| a.machine.ended())
    }

    /// The buys' idempotency keys: the shell reads which of them have a stored order (from an
    /// earlier turn, an earlier owner or another show) before the turn is decided. The desk
    /// keeps no key past its turn, so its memory does not grow with the show's orders.
    pub fn buy_keys(cmds: &[CommerceCmd]) -> Vec<(UserId, String)> {
        cmds.iter()
            .filter_map(|cmd| match cmd {
                CommerceCmd::Buy { req, meta, .. } => {
                    Some((req.buyer, meta.idempotency_key.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// Decides `cmds` (and, with `housekeeping`, what the time alone decides) into one batch.
    /// `stored_keys`: which of the buys' idempotency keys already have a stored order (`None`:
    /// that could not be read, and the buys are refused).
    pub fn decide_turn(
        &mut self,
        now: Timestamp,
        cmds: &[CommerceCmd],
        stored_keys: Option<HashMap<(UserId, String), OrderId>>,
        housekeeping: bool,
    ) -> Turn {
        let mut turn = Turn {
            stored_keys,
            ..Turn::default()
        };
        if housekeeping {
            turn.batch.events.extend(self.commerce.tick(now));
            self.close_due_auctions(now, &mut turn);
            self.forget_old_auctions(now);
        }
        for cmd in cmds {
            let result = self.decide(now, cmd, &mut turn);
            turn.results.push(result);
        }
        turn
    }

    fn decide(
        &mut self,
        now: Timestamp,
        cmd: &CommerceCmd,
        turn: &mut Turn,
    ) -> Result<Answer, Refusal> {
        let Turn {
            batch,
            stored_keys,
            reserved_keys,
            ..
        } = turn;
        match cmd {
            CommerceCmd::Buy {
                req,
                meta,
                buyer_name,
                ..
            } => {
                let key = (req.buyer, meta.idempotency_key.clone());
                let stored = stored_keys.as_ref().map(|s| s.get(&key));
                // A key already used answers with its order, even once the show has ended.
                if let Some(existing) = reserved_keys.get(&key) {
                    return Err(Refusal::Duplicate(*existing));
                }
                match stored {
                    Some(Some(existing)) => return Err(Refusal::Duplicate(*existing)),
                    None => return Err(Refusal::Unavailable),
                    Some(None) => {}
                }
                if self.closing {
                    return Err(Refusal::ShowEnded);
                }
                let events = self.commerce.reserve(now, req)?;
                reserved_keys.insert(key, req.order_id);
                self.names.insert(req.order_id, buyer_name.clone());
                batch.new_orders.push(meta.clone());
                let order = events.iter().find_map(|e| match e {
                    Event::Reserved { order, .. } => {
                        let v = self.commerce.variant(order.variant_id)?;
                        Some(Reserved {
                            line: order.clone(),
                            at: now,
                            product_id: v.product_id,
                            product_title: v.product_title.clone(),
                            variant_name: v.name.clone(),
                        })
                    }
                    _ => None,
                });
                batch.events.extend(events);
                order.map(Answer::Reserved).ok_or(Refusal::Unavailable)
            }
            CommerceCmd::Settle {
                order_id,
                settlement,
                ..
            } => {
                self.checking.remove(order_id);
                let events = match settlement {
                    Settlement::Paid {
                        payment_ref,
                        save_method,
                    } => {
                        let events = self.commerce.confirm(*order_id, payment_ref.clone())?;
                        batch.saved_methods.extend(save_method.clone());
                        events
                    }
                    Settlement::Released(reason) => self.commerce.release(*order_id, *reason)?,
                };
                batch.events.extend(events);
                Ok(Answer::Done)
            }
            CommerceCmd::StartSale { req, .. } => {
                if self.closing {
                    return Err(Refusal::ShowEnded);
                }
                let events = self.commerce.start_sale(now, req.clone())?;
                let sale = events.iter().find_map(|e| match e {
                    Event::SaleStarted { sale, .. } => Some(sale.clone()),
                    _ => None,
                });
                batch.events.extend(events);
                sale.map(Answer::Sale).ok_or(Refusal::Unavailable)
            }
            CommerceCmd::EndSale { sale_id, .. } => {
                let events = self.commerce.end_sale(*sale_id, SaleEndReason::Host)?;
                batch.events.extend(events);
                Ok(Answer::Done)
            }
            CommerceCmd::CreateCode { rule, announce, .. } => {
                if self.closing {
                    return Err(Refusal::ShowEnded);
                }
                let events = self.commerce.create_code(rule.clone())?;
                if *announce {
                    self.announce.insert(rule.code.clone());
                }
                batch.events.extend(events);
                Ok(Answer::Done)
            }
            CommerceCmd::Pin { product, .. } => {
                // Pinning changes no stock or price; it is saved after the batch, in order.
                let card = match product {
                    None => None,
                    Some(p) => Some(self.card(*p).ok_or(Refusal::NotInLineup)?),
                };
                self.pinned = *product;
                turn.pin = Some(*product);
                Ok(Answer::Card(card))
            }
            CommerceCmd::EndShow { .. } => {
                if self.closing {
                    return Err(Refusal::ShowEnded);
                }
                batch.events.extend(self.commerce.end_all_sales());
                // The show's status changes in the same transaction as its sales end.
                batch.end_show = true;
                turn.end_show = true;
                Ok(Answer::Done)
            }
            CommerceCmd::Unchecked(order_id) => {
                self.checking.remove(order_id);
                Ok(Answer::Done)
            }
            CommerceCmd::StartAuction {
                id,
                variant_id,
                lot,
                terms,
                salt,
                ..
            } => {
                let started = self.start_auction(
                    now,
                    *id,
                    *variant_id,
                    lot.clone(),
                    terms.clone(),
                    salt.clone(),
                    turn,
                )?;
                Ok(Answer::Started(started.0, started.1))
            }
            CommerceCmd::Bid {
                auction_id,
                bidder,
                name,
                kind,
                amount_cents,
                policy,
                key,
                ..
            } => self
                .bid(
                    now,
                    *auction_id,
                    *bidder,
                    name.clone(),
                    *kind,
                    *amount_cents,
                    policy.clone(),
                    key.clone(),
                    turn,
                )
                .map(Answer::Bid),
            CommerceCmd::PreBid(pre) => {
                self.pre_bids
                    .retain(|p| !(p.user == pre.user && p.variant_id == pre.variant_id));
                self.pre_bids.push(pre.clone());
                Ok(Answer::Done)
            }
            CommerceCmd::SecondChance { auction_id, .. } => {
                let (tag, price) = self.second_chance(now, *auction_id, turn)?;
                Ok(Answer::Offered(tag, price))
            }
            CommerceCmd::AuctionCharged {
                auction_id,
                bidder,
                price_cents,
                paid,
            } => {
                if let Some(a) = self.auctions.get_mut(auction_id) {
                    let entry = Entry::Charge {
                        at: now,
                        bidder: bidder.clone(),
                        price_cents: *price_cents,
                        paid: *paid,
                    };
                    a.log(*auction_id, &[entry], &mut turn.batch);
                    turn.touched.insert(*auction_id);
                }
                Ok(Answer::Done)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn start_auction(
        &mut self,
        now: Timestamp,
        id: AuctionId,
        variant_id: VariantId,
        lot: String,
        terms: Terms,
        salt: String,
        turn: &mut Turn,
    ) -> Result<(AuctionId, Timestamp), Refusal> {
        if self.closing {
            return Err(Refusal::ShowEnded);
        }
        if self.auctions.values().any(|a| !a.machine.ended()) {
            return Err(Refusal::AuctionRunning);
        }
        let events = self.commerce.hold_lot(id, variant_id)?;
        turn.batch.events.extend(events);
        let (machine, started) = Auction::start(id, lot, terms, now);
        let ends_at = machine.ends_at();
        let mut live = LiveAuction {
            machine,
            variant_id,
            chain: Chain::new(),
            salt: salt.clone(),
            bidders: HashMap::new(),
            bids: 0,
            paid: None,
            declined: HashSet::new(),
            answered: HashMap::new(),
        };
        turn.batch.new_auctions.push(NewAuction {
            id,
            variant_id,
            salt,
        });
        live.log(id, &[started], &mut turn.batch);
        // Pre-bids join the moment the auction starts, in the order they were placed.
        let (pre, rest): (Vec<PreBid>, Vec<PreBid>) = std::mem::take(&mut self.pre_bids)
            .into_iter()
            .partition(|p| p.variant_id == variant_id);
        self.pre_bids = rest;
        for p in pre {
            turn.batch.consumed_pre_bids.push((variant_id, p.user));
            let tag = pseudonym(&live.salt, p.user);
            if !live.bidders.contains_key(&tag) {
                live.bidders.insert(tag.clone(), (p.user, p.name));
                turn.batch.bidders.push((id, tag.clone(), p.user));
            }
            let entries = live.machine.bid(now, &tag, BidKind::Max, p.max_cents, None);
            live.log(id, &entries, &mut turn.batch);
        }
        self.auctions.insert(id, live);
        turn.touched.insert(id);
        Ok((id, ends_at))
    }

    #[allow(clippy::too_many_arguments)]
    fn bid(
        &mut self,
        now: Timestamp,
        auction_id: AuctionId,
        bidder: UserId,
        name: String,
        kind: BidKind,
        amount_cents: i64,
        policy: Option<String>,
        key: Option<String>,
        turn: &mut Turn,
    ) -> Result<Outcome, Refusal> {
        self.close_due_auctions(now, turn);
        let a = self
            .auctions
            .get_mut(&auction_id)
            .ok_or(Refusal::UnknownAuction)?;
        if let Some(first) = key
            .as_ref()
            .and_then(|k| a.answered.get(&(bidder, k.clone())))
        {
            return Ok(first.clone());
        }
        let tag = pseudonym(&a.salt, bidder);
        if !a.bidders.contains_key(&tag) {
            a.bidders.insert(tag.clone(), (bidder, name));
            turn.batch.bidders.push((auction_id, tag.clone(), bidder));
        }
        let entries = a.machine.bid(now, &tag, kind, amount_cents, policy);
        let outcome = match entries.first() {
            Some(Entry::Bid { result, .. }) => result.clone(),
            _ => return Err(Refusal::Unavailable),
        };
        a.log(auction_id, &entries, &mut turn.batch);
        if let Some(k) = key {
            a.answered.insert((bidder, k), outcome.clone());
        }
        turn.touched.insert(auction_id);
        Ok(outcome)
    }

    fn second_chance(
        &mut self,
        now: Timestamp,
        auction_id: AuctionId,
        turn: &mut Turn,
    ) -> Result<(String, i64), Refusal> {
        let a = self
            .auctions
            .get_mut(&auction_id)
            .ok_or(Refusal::UnknownAuction)?;
        if !a.machine.ended() || a.paid != Some(false) {
            return Err(Refusal::NoSecondChance);
        }
        let (tag, price) = a
            .machine
            .ranking()
            .into_iter()
            .find(|(b, _)| !a.declined.contains(b) && a.bidders.contains_key(b))
            .ok_or(Refusal::NoSecondChance)?;
        let user = a
            .bidders
            .get(&tag)
            .map(|(u, _)| *u)
            .ok_or(Refusal::NoSecondChance)?;
        // The failed winner's unit went back on hand; take one again for the runner-up.
        turn.batch
            .events
            .extend(self.commerce.hold_lot(auction_id, a.variant_id)?);
        let order_id = OrderId(crate::store::new_id());
        let hold = now.plus_ms(self.hold_ms);
        turn.batch.events.extend(
            self.commerce
                .sell_lot(auction_id, order_id, user, price, hold)?,
        );
        turn.batch.new_orders.push(OrderMeta {
            order_id,
            idempotency_key: auction_order_key(auction_id, Some(&tag)),
            payment_method: "saved".into(),
        });
        turn.to_charge.push(order_id);
        a.paid = None;
        turn.touched.insert(auction_id);
        Ok((tag, price))
    }

    /// Lets go of the ended auctions the owner no longer needs ([`kept_in_memory`]); the store
    /// still has them.
    fn forget_old_auctions(&mut self, now: Timestamp) {
        let in_play = self.commerce.auctions_in_play();
        self.auctions.retain(|id, a| {
            let m = &a.machine;
            // A win settles before its charge is logged (`AuctionCharged`, a turn later).
            let charge_unlogged = a.paid.is_none() && m.standing().leader.is_some();
            kept_in_memory(
                m.ended(),
                m.ends_at(),
                now,
                in_play.contains(id) || charge_unlogged,
            )
        });
    }

    /// Ends every auction whose deadline has come: the winner gets the lot as a reservation (charged
    /// after the commit), an unsold lot goes back on hand.
    fn close_due_auctions(&mut self, now: Timestamp, turn: &mut Turn) {
        let hold = self.hold_ms;
        for (id, a) in self.auctions.iter_mut() {
            let Some(ended) = a.machine.close_if_due(now) else {
                continue;
            };
            a.log(*id, &[ended], &mut turn.batch);
            turn.touched.insert(*id);
            let standing = a.machine.standing();
            let winner = standing
                .leader
                .as_ref()
                .and_then(|p| a.bidders.get(p).map(|(user, _)| *user));
            match winner {
                Some(user) => {
                    let order_id = OrderId(crate::store::new_id());
                    match self.commerce.sell_lot(
                        *id,
                        order_id,
                        user,
                        standing.price_cents,
                        now.plus_ms(hold),
                    ) {
                        Ok(events) => {
                            turn.batch.events.extend(events);
                            turn.batch.new_orders.push(OrderMeta {
                                order_id,
                                idempotency_key: auction_order_key(*id, None),
                                payment_method: "saved".into(),
                            });
                            turn.to_charge.push(order_id);
                        }
                        Err(e) => tracing::error!(auction = %id, "the won lot was not held: {e}"),
                    }
                }
                None => turn.batch.events.extend(self.commerce.return_lot(*id)),
            }
        }
    }

    /// The charge to (re)try for a reserved auction order.
    fn charge_for(&self, order_id: OrderId) -> Option<Charge> {
        let order = self.commerce.reservation(order_id)?;
        let auction_id = order.auction_id?;
        let bidder = self
            .auctions
            .get(&auction_id)?
            .bidders
            .iter()
            .find(|(_, (user, _))| *user == order.buyer)
            .map(|(tag, _)| tag.clone())?;
        Some(Charge {
            auction_id,
            order_id,
            user: order.buyer,
            bidder,
            price_cents: order.unit_price_cents,
            amount_cents: order.total_cents,
            currency: order.currency,
        })
    }

    /// A turn is durable: what follows from it. Its messages are the events', then the pin, then
    /// the auctions that changed, then the purchases whose second is up (all of them once the
    /// show has ended).
    pub fn committed(&mut self, now: Timestamp, turn: Turn) -> Committed {
        let Turn {
            batch,
            results,
            end_show,
            pin,
            touched,
            to_charge,
            stored_keys: _,
            reserved_keys: _,
        } = turn;
        if end_show {
            self.closing = true;
        }
        let mut msgs = self.messages(&batch.events);
        if let Some(product) = pin {
            msgs.push(ServerMsg::Pinned {
                product: product.and_then(|p| self.card(p)),
            });
        }
        msgs.extend(
            touched
                .iter()
                .filter_map(|id| self.auctions.get(id))
                .map(|a| ServerMsg::Auction(a.view(&self.commerce))),
        );
        let charges = to_charge
            .into_iter()
            .filter_map(|order_id| self.charge_for(order_id))
            .collect();
        msgs.extend(if self.closing {
            self.purchases.all()
        } else {
            self.purchases.due(now)
        });
        Committed {
            msgs,
            pin,
            charges,
            end_show,
            results,
        }
    }

    /// Reservations whose hold ran out and are not being checked yet: what to do about each.
    /// An auction order is charged by us, not by a client: tried (again) under the same key, so a
    /// crash or an unreachable provider cannot turn a win into a silent expiry.
    pub fn due_checks(&mut self, now: Timestamp) -> Vec<Check> {
        let mut checks = Vec::new();
        for order_id in self.commerce.due_reservations(now) {
            if !self.checking.insert(order_id) {
                continue;
            }
            checks.push(match self.charge_for(order_id) {
                Some(charge) => Check::Charge(charge),
                None => Check::LookUp(order_id),
            });
        }
        checks
    }

    /// Back to what the store holds, after a turn could not be written: stock, sales and codes,
    /// and the auctions from their logs (so the next log entry chains onto the last one stored).
    pub fn restore(
        &mut self,
        restore: Restore,
        auctions: Vec<(AuctionId, LiveAuction)>,
        pre_bids: Vec<PreBid>,
    ) {
        self.commerce = ShowCommerce::restore(self.commerce.show_id(), restore);
        self.auctions = auctions.into_iter().collect();
        self.pre_bids = pre_bids;
        self.checking.clear();
    }

    /// What viewers are told about committed events. A count that changed many times in one turn
    /// is sent each time; the room's batch keeps only its last value (`room.rs`).
    fn messages(&mut self, events: &[Event]) -> Vec<ServerMsg> {
        let mut msgs = Vec::new();
        let mut stats_changed = false;
        for event in events {
            match event {
                Event::LotHeld {
                    variant_id,
                    variant_stock_left,
                    ..
                }
                | Event::LotReturned {
                    variant_id,
                    variant_stock_left,
                    ..
                } => {
                    msgs.push(ServerMsg::Stock {
                        variant_id: *variant_id,
                        stock: *variant_stock_left,
                    });
                }
                Event::SaleStarted {
                    sale,
                    variant_stock_left,
                } => {
                    msgs.extend(self.sale_view(sale).map(ServerMsg::Sale));
                    msgs.push(ServerMsg::Stock {
                        variant_id: sale.variant_id,
                        stock: *variant_stock_left,
                    });
                }
                Event::SaleEnded {
                    sale_id,
                    variant_id,
                    variant_stock_left,
                    ..
                } => {
                    msgs.push(ServerMsg::SaleEnded { id: *sale_id });
                    msgs.push(ServerMsg::Stock {
                        variant_id: *variant_id,
                        stock: *variant_stock_left,
                    });
                }
                Event::CodeCreated { rule } => {
                    if self.announce.remove(&rule.code) {
                        let description = match rule.discount {
                            Discount::PercentOff(p) => format!("{p}% off"),
                            Discount::AmountOffCents(a) => {
                                let currency = self
                                    .commerce
                                    .variants()
                                    .next()
                                    .map(|v| v.currency.to_string())
                                    .unwrap_or_default();
                                format!("{} off", format_cents(a, &currency))
                            }
                        };
                        msgs.push(ServerMsg::Code {
                            code: rule.code.clone(),
                            description,
                        });
                    }
                }
                Event::Reserved { order, left } => {
                    msgs.push(left_msg(order.sale_id, order.variant_id, *left))
                }
                Event::Released {
                    to_sale,
                    variant_id,
                    left,
                    order_id,
                    ..
                } => {
                    self.names.remove(order_id);
                    msgs.push(left_msg(*to_sale, *variant_id, *left));
                }
                Event::Paid {
                    order_id,
                    variant_id,
                    quantity,
                    total_cents,
                    ..
                } => {
                    self.stats.orders += 1;
                    self.stats.units += u64::from(*quantity);
                    self.stats.revenue_cents += total_cents;
                    stats_changed = true;
                    let buyer = self
                        .names
                        .remove(order_id)
                        .unwrap_or_else(|| "Someone".into());
                    if let Some(v) = self.commerce.variant(*variant_id) {
                        self.purchases
                            .record(v.product_id, &v.product_title, buyer, *quantity);
                    }
                }
            }
        }
        if stats_changed {
            msgs.push(ServerMsg::HostStats(self.stats));
        }
        msgs
    }

    pub fn card(&self, product: ProductId) -> Option<ProductCard> {
        let variants: Vec<_> = self
            .commerce
            .variants()
            .filter(|v| v.product_id == product)
            .collect();
        let first = variants.first()?;
        Some(ProductCard {
            product_id: product,
            title: first.product_title.clone(),
            image: first.image.clone(),
            currency: first.currency.to_string(),
            variants: variants
                .iter()
                .map(|v| VariantCard {
                    id: v.id,
                    name: v.name.clone(),
                    price_cents: v.price_cents,
                    stock: v.stock,
                })
                .collect(),
        })
    }

    pub fn sale_view(&self, sale: &Sale) -> Option<SaleView> {
        let v = self.commerce.variant(sale.variant_id)?;
        Some(SaleView {
            id: sale.id,
            variant_id: v.id,
            product_id: v.product_id,
            product_title: v.product_title.clone(),
            variant_name: v.name.clone(),
            image: v.image.clone(),
            currency: v.currency.to_string(),
            list_price_cents: v.price_cents,
            price_cents: sale.price_cents,
            quantity: sale.quantity,
            remaining: sale.remaining,
            per_buyer_limit: sale.per_buyer_limit,
            starts_at: sale.starts_at,
            ends_at: sale.ends_at,
        })
    }
}

fn left_msg(sale: Option<SaleId>, variant_id: hawker_core::ids::VariantId, left: u32) -> ServerMsg {
    match sale {
        Some(id) => ServerMsg::SaleLeft {
            id,
            remaining: left,
        },
        None => ServerMsg::Stock {
            variant_id,
            stock: left,
        },
    }
}

#[cfg(test)]
mod tests {
    //! The desk decides without a runtime: commands and the time in, batches and answers out.

    use hawker_core::auction::{Increments, Mode};
    use hawker_core::catalog::Quantity;
    use hawker_core::commerce::{Item, Variant};
    use hawker_core::ids::ShowId;

    use super::*;

    const HOLD_MS: i64 = 60_000;
    const T0: Timestamp = Timestamp(1_000_000);

    fn desk(stock: u32) -> Desk {
        let variant = Variant {
            id: VariantId(7),
            product_id: ProductId(3),
            product_title: "Mug".into(),
            name: "Blue".into(),
            price_cents: 1_500,
            currency: Currency::USD,
            stock,
            image: None,
        };
        let restore = Restore {
            variants: vec![variant],
            ..Restore::default()
        };
        let restored = Restored {
            commerce: ShowCommerce::restore(ShowId(1), restore),
            stats: HostStats::default(),
            pinned: None,
            closing: false,
            auctions: Vec::new(),
            pre_bids: Vec::new(),
        };
        Desk::new(restored, HOLD_MS)
    }

    fn buy(buyer: i64, key: &str) -> (CommerceCmd, oneshot::Receiver<Result<Reserved, Refusal>>) {
        let (reply, answer) = oneshot::channel();
        let order_id = OrderId(crate::store::new_id());
        let cmd = CommerceCmd::Buy {
            req: BuyRequest {
                order_id,
                buyer: UserId(buyer),
                item: Item::Variant(VariantId(7)),
                quantity: Quantity::new(1).expect("one"),
                code: None,
                buyer_has_ordered: false,
                hold_until: T0.plus_ms(HOLD_MS),
            },
            meta: OrderMeta {
                order_id,
                idempotency_key: key.into(),
                payment_method: "pm_card_visa".into(),
            },
            buyer_name: format!("buyer {buyer}"),
            reply,
        };
        (cmd, answer)
    }

    /// Decides, "commits" and answers one turn, as the shell would, with no key stored before.
    fn turn(desk: &mut Desk, now: Timestamp, cmds: Vec<CommerceCmd>) -> (Batch, Committed) {
        turn_after(desk, now, cmds, HashMap::new())
    }

    /// A turn whose buys' keys the shell found stored as `stored`.
    fn turn_after(
        desk: &mut Desk,
        now: Timestamp,
        cmds: Vec<CommerceCmd>,
        stored: HashMap<(UserId, String), OrderId>,
    ) -> (Batch, Committed) {
        let turn = desk.decide_turn(now, &cmds, Some(stored), true);
        let batch = turn.batch.clone();
        let mut committed = desk.committed(now, turn);
        for (cmd, result) in cmds.into_iter().zip(std::mem::take(&mut committed.results)) {
            cmd.reply(result);
        }
        (batch, committed)
    }

    /// Starts auction 5 (5 s, sudden death, one unit of variant 7) at `T0`; answers its deadline.
    fn start_auction(desk: &mut Desk) -> Timestamp {
        let terms = Terms::new(1_000, 5, Mode::SuddenDeath, Increments::standard()).expect("terms");
        let (reply, mut started) = oneshot::channel();
        let start = CommerceCmd::StartAuction {
            id: AuctionId(5),
            variant_id: VariantId(7),
            lot: "Mug".into(),
            terms,
            salt: "salt".into(),
            reply,
        };
        turn(desk, T0, vec![start]);
        started.try_recv().expect("answered").expect("started").1
    }

    /// A bid on auction 5 by user 10, as decided at `now`.
    fn bid_at(desk: &mut Desk, now: Timestamp, amount_cents: i64) -> Result<Outcome, Refusal> {
        let (reply, mut answer) = oneshot::channel();
        let place = CommerceCmd::Bid {
            auction_id: AuctionId(5),
            bidder: UserId(10),
            name: "Ann".into(),
            kind: BidKind::Bid,
            amount_cents,
            policy: None,
            key: None,
            reply,
        };
        turn(desk, now, vec![place]);
        answer.try_recv().expect("answered")
    }

    #[test]
    fn a_buy_is_reserved_in_the_batch_and_answered_once_committed() {
        let mut desk = desk(2);
        let (cmd, mut answer) = buy(10, "k1");
        let (batch, committed) = turn(&mut desk, T0, vec![cmd]);
        assert_eq!(batch.new_orders.len(), 1);
        assert!(matches!(
            batch.events[..],
            [Event::Reserved { left: 1, .. }]
        ));
        let reserved = answer.try_recv().expect("answered").expect("reserved");
        assert_eq!(reserved.line.total_cents, 1_500);
        assert!(
            committed
                .msgs
                .iter()
                .any(|m| matches!(m, ServerMsg::Stock { stock: 1, .. })),
            "the room hears what is left"
        );
    }

    #[test]
    fn a_repeated_key_in_one_turn_reserves_once() {
        let mut desk = desk(3);
        let (first, mut reserved) = buy(10, "k1");
        let (again, mut same_key) = buy(10, "k1");
        let (batch, _) = turn(&mut desk, T0, vec![first, again]);
        assert_eq!(batch.new_orders.len(), 1, "one order for the key");
        let order_id = reserved.try_recv().expect("answered").expect("ok").line.id;
        assert!(matches!(
            same_key.try_recv().expect("answered"),
            Err(Refusal::Duplicate(id)) if id == order_id
        ));
    }

    #[test]
    fn a_sold_out_variant_and_a_stored_key_write_nothing() {
        let mut desk = desk(1);
        let (first, mut reserved) = buy(10, "k1");
        turn(&mut desk, T0, vec![first]);
        let order_id = reserved.try_recv().expect("answered").expect("ok").line.id;
        // The desk forgets keys after their turn; the shell finds them stored.
        let stored = HashMap::from([((UserId(10), "k1".to_owned()), order_id)]);
        let (again, mut same_key) = buy(10, "k1");
        let (other, mut sold_out) = buy(11, "k2");
        let (batch, _) = turn_after(&mut desk, T0, vec![again, other], stored);
        assert!(batch.events.is_empty() && batch.new_orders.is_empty());
        assert!(matches!(
            same_key.try_recv().expect("answered"),
            Err(Refusal::Duplicate(_))
        ));
        assert!(matches!(
            sold_out.try_recv().expect("answered"),
            Err(Refusal::Buy(BuyRejected::SoldOut))
        ));
    }

    #[test]
    fn a_hold_that_runs_out_is_checked_once() {
        let mut desk = desk(1);
        let (cmd, mut answer) = buy(10, "k1");
        turn(&mut desk, T0, vec![cmd]);
        let order_id = answer.try_recv().expect("answered").expect("ok").line.id;
        assert!(desk.due_checks(T0.plus_ms(HOLD_MS - 1)).is_empty());
        let due = desk.due_checks(T0.plus_ms(HOLD_MS));
        assert!(matches!(due[..], [Check::LookUp(id)] if id == order_id));
        assert!(
            desk.due_checks(T0.plus_ms(HOLD_MS + 1)).is_empty(),
            "one check at a time"
        );
    }

    #[test]
    fn an_auction_closes_when_its_deadline_comes_and_its_winner_is_charged() {
        let mut desk = desk(1);
        let ends_at = start_auction(&mut desk);
        assert!(matches!(
            bid_at(&mut desk, T0.plus_ms(1_000), 1_200),
            Ok(Outcome::Accepted { .. })
        ));

        let (_, before) = turn(&mut desk, Timestamp(ends_at.0 - 1), Vec::new());
        assert!(before.charges.is_empty(), "not before its deadline");
        let (batch, after) = turn(&mut desk, ends_at, Vec::new());
        assert_eq!(batch.new_orders.len(), 1, "the winner's order");
        assert!(matches!(
            after.charges[..],
            [Charge {
                user: UserId(10),
                amount_cents: 1_200,
                ..
            }]
        ));
    }

    #[test]
    fn an_ended_auction_is_let_go_once_settled_and_ten_minutes_old() {
        use crate::live::auctions::ENDED_AUCTION_KEPT_MS;
        let mut desk = desk(1);
        let ends_at = start_auction(&mut desk);
        assert!(bid_at(&mut desk, T0.plus_ms(1_000), 1_200).is_ok());
        let (_, closed) = turn(&mut desk, ends_at, Vec::new());
        let won = closed.charges[0].order_id;

        // Long past its end, the win is still being charged: the auction stays.
        let later = ends_at.plus_ms(ENDED_AUCTION_KEPT_MS + 1);
        assert!(bid_at(&mut desk, later, 1_500).is_ok_and(|o| matches!(o, Outcome::Rejected(_))));
        let settle = CommerceCmd::Settle {
            order_id: won,
            settlement: Settlement::Paid {
                payment_ref: Some("ch_1".into()),
                save_method: None,
            },
            reply: None,
        };
        turn(&mut desk, later, vec![settle]);
        // Paid, but the charge is not in its log yet.
        assert!(bid_at(&mut desk, later, 1_500).is_ok());
        let charged = CommerceCmd::AuctionCharged {
            auction_id: AuctionId(5),
            bidder: closed.charges[0].bidder.clone(),
            price_cents: 1_200,
            paid: true,
        };
        let (logged, _) = turn(&mut desk, later, vec![charged]);
        assert_eq!(logged.auction_log.len(), 1, "the charge entry");
        // Paid, logged and ten minutes old: only the store has it now.
        assert!(matches!(
            bid_at(&mut desk, later, 1_500),
            Err(Refusal::UnknownAuction)
        ));
        assert!(
            desk.initial_messages()
                .iter()
                .all(|m| !matches!(m, ServerMsg::Auction(_)))
        );
    }

    #[test]
    fn an_ended_show_takes_no_more_buys() {
        let mut desk = desk(3);
        let (reply, _ended) = oneshot::channel();
        let (_, committed) = turn(&mut desk, T0, vec![CommerceCmd::EndShow { reply }]);
        assert!(committed.end_show && desk.closing());
        let (cmd, mut answer) = buy(10, "k1");
        turn(&mut desk, T0, vec![cmd]);
        assert!(matches!(
            answer.try_recv().expect("answered"),
            Err(Refusal::ShowEnded)
        ));
        assert!(desk.settled(), "nothing left to settle");
    }
}
