//! One live show's room: chat, hearts, viewers, and the latest state of every overlay.
//!
//! [`Room`] is the single fan-out point of a show: every message to viewers passes through
//! [`Room::publish`], which numbers it and folds it into the state that [`Room::snapshot`] hands to
//! a late joiner. So a snapshot plus the messages after its `seq` is always the whole story.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use crate::account::Role;
use crate::ids::{AuctionId, SaleId, ShowId, UserId};
use crate::protocol::{
    AuctionStatus, AuctionView, ChatLine, Envelope, HostStats, MAX_CHAT_CHARS, PROTOCOL_VERSION,
    ProductCard, SaleView, ServerMsg, Snapshot, VideoState,
};
use crate::time::Timestamp;

/// How many chat lines a late joiner gets.
pub const RECENT_CHAT: usize = 50;

/// Chat rate limit per user: a burst of this many messages…
const CHAT_BURST: f64 = 5.0;
/// …refilled at one message per this many milliseconds.
const CHAT_REFILL_MS: f64 = 1_000.0;
/// The chat buckets are not swept below this many.
const MIN_BUCKET_PRUNE: usize = 1_024;

/// Ended auctions a late joiner still sees (the latest results); older ones are dropped, so a
/// show that runs auctions all day keeps a snapshot of the same size.
pub const RECENT_ENDED_AUCTIONS: usize = 5;

/// Hearts counted from one client message at most; clients batch taps.
pub const MAX_HEARTS_PER_MESSAGE: u32 = 50;

/// The author of a chat message, as the server authenticated them.
#[derive(Debug, Clone)]
pub struct Author {
    pub id: UserId,
    pub name: String,
    pub role: Role,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChatRejected {
    #[error("message is empty")]
    Empty,
    #[error("message is longer than {MAX_CHAT_CHARS} characters")]
    TooLong,
    #[error("you are muted in this show")]
    Muted,
    #[error("slow down: wait {retry_after_ms} ms")]
    RateLimited { retry_after_ms: u64 },
    #[error("message contains a word the host has blocked")]
    BlockedWord,
    #[error("message holds control characters or text-direction overrides")]
    BadCharacters,
}

impl ChatRejected {
    pub fn code(self) -> &'static str {
        match self {
            Self::Empty => "chat_empty",
            Self::TooLong => "chat_too_long",
            Self::Muted => "muted",
            Self::RateLimited { .. } => "rate_limited",
            Self::BlockedWord => "blocked_word",
            Self::BadCharacters => "chat_bad_characters",
        }
    }
}

/// A token bucket, refilled by elapsed time.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Timestamp,
}

/// Who watches, for the viewer count: an account, or an anonymous client address. Many tabs
/// (or one client's 300 sockets) are one viewer; anonymous viewers behind one NAT count once,
/// which errs low rather than letting anyone inflate a show's audience.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Watcher {
    Account(UserId),
    Anonymous(std::net::IpAddr),
}

#[derive(Debug)]
pub struct Room {
    show_id: ShowId,
    host: UserId,
    live: bool,
    video: VideoState,
    seq: u64,
    next_chat_id: u64,
    recent: VecDeque<ChatLine>,
    muted: BTreeSet<UserId>,
    /// Lower-cased words the host blocked.
    blocked_words: Vec<String>,
    buckets: HashMap<UserId, Bucket>,
    /// When `buckets` is this long, the full ones are dropped (see [`Room::take_token`]).
    prune_buckets_at: usize,
    /// Open sockets per watcher: the count is the watchers, not the sockets.
    watchers: HashMap<Watcher, u32>,
    viewers: u32,
    viewers_announced: u32,
    hearts_total: u64,
    pinned: Option<ProductCard>,
    sales: BTreeMap<SaleId, SaleView>,
    auctions: BTreeMap<AuctionId, AuctionView>,
    stats: HostStats,
}

impl Room {
    pub fn new(show_id: ShowId, host: UserId, blocked_words: &[String]) -> Self {
        Self {
            show_id,
            host,
            live: true,
            video: VideoState::Offline,
            seq: 0,
            next_chat_id: 1,
            recent: VecDeque::with_capacity(RECENT_CHAT),
            muted: BTreeSet::new(),
            blocked_words: blocked_words
                .iter()
                .map(|w| w.trim().to_lowercase())
                .filter(|w| !w.is_empty())
                .collect(),
            buckets: HashMap::new(),
            prune_buckets_at: MIN_BUCKET_PRUNE,
            watchers: HashMap::new(),
            viewers: 0,
            viewers_announced: 0,
            hearts_total: 0,
            pinned: None,
            sales: BTreeMap::new(),
            auctions: BTreeMap::new(),
            stats: HostStats::default(),
        }
    }

    /// Numbers a message and folds it into the room's state. Every broadcast goes through here.
    pub fn publish(&mut self, now: Timestamp, msg: ServerMsg) -> Envelope {
        match &msg {
            ServerMsg::Chat(line) => {
                if self.recent.len() == RECENT_CHAT {
                    self.recent.pop_front();
                }
                self.recent.push_back(line.clone());
            }
            ServerMsg::ChatDeleted { id } => self.recent.retain(|l| l.id != *id),
            ServerMsg::Video { state } => self.video = *state,
            ServerMsg::Pinned { product } => self.pinned = product.clone(),
            ServerMsg::Sale(view) => {
                self.sales.insert(view.id, view.clone());
            }
            ServerMsg::SaleLeft { id, remaining } => {
                if let Some(s) = self.sales.get_mut(id) {
                    s.remaining = *remaining;
                }
            }
            ServerMsg::SaleEnded { id } => {
                self.sales.remove(id);
            }
            ServerMsg::Stock { variant_id, stock } => {
                if let Some(card) = &mut self.pinned {
                    for v in card.variants.iter_mut().filter(|v| v.id == *variant_id) {
                        v.stock = *stock;
                    }
                }
            }
            ServerMsg::HostStats(stats) => self.stats = *stats,
            ServerMsg::Auction(view) => {
                self.auctions.insert(view.id, view.clone());
                self.forget_old_auctions();
            }
            ServerMsg::ShowEnded => {
                self.live = false;
                self.sales.clear();
                self.pinned = None;
            }
            ServerMsg::Hearts { .. }
            | ServerMsg::Viewers { .. }
            | ServerMsg::Code { .. }
            | ServerMsg::Purchase { .. }
            | ServerMsg::Snapshot(_)
            | ServerMsg::Error { .. }
            | ServerMsg::Pong { .. } => {}
        }
        self.seq += 1;
        Envelope {
            v: PROTOCOL_VERSION,
            seq: self.seq,
            now,
            msg,
        }
    }

    /// The whole state as of the last published message, for a joiner. `for_host` adds the stats.
    /// The state as `viewer` (signed in, or not) sees it.
    pub fn snapshot(&self, now: Timestamp, for_host: bool, viewer: Option<UserId>) -> Envelope {
        Envelope {
            v: PROTOCOL_VERSION,
            seq: self.seq,
            now,
            msg: ServerMsg::Snapshot(Snapshot {
                show_id: self.show_id,
                live: self.live,
                video: self.video,
                viewers: self.viewers,
                hearts_total: self.hearts_total,
                pinned: self.pinned.clone(),
                sales: self.sales.values().cloned().collect(),
                auctions: self
                    .auctions
                    .values()
                    .map(|a| AuctionView {
                        you_lead: viewer.is_some() && a.leader_account == viewer,
                        ..a.clone()
                    })
                    .collect(),
                chat: self.recent.iter().cloned().collect(),
                host_stats: for_host.then_some(self.stats),
            }),
        }
    }

    /// Checks a chat message against length, mute, rate and blocked words; on success returns
    /// the line to publish.
    pub fn chat(
        &mut self,
        now: Timestamp,
        author: &Author,
        text: &str,
    ) -> Result<ChatLine, ChatRejected> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ChatRejected::Empty);
        }
        if text.chars().count() > MAX_CHAT_CHARS {
            return Err(ChatRejected::TooLong);
        }
        if text.chars().any(crate::catalog::unwanted_char) {
            return Err(ChatRejected::BadCharacters);
        }
        if self.muted.contains(&author.id) {
            return Err(ChatRejected::Muted);
        }
        if self.contains_blocked_word(text) {
            return Err(ChatRejected::BlockedWord);
        }
        self.take_token(now, author.id)?;
        let line = ChatLine {
            id: self.next_chat_id,
            user_id: author.id,
            name: author.name.clone(),
            role: author.role,
            host: author.id == self.host,
            text: text.to_owned(),
            at: now,
        };
        self.next_chat_id += 1;
        Ok(line)
    }

    /// Whether a chat line with this id is in the recent window (deletable and visible).
    pub fn has_chat(&self, id: u64) -> bool {
        self.recent.iter().any(|l| l.id == id)
    }

    pub fn mute(&mut self, user: UserId) {
        self.muted.insert(user);
    }

    pub fn set_blocked_words(&mut self, words: &[String]) {
        self.blocked_words = words
            .iter()
            .map(|w| w.trim().to_lowercase())
            .filter(|w| !w.is_empty())
            .collect();
    }

    /// Adds hearts gathered since the last tick; returns the message to publish, if any.
    pub fn hearts(&mut self, count: u64) -> Option<ServerMsg> {
        if count == 0 {
            return None;
        }
        self.hearts_total += count;
        Some(ServerMsg::Hearts {
            count,
            total: self.hearts_total,
        })
    }

    /// A socket of `watcher` opened: a new watcher adds one viewer, another tab adds none.
    pub fn viewer_joined(&mut self, watcher: Watcher) {
        *self.watchers.entry(watcher).or_default() += 1;
        self.viewers = u32::try_from(self.watchers.len()).unwrap_or(u32::MAX);
    }

    pub fn viewer_left(&mut self, watcher: Watcher) {
        if let Some(n) = self.watchers.get_mut(&watcher) {
            *n -= 1;
            if *n == 0 {
                self.watchers.remove(&watcher);
            }
        }
        self.viewers = u32::try_from(self.watchers.len()).unwrap_or(u32::MAX);
    }

    /// The viewer count, if it changed since it was last announced (called once per tick, so a
    /// wave of joins costs one message).
    pub fn viewers_changed(&mut self) -> Option<ServerMsg> {
        (self.viewers != self.viewers_announced).then(|| {
            self.viewers_announced = self.viewers;
            ServerMsg::Viewers {
                count: self.viewers,
            }
        })
    }

    fn contains_blocked_word(&self, text: &str) -> bool {
        if self.blocked_words.is_empty() {
            return false;
        }
        let lower = text.to_lowercase();
        let words: Vec<&str> = lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        self.blocked_words.iter().any(|blocked| {
            if blocked.contains(char::is_whitespace) {
                lower.contains(blocked.as_str())
            } else {
                words.contains(&blocked.as_str())
            }
        })
    }

    /// Drops ended auctions beyond the [`RECENT_ENDED_AUCTIONS`] that ended last.
    fn forget_old_auctions(&mut self) {
        let mut ended: Vec<(Timestamp, AuctionId)> = self
            .auctions
            .values()
            .filter(|a| a.status == AuctionStatus::Ended)
            .map(|a| (a.ends_at, a.id))
            .collect();
        if ended.len() > RECENT_ENDED_AUCTIONS {
            ended.sort_unstable();
            for (_, id) in &ended[..ended.len() - RECENT_ENDED_AUCTIONS] {
                self.auctions.remove(id);
            }
        }
    }

    /// Takes one message from the user's bucket. A bucket that has refilled is the same as none,
    /// so whenever the map has doubled since the last sweep the full ones go: it stays the size
    /// of who chatted in the last few seconds, not of everyone who ever did.
    fn take_token(&mut self, now: Timestamp, user: UserId) -> Result<(), ChatRejected> {
        if self.buckets.len() >= self.prune_buckets_at {
            let refilled = |b: &Bucket| {
                b.tokens + (now.millis() - b.at.millis()).max(0) as f64 / CHAT_REFILL_MS
                    >= CHAT_BURST
            };
            self.buckets.retain(|_, b| !refilled(b));
            self.prune_buckets_at = (self.buckets.len() * 2).max(MIN_BUCKET_PRUNE);
        }
        let bucket = self.buckets.entry(user).or_insert(Bucket {
            tokens: CHAT_BURST,
            at: now,
        });
        let elapsed = (now.millis() - bucket.at.millis()).max(0) as f64;
        bucket.tokens = (bucket.tokens + elapsed / CHAT_REFILL_MS).min(CHAT_BURST);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let retry_after_ms = ((1.0 - bucket.tokens) * CHAT_REFILL_MS).ceil() as u64;
            Err(ChatRejected::RateLimited { retry_after_ms })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::VariantId;

    fn ana() -> Author {
        Author {
            id: UserId(2),
            name: "Ana".into(),
            role: Role::Buyer,
        }
    }

    #[test]
    fn chat_rules() {
        let mut room = Room::new(
            ShowId(1),
            UserId(1),
            &["spam".into(), "buy followers".into()],
        );
        let t = Timestamp(0);
        assert_eq!(room.chat(t, &ana(), "  "), Err(ChatRejected::Empty));
        for sneaky in ["nul\0here", "abc\u{202E}gpj.exe", "\u{2066}isolate"] {
            assert_eq!(
                room.chat(t, &ana(), sneaky),
                Err(ChatRejected::BadCharacters)
            );
        }
        assert_eq!(
            room.chat(t, &ana(), &"x".repeat(501)),
            Err(ChatRejected::TooLong)
        );
        assert!(
            room.chat(t, &ana(), &"é".repeat(500)).is_ok(),
            "500 characters, not bytes"
        );
        assert_eq!(
            room.chat(t, &ana(), "SPAM here"),
            Err(ChatRejected::BlockedWord)
        );
        assert_eq!(
            room.chat(t, &ana(), "Buy Followers now"),
            Err(ChatRejected::BlockedWord)
        );
        assert!(room.chat(t, &ana(), "spammy is a different word").is_ok());
        room.mute(UserId(2));
        assert_eq!(room.chat(t, &ana(), "hi"), Err(ChatRejected::Muted));
    }

    #[test]
    fn chat_rate_limit_refills_with_time() {
        let mut room = Room::new(ShowId(1), UserId(1), &[]);
        for _ in 0..5 {
            assert!(room.chat(Timestamp(0), &ana(), "hi").is_ok());
        }
        assert_eq!(
            room.chat(Timestamp(0), &ana(), "hi"),
            Err(ChatRejected::RateLimited {
                retry_after_ms: 1000
            })
        );
        assert!(room.chat(Timestamp(1_000), &ana(), "hi").is_ok());
    }

    #[test]
    fn chat_buckets_of_people_who_stopped_chatting_are_let_go() {
        let mut room = Room::new(ShowId(1), UserId(1), &[]);
        let author = |id| Author {
            id: UserId(id),
            name: format!("Viewer {id}"),
            role: Role::Buyer,
        };
        // A day of chat: a hundred thousand people, each saying one thing, a second apart.
        for id in 0..100_000 {
            let now = Timestamp(id * 1_000);
            assert!(room.chat(now, &author(id + 10), "hello").is_ok());
            assert!(room.buckets.len() <= 2 * MIN_BUCKET_PRUNE);
        }
        // Someone rate-limited a moment ago still is: a sweep only drops refilled buckets.
        let t = Timestamp(200_000_000);
        for _ in 0..5 {
            assert!(room.chat(t, &ana(), "hi").is_ok());
        }
        for id in 0..2 * MIN_BUCKET_PRUNE as i64 {
            let _ = room.chat(t, &author(1_000_000 + id), "hi");
        }
        assert!(matches!(
            room.chat(t, &ana(), "hi"),
            Err(ChatRejected::RateLimited { .. })
        ));
    }

    #[test]
    fn a_snapshot_keeps_the_running_auction_and_only_the_latest_results() {
        let mut room = Room::new(ShowId(1), UserId(1), &[]);
        let view = |id: i64, status, ends_at| AuctionView {
            id: AuctionId(id),
            variant_id: VariantId(4),
            product_title: "Lipstick".into(),
            variant_name: "Ruby".into(),
            image: None,
            currency: "USD".into(),
            mode: "standard".into(),
            status,
            price_cents: 100,
            bids: 0,
            leader: None,
            leader_account: None,
            you_lead: false,
            ends_at,
            next_bids: Vec::new(),
            final_hash: None,
            paid: None,
        };
        // One auction after another all day; ids are random, so their order says nothing.
        for n in 0..1_000 {
            let (id, ends) = ((n * 7_919) % 1_000 + 1, Timestamp(n * 30_000));
            room.publish(
                ends,
                ServerMsg::Auction(view(id, AuctionStatus::Running, ends)),
            );
            room.publish(
                ends,
                ServerMsg::Auction(view(id, AuctionStatus::Ended, ends)),
            );
        }
        let next = Timestamp(1_000 * 30_000);
        room.publish(
            next,
            ServerMsg::Auction(view(5_000, AuctionStatus::Running, next)),
        );
        let ServerMsg::Snapshot(snap) = room.snapshot(next, false, None).msg else {
            panic!("not a snapshot")
        };
        let mut ends: Vec<i64> = snap.auctions.iter().map(|a| a.ends_at.0 / 30_000).collect();
        ends.sort_unstable();
        let kept = 1_000 - RECENT_ENDED_AUCTIONS as i64..=1_000;
        assert_eq!(ends, kept.collect::<Vec<_>>());
    }

    #[test]
    fn snapshot_is_the_fold_of_published_messages() {
        let mut room = Room::new(ShowId(1), UserId(1), &[]);
        let t = Timestamp(5);
        let line = room.chat(t, &ana(), "hello").expect("ok");
        room.publish(t, ServerMsg::Chat(line));
        let sale = SaleView {
            id: SaleId(3),
            variant_id: VariantId(4),
            product_id: crate::ids::ProductId(5),
            product_title: "Lipstick".into(),
            variant_name: "Ruby".into(),
            image: None,
            currency: "USD".into(),
            list_price_cents: 2000,
            price_cents: 1500,
            quantity: 10,
            remaining: 10,
            per_buyer_limit: 2,
            starts_at: Timestamp(0),
            ends_at: Timestamp(60_000),
        };
        room.publish(t, ServerMsg::Sale(sale));
        let last = room.publish(
            t,
            ServerMsg::SaleLeft {
                id: SaleId(3),
                remaining: 7,
            },
        );
        let snap = room.snapshot(t, false, None);
        assert_eq!(snap.seq, last.seq);
        let ServerMsg::Snapshot(s) = snap.msg else {
            panic!("a snapshot")
        };
        assert_eq!(s.sales[0].remaining, 7);
        assert_eq!(s.chat.len(), 1);
        assert_eq!(s.host_stats, None);
        room.publish(t, ServerMsg::ChatDeleted { id: 1 });
        let ServerMsg::Snapshot(s) = room.snapshot(t, true, None).msg else {
            panic!("a snapshot")
        };
        assert!(s.chat.is_empty());
        assert!(s.host_stats.is_some());
    }

    #[test]
    fn hearts_and_viewers_are_announced_once_per_tick() {
        let mut room = Room::new(ShowId(1), UserId(1), &[]);
        assert_eq!(room.hearts(0), None);
        assert_eq!(
            room.hearts(1_000_000),
            Some(ServerMsg::Hearts {
                count: 1_000_000,
                total: 1_000_000
            })
        );
        room.viewer_joined(Watcher::Account(UserId(5)));
        room.viewer_joined(Watcher::Anonymous([192, 0, 2, 1].into()));
        assert_eq!(
            room.viewers_changed(),
            Some(ServerMsg::Viewers { count: 2 })
        );
        assert_eq!(room.viewers_changed(), None);
    }

    #[test]
    fn viewers_are_people_not_sockets() {
        let mut room = Room::new(ShowId(1), UserId(1), &[]);
        let stranger = Watcher::Anonymous([203, 0, 113, 9].into());
        for _ in 0..300 {
            room.viewer_joined(stranger);
        }
        room.viewer_joined(Watcher::Account(UserId(5)));
        room.viewer_joined(Watcher::Account(UserId(5)));
        assert_eq!(
            room.viewers_changed(),
            Some(ServerMsg::Viewers { count: 2 })
        );
        for _ in 0..299 {
            room.viewer_left(stranger);
        }
        room.viewer_left(Watcher::Account(UserId(5)));
        assert_eq!(room.viewers_changed(), None, "each still has a socket open");
        room.viewer_left(stranger);
        room.viewer_left(stranger);
        assert_eq!(
            room.viewers_changed(),
            Some(ServerMsg::Viewers { count: 1 })
        );
    }
}
