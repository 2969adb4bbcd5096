//! `hawker-bench`: Hawker against the standard ways to build the same thing, measured in the same
//! run (see the library's docs and BENCHMARKS.md).

use hawker_bench as bench;
use hawker_server::serve::{no_huge_pages, serve};

const USAGE: &str = "usage:
  hawker-bench herd [--buyers 100000] [--units 10000] [--concurrency 10000] [--runs 3]
                   [--designs hawker,hawker-async,hawker-live,postgres,redis,redis-fsync]
                   [--postgres URL] [--retry-every 10] [--kill-mid-sale] [--rate N]
                                 a flash-sale herd over HTTP (and, up to 15,000 buyers, over
                                 the live socket) against PostgreSQL row locks and Redis + Lua,
                                 verified after kill -9; --rate: N buyers a second, evenly
                                 spaced, instead of all at once
  hawker-bench fanout [--viewers 1000,10000] [--seconds 15] [--runs 1] [--chat-rate 50]
                   [--heart-rate 5000] [--sale-ms 100] [--no-socketio]
                                 one live room fanned out to WebSocket viewers, against Socket.IO
  hawker-bench auction [--bidders 1000] [--bids 40000] [--viewers 1000]
                                 bids decided and broadcast per second
  hawker-bench video [--viewers 50,100,200] [--seconds 15] [--kbps 1500] [--live777 PATH]
                                 WebRTC fan-out against live777
  hawker-bench login [--logins 1000] [--runs 3]
                                 a log-in flood: memory growth, page latency during it, and
                                 known against unknown e-mails
  hawker-bench soak [--minutes 60] [--rate 1000] [--concurrency 64] [--buyers 5000] [--chatters 20]
                   [--viewers 200] [--bidders 8] [--sample-s 5] [--out bench/runs/soak]
                                 one live show under steady buying, chat and bids for a long
                                 time: orders/s, p99, memory, database and WAL, sampled into a
                                 CSV and an SVG chart; --rate 0 buys as fast as answered;
                                 --smoke runs one minute
  hawker-bench serve [--demo]    the server under measurement (what `hawker serve` runs; the
                                 benchmarks start it themselves)
  every bench takes --smoke (a seconds-long run, as CI runs them) and --no-record (do not
  append the table to bench/runs/log.md); a run that fails its check exits non-zero";

/// The same allocator as `hawker`, so the server measured here is the one operators run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    if args.iter().any(|a| matches!(*a, "--help" | "-h")) || args == ["help"] {
        println!("{USAGE}");
        return Ok(());
    }
    match args.as_slice() {
        ["herd", rest @ ..] => bench::herd::run(rest).await,
        ["fanout", rest @ ..] => bench::fanout::run(rest).await,
        ["auction", rest @ ..] => bench::auction::run(rest).await,
        ["video", rest @ ..] => bench::video::run(rest).await,
        ["login", rest @ ..] => bench::login::run(rest).await,
        ["soak", rest @ ..] => bench::soak::run(rest).await,
        ["serve", rest @ ..] => {
            no_huge_pages();
            serve(rest.contains(&"--demo")).await
        }
        ["baseline-server", rest @ ..] => {
            no_huge_pages();
            bench::baseline::serve(rest).await
        }
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2)
        }
    }
}
