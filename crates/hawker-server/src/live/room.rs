//! The room owner of one show: the only task that publishes to its viewers.
//!
//! Messages are serialised once here and fanned out on a `broadcast` channel as shared text, so
//! ten thousand viewers cost one `serde_json` call per message. Joining returns the snapshot and
//! the subscription from the same turn of the loop, so no message falls between them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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
    pub text: Arc<str>,
}

/// A fresh start for a socket: the snapshot and the messages after it.
pub type Subscription = (Arc<str>, broadcast::Receiver<Outgoing>);

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
    let (tx, _) = broadcast::channel::<Outgoing>(buffer.max(1));
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let publish = |room: &mut Room, msg: ServerMsg| {
        let host_only = msg.host_only();
        let env = room.publish(clock::now(), msg);
        let text: Arc<str> = serde_json::to_string(&env).unwrap_or_default().into();
        let _ = tx.send(Outgoing { host_only, text });
    };
    loop {
        let cmd = tokio::select! {
            cmd = rx.recv() => cmd,
            _ = tick.tick() => {
                if let Some(msg) = room.hearts(hearts.swap(0, Ordering::Relaxed)) {
                    publish(&mut room, msg);
                }
                if let Some(msg) = room.viewers_changed() {
                    publish(&mut room, msg);
                }
                continue;
            }
        };
        let Some(cmd) = cmd else { break };
        match cmd {
            RoomCmd::Join { host, count, reply } => {
                if count {
                    room.viewer_joined();
                }
                let snapshot = snapshot_text(&room.snapshot(clock::now(), host));
                let _ = reply.send((snapshot, tx.subscribe()));
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
                    publish(&mut room, ServerMsg::Chat(line));
                }
            }
            RoomCmd::DeleteChat { id, reply } => {
                let found = room.has_chat(id);
                if found {
                    publish(&mut room, ServerMsg::ChatDeleted { id });
                }
                let _ = reply.send(found);
            }
            RoomCmd::Mute { user } => room.mute(user),
            RoomCmd::SetBlockedWords(words) => room.set_blocked_words(&words),
            RoomCmd::Publish(msgs) => {
                for msg in msgs {
                    publish(&mut room, msg);
                }
            }
            RoomCmd::Close => break,
        }
    }
    // Dropping `tx` closes every subscription, and sockets close after sending what they have.
}

fn snapshot_text(env: &Envelope) -> Arc<str> {
    serde_json::to_string(env).unwrap_or_default().into()
}
