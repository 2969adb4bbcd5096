//! Buying over the live socket: the same rules as `POST /orders` with `Prefer: respond-async`,
//! answered with `order` messages that carry the buyer's key.

use std::time::Duration;

use futures_util::StreamExt;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Account, LiveShow, LiveSocket, TestApp, spawn_app};

/// A buyer on the live socket of a show selling 3 Rubies in a flash sale (one each): the app,
/// the show, the sale, the buyer, and their socket past its snapshot.
async fn buyer_at_a_sale() -> (TestApp, LiveShow, i64, Account, LiveSocket) {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 10)]).await;
    let sale_id = app.start_sale(&show, 3, 1, 600).await;
    let buyer = app.signup("buyer").await;
    let mut socket = app.connect_live(show.show_id, Some(&buyer.token)).await;
    socket.until("snapshot", |_| true).await;
    (app, show, sale_id, buyer, socket)
}

/// A `buy` of one unit with the card that succeeds after two seconds.
fn slow_buy(sale_id: i64, key: &str) -> Value {
    json!({ "type": "buy", "key": key, "flash_sale_id": sale_id, "quantity": 1,
            "payment_method": "pm_card_slow" })
}

/// The socket's next `order` message for `key`.
async fn answer_for(socket: &mut LiveSocket, key: &str) -> Value {
    socket.until("order", |m| m["key"] == key).await
}

#[tokio::test]
async fn a_buy_over_the_socket_is_answered_at_the_reservation_and_again_when_paid() {
    let (app, show, sale_id, buyer, mut socket) = buyer_at_a_sale().await;
    let buy = slow_buy(sale_id, "s1");
    socket.send(buy.clone()).await;

    let reserved = answer_for(&mut socket, "s1").await;
    assert_eq!(reserved["status"], 202, "{reserved}");
    assert_eq!(
        reserved["seq"], 0,
        "an answer is not part of the show's sequence"
    );
    assert_eq!(reserved["order"]["status"], "reserved");
    assert_eq!(reserved["order"]["total_cents"], 1500);
    let id = reserved["order"]["id"].as_i64().expect("id");
    assert_eq!(app.sale(sale_id).await["remaining"], 2, "the unit is held");

    // A retry on the socket while the slow card is charged repeats the reservation.
    socket.send(buy.clone()).await;
    let again = answer_for(&mut socket, "s1").await;
    assert_eq!(
        (again["status"].clone(), again["order"]["id"].clone()),
        (json!(202), json!(id))
    );

    let paid = answer_for(&mut socket, "s1").await;
    assert_eq!(paid["status"], 201, "{paid}");
    assert_eq!(paid["order"]["status"], "paid");
    let (_, stored) = app
        .get(Some(&buyer.token), &format!("/api/v1/orders/{id}"))
        .await;
    assert_eq!(
        paid["order"], stored["order"],
        "the socket tells what the API stored"
    );
    // The retry waited for the first payment; its outcome may follow, and says the same.
    let from_http = app
        .buy(
            &buyer.token,
            "s1",
            json!({ "show_id": show.show_id, "flash_sale_id": sale_id, "quantity": 1,
                    "payment_method": "pm_card_slow" }),
        )
        .await;
    assert_eq!(
        from_http,
        (StatusCode::CREATED, json!({ "order": stored["order"] }))
    );
    // Every retry came before the HTTP one was answered; a second charge would have been
    // asked by now.
    assert_eq!(
        app.payments.successful_charges(),
        1,
        "one charge for the key"
    );
    assert_eq!(
        app.payments.charges_asked(),
        1,
        "the retry joined the payment under way instead of asking the provider again"
    );
    assert_eq!(app.orders(&buyer.token).await.len(), 1);
    assert_eq!(app.sale(sale_id).await["remaining"], 2);
}

#[tokio::test]
async fn refusals_over_the_socket_carry_the_key_and_change_nothing() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 10)]).await;
    let sale_id = app.start_sale(&show, 1, 1, 600).await;
    let (first, second) = (app.signup("buyer").await, app.signup("buyer").await);
    let buy = |key: &str, payment_method: &str| {
        json!({ "type": "buy", "key": key, "flash_sale_id": sale_id, "quantity": 1,
                "payment_method": payment_method })
    };

    // Watching needs no account; buying does.
    let mut anonymous = app.connect_live(show.show_id, None).await;
    anonymous.send(buy("a1", "pm_card_visa")).await;
    let refused = answer_for(&mut anonymous, "a1").await;
    assert_eq!(refused["status"], 401, "{refused}");
    assert_eq!(refused["error"]["code"], "login_required");

    let mut socket = app.connect_live(show.show_id, Some(&first.token)).await;
    socket.until("snapshot", |_| true).await;
    for (msg, key, status, code) in [
        (
            json!({ "type": "buy", "key": "b1", "flash_sale_id": sale_id, "quantity": 0, "payment_method": "pm_card_visa" }),
            "b1",
            422,
            "invalid_input",
        ),
        (
            json!({ "type": "buy", "key": "b2", "quantity": 1, "payment_method": "pm_card_visa" }),
            "b2",
            422,
            "invalid_input",
        ),
        (buy("b3", "pm_cash"), "b3", 422, "unknown_payment_method"),
        (buy("", "pm_card_visa"), "", 422, "invalid_input"),
    ] {
        socket.send(msg).await;
        let answer = answer_for(&mut socket, key).await;
        assert_eq!(answer["status"], status, "{answer}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
        assert!(answer["order"].is_null());
    }
    assert_eq!(app.sale(sale_id).await["remaining"], 1, "nothing changed");

    // A declined card gives the unit back; then it sells, and the next buyer hears sold out.
    socket.send(buy("c1", "pm_card_declined")).await;
    assert_eq!(answer_for(&mut socket, "c1").await["status"], 202);
    let declined = answer_for(&mut socket, "c1").await;
    assert_eq!(declined["status"], 402, "{declined}");
    assert_eq!(declined["error"]["code"], "payment_declined");
    assert_eq!(app.sale(sale_id).await["remaining"], 1);
    socket.send(buy("c2", "pm_card_visa")).await;
    assert_eq!(answer_for(&mut socket, "c2").await["status"], 202);
    assert_eq!(answer_for(&mut socket, "c2").await["status"], 201);

    let mut late = app.connect_live(show.show_id, Some(&second.token)).await;
    late.send(buy("d1", "pm_card_visa")).await;
    let sold_out = answer_for(&mut late, "d1").await;
    assert_eq!(sold_out["status"], 409, "{sold_out}");
    assert_eq!(sold_out["error"]["code"], "sold_out");
    assert_eq!(app.orders(&second.token).await.len(), 0);
    assert_eq!(app.payments.successful_charges(), 1);
}

/// A signed-in socket can buy, so the session cookie counts only from this site's pages: a page
/// elsewhere on the same domain would otherwise carry it along (`SameSite=Lax`). From there the
/// socket opens, but as an anonymous viewer's.
#[tokio::test]
async fn a_session_cookie_signs_in_a_live_socket_only_from_our_own_pages() {
    use std::sync::Arc;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 10)]).await;
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let browser = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("browser");
    app.form_signup(&browser, "buyer", "/").await;
    let cookie =
        reqwest::cookie::CookieStore::cookies(jar.as_ref(), &app.url("/").parse().expect("url"))
            .expect("the session cookie");
    let host = format!("127.0.0.1:{}", app.port);
    let variant = show.variant_ids[0];
    let open = |origin: String| {
        let mut req = format!("ws://{host}/api/v1/shows/{}/live", show.show_id)
            .into_client_request()
            .expect("request");
        req.headers_mut().insert("cookie", cookie.clone());
        req.headers_mut()
            .insert("origin", origin.parse().expect("origin"));
        async move {
            let (ws, _) = tokio_tungstenite::connect_async(req).await.expect("opens");
            let mut socket = LiveSocket { ws };
            socket.until("snapshot", |_| true).await;
            socket
                .send(json!({ "type": "buy", "key": "k", "variant_id": variant,
                              "quantity": 1, "payment_method": "pm_card_visa" }))
                .await;
            socket
        }
    };

    let mut foreign = open("http://shop.evil.test".into()).await;
    let refused = answer_for(&mut foreign, "k").await;
    assert_eq!(refused["error"]["code"], "login_required", "{refused}");
    let mut own = open(format!("http://{host}")).await;
    assert_eq!(answer_for(&mut own, "k").await["status"], 202);
}

#[tokio::test]
async fn a_socket_whose_session_ends_stops_acting_for_it() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 10)]).await;
    let (buyer, other) = (app.signup("buyer").await, app.signup("buyer").await);
    let mut socket = app.connect_live(show.show_id, Some(&buyer.token)).await;
    socket.until("snapshot", |_| true).await;
    let mut host = app
        .connect_live(show.show_id, Some(&show.seller.token))
        .await;
    let snapshot = host.until("snapshot", |_| true).await;
    assert!(snapshot["host_stats"].is_object(), "{snapshot}");
    let chat = |text: &str| json!({ "type": "chat", "text": text });
    let logout = async |token: &str| {
        let (status, _) = app.post(token, "/api/v1/auth/logout", json!({})).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    };
    socket.send(chat("first")).await;
    socket.until("chat", |m| m["text"] == "first").await;

    // Another account's logout changes nothing for this socket.
    logout(&other.token).await;
    socket.send(chat("second")).await;
    socket.until("chat", |m| m["text"] == "second").await;

    // Its own does: the open socket can no longer chat or buy, and stays open to watch.
    logout(&buyer.token).await;
    socket.send(chat("third")).await;
    let ended = socket.until("error", |_| true).await;
    assert_eq!(ended["code"], "login_required", "{ended}");
    assert!(
        ended["message"]
            .as_str()
            .unwrap_or("")
            .contains("session has ended"),
        "{ended}"
    );
    socket
        .send(
            json!({ "type": "buy", "key": "k", "variant_id": show.variant_ids[0],
                      "quantity": 1, "payment_method": "pm_card_visa" }),
        )
        .await;
    let refused = answer_for(&mut socket, "k").await;
    assert_eq!(
        (refused["status"].clone(), refused["error"]["code"].clone()),
        (json!(401), json!("login_required")),
        "{refused}"
    );
    socket.send(json!({ "type": "ping", "nonce": 7 })).await;
    assert_eq!(socket.until("pong", |_| true).await["nonce"], 7);
    assert_eq!(app.stock(show.product_id).await, vec![10], "nothing bought");

    // The host's socket, which only receives, closes within a second of its session ending.
    logout(&show.seller.token).await;
    assert_eq!(host.until("error", |_| true).await["code"], "session_ended");
    loop {
        match tokio::time::timeout(Duration::from_secs(5), host.ws.next()).await {
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame)))) => {
                assert_eq!(frame.map(|f| u16::from(f.code)), Some(1008));
                break;
            }
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected the host's socket to close: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_socket_that_closes_during_the_charge_still_gets_its_buyer_the_order() {
    let (app, _show, sale_id, buyer, mut socket) = buyer_at_a_sale().await;
    socket.send(slow_buy(sale_id, "c1")).await;
    let reserved = answer_for(&mut socket, "c1").await;
    assert_eq!(reserved["status"], 202, "{reserved}");
    // The phone loses its connection while the slow card is charged (two seconds).
    socket.ws.close(None).await.expect("closed");
    drop(socket);
    let id = reserved["order"]["id"].as_i64().expect("id");
    let order = app
        .settled_order(&buyer.token, id, Duration::from_secs(10))
        .await;
    assert_eq!(order["status"], "paid", "{order}");
    assert_eq!(app.payments.successful_charges(), 1);
    assert_eq!(app.sale(sale_id).await["remaining"], 2);
}
