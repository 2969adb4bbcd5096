//! `hawker`: parses the command line, sets up logging, and runs the [`hawker_server::App`].

use anyhow::Context;
use hawker_core::account::Role;
use hawker_server::{App, Config, bench, demo};

const USAGE: &str = "usage:
  hawker serve [--demo]          run the server (settings: hawker config --print-defaults)
  hawker config --print-defaults print every setting with its default
  hawker verify-auction FILE     check an auction log (GET /api/v1/auctions/{id}/log): its hash
                                 chain, then its bids replayed through the rules
  hawker user set-role EMAIL buyer|seller|moderator|admin
                                 change an account's role (uses the configured database)
  hawker bench herd [--buyers 100000] [--units 10000] [--concurrency 10000] [--runs 3]
                   [--designs hawker,hawker-async,hawker-live,postgres,redis,redis-fsync]
                   [--postgres URL] [--retry-every 10] [--kill-mid-sale] [--rate N]
                                 a flash-sale herd over HTTP (and, up to 15,000 buyers, over
                                 the live socket) against PostgreSQL row locks and Redis + Lua,
                                 verified after kill -9; --rate: N buyers a second, evenly
                                 spaced, instead of all at once
  hawker bench fanout [--viewers 1000,10000] [--seconds 15] [--runs 1] [--chat-rate 50]
                   [--heart-rate 5000] [--sale-ms 100] [--no-socketio]
                                 one live room fanned out to WebSocket viewers, against Socket.IO
  hawker bench auction [--bidders 1000] [--bids 40000] [--viewers 1000]
                                 bids decided and broadcast per second
  hawker bench video [--viewers 50,100,200] [--seconds 15] [--kbps 1500] [--live777 PATH]
                                 WebRTC fan-out against live777
  hawker bench login [--logins 1000] [--runs 3]
                                 a log-in flood: memory growth, page latency during it, and
                                 known against unknown e-mails
  every bench takes --smoke (a seconds-long run, as CI runs them) and --no-record (do not
  append the table to bench/runs/log.md); a run that fails its check exits non-zero";

/// Many small allocations per request (headers, JSON, rows); mimalloc's per-thread pages make
/// them cheaper than glibc's malloc, which was a tenth of the herd's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Turns transparent huge pages off for this process. mimalloc asks for them on its arenas, and
/// under the flash-sale herd the kernel's zeroing of fresh 2 MiB pages was 15–39% of the server's
/// CPU; turning them off raised durable orders/s by about 1.4× (bench/runs/notes.md). Both of our HTTP
/// servers call it — `hawker serve` and the benchmark's baseline server — so they are measured
/// alike.
fn no_huge_pages() {
    if let Err(e) = nix::sys::prctl::set_thp_disable(true) {
        eprintln!("could not turn transparent huge pages off ({e}); running with them");
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Asking for help anywhere, even after a command, prints the usage and runs nothing.
    if args.iter().any(|a| matches!(*a, "--help" | "-h")) || args == ["help"] {
        println!("{USAGE}");
        return Ok(());
    }
    match args.as_slice() {
        ["serve", rest @ ..] => {
            no_huge_pages();
            serve(rest.contains(&"--demo")).await
        }
        ["config", "--print-defaults"] => {
            print!("{}", Config::defaults_toml());
            Ok(())
        }
        ["bench", "herd", rest @ ..] => bench::herd::run(rest).await,
        ["bench", "fanout", rest @ ..] => bench::fanout::run(rest).await,
        ["bench", "auction", rest @ ..] => bench::auction::run(rest).await,
        ["bench", "video", rest @ ..] => bench::video::run(rest).await,
        ["bench", "login", rest @ ..] => bench::login::run(rest).await,
        ["bench", "baseline-server", rest @ ..] => {
            no_huge_pages();
            bench::baseline::serve(rest).await
        }
        ["user", "set-role", email, role] => set_role(email, role).await,
        ["verify-auction", file] => verify_auction(file),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2)
        }
    }
}

fn verify_auction(file: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
    let entries: Vec<hawker_server::auction_log::LogEntry> =
        serde_json::from_str(&text).context("the file is not a JSON array of log entries")?;
    match hawker_server::auction_log::verify(&entries) {
        Ok((outcome, final_hash)) => {
            match (&outcome.winner, outcome.price_cents, outcome.ended) {
                (Some(w), Some(p), true) => {
                    println!("ok: {} entries; winner {w} at {p} cents", entries.len())
                }
                (None, _, true) => println!("ok: {} entries; ended unsold", entries.len()),
                _ => println!("ok: {} entries; still running", entries.len()),
            }
            println!("final hash {final_hash}");
            Ok(())
        }
        Err(e) => {
            eprintln!("INVALID: {e}");
            std::process::exit(1)
        }
    }
}

async fn set_role(email: &str, role: &str) -> anyhow::Result<()> {
    let role = Role::parse(role).context("role must be buyer, seller, moderator or admin")?;
    let config = Config::load()?;
    let store = hawker_server::store::open(&config.database_url(), true).await?;
    store
        .set_role(&email.trim().to_lowercase(), role)
        .await
        .with_context(|| format!("no account with e-mail {email}"))?;
    println!("{email} is now {}", role.as_str());
    Ok(())
}

async fn serve(with_demo: bool) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_max_level(tracing::Level::INFO)
        .init();
    let config = Config::load()?;
    let app = App::build(config).await.context("starting Hawker")?;
    if with_demo {
        demo::seed(app.state()).await.context("seeding demo data")?;
    }
    let addr = app
        .state()
        .config
        .listen
        .rsplit_once(':')
        .map(|(host, _)| host.to_owned())
        .unwrap_or_default();
    // Tests and scripts read this line to find the port.
    println!("hawker listening on http://{addr}:{}", app.port());
    if with_demo {
        println!(
            "demo accounts (password {}): lumi@demo.hawker.dev (seller), ana@demo.hawker.dev (buyer)",
            demo::DEMO_PASSWORD
        );
    }
    app.run_until_stopped(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
