//! WebRTC signalling: WHIP (RFC 9725) brings the host's camera in, WHEP sends it to viewers.
//!
//! One POST with an SDP offer answers `201 Created` with the SDP answer and a `Location` to
//! DELETE when done. A publisher is the holder of the show's stream key (OBS), or the host signed
//! in on this site's console (session cookie and its CSRF token). There is no trickle ICE: the media plane is ICE-lite and puts its one
//! candidate in the answer. Browser tools on other origins publish and play, so these routes
//! answer CORS preflights and allow any origin, without credentials: a cookie reaches
//! them only from our own pages.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hawker_core::ids::ShowId;
use hawker_media::{MediaError, Role, SessionId};

use super::at;
use super::shows::find_show;
use crate::auth;
use crate::error::{ApiPath, AppError};
use crate::limits::ClientIp;
use crate::state::AppState;
use crate::store::{Show, ShowStatus};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(&at("/shows/{id}/whip"), post(publish).options(preflight))
        .route(
            &at("/shows/{id}/whip/{session}"),
            axum::routing::delete(stop_publishing)
                .patch(no_trickle)
                .options(preflight),
        )
        .route(&at("/shows/{id}/whep"), post(play).options(preflight))
        .route(
            &at("/shows/{id}/whep/{session}"),
            axum::routing::delete(stop_playing)
                .patch(no_trickle)
                .options(preflight),
        )
        // An SDP offer is a few kilobytes; anonymous viewers must not make us parse megabytes.
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::map_response(allow_any_origin))
}

/// WHIP: the host (console or OBS) offers; `Authorization: Bearer <stream key>`.
async fn publish(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let show = find_show(&state, id).await?;
    check_publisher(&state, &show, &headers).await?;
    if show.status == ShowStatus::Ended {
        return Err(AppError::conflict(
            "show_ended",
            "this show has ended; schedule a new one to go live",
        ));
    }
    let offer = sdp_offer(&headers, body)?;
    // The show goes live when media arrives; say now if it could not, rather than stream to
    // nobody.
    if show.status == ShowStatus::Scheduled
        && let Some(other) = state
            .services
            .store
            .live_show_sharing_products(&show.product_ids, show.id)
            .await?
    {
        return Err(AppError::conflict(
            "product_live_elsewhere",
            format!("a product of this lineup is live in show {other}; end that show first"),
        ));
    }
    let (session, answer) = state
        .services
        .media
        .publish(show.id, offer)
        .await
        .map_err(refused)?;
    Ok(created(show.id, "whip", session, answer))
}

/// WHEP: a viewer offers to receive; anyone may watch a live show, within the limits of one
/// client address.
async fn play(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    ApiPath(id): ApiPath<i64>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    state.services.limits.media_offer(client)?;
    let show = find_show(&state, id).await?;
    let offer = sdp_offer(&headers, body)?;
    if show.status != ShowStatus::Live {
        return Err(AppError::conflict("show_not_live", "this show is not live"));
    }
    let (session, answer) = state
        .services
        .media
        .play(show.id, client, offer)
        .await
        .map_err(refused)?;
    Ok(created(show.id, "whep", session, answer))
}

async fn stop_publishing(
    State(state): State<AppState>,
    ApiPath((id, session)): ApiPath<(i64, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, AppError> {
    let show = find_show(&state, id).await?;
    check_publisher(&state, &show, &headers).await?;
    stop(&state, show.id, &session, Role::Publisher).await
}

/// The session's URL is its capability: it is random and only its viewer was told it.
async fn stop_playing(
    State(state): State<AppState>,
    ApiPath((id, session)): ApiPath<(i64, String)>,
) -> Result<StatusCode, AppError> {
    stop(&state, ShowId(id), &session, Role::Viewer).await
}

async fn stop(
    state: &AppState,
    show: ShowId,
    session: &str,
    role: Role,
) -> Result<StatusCode, AppError> {
    let session: SessionId = session
        .parse()
        .map_err(|_| AppError::not_found("media session"))?;
    state
        .services
        .media
        .stop(show, session, role)
        .await
        .map_err(refused)?;
    Ok(StatusCode::NO_CONTENT)
}

/// RFC 9725: a server without trickle ICE answers PATCH with 405.
async fn no_trickle() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, "DELETE, OPTIONS")],
        axum::Json(serde_json::json!({ "error": {
            "code": "no_trickle_ice",
            "message": "this server does not take trickled candidates; its answer has its candidate"
        }})),
    )
        .into_response()
}

async fn preflight() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (
                header::ACCESS_CONTROL_ALLOW_METHODS,
                "POST, DELETE, PATCH, OPTIONS",
            ),
            (
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                "Authorization, Content-Type, If-Match",
            ),
            (header::ACCESS_CONTROL_MAX_AGE, "86400"),
        ],
    )
        .into_response()
}

async fn allow_any_origin(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location, Link, ETag"),
    );
    response
}

fn created(show: ShowId, kind: &str, session: SessionId, answer: String) -> Response {
    let location = format!("/api/v1/shows/{show}/{kind}/{session}");
    (
        StatusCode::CREATED,
        [
            (header::CONTENT_TYPE, "application/sdp".to_owned()),
            (header::LOCATION, location),
        ],
        answer,
    )
        .into_response()
}

fn sdp_offer(headers: &HeaderMap, body: Bytes) -> Result<String, AppError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/sdp")
    {
        return Err(AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the SDP offer as Content-Type: application/sdp",
        ));
    }
    String::from_utf8(body.to_vec())
        .map_err(|_| AppError::bad_request("bad_sdp", "the SDP offer is not UTF-8 text"))
}

/// The show's stream key as `Authorization: Bearer <key>` (compared by its hash, which is all
/// the store keeps), or else the host's own session with its CSRF token.
async fn check_publisher(
    state: &AppState,
    show: &Show,
    headers: &HeaderMap,
) -> Result<(), AppError> {
    let refused = || {
        AppError::new(
            StatusCode::UNAUTHORIZED,
            "bad_stream_key",
            "send the show's stream key as Authorization: Bearer <stream key>",
        )
    };
    let Some(sent) = headers.get(header::AUTHORIZATION) else {
        let host = auth::cookie_session(state.services.store.as_ref(), headers).await?;
        return match host {
            Some(host)
                if host.user.acts_for(show.seller_id) && auth::csrf_echoed(&host, headers) =>
            {
                Ok(())
            }
            _ => Err(refused()),
        };
    };
    let key = sent
        .to_str()
        .ok()
        .and_then(|v| {
            // The scheme name is case-insensitive (RFC 9110).
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(token)
        })
        .unwrap_or_default();
    let hash = crate::secrets::token_hash(key.trim());
    if !crate::secrets::same_secret(hash.as_bytes(), show.stream_key_hash.as_bytes()) {
        return Err(refused());
    }
    Ok(())
}

fn refused(e: MediaError) -> AppError {
    let message = e.to_string();
    match e {
        MediaError::BadOffer(_) => AppError::bad_request("bad_sdp", message),
        MediaError::UnsupportedCodec(_) => AppError::bad_request("unsupported_codec", message),
        MediaError::AlreadyPublishing => AppError::conflict("already_publishing", message),
        MediaError::NotOnAir => AppError::conflict("not_on_air", message),
        MediaError::ShowFull => {
            AppError::new(StatusCode::SERVICE_UNAVAILABLE, "show_full", message)
        }
        MediaError::ServerFull => {
            AppError::new(StatusCode::SERVICE_UNAVAILABLE, "server_full", message)
        }
        MediaError::TooManyFromClient => AppError::Later {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "too_many_sessions",
            message,
            // Offers still connecting expire in a few seconds.
            retry_after_s: 6,
        },
        MediaError::UnknownSession => AppError::not_found("media session"),
        MediaError::Stopped | MediaError::Busy => AppError::unavailable(message),
    }
}
