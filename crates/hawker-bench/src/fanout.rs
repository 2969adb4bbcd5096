//! `hawker-bench fanout`: one live show, V WebSocket viewers, and the load of a busy show — chat
//! at 50 messages/s, hearts at 5,000 taps/s, a sale every 100 ms (a units-left message, and the
//! purchases gathered into one message a second) — against a Socket.IO server on Node.js doing
//! the same room the way its documentation shows (`bench/socketio/server.js`), driven by the same
//! client in the same run.
//!
//! Each server runs as its own process, fresh for every row, so its CPU time and memory are its
//! own. The client opens the viewers from several 127.0.0.x addresses, measures the server's
//! memory per idle viewer, then starts the load and, after a warm-up, counts every message every
//! viewer receives and times chat lines from the sender's clock to a sample of viewers.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::sync::Semaphore;

use super::client::{CLOSE, PING, PONG, TEXT, WsConn, loopback_source};
use super::hawker::Fixture;
use super::{Server, flag, free_port, median, quantile, text_flag, wait_listening};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Hawker,
    SocketIo,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Self::Hawker => "**Hawker**",
            Self::SocketIo => "Socket.IO 4 (Node.js)",
        }
    }
}

struct Load {
    viewers: usize,
    seconds: u64,
    chat_per_s: f64,
    hearts_per_s: f64,
    sale_every: Duration,
}

/// Tries per viewer before the viewer counts as not connected.
const CONNECT_ATTEMPTS: u32 = 3;

pub async fn run(args: &[&str]) -> anyhow::Result<()> {
    super::check_flags(
        "fanout",
        args,
        &[
            "--viewers",
            "--seconds",
            "--runs",
            "--chat-rate",
            "--heart-rate",
            "--sale-ms",
        ],
        &["--smoke", "--no-record", "--no-socketio"],
    )?;
    let smoke = args.contains(&"--smoke");
    let sizes: Vec<usize> = text_flag(args, "--viewers")
        .unwrap_or(if smoke { "200" } else { "1000,10000" })
        .split(',')
        .map(|v| {
            v.trim()
                .parse()
                .context("--viewers takes numbers, like 1000,10000")
        })
        .collect::<anyhow::Result<_>>()?;
    let seconds = flag(args, "--seconds", if smoke { 2 } else { 15 })? as u64;
    let runs = flag(args, "--runs", 1)?.max(1);
    let chat_per_s = flag(args, "--chat-rate", 50)?;
    let hearts_per_s = flag(args, "--heart-rate", 5000)?;
    let sale_ms = flag(args, "--sale-ms", 100)?;
    let load = |viewers| Load {
        viewers,
        seconds,
        chat_per_s: chat_per_s as f64,
        hearts_per_s: hearts_per_s as f64,
        sale_every: Duration::from_millis(sale_ms as u64),
    };
    let mut kinds = vec![Kind::Hawker];
    if !args.contains(&"--no-socketio") {
        kinds.push(Kind::SocketIo);
    }
    println!(
        "hawker-bench fanout: viewers {sizes:?}, {seconds} s measured per row, {runs} run(s)\n"
    );
    let mut rows: Vec<(Kind, usize, Vec<Row>)> = Vec::new();
    for &viewers in &sizes {
        for &kind in &kinds {
            rows.push((kind, viewers, Vec::new()));
        }
    }
    for run in 0..runs {
        for (kind, viewers, results) in rows.iter_mut() {
            let row = measure(*kind, &load(*viewers))
                .await
                .with_context(|| format!("{} with {viewers} viewers", kind.label()))?;
            println!(
                "  run {}: {:<24} {viewers:>6} viewers: {:>9.0} deliveries/s, chat p99 {:>7.1} ms, {:>5.1} KiB/viewer",
                run + 1,
                kind.label(),
                row.deliveries_per_s,
                row.chat_p99_ms,
                row.kib_per_viewer
            );
            results.push(row);
        }
    }
    let table = table(&rows, runs, &load(0));
    println!("\n{table}");
    if super::recording(args) {
        super::record("Room fan-out", "fanout", args, &table)?;
    }
    Ok(())
}

fn table(rows: &[(Kind, usize, Vec<Row>)], runs: usize, load: &Load) -> String {
    let mut t = format!(
        "Chat {:.0}/s, hearts {:.0} taps/s, a sale every {} ms; {} s measured per row; medians of {runs} run(s).\n\n\
         | server | viewers | connected | messages/s per viewer | deliveries/s | chat latency p50 | p99 | order ack p50 | p99 | server CPU | deliveries per server CPU-second | client CPU | server memory per idle viewer |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        load.chat_per_s,
        load.hearts_per_s,
        load.sale_every.as_millis(),
        load.seconds
    );
    // Infinite: no chat line arrived within the run.
    let latency = |ms: f64| {
        if ms.is_finite() {
            format!("{ms:.1} ms")
        } else {
            format!("> {} s", load.seconds)
        }
    };
    let mut per_cpu = Vec::new();
    for (kind, viewers, results) in rows {
        let med = |f: fn(&Row) -> f64| median(&results.iter().map(f).collect::<Vec<_>>());
        let med_ms = |f: fn(&Row) -> Option<f64>| {
            let v: Vec<f64> = results.iter().filter_map(f).collect();
            if v.is_empty() {
                "—".to_string()
            } else {
                format!("{:.1} ms", median(&v))
            }
        };
        t.push_str(&format!(
            "| {} | {viewers} | {:.0} | {:.1} | {:.0} | {} | {} | {} | {} | {:.0}% | {:.0} | {:.0}% | {:.1} KiB |\n",
            kind.label(),
            med(|r| r.connected as f64),
            med(|r| r.per_viewer_per_s),
            med(|r| r.deliveries_per_s),
            latency(med(|r| r.chat_p50_ms)),
            latency(med(|r| r.chat_p99_ms)),
            med_ms(|r| r.order_p50_ms),
            med_ms(|r| r.order_p99_ms),
            med(|r| r.server_cpu * 100.0),
            med(|r| r.deliveries_per_cpu_s),
            med(|r| r.client_cpu * 100.0),
            med(|r| r.kib_per_viewer),
        ));
        per_cpu.push((*kind, *viewers, med(|r| r.deliveries_per_cpu_s)));
    }
    for (kind, viewers, hawker) in &per_cpu {
        if *kind != Kind::Hawker {
            continue;
        }
        if let Some((_, _, other)) = per_cpu
            .iter()
            .find(|(k, v, _)| *k == Kind::SocketIo && v == viewers)
        {
            t.push_str(&format!(
                "\n{viewers} viewers: Hawker delivers {:.1}× the messages per server CPU-second of Socket.IO.",
                hawker / other
            ));
        }
    }
    t.push('\n');
    t
}

struct Row {
    connected: usize,
    per_viewer_per_s: f64,
    deliveries_per_s: f64,
    chat_p50_ms: f64,
    chat_p99_ms: f64,
    /// Hawker only: a sale's order acknowledged while the room is busy.
    order_p50_ms: Option<f64>,
    order_p99_ms: Option<f64>,
    /// Share of one core (1.0 = one core busy).
    server_cpu: f64,
    client_cpu: f64,
    deliveries_per_cpu_s: f64,
    kib_per_viewer: f64,
}

/// A server under test and how to speak to it.
struct Room {
    kind: Kind,
    server: Server,
    addr: SocketAddr,
    path: String,
    /// Hawker: buyers' API tokens, for chatters (chat needs a login) and the sale driver.
    tokens: Vec<String>,
    sale: Option<(i64, i64)>,
    _dir: Option<tempfile::TempDir>,
}

async fn start(kind: Kind, tokens_needed: usize) -> anyhow::Result<Room> {
    match kind {
        Kind::Hawker => {
            let dir = tempfile::tempdir_in(".")?;
            let fixture = Fixture::create(dir.path(), 1_000_000, tokens_needed).await?;
            let (server, addr) = fixture.serve().await?;
            let sale = fixture.open_sale(addr, 1_000_000, 1).await?;
            Ok(Room {
                kind,
                server,
                addr,
                path: format!("/api/v1/shows/{}/live", fixture.show_id),
                tokens: fixture.buyer_tokens.clone(),
                sale: Some((fixture.show_id, sale)),
                _dir: Some(dir),
            })
        }
        Kind::SocketIo => {
            let dir = Path::new("bench/socketio");
            if !dir.join("server.js").exists() {
                bail!("run from the repository root (bench/socketio/server.js)");
            }
            if !dir.join("node_modules/socket.io").exists() {
                let ok = Command::new("npm")
                    .args(["ci", "--no-audit", "--no-fund"])
                    .current_dir(dir)
                    .status()
                    .context("npm (Node.js) is needed for the Socket.IO baseline")?
                    .success();
                if !ok {
                    bail!("npm ci in bench/socketio failed");
                }
            }
            let port = free_port()?;
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let server = Server::spawn(
                "node (Socket.IO)",
                Command::new("node")
                    .arg("server.js")
                    .current_dir(dir)
                    .env("PORT", port.to_string()),
            )?;
            wait_listening(addr, "the Socket.IO server").await?;
            Ok(Room {
                kind,
                server,
                addr,
                path: "/socket.io/?EIO=4&transport=websocket".into(),
                tokens: Vec::new(),
                sale: None,
                _dir: None,
            })
        }
    }
}

impl Room {
    /// A connected socket, past Socket.IO's own handshake where there is one.
    async fn connect(&self, n: usize, token: Option<&str>) -> anyhow::Result<WsConn> {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .as_deref()
            .map(|b| vec![("Authorization", b)])
            .unwrap_or_default();
        let mut ws =
            WsConn::connect(self.addr, Some(loopback_source(n, 8)), &self.path, &headers).await?;
        if self.kind == Kind::SocketIo {
            // Engine.IO "open", then join the default namespace.
            let open = ws.next().await?;
            if !open.payload.starts_with(b"0") {
                bail!("expected an Engine.IO open packet");
            }
            ws.send_text("40").await?;
        }
        Ok(ws)
    }

    /// One client message in this server's framing.
    fn message(&self, event: &str, json: &str) -> String {
        match self.kind {
            Kind::Hawker => json.to_owned(),
            Kind::SocketIo => format!("42[\"{event}\",{json}]"),
        }
    }
}

/// What every viewer shares: whether the window is open, what was delivered, and chat latencies.
struct Meter {
    epoch: Instant,
    measuring: AtomicBool,
    delivered: AtomicU64,
    /// Viewers that received at least one message while measuring.
    reached: AtomicU64,
    chat_latency_us: Mutex<Vec<u32>>,
    /// Hawker: each sale's `POST /api/v1/orders`, request to response.
    order_latency_us: Mutex<Vec<u32>>,
}

impl Meter {
    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
}

/// The sender's clock in a chat line: `"text":"t<microseconds>"`.
fn chat_stamp(payload: &[u8]) -> Option<u64> {
    const MARK: &[u8] = b"\"text\":\"t";
    let at = payload.windows(MARK.len()).position(|w| w == MARK)? + MARK.len();
    let digits = payload[at..].iter().take_while(|b| b.is_ascii_digit());
    let mut n = 0u64;
    let mut any = false;
    for d in digits {
        n = n * 10 + u64::from(d - b'0');
        any = true;
    }
    any.then_some(n)
}

/// Reads a viewer's socket until it closes; counts and samples while the meter is on.
async fn watch(mut ws: WsConn, kind: Kind, sampled: bool, meter: Arc<Meter>) {
    let mut reached = false;
    loop {
        let Ok(frame) = ws.next().await else { return };
        let reply: Option<(u8, &[u8])> = match frame.opcode {
            CLOSE => return,
            PING => Some((PONG, b"")),
            // Engine.IO's heartbeat: answer its ping or be dropped.
            TEXT if kind == Kind::SocketIo && frame.payload == b"2" => Some((TEXT, b"3")),
            TEXT if meter.measuring.load(Ordering::Relaxed) => {
                meter.delivered.fetch_add(1, Ordering::Relaxed);
                if !reached {
                    reached = true;
                    meter.reached.fetch_add(1, Ordering::Relaxed);
                }
                if sampled && let Some(sent) = chat_stamp(frame.payload) {
                    let latency = meter.now_us().saturating_sub(sent);
                    if let Ok(mut l) = meter.chat_latency_us.lock() {
                        l.push(latency.min(u64::from(u32::MAX)) as u32);
                    }
                }
                None
            }
            _ => None,
        };
        if let Some((opcode, payload)) = reply
            && ws.send(opcode, payload).await.is_err()
        {
            return;
        }
    }
}

/// Sends `text()` every `every` while draining what the server broadcasts back.
async fn sender(mut ws: WsConn, every: Duration, kind: Kind, text: impl Fn() -> String) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if ws.send_text(&text()).await.is_err() {
                    return;
                }
            }
            frame = ws.next() => {
                let pong = match frame {
                    Ok(f) if f.opcode == CLOSE => return,
                    Ok(f) => kind == Kind::SocketIo && f.payload == b"2",
                    Err(_) => return,
                };
                if pong && ws.send_text("3").await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn measure(kind: Kind, load: &Load) -> anyhow::Result<Row> {
    // Chat: one line per second per chatter (Hawker's per-person chat rate).
    let chatters = load.chat_per_s.ceil().max(1.0) as usize;
    // Hearts: clients batch taps, 25 to a message, 5 messages/s per socket.
    let tappers = (load.hearts_per_s / 25.0 / 5.0).ceil().max(1.0) as usize;
    // Every sale is a new buyer's (the sale allows one unit each).
    let sales_needed = ((load.seconds + 30) as f64 / load.sale_every.as_secs_f64()) as usize;
    let room = Arc::new(start(kind, chatters + sales_needed).await?);
    let meter = Arc::new(Meter {
        epoch: Instant::now(),
        measuring: AtomicBool::new(false),
        delivered: AtomicU64::new(0),
        reached: AtomicU64::new(0),
        chat_latency_us: Mutex::new(Vec::new()),
        order_latency_us: Mutex::new(Vec::new()),
    });

    // The active clients connect first, so the memory step below counts viewers only.
    let mut active = Vec::new();
    for c in 0..chatters {
        let ws = room
            .connect(c, room.tokens.get(c).map(String::as_str))
            .await?;
        active.push((
            ws,
            Duration::from_secs_f64(chatters as f64 / load.chat_per_s),
            true,
        ));
    }
    for t in 0..tappers {
        let ws = room.connect(chatters + t, None).await?;
        active.push((ws, Duration::from_millis(200), false));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = room.server.rss_bytes();

    let readers = Readers::start()?;
    let limit = Arc::new(Semaphore::new(128));
    let connected = Arc::new(AtomicU64::new(0));
    let sample_every = (load.viewers / 200).max(1);
    let mut viewers = Vec::with_capacity(load.viewers);
    for v in 0..load.viewers {
        let (room, meter, limit, connected) = (
            room.clone(),
            meter.clone(),
            limit.clone(),
            connected.clone(),
        );
        viewers.push(readers.spawn(async move {
            // A viewer whose connection fails tries again a moment later, as a page does.
            let mut attempts = 0;
            let ws = loop {
                let permit = limit.acquire().await;
                let result = room.connect(v, None).await;
                drop(permit);
                attempts += 1;
                match result {
                    Ok(ws) => break ws,
                    Err(e) if attempts == CONNECT_ATTEMPTS => {
                        // The count is in the run's error; one example is enough.
                        static SHOWN: AtomicBool = AtomicBool::new(false);
                        if !SHOWN.swap(true, Ordering::Relaxed) {
                            eprintln!("viewer {v} could not connect in {attempts} attempts: {e}");
                        }
                        return;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                }
            };
            connected.fetch_add(1, Ordering::Relaxed);
            watch(ws, room.kind, v % sample_every == 0, meter).await;
        }));
    }
    // Wait for every viewer (or give up on the stragglers after a while).
    let deadline = Instant::now() + Duration::from_secs(60 + load.viewers as u64 / 200);
    while (connected.load(Ordering::Relaxed) as usize) < load.viewers && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let connected = connected.load(Ordering::Relaxed) as usize;
    let rss_after = room.server.rss_bytes();

    let mut senders = Vec::new();
    for (ws, every, chat) in active {
        let (kind, meter) = (room.kind, meter.clone());
        let message = if chat {
            let room = room.clone();
            Box::new(move || {
                room.message(
                    "chat",
                    &format!("{{\"type\":\"chat\",\"text\":\"t{}\"}}", meter.now_us()),
                )
            }) as Box<dyn Fn() -> String + Send>
        } else {
            let m = room.message("hearts", "{\"type\":\"hearts\",\"count\":25}");
            Box::new(move || m.clone()) as Box<dyn Fn() -> String + Send>
        };
        senders.push(tokio::spawn(sender(ws, every, kind, message)));
    }
    senders.push(tokio::spawn(sales(
        room.clone(),
        load.sale_every,
        chatters,
        meter.clone(),
    )));

    tokio::time::sleep(Duration::from_secs(2)).await;
    let (server_cpu0, client_cpu0, t0) = (
        room.server.cpu_seconds(),
        super::own_cpu_seconds(),
        Instant::now(),
    );
    meter.measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(load.seconds)).await;
    meter.measuring.store(false, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    let server_cpu = room.server.cpu_seconds() - server_cpu0;
    let client_cpu = super::own_cpu_seconds() - client_cpu0;

    for task in senders.iter().chain(viewers.iter()) {
        task.abort();
    }
    let delivered = meter.delivered.load(Ordering::Relaxed) as f64;
    let mut latency = meter
        .chat_latency_us
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    let reached = meter.reached.load(Ordering::Relaxed) as usize;
    // What the harness checks of Hawker every run, smoke size included: everyone got in and got
    // messages, and chat arrived. A peer that could not take every viewer, or so far behind
    // that no chat line arrived within the run, is a result (the table shows how many
    // connected, and its latency as longer than the run), not a broken harness.
    let no_chat = latency.is_empty();
    let short = connected < load.viewers || reached < connected || no_chat;
    if short && room.kind == Kind::Hawker {
        bail!(
            "{connected} of {} viewers connected, {reached} received messages, {} chat lines timed",
            load.viewers,
            latency.len()
        );
    }
    let ms = |us: u32| f64::from(us) / 1000.0;
    let mut orders = meter
        .order_latency_us
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    let mut order_ms = |q| (!orders.is_empty()).then(|| ms(quantile(&mut orders, q)));
    Ok(Row {
        order_p50_ms: order_ms(0.5),
        order_p99_ms: order_ms(0.99),
        connected,
        per_viewer_per_s: delivered / elapsed / connected.max(1) as f64,
        deliveries_per_s: delivered / elapsed,
        chat_p50_ms: if no_chat {
            f64::INFINITY
        } else {
            ms(quantile(&mut latency, 0.5))
        },
        chat_p99_ms: if no_chat {
            f64::INFINITY
        } else {
            ms(quantile(&mut latency, 0.99))
        },
        server_cpu: server_cpu / elapsed,
        client_cpu: client_cpu / elapsed,
        deliveries_per_cpu_s: delivered / server_cpu.max(1e-3),
        kib_per_viewer: rss_after.saturating_sub(rss_before) as f64
            / 1024.0
            / connected.max(1) as f64,
    })
}

/// The runtime the viewers read on: one thread of its own, stopped (its tasks dropped, and with
/// them their hold on the server) when this is dropped.
/// On the load's multi-thread runtime, nearly every server write woke a parked worker thread to
/// read it (a futex wake and a context switch each), and the client spent more of the two cores
/// switching than reading; one thread waits in one `epoll_wait` for all 10,000 sockets instead.
struct Readers {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Readers {
    fn start() -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("viewers".into())
            .spawn(move || runtime.block_on(async { drop(stopped.await) }))?;
        Ok(Self {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(task)
    }
}

impl Drop for Readers {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A sale every `every`: for Hawker a new buyer's real `POST /api/v1/orders` (the owner announces
/// the units left and gathers the purchase), for Socket.IO a `buy` event that does the same.
async fn sales(room: Arc<Room>, every: Duration, first_buyer: usize, meter: Arc<Meter>) {
    match (room.kind, room.sale) {
        (Kind::Hawker, Some((show_id, sale_id))) => {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let Ok(mut http) = super::client::HttpConn::connect(room.addr, None).await else {
                return;
            };
            let body = format!(
                "{{\"show_id\":{show_id},\"flash_sale_id\":{sale_id},\"quantity\":1,\"payment_method\":\"pm_card_visa\"}}"
            );
            for token in &room.tokens[first_buyer..] {
                tick.tick().await;
                let bearer = format!("Bearer {token}");
                let headers = [
                    ("Authorization", bearer.as_str()),
                    ("Idempotency-Key", "fanout"),
                    ("Content-Type", "application/json"),
                ];
                let sent = Instant::now();
                if http
                    .request("POST", "/api/v1/orders", &headers, body.as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
                if meter.measuring.load(Ordering::Relaxed)
                    && let Ok(mut l) = meter.order_latency_us.lock()
                {
                    l.push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                }
            }
        }
        _ => {
            let Ok(ws) = room.connect(0, None).await else {
                return;
            };
            let buy = room.message("buy", "{}");
            sender(ws, every, room.kind, move || buy.clone()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_stamps_are_read_from_either_framing() {
        assert_eq!(
            chat_stamp(br#"{"type":"chat","text":"t123","at":1}"#),
            Some(123)
        );
        assert_eq!(
            chat_stamp(br#"42["msg",{"type":"chat","text":"t9"}]"#),
            Some(9)
        );
        assert_eq!(chat_stamp(br#"{"type":"hearts"}"#), None);
    }
}
