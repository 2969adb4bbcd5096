//! `kill -9` during a herd, restart on the same database: every acknowledged order is there,
//! and no unit is sold twice.

use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::TestApp;

/// Starts the real `hawker` binary on `dir` and waits for it to say its port.
pub async fn start_hawker(dir: &std::path::Path, extra_env: &[(&str, &str)]) -> (Child, TestApp) {
    start_hawker_ahead(dir, extra_env, 0).await
}

/// Like [`start_hawker`], with the process's clock `ahead_s` seconds ahead of ours (libfaketime,
/// preloaded into the server itself, so killing the child kills the server), as if it started
/// that much later: time passes while a server is down without the test waiting for it.
pub async fn start_hawker_ahead(
    dir: &std::path::Path,
    extra_env: &[(&str, &str)],
    ahead_s: u32,
) -> (Child, TestApp) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hawker"));
    if ahead_s > 0 {
        cmd.env("LD_PRELOAD", libfaketime())
            .env("FAKETIME", format!("+{ahead_s}s"));
    }
    cmd.arg("serve")
        .env("HAWKER_LISTEN", "127.0.0.1:0")
        .env("HAWKER_MEDIA_PORT", "0")
        .env("HAWKER_DATA_DIR", dir)
        .env("HAWKER_ARGON2_MEMORY_KIB", "64")
        .env("HAWKER_ARGON2_ITERATIONS", "1")
        .env("HAWKER_SIGNUPS_PER_CLIENT_PER_HOUR", "1000000")
        .env("HAWKER_PASSWORD_HASH_QUEUE", "100000")
        .env("HAWKER_SOCKETS_PER_CLIENT", "100000")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("hawker starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let port = loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("starts in time")
            .expect("reads")
            .expect("a line");
        if let Some(addr) = line.strip_prefix("hawker listening on http://") {
            break addr
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .expect("port");
        }
    };
    let app = TestApp {
        base: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(512)
            .build()
            .expect("client"),
        payments: std::sync::Arc::default(),
        // Another process's: its wall clock (give or take `ahead_s`).
        clock: hawker_server::clock::Clock::system(),
        _data_dir: tempfile::tempdir().expect("unused dir"),
    };
    (child, app)
}

/// libfaketime's library for threaded programs, where Debian puts it (`apt-get install faketime`).
fn libfaketime() -> std::path::PathBuf {
    let dirs = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("faketime"))
        .chain([std::path::PathBuf::from("/usr/lib/faketime")]);
    dirs.map(|dir| dir.join("libfaketimeMT.so.1"))
        .find(|lib| lib.exists())
        .expect("this test needs libfaketime: apt-get install faketime")
}

async fn orders(app: &TestApp, seller: &str, show_id: i64) -> Vec<Value> {
    let path = format!("/api/v1/seller/orders?show_id={show_id}");
    app.every_page(seller, &path, "orders", 200).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_a_herd_loses_no_acknowledged_order() {
    const UNITS: i64 = 120;
    let data = tempfile::tempdir().expect("dir");
    // A short hold, so reservations interrupted by the kill expire quickly after the restart.
    let hold = [("HAWKER_RESERVATION_HOLD_S", "5")];
    let (mut child, app) = start_hawker(data.path(), &hold).await;
    let show = app.live_show(&[("Ruby", 2400, 200)]).await;
    let sale_id = app.start_sale(&show, UNITS, 1, 3600).await;
    let buyers = app.buyers(400).await;

    // The herd, and a watcher that kills the server once 40 orders have been acknowledged.
    let (acked_tx, mut acked_rx) = tokio::sync::mpsc::unbounded_channel::<i64>();
    let mut herd = Vec::new();
    for (i, b) in buyers.iter().enumerate() {
        let (client, url, token, tx) = (
            app.client.clone(),
            app.url("/api/v1/orders"),
            b.token.clone(),
            acked_tx.clone(),
        );
        let body = json!({ "show_id": show.show_id, "flash_sale_id": sale_id, "quantity": 1, "payment_method": "pm_card_visa" });
        herd.push(tokio::spawn(async move {
            let res = client
                .post(url)
                .bearer_auth(token)
                .header("Idempotency-Key", format!("crash-{i}"))
                .json(&body)
                .send()
                .await;
            if let Ok(res) = res
                && res.status() == StatusCode::CREATED
                && let Ok(v) = res.json::<Value>().await
            {
                let _ = tx.send(v["order"]["id"].as_i64().expect("id"));
            }
        }));
    }
    drop(acked_tx);
    let mut acknowledged = Vec::new();
    while let Some(id) = acked_rx.recv().await {
        acknowledged.push(id);
        if acknowledged.len() == 40 {
            child.start_kill().expect("SIGKILL");
            break;
        }
    }
    child.wait().await.expect("dead");
    for h in herd {
        let _ = h.await;
    }
    // Answers that raced the kill may still have arrived; they count as acknowledged too.
    while let Ok(id) = acked_rx.try_recv() {
        acknowledged.push(id);
    }
    assert!(acknowledged.len() >= 40);

    // Restart on the same database.
    let (_child, app) = start_hawker(data.path(), &hold).await;
    let stored = orders(&app, &show.seller.token, show.show_id).await;
    for id in &acknowledged {
        let order = stored
            .iter()
            .find(|o| o["id"] == *id)
            .unwrap_or_else(|| panic!("acknowledged order {id} lost"));
        assert_eq!(order["status"], "paid");
    }
    let (_, sale) = app
        .get(None, &format!("/api/v1/flash-sales/{sale_id}"))
        .await;
    let held = stored
        .iter()
        .filter(|o| o["status"] == "paid" || o["status"] == "reserved")
        .count() as i64;
    assert_eq!(
        sale["remaining"].as_i64().expect("remaining") + held,
        UNITS,
        "units add up after the crash"
    );

    // Interrupted reservations expire and their units return; then the rest sells out exactly.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while orders(&app, &show.seller.token, show.show_id)
        .await
        .iter()
        .any(|o| o["status"] == "reserved")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "reservations expire"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let late = app.buyers(150).await;
    let buys = late.iter().enumerate().map(|(i, b)| {
        let body = json!({ "show_id": show.show_id, "flash_sale_id": sale_id, "quantity": 1, "payment_method": "pm_card_visa" });
        let app = &app;
        async move { app.buy(&b.token, &format!("after-{i}"), body).await.0 }
    });
    futures_util::future::join_all(buys).await;
    let stored = orders(&app, &show.seller.token, show.show_id).await;
    let paid = stored.iter().filter(|o| o["status"] == "paid").count() as i64;
    let (_, sale) = app
        .get(None, &format!("/api/v1/flash-sales/{sale_id}"))
        .await;
    assert_eq!(paid, UNITS, "sold out exactly, never oversold");
    assert_eq!(sale["remaining"], 0);
}

#[tokio::test]
async fn a_reservation_answered_before_its_charge_is_paid_after_kill_9() {
    let data = tempfile::tempdir().expect("dir");
    // A long hold: the order must be paid after the restart, not left to expire.
    let hold = [("HAWKER_RESERVATION_HOLD_S", "600")];
    let (mut child, app) = start_hawker(data.path(), &hold).await;
    let show = app.live_show(&[("Ruby", 2400, 5)]).await;
    let sale_id = app.start_sale(&show, 2, 1, 3600).await;
    let buyer = app.signup("buyer").await;
    // The slow test card is still being charged when the server dies.
    let body = json!({ "show_id": show.show_id, "flash_sale_id": sale_id, "quantity": 1, "payment_method": "pm_card_slow" });
    let (status, _, _, reserved) = app.buy_async(&buyer.token, "k9", &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reserved}");
    let id = reserved["order"]["id"].as_i64().expect("id");
    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("dead");

    let (_child, app) = start_hawker(data.path(), &hold).await;
    let order = app
        .settled_order(&buyer.token, id, Duration::from_secs(20))
        .await;
    assert_eq!(order["status"], "paid", "{order}");
    let (_, sale) = app
        .get(None, &format!("/api/v1/flash-sales/{sale_id}"))
        .await;
    assert_eq!(sale["remaining"], 1, "one unit sold, one left");
}
