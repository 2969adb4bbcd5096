//! Hawker's pure rules. Nothing in this crate does IO or reads a clock: every function that
//! needs the time takes `now`, and every state machine is a plain struct driven by its caller.
//!
//! - [`ids`], [`money`], [`catalog`]: parsed value types (ids, prices, quantities, keys).
//! - [`discount`]: show-exclusive discount codes and their arithmetic.
//! - [`commerce`]: one live show's stock, flash sales, codes and reservations — the state machine
//!   that decides every buy in arrival order.
//! - [`auction`]: live auctions — increments, soft close and sudden death, proxy bids, and the
//!   log whose bodies replay to the same winner and price; [`auction_log`]: that log's hash
//!   chain and the verifier anyone can run on it.
//! - [`image`]: what an uploaded file is, by its bytes.
//! - [`room`]: one live show's chat, hearts, viewers and pinned product.
//! - [`protocol`]: the versioned messages of the live WebSocket.
//! - [`purchases`]: purchase announcements, gathered so a sell-out does not flood the room.

pub mod account;
pub mod auction;
pub mod auction_log;
pub mod catalog;
pub mod commerce;
pub mod discount;
pub mod ids;
pub mod image;
pub mod money;
pub mod protocol;
pub mod purchases;
pub mod room;
pub mod time;

/// Input that breaks a rule of its type; the message is safe to show to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidInput {
    /// Which field was wrong, as named in the API.
    pub field: &'static str,
    /// What was wrong with it, as a sentence.
    pub message: String,
}

impl InvalidInput {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}
