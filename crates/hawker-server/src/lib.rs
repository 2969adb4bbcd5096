//! Hawker's server: everything that does IO.
//!
//! Layers, each using only those above it (`tests/layers.rs` checks):
//!
//! 1. [`config`], [`clock`] (the server's time), [`secrets`], [`passwords`], [`limits`].
//! 2. [`store`] (the [`store::Store`] trait and its SQLite backend), [`payments`] (the provider).
//! 3. [`live`]: the hub of live shows — one commerce owner and one room owner per show.
//! 4. [`service`]: the use cases (buy, pay, settle, start and end shows, accounts), with typed
//!    errors.
//! 5. The adapters: [`state`] (what handlers reach), [`error`] (refusals as HTTP), [`auth`]
//!    (who is asking), [`api`] (JSON under `/api/v1`), [`pages`] (server-rendered pages),
//!    [`socket`] (a viewer's live socket), [`media`] (uploads).
//! 6. [`app`]: the router and the server's tasks ([`App`]); [`demo`]: demo data for
//!    `hawker serve --demo`; [`serve`]: running the server as `hawker serve` does (the
//!    benchmarks, in `hawker-bench`, run the same).
//!
//! [`auction_log`] is the hash chain of auction logs and its verifier (from `hawker-core`).

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
pub mod passwords;
pub mod payments;
pub mod secrets;
pub mod serve;
pub mod service;
pub mod socket;
pub mod state;
pub mod store;

pub use app::App;
pub use config::Config;
pub use hawker_core::auction_log;
