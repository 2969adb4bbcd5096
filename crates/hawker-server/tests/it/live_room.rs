//! The live room over real WebSockets: snapshots, fan-out, host actions, moderation, lag.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn a_late_joiner_gets_pinned_product_running_sale_and_recent_chat() {
    let app = spawn_app().await;
    let show = app
        .live_show(&[("Ruby", 2400, 20), ("Berry", 2600, 5)])
        .await;
    let sale_id = app.start_sale(&show, 10, 2, 600).await;
    let (status, _) = app
        .post(
            &show.seller.token,
            &format!("/api/v1/shows/{}/pin", show.show_id),
            json!({ "product_id": show.product_id }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let early = app.signup("buyer").await;
    let mut first = app.connect_live(show.show_id, Some(&early.token)).await;
    first.until("snapshot", |_| true).await;
    first
        .send(json!({ "type": "chat", "text": "is Ruby long-wear?" }))
        .await;
    first
        .until("chat", |m| m["text"] == "is Ruby long-wear?")
        .await;
    let buyer = app.signup("buyer").await;
    let body = json!({ "show_id": show.show_id, "flash_sale_id": sale_id, "quantity": 2, "payment_method": "pm_card_visa" });
    assert_eq!(
        app.buy(&buyer.token, "k", body).await.0,
        StatusCode::CREATED
    );
    first.until("sale_left", |m| m["remaining"] == 8).await;

    let mut late = app.connect_live(show.show_id, None).await;
    let snap = late.next().await;
    assert_eq!(snap["type"], "snapshot");
    assert_eq!(snap["v"], 1);
    assert_eq!(snap["live"], true);
    assert_eq!(snap["pinned"]["product_id"], show.product_id);
    assert_eq!(snap["pinned"]["variants"].as_array().map(Vec::len), Some(2));
    assert_eq!(snap["sales"][0]["id"], sale_id);
    assert_eq!(snap["sales"][0]["remaining"], 8);
    assert!(
        snap["sales"][0]["ends_at"].as_i64().unwrap_or(0)
            > snap["now"].as_i64().unwrap_or(i64::MAX)
    );
    assert_eq!(snap["chat"][0]["text"], "is Ruby long-wear?");
    assert!(
        snap["host_stats"].is_null(),
        "viewers do not see the host's revenue"
    );

    let mut host = app
        .connect_live(show.show_id, Some(&show.seller.token))
        .await;
    let snap = host.next().await;
    assert_eq!(snap["host_stats"]["orders"], 1);
    assert_eq!(snap["host_stats"]["revenue_cents"], 3000);
}

#[tokio::test]
async fn host_actions_reach_every_viewer() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 20)]).await;
    let mut viewers = Vec::new();
    for _ in 0..2 {
        let mut v = app.connect_live(show.show_id, None).await;
        v.until("snapshot", |_| true).await;
        viewers.push(v);
    }
    app.post(
        &show.seller.token,
        &format!("/api/v1/shows/{}/pin", show.show_id),
        json!({ "product_id": show.product_id }),
    )
    .await;
    let sale_id = app.start_sale(&show, 5, 1, 600).await;
    let (status, _) = app
        .post(
            &show.seller.token,
            &format!("/api/v1/shows/{}/codes", show.show_id),
            json!({ "code": "VIP5", "amount_off_cents": 500, "max_uses": 10 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    for v in &mut viewers {
        let pinned = v.until("pinned", |_| true).await;
        assert_eq!(pinned["product"]["title"], "Velvet lipstick");
        let sale = v.until("sale", |_| true).await;
        assert_eq!(sale["id"], sale_id);
        assert_eq!(sale["remaining"], 5);
        let code = v.until("code", |_| true).await;
        assert_eq!(code["code"], "VIP5");
    }
    app.post(
        &show.seller.token,
        &format!("/api/v1/flash-sales/{sale_id}/end"),
        json!({}),
    )
    .await;
    for v in &mut viewers {
        v.until("sale_ended", |m| m["id"] == sale_id).await;
    }
    let (status, _) = app
        .post(
            &show.seller.token,
            &format!("/api/v1/shows/{}/end", show.show_id),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for v in &mut viewers {
        v.until("show_ended", |_| true).await;
    }
}

/// A sell-out pays many orders within a second; viewers get a few `purchase` messages that
/// account for every buyer, not one message (and one chat line) per order.
#[tokio::test]
async fn a_sell_out_announces_every_buyer_in_a_few_messages() {
    const UNITS: usize = 30;
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 100)]).await;
    let buyers = app.buyers(UNITS).await;
    let mut viewer = app.connect_live(show.show_id, None).await;
    viewer.until("snapshot", |_| true).await;
    let sale_id = app.start_sale(&show, UNITS as i64, 1, 600).await;
    let body = json!({ "show_id": show.show_id, "flash_sale_id": sale_id, "quantity": 1, "payment_method": "pm_card_visa" });
    let answers = futures_util::future::join_all(buyers.iter().map(|b| {
        let (app, body) = (&app, body.clone());
        async move { app.buy(&b.token, &format!("k{}", b.id), body).await }
    }))
    .await;
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::CREATED, "{body}");
    }

    let (mut messages, mut buyers_announced, mut units_announced) = (0, 0, 0);
    while buyers_announced < UNITS {
        let m = viewer.until("purchase", |_| true).await;
        assert_eq!(m["product_title"], "Velvet lipstick");
        messages += 1;
        buyers_announced += 1 + m["others"].as_u64().expect("others") as usize;
        units_announced += m["quantity"].as_u64().expect("quantity") as usize;
    }
    assert_eq!(buyers_announced, UNITS, "every buyer is announced once");
    assert_eq!(units_announced, UNITS);
    // One announcement a second at most, and these buys take well under a second each.
    assert!(
        messages <= 5,
        "{messages} purchase messages for {UNITS} orders: they were not gathered"
    );
}

#[tokio::test]
async fn hearts_are_aggregated_and_viewers_counted() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 20)]).await;
    let mut a = app.connect_live(show.show_id, None).await;
    a.until("snapshot", |_| true).await;
    // A signed-in viewer on the same machine: another person, unlike another anonymous tab.
    let fan = app.signup("buyer").await;
    let mut b = app.connect_live(show.show_id, Some(&fan.token)).await;
    b.until("snapshot", |_| true).await;
    a.until("viewers", |m| m["count"] == 2).await;
    for _ in 0..10 {
        b.send(json!({ "type": "hearts", "count": 5 })).await;
    }
    b.send(json!({ "type": "hearts", "count": 1_000_000 }))
        .await;
    let total = a.until("hearts", |m| m["total"] == 100).await;
    assert!(total["count"].as_u64().unwrap_or(0) >= 1);
}

#[tokio::test]
async fn moderators_delete_messages_and_mute_users() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 20)]).await;
    let troll = app.signup("buyer").await;
    let mut troll_ws = app.connect_live(show.show_id, Some(&troll.token)).await;
    troll_ws.until("snapshot", |_| true).await;
    let mut host_ws = app
        .connect_live(show.show_id, Some(&show.seller.token))
        .await;
    host_ws.until("snapshot", |_| true).await;

    troll_ws
        .send(json!({ "type": "chat", "text": "rude" }))
        .await;
    let line = host_ws.until("chat", |m| m["text"] == "rude").await;
    let msg_id = line["id"].as_u64().expect("id");
    let buyer = app.signup("buyer").await;
    let (status, _) = app
        .request(
            reqwest::Method::DELETE,
            Some(&buyer.token),
            &format!("/api/v1/shows/{}/chat/{msg_id}", show.show_id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "buyers cannot moderate");
    let (status, _) = app
        .request(
            reqwest::Method::DELETE,
            Some(&show.seller.token),
            &format!("/api/v1/shows/{}/chat/{msg_id}", show.show_id),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    host_ws.until("chat_deleted", |m| m["id"] == msg_id).await;

    let (status, _) = app
        .post(
            &show.seller.token,
            &format!("/api/v1/shows/{}/mutes", show.show_id),
            json!({ "user_id": troll.id }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    troll_ws
        .send(json!({ "type": "chat", "text": "still here" }))
        .await;
    let err = troll_ws.until("error", |_| true).await;
    assert_eq!(err["code"], "muted");

    // The seller's blocked words apply at once.
    let (status, _) = app
        .request(
            reqwest::Method::PUT,
            Some(&show.seller.token),
            "/api/v1/me/blocked-words",
            Some(json!({ "words": ["counterfeit"] })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut other = app.connect_live(show.show_id, Some(&buyer.token)).await;
    other.until("snapshot", |_| true).await;
    other
        .send(json!({ "type": "chat", "text": "is this Counterfeit?" }))
        .await;
    assert_eq!(other.until("error", |_| true).await["code"], "blocked_word");
}

/// A viewer that stops reading falls behind; when it reads again it gets a fresh snapshot, not a
/// closed socket, and the snapshot has the latest state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_socket_gets_a_fresh_snapshot_and_holds_up_nobody() {
    let app = spawn_app_with(|c| c.viewer_buffer = 4).await;
    // A product with 100 variants of long names makes every pin message about 10 KB.
    let seller = app.signup("seller").await;
    let long = "a long shade name that keeps going to make each message heavy, number";
    let variants: Vec<(String, i64, i64)> = (0..100)
        .map(|i| (format!("{long} {i}"), 1000 + i, 5))
        .collect();
    let variants: Vec<(&str, i64, i64)> = variants
        .iter()
        .map(|(n, p, s)| (n.as_str(), *p, *s))
        .collect();
    let (product_id, _) = app.product(&seller, &variants).await;
    let (_, body) = app
        .post(
            &seller.token,
            "/api/v1/shows",
            json!({ "title": "Lag", "category": "beauty", "product_ids": [product_id] }),
        )
        .await;
    let show_id = body["id"].as_i64().expect("id");
    app.post(
        &seller.token,
        &format!("/api/v1/shows/{show_id}/start"),
        json!({}),
    )
    .await;

    let mut slow = app.connect_live_slow(show_id).await;
    assert_eq!(slow.next().await["type"], "snapshot");
    // A viewer reading all along: it must reach the final state while the slow one still has
    // not read a byte, so the slow socket holds up neither the host nor the others.
    let mut fast = app.connect_live(show_id, None).await;
    assert_eq!(fast.next().await["type"], "snapshot");
    // (sequence number, pinned product) as the fast viewer last saw them.
    let (fast_state_tx, mut fast_state) = tokio::sync::watch::channel((0i64, Value::Bool(false)));
    let reader = tokio::spawn(async move {
        loop {
            let m = fast.next().await;
            let seq = m["seq"].as_i64().unwrap_or(0);
            match m["type"].as_str() {
                Some("pinned") => fast_state_tx.send_modify(|s| *s = (seq, m["product"].clone())),
                Some("snapshot") => fast_state_tx.send_modify(|s| *s = (seq, m["pinned"].clone())),
                _ => fast_state_tx.send_modify(|s| s.0 = seq),
            }
        }
    });
    // Stop reading while the host pins and unpins 1000 times (about 7 MB of messages).
    for i in 0..1000 {
        let product = if i % 2 == 0 {
            json!(product_id)
        } else {
            json!(null)
        };
        let (status, _) = app
            .post(
                &seller.token,
                &format!("/api/v1/shows/{show_id}/pin"),
                json!({ "product_id": product }),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    // A newcomer's snapshot carries the room's latest sequence number.
    let mut newcomer = app.connect_live(show_id, None).await;
    let now = newcomer.until("snapshot", |_| true).await;
    let last_seq = now["seq"].as_i64().expect("seq");
    assert!(now["pinned"].is_null());
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        fast_state.wait_for(|(seq, pinned)| *seq >= last_seq && pinned.is_null()),
    )
    .await
    .expect("the fast viewer reached the final state while the slow one was not reading")
    .expect("reader alive");
    reader.abort();
    // The last state is "unpinned". Reading again, the socket must deliver a fresh snapshot.
    let snap = slow.until("snapshot", |_| true).await;
    assert_eq!(snap["live"], true);
    let mut last_pinned = snap["pinned"].clone();
    // Drain to the end of the sequence: the final state is unpinned.
    while let Ok(m) = tokio::time::timeout(std::time::Duration::from_millis(500), slow.next()).await
    {
        if m["type"] == "pinned" {
            last_pinned = m["product"].clone();
        } else if m["type"] == "snapshot" {
            last_pinned = m["pinned"].clone();
        }
    }
    assert!(
        last_pinned.is_null(),
        "the socket caught up with the final state"
    );
}
