//! `hawker-bench video`: one publisher, N viewers, against Hawker and (with `--live777 PATH`)
//! live777, with the same clients in the same run. Prints Markdown for the run log.
//!
//! Each server runs as its own process, started fresh for every row, so its CPU time
//! (utime + stime from `/proc/<pid>/stat`) is all it spent forwarding. The clients are str0m
//! peers in this process, one UDP socket each: a WHIP publisher sending a synthetic H.264 stream
//! (a keyframe every 2 s) and Opus-sized audio, and WHEP viewers that count the frames they
//! reassemble. Everything shares the machine's cores, so read ratios, not capacities.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hawker_media::synthetic;
use serde_json::{Value, json};
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;

use super::{Server, free_port, spawn_hawker, wait_listening};

struct Target {
    name: &'static str,
    /// Killed when the target is dropped.
    server: Server,
    whip: String,
    whep: String,
    bearer: Option<String>,
}

pub async fn run(args: &[&str]) -> anyhow::Result<()> {
    super::check_flags(
        "video",
        args,
        &["--viewers", "--seconds", "--kbps", "--live777"],
        &["--smoke", "--no-record"],
    )?;
    let smoke = args.contains(&"--smoke");
    let value = |name: &str| super::text_flag(args, name);
    let viewers: Vec<usize> = value("--viewers")
        .unwrap_or(if smoke { "5" } else { "50,100,200" })
        .split(',')
        .map(|n| n.parse().context("--viewers takes numbers"))
        .collect::<anyhow::Result<_>>()?;
    let seconds: u64 = value("--seconds")
        .unwrap_or(if smoke { "2" } else { "15" })
        .parse()?;
    let kbps: u64 = value("--kbps").unwrap_or("1500").parse()?;
    let live777 = value("--live777").map(str::to_owned);
    str0m::crypto::from_feature_flags().install_process_default();

    let mut table = String::from(
        "| server | viewers | connected | frames delivered | server CPU (1 core = 100%) | CPU-ms per viewer-second | server RSS |\n\
         |---|---|---|---|---|---|---|\n",
    );
    print!("{table}");
    // Every row is measured and printed; then the run fails if any row did not deliver video to
    // every viewer, so the smoke test in CI notices a broken media path.
    let mut failures = Vec::new();
    for &n in &viewers {
        let mut targets = vec![start_hawker().await?];
        if let Some(path) = &live777 {
            targets.push(start_live777(path).await?);
        }
        for target in targets {
            let row = match measure(&target, n, seconds, kbps).await {
                Ok(r) => {
                    if r.watching < n {
                        failures.push(format!(
                            "{} at {n} viewers: {}/{n} connected, {}/{n} got video",
                            target.name, r.connected, r.watching
                        ));
                    }
                    format!(
                        "| {} | {n} | {}/{n} | {:.1}% | {:.1}% | {:.3} | {} MB |\n",
                        target.name,
                        r.connected,
                        r.delivered * 100.0,
                        r.cpu_share * 100.0,
                        r.cpu_ms_per_viewer_second,
                        r.rss_mb
                    )
                }
                Err(e) => {
                    failures.push(format!("{} at {n} viewers: {e}", target.name));
                    format!("| {} | {n} | failed: {e} | | | | |\n", target.name)
                }
            };
            print!("{row}");
            table.push_str(&row);
        }
    }
    if super::recording(args) {
        super::record("Live video, CPU per viewer", "video", args, &table)?;
    }
    if !failures.is_empty() {
        bail!("video did not reach every viewer: {}", failures.join("; "));
    }
    Ok(())
}

async fn start_hawker() -> anyhow::Result<Target> {
    let dir = std::env::temp_dir().join(format!("hawker-bench-video-{}", rand::random::<u32>()));
    let (server, addr) = spawn_hawker(
        &dir,
        &["--demo"],
        &[
            ("HAWKER_MAX_VIEWERS_PER_SHOW", "5000"),
            // Every simulated viewer offers from this machine's one address.
            ("HAWKER_MEDIA_SESSIONS_PER_CLIENT", "1000000"),
            ("HAWKER_PENDING_MEDIA_PER_CLIENT", "1000000"),
            ("HAWKER_MEDIA_OFFERS_PER_CLIENT_PER_MINUTE", "1000000"),
            ("HAWKER_ARGON2_MEMORY_KIB", "64"),
        ],
    )
    .await?;
    let base = format!("http://{addr}");
    let (id, key) = demo_show(&base).await?;
    Ok(Target {
        name: "Hawker",
        server,
        whip: format!("{base}/api/v1/shows/{id}/whip"),
        whep: format!("{base}/api/v1/shows/{id}/whep"),
        bearer: Some(key),
    })
}

/// The demo's live show and its stream key, read over the API as its host would (used by the
/// latency benchmark too).
pub async fn demo_show(base: &str) -> anyhow::Result<(i64, String)> {
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "email": "lumi@demo.hawker.dev", "password": hawker_server::demo::DEMO_PASSWORD }))
        .send()
        .await?
        .json()
        .await?;
    let token = login["token"].as_str().context("login token")?.to_owned();
    let shows: Value = http
        .get(format!("{base}/api/v1/shows?status=live"))
        .send()
        .await?
        .json()
        .await?;
    let id = shows["shows"][0]["id"]
        .as_i64()
        .context("a live demo show")?;
    // Stored only as a hash: the host makes a new key to see one.
    let show: Value = http
        .post(format!("{base}/api/v1/shows/{id}/stream-key"))
        .bearer_auth(&token)
        .send()
        .await?
        .json()
        .await?;
    let key = show["stream_key"]
        .as_str()
        .context("stream key")?
        .to_owned();
    Ok((id, key))
}

async fn start_live777(path: &str) -> anyhow::Result<Target> {
    let port = free_port()?;
    let config = std::env::temp_dir().join(format!("live777-{port}.toml"));
    std::fs::write(
        &config,
        format!(
            "ice_servers = []\n[http]\nlisten = \"127.0.0.1:{port}\"\n[webrtc]\nice_udp_addrs = [\"127.0.0.1:0\"]\n"
        ),
    )?;
    let server = Server::spawn(path, Command::new(path).arg("--config").arg(&config))?;
    wait_listening(([127, 0, 0, 1], port).into(), "live777").await?;
    let base = format!("http://127.0.0.1:{port}");
    Ok(Target {
        name: "live777",
        server,
        whip: format!("{base}/whip/bench"),
        whep: format!("{base}/whep/bench"),
        bearer: None,
    })
}

struct Row {
    connected: usize,
    /// Viewers that received at least one video frame.
    watching: usize,
    delivered: f64,
    cpu_share: f64,
    cpu_ms_per_viewer_second: f64,
    rss_mb: u64,
}

async fn measure(target: &Target, n: usize, seconds: u64, kbps: u64) -> anyhow::Result<Row> {
    let stop = Arc::new(tokio::sync::Notify::new());
    let publisher =
        Peer::connect(&target.whip, target.bearer.as_deref(), Direction::SendOnly).await?;
    let publishing = tokio::spawn(publisher.run(Some(kbps), stop.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;

    let frames = Arc::new(AtomicU64::new(0));
    let connected = Arc::new(AtomicU64::new(0));
    let mut viewers = Vec::new();
    for _ in 0..n {
        let peer = Peer::connect(&target.whep, None, Direction::RecvOnly).await?;
        let (frames, connected) = (frames.clone(), connected.clone());
        let mut peer = peer;
        peer.frames = Some(frames);
        peer.connected_count = Some(connected);
        viewers.push(tokio::spawn(peer.run(None, stop.clone())));
    }
    // Ramp-up: every viewer connects and gets its first keyframe.
    let ramp = Instant::now();
    while (connected.load(Ordering::Relaxed) as usize) < n
        && ramp.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;

    let (cpu0, t0, f0) = (
        target.server.cpu_seconds(),
        Instant::now(),
        frames.load(Ordering::Relaxed),
    );
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (cpu1, elapsed, f1) = (
        target.server.cpu_seconds(),
        t0.elapsed(),
        frames.load(Ordering::Relaxed),
    );
    let rss_mb = target.server.rss_bytes() / (1024 * 1024);
    stop.notify_waiters();
    let mut watching = 0;
    for v in viewers {
        if v.await.unwrap_or(0) > 0 {
            watching += 1;
        }
    }
    let _ = publishing.await;

    let cpu_s = cpu1 - cpu0;
    let secs = elapsed.as_secs_f64();
    let connected = connected.load(Ordering::Relaxed) as usize;
    Ok(Row {
        connected,
        watching,
        delivered: (f1 - f0) as f64 / (30.0 * secs * n as f64),
        cpu_share: cpu_s / secs,
        cpu_ms_per_viewer_second: cpu_s * 1000.0 / (secs * connected.max(1) as f64),
        rss_mb,
    })
}

/// One str0m client on its own socket.
struct Peer {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    video: Option<Mid>,
    audio: Option<Mid>,
    frames: Option<Arc<AtomicU64>>,
    connected_count: Option<Arc<AtomicU64>>,
}

impl Peer {
    async fn connect(
        url: &str,
        bearer: Option<&str>,
        direction: Direction,
    ) -> anyhow::Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        let local = socket.local_addr()?;
        let mut rtc = Rtc::builder()
            .clear_codecs()
            .enable_h264(true)
            .enable_opus(true, false)
            .build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp")?);
        let mut change = rtc.sdp_api();
        let video = change.add_media(MediaKind::Video, direction, None, None, None);
        let audio = change.add_media(MediaKind::Audio, direction, None, None, None);
        let (offer, pending): (_, SdpPendingOffer) = change.apply().context("offer")?;
        let mut req = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/sdp")
            .body(offer.to_sdp_string());
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        let res = req.send().await?;
        let status = res.status();
        let text = res.text().await?;
        if status.as_u16() != 201 {
            bail!("{url}: {status} {text}");
        }
        rtc.sdp_api()
            .accept_answer(pending, SdpAnswer::from_sdp_string(&text)?)?;
        Ok(Self {
            rtc,
            socket,
            local,
            video: Some(video),
            audio: Some(audio),
            frames: None,
            connected_count: None,
        })
    }

    /// Drives the peer until `stop`; a publisher (`kbps`) writes 30 frames a second. Answers
    /// with the video frames it received.
    async fn run(mut self, kbps: Option<u64>, stop: Arc<tokio::sync::Notify>) -> u64 {
        let mut buf = vec![0u8; 2048];
        let mut received: u64 = 0;
        let mut connected = false;
        let mut sent: u64 = 0;
        let start = Instant::now();
        let mut next_frame = start;
        let frame_bytes = kbps.map(|k| (k * 1000 / 8 / 30) as usize).unwrap_or(0);
        let stopped = stop.notified();
        tokio::pin!(stopped);
        loop {
            let timeout = loop {
                match self.rtc.poll_output() {
                    Ok(Output::Transmit(t)) => {
                        let _ = self.socket.try_send_to(&t.contents, t.destination);
                    }
                    Ok(Output::Timeout(t)) => break t,
                    Ok(Output::Event(e)) => match e {
                        Event::Connected => {
                            connected = true;
                            if let Some(c) = &self.connected_count {
                                c.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Event::MediaData(d) if d.params.spec().codec.is_video() => {
                            received += 1;
                            if let Some(f) = &self.frames {
                                f.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        _ => {}
                    },
                    Err(_) => return received,
                }
            };
            let wake = if kbps.is_some() && connected {
                timeout.min(next_frame)
            } else {
                timeout
            };
            tokio::select! {
                _ = &mut stopped => return received,
                r = self.socket.recv_from(&mut buf) => {
                    if let Ok((n, source)) = r
                        && let Ok(contents) = buf[..n].try_into()
                    {
                        let _ = self.rtc.handle_input(Input::Receive(Instant::now(), Receive {
                            proto: Protocol::Udp, source, destination: self.local, contents,
                        }));
                    }
                }
                _ = tokio::time::sleep_until(wake.into()) => {
                    let now = Instant::now();
                    if kbps.is_some() && connected && now >= next_frame {
                        if let (Some(video), Some(audio)) = (self.video, self.audio) {
                            // Keyframes (every 2 s) are three frames' worth, as an encoder's are.
                            let keyframe = sent.is_multiple_of(60);
                            let len = if keyframe { frame_bytes * 3 } else { frame_bytes };
                            let _ = synthetic::write_frame(
                                &mut self.rtc, (video, audio), sent, keyframe, len, now,
                            );
                        }
                        sent += 1;
                        next_frame += Duration::from_millis(33);
                    }
                    let _ = self.rtc.handle_input(Input::Timeout(now));
                }
            }
        }
    }
}
