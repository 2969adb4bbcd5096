//! Live auctions over HTTP: the host starts them, viewers bid, anybody reads the result and the
//! hash-chained log.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hawker_core::auction::{BidKind, Mode, Outcome};
use hawker_core::ids::{AuctionId, ShowId, VariantId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::PageQuery;
use super::shows::{find_show, hosted_show};
use crate::auth::CurrentUser;
use crate::error::{ApiJson, ApiPath, ApiQuery, AppError};
use crate::service::auctions;
use crate::state::AppState;
use crate::store::AuctionRow;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    variant_id: i64,
    start_cents: i64,
    #[serde(default = "default_duration")]
    duration_s: i64,
    mode: String,
    extend_s: Option<i64>,
}

fn default_duration() -> i64 {
    30
}

/// `POST /api/v1/shows/{id}/auctions` (host).
pub async fn start(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<StartBody>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let show = hosted_show(&state, &user, id).await?;
    let mode = match (body.mode.as_str(), body.extend_s) {
        ("standard", extend) => Mode::Standard {
            // Saturating: a huge input must stay huge (and be refused), not wrap into range.
            extend_ms: extend.unwrap_or(10).saturating_mul(1000),
        },
        ("sudden_death", None) => Mode::SuddenDeath,
        ("sudden_death", Some(_)) => {
            return Err(AppError::unprocessable(
                "invalid_input",
                "extend_s: sudden death never extends",
            ));
        }
        _ => {
            return Err(AppError::unprocessable(
                "invalid_input",
                "mode: \"standard\" or \"sudden_death\"",
            ));
        }
    };
    let (id, ends_at) = auctions::start(
        &state.services,
        &show,
        VariantId(body.variant_id),
        body.start_cents,
        body.duration_s,
        mode,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "ends_at": ends_at })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BidBody {
    amount_cents: i64,
    /// The show the bidder is watching; a bid on another show's lot is refused (and logged).
    show_id: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxBody {
    max_cents: i64,
    show_id: Option<i64>,
}

/// `POST /api/v1/auctions/{id}/bids`.
pub async fn bid(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<BidBody>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    place(
        &state,
        &user,
        &headers,
        id,
        BidKind::Bid,
        body.amount_cents,
        body.show_id,
    )
    .await
}

/// `POST /api/v1/auctions/{id}/max-bid`.
pub async fn max_bid(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<MaxBody>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    place(
        &state,
        &user,
        &headers,
        id,
        BidKind::Max,
        body.max_cents,
        body.show_id,
    )
    .await
}

async fn auction_row(state: &AppState, id: i64) -> Result<AuctionRow, AppError> {
    state
        .services
        .store
        .auction(AuctionId(id))
        .await?
        .ok_or_else(|| AppError::not_found("auction"))
}

async fn place(
    state: &AppState,
    user: &CurrentUser,
    headers: &HeaderMap,
    id: i64,
    kind: BidKind,
    amount: i64,
    show_id: Option<i64>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    if !(1..=hawker_core::money::Price::MAX_CENTS).contains(&amount) {
        return Err(AppError::unprocessable(
            "invalid_input",
            "amount: a positive number of cents",
        ));
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(|k| hawker_core::ids::IdempotencyKey::parse(k).map(|k| k.as_str().to_owned()))
        .transpose()?;
    let bid = auctions::Bid {
        auction_id: AuctionId(id),
        kind,
        amount_cents: amount,
        watching: show_id.map(ShowId),
        key,
    };
    match auctions::bid_on(&state.services, &user.user, bid).await? {
        Outcome::Accepted {
            price_cents,
            leader,
            ends_at,
        } => Ok((
            StatusCode::CREATED,
            Json(
                json!({ "accepted": true, "price_cents": price_cents, "leader": leader, "ends_at": ends_at }),
            ),
        )),
        Outcome::Rejected(r) => Err(AppError::from(&r)),
    }
}

/// `GET /api/v1/auctions/{id}`.
pub async fn get_one(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, AppError> {
    let row = auction_row(&state, id).await?;
    let s = &row.summary;
    let mut body = json!({
        "id": row.id, "show_id": row.show_id, "variant_id": row.variant_id,
        "status": if s.ended { "ended" } else { "running" },
        "price_cents": s.price_cents, "leader": s.winner, "ends_at": s.ends_at,
    });
    if s.ended {
        body["winner"] = json!(s.winner);
        body["final_hash"] = json!(
            state
                .services
                .store
                .auction_log_last(row.id)
                .await?
                .map(|e| e.hash)
        );
    }
    Ok(Json(body))
}

/// `GET /api/v1/auctions/{id}/log`: the hash-chained log, oldest first, a page at a time, for
/// anyone to verify: `hawker verify-auction` checks the pages saved one after another (each
/// entry's `prev_hash` chains it to the entry before, across pages too), and the last entry's
/// hash is the auction's `final_hash`.
pub async fn log(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Value>, AppError> {
    let request = q.request()?;
    let row = auction_row(&state, id).await?;
    let page = state
        .services
        .store
        .auction_log_page(row.id, &request)
        .await?;
    Ok(Json(json!({ "entries": page.items, "next": page.next })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreBidBody {
    variant_id: i64,
    max_cents: i64,
}

/// `POST /api/v1/shows/{id}/pre-bids`: a maximum on a lineup variant before its auction starts.
pub async fn pre_bid(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<PreBidBody>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let show = find_show(&state, id).await?;
    let variant_id = VariantId(body.variant_id);
    auctions::pre_bid(
        &state.services,
        &show,
        &user.user,
        variant_id,
        body.max_cents,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "variant_id": variant_id, "max_cents": body.max_cents })),
    ))
}

/// `POST /api/v1/auctions/{id}/second-chance` (host): the winner's charge failed; offer the lot to
/// the next bidder at their highest bid, charged to their saved card.
pub async fn second_chance(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let row = auction_row(&state, id).await?;
    let show = hosted_show(&state, &user, row.show_id.0).await?;
    let (bidder, price) = auctions::second_chance(&state.services, &show, row.id).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "bidder": bidder, "price_cents": price })),
    ))
}
