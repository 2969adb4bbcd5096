//! The herd's baselines, each the usual way to build a flash-sale buy endpoint, served as its own
//! process (`hawker-bench baseline-server postgres|redis --listen ADDR --url URL`) so the same
//! client drives them exactly as it drives Hawker.
//!
//! Both take the same request as Hawker's `POST /api/v1/orders` (a bearer token, an
//! `Idempotency-Key`, a JSON body), look the token up, and answer `201 {"order":{"id"}}` or
//! `409 sold_out`. Unlike Hawker they charge nothing and confirm nothing: one decision, one
//! write, which flatters them.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::text_flag;
use hawker_server::secrets::token_hash;

/// The PostgreSQL baseline's tables.
pub const POSTGRES_SCHEMA: &str = "
CREATE TABLE tokens (token_hash TEXT PRIMARY KEY, buyer BIGINT NOT NULL);
CREATE TABLE sales (id BIGINT PRIMARY KEY, remaining BIGINT NOT NULL CHECK (remaining >= 0));
CREATE TABLE orders (
    id BIGSERIAL PRIMARY KEY,
    buyer BIGINT NOT NULL,
    idempotency_key TEXT NOT NULL,
    sale_id BIGINT NOT NULL,
    quantity BIGINT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (buyer, idempotency_key)
);";

/// The usual "seckill" script: idempotency, stock check, decrement and the order in one atomic
/// call. KEYS: stock, idempotency hash, order list, order id counter. ARGV: buyer, key, quantity.
const REDIS_BUY: &str = r"
local seen = redis.call('HGET', KEYS[2], ARGV[1] .. ':' .. ARGV[2])
if seen then return tonumber(seen) end
local qty = tonumber(ARGV[3])
if tonumber(redis.call('GET', KEYS[1]) or '0') < qty then return -1 end
redis.call('DECRBY', KEYS[1], qty)
local id = redis.call('INCR', KEYS[4])
redis.call('HSET', KEYS[2], ARGV[1] .. ':' .. ARGV[2], id)
redis.call('RPUSH', KEYS[3], id .. ':' .. ARGV[1])
return id
";

#[derive(Clone)]
enum Db {
    Postgres(sqlx::PgPool),
    Redis(redis::aio::MultiplexedConnection, redis::Script),
}

pub async fn serve(args: &[&str]) -> anyhow::Result<()> {
    let listen = text_flag(args, "--listen").unwrap_or("127.0.0.1:8090");
    let url = text_flag(args, "--url").unwrap_or_default();
    let db = match args.first() {
        Some(&"postgres") => Db::Postgres(
            // A typical application pool; the hot row serialises buyers whatever its size.
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(32)
                .connect(url)
                .await?,
        ),
        Some(&"redis") => Db::Redis(
            redis::Client::open(url)?
                .get_multiplexed_async_connection()
                .await?,
            redis::Script::new(REDIS_BUY),
        ),
        _ => anyhow::bail!(
            "usage: hawker-bench baseline-server postgres|redis --listen ADDR --url URL"
        ),
    };
    let app = axum::Router::new()
        .route("/api/v1/orders", post(buy))
        .with_state(db);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    axum::serve(listener, app.into_make_service()).await?;
    Ok(())
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

fn order(id: i64) -> Response {
    (
        StatusCode::CREATED,
        axum::Json(json!({ "order": { "id": id, "status": "reserved" } })),
    )
        .into_response()
}

async fn buy(State(db): State<Db>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(token) = header("authorization").and_then(|h| h.strip_prefix("Bearer ")) else {
        return error(StatusCode::UNAUTHORIZED, "unauthorized", "log in first");
    };
    let Some(key) = header("idempotency-key").map(str::to_owned) else {
        return error(
            StatusCode::BAD_REQUEST,
            "missing_idempotency_key",
            "send one",
        );
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (Some(sale), Some(quantity)) = (body["flash_sale_id"].as_i64(), body["quantity"].as_i64())
    else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            "bad body",
        );
    };
    let hash = token_hash(token);
    let answer = match db {
        Db::Postgres(pool) => buy_postgres(&pool, &hash, &key, sale, quantity).await,
        Db::Redis(conn, script) => buy_redis(conn, &script, &hash, &key, quantity).await,
    };
    match answer {
        Ok(Some(Some(id))) => order(id),
        Ok(Some(None)) => error(StatusCode::CONFLICT, "sold_out", "sold out"),
        Ok(None) => error(StatusCode::UNAUTHORIZED, "unauthorized", "unknown token"),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            &e.to_string(),
        ),
    }
}

/// `None`: unknown token; `Some(None)`: sold out; `Some(Some(id))`: the order.
type Decision = anyhow::Result<Option<Option<i64>>>;

async fn buy_postgres(
    pool: &sqlx::PgPool,
    hash: &str,
    key: &str,
    sale: i64,
    quantity: i64,
) -> Decision {
    let Some((buyer,)) =
        sqlx::query_as::<_, (i64,)>("SELECT buyer FROM tokens WHERE token_hash = $1")
            .bind(hash)
            .fetch_optional(pool)
            .await?
    else {
        return Ok(None);
    };
    let existing = || {
        sqlx::query_as::<_, (i64,)>(
            "SELECT id FROM orders WHERE buyer = $1 AND idempotency_key = $2",
        )
        .bind(buyer)
        .bind(key)
        .fetch_optional(pool)
    };
    if let Some((id,)) = existing().await? {
        return Ok(Some(Some(id)));
    }
    let mut tx = pool.begin().await?;
    let taken = sqlx::query(
        "UPDATE sales SET remaining = remaining - $2 WHERE id = $1 AND remaining >= $2",
    )
    .bind(sale)
    .bind(quantity)
    .execute(&mut *tx)
    .await?;
    if taken.rows_affected() == 0 {
        return Ok(Some(None));
    }
    let inserted = sqlx::query_as::<_, (i64,)>(
        "INSERT INTO orders (buyer, idempotency_key, sale_id, quantity) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(buyer)
    .bind(key)
    .bind(sale)
    .bind(quantity)
    .fetch_one(&mut *tx)
    .await;
    match inserted {
        Ok((id,)) => {
            tx.commit().await?;
            Ok(Some(Some(id)))
        }
        // A concurrent retry with the same key won: roll back and answer with its order.
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            tx.rollback().await?;
            Ok(Some(existing().await?.map(|(id,)| id)))
        }
        Err(e) => Err(e.into()),
    }
}

async fn buy_redis(
    mut conn: redis::aio::MultiplexedConnection,
    script: &redis::Script,
    hash: &str,
    key: &str,
    quantity: i64,
) -> Decision {
    let buyer: Option<i64> = redis::cmd("HGET")
        .arg("herd:tokens")
        .arg(hash)
        .query_async(&mut conn)
        .await?;
    let Some(buyer) = buyer else { return Ok(None) };
    let id: i64 = script
        .key("herd:stock")
        .key("herd:idempotency")
        .key("herd:orders")
        .key("herd:next_order")
        .arg(buyer)
        .arg(key)
        .arg(quantity)
        .invoke_async(&mut conn)
        .await?;
    Ok(Some((id > 0).then_some(id)))
}
