//! Buying without leaving the show, and orders afterwards: the HTTP side of
//! [`crate::service::orders`].
//!
//! `POST /orders` needs an `Idempotency-Key`; a retry with the same key repeats or finishes the
//! first answer. With `Prefer: respond-async` (RFC 7240) the buyer is answered `202` with the
//! reserved order as soon as it is durable, and the payment goes on in the background;
//! `GET /orders/{id}` tells how that ended.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hawker_core::ids::{OrderId, ShowId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::PageQuery;
use crate::auth::CurrentUser;
use crate::error::{ApiJson, ApiPath, ApiQuery, AppError, order_status};
use crate::service::orders::{self, Answer, Buy, Charging, Started};
use crate::state::AppState;
use crate::store::{Order, PageRequest};

pub async fn buy(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Buy>,
) -> Result<Response, AppError> {
    let raw_key = headers.get("idempotency-key").ok_or_else(|| {
        AppError::bad_request(
            "missing_idempotency_key",
            "send an Idempotency-Key header; reuse it when you retry",
        )
    })?;
    let respond_async = prefers_async(&headers);
    let key = raw_key.to_str().unwrap_or("").to_owned();
    let charging = if respond_async {
        Charging::UntilSettled
    } else {
        Charging::Once
    };
    let Started { first, paying } =
        orders::start_buy(&state.services, user.user, key, body, charging).await;
    let answer = match paying {
        Some(_) if respond_async => return Ok(accepted(&first?)),
        Some(paying) => orders::paid(paying).await,
        None => first,
    };
    respond(answer)
}

/// Whether the request carries `Prefer: respond-async` (RFC 7240): answer once the order is
/// durably reserved, and pay for it in the background.
fn prefers_async(headers: &HeaderMap) -> bool {
    headers.get_all("prefer").iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|p| p.trim().eq_ignore_ascii_case("respond-async"))
        })
    })
}

/// `202 Accepted` with the reserved order: it is durable, and its payment is under way.
fn accepted(order: &Order) -> Response {
    (
        StatusCode::ACCEPTED,
        [
            ("preference-applied", "respond-async".to_owned()),
            ("location", format!("/api/v1/orders/{}", order.id)),
        ],
        OrderBody { order },
    )
        .into_response()
}

/// `{"order": …}`, serialized straight from the order (going through a `serde_json::Value`
/// first was a sixth of a paid buy's instructions) into a buffer that holds it at once: axum's
/// `Json` grows a small one through many small writes.
#[derive(Serialize)]
struct OrderBody<'a> {
    order: &'a Order,
}

impl IntoResponse for OrderBody<'_> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(1024);
        match serde_json::to_writer(&mut body, &self) {
            Ok(()) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
            Err(e) => AppError::Internal(e.into()).into_response(),
        }
    }
}

fn respond(answer: Answer) -> Result<Response, AppError> {
    order_status(answer)
        .map(|(status, order)| (status, OrderBody { order: &order }).into_response())
}

/// `GET /orders`: the buyer's orders, newest first, a page at a time.
pub async fn mine(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Value>, AppError> {
    let page = state
        .services
        .store
        .orders_for_buyer(user.user.id, &q.request()?)
        .await?;
    Ok(Json(json!({ "orders": page.items, "next": page.next })))
}

pub async fn get_one(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, AppError> {
    let order = state
        .services
        .store
        .order(OrderId(id))
        .await?
        .ok_or_else(|| AppError::not_found("order"))?;
    if order.buyer_id != user.user.id && order.seller_id != user.user.id {
        return Err(AppError::not_found("order"));
    }
    Ok(Json(json!({ "order": order })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SellerQuery {
    show_id: Option<i64>,
    limit: Option<u32>,
    after: Option<String>,
}

/// `GET /seller/orders[?show_id=]`: the seller's orders, newest first, a page at a time.
pub async fn for_seller(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(q): ApiQuery<SellerQuery>,
) -> Result<Json<Value>, AppError> {
    if !user.user.role.can_sell() {
        return Err(AppError::forbidden("only sellers have a store"));
    }
    let request = PageRequest::parse(q.limit, q.after.as_deref())?;
    let page = state
        .services
        .store
        .orders_for_seller(user.user.id, q.show_id.map(ShowId), &request)
        .await?;
    Ok(Json(json!({ "orders": page.items, "next": page.next })))
}

async fn sellers_order(state: &AppState, user: &CurrentUser, id: i64) -> Result<Order, AppError> {
    let order = state
        .services
        .store
        .order(OrderId(id))
        .await?
        .ok_or_else(|| AppError::not_found("order"))?;
    if order.seller_id != user.user.id {
        return Err(AppError::not_found("order"));
    }
    Ok(order)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShipBody {
    tracking: String,
}

pub async fn ship(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<ShipBody>,
) -> Result<Json<Value>, AppError> {
    let order = sellers_order(&state, &user, id).await?;
    let order = orders::ship(&state.services, &order, &body.tracking).await?;
    Ok(Json(json!({ "order": order })))
}

/// Cancels a paid order and refunds the charge ([`orders::refund`]): `200` once the refund is
/// sent, `202` while it is due.
pub async fn refund(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, AppError> {
    let order = sellers_order(&state, &user, id).await?;
    let (order, sent) = orders::refund(&state.services, &order).await?;
    Ok(if sent {
        Json(json!({ "order": order, "refund": "sent" })).into_response()
    } else {
        (
            StatusCode::ACCEPTED,
            Json(json!({ "order": order, "refund": "pending" })),
        )
            .into_response()
    })
}

/// The buyer's saved methods, and what the provider suggests when there are none.
pub async fn payment_methods(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<Value>, AppError> {
    let saved = state.services.store.payment_methods(user.user.id).await?;
    let as_json = |v: Vec<(String, String)>| {
        v.into_iter()
            .map(|(id, label)| json!({ "id": id, "label": label }))
            .collect::<Vec<_>>()
    };
    Ok(Json(
        json!({ "saved": as_json(saved), "available": as_json(state.services.payments.suggested_methods()), "test_mode": state.services.payments.is_test() }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMethod {
    method: String,
}

/// Saves a payment method for one-tap buying and for auctions won ("you bid, you buy").
pub async fn save_payment_method(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<NewMethod>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let label = orders::save_payment_method(&state.services, &user.user, &body.method).await?;
    let method = body.method.trim();
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": method, "label": label })),
    ))
}
