//! The live hub: for every live show, one task owns its commerce ([`owner`]) and one owns its
//! room ([`room`]); sockets ([`socket`]) talk to both through channels.
//!
//! **Invariant**: at most one owner per show at a time. [`Hub::open`] is the only way to start
//! one, and it holds `opening` while it checks and registers.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use hawker_core::commerce::ShowCommerce;
use hawker_core::ids::{ShowId, UserId};
use hawker_core::room::Room;
use tokio::sync::mpsc;

use crate::error::AppError;
use crate::payments::PaymentProvider;
use crate::store::{Show, ShowStatus, Store};

pub mod auctions;
pub mod fanout;
pub mod owner;
pub mod room;
pub mod socket;
pub mod video;

pub use owner::{CommerceCmd, Refusal, Reserved, Settlement};
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

/// Settings the owners need.
#[derive(Debug, Clone)]
pub struct LiveSettings {
    pub reservation_hold_ms: i64,
    pub commit_batch_max: usize,
    /// Messages a viewer's socket may fall behind before it gets a fresh snapshot instead.
    pub viewer_buffer: usize,
}

pub struct Hub {
    store: Arc<dyn Store>,
    payments: Arc<dyn PaymentProvider>,
    settings: LiveSettings,
    /// Running shows. A plain mutex: only looked up and changed, never held across an `.await`.
    shows: Mutex<HashMap<ShowId, LiveShow>>,
    /// Serialises [`Hub::open`] so two requests cannot start two owners for one show.
    opening: tokio::sync::Mutex<()>,
}

impl Hub {
    pub fn new(
        store: Arc<dyn Store>,
        payments: Arc<dyn PaymentProvider>,
        settings: LiveSettings,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            payments,
            settings,
            shows: Mutex::new(HashMap::new()),
            opening: tokio::sync::Mutex::new(()),
        })
    }

    pub fn settings(&self) -> &LiveSettings {
        &self.settings
    }

    /// The running owner of a show, if any.
    pub fn get(&self, id: ShowId) -> Option<LiveShow> {
        self.shows.lock().ok().and_then(|m| m.get(&id).cloned())
    }

    /// Starts the owners of a show from its stored state (or returns the running ones). A show
    /// that has ended but still holds unpaid reservations gets an owner that only settles them.
    pub async fn open(self: &Arc<Self>, show: &Show) -> Result<LiveShow, AppError> {
        let _guard = self.opening.lock().await;
        if let Some(live) = self.get(show.id) {
            return Ok(live);
        }
        let restore = self.store.load_commerce(show.id).await?;
        let stats = self.store.host_stats(show.id).await?;
        let seller = self.store.user(show.seller_id).await?;
        let blocked = seller.map(|u| u.blocked_words).unwrap_or_default();
        let commerce = ShowCommerce::restore(show.id, restore);
        let auctions = auctions::load(self.store.as_ref(), show.id).await?;
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
        ));
        let restored = owner::Restored {
            commerce,
            stats,
            pinned: show.pinned_product_id,
            closing: show.status == ShowStatus::Ended,
            auctions,
            pre_bids,
        };
        let owner = owner::Owner::new(self.clone(), room_tx, live.commerce.clone(), restored);
        tokio::spawn(owner.run(commerce_rx));
        if let Ok(mut shows) = self.shows.lock() {
            shows.insert(show.id, live.clone());
        }
        Ok(live)
    }

    /// The owner of a show that is live, starting it if the server has not yet.
    pub async fn live(self: &Arc<Self>, show: &Show) -> Result<LiveShow, AppError> {
        if show.status != ShowStatus::Live {
            return Err(AppError::conflict("show_not_live", "this show is not live"));
        }
        match self.get(show.id) {
            Some(live) => Ok(live),
            None => self.open(show).await,
        }
    }

    /// Called by an owner as it stops.
    fn forget(&self, id: ShowId) {
        if let Ok(mut shows) = self.shows.lock() {
            shows.remove(&id);
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn payments(&self) -> &Arc<dyn PaymentProvider> {
        &self.payments
    }
}
