//! One show's commerce: stock per variant, flash sales, discount codes and reservations.
//!
//! [`ShowCommerce`] decides every buy of a live show, in arrival order, in memory. Each decision
//! returns the [`Event`]s it caused; the caller must make them durable (one transaction per batch
//! of decisions) before it acknowledges anybody, and replays nothing: after a restart the state is
//! rebuilt from the database with [`ShowCommerce::restore`].
//!
//! **Invariant (conservation)**: for every variant, the sum of units on hand, units left in its
//! running sales, units in reservations and units paid never changes. No decision
//! drives a count below zero; a rejection changes nothing and emits no event.
//!
//! Stock moves like this: starting a sale carves its quantity out of the variant's stock; a buy
//! reserves units from the sale (or from the variant, at list price); payment turns a reservation
//! into a paid order; a declined or expired reservation returns its units to the sale if it is still
//! running, else to the variant; a sale that ends returns what is left to the variant.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::catalog::Quantity;
use crate::discount::{CodeRejected, CodeRule};
use crate::ids::{AuctionId, CodeId, OrderId, ProductId, SaleId, ShowId, UserId, VariantId};
use crate::money::{Currency, Price};
use crate::time::Timestamp;

#[cfg(test)]
mod tests;

/// A variant in the show's lineup, with the units on hand outside any sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Variant {
    pub id: VariantId,
    pub product_id: ProductId,
    pub product_title: String,
    pub name: String,
    pub price_cents: i64,
    pub currency: Currency,
    pub stock: u32,
    /// Path of the product's first image, if it has one.
    pub image: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SaleStatus {
    Running,
    Ended,
}

/// A flash sale: `quantity` units of one variant at `price_cents` until `ends_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sale {
    pub id: SaleId,
    pub variant_id: VariantId,
    pub price_cents: i64,
    pub quantity: u32,
    pub remaining: u32,
    pub per_buyer_limit: u32,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub status: SaleStatus,
}

/// What the host asks for when starting a sale. The id is chosen by the caller.
#[derive(Debug, Clone)]
pub struct SaleRequest {
    pub id: SaleId,
    pub variant_id: VariantId,
    pub quantity: u32,
    pub price: Price,
    pub per_buyer_limit: u32,
    pub duration_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SaleRejected {
    #[error("this variant is not in the show's lineup")]
    UnknownVariant,
    #[error("only {stock} units are in stock")]
    NotEnoughStock { stock: u32 },
    #[error("a flash sale on this variant is already running")]
    AlreadyRunning,
    #[error("the sale price must not be above the list price")]
    PriceAboveList,
    #[error("quantity must be at least 1")]
    EmptySale,
    #[error("the per-buyer limit must be at least 1")]
    ZeroLimit,
    #[error("duration must be between 5 seconds and 24 hours")]
    BadDuration,
    #[error("no such running sale in this show")]
    UnknownSale,
}

/// What one buy takes: a unit from a running flash sale or a variant at its list price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Item {
    Sale(SaleId),
    Variant(VariantId),
}

/// A buyer's request, with everything the rules need already looked up by the caller.
#[derive(Debug, Clone)]
pub struct BuyRequest {
    pub order_id: OrderId,
    pub buyer: UserId,
    pub item: Item,
    pub quantity: Quantity,
    /// Already normalised with [`crate::discount::normalize_code`].
    pub code: Option<String>,
    /// Whether the buyer has any earlier order on this instance (for first-order-only codes).
    pub buyer_has_ordered: bool,
    /// When an unpaid reservation gives its units back.
    pub hold_until: Timestamp,
}

/// Why a buy was refused. Refusals change nothing, so they need no write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BuyRejected {
    #[error("sold out")]
    SoldOut,
    #[error("this flash sale has ended")]
    SaleEnded,
    #[error("this item is not for sale in this show")]
    UnknownItem,
    #[error("the limit is {limit} per buyer and you already hold {held}")]
    OverLimit { limit: u32, held: u32 },
    #[error("{0}")]
    Code(CodeRejected),
}

/// An order line as reserved: prices are fixed at reservation time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderLine {
    pub id: OrderId,
    pub buyer: UserId,
    pub variant_id: VariantId,
    pub sale_id: Option<SaleId>,
    pub quantity: u32,
    pub unit_price_cents: i64,
    pub subtotal_cents: i64,
    pub discount_cents: i64,
    pub total_cents: i64,
    pub currency: Currency,
    pub code_id: Option<CodeId>,
    pub hold_until: Timestamp,
    /// The auction this order won: its unit was held by the auction, not taken from stock.
    pub auction_id: Option<AuctionId>,
    /// The show's shipping fee, carried by the buyer's first order of the show: everything a
    /// buyer gets from one show ships together, for one fee (combined shipping).
    pub shipping_cents: i64,
}

/// Why a reservation gave its units back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseReason {
    Declined,
    Expired,
}

impl ReleaseReason {
    /// The order status this reason leaves behind.
    pub fn order_status(self) -> &'static str {
        match self {
            Self::Declined => "declined",
            Self::Expired => "expired",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SaleEndReason {
    /// The countdown reached zero.
    Deadline,
    /// The host ended it early.
    Host,
    /// The show ended.
    ShowEnded,
}

/// Everything a decision changed. Each event is appended to the show's commerce log and applied
/// to the stored state in the same transaction; `left` fields carry the count after the change so
/// viewers can be told without asking anyone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    SaleStarted {
        sale: Sale,
        variant_stock_left: u32,
    },
    /// An auction holds one unit of a variant while it runs.
    LotHeld {
        auction_id: AuctionId,
        variant_id: VariantId,
        variant_stock_left: u32,
    },
    /// An auction ended unsold: its unit is back on hand.
    LotReturned {
        auction_id: AuctionId,
        variant_id: VariantId,
        variant_stock_left: u32,
    },
    SaleEnded {
        sale_id: SaleId,
        variant_id: VariantId,
        returned: u32,
        variant_stock_left: u32,
        reason: SaleEndReason,
    },
    CodeCreated {
        rule: CodeRule,
    },
    Reserved {
        order: OrderLine,
        left: u32,
    },
    Paid {
        order_id: OrderId,
        buyer: UserId,
        variant_id: VariantId,
        sale_id: Option<SaleId>,
        quantity: u32,
        total_cents: i64,
        /// The payment provider's reference for the charge (`None` for a free order).
        payment_ref: Option<String>,
    },
    Released {
        order_id: OrderId,
        reason: ReleaseReason,
        variant_id: VariantId,
        /// The running sale the units went back to; `None` means back to the variant's stock.
        to_sale: Option<SaleId>,
        quantity: u32,
        code_id: Option<CodeId>,
        left: u32,
    },
}

/// A code and how often it has been used by live reservations and paid orders.
#[derive(Debug, Clone)]
struct Code {
    rule: CodeRule,
    uses: u32,
}

/// Everything needed to rebuild a show's commerce after a restart, as stored.
#[derive(Debug, Clone, Default)]
pub struct Restore {
    pub variants: Vec<Variant>,
    /// Sales still marked running (their deadline may have passed while the server was down).
    pub running_sales: Vec<Sale>,
    pub codes: Vec<(CodeRule, u32)>,
    /// Orders still reserved, not yet paid, declined or expired.
    pub reservations: Vec<OrderLine>,
    /// Units held (reserved or paid) per sale and buyer, for per-buyer limits.
    pub held: Vec<(SaleId, UserId, u32)>,
    /// Units held by running auctions.
    pub lots: Vec<(AuctionId, VariantId)>,
    /// The seller's shipping fee per buyer per show.
    pub shipping_fee_cents: i64,
    /// For each buyer, the live order (reserved or paid) that carries their shipping fee.
    pub shipping_carried: Vec<(UserId, OrderId)>,
}

/// The state machine. See the module docs for its invariant.
#[derive(Debug, Clone)]
pub struct ShowCommerce {
    show_id: ShowId,
    variants: BTreeMap<VariantId, Variant>,
    sales: BTreeMap<SaleId, Sale>,
    codes: BTreeMap<String, Code>,
    reservations: BTreeMap<OrderId, OrderLine>,
    held: HashMap<(SaleId, UserId), u32>,
    lots: BTreeMap<AuctionId, VariantId>,
    shipping_fee_cents: i64,
    /// Which order carries each buyer's shipping fee; released with that order.
    shipping_carried: HashMap<UserId, OrderId>,
    /// Buyers with an order in this show since it was loaded; closes the first-order race that
    /// the caller's database lookup alone would leave open.
    ordered: BTreeSet<UserId>,
}

impl Restore {
    /// Auctions whose lot is held or whose win is reserved and not yet paid.
    pub fn auctions_in_play(&self) -> BTreeSet<AuctionId> {
        let wins = self.reservations.iter().filter_map(|r| r.auction_id);
        self.lots.iter().map(|(a, _)| *a).chain(wins).collect()
    }
}

impl ShowCommerce {
    /// Auctions whose lot is held or whose win is reserved and not yet paid.
    pub fn auctions_in_play(&self) -> BTreeSet<AuctionId> {
        let wins = self.reservations.values().filter_map(|r| r.auction_id);
        self.lots.keys().copied().chain(wins).collect()
    }

    pub fn restore(show_id: ShowId, stored: Restore) -> Self {
        let mut ordered = BTreeSet::new();
        for r in &stored.reservations {
            ordered.insert(r.buyer);
        }
        Self {
            show_id,
            variants: stored.variants.into_iter().map(|v| (v.id, v)).collect(),
            sales: stored
                .running_sales
                .into_iter()
                .map(|s| (s.id, s))
                .collect(),
            codes: stored
                .codes
                .into_iter()
                .map(|(rule, uses)| (rule.code.clone(), Code { rule, uses }))
                .collect(),
            reservations: stored.reservations.into_iter().map(|o| (o.id, o)).collect(),
            held: stored
                .held
                .into_iter()
                .map(|(s, u, n)| ((s, u), n))
                .collect(),
            lots: stored.lots.into_iter().collect(),
            shipping_fee_cents: stored.shipping_fee_cents.max(0),
            shipping_carried: stored.shipping_carried.into_iter().collect(),
            ordered,
        }
    }

    pub fn show_id(&self) -> ShowId {
        self.show_id
    }

    pub fn variant(&self, id: VariantId) -> Option<&Variant> {
        self.variants.get(&id)
    }

    pub fn variants(&self) -> impl Iterator<Item = &Variant> {
        self.variants.values()
    }

    pub fn sale(&self, id: SaleId) -> Option<&Sale> {
        self.sales.get(&id)
    }

    /// Sales that are still running, oldest first.
    pub fn running_sales(&self) -> impl Iterator<Item = &Sale> {
        self.sales
            .values()
            .filter(|s| s.status == SaleStatus::Running)
    }

    pub fn reservation(&self, id: OrderId) -> Option<&OrderLine> {
        self.reservations.get(&id)
    }

    pub fn start_sale(
        &mut self,
        now: Timestamp,
        req: SaleRequest,
    ) -> Result<Vec<Event>, SaleRejected> {
        if req.quantity == 0 {
            return Err(SaleRejected::EmptySale);
        }
        if req.per_buyer_limit == 0 {
            return Err(SaleRejected::ZeroLimit);
        }
        if !(5_000..=86_400_000).contains(&req.duration_ms) {
            return Err(SaleRejected::BadDuration);
        }
        let variant = self
            .variants
            .get_mut(&req.variant_id)
            .ok_or(SaleRejected::UnknownVariant)?;
        if req.price.cents() > variant.price_cents {
            return Err(SaleRejected::PriceAboveList);
        }
        if self
            .sales
            .values()
            .any(|s| s.variant_id == req.variant_id && s.status == SaleStatus::Running)
        {
            return Err(SaleRejected::AlreadyRunning);
        }
        let Some(stock_left) = variant.stock.checked_sub(req.quantity) else {
            return Err(SaleRejected::NotEnoughStock {
                stock: variant.stock,
            });
        };
        variant.stock = stock_left;
        let sale = Sale {
            id: req.id,
            variant_id: req.variant_id,
            price_cents: req.price.cents(),
            quantity: req.quantity,
            remaining: req.quantity,
            per_buyer_limit: req.per_buyer_limit,
            starts_at: now,
            ends_at: now.plus_ms(req.duration_ms),
            status: SaleStatus::Running,
        };
        self.sales.insert(sale.id, sale.clone());
        Ok(vec![Event::SaleStarted {
            sale,
            variant_stock_left: stock_left,
        }])
    }

    /// Ends a running sale now; what is left goes back to the variant's stock.
    pub fn end_sale(
        &mut self,
        sale_id: SaleId,
        reason: SaleEndReason,
    ) -> Result<Vec<Event>, SaleRejected> {
        let sale = self
            .sales
            .get_mut(&sale_id)
            .filter(|s| s.status == SaleStatus::Running)
            .ok_or(SaleRejected::UnknownSale)?;
        sale.status = SaleStatus::Ended;
        let returned = std::mem::take(&mut sale.remaining);
        let variant_id = sale.variant_id;
        let variant_stock_left = match self.variants.get_mut(&variant_id) {
            Some(v) => {
                v.stock += returned;
                v.stock
            }
            None => 0,
        };
        // An ended sale is only kept while reservations may still point at it.
        self.forget_sale_if_settled(sale_id);
        Ok(vec![Event::SaleEnded {
            sale_id,
            variant_id,
            returned,
            variant_stock_left,
            reason,
        }])
    }

    /// Ends every sale whose deadline has come. Call it on every tick and right after a restore.
    pub fn tick(&mut self, now: Timestamp) -> Vec<Event> {
        let due: Vec<SaleId> = self
            .running_sales()
            .filter(|s| s.ends_at <= now)
            .map(|s| s.id)
            .collect();
        due.into_iter()
            .flat_map(|id| {
                self.end_sale(id, SaleEndReason::Deadline)
                    .unwrap_or_default()
            })
            .collect()
    }

    /// Ends all sales because the show is ending.
    pub fn end_all_sales(&mut self) -> Vec<Event> {
        let running: Vec<SaleId> = self.running_sales().map(|s| s.id).collect();
        running
            .into_iter()
            .flat_map(|id| {
                self.end_sale(id, SaleEndReason::ShowEnded)
                    .unwrap_or_default()
            })
            .collect()
    }

    pub fn create_code(&mut self, rule: CodeRule) -> Result<Vec<Event>, DuplicateCode> {
        if self.codes.contains_key(&rule.code) {
            return Err(DuplicateCode);
        }
        self.codes.insert(
            rule.code.clone(),
            Code {
                rule: rule.clone(),
                uses: 0,
            },
        );
        Ok(vec![Event::CodeCreated { rule }])
    }

    /// Reserves units for a buyer, or says why not. On success the units are out of stock until
    /// the order is paid ([`Self::confirm`]) or given back ([`Self::release`]).
    pub fn reserve(&mut self, now: Timestamp, req: &BuyRequest) -> Result<Vec<Event>, BuyRejected> {
        let qty = req.quantity.get();
        let (variant_id, sale_id, unit_price) = match req.item {
            Item::Sale(id) => {
                let sale = self.sales.get(&id).ok_or(BuyRejected::UnknownItem)?;
                if sale.status != SaleStatus::Running || now >= sale.ends_at {
                    return Err(BuyRejected::SaleEnded);
                }
                let held = self.held.get(&(id, req.buyer)).copied().unwrap_or(0);
                if held + qty > sale.per_buyer_limit {
                    return Err(BuyRejected::OverLimit {
                        limit: sale.per_buyer_limit,
                        held,
                    });
                }
                if sale.remaining < qty {
                    return Err(BuyRejected::SoldOut);
                }
                (sale.variant_id, Some(id), sale.price_cents)
            }
            Item::Variant(id) => {
                let variant = self.variants.get(&id).ok_or(BuyRejected::UnknownItem)?;
                if variant.stock < qty {
                    return Err(BuyRejected::SoldOut);
                }
                (id, None, variant.price_cents)
            }
        };
        let subtotal = unit_price * i64::from(qty);
        let (code_id, discount) = match &req.code {
            None => (None, 0),
            Some(code) => {
                let entry = self
                    .codes
                    .get(code)
                    .ok_or(BuyRejected::Code(CodeRejected::Unknown))?;
                let has_ordered = req.buyer_has_ordered || self.ordered.contains(&req.buyer);
                entry
                    .rule
                    .check(now, entry.uses, has_ordered)
                    .map_err(BuyRejected::Code)?;
                (
                    Some(entry.rule.id),
                    entry.rule.discount.amount_off(subtotal),
                )
            }
        };
        let Some(variant) = self.variants.get(&variant_id) else {
            return Err(BuyRejected::UnknownItem);
        };
        let currency = variant.currency;

        // Every check passed: from here on the decision only moves counts.
        let left = match sale_id {
            Some(id) => {
                let sale = self.sales.get_mut(&id).ok_or(BuyRejected::UnknownItem)?;
                sale.remaining -= qty;
                *self.held.entry((id, req.buyer)).or_default() += qty;
                sale.remaining
            }
            None => {
                let variant = self
                    .variants
                    .get_mut(&variant_id)
                    .ok_or(BuyRejected::UnknownItem)?;
                variant.stock -= qty;
                variant.stock
            }
        };
        if let Some(code) = &req.code
            && let Some(entry) = self.codes.get_mut(code)
        {
            entry.uses += 1;
        }
        self.ordered.insert(req.buyer);
        let shipping = self.shipping_for(req.buyer, req.order_id);
        let order = OrderLine {
            id: req.order_id,
            buyer: req.buyer,
            variant_id,
            sale_id,
            quantity: qty,
            unit_price_cents: unit_price,
            subtotal_cents: subtotal,
            discount_cents: discount,
            total_cents: subtotal - discount + shipping,
            currency,
            code_id,
            hold_until: req.hold_until,
            auction_id: None,
            shipping_cents: shipping,
        };
        self.reservations.insert(order.id, order.clone());
        Ok(vec![Event::Reserved { order, left }])
    }

    /// The shipping fee for a buyer's new order: the whole fee if no live order of theirs in this
    /// show carries it yet (this one will), nothing otherwise.
    fn shipping_for(&mut self, buyer: UserId, order_id: OrderId) -> i64 {
        if self.shipping_fee_cents == 0 || self.shipping_carried.contains_key(&buyer) {
            return 0;
        }
        self.shipping_carried.insert(buyer, order_id);
        self.shipping_fee_cents
    }

    /// Takes one unit of `variant` off hand for an auction.
    pub fn hold_lot(
        &mut self,
        auction: AuctionId,
        variant_id: VariantId,
    ) -> Result<Vec<Event>, SaleRejected> {
        let variant = self
            .variants
            .get_mut(&variant_id)
            .ok_or(SaleRejected::UnknownVariant)?;
        let Some(left) = variant.stock.checked_sub(1) else {
            return Err(SaleRejected::NotEnoughStock { stock: 0 });
        };
        variant.stock = left;
        self.lots.insert(auction, variant_id);
        Ok(vec![Event::LotHeld {
            auction_id: auction,
            variant_id,
            variant_stock_left: left,
        }])
    }

    /// The auction ended unsold: its unit goes back on hand.
    pub fn return_lot(&mut self, auction: AuctionId) -> Vec<Event> {
        let Some(variant_id) = self.lots.remove(&auction) else {
            return Vec::new();
        };
        let left = self.variants.get_mut(&variant_id).map_or(0, |v| {
            v.stock += 1;
            v.stock
        });
        vec![Event::LotReturned {
            auction_id: auction,
            variant_id,
            variant_stock_left: left,
        }]
    }

    /// The auction's unit becomes the winner's reservation at the winning price.
    pub fn sell_lot(
        &mut self,
        auction: AuctionId,
        order_id: OrderId,
        buyer: UserId,
        price_cents: i64,
        hold_until: Timestamp,
    ) -> Result<Vec<Event>, NotReserved> {
        let variant_id = self.lots.remove(&auction).ok_or(NotReserved)?;
        let shipping = self.shipping_for(buyer, order_id);
        let variant = self.variants.get(&variant_id).ok_or(NotReserved)?;
        let order = OrderLine {
            id: order_id,
            buyer,
            variant_id,
            sale_id: None,
            quantity: 1,
            unit_price_cents: price_cents,
            subtotal_cents: price_cents,
            discount_cents: 0,
            total_cents: price_cents + shipping,
            currency: variant.currency,
            code_id: None,
            hold_until,
            auction_id: Some(auction),
            shipping_cents: shipping,
        };
        self.reservations.insert(order_id, order.clone());
        self.ordered.insert(buyer);
        Ok(vec![Event::Reserved {
            order,
            left: variant.stock,
        }])
    }

    /// The reservation was paid: it becomes an order for good.
    pub fn confirm(
        &mut self,
        order_id: OrderId,
        payment_ref: Option<String>,
    ) -> Result<Vec<Event>, NotReserved> {
        let order = self.reservations.remove(&order_id).ok_or(NotReserved)?;
        if let Some(sale_id) = order.sale_id {
            self.forget_sale_if_settled(sale_id);
        }
        Ok(vec![Event::Paid {
            order_id,
            buyer: order.buyer,
            variant_id: order.variant_id,
            sale_id: order.sale_id,
            quantity: order.quantity,
            total_cents: order.total_cents,
            payment_ref,
        }])
    }

    /// The reservation was declined or timed out: its units and its code use come back.
    pub fn release(
        &mut self,
        order_id: OrderId,
        reason: ReleaseReason,
    ) -> Result<Vec<Event>, NotReserved> {
        let order = self.reservations.remove(&order_id).ok_or(NotReserved)?;
        if self.shipping_carried.get(&order.buyer) == Some(&order_id) {
            self.shipping_carried.remove(&order.buyer);
        }
        let qty = order.quantity;
        let running_sale = order
            .sale_id
            .and_then(|id| self.sales.get_mut(&id))
            .filter(|s| s.status == SaleStatus::Running);
        let (to_sale, left) = match running_sale {
            Some(sale) => {
                sale.remaining += qty;
                (Some(sale.id), sale.remaining)
            }
            None => match self.variants.get_mut(&order.variant_id) {
                Some(v) => {
                    v.stock += qty;
                    (None, v.stock)
                }
                None => (None, 0),
            },
        };
        if let Some(sale_id) = order.sale_id {
            if let Some(held) = self.held.get_mut(&(sale_id, order.buyer)) {
                *held = held.saturating_sub(qty);
            }
            self.forget_sale_if_settled(sale_id);
        }
        if let Some(code_id) = order.code_id
            && let Some(entry) = self.codes.values_mut().find(|c| c.rule.id == code_id)
        {
            entry.uses = entry.uses.saturating_sub(1);
        }
        Ok(vec![Event::Released {
            order_id,
            reason,
            variant_id: order.variant_id,
            to_sale,
            quantity: qty,
            code_id: order.code_id,
            left,
        }])
    }

    /// Reservations whose hold has run out at `now`; the caller checks each with the payment
    /// provider and then confirms or releases it.
    pub fn due_reservations(&self, now: Timestamp) -> Vec<OrderId> {
        self.reservations
            .values()
            .filter(|o| o.hold_until <= now)
            .map(|o| o.id)
            .collect()
    }

    fn forget_sale_if_settled(&mut self, sale_id: SaleId) {
        let ended = self
            .sales
            .get(&sale_id)
            .is_some_and(|s| s.status == SaleStatus::Ended);
        let referenced = self
            .reservations
            .values()
            .any(|o| o.sale_id == Some(sale_id));
        if ended && !referenced {
            self.sales.remove(&sale_id);
            self.held.retain(|(s, _), _| *s != sale_id);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a code with this name already exists in this show")]
pub struct DuplicateCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this order is not waiting for payment")]
pub struct NotReserved;
