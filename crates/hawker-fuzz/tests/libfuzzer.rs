//! libFuzzer itself, for a bounded time per target (`HAWKER_FUZZ_SECONDS`, 12 by default: about
//! a minute in all), when cargo-fuzz and a nightly toolchain are installed (`.ci/run` installs
//! cargo-fuzz; without it this test says so and passes, and `replay.rs` still runs every kept
//! input). What a run discovers goes to `fuzz/scratch/`, never into the committed corpus.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// `cargo` under the nightly toolchain, without what the outer `cargo test` set for itself.
fn nightly_cargo() -> Command {
    let mut cargo = Command::new("cargo");
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("CARGO") || key.starts_with("RUSTC") || key == "RUSTUP_TOOLCHAIN" {
            cargo.env_remove(key);
        }
    }
    cargo.env("RUSTUP_TOOLCHAIN", "nightly");
    cargo.current_dir(fuzz_dir());
    cargo
}

fn available() -> bool {
    nightly_cargo()
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn each_target_runs_under_libfuzzer_for_a_bounded_time() {
    if !available() {
        eprintln!(
            "SKIPPED: libFuzzer needs cargo-fuzz and a nightly toolchain \
             (`cargo install cargo-fuzz`, `rustup toolchain install nightly`)"
        );
        return;
    }
    let seconds: u64 = std::env::var("HAWKER_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    for (name, _) in hawker_fuzz::TARGETS {
        let scratch = fuzz_dir().join("scratch").join(name);
        std::fs::create_dir_all(&scratch).expect("scratch corpus");
        let corpus = fuzz_dir().join("corpus").join(name);
        let out = nightly_cargo()
            .args(["fuzz", "run", name])
            .arg(&scratch)
            .arg(&corpus)
            .args([
                "--",
                &format!("-max_total_time={seconds}"),
                "-timeout=10",
                "-rss_limit_mb=2048",
                "-print_final_stats=1",
            ])
            .output()
            .expect("cargo fuzz runs");
        let log = String::from_utf8_lossy(&out.stderr);
        let stats: Vec<&str> = log
            .lines()
            .filter(|l| l.starts_with("stat::number_of_executed_units"))
            .collect();
        eprintln!("{name}: {stats:?}");
        assert!(
            out.status.success(),
            "{name} failed under libFuzzer. Fix it, then copy the input it names \
             (fuzz/artifacts/{name}/…) into fuzz/regressions/{name}/ so it stays fixed.\n{}",
            log.lines()
                .rev()
                .take(60)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}
