//! Buying without leaving the show, and orders afterwards.
//!
//! `POST /orders` runs: reserve (the show's owner decides, durably) → charge (outside the owner,
//! keyed by the order id) → confirm or release (the owner again). A retry with the same
//! `Idempotency-Key` finds the stored order and finishes or repeats its answer; it never reserves
//! or charges a second time.
//!
//! The whole buy runs as a task of its own ([`start_buy`]), so a buyer who hangs up stops only
//! the wait. With `Prefer: respond-async` (RFC 7240) the buyer is answered `202` with the
//! reserved order as soon as it is durable, and the task pays for it; `GET /orders/{id}` tells
//! how that ended. The live socket's `buy` takes the same path, always answered that way. After
//! a restart, [`resume_payments`] pays for every reservation still open.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hawker_core::catalog::Quantity;
use hawker_core::commerce::{BuyRejected, BuyRequest, Item, ReleaseReason};
use hawker_core::discount::{CodeRejected, normalize_code};
use hawker_core::ids::{IdempotencyKey, OrderId, SaleId, ShowId, VariantId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::shows::{ask, ask_raw, find_show};
use crate::auth::CurrentUser;
use crate::clock;
use crate::error::{ApiJson, ApiPath, ApiQuery, AppError};
use crate::live::{CommerceCmd, LiveShow, Refusal, Reserved, Settlement};
use crate::payments::{ChargeRequest, PaymentError};
use crate::state::AppState;
use crate::store::new_id;
use crate::store::{Order, OrderMeta, OrderStatus, SavedMethod, User};
use std::collections::HashMap;
use tokio::sync::watch;
use tokio::task::JoinHandle;

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

/// Maps the owner's refusals to HTTP.
pub fn refusal(r: Refusal) -> AppError {
    use hawker_core::commerce::SaleRejected as S;
    match r {
        Refusal::Buy(BuyRejected::SoldOut) => AppError::conflict("sold_out", "sold out"),
        Refusal::Buy(BuyRejected::SaleEnded) => sale_ended(),
        Refusal::Buy(BuyRejected::UnknownItem) => {
            AppError::unprocessable("unknown_item", "this item is not for sale in this show")
        }
        Refusal::Buy(e @ BuyRejected::OverLimit { .. }) => {
            AppError::conflict("per_buyer_limit", e.to_string())
        }
        Refusal::Buy(BuyRejected::Code(c)) => {
            let code = match c {
                CodeRejected::Unknown => "code_unknown",
                CodeRejected::Expired => "code_expired",
                CodeRejected::Exhausted => "code_exhausted",
                CodeRejected::NotFirstOrder => "code_first_order_only",
            };
            AppError::unprocessable(code, c.to_string())
        }
        Refusal::Sale(
            e @ (S::UnknownVariant
            | S::PriceAboveList
            | S::EmptySale
            | S::ZeroLimit
            | S::BadDuration),
        ) => AppError::unprocessable("invalid_sale", e.to_string()),
        Refusal::Sale(e @ S::NotEnoughStock { .. }) => {
            AppError::conflict("not_enough_stock", e.to_string())
        }
        Refusal::Sale(e @ S::AlreadyRunning) => AppError::conflict("sale_running", e.to_string()),
        Refusal::Sale(S::UnknownSale) => {
            AppError::conflict("sale_ended", "this flash sale is not running")
        }
        Refusal::DuplicateCode(e) => AppError::conflict("code_exists", e.to_string()),
        Refusal::NotReserved(e) => AppError::conflict("not_reserved", e.to_string()),
        Refusal::NotInLineup => AppError::unprocessable(
            "unknown_product",
            "this product is not in the show's lineup",
        ),
        Refusal::ShowEnded => AppError::conflict("show_not_live", "this show has ended"),
        Refusal::Duplicate(_) => key_in_use(),
        Refusal::UnknownAuction => AppError::not_found("auction"),
        Refusal::NoSecondChance => {
            AppError::conflict("no_second_chance", "the winner paid, or nobody else bid")
        }
        Refusal::AuctionRunning => AppError::conflict(
            "auction_running",
            "another auction is running in this show; wait for it to end",
        ),
        Refusal::NotSaved => AppError::conflict(
            "not_saved",
            "this request conflicts with what is stored, so it was not saved; nothing was charged",
        ),
        Refusal::Unavailable => {
            AppError::unavailable("could not save your order; nothing was charged, try again")
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuyBody {
    pub show_id: i64,
    pub flash_sale_id: Option<i64>,
    pub variant_id: Option<i64>,
    pub quantity: i64,
    pub code: Option<String>,
    pub payment_method: String,
}

pub async fn buy(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    ApiJson(body): ApiJson<BuyBody>,
) -> Result<Response, AppError> {
    let raw_key = headers.get("idempotency-key").ok_or_else(|| {
        AppError::bad_request(
            "missing_idempotency_key",
            "send an Idempotency-Key header; reuse it when you retry",
        )
    })?;
    let respond_async = prefers_async(&headers);
    let key = raw_key.to_str().unwrap_or("").to_owned();
    let charging = if respond_async {
        Charging::UntilSettled
    } else {
        Charging::Once
    };
    let Started { first, paying } = start_buy(&state, user.user, key, body, charging).await;
    let answer = match paying {
        Some(_) if respond_async => return first.map(|(_, order)| accepted(&order)),
        Some(paying) => paid(paying).await,
        None => first,
    };
    respond(answer)
}

/// Checks a buy and has the show's owner reserve it, then says what is left to do: pay for the
/// new reservation. A retry finds the key's order instead of reserving again ([`next_for`]).
async fn place(
    state: &AppState,
    buyer: &User,
    raw_key: &str,
    body: BuyBody,
) -> Result<Next, AppError> {
    let key = IdempotencyKey::parse(raw_key)?;
    let quantity = Quantity::new(body.quantity)?;
    let item = match (body.flash_sale_id, body.variant_id) {
        (Some(_), Some(_)) => {
            return Err(AppError::unprocessable(
                "invalid_input",
                "give flash_sale_id or variant_id, not both",
            ));
        }
        (Some(sale_id), None) => Item::Sale(SaleId(sale_id)),
        (None, Some(variant_id)) => Item::Variant(VariantId(variant_id)),
        (None, None) => {
            return Err(AppError::unprocessable(
                "invalid_input",
                "give flash_sale_id or variant_id",
            ));
        }
    };
    let code = body
        .code
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(normalize_code)
        .transpose()?;
    let payment_method = body.payment_method.trim().to_owned();
    if state.payments.method_label(&payment_method).is_none() {
        return Err(AppError::unprocessable(
            "unknown_payment_method",
            format!(
                "{} is not a payment method this shop accepts",
                crate::error::quote(&payment_method)
            ),
        ));
    }
    let existing = || state.store.order_by_key(buyer.id, key.as_str());
    // A retry's stored order answers it, if it asked for the same thing (Stripe's rule).
    let repeat = |order: Order| {
        if same_request(&order, &body, item, code.as_deref(), &payment_method) {
            Ok(order)
        } else {
            Err(AppError::unprocessable(
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different order; use a new key for a new order",
            ))
        }
    };
    // One buy per key at a time in this process, whichever show it names: a concurrent retry
    // waits for the first to be decided, then finds its order.
    let patience = std::time::Duration::from_secs(5);
    let Some(_claim) = state.hub.claim_key(buyer.id, key.as_str(), patience).await else {
        return Err(key_in_use());
    };
    // A running owner checks the key itself, with the rest of its turn's buys, in one read.
    let live = match state.hub.get(ShowId(body.show_id)) {
        Some(live) => live,
        None => {
            // A retry after the show ended still gets its order's answer.
            if let Some(order) = existing().await? {
                return next_for(state, repeat(order)?).await;
            }
            state
                .hub
                .live(&find_show(state, body.show_id).await?)
                .await?
        }
    };
    let order_id = OrderId(new_id());
    let req = BuyRequest {
        order_id,
        buyer: buyer.id,
        item,
        quantity,
        // Only first-order codes need to know; skip the read otherwise.
        buyer_has_ordered: code.is_some() && state.store.buyer_has_orders(buyer.id).await?,
        code: code.clone(),
        hold_until: clock::now().plus_ms(state.hub.settings().reservation_hold_ms),
    };
    let meta = OrderMeta {
        order_id,
        idempotency_key: key.as_str().to_owned(),
        payment_method: payment_method.clone(),
    };
    let reserved = ask_raw(&live, |reply| CommerceCmd::Buy {
        req,
        meta,
        buyer_name: buyer.display_name.clone(),
        reply,
    })
    .await?;
    match reserved {
        Ok(reserved) => {
            let order = reserved_order(&reserved, buyer, &live, code, payment_method);
            Ok(Next::Pay(live, order))
        }
        // The key has an order already (from another process, or stored since).
        Err(e @ Refusal::Duplicate(_)) => match existing().await? {
            Some(order) => next_for(state, repeat(order)?).await,
            None => Err(refusal(e)),
        },
        Err(Refusal::Buy(BuyRejected::UnknownItem)) => {
            Err(explain_unknown_item(state, item, live.show_id).await)
        }
        Err(e) => Err(refusal(e)),
    }
}

/// Whether a stored order is what `body` asks for: the same show, item, quantity, code and
/// payment method. What the server decided (price, discount) is not part of the request.
fn same_request(
    order: &Order,
    body: &BuyBody,
    item: Item,
    code: Option<&str>,
    payment_method: &str,
) -> bool {
    let same_item = match item {
        Item::Sale(sale) => order.flash_sale_id == Some(sale),
        Item::Variant(variant) => order.flash_sale_id.is_none() && order.variant_id == variant,
    };
    order.show_id.0 == body.show_id
        && same_item
        && order.quantity == body.quantity
        && order.code.as_deref() == code
        && order.payment_method == payment_method
}

/// The owner only knows what is on sale now; the database says what became of the rest.
async fn explain_unknown_item(state: &AppState, item: Item, show_id: ShowId) -> AppError {
    let unknown = AppError::unprocessable("unknown_item", "this item is not for sale in this show");
    let Item::Sale(sale_id) = item else {
        return unknown;
    };
    match state.store.sale(sale_id).await {
        Ok(Some(sale)) if sale.show_id == show_id => sale_ended(),
        Ok(Some(_)) => {
            AppError::unprocessable("unknown_item", "this flash sale belongs to another show")
        }
        Ok(None) => AppError::unprocessable("unknown_item", "no such flash sale"),
        Err(e) => e.into(),
    }
}

/// What is left to do for a buy once it is placed.
enum Next {
    /// Pay for the reservation, through its show's owner.
    Pay(LiveShow, Order),
    /// Only repeat the order's answer.
    Answer(Order),
}

/// What is left for a retry's stored order. A reservation still open is paid for here: a
/// background payment still under way is joined ([`pay_once`]), a request's own attempt may
/// overlap it (the charge's key makes that harmless), and it settles a reservation that an
/// error left open. Any other order (settled, or
/// an auction's, which the show's owner charges itself: "you bid, you buy") only repeats its
/// answer.
async fn next_for(state: &AppState, order: Order) -> Result<Next, AppError> {
    if order.status != OrderStatus::Reserved || order.auction_id.is_some() {
        return Ok(Next::Answer(order));
    }
    Ok(Next::Pay(owner_of(state, &order).await?, order))
}

/// A buy under way: its first answer (`202` with the reservation, the refusal, or a retry's
/// stored outcome) and, when a payment was started, the task that ends with its outcome.
pub struct Started {
    pub first: OrderAnswer,
    pub paying: Option<JoinHandle<OrderAnswer>>,
}

/// How a started payment charges.
#[derive(Clone, Copy)]
pub enum Charging {
    /// Once, and the outcome is the answer: a request waits for it.
    Once,
    /// Again each second while the provider cannot be reached and the hold lasts: the buyer
    /// was answered at the reservation.
    UntilSettled,
}

/// Reserves a buy (or finds its key's order) and starts its payment, all in a task of its own:
/// a buyer who hangs up, or whose socket closes, stops only the wait, never a reservation half
/// made or the payment after it. `POST /orders` and the live socket's `buy` both come here.
pub async fn start_buy(
    state: &AppState,
    buyer: User,
    key: String,
    body: BuyBody,
    charging: Charging,
) -> Started {
    let state = state.clone();
    // Boxed before spawning: a future this large would otherwise be copied at every layer of
    // `spawn` on its way into the task (callgrind: about a tenth of a reservation in memcpy).
    let buy = tokio::spawn(Box::pin(async move {
        let (live, order) = match place(&state, &buyer, &key, body).await {
            Ok(Next::Pay(live, order)) => (live, order),
            Ok(Next::Answer(order)) => return (outcome(order), None),
            Err(e) => return (Err(e), None),
        };
        let first = Ok((StatusCode::ACCEPTED, order.clone()));
        let paying = tokio::spawn(Box::pin(async move {
            let ended = match charging {
                Charging::Once => settle(&state, &live, order).await.map_err(AppError::from),
                Charging::UntilSettled => pay_once(&state, &live, order).await,
            };
            ended.and_then(outcome)
        }));
        (first, Some(paying))
    }));
    let (first, paying) = buy.await.unwrap_or_else(|e| (Err(task_failed(e)), None));
    Started { first, paying }
}

/// A started payment's final answer.
pub async fn paid(paying: JoinHandle<OrderAnswer>) -> OrderAnswer {
    paying.await.unwrap_or_else(|e| Err(task_failed(e)))
}

fn task_failed(e: tokio::task::JoinError) -> AppError {
    AppError::Internal(anyhow::anyhow!("the buy's task failed: {e}"))
}

async fn owner_of(state: &AppState, order: &Order) -> Result<LiveShow, AppError> {
    match state.hub.get(order.show_id) {
        Some(live) => Ok(live),
        None => Ok(state
            .hub
            .open(&find_show(state, order.show_id.0).await?)
            .await?),
    }
}

fn charge_for(order: &Order) -> ChargeRequest {
    ChargeRequest {
        idempotency_key: order.id.to_string(),
        payment_method: order.payment_method.clone(),
        amount_cents: order.total_cents,
        currency: order.currency,
    }
}

/// The reservations being paid for in the background now, one payment each: by order, how the
/// payment ended (`None` while it runs).
#[derive(Default)]
pub struct PaymentsUnderWay(std::sync::Mutex<HashMap<OrderId, watch::Receiver<Option<Ended>>>>);

/// How a payment ended, as every buy waiting for it can be told.
type Ended = Result<Order, (StatusCode, &'static str, String)>;

/// Pays for a reservation in the background ([`Charging::UntilSettled`]: the live socket's,
/// `Prefer: respond-async`'s, one resumed after a restart), once per reservation: a retry that
/// finds its payment under way waits for its outcome. Without this, each retry while the
/// provider was down started a loop of its own, asking it once a second until the hold ended.
/// A request that waits for its answer ([`Charging::Once`]) makes its one attempt itself
/// ([`settle`]): it must not wait behind a loop that may run until the hold ends.
async fn pay_once(state: &AppState, live: &LiveShow, order: Order) -> Result<Order, AppError> {
    let under_way = &state.paying;
    let id = order.id;
    // Ok: this call pays, and tells any others through the sender. Err: another payment runs.
    let payer = {
        let mut payments = under_way.0.lock().map_err(|_| poisoned())?;
        match payments.get(&id) {
            Some(running) => Err(running.clone()),
            None => {
                let (ended, running) = watch::channel(None);
                payments.insert(id, running);
                Ok(ended)
            }
        }
    };
    let mut running = match payer {
        Ok(ended) => {
            let paying = Paying {
                under_way,
                id,
                ended,
                finished: false,
            };
            let paid = pay(state, live, order).await;
            paying.finish(&paid);
            return paid;
        }
        Err(running) => running,
    };
    match running.wait_for(Option::is_some).await.as_deref() {
        Ok(Some(Ok(order))) => Ok(order.clone()),
        Ok(Some(Err((status, code, message)))) => Err(AppError::new(*status, code, message)),
        // The payment's task ended without an outcome: the buyer asks again.
        _ => Err(AppError::unavailable(
            "the payment was interrupted; retry with the same Idempotency-Key",
        )),
    }
}

fn poisoned() -> AppError {
    AppError::Internal(anyhow::anyhow!("the payments under way are poisoned"))
}

/// A payment this call runs, in the registry until it ends. Dropped before it ends (the task
/// was cancelled), it is forgotten and its waiters hear it was interrupted.
struct Paying<'a> {
    under_way: &'a PaymentsUnderWay,
    id: OrderId,
    ended: watch::Sender<Option<Ended>>,
    finished: bool,
}

impl Paying<'_> {
    /// Leaves the registry, then tells whoever joined meanwhile how it ended. No one can join
    /// after the entry is gone, so a waiter always hears.
    fn finish(mut self, paid: &Result<Order, AppError>) {
        self.finished = true;
        let waiting = match self.under_way.0.lock() {
            Ok(mut payments) => {
                drop(payments.remove(&self.id));
                self.ended.receiver_count() > 0
            }
            Err(_) => true,
        };
        if waiting {
            self.ended.send_replace(Some(match paid {
                Ok(order) => Ok(order.clone()),
                Err(e) => {
                    let (code, message) = e.public_parts();
                    Err((e.status(), code, message))
                }
            }));
        }
    }
}

impl Drop for Paying<'_> {
    fn drop(&mut self) {
        if !self.finished
            && let Ok(mut payments) = self.under_way.0.lock()
        {
            payments.remove(&self.id);
        }
    }
}

/// Pays for a reservation whose buyer was answered at the reservation: charges and settles it,
/// asking again once a second while the provider cannot be reached and the hold lasts (after
/// that, the owner's expiry check asks the provider what happened). Returns the order as it
/// ended, which a live socket tells its buyer.
async fn pay(state: &AppState, live: &LiveShow, order: Order) -> Result<Order, AppError> {
    loop {
        let settled = settle(state, live, order.clone()).await;
        let unreachable = matches!(settled, Err(NotSettled::ProviderUnavailable));
        if !unreachable || clock::now() >= order.hold_until {
            return settled.map_err(AppError::from);
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// After a restart: every reservation left open within its hold (its buyer's request died with
/// the process, or was answered `202`) is paid for now, not left to expire. Auction orders are
/// the owners' own. Returns how many.
pub async fn resume_payments(state: &AppState) -> anyhow::Result<usize> {
    // A hold that has run out is the owner's expiry check's: it asks the provider whether the
    // charge happened instead of charging now and refunding.
    let open = state.store.open_reservations(clock::now()).await?;
    let mut resumed = 0;
    for order in open {
        // One order that cannot be resumed must not keep the server from starting; its hold's
        // expiry check still settles it.
        match owner_of(state, &order).await {
            Ok(live) => {
                let state = state.clone();
                tokio::spawn(async move { pay_once(&state, &live, order).await });
                resumed += 1;
            }
            Err(e) => tracing::error!(order = %order.id, "cannot resume its payment: {e:?}"),
        }
    }
    Ok(resumed)
}

/// The order a reservation just committed, as `GET /orders/{id}` reads it back (a test holds the
/// two equal).
fn reserved_order(
    r: &Reserved,
    buyer: &User,
    live: &LiveShow,
    code: Option<String>,
    payment_method: String,
) -> Order {
    let line = &r.line;
    Order {
        id: line.id,
        status: OrderStatus::Reserved,
        buyer_id: buyer.id,
        buyer_name: buyer.display_name.clone(),
        show_id: live.show_id,
        seller_id: live.host,
        product_id: r.product_id,
        product_title: r.product_title.clone(),
        variant_id: line.variant_id,
        variant_name: r.variant_name.clone(),
        flash_sale_id: line.sale_id,
        quantity: i64::from(line.quantity),
        unit_price_cents: line.unit_price_cents,
        subtotal_cents: line.subtotal_cents,
        discount_cents: line.discount_cents,
        total_cents: line.total_cents,
        currency: line.currency,
        // The core applied the code the buyer typed (codes are matched normalized) or none.
        code: line.code_id.and(code),
        payment_method,
        payment_ref: None,
        tracking: None,
        auction_id: line.auction_id,
        shipping_cents: line.shipping_cents,
        hold_until: line.hold_until,
        created_at: r.at,
    }
}

/// Why a reservation was not settled: the provider could not be reached (worth asking again
/// while the hold lasts), or anything else.
enum NotSettled {
    ProviderUnavailable,
    Other(AppError),
}

impl From<AppError> for NotSettled {
    fn from(e: AppError) -> Self {
        Self::Other(e)
    }
}

impl From<crate::store::StoreError> for NotSettled {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Other(e.into())
    }
}

impl From<NotSettled> for AppError {
    fn from(e: NotSettled) -> Self {
        match e {
            NotSettled::ProviderUnavailable => AppError::new(
                StatusCode::BAD_GATEWAY,
                "payment_unavailable",
                "the payment provider did not answer; retry with the same Idempotency-Key",
            ),
            NotSettled::Other(e) => e,
        }
    }
}

/// Charges a reservation (idempotently, keyed by the order id), then confirms or releases it
/// through the show's owner, and returns the order as it ended. Once paid, that is the reserved
/// order itself, without reading it back; any other ending is read from the store. Only a
/// buyer's request or socket turns it into an answer.
async fn settle(state: &AppState, live: &LiveShow, order: Order) -> Result<Order, NotSettled> {
    let (order_id, buyer, charge) = (order.id, order.buyer_id, charge_for(&order));
    let charged = if charge.amount_cents == 0 {
        Ok(None)
    } else {
        state.payments.charge(&charge).await.map(Some)
    };
    let settlement = match &charged {
        Ok(c) => Settlement::Paid {
            payment_ref: c.as_ref().map(|c| c.id.clone()),
            save_method: state
                .payments
                .method_label(&charge.payment_method)
                .map(|label| SavedMethod {
                    user: buyer,
                    method: charge.payment_method.clone(),
                    label,
                }),
        },
        Err(PaymentError::Declined(_)) => Settlement::Released(ReleaseReason::Declined),
        Err(PaymentError::Unavailable(m)) => {
            tracing::warn!(order = %order_id, "payment provider unavailable: {m}");
            return Err(NotSettled::ProviderUnavailable);
        }
    };
    let settled = ask(live, |reply| CommerceCmd::Settle {
        order_id,
        settlement,
        reply: Some(reply),
    })
    .await;
    if let (Ok(()), Ok(charge)) = (&settled, &charged) {
        let mut order = order;
        order.status = OrderStatus::Paid;
        order.payment_ref = charge.as_ref().map(|c| c.id.clone());
        return Ok(order);
    }
    let stored = state
        .store
        .order(order_id)
        .await?
        .ok_or_else(|| AppError::not_found("order"))?;
    // Refund only a reservation that is definitely over; one still reserved (a failed commit)
    // is settled later by a retry or the hold's expiry check, which find this same charge.
    if let (Err(_), Ok(Some(c))) = (&settled, &charged)
        && matches!(stored.status, OrderStatus::Expired | OrderStatus::Declined)
    {
        // The hold ran out while the card was being charged: give the money back.
        if let Err(e) = state.payments.refund(&c.id).await {
            tracing::error!(order = %order_id, "refunding a charge for an expired reservation failed: {e}");
        }
    }
    Ok(stored)
}

/// Whether the request carries `Prefer: respond-async` (RFC 7240): answer once the order is
/// durably reserved, and pay for it in the background.
fn prefers_async(headers: &HeaderMap) -> bool {
    headers.get_all("prefer").iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|p| p.trim().eq_ignore_ascii_case("respond-async"))
        })
    })
}

/// `202 Accepted` with the reserved order: it is durable, and its payment is under way.
fn accepted(order: &Order) -> Response {
    (
        StatusCode::ACCEPTED,
        [
            ("preference-applied", "respond-async".to_owned()),
            ("location", format!("/api/v1/orders/{}", order.id)),
        ],
        OrderBody { order },
    )
        .into_response()
}

/// `{"order": …}`, serialized straight from the order (going through a `serde_json::Value`
/// first was a sixth of a paid buy's instructions) into a buffer that holds it at once: axum's
/// `Json` grows a small one through many small writes.
#[derive(Serialize)]
struct OrderBody<'a> {
    order: &'a Order,
}

impl IntoResponse for OrderBody<'_> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(1024);
        match serde_json::to_writer(&mut body, &self) {
            Ok(()) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
            Err(e) => AppError::Internal(e.into()).into_response(),
        }
    }
}

/// An order's answer, as `POST /orders` gives it: its status with the order, or the refusal.
pub type OrderAnswer = Result<(StatusCode, Order), AppError>;

/// A stored order's answer: paid (or later) is `201`; declined, expired and still paying are
/// refusals.
fn outcome(order: Order) -> OrderAnswer {
    match order.status {
        s if s.was_paid() => Ok((StatusCode::CREATED, order)),
        OrderStatus::Declined => Err(AppError::new(
            StatusCode::PAYMENT_REQUIRED,
            "payment_declined",
            "your payment was declined; nothing was charged",
        )),
        OrderStatus::Expired => Err(AppError::conflict(
            "reservation_expired",
            "the reservation expired before payment completed",
        )),
        _ => Err(AppError::new(
            StatusCode::ACCEPTED,
            "pending",
            "payment is still being processed; retry with the same Idempotency-Key",
        )),
    }
}

fn respond(answer: OrderAnswer) -> Result<Response, AppError> {
    answer.map(|(status, order)| (status, OrderBody { order: &order }).into_response())
}

pub async fn mine(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<Value>, AppError> {
    Ok(Json(
        json!({ "orders": state.store.orders_for_buyer(user.user.id).await? }),
    ))
}

pub async fn get_one(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<Value>, AppError> {
    let order = state
        .store
        .order(OrderId(id))
        .await?
        .ok_or_else(|| AppError::not_found("order"))?;
    if order.buyer_id != user.user.id && order.seller_id != user.user.id {
        return Err(AppError::not_found("order"));
    }
    Ok(Json(json!({ "order": order })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SellerQuery {
    show_id: Option<i64>,
}

pub async fn for_seller(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiQuery(q): ApiQuery<SellerQuery>,
) -> Result<Json<Value>, AppError> {
    if !user.user.role.can_sell() {
        return Err(AppError::forbidden("only sellers have a store"));
    }
    Ok(Json(
        json!({ "orders": state.store.orders_for_seller(user.user.id, q.show_id.map(ShowId)).await? }),
    ))
}

async fn sellers_order(state: &AppState, user: &CurrentUser, id: i64) -> Result<Order, AppError> {
    let order = state
        .store
        .order(OrderId(id))
        .await?
        .ok_or_else(|| AppError::not_found("order"))?;
    if order.seller_id != user.user.id {
        return Err(AppError::not_found("order"));
    }
    Ok(order)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShipBody {
    tracking: String,
}

pub async fn ship(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(body): ApiJson<ShipBody>,
) -> Result<Json<Value>, AppError> {
    let order = sellers_order(&state, &user, id).await?;
    let tracking = hawker_core::catalog::text("tracking", &body.tracking, 100)?;
    state
        .store
        .mark_shipped(order.id, &tracking, clock::now())
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict(_) => AppError::conflict(
                "not_paid",
                format!("only paid orders can ship; this one is {}", order.status),
            ),
            other => other.into(),
        })?;
    Ok(Json(json!({ "order": state.store.order(order.id).await? })))
}

/// Cancels a paid order and refunds the charge. The units are not put back on sale: the seller
/// decides whether the goods can be sold again and edits stock.
///
/// The order's transition to `refunded` is won first, in the store (a shipment or a second
/// refund racing it then finds the order no longer paid), and only then is the provider asked:
/// a refund is issued at most once, and only for an order that ends refunded. If the provider
/// cannot be reached, the refund stays due and is sent again later ([`send_due_refunds`]).
pub async fn refund(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Response, AppError> {
    let order = sellers_order(&state, &user, id).await?;
    state
        .store
        .mark_refunded(order.id, clock::now())
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict(_) => AppError::conflict(
                "not_paid",
                format!(
                    "only paid, unshipped orders can be cancelled; this one is {}",
                    order.status
                ),
            ),
            other => other.into(),
        })?;
    let sent = match &order.payment_ref {
        Some(charge) => send_refund(&state, order.id, charge).await,
        None => true,
    };
    let order = state.store.order(order.id).await?;
    Ok(if sent {
        Json(json!({ "order": order, "refund": "sent" })).into_response()
    } else {
        (
            StatusCode::ACCEPTED,
            Json(json!({ "order": order, "refund": "pending" })),
        )
            .into_response()
    })
}

/// Asks the provider for a refund the store already owes; `true` once it is confirmed.
async fn send_refund(state: &AppState, order: OrderId, charge: &str) -> bool {
    match state.payments.refund(charge).await {
        Ok(()) => {
            if let Err(e) = state.store.refund_sent(order).await {
                // Sent again later; the provider refunds a charge once, however often asked.
                tracing::warn!(%order, "recording a sent refund: {e}");
            }
            true
        }
        Err(e) => {
            tracing::warn!(%order, "refund not sent yet, will retry: {e}");
            false
        }
    }
}

/// Sends every refund still owed (left by a crash or an unreachable provider) every
/// `every`, starting now; runs for the life of the server.
pub async fn send_due_refunds(state: AppState, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match state.store.refunds_due().await {
            Ok(due) => {
                for (order, charge) in due {
                    send_refund(&state, order, &charge).await;
                }
            }
            Err(e) => tracing::warn!("reading the refunds due: {e}"),
        }
    }
}

/// The buyer's saved methods, and what the provider suggests when there are none.
pub async fn payment_methods(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<Value>, AppError> {
    let saved = state.store.payment_methods(user.user.id).await?;
    let as_json = |v: Vec<(String, String)>| {
        v.into_iter()
            .map(|(id, label)| json!({ "id": id, "label": label }))
            .collect::<Vec<_>>()
    };
    Ok(Json(
        json!({ "saved": as_json(saved), "available": as_json(state.payments.suggested_methods()), "test_mode": state.payments.is_test() }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMethod {
    method: String,
}

/// Saves a payment method for one-tap buying and for auctions won ("you bid, you buy").
pub async fn save_payment_method(
    State(state): State<AppState>,
    user: CurrentUser,
    ApiJson(body): ApiJson<NewMethod>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let method = body.method.trim();
    let label = state.payments.method_label(method).ok_or_else(|| {
        AppError::unprocessable(
            "unknown_payment_method",
            format!(
                "{} is not a payment method this shop accepts",
                crate::error::quote(method)
            ),
        )
    })?;
    state
        .store
        .save_payment_method(user.user.id, method, &label, true)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": method, "label": label })),
    ))
}
