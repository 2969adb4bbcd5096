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
    page.wait_for(&format!(
        "location.pathname === {}",
        serde_json::json!(next)
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
    page.wait_for(&format!("location.pathname === '/shows/{show_id}'"))
        .await?;

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
    page.eval("document.querySelector('#buy-pm').value = 'pm_card_visa'")
        .await?;
    page.click("#buy-submit").await?;
    page.wait_for("document.querySelector('#buy-result.ok') && document.querySelector('#buy-result').innerText.includes('Order placed')").await?;
    page.wait_for(&format!(
        "parseInt(document.querySelector('#sale-remaining').innerText) === {}",
        left_before - 1
    ))
    .await?;

    page.goto(&server.url("/orders")).await?;
    page.wait_for("document.querySelector('#orders tbody tr[data-status=paid]')")
        .await?;
    assert!(
        page.text("#orders")
            .await?
            .contains("Velvet Matte Lipstick")
    );
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
    // The viewers' counter saw all three of us.
    host.wait_for("parseInt(document.querySelector('#host-viewers').innerText) >= 3")
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
