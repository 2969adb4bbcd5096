//! The benchmark harness at smoke size, so it never rots. These assert what the harness
//! verifies (correctness), never a time: exactly S orders, none oversold, every acknowledged
//! order in the database after `kill -9`, every retried key answered as the first time, for
//! Hawker and both baselines; the fan-out reaching every viewer on Hawker and Socket.IO; the
//! auction's log verifying with every decided bid in it; video reaching every WHEP viewer.
//! They need PostgreSQL, `redis-server` and Node.js with npm, as the machine provides.

use std::path::PathBuf;
use std::process::Command;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `hawker-bench ARGS…` from the repository root, as a person would.
fn hawker_bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hawker-bench"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("runs hawker")
}

/// Runs `hawker-bench ARGS… --smoke`, which must succeed, and returns what it printed.
fn bench(args: &[&str]) -> String {
    let out = hawker_bench(&[args, &["--smoke"]].concat());
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "hawker-bench {args:?} --smoke failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn the_herd_verifies_hawker_postgres_and_redis() {
    bench(&["herd"]);
}

#[test]
fn the_herd_at_a_steady_rate_verifies_too_and_sends_no_buyer_before_it_is_due() {
    // 2,000 buyers at 1,000 a second: the last is due after 1.999 s, so no design can show
    // more than about 1,000 decisions a second (all at once, these smoke runs make 9,000+).
    let designs = "hawker-async,hawker-live,redis-fsync";
    let out = bench(&["herd", "--rate", "1000", "--designs", designs]);
    let decisions: Vec<f64> = out
        .lines()
        .filter(|l| l.starts_with("| **Hawker") || l.starts_with("| Redis"))
        .filter_map(|l| l.split('|').nth(2)?.trim().parse().ok())
        .collect();
    assert_eq!(decisions.len(), 3, "{out}");
    assert!(
        decisions.iter().all(|&d| d <= 1_010.0),
        "decisions/s {decisions:?}\n{out}"
    );
}

#[test]
fn the_fanout_reaches_every_viewer_on_hawker_and_socketio() {
    bench(&["fanout"]);
}

#[test]
fn a_kill_mid_sale_loses_no_acknowledged_order_on_hawker_postgres_or_redis_always() {
    bench(&["herd", "--kill-mid-sale"]);
}

#[test]
fn the_auction_bench_verifies_its_log_and_reaches_every_viewer() {
    bench(&["auction"]);
}

#[test]
fn the_video_bench_delivers_frames_to_every_viewer() {
    bench(&["video"]);
}

#[test]
fn the_login_flood_bench_answers_every_login_and_keeps_the_page_up() {
    let out = bench(&["login"]);
    assert!(
        out.contains("Memory growth during 50 concurrent log-ins"),
        "{out}"
    );
    assert!(!out.contains("connection failed"), "{out}");
}

#[test]
fn a_mistyped_flag_stops_the_bench_before_it_runs_or_records() {
    let benchmarks = std::fs::read_to_string(repo_root().join("bench/runs/log.md")).ok();
    for args in [
        &["herd", "--byers", "10"][..],
        &["fanout", "--smoke", "--viewer", "5"],
    ] {
        let out = hawker_bench(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} ran");
        assert!(
            stderr.contains(&format!("does not know {:?}", args[args.len() - 2])),
            "{stderr}"
        );
    }
    let help = hawker_bench(&["herd", "--help"]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("hawker-bench herd [--buyers"));
    let after = std::fs::read_to_string(repo_root().join("bench/runs/log.md")).ok();
    assert_eq!(benchmarks, after, "nothing was appended to the run log");
}

#[test]
fn the_soak_runs_a_minute_and_leaves_its_series_and_chart() {
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().join("soak");
    let printed = bench(&["soak", "--out", out.to_str().expect("utf-8 path")]);
    assert!(
        printed.contains("all found paid in the database"),
        "{printed}"
    );
    let csv = std::fs::read_to_string(out.with_extension("csv")).expect("the CSV");
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
    assert_eq!(header[..2], ["at_s", "orders_per_s"], "{csv}");
    let cpu = header
        .iter()
        .position(|h| *h == "server_cpu_ms_per_order")
        .expect("the server's CPU per order");
    // A sample every 2 s for a minute, each with orders in it and the server's work for them.
    let samples: Vec<&str> = lines.collect();
    assert!(samples.len() >= 25, "{csv}");
    let positive =
        |l: &str, i: usize| l.split(',').nth(i).and_then(|v| v.parse::<f64>().ok()) > Some(0.0);
    assert!(
        samples.iter().all(|l| positive(l, 1) && positive(l, cpu)),
        "{csv}"
    );
    // The fresh control show took its turns at the end, and the chart shows them as dots.
    let show = header.iter().position(|h| *h == "show").expect("the show");
    let shows: Vec<&str> = samples
        .iter()
        .filter_map(|l| l.split(',').nth(show))
        .collect();
    assert_eq!(shows.first(), Some(&"aged"), "{csv}");
    assert!(shows.contains(&"fresh"), "{csv}");
    let svg = std::fs::read_to_string(out.with_extension("svg")).expect("the chart");
    assert!(svg.starts_with("<svg") && svg.matches("<polyline").count() == 5);
    assert!(svg.contains("<circle"), "{svg}");
}
