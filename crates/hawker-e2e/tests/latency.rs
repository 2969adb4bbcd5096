//! Glass-to-glass latency, measured in a real browser (a benchmark, so `#[ignore]`d; see
//! BENCHMARKS.md, "Live video", for the command).
//!
//! One page paints the current time into a canvas as a grid of black and white blocks (30 bits
//! of `Date.now()`), publishes the canvas over WHIP, and another page plays it over WHEP, reads
//! the blocks back from every frame it presents (`requestVideoFrameCallback`) and subtracts.
//! Both pages share the browser's clock, so the difference is capture → encode → network →
//! server → network → jitter buffer → decode → present. With `LIVE777=/path/to/live777` the same
//! pages run against live777 in the same run.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hawker_e2e::{Browser, Server};
use serde_json::{Value, json};

const PUBLISH: &str = r#"
(async (url, bearer) => {
  const canvas = document.createElement('canvas');
  canvas.width = 320; canvas.height = 240;
  document.body.prepend(canvas);
  const g = canvas.getContext('2d');
  const paint = () => {
    const t = Date.now() % 2 ** 30;
    g.fillStyle = '#808080'; g.fillRect(0, 0, 320, 240);
    for (let i = 0; i < 30; i++) {
      g.fillStyle = (t >> i) & 1 ? '#fff' : '#000';
      g.fillRect((i % 6) * 50 + 10, Math.floor(i / 6) * 45 + 10, 40, 40);
    }
  };
  setInterval(paint, 5);
  paint();
  const stream = canvas.captureStream(30);
  const pc = new RTCPeerConnection();
  const tr = pc.addTransceiver(stream.getVideoTracks()[0], { direction: 'sendonly' });
  const h264 = RTCRtpSender.getCapabilities('video').codecs.filter(c => /h264/i.test(c.mimeType));
  if (h264.length && tr.setCodecPreferences) tr.setCodecPreferences(h264);
  await pc.setLocalDescription(await pc.createOffer());
  const headers = { 'content-type': 'application/sdp' };
  if (bearer) headers.authorization = 'Bearer ' + bearer;
  const res = await fetch(url, { method: 'POST', headers, body: pc.localDescription.sdp });
  if (res.status !== 201) throw new Error('WHIP ' + res.status + ' ' + await res.text());
  await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
  window.publisher = pc;
  return true;
})
"#;

const PLAY: &str = r#"
(async (url) => {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', { direction: 'recvonly' });
  const video = document.createElement('video');
  video.muted = true; video.playsInline = true; video.autoplay = true;
  document.body.prepend(video);
  pc.ontrack = (e) => { video.srcObject = new MediaStream([e.track]); video.play().catch(() => {}); };
  await pc.setLocalDescription(await pc.createOffer());
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: pc.localDescription.sdp });
  if (res.status !== 201) throw new Error('WHEP ' + res.status + ' ' + await res.text());
  await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
  const canvas = document.createElement('canvas');
  canvas.width = 320; canvas.height = 240;
  const g = canvas.getContext('2d', { willReadFrequently: true });
  window.samples = [];
  const onFrame = () => {
    if (video.videoWidth) {
      g.drawImage(video, 0, 0, 320, 240);
      const now = Date.now() % 2 ** 30;
      let t = 0;
      for (let i = 0; i < 30; i++) {
        const p = g.getImageData((i % 6) * 50 + 30, Math.floor(i / 6) * 45 + 30, 1, 1).data;
        if (p[0] + p[1] + p[2] > 384) t |= 1 << i;
      }
      const d = now - t;
      if (d >= 0 && d < 5000) window.samples.push(d);
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
  window.viewer = pc;
  return true;
})
"#;

struct Live777(Child);

impl Drop for Live777 {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn measure(
    browser: &Browser,
    origin: &str,
    whip: &str,
    whep: &str,
    bearer: Option<&str>,
    seconds: u64,
) -> anyhow::Result<Vec<f64>> {
    let publisher = browser.new_page(640, 480, false).await?;
    publisher.goto(origin).await?;
    publisher
        .eval(&format!("({PUBLISH})({}, {})", json!(whip), json!(bearer)))
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let viewer = browser.new_page(640, 480, false).await?;
    viewer.goto(origin).await?;
    viewer.eval(&format!("({PLAY})({})", json!(whep))).await?;
    // Skip the start (first keyframe, jitter buffer settling), then sample.
    tokio::time::sleep(Duration::from_secs(3)).await;
    viewer.eval("window.samples = []").await?;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let samples = viewer.eval("window.samples").await?;
    let _ = publisher.eval("window.publisher.close()").await;
    let _ = viewer.eval("window.viewer.close()").await;
    let mut samples: Vec<f64> = samples
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    samples.sort_by(f64::total_cmp);
    Ok(samples)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: cargo test -p hawker-e2e --test latency -- --ignored --nocapture"]
async fn glass_to_glass_latency() -> anyhow::Result<()> {
    let seconds = std::env::var("SECONDS_PER_RUN")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let server = Server::start_with_demo().await?;
    let (show_id, key) = hawker_bench::video::demo_show(&server.url("")).await?;
    let browser = Browser::launch().await?;

    let mut rows = Vec::new();
    let hawker = measure(
        &browser,
        &server.url("/"),
        &server.url(&format!("/api/v1/shows/{show_id}/whip")),
        &server.url(&format!("/api/v1/shows/{show_id}/whep")),
        Some(&key),
        seconds,
    )
    .await?;
    rows.push(("Hawker", hawker));

    if let Ok(path) = std::env::var("LIVE777") {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let config = std::env::temp_dir().join(format!("live777-latency-{port}.toml"));
        std::fs::write(
            &config,
            format!(
                "ice_servers = []\n[http]\nlisten = \"127.0.0.1:{port}\"\ncors = true\n[webrtc]\nice_udp_addrs = [\"127.0.0.1:0\"]\n"
            ),
        )?;
        let _live777 = Live777(
            Command::new(path)
                .arg("--config")
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?,
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        let base = format!("http://127.0.0.1:{port}");
        let samples = measure(
            &browser,
            &server.url("/"),
            &format!("{base}/whip/latency"),
            &format!("{base}/whep/latency"),
            None,
            seconds,
        )
        .await?;
        rows.push(("live777", samples));
    }

    println!("| server | frames measured | median | p95 |");
    println!("|---|---|---|---|");
    for (name, samples) in &rows {
        println!(
            "| {name} | {} | {:.0} ms | {:.0} ms |",
            samples.len(),
            quantile(samples, 0.5),
            quantile(samples, 0.95)
        );
    }
    assert!(
        rows.iter().all(|(_, s)| s.len() > 100),
        "every server delivered decodable frames"
    );
    Ok(())
}
