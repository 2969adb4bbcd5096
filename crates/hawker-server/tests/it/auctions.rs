//! Live auctions end to end: a herd in the final second, the verifiable log, policy refusals,
//! and recovery after `kill -9`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Account, LiveShow, TestApp, assert_refused, spawn_app, spawn_app_on_manual_clock,
};

pub async fn start_auction(app: &TestApp, show: &LiveShow, body: Value) -> (i64, i64) {
    let (status, answer) = app
        .post(
            &show.seller.token,
            &format!("/api/v1/shows/{}/auctions", show.show_id),
            body,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    (
        answer["id"].as_i64().expect("id"),
        answer["ends_at"].as_i64().expect("ends_at"),
    )
}

pub async fn bidder(app: &TestApp) -> Account {
    let b = app.signup("buyer").await;
    let (status, _) = app
        .post(
            &b.token,
            "/api/v1/payment-methods",
            json!({ "method": "pm_card_visa" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    b
}

pub async fn wait_ended(app: &TestApp, id: i64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, a) = app.get(None, &format!("/api/v1/auctions/{id}")).await;
        if a["status"] == "ended" {
            return a;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the auction ends: {a}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the holder of `token` has a paid order for auction `id`, and returns it.
pub async fn wait_paid(app: &TestApp, token: &str, id: i64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, orders) = app.get(Some(token), "/api/v1/orders").await;
        let paid = orders["orders"].as_array().and_then(|o| {
            o.iter()
                .find(|o| o["auction_id"] == id && o["status"] == "paid")
                .cloned()
        });
        if let Some(order) = paid {
            return order;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a paid order for auction {id}: {orders}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `hawker verify-auction` on a log (an array of entries); returns (success, stdout +
/// stderr).
fn verify_cli(log: &Value) -> (bool, String) {
    verify_file(&log.to_string())
}

/// Runs `hawker verify-auction` on a file holding `text`; returns (success, stdout + stderr).
pub fn verify_file(text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("log.json");
    std::fs::write(&path, text).expect("written");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hawker"))
        .arg("verify-auction")
        .arg(&path)
        .output()
        .expect("runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_bidders_in_the_final_second_make_one_winner_who_is_charged() {
    let app = spawn_app_on_manual_clock(|_| {}).await;
    let show = app.live_show(&[("Sealed box", 10_000, 3)]).await;
    let mut bidders = Vec::new();
    for chunk in 0..4 {
        let batch = futures_util::future::join_all((0..50).map(|_| bidder(&app))).await;
        bidders.extend(batch);
        let _ = chunk;
    }
    let (id, ends_at) = start_auction(&app, &show, json!({ "variant_id": show.variant_ids[0], "start_cents": 1_000, "duration_s": 5, "mode": "sudden_death" })).await;
    let mut viewer = app.connect_live(show.show_id, None).await;
    let snap = viewer.next().await;
    assert_eq!(snap["auctions"][0]["id"], id);

    // An opening bid, so the lot is sold even if a loaded machine delivers the herd late.
    let (status, _) = app
        .post(
            &bidders[0].token,
            &format!("/api/v1/auctions/{id}/bids"),
            json!({ "amount_cents": 1_000 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    // Everybody bids in the last second: every amount distinct, some as maxima.
    app.advance(ends_at - app.clock.now().0 - 1_000);
    let bids = bidders.iter().enumerate().map(|(i, b)| {
        let app = &app;
        let (path, body) = if i % 4 == 0 {
            (
                format!("/api/v1/auctions/{id}/max-bid"),
                json!({ "max_cents": 1_000 + i as i64 * 150 }),
            )
        } else {
            (
                format!("/api/v1/auctions/{id}/bids"),
                json!({ "amount_cents": 1_000 + i as i64 * 100 }),
            )
        };
        async move { app.post(&b.token, &path, body).await }
    });
    let answers = futures_util::future::join_all(bids).await;
    app.advance(1_000);
    for (status, body) in &answers {
        assert!(
            *status == StatusCode::CREATED
                || [
                    "bid_too_low",
                    "auction_closed",
                    "already_winning",
                    "max_not_higher"
                ]
                .contains(&body["error"]["code"].as_str().unwrap_or("")),
            "{status} {body}"
        );
    }

    let ended = wait_ended(&app, id).await;
    let winner = ended["winner"].as_str().expect("a winner").to_owned();
    let price = ended["price_cents"].as_i64().expect("price");
    viewer
        .until("auction", |m| m["status"] == "ended" && m["paid"] == true)
        .await;

    // Exactly one order for the lot, paid, at the winning price; one unit left the stock.
    let (_, orders) = app
        .get(
            Some(&show.seller.token),
            &format!("/api/v1/seller/orders?show_id={}", show.show_id),
        )
        .await;
    let won: Vec<&Value> = orders["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .filter(|o| o["auction_id"] == id)
        .collect();
    assert_eq!(won.len(), 1, "{orders}");
    assert_eq!(
        (won[0]["status"].as_str(), won[0]["total_cents"].as_i64()),
        (Some("paid"), Some(price))
    );
    assert_eq!(app.payments.successful_charges(), 1);
    let (_, product) = app
        .get(None, &format!("/api/v1/products/{}", show.product_id))
        .await;
    assert_eq!(product["variants"][0]["stock"], 2);

    // The public log verifies and names the same winner, in pseudonyms only.
    let log = app.auction_log(id).await;
    let entries = log.as_array().expect("entries");
    assert!(entries.len() >= 200, "every bid is logged, accepted or not");
    assert!(
        !log.to_string().contains("@test.dev"),
        "no e-mails in the public log"
    );
    let (ok, out) = verify_cli(&log);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("winner {winner} at {price} cents")),
        "{out}"
    );
    // The published final hash is the log's last one (the charge entry came after the end).
    let (_, now) = app.get(None, &format!("/api/v1/auctions/{id}")).await;
    assert_eq!(now["final_hash"], entries.last().expect("last")["hash"]);
    assert!(ended["final_hash"].is_string());
}

#[tokio::test]
async fn a_tampered_log_is_rejected_at_the_tampered_entry() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Card", 5_000, 2)]).await;
    let (a, b) = (bidder(&app).await, bidder(&app).await);
    let (id, _) = start_auction(&app, &show, json!({ "variant_id": show.variant_ids[0], "start_cents": 500, "duration_s": 5, "mode": "standard", "extend_s": 2 })).await;
    for (who, amount) in [(&a, 500), (&b, 700), (&a, 900)] {
        let (status, body) = app
            .post(
                &who.token,
                &format!("/api/v1/auctions/{id}/bids"),
                json!({ "amount_cents": amount }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    wait_ended(&app, id).await;
    let log = app.auction_log(id).await;
    assert!(verify_cli(&log).0);

    // Lower the winning bid without fixing the hashes: the chain breaks at that entry (4th).
    let mut forged = log.clone();
    let body = forged[3]["body"]
        .as_str()
        .expect("body")
        .replace("\"amount_cents\":900", "\"amount_cents\":800");
    forged[3]["body"] = json!(body);
    let (ok, out) = verify_cli(&forged);
    assert!(!ok);
    assert!(
        out.contains("entry 4 (seq 4)") && out.contains("hash"),
        "{out}"
    );

    // Re-chain every hash after the forgery: the chain holds, but the rules catch the lie.
    let mut prev = "0".repeat(64);
    for e in forged.as_array_mut().expect("entries") {
        e["prev_hash"] = json!(prev);
        let mut h = <sha2::Sha256 as sha2::Digest>::new();
        sha2::Digest::update(&mut h, prev.as_bytes());
        sha2::Digest::update(&mut h, e["body"].as_str().expect("body").as_bytes());
        prev = hex::encode(sha2::Digest::finalize(h));
        e["hash"] = json!(prev);
    }
    let (ok, out) = verify_cli(&forged);
    assert!(!ok);
    assert!(
        out.contains("entry 4 (seq 4)") && out.contains("rules"),
        "{out}"
    );
}

#[tokio::test]
async fn shill_and_cross_show_bids_are_refused_and_logged() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Card", 5_000, 2)]).await;
    let other = app.live_show(&[("Other", 5_000, 2)]).await;
    let buyer = bidder(&app).await;
    let (id, _) = start_auction(&app, &show, json!({ "variant_id": show.variant_ids[0], "start_cents": 500, "duration_s": 60, "mode": "standard" })).await;

    let (status, body) = app
        .post(
            &show.seller.token,
            &format!("/api/v1/auctions/{id}/bids"),
            json!({ "amount_cents": 500 }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("shill_bid"))
    );
    let (status, body) = app
        .post(
            &buyer.token,
            &format!("/api/v1/auctions/{id}/bids"),
            json!({ "amount_cents": 500, "show_id": other.show_id }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("wrong_show"))
    );
    // A bid over the other show's socket never reaches this auction.
    let mut ws = app.connect_live(other.show_id, Some(&buyer.token)).await;
    ws.until("snapshot", |_| true).await;
    ws.send(json!({ "type": "bid", "auction_id": id, "amount_cents": 500 }))
        .await;
    assert_eq!(ws.until("error", |_| true).await["code"], "wrong_show");

    let (status, body) = app
        .post(
            &buyer.token,
            &format!("/api/v1/auctions/{id}/bids"),
            json!({ "amount_cents": 400 }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("bid_too_low"))
    );
    let (status, body) = app
        .post(
            &buyer.token,
            &format!("/api/v1/auctions/{id}/bids"),
            json!({ "amount_cents": 500 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["price_cents"], 500);
    let (status, body) = app
        .post(
            &buyer.token,
            &format!("/api/v1/auctions/{id}/bids"),
            json!({ "amount_cents": 600 }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_winning"))
    );

    let log = app.auction_log(id).await;
    let reasons: Vec<String> = log
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e["body"].as_str()?).ok())
        .filter(|b| b["type"] == "bid")
        .map(|b| {
            b["result"]["code"]
                .as_str()
                .or(b["result"]["reason"].as_str())
                .or(b["result"]["outcome"].as_str())
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert_eq!(
        reasons,
        [
            "shill_bid",
            "wrong_show",
            "bid_too_low",
            "accepted",
            "already_winning"
        ]
    );
    // A second auction cannot start while this one runs.
    let (status, body) = app
        .post(
            &show.seller.token,
            &format!("/api/v1/shows/{}/auctions", show.show_id),
            json!({ "variant_id": show.variant_ids[0], "start_cents": 500, "mode": "standard" }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("auction_running"))
    );
}

#[tokio::test]
async fn proxy_bids_over_the_live_socket_keep_the_leader_ahead() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Card", 5_000, 2)]).await;
    let (a, b) = (bidder(&app).await, bidder(&app).await);
    let (id, _) = start_auction(&app, &show, json!({ "variant_id": show.variant_ids[0], "start_cents": 1_000, "duration_s": 60, "mode": "standard" })).await;
    let (status, _) = app
        .post(
            &a.token,
            &format!("/api/v1/auctions/{id}/max-bid"),
            json!({ "max_cents": 5_000 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let mut ws = app.connect_live(show.show_id, Some(&b.token)).await;
    ws.until("snapshot", |_| true).await;
    ws.send(json!({ "type": "bid", "auction_id": id, "amount_cents": 2_000 }))
        .await;
    // A's maximum answers B's $20 with $21 and stays ahead.
    let view = ws.until("auction", |m| m["price_cents"] == 2_100).await;
    assert_eq!(view["you_lead"], false, "B is told A leads: {view}");
    assert_eq!(view["next_bids"][0], 2_200);
    ws.send(json!({ "type": "bid", "auction_id": id, "amount_cents": 6_000 }))
        .await;
    let view = ws.until("auction", |m| m["you_lead"] == true).await;
    assert_eq!(view["price_cents"], 6_000);
}

/// `kill -9` mid-auction: after the restart the auction resumes from its log with the same
/// leader and deadline, and one whose deadline passed meanwhile ends with its winner charged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auction_survives_kill_9() {
    let data = tempfile::tempdir().expect("dir");
    let (mut child, app) = crate::crash::start_hawker(data.path(), &[]).await;
    let show = app.live_show(&[("Card", 5_000, 2)]).await;
    let (a, b) = (bidder(&app).await, bidder(&app).await);
    let (id, ends_at) = start_auction(&app, &show, json!({ "variant_id": show.variant_ids[0], "start_cents": 1_000, "duration_s": 8, "mode": "sudden_death" })).await;
    app.post(
        &a.token,
        &format!("/api/v1/auctions/{id}/max-bid"),
        json!({ "max_cents": 3_000 }),
    )
    .await;
    let (status, _) = app
        .post(
            &b.token,
            &format!("/api/v1/auctions/{id}/bids"),
            json!({ "amount_cents": 1_500 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, before) = app.get(None, &format!("/api/v1/auctions/{id}")).await;
    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("dead");

    // Restart before the deadline: same leader, same deadline, and bidding goes on.
    let (mut child, app) = crate::crash::start_hawker(data.path(), &[]).await;
    let (_, after) = app.get(None, &format!("/api/v1/auctions/{id}")).await;
    assert_eq!(
        (
            &after["leader"],
            &after["price_cents"],
            after["ends_at"].as_i64()
        ),
        (&before["leader"], &before["price_cents"], Some(ends_at))
    );
    assert_eq!(after["status"], "running");
    let (status, body) = app
        .post(
            &b.token,
            &format!("/api/v1/auctions/{id}/bids"),
            json!({ "amount_cents": 3_500 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("dead");

    // Down past the deadline: the restarted server ends it with the leader as winner.
    let (mut child, app) = crate::crash::start_hawker_ahead(data.path(), &[], 10).await;
    let ended = wait_ended(&app, id).await;
    assert_eq!(
        (ended["winner"].as_str(), ended["price_cents"].as_i64()),
        (body["leader"].as_str(), Some(3_500))
    );
    let log = app.auction_log(id).await;
    let (ok, out) = verify_cli(&log);
    assert!(ok, "{out}");
    wait_paid(&app, &b.token, id).await;
    let auctions_in_room = |snap: &Value| {
        snap["auctions"]
            .as_array()
            .map(|a| a.iter().filter(|x| x["id"] == id).count())
    };
    let snap = app.connect_live(show.show_id, None).await.next().await;
    assert_eq!(auctions_in_room(&snap), Some(1), "just ended: {snap}");
    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("dead");

    // Settled and more than ten minutes past its end, a restarted owner leaves it to the store:
    // the room has no word of it, a late bid is refused, and its page and log still tell it.
    let (_child, app) = crate::crash::start_hawker_ahead(data.path(), &[], 10 + 11 * 60).await;
    let snap = app.connect_live(show.show_id, None).await.next().await;
    assert_eq!(auctions_in_room(&snap), Some(0), "long ended: {snap}");
    let late = app
        .post(
            &a.token,
            &format!("/api/v1/auctions/{id}/bids"),
            json!({ "amount_cents": 9_000 }),
        )
        .await;
    assert_refused(&late, StatusCode::CONFLICT, "auction_closed");
    let (_, page) = app.get(None, &format!("/api/v1/auctions/{id}")).await;
    assert_eq!(
        (page["status"].as_str(), page["price_cents"].as_i64()),
        (Some("ended"), Some(3_500))
    );
    assert!(verify_cli(&app.auction_log(id).await).0);
}

#[tokio::test]
async fn pre_bids_join_the_auction_when_it_starts() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Card", 5_000, 2)]).await;
    let (a, b) = (bidder(&app).await, bidder(&app).await);
    let pre = |max: i64| json!({ "variant_id": show.variant_ids[0], "max_cents": max });
    let (status, body) = app
        .post(
            &show.seller.token,
            &format!("/api/v1/shows/{}/pre-bids", show.show_id),
            pre(9_000),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("shill_bid"))
    );
    assert_eq!(
        app.post(
            &a.token,
            &format!("/api/v1/shows/{}/pre-bids", show.show_id),
            pre(3_000)
        )
        .await
        .0,
        StatusCode::CREATED
    );
    assert_eq!(
        app.post(
            &b.token,
            &format!("/api/v1/shows/{}/pre-bids", show.show_id),
            pre(2_000)
        )
        .await
        .0,
        StatusCode::CREATED
    );

    let (id, _) = start_auction(&app, &show, json!({ "variant_id": show.variant_ids[0], "start_cents": 1_000, "duration_s": 30, "mode": "standard" })).await;
    let (_, auction) = app.get(None, &format!("/api/v1/auctions/{id}")).await;
    // A's $30 maximum meets B's $20: A leads at $20 + one $1 step.
    assert_eq!(auction["price_cents"], 2_100);
    let log = app.auction_log(id).await;
    let bodies: Vec<Value> = log
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| serde_json::from_str(e["body"].as_str()?).ok())
        .collect();
    assert_eq!(
        bodies
            .iter()
            .filter(|b| b["type"] == "bid" && b["kind"] == "max")
            .count(),
        2
    );
    assert_eq!(
        auction["leader"], bodies[1]["bidder"],
        "the earlier pre-bid leads"
    );
    // B, outbid before the auction even started, can bid live.
    let (status, body) = app
        .post(
            &b.token,
            &format!("/api/v1/auctions/{id}/bids"),
            json!({ "amount_cents": 3_500 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["price_cents"], 3_500);
}

#[tokio::test]
async fn a_declined_winner_lets_the_host_offer_a_second_chance() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Card", 5_000, 2)]).await;
    let deadbeat = app.signup("buyer").await;
    app.post(
        &deadbeat.token,
        "/api/v1/payment-methods",
        json!({ "method": "pm_card_declined" }),
    )
    .await;
    let runner_up = bidder(&app).await;
    let (id, _) = start_auction(&app, &show, json!({ "variant_id": show.variant_ids[0], "start_cents": 1_000, "duration_s": 5, "mode": "sudden_death" })).await;
    app.post(
        &runner_up.token,
        &format!("/api/v1/auctions/{id}/bids"),
        json!({ "amount_cents": 2_000 }),
    )
    .await;
    let (status, _) = app
        .post(
            &deadbeat.token,
            &format!("/api/v1/auctions/{id}/max-bid"),
            json!({ "max_cents": 4_000 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let ended = wait_ended(&app, id).await;
    assert_eq!(ended["price_cents"], 2_100);

    // Wait for the failed charge, then offer the lot to the runner-up at their highest bid.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = app
            .post(
                &show.seller.token,
                &format!("/api/v1/auctions/{id}/second-chance"),
                json!({}),
            )
            .await;
        if status == StatusCode::CREATED {
            assert_eq!(body["price_cents"], 2_000);
            break;
        }
        assert_eq!(body["error"]["code"], "no_second_chance");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the winner's charge fails"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let order = wait_paid(&app, &runner_up.token, id).await;
    assert_eq!(order["total_cents"], 2_000);
    let (status, body) = app
        .post(
            &show.seller.token,
            &format!("/api/v1/auctions/{id}/second-chance"),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("no_second_chance"))
    );
    let log = app.auction_log(id).await;
    let (ok, out) = verify_cli(&log);
    assert!(ok, "{out}");
    let charges: Vec<bool> = log
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e["body"].as_str()?).ok())
        .filter(|b| b["type"] == "charge")
        .map(|b| b["paid"] == true)
        .collect();
    assert_eq!(charges, [false, true]);
    let (_, product) = app
        .get(None, &format!("/api/v1/products/{}", show.product_id))
        .await;
    assert_eq!(product["variants"][0]["stock"], 1, "one unit sold, no more");
}

#[tokio::test]
async fn a_buyers_daily_spending_limit_is_enforced_at_bid_time() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Card", 5_000, 2)]).await;
    let careful = bidder(&app).await;
    let (status, _) = app
        .request(
            reqwest::Method::PUT,
            Some(&careful.token),
            "/api/v1/me/spending-limit",
            Some(json!({ "daily_limit_cents": 1_500 })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (id, _) = start_auction(&app, &show, json!({ "variant_id": show.variant_ids[0], "start_cents": 1_000, "duration_s": 60, "mode": "standard" })).await;
    let (status, body) = app
        .post(
            &careful.token,
            &format!("/api/v1/auctions/{id}/bids"),
            json!({ "amount_cents": 2_000 }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("spending_limit"))
    );
    let (status, body) = app
        .post(
            &careful.token,
            &format!("/api/v1/auctions/{id}/bids"),
            json!({ "amount_cents": 1_000 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let log = app.auction_log(id).await;
    assert!(
        log.to_string().contains("spending_limit"),
        "the refusal is in the log"
    );
    // A pre-bid beyond the limit is refused when it is placed.
    let (status, body) = app
        .post(
            &careful.token,
            &format!("/api/v1/shows/{}/pre-bids", show.show_id),
            json!({ "variant_id": show.variant_ids[0], "max_cents": 9_000 }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("spending_limit"))
    );
    let (status, _) = app
        .request(
            reqwest::Method::PUT,
            Some(&careful.token),
            "/api/v1/me/spending-limit",
            Some(json!({ "daily_limit_cents": null })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn ending_the_show_lets_a_running_auction_finish() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Card", 5_000, 2)]).await;
    let buyer = bidder(&app).await;
    let (id, _) = start_auction(&app, &show, json!({ "variant_id": show.variant_ids[0], "start_cents": 1_000, "duration_s": 5, "mode": "sudden_death" })).await;
    app.post(
        &buyer.token,
        &format!("/api/v1/auctions/{id}/bids"),
        json!({ "amount_cents": 1_000 }),
    )
    .await;
    let (status, _) = app
        .post(
            &show.seller.token,
            &format!("/api/v1/shows/{}/end", show.show_id),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let ended = wait_ended(&app, id).await;
    assert_eq!(ended["price_cents"], 1_000);
    wait_paid(&app, &buyer.token, id).await;
}

#[tokio::test]
async fn nonsense_bid_amounts_are_refused_and_the_winner_is_charged_once() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Card", 5_000, 2)]).await;
    let buyer = bidder(&app).await;
    let (id, _) = start_auction(&app, &show, json!({ "variant_id": show.variant_ids[0], "start_cents": 1_000, "duration_s": 5, "mode": "sudden_death" })).await;
    let mut ws = app.connect_live(show.show_id, Some(&buyer.token)).await;
    ws.until("snapshot", |_| true).await;
    ws.send(json!({ "type": "bid", "auction_id": id, "amount_cents": i64::MAX }))
        .await;
    assert_eq!(ws.until("error", |_| true).await["code"], "invalid_amount");
    app.post(
        &buyer.token,
        &format!("/api/v1/auctions/{id}/bids"),
        json!({ "amount_cents": 1_000 }),
    )
    .await;
    wait_ended(&app, id).await;
    wait_paid(&app, &buyer.token, id).await;
    assert_eq!(app.payments.successful_charges(), 1);
}
