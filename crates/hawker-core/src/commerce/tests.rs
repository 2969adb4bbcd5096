use expect_test::expect;
use proptest::prelude::*;

use super::*;
use crate::discount::Discount;
use crate::ids::AuctionId;

const SHOW: ShowId = ShowId(1);
const SHADE: VariantId = VariantId(10);
const SIZE: VariantId = VariantId(11);

fn variant(id: VariantId, stock: u32) -> Variant {
    Variant {
        id,
        product_id: ProductId(100),
        product_title: "Velvet lipstick".into(),
        name: format!("shade {}", id.0),
        price_cents: 2_000,
        currency: Currency::parse("USD").expect("valid"),
        stock,
        image: None,
    }
}

fn show(stock: u32) -> ShowCommerce {
    ShowCommerce::restore(
        SHOW,
        Restore {
            variants: vec![variant(SHADE, stock), variant(SIZE, stock)],
            ..Restore::default()
        },
    )
}

fn sale_req(id: i64, variant_id: VariantId, quantity: u32, limit: u32) -> SaleRequest {
    SaleRequest {
        id: SaleId(id),
        variant_id,
        quantity,
        price: Price::new("price_cents", 1_500).expect("valid"),
        per_buyer_limit: limit,
        duration_ms: 60_000,
    }
}

fn buy(order: i64, buyer: i64, item: Item, qty: i64) -> BuyRequest {
    BuyRequest {
        order_id: OrderId(order),
        buyer: UserId(buyer),
        item,
        quantity: Quantity::new(qty).expect("valid"),
        code: None,
        buyer_has_ordered: false,
        hold_until: Timestamp(600_000),
    }
}

#[test]
fn flash_sale_events_snapshot() {
    let mut c = show(10);
    let mut log = Vec::new();
    log.extend(
        c.start_sale(Timestamp(0), sale_req(7, SHADE, 3, 2))
            .expect("starts"),
    );
    log.extend(
        c.create_code(CodeRule {
            id: CodeId(5),
            code: "LIVE10".into(),
            discount: Discount::PercentOff(10),
            max_uses: 1,
            expires_at: None,
            first_order_only: false,
        })
        .expect("new code"),
    );
    let mut with_code = buy(1, 1, Item::Sale(SaleId(7)), 2);
    with_code.code = Some("LIVE10".into());
    log.extend(c.reserve(Timestamp(1_000), &with_code).expect("reserved"));
    log.extend(c.confirm(OrderId(1), Some("ch_1".into())).expect("paid"));
    log.extend(
        c.reserve(Timestamp(2_000), &buy(2, 2, Item::Sale(SaleId(7)), 1))
            .expect("reserved"),
    );
    assert_eq!(
        c.reserve(Timestamp(2_500), &buy(3, 3, Item::Sale(SaleId(7)), 1)),
        Err(BuyRejected::SoldOut)
    );
    log.extend(
        c.release(OrderId(2), ReleaseReason::Declined)
            .expect("released"),
    );
    log.extend(c.tick(Timestamp(60_000)));
    let text: Vec<String> = log
        .iter()
        .map(|e| serde_json::to_string(e).expect("serializes"))
        .collect();
    expect![[r#"
        {"event":"sale_started","sale":{"id":7,"variant_id":10,"price_cents":1500,"quantity":3,"remaining":3,"per_buyer_limit":2,"starts_at":0,"ends_at":60000,"status":"running"},"variant_stock_left":7}
        {"event":"code_created","rule":{"id":5,"code":"LIVE10","discount":{"percent_off":10},"max_uses":1,"expires_at":null,"first_order_only":false}}
        {"event":"reserved","order":{"id":1,"buyer":1,"variant_id":10,"sale_id":7,"quantity":2,"unit_price_cents":1500,"subtotal_cents":3000,"discount_cents":300,"total_cents":2700,"currency":"USD","code_id":5,"hold_until":600000,"auction_id":null,"shipping_cents":0},"left":1}
        {"event":"paid","order_id":1,"buyer":1,"variant_id":10,"sale_id":7,"quantity":2,"total_cents":2700,"payment_ref":"ch_1"}
        {"event":"reserved","order":{"id":2,"buyer":2,"variant_id":10,"sale_id":7,"quantity":1,"unit_price_cents":1500,"subtotal_cents":1500,"discount_cents":0,"total_cents":1500,"currency":"USD","code_id":null,"hold_until":600000,"auction_id":null,"shipping_cents":0},"left":0}
        {"event":"released","order_id":2,"reason":"declined","variant_id":10,"to_sale":7,"quantity":1,"code_id":null,"left":1}
        {"event":"sale_ended","sale_id":7,"variant_id":10,"returned":1,"variant_stock_left":8,"reason":"deadline"}"#]]
    .assert_eq(&text.join("\n"));
}

#[test]
fn rejections_change_nothing() {
    let mut c = show(5);
    c.start_sale(Timestamp(0), sale_req(7, SHADE, 2, 1))
        .expect("starts");
    let before = format!("{c:?}");
    assert_eq!(
        c.reserve(Timestamp(1), &buy(1, 1, Item::Sale(SaleId(7)), 2)),
        Err(BuyRejected::OverLimit { limit: 1, held: 0 })
    );
    assert_eq!(
        c.reserve(Timestamp(1), &buy(1, 1, Item::Sale(SaleId(99)), 1)),
        Err(BuyRejected::UnknownItem)
    );
    assert_eq!(
        c.reserve(Timestamp(60_000), &buy(1, 1, Item::Sale(SaleId(7)), 1)),
        Err(BuyRejected::SaleEnded)
    );
    let mut bad_code = buy(1, 1, Item::Variant(SHADE), 1);
    bad_code.code = Some("NOPE".into());
    assert_eq!(
        c.reserve(Timestamp(1), &bad_code),
        Err(BuyRejected::Code(CodeRejected::Unknown))
    );
    assert_eq!(
        c.start_sale(Timestamp(0), sale_req(8, SHADE, 1, 1)),
        Err(SaleRejected::AlreadyRunning)
    );
    assert_eq!(
        c.start_sale(Timestamp(0), sale_req(8, SIZE, 6, 1)),
        Err(SaleRejected::NotEnoughStock { stock: 5 })
    );
    assert_eq!(format!("{c:?}"), before);
}

#[test]
fn late_release_after_sale_end_goes_back_to_the_variant() {
    let mut c = show(4);
    c.start_sale(Timestamp(0), sale_req(7, SHADE, 2, 2))
        .expect("starts");
    c.reserve(Timestamp(1), &buy(1, 1, Item::Sale(SaleId(7)), 2))
        .expect("reserved");
    c.end_sale(SaleId(7), SaleEndReason::Host).expect("ends");
    let events = c
        .release(OrderId(1), ReleaseReason::Expired)
        .expect("released");
    assert!(matches!(
        events[..],
        [Event::Released {
            to_sale: None,
            left: 4,
            ..
        }]
    ));
    assert_eq!(c.variant(SHADE).map(|v| v.stock), Some(4));
    assert!(
        c.sale(SaleId(7)).is_none(),
        "a settled ended sale is forgotten"
    );
}

#[test]
fn first_order_code_cannot_be_used_twice_by_one_buyer_in_a_show() {
    let mut c = show(5);
    c.create_code(CodeRule {
        id: CodeId(1),
        code: "HELLO".into(),
        discount: Discount::AmountOffCents(500),
        max_uses: 100,
        expires_at: None,
        first_order_only: true,
    })
    .expect("new");
    let mut first = buy(1, 1, Item::Variant(SHADE), 1);
    first.code = Some("HELLO".into());
    c.reserve(Timestamp(0), &first).expect("first order");
    let mut second = buy(2, 1, Item::Variant(SHADE), 1);
    second.code = Some("HELLO".into());
    assert_eq!(
        c.reserve(Timestamp(0), &second),
        Err(BuyRejected::Code(CodeRejected::NotFirstOrder))
    );
}

/// One step of a random session against the state machine.
#[derive(Debug, Clone)]
enum Op {
    StartSale {
        variant: bool,
        quantity: u32,
        limit: u32,
    },
    EndSale {
        pick: usize,
    },
    Buy {
        buyer: i64,
        sale: bool,
        pick: usize,
        qty: i64,
    },
    Confirm {
        pick: usize,
    },
    Release {
        pick: usize,
        expired: bool,
    },
    Tick {
        advance_ms: i64,
    },
    HoldLot {
        variant: bool,
    },
    SellLot {
        pick: usize,
        buyer: i64,
    },
    ReturnLot {
        pick: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (any::<bool>(), 0u32..8, 0u32..4).prop_map(|(variant, quantity, limit)| Op::StartSale {
            variant,
            quantity,
            limit
        }),
        any::<usize>().prop_map(|pick| Op::EndSale { pick }),
        (1i64..6, any::<bool>(), any::<usize>(), 1i64..4).prop_map(|(buyer, sale, pick, qty)| {
            Op::Buy {
                buyer,
                sale,
                pick,
                qty,
            }
        }),
        any::<usize>().prop_map(|pick| Op::Confirm { pick }),
        (any::<usize>(), any::<bool>()).prop_map(|(pick, expired)| Op::Release { pick, expired }),
        (0i64..40_000).prop_map(|advance_ms| Op::Tick { advance_ms }),
        any::<bool>().prop_map(|variant| Op::HoldLot { variant }),
        (any::<usize>(), 1i64..6).prop_map(|(pick, buyer)| Op::SellLot { pick, buyer }),
        any::<usize>().prop_map(|pick| Op::ReturnLot { pick }),
    ]
}

/// What the database would hold after applying the events, kept apart from the state machine
/// so that the events alone are proven to carry every change.
#[derive(Default)]
struct Ledger {
    stock: HashMap<VariantId, i64>,
    sale_left: HashMap<SaleId, i64>,
    sale_variant: HashMap<SaleId, VariantId>,
    reserved: HashMap<OrderId, (VariantId, i64, Option<SaleId>, UserId)>,
    paid: HashMap<VariantId, i64>,
    held: HashMap<(SaleId, UserId), i64>,
    sale_limit: HashMap<SaleId, i64>,
    lots: HashMap<AuctionId, VariantId>,
}

impl Ledger {
    fn apply(&mut self, e: &Event) {
        match e {
            Event::SaleStarted { sale, .. } => {
                *self.stock.entry(sale.variant_id).or_default() -= i64::from(sale.quantity);
                self.sale_left.insert(sale.id, i64::from(sale.quantity));
                self.sale_variant.insert(sale.id, sale.variant_id);
                self.sale_limit
                    .insert(sale.id, i64::from(sale.per_buyer_limit));
            }
            Event::SaleEnded {
                sale_id,
                variant_id,
                returned,
                ..
            } => {
                *self.sale_left.entry(*sale_id).or_default() -= i64::from(*returned);
                *self.stock.entry(*variant_id).or_default() += i64::from(*returned);
            }
            Event::CodeCreated { .. } => {}
            Event::LotHeld {
                auction_id,
                variant_id,
                ..
            } => {
                *self.stock.entry(*variant_id).or_default() -= 1;
                self.lots.insert(*auction_id, *variant_id);
            }
            Event::LotReturned {
                auction_id,
                variant_id,
                ..
            } => {
                *self.stock.entry(*variant_id).or_default() += 1;
                self.lots.remove(auction_id).expect("returned a held lot");
            }
            Event::Reserved { order, .. } => {
                let q = i64::from(order.quantity);
                match (order.auction_id, order.sale_id) {
                    (Some(a), _) => {
                        self.lots.remove(&a).expect("sold a held lot");
                    }
                    (None, Some(s)) => {
                        *self.sale_left.entry(s).or_default() -= q;
                        *self.held.entry((s, order.buyer)).or_default() += q;
                    }
                    (None, None) => *self.stock.entry(order.variant_id).or_default() -= q,
                }
                self.reserved
                    .insert(order.id, (order.variant_id, q, order.sale_id, order.buyer));
            }
            Event::Paid { order_id, .. } => {
                let (v, q, _, _) = self.reserved.remove(order_id).expect("paid a reservation");
                *self.paid.entry(v).or_default() += q;
            }
            Event::Released {
                order_id,
                to_sale,
                variant_id,
                ..
            } => {
                let (_, q, sale, buyer) = self
                    .reserved
                    .remove(order_id)
                    .expect("released a reservation");
                if let Some(s) = sale {
                    *self.held.entry((s, buyer)).or_default() -= q;
                }
                match to_sale {
                    Some(s) => *self.sale_left.entry(*s).or_default() += q,
                    None => *self.stock.entry(*variant_id).or_default() += q,
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// No sequence of reserve / confirm / release / expire / sale start and end drives any count
    /// below zero or loses a unit, and the events carry exactly the changes the machine made.
    #[test]
    fn stock_is_conserved_and_never_negative(ops in prop::collection::vec(op(), 1..80)) {
        const INITIAL: u32 = 12;
        let mut c = show(INITIAL);
        let mut ledger = Ledger::default();
        ledger.stock.insert(SHADE, i64::from(INITIAL));
        ledger.stock.insert(SIZE, i64::from(INITIAL));
        let mut now = Timestamp(0);
        let mut next_id = 1;
        let mut sale_ids: Vec<SaleId> = Vec::new();
        let mut order_ids: Vec<OrderId> = Vec::new();
        let mut lot_ids: Vec<AuctionId> = Vec::new();
        for op in ops {
            let events = match op {
                Op::StartSale { variant, quantity, limit } => {
                    next_id += 1;
                    let v = if variant { SHADE } else { SIZE };
                    let r = c.start_sale(now, sale_req(next_id, v, quantity, limit));
                    if r.is_ok() { sale_ids.push(SaleId(next_id)); }
                    r.unwrap_or_default()
                }
                Op::EndSale { pick } if !sale_ids.is_empty() => {
                    c.end_sale(sale_ids[pick % sale_ids.len()], SaleEndReason::Host).unwrap_or_default()
                }
                Op::Buy { buyer, sale, pick, qty } => {
                    next_id += 1;
                    let item = if sale && !sale_ids.is_empty() {
                        Item::Sale(sale_ids[pick % sale_ids.len()])
                    } else if pick % 2 == 0 { Item::Variant(SHADE) } else { Item::Variant(SIZE) };
                    let r = c.reserve(now, &buy(next_id, buyer, item, qty));
                    if r.is_ok() { order_ids.push(OrderId(next_id)); }
                    r.unwrap_or_default()
                }
                Op::Confirm { pick } if !order_ids.is_empty() => {
                    c.confirm(order_ids[pick % order_ids.len()], None).unwrap_or_default()
                }
                Op::Release { pick, expired } if !order_ids.is_empty() => {
                    let reason = if expired { ReleaseReason::Expired } else { ReleaseReason::Declined };
                    c.release(order_ids[pick % order_ids.len()], reason).unwrap_or_default()
                }
                Op::Tick { advance_ms } => {
                    now = now.plus_ms(advance_ms);
                    c.tick(now)
                }
                Op::HoldLot { variant } => {
                    next_id += 1;
                    let r = c.hold_lot(AuctionId(next_id), if variant { SHADE } else { SIZE });
                    if r.is_ok() { lot_ids.push(AuctionId(next_id)); }
                    r.unwrap_or_default()
                }
                Op::SellLot { pick, buyer } if !lot_ids.is_empty() => {
                    next_id += 1;
                    let r = c.sell_lot(lot_ids[pick % lot_ids.len()], OrderId(next_id), UserId(buyer), 2_500, Timestamp(600_000));
                    if r.is_ok() { order_ids.push(OrderId(next_id)); }
                    r.unwrap_or_default()
                }
                Op::ReturnLot { pick } if !lot_ids.is_empty() => c.return_lot(lot_ids[pick % lot_ids.len()]),
                _ => Vec::new(),
            };
            for e in &events {
                ledger.apply(e);
            }
            for v in [SHADE, SIZE] {
                let on_hand = ledger.stock[&v];
                let in_sales: i64 = ledger.sale_left.iter().filter(|(s, _)| ledger.sale_variant[*s] == v).map(|(_, n)| *n).sum();
                let reserved: i64 = ledger.reserved.values().filter(|r| r.0 == v).map(|r| r.1).sum();
                let paid = ledger.paid.get(&v).copied().unwrap_or(0);
                let lots = ledger.lots.values().filter(|lv| **lv == v).count() as i64;
                prop_assert!(on_hand >= 0 && ledger.sale_left.values().all(|n| *n >= 0));
                prop_assert_eq!(on_hand + in_sales + lots + reserved + paid, i64::from(INITIAL));
                prop_assert_eq!(c.variant(v).map(|x| i64::from(x.stock)), Some(on_hand));
            }
            for ((sale, _), held) in &ledger.held {
                prop_assert!(*held <= ledger.sale_limit[sale], "per-buyer limit broken");
            }
        }
    }
}

#[test]
fn a_buyer_pays_shipping_once_per_show_until_that_order_is_released() {
    let mut c = ShowCommerce::restore(
        SHOW,
        Restore {
            variants: vec![variant(SHADE, 10)],
            shipping_fee_cents: 500,
            ..Restore::default()
        },
    );
    let first = c
        .reserve(Timestamp(0), &buy(1, 7, Item::Variant(SHADE), 1))
        .expect("reserved");
    let second = c
        .reserve(Timestamp(0), &buy(2, 7, Item::Variant(SHADE), 2))
        .expect("reserved");
    let totals = |events: &[Event]| match &events[0] {
        Event::Reserved { order, .. } => (order.shipping_cents, order.total_cents),
        _ => (0, 0),
    };
    assert_eq!(totals(&first), (500, 2_500));
    assert_eq!(
        totals(&second),
        (0, 4_000),
        "combined shipping: later orders ship free"
    );
    c.hold_lot(AuctionId(3), SHADE).expect("held");
    let won = c
        .sell_lot(AuctionId(3), OrderId(3), UserId(7), 900, Timestamp(9))
        .expect("sold");
    assert_eq!(
        totals(&won),
        (0, 900),
        "auction wins join the same shipment"
    );
    // The order carrying the fee is declined: the buyer's next order carries it instead.
    c.release(OrderId(1), ReleaseReason::Declined)
        .expect("released");
    let next = c
        .reserve(Timestamp(0), &buy(4, 7, Item::Variant(SHADE), 1))
        .expect("reserved");
    assert_eq!(totals(&next), (500, 2_500));
    let other = c
        .reserve(Timestamp(0), &buy(5, 8, Item::Variant(SHADE), 1))
        .expect("reserved");
    assert_eq!(totals(&other).0, 500, "each buyer has their own shipment");
}
