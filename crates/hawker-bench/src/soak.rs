//! `hawker-bench soak`: one live show for a long time under steady buying, chatting and bidding,
//! sampled every few seconds: orders/s, the p99 of answers, the server's memory, the database and
//! its WAL. The series goes to a CSV and an SVG chart, so a reader sees whether the lines stay
//! flat; the summary compares the first sixth of the run with the last (ten minutes each in an
//! hour). The host rotates flash sales and auctions as a 24/7 show does, so ended ones must be
//! let go. At the end every acknowledged order must be in the database.
//!
//! A shared machine's disk and cores are slower in some minutes than in others, by more than a
//! show's age could explain, so the last window has a control: a second server with the same
//! show on a database of its own, idle until then, takes turns with the aged one under the same
//! load (see [`Turns`]). Whether the show slowed with age is read from the two side by side in the
//! same minutes, not from minutes an hour apart.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use serde_json::{Value, json};
use sqlx::ConnectOptions;

use super::client::{HttpConn, WsConn, loopback_source};
use super::hawker::Fixture;
use super::{Server, flag, text_flag};

/// Units on the shelf: more than any run can sell.
const STOCK: usize = 1_000_000_000;

/// The show that runs the whole soak, and the control that joins it for the last window.
const AGED: usize = 0;
const FRESH: usize = 1;

struct Params {
    minutes: f64,
    /// Buys a second, evenly spaced; `None`: as fast as the answers come back.
    rate: Option<f64>,
    concurrency: usize,
    buyers: usize,
    chatters: usize,
    viewers: usize,
    bidders: usize,
    sample: Duration,
    /// How long each flash sale and each auction runs before the host replaces it.
    sale_every: Duration,
    auction_every: Duration,
}

impl Params {
    fn parse(args: &[&str]) -> anyhow::Result<Self> {
        let smoke = args.contains(&"--smoke");
        let minutes = match text_flag(args, "--minutes") {
            Some(m) => m.parse().context("--minutes takes a number")?,
            None if smoke => 1.0,
            None => 60.0,
        };
        ensure!(minutes > 0.0, "--minutes must be positive");
        let pick = |name, full, small| flag(args, name, if smoke { small } else { full });
        let rate = pick("--rate", 1_000, 200)?;
        let p = Self {
            minutes,
            rate: (rate > 0).then_some(rate as f64),
            concurrency: pick("--concurrency", 64, 8)?.max(1),
            buyers: pick("--buyers", 5_000, 200)?.max(1),
            chatters: pick("--chatters", 20, 3)?,
            viewers: pick("--viewers", 200, 10)?,
            bidders: pick("--bidders", 8, 2)?,
            sample: Duration::from_secs(pick("--sample-s", 5, 2)?.max(1) as u64),
            sale_every: Duration::from_secs(if smoke { 20 } else { 60 }),
            auction_every: Duration::from_secs(if smoke { 10 } else { 30 }),
        };
        ensure!(
            p.samples() >= 24,
            "a soak needs at least 24 samples for its windows and the fresh show's turns: \
             a longer --minutes or a shorter --sample-s"
        );
        Ok(p)
    }

    fn buying(&self) -> String {
        match self.rate {
            Some(rate) => format!("{rate:.0} buys a second"),
            None => "buying as fast as answered".into(),
        }
    }

    fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.minutes * 60.0)
    }

    fn samples(&self) -> usize {
        (self.duration().as_secs_f64() / self.sample.as_secs_f64()).ceil() as usize
    }

    /// The samples in each window the goals compare: a sixth of the run.
    fn window(&self) -> usize {
        (self.samples() as f64 / 6.0).round() as usize
    }

    fn turns(&self) -> Turns {
        let (samples, window) = (self.samples(), self.window());
        let turn = (window / 20).max(2);
        Turns {
            fresh_from: samples - window - Turns::WARM_UP * turn,
            turn,
        }
    }
}

/// Which show the load goes to in each sampling interval: the aged one, until the fresh one warms
/// up just before the last window, after which they take turns of a few samples each (30 s in an
/// hour), so both meet the same noisy minutes. The first sample of a turn is left out of both
/// medians: it still holds answers to buys sent to the other show.
#[derive(Clone, Copy)]
struct Turns {
    fresh_from: usize,
    turn: usize,
}

impl Turns {
    /// Turns the fresh show has alone first, the minute a new server needs to settle.
    const WARM_UP: usize = 2;

    /// The show buyers use in interval `i` (the `i`-th sample's).
    fn show(&self, i: usize) -> usize {
        let Some(since) = i.checked_sub(self.fresh_from) else {
            return AGED;
        };
        match since / self.turn {
            warming if warming < Self::WARM_UP => FRESH,
            turn if (turn - Self::WARM_UP) % 2 == 0 => AGED,
            _ => FRESH,
        }
    }

    fn settling(&self, i: usize) -> bool {
        i > 0 && self.show(i) != self.show(i - 1)
    }
}

/// What the load has seen so far; the sampler takes differences.
#[derive(Default)]
struct Counters {
    acked: AtomicU64,
    refused: AtomicU64,
    errors: AtomicU64,
    bids: AtomicU64,
    chat_sent: AtomicU64,
    room_messages: AtomicU64,
    /// Answer times of buys since the last sample, in microseconds.
    latencies: std::sync::Mutex<Vec<u32>>,
    /// The first few distinct errors, for the report.
    error_kinds: std::sync::Mutex<Vec<String>>,
}

impl Counters {
    fn error(&self, what: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut kinds = self
            .error_kinds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if kinds.len() < 10 && !kinds.contains(&what) {
            kinds.push(what);
        }
    }
}

/// One line of the series. The buys and the work for them are those of the show that had the
/// load in the interval (`fresh`); memory, database and WAL are always the aged server's.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    at_s: f64,
    orders_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    rss_mib: f64,
    anon_mib: f64,
    db_mib: f64,
    wal_mib: f64,
    bids_per_s: f64,
    room_messages_per_s: f64,
    errors: u64,
    /// The server's CPU time per order, so a reader can tell work that grows with the show from
    /// a machine that is merely busy (the load client shares it: `client_cores`).
    server_cpu_ms_per_order: f64,
    server_cores: f64,
    client_cores: f64,
    /// What the server wrote to storage per order: what one order costs the disk.
    disk_kib_per_order: f64,
    /// The load went to the fresh control show, not the aged one.
    fresh: bool,
    /// The first sample of a turn, left out of the comparisons.
    settling: bool,
}

const CSV_HEADER: &str = "at_s,orders_per_s,p50_ms,p99_ms,rss_mib,anon_mib,db_mib,wal_mib,bids_per_s,room_messages_per_s,errors,server_cpu_ms_per_order,server_cores,client_cores,disk_kib_per_order,show,settling";

impl Sample {
    fn csv(&self) -> String {
        format!(
            "{:.1},{:.1},{:.2},{:.2},{:.1},{:.1},{:.1},{:.1},{:.1},{:.0},{},{:.3},{:.2},{:.2},{:.1},{},{}",
            self.at_s,
            self.orders_per_s,
            self.p50_ms,
            self.p99_ms,
            self.rss_mib,
            self.anon_mib,
            self.db_mib,
            self.wal_mib,
            self.bids_per_s,
            self.room_messages_per_s,
            self.errors,
            self.server_cpu_ms_per_order,
            self.server_cores,
            self.client_cores,
            self.disk_kib_per_order,
            if self.fresh { "fresh" } else { "aged" },
            u8::from(self.settling)
        )
    }

    /// Counts in the comparison of the aged show with the fresh one.
    fn compared(&self, fresh: bool) -> bool {
        self.fresh == fresh && !self.settling
    }
}

/// A server, its live show, and what the load needs to reach it.
struct ShowUnderLoad {
    fixture: Arc<Fixture>,
    addr: SocketAddr,
    /// The running flash sale and auction; 0 before the first.
    sale: AtomicI64,
    auction: AtomicI64,
}

/// The aged show and the fresh one; `active` is the one buyers, chatters and bidders use now.
struct Shows {
    each: [ShowUnderLoad; 2],
    active: AtomicUsize,
}

impl Shows {
    fn active(&self) -> (usize, &ShowUnderLoad) {
        let i = self.active.load(Ordering::Relaxed);
        (i, &self.each[i])
    }
}

pub async fn run(args: &[&str]) -> anyhow::Result<()> {
    super::check_flags(
        "soak",
        args,
        &[
            "--minutes",
            "--rate",
            "--concurrency",
            "--buyers",
            "--chatters",
            "--viewers",
            "--bidders",
            "--sample-s",
            "--out",
        ],
        &["--smoke", "--no-record"],
    )?;
    let p = Params::parse(args)?;
    let recording = super::recording(args);
    let dir = tempfile::tempdir_in(".")?;
    let out = match text_flag(args, "--out") {
        Some(o) => PathBuf::from(o),
        None if recording => PathBuf::from("bench/runs/soak"),
        None => dir.path().join("soak"),
    };
    println!(
        "hawker-bench soak: {} min of one live show; {} over {} connections as {} buyers, \
         {} chatting, {} watching, {} bidding; a sample every {} s; a fresh show takes turns \
         with it from minute {:.1}\n",
        p.minutes,
        p.buying(),
        p.concurrency,
        p.buyers,
        p.chatters,
        p.viewers,
        p.bidders,
        p.sample.as_secs(),
        (p.turns().fresh_from as f64 * p.sample.as_secs_f64()) / 60.0
    );
    let people = p.buyers + p.chatters + p.bidders;
    let mut servers = Vec::new();
    let mut each = Vec::new();
    for name in ["aged", "fresh"] {
        let fixture = Arc::new(Fixture::create(&dir.path().join(name), STOCK, people).await?);
        // The test payment provider remembers each charge for the reservation hold plus two
        // minutes (a real provider keeps them on its side): a short hold keeps the stand-in's
        // memory out of the server's.
        let (server, addr) = fixture
            .serve_with(&[("HAWKER_RESERVATION_HOLD_S", "30")])
            .await?;
        servers.push(server);
        each.push(ShowUnderLoad {
            fixture,
            addr,
            sale: AtomicI64::new(0),
            auction: AtomicI64::new(0),
        });
    }
    let shows = Arc::new(Shows {
        each: each.try_into().map_err(|_| anyhow::anyhow!("two shows"))?,
        active: AtomicUsize::new(AGED),
    });
    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));

    let mut hosts = Vec::new();
    for show in 0..shows.each.len() {
        hosts.push(tokio::spawn(host(
            p.sale_every,
            p.auction_every,
            shows.clone(),
            show,
            stop.clone(),
            counters.clone(),
        )));
    }
    // The first sales are open before anyone buys.
    while shows
        .each
        .iter()
        .any(|s| s.sale.load(Ordering::Relaxed) == 0)
    {
        if let Some(host) = hosts.iter_mut().find(|h| h.is_finished()) {
            host.await??;
            anyhow::bail!("a host stopped before the first sale");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut load = Vec::new();
    let next_buy = Arc::new(AtomicU64::new(0));
    let pace = Pace {
        start: Instant::now(),
        rate: p.rate,
    };
    for c in 0..p.concurrency {
        let mut conns = Vec::new();
        for show in &shows.each {
            conns.push(HttpConn::connect(show.addr, Some(loopback_source(c, 8))).await?);
        }
        load.push(tokio::spawn(buyer(
            conns,
            shows.clone(),
            p.buyers,
            next_buy.clone(),
            pace,
            stop.clone(),
            counters.clone(),
        )));
    }
    for (mine, show) in shows.each.iter().enumerate() {
        let tokens = &show.fixture.buyer_tokens;
        for i in 0..p.chatters + p.viewers {
            let token = (i < p.chatters).then(|| tokens[p.buyers + i].clone());
            let path = format!("/api/v1/shows/{}/live", show.fixture.show_id);
            let bearer = token.as_ref().map(|t| format!("Bearer {t}"));
            let headers: Vec<(&str, &str)> = bearer
                .as_deref()
                .map(|b| vec![("Authorization", b)])
                .unwrap_or_default();
            let ws =
                WsConn::connect(show.addr, Some(loopback_source(i, 8)), &path, &headers).await?;
            load.push(tokio::spawn(watcher(
                ws,
                token.is_some(),
                Seat {
                    shows: shows.clone(),
                    mine,
                },
                stop.clone(),
                counters.clone(),
            )));
        }
        for b in 0..p.bidders {
            let conn = HttpConn::connect(show.addr, None).await?;
            let token = tokens[p.buyers + p.chatters + b].clone();
            load.push(tokio::spawn(bidder(
                conn,
                token,
                Seat {
                    shows: shows.clone(),
                    mine,
                },
                stop.clone(),
                counters.clone(),
            )));
        }
    }

    let samples = sample_until_done(&p, &servers, &shows, &counters, &out).await?;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await?;
    }
    for host in hosts {
        host.await??;
    }

    let acked = counters.acked.load(Ordering::Relaxed);
    let errors = counters.errors.load(Ordering::Relaxed);
    let mut stored = 0;
    for show in &shows.each {
        stored += paid_orders(&show.fixture.db, show.fixture.show_id).await?;
    }
    let kinds = counters
        .error_kinds
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .join("; ");
    ensure!(
        stored >= acked,
        "{acked} orders acknowledged but only {stored} paid in the databases"
    );
    ensure!(
        stored - acked <= errors,
        "{stored} paid orders but {acked} acknowledged and only {errors} unanswered ({kinds})"
    );
    let svg = chart(&samples, &p);
    std::fs::write(out.with_extension("svg"), svg)?;
    let table = summary(&samples, &p, acked, &counters, &kinds);
    println!("{table}");
    println!(
        "series: {} and {}",
        out.with_extension("csv").display(),
        out.with_extension("svg").display()
    );
    if recording {
        super::record("Soak", "soak", args, &table)?;
    }
    drop(servers);
    Ok(())
}

/// A watcher's or bidder's show, and whether it is the one in use now.
struct Seat {
    shows: Arc<Shows>,
    mine: usize,
}

impl Seat {
    fn show(&self) -> &ShowUnderLoad {
        &self.shows.each[self.mine]
    }

    fn in_use(&self) -> bool {
        self.shows.active().0 == self.mine
    }
}

/// A host: a new flash sale every `sale_every` (the last one ended first) and a new auction
/// every `auction_every`, each running until the next replaces it. Both shows' hosts keep their
/// schedule all the time, the idle show's too, as a 24/7 show would.
async fn host(
    sale_every: Duration,
    auction_every: Duration,
    shows: Arc<Shows>,
    mine: usize,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
) -> anyhow::Result<()> {
    let show = &shows.each[mine];
    let (fixture, addr, id) = (&show.fixture, show.addr, show.fixture.show_id);
    let post = |path: String, body: Value| async move {
        fixture.host_post(addr, &path, &body.to_string()).await
    };
    let mut next_sale = Instant::now();
    let mut next_auction = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= next_sale {
            let old = show.sale.load(Ordering::Relaxed);
            if old != 0 {
                let (status, body) =
                    post(format!("/api/v1/flash-sales/{old}/end"), json!({})).await?;
                ensure!(status == 200, "ending sale {old}: {status} {body}");
            }
            let body = json!({ "variant_id": fixture.variant_id, "quantity": 1_000_000,
                               "price_cents": 1500, "per_buyer_limit": 1_000_000,
                               "duration_s": 86_400 });
            let (status, body) = post(format!("/api/v1/shows/{id}/flash-sales"), body).await?;
            let sale = body["id"]
                .as_i64()
                .with_context(|| format!("opening a sale: {status} {body}"))?;
            show.sale.store(sale, Ordering::Relaxed);
            next_sale = now + sale_every;
        }
        if now >= next_auction {
            let duration_s = auction_every.as_secs().saturating_sub(2).max(5);
            let body = json!({ "variant_id": fixture.variant_id, "start_cents": 100,
                               "duration_s": duration_s, "mode": "sudden_death" });
            let (status, body) = post(format!("/api/v1/shows/{id}/auctions"), body).await?;
            match body["id"].as_i64() {
                Some(auction) => show.auction.store(auction, Ordering::Relaxed),
                None => counters.error(format!("starting an auction: {status} {body}")),
            }
            next_auction = now + auction_every;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// When each buy is due.
#[derive(Clone, Copy)]
struct Pace {
    start: Instant,
    rate: Option<f64>,
}

impl Pace {
    fn due(&self, i: u64) -> Option<Instant> {
        let rate = self.rate?;
        Some(self.start + Duration::from_secs_f64(i as f64 / rate))
    }
}

/// One connection to each show, buying in the running sale of the show in use as fast as its
/// answers come back, as buyer after buyer, each buy with a fresh random idempotency key; paid at
/// once with the test card.
async fn buyer(
    mut conns: Vec<HttpConn>,
    shows: Arc<Shows>,
    buyers: usize,
    next: Arc<AtomicU64>,
    pace: Pace,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
) {
    let mut latencies = Vec::with_capacity(256);
    let mut handed_in = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let i = next.fetch_add(1, Ordering::Relaxed);
        // Timed from when the buy was due, not from when this connection got to it: a server
        // that falls behind shows it in the answer times.
        let sent = match pace.due(i) {
            Some(due) => {
                tokio::time::sleep_until(due.into()).await;
                due
            }
            None => Instant::now(),
        };
        let (active, show) = shows.active();
        let bearer = format!("Bearer {}", show.fixture.buyer_tokens[i as usize % buyers]);
        // Random, as the pages make them (a UUID): a buyer's keys land anywhere in their index.
        let key = format!("{:032x}", rand::random::<u128>());
        let body = json!({ "show_id": show.fixture.show_id,
                           "flash_sale_id": show.sale.load(Ordering::Relaxed),
                           "quantity": 1, "payment_method": "pm_card_visa" })
        .to_string();
        let headers = [
            ("Authorization", bearer.as_str()),
            ("Idempotency-Key", key.as_str()),
            ("Content-Type", "application/json"),
        ];
        match conns[active]
            .request("POST", "/api/v1/orders", &headers, body.as_bytes())
            .await
        {
            Ok(r) => {
                latencies.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
                match r.status {
                    201 => counters.acked.fetch_add(1, Ordering::Relaxed),
                    // The sale just ended and the next is not open yet.
                    409 => counters.refused.fetch_add(1, Ordering::Relaxed),
                    status => {
                        let v: Value = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                        counters.error(format!("{status} {}", v["error"]["code"]));
                        0
                    }
                };
            }
            Err(e) => {
                counters.error(format!("connection: {e}"));
                match HttpConn::connect(show.addr, None).await {
                    Ok(c) => conns[active] = c,
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }
        // Handed in often enough that each lands in the sample, and the turn, it was taken in.
        if latencies.len() >= 64 || handed_in.elapsed() >= Duration::from_millis(250) {
            handed_in = Instant::now();
            counters
                .latencies
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .append(&mut latencies);
        }
    }
    counters
        .latencies
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .append(&mut latencies);
}

/// A viewer on its show's live socket, reading everything the room sends; a chatter also sends
/// a chat line every 1.5 s and a few hearts while its show is in use. Only the show in use counts
/// its room's messages.
async fn watcher(
    mut ws: WsConn,
    chats: bool,
    seat: Seat,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(1500));
    // The ticks missed while the other show had its turn are skipped, not sent in a burst:
    // a burst is over the socket's rate limit, and enough refusals close the socket.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        tokio::select! {
            frame = ws.next() => match frame {
                Ok(_) if seat.in_use() => { counters.room_messages.fetch_add(1, Ordering::Relaxed); }
                Ok(_) => {}
                Err(e) => {
                    counters.error(format!("live socket: {e}"));
                    return;
                }
            },
            _ = tick.tick(), if chats && seat.in_use() => {
                n += 1;
                let chat = json!({ "type": "chat", "text": format!("still here, message {n}") });
                let hearts = json!({ "type": "hearts", "count": 3 });
                if ws.send_text(&chat.to_string()).await.is_err()
                    || ws.send_text(&hearts.to_string()).await.is_err()
                {
                    counters.error("live socket: send failed".into());
                    return;
                }
                counters.chat_sent.fetch_add(1, Ordering::Relaxed);
            }
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// A bidder: a rising bid on its show's running auction every 100 ms while the show is in use.
async fn bidder(
    mut conn: HttpConn,
    token: String,
    seat: Seat,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
) {
    let bearer = format!("Bearer {token}");
    let show = seat.show();
    let mut amount = 100;
    let mut on = 0;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let id = show.auction.load(Ordering::Relaxed);
        if id == 0 || !seat.in_use() {
            continue;
        }
        if id != on {
            (on, amount) = (id, 100);
        }
        amount += 100 + rand::random::<u8>() as i64;
        let body = json!({ "amount_cents": amount, "show_id": show.fixture.show_id }).to_string();
        let headers = [
            ("Authorization", bearer.as_str()),
            ("Content-Type", "application/json"),
        ];
        let path = format!("/api/v1/auctions/{id}/bids");
        match conn.request("POST", &path, &headers, body.as_bytes()).await {
            // Decided either way: accepted, outbid, or the auction just ended.
            Ok(r) if r.status < 500 => {
                counters.bids.fetch_add(1, Ordering::Relaxed);
            }
            Ok(r) => counters.error(format!("bid: {}", r.status)),
            Err(e) => {
                counters.error(format!("bid connection: {e}"));
                return;
            }
        }
    }
}

/// Samples every `p.sample` until the run's time is up, appending each line to the CSV as it
/// comes (an interrupted hour still leaves its series), and hands the load to the show whose
/// turn the next interval is.
async fn sample_until_done(
    p: &Params,
    servers: &[Server],
    shows: &Shows,
    counters: &Counters,
    out: &Path,
) -> anyhow::Result<Vec<Sample>> {
    use std::io::Write;
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut csv = std::fs::File::create(out.with_extension("csv"))?;
    writeln!(csv, "{CSV_HEADER}")?;
    let turns = p.turns();
    let aged = (&servers[AGED], &shows.each[AGED].fixture.db);
    let start = Instant::now();
    let mut last = (
        start,
        0u64,
        0u64,
        0u64,
        servers.iter().map(Usage::of).collect::<Vec<_>>(),
    );
    let mut samples = Vec::new();
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + p.sample, p.sample);
    while start.elapsed() < p.duration() {
        ticker.tick().await;
        let now = Instant::now();
        let i = samples.len();
        let show = turns.show(i);
        let acked = counters.acked.load(Ordering::Relaxed);
        let bids = counters.bids.load(Ordering::Relaxed);
        let room = counters.room_messages.load(Ordering::Relaxed);
        let dt = now.duration_since(last.0).as_secs_f64();
        let used: Vec<Usage> = servers.iter().map(Usage::of).collect();
        let (used_now, used_before) = (used[show], last.4[show]);
        let orders = (acked - last.1).max(1) as f64;
        let server_cpu_s = used_now.server_cpu_s - used_before.server_cpu_s;
        let mut lat = std::mem::take(
            &mut *counters
                .latencies
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let sample = Sample {
            at_s: now.duration_since(start).as_secs_f64(),
            orders_per_s: (acked - last.1) as f64 / dt,
            p50_ms: super::quantile(&mut lat, 0.5) as f64 / 1000.0,
            p99_ms: super::quantile(&mut lat, 0.99) as f64 / 1000.0,
            rss_mib: aged.0.rss_bytes() as f64 / MIB,
            anon_mib: aged.0.anon_rss_bytes() as f64 / MIB,
            db_mib: file_mib(aged.1),
            wal_mib: file_mib(&aged.1.with_extension("db-wal")),
            bids_per_s: (bids - last.2) as f64 / dt,
            room_messages_per_s: (room - last.3) as f64 / dt,
            errors: counters.errors.load(Ordering::Relaxed),
            server_cpu_ms_per_order: server_cpu_s * 1000.0 / orders,
            server_cores: server_cpu_s / dt,
            client_cores: (used_now.client_cpu_s - used_before.client_cpu_s) / dt,
            disk_kib_per_order: used_now
                .written_bytes
                .saturating_sub(used_before.written_bytes) as f64
                / 1024.0
                / orders,
            fresh: show == FRESH,
            settling: turns.settling(i),
        };
        shows.active.store(turns.show(i + 1), Ordering::Relaxed);
        writeln!(csv, "{}", sample.csv())?;
        println!(
            "{:>6.0} s {}  {:>7.0} orders/s  p99 {:>6.1} ms  RSS {:>6.1} MiB (own {:>6.1})  db {:>7.1} MiB  WAL {:>6.1} MiB  \
             server {:.3} ms, {:.1} KiB/order ({:.2} + {:.2} cores)",
            sample.at_s,
            if sample.fresh { "fresh" } else { "aged " },
            sample.orders_per_s,
            sample.p99_ms,
            sample.rss_mib,
            sample.anon_mib,
            sample.db_mib,
            sample.wal_mib,
            sample.server_cpu_ms_per_order,
            sample.disk_kib_per_order,
            sample.server_cores,
            sample.client_cores
        );
        samples.push(sample);
        last = (now, acked, bids, room, used);
    }
    Ok(samples)
}

const MIB: f64 = 1024.0 * 1024.0;

/// What the server and the load client have used so far; a sample takes the difference.
#[derive(Clone, Copy)]
struct Usage {
    server_cpu_s: f64,
    client_cpu_s: f64,
    written_bytes: u64,
}

impl Usage {
    fn of(server: &Server) -> Self {
        Self {
            server_cpu_s: server.cpu_seconds(),
            client_cpu_s: super::own_cpu_seconds(),
            written_bytes: server.written_bytes(),
        }
    }
}

fn file_mib(path: &Path) -> f64 {
    std::fs::metadata(path).map_or(0.0, |m| m.len() as f64 / MIB)
}

async fn paid_orders(db: &Path, show: i64) -> anyhow::Result<u64> {
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(db)
        .read_only(true)
        .connect()
        .await?;
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE show_id = ? AND status = 'paid'")
            .bind(show)
            .fetch_one(&mut conn)
            .await?;
    Ok(n as u64)
}

/// The samples the goals compare.
struct Windows {
    /// The first sixth of the run (ten minutes in an hour): the aged show alone, new.
    first: Vec<Sample>,
    /// The last sixth: the aged show's turns, and the fresh show's in the same minutes.
    last: Vec<Sample>,
    fresh: Vec<Sample>,
    /// The second sixth, past the warm-up: the level of memory.
    level: Vec<Sample>,
    /// Everything after the first sixth: memory's highs.
    after_first: Vec<Sample>,
}

impl Windows {
    fn of(samples: &[Sample], p: &Params) -> Self {
        let window = p.window().min(samples.len());
        let last = &samples[samples.len() - window..];
        let compared = |fresh| last.iter().filter(|s| s.compared(fresh)).copied().collect();
        Self {
            first: samples[..window].to_vec(),
            last: compared(false),
            fresh: compared(true),
            level: samples[window..(2 * window).min(samples.len())].to_vec(),
            after_first: samples[window..].to_vec(),
        }
    }
}

fn median_of(samples: &[Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    super::median(&samples.iter().map(f).collect::<Vec<_>>())
}

/// The goals of a long run: orders/s in the last window within 10 % of the first; p99 in the
/// last window within 10 % of the fresh show's in the same minutes (no drift with age); and
/// memory after the first window never more than 10 % above its level in the second.
fn summary(
    samples: &[Sample],
    p: &Params,
    acked: u64,
    counters: &Counters,
    error_kinds: &str,
) -> String {
    let w = Windows::of(samples, p);
    let window_min = p.window() as f64 * p.sample.as_secs_f64() / 60.0;
    // Whole minutes in an hour's run; a smoke run's windows are seconds long.
    let window_min = if window_min < 8.0 {
        (window_min * 10.0).round() / 10.0
    } else {
        window_min.round()
    };
    // A measure's medians over the first window, the aged show's turns in the last and the
    // fresh show's.
    let medians = |f: fn(&Sample) -> f64| {
        (
            median_of(&w.first, f),
            median_of(&w.last, f),
            median_of(&w.fresh, f),
        )
    };
    let ratio = |after: f64, before: f64| after / before.max(1e-9);
    let met = |ok: bool| if ok { "met" } else { "**not met**" };
    let mut t = format!(
        "{:.0} min, {} over {} connections, {} chatting, {} watching, {} bidding; \
         {acked} orders acknowledged and all found paid in the database; {} buys refused (a sale \
         changing over); {} bids; {} chat lines; {} errors{}. In the last {window_min} min a \
         fresh show on a new database took turns with the aged one ({} samples each counted).\n\n\
         | measure | first {window_min} min | last {window_min} min | last / first | \
         fresh show, same minutes | last / fresh | goal |\n\
         |---|---|---|---|---|---|---|\n",
        p.minutes,
        p.buying(),
        p.concurrency,
        p.chatters,
        p.viewers,
        p.bidders,
        counters.refused.load(Ordering::Relaxed),
        counters.bids.load(Ordering::Relaxed),
        counters.chat_sent.load(Ordering::Relaxed),
        counters.errors.load(Ordering::Relaxed),
        if error_kinds.is_empty() {
            String::new()
        } else {
            format!(" ({error_kinds})")
        },
        w.last.len().min(w.fresh.len()),
    );
    let mut row = |measure: &str, unit: &str, digits: usize, m: (f64, f64, f64), goal: &str| {
        let _ = writeln!(
            t,
            "| {measure} | {:.digits$}{unit} | {:.digits$}{unit} | {:.2} | {:.digits$}{unit} | {:.2} | {goal} |",
            m.0,
            m.1,
            ratio(m.1, m.0),
            m.2,
            ratio(m.1, m.2)
        );
    };
    let rate = medians(|s| s.orders_per_s);
    let goal = format!("last within 10 % of first: {}", met(rate.1 >= 0.9 * rate.0));
    row("orders/s", "", 0, rate, &goal);
    let p99 = medians(|s| s.p99_ms);
    let goal = format!(
        "no drift, within 10 % of the fresh show's: {}",
        met(p99.1 <= 1.1 * p99.2)
    );
    row("p99 answer", " ms", 1, p99, &goal);
    let cpu = medians(|s| s.server_cpu_ms_per_order);
    row(
        "server CPU per order",
        " ms",
        3,
        cpu,
        "(what an order costs the server)",
    );
    let disk = medians(|s| s.disk_kib_per_order);
    row("written to disk per order", " KiB", 1, disk, "");
    let cores = medians(|s| s.server_cores + s.client_cores);
    let _ = writeln!(
        t,
        "| cores busy, server + load | {:.2} | {:.2} | | {:.2} | | of {} |",
        cores.0,
        cores.1,
        cores.2,
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    let rss_level = median_of(&w.level, |s| s.rss_mib);
    let rss_max = w.after_first.iter().map(|s| s.rss_mib).fold(0.0, f64::max);
    let _ = writeln!(
        t,
        "| server RSS (aged show) | {rss_level:.1} MiB (median, minutes {window_min}–{}) | \
         {rss_max:.1} MiB (highest after minute {window_min}) | {:.2} | | | within 10 %: {} |",
        2.0 * window_min,
        ratio(rss_max, rss_level),
        met(rss_max <= 1.1 * rss_level)
    );
    let end = samples.last().copied().unwrap_or_default();
    let _ = writeln!(
        t,
        "| database + WAL at the end (aged show) | | {:.0} MiB + {:.1} MiB | | | | WAL bounded |",
        end.db_mib, end.wal_mib
    );
    t
}

/// The series as stacked line charts (orders/s, p99, the server's CPU per order, RSS, WAL size)
/// over minutes, each with dashed lines 10 % either side of its first window's median. In the
/// panels of the buys, the line is the aged show and the dots are the fresh show's turns.
fn chart(samples: &[Sample], p: &Params) -> String {
    /// A panel's label, colour and value, and whether the value is the show in use's.
    type Series = (&'static str, &'static str, fn(&Sample) -> f64, bool);
    let panels: [Series; 5] = [
        ("orders/s", "#1b7f5b", |s| s.orders_per_s, true),
        ("p99 answer (ms)", "#b04a2f", |s| s.p99_ms, true),
        (
            "server CPU per order (ms)",
            "#b08a2f",
            |s| s.server_cpu_ms_per_order,
            true,
        ),
        (
            "server RSS, aged show (MiB)",
            "#2f5fb0",
            |s| s.rss_mib,
            false,
        ),
        ("WAL, aged show (MiB)", "#7a4fb0", |s| s.wal_mib, false),
    ];
    let first = Windows::of(samples, p).first;
    let (w, h, left, gap) = (760.0, 150.0, 70.0, 40.0);
    let plot_w = w - left - 20.0;
    let total_min = p.minutes.max(1e-9);
    let height = panels.len() as f64 * (h + gap) + 30.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" viewBox=\"0 0 {w} {height}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    for (i, (label, colour, value, per_show)) in panels.iter().enumerate() {
        let top = 20.0 + i as f64 * (h + gap);
        let max = samples.iter().map(value).fold(0.0, f64::max).max(1e-9) * 1.15;
        let x = |s: &Sample| left + s.at_s / 60.0 / total_min * plot_w;
        let y = |v: f64| top + h - v / max * h;
        let max_label = if max < 10.0 {
            format!("{max:.2}")
        } else {
            format!("{max:.0}")
        };
        let _ = writeln!(
            svg,
            "<text x=\"{left}\" y=\"{}\" font-weight=\"bold\">{label}</text>\n\
             <line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\"/>\n\
             <line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"#999\"/>\n\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{max_label}</text>\n\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\">0</text>",
            top - 5.0,
            top + h,
            left + plot_w,
            top + h,
            top + h,
            left - 5.0,
            top + 10.0,
            left - 5.0,
            top + h
        );
        let level = median_of(&first, value);
        for band in [0.9, 1.1] {
            let _ = writeln!(
                svg,
                "<line x1=\"{left}\" y1=\"{0:.1}\" x2=\"{1}\" y2=\"{0:.1}\" stroke=\"#bbb\" stroke-dasharray=\"4 4\"/>",
                y(level * band),
                left + plot_w
            );
        }
        let points: Vec<String> = samples
            .iter()
            .filter(|s| !per_show || s.compared(false))
            .map(|s| format!("{:.1},{:.1}", x(s), y(value(s))))
            .collect();
        let _ = writeln!(
            svg,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"/>",
            points.join(" ")
        );
        if *per_show {
            for s in samples.iter().filter(|s| s.compared(true)) {
                let _ = writeln!(
                    svg,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2\" fill=\"#222\"/>",
                    x(s),
                    y(value(s))
                );
            }
            let _ = writeln!(
                svg,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"#555\">line: the aged show; \
                 dots: a fresh show in the same minutes</text>",
                left + plot_w,
                top - 5.0
            );
        }
        let decimals = if total_min < 8.0 { 1 } else { 0 };
        for m in 0..=4 {
            let minute = total_min * m as f64 / 4.0;
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\" fill=\"#555\">{minute:.decimals$} min</text>",
                left + minute / total_min * plot_w,
                top + h + 15.0
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_an_hour_the_fresh_show_warms_up_then_takes_every_other_half_minute() {
        let p = Params::parse(&[]).expect("the defaults");
        let turns = p.turns();
        // A sample every 5 s: 720 in the hour, the last 120 the last window.
        assert_eq!((p.samples(), p.window(), turns.turn), (720, 120, 6));
        let shows: Vec<usize> = (0..720).map(|i| turns.show(i)).collect();
        assert!(shows[..588].iter().all(|s| *s == AGED));
        assert!(
            shows[588..600].iter().all(|s| *s == FRESH),
            "a minute to warm up"
        );
        let last = &shows[600..];
        assert!(last[..6].iter().all(|s| *s == AGED) && last[6..12].iter().all(|s| *s == FRESH));
        assert_eq!(last.iter().filter(|s| **s == AGED).count(), 60);
        // Each turn's first sample settles; the aged show's first one after the warm-up too.
        let settling: Vec<usize> = (0..720).filter(|i| turns.settling(*i)).collect();
        assert_eq!(settling.len(), 21);
        assert_eq!(settling[..3], [588, 600, 606]);
    }
}
