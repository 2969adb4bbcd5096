//! Static assets, embedded in the binary so `hawker` runs from anywhere.
//!
//! Pages link them under a versioned path, `/static/v-<hash>/js/show.mjs`, so a module's relative
//! imports (`./api.mjs`) carry the same version and everything can be cached forever: a new build
//! has a new hash. Unversioned paths are served too, revalidated on every use.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::error::{ApiPath, AppError};

macro_rules! assets {
    ($($path:literal),* $(,)?) => {
        const ASSETS: &[(&str, &str)] = &[$(($path, include_str!(concat!("../../static/", $path)))),*];
    };
}

assets!(
    "app.css",
    "js/account.mjs",
    "js/api.mjs",
    "js/auction.mjs",
    "js/buy.mjs",
    "js/chat.mjs",
    "js/golive.mjs",
    "js/hearts.mjs",
    "js/host.mjs",
    "js/live.mjs",
    "js/prebid.mjs",
    "js/seller.mjs",
    "js/show.mjs",
    "js/toast.mjs",
    "js/video.mjs",
    "js/webrtc.mjs",
);

/// Changes whenever any asset changes (FNV-1a of their contents), for cache busting.
pub fn version() -> &'static str {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for (_, body) in ASSETS {
            for b in body.bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        format!("{:08x}", h as u32)
    })
}

pub async fn serve(ApiPath(path): ApiPath<String>) -> Result<Response, AppError> {
    let (versioned, path) = match path
        .strip_prefix("v-")
        .and_then(|rest| rest.split_once('/'))
    {
        Some((version, rest)) => (version == self::version(), rest.to_owned()),
        None => (false, path),
    };
    let cache = if versioned {
        "public, max-age=31536000, immutable"
    } else {
        "public, no-cache"
    };
    let (_, body) = ASSETS
        .iter()
        .find(|(p, _)| *p == path)
        .ok_or_else(|| AppError::not_found("asset"))?;
    let content_type = if path.ends_with(".css") {
        "text/css; charset=utf-8"
    } else {
        "text/javascript; charset=utf-8"
    };
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        *body,
    )
        .into_response())
}
