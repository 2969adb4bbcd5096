//! Hawker's media plane: the host's camera in over WHIP, out to every viewer over WHEP.
//!
//! - [`sfu`] is a selective forwarding unit as a sans-IO state machine on str0m: datagrams and
//!   the time go in, datagrams and events come out. It never reads a clock or touches a socket,
//!   so its forwarding, keyframe and reaping rules are tested in simulated time.
//! - [`synthetic`] is a stand-in camera for tests and benchmarks.
//! - [`driver`] is the one task that owns the UDP socket and the [`Sfu`], and the cheap handle
//!   ([`Media`]) the HTTP layer uses to publish, play and stop.
//!
//! No transcoding: the host's encoded frames are forwarded, so a viewer costs encryption and
//! packetisation only.

pub mod driver;
mod error;
pub mod sfu;
pub mod synthetic;

pub use driver::{Media, MediaConfig};
pub use error::MediaError;
pub use sfu::{Output, Role, SessionId, Sfu, SfuConfig, SfuEvent, Transmit};
