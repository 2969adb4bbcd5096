//! Lists that grow with use come a page at a time: walking the pages yields every item once, in
//! order, even while new items arrive; a page's cursor moves where a list starts, never whose
//! items it holds; and the pages that show those lists link to the next page.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::auctions::{bidder, start_auction, verify_file, wait_ended};
use crate::helpers::{
    Account, LiveShow, TestApp, assert_refused, spawn_app, spawn_app_on_manual_clock,
};

/// `n` paid orders of one unit each by `buyer` in `show`, one after the other.
async fn buy_n(app: &TestApp, show: &LiveShow, buyer: &Account, n: usize, tag: &str) -> Vec<i64> {
    let body = json!({ "show_id": show.show_id, "variant_id": show.variant_ids[0], "quantity": 1, "payment_method": "pm_card_visa" });
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let (status, order) = app
            .buy(&buyer.token, &format!("{tag}-{i}"), body.clone())
            .await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        ids.push(order["order"]["id"].as_i64().expect("id"));
    }
    ids
}

/// The items of each page of a list, read `limit` at a time from its top.
async fn pages(app: &TestApp, token: &str, path: &str, key: &str, limit: u32) -> Vec<Vec<Value>> {
    pages_after(app, token, path, key, limit, None).await
}

/// The items of each page of a list, read `limit` at a time after `start` (a cursor).
async fn pages_after(
    app: &TestApp,
    token: &str,
    path: &str,
    key: &str,
    limit: u32,
    start: Option<&str>,
) -> Vec<Vec<Value>> {
    let join = if path.contains('?') { '&' } else { '?' };
    let mut out = Vec::new();
    let mut after = start.map(|c| format!("&after={c}")).unwrap_or_default();
    loop {
        let (status, body) = app
            .get(Some(token), &format!("{path}{join}limit={limit}{after}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let items = body[key].as_array().expect("a list").clone();
        assert!(items.len() <= limit as usize, "{body}");
        out.push(items);
        assert!(out.len() < 1_000, "a walk that never ends: {path}");
        match body["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => {
                assert!(
                    body["next"].is_null(),
                    "next is null on the last page: {body}"
                );
                return out;
            }
        }
    }
}

fn ids(items: &[Value]) -> Vec<i64> {
    items
        .iter()
        .map(|o| o["id"].as_i64().expect("an id"))
        .collect()
}

/// Newest first: by `created_at`, then by `id`, both descending.
fn assert_newest_first(orders: &[Value]) {
    let keys: Vec<(i64, i64)> = orders
        .iter()
        .map(|o| {
            (
                o["created_at"].as_i64().expect("created_at"),
                o["id"].as_i64().expect("id"),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(keys, sorted, "newest first");
}

fn same_set(a: &[i64], b: &[i64]) -> bool {
    a.len() == b.len() && a.iter().collect::<HashSet<_>>() == b.iter().collect::<HashSet<_>>()
}

#[tokio::test]
async fn a_buyers_orders_page_newest_first_and_new_orders_do_not_shift_older_ones() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 100)]).await;
    let buyer = app.signup("buyer").await;
    let bought = buy_n(&app, &show, &buyer, 7, "walk").await;

    let walked = pages(&app, &buyer.token, "/api/v1/orders", "orders", 3).await;
    assert_eq!(
        walked.iter().map(Vec::len).collect::<Vec<_>>(),
        [3, 3, 1],
        "7 orders, 3 a page"
    );
    let all: Vec<Value> = walked.concat();
    assert!(same_set(&ids(&all), &bought), "every order once: {all:?}");
    assert_newest_first(&all);

    // Orders placed between two reads are newer than the cursor: the rest of the walk still
    // yields each older order once, and nothing else.
    let (_, first) = app.get(Some(&buyer.token), "/api/v1/orders?limit=3").await;
    let next = first["next"].as_str().expect("a next page").to_owned();
    let newer = buy_n(&app, &show, &buyer, 2, "between").await;
    let rest = pages_after(
        &app,
        &buyer.token,
        "/api/v1/orders",
        "orders",
        3,
        Some(&next),
    )
    .await
    .concat();
    let mut seen = ids(first["orders"].as_array().expect("orders"));
    seen.extend(ids(&rest));
    assert!(same_set(&seen, &bought), "{seen:?} against {bought:?}");
    assert!(newer.iter().all(|id| !seen.contains(id)));

    // Without `limit`, 50 a page; all nine fit.
    let (_, whole) = app.get(Some(&buyer.token), "/api/v1/orders").await;
    assert_eq!(whole["orders"].as_array().map(Vec::len), Some(9));
    assert!(whole["next"].is_null());
}

#[tokio::test]
async fn a_sellers_orders_page_by_show_and_a_cursor_never_crosses_sellers() {
    let app = spawn_app().await;
    let mine = app.live_show(&[("Ruby", 2400, 100)]).await;
    let theirs = app.live_show(&[("Jade", 1800, 100)]).await;
    let buyer = app.signup("buyer").await;
    let in_mine = buy_n(&app, &mine, &buyer, 5, "mine").await;
    let in_theirs = buy_n(&app, &theirs, &buyer, 4, "theirs").await;

    let walked = pages(
        &app,
        &mine.seller.token,
        "/api/v1/seller/orders",
        "orders",
        2,
    )
    .await;
    assert_eq!(walked.len(), 3);
    let all = walked.concat();
    assert!(same_set(&ids(&all), &in_mine), "{all:?}");
    assert_newest_first(&all);
    let of_show = app
        .every_page(
            &mine.seller.token,
            &format!("/api/v1/seller/orders?show_id={}", mine.show_id),
            "orders",
            2,
        )
        .await;
    assert!(same_set(&ids(&of_show), &in_mine));
    let (_, none) = app
        .get(
            Some(&mine.seller.token),
            &format!("/api/v1/seller/orders?show_id={}", theirs.show_id),
        )
        .await;
    assert_eq!(none["orders"], json!([]), "another seller's show: {none}");

    // The other seller's cursor only says where to start; the list stays the asker's own.
    let (_, their_first) = app
        .get(Some(&theirs.seller.token), "/api/v1/seller/orders?limit=1")
        .await;
    let their_cursor = their_first["next"].as_str().expect("a cursor");
    let with_theirs = app
        .every_page(
            &mine.seller.token,
            &format!("/api/v1/seller/orders?after={their_cursor}"),
            "orders",
            50,
        )
        .await;
    assert!(
        ids(&with_theirs).iter().all(|id| in_mine.contains(id)),
        "{with_theirs:?}"
    );
    assert!(ids(&with_theirs).iter().all(|id| !in_theirs.contains(id)));
}

#[tokio::test]
async fn a_limit_out_of_range_or_a_cursor_not_ours_is_a_400() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 10)]).await;
    let buyer = app.signup("buyer").await;
    buy_n(&app, &show, &buyer, 1, "one").await;
    let seller = &show.seller.token;
    for path in ["/api/v1/orders", "/api/v1/seller/orders"] {
        let token = if path.contains("seller") {
            seller.as_str()
        } else {
            buyer.token.as_str()
        };
        for limit in ["0", "201", "-1", "ten", "99999999999"] {
            assert_refused(
                &app.get(Some(token), &format!("{path}?limit={limit}")).await,
                StatusCode::BAD_REQUEST,
                "bad_query",
            );
        }
        // Not hex, not our format, and a well-formed cursor of a list with another key (a
        // log's, one key).
        for after in [
            "garbage",
            "01",
            "zz",
            "0100000000000000070000",
            "010000000000000007",
        ] {
            assert_refused(
                &app.get(Some(token), &format!("{path}?after={after}")).await,
                StatusCode::BAD_REQUEST,
                "bad_cursor",
            );
        }
        assert_refused(
            &app.get(Some(token), &format!("{path}?page=2")).await,
            StatusCode::BAD_REQUEST,
            "bad_query",
        );
        let (status, body) = app.get(Some(token), &format!("{path}?limit=200")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

/// The `href` of the page's link to the next page of `what` (`data-more`), if any.
pub fn more_link(html: &str, what: &str) -> Option<String> {
    let needle = format!("data-more=\"{what}\" href=\"");
    let rest = &html[html.find(&needle)? + needle.len()..];
    // As a browser reads the attribute: askama writes `&` as `&#38;`.
    Some(
        rest[..rest.find('"')?]
            .replace("&#38;", "&")
            .replace("&amp;", "&"),
    )
}

/// A page as a Bearer client reads it: status and body.
async fn html(app: &TestApp, token: &str, path: &str) -> (StatusCode, String) {
    let res = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("page");
    (res.status(), res.text().await.expect("body"))
}

#[tokio::test]
async fn the_orders_pages_show_fifty_and_link_to_older_ones() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 100)]).await;
    let buyer = app.signup("buyer").await;
    let bought = buy_n(&app, &show, &buyer, 51, "page").await;
    let row = |id: i64| format!("data-order-id=\"{id}\"");

    for (token, here) in [
        (&buyer.token, "/orders"),
        (&show.seller.token, "/dashboard/orders"),
    ] {
        let (status, first) = html(&app, token, here).await;
        assert_eq!(status, StatusCode::OK);
        let shown = bought
            .iter()
            .filter(|id| first.contains(&row(**id)))
            .count();
        assert_eq!(shown, 50, "one page of orders on {here}");
        assert!(
            !first.contains("Newest orders"),
            "the first page links nowhere back"
        );
        let older = more_link(&first, "orders").expect("a link to older orders");
        assert!(older.starts_with(&format!("{here}?after=")), "{older}");

        let (status, second) = html(&app, token, &older).await;
        assert_eq!(status, StatusCode::OK);
        let oldest = bought[0];
        assert!(
            second.contains(&row(oldest)),
            "the oldest order is on the second page"
        );
        assert!(!first.contains(&row(oldest)));
        assert_eq!(
            bought
                .iter()
                .filter(|id| second.contains(&row(**id)))
                .count(),
            1
        );
        assert_eq!(more_link(&second, "orders"), None, "the last page");
        assert!(
            second.contains(&format!("class=\"button secondary\" href=\"{here}\"")),
            "back to the newest"
        );

        let (status, _) = html(&app, token, &format!("{here}?after=garbage")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}

fn seqs(entries: &[Value]) -> Vec<i64> {
    entries
        .iter()
        .map(|e| e["seq"].as_i64().expect("seq"))
        .collect()
}

#[tokio::test]
async fn commerce_and_product_logs_page_oldest_first_and_keep_to_their_show() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 100)]).await;
    let other = app.live_show(&[("Jade", 1800, 100)]).await;
    let buyer = app.signup("buyer").await;
    buy_n(&app, &show, &buyer, 3, "log").await;
    buy_n(&app, &other, &buyer, 2, "other").await;
    let path = format!("/api/v1/shows/{}/log", show.show_id);
    let token = &show.seller.token;

    let (_, whole) = app.get(Some(token), &format!("{path}?limit=200")).await;
    let whole = whole["entries"].as_array().expect("entries").clone();
    assert_eq!(whole.len(), 6, "reserved and paid, three times: {whole:?}");
    let walked = pages(&app, token, &path, "entries", 4).await;
    assert_eq!(walked.iter().map(Vec::len).collect::<Vec<_>>(), [4, 2]);
    let walked = walked.concat();
    assert_eq!(walked, whole, "the same lines, once each, in order");
    let order = seqs(&walked);
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "oldest first: {order:?}"
    );

    // Lines appended while a client pages come after the ones it has; nothing is read twice.
    let (_, first) = app.get(Some(token), &format!("{path}?limit=4")).await;
    let next = first["next"].as_str().expect("more").to_owned();
    buy_n(&app, &show, &buyer, 1, "later").await;
    let rest = pages_after(&app, token, &path, "entries", 4, Some(&next))
        .await
        .concat();
    let mut seen = seqs(first["entries"].as_array().expect("entries"));
    seen.extend(seqs(&rest));
    assert_eq!(seen.len(), 8, "the six, and the two lines of the new order");
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "{seen:?}");

    // A cursor from this show's log, on another's, starts there but lists only that show.
    let theirs = app
        .every_page(
            &other.seller.token,
            &format!("/api/v1/shows/{}/log", other.show_id),
            "entries",
            50,
        )
        .await;
    let (status, crossed) = app
        .get(
            Some(&other.seller.token),
            &format!("/api/v1/shows/{}/log?after={next}", other.show_id),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{crossed}");
    for e in crossed["entries"].as_array().expect("entries") {
        assert!(theirs.contains(e), "{e} is not of the other show");
    }
    assert_refused(
        &app.get(Some(token), &format!("{path}?limit=0")).await,
        StatusCode::BAD_REQUEST,
        "bad_query",
    );
    // An order's cursor has two keys; a log's has one.
    let (_, orders) = app.get(Some(&buyer.token), "/api/v1/orders?limit=1").await;
    let order_cursor = orders["next"].as_str().expect("a cursor");
    assert_refused(
        &app.get(Some(token), &format!("{path}?after={order_cursor}"))
            .await,
        StatusCode::BAD_REQUEST,
        "bad_cursor",
    );

    // A product's catalog edits page the same way.
    let (product_id, variants) = app
        .product(&show.seller, &[("A", 1000, 1), ("B", 1000, 1)])
        .await;
    for stock in 2..5 {
        let edit = json!({ "title": "Velvet lipstick", "currency": "USD", "variants": [{ "id": variants[0], "name": "A", "price_cents": 1000, "stock": stock }, { "id": variants[1], "name": "B", "price_cents": 1000, "stock": stock }] });
        let (status, body) = app
            .request(
                reqwest::Method::PUT,
                Some(token),
                &format!("/api/v1/products/{product_id}"),
                Some(edit),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let path = format!("/api/v1/products/{product_id}/log");
    let walked = pages(&app, token, &path, "entries", 3).await;
    assert_eq!(walked.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 2]);
    let order = seqs(&walked.concat());
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
}

#[tokio::test]
async fn an_auction_log_pages_and_its_pages_saved_in_a_row_verify() {
    let app = spawn_app_on_manual_clock(|_| {}).await;
    let show = app.live_show(&[("Card", 5_000, 2)]).await;
    let (a, b) = (bidder(&app).await, bidder(&app).await);
    let (id, ends_at) = start_auction(&app, &show, json!({ "variant_id": show.variant_ids[0], "start_cents": 500, "duration_s": 5, "mode": "sudden_death" })).await;
    for (who, amount) in [(&a, 500), (&b, 700), (&a, 900), (&b, 1_100)] {
        let (status, body) = app
            .post(
                &who.token,
                &format!("/api/v1/auctions/{id}/bids"),
                json!({ "amount_cents": amount }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    app.advance(ends_at - app.clock.now().0 + 1);
    let ended = wait_ended(&app, id).await;

    let path = format!("/api/v1/auctions/{id}/log");
    let (_, whole) = app.get(None, &format!("{path}?limit=200")).await;
    let whole = whole["entries"].as_array().expect("entries").clone();
    assert!(
        whole.len() >= 6,
        "the start, four bids, the close: {whole:?}"
    );
    // Pages as a client saves them: each answer as it came, one after another.
    let mut saved = String::new();
    let mut walked = Vec::new();
    let mut after = String::new();
    loop {
        let res = app
            .client
            .get(app.url(&format!("{path}?limit=2{after}")))
            .send()
            .await
            .expect("page");
        assert_eq!(res.status(), StatusCode::OK);
        let text = res.text().await.expect("body");
        saved.push_str(&text);
        saved.push('\n');
        let page: Value = serde_json::from_str(&text).expect("JSON");
        walked.push(page["entries"].as_array().expect("entries").clone());
        match page["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    assert_eq!(walked.concat(), whole, "every entry once, in order");
    assert!(walked.iter().all(|p| p.len() <= 2));
    let (ok, out) = verify_file(&saved);
    assert!(ok, "{out}");
    let winner = ended["winner"].as_str().expect("a winner");
    assert!(
        out.contains(&format!("winner {winner} at 1100 cents")),
        "{out}"
    );
    assert_eq!(
        ended["final_hash"],
        whole.last().expect("an entry")["hash"],
        "the auction's final hash seals the last page"
    );

    // A page left out breaks the chain where it was.
    let pages: Vec<&str> = saved.lines().collect();
    let (ok, out) = verify_file(&[pages[0], pages[2]].join("\n"));
    assert!(!ok, "{out}");
    assert!(out.contains("entry 3 (seq 5)"), "{out}");

    assert_refused(
        &app.get(None, &format!("{path}?limit=201")).await,
        StatusCode::BAD_REQUEST,
        "bad_query",
    );
    assert_refused(
        &app.get(None, &format!("{path}?after=nope")).await,
        StatusCode::BAD_REQUEST,
        "bad_cursor",
    );
}

/// `n` products of `seller`, titled `P0`, `P1`, …, each with two variants; their ids in order.
async fn products(app: &TestApp, seller: &Account, n: usize) -> Vec<i64> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let (status, body) = app
            .post(
                &seller.token,
                "/api/v1/products",
                json!({ "title": format!("P{i}"), "currency": "USD", "variants": [{ "name": "S", "price_cents": 1000 + i, "stock": 1 }, { "name": "M", "price_cents": 1100, "stock": 2 }] }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["id"].as_i64().expect("id"));
    }
    ids
}

async fn archive(app: &TestApp, seller: &Account, id: i64) {
    let (status, body) = app
        .request(
            reqwest::Method::DELETE,
            Some(&seller.token),
            &format!("/api/v1/products/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
}

#[tokio::test]
async fn a_sellers_products_page_active_first_each_with_its_variants() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let other = app.signup("seller").await;
    let made = products(&app, &seller, 7).await;
    products(&app, &other, 2).await;
    for id in [made[1], made[4]] {
        archive(&app, &seller, id).await;
    }

    let walked = pages(&app, &seller.token, "/api/v1/products", "products", 2).await;
    assert_eq!(walked.len(), 4, "seven products, two a page");
    let all = walked.concat();
    let newest_first = |archived: bool| -> Vec<i64> {
        made.iter()
            .rev()
            .copied()
            .filter(|id| [made[1], made[4]].contains(id) == archived)
            .collect()
    };
    let mut want = newest_first(false);
    want.extend(newest_first(true));
    assert_eq!(ids(&all), want, "active first, newest first within each");
    for p in &all {
        let (_, one) = app
            .get(None, &format!("/api/v1/products/{}", p["id"]))
            .await;
        assert_eq!(p["variants"], one["variants"], "its own variants, in order");
        assert_eq!(p["variants"].as_array().map(Vec::len), Some(2));
    }

    // A product made while a client pages is newer than its cursor: never on a later page.
    let (_, first) = app
        .get(Some(&seller.token), "/api/v1/products?limit=3")
        .await;
    let next = first["next"].as_str().expect("more").to_owned();
    let newer = products(&app, &seller, 1).await;
    let rest = pages_after(
        &app,
        &seller.token,
        "/api/v1/products",
        "products",
        3,
        Some(&next),
    )
    .await
    .concat();
    let mut seen = ids(first["products"].as_array().expect("products"));
    seen.extend(ids(&rest));
    assert_eq!(seen, want);
    assert!(!seen.contains(&newer[0]));

    assert_refused(
        &app.get(Some(&seller.token), "/api/v1/products?limit=0")
            .await,
        StatusCode::BAD_REQUEST,
        "bad_query",
    );
    // A cursor whose first key is no `archived` value.
    assert_refused(
        &app.get(
            Some(&seller.token),
            "/api/v1/products?after=0100000000000000070000000000000001",
        )
        .await,
        StatusCode::BAD_REQUEST,
        "bad_cursor",
    );
}

#[tokio::test]
async fn the_dashboard_and_the_store_page_link_to_more_products() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let made = products(&app, &seller, 51).await;
    archive(&app, &seller, made[50]).await;
    let row = |id: i64| format!("href=\"/dashboard/products/{id}\"");
    let card = |id: i64| format!("data-product-id=\"{id}\"");

    let (status, first) = html(&app, &seller.token, "/dashboard").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        made.iter().filter(|id| first.contains(&row(**id))).count(),
        50
    );
    assert!(
        !first.contains(&row(made[50])),
        "the archived one comes last"
    );
    let more = more_link(&first, "products").expect("more products");
    assert!(more.starts_with("/dashboard?products_after="), "{more}");
    let (_, second) = html(&app, &seller.token, &more).await;
    assert!(second.contains(&row(made[50])) && second.contains("(archived)"));
    assert_eq!(more_link(&second, "products"), None);

    // The store page shows active products only, 24 to a page.
    let store = format!("/stores/{}", seller.id);
    let mut shown = Vec::new();
    let mut next = Some(store.clone());
    let mut pages_seen = 0;
    while let Some(path) = next {
        let (status, page) = html(&app, &seller.token, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        shown.extend(made.iter().copied().filter(|id| page.contains(&card(*id))));
        next = more_link(&page, "products");
        pages_seen += 1;
        assert!(pages_seen < 10, "a walk that never ends");
    }
    assert_eq!(pages_seen, 3, "50 active products, 24 a page");
    assert_eq!(shown.len(), 50);
    assert!(!shown.contains(&made[50]));
}

/// A show of `seller` with a product of its own, in `category`: scheduled at `at` (ms), then
/// `"live"` or `"ended"` if asked.
async fn show_of(app: &TestApp, seller: &Account, category: &str, at: i64, state: &str) -> i64 {
    let (product_id, _) = app.product(seller, &[("One", 1000, 5)]).await;
    let (status, body) = app
        .post(
            &seller.token,
            "/api/v1/shows",
            json!({ "title": format!("{category} {at}"), "category": category, "product_ids": [product_id], "scheduled_at": at }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_i64().expect("id");
    for step in match state {
        "live" => &["start"][..],
        "ended" => &["start", "end"][..],
        _ => &[][..],
    } {
        let (status, body) = app
            .post(
                &seller.token,
                &format!("/api/v1/shows/{id}/{step}"),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    id
}

/// A show's place in the listing: live, scheduled, ended; then latest first.
fn listing_key(show: &Value) -> (u8, std::cmp::Reverse<(i64, i64)>) {
    let rank = match show["status"].as_str() {
        Some("live") => 0,
        Some("scheduled") => 1,
        _ => 2,
    };
    let at = show["started_at"]
        .as_i64()
        .or(show["scheduled_at"].as_i64())
        .expect("a time");
    (
        rank,
        std::cmp::Reverse((at, show["id"].as_i64().expect("id"))),
    )
}

#[tokio::test]
async fn shows_page_live_then_scheduled_then_ended_latest_first() {
    let app = spawn_app().await;
    let (ana, bo) = (app.signup("seller").await, app.signup("seller").await);
    let hour = 3_600_000;
    let soon = crate::helpers::now_ms() + hour;
    let mut made = Vec::new();
    for (seller, category, at, state) in [
        (&ana, "beauty", soon, "live"),
        (&ana, "beauty", soon + hour, "scheduled"),
        (&ana, "sneakers", soon + 2 * hour, "scheduled"),
        (&ana, "beauty", soon, "ended"),
        (&ana, "beauty", soon, "ended"),
        (&bo, "sneakers", soon, "live"),
        (&bo, "beauty", soon + 3 * hour, "scheduled"),
        (&bo, "beauty", soon, "ended"),
    ] {
        made.push(show_of(&app, seller, category, at, state).await);
    }
    let anyone = &ana.token;

    let (_, whole) = app.get(None, "/api/v1/shows?limit=200").await;
    let whole = whole["shows"].as_array().expect("shows").clone();
    assert!(same_set(&ids(&whole), &made), "{whole:?}");
    let mut sorted = whole.clone();
    sorted.sort_by_key(listing_key);
    assert_eq!(
        ids(&whole),
        ids(&sorted),
        "live, scheduled, ended; latest first"
    );
    let walked = pages(&app, anyone, "/api/v1/shows", "shows", 3).await;
    assert_eq!(walked.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 2]);
    assert_eq!(walked.concat(), whole, "every show once, in order");

    // Filters hold on every page.
    for (query, want) in [
        ("status=scheduled", vec![made[6], made[2], made[1]]),
        ("status=ended", vec![made[7], made[4], made[3]]),
        (
            &format!("seller_id={}", bo.id) as &str,
            vec![made[5], made[6], made[7]],
        ),
        ("category=sneakers", vec![made[5], made[2]]),
    ] {
        let got = app
            .every_page(anyone, &format!("/api/v1/shows?{query}"), "shows", 1)
            .await;
        assert_eq!(ids(&got), want, "{query}");
    }

    // A show scheduled while a client pages lands before its cursor; the rest is unchanged.
    let (_, first) = app.get(None, "/api/v1/shows?limit=4").await;
    let next = first["next"].as_str().expect("more").to_owned();
    let newer = show_of(&app, &bo, "beauty", soon + 9 * hour, "scheduled").await;
    let rest = pages_after(&app, anyone, "/api/v1/shows", "shows", 4, Some(&next))
        .await
        .concat();
    let mut seen = ids(first["shows"].as_array().expect("shows"));
    seen.extend(ids(&rest));
    assert_eq!(seen, ids(&whole));
    assert!(!seen.contains(&newer));

    assert_refused(
        &app.get(None, "/api/v1/shows?limit=201").await,
        StatusCode::BAD_REQUEST,
        "bad_query",
    );
    // A cursor of another list (two keys), and one whose first key is no status.
    for after in [
        "0100000000000000070000000000000001",
        "01000000000000000700000000000000010000000000000001",
    ] {
        assert_refused(
            &app.get(None, &format!("/api/v1/shows?after={after}")).await,
            StatusCode::BAD_REQUEST,
            "bad_cursor",
        );
    }
}

#[tokio::test]
async fn the_home_dashboard_and_store_pages_link_to_more_shows() {
    let app = spawn_app().await;
    let (host, seller) = (app.signup("seller").await, app.signup("seller").await);
    let live = show_of(&app, &host, "beauty", crate::helpers::now_ms(), "live").await;
    let (product_id, _) = app.product(&seller, &[("One", 1000, 5)]).await;
    let soon = crate::helpers::now_ms() + 3_600_000;
    let mut scheduled = Vec::new();
    for i in 0..51 {
        let (status, body) = app
            .post(
                &seller.token,
                "/api/v1/shows",
                json!({ "title": format!("Drop {i}"), "category": "sneakers", "product_ids": [product_id], "scheduled_at": soon + i }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        scheduled.push(body["id"].as_i64().expect("id"));
    }
    let card = |id: i64| format!("data-show-id=\"{id}\"");
    // Every page of a list of cards at `start`: the ids shown, page by page.
    let walk = |start: String| {
        let (app, token, scheduled, card) = (&app, &host.token, &scheduled, &card);
        async move {
            let mut shown = Vec::new();
            let mut next = Some(start);
            while let Some(path) = next {
                let (status, page) = html(app, token, &path).await;
                assert_eq!(status, StatusCode::OK, "{path}");
                shown.push(
                    scheduled
                        .iter()
                        .chain([&live])
                        .copied()
                        .filter(|id| page.contains(&card(*id)))
                        .collect::<Vec<i64>>(),
                );
                next = more_link(&page, "shows");
                assert!(shown.len() < 10, "a walk that never ends: {path}");
            }
            shown
        }
    };

    let home = walk("/".into()).await;
    assert_eq!(home.iter().map(Vec::len).collect::<Vec<_>>(), [24, 24, 4]);
    assert!(
        home[0].contains(&live),
        "the live show opens the first page"
    );
    let (_, first) = html(&app, &host.token, "/").await;
    assert!(
        first.contains("href=\"/?category=sneakers\""),
        "category chips"
    );
    let more = more_link(&first, "shows").expect("more shows");
    let (_, second) = html(&app, &host.token, &more).await;
    assert!(
        !second.contains("id=\"live-now\""),
        "no empty live section later"
    );
    assert!(second.contains("Back to the top"));

    let sneakers = walk("/?category=sneakers".into()).await;
    assert_eq!(
        sneakers.iter().map(Vec::len).collect::<Vec<_>>(),
        [24, 24, 3]
    );
    let (_, page) = html(&app, &host.token, "/?category=sneakers").await;
    let more = more_link(&page, "shows").expect("more");
    assert!(more.starts_with("/?category=sneakers&after="), "{more}");

    let store = walk(format!("/stores/{}", seller.id)).await;
    assert_eq!(store.iter().map(Vec::len).collect::<Vec<_>>(), [24, 24, 3]);
    assert_eq!(store.concat().len(), 51);

    let (status, dashboard) = html(&app, &seller.token, "/dashboard").await;
    assert_eq!(status, StatusCode::OK);
    let row = |id: i64| format!("<a href=\"/shows/{id}\">");
    assert_eq!(
        scheduled
            .iter()
            .filter(|id| dashboard.contains(&row(**id)))
            .count(),
        50
    );
    let more = more_link(&dashboard, "shows").expect("more shows");
    assert!(more.starts_with("/dashboard?shows_after="), "{more}");
    let (_, rest) = html(&app, &seller.token, &more).await;
    assert_eq!(
        scheduled
            .iter()
            .filter(|id| rest.contains(&row(**id)))
            .count(),
        1
    );
}

#[tokio::test]
async fn the_openapi_document_says_which_lists_page_and_how() {
    let app = spawn_app().await;
    let (status, doc) = app.get(None, "/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/api/v1/orders",
        "/api/v1/seller/orders",
        "/api/v1/shows",
        "/api/v1/products",
        "/api/v1/shows/{id}/log",
        "/api/v1/products/{id}/log",
        "/api/v1/auctions/{id}/log",
    ] {
        let get = &doc["paths"][path]["get"];
        let names: Vec<&str> = get["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{path} has query parameters: {get}"))
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(
            names.contains(&"limit") && names.contains(&"after"),
            "{path}: {names:?}"
        );
        assert!(get["responses"]["400"].is_object(), "{path}: {get}");
        assert!(
            get["responses"]["200"]["description"]
                .as_str()
                .is_some_and(|d| d.contains("next")),
            "{path}: {get}"
        );
    }
}
