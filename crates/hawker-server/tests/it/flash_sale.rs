//! The transaction rule under a herd: never oversell, per-buyer limits hold, retries are safe.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_refused, spawn_app};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_herd_of_500_buyers_gets_exactly_50_units() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 80)]).await;
    let sale_id = app.start_sale(&show, 50, 2, 600).await;
    let buyers = app.buyers(500).await;

    // Every buyer tries twice at once (quantity 1, limit 2) with different keys; a third try
    // per buyer would break the limit.
    let mut attempts = Vec::new();
    for (i, b) in buyers.iter().enumerate() {
        for attempt in 0..3 {
            let (app, token, key) = (&app, b.token.clone(), format!("herd-{i}-{attempt}"));
            attempts.push(async move {
                let body = json!({ "show_id": show.show_id, "flash_sale_id": sale_id, "quantity": 1, "payment_method": "pm_card_visa" });
                (i, app.buy(&token, &key, body).await)
            });
        }
    }
    let results = futures_util::future::join_all(attempts).await;
    let mut paid_per_buyer = vec![0; buyers.len()];
    let mut order_ids = HashSet::new();
    for (i, (status, body)) in &results {
        match *status {
            StatusCode::CREATED => {
                assert_eq!(body["order"]["status"], "paid");
                assert_eq!(body["order"]["total_cents"], 1500);
                assert!(order_ids.insert(body["order"]["id"].as_i64().expect("id")));
                paid_per_buyer[*i] += 1;
            }
            StatusCode::CONFLICT => assert!(
                ["sold_out", "per_buyer_limit"]
                    .contains(&body["error"]["code"].as_str().unwrap_or("")),
                "{body}"
            ),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(order_ids.len(), 50, "exactly the 50 units are sold");
    assert!(
        paid_per_buyer.iter().all(|n| *n <= 2),
        "per-buyer limit holds"
    );
    assert_eq!(
        app.payments.successful_charges(),
        50,
        "one charge per order"
    );

    let (_, sale) = app
        .get(None, &format!("/api/v1/flash-sales/{sale_id}"))
        .await;
    assert_eq!(sale["remaining"], 0);
    let orders = app
        .every_page(
            &show.seller.token,
            &format!("/api/v1/seller/orders?show_id={}", show.show_id),
            "orders",
            200,
        )
        .await;
    let paid = orders.iter().filter(|o| o["status"] == "paid").count();
    assert_eq!(paid, 50);
    // The 30 units outside the sale were never touched.
    let (_, product) = app
        .get(None, &format!("/api/v1/products/{}", show.product_id))
        .await;
    assert_eq!(product["variants"][0]["stock"], 30);
}

/// A used key answers with its order when the same request comes back after the show has
/// ended; sent to another show's owner, which never saw it (it finds it among its turn's stored
/// keys), it is a different request and refused.
#[tokio::test]
async fn a_used_key_answers_after_the_show_ends_and_is_refused_in_another_show() {
    let app = spawn_app().await;
    let first = app.live_show(&[("Ruby", 2000, 10)]).await;
    let second = app.live_show(&[("Opal", 3000, 10)]).await;
    let buyer = app.signup("buyer").await;
    let buy = |show: &crate::helpers::LiveShow| json!({ "show_id": show.show_id, "variant_id": show.variant_ids[0], "quantity": 1, "payment_method": "pm_card_visa" });
    let (status, order) = app.buy(&buyer.token, "once", buy(&first)).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");

    let elsewhere = app.buy(&buyer.token, "once", buy(&second)).await;
    crate::helpers::assert_refused(
        &elsewhere,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    );

    let (status, _) = app
        .post(
            &first.seller.token,
            &format!("/api/v1/shows/{}/end", first.show_id),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, after) = app.buy(&buyer.token, "once", buy(&first)).await;
    assert_eq!((status, &after), (StatusCode::CREATED, &order));
    let (status, fresh) = app.buy(&buyer.token, "new", buy(&first)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{fresh}");
    assert_eq!(fresh["error"]["code"], "show_not_live");

    let (_, mine) = app.get(Some(&buyer.token), "/api/v1/orders").await;
    assert_eq!(mine["orders"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn the_same_idempotency_key_twice_makes_one_order_and_one_charge() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 10)]).await;
    let buyer = app.signup("buyer").await;
    let body = json!({ "show_id": show.show_id, "variant_id": show.variant_ids[0], "quantity": 2, "payment_method": "pm_card_visa" });
    let (s1, first) = app.buy(&buyer.token, "same-key", body.clone()).await;
    let (s2, second) = app.buy(&buyer.token, "same-key", body.clone()).await;
    assert_eq!(s1, StatusCode::CREATED, "{first}");
    assert_eq!(s2, StatusCode::CREATED);
    assert_eq!(first["order"]["id"], second["order"]["id"]);
    let (_, mine) = app.get(Some(&buyer.token), "/api/v1/orders").await;
    assert_eq!(mine["orders"].as_array().map(Vec::len), Some(1));
    assert_eq!(app.payments.successful_charges(), 1);
    let (_, product) = app
        .get(None, &format!("/api/v1/products/{}", show.product_id))
        .await;
    assert_eq!(product["variants"][0]["stock"], 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_retries_of_a_slow_payment_charge_once() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 10)]).await;
    let buyer = app.signup("buyer").await;
    let body = json!({ "show_id": show.show_id, "variant_id": show.variant_ids[0], "quantity": 1, "payment_method": "pm_card_slow" });
    let tries = (0..5).map(|_| app.buy(&buyer.token, "slow-key", body.clone()));
    let results = futures_util::future::join_all(tries).await;
    let ids: HashSet<_> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .map(|(_, b)| b["order"]["id"].as_i64())
        .collect();
    assert_eq!(ids.len(), 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|(s, _)| *s == StatusCode::CREATED || *s == StatusCode::ACCEPTED),
        "{results:?}"
    );
    assert_eq!(app.payments.successful_charges(), 1);
    let (_, product) = app
        .get(None, &format!("/api/v1/products/{}", show.product_id))
        .await;
    assert_eq!(product["variants"][0]["stock"], 9);
}

#[tokio::test]
async fn a_declined_card_returns_the_units_and_a_retry_repeats_the_answer() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 10)]).await;
    let sale_id = app.start_sale(&show, 3, 3, 600).await;
    let buyer = app.signup("buyer").await;
    let body = json!({ "show_id": show.show_id, "flash_sale_id": sale_id, "quantity": 3, "payment_method": "pm_card_declined" });
    let (status, err) = app.buy(&buyer.token, "k1", body.clone()).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(err["error"]["code"], "payment_declined");
    let (status, _) = app.buy(&buyer.token, "k1", body).await;
    assert_eq!(
        status,
        StatusCode::PAYMENT_REQUIRED,
        "the retry returns the first answer"
    );
    let (_, sale) = app
        .get(None, &format!("/api/v1/flash-sales/{sale_id}"))
        .await;
    assert_eq!(sale["remaining"], 3, "declined units are back");
    // The limit counts held units, so a declined buyer can still buy.
    let ok = json!({ "show_id": show.show_id, "flash_sale_id": sale_id, "quantity": 3, "payment_method": "pm_card_visa" });
    let (status, order) = app.buy(&buyer.token, "k2", ok).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = order["order"]["id"].as_i64().expect("id");
    let (_, stored) = app
        .get(Some(&buyer.token), &format!("/api/v1/orders/{id}"))
        .await;
    assert_eq!(stored, order, "the answer is the order as stored");
    assert_eq!(order["order"]["flash_sale_id"], sale_id);
}

#[tokio::test]
async fn codes_discount_and_count_uses() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2000, 10)]).await;
    let (status, body) = app
        .post(
            &show.seller.token,
            &format!("/api/v1/shows/{}/codes", show.show_id),
            json!({ "code": "live10", "percent_off": 10, "max_uses": 1 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["code"], "LIVE10");
    let (a, b) = (app.signup("buyer").await, app.signup("buyer").await);
    let buy = |code: &str| json!({ "show_id": show.show_id, "variant_id": show.variant_ids[0], "quantity": 2, "code": code, "payment_method": "pm_card_visa" });
    let (status, order) = app.buy(&a.token, "a1", buy("Live10")).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["order"]["total_cents"], 3600);
    assert_eq!(order["order"]["discount_cents"], 400);
    // The answer is the order as stored, field for field (it is built from the owner's decision,
    // not read back), and a retry of the key repeats it.
    let id = order["order"]["id"].as_i64().expect("id");
    let (_, stored) = app
        .get(Some(&a.token), &format!("/api/v1/orders/{id}"))
        .await;
    assert_eq!(stored, order);
    assert_eq!(order["order"]["code"], "LIVE10");
    let (_, again) = app.buy(&a.token, "a1", buy("Live10")).await;
    assert_eq!(again, order);
    let (status, err) = app.buy(&b.token, "b1", buy("LIVE10")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["error"]["code"], "code_exhausted");
}

#[tokio::test]
async fn the_commerce_log_records_every_change_in_order() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2000, 10)]).await;
    let sale_id = app.start_sale(&show, 4, 2, 600).await;
    let buyer = app.signup("buyer").await;
    let body = json!({ "show_id": show.show_id, "flash_sale_id": sale_id, "quantity": 1, "payment_method": "pm_card_visa" });
    assert_eq!(
        app.buy(&buyer.token, "k", body).await.0,
        StatusCode::CREATED
    );
    let (status, _) = app
        .post(
            &show.seller.token,
            &format!("/api/v1/flash-sales/{sale_id}/end"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .get(
            Some(&buyer.token),
            &format!("/api/v1/shows/{}/log", show.show_id),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the log names buyers: host only"
    );
    let (_, log) = app
        .get(
            Some(&show.seller.token),
            &format!("/api/v1/shows/{}/log", show.show_id),
        )
        .await;
    let kinds: Vec<&str> = log["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["event"]["event"].as_str())
        .collect();
    assert_eq!(kinds, ["sale_started", "reserved", "paid", "sale_ended"]);
    let (_, sale) = app
        .get(None, &format!("/api/v1/flash-sales/{sale_id}"))
        .await;
    assert_eq!(sale["status"], "ended");
    let (_, product) = app
        .get(None, &format!("/api/v1/products/{}", show.product_id))
        .await;
    assert_eq!(
        product["variants"][0]["stock"], 9,
        "the 3 unsold units went back to stock"
    );
}

#[tokio::test]
async fn catalog_price_and_stock_edits_are_logged_too() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let (product_id, variants) = app
        .product(&seller, &[("Ruby", 2000, 10), ("Berry", 2000, 4)])
        .await;
    let edit = json!({ "title": "Velvet lipstick", "currency": "USD", "variants": [{ "id": variants[0], "name": "Ruby", "price_cents": 1800, "stock": 12 }] });
    let (status, body) = app
        .request(
            reqwest::Method::PUT,
            Some(&seller.token),
            &format!("/api/v1/products/{product_id}"),
            Some(edit),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, log) = app
        .get(
            Some(&seller.token),
            &format!("/api/v1/products/{product_id}/log"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let events: Vec<_> = log["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["event"].clone())
        .collect();
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(events[0]["event"], "variant_set");
    assert_eq!(
        (
            events[2]["price_cents"].as_i64(),
            events[2]["stock"].as_i64()
        ),
        (Some(1800), Some(12))
    );
    assert_eq!(
        events[3],
        json!({ "event": "variant_unlisted", "product_id": product_id, "variant_id": variants[1] })
    );
    let other = app.signup("seller").await;
    let (status, _) = app
        .get(
            Some(&other.token),
            &format!("/api/v1/products/{product_id}/log"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// After a sell-out a retried key still gets its order, not "sold out", and the unit a declined
/// payment gives back is sold again.
#[tokio::test]
async fn after_a_sell_out_retries_get_their_order_and_returned_units_sell_again() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 3)]).await;
    let sale_id = app.start_sale(&show, 1, 1, 600).await;
    let [winner, declined, late] = <[_; 3]>::try_from(app.buyers(3).await).expect("3 buyers");
    let sale = json!({ "show_id": show.show_id, "flash_sale_id": sale_id, "quantity": 1, "payment_method": "pm_card_visa" });
    let variant = |method: &str| json!({ "show_id": show.show_id, "variant_id": show.variant_ids[0], "quantity": 1, "payment_method": method });

    let (status, order) = app.buy(&winner.token, "w-sale", sale.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let refused = app.buy(&late.token, "l-sale", sale.clone()).await;
    assert_refused(&refused, StatusCode::CONFLICT, "sold_out");
    let (status, again) = app.buy(&winner.token, "w-sale", sale.clone()).await;
    assert_eq!((status, &again), (StatusCode::CREATED, &order));

    // Two units outside the sale; the last is held by a buy whose card is declined, then given
    // back.
    let (status, body) = app
        .buy(&winner.token, "w-var", variant("pm_card_visa"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = app
        .buy(&declined.token, "d-var", variant("pm_card_declined"))
        .await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
    let (status, last) = app.buy(&late.token, "l-var", variant("pm_card_visa")).await;
    assert_eq!(status, StatusCode::CREATED, "{last}");
    let refused = app
        .buy(&declined.token, "d-var-2", variant("pm_card_visa"))
        .await;
    assert_refused(&refused, StatusCode::CONFLICT, "sold_out");
    let (status, again) = app.buy(&late.token, "l-var", variant("pm_card_visa")).await;
    assert_eq!((status, &again), (StatusCode::CREATED, &last));
    assert_eq!(app.payments.successful_charges(), 3);
}
