//! After the show: the seller ships with a tracking number or cancels and refunds.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_seller_ships_one_order_and_refunds_another() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 10)]).await;
    let buyer = app.signup("buyer").await;
    let body = json!({ "show_id": show.show_id, "variant_id": show.variant_ids[0], "quantity": 1, "payment_method": "pm_card_visa" });
    let (_, first) = app.buy(&buyer.token, "o1", body.clone()).await;
    let (_, second) = app.buy(&buyer.token, "o2", body).await;
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
    assert_eq!(
        orders.iter().find(|o| o["id"] == second).expect("second")["status"],
        "refunded"
    );
}
