//! On stable Rust, in every `cargo test`: each fuzz target gets its committed corpus
//! (`fuzz/corpus/<target>/`), every crash ever kept (`fuzz/regressions/<target>/`), and a few
//! thousand deterministic mutations of them. A crash libFuzzer finds is fixed, then its input is
//! copied into `fuzz/regressions/<target>/`, so it stays fixed.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for kind in ["corpus", "regressions"] {
        let Ok(dir) = std::fs::read_dir(fuzz_dir().join(kind).join(target)) else {
            continue;
        };
        for entry in dir.flatten() {
            let path = entry.path();
            if let Ok(bytes) = std::fs::read(&path) {
                out.push((path, bytes));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_target_survives_its_corpus_its_crashes_and_their_mutations() {
    use hawker_fuzz::mutate::{Rng, mutate};
    for (name, target) in hawker_fuzz::TARGETS {
        let seeds = inputs(name);
        assert!(
            !seeds.is_empty(),
            "fuzz/corpus/{name}/ has no seeds: a target nobody feeds tests nothing"
        );
        for (path, bytes) in &seeds {
            eprintln!("{name}: {}", path.display());
            target(bytes);
        }
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        for _ in 0..2_000 {
            let (_, seed) = &seeds[rng.below(seeds.len())];
            target(&mutate(&mut rng, seed));
        }
    }
}

/// Writes the seed corpus (run once, by hand, when a target is added):
/// `cargo test -p hawker-fuzz --test replay -- --ignored write_seeds`.
#[test]
#[ignore]
fn write_seeds() {
    use str0m::media::{Direction, MediaKind};
    let offer = |direction| {
        let mut rtc = str0m::Rtc::new(std::time::Instant::now());
        let addr = "192.0.2.10:40000".parse().expect("addr");
        rtc.add_local_candidate(str0m::Candidate::host(addr, "udp").expect("candidate"));
        let mut change = rtc.sdp_api();
        change.add_media(MediaKind::Video, direction, None, None, None);
        change.add_media(MediaKind::Audio, direction, None, None, None);
        change.apply().expect("offer").0.to_sdp_string()
    };
    let bodies = [
        r#"{"type":"started","auction_id":9,"lot":"Booster box","terms":{"start_cents":100,"duration_ms":30000,"mode":"standard","extend_ms":10000,"increments":[[0,100],[3000,200]]},"at":0,"ends_at":30000}"#,
        r#"{"type":"bid","bidder":"ana","kind":"bid","amount_cents":100,"at":1000,"result":{"outcome":"accepted","price_cents":100,"leader":"ana","ends_at":30000}}"#,
        r#"{"type":"bid","bidder":"bo","kind":"max","amount_cents":1000,"at":2000,"result":{"outcome":"accepted","price_cents":200,"leader":"bo","ends_at":30000}}"#,
        r#"{"type":"ended","at":30000,"winner":"bo","price_cents":200}"#,
    ];
    let mut prev = hawker_core::auction_log::GENESIS.to_owned();
    let log: Vec<hawker_core::auction_log::LogEntry> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| {
            let hash = hawker_core::auction_log::chain_hash(&prev, body);
            hawker_core::auction_log::LogEntry {
                seq: i as u64 + 1,
                body: (*body).to_owned(),
                prev_hash: std::mem::replace(&mut prev, hash.clone()),
                hash,
            }
        })
        .collect();
    assert!(
        hawker_core::auction_log::verify(&log).is_ok(),
        "the seed log verifies"
    );
    let seeds: &[(&str, &str, Vec<u8>)] = &[
        (
            "sdp_offer",
            "publish",
            offer(Direction::SendOnly).into_bytes(),
        ),
        ("sdp_offer", "play", offer(Direction::RecvOnly).into_bytes()),
        (
            "client_message",
            "chat",
            br#"{"type":"chat","text":"hello"}"#.to_vec(),
        ),
        (
            "client_message",
            "bid",
            br#"{"type":"bid","auction_id":1,"amount_cents":500,"max":true}"#.to_vec(),
        ),
        (
            "client_message",
            "hearts",
            br#"{"type":"hearts","count":3}"#.to_vec(),
        ),
        (
            "client_message",
            "ping",
            br#"{"type":"ping","nonce":7}"#.to_vec(),
        ),
        (
            "api_input",
            "signup",
            br#"{"email":"ana@example.com","display_name":"Ana","role":"buyer"}"#.to_vec(),
        ),
        (
            "api_input",
            "buy",
            br#"{"key":"buy-1","quantity":2,"price_cents":2400,"currency":"USD"}"#.to_vec(),
        ),
        (
            "verify_auction",
            "log",
            serde_json::to_vec_pretty(&log).expect("json"),
        ),
        ("image", "png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec()),
        ("image", "webp", b"RIFF\0\0\0\0WEBPVP8 ".to_vec()),
    ];
    for (target, name, bytes) in seeds {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join(name), bytes).expect("seed");
    }
}
