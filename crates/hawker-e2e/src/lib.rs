//! A small driver for Debian's headless Chromium over the DevTools protocol, and a helper that
//! starts a real Hawker for each test. Enough to click, type, wait and take screenshots; nothing
//! is downloaded (the browser comes from `apt-get install chromium`).

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// The flags the machine's notes require for headless Chromium here.
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
];

/// A running Chromium. Dropping it kills the process.
pub struct Browser {
    _child: Child,
    _profile: tempfile::TempDir,
    port: u16,
}

impl Browser {
    pub async fn launch() -> anyhow::Result<Self> {
        let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let profile = tempfile::tempdir()?;
        let mut child = Command::new(&binary)
            .args(FLAGS)
            .arg("--remote-debugging-port=0")
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!("starting {binary} (install it with `apt-get install chromium`)")
            })?;
        let mut lines = BufReader::new(child.stderr.take().context("stderr")?).lines();
        let port = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(rest) = line.split("DevTools listening on ws://127.0.0.1:").nth(1) {
                    return rest
                        .split('/')
                        .next()
                        .and_then(|p| p.parse::<u16>().ok())
                        .context("port");
                }
            }
            bail!("Chromium exited before listening")
        })
        .await
        .context("Chromium did not start in 30 s")??;
        // Keep draining stderr so Chromium never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            _child: child,
            _profile: profile,
            port,
        })
    }

    /// A new tab in its own browser context (own cookies, like a separate person), `width`×`height`
    /// CSS pixels (a phone is 390×844).
    pub async fn new_page(&self, width: u32, height: u32, mobile: bool) -> anyhow::Result<Page> {
        let version: Value = reqwest::get(format!("http://127.0.0.1:{}/json/version", self.port))
            .await?
            .json()
            .await?;
        let browser = Page::connect(
            version["webSocketDebuggerUrl"]
                .as_str()
                .context("browser websocket")?,
        )
        .await?;
        let context = browser
            .call("Target.createBrowserContext", json!({}))
            .await?;
        let target = browser
            .call(
                "Target.createTarget",
                json!({ "url": "about:blank", "browserContextId": context["browserContextId"] }),
            )
            .await?;
        let id = target["targetId"].as_str().context("target id")?;
        let page =
            Page::connect(&format!("ws://127.0.0.1:{}/devtools/page/{id}", self.port)).await?;
        page.call("Page.enable", json!({})).await?;
        page.call("Runtime.enable", json!({})).await?;
        page.call("Emulation.setDeviceMetricsOverride", json!({ "width": width, "height": height, "deviceScaleFactor": if mobile { 2 } else { 1 }, "mobile": mobile }))
            .await?;
        Ok(page)
    }
}

type Pending = Arc<Mutex<std::collections::HashMap<u64, oneshot::Sender<Value>>>>;

/// One tab.
pub struct Page {
    outgoing: mpsc::UnboundedSender<String>,
    pending: Pending,
    next_id: AtomicU64,
    /// Console errors and uncaught exceptions seen so far.
    errors: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Page {
    async fn connect(url: &str) -> anyhow::Result<Self> {
        let (ws, _) = tokio_tungstenite::connect_async(url).await?;
        let (mut sink, mut stream) = ws.split();
        let (outgoing, mut rx) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(text) = rx.recv().await {
                if sink.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
        });
        let pending: Pending = Arc::default();
        let errors: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
        let (p, e) = (pending.clone(), errors.clone());
        tokio::spawn(async move {
            while let Some(Ok(Message::Text(text))) = stream.next().await {
                let Ok(msg) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                if let Some(id) = msg["id"].as_u64() {
                    if let Some(tx) = p.lock().await.remove(&id) {
                        let _ = tx.send(msg);
                    }
                } else if msg["method"] == "Runtime.exceptionThrown"
                    && let Ok(mut errs) = e.lock()
                {
                    errs.push(msg["params"]["exceptionDetails"].to_string());
                }
            }
        });
        Ok(Self {
            outgoing,
            pending,
            next_id: AtomicU64::new(1),
            errors,
        })
    }

    pub async fn call(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().await.insert(id, tx);
        self.outgoing
            .send(json!({ "id": id, "method": method, "params": params }).to_string())
            .map_err(|_| anyhow!("browser gone"))?;
        let reply = tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .context("DevTools answer in 30 s")??;
        if let Some(err) = reply.get("error") {
            bail!("{method}: {err}");
        }
        Ok(reply["result"].clone())
    }

    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.call("Page.navigate", json!({ "url": url })).await?;
        self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")
            .await
    }

    /// Evaluates JavaScript (awaiting promises) and returns its JSON value.
    pub async fn eval(&self, js: &str) -> anyhow::Result<Value> {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": js, "awaitPromise": true, "returnByValue": true }),
            )
            .await?;
        if let Some(ex) = r.get("exceptionDetails") {
            bail!("{js}: {ex}");
        }
        Ok(r["result"]["value"].clone())
    }

    /// Polls `js` until it is truthy, for up to 20 s.
    pub async fn wait_for(&self, js: &str) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(v) = self.eval(&format!("Boolean({js})")).await
                && v == json!(true)
            {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                let body = self
                    .eval("document.body ? document.body.innerText.slice(0, 2000) : ''")
                    .await
                    .unwrap_or_default();
                bail!(
                    "timed out waiting for `{js}`; page text: {body}; JS errors: {:?}",
                    self.js_errors()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn click(&self, selector: &str) -> anyhow::Result<()> {
        self.wait_for(&format!("(() => {{ const e = document.querySelector({s}); return e && !e.disabled && e.offsetParent !== null; }})()", s = json!(selector))).await?;
        self.eval(&format!(
            "document.querySelector({}).click()",
            json!(selector)
        ))
        .await?;
        Ok(())
    }

    /// Sets an input's value as a user would (fires `input` and `change`).
    pub async fn fill(&self, selector: &str, value: &str) -> anyhow::Result<()> {
        self.wait_for(&format!("document.querySelector({})", json!(selector)))
            .await?;
        self.eval(&format!(
            "(() => {{ const e = document.querySelector({s}); e.focus(); e.value = {v}; e.dispatchEvent(new Event('input', {{bubbles: true}})); e.dispatchEvent(new Event('change', {{bubbles: true}})); }})()",
            s = json!(selector),
            v = json!(value)
        ))
        .await?;
        Ok(())
    }

    pub async fn text(&self, selector: &str) -> anyhow::Result<String> {
        Ok(self
            .eval(&format!(
                "document.querySelector({})?.innerText ?? ''",
                json!(selector)
            ))
            .await?
            .as_str()
            .unwrap_or("")
            .to_owned())
    }

    pub async fn screenshot(&self, path: &std::path::Path) -> anyhow::Result<()> {
        let shot = self
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await?;
        let data = shot["data"].as_str().context("screenshot data")?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, base64_decode(data)?)?;
        Ok(())
    }

    pub fn js_errors(&self) -> Vec<String> {
        self.errors.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

fn base64_decode(s: &str) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => bail!("bad base64"),
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    Ok(out)
}

/// A Hawker on port 0 with a temporary database, seeded with the demo data.
pub struct Server {
    pub base: String,
    _dir: tempfile::TempDir,
}

impl Server {
    pub async fn start_with_demo() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let config = hawker_server::Config {
            listen: "127.0.0.1:0".into(),
            data_dir: dir.path().to_path_buf(),
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            media_port: 0,
            ..hawker_server::Config::default()
        };
        let app = hawker_server::App::build(config).await?;
        hawker_server::demo::seed(app.state()).await?;
        let base = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped(std::future::pending()));
        Ok(Self { base, _dir: dir })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Where CI picks up screenshots (`artifacts/` at the workspace root).
pub fn artifacts_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../artifacts")
}
