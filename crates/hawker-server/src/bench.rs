//! `hawker bench herd`: a flash-sale herd against Hawker's group-committing owner, and the same
//! herd against the conventional design — one SQLite transaction per buyer (row update guarded by
//! `remaining >= 1`, then a second transaction to mark it paid) — on the same disk, same
//! durability (`synchronous=FULL`), in the same run. Prints a Markdown table for BENCHMARKS.md.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use hawker_core::account::Role;
use hawker_core::ids::UserId;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::App;
use crate::auth::{random_token, token_hash};
use crate::clock;
use crate::config::Config;
use crate::live::owner::GROUP_COMMITS;
use crate::store::{NewUser, ProductEdit, TokenKind, VariantEdit};

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

pub async fn herd(args: &[&str]) -> anyhow::Result<()> {
    let buyers = flag(args, "--buyers", 2000)?;
    let units = flag(args, "--units", 500)?;
    let dir = tempfile::tempdir()?;
    println!(
        "# hawker bench herd: {buyers} buyers, {units} units, SQLite synchronous=FULL, temp dir {}\n",
        dir.path().display()
    );
    let ours = hawker(dir.path(), buyers, units).await?;
    let baseline = row_lock(dir.path(), buyers, units).await?;
    println!("| design | buyers | units sold | wall time | buy decisions/s | commits |");
    println!("|---|---|---|---|---|---|");
    for (name, r) in [
        ("Hawker: per-show owner, group commit, over HTTP", &ours),
        ("Baseline: transaction per buyer, no HTTP", &baseline),
    ] {
        println!(
            "| {name} | {buyers} | {} | {:.2} s | {:.0} | {} |",
            r.sold,
            r.elapsed.as_secs_f64(),
            buyers as f64 / r.elapsed.as_secs_f64(),
            r.commits
        );
    }
    println!(
        "\nratio (Hawker / baseline decisions per second): {:.1}×",
        baseline.elapsed.as_secs_f64() / ours.elapsed.as_secs_f64()
    );
    Ok(())
}

struct Run {
    sold: usize,
    elapsed: Duration,
    commits: String,
}

async fn hawker(dir: &std::path::Path, buyers: usize, units: usize) -> anyhow::Result<Run> {
    let config = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.join("hawker"),
        argon2_memory_kib: 64,
        argon2_iterations: 1,
        ..Config::default()
    };
    let app = App::build(config).await?;
    let state = app.state().clone();
    let port = app.port();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let now = clock::now();
    let seller = state
        .store
        .create_user(
            &NewUser {
                email: "s@bench".into(),
                password_hash: "x".into(),
                display_name: "Seller".into(),
                role: Role::Seller,
            },
            now,
        )
        .await?;
    let product = ProductEdit {
        title: "Bench lipstick".into(),
        description: String::new(),
        currency: "USD".into(),
        variants: vec![VariantEdit {
            id: None,
            name: "Ruby".into(),
            price_cents: 2000,
            stock: units as i64,
        }],
    };
    let product = state.store.create_product(seller.id, &product, now).await?;
    let seller_token = token(&state, seller.id).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(buyers)
        .build()?;
    let base = format!("http://127.0.0.1:{port}/api/v1");
    let show: serde_json::Value = client
        .post(format!("{base}/shows"))
        .bearer_auth(&seller_token)
        .json(&serde_json::json!({"title": "Bench", "category": "bench", "product_ids": [product.id]}))
        .send()
        .await?
        .json()
        .await?;
    let show_id = show["id"].as_i64().context("show id")?;
    client
        .post(format!("{base}/shows/{show_id}/start"))
        .bearer_auth(&seller_token)
        .send()
        .await?
        .error_for_status()?;
    let sale: serde_json::Value = client
        .post(format!("{base}/shows/{show_id}/flash-sales"))
        .bearer_auth(&seller_token)
        .json(&serde_json::json!({"variant_id": product.variants[0].id, "quantity": units, "price_cents": 1500, "per_buyer_limit": 1, "duration_s": 600}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let sale_id = sale["id"].as_i64().context("sale id")?;
    let mut tokens = Vec::with_capacity(buyers);
    for i in 0..buyers {
        let u = state
            .store
            .create_user(
                &NewUser {
                    email: format!("b{i}@bench"),
                    password_hash: "x".into(),
                    display_name: format!("B{i}"),
                    role: Role::Buyer,
                },
                now,
            )
            .await?;
        tokens.push(token(&state, u.id).await?);
    }
    let before = log_len(&state, show_id).await?;
    let commits_before = GROUP_COMMITS.load(Ordering::Relaxed);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(buyers);
    for (i, t) in tokens.into_iter().enumerate() {
        let (client, url) = (client.clone(), format!("{base}/orders"));
        tasks.push(tokio::spawn(async move {
            let res = client
                .post(url)
                .bearer_auth(t)
                .header("Idempotency-Key", format!("k{i}"))
                .json(&serde_json::json!({"show_id": show_id, "flash_sale_id": sale_id, "quantity": 1, "payment_method": "pm_card_visa"}))
                .send()
                .await;
            res.map(|r| r.status().as_u16()).unwrap_or(0)
        }));
    }
    let mut sold = 0;
    for t in tasks {
        if t.await? == 201 {
            sold += 1;
        }
    }
    let elapsed = started.elapsed();
    let events = log_len(&state, show_id).await? - before;
    let commits = GROUP_COMMITS.load(Ordering::Relaxed) - commits_before;
    Ok(Run {
        sold,
        elapsed,
        commits: format!("{commits} (group commits carrying {events} events)"),
    })
}

async fn token(state: &crate::app::AppState, user: UserId) -> anyhow::Result<String> {
    let t = random_token(32);
    state
        .store
        .insert_token(&token_hash(&t), user, TokenKind::Api, None, clock::now())
        .await?;
    Ok(t)
}

async fn log_len(state: &crate::app::AppState, show: i64) -> anyhow::Result<usize> {
    Ok(state
        .store
        .commerce_log(hawker_core::ids::ShowId(show))
        .await?
        .len())
}

/// The conventional design, given every advantage: no HTTP, no JSON, just two durable
/// transactions per buyer against the same schema shape.
async fn row_lock(dir: &std::path::Path, buyers: usize, units: usize) -> anyhow::Result<Run> {
    let options = SqliteConnectOptions::new()
        .filename(dir.join("baseline.db"))
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
         CREATE TABLE orders (id INTEGER PRIMARY KEY, buyer INTEGER NOT NULL, status TEXT NOT NULL, UNIQUE (buyer));",
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
                sqlx::query("UPDATE orders SET status = 'paid' WHERE buyer = ?")
                    .bind(buyer)
                    .execute(&*pool)
                    .await?;
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
        sold,
        elapsed: started.elapsed(),
        commits: format!(
            "{} (two per sale, one per sold-out)",
            sold * 2 + (buyers - sold)
        ),
    })
}
