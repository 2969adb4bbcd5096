//! The order lifecycle in any interleaving: buys (answered at once, or at the reservation with
//! the payment after), retries with the same key, cards that pay, decline or pay late, and the
//! seller's ship and refund (twice, sometimes), all fired together in an order a seeded
//! generator picks. Whatever the interleaving, when it settles: no unit is oversold or lost, no
//! order is charged twice, a refund reaches the provider once and only for an order that ends
//! refunded, a shipped order was never refunded, and each order took at most one of ship or
//! refund.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::future::join_all;
// Seeded: the same interleavings on every run, so a failure replays.
use hawker_fuzz::mutate::Rng;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[derive(Debug, Clone, Copy)]
enum Step {
    Buy { buyer: usize, asynchronous: bool },
    Retry { buyer: usize },
    Ship { buyer: usize },
    Refund { buyer: usize },
}

const CARDS: [&str; 3] = ["pm_card_visa", "pm_card_declined", "pm_card_slow"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_interleaving_of_buy_pay_ship_and_refund_keeps_every_promise() {
    const STOCK: i64 = 40;
    let app = spawn_app().await;
    let show = app.live_show(&[("Mug", 1_500, STOCK)]).await;
    let seller = show.seller.token.clone();
    let mut rng = Rng(0x5EED_CAFE_F00D_D00D);
    let mut orders: BTreeMap<(usize, usize), (String, i64, &str)> = BTreeMap::new();
    let mut successes: BTreeMap<i64, usize> = BTreeMap::new();
    let mut conflicts = 0;
    for round in 0..4 {
        let buyers = app.buyers(12).await;
        let cards: Vec<&str> = (0..buyers.len()).map(|_| CARDS[rng.below(3)]).collect();
        // Phase one: buys and their retries, shuffled, all at once.
        let mut steps: Vec<Step> = (0..buyers.len())
            .flat_map(|buyer| {
                let asynchronous = buyer % 2 == 0;
                [
                    Step::Buy {
                        buyer,
                        asynchronous,
                    },
                    Step::Retry { buyer },
                ]
            })
            .collect();
        shuffle(&mut rng, &mut steps);
        let answers = join_all(steps.iter().map(|step| {
            let (buyer, asynchronous) = match *step {
                Step::Buy { buyer, asynchronous } => (buyer, asynchronous),
                Step::Retry { buyer } => (buyer, false),
                _ => unreachable!("phase one only buys"),
            };
            let body = json!({ "show_id": show.show_id, "variant_id": show.variant_ids[0], "quantity": 1, "payment_method": cards[buyer] });
            let req = app.order_request(&buyers[buyer].token, &format!("r{round}b{buyer}"), &body);
            let req = if asynchronous { req.header("Prefer", "respond-async") } else { req };
            async move {
                let res = req.send().await.expect("sent");
                let status = res.status();
                (buyer, status, res.json::<Value>().await.unwrap_or_default())
            }
        }))
        .await;
        let mut ids: BTreeMap<usize, i64> = BTreeMap::new();
        for (buyer, status, body) in answers {
            assert!(
                matches!(status.as_u16(), 200 | 201 | 202 | 402 | 409),
                "round {round} buyer {buyer}: {status} {body}"
            );
            if let Some(id) = body["order"]["id"].as_i64() {
                let earlier = ids.insert(buyer, id);
                assert!(
                    earlier.is_none_or(|e| e == id),
                    "a retry with the same key made a second order"
                );
            }
        }
        // Phase two: ship and refund, some twice, shuffled and fired while slow payments settle.
        let mut steps: Vec<Step> = ids
            .keys()
            .flat_map(|&buyer| match rng.below(4) {
                0 => vec![Step::Ship { buyer }],
                1 => vec![Step::Refund { buyer }, Step::Refund { buyer }],
                2 => vec![Step::Ship { buyer }, Step::Refund { buyer }],
                _ => vec![],
            })
            .collect();
        shuffle(&mut rng, &mut steps);
        let acted = join_all(steps.iter().map(|step| {
            let (buyer, path, body) = match *step {
                Step::Ship { buyer } => (buyer, "ship", json!({ "tracking": "1Z" })),
                Step::Refund { buyer } => (buyer, "refund", json!({})),
                _ => unreachable!("phase two only ships and refunds"),
            };
            let id = ids[&buyer];
            let (app, seller) = (&app, seller.as_str());
            async move {
                let (status, body) = app
                    .post(seller, &format!("/api/v1/orders/{id}/{path}"), body)
                    .await;
                (id, status, body)
            }
        }))
        .await;
        for (id, status, body) in acted {
            assert!(
                status.is_success() || status == StatusCode::CONFLICT,
                "order {id}: {status} {body}"
            );
            if status.is_success() {
                *successes.entry(id).or_default() += 1;
            } else {
                conflicts += 1;
            }
        }
        for (buyer, id) in ids {
            orders.insert(
                (round, buyer),
                (buyers[buyer].token.clone(), id, cards[buyer]),
            );
        }
    }

    // Settle, then check every promise.
    let mut sold = 0;
    let mut ended: BTreeMap<String, usize> = BTreeMap::new();
    for (token, id, card) in orders.values() {
        let order = app.settled_order(token, *id, Duration::from_secs(10)).await;
        let status = order["status"].as_str().unwrap_or_default().to_owned();
        *ended.entry(status.clone()).or_default() += 1;
        let was_refunded = app.payments.refunded().contains(&format!("ch_test_{id}"));
        assert_eq!(status == "refunded", was_refunded, "order {id} is {status}");
        assert!(
            successes.get(id).copied().unwrap_or(0) <= 1,
            "order {id} shipped and refunded"
        );
        match status.as_str() {
            "paid" | "shipped" | "refunded" => {
                assert_ne!(
                    *card, "pm_card_declined",
                    "order {id} paid with a declined card"
                );
                sold += 1;
            }
            "declined" | "released" | "payment_failed" => {}
            other => panic!("order {id} ended {other}"),
        }
    }
    // Every path was taken, or the interleavings proved little.
    for path in ["paid", "shipped", "refunded"] {
        assert!(ended.contains_key(path), "no order ended {path}: {ended:?}");
    }
    assert!(ended.len() >= 4, "no declined payment: {ended:?}");
    assert!(conflicts > 0, "no ship or refund lost a race");
    assert_eq!(
        app.payments.successful_charges(),
        sold,
        "one charge per sold order"
    );
    assert_eq!(
        app.payments.refund_requests(),
        app.payments.refunded().len(),
        "no refund asked twice"
    );
    // Refunded units are not put back on sale (the seller decides), so: stock + sold = start.
    assert_eq!(app.stock(show.product_id).await, vec![STOCK - sold as i64]);
}

fn shuffle<T>(rng: &mut Rng, items: &mut [T]) {
    for i in (1..items.len()).rev() {
        items.swap(i, rng.below(i + 1));
    }
}
