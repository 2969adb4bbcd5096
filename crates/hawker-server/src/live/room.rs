//! The room owner of one show: the only task that publishes to its viewers.
//!
//! Messages are serialised once here and fanned out on a `broadcast` channel as shared text, so
//! ten thousand viewers cost one `serde_json` call per message. They go out in batches: what is
//! published within a short window (longer in a bigger room, at most 10 ms) of the last send
//! waits and leaves with the next one, so a busy show wakes each socket and writes to it once per
//! batch instead of once per message, while a quiet show's messages leave at once. Joining sends
//! what is waiting first, then returns the snapshot and the subscription from the same turn of
//! the loop, so no message falls between them or arrives twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use tokio::time::Instant;

use hawker_core::ids::UserId;
use hawker_core::protocol::{Envelope, ServerMsg};
use hawker_core::room::{Author, ChatRejected, Room};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::clock;

/// One message as every socket sends it.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Only the host's sockets send it on.
    pub host_only: bool,
    /// Shared, not copied, by every socket that sends it.
    pub text: Utf8Bytes,
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
    /// A viewer arrived (counted) or resynchronises after falling behind (not counted again).
    Join {
        host: bool,
        count: bool,
        reply: oneshot::Sender<Subscription>,
    },
    Leave,
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
) {
    let mut outbox = Outbox::new(buffer);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let publish = |room: &mut Room, outbox: &mut Outbox, msg: ServerMsg| {
        let host_only = msg.host_only();
        let env = room.publish(clock::now(), msg);
        let text = Utf8Bytes::from(serde_json::to_string(&env).unwrap_or_default());
        outbox.waiting.push(Outgoing { host_only, text });
    };
    loop {
        let cmd = tokio::select! {
            cmd = rx.recv() => cmd,
            _ = tokio::time::sleep_until(outbox.next_send), if !outbox.waiting.is_empty() => {
                outbox.send(Instant::now());
                continue;
            }
            _ = tick.tick() => {
                if let Some(msg) = room.hearts(hearts.swap(0, Ordering::Relaxed)) {
                    publish(&mut room, &mut outbox, msg);
                }
                if let Some(msg) = room.viewers_changed() {
                    publish(&mut room, &mut outbox, msg);
                }
                outbox.send_if_due(Instant::now());
                continue;
            }
        };
        let Some(cmd) = cmd else { break };
        match cmd {
            RoomCmd::Join { host, count, reply } => {
                if count {
                    room.viewer_joined();
                }
                // The snapshot already holds what is waiting; the new subscriber must not get it
                // again, and everyone else must.
                outbox.send(Instant::now());
                let snapshot = snapshot_text(&room.snapshot(clock::now(), host));
                let _ = reply.send((snapshot, outbox.tx.subscribe()));
            }
            RoomCmd::Leave => room.viewer_left(),
            RoomCmd::Chat {
                author,
                text,
                reply,
            } => {
                let result = room.chat(clock::now(), &author, &text);
                let _ = reply.send(result.as_ref().map(|_| ()).map_err(|e| *e));
                if let Ok(line) = result {
                    publish(&mut room, &mut outbox, ServerMsg::Chat(line));
                }
            }
            RoomCmd::DeleteChat { id, reply } => {
                let found = room.has_chat(id);
                if found {
                    publish(&mut room, &mut outbox, ServerMsg::ChatDeleted { id });
                }
                let _ = reply.send(found);
            }
            RoomCmd::Mute { user } => room.mute(user),
            RoomCmd::SetBlockedWords(words) => room.set_blocked_words(&words),
            RoomCmd::Publish(msgs) => {
                for msg in msgs {
                    publish(&mut room, &mut outbox, msg);
                }
            }
            RoomCmd::Close => break,
        }
        outbox.send_if_due(Instant::now());
    }
    outbox.send(Instant::now());
    // Dropping the outbox closes every subscription, and sockets close after sending what they
    // have.
}

/// The messages published since the last batch left, and when the next may leave.
struct Outbox {
    tx: broadcast::Sender<Batch>,
    waiting: Vec<Outgoing>,
    next_send: Instant,
}

impl Outbox {
    fn new(buffer: usize) -> Self {
        let (tx, _) = broadcast::channel(buffer.max(1));
        Self {
            tx,
            waiting: Vec::new(),
            next_send: Instant::now(),
        }
    }

    fn send_if_due(&mut self, now: Instant) {
        if now >= self.next_send {
            self.send(now);
        }
    }

    fn send(&mut self, now: Instant) {
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
