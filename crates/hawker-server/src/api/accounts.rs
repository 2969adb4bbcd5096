//! Sign-up, log-in, tokens.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{self, CurrentUser};
use crate::error::{ApiJson, AppError};
use crate::limits::ClientIp;
use crate::service::accounts::{authenticate, create_account, issue_token};
use crate::state::AppState;
use crate::store::TokenKind;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signup {
    email: String,
    password: String,
    display_name: String,
    role: String,
}

/// Creates an account and returns an API token for it.
pub async fn signup(
    State(state): State<AppState>,
    client: ClientIp,
    ApiJson(body): ApiJson<Signup>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let user = create_account(
        &state.services,
        client,
        &body.email,
        &body.password,
        &body.display_name,
        &body.role,
    )
    .await?;
    let token = issue_token(&state.services, &user, TokenKind::Api).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "user": user, "token": token })),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    email: String,
    password: String,
}

pub async fn login(
    State(state): State<AppState>,
    client: ClientIp,
    ApiJson(body): ApiJson<Login>,
) -> Result<Json<Value>, AppError> {
    let user = authenticate(&state.services, client, &body.email, &body.password).await?;
    let token = issue_token(&state.services, &user, TokenKind::Api).await?;
    Ok(Json(json!({ "token": token, "user": user })))
}

/// Revokes the token or session used for this request.
pub async fn logout(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Response, AppError> {
    state.services.store.delete_token(user.token_hash()).await?;
    Ok((
        [(header::SET_COOKIE, auth::clear_session_cookie())],
        StatusCode::NO_CONTENT,
    )
        .into_response())
}

pub async fn me(user: CurrentUser) -> Json<Value> {
    Json(json!({ "user": user.user }))
}

/// A new API token for scripts, for a signed-in user.
pub async fn new_token(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let token = issue_token(&state.services, &user.user, TokenKind::Api).await?;
    Ok((StatusCode::CREATED, Json(json!({ "token": token }))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockedWords {
    words: Vec<String>,
}

/// The seller's chat filter, applied at once to their live shows.
pub async fn set_blocked_words(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<BlockedWords>,
) -> Result<Json<Value>, AppError> {
    if !user.user.role.can_sell() {
        return Err(AppError::forbidden(
            "only sellers have a blocked-words list",
        ));
    }
    if body.words.len() > 500
        || body
            .words
            .iter()
            .any(|w| w.chars().count() > 64 || w.contains('\n'))
    {
        return Err(AppError::unprocessable(
            "invalid_input",
            "words: at most 500 words of at most 64 characters",
        ));
    }
    let words: Vec<String> = body
        .words
        .iter()
        .map(|w| w.trim().to_lowercase())
        .filter(|w| !w.is_empty())
        .collect();
    state
        .services
        .store
        .set_blocked_words(user.user.id, &words)
        .await?;
    let live = crate::store::ShowFilter {
        status: Some(crate::store::ShowStatus::Live),
        seller: Some(user.user.id),
        ..Default::default()
    };
    let store = &state.services.store;
    let shows = crate::store::every(|page| {
        let live = &live;
        async move { store.shows(live, &page).await }
    })
    .await?;
    for show in shows {
        if let Some(live) = state.services.hub.get(show.id) {
            let _ = live
                .room
                .send(crate::live::RoomCmd::SetBlockedWords(words.clone()))
                .await;
        }
    }
    Ok(Json(json!({ "words": words })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shipping {
    fee_cents: i64,
}

/// The seller's shipping fee: charged once per buyer per show, on their first order of the show;
/// everything else they get in that show ships in the same parcel. Applies to shows that go live
/// after the change.
pub async fn set_shipping(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<Shipping>,
) -> Result<Json<Value>, AppError> {
    if !user.user.role.can_sell() {
        return Err(AppError::forbidden("only sellers ship"));
    }
    if !(0..=hawker_core::money::Price::MAX_CENTS).contains(&body.fee_cents) {
        return Err(AppError::unprocessable(
            "invalid_input",
            "fee_cents: 0 or a positive number of cents",
        ));
    }
    state
        .services
        .store
        .set_shipping_fee(user.user.id, body.fee_cents)
        .await?;
    Ok(Json(json!({ "fee_cents": body.fee_cents })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpendLimit {
    daily_limit_cents: Option<i64>,
}

/// A buyer's own cap on 24 hours of orders, checked whenever they bid; `null` removes it.
pub async fn set_spend_limit(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<SpendLimit>,
) -> Result<Json<Value>, AppError> {
    if body
        .daily_limit_cents
        .is_some_and(|l| !(1..=hawker_core::money::Price::MAX_CENTS * 100).contains(&l))
    {
        return Err(AppError::unprocessable(
            "invalid_input",
            "daily_limit_cents: a positive number of cents, or null",
        ));
    }
    state
        .services
        .store
        .set_spend_limit(user.user.id, body.daily_limit_cents)
        .await?;
    Ok(Json(json!({ "daily_limit_cents": body.daily_limit_cents })))
}
