//! WHIP and WHEP over HTTP: what a client sees for good and bad offers, keys and states, and
//! the CORS answers that let browser tools on other origins use them.

use reqwest::StatusCode;
use serde_json::{Value, json};
use str0m::media::{Direction, MediaKind};
use str0m::{Candidate, Rtc};

use crate::helpers::{self, Account, TestApp, assert_refused, spawn_app, spawn_app_with};

/// A real offer, as a browser would send it: audio and video in `direction`, and optionally a
/// data channel (load tools add one).
pub(crate) fn offer(direction: Direction, data_channel: bool) -> String {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| str0m::crypto::from_feature_flags().install_process_default());
    let mut rtc = Rtc::new(std::time::Instant::now());
    let addr = "127.0.0.1:40000".parse().expect("addr");
    rtc.add_local_candidate(Candidate::host(addr, "udp").expect("candidate"));
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Video, direction, None, None, None);
    change.add_media(MediaKind::Audio, direction, None, None, None);
    if data_channel {
        change.add_channel("load".into());
    }
    let (offer, _) = change.apply().expect("an offer");
    offer.to_sdp_string()
}

pub(crate) struct Reply {
    pub status: StatusCode,
    location: String,
    content_type: String,
    cors: String,
    pub text: String,
}

impl Reply {
    fn json(&self) -> (StatusCode, Value) {
        (
            self.status,
            serde_json::from_str(&self.text).unwrap_or(Value::Null),
        )
    }
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
    content_type: Option<&str>,
    body: String,
) -> Reply {
    let mut req = app.client.request(method, app.url(path)).body(body);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let res = req.send().await.expect("request");
    let header = |name: &str| helpers::header(res.headers(), name).to_owned();
    Reply {
        status: res.status(),
        location: header("location"),
        content_type: header("content-type"),
        cors: header("access-control-allow-origin"),
        text: res.text().await.expect("body"),
    }
}

pub(crate) async fn whip(app: &TestApp, show: i64, key: &str, sdp: String) -> Reply {
    let path = format!("/api/v1/shows/{show}/whip");
    send(
        app,
        reqwest::Method::POST,
        &path,
        Some(key),
        Some("application/sdp"),
        sdp,
    )
    .await
}

async fn whep(app: &TestApp, show: i64, sdp: String) -> Reply {
    let path = format!("/api/v1/shows/{show}/whep");
    send(
        app,
        reqwest::Method::POST,
        &path,
        None,
        Some("application/sdp"),
        sdp,
    )
    .await
}

/// A scheduled show and its stream key.
pub(crate) async fn scheduled_show(app: &TestApp) -> (Account, i64, String) {
    let seller = app.signup("seller").await;
    let (product, _) = app.product(&seller, &[("One", 1_000, 5)]).await;
    let (id, key) = schedule(app, &seller, product).await;
    (seller, id, key)
}

/// Schedules a show selling `product`; its id and stream key.
async fn schedule(app: &TestApp, seller: &Account, product: i64) -> (i64, String) {
    let (status, body) = app
        .post(
            &seller.token,
            "/api/v1/shows",
            json!({ "title": "Live", "category": "beauty", "product_ids": [product] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let key = body["stream_key"].as_str().expect("stream key").to_owned();
    (body["id"].as_i64().expect("id"), key)
}

/// The host presses Start show.
pub(crate) async fn start(app: &TestApp, seller: &Account, show: i64) {
    let (status, body) = app
        .post(
            &seller.token,
            &format!("/api/v1/shows/{show}/start"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn whip_refuses_wrong_keys_bad_offers_and_a_second_publisher() {
    let app = spawn_app().await;
    let (_, show, key) = scheduled_show(&app).await;
    let good = || offer(Direction::SendOnly, false);

    assert_refused(
        &whip(&app, show, "sk_wrong", good()).await.json(),
        StatusCode::UNAUTHORIZED,
        "bad_stream_key",
    );
    let path = format!("/api/v1/shows/{show}/whip");
    let no_key = send(
        &app,
        reqwest::Method::POST,
        &path,
        None,
        Some("application/sdp"),
        good(),
    )
    .await;
    assert_refused(&no_key.json(), StatusCode::UNAUTHORIZED, "bad_stream_key");
    let json_body = send(
        &app,
        reqwest::Method::POST,
        &path,
        Some(&key),
        Some("application/json"),
        good(),
    )
    .await;
    assert_refused(
        &json_body.json(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    assert_refused(
        &whip(&app, show, &key, "v=0\r\nnonsense".into())
            .await
            .json(),
        StatusCode::BAD_REQUEST,
        "bad_sdp",
    );
    assert_refused(
        &whip(&app, 999_999, &key, good()).await.json(),
        StatusCode::NOT_FOUND,
        "not_found",
    );

    let first = whip(&app, show, &key, good()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(first.content_type, "application/sdp");
    assert!(
        first
            .location
            .starts_with(&format!("/api/v1/shows/{show}/whip/")),
        "{}",
        first.location
    );
    assert!(first.text.contains("a=ice-lite"), "{}", first.text);
    assert!(
        first.text.contains("a=candidate:"),
        "the answer carries our candidate"
    );
    assert!(
        first.text.contains("H264/90000"),
        "H.264 preferred: {}",
        first.text
    );

    // Someone else (or a second OBS) while the first publisher is fresh.
    assert_refused(
        &whip(&app, show, &key, good()).await.json(),
        StatusCode::CONFLICT,
        "already_publishing",
    );

    // Trickle is not supported; stopping needs the key.
    let patch = send(
        &app,
        reqwest::Method::PATCH,
        &first.location,
        Some(&key),
        Some("application/trickle-ice-sdpfrag"),
        String::new(),
    )
    .await;
    assert_eq!(patch.status, StatusCode::METHOD_NOT_ALLOWED);
    let unauth = send(
        &app,
        reqwest::Method::DELETE,
        &first.location,
        None,
        None,
        String::new(),
    )
    .await;
    assert_refused(&unauth.json(), StatusCode::UNAUTHORIZED, "bad_stream_key");
    let stopped = send(
        &app,
        reqwest::Method::DELETE,
        &first.location,
        Some(&key),
        None,
        String::new(),
    )
    .await;
    assert_eq!(stopped.status, StatusCode::NO_CONTENT);
    let again = send(
        &app,
        reqwest::Method::DELETE,
        &first.location,
        Some(&key),
        None,
        String::new(),
    )
    .await;
    assert_refused(&again.json(), StatusCode::NOT_FOUND, "not_found");

    // After Stop the host can publish again at once (within the reconnect grace).
    assert_eq!(
        whip(&app, show, &key, good()).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn whep_needs_a_live_show_with_a_publisher() {
    let app = spawn_app().await;
    let (seller, show, key) = scheduled_show(&app).await;
    let recv = || offer(Direction::RecvOnly, false);

    assert_refused(
        &whep(&app, show, recv()).await.json(),
        StatusCode::CONFLICT,
        "show_not_live",
    );
    start(&app, &seller, show).await;
    assert_refused(
        &whep(&app, show, recv()).await.json(),
        StatusCode::CONFLICT,
        "not_on_air",
    );

    assert_eq!(
        whip(&app, show, &key, offer(Direction::SendOnly, false))
            .await
            .status,
        StatusCode::CREATED
    );
    assert_refused(
        &whep(&app, show, "garbage".into()).await.json(),
        StatusCode::BAD_REQUEST,
        "bad_sdp",
    );
    let viewer = whep(&app, show, recv()).await;
    assert_eq!(viewer.status, StatusCode::CREATED, "{}", viewer.text);
    assert!(
        viewer
            .location
            .starts_with(&format!("/api/v1/shows/{show}/whep/"))
    );
    // A load tool's offer with a data channel is accepted too.
    let with_channel = whep(&app, show, offer(Direction::RecvOnly, true)).await;
    assert_eq!(
        with_channel.status,
        StatusCode::CREATED,
        "{}",
        with_channel.text
    );

    let bye = send(
        &app,
        reqwest::Method::DELETE,
        &viewer.location,
        None,
        None,
        String::new(),
    )
    .await;
    assert_eq!(bye.status, StatusCode::NO_CONTENT);
    let gone = send(
        &app,
        reqwest::Method::DELETE,
        &viewer.location,
        None,
        None,
        String::new(),
    )
    .await;
    assert_refused(&gone.json(), StatusCode::NOT_FOUND, "not_found");

    // Ending the show takes the video off air and refuses new publishers.
    let (status, _) = app
        .post(
            &seller.token,
            &format!("/api/v1/shows/{show}/end"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_refused(
        &whep(&app, show, recv()).await.json(),
        StatusCode::CONFLICT,
        "show_not_live",
    );
    assert_refused(
        &whip(&app, show, &key, offer(Direction::SendOnly, false))
            .await
            .json(),
        StatusCode::CONFLICT,
        "show_ended",
    );
}

/// The server's session limit, over HTTP. A show's own limit counts connected viewers, so it is
/// tested with peers that connect (`hawker-media`'s tests); these offers never connect.
#[tokio::test]
async fn viewer_limits_are_enforced() {
    let app = spawn_app_with(|c| c.max_media_sessions = 2).await;
    let (seller, show, key) = scheduled_show(&app).await;
    start(&app, &seller, show).await;
    assert_eq!(
        whip(&app, show, &key, offer(Direction::SendOnly, false))
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        whep(&app, show, offer(Direction::RecvOnly, false))
            .await
            .status,
        StatusCode::CREATED
    );
    assert_refused(
        &whep(&app, show, offer(Direction::RecvOnly, false))
            .await
            .json(),
        StatusCode::SERVICE_UNAVAILABLE,
        "server_full",
    );
}

#[tokio::test]
async fn whip_and_whep_answer_cors_preflights_from_any_origin() {
    let app = spawn_app().await;
    let (_, show, _) = scheduled_show(&app).await;
    for path in [
        format!("/api/v1/shows/{show}/whip"),
        format!("/api/v1/shows/{show}/whep"),
    ] {
        let res = app
            .client
            .request(reqwest::Method::OPTIONS, app.url(&path))
            .header("origin", "https://tools.example")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
            .await
            .expect("preflight");
        assert_eq!(res.status(), StatusCode::NO_CONTENT, "{path}");
        let h = res.headers();
        assert_eq!(h["access-control-allow-origin"], "*");
        let methods = h["access-control-allow-methods"]
            .to_str()
            .unwrap_or_default();
        assert!(
            methods.contains("POST") && methods.contains("DELETE"),
            "{methods}"
        );
        let headers = h["access-control-allow-headers"]
            .to_str()
            .unwrap_or_default()
            .to_lowercase();
        assert!(headers.contains("authorization") && headers.contains("content-type"));
    }
    // Refusals carry the CORS header too, so a cross-origin tool can read the reason.
    let refused = whep(&app, show, offer(Direction::RecvOnly, false)).await;
    assert_eq!(refused.cors, "*");
    assert_refused(&refused.json(), StatusCode::CONFLICT, "show_not_live");
}

#[tokio::test]
async fn whip_refuses_a_show_that_could_not_go_live() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let (product, _) = app.product(&seller, &[("One", 1_000, 5)]).await;
    let (morning, _) = schedule(&app, &seller, product).await;
    let (evening, key) = schedule(&app, &seller, product).await;
    start(&app, &seller, morning).await;
    // The evening show's product is live in the morning one: its media would reach nobody.
    assert_refused(
        &whip(&app, evening, &key, offer(Direction::SendOnly, false))
            .await
            .json(),
        StatusCode::CONFLICT,
        "product_live_elsewhere",
    );
}
