//! Browser flows in headless Chromium against a real Hawker seeded with the demo data.

use hawker_e2e::{Browser, Page, Server, artifacts_dir};
use serde_json::Value;

/// The demo's live show and its products, read from the API.
async fn live_show(server: &Server) -> anyhow::Result<(i64, Vec<i64>)> {
    let shows: Value = reqwest::get(server.url("/api/v1/shows?status=live"))
        .await?
        .json()
        .await?;
    let show = &shows["shows"][0];
    let products = show["product_ids"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    Ok((show["id"].as_i64().unwrap_or(0), products))
}

async fn log_in(page: &Page, server: &Server, email: &str, next: &str) -> anyhow::Result<()> {
    page.goto(&server.url(&format!("/login?next={next}")))
        .await?;
    page.fill("input[name=email]", email).await?;
    page.fill("input[name=password]", hawker_server::demo::DEMO_PASSWORD)
        .await?;
    page.click("#auth-form button[type=submit]").await?;
    arrived(page, next).await
}

/// Waits until the page has navigated to `path` and finished loading it: a page still loading
/// has no CSRF token in its head yet, and requests made from it would be refused.
async fn arrived(page: &Page, path: &str) -> anyhow::Result<()> {
    page.wait_for(&format!(
        "location.pathname === {} && document.readyState === 'complete'",
        serde_json::json!(path)
    ))
    .await
}

fn number_in(text: &str) -> Option<i64> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .and_then(|s| s.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_buyer_signs_up_sees_the_countdown_and_buys_from_the_show() -> anyhow::Result<()> {
    let server = Server::start_with_demo().await?;
    let (show_id, _) = live_show(&server).await?;
    let browser = Browser::launch().await?;
    let page = browser.new_page(390, 844, true).await?;

    page.goto(&server.url(&format!("/signup?next=/shows/{show_id}")))
        .await?;
    page.fill("input[name=email]", "zoe@example.com").await?;
    page.fill("input[name=display_name]", "Zoe").await?;
    page.fill("input[name=password]", "a good password").await?;
    page.click("#auth-form button[type=submit]").await?;
    arrived(&page, &format!("/shows/{show_id}")).await?;

    // The flash sale is on screen with a running countdown and its stock.
    page.wait_for("document.querySelector('#sale') && !document.querySelector('#sale').hidden && /\\d+:\\d\\d/.test(document.querySelector('#sale-countdown').innerText)").await?;
    let first = page.text("#sale-countdown").await?;
    page.wait_for(&format!(
        "document.querySelector('#sale-countdown').innerText !== {}",
        serde_json::json!(first)
    ))
    .await?;
    let left_before = number_in(&page.text("#sale-remaining").await?).unwrap_or(0);
    assert!(left_before > 0, "units are on sale");
    page.screenshot(&artifacts_dir().join("show-phone.png"))
        .await?;

    page.click("#buy-sale").await?;
    page.wait_for("document.querySelector('#buy-sheet').open")
        .await?;
    // The sheet buys on the show's live socket: no POST /orders is made. Counted from here.
    page.eval(
        r#"(() => {
            const real = window.fetch;
            window.orderPosts = 0;
            window.fetch = (url, init) => {
                if (init?.method === 'POST' && /\/api\/v1\/orders$/.test(String(url))) window.orderPosts++;
                return real(url, init);
            };
        })()"#,
    )
    .await?;
    // A declined card: the sheet says so, and the unit goes back on sale.
    page.eval("document.querySelector('#buy-pm').value = 'pm_card_declined'")
        .await?;
    page.click("#buy-submit").await?;
    page.wait_for("document.querySelector('#buy-result.error')?.innerText.includes('declined')")
        .await?;
    page.wait_for(&format!(
        "parseInt(document.querySelector('#sale-remaining').innerText) === {left_before} && !document.querySelector('#buy-submit').disabled"
    ))
    .await?;
    assert_eq!(
        page.eval("window.orderPosts").await?,
        serde_json::json!(0),
        "bought on the live socket"
    );
    // The test card that takes two seconds, with the socket's buys lost on the way: the sheet
    // asks over HTTP with the same key. The unit is the buyer's (reserved) before the payment is
    // through, then the order is placed. The first read of the reserved order fails (a 401, as
    // from an expired session): the sheet must keep its key and ask again, not drop the attempt
    // and let a second tap buy twice.
    page.eval("document.querySelector('#buy-pm').value = 'pm_card_slow'")
        .await?;
    page.eval(
        r#"(() => {
            const send = WebSocket.prototype.send;
            WebSocket.prototype.send = function (data) {
                if (!String(data).includes('"type":"buy"')) return send.call(this, data);
            };
        })()"#,
    )
    .await?;
    page.eval(
        r#"(() => {
            const real = window.fetch;
            let failed = false;
            window.fetch = (url, init) => {
                if (!failed && (init?.method ?? 'GET') === 'GET' && /\/api\/v1\/orders\/\d+$/.test(String(url))) {
                    failed = true;
                    const body = '{"error":{"code":"unauthorized","message":"log in"}}';
                    return Promise.resolve(new Response(body, { status: 401, headers: { 'Content-Type': 'application/json' } }));
                }
                return real(url, init);
            };
        })()"#,
    )
    .await?;
    page.click("#buy-submit").await?;
    page.wait_for("document.querySelector('#buy-result.reserved')?.innerText.includes('Reserved')")
        .await?;
    page.screenshot(&artifacts_dir().join("buy-reserved-phone.png"))
        .await?;
    page.wait_for("document.querySelector('#buy-result.ok') && document.querySelector('#buy-result').innerText.includes('Order placed')").await?;
    assert_eq!(
        page.eval("window.orderPosts > 0").await?,
        serde_json::json!(true),
        "asked over HTTP once the socket did not answer"
    );
    // The room announces the purchase in the chat (the first of a rush at once).
    page.wait_for("[...document.querySelectorAll('.chat-line.system.purchase')].some((li) => li.innerText.includes('bought 1 × Velvet Matte Lipstick'))")
        .await?;
    page.wait_for(&format!(
        "parseInt(document.querySelector('#sale-remaining').innerText) === {}",
        left_before - 1
    ))
    .await?;

    page.goto(&server.url("/orders")).await?;
    page.wait_for("document.querySelector('#orders tbody tr[data-status=paid]')")
        .await?;
    assert_eq!(
        page.eval("document.querySelectorAll('#orders tbody tr[data-status=paid]').length")
            .await?,
        serde_json::json!(1),
        "one paid order, the failed read notwithstanding"
    );
    assert!(
        page.text("#orders")
            .await?
            .contains("Velvet Matte Lipstick")
    );
    // The card that paid is saved as the default, for one-tap buying and auctions won.
    page.wait_for("[...document.querySelectorAll('#payment-methods li')].some((li) => li.innerText.includes('after 2 s') && li.innerText.includes('default'))")
        .await?;
    page.fill("#spend-limit", "150.00").await?;
    page.click("#spend-limit-form button[type=submit]").await?;
    page.wait_for("document.querySelector('#account-note').innerText === 'Limit saved.'")
        .await?;
    assert!(page.js_errors().is_empty(), "{:?}", page.js_errors());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_pins_a_product_and_two_viewers_see_it() -> anyhow::Result<()> {
    let server = Server::start_with_demo().await?;
    let (show_id, products) = live_show(&server).await?;
    let browser = Browser::launch().await?;

    let host = browser.new_page(390, 844, true).await?;
    log_in(
        &host,
        &server,
        "lumi@demo.hawker.dev",
        &format!("/shows/{show_id}/host"),
    )
    .await?;
    let mut viewers = Vec::new();
    for _ in 0..2 {
        let v = browser.new_page(390, 844, true).await?;
        v.goto(&server.url(&format!("/shows/{show_id}"))).await?;
        v.wait_for(
            "document.querySelector('#pinned-title')?.innerText === 'Velvet Matte Lipstick'",
        )
        .await?;
        viewers.push(v);
    }
    host.wait_for("document.querySelector('#host-console')")
        .await?;
    host.click(&format!("button.pin[data-product-id='{}']", products[1]))
        .await?;
    for v in &viewers {
        v.wait_for("document.querySelector('#pinned-title')?.innerText === 'Glow Serum' && !document.querySelector('#pinned').hidden").await?;
        v.wait_for("/\\$39\\.00/.test(document.querySelector('#pinned-price').innerText)")
            .await?;
    }
    host.click("#unpin").await?;
    for v in &viewers {
        v.wait_for("document.querySelector('#pinned').hidden")
            .await?;
    }
    // The viewers' counter counts people, not sockets: the host, and the two anonymous viewers,
    // who share this machine's address and so count once.
    host.wait_for("parseInt(document.querySelector('#host-viewers').innerText) === 2")
        .await?;
    for p in viewers.iter().chain([&host]) {
        assert!(p.js_errors().is_empty(), "{:?}", p.js_errors());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_starts_a_flash_sale_from_a_phone_and_a_viewer_sees_it_count_down()
-> anyhow::Result<()> {
    let server = Server::start_with_demo().await?;
    let (show_id, products) = live_show(&server).await?;
    let serum: Value = reqwest::get(server.url(&format!("/api/v1/products/{}", products[1])))
        .await?
        .json()
        .await?;
    let serum_50ml = serum["variants"][1]["id"].as_i64().unwrap_or(0);
    let browser = Browser::launch().await?;

    let viewer = browser.new_page(390, 844, true).await?;
    viewer
        .goto(&server.url(&format!("/shows/{show_id}")))
        .await?;
    viewer
        .wait_for("document.querySelector('#sale-title')?.innerText.includes('Ruby')")
        .await?;

    let host = browser.new_page(390, 844, true).await?;
    log_in(
        &host,
        &server,
        "lumi@demo.hawker.dev",
        &format!("/shows/{show_id}/host"),
    )
    .await?;
    host.wait_for("document.querySelector('#sale-variant option')")
        .await?;
    host.eval(&format!(
        "document.querySelector('#sale-variant').value = '{serum_50ml}'"
    ))
    .await?;
    host.fill("#sale-quantity", "5").await?;
    host.fill("#sale-price", "29.00").await?;
    host.fill("#sale-limit", "1").await?;
    host.fill("#sale-duration", "90").await?;
    host.click("#sale-form button[type=submit]").await?;
    host.wait_for("document.querySelectorAll('#host-sales li.host-sale').length === 2")
        .await?;
    host.screenshot(&artifacts_dir().join("host-console-phone.png"))
        .await?;

    // The newest sale takes the viewer's screen: its price, its five units, its countdown.
    viewer
        .wait_for("document.querySelector('#sale-title').innerText.includes('Glow Serum · 50 ml')")
        .await?;
    viewer
        .wait_for("/\\$29\\.00/.test(document.querySelector('#sale-price').innerText)")
        .await?;
    viewer
        .wait_for("document.querySelector('#sale-remaining').innerText.startsWith('5')")
        .await?;
    viewer
        .wait_for("/^0?1:\\d\\d$/.test(document.querySelector('#sale-countdown').innerText)")
        .await?;
    for p in [&viewer, &host] {
        assert!(p.js_errors().is_empty(), "{:?}", p.js_errors());
    }
    Ok(())
}

/// Polls `js` for up to `secs`, for waits longer than `Page::wait_for`'s 20 s (a soft close).
async fn wait_long(page: &Page, js: &str, secs: u64) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        match page.wait_for(js).await {
            Ok(()) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
            Err(_) => {}
        }
    }
}

/// Saves the test card for the page's signed-in user, so an auction they win is charged.
async fn save_card(page: &Page) -> anyhow::Result<()> {
    let status = page
        .eval(
            "fetch('/api/v1/payment-methods', { method: 'POST', headers: { 'Content-Type': 'application/json', \
             'X-CSRF-Token': document.querySelector('meta[name=csrf-token]').content }, \
             body: JSON.stringify({ method: 'pm_card_visa' }) }).then((r) => r.status)",
        )
        .await?;
    assert_eq!(status, serde_json::json!(201), "saving the card");
    Ok(())
}

/// `document.querySelector(selector).innerText` as JavaScript, for `wait_for` conditions.
fn text_of(selector: &str) -> String {
    format!(
        "(document.querySelector({})?.innerText ?? '')",
        serde_json::json!(selector)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_viewers_bid_against_each_other_and_the_winner_sees_the_win_and_the_order()
-> anyhow::Result<()> {
    let server = Server::start_with_demo().await?;
    let (show_id, products) = live_show(&server).await?;
    let lipstick: Value = reqwest::get(server.url(&format!("/api/v1/products/{}", products[0])))
        .await?
        .json()
        .await?;
    let ruby = lipstick["variants"][0]["id"].as_i64().unwrap_or(0);
    let show_path = format!("/shows/{show_id}");
    let browser = Browser::launch().await?;

    // Buyer A is the demo's Ana; buyer B signs up. Both save a card: "you bid, you buy".
    let ana = browser.new_page(390, 844, true).await?;
    log_in(&ana, &server, "ana@demo.hawker.dev", &show_path).await?;
    save_card(&ana).await?;
    let ben = browser.new_page(390, 844, true).await?;
    ben.goto(&server.url(&format!("/signup?next={show_path}")))
        .await?;
    ben.fill("input[name=email]", "ben@example.com").await?;
    ben.fill("input[name=display_name]", "Ben").await?;
    ben.fill("input[name=password]", "a good password").await?;
    ben.click("#auth-form button[type=submit]").await?;
    arrived(&ben, &show_path).await?;
    save_card(&ben).await?;
    for p in [&ana, &ben] {
        p.wait_for("document.querySelector('#auction').hidden && document.querySelector('#show-room').dataset.userId !== '0'").await?;
    }

    // The host starts a 20 s standard auction of one Ruby at $10 from the console.
    let host = browser.new_page(390, 844, true).await?;
    log_in(
        &host,
        &server,
        "lumi@demo.hawker.dev",
        &format!("{show_path}/host"),
    )
    .await?;
    host.wait_for("document.querySelector('#auction-variant option')")
        .await?;
    host.eval(&format!(
        "document.querySelector('#auction-variant').value = '{ruby}'"
    ))
    .await?;
    host.fill("#auction-start", "10.00").await?;
    host.fill("#auction-duration", "20").await?;
    host.fill("#auction-mode", "standard").await?;
    host.wait_for("document.querySelector('#auction-extend').offsetParent !== null")
        .await?;
    host.click("#auction-form button[type=submit]").await?;
    host.wait_for(&format!(
        "!document.querySelector('#auction').hidden && {}.includes('Ruby')",
        text_of("#auction-title")
    ))
    .await?;

    // Both viewers see the lot open at $10 with nobody leading; Ana takes the first quick bid.
    for p in [&ana, &ben] {
        p.wait_for(&format!(
            "!document.querySelector('#auction').hidden && {} === '$10.00' && {} === 'No bids yet' && /^00:\\d\\d$/.test({})",
            text_of("#auction-price"),
            text_of("#auction-leader"),
            text_of("#auction-countdown")
        ))
        .await?;
    }
    ana.wait_for("document.querySelector('#auction-bids button.quick-bid[data-amount=\"1000\"]')")
        .await?;
    ana.click("#auction-bids button.quick-bid").await?;
    for p in [&ana, &ben, &host] {
        p.wait_for(&format!(
            "{} === 'Ana' && {} === '$10.00'",
            text_of("#auction-leader"),
            text_of("#auction-price")
        ))
        .await?;
    }
    ana.wait_for(&format!(
        "{}.includes(\"You're winning\")",
        text_of("#auction-status")
    ))
    .await?;
    assert_eq!(
        ben.eval("document.querySelector('#auction-status').hidden")
            .await?,
        serde_json::json!(true),
        "Ben has not bid: neither winning nor outbid"
    );

    // Ben bids $15 by hand: he leads, Ana is told she is outbid.
    ben.fill("#auction-custom", "15.00").await?;
    ben.click("#auction-bid").await?;
    for p in [&ana, &ben, &host] {
        p.wait_for(&format!(
            "{} === 'Ben' && {} === '$15.00'",
            text_of("#auction-leader"),
            text_of("#auction-price")
        ))
        .await?;
    }
    ben.wait_for(&format!(
        "{}.includes(\"You're winning\")",
        text_of("#auction-status")
    ))
    .await?;
    ana.wait_for(&format!("{} === 'Outbid'", text_of("#auction-status")))
        .await?;
    ana.screenshot(&artifacts_dir().join("auction-outbid-phone.png"))
        .await?;

    // The clock runs out (a late bid adds up to 10 s): Ben won, was charged, and sees the log hash.
    wait_long(
        &ben,
        &format!(
            "document.querySelector('#auction').dataset.status === 'ended' && {}.includes('Ben') && /[0-9a-f]{{16}}/.test({})",
            text_of("#auction-result"),
            text_of("#auction-hash")
        ),
        40,
    )
    .await?;
    ben.wait_for(&format!(
        "{}.includes('You won') && {}.includes('Paid')",
        text_of("#auction-status"),
        text_of("#auction-result")
    ))
    .await?;
    // The sold list is folded away on a phone, so its text is read rather than its rendering.
    ben.wait_for("/Ruby.*Ben.*\\$15\\.00/.test(document.querySelector('#sold-list').textContent)")
        .await?;
    ana.wait_for(&format!(
        "{}.includes('Outbid') && {}.includes('Ben')",
        text_of("#auction-status"),
        text_of("#auction-result")
    ))
    .await?;
    assert_eq!(
        ben.eval("document.querySelectorAll('#auction-controls:not([hidden])').length")
            .await?,
        serde_json::json!(0),
        "no bidding on an ended auction"
    );
    ben.screenshot(&artifacts_dir().join("auction-won-phone.png"))
        .await?;
    // The host watched it all without bid controls, and the console's sold list has the lot.
    host.wait_for(&format!(
        "{}.includes('Ben') && {}.includes('$15.00') && !document.querySelector('#auction-custom')",
        text_of("#sold-list"),
        text_of("#sold-list")
    ))
    .await?;
    host.eval("document.querySelector('.area-auction').scrollIntoView()")
        .await?;
    host.screenshot(&artifacts_dir().join("auction-host-phone.png"))
        .await?;

    // The shown hash is in the published log behind the Verify link.
    let shown = ben
        .eval("document.querySelector('#auction-hash code').innerText.replace('…', '')")
        .await?;
    let shown = shown.as_str().unwrap_or_default().to_owned();
    assert_eq!(shown.len(), 16, "{shown:?}");
    let verify = ben
        .eval("document.querySelector('#auction-hash a').getAttribute('href')")
        .await?;
    let log: Value = reqwest::get(server.url(verify.as_str().unwrap_or_default()))
        .await?
        .json()
        .await?;
    // One page holds the whole of this short log.
    assert!(log["next"].is_null(), "{log}");
    assert!(
        log["entries"].as_array().is_some_and(|entries| entries
            .iter()
            .any(|e| e["hash"].as_str().is_some_and(|h| h.starts_with(&shown)))),
        "{shown} not in {log}"
    );

    // Ben's orders list the lot, paid.
    ben.goto(&server.url("/orders")).await?;
    ben.wait_for("document.querySelector('#orders tbody tr[data-status=paid]')")
        .await?;
    let orders = ben.text("#orders").await?;
    assert!(
        orders.contains("Velvet Matte Lipstick") && orders.contains("$15.00"),
        "{orders}"
    );
    for p in [&ana, &ben, &host] {
        assert!(p.js_errors().is_empty(), "{:?}", p.js_errors());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_bid_from_the_pinned_product_leads_when_the_auction_opens() -> anyhow::Result<()> {
    let server = Server::start_with_demo().await?;
    let (show_id, _) = live_show(&server).await?;
    let show_path = format!("/shows/{show_id}");
    let browser = Browser::launch().await?;

    // Ana sets a $30 maximum on the pinned lipstick's first shade before any auction.
    let ana = browser.new_page(390, 844, true).await?;
    log_in(&ana, &server, "ana@demo.hawker.dev", &show_path).await?;
    save_card(&ana).await?;
    ana.wait_for("!document.querySelector('#prebid-form').hidden && document.querySelector('#prebid-variant option')").await?;
    let variant = ana
        .eval("document.querySelector('#prebid-variant').value")
        .await?;
    ana.fill("#prebid-max", "30.00").await?;
    ana.click("#prebid-form button[type=submit]").await?;
    ana.wait_for(&format!("{}.startsWith('Saved')", text_of("#prebid-note")))
        .await?;

    // The host opens an auction on that shade at $10: Ana's pre-bid takes the lead at once.
    let host = browser.new_page(390, 844, true).await?;
    log_in(
        &host,
        &server,
        "lumi@demo.hawker.dev",
        &format!("{show_path}/host"),
    )
    .await?;
    let started = host
        .eval(&format!(
            "fetch('/api/v1/shows/{show_id}/auctions', {{ method: 'POST', headers: {{ 'Content-Type': 'application/json', \
             'X-CSRF-Token': document.querySelector('meta[name=csrf-token]').content }}, \
             body: JSON.stringify({{ variant_id: Number({variant}), start_cents: 1000, duration_s: 30, mode: 'standard' }}) }}).then((r) => r.status)"
        ))
        .await?;
    assert_eq!(started, serde_json::json!(201));
    ana.wait_for(&format!(
        "!document.querySelector('#auction').hidden && {}.includes('winning')",
        text_of("#auction-status")
    ))
    .await?;
    ana.wait_for(&format!(
        "{} === '$10.00' && {} === 'Ana'",
        text_of("#auction-price"),
        text_of("#auction-leader")
    ))
    .await?;
    for p in [&ana, &host] {
        assert!(p.js_errors().is_empty(), "{:?}", p.js_errors());
    }
    Ok(())
}

/// Frames decoded (video) and samples received (audio) by a page's WebRTC connection.
async fn received(page: &Page, pc: &str) -> anyhow::Result<(i64, i64)> {
    let v = page
        .eval(&format!(
            "(async () => {{ const pc = {pc}; if (!pc) return [0, 0]; let f = 0, a = 0; \
             (await pc.getStats()).forEach(r => {{ if (r.type === 'inbound-rtp' && r.kind === 'video') f = r.framesDecoded || 0; \
             if (r.type === 'inbound-rtp' && r.kind === 'audio') a = r.totalSamplesReceived || 0; }}); return [f, a]; }})()"
        ))
        .await?;
    Ok((v[0].as_i64().unwrap_or(0), v[1].as_i64().unwrap_or(0)))
}

/// Waits until a viewer's decoded frames pass `above` (video really flows, not one frame).
async fn wait_decoding(page: &Page, above: i64) -> anyhow::Result<i64> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (frames, samples) = received(page, "window.hawkerVideo?.pc").await?;
        if frames > above + 10 && samples > 0 {
            return Ok(frames);
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!(
                "video did not flow: {frames} frames (wanted > {above}), {samples} audio samples; state {:?}; errors {:?}",
                page.eval("document.querySelector('#video')?.dataset.video")
                    .await?,
                page.js_errors()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_goes_live_from_the_console_and_two_viewers_watch_through_a_restart()
-> anyhow::Result<()> {
    let server = Server::start_with_demo().await?;
    let (show_id, _) = live_show(&server).await?;
    let browser = Browser::launch().await?;
    let host = browser.new_page(390, 844, true).await?;
    log_in(
        &host,
        &server,
        "lumi@demo.hawker.dev",
        &format!("/shows/{show_id}/host"),
    )
    .await?;
    host.wait_for("document.querySelector('#go-live')").await?;
    host.click("#go-live").await?;
    wait_long(
        &host,
        "document.querySelector('#publish-state')?.dataset.publishing === 'live'",
        30,
    )
    .await?;

    let mut viewers = Vec::new();
    for _ in 0..2 {
        let page = browser.new_page(390, 844, true).await?;
        page.goto(&server.url(&format!("/shows/{show_id}"))).await?;
        viewers.push(page);
    }
    let mut frames = Vec::new();
    for page in &viewers {
        frames.push(wait_decoding(page, 0).await?);
        page.wait_for("document.querySelector('#live-video').videoWidth > 0")
            .await?;
        page.wait_for("document.querySelector('#video').dataset.video === 'playing'")
            .await?;
    }
    viewers[0]
        .screenshot(&artifacts_dir().join("video-viewer-phone.png"))
        .await?;
    host.screenshot(&artifacts_dir().join("video-host-phone.png"))
        .await?;

    // The host stops: viewers are told the host is reconnecting, and stay connected.
    host.click("#stop-live").await?;
    for page in &viewers {
        page.wait_for("document.querySelector('#video').dataset.video === 'reconnecting'")
            .await?;
    }
    viewers[1]
        .screenshot(&artifacts_dir().join("video-viewer-reconnecting.png"))
        .await?;

    // Back within the grace period: the same viewers decode again.
    host.click("#go-live").await?;
    wait_long(
        &host,
        "document.querySelector('#publish-state')?.dataset.publishing === 'live'",
        30,
    )
    .await?;
    for (page, before) in viewers.iter().zip(&frames) {
        let (now, _) = received(page, "window.hawkerVideo?.pc").await?;
        wait_decoding(page, now.max(*before)).await?;
        page.wait_for("document.querySelector('#video').dataset.video === 'playing'")
            .await?;
    }
    for page in viewers.iter().chain([&host]) {
        assert!(page.js_errors().is_empty(), "{:?}", page.js_errors());
    }
    Ok(())
}
