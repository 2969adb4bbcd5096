//! `hawker bench herd`: one flash sale, a herd of buyers, every answer durable
//! (`synchronous=FULL`), all designs on the same disk in the same run. Prints Markdown for
//! BENCHMARKS.md.
//!
//! Rows, from the engine outwards:
//! 1. Hawker's show owner deciding reservations in-process, with group commit.
//! 2. The same owner with `commit_batch_max = 1`: one transaction (one fsync) per decision.
//! 3. The conventional "seckill" design: one SQLite transaction per buyer, `UPDATE … SET
//!    remaining = remaining - 1 WHERE remaining >= 1` then `INSERT` the order (no HTTP).
//! 4. Hawker end to end over HTTP: reserve, charge (test provider), confirm — two owner round
//!    trips and the HTTP client on the same two cores.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use hawker_core::account::Role;
use hawker_core::catalog::Quantity;
use hawker_core::commerce::{BuyRequest, Item, SaleRequest};
use hawker_core::ids::{OrderId, SaleId, UserId};
use hawker_core::money::Price;
use serde_json::json;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::oneshot;

use crate::App;
use crate::app::AppState;
use crate::auth::{random_token, token_hash};
use crate::clock;
use crate::config::Config;
use crate::live::owner::GROUP_COMMITS;
use crate::live::{CommerceCmd, LiveShow};
use crate::store::{NewShow, NewUser, OrderMeta, ProductEdit, TokenKind, VariantEdit};

fn flag(args: &[&str], name: &str, default: usize) -> anyhow::Result<usize> {
    match args.iter().position(|a| *a == name) {
        Some(i) => args
            .get(i + 1)
            .context("flag needs a value")?
            .parse()
            .with_context(|| format!("{name} takes a number")),
        None => Ok(default),
    }
}

struct Run {
    name: &'static str,
    sold: usize,
    elapsed: Duration,
    commits: u64,
}

pub async fn herd(args: &[&str]) -> anyhow::Result<()> {
    let buyers = flag(args, "--buyers", 5000)?;
    let units = flag(args, "--units", 1000)?;
    // On the working directory's disk, not a tmpfs, so fsync costs what it costs in production.
    let dir = tempfile::tempdir_in(".")?;
    println!(
        "hawker bench herd: {buyers} buyers (one unit each), {units} units, SQLite WAL synchronous=FULL, in {}\n",
        dir.path().display()
    );
    let runs = [
        owner_in_process(
            &dir.path().join("group"),
            buyers,
            units,
            2048,
            "Hawker owner, group commit (in-process)",
        )
        .await?,
        owner_in_process(
            &dir.path().join("single"),
            buyers,
            units,
            1,
            "Same owner, one commit per decision (in-process)",
        )
        .await?,
        row_lock(&dir.path().join("rowlock"), buyers, units).await?,
        over_http(&dir.path().join("http"), buyers, units).await?,
    ];
    println!("| design | units sold | wall time | buy decisions/s | transactions |");
    println!("|---|---|---|---|---|");
    for r in &runs {
        println!(
            "| {} | {} | {:.3} s | {:.0} | {} |",
            r.name,
            r.sold,
            r.elapsed.as_secs_f64(),
            buyers as f64 / r.elapsed.as_secs_f64(),
            r.commits
        );
    }
    let rate = |r: &Run| buyers as f64 / r.elapsed.as_secs_f64();
    println!(
        "\ngroup commit vs one commit per decision: {:.1}×",
        rate(&runs[0]) / rate(&runs[1])
    );
    println!(
        "group commit vs transaction per buyer:   {:.1}×",
        rate(&runs[0]) / rate(&runs[2])
    );
    Ok(())
}

fn config(dir: &std::path::Path, batch_max: usize) -> Config {
    Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.to_path_buf(),
        argon2_memory_kib: 64,
        argon2_iterations: 1,
        commit_batch_max: batch_max,
        media_port: 0,
        ..Config::default()
    }
}

/// A seller, a product with `units + 100` in stock, a live show, and `buyers` buyers.
async fn fixture(
    state: &AppState,
    buyers: usize,
    units: usize,
) -> anyhow::Result<(LiveShow, hawker_core::ids::VariantId, Vec<UserId>)> {
    let now = clock::now();
    let user = |email: String, role| NewUser {
        email,
        password_hash: "x".into(),
        display_name: "Bench".into(),
        role,
    };
    let seller = state
        .store
        .create_user(&user("seller@bench".into(), Role::Seller), now)
        .await?;
    let product = ProductEdit {
        title: "Bench lipstick".into(),
        description: String::new(),
        currency: "USD".into(),
        variants: vec![VariantEdit {
            id: None,
            name: "Ruby".into(),
            price_cents: 2000,
            stock: units as i64 + 100,
        }],
    };
    let product = state.store.create_product(seller.id, &product, now).await?;
    let show = NewShow {
        seller_id: seller.id,
        title: "Bench".into(),
        category: "bench".into(),
        scheduled_at: None,
        stream_key: crate::auth::new_stream_key(),
        product_ids: vec![product.id],
    };
    let show = state.store.create_show(&show, now).await?;
    let show = crate::api::shows::start_show(state, show)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let live = state
        .hub
        .live(&show)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut ids = Vec::with_capacity(buyers);
    for i in 0..buyers {
        ids.push(
            state
                .store
                .create_user(&user(format!("b{i}@bench"), Role::Buyer), now)
                .await?
                .id,
        );
    }
    Ok((live, product.variants[0].id, ids))
}

async fn start_sale(
    live: &LiveShow,
    variant: hawker_core::ids::VariantId,
    units: usize,
) -> anyhow::Result<SaleId> {
    let (reply, answer) = oneshot::channel();
    let req = SaleRequest {
        id: SaleId(1),
        variant_id: variant,
        quantity: units as u32,
        price: Price::new("price", 1500)?,
        per_buyer_limit: 1,
        duration_ms: 600_000,
    };
    live.commerce
        .send(CommerceCmd::StartSale { req, reply })
        .await?;
    Ok(answer.await?.map_err(|e| anyhow::anyhow!("{e}"))?.id)
}

async fn owner_in_process(
    dir: &std::path::Path,
    buyers: usize,
    units: usize,
    batch_max: usize,
    name: &'static str,
) -> anyhow::Result<Run> {
    let app = App::build(config(dir, batch_max)).await?;
    let state = app.state().clone();
    let (live, variant, ids) = fixture(&state, buyers, units).await?;
    let sale = start_sale(&live, variant, units).await?;
    let commits_before = GROUP_COMMITS.load(Ordering::Relaxed);
    let hold_until = clock::now().plus_secs(600);
    let started = Instant::now();
    let mut answers = Vec::with_capacity(buyers);
    for (i, buyer) in ids.into_iter().enumerate() {
        let (reply, answer) = oneshot::channel();
        let order_id = OrderId(i as i64 + 1);
        let req = BuyRequest {
            order_id,
            buyer,
            item: Item::Sale(sale),
            quantity: Quantity::new(1)?,
            code: None,
            buyer_has_ordered: false,
            hold_until,
        };
        let meta = OrderMeta {
            order_id,
            idempotency_key: format!("k{i}"),
            payment_method: "pm_card_visa".into(),
        };
        live.commerce
            .send(CommerceCmd::Buy {
                req,
                meta,
                buyer_name: "b".into(),
                reply,
            })
            .await?;
        answers.push(answer);
    }
    let mut sold = 0;
    for a in answers {
        if matches!(a.await, Ok(Ok(_))) {
            sold += 1;
        }
    }
    let elapsed = started.elapsed();
    Ok(Run {
        name,
        sold,
        elapsed,
        commits: GROUP_COMMITS.load(Ordering::Relaxed) - commits_before,
    })
}

/// The conventional design, given every advantage: no HTTP, no JSON, no owner, just one durable
/// transaction per buyer against the same kind of guarded row.
async fn row_lock(dir: &std::path::Path, buyers: usize, units: usize) -> anyhow::Result<Run> {
    std::fs::create_dir_all(dir)?;
    let options = SqliteConnectOptions::new()
        .filename(dir.join("rowlock.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(60));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await?;
    sqlx::raw_sql(
        "CREATE TABLE sale (id INTEGER PRIMARY KEY, remaining INTEGER NOT NULL CHECK (remaining >= 0));
         CREATE TABLE orders (id INTEGER PRIMARY KEY, buyer INTEGER NOT NULL UNIQUE, status TEXT NOT NULL);",
    )
    .execute(&pool)
    .await?;
    sqlx::query("INSERT INTO sale (id, remaining) VALUES (1, ?)")
        .bind(units as i64)
        .execute(&pool)
        .await?;
    let pool = Arc::new(pool);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(buyers);
    for buyer in 0..buyers as i64 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let reserve = async {
                let mut tx = pool.begin().await?;
                let taken = sqlx::query(
                    "UPDATE sale SET remaining = remaining - 1 WHERE id = 1 AND remaining >= 1",
                )
                .execute(&mut *tx)
                .await?;
                if taken.rows_affected() == 0 {
                    return Ok::<bool, sqlx::Error>(false);
                }
                sqlx::query("INSERT INTO orders (buyer, status) VALUES (?, 'reserved')")
                    .bind(buyer)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            };
            reserve.await.unwrap_or(false)
        }));
    }
    let mut sold = 0;
    for t in tasks {
        if t.await? {
            sold += 1;
        }
    }
    Ok(Run {
        name: "Transaction per buyer, guarded UPDATE (no HTTP)",
        sold,
        elapsed: started.elapsed(),
        commits: buyers as u64,
    })
}

async fn over_http(dir: &std::path::Path, buyers: usize, units: usize) -> anyhow::Result<Run> {
    let app = App::build(config(dir, 2048)).await?;
    let state = app.state().clone();
    let port = app.port();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let (live, variant, ids) = fixture(&state, buyers, units).await?;
    let sale = start_sale(&live, variant, units).await?;
    let mut tokens = Vec::with_capacity(buyers);
    for id in ids {
        let t = random_token(16);
        state
            .store
            .insert_token(&token_hash(&t), id, TokenKind::Api, None, clock::now())
            .await?;
        tokens.push(t);
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(buyers)
        .build()?;
    let url = format!("http://127.0.0.1:{port}/api/v1/orders");
    let commits_before = GROUP_COMMITS.load(Ordering::Relaxed);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(buyers);
    for (i, token) in tokens.into_iter().enumerate() {
        let (client, url) = (client.clone(), url.clone());
        let body = json!({ "show_id": live.show_id, "flash_sale_id": sale, "quantity": 1, "payment_method": "pm_card_visa" });
        tasks.push(tokio::spawn(async move {
            let res = client
                .post(url)
                .bearer_auth(token)
                .header("Idempotency-Key", format!("k{i}"))
                .json(&body)
                .send()
                .await;
            res.map(|r| r.status().as_u16() == 201).unwrap_or(false)
        }));
    }
    let mut sold = 0;
    for t in tasks {
        if t.await? {
            sold += 1;
        }
    }
    let elapsed = started.elapsed();
    Ok(Run {
        name: "Hawker end to end over HTTP (reserve, charge, confirm)",
        sold,
        elapsed,
        commits: GROUP_COMMITS.load(Ordering::Relaxed) - commits_before,
    })
}

/// `hawker bench auction`: one auction, `--viewers` live sockets watching, `--bidders` bidding as
/// fast as their answers come back, every bid logged durably before it is answered. Compared with
/// the same owner committing each decision alone.
pub async fn auction(args: &[&str]) -> anyhow::Result<()> {
    let bidders = flag(args, "--bidders", 1000)?;
    let bids = flag(args, "--bids", 40_000)?;
    let viewers = flag(args, "--viewers", 1000)?;
    let dir = tempfile::tempdir_in(".")?;
    println!(
        "hawker bench auction: {bids} bids from {bidders} bidders, {viewers} viewers on the live socket, SQLite synchronous=FULL\n"
    );
    println!(
        "| design | bids decided | wall time | bids decided/s | transactions | auction updates per viewer | deliveries/s |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut rates = Vec::new();
    // The per-decision run commits and broadcasts once per bid, so it gets a tenth of the bids to
    // finish in reasonable time; the rates compare.
    let runs = [
        ("Hawker owner, group commit", 2048, bids, viewers),
        ("Same owner, one commit per decision", 1, bids / 10, viewers),
        (
            "Same owner, one commit per decision, nobody watching",
            1,
            bids / 4,
            0,
        ),
    ];
    for (i, (name, batch_max, bids, viewers)) in runs.into_iter().enumerate() {
        let r = auction_run(
            &dir.path().join(format!("run{i}")),
            bidders,
            bids,
            viewers,
            batch_max,
        )
        .await?;
        println!(
            "| {name} | {} | {:.2} s | {:.0} | {} | {:.0} | {:.0} |",
            r.decided,
            r.elapsed.as_secs_f64(),
            r.decided as f64 / r.elapsed.as_secs_f64(),
            r.commits,
            r.updates_per_viewer,
            r.updates_per_viewer * viewers as f64 / r.elapsed.as_secs_f64()
        );
        rates.push(r.decided as f64 / r.elapsed.as_secs_f64());
    }
    println!(
        "\ngroup commit vs one commit per decision: {:.1}× with viewers, {:.1}× with nobody watching",
        rates[0] / rates[1],
        rates[0] / rates[2]
    );
    Ok(())
}

struct AuctionRun {
    decided: usize,
    elapsed: Duration,
    commits: u64,
    updates_per_viewer: f64,
}

async fn auction_run(
    dir: &std::path::Path,
    bidders: usize,
    bids: usize,
    viewers: usize,
    batch_max: usize,
) -> anyhow::Result<AuctionRun> {
    use futures_util::StreamExt;
    use hawker_core::auction::{BidKind, Increments, Mode, Outcome, Terms};
    use hawker_core::ids::AuctionId;

    let app = App::build(config(dir, batch_max)).await?;
    let state = app.state().clone();
    let port = app.port();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let (live, variant, ids) = fixture(&state, bidders, 1).await?;
    let terms = Terms::new(
        100,
        120,
        Mode::Standard { extend_ms: 10_000 },
        Increments::standard(),
    )?;
    let (reply, answer) = oneshot::channel();
    live.commerce
        .send(CommerceCmd::StartAuction {
            id: AuctionId(7),
            variant_id: variant,
            lot: "bench".into(),
            terms,
            salt: "bench".into(),
            reply,
        })
        .await?;
    answer.await?.map_err(|e| anyhow::anyhow!("{e}"))?;

    // Viewers: each counts the auction updates it receives until told to stop.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut watchers = Vec::with_capacity(viewers);
    for _ in 0..viewers {
        let url = format!("ws://127.0.0.1:{port}/api/v1/shows/{}/live", live.show_id);
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await?;
        let mut stop = stop_rx.clone();
        watchers.push(tokio::spawn(async move {
            let mut updates = 0u64;
            loop {
                tokio::select! {
                    msg = ws.next() => match msg {
                        Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t))) if t.contains("\"type\":\"auction\"") => updates += 1,
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                    _ = stop.changed() => break,
                }
            }
            updates
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let commits_before = GROUP_COMMITS.load(Ordering::Relaxed);
    let per_bidder = bids.div_ceil(bidders);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(bidders);
    for user in ids {
        let commerce = live.commerce.clone();
        tasks.push(tokio::spawn(async move {
            let mut decided = 0usize;
            let mut next = 100;
            for _ in 0..per_bidder {
                let (reply, answer) = oneshot::channel();
                let cmd = CommerceCmd::Bid {
                    auction_id: AuctionId(7),
                    bidder: user,
                    name: "b".into(),
                    kind: BidKind::Bid,
                    amount_cents: next,
                    policy: None,
                    key: None,
                    reply,
                };
                if commerce.send(cmd).await.is_err() {
                    break;
                }
                match answer.await {
                    Ok(Ok(Outcome::Accepted { price_cents, .. })) => next = price_cents + 200,
                    Ok(Ok(Outcome::Rejected(hawker_core::auction::Rejection::BidTooLow {
                        min_cents,
                    }))) => next = min_cents,
                    Ok(Ok(Outcome::Rejected(_))) => next += 100,
                    _ => break,
                }
                decided += 1;
            }
            decided
        }));
    }
    let mut decided = 0;
    for t in tasks {
        decided += t.await?;
    }
    let elapsed = started.elapsed();
    let commits = GROUP_COMMITS.load(Ordering::Relaxed) - commits_before;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop_tx.send(true);
    let mut updates = 0u64;
    for w in watchers {
        updates += w.await?;
    }
    Ok(AuctionRun {
        decided,
        elapsed,
        commits,
        updates_per_viewer: updates as f64 / viewers.max(1) as f64,
    })
}
