//! Storage behind one object-safe [`Store`] trait, chosen by the database URL's scheme.
//!
//! Only [`sqlite`] exists today; nothing outside this module knows which backend runs, so
//! PostgreSQL can join as a second implementation. Driver errors become [`StoreError`]s through
//! `From` (sqlx's in `errors`, for any backend); named constraints become
//! [`StoreError::Conflict`]. The session cache (`sessions`) and keyset pagination ([`Page`],
//! [`PageRequest`], [`Cursor`]) are shared by every backend.

use std::sync::Arc;

use async_trait::async_trait;
use hawker_core::account::Role;
use hawker_core::commerce::{Event, Restore};
use hawker_core::ids::{AuctionId, IdMint, OrderId, ProductId, SaleId, ShowId, UserId, VariantId};
use hawker_core::money::Currency;
use hawker_core::protocol::HostStats;
use hawker_core::time::Timestamp;
use serde::Serialize;

use crate::auction_log::LogEntry;

pub mod changes;
mod errors;
mod page;
mod sessions;
pub mod sqlite;

pub use page::{BadPage, Cursor, PAGE_DEFAULT, PAGE_MAX, Page, PageRequest, every};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness or check constraint refused the write; the text names it for people.
    #[error("{0}")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    /// A page's cursor was made by a list with another sort key.
    #[error("a cursor from another list")]
    BadCursor,
    #[error(transparent)]
    Backend(anyhow::Error),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    #[serde(skip)]
    pub blocked_words: Vec<String>,
    /// A seller's shipping fee per buyer per show.
    pub shipping_fee_cents: i64,
    /// A buyer's limit on 24 hours of orders plus a new bid.
    pub daily_spend_limit_cents: Option<i64>,
}

impl User {
    /// Whether this user may act as `seller`: a seller for their own products and shows, and
    /// an admin for anyone's.
    pub fn acts_for(&self, seller: UserId) -> bool {
        self.id == seller || self.role == Role::Admin
    }
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub password_hash: String,
    pub display_name: String,
    pub role: Role,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A browser session; cookie-authenticated writes must echo its CSRF token.
    Session,
    /// A token for scripts (`Authorization: Bearer`).
    Api,
}

impl TokenKind {
    /// As the `tokens.kind` column holds it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Api => "api",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct VariantRow {
    pub id: VariantId,
    pub name: String,
    pub price_cents: i64,
    pub stock: i64,
}

/// A new id for a row the server names itself (orders, sales, codes, auctions): rising with the
/// wall clock's second so rows are appended, not scattered, and unguessable within its second
/// (see [`IdMint`]). One mint per process: two would mint the same second's ids.
pub fn new_id() -> i64 {
    static MINT: std::sync::Mutex<IdMint> = std::sync::Mutex::new(IdMint::new());
    let now = crate::clock::Clock::system().now();
    let mut mint = MINT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    mint.next(now, rand::random)
}

#[derive(Debug, Clone, Serialize)]
pub struct Product {
    pub id: ProductId,
    pub seller_id: UserId,
    pub title: String,
    pub description: String,
    pub currency: Currency,
    /// URLs under `/media/`.
    pub images: Vec<String>,
    pub archived: bool,
    pub variants: Vec<VariantRow>,
}

/// A variant as the seller edits it: `id` is `None` for a new one.
#[derive(Debug, Clone)]
pub struct VariantEdit {
    pub id: Option<VariantId>,
    pub name: String,
    pub price_cents: i64,
    pub stock: i64,
}

#[derive(Debug, Clone)]
pub struct ProductEdit {
    pub title: String,
    pub description: String,
    pub currency: Currency,
    pub variants: Vec<VariantEdit>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShowStatus {
    Scheduled,
    Live,
    Ended,
}

impl ShowStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Live => "live",
            Self::Ended => "ended",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "scheduled" => Some(Self::Scheduled),
            "live" => Some(Self::Live),
            "ended" => Some(Self::Ended),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Show {
    pub id: ShowId,
    pub seller_id: UserId,
    pub seller_name: String,
    pub title: String,
    pub category: String,
    pub status: ShowStatus,
    pub scheduled_at: Option<Timestamp>,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub cover: Option<String>,
    #[serde(skip)]
    /// SHA-256 of the stream key, as tokens: the key itself is shown once and never stored.
    pub stream_key_hash: String,
    pub product_ids: Vec<ProductId>,
    pub pinned_product_id: Option<ProductId>,
}

#[derive(Debug, Clone)]
pub struct NewShow {
    pub seller_id: UserId,
    pub title: String,
    pub category: String,
    pub scheduled_at: Option<Timestamp>,
    /// SHA-256 of the stream key.
    pub stream_key_hash: String,
    pub product_ids: Vec<ProductId>,
}

/// Which shows a listing holds: all of them by default.
#[derive(Debug, Clone, Default)]
pub struct ShowFilter {
    pub status: Option<ShowStatus>,
    /// Leaves the ended shows out: what is on now or coming.
    pub hide_ended: bool,
    pub seller: Option<UserId>,
    pub category: Option<String>,
}

/// A flash sale as stored, for requests that name one.
#[derive(Debug, Clone, Serialize)]
pub struct SaleRow {
    pub id: SaleId,
    pub show_id: ShowId,
    pub variant_id: VariantId,
    pub price_cents: i64,
    pub quantity: i64,
    pub remaining: i64,
    pub per_buyer_limit: i64,
    pub ends_at: Timestamp,
    pub status: String,
}

/// Where an order is in its life: reserved, then paid or declined (or expired unpaid), then a
/// paid one shipped or refunded. Stored as its lower-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Reserved,
    Paid,
    Declined,
    Expired,
    Shipped,
    Refunded,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reserved => "reserved",
            Self::Paid => "paid",
            Self::Declined => "declined",
            Self::Expired => "expired",
            Self::Shipped => "shipped",
            Self::Refunded => "refunded",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::Reserved,
            Self::Paid,
            Self::Declined,
            Self::Expired,
            Self::Shipped,
            Self::Refunded,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }

    /// Paid, and maybe shipped or refunded since: the buyer was charged.
    pub fn was_paid(self) -> bool {
        matches!(self, Self::Paid | Self::Shipped | Self::Refunded)
    }
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Order {
    pub id: OrderId,
    pub status: OrderStatus,
    pub buyer_id: UserId,
    pub buyer_name: String,
    pub show_id: ShowId,
    pub seller_id: UserId,
    pub product_id: ProductId,
    pub product_title: String,
    pub variant_id: VariantId,
    pub variant_name: String,
    pub flash_sale_id: Option<SaleId>,
    pub quantity: i64,
    pub unit_price_cents: i64,
    pub subtotal_cents: i64,
    pub discount_cents: i64,
    pub total_cents: i64,
    pub currency: Currency,
    pub code: Option<String>,
    pub payment_method: String,
    #[serde(skip)]
    pub payment_ref: Option<String>,
    pub tracking: Option<String>,
    pub auction_id: Option<AuctionId>,
    pub shipping_cents: i64,
    pub hold_until: Timestamp,
    pub created_at: Timestamp,
}

/// What a new order carries besides the core's decision.
#[derive(Debug, Clone)]
pub struct OrderMeta {
    pub order_id: OrderId,
    pub idempotency_key: String,
    pub payment_method: String,
}

/// A line of the commerce log: `(seq, at, event JSON)`.
pub type LogLine = (i64, Timestamp, String);

/// One group commit: the events of many decisions, written in one transaction.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub events: Vec<Event>,
    pub new_orders: Vec<OrderMeta>,
    pub new_auctions: Vec<NewAuction>,
    /// Auction log entries, already hash-chained, in order.
    pub auction_log: Vec<(AuctionId, LogEntry)>,
    /// New pseudonym → user mappings.
    pub bidders: Vec<(AuctionId, String, UserId)>,
    /// The latest summary of every auction the batch touched.
    pub auction_summaries: Vec<AuctionSummary>,
    /// Pre-bids `(variant, bidder)` that joined an auction started in this batch.
    pub consumed_pre_bids: Vec<(VariantId, UserId)>,
    /// The host ended the show: it is marked ended in the same transaction.
    pub end_show: bool,
    /// Payment methods that just paid, remembered for their buyers' next checkout in the same
    /// transaction (not one write per order after it).
    pub saved_methods: Vec<SavedMethod>,
}

/// A buyer's payment method as the checkout offers it next time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedMethod {
    pub user: UserId,
    pub method: String,
    pub label: String,
}

#[derive(Debug, Clone)]
pub struct NewAuction {
    pub id: AuctionId,
    pub variant_id: VariantId,
    pub salt: String,
}

/// The row that sums up an auction's log (the log stays the truth).
#[derive(Debug, Clone, Serialize)]
pub struct AuctionSummary {
    pub id: AuctionId,
    pub ends_at: Timestamp,
    pub ended: bool,
    pub winner: Option<String>,
    pub price_cents: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct AuctionRow {
    pub id: AuctionId,
    pub show_id: ShowId,
    pub variant_id: VariantId,
    pub summary: AuctionSummary,
    pub salt: String,
}

/// What one [`Store::maintain`] step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Maintained {
    /// Free pages given back to the file system.
    pub pages_returned: u64,
    /// Free pages still in the file (reused by later writes, or returned by later steps).
    pub free_pages_left: u64,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// One bounded step of upkeep for a long-lived database (the server runs one every few
    /// minutes): gives back space that deletes freed and refreshes the planner's statistics.
    async fn maintain(&self) -> StoreResult<Maintained>;

    // Accounts.
    async fn create_user(&self, user: &NewUser, now: Timestamp) -> StoreResult<User>;
    /// The user and their password hash.
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<(User, String)>>;
    async fn user(&self, id: UserId) -> StoreResult<Option<User>>;
    async fn set_blocked_words(&self, id: UserId, words: &[String]) -> StoreResult<()>;
    /// Changes an account's role (operators make moderators and admins); `NotFound` if no such e-mail.
    async fn set_role(&self, email: &str, role: Role) -> StoreResult<()>;
    async fn insert_token(
        &self,
        hash: &str,
        user: UserId,
        kind: TokenKind,
        csrf: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<()>;
    /// The user behind a token hash, and the session's CSRF token if it is a session.
    async fn user_by_token(&self, hash: &str) -> StoreResult<Option<(User, Option<String>)>>;
    async fn delete_token(&self, hash: &str) -> StoreResult<()>;
    /// Deletes the tokens of `kind` created before `created_before`; answers how many. Caches
    /// hear of it through `session_changes`, as of any delete.
    async fn delete_tokens_created_before(
        &self,
        kind: TokenKind,
        created_before: Timestamp,
    ) -> StoreResult<u64>;
    /// Loads the newest sessions into memory, so the first request of each is not a database
    /// read. A server does at start; it loads nothing into a cache already in use. Returns how
    /// many.
    async fn warm_sessions(&self) -> StoreResult<usize>;
    /// Saves a method; `make_default` moves an already saved one to the front.
    async fn save_payment_method(
        &self,
        user: UserId,
        method: &str,
        label: &str,
        make_default: bool,
    ) -> StoreResult<()>;
    /// Saved methods as `(method, label)`, the default first.
    async fn payment_methods(&self, user: UserId) -> StoreResult<Vec<(String, String)>>;

    // Catalog.
    async fn create_product(
        &self,
        seller: UserId,
        product: &ProductEdit,
        now: Timestamp,
    ) -> StoreResult<Product>;
    /// Replaces title, description and variants; variants left out are kept but no longer listed.
    async fn update_product(
        &self,
        id: ProductId,
        product: &ProductEdit,
        now: Timestamp,
    ) -> StoreResult<Product>;
    async fn archive_product(&self, id: ProductId, now: Timestamp) -> StoreResult<()>;
    async fn product(&self, id: ProductId) -> StoreResult<Option<Product>>;
    async fn product_of_variant(&self, variant: VariantId) -> StoreResult<Option<Product>>;
    /// A seller's products with their listed variants, a page at a time: the active ones
    /// first, then (`with_archived`) the archived ones, newest first within each.
    async fn products_by_seller(
        &self,
        seller: UserId,
        with_archived: bool,
        page: &PageRequest,
    ) -> StoreResult<Page<Product>>;
    async fn add_product_image(&self, id: ProductId, url: &str) -> StoreResult<()>;

    // Shows.
    async fn create_show(&self, show: &NewShow, now: Timestamp) -> StoreResult<Show>;
    async fn show(&self, id: ShowId) -> StoreResult<Option<Show>>;
    /// The shows `filter` lets through, a page at a time: the live ones first, then the
    /// scheduled, then the ended, each latest first (by when it started, else is scheduled,
    /// else was made; then by id). A show that changes status between two pages moves to
    /// another part of the list, so a client paging may see it twice or not at all.
    async fn shows(&self, filter: &ShowFilter, page: &PageRequest) -> StoreResult<Page<Show>>;
    /// The categories of the shows live or scheduled, sorted; at most 100.
    async fn show_categories(&self) -> StoreResult<Vec<String>>;
    async fn set_show_status(
        &self,
        id: ShowId,
        status: ShowStatus,
        now: Timestamp,
    ) -> StoreResult<()>;
    /// Takes a scheduled show live unless a product of its lineup is live in another show, in
    /// one step, so two shows sharing a product never both go live. `Err(other)` names the show
    /// that has it; a show that is not scheduled is left as it is.
    async fn go_live(&self, id: ShowId, now: Timestamp) -> StoreResult<Result<(), ShowId>>;
    async fn set_show_cover(&self, id: ShowId, url: &str) -> StoreResult<()>;
    /// Replaces the show's stream key (its hash): the old key stops working.
    async fn set_stream_key_hash(&self, id: ShowId, hash: &str) -> StoreResult<()>;
    async fn set_pinned(&self, id: ShowId, product: Option<ProductId>) -> StoreResult<()>;
    /// A live show other than `except` whose lineup shares a product with `products`.
    /// Shows holding unpaid reservations or a running auction (their owners must come back after
    /// a restart, even if the show has ended).
    async fn shows_with_unsettled_commerce(&self) -> StoreResult<Vec<ShowId>>;
    /// Reserved orders bought through `POST /orders` (not auction wins) whose hold lasts past
    /// `now`, in one read.
    async fn open_reservations(&self, now: Timestamp) -> StoreResult<Vec<Order>>;
    async fn live_show_sharing_products(
        &self,
        products: &[ProductId],
        except: ShowId,
    ) -> StoreResult<Option<ShowId>>;

    // Commerce.
    /// Everything [`hawker_core::commerce::ShowCommerce::restore`] needs, as stored.
    async fn load_commerce(&self, show: ShowId) -> StoreResult<Restore>;
    /// Applies a batch of decisions and appends them to the commerce log, all or nothing, durably.
    async fn commit(&self, show: ShowId, now: Timestamp, batch: &Batch) -> StoreResult<()>;
    async fn sale(&self, id: SaleId) -> StoreResult<Option<SaleRow>>;
    async fn host_stats(&self, show: ShowId) -> StoreResult<HostStats>;
    /// The show's commerce log, oldest first (by `seq`), a page at a time.
    async fn commerce_log(&self, show: ShowId, page: &PageRequest) -> StoreResult<Page<LogLine>>;
    /// A product's catalog edits (outside shows), oldest first, a page at a time.
    async fn product_log(
        &self,
        product: ProductId,
        page: &PageRequest,
    ) -> StoreResult<Page<LogLine>>;

    // Auctions.
    async fn auction(&self, id: AuctionId) -> StoreResult<Option<AuctionRow>>;
    async fn auctions_of_show(&self, show: ShowId) -> StoreResult<Vec<AuctionRow>>;
    /// The whole log of an auction, in order: for replaying it inside the server (an auction
    /// lasts minutes, so its log is bounded). Clients read [`Store::auction_log_page`].
    async fn auction_log(&self, id: AuctionId) -> StoreResult<Vec<LogEntry>>;
    /// An auction's log, oldest first (by `seq`), a page at a time.
    async fn auction_log_page(
        &self,
        id: AuctionId,
        page: &PageRequest,
    ) -> StoreResult<Page<LogEntry>>;
    /// The last entry of an auction's log, whose hash seals every entry before it.
    async fn auction_log_last(&self, id: AuctionId) -> StoreResult<Option<LogEntry>>;
    /// Pseudonym, user id and display name of everyone who bid.
    async fn auction_bidders(&self, id: AuctionId) -> StoreResult<Vec<(String, UserId, String)>>;

    /// Saves (or replaces) a buyer's pre-bid on a lineup variant.
    async fn save_pre_bid(
        &self,
        show: ShowId,
        variant: VariantId,
        user: UserId,
        max_cents: i64,
        now: Timestamp,
    ) -> StoreResult<()>;
    /// Waiting pre-bids of a show as `(variant, user, display name, max)`, oldest first.
    async fn pre_bids(&self, show: ShowId) -> StoreResult<Vec<(VariantId, UserId, String, i64)>>;

    // Orders.
    async fn order(&self, id: OrderId) -> StoreResult<Option<Order>>;
    async fn order_by_key(&self, buyer: UserId, key: &str) -> StoreResult<Option<Order>>;
    /// Which of these `(buyer, idempotency key)` pairs already have an order, and its id: one
    /// read for a whole turn of buys, not one per request.
    async fn orders_by_keys(
        &self,
        keys: &[(UserId, String)],
    ) -> StoreResult<Vec<(UserId, String, OrderId)>>;
    async fn buyer_has_orders(&self, buyer: UserId) -> StoreResult<bool>;
    /// A buyer's orders, newest first (by `created_at`, then `id`), a page at a time.
    async fn orders_for_buyer(&self, buyer: UserId, page: &PageRequest)
    -> StoreResult<Page<Order>>;
    /// A seller's orders, of one show or of all, newest first, a page at a time.
    async fn orders_for_seller(
        &self,
        seller: UserId,
        show: Option<ShowId>,
        page: &PageRequest,
    ) -> StoreResult<Page<Order>>;
    /// Ships the order's whole shipment — every paid order of the same buyer from the same show —
    /// under one tracking number; `Conflict` if the order itself is not paid.
    async fn mark_shipped(&self, id: OrderId, tracking: &str, now: Timestamp) -> StoreResult<()>;
    async fn set_shipping_fee(&self, seller: UserId, fee_cents: i64) -> StoreResult<()>;
    async fn set_spend_limit(&self, user: UserId, limit_cents: Option<i64>) -> StoreResult<()>;
    /// What a buyer's live orders (reserved, paid, shipped) created since `since` add up to.
    async fn spent_since(&self, user: UserId, since: Timestamp) -> StoreResult<i64>;
    /// `paid` → `refunded`, and its charge (if any) owed back in `refunds_due`, in one
    /// transaction; `Conflict` if the order is in another state. Winning this transition is what
    /// entitles a caller to ask the provider for the refund, so it is asked at most once.
    async fn mark_refunded(&self, id: OrderId, now: Timestamp) -> StoreResult<()>;
    /// Refunds decided but not yet confirmed by the provider, as `(order, charge)`.
    async fn refunds_due(&self) -> StoreResult<Vec<(OrderId, String)>>;
    /// The provider confirmed the order's refund.
    async fn refund_sent(&self, id: OrderId) -> StoreResult<()>;
}

/// Opens the backend named by the URL's scheme and brings its schema up to date.
pub async fn open(
    url: &str,
    synchronous_full: bool,
    clock: crate::clock::Clock,
) -> anyhow::Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(
            sqlite::SqliteStore::open(url, synchronous_full, clock).await?,
        ))
    } else {
        anyhow::bail!("unsupported database URL {url:?}: use sqlite://path/to/file.db")
    }
}
