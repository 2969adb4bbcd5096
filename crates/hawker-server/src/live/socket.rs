//! One viewer's WebSocket: a task that sends and a task that receives.
//!
//! Sending, on the fan-out threads ([`super::fanout`]): the room's broadcast batches, filtered
//! (host-only messages go to the host), plus direct answers to this viewer. Every batch waiting
//! when the socket wakes goes out in one write. A socket that falls more than the buffer behind
//! is not dropped: it gets a fresh snapshot and carries on from there.
//!
//! Receiving: chat, heart taps and pings, rate-limited per socket; a client that keeps flooding
//! after being told is disconnected.

use std::sync::atomic::Ordering;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use hawker_core::protocol::{ClientMsg, Envelope, PROTOCOL_VERSION, ServerMsg};
use hawker_core::room::{Author, MAX_HEARTS_PER_MESSAGE};
use tokio::sync::{broadcast, mpsc, oneshot};

use hawker_core::auction::{BidKind, Outcome, Rejection};

use super::{CommerceCmd, LiveShow, RoomCmd};
use crate::clock;

/// Messages per second a socket may send, and the burst above it.
const MSGS_PER_SEC: f64 = 10.0;
const MSG_BURST: f64 = 20.0;
/// Refused messages after which the socket is closed.
const MAX_REFUSED: u32 = 200;

/// Largest client message accepted, in bytes (chat is at most 500 characters).
pub const MAX_CLIENT_MESSAGE: usize = 4096;

/// `store` is only read, for a bidder's spending limit.
pub async fn serve(
    socket: WebSocket,
    live: LiveShow,
    store: std::sync::Arc<dyn crate::store::Store>,
    author: Option<Author>,
    host: bool,
) {
    let Some((snapshot, updates)) = join(&live, host, true).await else {
        return;
    };
    let (mut sink, mut stream) = socket.split();
    let (direct_tx, mut direct_rx) = mpsc::channel::<String>(32);

    let sender_live = live.clone();
    let mut send_task = super::fanout::spawn(async move {
        let mut updates = updates;
        if sink.send(Message::Text(snapshot)).await.is_err() {
            return;
        }
        'sending: loop {
            let mut update = tokio::select! {
                update = updates.recv() => Some(update),
                direct = direct_rx.recv() => match direct {
                    Some(text) => {
                        if sink.feed(Message::Text(text.into())).await.is_err() {
                            return;
                        }
                        None
                    }
                    None => break 'sending,
                },
            };
            // Every batch already waiting goes into the same write: a socket that was not
            // reached for a while catches up with one write, not one per batch it missed.
            while let Some(next) = update.take() {
                match next {
                    Ok(batch) => {
                        for out in batch.iter().filter(|out| host || !out.host_only) {
                            if sink.feed(Message::Text(out.text.clone())).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "viewer fell behind; sending a fresh snapshot");
                        let Some((snapshot, fresh)) = join(&sender_live, host, false).await else {
                            break 'sending;
                        };
                        updates = fresh;
                        if sink.feed(Message::Text(snapshot)).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => break 'sending,
                }
                update = already_waiting(&mut updates);
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: 1000,
                reason: "show ended".into(),
            })))
            .await;
    });

    let receiver_live = live.clone();
    let mut recv_task = tokio::spawn(async move {
        let live = receiver_live;
        let mut tokens = MSG_BURST;
        let mut last = std::time::Instant::now();
        let mut refused = 0u32;
        while let Some(Ok(msg)) = stream.next().await {
            let text = match msg {
                Message::Text(t) => t,
                Message::Close(_) => break,
                Message::Ping(_) | Message::Pong(_) => continue,
                Message::Binary(_) => {
                    direct(&direct_tx, "bad_message", "send JSON text messages").await;
                    continue;
                }
            };
            let elapsed = last.elapsed().as_secs_f64();
            last = std::time::Instant::now();
            tokens = (tokens + elapsed * MSGS_PER_SEC).min(MSG_BURST);
            if tokens < 1.0 {
                refused += 1;
                if refused > MAX_REFUSED {
                    let _ = direct_tx
                        .try_send(error_text("flooding", "too many messages; disconnected"));
                    return true;
                }
                if refused % 20 == 1 {
                    direct(&direct_tx, "rate_limited", "too many messages; slow down").await;
                }
                continue;
            }
            tokens -= 1.0;
            if text.len() > MAX_CLIENT_MESSAGE {
                direct(
                    &direct_tx,
                    "message_too_large",
                    "messages must be under 4 KiB",
                )
                .await;
                continue;
            }
            match serde_json::from_str::<ClientMsg>(&text) {
                Ok(ClientMsg::Chat { text }) => {
                    let Some(author) = &author else {
                        direct(&direct_tx, "login_required", "log in to chat").await;
                        continue;
                    };
                    let (reply, answer) = oneshot::channel();
                    let _ = live
                        .room
                        .send(RoomCmd::Chat {
                            author: author.clone(),
                            text,
                            reply,
                        })
                        .await;
                    if let Ok(Err(refusal)) = answer.await {
                        direct(&direct_tx, refusal.code(), &refusal.to_string()).await;
                    }
                }
                Ok(ClientMsg::Hearts { count }) => {
                    live.hearts.fetch_add(
                        u64::from(count.min(MAX_HEARTS_PER_MESSAGE)),
                        Ordering::Relaxed,
                    );
                }
                Ok(ClientMsg::Bid {
                    auction_id,
                    amount_cents,
                    max,
                }) => {
                    let Some(author) = &author else {
                        direct(&direct_tx, "login_required", "log in to bid").await;
                        continue;
                    };
                    let kind = if max { BidKind::Max } else { BidKind::Bid };
                    // Fails closed: if the limit cannot be read, the bid is not placed.
                    let policy = match super::auctions::bid_policy(
                        store.as_ref(),
                        live.host,
                        author.id,
                        amount_cents,
                        crate::clock::now(),
                    )
                    .await
                    {
                        Ok(policy) => policy,
                        Err(_) => {
                            direct(
                                &direct_tx,
                                "unavailable",
                                "could not check your bid; try again",
                            )
                            .await;
                            continue;
                        }
                    };
                    let (reply, answer) = oneshot::channel();
                    let cmd = CommerceCmd::Bid {
                        auction_id,
                        bidder: author.id,
                        name: author.name.clone(),
                        kind,
                        amount_cents,
                        policy,
                        key: None,
                        reply,
                    };
                    if live.commerce.send(cmd).await.is_err() {
                        continue;
                    }
                    match answer.await {
                        Ok(Ok(Outcome::Rejected(r))) => {
                            direct(&direct_tx, r.code(), &rejection_message(&r)).await
                        }
                        Ok(Err(super::Refusal::UnknownAuction)) => {
                            direct(&direct_tx, "wrong_show", "that auction is not in this show")
                                .await
                        }
                        Ok(Err(e)) => direct(&direct_tx, "unavailable", &e.to_string()).await,
                        _ => {}
                    }
                }
                Ok(ClientMsg::Ping { nonce }) => {
                    let _ = direct_tx.send(direct_text(ServerMsg::Pong { nonce })).await;
                }
                Err(e) => {
                    direct(
                        &direct_tx,
                        "bad_message",
                        &format!("not a valid message: {e}"),
                    )
                    .await
                }
            }
        }
        false
    });

    let flooded = tokio::select! {
        _ = &mut send_task => { recv_task.abort(); false }
        flooded = &mut recv_task => flooded.unwrap_or(false),
    };
    if flooded {
        // Let the sender flush the error, then close with "policy violation".
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    send_task.abort();
    let _ = live.room.send(RoomCmd::Leave).await;
}

/// The next batch if one is already waiting, as `recv` would have returned it.
fn already_waiting(
    updates: &mut broadcast::Receiver<super::room::Batch>,
) -> Option<Result<super::room::Batch, broadcast::error::RecvError>> {
    use broadcast::error::{RecvError, TryRecvError};
    match updates.try_recv() {
        Ok(batch) => Some(Ok(batch)),
        Err(TryRecvError::Lagged(missed)) => Some(Err(RecvError::Lagged(missed))),
        Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
        Err(TryRecvError::Empty) => None,
    }
}

async fn join(live: &LiveShow, host: bool, count: bool) -> Option<super::room::Subscription> {
    let (reply, answer) = oneshot::channel();
    live.room
        .send(RoomCmd::Join { host, count, reply })
        .await
        .ok()?;
    answer.await.ok()
}

/// Direct messages are not part of the show's sequence: their `seq` is 0.
fn direct_text(msg: ServerMsg) -> String {
    serde_json::to_string(&Envelope {
        v: PROTOCOL_VERSION,
        seq: 0,
        now: clock::now(),
        msg,
    })
    .unwrap_or_default()
}

fn error_text(code: &str, message: &str) -> String {
    direct_text(ServerMsg::Error {
        code: code.into(),
        message: message.into(),
    })
}

async fn direct(tx: &mpsc::Sender<String>, code: &str, message: &str) {
    let _ = tx.send(error_text(code, message)).await;
}

/// A refusal as a sentence for the bidder.
pub fn rejection_message(r: &Rejection) -> String {
    match r {
        Rejection::BidTooLow { min_cents } => format!("bid at least {min_cents} cents"),
        Rejection::AuctionClosed => "the auction has closed".into(),
        Rejection::OutOfRange => "that is not a valid amount".into(),
        Rejection::AlreadyWinning => "you are already winning".into(),
        Rejection::MaxNotHigher { max_cents } => {
            format!("your maximum is already {max_cents} cents; raise it above that")
        }
        Rejection::Policy { code } if code == "shill_bid" => {
            "sellers cannot bid on their own lots".into()
        }
        Rejection::Policy { code } if code == "wrong_show" => {
            "that auction is in another show".into()
        }
        Rejection::Policy { code } => format!("bid refused ({code})"),
    }
}
