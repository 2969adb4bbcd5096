//! The JSON API under `/api/v1`, described by [`openapi`] at `/api/v1/openapi.json`.
//! Every handler returns `Result<_, AppError>`, so every refusal has the same shape.

use axum::Router;
use axum::routing::{delete, get, post};

use crate::app::AppState;

pub mod accounts;
pub mod auctions;
mod catalog;
pub mod openapi;
pub mod orders;
pub mod shows;
mod stream;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi::document))
        .route("/auth/signup", post(accounts::signup))
        .route("/auth/login", post(accounts::login))
        .route("/auth/logout", post(accounts::logout))
        .route("/me", get(accounts::me))
        .route(
            "/me/blocked-words",
            axum::routing::put(accounts::set_blocked_words),
        )
        .route("/me/tokens", post(accounts::new_token))
        .route("/me/shipping", axum::routing::put(accounts::set_shipping))
        .route(
            "/me/spending-limit",
            axum::routing::put(accounts::set_spend_limit),
        )
        .route("/products", post(catalog::create).get(catalog::mine))
        .route(
            "/products/{id}",
            get(catalog::show)
                .put(catalog::update)
                .delete(catalog::archive),
        )
        .route("/products/{id}/images", post(catalog::upload_image))
        .route("/products/{id}/log", get(catalog::log))
        .route("/shows", post(shows::create).get(shows::list))
        .route("/shows/{id}", get(shows::get_one))
        .route("/shows/{id}/cover", post(shows::upload_cover))
        .route("/shows/{id}/start", post(shows::start))
        .route("/shows/{id}/end", post(shows::end))
        .route("/shows/{id}/pin", post(shows::pin))
        .route("/shows/{id}/flash-sales", post(shows::start_sale))
        .route("/shows/{id}/codes", post(shows::create_code))
        .route("/shows/{id}/log", get(shows::commerce_log))
        .route("/shows/{id}/live", get(shows::live_socket))
        .route("/shows/{id}/chat/{message_id}", delete(shows::delete_chat))
        .route("/shows/{id}/mutes", post(shows::mute))
        .route("/shows/{id}/auctions", post(auctions::start))
        .route("/auctions/{id}", get(auctions::get_one))
        .route("/auctions/{id}/bids", post(auctions::bid))
        .route("/auctions/{id}/max-bid", post(auctions::max_bid))
        .route("/auctions/{id}/log", get(auctions::log))
        .route(
            "/auctions/{id}/second-chance",
            post(auctions::second_chance),
        )
        .route("/shows/{id}/pre-bids", post(auctions::pre_bid))
        .route("/flash-sales/{id}", get(shows::get_sale))
        .route("/flash-sales/{id}/end", post(shows::end_sale))
        .route("/orders", post(orders::buy).get(orders::mine))
        .route("/orders/{id}", get(orders::get_one))
        .route("/orders/{id}/ship", post(orders::ship))
        .route("/orders/{id}/refund", post(orders::refund))
        .route("/seller/orders", get(orders::for_seller))
        .route(
            "/payment-methods",
            get(orders::payment_methods).post(orders::save_payment_method),
        )
        .merge(stream::router())
}
