//! The live WebSocket's messages (`GET /api/v1/shows/{id}/live`), version [`PROTOCOL_VERSION`].
//!
//! Every server message is an [`Envelope`]: `{"v":1,"seq":…,"now":…,"type":…,…}`. `seq` grows by
//! one per message of a show, so a client can tell that it missed some; `now` is the server's clock
//! (ms), so a client can correct its countdowns. A [`ServerMsg::Snapshot`] replaces everything the
//! client knew: it is sent on join, on reconnect and when the client's socket fell behind.
//! PROTOCOL.md documents each message for other clients.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::account::Role;
use crate::ids::{AuctionId, ProductId, SaleId, ShowId, UserId, VariantId};
use crate::time::Timestamp;

pub const PROTOCOL_VERSION: u32 = 1;

/// The longest chat message, in characters.
pub const MAX_CHAT_CHARS: usize = 500;

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Envelope {
    pub v: u32,
    pub seq: u64,
    pub now: Timestamp,
    #[serde(flatten)]
    pub msg: ServerMsg,
}

/// Messages from the server to every viewer of a show (host-only ones are marked).
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    Snapshot(Snapshot),
    Chat(ChatLine),
    ChatDeleted {
        id: u64,
    },
    /// Hearts tapped since the last tick, and the show's total.
    Hearts {
        count: u64,
        total: u64,
    },
    Viewers {
        count: u32,
    },
    Pinned {
        product: Option<ProductCard>,
    },
    /// A flash sale started (or its terms are re-sent).
    Sale(SaleView),
    /// Units left in a running sale changed.
    SaleLeft {
        id: SaleId,
        remaining: u32,
    },
    SaleEnded {
        id: SaleId,
    },
    /// Units on hand of a variant changed (list-price buying).
    Stock {
        variant_id: VariantId,
        stock: u32,
    },
    /// The host announced a discount code.
    Code {
        code: String,
        description: String,
    },
    /// An auction started or changed (a bid, an extension, the end, the charge).
    Auction(AuctionView),
    /// The host's video went on air, is waiting for the host to reconnect, or went off air.
    Video {
        state: VideoState,
    },
    /// Somebody bought something (shown as social proof). In a rush, one message stands for
    /// `buyer` and `others` more buyers, `quantity` units in all ([`crate::purchases`]).
    Purchase {
        buyer: String,
        product_title: String,
        quantity: u32,
        others: u32,
    },
    /// Orders and revenue of this show so far. Host only.
    HostStats(HostStats),
    ShowEnded,
    /// Something the client sent was refused; nothing changed.
    Error {
        code: String,
        message: String,
    },
    Pong {
        nonce: u64,
    },
}

impl ServerMsg {
    /// Whether only the show's host (and admins) may see this message.
    pub fn host_only(&self) -> bool {
        matches!(self, Self::HostStats(_))
    }

    /// The copy of this message its one special reader gets instead, and who that is: the
    /// leader of an auction is told that they lead.
    pub fn leaders_copy(&self) -> Option<(UserId, ServerMsg)> {
        match self {
            Self::Auction(view) => {
                let leader = view.leader_account?;
                let mut theirs = view.clone();
                theirs.you_lead = true;
                Some((leader, Self::Auction(theirs)))
            }
            _ => None,
        }
    }

    /// The value this message only sets the latest of, if that is all it does: a later message
    /// of the same counter makes it redundant, so a batch need carry only the last.
    pub fn counter(&self) -> Option<Counter> {
        match self {
            Self::SaleLeft { id, .. } => Some(Counter::SaleLeft(*id)),
            Self::Stock { variant_id, .. } => Some(Counter::Stock(*variant_id)),
            Self::Viewers { .. } => Some(Counter::Viewers),
            Self::HostStats(_) => Some(Counter::HostStats),
            _ => None,
        }
    }
}

/// See [`ServerMsg::counter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counter {
    SaleLeft(SaleId),
    Stock(VariantId),
    Viewers,
    HostStats,
}

/// Messages from a viewer.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMsg {
    Chat {
        text: String,
    },
    /// Taps since the client last sent; clients batch taps, the server caps the count.
    Hearts {
        count: u32,
    },
    Ping {
        nonce: u64,
    },
    /// A bid from the show's socket, decided like `POST /api/v1/auctions/{id}/bids`.
    Bid {
        auction_id: AuctionId,
        amount_cents: i64,
        #[serde(default)]
        max: bool,
    },
    /// A buy from the show's socket, decided like `POST /api/v1/orders` with
    /// `Prefer: respond-async`. Answered with an `order` message carrying the same `key`, and
    /// again once the payment has settled.
    Buy {
        /// The idempotency key: a retry with the same key (over the socket or HTTP) gets the
        /// first attempt's order, never a second one.
        key: String,
        flash_sale_id: Option<SaleId>,
        variant_id: Option<VariantId>,
        quantity: i64,
        code: Option<String>,
        payment_method: String,
    },
}

/// A live auction as viewers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct AuctionView {
    pub id: AuctionId,
    pub variant_id: VariantId,
    pub product_title: String,
    pub variant_name: String,
    pub image: Option<String>,
    pub currency: String,
    /// `standard` or `sudden_death`.
    pub mode: String,
    pub status: AuctionStatus,
    pub price_cents: i64,
    /// Bids placed, accepted or not.
    pub bids: u64,
    /// The leader's display name. Neither their account nor the pseudonym that names them in
    /// the auction's public log is sent, so the log cannot be tied to accounts.
    pub leader: Option<String>,
    /// The leader's account: never sent, only used to set `you_lead` for them.
    #[serde(skip)]
    pub leader_account: Option<UserId>,
    /// True only in the copy sent to the leader.
    pub you_lead: bool,
    pub ends_at: Timestamp,
    /// The next valid bids to offer as buttons (the first is the minimum).
    pub next_bids: Vec<i64>,
    /// Set when the auction has ended: the last hash of its log, which anyone can check.
    pub final_hash: Option<String>,
    /// Whether the winner's charge went through (`None` until it is known).
    pub paid: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuctionStatus {
    Running,
    Ended,
}

/// Whether the host's camera reaches viewers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum VideoState {
    /// Nobody publishes (not yet, or the host stopped for longer than the grace period).
    #[default]
    Offline,
    /// Media from the host is flowing.
    Live,
    /// The host's connection dropped or they pressed Stop; viewers wait for them to resume.
    Reconnecting,
}

/// Everything a viewer needs to draw the room from scratch.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Snapshot {
    pub show_id: ShowId,
    pub live: bool,
    pub video: VideoState,
    pub viewers: u32,
    pub hearts_total: u64,
    pub pinned: Option<ProductCard>,
    pub sales: Vec<SaleView>,
    /// Running auctions and those that ended during this show (the sold list).
    pub auctions: Vec<AuctionView>,
    pub chat: Vec<ChatLine>,
    /// Present only in the host's snapshot.
    pub host_stats: Option<HostStats>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ChatLine {
    pub id: u64,
    pub user_id: UserId,
    pub name: String,
    pub role: Role,
    /// Whether the author is the show's host (drawn with a badge).
    pub host: bool,
    pub text: String,
    pub at: Timestamp,
}

/// The pinned product's overlay: what it is, what it costs, what is left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ProductCard {
    pub product_id: ProductId,
    pub title: String,
    pub image: Option<String>,
    pub currency: String,
    pub variants: Vec<VariantCard>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct VariantCard {
    pub id: VariantId,
    pub name: String,
    pub price_cents: i64,
    pub stock: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct SaleView {
    pub id: SaleId,
    pub variant_id: VariantId,
    pub product_id: ProductId,
    pub product_title: String,
    pub variant_name: String,
    pub image: Option<String>,
    pub currency: String,
    pub list_price_cents: i64,
    pub price_cents: i64,
    pub quantity: u32,
    pub remaining: u32,
    pub per_buyer_limit: u32,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct HostStats {
    pub orders: u64,
    pub units: u64,
    pub revenue_cents: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_shape_is_stable() {
        let env = Envelope {
            v: PROTOCOL_VERSION,
            seq: 3,
            now: Timestamp(10),
            msg: ServerMsg::SaleLeft {
                id: SaleId(7),
                remaining: 2,
            },
        };
        assert_eq!(
            serde_json::to_string(&env).expect("serializes"),
            r#"{"v":1,"seq":3,"now":10,"type":"sale_left","id":7,"remaining":2}"#
        );
        let msg: ClientMsg =
            serde_json::from_str(r#"{"type":"chat","text":"hi"}"#).expect("parses");
        assert_eq!(msg, ClientMsg::Chat { text: "hi".into() });
        assert!(serde_json::from_str::<ClientMsg>(r#"{"type":"chat","text":"hi","x":1}"#).is_err());
        let buy: ClientMsg = serde_json::from_str(
            r#"{"type":"buy","key":"k1","flash_sale_id":4,"quantity":1,"payment_method":"pm"}"#,
        )
        .expect("parses");
        assert_eq!(
            buy,
            ClientMsg::Buy {
                key: "k1".into(),
                flash_sale_id: Some(SaleId(4)),
                variant_id: None,
                quantity: 1,
                code: None,
                payment_method: "pm".into(),
            }
        );
    }
}
