//! After the show: the seller ships with a tracking number or cancels and refunds.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_seller_ships_one_order_and_refunds_another() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 10)]).await;
    let buyer = app.signup("buyer").await;
    // Another buyer's order: a separate parcel, so shipping one leaves the other to refund.
    let neighbour = app.signup("buyer").await;
    let body = json!({ "show_id": show.show_id, "variant_id": show.variant_ids[0], "quantity": 1, "payment_method": "pm_card_visa" });
    let (_, first) = app.buy(&buyer.token, "o1", body.clone()).await;
    let (_, second) = app.buy(&neighbour.token, "o2", body).await;
    let (first, second) = (
        first["order"]["id"].as_i64().expect("id"),
        second["order"]["id"].as_i64().expect("id"),
    );

    // Only the seller may act on the store's orders.
    let (status, _) = app
        .post(
            &buyer.token,
            &format!("/api/v1/orders/{first}/ship"),
            json!({ "tracking": "X" }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = app
        .post(
            &show.seller.token,
            &format!("/api/v1/orders/{first}/ship"),
            json!({ "tracking": "1Z999AA10123456784" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["order"]["status"], "shipped");

    let (status, body) = app
        .post(
            &show.seller.token,
            &format!("/api/v1/orders/{second}/refund"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["order"]["status"], "refunded");
    assert_eq!(app.payments.refunded(), vec![format!("ch_test_{second}")]);

    // Neither can happen twice or out of order.
    let (status, body) = app
        .post(
            &show.seller.token,
            &format!("/api/v1/orders/{second}/ship"),
            json!({ "tracking": "late" }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_paid"))
    );
    let (status, _) = app
        .post(
            &show.seller.token,
            &format!("/api/v1/orders/{first}/refund"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(app.payments.refunded().len(), 1);

    let (_, mine) = app.get(Some(&buyer.token), "/api/v1/orders").await;
    let orders = mine["orders"].as_array().expect("orders");
    let shipped = orders.iter().find(|o| o["id"] == first).expect("first");
    assert_eq!(shipped["tracking"], "1Z999AA10123456784");
    let (_, theirs) = app.get(Some(&neighbour.token), "/api/v1/orders").await;
    assert_eq!(theirs["orders"][0]["id"], second);
    assert_eq!(theirs["orders"][0]["status"], "refunded");
}

#[tokio::test]
async fn everything_a_buyer_gets_in_one_show_ships_together_for_one_fee() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let (status, _) = app
        .request(
            reqwest::Method::PUT,
            Some(&seller.token),
            "/api/v1/me/shipping",
            Some(json!({ "fee_cents": 500 })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (product_id, variants) = app.product(&seller, &[("Ruby", 2_000, 10)]).await;
    let (_, show) = app
        .post(
            &seller.token,
            "/api/v1/shows",
            json!({ "title": "Drop", "category": "beauty", "product_ids": [product_id] }),
        )
        .await;
    let show_id = show["id"].as_i64().expect("id");
    app.post(
        &seller.token,
        &format!("/api/v1/shows/{show_id}/start"),
        json!({}),
    )
    .await;

    let buyer = app.signup("buyer").await;
    let other = app.signup("buyer").await;
    let body = json!({ "show_id": show_id, "variant_id": variants[0], "quantity": 1, "payment_method": "pm_card_visa" });
    let (_, first) = app.buy(&buyer.token, "s1", body.clone()).await;
    let (_, second) = app.buy(&buyer.token, "s2", body.clone()).await;
    let (_, theirs) = app.buy(&other.token, "s3", body).await;
    assert_eq!(
        (
            first["order"]["shipping_cents"].as_i64(),
            first["order"]["total_cents"].as_i64()
        ),
        (Some(500), Some(2_500))
    );
    assert_eq!(
        (
            second["order"]["shipping_cents"].as_i64(),
            second["order"]["total_cents"].as_i64()
        ),
        (Some(0), Some(2_000))
    );
    assert_eq!(
        theirs["order"]["shipping_cents"], 500,
        "another buyer is another parcel"
    );
    let first_id = first["order"]["id"].as_i64().expect("id");
    let (_, stored) = app
        .get(Some(&buyer.token), &format!("/api/v1/orders/{first_id}"))
        .await;
    assert_eq!(stored, first, "the answer is the order as stored");

    // One tracking number ships the buyer's whole parcel, and only theirs.
    let (status, _) = app
        .post(
            &seller.token,
            &format!("/api/v1/orders/{first_id}/ship"),
            json!({ "tracking": "PARCEL-1" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, mine) = app.get(Some(&buyer.token), "/api/v1/orders").await;
    for o in mine["orders"].as_array().expect("orders") {
        assert_eq!(
            (o["status"].as_str(), o["tracking"].as_str()),
            (Some("shipped"), Some("PARCEL-1"))
        );
    }
    let (_, theirs) = app.get(Some(&other.token), "/api/v1/orders").await;
    assert_eq!(theirs["orders"][0]["status"], "paid");
}

/// A card that paid is remembered for the buyer's next checkout (in the group commit that
/// confirms the order); a declined card is not.
#[tokio::test]
async fn a_card_that_paid_is_remembered_and_a_declined_one_is_not() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 10)]).await;
    let buyer = app.signup("buyer").await;
    let buy = |method: &str| json!({ "show_id": show.show_id, "variant_id": show.variant_ids[0], "quantity": 1, "payment_method": method });
    let (status, body) = app
        .buy(&buyer.token, "declined", buy("pm_card_declined"))
        .await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
    let (_, methods) = app.get(Some(&buyer.token), "/api/v1/payment-methods").await;
    assert_eq!(methods["saved"], json!([]));

    let (status, body) = app.buy(&buyer.token, "paid", buy("pm_card_visa")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, methods) = app.get(Some(&buyer.token), "/api/v1/payment-methods").await;
    let saved: Vec<&str> = methods["saved"]
        .as_array()
        .expect("saved")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(saved, ["pm_card_visa"]);
}

#[tokio::test]
async fn respond_async_answers_at_the_reservation_and_the_order_is_then_paid() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 10)]).await;
    let sale_id = app.start_sale(&show, 3, 1, 600).await;
    let buyer = app.signup("buyer").await;
    // The slow test card takes two seconds: the answer must not wait for it. Proved by order,
    // not by a clock: right after the answer the order is still reserved, which it could not be
    // had the server waited for the charge.
    let body = json!({ "show_id": show.show_id, "flash_sale_id": sale_id, "quantity": 1, "payment_method": "pm_card_slow" });
    let (status, applied, location, reserved) = app.buy_async(&buyer.token, "a1", &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reserved}");
    assert_eq!(applied, "respond-async");
    let id = reserved["order"]["id"].as_i64().expect("id");
    let (_, now) = app
        .get(Some(&buyer.token), &format!("/api/v1/orders/{id}"))
        .await;
    assert_eq!(
        now["order"]["status"], "reserved",
        "the answer waited for the charge"
    );
    assert_eq!(location, format!("/api/v1/orders/{id}"));
    assert_eq!(reserved["order"]["status"], "reserved");
    assert_eq!(app.sale(sale_id).await["remaining"], 2, "the unit is held");

    // A retry while the charge runs answers with the same reservation, and charges nothing more.
    let (status, _, _, again) = app.buy_async(&buyer.token, "a1", &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["order"]["id"], id);

    let order = app
        .settled_order(&buyer.token, id, Duration::from_secs(10))
        .await;
    assert_eq!(order["status"], "paid", "{order}");
    assert_eq!(app.payments.successful_charges(), 1);
    // Once paid, the same key answers as a buy that waited would have.
    let (status, again) = app.buy(&buyer.token, "a1", body).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["order"]["id"], id);
    assert_eq!(app.sale(sale_id).await["remaining"], 2);
}

#[tokio::test]
async fn a_declined_card_answered_at_the_reservation_gives_the_unit_back() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 10)]).await;
    let sale_id = app.start_sale(&show, 1, 1, 600).await;
    let buyer = app.signup("buyer").await;
    let body = json!({ "show_id": show.show_id, "flash_sale_id": sale_id, "quantity": 1, "payment_method": "pm_card_declined" });
    let (status, _, _, reserved) = app.buy_async(&buyer.token, "d1", &body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reserved}");
    let id = reserved["order"]["id"].as_i64().expect("id");
    let order = app
        .settled_order(&buyer.token, id, Duration::from_secs(10))
        .await;
    assert_eq!(order["status"], "declined", "{order}");
    assert_eq!(
        app.sale(sale_id).await["remaining"],
        1,
        "the unit is on sale again"
    );
    // The same key now answers what happened.
    let (status, again) = app.buy(&buyer.token, "d1", body.clone()).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{again}");
    let (status, _, _, again) = app.buy_async(&buyer.token, "d1", &body).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{again}");
    assert_eq!(again["error"]["code"], "payment_declined");
}

#[tokio::test]
async fn a_buyer_who_hangs_up_during_the_charge_is_still_charged_once_and_gets_the_order() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 10)]).await;
    let sale_id = app.start_sale(&show, 3, 1, 600).await;
    let buyer = app.signup("buyer").await;
    // The slow test card takes two seconds; the buyer gives up after a fraction of that.
    let body = json!({ "show_id": show.show_id, "flash_sale_id": sale_id, "quantity": 1, "payment_method": "pm_card_slow" });
    let hung_up = app
        .order_request(&buyer.token, "h1", &body)
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    assert!(
        hung_up.is_err_and(|e| e.is_timeout()),
        "answered before the charge"
    );
    let id = app.orders(&buyer.token).await[0]["id"]
        .as_i64()
        .expect("the reservation");
    let order = app
        .settled_order(&buyer.token, id, Duration::from_secs(10))
        .await;
    assert_eq!(order["status"], "paid", "{order}");
    assert_eq!(app.payments.successful_charges(), 1);
}
