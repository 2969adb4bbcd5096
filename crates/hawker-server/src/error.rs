//! HTTP errors. Handlers return [`AppError`]; its status and `code` are what the client sees as
//! `{"error":{"code","message"}}`. Internal causes are logged with a request id and never sent.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hawker_core::InvalidInput;

use crate::store::StoreError;

#[derive(Debug)]
pub enum AppError {
    /// An expected refusal: the status, a stable machine-readable code and a readable message.
    Refused {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    /// Refused for now (429 or 503): the client may try again after `retry_after_s`.
    Later {
        status: StatusCode,
        code: &'static str,
        message: String,
        retry_after_s: u64,
    },
    /// Something broke on our side; logged, answered with a bare 500 and a request id.
    Internal(anyhow::Error),
}

impl AppError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self::Refused {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "log in or send a valid Bearer token",
        )
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// 429: this client or account asked too often.
    pub fn rate_limited(retry_after_s: u64) -> Self {
        Self::Later {
            status: StatusCode::TOO_MANY_REQUESTS,
            code: "rate_limited",
            message: format!("too many attempts; try again in {retry_after_s} s"),
            retry_after_s,
        }
    }

    /// 503: the server is doing as much of this as it can right now.
    pub fn busy(message: impl Into<String>) -> Self {
        Self::Later {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "busy",
            message: message.into(),
            retry_after_s: 1,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Refused { status, .. } | Self::Later { status, .. } => *status,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The code and message to show; logs internal causes under a fresh request id.
    pub fn public_parts(&self) -> (&'static str, String) {
        match self {
            Self::Refused { code, message, .. } | Self::Later { code, message, .. } => {
                (code, message.clone())
            }
            Self::Internal(cause) => {
                let request_id = crate::auth::random_token(6);
                tracing::error!(request_id, "internal error: {cause:#}");
                (
                    "internal",
                    format!("something went wrong on our side (request id {request_id})"),
                )
            }
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (code, message) = self.public_parts();
        // Typed, not a `serde_json::Value`: a herd's refusals are most of its answers.
        #[derive(serde::Serialize)]
        struct Body<'a> {
            error: Detail<'a>,
        }
        #[derive(serde::Serialize)]
        struct Detail<'a> {
            code: &'a str,
            message: &'a str,
        }
        let body = Body {
            error: Detail {
                code,
                message: &message,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Self::Later { retry_after_s, .. } = self {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, retry_after_s.into());
        }
        response
    }
}

impl From<InvalidInput> for AppError {
    fn from(e: InvalidInput) -> Self {
        Self::unprocessable("invalid_input", e.to_string())
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => Self::conflict("conflict", what),
            StoreError::NotFound => Self::not_found("record"),
            StoreError::Backend(cause) => Self::Internal(cause),
        }
    }
}

impl From<crate::live::LiveError> for AppError {
    fn from(e: crate::live::LiveError) -> Self {
        match e {
            crate::live::LiveError::NotLive => {
                Self::conflict("show_not_live", "this show is not live")
            }
            crate::live::LiveError::Store(e) => e.into(),
        }
    }
}

impl From<anyhow::Error> for AppError {
    fn from(e: anyhow::Error) -> Self {
        Self::Internal(e)
    }
}

impl From<JsonRejection> for AppError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(e) => {
                Self::unprocessable("invalid_input", clip(e.body_text()))
            }
            JsonRejection::JsonSyntaxError(e) => {
                Self::bad_request("malformed_json", clip(e.body_text()))
            }
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send Content-Type: application/json",
            ),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is too large",
            ),
            other => Self::bad_request("bad_request", clip(other.body_text())),
        }
    }
}

/// At most this much of a client's input goes back in an error message.
const QUOTED_MAX: usize = 40;

/// A client's input as an error message may quote it: in quotes, at most [`QUOTED_MAX`]
/// characters, so a 4 MB field is not echoed back.
pub fn quote(input: &str) -> String {
    let mut quoted: String = input.chars().take(QUOTED_MAX).collect();
    if quoted.len() < input.len() {
        quoted.push('…');
    }
    format!("{quoted:?}")
}

/// A parser's message, which may quote the input, cut to a few lines' length.
fn clip(message: String) -> String {
    const MAX: usize = 200;
    if message.chars().count() <= MAX {
        return message;
    }
    message.chars().take(MAX).chain(['…']).collect()
}

impl From<PathRejection> for AppError {
    fn from(r: PathRejection) -> Self {
        Self::not_found(&format!("path ({})", r.body_text()))
    }
}

impl From<QueryRejection> for AppError {
    fn from(r: QueryRejection) -> Self {
        Self::bad_request("bad_query", r.body_text())
    }
}

/// `axum::Json` whose rejections are [`AppError`]s, so malformed bodies get our error shape.
#[derive(axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct ApiJson<T>(pub T);

/// `axum::extract::Path` with our error shape.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct ApiPath<T>(pub T);

/// `axum::extract::Query` with our error shape.
#[derive(axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct ApiQuery<T>(pub T);
