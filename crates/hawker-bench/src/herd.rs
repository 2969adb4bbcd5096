//! `hawker-bench herd`: one flash sale of S units, B buyers (each with their own API token and
//! Idempotency-Key) arriving at once over C keep-alive HTTP connections (or, with `--rate N`, N
//! a second, evenly spaced, each timed from when it was due), against three designs driven by
//! the same client in the same run:
//!
//! - **Hawker**: `hawker serve` as its own process — auth, the show's owner deciding in memory
//!   with group commit, the charge (test provider), the confirmation.
//! - **Hawker, `Prefer: respond-async`**: the same server, answering once the order is durably
//!   reserved, as the baselines do; the run waits until every order is paid too.
//! - **Hawker, live socket**: the same server, every buyer a viewer on the show's WebSocket,
//!   joined before the sale opens, buying with a `buy` message (answered at the reservation,
//!   like `Prefer: respond-async`). A socket per buyer, so it runs when there are few enough
//!   buyers for the file limit (by default up to [`LIVE_MAX_BUYERS`]); `--buyers 15000
//!   --concurrency 15000` gives the HTTP designs the same shape, a connection per buyer.
//! - **PostgreSQL row lock**: one transaction per buy, guarded `UPDATE … WHERE remaining >= q`
//!   then `INSERT` the order, default durable settings ([`super::baseline`]).
//! - **Redis + Lua**: one script checks and decrements stock and appends the order, with
//!   `appendfsync everysec` and with `appendfsync always`.
//!
//! Every run then kills the server with SIGKILL and verifies, failing the run otherwise: exactly
//! S orders, none oversold, every acknowledged order in the database (for Redis: after restarting
//! it from its append-only file), every retried Idempotency-Key answered as the first time.
//! Redis with `everysec` may lose the last second of acknowledged orders; that is counted and
//! reported, not failed, because it is the design's documented trade.
//!
//! With `--kill-mid-sale` the kill comes while buyers are still buying, as soon as half the units
//! are acknowledged, and hits the process that holds the orders (Redis itself under the Redis
//! baseline). The sale cannot finish then, so only the acknowledged orders and the stock are
//! checked.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};
use sqlx::{ConnectOptions, Connection};

use super::client::{HttpConn, loopback_source};
use super::hawker::{Fixture, buyer_tokens};
use super::{Server, flag, free_port, median, quantile, text_flag, wait_listening};
use hawker_server::secrets::token_hash;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Design {
    Hawker,
    /// Hawker answering once the order is durably reserved (`Prefer: respond-async`), paying
    /// for it in the background.
    HawkerAsync,
    /// Hawker with each buyer on the show's live socket, buying with a `buy` message.
    HawkerLive,
    Postgres,
    Redis,
    RedisFsync,
}

impl Design {
    fn parse(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "hawker" => Self::Hawker,
            "hawker-async" => Self::HawkerAsync,
            "hawker-live" => Self::HawkerLive,
            "postgres" => Self::Postgres,
            "redis" => Self::Redis,
            "redis-fsync" => Self::RedisFsync,
            _ => bail!(
                "unknown design {s:?}: hawker, hawker-async, hawker-live, postgres, redis, redis-fsync"
            ),
        })
    }

    fn label(self) -> &'static str {
        match self {
            Self::Hawker => "**Hawker** (owner + group commit; auth, charge, confirm)",
            Self::HawkerAsync => {
                "**Hawker, `Prefer: respond-async`** (answers at the reservation; pays after)"
            }
            Self::HawkerLive => {
                "**Hawker, live socket** (a viewer's socket per buyer; answers at the reservation; pays after)"
            }
            Self::Postgres => "PostgreSQL row lock, transaction per buy",
            Self::Redis => "Redis + Lua, `appendfsync everysec`",
            Self::RedisFsync => "Redis + Lua, `appendfsync always`",
        }
    }

    /// Whether every acknowledged order must survive `kill -9`.
    fn durable(self) -> bool {
        self != Self::Redis
    }

    fn is_hawker(self) -> bool {
        matches!(self, Self::Hawker | Self::HawkerAsync | Self::HawkerLive)
    }

    /// Whether the order is answered at its reservation and paid for after.
    fn pays_after(self) -> bool {
        matches!(self, Self::HawkerAsync | Self::HawkerLive)
    }
}

/// The most buyers the live-socket design runs with unless named: each holds a socket open in
/// the client and in the server, and this machine allows 20,000 files a process.
pub const LIVE_MAX_BUYERS: usize = 15_000;

pub struct Params {
    pub buyers: usize,
    pub units: usize,
    pub concurrency: usize,
    /// Every n-th buyer sends its request a second time with the same key.
    pub retry_every: usize,
    pub postgres: String,
    /// Kill the store with `kill -9` once half the units are acknowledged, instead of after the
    /// load: what was acknowledged must be there when it comes back.
    pub kill_mid_sale: bool,
    /// Buyers arriving at this many a second, evenly spaced, instead of all at once.
    pub rate: Option<f64>,
}

pub async fn run(args: &[&str]) -> anyhow::Result<()> {
    super::check_flags(
        "herd",
        args,
        &[
            "--buyers",
            "--units",
            "--concurrency",
            "--retry-every",
            "--runs",
            "--designs",
            "--postgres",
            "--rate",
        ],
        &["--smoke", "--no-record", "--kill-mid-sale"],
    )?;
    let smoke = args.contains(&"--smoke");
    let buyers = flag(args, "--buyers", if smoke { 2_000 } else { 100_000 })?;
    let params = Params {
        buyers,
        units: flag(args, "--units", if smoke { 200 } else { 10_000 })?,
        concurrency: flag(args, "--concurrency", if smoke { 100 } else { 10_000 })?
            .clamp(1, buyers),
        retry_every: flag(args, "--retry-every", 10)?.max(1),
        postgres: text_flag(args, "--postgres")
            .unwrap_or("postgres://postgres@127.0.0.1:5432/postgres")
            .to_owned(),
        kill_mid_sale: args.contains(&"--kill-mid-sale"),
        rate: match flag(args, "--rate", 0)? {
            0 => None,
            rate => Some(rate as f64),
        },
    };
    let runs = flag(args, "--runs", if smoke { 1 } else { 3 })?.max(1);
    let all = if buyers <= LIVE_MAX_BUYERS {
        "hawker,hawker-async,hawker-live,postgres,redis,redis-fsync"
    } else {
        "hawker,hawker-async,postgres,redis,redis-fsync"
    };
    let designs = text_flag(args, "--designs")
        .unwrap_or(all)
        .split(',')
        .map(Design::parse)
        .collect::<anyhow::Result<Vec<_>>>()?;
    ensure!(
        params.units <= params.buyers,
        "--units must not exceed --buyers"
    );
    println!(
        "hawker-bench herd: {} buyers{}, {} units, {} connections, {runs} run(s); every {}th buyer retries its key{}\n",
        params.buyers,
        arrival(&params),
        params.units,
        params.concurrency,
        params.retry_every,
        if params.kill_mid_sale {
            "; the store is killed with kill -9 when half the units are acknowledged"
        } else {
            ""
        }
    );
    let mut results: BTreeMap<usize, Vec<RunResult>> = BTreeMap::new();
    // Runs interleave designs, so a noisy minute hurts all of them alike.
    for run in 0..runs {
        for (d, &design) in designs.iter().enumerate() {
            let r = one_run(design, &params, run)
                .await
                .with_context(|| format!("{} (run {})", design.label(), run + 1))?;
            println!(
                "  run {}: {:<60} {:>8.0} decisions/s {:>8.0} orders/s {:>8} paid/s  p99 {:>7.1} ms  lost {}  cpu {:.0}% + client {:.0}%",
                run + 1,
                design.label(),
                r.decisions_per_s,
                r.orders_per_s,
                r.paid_per_s.map_or("—".into(), |p| format!("{p:.0}")),
                r.p99_ms,
                r.lost,
                r.server_cpu * 100.0,
                r.client_cpu * 100.0
            );
            results.entry(d).or_default().push(r);
        }
    }
    let table = table(&designs, &results, &params, runs);
    println!("\n{table}");
    if super::recording(args) {
        super::record("Flash-sale herd", "herd", args, &table)?;
    }
    Ok(())
}

fn table(
    designs: &[Design],
    results: &BTreeMap<usize, Vec<RunResult>>,
    params: &Params,
    runs: usize,
) -> String {
    let med =
        |d: usize, f: fn(&RunResult) -> f64| median(&results[&d].iter().map(f).collect::<Vec<_>>());
    let mut t = format!(
        "{} buyers{}, {} units, {} keep-alive connections; medians of {runs} run(s).{}\n\n\
         | design | decisions/s | durable orders/s | paid orders/s | ack p50 | ack p99 | ack p99.9 | orders | acknowledged orders lost on `kill -9` | server CPU | client CPU |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
        params.buyers,
        arrival(params),
        params.units,
        params.concurrency,
        if params.kill_mid_sale {
            " The store was killed with `kill -9` when half the units were acknowledged: \
             rates and CPU are only up to the kill, \"orders\" is what the store held after it, \
             and the column to read is the acknowledged orders lost."
        } else {
            ""
        }
    );
    for (d, design) in designs.iter().enumerate() {
        let lost: Vec<String> = results[&d].iter().map(|r| r.lost.to_string()).collect();
        let paid = if results[&d].iter().all(|r| r.paid_per_s.is_some()) {
            format!("{:.0}", med(d, |r| r.paid_per_s.unwrap_or_default()))
        } else {
            "—".into()
        };
        t.push_str(&format!(
            "| {} | {:.0} | {:.0} | {paid} | {:.1} ms | {:.1} ms | {:.1} ms | {:.0} | {} | {:.0}% | {:.0}% |\n",
            design.label(),
            med(d, |r| r.decisions_per_s),
            med(d, |r| r.orders_per_s),
            med(d, |r| r.p50_ms),
            med(d, |r| r.p99_ms),
            med(d, |r| r.p999_ms),
            med(d, |r| r.orders as f64),
            lost.join(", "),
            med(d, |r| r.server_cpu * 100.0),
            med(d, |r| r.client_cpu * 100.0),
        ));
    }
    // Rates cut short by the kill are not compared.
    if params.kill_mid_sale {
        return t;
    }
    for (h, hawker) in designs.iter().enumerate().filter(|(_, d)| d.is_hawker()) {
        for (d, design) in designs.iter().enumerate().filter(|(_, d)| !d.is_hawker()) {
            // At a rate every design that keeps up makes the same orders/s: the wait is the
            // measure.
            if params.rate.is_some() {
                t.push_str(&format!(
                    "\n{} vs {}: ack p99 {:.1} ms against {:.1} ms, {:.0} orders/s against {:.0}.",
                    hawker.label(),
                    design.label(),
                    med(h, |r| r.p99_ms),
                    med(d, |r| r.p99_ms),
                    med(h, |r| r.orders_per_s),
                    med(d, |r| r.orders_per_s),
                ));
                continue;
            }
            t.push_str(&format!(
                "\n{} vs {}: {:.1}× the durable orders/s, {:.1}× the decisions/s.",
                hawker.label(),
                design.label(),
                med(h, |r| r.orders_per_s) / med(d, |r| r.orders_per_s),
                med(h, |r| r.decisions_per_s) / med(d, |r| r.decisions_per_s),
            ));
        }
    }
    t.push('\n');
    t
}

/// How the buyers arrive, for the headings.
fn arrival(params: &Params) -> String {
    match params.rate {
        Some(rate) => format!(
            " arriving at {rate:.0} a second, evenly spaced (latency from each one's due time)"
        ),
        None => String::new(),
    }
}

pub struct RunResult {
    pub decisions_per_s: f64,
    pub orders_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub orders: usize,
    /// Acknowledged orders missing after `kill -9` (only a non-durable design may have any).
    pub lost: usize,
    /// Orders charged and confirmed per second, until the last was (Hawker only: the baselines
    /// charge nothing).
    pub paid_per_s: Option<f64>,
    /// Cores busy in the HTTP server process (not the database) and in the load client.
    pub server_cpu: f64,
    pub client_cpu: f64,
}

/// Prepares the design, runs the herd, kills the server and verifies.
pub async fn one_run(design: Design, params: &Params, run: usize) -> anyhow::Result<RunResult> {
    let dir = tempfile::tempdir_in(".")?;
    let target = match design {
        Design::Hawker | Design::HawkerAsync | Design::HawkerLive => {
            hawker(dir.path(), params).await?
        }
        Design::Postgres => postgres(params).await?,
        Design::Redis | Design::RedisFsync => {
            redis(dir.path(), params, design == Design::RedisFsync).await?
        }
    };
    let load = Load {
        respond_async: design == Design::HawkerAsync,
        addr: target.addr,
        body: target.body.clone(),
        tokens: target.tokens.clone(),
        concurrency: params.concurrency,
        retry_every: params.retry_every,
        rate: params.rate,
        key_prefix: format!("herd{run}"),
        acked: Arc::new(AtomicUsize::new(0)),
        server_stat: format!("/proc/{}/stat", target.server.child.id()),
        live: match (&target.check, design) {
            (
                Check::Hawker {
                    show_id, sale_id, ..
                },
                Design::HawkerLive,
            ) => Some(LiveBuy {
                path: format!("/api/v1/shows/{show_id}/live"),
                sale_id: *sale_id,
            }),
            _ => None,
        },
    };
    let database = match &target.check {
        Check::Postgres { admin, db, .. } => Some((admin.clone(), db.clone())),
        _ => None,
    };
    // Mid-sale, the process that holds the orders dies: Hawker itself, Redis under the baseline,
    // and for PostgreSQL (the machine's own service) the server in front of it.
    let half = params.units.div_ceil(2);
    let killer = params.kill_mid_sale.then(|| {
        let pid = match &target.check {
            Check::Redis { redis, .. } => redis.child.id(),
            _ => target.server.child.id(),
        };
        let acked = load.acked.clone();
        tokio::spawn(async move {
            while acked.load(Ordering::Relaxed) < half {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status()
                .is_ok_and(|s| s.success())
        })
    });
    let tally = match load.live {
        Some(_) => drive_live(&load).await,
        None => drive(&load).await,
    };
    // Answered at the reservation, the orders are paid in the background: the run waits for
    // that (before the kill), and the rate it reports counts paid orders too.
    let paying = match (&tally, &target.check, design) {
        (Ok(t), Check::Hawker { db, sale_id, .. }, d)
            if d.pays_after() && !params.kill_mid_sale =>
        {
            Some(all_paid(db, *sale_id, t).await?)
        }
        _ => None,
    };
    // A run that was to kill mid-sale and did not would prove nothing.
    // Once half the units were acknowledged the killer has fired or is firing (its `kill` may
    // still be running as the load ends, which the kill itself hastens): wait for it.
    let killed = match killer {
        Some(killer) if load.acked.load(Ordering::Relaxed) >= half => killer.await.unwrap_or(false),
        Some(killer) => {
            killer.abort();
            false
        }
        None => true,
    };
    // From the go: opening the connections (a socket and a snapshot per live buyer) is not
    // the sale.
    let (server_cpu, client_cpu) = match &tally {
        Ok(t) => (
            target.server.cpu_seconds() - t.cpu_at_go.0,
            super::own_cpu_seconds() - t.cpu_at_go.1,
        ),
        Err(_) => (0.0, 0.0),
    };
    // SIGKILL, at once: what was acknowledged must already be durable.
    target.server.kill();
    let stored = match tally {
        Ok(_) => target.check.orders().await,
        Err(_) => Ok(Stored {
            orders: HashSet::new(),
            remaining: 0,
        }),
    };
    if let Some((admin, db)) = database {
        drop_database(&admin, &db).await;
    }
    let (tally, stored) = (tally?, stored?);
    ensure!(
        killed,
        "the store was to be killed once half the units were acknowledged, but never was"
    );
    let secs = tally.elapsed.as_secs_f64();
    let mut result = verify(design, params, &tally, &stored)?;
    (result.server_cpu, result.client_cpu) = (server_cpu / secs, client_cpu / secs);
    result.paid_per_s = match design {
        Design::Hawker => Some(result.orders_per_s),
        Design::HawkerAsync | Design::HawkerLive => {
            paying.map(|t| tally.acked.len() as f64 / t.as_secs_f64())
        }
        _ => None,
    };
    Ok(result)
}

/// Waits (at most a minute) until every acknowledged order of the sale is paid, and returns when
/// the last payment was committed, from the herd's start.
async fn all_paid(db: &Path, sale_id: i64, tally: &Tally) -> anyhow::Result<Duration> {
    let (started, orders) = (Instant::now(), tally.acked.len());
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(db)
        .read_only(true)
        .connect()
        .await?;
    loop {
        let (paid, last): (i64, Option<i64>) = sqlx::query_as(
            "SELECT count(*), max(updated_at) FROM orders WHERE sale_id = ? AND status = 'paid'",
        )
        .bind(sale_id)
        .fetch_one(&mut conn)
        .await?;
        if paid as usize >= orders {
            let ms = (last.unwrap_or(tally.started_at_ms) - tally.started_at_ms).max(1);
            return Ok(Duration::from_millis(ms as u64));
        }
        ensure!(
            started.elapsed() < Duration::from_secs(60),
            "{paid} of {orders} orders answered at their reservation were paid within a minute"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// What the database holds after the run: order ids, and units left.
struct Stored {
    orders: HashSet<i64>,
    remaining: i64,
}

fn verify(
    design: Design,
    params: &Params,
    tally: &Tally,
    stored: &Stored,
) -> anyhow::Result<RunResult> {
    let acked = tally.acked.len();
    let lost = tally
        .acked
        .iter()
        .filter(|id| !stored.orders.contains(id))
        .count();
    if design.durable() {
        ensure!(
            lost == 0,
            "{lost} of {acked} acknowledged orders are not in the database after kill -9"
        );
    }
    if params.kill_mid_sale {
        // The store answered nothing after the kill, so the sale is not finished: only what was
        // acknowledged before it, and the stock, are checked.
        ensure!(
            stored.orders.len() as i64 + stored.remaining == params.units as i64,
            "the database holds {} orders and {} units left, for {} units",
            stored.orders.len(),
            stored.remaining,
            params.units
        );
    } else {
        ensure!(
            tally.mismatches.is_empty(),
            "retried keys answered differently: {:?}",
            &tally.mismatches[..tally.mismatches.len().min(5)]
        );
        ensure!(
            tally.errors.is_empty(),
            "answers that were neither an order nor sold out: {:?}",
            tally.errors
        );
        ensure!(
            acked == params.units,
            "{acked} orders acknowledged for {} units",
            params.units
        );
        if design.durable() {
            ensure!(
                stored.orders.len() == params.units && stored.remaining == 0,
                "the database holds {} orders and {} units left, for {} units",
                stored.orders.len(),
                stored.remaining,
                params.units
            );
        }
    }
    ensure!(
        stored.orders.len() <= params.units && stored.remaining >= 0,
        "oversold: {} orders for {} units",
        stored.orders.len(),
        params.units
    );
    let secs = tally.elapsed.as_secs_f64();
    let mut lat = tally.latencies_us.clone();
    let ms = |us: u32| f64::from(us) / 1000.0;
    Ok(RunResult {
        decisions_per_s: (acked + tally.sold_out) as f64 / secs,
        orders_per_s: acked as f64 / tally.last_order.as_secs_f64().max(1e-6),
        p50_ms: ms(quantile(&mut lat, 0.5)),
        p99_ms: ms(quantile(&mut lat, 0.99)),
        p999_ms: ms(quantile(&mut lat, 0.999)),
        orders: stored.orders.len(),
        lost,
        paid_per_s: None,
        server_cpu: 0.0,
        client_cpu: 0.0,
    })
}

/// A prepared design: its HTTP server, the buyers' tokens, and how to read back its orders.
struct Target {
    server: Server,
    addr: SocketAddr,
    body: Arc<Vec<u8>>,
    tokens: Arc<Vec<String>>,
    check: Check,
}

enum Check {
    Hawker {
        db: PathBuf,
        show_id: i64,
        sale_id: i64,
    },
    Postgres {
        /// The server's maintenance database, to drop ours from afterwards.
        admin: String,
        db: String,
        url: String,
    },
    Redis {
        /// Restarted from its append-only file before reading.
        redis: Server,
        restart: Command,
        port: u16,
    },
}

impl Check {
    async fn orders(self) -> anyhow::Result<Stored> {
        match self {
            Check::Hawker { db, sale_id, .. } => {
                let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(&db)
                    .connect()
                    .await?;
                let ids: Vec<(i64,)> = sqlx::query_as(
                    "SELECT id FROM orders WHERE sale_id = ? AND status IN ('reserved', 'paid')",
                )
                .bind(sale_id)
                .fetch_all(&mut conn)
                .await?;
                let (remaining,): (i64,) =
                    sqlx::query_as("SELECT remaining FROM flash_sales WHERE id = ?")
                        .bind(sale_id)
                        .fetch_one(&mut conn)
                        .await?;
                Ok(Stored {
                    orders: ids.into_iter().map(|(id,)| id).collect(),
                    remaining,
                })
            }
            Check::Postgres { url, .. } => {
                let mut conn = sqlx::PgConnection::connect(&url).await?;
                let ids: Vec<(i64,)> = sqlx::query_as("SELECT id FROM orders")
                    .fetch_all(&mut conn)
                    .await?;
                let (remaining,): (i64,) =
                    sqlx::query_as("SELECT remaining FROM sales WHERE id = 1")
                        .fetch_one(&mut conn)
                        .await?;
                conn.close().await?;
                Ok(Stored {
                    orders: ids.into_iter().map(|(id,)| id).collect(),
                    remaining,
                })
            }
            Check::Redis {
                redis,
                mut restart,
                port,
            } => {
                redis.kill();
                let redis = Server::spawn("redis-server", &mut restart)?;
                let mut conn = redis_connect(port).await?;
                // Wait while it replays its append-only file.
                while let Err(e) = redis::cmd("PING").query_async::<()>(&mut conn).await {
                    if e.kind() != redis::ErrorKind::BusyLoadingError {
                        return Err(e.into());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let orders: Vec<String> = redis::cmd("LRANGE")
                    .arg("herd:orders")
                    .arg(0)
                    .arg(-1)
                    .query_async(&mut conn)
                    .await?;
                let remaining: i64 = redis::cmd("GET")
                    .arg("herd:stock")
                    .query_async(&mut conn)
                    .await?;
                drop(redis);
                Ok(Stored {
                    orders: orders
                        .iter()
                        .filter_map(|o| o.split(':').next()?.parse().ok())
                        .collect(),
                    remaining,
                })
            }
        }
    }
}

/// Hawker: `hawker serve` on a fresh data directory, the show started and the sale opened over
/// the API as its host would.
async fn hawker(dir: &Path, params: &Params) -> anyhow::Result<Target> {
    let fixture = Fixture::create(dir, params.units, params.buyers).await?;
    let (server, addr) = fixture.serve().await?;
    let sale_id = fixture.open_sale(addr, params.units, 1).await?;
    let body = json!({ "show_id": fixture.show_id, "flash_sale_id": sale_id, "quantity": 1,
                       "payment_method": "pm_card_visa" });
    Ok(Target {
        server,
        addr,
        body: Arc::new(body.to_string().into_bytes()),
        tokens: Arc::new(fixture.buyer_tokens),
        check: Check::Hawker {
            db: fixture.db,
            show_id: fixture.show_id,
            sale_id,
        },
    })
}

/// A baseline design: `hawker-bench baseline-server KIND` over `url`, taking the same request for
/// every buyer.
async fn baseline(
    kind: &str,
    url: &str,
    tokens: Vec<String>,
    check: Check,
) -> anyhow::Result<Target> {
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()?).into();
    let server = Server::spawn(
        &format!("baseline {kind}"),
        Command::new(std::env::current_exe()?).args([
            "baseline-server",
            kind,
            "--listen",
            &addr.to_string(),
            "--url",
            url,
        ]),
    )?;
    wait_listening(addr, &format!("the {kind} baseline")).await?;
    Ok(Target {
        server,
        addr,
        body: Arc::new(br#"{"flash_sale_id":1,"quantity":1}"#.to_vec()),
        tokens: Arc::new(tokens),
        check,
    })
}

/// PostgreSQL: a database of its own, dropped afterwards.
async fn postgres(params: &Params) -> anyhow::Result<Target> {
    let db = format!("hawker_herd_{:08x}", rand::random::<u32>());
    let mut admin = sqlx::PgConnection::connect(&params.postgres)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {}", params.postgres))?;
    sqlx::raw_sql(&format!("CREATE DATABASE {db}"))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    let url = match params.postgres.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{db}"),
        None => bail!("--postgres must end in /DATABASE"),
    };
    let mut conn = sqlx::PgConnection::connect(&url).await?;
    sqlx::raw_sql(super::baseline::POSTGRES_SCHEMA)
        .execute(&mut conn)
        .await?;
    sqlx::query("INSERT INTO sales (id, remaining) VALUES (1, $1)")
        .bind(params.units as i64)
        .execute(&mut conn)
        .await?;
    let tokens = buyer_tokens(params.buyers);
    let hashes: Vec<String> = tokens.iter().map(|t| token_hash(t)).collect();
    let ids: Vec<i64> = (1..=params.buyers as i64).collect();
    sqlx::query(
        "INSERT INTO tokens (token_hash, buyer) SELECT * FROM UNNEST($1::text[], $2::bigint[])",
    )
    .bind(&hashes)
    .bind(&ids)
    .execute(&mut conn)
    .await?;
    conn.close().await?;
    let check = Check::Postgres {
        admin: params.postgres.clone(),
        db,
        url: url.clone(),
    };
    baseline("postgres", &url, tokens, check).await
}

async fn drop_database(admin: &str, db: &str) {
    let dropped = async {
        let mut conn = sqlx::PgConnection::connect(admin).await?;
        sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
            .execute(&mut conn)
            .await?;
        conn.close().await
    };
    if let Err(e) = dropped.await {
        eprintln!("could not drop the bench database {db}: {e}");
    }
}

async fn redis_connect(port: u16) -> anyhow::Result<redis::aio::MultiplexedConnection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    for _ in 0..100 {
        if let Ok(conn) = client.get_multiplexed_async_connection().await {
            return Ok(conn);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("redis-server on port {port} did not answer")
}

/// Redis: a `redis-server` of its own (so `appendfsync` is ours to set and `kill -9` hurts only
/// it), with its append-only file on the working directory's disk.
async fn redis(dir: &Path, params: &Params, fsync_always: bool) -> anyhow::Result<Target> {
    let port = free_port()?;
    let command = || {
        let mut c = Command::new("redis-server");
        c.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .args(["--appendonly", "yes", "--appendfsync"])
        .arg(if fsync_always { "always" } else { "everysec" })
        .arg("--dir")
        .arg(dir);
        c
    };
    let redis = Server::spawn("redis-server", &mut command())
        .context("redis-server must be installed (Debian: redis-server)")?;
    let mut conn = redis_connect(port).await?;
    let tokens = buyer_tokens(params.buyers);
    for (chunk_no, chunk) in tokens.chunks(5000).enumerate() {
        let mut pipe = redis::pipe();
        for (i, t) in chunk.iter().enumerate() {
            pipe.hset("herd:tokens", token_hash(t), chunk_no * 5000 + i + 1)
                .ignore();
        }
        pipe.query_async::<()>(&mut conn).await?;
    }
    redis::cmd("SET")
        .arg("herd:stock")
        .arg(params.units)
        .query_async::<()>(&mut conn)
        .await?;
    let check = Check::Redis {
        redis,
        restart: command(),
        port,
    };
    baseline(
        "redis",
        &format!("redis://127.0.0.1:{port}/"),
        tokens,
        check,
    )
    .await
}

/// The herd, as the client sees it.
pub struct Load {
    /// Send `Prefer: respond-async`.
    pub respond_async: bool,
    pub addr: SocketAddr,
    pub body: Arc<Vec<u8>>,
    pub tokens: Arc<Vec<String>>,
    pub concurrency: usize,
    pub retry_every: usize,
    /// Buyers a second, evenly spaced; `None`: all at once.
    pub rate: Option<f64>,
    pub key_prefix: String,
    /// Orders acknowledged so far, for the mid-sale kill.
    pub acked: Arc<AtomicUsize>,
    /// Buy over the show's live socket instead of `POST /orders`.
    pub live: Option<LiveBuy>,
    /// The server's `/proc/PID/stat`, to read its CPU time at the go.
    pub server_stat: String,
}

pub struct LiveBuy {
    /// The show's socket, `/api/v1/shows/{id}/live`.
    pub path: String,
    pub sale_id: i64,
}

#[derive(Default)]
pub struct Tally {
    pub latencies_us: Vec<u32>,
    /// Order ids acknowledged (201).
    pub acked: Vec<i64>,
    pub sold_out: usize,
    pub errors: BTreeMap<String, usize>,
    pub mismatches: Vec<String>,
    pub elapsed: Duration,
    /// When the last order was acknowledged, from the start.
    pub last_order: Duration,
    /// The start, by the wall clock the server stamps orders with (the same machine's).
    pub started_at_ms: i64,
    /// CPU seconds the server and this client had used at the go.
    pub cpu_at_go: (f64, f64),
}

impl Tally {
    /// Counts a buyer's first answer, `sent` at that instant, in a herd that began at `start`.
    fn first_answer(
        &mut self,
        answer: &Answer,
        sent: Instant,
        start: Instant,
        acked: &AtomicUsize,
    ) {
        self.latencies_us
            .push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
        match answer {
            Answer::Order(id) => {
                self.acked.push(*id);
                acked.fetch_add(1, Ordering::Relaxed);
                self.last_order = start.elapsed();
            }
            Answer::SoldOut => self.sold_out += 1,
            Answer::Other(what) => *self.errors.entry(what.clone()).or_default() += 1,
        }
    }

    /// A retry with the same key must be answered as the first attempt was.
    fn retried(&mut self, buyer: usize, first: &Answer, again: &Answer) {
        if again != first {
            self.mismatches
                .push(format!("buyer {buyer}: {first:?} then {again:?}"));
        }
    }
}

#[derive(Debug, PartialEq)]
enum Answer {
    Order(i64),
    SoldOut,
    Other(String),
}

fn classify(status: u16, body: &[u8]) -> Answer {
    answer_of(status, &serde_json::from_slice(body).unwrap_or(Value::Null))
}

/// An answer, from `POST /orders`'s status and body or a socket's `order` message (the same
/// `order` and `error` fields).
fn answer_of(status: u16, v: &Value) -> Answer {
    match (
        status,
        v["order"]["id"].as_i64(),
        v["error"]["code"].as_str(),
    ) {
        (201 | 202, Some(id), _) => Answer::Order(id),
        (409, _, Some("sold_out")) => Answer::SoldOut,
        (_, _, code) => Answer::Other(format!("{status} {}", code.unwrap_or("?"))),
    }
}

/// Opens every connection first, then lets the whole herd go at once; each connection sends its
/// next buyer's request as soon as the last is answered.
pub async fn drive(load: &Load) -> anyhow::Result<Tally> {
    let next = Arc::new(AtomicUsize::new(0));
    let (go_tx, go_rx) = tokio::sync::watch::channel(None::<Instant>);
    let mut tasks = Vec::with_capacity(load.concurrency);
    for c in 0..load.concurrency {
        let mut conn = HttpConn::connect(load.addr, Some(loopback_source(c, 8)))
            .await
            .context("opening the herd's connections")?;
        let (next, tokens, body) = (next.clone(), load.tokens.clone(), load.body.clone());
        let acked = load.acked.clone();
        let (retry_every, prefix, addr) = (load.retry_every, load.key_prefix.clone(), load.addr);
        let rate = load.rate;
        // Only the async design sends `Prefer`: every other request stays as it always was.
        let headers_sent = if load.respond_async { 4 } else { 3 };
        let mut go = go_rx.clone();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let Ok(start) = go
                .wait_for(Option::is_some)
                .await
                .map(|s| s.unwrap_or_else(Instant::now))
            else {
                return tally;
            };
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(token) = tokens.get(i) else { break };
                let bearer = format!("Bearer {token}");
                let key = format!("{prefix}-{i}");
                let headers = [
                    ("Authorization", bearer.as_str()),
                    ("Idempotency-Key", key.as_str()),
                    ("Content-Type", "application/json"),
                    ("Prefer", "respond-async"),
                ];
                let headers = &headers[..headers_sent];
                // At a rate, timed from when the buyer was due, not from when a busy
                // connection got to it: waiting for the connection is part of the wait.
                let sent = match due(start, rate, i) {
                    Some(due) => {
                        tokio::time::sleep_until(due.into()).await;
                        due
                    }
                    None => Instant::now(),
                };
                let first = match conn.request("POST", "/api/v1/orders", headers, &body).await {
                    Ok(r) => classify(r.status, &r.body),
                    Err(e) => {
                        *tally.errors.entry(format!("connection: {e}")).or_default() += 1;
                        match HttpConn::connect(addr, None).await {
                            Ok(c) => conn = c,
                            Err(_) => break,
                        }
                        continue;
                    }
                };
                tally.first_answer(&first, sent, start, &acked);
                if i % retry_every == 0 {
                    let again = match conn.request("POST", "/api/v1/orders", headers, &body).await {
                        Ok(r) => classify(r.status, &r.body),
                        Err(e) => Answer::Other(format!("connection: {e}")),
                    };
                    tally.retried(i, &first, &again);
                }
            }
            tally.elapsed = start.elapsed();
            tally
        }));
    }
    go_and_gather(load, go_tx, tasks).await
}

/// The live socket's herd: every buyer a viewer on a socket of its own, all joined (snapshot
/// read) before the sale opens; at the go each sends `buy`, reads past the room's messages to
/// its answer, and every n-th sends the same `buy` again.
pub async fn drive_live(load: &Load) -> anyhow::Result<Tally> {
    use super::client::WsConn;
    let live = load
        .live
        .as_ref()
        .context("a live herd needs the show's socket")?;
    let (go_tx, go_rx) = tokio::sync::watch::channel(None::<Instant>);
    let mut tasks = Vec::with_capacity(load.tokens.len());
    for (i, token) in load.tokens.iter().enumerate() {
        let bearer = format!("Bearer {token}");
        let mut ws = WsConn::connect(
            load.addr,
            Some(loopback_source(i, 8)),
            &live.path,
            &[("Authorization", &bearer)],
        )
        .await
        .context("opening the live herd's sockets (one per buyer: ulimit -n must allow them)")?;
        ws.next().await.context("the snapshot")?;
        let key = format!("{}-{i}", load.key_prefix);
        let buy = format!(
            r#"{{"type":"buy","key":"{key}","flash_sale_id":{},"quantity":1,"payment_method":"pm_card_visa"}}"#,
            live.sale_id
        );
        let retry = i % load.retry_every == 0;
        let rate = load.rate;
        let acked = load.acked.clone();
        let mut go = go_rx.clone();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let bought: std::io::Result<()> = async {
                // Until the sale opens, the viewer reads the room as it comes, as a phone
                // would: left unread, the viewer counts of the whole set-up would wait in its
                // socket and be read during the sale.
                let go = async {
                    let start = go.wait_for(Option::is_some).await.ok()?;
                    Some(start.unwrap_or_else(Instant::now))
                };
                let Some(start) = reading_room(&mut ws, go).await? else {
                    return Ok(());
                };
                let sent = match due(start, rate, i) {
                    Some(due) => {
                        reading_room(&mut ws, tokio::time::sleep_until(due.into())).await?;
                        due
                    }
                    None => Instant::now(),
                };
                let first = buy_over(&mut ws, &buy, &key).await?;
                tally.first_answer(&first, sent, start, &acked);
                if retry {
                    // The answer to the retry, or the first attempt's payment told: either way
                    // the same order (or the same refusal), never a second one.
                    let again = buy_over(&mut ws, &buy, &key)
                        .await
                        .unwrap_or_else(|e| Answer::Other(format!("socket: {e}")));
                    tally.retried(i, &first, &again);
                }
                tally.elapsed = start.elapsed();
                let _ = ws.send(super::client::CLOSE, &[]).await;
                Ok(())
            }
            .await;
            if let Err(e) = bought {
                *tally.errors.entry(format!("socket: {e}")).or_default() += 1;
            }
            tally
        }));
    }
    go_and_gather(load, go_tx, tasks).await
}

/// Reads the room's messages on `ws`, and drops them, until `until` is ready.
async fn reading_room<T>(
    ws: &mut super::client::WsConn,
    until: impl std::future::Future<Output = T>,
) -> std::io::Result<T> {
    tokio::pin!(until);
    loop {
        tokio::select! {
            done = &mut until => return Ok(done),
            read = ws.next() => { read?; }
        }
    }
}

/// Sends `buy` and reads the socket, past the room's broadcasts, to the next `order` message
/// for `key`.
async fn buy_over(ws: &mut super::client::WsConn, buy: &str, key: &str) -> std::io::Result<Answer> {
    ws.send_text(buy).await?;
    let tag = format!(r#""type":"order","key":"{key}""#);
    loop {
        let frame = ws.next().await?;
        match frame.opcode {
            super::client::TEXT => {}
            super::client::CLOSE => return Err(std::io::ErrorKind::ConnectionAborted.into()),
            _ => continue,
        }
        // The room's messages (most of what arrives) have a `seq`; answers to this socket not.
        let direct = frame.payload.starts_with(br#"{"v":1,"seq":0,"#);
        if !direct
            || !frame
                .payload
                .windows(tag.len())
                .any(|w| w == tag.as_bytes())
        {
            continue;
        }
        let v: Value = serde_json::from_slice(frame.payload).unwrap_or(Value::Null);
        let status = v["status"].as_u64().unwrap_or(0) as u16;
        return Ok(answer_of(status, &v));
    }
}

/// When buyer `i` is due in an even stream of `rate` a second; `None` when all come at once.
fn due(start: Instant, rate: Option<f64>, i: usize) -> Option<Instant> {
    rate.map(|rate| start + Duration::from_secs_f64(i as f64 / rate))
}

/// Lets every buyer task go at once (they wait on `go`), and sums up their tallies.
async fn go_and_gather(
    load: &Load,
    go: tokio::sync::watch::Sender<Option<Instant>>,
    tasks: Vec<tokio::task::JoinHandle<Tally>>,
) -> anyhow::Result<Tally> {
    let cpu_at_go = (
        super::proc_cpu_seconds(&load.server_stat),
        super::own_cpu_seconds(),
    );
    let _ = go.send(Some(Instant::now()));
    let mut all = Tally {
        started_at_ms: hawker_server::clock::Clock::system().now().0,
        cpu_at_go,
        ..Tally::default()
    };
    for t in tasks {
        let t = t.await?;
        all.latencies_us.extend(t.latencies_us);
        all.acked.extend(t.acked);
        all.sold_out += t.sold_out;
        for (k, v) in t.errors {
            *all.errors.entry(k).or_default() += v;
        }
        all.mismatches.extend(t.mismatches);
        all.elapsed = all.elapsed.max(t.elapsed);
        all.last_order = all.last_order.max(t.last_order);
    }
    Ok(all)
}
