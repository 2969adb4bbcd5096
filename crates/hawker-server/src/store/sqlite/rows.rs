//! Rows to store types: each type is read from a row in one function here, for rows of either
//! driver (sqlx's, or rusqlite's for the point reads), so a query elsewhere only picks a mapper.

use hawker_core::account::Role;
use hawker_core::commerce::{OrderLine, Sale, SaleStatus, Variant};
use hawker_core::discount::{CodeRule, Discount};
use hawker_core::ids::{AuctionId, CodeId, OrderId, ProductId, SaleId, ShowId, UserId, VariantId};
use hawker_core::money::Currency;
use hawker_core::protocol::HostStats;
use hawker_core::time::Timestamp;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::auction_log::LogEntry;
use crate::store::{
    AuctionRow, AuctionSummary, Order, OrderStatus, Product, SaleRow, Show, ShowStatus, StoreError,
    StoreResult, User, VariantRow,
};

/// A row from either driver: sqlx's, or rusqlite's for [`super::PointReads`]. One mapping per
/// type serves both.
pub(super) trait Columns {
    /// A column by name, or by position where the read is hot (see [`user_columns!`]).
    fn col<T: Column>(&self, at: impl At) -> StoreResult<T>;
}

/// A column's name or position, for either driver.
pub(super) trait At: rusqlite::RowIndex + sqlx::ColumnIndex<SqliteRow> {}

impl<I: rusqlite::RowIndex + sqlx::ColumnIndex<SqliteRow>> At for I {}

pub(super) trait Column:
    rusqlite::types::FromSql + sqlx::Type<sqlx::Sqlite> + for<'r> sqlx::Decode<'r, sqlx::Sqlite>
{
}

impl<T> Column for T where
    T: rusqlite::types::FromSql + sqlx::Type<sqlx::Sqlite> + for<'r> sqlx::Decode<'r, sqlx::Sqlite>
{
}

impl Columns for SqliteRow {
    fn col<T: Column>(&self, at: impl At) -> StoreResult<T> {
        Ok(self.try_get(at)?)
    }
}

impl Columns for rusqlite::Row<'_> {
    fn col<T: Column>(&self, at: impl At) -> StoreResult<T> {
        Ok(self.get(at)?)
    }
}

/// The columns [`user_from`] reads, by position, first in a query's select list (`u` is
/// `users`). Every request reads its user with its token; finding each column by name scans the
/// statement's columns once per field, about a third of that read.
macro_rules! user_columns {
    () => {
        "u.id, u.email, u.display_name, u.role, u.blocked_words, u.shipping_fee_cents, u.daily_spend_limit_cents"
    };
}
pub(super) use user_columns;

/// The position of the first column after [`user_columns`].
pub(super) const AFTER_USER: usize = 7;

/// What [`show_from`] reads; the lineup is read apart.
pub(super) const SHOW_SELECT: &str =
    "SELECT s.*, u.display_name AS seller_name FROM shows s JOIN users u ON u.id = s.seller_id";

/// What [`order_from`] reads (the seller is the order's own `seller_id`, copied from its show).
pub(super) const ORDER_SELECT: &str = "SELECT o.*, u.display_name AS buyer_name, p.id AS product_id, \
     p.title AS product_title, v.name AS variant_name, c.code AS code \
     FROM orders o JOIN users u ON u.id = o.buyer_id \
     JOIN variants v ON v.id = o.variant_id JOIN products p ON p.id = v.product_id \
     LEFT JOIN codes c ON c.id = o.code_id";

/// A list stored one item per line (blocked words, image URLs).
pub(super) fn split_lines(s: &str) -> Vec<String> {
    s.lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A stored currency code; the store wrote only parsed ones, so another is an error here.
fn currency(raw: &str) -> StoreResult<Currency> {
    Currency::parse(raw)
        .map_err(|_| StoreError::Backend(anyhow::anyhow!("a row with currency {raw:?}")))
}

pub(super) fn user_from(row: &impl Columns) -> StoreResult<User> {
    let role: String = row.col(3)?;
    Ok(User {
        id: UserId(row.col(0)?),
        email: row.col(1)?,
        display_name: row.col(2)?,
        role: Role::parse(&role).unwrap_or(Role::Buyer),
        blocked_words: split_lines(&row.col::<String>(4)?),
        shipping_fee_cents: row.col(5)?,
        daily_spend_limit_cents: row.col(6)?,
    })
}

/// A `products` row and its listed variants, read apart.
pub(super) fn product_from(row: &impl Columns, variants: Vec<VariantRow>) -> StoreResult<Product> {
    Ok(Product {
        id: ProductId(row.col("id")?),
        seller_id: UserId(row.col("seller_id")?),
        title: row.col("title")?,
        description: row.col("description")?,
        currency: currency(&row.col::<String>("currency")?)?,
        images: split_lines(&row.col::<String>("images")?),
        archived: row.col("archived")?,
        variants,
    })
}

pub(super) fn variant_row_from(row: &impl Columns) -> StoreResult<VariantRow> {
    Ok(VariantRow {
        id: VariantId(row.col("id")?),
        name: row.col("name")?,
        price_cents: row.col("price_cents")?,
        stock: row.col("stock")?,
    })
}

/// A variant as the commerce core sells it: a `variants` row joined to its product (`title`,
/// `currency`, `images`).
pub(super) fn variant_from(row: &impl Columns) -> StoreResult<Variant> {
    Ok(Variant {
        id: VariantId(row.col("id")?),
        product_id: ProductId(row.col("product_id")?),
        product_title: row.col("title")?,
        name: row.col("name")?,
        price_cents: row.col("price_cents")?,
        currency: currency(&row.col::<String>("currency")?)?,
        stock: u32::try_from(row.col::<i64>("stock")?).unwrap_or(0),
        image: split_lines(&row.col::<String>("images")?)
            .into_iter()
            .next(),
    })
}

/// A show without its lineup, which is read apart.
pub(super) fn show_from(row: &impl Columns) -> StoreResult<Show> {
    let status: String = row.col("status")?;
    Ok(Show {
        id: ShowId(row.col("id")?),
        seller_id: UserId(row.col("seller_id")?),
        seller_name: row.col("seller_name")?,
        title: row.col("title")?,
        category: row.col("category")?,
        status: ShowStatus::parse(&status).unwrap_or(ShowStatus::Ended),
        scheduled_at: row.col::<Option<i64>>("scheduled_at")?.map(Timestamp),
        started_at: row.col::<Option<i64>>("started_at")?.map(Timestamp),
        ended_at: row.col::<Option<i64>>("ended_at")?.map(Timestamp),
        cover: row.col("cover")?,
        stream_key_hash: row.col("stream_key")?,
        product_ids: Vec::new(),
        pinned_product_id: row.col::<Option<i64>>("pinned_product_id")?.map(ProductId),
    })
}

pub(super) fn order_from(row: &impl Columns) -> StoreResult<Order> {
    Ok(Order {
        id: OrderId(row.col("id")?),
        status: {
            let raw: String = row.col("status")?;
            OrderStatus::parse(&raw).ok_or_else(|| {
                StoreError::Backend(anyhow::anyhow!("an order with status {raw:?}"))
            })?
        },
        buyer_id: UserId(row.col("buyer_id")?),
        buyer_name: row.col("buyer_name")?,
        show_id: ShowId(row.col("show_id")?),
        seller_id: UserId(row.col("seller_id")?),
        product_id: ProductId(row.col("product_id")?),
        product_title: row.col("product_title")?,
        variant_id: VariantId(row.col("variant_id")?),
        variant_name: row.col("variant_name")?,
        flash_sale_id: row.col::<Option<i64>>("sale_id")?.map(SaleId),
        quantity: row.col("quantity")?,
        unit_price_cents: row.col("unit_price_cents")?,
        subtotal_cents: row.col("subtotal_cents")?,
        discount_cents: row.col("discount_cents")?,
        total_cents: row.col("total_cents")?,
        currency: currency(&row.col::<String>("currency")?)?,
        code: row.col("code")?,
        payment_method: row.col("payment_method")?,
        payment_ref: row.col("payment_ref")?,
        tracking: row.col("tracking")?,
        auction_id: row.col::<Option<i64>>("auction_id")?.map(AuctionId),
        shipping_cents: row.col("shipping_cents")?,
        hold_until: Timestamp(row.col("hold_until")?),
        created_at: Timestamp(row.col("created_at")?),
    })
}

/// An `orders` row as the commerce core holds a reservation.
pub(super) fn order_line_from(row: &impl Columns) -> StoreResult<OrderLine> {
    Ok(OrderLine {
        id: OrderId(row.col("id")?),
        buyer: UserId(row.col("buyer_id")?),
        variant_id: VariantId(row.col("variant_id")?),
        sale_id: row.col::<Option<i64>>("sale_id")?.map(SaleId),
        quantity: row.col::<i64>("quantity")? as u32,
        unit_price_cents: row.col("unit_price_cents")?,
        subtotal_cents: row.col("subtotal_cents")?,
        discount_cents: row.col("discount_cents")?,
        total_cents: row.col("total_cents")?,
        currency: currency(&row.col::<String>("currency")?)?,
        code_id: row.col::<Option<i64>>("code_id")?.map(CodeId),
        hold_until: Timestamp(row.col("hold_until")?),
        auction_id: row.col::<Option<i64>>("auction_id")?.map(AuctionId),
        shipping_cents: row.col("shipping_cents")?,
    })
}

pub(super) fn sale_row_from(row: &impl Columns) -> StoreResult<SaleRow> {
    Ok(SaleRow {
        id: SaleId(row.col("id")?),
        show_id: ShowId(row.col("show_id")?),
        variant_id: VariantId(row.col("variant_id")?),
        price_cents: row.col("price_cents")?,
        quantity: row.col("quantity")?,
        remaining: row.col("remaining")?,
        per_buyer_limit: row.col("per_buyer_limit")?,
        ends_at: Timestamp(row.col("ends_at")?),
        status: row.col("status")?,
    })
}

/// A running `flash_sales` row as the commerce core holds it.
pub(super) fn running_sale_from(row: &impl Columns) -> StoreResult<Sale> {
    Ok(Sale {
        id: SaleId(row.col("id")?),
        variant_id: VariantId(row.col("variant_id")?),
        price_cents: row.col("price_cents")?,
        quantity: row.col::<i64>("quantity")? as u32,
        remaining: row.col::<i64>("remaining")? as u32,
        per_buyer_limit: row.col::<i64>("per_buyer_limit")? as u32,
        starts_at: Timestamp(row.col("starts_at")?),
        ends_at: Timestamp(row.col("ends_at")?),
        status: SaleStatus::Running,
    })
}

/// A code and how often it was used; `None` for a row with neither kind of discount.
pub(super) fn code_from(row: &impl Columns) -> StoreResult<Option<(CodeRule, u32)>> {
    let discount = match (
        row.col::<Option<i64>>("percent_off")?,
        row.col::<Option<i64>>("amount_off_cents")?,
    ) {
        (Some(p), _) => Discount::PercentOff(p as u8),
        (None, Some(a)) => Discount::AmountOffCents(a),
        (None, None) => return Ok(None),
    };
    let rule = CodeRule {
        id: CodeId(row.col("id")?),
        code: row.col("code")?,
        discount,
        max_uses: row.col::<i64>("max_uses")? as u32,
        expires_at: row.col::<Option<i64>>("expires_at")?.map(Timestamp),
        first_order_only: row.col("first_order_only")?,
    };
    Ok(Some((rule, row.col::<i64>("uses")? as u32)))
}

pub(super) fn auction_from(row: &impl Columns) -> StoreResult<AuctionRow> {
    let id = AuctionId(row.col("id")?);
    let status: String = row.col("status")?;
    Ok(AuctionRow {
        id,
        show_id: ShowId(row.col("show_id")?),
        variant_id: VariantId(row.col("variant_id")?),
        summary: AuctionSummary {
            id,
            ends_at: Timestamp(row.col("ends_at")?),
            ended: status == "ended",
            winner: row.col("winner")?,
            price_cents: row.col("price_cents")?,
        },
        salt: row.col("salt")?,
    })
}

pub(super) fn log_entry_from(row: &impl Columns) -> StoreResult<LogEntry> {
    Ok(LogEntry {
        seq: row.col::<i64>("seq")? as u64,
        body: row.col("body")?,
        prev_hash: row.col("prev_hash")?,
        hash: row.col("hash")?,
    })
}

/// Totals as `n`, `units` and `revenue`.
pub(super) fn host_stats_from(row: &impl Columns) -> StoreResult<HostStats> {
    Ok(HostStats {
        orders: row.col::<i64>("n")? as u64,
        units: row.col::<i64>("units")? as u64,
        revenue_cents: row.col("revenue")?,
    })
}
