//! One viewer's WebSocket: a task that sends and a task that receives.
//!
//! Sending, on the fan-out threads ([`crate::live::fanout`]): the room's broadcast batches, filtered
//! (host-only messages go to the host). Every batch waiting when the socket wakes goes out in one
//! write. A socket that falls more than the buffer behind is not dropped: it gets a fresh
//! snapshot and carries on from there.
//!
//! Receiving: chat, heart taps, bids, buys and pings, rate-limited per socket; a client that
//! keeps flooding after being told is disconnected. Answers to this viewer are written by the
//! task that has them, through the shared [`Sink`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use axum::http::StatusCode;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use hawker_core::protocol::{ClientMsg, Envelope, PROTOCOL_VERSION, ServerMsg};
use hawker_core::room::{Author, MAX_HEARTS_PER_MESSAGE, Watcher};
use tokio::sync::{Mutex, broadcast, oneshot};

use hawker_core::auction::{BidKind, Outcome};

use crate::auth::CurrentUser;
use crate::clock::Clock;
use crate::error::{AppError, order_status, rejection_message};
use crate::live::room::{Batch, Subscription};
use crate::live::{LiveShow, Refusal, RoomCmd};
use crate::service::ServiceError;
use crate::service::auctions;
use crate::service::orders::{self, Buy, Charging, Started};
use crate::state::AppState;
use crate::store::{Order, Store, StoreResult, User};
use hawker_core::ids::UserId;
use hawker_core::time::Timestamp;

/// Messages per second a socket may send, and the burst above it.
const MSGS_PER_SEC: f64 = 10.0;
const MSG_BURST: f64 = 20.0;
/// Refused messages after which the socket is closed.
const MAX_REFUSED: u32 = 200;

/// Largest client message accepted, in bytes (chat is at most 500 characters).
pub const MAX_CLIENT_MESSAGE: usize = 4096;

/// `viewer` is who signed in, if anyone: only they may chat, bid and buy, and the show's host
/// (or an admin) also gets the host's messages. `seat` is the client address's, given back when
/// the socket ends.
pub async fn serve(
    socket: WebSocket,
    live: LiveShow,
    state: AppState,
    viewer: Option<Identity>,
    client: std::net::IpAddr,
    seat: crate::limits::Seat,
) {
    let _seat = seat;
    let host = viewer.as_ref().is_some_and(|v| v.user.acts_for(live.host));
    let watcher = match &viewer {
        Some(v) => Watcher::Account(v.user.id),
        None => Watcher::Anonymous(client),
    };
    let me = viewer.as_ref().map(|v| v.user.id);
    let Some((snapshot, updates)) = join(&live, host, me, Some(watcher)).await else {
        return;
    };
    let (sink, mut stream) = socket.split();
    let sink: Sink = Arc::new(Answers {
        socket: Mutex::new(sink),
        clock: state.services.clock.clone(),
    });

    let (sender_live, sender_sink) = (live.clone(), sink.clone());
    let mut send_task = crate::live::fanout::spawn(async move {
        let mut updates = updates;
        if !write(&sender_sink, snapshot).await {
            return;
        }
        'sending: loop {
            let mut update = Some(updates.recv().await);
            let mut sink = sender_sink.socket.lock().await;
            // Every batch already waiting goes into the same write: a socket that was not
            // reached for a while catches up with one write, not one per batch it missed.
            while let Some(next) = update.take() {
                match next {
                    Ok(batch) => {
                        for out in batch.iter().filter(|out| host || !out.host_only) {
                            if sink
                                .feed(Message::Text(out.text_for(me).clone()))
                                .await
                                .is_err()
                            {
                                return;
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "viewer fell behind; sending a fresh snapshot");
                        // Not holding the socket while the room answers: a buyer's answer may
                        // go out meanwhile.
                        drop(sink);
                        let joined = join(&sender_live, host, me, None).await;
                        sink = sender_sink.socket.lock().await;
                        let Some((snapshot, fresh)) = joined else {
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
        close(&sender_sink, 1000, "show ended").await;
    });

    let receiver_live = live.clone();
    let mut recv_task = tokio::spawn(async move {
        let live = receiver_live;
        let mut tokens = MSG_BURST;
        let mut last = Instant::now();
        let mut refused = 0u32;
        let mut viewer = viewer;
        // The host's socket also gets the host's figures, without ever acting: it checks its
        // session on a timer too, and closes when that ends (the page reconnects as whoever
        // it is then). A viewer's socket has no timer, which would cost every one of them.
        let mut host_check = host.then(|| {
            let mut timer = tokio::time::interval(HOST_CHECK);
            // After a long wait (a slow write), one check, not a burst of the missed ones.
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            timer
        });
        loop {
            if host && !still_host(&mut viewer, &state, live.host).await {
                end_session(&sink).await;
                break;
            }
            let msg = tokio::select! {
                msg = stream.next() => msg,
                _ = tick(&mut host_check) => continue,
            };
            let Some(Ok(msg)) = msg else { break };
            let text = match msg {
                Message::Text(t) => t,
                Message::Close(_) => break,
                Message::Ping(_) | Message::Pong(_) => continue,
                Message::Binary(_) => {
                    direct(&sink, "bad_message", "send JSON text messages").await;
                    continue;
                }
            };
            let elapsed = last.elapsed().as_secs_f64();
            last = Instant::now();
            tokens = (tokens + elapsed * MSGS_PER_SEC).min(MSG_BURST);
            if tokens < 1.0 {
                refused += 1;
                if refused > MAX_REFUSED {
                    direct(&sink, "flooding", "too many messages; disconnected").await;
                    return;
                }
                if refused % 20 == 1 {
                    direct(&sink, "rate_limited", "too many messages; slow down").await;
                }
                continue;
            }
            tokens -= 1.0;
            if text.len() > MAX_CLIENT_MESSAGE {
                direct(&sink, "message_too_large", "messages must be under 4 KiB").await;
                continue;
            }
            match serde_json::from_str::<ClientMsg>(&text) {
                Ok(ClientMsg::Chat { text }) => {
                    let author = match acting(&mut viewer, &state, "chat").await {
                        Ok(author) => author,
                        Err(e) => {
                            refuse(&sink, e).await;
                            continue;
                        }
                    };
                    let (reply, answer) = oneshot::channel();
                    let _ = live
                        .room
                        .send(RoomCmd::Chat {
                            author: Author {
                                id: author.id,
                                name: author.display_name,
                                role: author.role,
                            },
                            text,
                            reply,
                        })
                        .await;
                    if let Ok(Err(refusal)) = answer.await {
                        direct(&sink, refusal.code(), &refusal.to_string()).await;
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
                    let author = match acting(&mut viewer, &state, "bid").await {
                        Ok(author) => author,
                        Err(e) => {
                            refuse(&sink, e).await;
                            continue;
                        }
                    };
                    let bid = auctions::Bid {
                        auction_id,
                        kind: if max { BidKind::Max } else { BidKind::Bid },
                        amount_cents,
                        // The socket's own show is the one asked: its owner refuses another's lot.
                        watching: None,
                        key: None,
                    };
                    // Boxed: its state would otherwise be part of every idle socket.
                    match Box::pin(auctions::bid(&state.services, &live, &author, bid)).await {
                        Ok(Outcome::Accepted { .. }) => {}
                        Ok(Outcome::Rejected(r)) => {
                            direct(&sink, r.code(), &rejection_message(&r)).await
                        }
                        Err(ServiceError::Refused(Refusal::UnknownAuction)) => {
                            direct(&sink, "wrong_show", "that auction is not open in this show")
                                .await
                        }
                        // Fails closed: if the limit cannot be read, the bid is not placed.
                        Err(ServiceError::Store(_)) => {
                            direct(&sink, "unavailable", "could not check your bid; try again")
                                .await
                        }
                        Err(e) => direct(&sink, "unavailable", &e.to_string()).await,
                    }
                }
                Ok(ClientMsg::Buy {
                    key,
                    flash_sale_id,
                    variant_id,
                    quantity,
                    code,
                    payment_method,
                }) => {
                    // Refused like any other buy: in an `order` answer that carries the key.
                    let buyer = match acting(&mut viewer, &state, "buy").await {
                        Ok(buyer) => buyer,
                        Err(e) => {
                            write(&sink, order_text(sink.clock.now(), &key, Err(e))).await;
                            continue;
                        }
                    };
                    let body = Buy {
                        show_id: live.show_id.0,
                        flash_sale_id: flash_sale_id.map(|id| id.0),
                        variant_id: variant_id.map(|id| id.0),
                        quantity,
                        code,
                        payment_method,
                    };
                    // The buy runs in a task of its own (a socket that closes meanwhile stops
                    // only this wait), answered like `Prefer: respond-async`.
                    let charging = Charging::UntilSettled;
                    let Started { first, paying } =
                        orders::start_buy(&state.services, buyer, key.clone(), body, charging)
                            .await;
                    write(
                        &sink,
                        order_text(sink.clock.now(), &key, order_status(first)),
                    )
                    .await;
                    // The payment's outcome follows when it settles. The socket may be gone by
                    // then (the order stays readable at `GET /orders/{id}`): it is held weakly,
                    // so a closed socket is not kept open for it.
                    if let Some(paying) = paying {
                        let sink = Arc::downgrade(&sink);
                        tokio::spawn(async move {
                            let ended = orders::paid(paying).await;
                            if let Some(sink) = sink.upgrade() {
                                write(
                                    &sink,
                                    order_text(sink.clock.now(), &key, order_status(ended)),
                                )
                                .await;
                            }
                        });
                    }
                }
                Ok(ClientMsg::Ping { nonce }) => {
                    write(
                        &sink,
                        direct_text(sink.clock.now(), ServerMsg::Pong { nonce }),
                    )
                    .await;
                }
                Err(e) => direct(&sink, "bad_message", &format!("not a valid message: {e}")).await,
            }
        }
    });

    tokio::select! {
        _ = &mut send_task => recv_task.abort(),
        _ = &mut recv_task => {}
    };
    send_task.abort();
    let _ = live.room.send(RoomCmd::Leave { watcher }).await;
}

/// Who a socket acts for: authenticated at the handshake, and looked up again before the socket
/// chats, bids or buys (from the store's sessions in memory, as a rule), so a session ended
/// since, here or in another process, stops acting on the sockets it opened, not only on new
/// requests.
pub struct Identity {
    token_hash: String,
    user: User,
}

impl Identity {
    pub fn new(signed_in: CurrentUser) -> Self {
        Self {
            token_hash: signed_in.token_hash().to_owned(),
            user: signed_in.user,
        }
    }

    /// Whether the token still stands; if it does, its user as they are now.
    async fn still_stands(&mut self, store: &dyn Store) -> StoreResult<bool> {
        match store.user_by_token(&self.token_hash).await? {
            Some((user, _)) => {
                self.user = user;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

/// How often a host's socket checks whether its session still stands (a lookup in the store's
/// sessions in memory, as a rule).
const HOST_CHECK: Duration = Duration::from_secs(1);

async fn tick(timer: &mut Option<tokio::time::Interval>) {
    match timer {
        Some(timer) => {
            timer.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Whether the host's socket still stands for the show's host or an admin. A check that
/// cannot be made keeps it (it only receives; acting checks again and fails closed).
async fn still_host(viewer: &mut Option<Identity>, state: &AppState, show_host: UserId) -> bool {
    let Some(identity) = viewer else {
        return false;
    };
    match identity.still_stands(state.services.store.as_ref()).await {
        Ok(true) => identity.user.acts_for(show_host),
        Ok(false) => false,
        Err(e) => {
            tracing::warn!("could not check a host socket's session: {e}");
            true
        }
    }
}

/// Tells the viewer their session has ended and closes the socket.
async fn end_session(sink: &Sink) {
    direct(
        sink,
        "session_ended",
        "your session has ended; log in again",
    )
    .await;
    close(sink, 1008, "session ended").await;
}

/// The signed-in user a chat, bid or buy acts for, checked again if it may have changed. Nobody
/// (never signed in, or the session has ended since the socket opened, which leaves it watching
/// as an anonymous viewer) is `login_required`; a check that cannot be made refuses too (fails
/// closed). The caller tells the viewer, a buy in its `order` answer.
async fn acting(
    viewer: &mut Option<Identity>,
    state: &AppState,
    what: &str,
) -> Result<User, AppError> {
    let login =
        |message: String| AppError::new(StatusCode::UNAUTHORIZED, "login_required", message);
    let Some(identity) = viewer else {
        return Err(login(format!("log in to {what}")));
    };
    match identity.still_stands(state.services.store.as_ref()).await {
        Ok(true) => Ok(identity.user.clone()),
        Ok(false) => {
            *viewer = None;
            Err(login(format!(
                "your session has ended; log in again to {what}"
            )))
        }
        Err(e) => {
            tracing::warn!("could not check a live socket's session: {e}");
            Err(AppError::unavailable(
                "could not check your session; try again",
            ))
        }
    }
}

/// Tells the viewer why a chat or bid was refused.
async fn refuse(sink: &Sink, e: AppError) {
    let (code, message) = e.public_parts();
    direct(sink, code, &message).await;
}

/// The next batch if one is already waiting, as `recv` would have returned it.
fn already_waiting(
    updates: &mut broadcast::Receiver<Batch>,
) -> Option<Result<Batch, broadcast::error::RecvError>> {
    use broadcast::error::{RecvError, TryRecvError};
    match updates.try_recv() {
        Ok(batch) => Some(Ok(batch)),
        Err(TryRecvError::Lagged(missed)) => Some(Err(RecvError::Lagged(missed))),
        Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
        Err(TryRecvError::Empty) => None,
    }
}

async fn join(
    live: &LiveShow,
    host: bool,
    user: Option<UserId>,
    count: Option<Watcher>,
) -> Option<Subscription> {
    let (reply, answer) = oneshot::channel();
    live.room
        .send(RoomCmd::Join {
            host,
            user,
            count,
            reply,
        })
        .await
        .ok()?;
    answer.await.ok()
}

/// Direct messages are not part of the show's sequence: their `seq` is 0.
fn direct_text(now: Timestamp, msg: ServerMsg) -> String {
    serde_json::to_string(&Envelope {
        v: PROTOCOL_VERSION,
        seq: 0,
        now,
        msg,
    })
    .unwrap_or_default()
}

/// The answer to a `buy`: `{"type":"order","key","status"}` with the `order`, or the `error`, as
/// `POST /orders` answers it (`status` is the HTTP status it would have). Not a [`ServerMsg`]:
/// the order is the server's own type, serialized as the API serializes it.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct OrderAnswer<'a> {
    v: u32,
    /// Always 0: an answer to one buyer is not part of the show's sequence.
    seq: u64,
    now: Timestamp,
    #[serde(rename = "type")]
    #[schemars(schema_with = "order_type")]
    kind: &'static str,
    /// The `key` of the `buy` this answers.
    key: &'a str,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    order: Option<&'a Order>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<AnswerError>,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
struct AnswerError {
    code: &'static str,
    message: String,
}

fn order_type(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "const": "order" })
}

fn order_text(now: Timestamp, key: &str, outcome: Result<(StatusCode, Order), AppError>) -> String {
    let (status, order, error) = match &outcome {
        Ok((status, order)) => (*status, Some(order), None),
        Err(e) => {
            let (code, message) = e.public_parts();
            (e.status(), None, Some(AnswerError { code, message }))
        }
    };
    // Into a buffer that holds an order at once, as `POST /orders` does (`api/orders.rs`):
    // `to_string` starts at 128 bytes and copies its way up to an order's 600.
    let mut text = Vec::with_capacity(1024);
    let msg = OrderAnswer {
        v: PROTOCOL_VERSION,
        seq: 0,
        now,
        kind: "order",
        key,
        status: status.as_u16(),
        order,
        error,
    };
    match serde_json::to_writer(&mut text, &msg).map(|()| String::from_utf8(text)) {
        Ok(Ok(text)) => text,
        // Not expected; the buyer's client asks again with the same key when nothing comes.
        failed => {
            tracing::error!(key, "an order answer did not serialize: {failed:?}");
            String::new()
        }
    }
}

fn error_text(now: Timestamp, code: &str, message: &str) -> String {
    direct_text(
        now,
        ServerMsg::Error {
            code: code.into(),
            message: message.into(),
        },
    )
}

/// The socket's writing half, shared: the send task writes the room's batches with it, and an
/// answer to this viewer (an order, an error, a pong) is written by the task that has it, at
/// request priority. Queued for the send task instead, a buyer's answer would wait on a fan-out
/// thread behind the round of writes to every socket in a busy room.
type Sink = Arc<Answers>;

/// The socket's writing half, and the clock whose time each answer carries.
struct Answers {
    socket: Mutex<SplitSink<WebSocket, Message>>,
    clock: Clock,
}

/// How long an answer may wait for its socket (a round of the room's writes under way to it,
/// or a viewer that does not read): past that it is dropped, and nothing holds the socket open.
/// The buyer's client asks again with the same key.
const ANSWER_WAIT: Duration = Duration::from_secs(5);

/// Writes one text message now; false if the socket is gone or would not take it in time.
async fn write(sink: &Sink, text: impl Into<Utf8Bytes>) -> bool {
    let text = text.into();
    !text.is_empty() && send(sink, Message::Text(text)).await
}

/// Closes the socket with a code and a reason, as [`write`] writes.
async fn close(sink: &Sink, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    send(sink, Message::Close(Some(frame))).await;
}

async fn send(sink: &Sink, message: Message) -> bool {
    let sent = async { sink.socket.lock().await.send(message).await.is_ok() };
    tokio::time::timeout(ANSWER_WAIT, sent)
        .await
        .unwrap_or(false)
}

async fn direct(sink: &Sink, code: &str, message: &str) {
    write(sink, error_text(sink.clock.now(), code, message)).await;
}
