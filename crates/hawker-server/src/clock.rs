//! The server's clock, the only reader of the wall clock. Everything that decides by the time
//! (owners, reservations, auctions, sessions) asks a [`Clock`] it was given, so a test can move
//! time forward by hand instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use hawker_core::time::Timestamp;

/// Cheap to clone; clones share one time.
#[derive(Clone, Debug)]
pub struct Clock(Source);

#[derive(Clone, Debug)]
enum Source {
    /// The wall clock, and a monotonic one from when this clock was made.
    System(Instant),
    /// Stands still until moved; starts at the wall clock's time.
    Manual {
        start: Timestamp,
        now: Arc<AtomicI64>,
    },
}

impl Clock {
    /// The wall clock.
    pub fn system() -> Self {
        Self(Source::System(Instant::now()))
    }

    /// A clock that stands still at the current time until [`Clock::advance`] moves it (tests).
    pub fn manual() -> Self {
        let start = wall();
        Self(Source::Manual {
            start,
            now: Arc::new(AtomicI64::new(start.0)),
        })
    }

    /// The time of day: what is stored, compared with deadlines and sent to clients.
    pub fn now(&self) -> Timestamp {
        match &self.0 {
            Source::System(_) => wall(),
            Source::Manual { now, .. } => Timestamp(now.load(Ordering::SeqCst)),
        }
    }

    /// Time since this clock was made, never running backwards (an NTP step of the wall clock
    /// does not move it): for what only measures intervals, as caches and rate limits do.
    pub fn elapsed(&self) -> Duration {
        match &self.0 {
            Source::System(start) => start.elapsed(),
            Source::Manual { start, now } => {
                let ms = now.load(Ordering::SeqCst).saturating_sub(start.0);
                Duration::from_millis(ms.max(0) as u64)
            }
        }
    }

    /// Moves a manual clock forward; the wall clock cannot be moved, and is left alone.
    pub fn advance(&self, ms: i64) {
        if let Source::Manual { now, .. } = &self.0 {
            now.fetch_add(ms, Ordering::SeqCst);
        }
    }

    pub fn is_manual(&self) -> bool {
        matches!(self.0, Source::Manual { .. })
    }
}

fn wall() -> Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    Timestamp(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_its_clones_share_it() {
        let clock = Clock::manual();
        let start = clock.now();
        let clone = clock.clone();
        clone.advance(3_000);
        assert_eq!(clock.now(), start.plus_ms(3_000));
        assert_eq!(clock.elapsed(), Duration::from_secs(3));
        assert!(!Clock::system().is_manual());
    }
}
