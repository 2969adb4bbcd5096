//! Buying without leaving the show, and orders afterwards.
//!
//! A buy runs: reserve (the show's owner decides, durably) → charge (outside the owner, keyed by
//! the order id) → confirm or release (the owner again). A retry with the same idempotency key
//! finds the stored order and finishes or repeats its answer; it never reserves or charges a
//! second time.
//!
//! The whole buy runs as a task of its own ([`start_buy`]), so a buyer who hangs up stops only
//! the wait. A buyer may be answered as soon as the reservation is durable while the task pays
//! for it. After a restart, [`resume_payments`] pays for every reservation still open.

use std::collections::HashMap;
use std::sync::Arc;

use hawker_core::catalog::Quantity;
use hawker_core::commerce::{BuyRejected, BuyRequest, Item, ReleaseReason};
use hawker_core::discount::normalize_code;
use hawker_core::ids::{IdempotencyKey, OrderId, SaleId, ShowId, VariantId};
use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::shows::find_show;
use super::{ServiceError, ServiceResult, Services};
use crate::live::{CommerceCmd, LiveShow, Refusal, Reserved, Settlement};
use crate::payments::{ChargeRequest, PaymentError};
use crate::store::{Order, OrderMeta, OrderStatus, SavedMethod, StoreError, User, new_id};

/// What a buyer asks for: `POST /orders`'s body, and the live socket's `buy`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Buy {
    pub show_id: i64,
    pub flash_sale_id: Option<i64>,
    pub variant_id: Option<i64>,
    pub quantity: i64,
    pub code: Option<String>,
    pub payment_method: String,
}

/// A buy's answer: the order (reserved, when its payment is still under way; or as it ended),
/// or why not.
pub type Answer = ServiceResult<Order>;

/// Checks a buy and has the show's owner reserve it, then says what is left to do: pay for the
/// new reservation. A retry finds the key's order instead of reserving again ([`next_for`]).
async fn place(s: &Services, buyer: &User, raw_key: &str, body: Buy) -> ServiceResult<Next> {
    let key = IdempotencyKey::parse(raw_key)?;
    let quantity = Quantity::new(body.quantity)?;
    let item = match (body.flash_sale_id, body.variant_id) {
        (Some(_), Some(_)) => return Err(ServiceError::TwoItems),
        (Some(sale_id), None) => Item::Sale(SaleId(sale_id)),
        (None, Some(variant_id)) => Item::Variant(VariantId(variant_id)),
        (None, None) => return Err(ServiceError::NoItem),
    };
    let code = body
        .code
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(normalize_code)
        .transpose()?;
    let payment_method = body.payment_method.trim().to_owned();
    if s.payments.method_label(&payment_method).is_none() {
        return Err(ServiceError::UnknownPaymentMethod(payment_method));
    }
    let existing = || s.store.order_by_key(buyer.id, key.as_str());
    // A retry's stored order answers it, if it asked for the same thing (Stripe's rule).
    let repeat = |order: Order| {
        if same_request(&order, &body, item, code.as_deref(), &payment_method) {
            Ok(order)
        } else {
            Err(ServiceError::KeyReused)
        }
    };
    // One buy per key at a time in this process, whichever show it names: a concurrent retry
    // waits for the first to be decided, then finds its order.
    let patience = std::time::Duration::from_secs(5);
    let Some(_claim) = s.hub.claim_key(buyer.id, key.as_str(), patience).await else {
        return Err(ServiceError::KeyInUse);
    };
    // A running owner checks the key itself, with the rest of its turn's buys, in one read.
    let live = match s.hub.get(ShowId(body.show_id)) {
        Some(live) => live,
        None => {
            // A retry after the show ended still gets its order's answer.
            if let Some(order) = existing().await? {
                return next_for(s, repeat(order)?).await;
            }
            s.hub
                .live(&find_show(s, ShowId(body.show_id)).await?)
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
        buyer_has_ordered: code.is_some() && s.store.buyer_has_orders(buyer.id).await?,
        code: code.clone(),
        hold_until: s.clock.now().plus_ms(s.hub.settings().reservation_hold_ms),
    };
    let meta = OrderMeta {
        order_id,
        idempotency_key: key.as_str().to_owned(),
        payment_method: payment_method.clone(),
    };
    let reserved = live
        .ask(|reply| CommerceCmd::Buy {
            req,
            meta,
            buyer_name: buyer.display_name.clone(),
            reply,
        })
        .await;
    match reserved {
        Ok(reserved) => {
            let order = reserved_order(&reserved, buyer, &live, code, payment_method);
            Ok(Next::Pay(live, order))
        }
        // The key has an order already (from another process, or stored since).
        Err(Refusal::Duplicate(_)) => match existing().await? {
            Some(order) => next_for(s, repeat(order)?).await,
            None => Err(ServiceError::KeyInUse),
        },
        Err(Refusal::Buy(BuyRejected::UnknownItem)) => {
            Err(explain_unknown_item(s, item, live.show_id).await)
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether a stored order is what `body` asks for: the same show, item, quantity, code and
/// payment method. What the server decided (price, discount) is not part of the request.
fn same_request(
    order: &Order,
    body: &Buy,
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
async fn explain_unknown_item(s: &Services, item: Item, show_id: ShowId) -> ServiceError {
    let Item::Sale(sale_id) = item else {
        return Refusal::Buy(BuyRejected::UnknownItem).into();
    };
    match s.store.sale(sale_id).await {
        Ok(Some(sale)) if sale.show_id == show_id => ServiceError::SaleEnded,
        Ok(Some(_)) => ServiceError::SaleOfAnotherShow,
        Ok(None) => ServiceError::NoSuchSale,
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
/// error left open. Any other order (settled, or an auction's, which the show's owner charges
/// itself: "you bid, you buy") only repeats its answer.
async fn next_for(s: &Services, order: Order) -> ServiceResult<Next> {
    if order.status != OrderStatus::Reserved || order.auction_id.is_some() {
        return Ok(Next::Answer(order));
    }
    Ok(Next::Pay(owner_of(s, &order).await?, order))
}

/// A buy under way: its first answer (the reserved order, the refusal, or a retry's stored
/// outcome) and, when a payment was started, the task that ends with its outcome.
pub struct Started {
    pub first: Answer,
    pub paying: Option<JoinHandle<Answer>>,
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
    s: &Services,
    buyer: User,
    key: String,
    body: Buy,
    charging: Charging,
) -> Started {
    let s = s.clone();
    // Boxed before spawning: a future this large would otherwise be copied at every layer of
    // `spawn` on its way into the task (callgrind: about a tenth of a reservation in memcpy).
    let buy = tokio::spawn(Box::pin(async move {
        let (live, order) = match place(&s, &buyer, &key, body).await {
            Ok(Next::Pay(live, order)) => (live, order),
            Ok(Next::Answer(order)) => return (outcome(order), None),
            Err(e) => return (Err(e), None),
        };
        let first = Ok(order.clone());
        let paying = tokio::spawn(Box::pin(async move {
            let ended = match charging {
                Charging::Once => settle(&s, &live, order).await,
                Charging::UntilSettled => pay_once(&s, &live, order).await,
            };
            ended.and_then(outcome)
        }));
        (first, Some(paying))
    }));
    let (first, paying) = buy.await.unwrap_or_else(|e| (Err(task_failed(e)), None));
    Started { first, paying }
}

/// A started payment's final answer.
pub async fn paid(paying: JoinHandle<Answer>) -> Answer {
    paying.await.unwrap_or_else(|e| Err(task_failed(e)))
}

fn task_failed(e: tokio::task::JoinError) -> ServiceError {
    ServiceError::Internal(anyhow::anyhow!("the buy's task failed: {e}"))
}

async fn owner_of(s: &Services, order: &Order) -> ServiceResult<LiveShow> {
    match s.hub.get(order.show_id) {
        Some(live) => Ok(live),
        None => Ok(s.hub.open(&find_show(s, order.show_id).await?).await?),
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
type Ended = Result<Order, Arc<ServiceError>>;

/// Pays for a reservation in the background ([`Charging::UntilSettled`]: the live socket's,
/// `Prefer: respond-async`'s, one resumed after a restart), once per reservation: a retry that
/// finds its payment under way waits for its outcome. Without this, each retry while the
/// provider was down started a loop of its own, asking it once a second until the hold ended.
/// A request that waits for its answer ([`Charging::Once`]) makes its one attempt itself
/// ([`settle`]): it must not wait behind a loop that may run until the hold ends.
async fn pay_once(s: &Services, live: &LiveShow, order: Order) -> ServiceResult<Order> {
    let under_way = &s.paying;
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
            let paid = pay(s, live, order).await;
            return paying.finish(paid);
        }
        Err(running) => running,
    };
    match running.wait_for(Option::is_some).await.as_deref() {
        Ok(Some(Ok(order))) => Ok(order.clone()),
        Ok(Some(Err(e))) => Err(ServiceError::Shared(e.clone())),
        // The payment's task ended without an outcome: the buyer asks again.
        _ => Err(ServiceError::Interrupted),
    }
}

fn poisoned() -> ServiceError {
    ServiceError::Internal(anyhow::anyhow!("the payments under way are poisoned"))
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
    fn finish(mut self, paid: ServiceResult<Order>) -> ServiceResult<Order> {
        self.finished = true;
        let waiting = match self.under_way.0.lock() {
            Ok(mut payments) => {
                drop(payments.remove(&self.id));
                self.ended.receiver_count() > 0
            }
            Err(_) => true,
        };
        if !waiting {
            return paid;
        }
        let shared = paid.map_err(Arc::new);
        self.ended.send_replace(Some(shared.clone()));
        shared.map_err(ServiceError::Shared)
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
async fn pay(s: &Services, live: &LiveShow, order: Order) -> ServiceResult<Order> {
    loop {
        let settled = settle(s, live, order.clone()).await;
        let unreachable = matches!(settled, Err(ServiceError::ProviderUnavailable));
        if !unreachable || s.clock.now() >= order.hold_until {
            return settled;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

/// After a restart: every reservation left open within its hold (its buyer's request died with
/// the process, or was answered `202`) is paid for now, not left to expire. Auction orders are
/// the owners' own. Returns how many.
pub async fn resume_payments(s: &Services) -> anyhow::Result<usize> {
    // A hold that has run out is the owner's expiry check's: it asks the provider whether the
    // charge happened instead of charging now and refunding.
    let open = s.store.open_reservations(s.clock.now()).await?;
    let mut resumed = 0;
    for order in open {
        // One order that cannot be resumed must not keep the server from starting; its hold's
        // expiry check still settles it.
        match owner_of(s, &order).await {
            Ok(live) => {
                let s = s.clone();
                tokio::spawn(async move { pay_once(&s, &live, order).await });
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

/// Charges a reservation (idempotently, keyed by the order id), then confirms or releases it
/// through the show's owner, and returns the order as it ended. Once paid, that is the reserved
/// order itself, without reading it back; any other ending is read from the store. Only a
/// buyer's request or socket turns it into an answer. An unreachable provider is
/// [`ServiceError::ProviderUnavailable`]: worth asking again while the hold lasts.
async fn settle(s: &Services, live: &LiveShow, order: Order) -> ServiceResult<Order> {
    let (order_id, buyer, charge) = (order.id, order.buyer_id, charge_for(&order));
    let charged = if charge.amount_cents == 0 {
        Ok(None)
    } else {
        s.payments.charge(&charge).await.map(Some)
    };
    let settlement = match &charged {
        Ok(c) => Settlement::Paid {
            payment_ref: c.as_ref().map(|c| c.id.clone()),
            save_method: s
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
            return Err(ServiceError::ProviderUnavailable);
        }
    };
    let settled = live
        .ask(|reply| CommerceCmd::Settle {
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
    let stored = s
        .store
        .order(order_id)
        .await?
        .ok_or(ServiceError::NotFound("order"))?;
    // Refund only a reservation that is definitely over; one still reserved (a failed commit)
    // is settled later by a retry or the hold's expiry check, which find this same charge.
    if let (Err(_), Ok(Some(c))) = (&settled, &charged)
        && matches!(stored.status, OrderStatus::Expired | OrderStatus::Declined)
    {
        // The hold ran out while the card was being charged: give the money back.
        if let Err(e) = s.payments.refund(&c.id).await {
            tracing::error!(order = %order_id, "refunding a charge for an expired reservation failed: {e}");
        }
    }
    Ok(stored)
}

/// A stored order's answer: paid (or later) is the order; declined, expired and still paying
/// are refusals.
fn outcome(order: Order) -> Answer {
    match order.status {
        s if s.was_paid() => Ok(order),
        OrderStatus::Declined => Err(ServiceError::Declined),
        OrderStatus::Expired => Err(ServiceError::Expired),
        _ => Err(ServiceError::Pending),
    }
}

/// Marks a paid order shipped with its tracking number.
pub async fn ship(s: &Services, order: &Order, tracking: &str) -> ServiceResult<Order> {
    let tracking = hawker_core::catalog::text("tracking", tracking, 100)?;
    s.store
        .mark_shipped(order.id, &tracking, s.clock.now())
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ServiceError::CannotShip(order.status),
            other => other.into(),
        })?;
    s.store
        .order(order.id)
        .await?
        .ok_or(ServiceError::NotFound("order"))
}

/// Cancels a paid order and refunds the charge; answers the order and whether the refund was
/// sent (if not, it is due and sent again later). The units are not put back on sale: the
/// seller decides whether the goods can be sold again and edits stock.
///
/// The order's transition to `refunded` is won first, in the store (a shipment or a second
/// refund racing it then finds the order no longer paid), and only then is the provider asked:
/// a refund is issued at most once, and only for an order that ends refunded. If the provider
/// cannot be reached, the refund stays due and is sent again later ([`send_due_refunds`]).
pub async fn refund(s: &Services, order: &Order) -> ServiceResult<(Order, bool)> {
    s.store
        .mark_refunded(order.id, s.clock.now())
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ServiceError::CannotRefund(order.status),
            other => other.into(),
        })?;
    let sent = match &order.payment_ref {
        Some(charge) => send_refund(s, order.id, charge).await,
        None => true,
    };
    let order = s
        .store
        .order(order.id)
        .await?
        .ok_or(ServiceError::NotFound("order"))?;
    Ok((order, sent))
}

/// Asks the provider for a refund the store already owes; `true` once it is confirmed.
async fn send_refund(s: &Services, order: OrderId, charge: &str) -> bool {
    match s.payments.refund(charge).await {
        Ok(()) => {
            if let Err(e) = s.store.refund_sent(order).await {
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
pub async fn send_due_refunds(s: Services, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match s.store.refunds_due().await {
            Ok(due) => {
                for (order, charge) in due {
                    send_refund(&s, order, &charge).await;
                }
            }
            Err(e) => tracing::warn!("reading the refunds due: {e}"),
        }
    }
}

/// Saves a payment method for one-tap buying and for auctions won ("you bid, you buy");
/// answers its label.
pub async fn save_payment_method(s: &Services, user: &User, method: &str) -> ServiceResult<String> {
    let method = method.trim();
    let label = s
        .payments
        .method_label(method)
        .ok_or_else(|| ServiceError::UnknownPaymentMethod(method.to_owned()))?;
    s.store
        .save_payment_method(user.id, method, &label, true)
        .await?;
    Ok(label)
}
