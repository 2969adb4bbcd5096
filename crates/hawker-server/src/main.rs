//! `hawker`: parses the command line, sets up logging, and runs the [`hawker_server::App`].

use anyhow::Context;
use hawker_core::account::Role;
use hawker_server::Config;
use hawker_server::serve::{no_huge_pages, serve};

const USAGE: &str = "usage:
  hawker serve [--demo]          run the server (settings: hawker config --print-defaults)
  hawker config --print-defaults print every setting with its default
  hawker verify-auction FILE     check an auction log: the pages of GET /api/v1/auctions/{id}/log
                                 saved one after another; its hash chain, then its bids
                                 replayed through the rules
  hawker user set-role EMAIL buyer|seller|moderator|admin
                                 change an account's role (uses the configured database)
  benchmarks are a binary of their own: cargo run --release -p hawker-bench -- --help";

/// Many small allocations per request (headers, JSON, rows); mimalloc's per-thread pages make
/// them cheaper than glibc's malloc, which was a tenth of the herd's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    let entries = hawker_server::auction_log::parse_log(&text)
        .context("the file is not an auction log: the pages of GET /api/v1/auctions/{id}/log")?;
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
    let store = hawker_server::store::open(
        &config.database_url(),
        true,
        hawker_server::clock::Clock::system(),
    )
    .await?;
    store
        .set_role(&email.trim().to_lowercase(), role)
        .await
        .with_context(|| format!("no account with e-mail {email}"))?;
    println!("{email} is now {}", role.as_str());
    Ok(())
}
