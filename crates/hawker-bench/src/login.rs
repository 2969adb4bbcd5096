//! A log-in flood, as an attacker sends it: `--logins` wrong-password log-ins for one known
//! account, all at once, from as many addresses as the rate limits would need (the limits are
//! raised, so this measures what bounds the hashing itself). Meanwhile one visitor loads the
//! home page again and again. Reported: the server's memory growth (peak resident set minus the
//! resident set before), the page's median and p99, how the log-ins were answered, and, with
//! the server idle, how long a log-in takes for a known and for an unknown e-mail (they must
//! not tell one from the other).
//!
//! The server runs with the production hash cost (argon2id, 19 MiB, 2 passes). There is no
//! peer server to run side by side: the goals are the hardening issue's absolute ones, and the
//! table shows the figures measured before the bound (same machine kind, 400 log-ins) for
//! comparison.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::ensure;
use tokio::sync::Barrier;

use super::client::HttpConn;
use super::{Server, check_flags, flag, median, quantile, record, recording, spawn_hawker};

const KNOWN: &str = "flooded@bench.hawker.dev";
const PASSWORD: &str = "the-right-password-1";

pub async fn run(args: &[&str]) -> anyhow::Result<()> {
    check_flags(
        "login",
        args,
        &["--logins", "--runs"],
        &["--smoke", "--no-record"],
    )?;
    let smoke = args.contains(&"--smoke");
    let logins = flag(args, "--logins", if smoke { 50 } else { 1_000 })?;
    let runs = flag(args, "--runs", if smoke { 1 } else { 3 })?;
    let mut rows = Vec::new();
    for run in 1..=runs {
        let row = one_run(logins, if smoke { 10 } else { 40 }).await?;
        println!(
            "run {run}: +{:.0} MiB, page p50 {:.1} ms p99 {:.1} ms, known {:.1} ms unknown {:.1} ms, answers {}",
            row.growth_mib,
            row.page_p50_ms,
            row.page_p99_ms,
            row.known_ms,
            row.unknown_ms,
            row.answers
        );
        rows.push(row);
    }
    let pick = |f: fn(&Row) -> f64| median(&rows.iter().map(f).collect::<Vec<_>>());
    let growth = pick(|r| r.growth_mib);
    let p50 = pick(|r| r.page_p50_ms);
    let p99 = pick(|r| r.page_p99_ms);
    let known = pick(|r| r.known_ms);
    let unknown = pick(|r| r.unknown_ms);
    let gap = (known - unknown).abs() / known.max(unknown) * 100.0;
    let met = |ok: bool| if ok { "met" } else { "**not met**" };
    let table = format!(
        "| Measure (median of {runs}) | Hawker | Before the bound (issue 24, 400 log-ins) | Goal |\n\
         |---|---:|---:|---|\n\
         | Memory growth during {logins} concurrent log-ins | {growth:.0} MiB | 3,200 MiB | ≤ 200 MiB: {} |\n\
         | Home page during the flood, median / p99 | {p50:.1} / {p99:.1} ms | 18,000 ms | p99 < 200 ms: {} |\n\
         | Log-in, known / unknown e-mail (idle) | {known:.1} / {unknown:.1} ms ({gap:.1} % apart) | 16.6 / 0.6 ms | within 10 %: {} |\n\
         | How the flood was answered (last run) | {} | all hashed at once | shed, not queued |\n",
        met(growth <= 200.0),
        met(p99 < 200.0),
        met(gap <= 10.0),
        rows.last().map(|r| r.answers.as_str()).unwrap_or(""),
    );
    println!("\n{table}");
    if recording(args) {
        record("Log-in flood", "login", args, &table)?;
    }
    Ok(())
}

struct Row {
    growth_mib: f64,
    page_p50_ms: f64,
    page_p99_ms: f64,
    known_ms: f64,
    unknown_ms: f64,
    answers: String,
}

async fn one_run(logins: usize, timing_samples: usize) -> anyhow::Result<Row> {
    let dir = tempfile::tempdir()?;
    // An attacker with many addresses: the rate limits never refuse, the hash bound must.
    let (server, addr) = spawn_hawker(
        dir.path(),
        &[],
        &[
            ("HAWKER_LOGIN_ATTEMPTS_PER_ACCOUNT_PER_MINUTE", "1000000"),
            ("HAWKER_LOGIN_ATTEMPTS_PER_CLIENT_PER_MINUTE", "1000000"),
            ("RUST_LOG", "error"),
        ],
    )
    .await?;
    let signup = format!(
        r#"{{"email":"{KNOWN}","password":"{PASSWORD}","display_name":"Flooded","role":"buyer"}}"#
    );
    let res = post(addr, "/api/v1/auth/signup", &signup).await?;
    ensure!(res == 201, "sign-up answered {res}");

    // Idle: known and unknown e-mails, interleaved, one at a time.
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..timing_samples {
        for (email, samples) in [
            (KNOWN.to_owned(), &mut known),
            (format!("nobody{i}@bench.hawker.dev"), &mut unknown),
        ] {
            let body = format!(r#"{{"email":"{email}","password":"wrong-password-{i}"}}"#);
            let t = Instant::now();
            let status = post(addr, "/api/v1/auth/login", &body).await?;
            ensure!(status == 401, "a wrong log-in answered {status}");
            samples.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }

    // Let the idle hashes' memory settle, then flood.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = server.rss_bytes();
    let start = Arc::new(Barrier::new(logins + 1));
    let mut flood = Vec::with_capacity(logins);
    for i in 0..logins {
        let start = start.clone();
        flood.push(tokio::spawn(async move {
            let mut conn = HttpConn::connect(addr, None).await.ok()?;
            start.wait().await;
            let body = format!(r#"{{"email":"{KNOWN}","password":"guess-{i}"}}"#);
            let res = conn
                .request(
                    "POST",
                    "/api/v1/auth/login",
                    &[("Content-Type", "application/json")],
                    body.as_bytes(),
                )
                .await
                .ok()?;
            Some(res.status)
        }));
    }
    start.wait().await;
    let flood_start = Instant::now();
    let mut page = HttpConn::connect(addr, None).await?;
    let mut pages = Vec::new();
    let mut peak = before;
    while !flood.iter().all(|t| t.is_finished()) || flood_start.elapsed() < Duration::from_secs(2) {
        let t = Instant::now();
        let res = page.request("GET", "/", &[], b"").await?;
        ensure!(res.status == 200, "the home page answered {}", res.status);
        pages.push(Duration::from_micros(t.elapsed().as_micros() as u64));
        peak = peak.max(server.rss_bytes());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for t in flood {
        let key = match t.await? {
            Some(status) => status.to_string(),
            None => "connection failed".into(),
        };
        *counts.entry(key).or_default() += 1;
    }
    peak = peak.max(peak_rss(&server));
    let answers = counts
        .iter()
        .map(|(k, v)| format!("{v} × {k}"))
        .collect::<Vec<_>>()
        .join(", ");
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Ok(Row {
        growth_mib: peak.saturating_sub(before) as f64 / 1024.0 / 1024.0,
        page_p50_ms: ms(quantile(&mut pages, 0.5)),
        page_p99_ms: ms(quantile(&mut pages, 0.99)),
        known_ms: median(&known),
        unknown_ms: median(&unknown),
        answers,
    })
}

/// The highest resident set the process has had (`VmHWM`).
fn peak_rss(server: &Server) -> u64 {
    std::fs::read_to_string(format!("/proc/{}/status", server.child.id()))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|l| l.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

async fn post(addr: SocketAddr, path: &str, body: &str) -> anyhow::Result<u16> {
    let mut conn = HttpConn::connect(addr, None).await?;
    let res = conn
        .request(
            "POST",
            path,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
        .await?;
    Ok(res.status)
}
