//! The commerce owner of one show: the IO shell around its decision desk ([`super::desk`]).
//! It decides in arrival order, in memory, and answers only after the decisions are durably
//! committed.
//!
//! Each turn of the loop takes every command already waiting (up to `commit_batch_max`), has the
//! desk decide them one by one, writes all their events in **one** transaction (one fsync),
//! then answers everybody and tells the room. Refusals ("sold out") produce no events, so a
//! batch of only refusals writes nothing. If the commit fails, the desk's state is thrown away
//! and reloaded from the database, and the batch is decided again piece by piece: the timed
//! decisions alone, then each command alone. Only what cannot be saved on its own is refused, so
//! one bad decision (a buyer's, or a failing write) never wedges the show.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hawker_core::commerce::ReleaseReason;
use hawker_core::ids::{OrderId, UserId};
use hawker_core::time::Timestamp;
use tokio::sync::mpsc;

use super::auctions::PreBid;
use super::desk::{Charge, Check, CommerceCmd, Committed, Desk, Refusal, Restored, Settlement};
use super::{Hub, RoomCmd};
use crate::payments::{ChargeRequest, PaymentError};
use crate::store::{Batch, StoreError};

/// How long an ended show's owner waits for more commands before it stops.
const CLOSING_LINGER: Duration = Duration::from_secs(5);

/// The longest pause before timed decisions that could not be saved are tried again.
const HOUSEKEEPING_BACKOFF_MAX_MS: i64 = 60_000;

pub struct Owner {
    hub: Arc<Hub>,
    desk: Desk,
    room: mpsc::Sender<RoomCmd>,
    /// Our own inbox, for settlement checks that run as separate tasks.
    inbox: mpsc::Sender<CommerceCmd>,
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

impl Owner {
    pub fn new(
        hub: Arc<Hub>,
        room: mpsc::Sender<RoomCmd>,
        inbox: mpsc::Sender<CommerceCmd>,
        restored: Restored,
    ) -> Self {
        let desk = Desk::new(restored, hub.settings().reservation_hold_ms);
        Self {
            hub,
            desk,
            room,
            inbox,
            last_now: Timestamp(0),
            broken: false,
            housekeeping_failures: 0,
            housekeeping_after: Timestamp(0),
        }
    }

    pub async fn run(mut self, mut rx: mpsc::Receiver<CommerceCmd>) {
        let show_id = self.desk.show_id();
        let _ = self
            .room
            .send(RoomCmd::Publish(self.desk.initial_messages()))
            .await;
        if self.desk.closing() {
            let _ = self.room.send(RoomCmd::Close).await;
        }
        for charge in self.desk.unsettled_wins() {
            self.charge_winner(charge);
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
            // its deadline, and a little after its last command, so a request racing its stop
            // (a second-chance offer) still finds it.
            if self.desk.settled() && last_command.elapsed() > CLOSING_LINGER {
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
        let stored_keys = self.stored_keys(&cmds).await;
        let turn = self.desk.decide_turn(now, &cmds, stored_keys, housekeeping);
        self.start_checks(now);
        match self.commit(now, &turn.batch).await {
            Ok(()) => {
                if housekeeping {
                    self.housekeeping_failures = 0;
                }
                let committed = self.desk.committed(now, turn);
                self.finish(committed, cmds).await;
            }
            Err(e) => {
                tracing::error!(
                    show = %self.desk.show_id(),
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
            let turn = self.desk.decide_turn(now, &[], Some(HashMap::new()), true);
            match self.commit(now, &turn.batch).await {
                Ok(()) => {
                    self.housekeeping_failures = 0;
                    let committed = self.desk.committed(now, turn);
                    self.finish(committed, Vec::new()).await;
                }
                Err(e) => {
                    self.housekeeping_failures += 1;
                    let pause = (1_000i64 << self.housekeeping_failures.min(6))
                        .min(HOUSEKEEPING_BACKOFF_MAX_MS);
                    self.housekeeping_after = now.plus_ms(pause);
                    tracing::error!(
                        show = %self.desk.show_id(),
                        "the show's timed decisions could not be saved, trying again in {pause} ms: {e:#}"
                    );
                    reloaded = self.reload().await;
                }
            }
        }
        while reloaded {
            let Some(cmd) = cmds.next() else { return };
            let cmds = std::slice::from_ref(&cmd);
            let stored_keys = self.stored_keys(cmds).await;
            let turn = self.desk.decide_turn(now, cmds, stored_keys, false);
            match self.commit(now, &turn.batch).await {
                Ok(()) => {
                    let committed = self.desk.committed(now, turn);
                    self.finish(committed, vec![cmd]).await;
                }
                Err(e) => {
                    tracing::warn!(show = %self.desk.show_id(), "refused a decision that cannot be saved: {e:#}");
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

    /// Writes a batch in one transaction; a batch of only refusals writes nothing.
    async fn commit(&self, now: Timestamp, batch: &Batch) -> Result<(), StoreError> {
        if batch.events.is_empty() && batch.auction_log.is_empty() && !batch.end_show {
            return Ok(());
        }
        self.hub
            .store()
            .commit(self.desk.show_id(), now, batch)
            .await?;
        self.hub.counted_commit();
        Ok(())
    }

    /// A committed turn: save the pin, answer everybody, then tell the room and start the
    /// winners' charges.
    async fn finish(&mut self, committed: Committed, cmds: Vec<CommerceCmd>) {
        let Committed {
            msgs,
            pin,
            charges,
            end_show,
            results,
        } = committed;
        if let Some(product) = pin
            && let Err(e) = self
                .hub
                .store()
                .set_pinned(self.desk.show_id(), product)
                .await
        {
            tracing::error!("saving the pinned product: {e:#}");
        }
        for charge in charges {
            self.charge_winner(charge);
        }
        for (cmd, result) in cmds.into_iter().zip(results) {
            cmd.reply(result);
        }
        if !msgs.is_empty() {
            let _ = self.room.send(RoomCmd::Publish(msgs)).await;
        }
        if end_show {
            let _ = self
                .room
                .send(RoomCmd::Publish(vec![
                    hawker_core::protocol::ServerMsg::ShowEnded,
                ]))
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
        let keys = Desk::buy_keys(cmds);
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
                tracing::error!(show = %self.desk.show_id(), "reading idempotency keys: {e:#}");
                None
            }
        }
    }

    /// "You bid, you buy": charges the winner's saved payment method, then settles the order and
    /// logs the charge's result through our inbox.
    fn charge_winner(&self, w: Charge) {
        let (store, payments, inbox) = (
            self.hub.store().clone(),
            self.hub.payments().clone(),
            self.inbox.clone(),
        );
        // The order's total: the winning price plus the show's shipping if this order carries it.
        let (amount_cents, currency) = (w.amount_cents, w.currency);
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
    /// a lost answer can leave a paid reservation), then confirm or release through our inbox;
    /// an auction order is charged (again) instead.
    fn start_checks(&mut self, now: Timestamp) {
        for check in self.desk.due_checks(now) {
            let order_id = match check {
                Check::Charge(charge) => {
                    self.charge_winner(charge);
                    continue;
                }
                Check::LookUp(order_id) => order_id,
            };
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
    /// and the desk rebuilt from the database. Returns whether it could; if not, the owner stops
    /// (`broken`).
    async fn reload(&mut self) -> bool {
        let show_id = self.desk.show_id();
        let store = self.hub.store().clone();
        let loaded = async {
            let restore = store.load_commerce(show_id).await?;
            let (now, in_play) = (self.hub.clock().now(), restore.auctions_in_play());
            let auctions = super::auctions::load(store.as_ref(), show_id, now, &in_play).await?;
            let pre_bids = store.pre_bids(show_id).await?;
            Ok::<_, StoreError>((restore, auctions, pre_bids))
        };
        match loaded.await {
            Ok((restore, auctions, pre_bids)) => {
                let pre_bids = pre_bids
                    .into_iter()
                    .map(|(variant_id, user, name, max_cents)| PreBid {
                        variant_id,
                        user,
                        name,
                        max_cents,
                    })
                    .collect();
                self.desk.restore(restore, auctions, pre_bids);
                true
            }
            Err(e) => {
                tracing::error!(show = %show_id, "reloading commerce state failed, stopping the owner: {e:#}");
                self.broken = true;
                false
            }
        }
    }
}
