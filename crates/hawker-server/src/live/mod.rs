//! The live hub: for every live show, one task owns its commerce ([`owner`]) and one owns its
//! room ([`room`]); the adapters (the live socket, the API) talk to both through channels.
//!
//! **Invariant**: at most one owner per show at a time. [`Hub::open`] is the only way to start
//! one, and it holds `opening` while it checks and registers.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use hawker_core::commerce::ShowCommerce;
use hawker_core::ids::{ShowId, UserId};
use hawker_core::room::Room;
use tokio::sync::{mpsc, watch};

use crate::clock::Clock;
use crate::payments::PaymentProvider;
use crate::store::{Show, ShowStatus, Store, StoreError};

pub mod auctions;
pub mod desk;
pub mod fanout;
pub mod owner;
pub mod room;

pub use desk::{CommerceCmd, Refusal, Reserved, Settlement};
pub use room::{Outgoing, RoomCmd};

/// Channels into one live show's tasks. Cheap to clone.
#[derive(Clone)]
pub struct LiveShow {
    pub show_id: ShowId,
    pub host: UserId,
    /// Commands to the commerce owner, decided in arrival order.
    pub commerce: mpsc::Sender<CommerceCmd>,
    /// Commands to the room owner.
    pub room: mpsc::Sender<RoomCmd>,
    /// Heart taps since the room's last tick. An atomic, not a message per tap, so a million
    /// taps cost a million additions and one broadcast per tick.
    pub hearts: Arc<AtomicU64>,
}

impl LiveShow {
    /// Sends a command to the show's commerce owner and waits for its answer, which it gives
    /// once the decision is durable.
    pub async fn ask<T>(
        &self,
        cmd: impl FnOnce(tokio::sync::oneshot::Sender<Result<T, Refusal>>) -> CommerceCmd,
    ) -> Result<T, Refusal> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.commerce
            .send(cmd(reply))
            .await
            .map_err(|_| Refusal::Stopped)?;
        answer.await.map_err(|_| Refusal::Stopped)?
    }
}

/// Settings the owners need.
#[derive(Debug, Clone)]
pub struct LiveSettings {
    pub reservation_hold_ms: i64,
    pub commit_batch_max: usize,
    /// Messages a viewer's socket may fall behind before it gets a fresh snapshot instead.
    pub viewer_buffer: usize,
}

/// Why a show's owners could not be reached. The adapters turn it into their answers (HTTP:
/// `409 show_not_live`, or the store's error).
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("this show is not live")]
    NotLive,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Hub {
    store: Arc<dyn Store>,
    payments: Arc<dyn PaymentProvider>,
    clock: Clock,
    settings: LiveSettings,
    /// Running shows. A plain mutex: only looked up and changed, never held across an `.await`.
    shows: Mutex<HashMap<ShowId, LiveShow>>,
    /// Serialises [`Hub::open`] so two requests cannot start two owners for one show.
    opening: tokio::sync::Mutex<()>,
    /// `(buyer, Idempotency-Key)` of every buy an owner is deciding now, whichever show it
    /// names, each with a receiver that hears when that decision is over: two shows' owners
    /// would each find a key unused, and the second commit would collide on the stored key.
    /// A plain mutex, never held across an `.await`.
    deciding: Mutex<HashMap<(UserId, String), watch::Receiver<()>>>,
    /// Group commits made by this hub's owners (for metrics and `hawker-bench`).
    group_commits: AtomicU64,
}

/// A buy's claim on its idempotency key while an owner decides it ([`Hub::claim_key`]).
/// Dropping it wakes the buys waiting for the key.
pub struct KeyClaim {
    hub: Arc<Hub>,
    key: (UserId, String),
    _over: watch::Sender<()>,
}

impl Drop for KeyClaim {
    fn drop(&mut self) {
        self.hub.deciding().remove(&self.key);
    }
}

impl Hub {
    pub fn new(
        store: Arc<dyn Store>,
        payments: Arc<dyn PaymentProvider>,
        clock: Clock,
        settings: LiveSettings,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            payments,
            clock,
            settings,
            shows: Mutex::new(HashMap::new()),
            opening: tokio::sync::Mutex::new(()),
            deciding: Mutex::new(HashMap::new()),
            group_commits: AtomicU64::new(0),
        })
    }

    pub fn settings(&self) -> &LiveSettings {
        &self.settings
    }

    /// The running shows. A panic elsewhere while the lock was held cannot have left the map
    /// half-changed (it is only inserted into and removed from), so a poisoned lock is used as
    /// is: ignoring it would make a running show look absent and let a second owner start.
    fn shows(&self) -> std::sync::MutexGuard<'_, HashMap<ShowId, LiveShow>> {
        self.shows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn deciding(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(UserId, String), watch::Receiver<()>>> {
        self.deciding
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Claims a buyer's idempotency key until the claim is dropped, first waiting (up to
    /// `patience`) while another buy in this process holds it; `None` if it is still held.
    /// A key already stored is found by the owners, not here.
    pub async fn claim_key(
        self: &Arc<Self>,
        buyer: UserId,
        key: &str,
        patience: std::time::Duration,
    ) -> Option<KeyClaim> {
        let key = (buyer, key.to_owned());
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let mut held = {
                let mut deciding = self.deciding();
                match deciding.get(&key) {
                    Some(held) => held.clone(),
                    None => {
                        let (over, held) = watch::channel(());
                        deciding.insert(key.clone(), held);
                        return Some(KeyClaim {
                            hub: self.clone(),
                            key,
                            _over: over,
                        });
                    }
                }
            };
            // Ends when the holder's claim drops its sender.
            if tokio::time::timeout_at(deadline, held.changed())
                .await
                .is_err()
            {
                return None;
            }
        }
    }

    /// The running owner of a show, if any.
    pub fn get(&self, id: ShowId) -> Option<LiveShow> {
        self.shows().get(&id).cloned()
    }

    /// Starts the owners of a show from its stored state (or returns the running ones). A show
    /// that has ended but still holds unpaid reservations gets an owner that only settles them.
    pub async fn open(self: &Arc<Self>, show: &Show) -> Result<LiveShow, StoreError> {
        let _guard = self.opening.lock().await;
        if let Some(live) = self.get(show.id) {
            return Ok(live);
        }
        let restore = self.store.load_commerce(show.id).await?;
        let stats = self.store.host_stats(show.id).await?;
        let seller = self.store.user(show.seller_id).await?;
        let blocked = seller.map(|u| u.blocked_words).unwrap_or_default();
        let in_play = restore.auctions_in_play();
        let commerce = ShowCommerce::restore(show.id, restore);
        let auctions =
            auctions::load(self.store.as_ref(), show.id, self.clock.now(), &in_play).await?;
        let pre_bids = self
            .store
            .pre_bids(show.id)
            .await?
            .into_iter()
            .map(|(variant_id, user, name, max_cents)| auctions::PreBid {
                variant_id,
                user,
                name,
                max_cents,
            })
            .collect();
        let (room_tx, room_rx) = mpsc::channel(4096);
        let (commerce_tx, commerce_rx) = mpsc::channel(65_536);
        let hearts = Arc::new(AtomicU64::new(0));
        let live = LiveShow {
            show_id: show.id,
            host: show.seller_id,
            commerce: commerce_tx,
            room: room_tx.clone(),
            hearts: hearts.clone(),
        };
        let room = Room::new(show.id, show.seller_id, &blocked);
        tokio::spawn(room::run(
            room,
            room_rx,
            hearts,
            self.settings.viewer_buffer,
            self.clock.clone(),
        ));
        let restored = desk::Restored {
            commerce,
            stats,
            pinned: show.pinned_product_id,
            closing: show.status == ShowStatus::Ended,
            auctions,
            pre_bids,
        };
        let owner = owner::Owner::new(self.clone(), room_tx, live.commerce.clone(), restored);
        let running = tokio::spawn(owner.run(commerce_rx));
        self.shows().insert(show.id, live.clone());
        // Supervision: an owner that panics leaves the hub like one that stops, so the next
        // request starts a fresh owner from the store instead of finding a dead inbox forever.
        let (hub, supervised) = (self.clone(), live.clone());
        tokio::spawn(async move {
            if let Err(e) = running.await {
                tracing::error!(show = %supervised.show_id, "commerce owner failed: {e}");
                hub.forget(supervised.show_id, &supervised.commerce);
            }
        });
        Ok(live)
    }

    /// The owner of a show that is live, starting it if the server has not yet.
    pub async fn live(self: &Arc<Self>, show: &Show) -> Result<LiveShow, LiveError> {
        if show.status != ShowStatus::Live {
            return Err(LiveError::NotLive);
        }
        match self.get(show.id) {
            Some(live) => Ok(live),
            None => Ok(self.open(show).await?),
        }
    }

    /// Called as an owner stops: removes it, and only it (a newer owner of the show stays).
    fn forget(&self, show_id: ShowId, inbox: &mpsc::Sender<CommerceCmd>) {
        let mut shows = self.shows();
        if shows
            .get(&show_id)
            .is_some_and(|live| live.commerce.same_channel(inbox))
        {
            shows.remove(&show_id);
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn payments(&self) -> &Arc<dyn PaymentProvider> {
        &self.payments
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Group commits made by this hub's owners since it started.
    pub fn group_commits(&self) -> u64 {
        self.group_commits
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn counted_commit(&self) {
        self.group_commits
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}
