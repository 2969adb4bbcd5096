//! The attacks of the hardening review, replayed: each is refused with nothing changed and
//! nothing lost, and the show it aimed at carries on for everybody else.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use hawker_core::commerce::Event;
use hawker_server::store::Batch;
use reqwest::StatusCode;
use serde_json::json;

use crate::auctions::{bidder, start_auction, wait_ended, wait_paid};
use crate::faults::FaultyStore;
use crate::helpers::{
    LiveShow, TestApp, assert_refused, eventually, spawn_app, spawn_app_on_manual_clock,
    spawn_app_on_store, spawn_app_with,
};

fn buy_body(show: &LiveShow, method: &str) -> serde_json::Value {
    json!({ "show_id": show.show_id, "variant_id": show.variant_ids[0], "quantity": 1, "payment_method": method })
}

async fn end_show(app: &TestApp, show: &LiveShow) -> StatusCode {
    let path = format!("/api/v1/shows/{}/end", show.show_id);
    app.post(&show.seller.token, &path, json!({})).await.0
}

/// Attack 1, its key: the winner's order of an auction is made by the server under a key no
/// client can send, so a buyer who sends the old key (or the new one) first changes nothing.
#[tokio::test]
async fn a_buyer_cannot_take_the_key_of_an_auction_order() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Card", 5_000, 3)]).await;
    let winner = bidder(&app).await;
    let (id, _) = start_auction(&app, &show, json!({ "variant_id": show.variant_ids[0], "start_cents": 1_000, "duration_s": 5, "mode": "sudden_death" })).await;
    let bid = format!("/api/v1/auctions/{id}/bids");
    app.post(&winner.token, &bid, json!({ "amount_cents": 1_000 }))
        .await;
    let declined = buy_body(&show, "pm_card_declined");
    let (status, _) = app
        .buy(&winner.token, &format!("auction-{id}"), declined.clone())
        .await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    let spaced = app
        .buy(&winner.token, &format!("server auction {id}"), declined)
        .await;
    assert_refused(&spaced, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input");

    wait_ended(&app, id).await;
    wait_paid(&app, &winner.token, id).await;
    let buyer = app.signup("buyer").await;
    let (status, body) = app
        .buy(&buyer.token, "after", buy_body(&show, "pm_card_visa"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(end_show(&app, &show).await, StatusCode::OK);
}

/// Attack 1, its class: a decision that cannot be committed (here a storage fault aimed at one
/// buyer) is refused alone; every other buy of its batch commits, and the show sells on.
#[tokio::test]
async fn a_decision_that_cannot_be_saved_is_refused_alone() {
    let poisoned = Arc::new(AtomicI64::new(-1));
    let shared_failures = Arc::new(AtomicUsize::new(0));
    let (p, shared) = (poisoned.clone(), shared_failures.clone());
    let fail = move |batch: &Batch| {
        let reserved = || {
            batch.events.iter().filter_map(|e| match e {
                Event::Reserved { order, .. } => Some(order.buyer.0),
                _ => None,
            })
        };
        let fails = reserved().any(|buyer| buyer == p.load(Ordering::SeqCst));
        if fails && reserved().count() > 1 {
            shared.fetch_add(1, Ordering::SeqCst);
        }
        fails
    };
    let app = spawn_app_on_store(|_| {}, FaultyStore::wrap(fail, Duration::from_millis(30))).await;
    let show = app.live_show(&[("Tee", 2_000, 100)]).await;
    let buyers = app.buyers(20).await;
    let attacker = app.signup("buyer").await;
    poisoned.store(attacker.id, Ordering::SeqCst);

    let body = buy_body(&show, "pm_card_visa");
    for round in 0..3 {
        let key = format!("round-{round}");
        // The attacker's buy in the middle of the herd, so it shares a batch with others.
        let mut herd: Vec<_> = buyers.iter().map(|b| (b.id, b.token.as_str())).collect();
        herd.insert(10, (attacker.id, attacker.token.as_str()));
        let answers = join_all(
            herd.iter()
                .map(|(_, token)| app.buy(token, &key, body.clone())),
        )
        .await;
        for ((id, _), (status, answer)) in herd.iter().zip(answers) {
            let want = if *id == attacker.id {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::CREATED
            };
            assert_eq!(status, want, "{answer}");
        }
    }
    assert!(
        shared_failures.load(Ordering::SeqCst) > 0,
        "the attacker's buy never shared a batch: the test proved nothing"
    );
    assert_eq!(app.stock(show.product_id).await, vec![100 - 3 * 20]);
    assert_eq!(end_show(&app, &show).await, StatusCode::OK);
}

/// Attack 1, the time-driven side: an auction's close that cannot be saved (its winner's order
/// fails) neither stops buying nor keeps the host from ending the show.
#[tokio::test]
async fn a_timed_decision_that_cannot_be_saved_does_not_stop_the_show() {
    let fail = |batch: &Batch| {
        batch
            .new_orders
            .iter()
            .any(|o| o.idempotency_key.starts_with("server auction"))
    };
    let app = spawn_app_on_store(|_| {}, FaultyStore::wrap(fail, Duration::ZERO)).await;
    let show = app.live_show(&[("Card", 5_000, 5)]).await;
    let winner = bidder(&app).await;
    let (id, ends_at) = start_auction(&app, &show, json!({ "variant_id": show.variant_ids[0], "start_cents": 1_000, "duration_s": 5, "mode": "sudden_death" })).await;
    let bid = format!("/api/v1/auctions/{id}/bids");
    app.post(&winner.token, &bid, json!({ "amount_cents": 1_000 }))
        .await;
    crate::helpers::wait_past(ends_at + 500).await;

    let buyer = app.signup("buyer").await;
    for n in 0..3 {
        let (status, body) = app
            .buy(
                &buyer.token,
                &format!("k{n}"),
                buy_body(&show, "pm_card_visa"),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    assert_eq!(end_show(&app, &show).await, StatusCode::OK);
}

/// Attack 4: after logging in, `next` leads only to a path on this site. Browsers read `\` as
/// `/` and drop tabs and newlines, so each of these would have led to evil.example.
#[tokio::test]
async fn login_never_redirects_to_another_site() {
    let app = spawn_app().await;
    let browser = app.browser();
    let user = app.form_signup(&browser, "buyer", "/").await;
    for evil in [
        "//evil.example/",
        "/\\evil.example/",
        "/%5Cevil.example/",
        "/\t/evil.example/",
        "/\n/evil.example",
        "/\x7f",
        "https://evil.example/",
        "/\\/evil.example/",
    ] {
        let browser = app.browser();
        let login = browser
            .get(app.url("/login"))
            .query(&[("next", evil)])
            .send()
            .await
            .expect("login page");
        let login = crate::helpers::read_page(login).await;
        assert_eq!(login.status, StatusCode::OK, "{evil:?}");
        let next = crate::helpers::input_value(&login.body, "next");
        // `%5C` stays encoded in a path, which browsers keep as a path: it may be kept.
        assert!(
            next == "/" || next == "/%5Cevil.example/",
            "{evil:?} rendered as {next:?}"
        );
        let csrf = crate::helpers::input_value(&login.body, "_csrf");
        let res = browser
            .post(app.url("/login"))
            .form(&[
                ("_csrf", csrf.as_str()),
                ("email", &user.email),
                ("password", &user.password),
                ("next", evil),
            ])
            .send()
            .await
            .expect("login sent");
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{evil:?}");
        let location = crate::helpers::header(res.headers(), "location");
        assert!(
            location == "/" || location == "/%5Cevil.example/",
            "{evil:?} redirected to {location:?}"
        );
    }
}

/// Paid orders of `n` buyers, one each: `(buyer token, order id)`.
async fn paid_orders(app: &TestApp, show: &LiveShow, n: usize) -> Vec<(String, i64)> {
    let buyers = app.buyers(n).await;
    let answers = join_all(
        buyers
            .iter()
            .map(|b| app.buy(&b.token, "paid", buy_body(show, "pm_card_visa"))),
    )
    .await;
    buyers
        .into_iter()
        .zip(answers)
        .map(|(b, (status, body))| {
            assert_eq!(status, StatusCode::CREATED, "{body}");
            (b.token, body["order"]["id"].as_i64().expect("order id"))
        })
        .collect()
}

/// Attack 5: ship and refund sent together, and two refunds at once. The order's transition is
/// won before the provider is asked, so a refund is asked for at most once per order, and only
/// for an order that ends refunded.
#[tokio::test]
async fn ship_and_refund_races_refund_at_most_once_and_only_refunded_orders() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2_400, 100)]).await;
    let orders = paid_orders(&app, &show, 30).await;
    let (app, seller) = (&app, show.seller.token.as_str());
    let act = move |id: i64, what: &'static str| {
        let (path, body) = match what {
            "ship" => (
                format!("/api/v1/orders/{id}/ship"),
                json!({ "tracking": "1Z" }),
            ),
            _ => (format!("/api/v1/orders/{id}/refund"), json!({})),
        };
        async move { app.post(seller, &path, body).await.0 }
    };
    // Ship and refund each of the first 20 at once; refund each of the last 10 twice at once.
    let raced = join_all(orders.iter().enumerate().map(|(i, (_, id))| {
        let second = if i < 20 { "ship" } else { "refund" };
        let act = &act;
        async move { tokio::join!(act(*id, "refund"), act(*id, second)) }
    }))
    .await;
    for (first, second) in &raced {
        let ok = [*first, *second].iter().filter(|s| s.is_success()).count();
        assert_eq!(ok, 1, "exactly one of the two wins: {first} {second}");
    }
    let mut refunded = 0;
    for (token, id) in &orders {
        let (_, order) = app.get(Some(token), &format!("/api/v1/orders/{id}")).await;
        let status = order["order"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let charge = format!("ch_test_{id}");
        let was_refunded = app.payments.refunded().contains(&charge);
        assert_eq!(status == "refunded", was_refunded, "order {id} is {status}");
        assert!(status == "refunded" || status == "shipped", "{status}");
        refunded += usize::from(was_refunded);
    }
    assert!(refunded >= 10);
    assert_eq!(app.payments.refund_requests(), refunded);
}

/// Attack 6: the same Idempotency-Key with a different request is refused with
/// `idempotency_key_reused` and changes nothing; the same request repeats its first answer.
#[tokio::test]
async fn a_reused_key_with_a_different_request_is_refused() {
    let app = spawn_app().await;
    let show = app
        .live_show(&[("Tee", 2_000, 10), ("Hat", 1_000, 10)])
        .await;
    let buyer = app.signup("buyer").await;
    let body = buy_body(&show, "pm_card_visa");
    let (status, first) = app.buy(&buyer.token, "same", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let mut changed = Vec::new();
    for (field, value) in [
        ("quantity", json!(2)),
        ("variant_id", json!(show.variant_ids[1])),
        ("payment_method", json!("pm_card_slow")),
        ("code", json!("NOPE")),
    ] {
        let mut other = body.clone();
        other[field] = value;
        changed.push(other);
    }
    let other_show = app.live_show(&[("Mug", 900, 10)]).await;
    changed.push(buy_body(&other_show, "pm_card_visa"));
    for other in changed {
        let answer = app.buy(&buyer.token, "same", other.clone()).await;
        assert_refused(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
        );
    }
    let (status, again) = app.buy(&buyer.token, "same", body).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(again["order"], first["order"]);
    assert_eq!(app.stock(show.product_id).await, vec![9, 10]);
    assert_eq!(app.stock(other_show.product_id).await, vec![10]);
    assert_eq!(app.payments.successful_charges(), 1);
}

/// Attack 8: one key sent to two live shows at once. Only one show's owner decides it; the
/// other request is told the key is in use, and no batch of either show fails over it.
#[tokio::test]
async fn one_key_sent_to_two_shows_at_once_fails_nobody_else() {
    let app = spawn_app().await;
    let theirs = app.live_show(&[("Tee", 2_000, 1_000)]).await;
    let mine = app.live_show(&[("Junk", 100, 1_000)]).await;
    let attacker = app.signup("buyer").await;
    let buyers = app.buyers(20).await;
    for round in 0..5 {
        let key = format!("k{round}");
        let attack = join_all(
            [&theirs, &mine]
                .map(|show| app.buy(&attacker.token, &key, buy_body(show, "pm_card_visa"))),
        );
        let honest = join_all(
            buyers
                .iter()
                .map(|b| app.buy(&b.token, &key, buy_body(&theirs, "pm_card_visa"))),
        );
        let (attack, honest) = tokio::join!(attack, honest);
        for (status, body) in honest {
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
        let won = attack
            .iter()
            .filter(|(s, _)| *s == StatusCode::CREATED)
            .count();
        assert_eq!(won, 1, "{attack:?}");
        for (status, body) in &attack {
            assert!(
                *status == StatusCode::CREATED
                    || body["error"]["code"] == "duplicate"
                    || body["error"]["code"] == "idempotency_key_reused",
                "{status} {body}"
            );
        }
    }
}

async fn login(app: &TestApp, email: &str, password: &str) -> (StatusCode, Option<String>) {
    let res = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("login sent");
    let retry_after = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (res.status(), retry_after)
}

/// Attack 3: guessing one account's password, and signing up in bulk from one client, are
/// limited (429 with `Retry-After`); the right password does not get through a lockout.
#[tokio::test]
async fn password_guessing_and_bulk_signups_are_limited() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.login_attempts_per_account_per_minute = 5;
        c.login_attempts_per_client_per_minute = 1_000;
        c.signups_per_client_per_hour = 3;
    })
    .await;
    let mut emails = Vec::new();
    for n in 0..3 {
        let email = format!("limit{n}@test.dev");
        let (status, body) = app
            .post(
                "",
                "/api/v1/auth/signup",
                json!({ "email": email, "password": "correct horse", "display_name": "L", "role": "buyer" }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        emails.push(email);
    }
    let fourth = app
        .post(
            "",
            "/api/v1/auth/signup",
            json!({ "email": "limit3@test.dev", "password": "correct horse", "display_name": "L", "role": "buyer" }),
        )
        .await;
    assert_refused(&fourth, StatusCode::TOO_MANY_REQUESTS, "rate_limited");

    for _ in 0..5 {
        assert_eq!(
            login(&app, &emails[0], "wrong").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (status, retry_after) = login(&app, &emails[0], "correct horse").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        retry_after
            .and_then(|s| s.parse::<u64>().ok())
            .is_some_and(|s| s >= 1)
    );
    // Another account is not locked out by the first one's attacker.
    assert_eq!(
        login(&app, &emails[1], "correct horse").await.0,
        StatusCode::OK
    );
}

/// Attack 2: a flood of logins for one account runs at most a few password hashes at once and
/// sheds the rest with 503 and `Retry-After`, instead of a thread and 19 MiB per attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_is_shed_not_queued() {
    let app = crate::helpers::spawn_app_with(|c| {
        c.argon2_memory_kib = 8 * 1024;
        c.argon2_iterations = 4;
        c.password_hash_queue = 4;
    })
    .await;
    let user = app.signup("buyer").await;
    let (_, me) = app.get(Some(&user.token), "/api/v1/me").await;
    let email = me["user"]["email"].as_str().expect("email").to_owned();
    let answers = join_all((0..200).map(|_| login(&app, &email, "wrong"))).await;
    let shed: Vec<_> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert!(!shed.is_empty(), "nothing was shed: {answers:?}");
    assert!(shed.iter().all(|(_, retry)| retry.as_deref() == Some("1")));
    assert!(
        answers
            .iter()
            .all(|(s, _)| *s == StatusCode::UNAUTHORIZED || *s == StatusCode::SERVICE_UNAVAILABLE),
        "{answers:?}"
    );
}

/// Lower severity: arithmetic on input saturates before its range check (it wrapped into range),
/// `scheduled_at` is bounded, a body over the limit is 413, and an error quotes at most a short
/// prefix of the input.
#[tokio::test]
async fn huge_numbers_and_huge_bodies_are_refused_without_echo() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Card", 5_000, 10)]).await;
    let host = show.seller.token.as_str();
    let huge = 2_305_843_009_213_693_962_i64;
    let auction = app
        .post(
            host,
            &format!("/api/v1/shows/{}/auctions", show.show_id),
            json!({ "variant_id": show.variant_ids[0], "start_cents": 1_000, "duration_s": 30, "mode": "standard", "extend_s": huge }),
        )
        .await;
    assert_refused(&auction, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input");
    let sale = app
        .post(
            host,
            &format!("/api/v1/shows/{}/flash-sales", show.show_id),
            json!({ "variant_id": show.variant_ids[0], "quantity": 1, "price_cents": 100, "per_buyer_limit": 1, "duration_s": huge }),
        )
        .await;
    assert_refused(&sale, StatusCode::UNPROCESSABLE_ENTITY, "invalid_input");
    for at in [i64::MIN, -1, i64::MAX] {
        let scheduled = app
            .post(
                host,
                "/api/v1/shows",
                json!({ "title": "Later", "category": "beauty", "product_ids": [show.product_id], "scheduled_at": at }),
            )
            .await;
        assert_refused(
            &scheduled,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
        );
    }

    let buyer = app.signup("buyer").await;
    let long = "x".repeat(4 * 1024 * 1024);
    let answer = app.buy(&buyer.token, "long", buy_body(&show, &long)).await;
    assert_refused(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_payment_method",
    );
    assert!(
        answer.1.to_string().len() < 300,
        "the error echoes the input"
    );
    let bloated = format!("{{\"title\":\"{}\"}}", "y".repeat(10 * 1024 * 1024));
    let res = app
        .client
        .post(app.url("/api/v1/shows"))
        .bearer_auth(host)
        .header("content-type", "application/json")
        .body(bloated)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

/// Lower severity: pages (the show page with its one-tap buy above all) cannot be framed by
/// another site, load scripts only from this server, and are not type-sniffed.
#[tokio::test]
async fn pages_cannot_be_framed_and_load_only_our_scripts() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Card", 5_000, 10)]).await;
    for path in [
        "/".to_owned(),
        format!("/shows/{}", show.show_id),
        "/login".into(),
    ] {
        let res = app.client.get(app.url(&path)).send().await.expect("page");
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let h = |name: &str| crate::helpers::header(res.headers(), name).to_owned();
        assert_eq!(h("x-frame-options"), "DENY", "{path}");
        assert_eq!(h("x-content-type-options"), "nosniff", "{path}");
        let csp = h("content-security-policy");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!h("referrer-policy").is_empty(), "{path}");
    }
}

/// Attack 7: a WHEP offer from `client` (through the trusted proxy at 127.0.0.1).
async fn offer_video_from(app: &TestApp, show: i64, client: &str) -> (StatusCode, String) {
    let res = app
        .client
        .post(app.url(&format!("/api/v1/shows/{show}/whep")))
        .header("content-type", "application/sdp")
        .header("x-forwarded-for", client)
        .body(crate::video::offer(
            str0m::media::Direction::RecvOnly,
            false,
        ))
        .send()
        .await
        .expect("offer");
    let status = res.status();
    let body: serde_json::Value = res.json().await.unwrap_or_default();
    (
        status,
        body["error"]["code"].as_str().unwrap_or("").to_owned(),
    )
}

#[tokio::test]
async fn one_address_looping_video_offers_cannot_keep_viewers_out() {
    let app = spawn_app_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1".into()];
        c.max_viewers_per_show = 3;
        c.pending_media_per_client = 2;
        c.media_offers_per_client_per_minute = 10;
    })
    .await;
    let (seller, show, key) = crate::video::scheduled_show(&app).await;
    crate::video::start(&app, &seller, show).await;
    let offer = crate::video::offer(str0m::media::Direction::SendOnly, false);
    assert_eq!(
        crate::video::whip(&app, show, &key, offer).await.status,
        StatusCode::CREATED
    );
    // Offers that never connect, in a loop: two are held, the rest refused with 429.
    let mut answers = std::collections::BTreeMap::new();
    for _ in 0..25 {
        let (status, code) = offer_video_from(&app, show, "203.0.113.9").await;
        *answers.entry((status.as_u16(), code)).or_insert(0) += 1;
    }
    // Two held; the rest refused: by the session limit until the offer rate limit's burst of
    // 10 is spent, then by the rate limit (which lets one more through every 6 s).
    assert_eq!(answers.get(&(201, String::new())), Some(&2), "{answers:?}");
    assert_eq!(
        answers
            .iter()
            .filter(|((status, code), _)| *status == 429
                && (code == "too_many_sessions" || code == "rate_limited"))
            .map(|(_, n)| n)
            .sum::<usize>(),
        23,
        "{answers:?}"
    );
    assert!(
        answers.contains_key(&(429, "too_many_sessions".into())),
        "{answers:?}"
    );
    assert!(
        answers.contains_key(&(429, "rate_limited".into())),
        "{answers:?}"
    );
    // Viewers from other addresses always get in: offers still connecting are not viewers.
    for n in 1..=5 {
        let (status, code) = offer_video_from(&app, show, &format!("198.51.100.{n}")).await;
        assert_eq!(status, StatusCode::CREATED, "viewer {n}: {code}");
    }
}

/// A live-room socket from `client` (through the trusted proxy at 127.0.0.1).
async fn open_socket_from(
    app: &TestApp,
    show: i64,
    client: &str,
) -> Result<crate::helpers::LiveSocket, StatusCode> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("ws://127.0.0.1:{}/api/v1/shows/{show}/live", app.port)
        .into_client_request()
        .expect("request");
    req.headers_mut()
        .insert("x-forwarded-for", client.parse().expect("header"));
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(crate::helpers::LiveSocket { ws }),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status()),
        Err(e) => panic!("socket: {e}"),
    }
}

#[tokio::test]
async fn one_address_cannot_open_sockets_without_end_or_inflate_the_viewer_count() {
    let app = spawn_app_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1".into()];
        c.sockets_per_client = 3;
    })
    .await;
    let show = app.live_show(&[("Ruby", 2400, 20)]).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut ws = open_socket_from(&app, show.show_id, "203.0.113.9")
            .await
            .expect("a few sockets per address");
        ws.until("snapshot", |_| true).await;
        held.push(ws);
    }
    assert_eq!(
        open_socket_from(&app, show.show_id, "203.0.113.9")
            .await
            .err(),
        Some(StatusCode::TOO_MANY_REQUESTS)
    );
    // Someone else gets in, and sees two viewers: the stranger's three sockets count once.
    let mut other = open_socket_from(&app, show.show_id, "198.51.100.7")
        .await
        .expect("another address");
    let snapshot = other.until("snapshot", |_| true).await;
    assert_eq!(snapshot["viewers"], 2, "{snapshot}");
    // A closed socket gives its seat back.
    drop(held.pop());
    let mut again = None;
    for _ in 0..50 {
        match open_socket_from(&app, show.show_id, "203.0.113.9").await {
            Ok(ws) => {
                again = Some(ws);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    assert!(again.is_some(), "the seat came back");
}

/// Lower severity: what every viewer of an auction sees names the leader, but neither their
/// account nor the pseudonym that stands for them in the public log.
#[tokio::test]
async fn the_auction_message_does_not_tie_the_public_log_to_accounts() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Card", 5_000, 2)]).await;
    let (a, b) = (bidder(&app).await, bidder(&app).await);
    let (id, _) = start_auction(&app, &show, json!({ "variant_id": show.variant_ids[0], "start_cents": 1_000, "duration_s": 60, "mode": "standard" })).await;
    let mut stranger = app.connect_live(show.show_id, None).await;
    stranger.until("snapshot", |_| true).await;
    let mut leader_ws = app.connect_live(show.show_id, Some(&a.token)).await;
    leader_ws.until("snapshot", |_| true).await;
    for (who, amount) in [(&a, 1_000), (&b, 1_100), (&a, 1_500)] {
        let (status, _) = app
            .post(
                &who.token,
                &format!("/api/v1/auctions/{id}/bids"),
                json!({ "amount_cents": amount }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let seen = stranger
        .until("auction", |m| m["price_cents"] == 1_500)
        .await;
    let theirs = leader_ws
        .until("auction", |m| m["price_cents"] == 1_500)
        .await;
    assert_eq!(
        (&seen["you_lead"], &theirs["you_lead"]),
        (&json!(false), &json!(true))
    );
    let log = app.auction_log(id).await;
    let pseudonyms: Vec<String> = log
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| serde_json::from_str::<serde_json::Value>(e["body"].as_str()?).ok())
        .filter_map(|b| b["bidder"].as_str().map(str::to_owned))
        .collect();
    assert!(!pseudonyms.is_empty(), "the log names bidders: {log}");
    let text = seen.to_string();
    // By field, not by searching the text for the account's id: ":3" is also in "bids":37.
    let fields: Vec<&String> = seen.as_object().expect("an object").keys().collect();
    assert!(
        !fields
            .iter()
            .any(|f| ["user", "account", "bidder"].iter().any(|w| f.contains(w))),
        "no field names an account or a bidder: {text}"
    );
    for p in &pseudonyms {
        assert!(
            !text.contains(p.as_str()),
            "the message carries the log's pseudonym {p}"
        );
    }
    assert!(seen["leader"].is_string(), "the leader is named: {seen}");
}

/// Lower severity: two shows sharing a product, started at the same moment, never both go live
/// (the check and the write were two steps).
#[tokio::test]
async fn two_shows_sharing_a_product_never_both_go_live() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let (product, _) = app.product(&seller, &[("One", 1_000, 5)]).await;
    for round in 0..10 {
        let mut shows = Vec::new();
        for _ in 0..2 {
            let (status, body) = app
                .post(
                    &seller.token,
                    "/api/v1/shows",
                    json!({ "title": "Live", "category": "beauty", "product_ids": [product] }),
                )
                .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            shows.push(body["id"].as_i64().expect("id"));
        }
        let paths: Vec<String> = shows
            .iter()
            .map(|id| format!("/api/v1/shows/{id}/start"))
            .collect();
        let starts = join_all(paths.iter().map(|p| app.post(&seller.token, p, json!({})))).await;
        let mut statuses: Vec<u16> = starts.iter().map(|(s, _)| s.as_u16()).collect();
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 409], "round {round}: {starts:?}");
        let live = shows[starts
            .iter()
            .position(|(s, _)| *s == StatusCode::OK)
            .expect("one")];
        let (status, _) = app
            .post(
                &seller.token,
                &format!("/api/v1/shows/{live}/end"),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
}

/// A form log-in, optionally marked as forwarded over HTTPS; its `Set-Cookie` for the session.
async fn session_cookie_of_login(app: &TestApp, forwarded_https: bool) -> String {
    let browser = app.browser();
    let user = app.form_signup(&browser, "buyer", "/").await;
    let browser = app.browser();
    let login = crate::helpers::read_page(
        browser
            .get(app.url("/login"))
            .send()
            .await
            .expect("login page"),
    )
    .await;
    let csrf = crate::helpers::input_value(&login.body, "_csrf");
    let mut req = browser.post(app.url("/login")).form(&[
        ("_csrf", csrf.as_str()),
        ("email", &user.email),
        ("password", &user.password),
        ("next", "/"),
    ]);
    if forwarded_https {
        req = req.header("x-forwarded-proto", "https");
    }
    let res = req.send().await.expect("login sent");
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("hawker_session="))
        .expect("a session cookie")
        .to_owned()
}

/// Lower severity: behind a trusted HTTPS proxy the session cookie is `Secure` without being
/// told; a stranger's `X-Forwarded-Proto` changes nothing.
#[tokio::test]
async fn session_cookies_are_secure_behind_a_trusted_https_proxy() {
    let proxied = spawn_app_with(|c| c.trusted_proxies = vec!["127.0.0.1".into()]).await;
    assert!(
        session_cookie_of_login(&proxied, true)
            .await
            .contains("; Secure")
    );
    assert!(
        !session_cookie_of_login(&proxied, false)
            .await
            .contains("Secure")
    );
    let direct = spawn_app().await;
    assert!(
        !session_cookie_of_login(&direct, true)
            .await
            .contains("Secure")
    );
    // The log-in form's CSRF cookie too.
    let form = proxied
        .browser()
        .get(proxied.url("/login"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .expect("login page");
    let form_cookie = crate::helpers::header(form.headers(), "set-cookie").to_owned();
    assert!(form_cookie.ends_with("; Secure"), "{form_cookie}");
    let configured = spawn_app_with(|c| c.secure_cookies = true).await;
    assert!(
        session_cookie_of_login(&configured, false)
            .await
            .contains("; Secure")
    );
}

/// Lower severity: sessions and API tokens stop working after their lifetime, logged out or
/// not (a stolen token is not good forever).
#[tokio::test]
async fn tokens_expire_on_the_server() {
    let app = spawn_app_on_manual_clock(|c| {
        c.api_token_lifetime_s = 2;
        c.session_lifetime_s = 2;
    })
    .await;
    let buyer = app.signup("buyer").await;
    let (status, _) = app.get(Some(&buyer.token), "/api/v1/me").await;
    assert_eq!(status, StatusCode::OK);
    let browser = app.browser();
    app.form_signup(&browser, "buyer", "/").await;
    let page = app.page(&browser, "/orders").await;
    assert_eq!(
        page.status,
        StatusCode::OK,
        "signed in by the session cookie"
    );
    // Past the lifetime; the sweep (every half second here) deletes both.
    app.advance(2_001);
    eventually("the API token expires", || async {
        app.get(Some(&buyer.token), "/api/v1/me").await.0 == StatusCode::UNAUTHORIZED
    })
    .await;
    let me = browser.get(app.url("/api/v1/me")).send().await.expect("me");
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED, "the session expired");
}

/// Lower severity: stream keys are kept only as hashes (a stolen database streams to no show),
/// shown once, replaced from the console, and the console itself goes live with the host's
/// session instead.
#[tokio::test]
async fn stream_keys_are_hashed_shown_once_and_replaceable() {
    use crate::video::{offer, scheduled_show, whip};
    use str0m::media::Direction;
    let store = Arc::new(std::sync::OnceLock::new());
    let kept = store.clone();
    let app = spawn_app_on_store(
        |_| {},
        move |s| {
            let _ = kept.set(s.clone());
            s
        },
    )
    .await;
    let (seller, show, key) = scheduled_show(&app).await;
    let stored = store
        .get()
        .expect("the store")
        .show(hawker_core::ids::ShowId(show))
        .await
        .expect("store")
        .expect("show");
    assert_ne!(stored.stream_key_hash, key, "not stored as it is");
    assert_eq!(
        stored.stream_key_hash,
        hawker_server::secrets::token_hash(&key)
    );
    let (_, body) = app
        .get(Some(&seller.token), &format!("/api/v1/shows/{show}"))
        .await;
    assert!(
        body.get("stream_key").is_none(),
        "never shown again: {body}"
    );

    let (status, body) = app
        .post(
            &seller.token,
            &format!("/api/v1/shows/{show}/stream-key"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let new_key = body["stream_key"].as_str().expect("a new key").to_owned();
    let old = whip(&app, show, &key, offer(Direction::SendOnly, false)).await;
    assert_eq!(
        old.status,
        StatusCode::UNAUTHORIZED,
        "the old key stops working"
    );
    // The intruder was cut off, so the host publishes at once (no `already_publishing`).
    let new = whip(&app, show, &new_key, offer(Direction::SendOnly, false)).await;
    assert_eq!(
        new.status,
        StatusCode::CREATED,
        "the new one works: {}",
        new.text
    );

    // Nobody else can make one.
    let stranger = app.signup("seller").await;
    let (status, _) = app
        .post(
            &stranger.token,
            &format!("/api/v1/shows/{show}/stream-key"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// The console publishes as the signed-in host: its session cookie with the CSRF token, which a
/// page of another site cannot read.
#[tokio::test]
async fn the_console_goes_live_with_the_hosts_session_and_its_csrf_token() {
    use crate::video::offer;
    use str0m::media::Direction;
    let app = spawn_app().await;
    let browser = app.browser();
    app.form_signup(&browser, "seller", "/").await;
    let page = app.page(&browser, "/").await;
    let csrf = crate::helpers::meta_csrf(&page.body);
    let (status, product) = {
        let res = browser
            .post(app.url("/api/v1/products"))
            .header("x-csrf-token", &csrf)
            .json(&json!({ "title": "Lamp", "currency": "USD", "variants": [{ "name": "One", "price_cents": 1_000, "stock": 3 }] }))
            .send()
            .await
            .expect("product");
        (
            res.status(),
            res.json::<serde_json::Value>().await.expect("json"),
        )
    };
    assert_eq!(status, StatusCode::CREATED, "{product}");
    let res = browser
        .post(app.url("/api/v1/shows"))
        .header("x-csrf-token", &csrf)
        .json(&json!({ "title": "Live", "category": "home", "product_ids": [product["id"]] }))
        .send()
        .await
        .expect("show");
    assert_eq!(res.status(), StatusCode::CREATED);
    let show = res.json::<serde_json::Value>().await.expect("json")["id"]
        .as_i64()
        .expect("id");
    let publish = |csrf: Option<&str>| {
        let mut req = browser
            .post(app.url(&format!("/api/v1/shows/{show}/whip")))
            .header("content-type", "application/sdp")
            .body(offer(Direction::SendOnly, false));
        if let Some(csrf) = csrf {
            req = req.header("x-csrf-token", csrf);
        }
        async move { req.send().await.expect("whip").status() }
    };
    assert_eq!(
        publish(None).await,
        StatusCode::UNAUTHORIZED,
        "a cookie alone is not enough"
    );
    assert_eq!(publish(Some("forged")).await, StatusCode::UNAUTHORIZED);
    assert_eq!(publish(Some(&csrf)).await, StatusCode::CREATED);
}

/// Lower severity: an owner that panics (here inside a group commit) leaves the hub, and the
/// show's next buy starts a fresh owner from the store, which sells on with nothing lost.
#[tokio::test]
async fn a_panicking_owner_is_replaced_and_the_show_sells_on() {
    let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let trigger = armed.clone();
    let fail = move |batch: &Batch| {
        let buys = batch
            .events
            .iter()
            .any(|e| matches!(e, Event::Reserved { .. }));
        if buys && trigger.swap(false, Ordering::SeqCst) {
            panic!("injected panic inside the group commit");
        }
        false
    };
    let app = spawn_app_on_store(|_| {}, FaultyStore::wrap(fail, Duration::ZERO)).await;
    let show = app.live_show(&[("Tee", 2_000, 10)]).await;
    let buyers = app.buyers(2).await;
    armed.store(true, Ordering::SeqCst);
    let (status, _) = app
        .buy(&buyers[0].token, "first", buy_body(&show, "pm_card_visa"))
        .await;
    assert!(
        status.is_server_error(),
        "the buy the panic ate is not acknowledged: {status}"
    );
    let mut answer = None;
    for _ in 0..100 {
        let (status, body) = app
            .buy(&buyers[1].token, "second", buy_body(&show, "pm_card_visa"))
            .await;
        if status == StatusCode::CREATED {
            answer = Some(body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(answer.is_some(), "a fresh owner took over");
    assert_eq!(
        app.stock(show.product_id).await,
        vec![9],
        "one unit sold, none lost"
    );
    assert_eq!(end_show(&app, &show).await, StatusCode::OK);
}

/// Abuse limits: uploads are kept forever, so each account may send only so many an hour (a
/// seller cannot fill the disk); others are not affected.
#[tokio::test]
async fn uploads_are_limited_per_account() {
    let app = spawn_app_with(|c| c.uploads_per_account_per_hour = 3).await;
    let seller = app.signup("seller").await;
    let (product, _) = app.product(&seller, &[("One", 1_000, 5)]).await;
    let path = format!("/api/v1/products/{product}/images");
    for n in 0..3 {
        let (status, body) = app
            .upload(&seller.token, &path, &crate::helpers::png_bytes(100 + n))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let refused = app
        .upload(&seller.token, &path, &crate::helpers::png_bytes(200))
        .await;
    assert_refused(&refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    let other = app.signup("seller").await;
    let (theirs, _) = app.product(&other, &[("Two", 1_000, 5)]).await;
    let (status, _) = app
        .upload(
            &other.token,
            &format!("/api/v1/products/{theirs}/images"),
            &crate::helpers::png_bytes(300),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}
