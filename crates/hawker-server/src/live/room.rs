//! The room owner of one show: the only task that publishes to its viewers.
//!
//! Messages are serialised once here and fanned out on a `broadcast` channel as shared text, so
//! ten thousand viewers cost one `serde_json` call per message. They go out in batches: what is
//! published within a short window (longer in a bigger room, at most 10 ms) of the last send
//! waits and leaves with the next one, so a busy show wakes each socket and writes to it once per
//! batch instead of once per message, while a quiet show's messages leave at once. Joining sends
//! what is waiting first, then returns the snapshot and the subscription from the same turn of
//! the loop, so no message falls between them or arrives twice.
//!
//! A counter (units left, stock, viewers, the host's stats) waiting for a batch is replaced by its
//! newer value rather than followed by it: a sale that sells out in a second changes its units
//! left hundreds of times, and every viewer needs only the last value of each batch.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use tokio::time::Instant;

use hawker_core::ids::UserId;
use hawker_core::protocol::{Envelope, ServerMsg};
use hawker_core::room::{Author, ChatRejected, Room, Watcher};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::clock::Clock;

/// One message as every socket sends it.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Only the host's sockets send it on.
    pub host_only: bool,
    /// Shared, not copied, by every socket that sends it.
    pub text: Utf8Bytes,
    /// What one account's sockets send instead (an auction's leader is told they lead).
    pub theirs: Option<(UserId, Utf8Bytes)>,
}

impl Outgoing {
    /// The text for a socket of `viewer`'s.
    pub fn text_for(&self, viewer: Option<UserId>) -> &Utf8Bytes {
        match &self.theirs {
            Some((who, text)) if Some(*who) == viewer => text,
            _ => &self.text,
        }
    }
}

/// Messages that go out together, in order.
pub type Batch = Arc<[Outgoing]>;

/// A fresh start for a socket: the snapshot and the batches after it.
pub type Subscription = (Utf8Bytes, broadcast::Receiver<Batch>);

/// How long after one batch the next may leave, per viewer in the room. A batch costs every
/// socket one wake-up and one write (about 10 µs of CPU on the benchmark machine), so the window
/// grows with the room: a small room's messages leave almost at once, and a 1,000-viewer room's
/// writes stay well under a core however busy the chat.
const BATCH_WINDOW_PER_VIEWER: Duration = Duration::from_micros(10);
/// The most batching may add to a message's delay. Past 1,000 viewers a round of writes takes
/// longer than the window, and the sockets batch themselves: one still writing when the next
/// batches leave picks them all up in its next write (`socket.rs`), so a big room writes as often
/// as the fan-out threads can, and a message waits for at most this window and one round.
const MAX_BATCH_WINDOW: Duration = Duration::from_millis(10);

fn batch_window(viewers: usize) -> Duration {
    BATCH_WINDOW_PER_VIEWER
        .saturating_mul(u32::try_from(viewers).unwrap_or(u32::MAX))
        .min(MAX_BATCH_WINDOW)
}

pub enum RoomCmd {
    /// A viewer arrived (counted, as `watcher`) or resynchronises after falling behind (`None`:
    /// not counted again).
    Join {
        host: bool,
        user: Option<UserId>,
        count: Option<Watcher>,
        reply: oneshot::Sender<Subscription>,
    },
    Leave {
        watcher: Watcher,
    },
    Chat {
        author: Author,
        text: String,
        reply: oneshot::Sender<Result<(), ChatRejected>>,
    },
    DeleteChat {
        id: u64,
        reply: oneshot::Sender<bool>,
    },
    Mute {
        user: UserId,
    },
    SetBlockedWords(Vec<String>),
    Publish(Vec<ServerMsg>),
    /// The show ended: stop after telling everyone.
    Close,
}

pub async fn run(
    mut room: Room,
    mut rx: mpsc::Receiver<RoomCmd>,
    hearts: Arc<AtomicU64>,
    buffer: usize,
    clock: Clock,
) {
    let mut outbox = Outbox::new(buffer, clock);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let cmd = tokio::select! {
            cmd = rx.recv() => cmd,
            _ = tokio::time::sleep_until(outbox.next_send), if !outbox.is_empty() => {
                outbox.send(&mut room, Instant::now());
                continue;
            }
            _ = tick.tick() => {
                if let Some(msg) = room.hearts(hearts.swap(0, Ordering::Relaxed)) {
                    outbox.publish(&mut room, msg);
                }
                if let Some(msg) = room.viewers_changed() {
                    outbox.publish(&mut room, msg);
                }
                outbox.send_if_due(&mut room, Instant::now());
                continue;
            }
        };
        let Some(cmd) = cmd else { break };
        match cmd {
            RoomCmd::Join {
                host,
                user,
                count,
                reply,
            } => {
                if let Some(watcher) = count {
                    room.viewer_joined(watcher);
                }
                // The snapshot already holds what is waiting; the new subscriber must not get it
                // again, and everyone else must.
                outbox.send(&mut room, Instant::now());
                let snapshot = snapshot_text(&room.snapshot(outbox.clock.now(), host, user));
                let _ = reply.send((snapshot, outbox.tx.subscribe()));
            }
            RoomCmd::Leave { watcher } => room.viewer_left(watcher),
            RoomCmd::Chat {
                author,
                text,
                reply,
            } => {
                let result = room.chat(outbox.clock.now(), &author, &text);
                let _ = reply.send(result.as_ref().map(|_| ()).map_err(|e| *e));
                if let Ok(line) = result {
                    outbox.publish(&mut room, ServerMsg::Chat(line));
                }
            }
            RoomCmd::DeleteChat { id, reply } => {
                let found = room.has_chat(id);
                if found {
                    outbox.publish(&mut room, ServerMsg::ChatDeleted { id });
                }
                let _ = reply.send(found);
            }
            RoomCmd::Mute { user } => room.mute(user),
            RoomCmd::SetBlockedWords(words) => room.set_blocked_words(&words),
            RoomCmd::Publish(msgs) => {
                for msg in msgs {
                    outbox.publish(&mut room, msg);
                }
            }
            RoomCmd::Close => break,
        }
        outbox.send_if_due(&mut room, Instant::now());
    }
    outbox.send(&mut room, Instant::now());
    // Dropping the outbox closes every subscription, and sockets close after sending what they
    // have.
}

/// The messages published since the last batch left, and when the next may leave.
struct Outbox {
    tx: broadcast::Sender<Batch>,
    /// Numbered and serialised, in order.
    waiting: Vec<Outgoing>,
    /// Counter messages after `waiting`, not numbered yet so that a newer value can replace one.
    /// They are numbered before any other message is, which keeps the show's order.
    counters: Vec<ServerMsg>,
    next_send: Instant,
    /// The server's time, which every message carries.
    clock: Clock,
}

impl Outbox {
    fn new(buffer: usize, clock: Clock) -> Self {
        let (tx, _) = broadcast::channel(buffer.max(1));
        Self {
            tx,
            clock,
            waiting: Vec::new(),
            counters: Vec::new(),
            next_send: Instant::now(),
        }
    }

    fn is_empty(&self) -> bool {
        self.waiting.is_empty() && self.counters.is_empty()
    }

    fn publish(&mut self, room: &mut Room, msg: ServerMsg) {
        let Some(counter) = msg.counter() else {
            self.number_counters(room);
            return self.number(room, msg);
        };
        match self
            .counters
            .iter_mut()
            .find(|m| m.counter() == Some(counter))
        {
            Some(older) => *older = msg,
            None => self.counters.push(msg),
        }
    }

    fn number_counters(&mut self, room: &mut Room) {
        for msg in std::mem::take(&mut self.counters) {
            self.number(room, msg);
        }
    }

    /// Gives the message its place in the show's sequence and serialises it, once for everyone.
    fn number(&mut self, room: &mut Room, msg: ServerMsg) {
        let host_only = msg.host_only();
        let leaders_copy = msg.leaders_copy();
        let env = room.publish(self.clock.now(), msg);
        let text = Utf8Bytes::from(serde_json::to_string(&env).unwrap_or_default());
        let theirs = leaders_copy.map(|(who, msg)| {
            let env = Envelope { msg, ..env };
            (
                who,
                Utf8Bytes::from(serde_json::to_string(&env).unwrap_or_default()),
            )
        });
        self.waiting.push(Outgoing {
            host_only,
            text,
            theirs,
        });
    }

    fn send_if_due(&mut self, room: &mut Room, now: Instant) {
        if now >= self.next_send {
            self.send(room, now);
        }
    }

    fn send(&mut self, room: &mut Room, now: Instant) {
        self.number_counters(room);
        if self.waiting.is_empty() {
            return;
        }
        let batch: Batch = std::mem::take(&mut self.waiting).into();
        let viewers = self.tx.send(batch).unwrap_or(0);
        self.next_send = now + batch_window(viewers);
    }
}

fn snapshot_text(env: &Envelope) -> Utf8Bytes {
    Utf8Bytes::from(serde_json::to_string(env).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use hawker_core::ids::{SaleId, ShowId};

    use super::*;

    fn sent(rx: &mut broadcast::Receiver<Batch>) -> Vec<serde_json::Value> {
        let batch = rx.try_recv().expect("a batch");
        batch
            .iter()
            .map(|o| serde_json::from_str(o.text.as_str()).expect("JSON"))
            .collect()
    }

    #[test]
    fn a_batch_carries_each_counters_last_value_in_the_shows_order() {
        let mut room = Room::new(ShowId(1), UserId(1), &[]);
        let mut outbox = Outbox::new(16, Clock::manual());
        let mut rx = outbox.tx.subscribe();
        let left = |remaining| ServerMsg::SaleLeft {
            id: SaleId(7),
            remaining,
        };
        for remaining in [9, 8, 7] {
            outbox.publish(&mut room, left(remaining));
        }
        outbox.publish(&mut room, ServerMsg::SaleEnded { id: SaleId(7) });
        outbox.publish(&mut room, left(6));
        outbox.publish(&mut room, left(5));
        outbox.send(&mut room, Instant::now());

        let got = sent(&mut rx);
        let summary: Vec<_> = got
            .iter()
            .map(|m| {
                (
                    m["type"].as_str().unwrap_or("").to_owned(),
                    m["remaining"].clone(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("sale_left".to_owned(), serde_json::json!(7)),
                ("sale_ended".to_owned(), serde_json::Value::Null),
                ("sale_left".to_owned(), serde_json::json!(5)),
            ],
            "a newer value replaces one still waiting, never one before another message"
        );
        let seqs: Vec<_> = got.iter().map(|m| m["seq"].as_u64()).collect();
        assert_eq!(seqs, [Some(1), Some(2), Some(3)], "no gaps in the sequence");
    }
}
