//! Hawker's server: everything that does IO.
//!
//! - [`app`]: building the router and running it ([`App`]); [`state`]: [`state::AppState`],
//!   what every handler can reach.
//! - [`config`]: layered settings; [`clock`]: the only wall-clock reader.
//! - [`store`]: the [`store::Store`] trait and its SQLite backend.
//! - [`live`]: the hub of live shows — one commerce owner and one room owner per show, sockets.
//! - [`api`]: the JSON API under `/api/v1`; [`pages`]: server-rendered pages and static assets.
//! - [`auth`], [`payments`], [`media`]: accounts and sessions, the payment provider, uploads.
//! - [`auction_log`]: the hash chain of auction logs and its verifier (from `hawker-core`).
//! - [`demo`]: demo data for `hawker serve --demo`; [`serve`]: running the server as
//!   `hawker serve` does (the benchmarks, in `hawker-bench`, run the same).

pub mod api;
pub mod app;
pub mod auth;
pub mod clock;
pub mod config;
pub mod demo;
pub mod error;
pub mod limits;
pub mod live;
pub mod media;
pub mod pages;
pub mod payments;
pub mod serve;
pub mod state;
pub mod store;

pub use app::App;
pub use config::Config;
pub use hawker_core::auction_log;
