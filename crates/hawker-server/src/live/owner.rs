//! The commerce owner of one show: decides in arrival order, in memory, and answers only after
//! the decisions are durably committed.
//!
//! Each turn of the loop takes every command already waiting (up to `commit_batch_max`), decides
//! them one by one with [`ShowCommerce`], writes all their events in **one** transaction (one
//! fsync), then answers everybody and tells the room. Refusals ("sold out") produce no events, so
//! a batch of only refusals writes nothing. If the commit fails, the in-memory state is thrown
//! away and reloaded from the database, and the batch is decided again piece by piece: the timed
//! decisions alone, then each command alone. Only what cannot be saved on its own is refused, so
//! one bad decision (a buyer's, or a failing write) never wedges the show.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use hawker_core::auction::{Auction, BidKind, Entry, Outcome, Terms};
use hawker_core::commerce::{
    BuyRejected, BuyRequest, DuplicateCode, Event, NotReserved, OrderLine, ReleaseReason, Sale,
    SaleEndReason, SaleRejected, SaleRequest, ShowCommerce,
};
use hawker_core::discount::{CodeRule, Discount};
use hawker_core::ids::{AuctionId, OrderId, ProductId, SaleId, UserId, VariantId};
use hawker_core::money::format_cents;
use hawker_core::protocol::{HostStats, ProductCard, SaleView, ServerMsg, VariantCard};
use hawker_core::purchases::Purchases;
use hawker_core::time::Timestamp;
use tokio::sync::{mpsc, oneshot};

use super::auctions::{LiveAuction, PreBid, pseudonym};
use super::{Hub, RoomCmd};
use crate::auction_log::Chain;
use crate::payments::{ChargeRequest, PaymentError};
use crate::store::{Batch, NewAuction, OrderMeta, StoreError};

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

/// What one turn of the loop collects before it commits.
#[derive(Default)]
struct Turn {
    batch: Batch,
    /// Each command's decision, in the commands' order; sent once the batch is durable.
    results: Vec<Result<Answer, Refusal>>,
    end_show: bool,
    /// The product to pin (or unpin) once the batch is saved.
    pin: Option<Option<ProductId>>,
    /// Auctions whose view changed.
    touched: BTreeSet<AuctionId>,
    /// Winners to charge once their order is saved.
    to_charge: Vec<WinnerCharge>,
    /// The turn's idempotency keys that already have a stored order (`None`: the read failed).
    stored_keys: Option<HashMap<(UserId, String), OrderId>>,
}

/// What a command's decision answers once the batch holding it is durable. Kept apart from the
/// command, so a command can be decided again after a failed commit.
enum Answer {
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
    fn reply(self, result: Result<Answer, Refusal>) {
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

struct WinnerCharge {
    auction_id: AuctionId,
    order_id: OrderId,
    user: UserId,
    bidder: String,
    price_cents: i64,
}

/// How long an ended show's owner waits for more commands before it stops.
const CLOSING_LINGER: Duration = Duration::from_secs(5);

/// Group commits made by all owners since the process started (for `hawker-bench` and metrics).
pub static GROUP_COMMITS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The longest pause before timed decisions that could not be saved are tried again.
const HOUSEKEEPING_BACKOFF_MAX_MS: i64 = 60_000;

pub struct Owner {
    hub: Arc<Hub>,
    commerce: ShowCommerce,
    room: mpsc::Sender<RoomCmd>,
    /// Our own inbox, for settlement checks that run as separate tasks.
    inbox: mpsc::Sender<CommerceCmd>,
    stats: HostStats,
    pinned: Option<ProductId>,
    /// The show ended: refuse new buys, settle what is reserved, then stop.
    closing: bool,
    /// Idempotency keys seen since the owner started, so two in-flight retries of one buy cannot
    /// both reserve (the unique constraint would then fail a whole batch).
    keys: HashMap<(UserId, String), OrderId>,
    /// Buyer names for purchase announcements.
    names: HashMap<OrderId, String>,
    /// Paid orders waiting to be announced, a rush gathered into one message.
    purchases: Purchases,
    /// Codes the host asked to announce once created.
    announce: HashSet<String>,
    /// Reservations whose hold ran out and are being checked with the payment provider.
    checking: HashSet<OrderId>,
    /// This show's auctions: the running one and those ended since the owner started.
    auctions: BTreeMap<AuctionId, LiveAuction>,
    /// Pre-bids waiting for their variant's auction, oldest first.
    pre_bids: Vec<PreBid>,
    /// The latest `now` a turn used.
    last_now: Timestamp,
    /// A commit failed and the state could not be reloaded: stop, so the next request starts a
    /// fresh owner from the database instead of deciding on state nobody stored.
    broken: bool,
    /// Timed decisions (sales ending, auctions closing) that failed to commit in a row; while
    /// they fail they are retried after a growing pause, and commands are decided without them.
    housekeeping_failures: u32,
    housekeeping_after: Timestamp,
}

/// A show's commerce as the database left it, for a new owner.
pub struct Restored {
    pub commerce: ShowCommerce,
    pub stats: HostStats,
    pub pinned: Option<ProductId>,
    /// The show has ended; the owner only settles what is left.
    pub closing: bool,
    pub auctions: Vec<(AuctionId, LiveAuction)>,
    pub pre_bids: Vec<PreBid>,
}

impl Owner {
    pub fn new(
        hub: Arc<Hub>,
        room: mpsc::Sender<RoomCmd>,
        inbox: mpsc::Sender<CommerceCmd>,
        restored: Restored,
    ) -> Self {
        let Restored {
            commerce,
            stats,
            pinned,
            closing,
            auctions,
            pre_bids,
        } = restored;
        Self {
            hub,
            commerce,
            room,
            inbox,
            stats,
            pinned,
            closing,
            keys: HashMap::new(),
            names: HashMap::new(),
            purchases: Purchases::default(),
            announce: HashSet::new(),
            checking: HashSet::new(),
            auctions: auctions.into_iter().collect(),
            pre_bids,
            last_now: Timestamp(0),
            broken: false,
            housekeeping_failures: 0,
            housekeeping_after: Timestamp(0),
        }
    }

    pub async fn run(mut self, mut rx: mpsc::Receiver<CommerceCmd>) {
        let show_id = self.commerce.show_id();
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
        let _ = self.room.send(RoomCmd::Publish(initial)).await;
        if self.closing {
            let _ = self.room.send(RoomCmd::Close).await;
        }

        // Auction wins left reserved by a crash are charged now rather than at their hold's end.
        let unsettled: Vec<OrderId> = self.commerce.due_reservations(Timestamp(i64::MAX));
        for order_id in unsettled {
            if let Some(w) = self.winner_charge_for(order_id) {
                self.checking.insert(order_id);
                self.charge_winner(w);
            }
        }

        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let batch_max = self.hub.settings().commit_batch_max;
        let mut last_command = tokio::time::Instant::now();
        loop {
            let mut cmds = Vec::new();
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(cmd) => cmds.push(cmd),
                    None => break,
                },
                _ = tick.tick() => {}
            }
            while cmds.len() < batch_max {
                match rx.try_recv() {
                    Ok(cmd) => cmds.push(cmd),
                    Err(_) => break,
                }
            }
            let had_commands = !cmds.is_empty();
            // The server clock decides, and must never run backwards inside one show: an NTP step
            // back would put log entries out of order.
            let now = self.hub.clock().now().max(self.last_now);
            self.last_now = now;
            self.turn(now, cmds).await;
            if self.broken {
                break;
            }
            if had_commands {
                last_command = tokio::time::Instant::now();
            }
            // An ended show's owner stays while reservations remain or an auction still runs to
            // its deadline, and a little after its last
            // command, so a request racing its stop (a second-chance offer) still finds it.
            if self.closing
                && self
                    .commerce
                    .due_reservations(Timestamp(i64::MAX))
                    .is_empty()
                && self.auctions.values().all(|a| a.machine.ended())
                && last_command.elapsed() > CLOSING_LINGER
            {
                break;
            }
        }
        self.hub.forget(show_id, &self.inbox);
        tracing::info!(show = %show_id, "commerce owner stopped");
    }

    /// One batch: decide everything, commit once, answer, announce. A batch that cannot be
    /// committed is decided again piece by piece ([`Owner::isolate`]), so one decision that
    /// cannot be saved is refused alone and never wedges the show.
    async fn turn(&mut self, now: Timestamp, cmds: Vec<CommerceCmd>) {
        let housekeeping = now >= self.housekeeping_after;
        let turn = self.decide_turn(now, &cmds, housekeeping).await;
        self.check_due_reservations(now);
        match self.commit(now, &turn.batch).await {
            Ok(()) => {
                if housekeeping {
                    self.housekeeping_failures = 0;
                }
                self.finish(now, turn, cmds).await;
            }
            Err(e) => {
                tracing::error!(
                    show = %self.commerce.show_id(),
                    "group commit failed; reloading and deciding its {} command(s) one by one: {e:#}",
                    cmds.len()
                );
                self.isolate(now, cmds, housekeeping).await;
            }
        }
    }

    /// After a failed commit: back to the stored state, then the timed decisions alone, then
    /// each command alone. What fails alone is refused (or, for timed decisions, retried after
    /// a pause); everything else is committed and answered as usual.
    async fn isolate(&mut self, now: Timestamp, cmds: Vec<CommerceCmd>, housekeeping: bool) {
        let mut cmds = cmds.into_iter();
        let mut reloaded = self.reload().await;
        if reloaded && housekeeping {
            let turn = self.decide_turn(now, &[], true).await;
            match self.commit(now, &turn.batch).await {
                Ok(()) => {
                    self.housekeeping_failures = 0;
                    self.finish(now, turn, Vec::new()).await;
                }
                Err(e) => {
                    self.housekeeping_failures += 1;
                    let pause = (1_000i64 << self.housekeeping_failures.min(6))
                        .min(HOUSEKEEPING_BACKOFF_MAX_MS);
                    self.housekeeping_after = now.plus_ms(pause);
                    tracing::error!(
                        show = %self.commerce.show_id(),
                        "the show's timed decisions could not be saved, trying again in {pause} ms: {e:#}"
                    );
                    reloaded = self.reload().await;
                }
            }
        }
        while reloaded {
            let Some(cmd) = cmds.next() else { return };
            let turn = self
                .decide_turn(now, std::slice::from_ref(&cmd), false)
                .await;
            match self.commit(now, &turn.batch).await {
                Ok(()) => self.finish(now, turn, vec![cmd]).await,
                Err(e) => {
                    tracing::warn!(show = %self.commerce.show_id(), "refused a decision that cannot be saved: {e:#}");
                    cmd.reply(Err(match e {
                        StoreError::Conflict(_) => Refusal::NotSaved,
                        _ => Refusal::Unavailable,
                    }));
                    reloaded = self.reload().await;
                }
            }
        }
        for cmd in cmds {
            cmd.reply(Err(Refusal::Unavailable));
        }
    }

    /// Decides `cmds` (and, with `housekeeping`, what the time alone decides) into one batch.
    async fn decide_turn(
        &mut self,
        now: Timestamp,
        cmds: &[CommerceCmd],
        housekeeping: bool,
    ) -> Turn {
        let mut turn = Turn {
            stored_keys: self.stored_keys(cmds).await,
            ..Turn::default()
        };
        if housekeeping {
            turn.batch.events.extend(self.commerce.tick(now));
            self.close_due_auctions(now, &mut turn);
        }
        for cmd in cmds {
            let result = self.decide(now, cmd, &mut turn);
            turn.results.push(result);
        }
        turn
    }

    /// Writes a batch in one transaction; a batch of only refusals writes nothing.
    async fn commit(&self, now: Timestamp, batch: &Batch) -> Result<(), StoreError> {
        if batch.events.is_empty() && batch.auction_log.is_empty() && !batch.end_show {
            return Ok(());
        }
        self.hub
            .store()
            .commit(self.commerce.show_id(), now, batch)
            .await?;
        GROUP_COMMITS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// A committed turn: answer everybody, then tell the room and start the winners' charges.
    async fn finish(&mut self, now: Timestamp, turn: Turn, cmds: Vec<CommerceCmd>) {
        let Turn {
            batch,
            results,
            end_show,
            pin,
            touched,
            to_charge,
            stored_keys: _,
        } = turn;
        if end_show {
            self.closing = true;
        }
        let mut msgs = self.messages(&batch.events);
        if let Some(product) = pin {
            if let Err(e) = self
                .hub
                .store()
                .set_pinned(self.commerce.show_id(), product)
                .await
            {
                tracing::error!("saving the pinned product: {e:#}");
            }
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
        for charge in to_charge {
            self.charge_winner(charge);
        }
        // Every turn, the tick's too: a rush's gathered purchases go out once their second is up.
        msgs.extend(if self.closing {
            self.purchases.all()
        } else {
            self.purchases.due(now)
        });
        for (cmd, result) in cmds.into_iter().zip(results) {
            cmd.reply(result);
        }
        if !msgs.is_empty() {
            let _ = self.room.send(RoomCmd::Publish(msgs)).await;
        }
        if end_show {
            let _ = self
                .room
                .send(RoomCmd::Publish(vec![ServerMsg::ShowEnded]))
                .await;
            let _ = self.room.send(RoomCmd::Close).await;
        }
    }

    /// Which of these buys' idempotency keys already have an order, from an earlier owner or
    /// another show: one read per turn, so a herd of buyers costs no read per request.
    async fn stored_keys(
        &self,
        cmds: &[CommerceCmd],
    ) -> Option<HashMap<(UserId, String), OrderId>> {
        let keys: Vec<(UserId, String)> = cmds
            .iter()
            .filter_map(|cmd| match cmd {
                CommerceCmd::Buy { req, meta, .. } => {
                    Some((req.buyer, meta.idempotency_key.clone()))
                }
                _ => None,
            })
            .filter(|key| !self.keys.contains_key(key))
            .collect();
        if keys.is_empty() {
            return Some(HashMap::new());
        }
        match self.hub.store().orders_by_keys(&keys).await {
            Ok(found) => Some(
                found
                    .into_iter()
                    .map(|(buyer, key, order)| ((buyer, key), order))
                    .collect(),
            ),
            Err(e) => {
                tracing::error!(show = %self.commerce.show_id(), "reading idempotency keys: {e:#}");
                None
            }
        }
    }

    fn decide(
        &mut self,
        now: Timestamp,
        cmd: &CommerceCmd,
        turn: &mut Turn,
    ) -> Result<Answer, Refusal> {
        let Turn {
            batch, stored_keys, ..
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
                if let Some(existing) = self.keys.get(&key) {
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
                self.keys.insert(key, req.order_id);
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
        let hold = now.plus_ms(self.hub.settings().reservation_hold_ms);
        turn.batch.events.extend(
            self.commerce
                .sell_lot(auction_id, order_id, user, price, hold)?,
        );
        turn.batch.new_orders.push(OrderMeta {
            order_id,
            idempotency_key: auction_order_key(auction_id, Some(&tag)),
            payment_method: "saved".into(),
        });
        turn.to_charge.push(WinnerCharge {
            auction_id,
            order_id,
            user,
            bidder: tag.clone(),
            price_cents: price,
        });
        a.paid = None;
        turn.touched.insert(auction_id);
        Ok((tag, price))
    }

    /// Ends every auction whose deadline has come: the winner gets the lot as a reservation (charged
    /// after the commit), an unsold lot goes back on hand.
    fn close_due_auctions(&mut self, now: Timestamp, turn: &mut Turn) {
        let hold = self.hub.settings().reservation_hold_ms;
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
                .and_then(|p| a.bidders.get(p).map(|(user, _)| (p.clone(), *user)));
            match winner {
                Some((tag, user)) => {
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
                            turn.to_charge.push(WinnerCharge {
                                auction_id: *id,
                                order_id,
                                user,
                                bidder: tag,
                                price_cents: standing.price_cents,
                            });
                        }
                        Err(e) => tracing::error!(auction = %id, "the won lot was not held: {e}"),
                    }
                }
                None => turn.batch.events.extend(self.commerce.return_lot(*id)),
            }
        }
    }

    /// "You bid, you buy": charges the winner's saved payment method, then settles the order and
    /// logs the charge's result through our inbox.
    /// The charge to (re)try for a reserved auction order.
    fn winner_charge_for(&self, order_id: OrderId) -> Option<WinnerCharge> {
        let order = self.commerce.reservation(order_id)?;
        let auction_id = order.auction_id?;
        let bidder = self
            .auctions
            .get(&auction_id)?
            .bidders
            .iter()
            .find(|(_, (user, _))| *user == order.buyer)
            .map(|(tag, _)| tag.clone())?;
        Some(WinnerCharge {
            auction_id,
            order_id,
            user: order.buyer,
            bidder,
            price_cents: order.unit_price_cents,
        })
    }

    fn charge_winner(&self, w: WinnerCharge) {
        let (store, payments, inbox) = (
            self.hub.store().clone(),
            self.hub.payments().clone(),
            self.inbox.clone(),
        );
        // The order's total: the winning price plus the show's shipping if this order carries it.
        let Some(order) = self.commerce.reservation(w.order_id) else {
            return;
        };
        let (amount_cents, currency) = (order.total_cents, order.currency);
        tokio::spawn(async move {
            let method = store
                .payment_methods(w.user)
                .await
                .ok()
                .and_then(|m| m.into_iter().next())
                .map(|(m, _)| m);
            let charged = match method {
                None => Err(PaymentError::Declined("no saved payment method".into())),
                Some(payment_method) => {
                    let req = ChargeRequest {
                        idempotency_key: w.order_id.to_string(),
                        payment_method,
                        amount_cents,
                        currency,
                    };
                    payments.charge(&req).await
                }
            };
            let settlement = match &charged {
                Ok(c) => Settlement::Paid {
                    payment_ref: Some(c.id.clone()),
                    save_method: None,
                },
                Err(PaymentError::Declined(_)) => Settlement::Released(ReleaseReason::Declined),
                // Unknown: try again a little later under the same key (the provider dedupes).
                Err(PaymentError::Unavailable(e)) => {
                    tracing::warn!(order = %w.order_id, "charging an auction winner, retrying: {e}");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    let _ = inbox.send(CommerceCmd::Unchecked(w.order_id)).await;
                    return;
                }
            };
            let (reply, answer) = tokio::sync::oneshot::channel();
            if inbox
                .send(CommerceCmd::Settle {
                    order_id: w.order_id,
                    settlement,
                    reply: Some(reply),
                })
                .await
                .is_err()
            {
                return;
            }
            let settled = matches!(answer.await, Ok(Ok(())));
            let mut paid = charged.is_ok() && settled;
            if let (Ok(c), false) = (&charged, settled) {
                // The hold ran out first: the lot went back, so the money goes back too.
                if let Err(e) = payments.refund(&c.id).await {
                    tracing::error!(order = %w.order_id, "refunding a late auction charge failed: {e}");
                }
                paid = false;
            }
            let _ = inbox
                .send(CommerceCmd::AuctionCharged {
                    auction_id: w.auction_id,
                    bidder: w.bidder,
                    price_cents: w.price_cents,
                    paid,
                })
                .await;
        });
    }

    /// Reservations whose hold ran out: ask the provider whether the charge happened (a crash or
    /// a lost answer can leave a paid reservation), then confirm or release through our inbox.
    fn check_due_reservations(&mut self, now: Timestamp) {
        for order_id in self.commerce.due_reservations(now) {
            if !self.checking.insert(order_id) {
                continue;
            }
            // An auction order is charged by us, not by a client: try (again) now, under the same
            // key, so a crash or an unreachable provider cannot turn a win into a silent expiry.
            if let Some(w) = self.winner_charge_for(order_id) {
                self.charge_winner(w);
                continue;
            }
            let (payments, inbox) = (self.hub.payments().clone(), self.inbox.clone());
            tokio::spawn(async move {
                let cmd = match payments.lookup(&order_id.to_string()).await {
                    Ok(Some(charge)) => CommerceCmd::Settle {
                        order_id,
                        settlement: Settlement::Paid {
                            payment_ref: Some(charge.id),
                            save_method: None,
                        },
                        reply: None,
                    },
                    Ok(None) => CommerceCmd::Settle {
                        order_id,
                        settlement: Settlement::Released(ReleaseReason::Expired),
                        reply: None,
                    },
                    Err(e) => {
                        tracing::warn!(order = %order_id, "settlement check failed, retrying: {e}");
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        CommerceCmd::Unchecked(order_id)
                    }
                };
                let _ = inbox.send(cmd).await;
            });
        }
    }

    /// After a failed commit: everything decided in memory since the last commit is thrown away
    /// and rebuilt from the database — stock, sales and codes, and the auctions from their logs
    /// (so the next log entry chains onto the last one actually stored).
    /// Returns whether it could; if not, the owner stops (`broken`).
    async fn reload(&mut self) -> bool {
        let show_id = self.commerce.show_id();
        let store = self.hub.store().clone();
        let loaded = async {
            let restore = store.load_commerce(show_id).await?;
            let auctions = super::auctions::load(store.as_ref(), show_id).await?;
            let pre_bids = store.pre_bids(show_id).await?;
            Ok::<_, crate::store::StoreError>((restore, auctions, pre_bids))
        };
        match loaded.await {
            Ok((restore, auctions, pre_bids)) => {
                self.commerce = ShowCommerce::restore(show_id, restore);
                self.auctions = auctions.into_iter().collect();
                self.pre_bids = pre_bids
                    .into_iter()
                    .map(|(variant_id, user, name, max_cents)| PreBid {
                        variant_id,
                        user,
                        name,
                        max_cents,
                    })
                    .collect();
                self.keys.clear();
                self.checking.clear();
                true
            }
            Err(e) => {
                tracing::error!(show = %show_id, "reloading commerce state failed, stopping the owner: {e:#}");
                self.broken = true;
                false
            }
        }
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

    fn card(&self, product: ProductId) -> Option<ProductCard> {
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

    fn sale_view(&self, sale: &Sale) -> Option<SaleView> {
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
