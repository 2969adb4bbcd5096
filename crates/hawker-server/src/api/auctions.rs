//! Live auctions over HTTP: the host starts them, viewers bid, anybody reads the result and the
//! hash-chained log.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hawker_core::auction::{BidKind, Mode, Outcome, Rejection, Terms};
use hawker_core::ids::{AuctionId, VariantId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::shows::{find_show, hosted_show};
use crate::auth::CurrentUser;
use crate::error::rejection_message;
use crate::error::{ApiJson, ApiPath, AppError};
use crate::live::CommerceCmd;
use crate::live::auctions::bid_policy;
use crate::secrets::random_token;
use crate::state::AppState;
use crate::store::AuctionRow;
use crate::store::new_id;

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
    let live = state.services.hub.live(&show).await?;
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
    let terms = Terms::new(
        body.start_cents,
        body.duration_s,
        mode,
        state.services.config.increments()?,
    )?;
    let variant_id = VariantId(body.variant_id);
    let product = state.services.store.product_of_variant(variant_id).await?;
    let lot = match &product {
        Some(p) if show.product_ids.contains(&p.id) => {
            let name = p
                .variants
                .iter()
                .find(|v| v.id == variant_id)
                .map(|v| v.name.clone())
                .unwrap_or_default();
            format!("{} · {name}", p.title)
        }
        _ => {
            return Err(AppError::unprocessable(
                "unknown_item",
                "this variant is not in the show's lineup",
            ));
        }
    };
    let auction_id = AuctionId(new_id());
    let salt = random_token(16);
    let (id, ends_at) = live
        .ask(|reply| CommerceCmd::StartAuction {
            id: auction_id,
            variant_id,
            lot,
            terms,
            salt,
            reply,
        })
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
    let row = auction_row(state, id).await?;
    let show = find_show(state, row.show_id.0).await?;
    // Policy refusals still reach the owner, so the log records every attempt.
    let policy = if show_id.is_some_and(|s| s != show.id.0) {
        Some("wrong_show".to_owned())
    } else {
        bid_policy(
            state.services.store.as_ref(),
            show.seller_id,
            user.user.id,
            amount,
            state.services.clock.now(),
        )
        .await?
    };
    let live = match state.services.hub.get(show.id) {
        Some(live) => live,
        None => {
            return Err(AppError::conflict(
                "auction_closed",
                "the auction has closed",
            ));
        }
    };
    let outcome = live
        .ask(|reply| CommerceCmd::Bid {
            auction_id: row.id,
            bidder: user.user.id,
            name: user.user.display_name.clone(),
            kind,
            amount_cents: amount,
            policy,
            key,
            reply,
        })
        .await?;
    match outcome {
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
        Outcome::Rejected(r) => {
            let status = match &r {
                Rejection::BidTooLow { .. }
                | Rejection::MaxNotHigher { .. }
                | Rejection::OutOfRange => StatusCode::UNPROCESSABLE_ENTITY,
                Rejection::AuctionClosed | Rejection::AlreadyWinning => StatusCode::CONFLICT,
                Rejection::Policy { code } if code == "shill_bid" => StatusCode::FORBIDDEN,
                Rejection::Policy { code } if code == "spending_limit" => StatusCode::CONFLICT,
                Rejection::Policy { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let code: &'static str = match r.code() {
                "bid_too_low" => "bid_too_low",
                "auction_closed" => "auction_closed",
                "already_winning" => "already_winning",
                "max_not_higher" => "max_not_higher",
                "invalid_amount" => "invalid_amount",
                "shill_bid" => "shill_bid",
                "wrong_show" => "wrong_show",
                "spending_limit" => "spending_limit",
                _ => "bid_refused",
            };
            Err(AppError::new(status, code, rejection_message(&r)))
        }
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
                .auction_log(row.id)
                .await?
                .last()
                .map(|e| e.hash.clone())
        );
    }
    Ok(Json(body))
}

/// `GET /api/v1/auctions/{id}/log`: the whole hash-chained log, for anyone to verify.
pub async fn log(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, AppError> {
    let row = auction_row(&state, id).await?;
    Ok(Json(json!(state.services.store.auction_log(row.id).await?)))
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
    if show.status == crate::store::ShowStatus::Ended {
        return Err(AppError::conflict("show_not_live", "this show has ended"));
    }
    if !(1..=hawker_core::money::Price::MAX_CENTS).contains(&body.max_cents) {
        return Err(AppError::unprocessable(
            "invalid_input",
            "max_cents: a positive number of cents",
        ));
    }
    let variant_id = VariantId(body.variant_id);
    let in_lineup = state
        .services
        .store
        .product_of_variant(variant_id)
        .await?
        .is_some_and(|p| show.product_ids.contains(&p.id));
    if !in_lineup {
        return Err(AppError::unprocessable(
            "unknown_item",
            "this variant is not in the show's lineup",
        ));
    }
    match bid_policy(
        state.services.store.as_ref(),
        show.seller_id,
        user.user.id,
        body.max_cents,
        state.services.clock.now(),
    )
    .await?
    .as_deref()
    {
        Some("shill_bid") => {
            return Err(AppError::new(
                StatusCode::FORBIDDEN,
                "shill_bid",
                "sellers cannot bid on their own lots",
            ));
        }
        Some(_) => {
            return Err(AppError::conflict(
                "spending_limit",
                "this maximum would pass your daily spending limit",
            ));
        }
        None => {}
    }
    let running = state
        .services
        .store
        .auctions_of_show(show.id)
        .await?
        .into_iter()
        .any(|a| a.variant_id == variant_id && !a.summary.ended);
    if running {
        return Err(AppError::conflict(
            "auction_running",
            "this lot's auction is running: bid in it instead",
        ));
    }
    state
        .services
        .store
        .save_pre_bid(
            show.id,
            variant_id,
            user.user.id,
            body.max_cents,
            state.services.clock.now(),
        )
        .await?;
    if let Some(live) = state.services.hub.get(show.id) {
        let pre = crate::live::auctions::PreBid {
            variant_id,
            user: user.user.id,
            name: user.user.display_name.clone(),
            max_cents: body.max_cents,
        };
        let _ = live.commerce.send(CommerceCmd::PreBid(pre)).await;
    }
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
    let live = match state.services.hub.get(show.id) {
        Some(live) => live,
        None => state.services.hub.open(&show).await?,
    };
    let (bidder, price) = live
        .ask(|reply| CommerceCmd::SecondChance {
            auction_id: row.id,
            reply,
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "bidder": bidder, "price_cents": price })),
    ))
}
