//! `hawker-bench auction`: one auction, viewers on the live socket, bidders bidding as fast as
//! their answers come back; every bid is logged durably before it is answered. Hawker's owner with
//! group commit against the same owner committing (and broadcasting) each decision alone.
//! Every run is then checked, and fails if the check fails: the auction's log verifies (hash
//! chain, then the rules replayed), it holds one bid entry per decided bid, and every viewer saw
//! the auction move.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use hawker_core::ids::{AuctionId, UserId};
use tokio::sync::oneshot;

use super::flag;
use super::hawker::{Shop, insert_buyers};
use hawker_server::App;
use hawker_server::config::Config;
use hawker_server::live::{CommerceCmd, LiveShow};
use hawker_server::state::AppState;

/// The one auction every run starts, bids on and then checks.
const AUCTION: AuctionId = AuctionId(7);

/// `hawker-bench auction`: one auction, `--viewers` live sockets watching, `--bidders` bidding as
/// fast as their answers come back, every bid logged durably before it is answered. Compared with
/// the same owner committing each decision alone.
pub async fn run(args: &[&str]) -> anyhow::Result<()> {
    super::check_flags(
        "auction",
        args,
        &["--bidders", "--bids", "--viewers"],
        &["--smoke", "--no-record"],
    )?;
    let smoke = args.contains(&"--smoke");
    let bidders = flag(args, "--bidders", if smoke { 50 } else { 1000 })?.max(1);
    let bids = flag(args, "--bids", if smoke { 2_000 } else { 40_000 })?;
    let viewers = flag(args, "--viewers", if smoke { 50 } else { 1000 })?;
    let dir = tempfile::tempdir_in(".")?;
    println!(
        "hawker-bench auction: {bids} bids from {bidders} bidders, {viewers} viewers on the live socket, SQLite synchronous=FULL\n"
    );
    let mut table = format!(
        "{bids} bids from {bidders} bidders, {viewers} viewers; every run's log verified.\n\n\
         | design | bids decided | wall time | bids decided/s | transactions | auction updates per viewer | deliveries/s |\n\
         |---|---|---|---|---|---|---|\n"
    );
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
        .await
        .context(name)?;
        let row = format!(
            "| {name} | {} | {:.2} s | {:.0} | {} | {:.0} | {:.0} |\n",
            r.decided,
            r.elapsed.as_secs_f64(),
            r.decided as f64 / r.elapsed.as_secs_f64(),
            r.commits,
            r.updates_per_viewer,
            r.updates_per_viewer * viewers as f64 / r.elapsed.as_secs_f64()
        );
        print!("{row}");
        table.push_str(&row);
        rates.push(r.decided as f64 / r.elapsed.as_secs_f64());
    }
    let ratio = format!(
        "\ngroup commit vs one commit per decision: {:.1}× with viewers, {:.1}× with nobody watching\n",
        rates[0] / rates[1],
        rates[0] / rates[2]
    );
    print!("{ratio}");
    table.push_str(&ratio);
    if super::recording(args) {
        super::record("Live auction", "auction", args, &table)?;
    }
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

    let app = App::build(config(dir, batch_max)).await?;
    let state = app.state().clone();
    let port = app.port();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let (live, variant, ids) = fixture(&state, dir, bidders, 1).await?;
    let terms = Terms::new(
        100,
        120,
        Mode::Standard { extend_ms: 10_000 },
        Increments::standard(),
    )?;
    let (reply, answer) = oneshot::channel();
    live.commerce
        .send(CommerceCmd::StartAuction {
            id: AUCTION,
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

    let commits_before = state.services.hub.group_commits();
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
                    auction_id: AUCTION,
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
    let commits = state.services.hub.group_commits() - commits_before;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop_tx.send(true);
    let mut updates = 0u64;
    for w in watchers {
        let seen = w.await?;
        ensure!(seen > 0, "a viewer saw no auction update");
        updates += seen;
    }
    check_log(&state, decided).await?;
    Ok(AuctionRun {
        decided,
        elapsed,
        commits,
        updates_per_viewer: updates as f64 / viewers.max(1) as f64,
    })
}

/// The auction's log, as anyone can fetch it, must verify and hold every decided bid.
async fn check_log(state: &AppState, decided: usize) -> anyhow::Result<()> {
    use hawker_core::auction::Entry;
    let entries = state
        .services
        .store
        .auction_log(AUCTION)
        .await
        .map_err(|e| anyhow::anyhow!("reading the auction log: {e:?}"))?;
    hawker_server::auction_log::verify(&entries)
        .map_err(|e| anyhow::anyhow!("the log fails: {e}"))?;
    let logged_bids = entries
        .iter()
        .filter(|e| matches!(serde_json::from_str(&e.body), Ok(Entry::Bid { .. })))
        .count();
    ensure!(
        logged_bids == decided,
        "{decided} bids were answered but the log holds {logged_bids}"
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

/// A live [`Shop`] with `units + 100` in stock, and `buyers` buyers.
async fn fixture(
    state: &AppState,
    dir: &std::path::Path,
    buyers: usize,
    units: usize,
) -> anyhow::Result<(LiveShow, hawker_core::ids::VariantId, Vec<UserId>)> {
    let shop = Shop::create(state.services.store.as_ref(), units + 100).await?;
    let show = hawker_server::service::shows::start_show(&state.services, shop.show)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let live = state
        .services
        .hub
        .live(&show)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let (ids, _) = insert_buyers(&dir.join("hawker.db"), buyers).await?;
    Ok((live, shop.variant, ids))
}
