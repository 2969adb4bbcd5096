//! The use cases: buying and paying, settling and refunding orders, starting and ending shows,
//! accounts and sessions. Each takes [`Services`] and answers a result or a [`ServiceError`];
//! the adapters (`api`, `pages`, the live socket, the WHIP/WHEP handlers) turn those into what
//! their clients see. Nothing here knows HTTP.

use std::sync::Arc;

use hawker_core::InvalidInput;
use hawker_core::ids::ShowId;

use crate::clock::Clock;
use crate::config::Config;
use crate::limits::{Limits, TooOften};
use crate::live::{Hub, LiveError, Refusal};
use crate::passwords::{PasswordError, Passwords};
use crate::payments::PaymentProvider;
use crate::store::{OrderStatus, Store, StoreError};

pub mod accounts;
pub mod auctions;
pub mod orders;
pub mod shows;
pub mod upkeep;

/// What the use cases work with. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub config: Arc<Config>,
    /// The server's clock: every decision reads the time here (tests move it by hand).
    pub clock: Clock,
    pub store: Arc<dyn Store>,
    pub payments: Arc<dyn PaymentProvider>,
    pub hub: Arc<Hub>,
    /// The media plane: WHIP in, WHEP out (its own thread and UDP socket).
    pub media: hawker_media::Media,
    pub passwords: Passwords,
    /// Log-in and sign-up limits per client address and per account.
    pub limits: Arc<Limits>,
    /// One payment at a time per reservation ([`orders::pay_once`]).
    pub(crate) paying: Arc<orders::PaymentsUnderWay>,
}

/// Why a use case did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The show's owner said no.
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Live(#[from] LiveError),
    #[error(transparent)]
    TooOften(#[from] TooOften),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Store(#[from] StoreError),

    // Accounts.
    #[error("role: must be \"buyer\" or \"seller\"")]
    SelfServiceRole,
    #[error("{0}")]
    EmailTaken(String),
    #[error("wrong e-mail or password")]
    WrongCredentials,

    // Shows.
    #[error("this show has ended; schedule a new one")]
    ShowOver,
    #[error("a product of this lineup is live in show {0}")]
    ProductLiveElsewhere(ShowId),

    // Buying.
    #[error("give flash_sale_id or variant_id, not both")]
    TwoItems,
    #[error("give flash_sale_id or variant_id")]
    NoItem,
    /// The payment method, as given.
    #[error("not a payment method this shop accepts")]
    UnknownPaymentMethod(String),
    #[error("this Idempotency-Key was used for a different order")]
    KeyReused,
    #[error("another request with this Idempotency-Key is under way")]
    KeyInUse,
    #[error("this flash sale has ended")]
    SaleEnded,
    #[error("this flash sale belongs to another show")]
    SaleOfAnotherShow,
    #[error("no such flash sale")]
    NoSuchSale,
    #[error("the payment was declined")]
    Declined,
    #[error("the reservation expired before payment completed")]
    Expired,
    #[error("payment is still being processed")]
    Pending,
    #[error("the payment provider did not answer")]
    ProviderUnavailable,
    #[error("the payment was interrupted")]
    Interrupted,
    /// A payment another buy waited for ended so; each waiter is told the same.
    #[error(transparent)]
    Shared(Arc<ServiceError>),

    // Auctions.
    #[error("this variant is not in the show's lineup")]
    NotInLineup,
    #[error("the auction has closed")]
    AuctionClosed,
    #[error("sellers cannot bid on their own lots")]
    ShillBid,
    #[error("this maximum would pass your daily spending limit")]
    OverSpendingLimit,
    #[error("this lot's auction is running: bid in it instead")]
    LotOnAuction,

    // Orders after the sale.
    #[error("only paid orders can ship; this one is {0}")]
    CannotShip(OrderStatus),
    #[error("only paid, unshipped orders can be cancelled; this one is {0}")]
    CannotRefund(OrderStatus),

    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type ServiceResult<T> = Result<T, ServiceError>;
