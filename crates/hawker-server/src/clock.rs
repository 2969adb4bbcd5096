//! The server's clock, the only reader of the wall clock. Everything that decides by the time
//! (owners, reservations, auctions, sessions) asks a [`Clock`] it was given, so a test can move
//! time forward by hand instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use hawker_core::time::Timestamp;

/// Cheap to clone; clones share one time.
#[derive(Clone, Debug)]
pub struct Clock(Source);

#[derive(Clone, Debug)]
enum Source {
    System,
    /// Stands still until moved; starts at the wall clock's time.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// The wall clock.
    pub fn system() -> Self {
        Self(Source::System)
    }

    /// A clock that stands still at the current time until [`Clock::advance`] moves it (tests).
    pub fn manual() -> Self {
        Self(Source::Manual(Arc::new(AtomicI64::new(wall().0))))
    }

    pub fn now(&self) -> Timestamp {
        match &self.0 {
            Source::System => wall(),
            Source::Manual(ms) => Timestamp(ms.load(Ordering::SeqCst)),
        }
    }

    /// Moves a manual clock forward; the wall clock cannot be moved, and is left alone.
    pub fn advance(&self, ms: i64) {
        if let Source::Manual(now) = &self.0 {
            now.fetch_add(ms, Ordering::SeqCst);
        }
    }

    pub fn is_manual(&self) -> bool {
        matches!(self.0, Source::Manual(_))
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
        assert!(!Clock::system().is_manual());
    }
}
