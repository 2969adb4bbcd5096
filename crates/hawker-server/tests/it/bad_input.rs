//! Every bad input gets a clear 4xx in the `{"error":{"code","message"}}` shape, and changes
//! nothing: each test reads stock, sale counts and orders back after the refusal.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    LiveShow, TestApp, assert_refused, meta_csrf, now_ms, png_bytes, spawn_app, spawn_app_with,
    wait_past,
};

fn buy_sale(show: &LiveShow, sale_id: i64, quantity: Value) -> Value {
    json!({ "show_id": show.show_id, "flash_sale_id": sale_id, "quantity": quantity, "payment_method": "pm_card_visa" })
}

fn buy_variant(show: &LiveShow, code: Option<&str>) -> Value {
    json!({ "show_id": show.show_id, "variant_id": show.variant_ids[0], "quantity": 1, "code": code, "payment_method": "pm_card_visa" })
}

async fn create_code(app: &TestApp, show: &LiveShow, body: Value) {
    let (status, answer) = app
        .post(
            &show.seller.token,
            &format!("/api/v1/shows/{}/codes", show.show_id),
            body,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}

async fn log_len(app: &TestApp, show: &LiveShow) -> usize {
    let path = format!("/api/v1/shows/{}/log", show.show_id);
    app.every_page(&show.seller.token, &path, "entries", 200)
        .await
        .len()
}

/// Sends `body` as-is with the given content type (or none) and a Bearer token.
async fn raw_post(
    app: &TestApp,
    token: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> (StatusCode, Value) {
    let mut req = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .header("Idempotency-Key", "raw-1")
        .body(body.to_owned());
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let res = req.send().await.expect("sent");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn malformed_json_is_400_and_changes_nothing() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 80)]).await;
    let buyer = app.signup("buyer").await;

    let truncated = format!(
        r#"{{"show_id": {}, "variant_id": {}, "quantity": 1,"#,
        show.show_id, show.variant_ids[0]
    );
    for body in [
        truncated.as_str(),
        "not json",
        r#"{"show_id": 1 "quantity": 2}"#,
        "",
    ] {
        let answer = raw_post(
            &app,
            &buyer.token,
            "/api/v1/orders",
            Some("application/json"),
            body,
        )
        .await;
        assert_refused(&answer, StatusCode::BAD_REQUEST, "malformed_json");
    }
    let answer = raw_post(
        &app,
        &show.seller.token,
        "/api/v1/products",
        Some("application/json"),
        r#"{"title": "Lamp", "variants": [}"#,
    )
    .await;
    assert_refused(&answer, StatusCode::BAD_REQUEST, "malformed_json");

    assert!(app.orders(&buyer.token).await.is_empty());
    assert_eq!(app.stock(show.product_id).await, vec![80]);
    let (_, mine) = app.get(Some(&show.seller.token), "/api/v1/products").await;
    assert_eq!(
        mine["products"].as_array().map(Vec::len),
        Some(1),
        "only the show's product: {mine}"
    );
}

#[tokio::test]
async fn unknown_fields_are_422_and_change_nothing() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 80)]).await;
    let buyer = app.signup("buyer").await;

    // A field the server does not know is refused, not ignored: the client must not believe it
    // set a price.
    let mut body = buy_variant(&show, None);
    body["unit_price_cents"] = json!(1);
    assert_refused(
        &app.buy(&buyer.token, "k1", body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );

    let product = json!({ "title": "Lamp", "currency": "USD", "variants": [{ "name": "One", "price_cents": 100, "stock": 1, "discount": 50 }] });
    assert_refused(
        &app.post(&show.seller.token, "/api/v1/products", product)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );

    let sale = json!({ "variant_id": show.variant_ids[0], "quantity": 5, "price_cents": 1500, "per_buyer_limit": 1, "duration_s": 60, "free": true });
    let path = format!("/api/v1/shows/{}/flash-sales", show.show_id);
    assert_refused(
        &app.post(&show.seller.token, &path, sale).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );

    let signup = json!({ "email": "admin-wannabe@test.dev", "password": "correct horse", "display_name": "Eve", "role": "buyer", "is_admin": true });
    assert_refused(
        &app.request(
            reqwest::Method::POST,
            None,
            "/api/v1/auth/signup",
            Some(signup),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );

    assert!(app.orders(&buyer.token).await.is_empty());
    assert_eq!(app.stock(show.product_id).await, vec![80]);
    let (_, mine) = app.get(Some(&show.seller.token), "/api/v1/products").await;
    assert_eq!(mine["products"].as_array().map(Vec::len), Some(1), "{mine}");
    let login = json!({ "email": "admin-wannabe@test.dev", "password": "correct horse" });
    let (status, _) = app
        .request(
            reqwest::Method::POST,
            None,
            "/api/v1/auth/login",
            Some(login),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the refused sign-up created no account"
    );
}

#[tokio::test]
async fn a_body_without_content_type_is_415() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 80)]).await;
    let buyer = app.signup("buyer").await;

    let body = buy_variant(&show, None).to_string();
    let answer = raw_post(&app, &buyer.token, "/api/v1/orders", None, &body).await;
    assert_refused(
        &answer,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let answer = raw_post(
        &app,
        &buyer.token,
        "/api/v1/orders",
        Some("text/plain"),
        &body,
    )
    .await;
    assert_refused(
        &answer,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );

    assert!(app.orders(&buyer.token).await.is_empty());
    assert_eq!(app.stock(show.product_id).await, vec![80]);
    // The very same body with the header goes through: the header was the only fault.
    let answer = raw_post(
        &app,
        &buyer.token,
        "/api/v1/orders",
        Some("application/json"),
        &body,
    )
    .await;
    assert_eq!(answer.0, StatusCode::CREATED, "{}", answer.1);
    assert_eq!(app.stock(show.product_id).await, vec![79]);
}

#[tokio::test]
async fn quantities_out_of_range_are_422_and_reserve_nothing() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 80)]).await;
    let sale_id = app.start_sale(&show, 10, 100, 600).await;
    let buyer = app.signup("buyer").await;

    let bad = [
        json!(0),
        json!(-1),
        json!(-1000),
        json!(101),
        json!(1_000_000_000_000_i64),
        json!(i64::MIN),
    ];
    for (i, quantity) in bad.iter().enumerate() {
        let answer = app
            .buy(
                &buyer.token,
                &format!("sale-{i}"),
                buy_sale(&show, sale_id, quantity.clone()),
            )
            .await;
        assert_refused(&answer, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input");
        let mut by_variant = buy_variant(&show, None);
        by_variant["quantity"] = quantity.clone();
        let answer = app
            .buy(&buyer.token, &format!("variant-{i}"), by_variant)
            .await;
        assert_refused(&answer, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input");
    }
    // Numbers that are not an i64 at all are refused by the parser with the same code.
    for raw in ["99999999999999999999", "1.5", "1e30", "\"2\""] {
        let body = format!(
            r#"{{"show_id": {}, "flash_sale_id": {sale_id}, "quantity": {raw}, "payment_method": "pm_card_visa"}}"#,
            show.show_id
        );
        let answer = raw_post(
            &app,
            &buyer.token,
            "/api/v1/orders",
            Some("application/json"),
            &body,
        )
        .await;
        assert_refused(&answer, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input");
    }

    let sale = app.sale(sale_id).await;
    assert_eq!(sale["remaining"], 10, "{sale}");
    assert_eq!(app.stock(show.product_id).await, vec![70]);
    assert!(app.orders(&buyer.token).await.is_empty());
    assert_eq!(app.payments.successful_charges(), 0);
}

#[tokio::test]
async fn prices_out_of_range_are_422_on_products_and_flash_sales() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 80)]).await;
    let log_before = log_len(&app, &show).await;

    for price in [0, -1, -2400, 100_000_001, i64::MAX] {
        let product = json!({ "title": "Lamp", "currency": "USD", "variants": [{ "name": "One", "price_cents": price, "stock": 1 }] });
        assert_refused(
            &app.post(&show.seller.token, "/api/v1/products", product)
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        );

        let sale = json!({ "variant_id": show.variant_ids[0], "quantity": 5, "price_cents": price, "per_buyer_limit": 1, "duration_s": 60 });
        let path = format!("/api/v1/shows/{}/flash-sales", show.show_id);
        assert_refused(
            &app.post(&show.seller.token, &path, sale).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        );
    }
    // A mixed product is refused whole: the good variant is not saved either.
    let mixed = json!({ "title": "Lamp", "currency": "USD", "variants": [{ "name": "Ok", "price_cents": 100, "stock": 1 }, { "name": "Bad", "price_cents": 0, "stock": 1 }] });
    assert_refused(
        &app.post(&show.seller.token, "/api/v1/products", mixed)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );

    let (_, mine) = app.get(Some(&show.seller.token), "/api/v1/products").await;
    assert_eq!(
        mine["products"].as_array().map(Vec::len),
        Some(1),
        "no product was created: {mine}"
    );
    assert_eq!(
        app.stock(show.product_id).await,
        vec![80],
        "no sale took units"
    );
    assert_eq!(log_len(&app, &show).await, log_before, "no sale was logged");
    // The edges are fine: the refusals were about the range.
    let edge = json!({ "title": "Lamp", "currency": "USD", "variants": [{ "name": "Cheap", "price_cents": 1, "stock": 1 }, { "name": "Dear", "price_cents": 100_000_000, "stock": 1 }] });
    assert_eq!(
        app.post(&show.seller.token, "/api/v1/products", edge)
            .await
            .0,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn buying_in_an_unknown_or_ended_show_is_refused() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 80)]).await;
    let buyer = app.signup("buyer").await;

    let mut unknown = buy_variant(&show, None);
    unknown["show_id"] = json!(987_654_321);
    assert_refused(
        &app.buy(&buyer.token, "unknown-show", unknown).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    let (status, body) = app
        .post(
            &show.seller.token,
            &format!("/api/v1/shows/{}/end", show.show_id),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ended");
    let stock_after_end = app.stock(show.product_id).await;
    assert_refused(
        &app.buy(&buyer.token, "ended-show", buy_variant(&show, None))
            .await,
        StatusCode::CONFLICT,
        "show_not_live",
    );

    assert!(app.orders(&buyer.token).await.is_empty());
    assert_eq!(app.stock(show.product_id).await, stock_after_end);
    assert_eq!(stock_after_end, vec![80]);
}

#[tokio::test]
async fn buying_from_a_scheduled_show_is_409() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let (product_id, variant_ids) = app.product(&seller, &[("Ruby", 2400, 80)]).await;
    let (status, body) = app
        .post(
            &seller.token,
            "/api/v1/shows",
            json!({ "title": "Later", "category": "beauty", "product_ids": [product_id] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["show"]["status"], "scheduled");
    let show_id = body["id"].as_i64().expect("id");
    let buyer = app.signup("buyer").await;

    let body = json!({ "show_id": show_id, "variant_id": variant_ids[0], "quantity": 1, "payment_method": "pm_card_visa" });
    assert_refused(
        &app.buy(&buyer.token, "early", body).await,
        StatusCode::CONFLICT,
        "show_not_live",
    );

    assert!(app.orders(&buyer.token).await.is_empty());
    assert_eq!(app.stock(product_id).await, vec![80]);
    assert_eq!(app.payments.successful_charges(), 0);
}

#[tokio::test]
async fn buying_after_a_sale_ended_is_409_sale_ended() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 80)]).await;
    let sale_id = app.start_sale(&show, 10, 2, 5).await;
    let buyer = app.signup("buyer").await;

    // Poll until the sale has ended and its unsold units are back on the variant.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let sale = app.sale(sale_id).await;
        if sale["status"] == "ended" && app.stock(show.product_id).await == vec![80] {
            break;
        }
        assert!(
            ["running", "ended"].contains(&sale["status"].as_str().unwrap_or("")),
            "{sale}"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the 5 s sale never ended: {sale}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let before = app.sale(sale_id).await;
    let answer = app
        .buy(&buyer.token, "late", buy_sale(&show, sale_id, json!(1)))
        .await;
    assert_refused(&answer, StatusCode::CONFLICT, "sale_ended");

    assert_eq!(app.sale(sale_id).await, before);
    assert_eq!(app.stock(show.product_id).await, vec![80]);
    assert!(app.orders(&buyer.token).await.is_empty());
    assert_eq!(app.payments.successful_charges(), 0);
}

#[tokio::test]
async fn an_exhausted_code_is_422() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 80)]).await;
    create_code(
        &app,
        &show,
        json!({ "code": "ONCE", "percent_off": 10, "max_uses": 1 }),
    )
    .await;
    let (first, second) = (app.signup("buyer").await, app.signup("buyer").await);

    let (status, body) = app
        .buy(&first.token, "k", buy_variant(&show, Some("once")))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["order"]["discount_cents"], 240);
    assert_eq!(app.stock(show.product_id).await, vec![79]);

    assert_refused(
        &app.buy(&second.token, "k", buy_variant(&show, Some("ONCE")))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "code_exhausted",
    );
    assert!(app.orders(&second.token).await.is_empty());
    assert_eq!(app.stock(show.product_id).await, vec![79]);
    assert_eq!(app.payments.successful_charges(), 1);
}

#[tokio::test]
async fn a_code_of_another_show_is_unknown_here() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 80)]).await;
    let other = app.live_show(&[("Jade", 1000, 5)]).await;
    create_code(
        &app,
        &other,
        json!({ "code": "OTHER10", "percent_off": 10, "max_uses": 100 }),
    )
    .await;
    let buyer = app.signup("buyer").await;

    assert_refused(
        &app.buy(&buyer.token, "k", buy_variant(&show, Some("OTHER10")))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "code_unknown",
    );
    assert_refused(
        &app.buy(&buyer.token, "k2", buy_variant(&show, Some("NOSUCHCODE")))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "code_unknown",
    );

    assert!(app.orders(&buyer.token).await.is_empty());
    assert_eq!(app.stock(show.product_id).await, vec![80]);
    assert_eq!(app.stock(other.product_id).await, vec![5]);
    // The code does work where it belongs.
    let (status, body) = app
        .buy(&buyer.token, "k3", buy_variant(&other, Some("other10")))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn an_expired_code_is_422() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 80)]).await;
    let expires_at = now_ms() + 3_000;
    create_code(&app, &show, json!({ "code": "QUICK", "amount_off_cents": 500, "max_uses": 100, "expires_at": expires_at })).await;
    let (early, late) = (app.signup("buyer").await, app.signup("buyer").await);

    let (status, body) = app
        .buy(&early.token, "k", buy_variant(&show, Some("QUICK")))
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the code works before it expires: {body}"
    );
    wait_past(expires_at).await;

    assert_refused(
        &app.buy(&late.token, "k", buy_variant(&show, Some("QUICK")))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "code_expired",
    );
    assert!(app.orders(&late.token).await.is_empty());
    assert_eq!(app.stock(show.product_id).await, vec![79]);
}

#[tokio::test]
async fn a_first_order_code_is_refused_after_an_order() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 80)]).await;
    create_code(
        &app,
        &show,
        json!({ "code": "WELCOME", "percent_off": 20, "max_uses": 100, "first_order_only": true }),
    )
    .await;
    let (regular, newcomer) = (app.signup("buyer").await, app.signup("buyer").await);

    let (status, body) = app
        .buy(&regular.token, "first", buy_variant(&show, None))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let answer = app
        .buy(
            &regular.token,
            "second",
            buy_variant(&show, Some("WELCOME")),
        )
        .await;
    assert_refused(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "code_first_order_only",
    );

    assert_eq!(app.orders(&regular.token).await.len(), 1);
    assert_eq!(app.stock(show.product_id).await, vec![79]);
    let (status, body) = app
        .buy(
            &newcomer.token,
            "first",
            buy_variant(&show, Some("WELCOME")),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "a first order may use it: {body}"
    );
    assert_eq!(body["order"]["discount_cents"], 480);
}

#[tokio::test]
async fn buying_without_an_idempotency_key_is_400() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 80)]).await;
    let buyer = app.signup("buyer").await;

    let answer = app
        .post(&buyer.token, "/api/v1/orders", buy_variant(&show, None))
        .await;
    assert_refused(&answer, StatusCode::BAD_REQUEST, "missing_idempotency_key");
    // An empty key is no key either.
    assert_refused(
        &app.buy(&buyer.token, "", buy_variant(&show, None)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_input",
    );

    assert!(app.orders(&buyer.token).await.is_empty());
    assert_eq!(app.stock(show.product_id).await, vec![80]);
    assert_eq!(app.payments.successful_charges(), 0);
}

#[tokio::test]
async fn an_unknown_payment_method_is_422() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 80)]).await;
    let sale_id = app.start_sale(&show, 10, 2, 600).await;
    let buyer = app.signup("buyer").await;

    let mut body = buy_sale(&show, sale_id, json!(1));
    body["payment_method"] = json!("pm_bitcoin");
    assert_refused(
        &app.buy(&buyer.token, "k", body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_payment_method",
    );

    assert_eq!(app.sale(sale_id).await["remaining"], 10);
    assert!(app.orders(&buyer.token).await.is_empty());
    assert_eq!(app.payments.successful_charges(), 0);
}

#[tokio::test]
async fn a_declined_card_is_402_and_the_units_return() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 80)]).await;
    let sale_id = app.start_sale(&show, 3, 1, 600).await;
    let buyer = app.signup("buyer").await;

    let mut body = buy_sale(&show, sale_id, json!(1));
    body["payment_method"] = json!("pm_card_declined");
    assert_refused(
        &app.buy(&buyer.token, "declined", body).await,
        StatusCode::PAYMENT_REQUIRED,
        "payment_declined",
    );

    assert_eq!(
        app.sale(sale_id).await["remaining"],
        3,
        "the reserved unit went back on sale"
    );
    let orders = app.orders(&buyer.token).await;
    assert!(
        orders.iter().all(|o| o["status"] == "declined"),
        "nothing paid: {orders:?}"
    );
    assert_eq!(app.payments.successful_charges(), 0);
    // The per-buyer limit (1) did not keep the declined unit: the buyer can still buy one.
    let (status, body) = app
        .buy(&buyer.token, "visa", buy_sale(&show, sale_id, json!(1)))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(app.sale(sale_id).await["remaining"], 2);
}

#[tokio::test]
async fn chat_over_500_characters_is_refused_and_not_broadcast() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 80)]).await;
    let (talker, watcher) = (app.signup("buyer").await, app.signup("buyer").await);
    let mut sock = app.connect_live(show.show_id, Some(&talker.token)).await;
    let mut other = app.connect_live(show.show_id, Some(&watcher.token)).await;
    assert_eq!(sock.next().await["type"], "snapshot");
    assert_eq!(other.next().await["type"], "snapshot");

    sock.send(json!({ "type": "chat", "text": "x".repeat(501) }))
        .await;
    let err = sock.until("error", |_| true).await;
    assert_eq!(err["code"], "chat_too_long", "{err}");
    assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()));
    // Exactly 500 characters (multi-byte ones, too) is fine; it is the first chat anyone sees.
    let longest = "é".repeat(500);
    sock.send(json!({ "type": "chat", "text": longest })).await;
    for s in [&mut sock, &mut other] {
        let line = s.until("chat", |_| true).await;
        assert_eq!(line["text"], longest.as_str());
    }
    let mut late = app.connect_live(show.show_id, None).await;
    let snapshot = late.next().await;
    let chat = snapshot["chat"].as_array().expect("chat");
    assert_eq!(
        chat.len(),
        1,
        "only the accepted line is in the room: {snapshot}"
    );
}

#[tokio::test]
async fn anonymous_chat_needs_login() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 80)]).await;
    let mut anon = app.connect_live(show.show_id, None).await;
    assert_eq!(anon.next().await["type"], "snapshot");

    anon.send(json!({ "type": "chat", "text": "hi" })).await;
    let err = anon.until("error", |_| true).await;
    assert_eq!(err["code"], "login_required", "{err}");

    // Nobody saw it: a new viewer's snapshot has an empty chat.
    let mut late = app.connect_live(show.show_id, None).await;
    let snapshot = late.next().await;
    assert_eq!(snapshot["chat"], json!([]), "{snapshot}");
}

#[tokio::test]
async fn a_socket_flood_is_rate_limited_and_the_server_keeps_serving() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 80)]).await;
    let buyer = app.signup("buyer").await;
    let mut sock = app.connect_live(show.show_id, Some(&buyer.token)).await;
    assert_eq!(sock.next().await["type"], "snapshot");

    for nonce in 0..80 {
        sock.send(json!({ "type": "ping", "nonce": nonce })).await;
    }
    let mut pongs = 0;
    loop {
        let m = sock.next().await;
        match m["type"].as_str() {
            Some("pong") => pongs += 1,
            Some("error") => {
                assert_eq!(m["code"], "rate_limited", "{m}");
                break;
            }
            _ => {}
        }
    }
    assert!(pongs < 80, "some pings were refused");

    let (status, body) = app
        .get(None, &format!("/api/v1/shows/{}", show.show_id))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut fresh = app.connect_live(show.show_id, Some(&buyer.token)).await;
    assert_eq!(fresh.next().await["type"], "snapshot");
    fresh.send(json!({ "type": "ping", "nonce": 4242 })).await;
    let pong = fresh.until("pong", |_| true).await;
    assert_eq!(pong["nonce"], 4242);
    let (status, body) = app
        .buy(&buyer.token, "after-flood", buy_variant(&show, None))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn uploads_that_are_too_large_or_not_images_are_refused() {
    let app = spawn_app_with(|c| c.max_upload_bytes = 1000).await;
    let seller = app.signup("seller").await;
    let (product_id, _) = app.product(&seller, &[("Ruby", 2400, 80)]).await;
    let path = format!("/api/v1/products/{product_id}/images");

    assert_refused(
        &app.upload(&seller.token, &path, &png_bytes(5000)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
    );
    assert_refused(
        &app.upload(
            &seller.token,
            &path,
            b"<svg onload=alert(1)></svg> not a picture",
        )
        .await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "not_an_image",
    );

    let (_, product) = app
        .get(None, &format!("/api/v1/products/{product_id}"))
        .await;
    assert_eq!(product["images"], json!([]), "{product}");
    let uploads = app._data_dir.path().join("uploads");
    assert!(
        std::fs::read_dir(&uploads).map(|d| d.count()).unwrap_or(0) == 0,
        "no file was written"
    );
    // Under the limit, the same kind of body is accepted.
    let (status, body) = app.upload(&seller.token, &path, &png_bytes(900)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn buyers_cannot_call_seller_endpoints() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 80)]).await;
    let buyer = app.signup("buyer").await;
    let t = &buyer.token;
    let id = show.show_id;

    let product = json!({ "title": "Lamp", "currency": "USD", "variants": [{ "name": "One", "price_cents": 100, "stock": 1 }] });
    assert_refused(
        &app.post(t, "/api/v1/products", product.clone()).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let new_show =
        json!({ "title": "Mine", "category": "beauty", "product_ids": [show.product_id] });
    assert_refused(
        &app.post(t, "/api/v1/shows", new_show).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let sale = json!({ "variant_id": show.variant_ids[0], "quantity": 5, "price_cents": 1, "per_buyer_limit": 5, "duration_s": 60 });
    assert_refused(
        &app.post(t, &format!("/api/v1/shows/{id}/flash-sales"), sale)
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let code = json!({ "code": "FREE", "percent_off": 100, "max_uses": 1000 });
    assert_refused(
        &app.post(t, &format!("/api/v1/shows/{id}/codes"), code)
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_refused(
        &app.post(t, &format!("/api/v1/shows/{id}/end"), json!({}))
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_refused(
        &app.request(
            reqwest::Method::PUT,
            Some(t),
            &format!("/api/v1/products/{}", show.product_id),
            Some(product),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_refused(
        &app.request(
            reqwest::Method::DELETE,
            Some(t),
            &format!("/api/v1/products/{}", show.product_id),
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_refused(
        &app.get(Some(t), "/api/v1/seller/orders").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    let words = json!({ "words": ["hello"] });
    assert_refused(
        &app.request(
            reqwest::Method::PUT,
            Some(t),
            "/api/v1/me/blocked-words",
            Some(words),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );

    let (_, after) = app.get(None, &format!("/api/v1/shows/{id}")).await;
    assert_eq!(after["status"], "live", "{after}");
    let (_, product) = app
        .get(None, &format!("/api/v1/products/{}", show.product_id))
        .await;
    assert_eq!(product["archived"], false);
    assert_eq!(product["title"], "Velvet lipstick");
    assert_eq!(product["variants"][0]["stock"], 80, "no sale took units");
    let (_, shows) = app.get(None, "/api/v1/shows").await;
    assert_eq!(shows["shows"].as_array().map(Vec::len), Some(1), "{shows}");
    // The code was never made: buying with it is refused as unknown.
    assert_refused(
        &app.buy(t, "k", buy_variant(&show, Some("FREE"))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "code_unknown",
    );
}

#[tokio::test]
async fn missing_or_wrong_credentials_are_401() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 80)]).await;
    let sale_id = app.start_sale(&show, 10, 2, 600).await;
    let body = buy_sale(&show, sale_id, json!(1));

    let send = |auth: Option<&'static str>| {
        let mut req = app
            .client
            .post(app.url("/api/v1/orders"))
            .header("Idempotency-Key", "k")
            .json(&body);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        async move {
            let res = req.send().await.expect("sent");
            (
                res.status(),
                res.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    assert_refused(&send(None).await, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_refused(
        &send(Some("Bearer not-a-real-token")).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_refused(
        &send(Some("Bearer ")).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_refused(
        &send(Some("Basic dXNlcjpwYXNz")).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_refused(
        &app.get(None, "/api/v1/orders").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    assert_refused(
        &app.get(Some("wrong"), "/api/v1/me").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let product = json!({ "title": "Lamp", "currency": "USD", "variants": [{ "name": "One", "price_cents": 100, "stock": 1 }] });
    assert_refused(
        &app.request(
            reqwest::Method::POST,
            None,
            "/api/v1/products",
            Some(product),
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );

    // A revoked token is as wrong as a made-up one.
    let buyer = app.signup("buyer").await;
    let (status, _) = app
        .post(&buyer.token, "/api/v1/auth/logout", json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_refused(
        &app.buy(&buyer.token, "k", body.clone()).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );

    assert_eq!(app.sale(sale_id).await["remaining"], 10);
    assert_eq!(app.payments.successful_charges(), 0);
    let (_, shows) = app.get(None, "/api/v1/shows").await;
    assert_eq!(shows["shows"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn a_cookie_authenticated_api_write_needs_the_csrf_header() {
    let app = spawn_app().await;
    let browser = app.browser();
    app.form_signup(&browser, "seller", "/dashboard").await;
    let csrf = meta_csrf(&app.page(&browser, "/dashboard").await.body);
    assert!(!csrf.is_empty());

    let product = json!({ "title": "Lamp", "currency": "USD", "variants": [{ "name": "One", "price_cents": 100, "stock": 1 }] });
    let post = |header: Option<&str>| {
        let mut req = browser.post(app.url("/api/v1/products")).json(&product);
        if let Some(h) = header {
            req = req.header("x-csrf-token", h);
        }
        async move {
            let res = req.send().await.expect("sent");
            (
                res.status(),
                res.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    assert_refused(&post(None).await, StatusCode::FORBIDDEN, "forbidden");
    assert_refused(
        &post(Some("0000")).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );

    // Reading needs no token, and shows nothing was created.
    let res = browser
        .get(app.url("/api/v1/products"))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::OK);
    let mine: Value = res.json().await.expect("json");
    assert_eq!(mine["products"], json!([]), "{mine}");
    // The session's own token makes the same write go through.
    let (status, body) = post(Some(&csrf)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// The API's routes carry their prefix instead of being nested, so its own 404 is a route too:
/// an unknown API path answers in the API's shape, and a page path still gets the HTML page.
#[tokio::test]
async fn an_unknown_api_path_is_a_json_404_and_a_page_path_is_html() {
    let app = spawn_app().await;
    for path in [
        "/api/v1",
        "/api/v1/",
        "/api/v1/nope",
        "/api/v1/orders/1/nope",
    ] {
        let answer = app.get(None, path).await;
        assert_refused(&answer, StatusCode::NOT_FOUND, "not_found");
    }
    let res = app.client.get(app.url("/nope")).send().await.expect("sent");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let page = res.text().await.expect("a page");
    assert!(page.starts_with("<!doctype html>"), "{page}");
}
