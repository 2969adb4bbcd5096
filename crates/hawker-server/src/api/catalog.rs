//! Products and their variants, and image uploads.

use axum::Json;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use hawker_core::catalog::{stock_level, text};
use hawker_core::ids::{ProductId, VariantId};
use hawker_core::money::{Currency, Price};
use serde::Deserialize;
use serde_json::{Value, json};

use super::PageQuery;
use crate::auth::CurrentUser;
use crate::error::{ApiJson, ApiPath, ApiQuery, AppError};
use crate::media;
use crate::state::AppState;
use crate::store::{Product, ProductEdit, VariantEdit};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantBody {
    id: Option<i64>,
    name: String,
    price_cents: i64,
    stock: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductBody {
    title: String,
    #[serde(default)]
    description: String,
    currency: String,
    variants: Vec<VariantBody>,
}

fn parse(body: ProductBody) -> Result<ProductEdit, AppError> {
    if body.variants.is_empty() || body.variants.len() > 100 {
        return Err(AppError::unprocessable(
            "invalid_input",
            "variants: give 1 to 100 variants",
        ));
    }
    let description = body.description.trim().to_owned();
    if description.chars().count() > 5_000 {
        return Err(AppError::unprocessable(
            "invalid_input",
            "description: at most 5000 characters",
        ));
    }
    let variants = body
        .variants
        .into_iter()
        .map(|v| {
            Ok(VariantEdit {
                id: v.id.map(VariantId),
                name: text("variants.name", &v.name, 80)?,
                price_cents: Price::new("variants.price_cents", v.price_cents)?.cents(),
                stock: i64::from(stock_level("variants.stock", v.stock)?),
            })
        })
        .collect::<Result<Vec<_>, AppError>>()?;
    Ok(ProductEdit {
        title: text("title", &body.title, 120)?,
        description,
        currency: Currency::parse(&body.currency)?,
        variants,
    })
}

fn require_seller(user: &CurrentUser) -> Result<(), AppError> {
    if user.user.role.can_sell() {
        Ok(())
    } else {
        Err(AppError::forbidden("only sellers can do this"))
    }
}

/// The product, if the user may change it.
pub async fn owned_product(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
) -> Result<Product, AppError> {
    let product = state
        .services
        .store
        .product(ProductId(id))
        .await?
        .ok_or_else(|| AppError::not_found("product"))?;
    if !user.user.acts_for(product.seller_id) {
        return Err(AppError::forbidden(
            "this product belongs to another seller",
        ));
    }
    Ok(product)
}

pub async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<ProductBody>,
) -> Result<(StatusCode, Json<Product>), AppError> {
    require_seller(&user)?;
    let edit = parse(body)?;
    if edit.variants.iter().any(|v| v.id.is_some()) {
        return Err(AppError::unprocessable(
            "invalid_input",
            "variants.id: new products have new variants",
        ));
    }
    Ok((
        StatusCode::CREATED,
        Json(
            state
                .services
                .store
                .create_product(user.user.id, &edit, state.services.clock.now())
                .await?,
        ),
    ))
}

/// `GET /products`: the seller's products, the active ones first, newest first, a page at a
/// time.
pub async fn mine(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Value>, AppError> {
    let page = state
        .services
        .store
        .products_by_seller(user.user.id, true, &q.request()?)
        .await?;
    Ok(Json(json!({ "products": page.items, "next": page.next })))
}

pub async fn show(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Product>, AppError> {
    let product = state
        .services
        .store
        .product(ProductId(id))
        .await?
        .ok_or_else(|| AppError::not_found("product"))?;
    Ok(Json(product))
}

/// Edits a product. Refused while it is in a live show: the show's owner holds its stock.
pub async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<ProductBody>,
) -> Result<Json<Product>, AppError> {
    let product = owned_product(&state, &user, id).await?;
    let edit = parse(body)?;
    if let Some(show) = state
        .services
        .store
        .live_show_sharing_products(&[product.id], hawker_core::ids::ShowId(0))
        .await?
    {
        return Err(AppError::conflict(
            "product_live",
            format!("this product is in live show {show}; edit it after the show"),
        ));
    }
    Ok(Json(
        state
            .services
            .store
            .update_product(product.id, &edit, state.services.clock.now())
            .await?,
    ))
}

pub async fn archive(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<StatusCode, AppError> {
    let product = owned_product(&state, &user, id).await?;
    if let Some(show) = state
        .services
        .store
        .live_show_sharing_products(&[product.id], hawker_core::ids::ShowId(0))
        .await?
    {
        return Err(AppError::conflict(
            "product_live",
            format!("this product is in live show {show}"),
        ));
    }
    state
        .services
        .store
        .archive_product(product.id, state.services.clock.now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The product's catalog edits (price, stock, variants, archiving), oldest first, a page at a
/// time, for its seller.
pub async fn log(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Value>, AppError> {
    let request = q.request()?;
    let product = owned_product(&state, &user, id).await?;
    Ok(Json(super::shows::log_json(
        state
            .services
            .store
            .product_log(product.id, &request)
            .await?,
    )))
}

/// `multipart/form-data` with one `image` field: PNG, JPEG, WebP or GIF.
pub async fn upload_image(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    multipart: Multipart,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let product = owned_product(&state, &user, id).await?;
    let url = media::save_upload(&state, user.user.id, multipart).await?;
    state
        .services
        .store
        .add_product_image(product.id, &url)
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "url": url }))))
}
