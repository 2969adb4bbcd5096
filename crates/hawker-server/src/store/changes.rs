//! A group commit's events as the rows they change: new rows per table, each counter's net change
//! summed once, settled orders, and the log lines. A backend writes the plan table by table with
//! whatever is cheapest for it (SQLite: one cached statement per row on its commit connection; a
//! networked database: multi-row statements, so a batch costs a few round trips, not a few per
//! event).
//!
//! Pure: no IO, so every backend writes the same plan and tests check it without a database.

use std::collections::BTreeMap;

use hawker_core::commerce::{Event, OrderLine, Sale};
use hawker_core::discount::CodeRule;
use hawker_core::ids::{CodeId, OrderId, SaleId, VariantId};
use hawker_core::protocol::HostStats;

use super::{Batch, OrderMeta, StoreError};

/// What one batch writes, table by table. A backend applies it in field order: rows are inserted
/// before the counters and statuses that refer to them change.
#[derive(Debug, Default)]
pub struct RowChanges<'a> {
    pub new_sales: Vec<&'a Sale>,
    pub new_codes: Vec<&'a CodeRule>,
    pub new_orders: Vec<(&'a OrderLine, &'a OrderMeta)>,
    /// The net change of each counter. Counters only add and subtract, so adding the sums once
    /// leaves what applying the events one by one would; zero sums are left out.
    pub sale_remaining: BTreeMap<SaleId, i64>,
    pub variant_stock: BTreeMap<VariantId, i64>,
    pub code_uses: BTreeMap<CodeId, i64>,
    /// Running sales that ended.
    pub ended_sales: Vec<SaleId>,
    /// Reserved orders that were settled: the status they move to and the charge's reference.
    pub settled: Vec<Settled<'a>>,
    /// What the orders paid in this batch add to the show's totals.
    pub paid: HostStats,
    /// Every event as its append-only log line, in decision order.
    pub log: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled<'a> {
    pub order_id: OrderId,
    pub status: &'static str,
    pub payment_ref: Option<&'a str>,
}

impl<'a> RowChanges<'a> {
    pub fn of(batch: &'a Batch) -> Result<Self, StoreError> {
        let mut c = Self::default();
        let metas: BTreeMap<OrderId, &OrderMeta> =
            batch.new_orders.iter().map(|m| (m.order_id, m)).collect();
        for event in &batch.events {
            match event {
                Event::SaleStarted { sale, .. } => {
                    c.new_sales.push(sale);
                    add(
                        &mut c.variant_stock,
                        sale.variant_id,
                        -i64::from(sale.quantity),
                    );
                }
                Event::SaleEnded {
                    sale_id,
                    variant_id,
                    returned,
                    ..
                } => {
                    c.ended_sales.push(*sale_id);
                    add(&mut c.sale_remaining, *sale_id, -i64::from(*returned));
                    add(&mut c.variant_stock, *variant_id, i64::from(*returned));
                }
                Event::CodeCreated { rule } => c.new_codes.push(rule),
                Event::LotHeld { variant_id, .. } => add(&mut c.variant_stock, *variant_id, -1),
                Event::LotReturned { variant_id, .. } => add(&mut c.variant_stock, *variant_id, 1),
                Event::Reserved { order, .. } => {
                    let meta = metas.get(&order.id).ok_or_else(|| {
                        StoreError::Backend(anyhow::anyhow!(
                            "order {} has no metadata in its batch",
                            order.id
                        ))
                    })?;
                    c.new_orders.push((order, meta));
                    let q = i64::from(order.quantity);
                    match (order.auction_id, order.sale_id) {
                        // The auction already took its unit off hand when it started.
                        (Some(_), _) => {}
                        (None, Some(sale)) => add(&mut c.sale_remaining, sale, -q),
                        (None, None) => add(&mut c.variant_stock, order.variant_id, -q),
                    }
                    if let Some(code) = order.code_id {
                        add(&mut c.code_uses, code, 1);
                    }
                }
                Event::Paid {
                    order_id,
                    payment_ref,
                    quantity,
                    total_cents,
                    ..
                } => {
                    c.settled.push(Settled {
                        order_id: *order_id,
                        status: "paid",
                        payment_ref: payment_ref.as_deref(),
                    });
                    c.paid.orders += 1;
                    c.paid.units += u64::from(*quantity);
                    c.paid.revenue_cents += total_cents;
                }
                Event::Released {
                    order_id,
                    reason,
                    variant_id,
                    to_sale,
                    quantity,
                    code_id,
                    ..
                } => {
                    c.settled.push(Settled {
                        order_id: *order_id,
                        status: reason.order_status(),
                        payment_ref: None,
                    });
                    let q = i64::from(*quantity);
                    match to_sale {
                        Some(sale) => add(&mut c.sale_remaining, *sale, q),
                        None => add(&mut c.variant_stock, *variant_id, q),
                    }
                    if let Some(code) = code_id {
                        add(&mut c.code_uses, *code, -1);
                    }
                }
            }
            c.log
                .push(serde_json::to_string(event).map_err(|e| StoreError::Backend(e.into()))?);
        }
        c.sale_remaining.retain(|_, d| *d != 0);
        c.variant_stock.retain(|_, d| *d != 0);
        c.code_uses.retain(|_, d| *d != 0);
        Ok(c)
    }
}

fn add<K: Ord>(counters: &mut BTreeMap<K, i64>, key: K, delta: i64) {
    *counters.entry(key).or_default() += delta;
}

#[cfg(test)]
mod tests {
    use hawker_core::commerce::ReleaseReason;
    use hawker_core::ids::UserId;
    use hawker_core::money::Currency;
    use hawker_core::time::Timestamp;

    use super::*;

    fn line(id: i64, sale: Option<i64>) -> OrderLine {
        OrderLine {
            id: OrderId(id),
            buyer: UserId(7),
            variant_id: VariantId(3),
            sale_id: sale.map(SaleId),
            quantity: 2,
            unit_price_cents: 500,
            subtotal_cents: 1000,
            discount_cents: 0,
            total_cents: 1000,
            currency: Currency::USD,
            code_id: Some(CodeId(9)),
            hold_until: Timestamp(0),
            auction_id: None,
            shipping_cents: 0,
        }
    }

    fn meta(id: i64) -> OrderMeta {
        OrderMeta {
            order_id: OrderId(id),
            idempotency_key: format!("k{id}"),
            payment_method: "pm_card_visa".into(),
        }
    }

    #[test]
    fn many_events_become_one_row_per_order_and_one_sum_per_counter() {
        let batch = Batch {
            events: vec![
                Event::Reserved {
                    order: line(1, Some(5)),
                    left: 8,
                },
                Event::Reserved {
                    order: line(2, Some(5)),
                    left: 6,
                },
                Event::Paid {
                    order_id: OrderId(1),
                    buyer: UserId(7),
                    variant_id: VariantId(3),
                    sale_id: Some(SaleId(5)),
                    quantity: 2,
                    total_cents: 1000,
                    payment_ref: Some("ch_1".into()),
                },
                Event::Released {
                    order_id: OrderId(2),
                    reason: ReleaseReason::Declined,
                    variant_id: VariantId(3),
                    to_sale: Some(SaleId(5)),
                    quantity: 2,
                    code_id: Some(CodeId(9)),
                    left: 8,
                },
            ],
            new_orders: vec![meta(1), meta(2)],
            ..Batch::default()
        };
        let c = RowChanges::of(&batch).expect("a valid batch");
        assert_eq!(
            c.new_orders.iter().map(|(o, _)| o.id).collect::<Vec<_>>(),
            [OrderId(1), OrderId(2)]
        );
        assert_eq!(c.sale_remaining, BTreeMap::from([(SaleId(5), -2)]));
        assert_eq!(c.code_uses, BTreeMap::from([(CodeId(9), 1)]));
        assert!(c.variant_stock.is_empty());
        assert_eq!(
            c.settled,
            [
                Settled {
                    order_id: OrderId(1),
                    status: "paid",
                    payment_ref: Some("ch_1")
                },
                Settled {
                    order_id: OrderId(2),
                    status: "declined",
                    payment_ref: None
                }
            ]
        );
        assert_eq!(
            c.paid,
            HostStats {
                orders: 1,
                units: 2,
                revenue_cents: 1000
            }
        );
        assert_eq!(c.log.len(), 4);
        assert!(c.log[0].contains("reserved"));
    }

    #[test]
    fn a_reservation_without_its_metadata_is_refused() {
        let batch = Batch {
            events: vec![Event::Reserved {
                order: line(1, None),
                left: 0,
            }],
            ..Batch::default()
        };
        assert!(RowChanges::of(&batch).is_err());
    }
}
