//! HTTP errors. Handlers return [`AppError`]; its status and `code` are what the client sees as
//! `{"error":{"code","message"}}`. Internal causes are logged with a request id and never sent.
//!
//! The one place where the lower layers' refusals ([`ServiceError`], the show owner's
//! [`Refusal`], the store's and the limits') become HTTP statuses and codes.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hawker_core::InvalidInput;
use hawker_core::auction::Rejection;
use hawker_core::commerce::{BuyRejected, SaleRejected};
use hawker_core::discount::CodeRejected;

use crate::limits::TooOften;
use crate::live::{LiveError, Refusal};
use crate::passwords::PasswordError;
use crate::service::ServiceError;
use crate::store::{BadPage, StoreError};

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
                let request_id = crate::secrets::random_token(6);
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
            StoreError::BadCursor => BadPage::Cursor.into(),
            StoreError::Backend(cause) => Self::Internal(cause),
        }
    }
}

impl From<BadPage> for AppError {
    fn from(e: BadPage) -> Self {
        let code = match e {
            BadPage::Limit => "bad_query",
            BadPage::Cursor => "bad_cursor",
        };
        Self::bad_request(code, e.to_string())
    }
}

impl From<LiveError> for AppError {
    fn from(e: LiveError) -> Self {
        match e {
            LiveError::NotLive => Self::conflict("show_not_live", "this show is not live"),
            LiveError::Store(e) => e.into(),
        }
    }
}

impl From<TooOften> for AppError {
    fn from(e: TooOften) -> Self {
        match e {
            TooOften::Attempts { retry_after_s } => Self::rate_limited(retry_after_s),
            TooOften::Sockets => Self::Later {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: "too_many_sockets",
                message: "too many live connections from this address; close a tab".into(),
                retry_after_s: 5,
            },
        }
    }
}

impl From<PasswordError> for AppError {
    fn from(e: PasswordError) -> Self {
        match e {
            PasswordError::Busy => Self::busy(e.to_string()),
            PasswordError::Failed(cause) => Self::Internal(cause),
        }
    }
}

/// 409 `duplicate`: another request holds the key (the buy sheet waits and retries on it).
fn key_in_use() -> AppError {
    AppError::conflict(
        "duplicate",
        "another request with this Idempotency-Key is under way; retry once it is answered",
    )
}

fn sale_ended() -> AppError {
    AppError::conflict("sale_ended", "this flash sale has ended")
}

fn unknown_item(message: &str) -> AppError {
    AppError::unprocessable("unknown_item", message)
}

/// The show owner's refusals.
impl From<Refusal> for AppError {
    fn from(r: Refusal) -> Self {
        use SaleRejected as S;
        match r {
            Refusal::Buy(BuyRejected::SoldOut) => Self::conflict("sold_out", "sold out"),
            Refusal::Buy(BuyRejected::SaleEnded) => sale_ended(),
            Refusal::Buy(BuyRejected::UnknownItem) => {
                unknown_item("this item is not for sale in this show")
            }
            Refusal::Buy(e @ BuyRejected::OverLimit { .. }) => {
                Self::conflict("per_buyer_limit", e.to_string())
            }
            Refusal::Buy(BuyRejected::Code(c)) => {
                let code = match c {
                    CodeRejected::Unknown => "code_unknown",
                    CodeRejected::Expired => "code_expired",
                    CodeRejected::Exhausted => "code_exhausted",
                    CodeRejected::NotFirstOrder => "code_first_order_only",
                };
                Self::unprocessable(code, c.to_string())
            }
            Refusal::Sale(
                e @ (S::UnknownVariant
                | S::PriceAboveList
                | S::EmptySale
                | S::ZeroLimit
                | S::BadDuration),
            ) => Self::unprocessable("invalid_sale", e.to_string()),
            Refusal::Sale(e @ S::NotEnoughStock { .. }) => {
                Self::conflict("not_enough_stock", e.to_string())
            }
            Refusal::Sale(e @ S::AlreadyRunning) => Self::conflict("sale_running", e.to_string()),
            Refusal::Sale(S::UnknownSale) => {
                Self::conflict("sale_ended", "this flash sale is not running")
            }
            Refusal::DuplicateCode(e) => Self::conflict("code_exists", e.to_string()),
            Refusal::NotReserved(e) => Self::conflict("not_reserved", e.to_string()),
            Refusal::NotInLineup => Self::unprocessable(
                "unknown_product",
                "this product is not in the show's lineup",
            ),
            Refusal::ShowEnded => Self::conflict("show_not_live", "this show has ended"),
            Refusal::Duplicate(_) => key_in_use(),
            Refusal::UnknownAuction => Self::not_found("auction"),
            Refusal::NoSecondChance => {
                Self::conflict("no_second_chance", "the winner paid, or nobody else bid")
            }
            Refusal::AuctionRunning => Self::conflict(
                "auction_running",
                "another auction is running in this show; wait for it to end",
            ),
            Refusal::NotSaved => Self::conflict(
                "not_saved",
                "this request conflicts with what is stored, so it was not saved; nothing was charged",
            ),
            Refusal::Unavailable => {
                Self::unavailable("could not save your order; nothing was charged, try again")
            }
            Refusal::Stopped => Self::unavailable("the show's owner stopped; try again"),
        }
    }
}

impl From<ServiceError> for AppError {
    fn from(e: ServiceError) -> Self {
        match e {
            // Causes are kept whole for the log; everything else maps as a reference does.
            ServiceError::Internal(cause)
            | ServiceError::Store(StoreError::Backend(cause))
            | ServiceError::Live(LiveError::Store(StoreError::Backend(cause)))
            | ServiceError::Password(PasswordError::Failed(cause)) => Self::Internal(cause),
            other => Self::from(&other),
        }
    }
}

/// By reference: a payment's outcome is shared by every buy that waited for it
/// ([`ServiceError::Shared`]), and each is told the same.
impl From<&ServiceError> for AppError {
    fn from(e: &ServiceError) -> Self {
        use ServiceError as E;
        let internal = |cause: &anyhow::Error| Self::Internal(anyhow::anyhow!("{cause:#}"));
        match e {
            E::Invalid(e) => e.clone().into(),
            E::NotFound(what) => Self::not_found(what),
            E::Refused(r) => r.clone().into(),
            E::Live(LiveError::NotLive) => LiveError::NotLive.into(),
            E::Live(LiveError::Store(e)) | E::Store(e) => match e {
                StoreError::Conflict(what) => StoreError::Conflict(what.clone()).into(),
                StoreError::NotFound => StoreError::NotFound.into(),
                StoreError::BadCursor => StoreError::BadCursor.into(),
                StoreError::Backend(cause) => internal(cause),
            },
            E::TooOften(e) => (*e).into(),
            E::Password(PasswordError::Busy) => PasswordError::Busy.into(),
            E::Password(PasswordError::Failed(cause)) | E::Internal(cause) => internal(cause),
            E::SelfServiceRole | E::TwoItems | E::NoItem => {
                Self::unprocessable("invalid_input", e.to_string())
            }
            E::EmailTaken(m) => Self::conflict("email_taken", m.clone()),
            E::WrongCredentials => Self::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                e.to_string(),
            ),
            E::ShowOver => Self::conflict("show_ended", e.to_string()),
            E::ProductLiveElsewhere(_) => Self::conflict("product_live_elsewhere", e.to_string()),
            E::UnknownPaymentMethod(method) => Self::unprocessable(
                "unknown_payment_method",
                format!(
                    "{} is not a payment method this shop accepts",
                    quote(method)
                ),
            ),
            E::KeyReused => Self::unprocessable(
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different order; use a new key for a new order",
            ),
            E::KeyInUse => key_in_use(),
            E::SaleEnded => sale_ended(),
            E::SaleOfAnotherShow | E::NoSuchSale => unknown_item(&e.to_string()),
            E::Declined => Self::new(
                StatusCode::PAYMENT_REQUIRED,
                "payment_declined",
                "your payment was declined; nothing was charged",
            ),
            E::Expired => Self::conflict("reservation_expired", e.to_string()),
            E::Pending => Self::new(
                StatusCode::ACCEPTED,
                "pending",
                "payment is still being processed; retry with the same Idempotency-Key",
            ),
            E::ProviderUnavailable => Self::new(
                StatusCode::BAD_GATEWAY,
                "payment_unavailable",
                "the payment provider did not answer; retry with the same Idempotency-Key",
            ),
            E::Interrupted => Self::unavailable(
                "the payment was interrupted; retry with the same Idempotency-Key",
            ),
            E::Shared(shared) => Self::from(shared.as_ref()),
            E::CannotShip(_) | E::CannotRefund(_) => Self::conflict("not_paid", e.to_string()),
            E::NotInLineup => unknown_item(&e.to_string()),
            E::AuctionClosed => Self::conflict("auction_closed", e.to_string()),
            E::ShillBid => Self::new(StatusCode::FORBIDDEN, "shill_bid", e.to_string()),
            E::OverSpendingLimit => Self::conflict("spending_limit", e.to_string()),
            E::LotOnAuction => Self::conflict("auction_running", e.to_string()),
        }
    }
}

/// A buy's answer as `POST /orders` gives it (and the live socket's `order` message): `202`
/// with an order still reserved (its payment is under way), `201` with one paid, or the
/// refusal.
pub fn order_status(
    answer: crate::service::orders::Answer,
) -> Result<(StatusCode, crate::store::Order), AppError> {
    let order = answer?;
    let status = if order.status == crate::store::OrderStatus::Reserved {
        StatusCode::ACCEPTED
    } else {
        StatusCode::CREATED
    };
    Ok((status, order))
}

/// A refused bid, as `POST /auctions/{id}/bids` answers it.
impl From<&Rejection> for AppError {
    fn from(r: &Rejection) -> Self {
        let status = match r {
            Rejection::BidTooLow { .. }
            | Rejection::MaxNotHigher { .. }
            | Rejection::OutOfRange => StatusCode::UNPROCESSABLE_ENTITY,
            Rejection::AuctionClosed | Rejection::AlreadyWinning => StatusCode::CONFLICT,
            Rejection::Policy { code } if code == "shill_bid" => StatusCode::FORBIDDEN,
            Rejection::Policy { code } if code == "spending_limit" => StatusCode::CONFLICT,
            Rejection::Policy { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        };
        let code: &'static str = match r.code() {
            "bid_too_low" => "bid_too_low",
            "auction_closed" => "auction_closed",
            "already_winning" => "already_winning",
            "max_not_higher" => "max_not_higher",
            "invalid_amount" => "invalid_amount",
            "shill_bid" => "shill_bid",
            "wrong_show" => "wrong_show",
            "spending_limit" => "spending_limit",
            _ => "bid_refused",
        };
        Self::new(status, code, rejection_message(r))
    }
}

/// A bidder's refused bid as a sentence.
pub fn rejection_message(r: &Rejection) -> String {
    match r {
        Rejection::BidTooLow { min_cents } => format!("bid at least {min_cents} cents"),
        Rejection::AuctionClosed => "the auction has closed".into(),
        Rejection::OutOfRange => "that is not a valid amount".into(),
        Rejection::AlreadyWinning => "you are already winning".into(),
        Rejection::MaxNotHigher { max_cents } => {
            format!("your maximum is already {max_cents} cents; raise it above that")
        }
        Rejection::Policy { code } if code == "shill_bid" => {
            "sellers cannot bid on their own lots".into()
        }
        Rejection::Policy { code } if code == "wrong_show" => {
            "that auction is in another show".into()
        }
        Rejection::Policy { code } => format!("bid refused ({code})"),
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
