//! Purchase announcements: social proof without a flood.
//!
//! A flash sale that sells out pays thousands of orders a second, and one `purchase` message per
//! order would be thousands of lines a second in every viewer's chat and, in a room of 10,000
//! viewers, millions of deliveries that hold up the stock counts behind them. So the first
//! purchase after a quiet spell is announced at once, and the ones that follow are gathered per
//! product and announced together once [`ANNOUNCE_EVERY_MS`] has passed: "Ana and 212 others
//! bought 215 × Mug".

use crate::ids::ProductId;
use crate::protocol::ServerMsg;
use crate::time::Timestamp;

/// At most one announcement per product in this long.
pub const ANNOUNCE_EVERY_MS: i64 = 1_000;

#[derive(Debug, Default)]
pub struct Purchases {
    last_announced: Option<Timestamp>,
    /// In the order their first purchase came in.
    gathered: Vec<Gathered>,
}

#[derive(Debug)]
struct Gathered {
    product: ProductId,
    product_title: String,
    /// The first buyer since the last announcement: the name shown.
    buyer: String,
    others: u32,
    quantity: u32,
}

impl Purchases {
    /// A paid order, to be announced by [`Self::due`].
    pub fn record(
        &mut self,
        product: ProductId,
        product_title: &str,
        buyer: String,
        quantity: u32,
    ) {
        match self.gathered.iter_mut().find(|g| g.product == product) {
            Some(g) => {
                g.others = g.others.saturating_add(1);
                g.quantity = g.quantity.saturating_add(quantity);
            }
            None => self.gathered.push(Gathered {
                product,
                product_title: product_title.to_owned(),
                buyer,
                others: 0,
                quantity,
            }),
        }
    }

    /// The announcements to publish at `now`: everything gathered, unless the last announcement
    /// was less than [`ANNOUNCE_EVERY_MS`] ago.
    pub fn due(&mut self, now: Timestamp) -> Vec<ServerMsg> {
        let quiet = self
            .last_announced
            .is_none_or(|last| now.millis() >= last.millis() + ANNOUNCE_EVERY_MS);
        if self.gathered.is_empty() || !quiet {
            return Vec::new();
        }
        self.last_announced = Some(now);
        self.all()
    }

    /// Everything gathered, whenever it was last announced (the show is ending).
    pub fn all(&mut self) -> Vec<ServerMsg> {
        self.gathered
            .drain(..)
            .map(|g| ServerMsg::Purchase {
                buyer: g.buyer,
                product_title: g.product_title,
                quantity: g.quantity,
                others: g.others,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn purchase(msg: &ServerMsg) -> (&str, &str, u32, u32) {
        match msg {
            ServerMsg::Purchase {
                buyer,
                product_title,
                quantity,
                others,
            } => (buyer, product_title, *quantity, *others),
            other => panic!("not a purchase: {other:?}"),
        }
    }

    #[test]
    fn the_first_purchase_is_announced_at_once() {
        let mut p = Purchases::default();
        p.record(ProductId(1), "Mug", "Ana".into(), 2);
        let due = p.due(Timestamp(10_000));
        assert_eq!(due.len(), 1);
        assert_eq!(purchase(&due[0]), ("Ana", "Mug", 2, 0));
        assert!(
            p.due(Timestamp(10_001)).is_empty(),
            "nothing is announced twice"
        );
    }

    #[test]
    fn a_rush_is_gathered_per_product_and_announced_once_a_second() {
        let mut p = Purchases::default();
        p.record(ProductId(1), "Mug", "Ana".into(), 1);
        assert_eq!(p.due(Timestamp(10_000)).len(), 1);
        for i in 0..500 {
            p.record(ProductId(1), "Mug", format!("buyer {i}"), 1);
            p.record(ProductId(2), "Scarf", format!("buyer {i}"), 2);
            assert!(p.due(Timestamp(10_000 + i)).is_empty(), "within the second");
        }
        let due = p.due(Timestamp(11_000));
        assert_eq!(due.len(), 2);
        assert_eq!(purchase(&due[0]), ("buyer 0", "Mug", 500, 499));
        assert_eq!(purchase(&due[1]), ("buyer 0", "Scarf", 1_000, 499));
        assert!(p.due(Timestamp(20_000)).is_empty(), "nothing left");
    }

    #[test]
    fn a_show_that_ends_announces_what_it_gathered() {
        let mut p = Purchases::default();
        p.record(ProductId(1), "Mug", "Ana".into(), 1);
        p.due(Timestamp(10_000));
        p.record(ProductId(1), "Mug", "Ben".into(), 1);
        assert!(p.due(Timestamp(10_500)).is_empty());
        let all = p.all();
        assert_eq!(all.len(), 1);
        assert_eq!(purchase(&all[0]), ("Ben", "Mug", 1, 0));
    }
}
