//! Running the server as `hawker serve` does: logging, the configuration, the demo data, and
//! the process settings it is measured with. `hawker-bench serve` calls the same code, so a
//! benchmark measures exactly what operators run.

use anyhow::Context;

use crate::{App, Config, demo};

/// Turns transparent huge pages off for this process. mimalloc asks for them on its arenas, and
/// under the flash-sale herd the kernel's zeroing of fresh 2 MiB pages was 15–39% of the server's
/// CPU; turning them off raised durable orders/s by about 1.4× (bench/runs/notes.md). Every HTTP
/// server we measure calls it (`hawker serve`, and the benchmark's server and baselines), so they
/// are measured alike.
pub fn no_huge_pages() {
    if let Err(e) = nix::sys::prctl::set_thp_disable(true) {
        eprintln!("could not turn transparent huge pages off ({e}); running with them");
    }
}

/// `hawker serve [--demo]`: runs until Ctrl-C.
pub async fn serve(with_demo: bool) -> anyhow::Result<()> {
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
        .services
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
