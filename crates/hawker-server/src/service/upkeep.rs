//! Upkeep for a server that runs for days: the database's bounded maintenance step, on a timer.
//! (Expired tokens go in [`super::accounts::expire_tokens`]; an ended show's owner and room stop
//! by themselves once it has nothing left to settle.)

use std::time::Duration;

use super::Services;

/// Runs [`crate::store::Store::maintain`] every `every`, for the life of the server. Each step
/// is bounded, so it never holds the writer for long; a database with much to give back gets
/// it back over several steps.
pub async fn maintain_store(s: Services, every: Duration) {
    let mut tick = tokio::time::interval(every);
    // The first tick fires at once: start one period in, not at the busiest moment.
    tick.tick().await;
    loop {
        tick.tick().await;
        match s.store.maintain().await {
            Ok(done) if done.pages_returned > 0 => tracing::info!(
                pages_returned = done.pages_returned,
                free_pages_left = done.free_pages_left,
                "database maintenance gave space back"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!("database maintenance: {e}"),
        }
    }
}
