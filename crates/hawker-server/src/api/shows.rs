//! Shows, the host's live actions, moderation, and the live socket's handshake.

use super::PageQuery;
use crate::auth::{CurrentUser, MaybeUser, Via};
use crate::error::{ApiJson, ApiPath, ApiQuery, AppError};
use crate::limits::ClientIp;
use crate::live::{CommerceCmd, LiveShow, RoomCmd};
use crate::secrets::{new_stream_key, token_hash};
use crate::service::shows::{end_show, start_show};
use crate::socket;
use crate::state::AppState;
use crate::store::{LogLine, NewShow, Page, PageRequest, Show, ShowFilter, ShowStatus, new_id};
use axum::Json;
use axum::extract::{Multipart, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use hawker_core::catalog::{stock_level, text};
use hawker_core::commerce::SaleRequest;
use hawker_core::discount::{CodeRule, Discount, normalize_code};
use hawker_core::ids::{CodeId, ProductId, SaleId, ShowId, UserId, VariantId};
use hawker_core::money::Price;
use hawker_core::time::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};

pub async fn find_show(state: &AppState, id: i64) -> Result<Show, AppError> {
    state
        .services
        .store
        .show(ShowId(id))
        .await?
        .ok_or_else(|| AppError::not_found("show"))
}

/// The show, if `user` is its host (or an admin).
pub async fn hosted_show(state: &AppState, user: &CurrentUser, id: i64) -> Result<Show, AppError> {
    let show = find_show(state, id).await?;
    if !user.user.acts_for(show.seller_id) {
        return Err(AppError::forbidden("only the show's host can do this"));
    }
    Ok(show)
}

fn show_json(show: &Show) -> Value {
    json!({
        "id": show.id, "title": show.title, "category": show.category, "status": show.status,
        "seller": { "id": show.seller_id, "display_name": show.seller_name },
        "scheduled_at": show.scheduled_at, "started_at": show.started_at, "ended_at": show.ended_at,
        "cover": show.cover, "product_ids": show.product_ids, "pinned_product_id": show.pinned_product_id,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewShowBody {
    title: String,
    category: String,
    scheduled_at: Option<i64>,
    product_ids: Vec<i64>,
}

pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<NewShowBody>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let (show, stream_key) = create_show(&state, &user, body).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": show.id, "stream_key": stream_key, "show": show_json(&show) })),
    ))
}

/// `POST /api/v1/shows/{id}/stream-key`: a new stream key, shown this once; the old one stops
/// working (a key that leaked, or one the host never saw).
pub async fn new_key(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, AppError> {
    let show = hosted_show(&state, &user, id).await?;
    let key = new_stream_key();
    state
        .services
        .store
        .set_stream_key_hash(show.id, &token_hash(&key))
        .await?;
    // Whoever streams with the old key is cut off; the host's console reconnects with its session.
    state.services.media.drop_publisher(show.id).await;
    Ok(Json(json!({ "stream_key": key })))
}

/// Schedules a show; answers it and its stream key, which is not stored and so is seen only now.
pub async fn create_show(
    state: &AppState,
    user: &CurrentUser,
    body: NewShowBody,
) -> Result<(Show, String), AppError> {
    if !user.user.role.can_sell() {
        return Err(AppError::forbidden("only sellers can schedule shows"));
    }
    let title = text("title", &body.title, 120)?;
    let category = text("category", &body.category, 40)?.to_lowercase();
    if body.product_ids.is_empty() || body.product_ids.len() > 100 {
        return Err(AppError::unprocessable(
            "invalid_input",
            "product_ids: give 1 to 100 products",
        ));
    }
    let mut product_ids = Vec::new();
    for id in &body.product_ids {
        let product = state
            .services
            .store
            .product(ProductId(*id))
            .await?
            .ok_or_else(|| {
                AppError::unprocessable("unknown_product", format!("product {id} does not exist"))
            })?;
        if product.seller_id != user.user.id || product.archived {
            return Err(AppError::unprocessable(
                "unknown_product",
                format!("product {id} is not one of your active products"),
            ));
        }
        if !product_ids.contains(&product.id) {
            product_ids.push(product.id);
        }
    }
    // A show is scheduled for a moment people can attend: not before yesterday, nor years out.
    const DAY_MS: i64 = 24 * 3600 * 1000;
    let now = state.services.clock.now().0;
    let soonest_latest = (now - DAY_MS)..=(now + 2 * 366 * DAY_MS);
    if let Some(at) = body.scheduled_at
        && !soonest_latest.contains(&at)
    {
        return Err(AppError::unprocessable(
            "invalid_input",
            "scheduled_at: milliseconds since 1970, from yesterday to two years from now",
        ));
    }
    let stream_key = new_stream_key();
    let new = NewShow {
        seller_id: user.user.id,
        title,
        category,
        scheduled_at: body.scheduled_at.map(Timestamp),
        stream_key_hash: token_hash(&stream_key),
        product_ids,
    };
    Ok((
        state
            .services
            .store
            .create_show(&new, state.services.clock.now())
            .await?,
        stream_key,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    status: Option<String>,
    category: Option<String>,
    seller_id: Option<i64>,
    limit: Option<u32>,
    after: Option<String>,
}

/// `GET /shows`: the live shows first, then the scheduled, then the ended, each latest first,
/// a page at a time.
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Value>, AppError> {
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(ShowStatus::parse(s).ok_or_else(|| {
            AppError::bad_request("bad_query", "status: live, scheduled or ended")
        })?),
    };
    let request = PageRequest::parse(q.limit, q.after.as_deref())?;
    let filter = ShowFilter {
        status,
        seller: q.seller_id.map(UserId),
        category: q.category.map(|c| c.to_lowercase()),
        ..ShowFilter::default()
    };
    let page = state.services.store.shows(&filter, &request).await?;
    Ok(Json(
        json!({ "shows": page.items.iter().map(show_json).collect::<Vec<_>>(), "next": page.next }),
    ))
}

pub async fn get_one(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, AppError> {
    Ok(Json(show_json(&find_show(&state, id).await?)))
}

pub async fn upload_cover(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    multipart: Multipart,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let show = hosted_show(&state, &user, id).await?;
    let url = crate::media::save_upload(&state, user.user.id, multipart).await?;
    state.services.store.set_show_cover(show.id, &url).await?;
    Ok((StatusCode::CREATED, Json(json!({ "url": url }))))
}

/// Goes live. Refused if a product of the lineup is live in another show: each variant's stock
/// has one owner at a time.
pub async fn start(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, AppError> {
    let show = hosted_show(&state, &user, id).await?;
    Ok(Json(show_json(&start_show(&state.services, show).await?)))
}

pub async fn end(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, AppError> {
    let show = hosted_show(&state, &user, id).await?;
    Ok(Json(show_json(&end_show(&state.services, show).await?)))
}

async fn live_hosted(state: &AppState, user: &CurrentUser, id: i64) -> Result<LiveShow, AppError> {
    let show = hosted_show(state, user, id).await?;
    Ok(state.services.hub.live(&show).await?)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinBody {
    product_id: Option<i64>,
}

pub async fn pin(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<PinBody>,
) -> Result<Json<Value>, AppError> {
    let live = live_hosted(&state, &user, id).await?;
    let card = live
        .ask(|reply| CommerceCmd::Pin {
            product: body.product_id.map(ProductId),
            reply,
        })
        .await?;
    Ok(Json(json!({ "pinned": card })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SaleBody {
    variant_id: i64,
    quantity: i64,
    price_cents: i64,
    per_buyer_limit: i64,
    duration_s: i64,
}

pub async fn start_sale(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<SaleBody>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let live = live_hosted(&state, &user, id).await?;
    let quantity = stock_level("quantity", body.quantity)?;
    if quantity == 0 {
        return Err(AppError::unprocessable(
            "invalid_input",
            "quantity: must be at least 1",
        ));
    }
    let per_buyer_limit = stock_level("per_buyer_limit", body.per_buyer_limit)?;
    if !(5..=86_400).contains(&body.duration_s) {
        return Err(AppError::unprocessable(
            "invalid_input",
            "duration_s: must be between 5 and 86400",
        ));
    }
    let req = SaleRequest {
        id: SaleId(new_id()),
        variant_id: VariantId(body.variant_id),
        quantity,
        price: Price::new("price_cents", body.price_cents)?,
        per_buyer_limit,
        // Saturating: a huge input must stay huge (and be refused), not wrap into range.
        duration_ms: body.duration_s.saturating_mul(1000),
    };
    let sale = live
        .ask(|reply| CommerceCmd::StartSale { req, reply })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": sale.id, "ends_at": sale.ends_at, "sale": sale })),
    ))
}

pub async fn get_sale(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, AppError> {
    let sale = state
        .services
        .store
        .sale(SaleId(id))
        .await?
        .ok_or_else(|| AppError::not_found("flash sale"))?;
    // The owner's memory is ahead of nothing: every change is committed before it is told.
    let status = if sale.status == "running" && sale.ends_at <= state.services.clock.now() {
        "ended"
    } else {
        sale.status.as_str()
    };
    Ok(Json(json!({
        "id": sale.id, "show_id": sale.show_id, "variant_id": sale.variant_id, "price_cents": sale.price_cents,
        "quantity": sale.quantity, "remaining": sale.remaining, "per_buyer_limit": sale.per_buyer_limit,
        "ends_at": sale.ends_at, "status": status,
    })))
}

pub async fn end_sale(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, AppError> {
    let sale = state
        .services
        .store
        .sale(SaleId(id))
        .await?
        .ok_or_else(|| AppError::not_found("flash sale"))?;
    let live = live_hosted(&state, &user, sale.show_id.0).await?;
    live.ask(|reply| CommerceCmd::EndSale {
        sale_id: sale.id,
        reply,
    })
    .await?;
    Ok(Json(json!({ "id": sale.id, "status": "ended" })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    code: String,
    percent_off: Option<i64>,
    amount_off_cents: Option<i64>,
    max_uses: i64,
    expires_at: Option<i64>,
    #[serde(default)]
    first_order_only: bool,
    /// Tell viewers about the code as soon as it exists (default true).
    announce: Option<bool>,
}

pub async fn create_code(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<CodeBody>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let live = live_hosted(&state, &user, id).await?;
    let discount = Discount::from_parts(body.percent_off, body.amount_off_cents)?;
    if !(1..=1_000_000).contains(&body.max_uses) {
        return Err(AppError::unprocessable(
            "invalid_input",
            "max_uses: must be between 1 and 1000000",
        ));
    }
    let now = state.services.clock.now();
    if body.expires_at.is_some_and(|at| at <= now.0) {
        return Err(AppError::unprocessable(
            "invalid_input",
            "expires_at: must be in the future (ms since the epoch)",
        ));
    }
    let rule = CodeRule {
        id: CodeId(new_id()),
        code: normalize_code(&body.code)?,
        discount,
        max_uses: body.max_uses as u32,
        expires_at: body.expires_at.map(Timestamp),
        first_order_only: body.first_order_only,
    };
    let answer = json!({ "id": rule.id, "code": rule.code, "discount": rule.discount, "max_uses": rule.max_uses, "expires_at": rule.expires_at, "first_order_only": rule.first_order_only });
    let announce = body.announce.unwrap_or(true);
    live.ask(|reply| CommerceCmd::CreateCode {
        rule,
        announce,
        reply,
    })
    .await?;
    Ok((StatusCode::CREATED, Json(answer)))
}

/// The show's append-only commerce log: every stock, price, sale and code change, in order.
/// For its host: entries name buyers by account id.
/// `GET /shows/{id}/log`: the show's commerce log, oldest first, a page at a time (host).
pub async fn commerce_log(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Value>, AppError> {
    let request = q.request()?;
    let show = hosted_show(&state, &user, id).await?;
    Ok(Json(log_json(
        state.services.store.commerce_log(show.id, &request).await?,
    )))
}

/// `{"entries":[{seq, at, event}], "next"}` from a page of stored log lines.
pub fn log_json(page: Page<LogLine>) -> Value {
    let entries: Vec<Value> = page
        .items
        .into_iter()
        .map(|(seq, at, event)| json!({ "seq": seq, "at": at, "event": serde_json::from_str::<Value>(&event).unwrap_or(Value::Null) }))
        .collect();
    json!({ "entries": entries, "next": page.next })
}

/// `GET /api/v1/shows/{id}/live`: the live room's WebSocket.
pub async fn live_socket(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    MaybeUser(mut user): MaybeUser,
    ApiPath(id): ApiPath<i64>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, AppError> {
    // A signed-in socket can chat, bid and buy. Browsers send the session cookie with any
    // page's WebSocket to a site of the same registrable domain (`SameSite=Lax` stops only
    // other sites), so a cookie counts only from this server's own pages; from anywhere else
    // the socket opens as an anonymous viewer's.
    if user
        .as_ref()
        .is_some_and(|u| matches!(u.via, Via::Session { .. }))
        && !from_own_page(&headers)
    {
        tracing::debug!(origin = ?headers.get(header::ORIGIN), "a cookie from another page; watching only");
        user = None;
    }
    let seat = state.services.limits.socket(client)?;
    let show = find_show(&state, id).await?;
    let live = state.services.hub.live(&show).await?;
    let viewer = user.map(socket::Identity::new);
    // Small buffers: a viewer costs memory for every socket a show holds open, and client
    // messages are at most 4 KiB (tungstenite's defaults are 128 KiB each way). The write buffer
    // is a threshold, not an allocation: frames collect until a batch is flushed (or 64 KiB
    // wait), and the buffer only grows as large as what it held.
    Ok(ws
        .max_message_size(socket::MAX_CLIENT_MESSAGE)
        .read_buffer_size(socket::MAX_CLIENT_MESSAGE)
        .write_buffer_size(64 * 1024)
        .on_upgrade(move |socket| socket::serve(socket, live, state, viewer, client, seat)))
}

/// Whether the handshake's `Origin` (which browsers always send with a WebSocket) is this
/// server: the `Host` it was asked for, or the `X-Forwarded-Host` a reverse proxy that
/// rewrites `Host` passes on. Without an `Origin` the client is no browser page.
fn from_own_page(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Some((scheme, authority)) = origin.to_str().ok().and_then(|o| o.split_once("://")) else {
        return false;
    };
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        "443"
    } else {
        "80"
    };
    // `shop.example` and `SHOP.example:443` are one origin for an https page.
    let canonical = |authority: &str| {
        let authority = authority.trim().to_ascii_lowercase();
        let has_port = authority
            .rsplit_once(':')
            .is_some_and(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()));
        if has_port && !authority.ends_with(']') {
            authority
        } else {
            format!("{authority}:{default_port}")
        }
    };
    let origin = canonical(authority);
    [header::HOST.as_str(), "x-forwarded-host"]
        .into_iter()
        .filter_map(|name| headers.get(name)?.to_str().ok())
        .any(|host| canonical(host) == origin)
}

/// Moderators, admins and the show's host may moderate its chat.
async fn moderated_live(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
) -> Result<LiveShow, AppError> {
    let show = find_show(state, id).await?;
    if !(user.user.role.can_moderate() || user.user.id == show.seller_id) {
        return Err(AppError::forbidden(
            "only moderators and the host can moderate this chat",
        ));
    }
    Ok(state.services.hub.live(&show).await?)
}

pub async fn delete_chat(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath((id, message_id)): ApiPath<(i64, u64)>,
) -> Result<StatusCode, AppError> {
    let live = moderated_live(&state, &user, id).await?;
    let (reply, answer) = tokio::sync::oneshot::channel();
    let _ = live
        .room
        .send(RoomCmd::DeleteChat {
            id: message_id,
            reply,
        })
        .await;
    if answer.await.unwrap_or(false) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::not_found("chat message"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MuteBody {
    user_id: i64,
}

pub async fn mute(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<MuteBody>,
) -> Result<StatusCode, AppError> {
    let live = moderated_live(&state, &user, id).await?;
    if body.user_id == live.host.0 {
        return Err(AppError::unprocessable(
            "invalid_input",
            "the host cannot be muted",
        ));
    }
    let _ = live
        .room
        .send(RoomCmd::Mute {
            user: UserId(body.user_id),
        })
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(*name, value.parse().expect("header value"));
        }
        h
    }

    #[test]
    fn a_page_is_our_own_when_its_origin_is_the_host_asked_for() {
        let own = |pairs| from_own_page(&headers(pairs));
        assert!(own(&[
            ("origin", "http://127.0.0.1:8080"),
            ("host", "127.0.0.1:8080")
        ]));
        assert!(own(&[
            ("origin", "https://Shop.example"),
            ("host", "shop.example:443")
        ]));
        assert!(own(&[
            ("origin", "http://[::1]:8080"),
            ("host", "[::1]:8080")
        ]));
        // Behind a proxy that sets Host to the upstream and passes the original on.
        assert!(own(&[
            ("origin", "https://shop.example"),
            ("host", "127.0.0.1:8080"),
            ("x-forwarded-host", "shop.example")
        ]));
        assert!(
            own(&[("host", "shop.example")]),
            "no Origin: not a browser page"
        );
        assert!(!own(&[
            ("origin", "https://evil.shop.example"),
            ("host", "shop.example")
        ]));
        assert!(!own(&[
            ("origin", "http://shop.example"),
            ("host", "shop.example:8080")
        ]));
        assert!(!own(&[("origin", "null"), ("host", "shop.example")]));
    }
}
