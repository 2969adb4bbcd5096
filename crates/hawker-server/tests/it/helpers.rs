//! `spawn_app()`: a real Hawker on port 0 with its own temporary SQLite database, and typed
//! helpers to act on it over real HTTP and WebSocket connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hawker_server::clock::Clock;
use hawker_server::payments::TestProvider;
use hawker_server::store::Store;
use hawker_server::{App, Config};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub struct TestApp {
    pub base: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub payments: Arc<TestProvider>,
    /// The server's clock (a manual one moves only by [`TestApp::advance`]).
    pub clock: Clock,
    /// Keeps the temporary database alive as long as the app.
    pub _data_dir: tempfile::TempDir,
}

/// Settings every test starts from: a temporary data dir, port 0, cheap password hashing, and
/// no practical limit on log-ins and sign-ups (every test user comes from 127.0.0.1; the
/// limits' own tests set them).
pub fn test_config(dir: &std::path::Path) -> Config {
    Config {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.to_path_buf(),
        argon2_memory_kib: 64,
        argon2_iterations: 1,
        media_port: 0,
        login_attempts_per_account_per_minute: 1_000_000,
        login_attempts_per_client_per_minute: 1_000_000,
        signups_per_client_per_hour: 1_000_000,
        password_hash_queue: 100_000,
        media_offers_per_client_per_minute: 1_000_000,
        media_sessions_per_client: 100_000,
        pending_media_per_client: 100_000,
        sockets_per_client: 100_000,
        uploads_per_account_per_hour: 1_000_000,
        ..Config::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_on_store(adjust, |store| store).await
}

/// An app whose store is wrapped by `wrap` (e.g. [`crate::faults::FaultyStore`]).
pub async fn spawn_app_on_store(
    adjust: impl FnOnce(&mut Config),
    wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
) -> TestApp {
    spawn_app_at(Clock::system(), adjust, wrap).await
}

/// An app on a manual clock: time moves only when the test calls [`TestApp::advance`].
pub async fn spawn_app_on_manual_clock(adjust: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_at(Clock::manual(), adjust, |store| store).await
}

pub async fn spawn_app_at(
    clock: Clock,
    adjust: impl FnOnce(&mut Config),
    wrap: impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store>,
) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(dir.path());
    adjust(&mut config);
    let app = App::build_with(config, clock.clone(), wrap)
        .await
        .expect("app builds");
    let port = app.port();
    let payments = app.test_payments().expect("test provider");
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    TestApp {
        base: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .build()
            .expect("client"),
        payments,
        clock,
        _data_dir: dir,
    }
}

/// Polls `check` every 50 ms until it holds, failing after 10 s: for what a server does on its
/// own tick (an owner's every 250 ms, a sweep's) after a test moved its clock.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

static NEXT_USER: AtomicUsize = AtomicUsize::new(1);

#[derive(Debug, Clone)]
pub struct Account {
    pub id: i64,
    pub token: String,
}

/// A seller with one product of `variants` variants, and a live show selling it.
#[derive(Debug, Clone)]
pub struct LiveShow {
    pub seller: Account,
    pub show_id: i64,
    pub product_id: i64,
    pub variant_ids: Vec<i64>,
}

impl TestApp {
    /// Moves a manual clock forward; the server's owners see it at their next tick (250 ms).
    pub fn advance(&self, ms: i64) {
        assert!(self.clock.is_manual(), "only a manual clock can be moved");
        self.clock.advance(ms);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        token: Option<&str>,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.request(reqwest::Method::POST, Some(token), path, Some(body))
            .await
    }

    pub async fn get(&self, token: Option<&str>, path: &str) -> (StatusCode, Value) {
        self.request(reqwest::Method::GET, token, path, None).await
    }

    pub async fn signup(&self, role: &str) -> Account {
        let n = NEXT_USER.fetch_add(1, Ordering::Relaxed);
        let (status, body) = self
            .request(
                reqwest::Method::POST,
                None,
                "/api/v1/auth/signup",
                Some(json!({ "email": format!("user{n}@test.dev"), "password": "correct horse", "display_name": format!("User {n}"), "role": role })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        Account {
            id: body["user"]["id"].as_i64().expect("id"),
            token: body["token"].as_str().expect("token").to_owned(),
        }
    }

    /// Signs up many buyers at once.
    pub async fn buyers(&self, n: usize) -> Vec<Account> {
        let mut out = Vec::with_capacity(n);
        for chunk in (0..n).collect::<Vec<_>>().chunks(50) {
            let batch =
                futures_util::future::join_all(chunk.iter().map(|_| self.signup("buyer"))).await;
            out.extend(batch);
        }
        out
    }

    pub async fn product(
        &self,
        seller: &Account,
        variants: &[(&str, i64, i64)],
    ) -> (i64, Vec<i64>) {
        let variants: Vec<Value> = variants
            .iter()
            .map(|(n, p, s)| json!({ "name": n, "price_cents": p, "stock": s }))
            .collect();
        let (status, body) = self.post(&seller.token, "/api/v1/products", json!({ "title": "Velvet lipstick", "description": "matte", "currency": "USD", "variants": variants })).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let ids = body["variants"]
            .as_array()
            .expect("variants")
            .iter()
            .map(|v| v["id"].as_i64().expect("id"))
            .collect();
        (body["id"].as_i64().expect("id"), ids)
    }

    /// A seller, a product with the given variants (`(name, price_cents, stock)`), a live show.
    pub async fn live_show(&self, variants: &[(&str, i64, i64)]) -> LiveShow {
        let seller = self.signup("seller").await;
        let (product_id, variant_ids) = self.product(&seller, variants).await;
        let (status, body) = self
            .post(
                &seller.token,
                "/api/v1/shows",
                json!({ "title": "Drop", "category": "beauty", "product_ids": [product_id] }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let show_id = body["id"].as_i64().expect("id");
        let (status, body) = self
            .post(
                &seller.token,
                &format!("/api/v1/shows/{show_id}/start"),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        LiveShow {
            seller,
            show_id,
            product_id,
            variant_ids,
        }
    }

    pub async fn start_sale(
        &self,
        show: &LiveShow,
        quantity: i64,
        per_buyer_limit: i64,
        duration_s: i64,
    ) -> i64 {
        let (status, body) = self
            .post(
                &show.seller.token,
                &format!("/api/v1/shows/{}/flash-sales", show.show_id),
                json!({ "variant_id": show.variant_ids[0], "quantity": quantity, "price_cents": 1500, "per_buyer_limit": per_buyer_limit, "duration_s": duration_s }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_i64().expect("sale id")
    }

    /// `POST /orders` as a buyer's retry-safe request, ready to send.
    pub fn order_request(&self, token: &str, key: &str, body: &Value) -> reqwest::RequestBuilder {
        self.client
            .post(self.url("/api/v1/orders"))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(body)
    }

    pub async fn buy(&self, token: &str, key: &str, body: Value) -> (StatusCode, Value) {
        let res = self
            .order_request(token, key, &body)
            .send()
            .await
            .expect("sent");
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// `POST /orders` with `Prefer: respond-async`: the status, the `Preference-Applied` and
    /// `Location` headers, and the body.
    pub async fn buy_async(
        &self,
        token: &str,
        key: &str,
        body: &Value,
    ) -> (StatusCode, String, String, Value) {
        let res = self
            .order_request(token, key, body)
            .header("Prefer", "respond-async")
            .send()
            .await
            .expect("sent");
        let applied = header(res.headers(), "preference-applied").to_owned();
        let location = header(res.headers(), "location").to_owned();
        (
            res.status(),
            applied,
            location,
            res.json().await.unwrap_or_default(),
        )
    }

    /// Polls the order until it leaves `reserved` (failing after `within`) and returns it.
    pub async fn settled_order(&self, token: &str, id: i64, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let (status, body) = self.get(Some(token), &format!("/api/v1/orders/{id}")).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            if body["order"]["status"] != "reserved" {
                return body["order"].clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "order {id} stays reserved"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn connect_live(&self, show_id: i64, token: Option<&str>) -> LiveSocket {
        let mut req = format!("ws://127.0.0.1:{}/api/v1/shows/{show_id}/live", self.port)
            .into_client_request()
            .expect("request");
        if let Some(t) = token {
            req.headers_mut().insert(
                "authorization",
                format!("Bearer {t}").parse().expect("header"),
            );
        }
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("socket connects");
        LiveSocket { ws }
    }

    /// A viewer on a connection with a tiny receive buffer, so the server notices quickly when
    /// it stops reading.
    pub async fn connect_live_slow(&self, show_id: i64) -> LiveSocket {
        let req = format!("ws://127.0.0.1:{}/api/v1/shows/{show_id}/live", self.port)
            .into_client_request()
            .expect("request");
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("small buffer");
        let stream = socket
            .connect(([127, 0, 0, 1], self.port).into())
            .await
            .expect("connects");
        let (ws, _) =
            tokio_tungstenite::client_async(req, tokio_tungstenite::MaybeTlsStream::Plain(stream))
                .await
                .expect("handshake");
        LiveSocket { ws }
    }
}

pub struct LiveSocket {
    pub ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl LiveSocket {
    /// The next JSON message, failing the test after 10 s of silence.
    pub async fn next(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("a message within 10 s")
                .expect("socket open")
                .expect("no error");
            if let Message::Text(t) = msg {
                return serde_json::from_str(&t).expect("JSON");
            }
        }
    }

    /// Skips messages until one of `kind` arrives that satisfies `pred`.
    pub async fn until(&mut self, kind: &str, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let m = self.next().await;
            if m["type"] == kind && pred(&m) {
                return m;
            }
        }
    }

    pub async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::Text(v.to_string().into()))
            .await
            .expect("sent");
    }
}

// Helpers for refusals, pages and uploads (`bad_input.rs`, `pages.rs`).

/// Asserts a refusal: `want` status, exactly the `{"error":{"code","message"}}` shape, `code`.
#[track_caller]
pub fn assert_refused((status, body): &(StatusCode, Value), want: StatusCode, code: &str) {
    assert_eq!(*status, want, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "a readable message: {body}");
    assert_eq!(
        body.as_object().map(|o| o.len()),
        Some(1),
        "only the error object: {body}"
    );
}

/// Milliseconds since the epoch, as the server's clock reads them (same machine).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Polls every 50 ms until the wall clock passes `at_ms`.
pub async fn wait_past(at_ms: i64) {
    while now_ms() <= at_ms {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A PNG-looking body of `len` bytes: the signature, then filler. Only the magic number is checked.
pub fn png_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    bytes.resize(len.max(8), 7);
    bytes
}

/// The `value` of the first `<input name="{name}" value="…">` in `html`.
pub fn input_value(html: &str, name: &str) -> String {
    let at = html
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no {name} field in {html}"));
    let rest = &html[at + name.len() + 15..];
    rest[..rest.find('"').expect("closing quote")].to_owned()
}

/// The session's CSRF token from a page's `<meta name="csrf-token">`.
pub fn meta_csrf(html: &str) -> String {
    let at = html
        .find("<meta name=\"csrf-token\" content=\"")
        .expect("csrf meta tag")
        + 33;
    html[at..at + html[at..].find('"').expect("closing quote")].to_owned()
}

/// A page as a browser sees it: status, headers and body.
pub struct Page {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> &str {
        header(&self.headers, name)
    }
}

/// A header's value as text, or "" when it is missing or not text.
pub fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

pub async fn read_page(res: reqwest::Response) -> Page {
    let (status, headers) = (res.status(), res.headers().clone());
    Page {
        status,
        headers,
        body: res.text().await.expect("body"),
    }
}

/// An account made through the sign-up page; its browser holds the session cookie.
pub struct FormUser {
    pub email: String,
    pub password: String,
    pub display_name: String,
}

impl TestApp {
    /// A browser: keeps cookies, does not follow redirects (tests look at them).
    pub fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("browser client")
    }

    pub async fn page(&self, client: &reqwest::Client, path: &str) -> Page {
        read_page(
            client
                .get(self.url(path))
                .send()
                .await
                .expect("page request"),
        )
        .await
    }

    /// Signs up through the form (GET /signup for the CSRF cookie and field, then POST), and
    /// checks the answer is the redirect to `next` that starts a session.
    pub async fn form_signup(&self, browser: &reqwest::Client, role: &str, next: &str) -> FormUser {
        let n = NEXT_USER.fetch_add(1, Ordering::Relaxed);
        let user = FormUser {
            email: format!("form{n}@test.dev"),
            password: "correct horse".into(),
            display_name: format!("Form User {n}"),
        };
        let form = self.page(browser, "/signup").await;
        assert_eq!(form.status, StatusCode::OK);
        let csrf = input_value(&form.body, "_csrf");
        let res = browser
            .post(self.url("/signup"))
            .form(&[
                ("_csrf", csrf.as_str()),
                ("email", &user.email),
                ("password", &user.password),
                ("display_name", &user.display_name),
                ("role", role),
                ("next", next),
            ])
            .send()
            .await
            .expect("sign-up form sent");
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            res.headers().get("location").and_then(|v| v.to_str().ok()),
            Some(next)
        );
        user
    }

    /// Posts `bytes` as the multipart field `image` (what the upload forms send).
    pub async fn upload(&self, token: &str, path: &str, bytes: &[u8]) -> (StatusCode, Value) {
        let boundary = "hawker-test-boundary-7MA4YWxkTrZu0gW";
        let mut body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"photo.png\"\r\nContent-Type: image/png\r\n\r\n").into_bytes();
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let res = self
            .client
            .post(self.url(path))
            .bearer_auth(token)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .expect("upload sent");
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// The buyer's orders, as `GET /api/v1/orders` lists them (every page).
    pub async fn orders(&self, token: &str) -> Vec<Value> {
        self.every_page(token, "/api/v1/orders", "orders", 200)
            .await
    }

    /// Every item of a paged list (`key` names its items), read `limit` at a time by following
    /// `next`, which must end `null`.
    pub async fn every_page(&self, token: &str, path: &str, key: &str, limit: u32) -> Vec<Value> {
        let join = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut after = String::new();
        loop {
            let (status, body) = self
                .get(Some(token), &format!("{path}{join}limit={limit}{after}"))
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            items.extend(body[key].as_array().expect("a list").iter().cloned());
            assert!(items.len() < 100_000, "a walk that never ends: {path}");
            match &body["next"] {
                Value::Null => return items,
                Value::String(next) => after = format!("&after={next}"),
                other => panic!("next is a cursor or null, not {other}"),
            }
        }
    }

    /// An auction's whole log as a JSON array of entries: every page of the public
    /// `GET /api/v1/auctions/{id}/log`, 50 at a time, joined.
    pub async fn auction_log(&self, id: i64) -> Value {
        let mut entries = Vec::new();
        let mut after = String::new();
        loop {
            let (status, page) = self
                .get(None, &format!("/api/v1/auctions/{id}/log?limit=50{after}"))
                .await;
            assert_eq!(status, StatusCode::OK, "{page}");
            entries.extend(page["entries"].as_array().expect("entries").iter().cloned());
            match page["next"].as_str() {
                Some(next) => after = format!("&after={next}"),
                None => return Value::Array(entries),
            }
        }
    }

    /// Units on hand of each variant of a product.
    pub async fn stock(&self, product_id: i64) -> Vec<i64> {
        let (status, body) = self
            .get(None, &format!("/api/v1/products/{product_id}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["variants"]
            .as_array()
            .expect("variants")
            .iter()
            .map(|v| v["stock"].as_i64().expect("stock"))
            .collect()
    }

    pub async fn sale(&self, sale_id: i64) -> Value {
        let (status, body) = self
            .get(None, &format!("/api/v1/flash-sales/{sale_id}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}
