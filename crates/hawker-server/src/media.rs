//! Uploaded images: checked by their bytes (not their name), stored under their SHA-256, and
//! served forever-cacheable because a name never changes its content.

use axum::extract::{Multipart, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hawker_core::ids::UserId;
use hawker_core::image::sniff;
use sha2::{Digest, Sha256};

use crate::error::{ApiPath, AppError};
use crate::state::AppState;

/// Reads the `image` field `uploader` sent, checks it, stores it; returns its URL. Each account
/// may upload only so many an hour (`uploads_per_account_per_hour`), so no one fills the disk.
pub async fn save_upload(
    state: &AppState,
    uploader: UserId,
    mut multipart: Multipart,
) -> Result<String, AppError> {
    state.services.limits.upload(uploader)?;
    let too_large = || {
        AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "images must be under {} bytes",
                state.services.config.max_upload_bytes
            ),
        )
    };
    while let Some(field) = multipart.next_field().await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            AppError::bad_request("bad_upload", e.body_text())
        }
    })? {
        if field.name() != Some("image") {
            continue;
        }
        let bytes = field.bytes().await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                AppError::bad_request("bad_upload", e.body_text())
            }
        })?;
        if bytes.len() > state.services.config.max_upload_bytes {
            return Err(too_large());
        }
        let ext = sniff(&bytes).ok_or_else(|| {
            AppError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "not_an_image",
                "upload a PNG, JPEG, WebP or GIF image",
            )
        })?;
        let name = format!("{}.{ext}", hex::encode(Sha256::digest(&bytes)));
        let dir = state.services.config.uploads_dir();
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(anyhow::Error::from)?;
        tokio::fs::write(dir.join(&name), &bytes)
            .await
            .map_err(anyhow::Error::from)?;
        return Ok(format!("/media/{name}"));
    }
    Err(AppError::unprocessable(
        "invalid_input",
        "image: send the file in a multipart field named \"image\"",
    ))
}

/// `GET /media/{name}`.
pub async fn serve(
    State(state): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> Result<Response, AppError> {
    let Some((stem, ext)) = name.split_once('.') else {
        return Err(AppError::not_found("image"));
    };
    if stem.len() != 64 || !stem.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AppError::not_found("image"));
    }
    let content_type = match ext {
        "png" => "image/png",
        "jpg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        _ => return Err(AppError::not_found("image")),
    };
    let bytes = tokio::fs::read(state.services.config.uploads_dir().join(&name))
        .await
        .map_err(|_| AppError::not_found("image"))?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
            (
                header::ETAG,
                HeaderValue::from_str(&format!("\"{stem}\""))
                    .unwrap_or(HeaderValue::from_static("\"\"")),
            ),
        ],
        bytes,
    )
        .into_response())
}
