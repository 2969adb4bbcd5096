//! The JSON API under `/api/v1`, described by [`openapi`] at `/api/v1/openapi.json`.
//! Every handler returns `Result<_, AppError>`, so every refusal has the same shape. Every
//! list that grows with use comes a page at a time ([`PageQuery`]): its list under its key and
//! `next`, the cursor to pass as `after` for the page after it (`null` after the last).

use axum::Router;
use axum::routing::{any, delete, get, post};
use serde::Deserialize;

use crate::error::AppError;
use crate::state::AppState;
use crate::store::PageRequest;

pub mod accounts;
pub mod auctions;
mod catalog;
pub mod live_schema;
pub mod openapi;
pub mod orders;
pub mod shows;
mod stream;

/// Where the API is served. Its routes carry the prefix rather than being nested under it: a
/// nested router rewrites every request's URI to strip the prefix, about 6,000 instructions a
/// request (`bench/callgrind/count.py`).
const PREFIX: &str = "/api/v1";

/// An API path: `at("/orders")` is `/api/v1/orders`.
fn at(path: &str) -> String {
    format!("{PREFIX}{path}")
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route(&at("/openapi.json"), get(openapi::document))
        .route(&at("/live/client.schema.json"), get(live_schema::client))
        .route(&at("/live/server.schema.json"), get(live_schema::server))
        .route(&at("/auth/signup"), post(accounts::signup))
        .route(&at("/auth/login"), post(accounts::login))
        .route(&at("/auth/logout"), post(accounts::logout))
        .route(&at("/me"), get(accounts::me))
        .route(
            &at("/me/blocked-words"),
            axum::routing::put(accounts::set_blocked_words),
        )
        .route(&at("/me/tokens"), post(accounts::new_token))
        .route(
            &at("/me/shipping"),
            axum::routing::put(accounts::set_shipping),
        )
        .route(
            &at("/me/spending-limit"),
            axum::routing::put(accounts::set_spend_limit),
        )
        .route(&at("/products"), post(catalog::create).get(catalog::mine))
        .route(
            &at("/products/{id}"),
            get(catalog::show)
                .put(catalog::update)
                .delete(catalog::archive),
        )
        .route(&at("/products/{id}/images"), post(catalog::upload_image))
        .route(&at("/products/{id}/log"), get(catalog::log))
        .route(&at("/shows"), post(shows::create).get(shows::list))
        .route(&at("/shows/{id}"), get(shows::get_one))
        .route(&at("/shows/{id}/cover"), post(shows::upload_cover))
        .route(&at("/shows/{id}/start"), post(shows::start))
        .route(&at("/shows/{id}/stream-key"), post(shows::new_key))
        .route(&at("/shows/{id}/end"), post(shows::end))
        .route(&at("/shows/{id}/pin"), post(shows::pin))
        .route(&at("/shows/{id}/flash-sales"), post(shows::start_sale))
        .route(&at("/shows/{id}/codes"), post(shows::create_code))
        .route(&at("/shows/{id}/log"), get(shows::commerce_log))
        .route(&at("/shows/{id}/live"), get(shows::live_socket))
        .route(
            &at("/shows/{id}/chat/{message_id}"),
            delete(shows::delete_chat),
        )
        .route(&at("/shows/{id}/mutes"), post(shows::mute))
        .route(&at("/shows/{id}/auctions"), post(auctions::start))
        .route(&at("/auctions/{id}"), get(auctions::get_one))
        .route(&at("/auctions/{id}/bids"), post(auctions::bid))
        .route(&at("/auctions/{id}/max-bid"), post(auctions::max_bid))
        .route(&at("/auctions/{id}/log"), get(auctions::log))
        .route(
            &at("/auctions/{id}/second-chance"),
            post(auctions::second_chance),
        )
        .route(&at("/shows/{id}/pre-bids"), post(auctions::pre_bid))
        .route(&at("/flash-sales/{id}"), get(shows::get_sale))
        .route(&at("/flash-sales/{id}/end"), post(shows::end_sale))
        .route(&at("/orders"), post(orders::buy).get(orders::mine))
        .route(&at("/orders/{id}"), get(orders::get_one))
        .route(&at("/orders/{id}/ship"), post(orders::ship))
        .route(&at("/orders/{id}/refund"), post(orders::refund))
        .route(&at("/seller/orders"), get(orders::for_seller))
        .route(
            &at("/payment-methods"),
            get(orders::payment_methods).post(orders::save_payment_method),
        )
        .merge(stream::router())
}

/// `?limit=&after=`: which page of a list to answer (see [`PageRequest::parse`]). Lists with
/// filters of their own take the same two fields in their own query.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub limit: Option<u32>,
    pub after: Option<String>,
}

impl PageQuery {
    pub fn request(&self) -> Result<PageRequest, AppError> {
        Ok(PageRequest::parse(self.limit, self.after.as_deref())?)
    }
}

/// An unknown path under the API answers in the API's shape, not with the HTML 404 page.
pub fn fallback() -> Router<AppState> {
    let not_found = any(|| async { AppError::not_found("API route") });
    Router::new()
        .route(PREFIX, not_found.clone())
        .route(&at("/"), not_found.clone())
        .route(&at("/{*rest}"), not_found)
}
