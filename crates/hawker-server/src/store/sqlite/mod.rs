//! The embedded SQLite backend: WAL mode, `synchronous=FULL` by default, foreign keys on.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use hawker_core::account::Role;
use hawker_core::catalog::CatalogEvent;
use hawker_core::commerce::Restore;
use hawker_core::discount::Discount;
use hawker_core::ids::{AuctionId, OrderId, ProductId, SaleId, ShowId, UserId, VariantId};
use hawker_core::protocol::HostStats;
use hawker_core::time::Timestamp;
use rusqlite::OptionalExtension;
use sqlx::SqlitePool;
use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

use self::rows::*;
use super::changes::RowChanges;
use super::sessions::SessionCache;
use super::*;
use crate::auction_log::LogEntry;
use crate::clock::Clock;

mod rows;

/// The schema's versions, embedded at build time and applied in order at start.
static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// **Invariant**: group commits, the only writes a herd makes, go through `committer`; the rare
/// other writes (sign-ups, catalog edits) through `writer`. Each is one connection, so writes
/// queue instead of colliding in SQLite, where a busy writer makes the other sleep and retry.
/// Reads use `pool` or [`PointReads`], read-only connections that WAL lets run beside the
/// writers.
pub struct SqliteStore {
    pool: SqlitePool,
    writer: SqlitePool,
    committer: std::sync::Arc<std::sync::Mutex<rusqlite::Connection>>,
    point: PointReads,
    sessions: SessionCache,
    _checkpoints: Checkpointer,
}

/// Copies the WAL into the database file on its own thread and connection, so that buyers
/// wait less for checkpoints. SQLite checkpoints inside the commit that takes the WAL past 1,000
/// pages: it writes those pages back into the file and syncs it, and as a show's orders grow the
/// pages spread over more of the file and that commit, with every buy queued behind it, takes
/// longer. This thread's PASSIVE checkpoints block no writer and no reader and copy most of the
/// WAL as it is written, leaving that commit only the last few pages to copy before the next one
/// starts the WAL over. (It cannot do without that commit's checkpoint: the WAL starts over only
/// once a checkpoint has copied all of it, which one running beside a stream of commits rarely
/// does, so on its own the WAL would grow to its limit.)
struct Checkpointer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Checkpointer {
    fn start(path: std::path::PathBuf) -> anyhow::Result<Self> {
        let db = rusqlite::Connection::open(&path).context("opening SQLite for checkpoints")?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                let mut last = None;
                while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                    // (busy, pages in the WAL, pages of it copied); -1s where not in WAL mode.
                    let pass = db.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                    });
                    let rest = match pass {
                        // Commits since the last pass: more may be on the way.
                        Ok(wal) if last.replace(wal) != Some(wal) => CHECKPOINT_BUSY,
                        Ok(_) => CHECKPOINT_IDLE,
                        Err(e) => {
                            tracing::warn!(error = %e, "checkpointing the WAL failed; retrying");
                            CHECKPOINT_IDLE
                        }
                    };
                    std::thread::sleep(rest);
                }
            })
            .context("starting the checkpoint thread")?;
        Ok(Self { stop })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Short indexed reads (a token, an order, a turn's idempotency keys) run on the caller's thread
/// over plain SQLite connections. Such a read takes microseconds from the page cache; handing it
/// to sqlx's connection thread and back cost more than the read and was, under a herd, the
/// largest cost per request. Anything that can return many rows stays on `pool`.
struct PointReads {
    path: std::path::PathBuf,
    /// Idle connections; a read takes one (or opens one) and puts it back.
    idle: std::sync::Mutex<Vec<rusqlite::Connection>>,
}

/// The WAL file is cut back to this many bytes after a checkpoint. Checkpoints run every 1,000
/// pages (SQLite's default), so the WAL only passes this after one huge transaction; without the
/// limit it would then keep that size for good.
const JOURNAL_SIZE_LIMIT: &str = "67108864";

/// How long the [`Checkpointer`] rests after a pass that found no commits since the last one,
/// and after one that found some.
const CHECKPOINT_IDLE: Duration = Duration::from_millis(200);
const CHECKPOINT_BUSY: Duration = Duration::from_millis(20);

/// A reading connection's page cache, in KiB (negative: SQLite's unit for a size in KiB). Small:
/// there are up to 8 pooled readers and one per busy thread for point reads, each filling its
/// cache over hours as the database grows, so 16 MiB each made the server's memory depend on the
/// database's size and on how many readers a busy moment once opened. Reads that miss it come
/// from the file through `mmap` or the OS's page cache, and the commit connection keeps its
/// 16 MiB, where the group commit's index pages live.
const READER_CACHE_SIZE: &str = "-2048";

/// Free pages given back per [`Store::maintain`]: a bounded step (4 MiB of 4 KiB pages), so
/// maintenance never holds the writer for long.
const VACUUM_PAGES_PER_STEP: i64 = 1024;

/// More idle point-read connections than this are closed: one per busy thread is enough.
const POINT_READERS_MAX: usize = 16;

impl PointReads {
    fn open_connection(&self) -> rusqlite::Result<rusqlite::Connection> {
        use rusqlite::OpenFlags as F;
        let db = rusqlite::Connection::open_with_flags(
            &self.path,
            F::SQLITE_OPEN_READ_ONLY | F::SQLITE_OPEN_NO_MUTEX,
        )?;
        // WAL readers do not wait for the writer; this only covers a checkpoint's brief lock.
        db.busy_timeout(Duration::from_millis(200))?;
        db.set_prepared_statement_cache_capacity(32);
        db.pragma_update(None, "cache_size", READER_CACHE_SIZE)?;
        db.pragma_update(None, "mmap_size", 268_435_456)?;
        Ok(db)
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> StoreResult<T> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let db = match idle {
            Some(db) => db,
            None => self.open_connection()?,
        };
        let result = f(&db).map_err(StoreError::from);
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < POINT_READERS_MAX
        {
            idle.push(db);
        }
        result
    }
}

/// rusqlite serves the point reads and the group commit. Unlike sqlx's mapping (in
/// `store/errors.rs`), every constraint SQLite refuses a write with is a conflict here.
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::QueryReturnedNoRows => Self::NotFound,
            rusqlite::Error::SqliteFailure(f, message)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Self::Conflict(message.clone().unwrap_or_else(|| f.to_string()))
            }
            _ => Self::Backend(anyhow::Error::new(e)),
        }
    }
}

/// Databases from before stream keys were hashed (and before migrations) hold them in plain
/// text (`sk_…`): hash them in place, so a stolen database file streams to no show.
async fn hash_plaintext_stream_keys(writer: &SqlitePool) -> anyhow::Result<()> {
    let plain: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, stream_key FROM shows WHERE stream_key LIKE 'sk\\_%' ESCAPE '\\'",
    )
    .fetch_all(writer)
    .await
    .context("reading stream keys")?;
    for (id, key) in plain {
        sqlx::query("UPDATE shows SET stream_key = ? WHERE id = ?")
            .bind(crate::secrets::token_hash(&key))
            .bind(id)
            .execute(writer)
            .await
            .context("hashing a stream key")?;
    }
    Ok(())
}

impl SqliteStore {
    /// Sets one of a user's own settings, then forgets their cached sessions (after the write:
    /// a read racing it cannot cache the old row, see `SessionCache`).
    async fn set_user_column<T>(
        &self,
        column: &'static str,
        value: T,
        id: UserId,
    ) -> StoreResult<()>
    where
        T: for<'q> sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + Send,
    {
        let updated = exactly_one(
            sqlx::query(&format!("UPDATE users SET {column} = ? WHERE id = ?"))
                .bind(value)
                .bind(id.0)
                .execute(&self.writer)
                .await?,
            "user",
        );
        self.sessions.forget(|_, user| user.id == id);
        updated
    }

    /// The rows `sql` selects for one show (its only parameter).
    async fn rows_of_show(&self, sql: &'static str, show: ShowId) -> StoreResult<Vec<SqliteRow>> {
        Ok(sqlx::query(sql).bind(show.0).fetch_all(&self.pool).await?)
    }

    /// `clock`: when the session cache is due to read other processes' changes.
    pub async fn open(url: &str, synchronous_full: bool, clock: Clock) -> anyhow::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("parsing database URL {url:?}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if synchronous_full {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Normal
            })
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true)
            .pragma("cache_size", "-16384")
            .pragma("journal_size_limit", JOURNAL_SIZE_LIMIT);
        if let Some(parent) = options.get_filename().parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            // A new database gives pages freed by deletes back to the file system, a step at a
            // time ([`Store::maintain`]); an older one keeps them for reuse (switching needs a
            // full `VACUUM`, see the README). Set by the writer only: a reader may not.
            .connect_with(options.clone().auto_vacuum(SqliteAutoVacuum::Incremental))
            .await
            .context("opening SQLite")?;
        // A database with tables but no migration record is from before migrations, and may
        // hold stream keys in plain text: convert it once, not at every start.
        let from_before_migrations: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'shows') \
             AND NOT EXISTS (SELECT 1 FROM sqlite_master WHERE name = '_sqlx_migrations')",
        )
        .fetch_one(&writer)
        .await
        .context("reading the schema")?;
        MIGRATIONS
            .run(&writer)
            .await
            .context("migrating the database")?;
        if from_before_migrations {
            hash_plaintext_stream_keys(&writer).await?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(
                options
                    .clone()
                    .read_only(true)
                    .pragma("cache_size", READER_CACHE_SIZE),
            )
            .await
            .context("opening SQLite for reading")?;
        let committer = rusqlite::Connection::open(options.get_filename())
            .and_then(|db| {
                db.busy_timeout(Duration::from_secs(30))?;
                db.set_prepared_statement_cache_capacity(64);
                db.execute_batch(if synchronous_full {
                    "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -16384;"
                } else {
                    "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -16384;"
                })?;
                db.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)?;
                Ok(db)
            })
            .context("opening SQLite for group commits")?;
        let point = PointReads {
            path: options.get_filename().to_owned(),
            idle: std::sync::Mutex::new(Vec::new()),
        };
        let checkpoints = Checkpointer::start(options.get_filename().to_owned())?;
        Ok(Self {
            pool,
            writer,
            committer: std::sync::Arc::new(std::sync::Mutex::new(committer)),
            point,
            sessions: SessionCache::new(clock),
            _checkpoints: checkpoints,
        })
    }

    /// `session_changes` in one statement, one snapshot: the oldest change kept, then every one
    /// after `applied` (what [`SessionCache::catch_up`] asks for).
    fn session_changes_since(&self, applied: i64) -> StoreResult<Vec<(i64, i64)>> {
        self.point.read(|db| {
            db.prepare_cached(
                "SELECT seq, user_id FROM session_changes \
                 WHERE seq > ?1 OR seq = (SELECT MIN(seq) FROM session_changes) ORDER BY seq",
            )?
            .query_map([applied], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
    }

    async fn variants_of(&self, product: ProductId) -> StoreResult<Vec<VariantRow>> {
        let rows = sqlx::query("SELECT id, name, price_cents, stock FROM variants WHERE product_id = ? AND listed ORDER BY position, id")
            .bind(product.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(variant_row_from).collect()
    }

    /// The listed variants of each of `products`, in one query.
    async fn variants_of_many(
        &self,
        products: &[i64],
    ) -> StoreResult<std::collections::HashMap<i64, Vec<VariantRow>>> {
        let mut out = std::collections::HashMap::<i64, Vec<VariantRow>>::new();
        if products.is_empty() {
            return Ok(out);
        }
        let sql = variants_of_many_sql(products.len());
        let mut q = sqlx::query(&sql);
        for id in products {
            q = q.bind(*id);
        }
        for r in q.fetch_all(&self.pool).await? {
            out.entry(r.col("product_id")?)
                .or_default()
                .push(variant_row_from(&r)?);
        }
        Ok(out)
    }

    /// The lineup of each of `shows`, in one query.
    async fn lineups_of(
        &self,
        shows: &[i64],
    ) -> StoreResult<std::collections::HashMap<i64, Vec<ProductId>>> {
        let mut out = std::collections::HashMap::<i64, Vec<ProductId>>::new();
        if shows.is_empty() {
            return Ok(out);
        }
        let ids = vec!["?"; shows.len()].join(", ");
        let sql = format!(
            "SELECT show_id, product_id FROM show_products WHERE show_id IN ({ids}) ORDER BY show_id, position"
        );
        let mut q = sqlx::query(&sql);
        for id in shows {
            q = q.bind(*id);
        }
        for r in q.fetch_all(&self.pool).await? {
            out.entry(r.col("show_id")?)
                .or_default()
                .push(ProductId(r.col("product_id")?));
        }
        Ok(out)
    }

    async fn with_lineup(&self, mut show: Show) -> StoreResult<Show> {
        let rows =
            sqlx::query("SELECT product_id FROM show_products WHERE show_id = ? ORDER BY position")
                .bind(show.id.0)
                .fetch_all(&self.pool)
                .await?;
        show.product_ids = rows
            .iter()
            .map(|r| r.col("product_id").map(ProductId))
            .collect::<StoreResult<_>>()?;
        Ok(show)
    }

    /// A page of the commerce log of one show (`show_id`) or one product (`product_id`),
    /// oldest first.
    async fn log_page(
        &self,
        column: &'static str,
        id: i64,
        page: &PageRequest,
    ) -> StoreResult<Page<LogLine>> {
        let after = page.after().map(Cursor::keys::<1>).transpose()?;
        let sql = log_page_sql(column, after.is_some());
        let mut q = sqlx::query(&sql).bind(id);
        if let Some([seq]) = after {
            q = q.bind(seq);
        }
        let rows = q.bind(page.fetch()).fetch_all(&self.pool).await?;
        let lines = rows
            .iter()
            .map(|r| Ok((r.col("seq")?, Timestamp(r.col("at")?), r.col("event")?)))
            .collect::<StoreResult<_>>()?;
        Ok(Page::of(lines, page, |(seq, ..): &LogLine| {
            Cursor::new([*seq])
        }))
    }

    /// A page of the orders `clause` selects (`binds` are its parameters), newest first.
    async fn orders_page(
        &self,
        clause: &str,
        binds: &[i64],
        page: &PageRequest,
    ) -> StoreResult<Page<Order>> {
        let after = page.after().map(Cursor::keys::<2>).transpose()?;
        let sql = orders_page_sql(clause, after.is_some());
        let mut q = sqlx::query(&sql);
        for b in binds.iter().chain(after.iter().flatten()) {
            q = q.bind(*b);
        }
        let rows = q.bind(page.fetch()).fetch_all(&self.pool).await?;
        let orders = rows.iter().map(order_from).collect::<StoreResult<_>>()?;
        Ok(Page::of(orders, page, |o: &Order| {
            Cursor::new([o.created_at.0, o.id.0])
        }))
    }
}

/// A buyer's orders: `orders_buyer_idempotency_key` finds them, and they are sorted (a buyer's
/// history is short; an index in page order would cost every order insert).
const ORDERS_OF_BUYER: &str = "o.buyer_id = ?";

/// A seller's orders: a range of `orders_by_seller`, read backwards.
const ORDERS_OF_SELLER: &str = "o.seller_id = ?";

/// A seller's orders of one show: a range of `orders_by_show`. The `+` keeps SQLite off
/// `orders_by_seller`, which it would otherwise pick and then filter the seller's whole history.
const ORDERS_OF_SELLERS_SHOW: &str = "+o.seller_id = ? AND o.show_id = ?";

/// The query of a page of orders: `clause`'s parameters, then the cursor's `created_at` and `id`
/// (when `after`), then how many rows to read. Newest first, so the `(…, created_at, id)`
/// indexes are read backwards from the cursor: a seek, however deep the page.
fn orders_page_sql(clause: &str, after: bool) -> String {
    let after = if after {
        " AND (o.created_at, o.id) < (?, ?)"
    } else {
        ""
    };
    format!("{ORDER_SELECT} WHERE {clause}{after} ORDER BY o.created_at DESC, o.id DESC LIMIT ?")
}

/// The query of a page of the commerce log of one show or product (`column`): its id, then the
/// cursor's `seq` (when `after`), then how many rows to read. A range of `commerce_log_by_show`
/// or `commerce_log_by_product`, whose partial `WHERE … IS NOT NULL` the `=` implies.
fn log_page_sql(column: &str, after: bool) -> String {
    let after = if after { " AND seq > ?" } else { "" };
    format!(
        "SELECT seq, at, event FROM commerce_log WHERE {column} = ?{after} ORDER BY seq LIMIT ?"
    )
}

/// The query of a page of an auction's log: the auction, then the cursor's `seq` (when
/// `after`), then how many rows to read. A range of the table's key, `(auction_id, seq)`.
fn auction_log_page_sql(after: bool) -> String {
    let after = if after { " AND seq > ?" } else { "" };
    format!(
        "SELECT seq, body, prev_hash, hash FROM auction_log WHERE auction_id = ?{after} ORDER BY seq LIMIT ?"
    )
}

/// The query of one `archived` value's part of a page of a seller's products: the seller,
/// `archived` (0 or 1), the cursor's `id` (when `before`), then how many rows to read.
fn products_page_sql(before: bool) -> String {
    let before = if before { " AND id < ?" } else { "" };
    format!(
        "SELECT * FROM products WHERE seller_id = ? AND archived = ?{before} ORDER BY id DESC LIMIT ?"
    )
}

/// The listed variants of `n` products (their ids are the parameters), by `variants_by_product`.
fn variants_of_many_sql(n: usize) -> String {
    let ids = vec!["?"; n].join(", ");
    format!(
        "SELECT product_id, id, name, price_cents, stock FROM variants \
         WHERE product_id IN ({ids}) AND listed ORDER BY product_id, position, id"
    )
}

/// Shows whose owners must come back after a restart: the reserved orders are a scan of the
/// small partial index `orders_reserved`, not of all orders.
const UNSETTLED_SHOWS: &str = "SELECT show_id FROM orders WHERE status = 'reserved' \
     UNION SELECT show_id FROM auctions WHERE status = 'running'";

/// A show's open reservations, from `orders_reserved`.
const RESERVATIONS_OF_SHOW: &str = "SELECT * FROM orders WHERE show_id = ? AND status = 'reserved'";

/// What each buyer holds of each running sale, for its per-buyer limit. Read from the orders made
/// since the oldest running sale started (a minute early, for a wall clock stepped back), an
/// index range however many orders the show made before it.
const HELD_IN_RUNNING_SALES: &str = "SELECT o.sale_id, o.buyer_id, SUM(o.quantity) AS held \
     FROM orders o JOIN flash_sales f ON f.id = o.sale_id \
     WHERE o.show_id = ?1 AND f.status = 'running' AND o.status NOT IN ('declined', 'expired') \
     AND o.created_at >= (SELECT MIN(starts_at) FROM flash_sales WHERE show_id = ?1 AND status = 'running') - 60000 \
     GROUP BY o.sale_id, o.buyer_id";

/// The orders that carry each buyer's shipping fee, from `orders_carrying_shipping`.
const SHIPPING_CARRIED: &str = "SELECT buyer_id, id FROM orders \
     WHERE show_id = ? AND shipping_cents > 0 AND status IN ('reserved', 'paid', 'shipped')";

/// Reservations bought through `POST /orders` whose hold lasts past the parameter, from
/// `orders_reserved`.
fn open_reservations_sql() -> String {
    format!(
        "{ORDER_SELECT} WHERE o.status = 'reserved' AND o.auction_id IS NULL AND o.hold_until > ? \
         ORDER BY o.created_at DESC, o.id"
    )
}

/// How shows are listed: the live ones first, then the scheduled, then the ended. A show's
/// place here is the first key of its cursor.
const SHOW_ORDER: [ShowStatus; 3] = [ShowStatus::Live, ShowStatus::Scheduled, ShowStatus::Ended];

/// A show's time in its listing, as `shows_by_status` and `shows_by_seller` hold it.
const SHOW_LISTED_AT: &str = "COALESCE(s.started_at, s.scheduled_at, s.created_at)";

/// The query of one status's part of a page of shows (what [`show_from`] reads, and the show's
/// time in the listing as `listed_at`): the status, the seller (when `seller`),
/// the category (when `category`), the cursor's time twice and its id (when `after`), then how
/// many rows to read. Latest first, so the index is read backwards from the cursor. The cursor
/// test is spelled `at <= ? AND (at < ? OR id < ?)`: SQLite seeks an index on an expression
/// for a plain comparison, not for a row value.
fn shows_page_sql(seller: bool, category: bool, after: bool) -> String {
    let at = SHOW_LISTED_AT;
    let mut sql = format!(
        "SELECT s.*, u.display_name AS seller_name, {at} AS listed_at \
         FROM shows s JOIN users u ON u.id = s.seller_id WHERE s.status = ?"
    );
    if seller {
        sql.push_str(" AND s.seller_id = ?");
    }
    if category {
        sql.push_str(" AND s.category = ?");
    }
    if after {
        sql.push_str(&format!(" AND {at} <= ? AND ({at} < ? OR s.id < ?)"));
    }
    sql.push_str(&format!(" ORDER BY {at} DESC, s.id DESC LIMIT ?"));
    sql
}

/// [`one_row`] for a write through sqlx.
fn exactly_one(result: sqlx::sqlite::SqliteQueryResult, what: &str) -> StoreResult<()> {
    one_row(result.rows_affected(), what)
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Sqlite>;

/// Inserts new variants and updates existing ones (listing them again), in the given order;
/// returns each variant's state afterwards as a log event.
async fn write_variants(
    tx: &mut Tx<'_>,
    product: ProductId,
    variants: &[VariantEdit],
) -> StoreResult<Vec<CatalogEvent>> {
    let mut events = Vec::with_capacity(variants.len());
    for (pos, v) in variants.iter().enumerate() {
        let variant_id = match v.id {
            Some(vid) => {
                exactly_one(
                    sqlx::query(
                        "UPDATE variants SET name = ?, price_cents = ?, stock = ?, position = ?, listed = TRUE WHERE id = ? AND product_id = ?",
                    )
                    .bind(&v.name)
                    .bind(v.price_cents)
                    .bind(v.stock)
                    .bind(pos as i64)
                    .bind(vid.0)
                    .bind(product.0)
                    .execute(&mut **tx)
                    .await?,
                    "variant of this product",
                )?;
                vid
            }
            None => VariantId(
                sqlx::query_scalar("INSERT INTO variants (product_id, name, price_cents, stock, position) VALUES (?, ?, ?, ?, ?) RETURNING id")
                    .bind(product.0)
                    .bind(&v.name)
                    .bind(v.price_cents)
                    .bind(v.stock)
                    .bind(pos as i64)
                    .fetch_one(&mut **tx)
                    .await?,
            ),
        };
        events.push(CatalogEvent::VariantSet {
            product_id: product,
            variant_id,
            name: v.name.clone(),
            price_cents: v.price_cents,
            stock: v.stock,
        });
    }
    Ok(events)
}

async fn append_catalog(
    tx: &mut Tx<'_>,
    product: ProductId,
    now: Timestamp,
    events: &[CatalogEvent],
) -> StoreResult<()> {
    for event in events {
        let json = serde_json::to_string(event).map_err(|e| StoreError::Backend(e.into()))?;
        sqlx::query("INSERT INTO commerce_log (product_id, at, event) VALUES (?, ?, ?)")
            .bind(product.0)
            .bind(now.0)
            .bind(json)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Fails the transaction unless exactly one row changed: a write that matched nothing means the
/// stored state disagrees with the owner's, and the batch must not half-apply.
fn one_row(changed: u64, what: &str) -> StoreResult<()> {
    if changed == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict(format!(
            "{what}: expected one row, changed {changed}"
        )))
    }
}

/// Writes one group commit as one synchronous transaction on the commit connection. Every
/// statement is prepared once per connection and run per row: microseconds each, with no await
/// between them (under a herd, each await inside a commit queued behind thousands of ready
/// request tasks, and a 2,048-decision commit took 200 ms, of which 40 were SQLite's).
fn write_batch(
    db: &mut rusqlite::Connection,
    show: ShowId,
    now: Timestamp,
    batch: &Batch,
) -> StoreResult<()> {
    use rusqlite::params;
    let c = RowChanges::of(batch)?;
    let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let run = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> StoreResult<u64> {
        Ok(tx.prepare_cached(sql)?.execute(p)? as u64)
    };
    for sale in &c.new_sales {
        run(
            "INSERT INTO flash_sales (id, show_id, variant_id, price_cents, quantity, remaining, per_buyer_limit, starts_at, ends_at, status) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'running')",
            params![
                sale.id.0,
                show.0,
                sale.variant_id.0,
                sale.price_cents,
                sale.quantity,
                sale.remaining,
                sale.per_buyer_limit,
                sale.starts_at.0,
                sale.ends_at.0
            ],
        )?;
    }
    for rule in &c.new_codes {
        let (percent, amount) = match rule.discount {
            Discount::PercentOff(p) => (Some(i64::from(p)), None),
            Discount::AmountOffCents(a) => (None, Some(a)),
        };
        run(
            "INSERT INTO codes (id, show_id, code, percent_off, amount_off_cents, max_uses, expires_at, first_order_only, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            params![
                rule.id.0,
                show.0,
                rule.code,
                percent,
                amount,
                rule.max_uses,
                rule.expires_at.map(|t| t.0),
                rule.first_order_only,
                now.0
            ],
        )?;
    }
    // Every order carries its seller (the seller's pages are an index range): read once per
    // commit, not once per order.
    let seller: Option<i64> = if c.new_orders.is_empty() {
        None
    } else {
        Some(
            tx.prepare_cached("SELECT seller_id FROM shows WHERE id = ?")?
                .query_row([show.0], |r| r.get(0))?,
        )
    };
    for (order, meta) in &c.new_orders {
        run(
            "INSERT INTO orders (id, buyer_id, show_id, seller_id, variant_id, sale_id, quantity, unit_price_cents, subtotal_cents, \
             discount_cents, total_cents, currency, code_id, status, hold_until, idempotency_key, payment_method, created_at, updated_at, auction_id, shipping_cents) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'reserved', ?, ?, ?, ?, ?, ?, ?)",
            params![
                order.id.0,
                order.buyer.0,
                show.0,
                seller,
                order.variant_id.0,
                order.sale_id.map(|s| s.0),
                order.quantity,
                order.unit_price_cents,
                order.subtotal_cents,
                order.discount_cents,
                order.total_cents,
                order.currency.as_str(),
                order.code_id.map(|c| c.0),
                order.hold_until.0,
                meta.idempotency_key,
                meta.payment_method,
                now.0,
                now.0,
                order.auction_id.map(|a| a.0),
                order.shipping_cents
            ],
        )?;
    }
    for (sale, delta) in &c.sale_remaining {
        let sql = "UPDATE flash_sales SET remaining = remaining + ? WHERE id = ?";
        one_row(run(sql, params![delta, sale.0])?, "sale")?;
    }
    for (variant, delta) in &c.variant_stock {
        let sql = "UPDATE variants SET stock = stock + ? WHERE id = ?";
        one_row(run(sql, params![delta, variant.0])?, "variant")?;
    }
    for (code, delta) in &c.code_uses {
        let sql = "UPDATE codes SET uses = uses + ? WHERE id = ?";
        one_row(run(sql, params![delta, code.0])?, "code")?;
    }
    for sale in &c.ended_sales {
        let sql = "UPDATE flash_sales SET status = 'ended' WHERE id = ? AND status = 'running'";
        one_row(run(sql, params![sale.0])?, "running sale")?;
    }
    for s in &c.settled {
        let sql = "UPDATE orders SET status = ?, payment_ref = COALESCE(?, payment_ref), updated_at = ? \
                   WHERE id = ? AND status = 'reserved'";
        one_row(
            run(sql, params![s.status, s.payment_ref, now.0, s.order_id.0])?,
            "reserved order",
        )?;
    }
    if c.paid.orders > 0 {
        let sql = "UPDATE shows SET paid_orders = paid_orders + ?, paid_units = paid_units + ?, \
                   paid_revenue_cents = paid_revenue_cents + ? WHERE id = ?";
        let p = c.paid;
        one_row(
            run(sql, params![p.orders, p.units, p.revenue_cents, show.0])?,
            "show",
        )?;
    }
    for event in &c.log {
        run(
            "INSERT INTO commerce_log (show_id, at, event) VALUES (?, ?, ?)",
            params![show.0, now.0, event],
        )?;
    }
    for a in &batch.new_auctions {
        run(
            "INSERT INTO auctions (id, show_id, variant_id, status, ends_at, salt, created_at) VALUES (?, ?, ?, 'running', 0, ?, ?)",
            params![a.id.0, show.0, a.variant_id.0, a.salt, now.0],
        )?;
    }
    for (auction, e) in &batch.auction_log {
        run(
            "INSERT INTO auction_log (auction_id, seq, body, prev_hash, hash) VALUES (?, ?, ?, ?, ?)",
            params![auction.0, e.seq as i64, e.body, e.prev_hash, e.hash],
        )?;
    }
    for (auction, pseudonym, user) in &batch.bidders {
        run(
            "INSERT INTO auction_bidders (auction_id, pseudonym, user_id) VALUES (?, ?, ?)",
            params![auction.0, pseudonym, user.0],
        )?;
    }
    for (v, user) in &batch.consumed_pre_bids {
        run(
            "DELETE FROM pre_bids WHERE show_id = ? AND variant_id = ? AND user_id = ?",
            params![show.0, v.0, user.0],
        )?;
    }
    for m in &batch.saved_methods {
        // At the end of the buyer's list; a known method keeps its place.
        run(
            "INSERT INTO payment_methods (user_id, method, label, position) \
             VALUES (?1, ?2, ?3, (SELECT COALESCE(MAX(position), 0) + 1 FROM payment_methods WHERE user_id = ?1)) \
             ON CONFLICT (user_id, method) DO NOTHING",
            params![m.user.0, m.method, m.label],
        )?;
    }
    if batch.end_show {
        let sql = "UPDATE shows SET status = 'ended', ended_at = ?, pinned_product_id = NULL WHERE id = ?";
        one_row(run(sql, params![now.0, show.0])?, "show")?;
    }
    for a in &batch.auction_summaries {
        one_row(
            run(
                "UPDATE auctions SET ends_at = ?, status = ?, winner = ?, price_cents = ? WHERE id = ?",
                params![
                    a.ends_at.0,
                    if a.ended { "ended" } else { "running" },
                    a.winner,
                    a.price_cents,
                    a.id.0
                ],
            )?,
            "auction",
        )?;
    }
    Ok(tx.commit()?)
}

#[async_trait]
impl Store for SqliteStore {
    async fn maintain(&self) -> StoreResult<Maintained> {
        let mut db = self.writer.acquire().await?;
        let free_before: i64 = sqlx::query_scalar("PRAGMA freelist_count")
            .fetch_one(&mut *db)
            .await?;
        // Gives back free pages only where auto_vacuum is incremental; elsewhere a no-op.
        sqlx::query(&format!(
            "PRAGMA incremental_vacuum({VACUUM_PAGES_PER_STEP})"
        ))
        .execute(&mut *db)
        .await?;
        let free_after: i64 = sqlx::query_scalar("PRAGMA freelist_count")
            .fetch_one(&mut *db)
            .await?;
        // Refreshes the planner's statistics where they have drifted (cheap when they have not).
        sqlx::query("PRAGMA optimize").execute(&mut *db).await?;
        Ok(Maintained {
            pages_returned: (free_before - free_after).max(0) as u64,
            free_pages_left: free_after.max(0) as u64,
        })
    }

    async fn create_user(&self, user: &NewUser, now: Timestamp) -> StoreResult<User> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (email, password_hash, display_name, role, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(&user.display_name)
        .bind(user.role.as_str())
        .bind(now.0)
        .fetch_one(&self.writer)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict("an account with this e-mail already exists".into()),
            other => other,
        })?;
        Ok(User {
            id: UserId(id),
            email: user.email.clone(),
            display_name: user.display_name.clone(),
            role: user.role,
            blocked_words: vec![],
            shipping_fee_cents: 0,
            daily_spend_limit_cents: None,
        })
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<(User, String)>> {
        let sql = concat!(
            "SELECT ",
            user_columns!(),
            ", u.password_hash FROM users u WHERE u.email = ?"
        );
        let row = sqlx::query(sql)
            .bind(email)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((user_from(&r)?, r.col(AFTER_USER)?)))
            .transpose()
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users u WHERE u.id = ?"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from).transpose()
    }

    async fn set_role(&self, email: &str, role: Role) -> StoreResult<()> {
        let done = sqlx::query("UPDATE users SET role = ? WHERE email = ?")
            .bind(role.as_str())
            .bind(email)
            .execute(&self.writer)
            .await?;
        // After the write: a read racing it cannot cache the old row (see SessionCache).
        self.sessions.forget(|_, user| user.email == email);
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    async fn set_blocked_words(&self, id: UserId, words: &[String]) -> StoreResult<()> {
        self.set_user_column("blocked_words", words.join("\n"), id)
            .await
    }

    async fn insert_token(
        &self,
        hash: &str,
        user: UserId,
        kind: TokenKind,
        csrf: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO tokens (token_hash, user_id, kind, csrf, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(hash)
            .bind(user.0)
            .bind(kind.as_str())
            .bind(csrf)
            .bind(now.0)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn user_by_token(&self, hash: &str) -> StoreResult<Option<(User, Option<String>)>> {
        self.sessions
            .catch_up(|applied| self.session_changes_since(applied))?;
        if let Some(found) = self.sessions.get(hash) {
            return Ok(Some(found));
        }
        let read_at = self.sessions.generation();
        let found = self.point.read(|db| {
            let sql = concat!(
                "SELECT ",
                user_columns!(),
                ", t.csrf FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?"
            );
            db.prepare_cached(sql)?
                .query_row([hash], |r| {
                    Ok(user_from(r).and_then(|u| Ok((u, r.col(AFTER_USER)?))))
                })
                .optional()
        })?;
        let found: Option<(User, Option<String>)> = found.transpose()?;
        if let Some((user, csrf)) = &found {
            self.sessions
                .put(read_at, hash, Arc::new(user.clone()), csrf.clone());
        }
        Ok(found)
    }

    async fn warm_sessions(&self) -> StoreResult<usize> {
        self.sessions.warm(
            || {
                self.point.read(|db| {
                    db.query_row(
                        "SELECT COALESCE(MAX(seq), 0) FROM session_changes",
                        [],
                        |r| r.get(0),
                    )
                })
            },
            |limit| {
                let sessions = self.point.read(|db| {
                    let sql = concat!(
                        "SELECT ",
                        user_columns!(),
                        ", t.csrf, t.token_hash FROM tokens t JOIN users u ON u.id = t.user_id \
                         ORDER BY t.rowid DESC LIMIT ?"
                    );
                    db.prepare(sql)?
                        .query_map([limit as i64], |r| {
                            Ok(user_from(r).and_then(|user| {
                                Ok((r.col::<String>(AFTER_USER + 1)?, user, r.col(AFTER_USER)?))
                            }))
                        })?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })?;
                sessions.into_iter().collect()
            },
        )
    }

    async fn delete_token(&self, hash: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM tokens WHERE token_hash = ?")
            .bind(hash)
            .execute(&self.writer)
            .await?;
        // After the write: a read racing it cannot cache the old row (see SessionCache).
        self.sessions.forget_token(hash);
        Ok(())
    }

    async fn delete_tokens_created_before(
        &self,
        kind: TokenKind,
        created_before: Timestamp,
    ) -> StoreResult<u64> {
        let gone: Vec<String> = sqlx::query_scalar(
            "DELETE FROM tokens WHERE kind = ? AND created_at < ? RETURNING token_hash",
        )
        .bind(kind.as_str())
        .bind(created_before.0)
        .fetch_all(&self.writer)
        .await?;
        // At once on this server, and only these (a cache cleared every minute would send every
        // session back to the database); the others read `session_changes`.
        self.sessions.forget_tokens(gone.iter().map(String::as_str));
        Ok(gone.len() as u64)
    }

    async fn save_payment_method(
        &self,
        user: UserId,
        method: &str,
        label: &str,
        make_default: bool,
    ) -> StoreResult<()> {
        let on_conflict = if make_default {
            "DO UPDATE SET position = excluded.position"
        } else {
            "DO NOTHING"
        };
        let sql = format!(
            "INSERT INTO payment_methods (user_id, method, label, position) \
             VALUES (?1, ?2, ?3, (SELECT COALESCE(MAX(position), 0) + 1 FROM payment_methods WHERE user_id = ?1)) \
             ON CONFLICT (user_id, method) {on_conflict}"
        );
        sqlx::query(&sql)
            .bind(user.0)
            .bind(method)
            .bind(label)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn payment_methods(&self, user: UserId) -> StoreResult<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT method, label FROM payment_methods WHERE user_id = ? ORDER BY position DESC",
        )
        .bind(user.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.col("method")?, r.col("label")?)))
            .collect()
    }

    async fn create_product(
        &self,
        seller: UserId,
        product: &ProductEdit,
        now: Timestamp,
    ) -> StoreResult<Product> {
        let mut tx = self.writer.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO products (seller_id, title, description, currency, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(seller.0)
        .bind(&product.title)
        .bind(&product.description)
        .bind(product.currency.as_str())
        .bind(now.0)
        .fetch_one(&mut *tx)
        .await?;
        let events = write_variants(&mut tx, ProductId(id), &product.variants).await?;
        append_catalog(&mut tx, ProductId(id), now, &events).await?;
        tx.commit().await?;
        self.product(ProductId(id))
            .await?
            .ok_or(StoreError::NotFound)
    }

    async fn update_product(
        &self,
        id: ProductId,
        product: &ProductEdit,
        now: Timestamp,
    ) -> StoreResult<Product> {
        let mut tx = self.writer.begin().await?;
        exactly_one(
            sqlx::query(
                "UPDATE products SET title = ?, description = ?, currency = ? WHERE id = ?",
            )
            .bind(&product.title)
            .bind(&product.description)
            .bind(product.currency.as_str())
            .bind(id.0)
            .execute(&mut *tx)
            .await?,
            "product",
        )?;
        let listed: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM variants WHERE product_id = ? AND listed")
                .bind(id.0)
                .fetch_all(&mut *tx)
                .await?;
        sqlx::query("UPDATE variants SET listed = FALSE WHERE product_id = ?")
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        let mut events = write_variants(&mut tx, id, &product.variants).await?;
        for v in listed.into_iter().map(VariantId) {
            if !product.variants.iter().any(|e| e.id == Some(v)) {
                events.push(CatalogEvent::VariantUnlisted {
                    product_id: id,
                    variant_id: v,
                });
            }
        }
        append_catalog(&mut tx, id, now, &events).await?;
        tx.commit().await?;
        self.product(id).await?.ok_or(StoreError::NotFound)
    }

    async fn archive_product(&self, id: ProductId, now: Timestamp) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        exactly_one(
            sqlx::query("UPDATE products SET archived = TRUE WHERE id = ?")
                .bind(id.0)
                .execute(&mut *tx)
                .await?,
            "product",
        )?;
        append_catalog(
            &mut tx,
            id,
            now,
            &[CatalogEvent::ProductArchived { product_id: id }],
        )
        .await?;
        Ok(tx.commit().await?)
    }

    async fn product_of_variant(&self, variant: VariantId) -> StoreResult<Option<Product>> {
        let id: Option<i64> = sqlx::query_scalar("SELECT product_id FROM variants WHERE id = ?")
            .bind(variant.0)
            .fetch_optional(&self.pool)
            .await?;
        match id {
            Some(id) => self.product(ProductId(id)).await,
            None => Ok(None),
        }
    }

    async fn product(&self, id: ProductId) -> StoreResult<Option<Product>> {
        let Some(row) = sqlx::query("SELECT * FROM products WHERE id = ?")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(product_from(&row, self.variants_of(id).await?)?))
    }

    async fn products_by_seller(
        &self,
        seller: UserId,
        with_archived: bool,
        page: &PageRequest,
    ) -> StoreResult<Page<Product>> {
        // Active (0), then archived (1): one range of `products_by_seller` each, from the
        // cursor's on. Two queries at most, and one for the variants of the whole page.
        let (first, mut before) = match page.after().map(Cursor::keys::<2>).transpose()? {
            Some([archived @ 0..=1, id]) => (archived, Some(id)),
            Some(_) => return Err(StoreError::BadCursor),
            None => (0, None),
        };
        let last = i64::from(with_archived);
        let mut rows = Vec::new();
        for archived in first..=last {
            let room = page.fetch() as usize - rows.len();
            if room == 0 {
                break;
            }
            let sql = products_page_sql(before.is_some());
            let mut q = sqlx::query(&sql).bind(seller.0).bind(archived);
            if let Some(id) = before.take() {
                q = q.bind(id);
            }
            rows.extend(q.bind(room as i64).fetch_all(&self.pool).await?);
        }
        let ids: Vec<i64> = rows
            .iter()
            .map(|r| r.col("id"))
            .collect::<StoreResult<_>>()?;
        let mut variants = self.variants_of_many(&ids).await?;
        let products = rows
            .iter()
            .zip(&ids)
            .map(|(r, id)| product_from(r, variants.remove(id).unwrap_or_default()))
            .collect::<StoreResult<_>>()?;
        Ok(Page::of(products, page, |p: &Product| {
            Cursor::new([i64::from(p.archived), p.id.0])
        }))
    }

    async fn add_product_image(&self, id: ProductId, url: &str) -> StoreResult<()> {
        exactly_one(
            sqlx::query("UPDATE products SET images = images || ? || char(10) WHERE id = ?")
                .bind(url)
                .bind(id.0)
                .execute(&self.writer)
                .await?,
            "product",
        )
    }

    async fn create_show(&self, show: &NewShow, now: Timestamp) -> StoreResult<Show> {
        let mut tx = self.writer.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO shows (seller_id, title, category, status, scheduled_at, stream_key, created_at) \
             VALUES (?, ?, ?, 'scheduled', ?, ?, ?) RETURNING id",
        )
        .bind(show.seller_id.0)
        .bind(&show.title)
        .bind(&show.category)
        .bind(show.scheduled_at.map(|t| t.0))
        .bind(&show.stream_key_hash)
        .bind(now.0)
        .fetch_one(&mut *tx)
        .await?;
        for (pos, p) in show.product_ids.iter().enumerate() {
            sqlx::query(
                "INSERT INTO show_products (show_id, product_id, position) VALUES (?, ?, ?)",
            )
            .bind(id)
            .bind(p.0)
            .bind(pos as i64)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        self.show(ShowId(id)).await?.ok_or(StoreError::NotFound)
    }

    async fn show(&self, id: ShowId) -> StoreResult<Option<Show>> {
        let sql = format!("{SHOW_SELECT} WHERE s.id = ?");
        let row = sqlx::query(&sql)
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(Some(self.with_lineup(show_from(&r)?).await?)),
            None => Ok(None),
        }
    }

    async fn shows(&self, filter: &ShowFilter, page: &PageRequest) -> StoreResult<Page<Show>> {
        // One range of `shows_by_status` (or `shows_by_seller`) per status the page reaches,
        // from the cursor's on: three queries at most, and one for the page's lineups.
        let (first, mut before) = match page.after().map(Cursor::keys::<3>).transpose()? {
            Some([rank, at, id]) if (0..SHOW_ORDER.len() as i64).contains(&rank) => {
                (rank as usize, Some((at, id)))
            }
            Some(_) => return Err(StoreError::BadCursor),
            None => (0, None),
        };
        let mut found: Vec<(usize, i64, Show)> = Vec::new();
        for (rank, status) in SHOW_ORDER.iter().enumerate().skip(first) {
            let room = page.fetch() as usize - found.len();
            if room == 0 {
                break;
            }
            let wanted = filter.status.is_none_or(|s| s == *status)
                && !(filter.hide_ended && *status == ShowStatus::Ended);
            let before = before.take();
            if !wanted {
                continue;
            }
            let sql = shows_page_sql(
                filter.seller.is_some(),
                filter.category.is_some(),
                before.is_some(),
            );
            let mut q = sqlx::query(&sql).bind(status.as_str());
            if let Some(seller) = filter.seller {
                q = q.bind(seller.0);
            }
            if let Some(category) = &filter.category {
                q = q.bind(category);
            }
            if let Some((at, id)) = before {
                q = q.bind(at).bind(at).bind(id);
            }
            for r in q.bind(room as i64).fetch_all(&self.pool).await? {
                found.push((rank, r.col("listed_at")?, show_from(&r)?));
            }
        }
        let ids: Vec<i64> = found.iter().map(|(.., s)| s.id.0).collect();
        let mut lineups = self.lineups_of(&ids).await?;
        for (.., show) in &mut found {
            show.product_ids = lineups.remove(&show.id.0).unwrap_or_default();
        }
        let page = Page::of(found, page, |(rank, at, show)| {
            Cursor::new([*rank as i64, *at, show.id.0])
        });
        Ok(Page {
            items: page.items.into_iter().map(|(.., show)| show).collect(),
            next: page.next,
        })
    }

    async fn show_categories(&self) -> StoreResult<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT category FROM shows WHERE status IN ('live', 'scheduled') ORDER BY category LIMIT 100",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn set_show_status(
        &self,
        id: ShowId,
        status: ShowStatus,
        now: Timestamp,
    ) -> StoreResult<()> {
        let sql = match status {
            ShowStatus::Live => {
                "UPDATE shows SET status = 'live', started_at = COALESCE(started_at, ?) WHERE id = ?"
            }
            ShowStatus::Ended => {
                "UPDATE shows SET status = 'ended', ended_at = ?, pinned_product_id = NULL WHERE id = ?"
            }
            ShowStatus::Scheduled => {
                "UPDATE shows SET status = 'scheduled', scheduled_at = ? WHERE id = ?"
            }
        };
        exactly_one(
            sqlx::query(sql)
                .bind(now.0)
                .bind(id.0)
                .execute(&self.writer)
                .await?,
            "show",
        )
    }

    async fn go_live(&self, id: ShowId, now: Timestamp) -> StoreResult<Result<(), ShowId>> {
        // One statement on the one writer: the check and the write cannot be split by another
        // show going live.
        let done = sqlx::query(
            "UPDATE shows SET status = 'live', started_at = COALESCE(started_at, ?) \
             WHERE id = ? AND status = 'scheduled' AND NOT EXISTS ( \
               SELECT 1 FROM show_products mine \
               JOIN show_products theirs ON theirs.product_id = mine.product_id \
               JOIN shows s ON s.id = theirs.show_id \
               WHERE mine.show_id = ? AND s.id <> ? AND s.status = 'live')",
        )
        .bind(now.0)
        .bind(id.0)
        .bind(id.0)
        .bind(id.0)
        .execute(&self.writer)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(Ok(()));
        }
        let other: Option<i64> = sqlx::query_scalar(
            "SELECT s.id FROM show_products mine \
             JOIN show_products theirs ON theirs.product_id = mine.product_id \
             JOIN shows s ON s.id = theirs.show_id \
             WHERE mine.show_id = ? AND s.id <> ? AND s.status = 'live' LIMIT 1",
        )
        .bind(id.0)
        .bind(id.0)
        .fetch_optional(&self.writer)
        .await?;
        Ok(other.map_or(Ok(()), |other| Err(ShowId(other))))
    }

    async fn set_stream_key_hash(&self, id: ShowId, hash: &str) -> StoreResult<()> {
        exactly_one(
            sqlx::query("UPDATE shows SET stream_key = ? WHERE id = ?")
                .bind(hash)
                .bind(id.0)
                .execute(&self.writer)
                .await?,
            "show",
        )
    }

    async fn set_show_cover(&self, id: ShowId, url: &str) -> StoreResult<()> {
        exactly_one(
            sqlx::query("UPDATE shows SET cover = ? WHERE id = ?")
                .bind(url)
                .bind(id.0)
                .execute(&self.writer)
                .await?,
            "show",
        )
    }

    async fn set_pinned(&self, id: ShowId, product: Option<ProductId>) -> StoreResult<()> {
        exactly_one(
            sqlx::query("UPDATE shows SET pinned_product_id = ? WHERE id = ?")
                .bind(product.map(|p| p.0))
                .bind(id.0)
                .execute(&self.writer)
                .await?,
            "show",
        )
    }

    async fn shows_with_unsettled_commerce(&self) -> StoreResult<Vec<ShowId>> {
        let ids: Vec<i64> = sqlx::query_scalar(UNSETTLED_SHOWS)
            .fetch_all(&self.pool)
            .await?;
        Ok(ids.into_iter().map(ShowId).collect())
    }

    async fn open_reservations(&self, now: Timestamp) -> StoreResult<Vec<Order>> {
        let rows = sqlx::query(&open_reservations_sql())
            .bind(now.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(order_from).collect()
    }

    async fn live_show_sharing_products(
        &self,
        products: &[ProductId],
        except: ShowId,
    ) -> StoreResult<Option<ShowId>> {
        for p in products {
            let hit: Option<i64> = sqlx::query_scalar(
                "SELECT s.id FROM shows s JOIN show_products sp ON sp.show_id = s.id WHERE s.status = 'live' AND sp.product_id = ? AND s.id <> ? LIMIT 1",
            )
            .bind(p.0)
            .bind(except.0)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(id) = hit {
                return Ok(Some(ShowId(id)));
            }
        }
        Ok(None)
    }

    async fn load_commerce(&self, show: ShowId) -> StoreResult<Restore> {
        let of_show = |sql| self.rows_of_show(sql, show);
        let mut restore = Restore::default();
        for r in &of_show(
            "SELECT v.id, v.product_id, p.title, v.name, v.price_cents, p.currency, v.stock, p.images \
             FROM show_products sp JOIN products p ON p.id = sp.product_id JOIN variants v ON v.product_id = p.id \
             WHERE sp.show_id = ? AND v.listed AND NOT p.archived ORDER BY sp.position, v.position, v.id",
        )
        .await?
        {
            restore.variants.push(variant_from(r)?);
        }
        for r in
            &of_show("SELECT * FROM flash_sales WHERE show_id = ? AND status = 'running'").await?
        {
            restore.running_sales.push(running_sale_from(r)?);
        }
        for r in &of_show("SELECT * FROM codes WHERE show_id = ?").await? {
            restore.codes.extend(code_from(r)?);
        }
        for r in &of_show(RESERVATIONS_OF_SHOW).await? {
            restore.reservations.push(order_line_from(r)?);
        }
        for r in &of_show(HELD_IN_RUNNING_SALES).await? {
            restore.held.push((
                SaleId(r.col("sale_id")?),
                UserId(r.col("buyer_id")?),
                r.col::<i64>("held")? as u32,
            ));
        }
        for r in
            &of_show("SELECT id, variant_id FROM auctions WHERE show_id = ? AND status = 'running'")
                .await?
        {
            restore
                .lots
                .push((AuctionId(r.col("id")?), VariantId(r.col("variant_id")?)));
        }
        restore.shipping_fee_cents = sqlx::query_scalar("SELECT u.shipping_fee_cents FROM shows s JOIN users u ON u.id = s.seller_id WHERE s.id = ?")
            .bind(show.0)
            .fetch_optional(&self.pool)
            .await?
            .unwrap_or(0);
        for r in &of_show(SHIPPING_CARRIED).await? {
            restore
                .shipping_carried
                .push((UserId(r.col("buyer_id")?), OrderId(r.col("id")?)));
        }
        Ok(restore)
    }

    async fn commit(&self, show: ShowId, now: Timestamp, batch: &Batch) -> StoreResult<()> {
        let (committer, batch) = (self.committer.clone(), batch.clone());
        tokio::task::spawn_blocking(move || {
            let mut db = committer.lock().map_err(|_| {
                StoreError::Backend(anyhow::anyhow!("the commit connection panicked"))
            })?;
            write_batch(&mut db, show, now, &batch)
        })
        .await
        .map_err(|e| StoreError::Backend(e.into()))?
    }

    async fn sale(&self, id: SaleId) -> StoreResult<Option<SaleRow>> {
        let row = sqlx::query("SELECT * FROM flash_sales WHERE id = ?")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(sale_row_from).transpose()
    }

    async fn host_stats(&self, show: ShowId) -> StoreResult<HostStats> {
        // Kept by the commits that pay and refund, not summed over the show's orders.
        let r = sqlx::query(
            "SELECT paid_orders AS n, paid_units AS units, paid_revenue_cents AS revenue FROM shows WHERE id = ?",
        )
        .bind(show.0)
        .fetch_optional(&self.pool)
        .await?;
        r.as_ref().map_or(Ok(HostStats::default()), host_stats_from)
    }

    async fn product_log(
        &self,
        product: ProductId,
        page: &PageRequest,
    ) -> StoreResult<Page<LogLine>> {
        self.log_page("product_id", product.0, page).await
    }

    async fn commerce_log(&self, show: ShowId, page: &PageRequest) -> StoreResult<Page<LogLine>> {
        self.log_page("show_id", show.0, page).await
    }

    async fn auction(&self, id: AuctionId) -> StoreResult<Option<AuctionRow>> {
        let row = sqlx::query("SELECT * FROM auctions WHERE id = ?")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(auction_from).transpose()
    }

    async fn auctions_of_show(&self, show: ShowId) -> StoreResult<Vec<AuctionRow>> {
        let rows = sqlx::query("SELECT * FROM auctions WHERE show_id = ? ORDER BY created_at, id")
            .bind(show.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(auction_from).collect()
    }

    async fn auction_log(&self, id: AuctionId) -> StoreResult<Vec<LogEntry>> {
        let rows = sqlx::query(
            "SELECT seq, body, prev_hash, hash FROM auction_log WHERE auction_id = ? ORDER BY seq",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(log_entry_from).collect()
    }

    async fn auction_log_page(
        &self,
        id: AuctionId,
        page: &PageRequest,
    ) -> StoreResult<Page<LogEntry>> {
        let after = page.after().map(Cursor::keys::<1>).transpose()?;
        let sql = auction_log_page_sql(after.is_some());
        let mut q = sqlx::query(&sql).bind(id.0);
        if let Some([seq]) = after {
            q = q.bind(seq);
        }
        let rows = q.bind(page.fetch()).fetch_all(&self.pool).await?;
        let entries = rows
            .iter()
            .map(log_entry_from)
            .collect::<StoreResult<_>>()?;
        Ok(Page::of(entries, page, |e: &LogEntry| {
            Cursor::new([e.seq as i64])
        }))
    }

    async fn auction_log_last(&self, id: AuctionId) -> StoreResult<Option<LogEntry>> {
        let row = sqlx::query(
            "SELECT seq, body, prev_hash, hash FROM auction_log WHERE auction_id = ? ORDER BY seq DESC LIMIT 1",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(log_entry_from).transpose()
    }

    async fn auction_bidders(&self, id: AuctionId) -> StoreResult<Vec<(String, UserId, String)>> {
        let rows = sqlx::query("SELECT b.pseudonym, b.user_id, u.display_name FROM auction_bidders b JOIN users u ON u.id = b.user_id WHERE b.auction_id = ?")
            .bind(id.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.col("pseudonym")?,
                    UserId(r.col("user_id")?),
                    r.col("display_name")?,
                ))
            })
            .collect()
    }

    async fn save_pre_bid(
        &self,
        show: ShowId,
        variant: VariantId,
        user: UserId,
        max_cents: i64,
        now: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO pre_bids (show_id, variant_id, user_id, max_cents, placed_at) VALUES (?, ?, ?, ?, ?) \
             ON CONFLICT (show_id, variant_id, user_id) DO UPDATE SET max_cents = excluded.max_cents, placed_at = excluded.placed_at",
        )
        .bind(show.0)
        .bind(variant.0)
        .bind(user.0)
        .bind(max_cents)
        .bind(now.0)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn pre_bids(&self, show: ShowId) -> StoreResult<Vec<(VariantId, UserId, String, i64)>> {
        let rows = sqlx::query(
            "SELECT p.variant_id, p.user_id, u.display_name, p.max_cents FROM pre_bids p JOIN users u ON u.id = p.user_id \
             WHERE p.show_id = ? ORDER BY p.placed_at, p.user_id",
        )
        .bind(show.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    VariantId(r.col("variant_id")?),
                    UserId(r.col("user_id")?),
                    r.col("display_name")?,
                    r.col("max_cents")?,
                ))
            })
            .collect()
    }

    async fn order(&self, id: OrderId) -> StoreResult<Option<Order>> {
        self.point
            .read(|db| {
                db.prepare_cached(&format!("{ORDER_SELECT} WHERE o.id = ?"))?
                    .query_row([id.0], |r| Ok(order_from(r)))
                    .optional()
            })?
            .transpose()
    }

    async fn order_by_key(&self, buyer: UserId, key: &str) -> StoreResult<Option<Order>> {
        self.point
            .read(|db| {
                db.prepare_cached(&format!(
                    "{ORDER_SELECT} WHERE o.buyer_id = ? AND o.idempotency_key = ?"
                ))?
                .query_row(rusqlite::params![buyer.0, key], |r| Ok(order_from(r)))
                .optional()
            })?
            .transpose()
    }

    async fn orders_by_keys(
        &self,
        keys: &[(UserId, String)],
    ) -> StoreResult<Vec<(UserId, String, OrderId)>> {
        self.point.read(|db| {
            let mut lookup = db.prepare_cached(
                "SELECT id FROM orders WHERE buyer_id = ? AND idempotency_key = ?",
            )?;
            let mut found = Vec::new();
            for (buyer, key) in keys {
                if let Some(id) = lookup
                    .query_row(rusqlite::params![buyer.0, key], |r| r.get(0))
                    .optional()?
                {
                    found.push((*buyer, key.clone(), OrderId(id)));
                }
            }
            Ok(found)
        })
    }

    async fn buyer_has_orders(&self, buyer: UserId) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE buyer_id = ? AND status NOT IN ('declined', 'expired')")
            .bind(buyer.0)
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    async fn orders_for_buyer(
        &self,
        buyer: UserId,
        page: &PageRequest,
    ) -> StoreResult<Page<Order>> {
        self.orders_page(ORDERS_OF_BUYER, &[buyer.0], page).await
    }

    async fn orders_for_seller(
        &self,
        seller: UserId,
        show: Option<ShowId>,
        page: &PageRequest,
    ) -> StoreResult<Page<Order>> {
        match show {
            Some(s) => {
                self.orders_page(ORDERS_OF_SELLERS_SHOW, &[seller.0, s.0], page)
                    .await
            }
            None => self.orders_page(ORDERS_OF_SELLER, &[seller.0], page).await,
        }
    }

    async fn mark_shipped(&self, id: OrderId, tracking: &str, now: Timestamp) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        exactly_one(
            sqlx::query("UPDATE orders SET status = 'shipped', tracking = ?, updated_at = ? WHERE id = ? AND status = 'paid'")
                .bind(tracking)
                .bind(now.0)
                .bind(id.0)
                .execute(&mut *tx)
                .await?,
            "paid order",
        )?;
        // The rest of the shipment: the same buyer's other paid orders from the same show.
        sqlx::query(
            "UPDATE orders SET status = 'shipped', tracking = ?1, updated_at = ?2 WHERE status = 'paid' \
             AND (buyer_id, show_id) = (SELECT buyer_id, show_id FROM orders WHERE id = ?3)",
        )
        .bind(tracking)
        .bind(now.0)
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        Ok(tx.commit().await?)
    }

    async fn set_spend_limit(&self, user: UserId, limit_cents: Option<i64>) -> StoreResult<()> {
        self.set_user_column("daily_spend_limit_cents", limit_cents, user)
            .await
    }

    async fn spent_since(&self, user: UserId, since: Timestamp) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COALESCE(SUM(total_cents), 0) FROM orders WHERE buyer_id = ? AND created_at >= ? AND status IN ('reserved', 'paid', 'shipped')",
        )
        .bind(user.0)
        .bind(since.0)
        .fetch_one(&self.pool)
        .await?)
    }

    async fn set_shipping_fee(&self, seller: UserId, fee_cents: i64) -> StoreResult<()> {
        self.set_user_column("shipping_fee_cents", fee_cents, seller)
            .await
    }

    async fn mark_refunded(&self, id: OrderId, now: Timestamp) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        exactly_one(
            sqlx::query("UPDATE orders SET status = 'refunded', updated_at = ? WHERE id = ? AND status = 'paid'")
                .bind(now.0)
                .bind(id.0)
                .execute(&mut *tx)
                .await?,
            "paid order",
        )?;
        // The host's totals count paid and shipped orders: this one leaves them.
        sqlx::query(
            "UPDATE shows SET paid_orders = paid_orders - 1, paid_units = paid_units - o.quantity, \
             paid_revenue_cents = paid_revenue_cents - o.total_cents \
             FROM (SELECT show_id, quantity, total_cents FROM orders WHERE id = ?) AS o WHERE shows.id = o.show_id",
        )
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO refunds_due (order_id, charge, since) \
             SELECT id, payment_ref, ? FROM orders WHERE id = ? AND payment_ref IS NOT NULL",
        )
        .bind(now.0)
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        Ok(tx.commit().await?)
    }

    async fn refunds_due(&self) -> StoreResult<Vec<(OrderId, String)>> {
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT order_id, charge FROM refunds_due ORDER BY since")
                .fetch_all(&self.writer)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(id, charge)| (OrderId(id), charge))
            .collect())
    }

    async fn refund_sent(&self, id: OrderId) -> StoreResult<()> {
        sqlx::query("DELETE FROM refunds_due WHERE order_id = ?")
            .bind(id.0)
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What SQLite plans for `sql`: one line per step.
    fn plan(db: &rusqlite::Connection, sql: &str) -> Vec<String> {
        db.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .and_then(|mut q| {
                // The plan does not depend on the values (no STAT4): all NULL.
                let nulls = vec![rusqlite::types::Null; q.parameter_count()];
                q.query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .unwrap_or_else(|e| panic!("planning {sql}: {e}"))
    }

    /// Every page is an index seek, read in the list's order: a page of a show's history must
    /// not cost a scan of it, nor a sort of it. Also the reads of open reservations, which go
    /// through the small partial index.
    #[tokio::test]
    async fn every_page_and_reservation_read_seeks_an_index() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("plans.db");
        let url = format!("sqlite://{}", path.display());
        let store = SqliteStore::open(&url, false, Clock::manual())
            .await
            .expect("opens");
        drop(store);
        let db = rusqlite::Connection::open(&path).expect("db");

        // (what, query, the index it must use, whether it may sort what it found)
        let mut cases: Vec<(String, String, &str, bool)> = Vec::new();
        for after in [false, true] {
            let orders = |clause, index, sorts| {
                (
                    format!("orders {clause} after={after}"),
                    orders_page_sql(clause, after),
                    index,
                    sorts,
                )
            };
            cases.push(orders(ORDERS_OF_SELLER, "orders_by_seller", false));
            cases.push(orders(ORDERS_OF_SELLERS_SHOW, "orders_by_show", false));
            // A buyer's orders are found by the idempotency key's index, then sorted.
            cases.push(orders(ORDERS_OF_BUYER, "sqlite_autoindex_orders_", true));
            for (column, index) in [
                ("show_id", "commerce_log_by_show"),
                ("product_id", "commerce_log_by_product"),
            ] {
                cases.push((
                    format!("log {column} after={after}"),
                    log_page_sql(column, after),
                    index,
                    false,
                ));
            }
            cases.push((
                format!("auction log after={after}"),
                auction_log_page_sql(after),
                "sqlite_autoindex_auction_log_",
                false,
            ));
            cases.push((
                format!("products after={after}"),
                products_page_sql(after),
                "products_by_seller",
                false,
            ));
            for category in [false, true] {
                for (seller, index) in [(false, "shows_by_status"), (true, "shows_by_seller")] {
                    cases.push((
                        format!("shows seller={seller} category={category} after={after}"),
                        shows_page_sql(seller, category, after),
                        index,
                        false,
                    ));
                }
            }
        }
        cases.push((
            "variants of a page".into(),
            variants_of_many_sql(3),
            "variants_by_product",
            false,
        ));
        cases.push((
            "unsettled shows".into(),
            UNSETTLED_SHOWS.into(),
            "orders_reserved",
            true,
        ));
        cases.push((
            "a show's reservations".into(),
            RESERVATIONS_OF_SHOW.into(),
            "orders_reserved",
            false,
        ));
        cases.push((
            "open reservations".into(),
            open_reservations_sql(),
            "orders_reserved",
            true,
        ));
        // What an owner reads when it starts.
        cases.push((
            "held in running sales".into(),
            HELD_IN_RUNNING_SALES.into(),
            "orders_by_show",
            true,
        ));
        cases.push((
            "shipping carried".into(),
            SHIPPING_CARRIED.into(),
            "orders_carrying_shipping",
            false,
        ));
        assert!(
            plan(&db, HELD_IN_RUNNING_SALES)
                .iter()
                .any(|s| s.contains("orders_by_show (show_id=? AND created_at>?)")),
            "held orders are read from when the oldest running sale started"
        );

        for (what, sql, index, may_sort) in cases {
            let steps = plan(&db, &sql);
            let text = steps.join("\n");
            assert!(
                steps.iter().any(|s| s.contains(&format!("INDEX {index}"))),
                "{what} uses {index}:\n{text}"
            );
            for table in [
                "o",
                "orders",
                "commerce_log",
                "auction_log",
                "s",
                "shows",
                "products",
                "variants",
            ] {
                assert!(
                    !steps.contains(&format!("SCAN {table}")),
                    "{what} scans {table}:\n{text}"
                );
            }
            if !may_sort {
                assert!(
                    steps.iter().all(|s| !s.contains("TEMP B-TREE")),
                    "{what} sorts what it found:\n{text}"
                );
                // A seek, not a walk of a whole index.
                assert!(
                    steps
                        .iter()
                        .filter(|s| s.contains(&format!("INDEX {index}")))
                        .all(|s| s.starts_with("SEARCH")),
                    "{what} walks all of {index}:\n{text}"
                );
            }
        }
    }
}
