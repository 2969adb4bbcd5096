use expect_test::expect;
use proptest::prelude::*;

use super::*;

fn terms(mode: Mode) -> Terms {
    Terms::new(100, 30, mode, Increments::standard()).expect("valid terms")
}

fn standard() -> Mode {
    Mode::Standard { extend_ms: 10_000 }
}

fn t(ms: i64) -> Timestamp {
    Timestamp(ms)
}

#[test]
fn increments_follow_the_table() {
    let inc = Increments::standard();
    assert_eq!(inc.step(100), 100);
    assert_eq!(inc.step(2_999), 100);
    assert_eq!(inc.step(3_000), 200);
    assert_eq!(inc.step(250_000), 5_000);
    assert!(Increments::new(vec![(100, 1)]).is_err());
    assert!(Increments::new(vec![(0, 1), (0, 2)]).is_err());
    assert!(Terms::new(100, 121, standard(), Increments::standard()).is_err());
    assert!(
        Terms::new(
            100,
            30,
            Mode::Standard { extend_ms: 0 },
            Increments::standard()
        )
        .is_err()
    );
}

#[test]
fn a_typical_auction_log_snapshot() {
    let (mut a, start) =
        Auction::start(AuctionId(9), "Booster box".into(), terms(standard()), t(0));
    let mut log = vec![start];
    log.extend(a.bid(t(1_000), "ana", BidKind::Bid, 100, None));
    log.extend(a.bid(t(2_000), "bo", BidKind::Max, 1_000, None));
    log.extend(a.bid(t(3_000), "ana", BidKind::Bid, 150, None));
    log.extend(a.bid(t(4_000), "ana", BidKind::Bid, 500, None));
    log.extend(a.bid(t(25_000), "cy", BidKind::Bid, 1_200, None));
    log.extend(a.bid(
        t(26_000),
        "bo",
        BidKind::Bid,
        1_300,
        Some("spending_limit".into()),
    ));
    log.extend(a.bid(t(26_500), "cy", BidKind::Bid, 1_400, None));
    assert!(a.close_if_due(t(34_999)).is_none());
    log.extend(a.close_if_due(t(35_000)));
    log.extend(a.bid(t(35_001), "bo", BidKind::Bid, 5_000, None));
    let text: Vec<String> = log
        .iter()
        .map(|e| serde_json::to_string(e).expect("json"))
        .collect();
    expect![[r#"
        {"type":"started","auction_id":9,"lot":"Booster box","terms":{"start_cents":100,"duration_ms":30000,"mode":"standard","extend_ms":10000,"increments":[[0,100],[3000,200],[5000,300],[10000,500],[30000,1000],[100000,2000],[200000,5000]]},"at":0,"ends_at":30000}
        {"type":"bid","bidder":"ana","kind":"bid","amount_cents":100,"at":1000,"result":{"outcome":"accepted","price_cents":100,"leader":"ana","ends_at":30000}}
        {"type":"bid","bidder":"bo","kind":"max","amount_cents":1000,"at":2000,"result":{"outcome":"accepted","price_cents":200,"leader":"bo","ends_at":30000}}
        {"type":"bid","bidder":"ana","kind":"bid","amount_cents":150,"at":3000,"result":{"outcome":"rejected","reason":"bid_too_low","min_cents":300}}
        {"type":"bid","bidder":"ana","kind":"bid","amount_cents":500,"at":4000,"result":{"outcome":"accepted","price_cents":600,"leader":"bo","ends_at":30000}}
        {"type":"bid","bidder":"cy","kind":"bid","amount_cents":1200,"at":25000,"result":{"outcome":"accepted","price_cents":1200,"leader":"cy","ends_at":35000}}
        {"type":"extended","at":25000,"ends_at":35000}
        {"type":"bid","bidder":"bo","kind":"bid","amount_cents":1300,"at":26000,"result":{"outcome":"rejected","reason":"policy","code":"spending_limit"}}
        {"type":"bid","bidder":"cy","kind":"bid","amount_cents":1400,"at":26500,"result":{"outcome":"rejected","reason":"already_winning"}}
        {"type":"ended","at":35000,"winner":"cy","price_cents":1200}
        {"type":"bid","bidder":"bo","kind":"bid","amount_cents":5000,"at":35001,"result":{"outcome":"rejected","reason":"auction_closed"}}"#]]
    .assert_eq(&text.join("\n"));
    assert_eq!(
        replay(&log),
        Ok(Replayed {
            winner: Some("cy".into()),
            price_cents: Some(1_200),
            ended: true
        })
    );
}

#[test]
fn replay_names_the_entry_that_breaks_the_rules() {
    let (mut a, start) = Auction::start(AuctionId(1), "lot".into(), terms(Mode::SuddenDeath), t(0));
    let mut log = vec![start];
    log.extend(a.bid(t(1_000), "ana", BidKind::Bid, 100, None));
    log.extend(a.bid(t(2_000), "bo", BidKind::Bid, 300, None));
    log.extend(a.close_if_due(t(30_000)));
    assert!(replay(&log).is_ok());
    let mut forged = log.clone();
    if let Entry::Bid {
        result: Outcome::Accepted { price_cents, .. },
        ..
    } = &mut forged[2]
    {
        *price_cents = 250;
    }
    assert_eq!(replay(&forged).map_err(|e| e.index), Err(2));
    let mut early = log.clone();
    early[3] = Entry::Ended {
        at: t(29_000),
        winner: Some("bo".into()),
        price_cents: Some(300),
    };
    assert_eq!(replay(&early).map_err(|e| e.index), Err(3));
}

#[test]
fn amounts_that_are_not_prices_are_refused_and_terms_are_checked_on_replay() {
    let (mut a, start) = Auction::start(AuctionId(1), "lot".into(), terms(standard()), t(0));
    let entries = a.bid(t(1), "ana", BidKind::Bid, i64::MAX, None);
    assert!(matches!(
        &entries[0],
        Entry::Bid {
            result: Outcome::Rejected(Rejection::OutOfRange),
            ..
        }
    ));
    assert_eq!(a.standing().leader, None);
    let mut forged = start;
    if let Entry::Started { terms, .. } = &mut forged {
        terms.increments = Increments(vec![(0, 0)]);
    }
    assert_eq!(replay(&[forged]).map_err(|e| e.index), Err(0));
}

#[test]
fn the_earlier_maximum_wins_a_tie_at_that_maximum() {
    let (mut a, _) = Auction::start(AuctionId(1), "lot".into(), terms(Mode::SuddenDeath), t(0));
    a.bid(t(1), "first", BidKind::Max, 5_000, None);
    a.bid(t(2), "second", BidKind::Max, 5_000, None);
    let s = a.standing();
    assert_eq!((s.leader.as_deref(), s.price_cents), (Some("first"), 5_000));
}

/// Maxima on a $100 grid: distinct values are two largest steps apart, so the two best maxima are
/// never refused as too low (a lower one may be, once the price has passed it, without changing
/// the outcome).
fn maxima() -> impl Strategy<Value = Vec<i64>> {
    prop::collection::vec((1i64..30).prop_map(|k| k * 10_000), 1..12)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn proxy_bidding_ends_at_the_rule_price_and_winner_in_any_order(maxima in maxima(), order in any::<prop::sample::Index>()) {
        let mut bids: Vec<(String, i64)> = maxima.iter().enumerate().map(|(i, m)| (format!("b{i}"), *m)).collect();
        let k = order.index(bids.len());
        bids.rotate_left(k);
        let (mut a, _) = Auction::start(AuctionId(1), "lot".into(), terms(Mode::SuddenDeath), t(0));
        for (i, (bidder, max)) in bids.iter().enumerate() {
            let entries = a.bid(t(i as i64), bidder, BidKind::Max, *max, None);
            let fine = matches!(entries[0], Entry::Bid { result: Outcome::Accepted { .. } | Outcome::Rejected(Rejection::BidTooLow { .. }), .. });
            prop_assert!(fine, "{entries:?}");
        }
        // The rule: highest maximum wins (earliest on a tie); price is the second maximum plus
        // one step, capped at the winner's maximum; a lone bidder pays the starting price.
        let mut ranked: Vec<(usize, &(String, i64))> = bids.iter().enumerate().collect();
        ranked.sort_by(|x, y| y.1.1.cmp(&x.1.1).then(x.0.cmp(&y.0)));
        let (winner, top) = (&ranked[0].1.0, ranked[0].1.1);
        let price = match ranked.get(1) {
            None => 100,
            Some((_, (_, second))) => (second + Increments::standard().step(*second)).min(top),
        };
        let s = a.standing();
        prop_assert_eq!(s.leader.as_ref(), Some(winner));
        prop_assert_eq!(s.price_cents, price);
    }

    /// Random bids of both kinds: standard auctions never end within `extend` of an accepted bid,
    /// sudden death never moves its deadline, and the log always replays to the same result.
    #[test]
    fn deadlines_follow_the_mode_and_logs_replay(
        sudden in any::<bool>(),
        bids in prop::collection::vec((0usize..5, any::<bool>(), 1i64..400, 0i64..4_000), 1..60),
    ) {
        let mode = if sudden { Mode::SuddenDeath } else { standard() };
        let (mut a, start) = Auction::start(AuctionId(1), "lot".into(), terms(mode), t(0));
        let mut log = vec![start];
        let mut now = 0;
        let mut last_accepted = None;
        for (who, is_max, steps, gap) in bids {
            now += gap;
            log.extend(a.close_if_due(t(now)));
            let kind = if is_max { BidKind::Max } else { BidKind::Bid };
            let bidder = format!("b{who}");
            // A leader quietly raising their own maximum is accepted but moves nothing on screen,
            // so it does not extend the clock (else a leader could hold an auction open).
            let secret_raise = a.standing().leader.as_deref() == Some(bidder.as_str());
            let entries = a.bid(t(now), &bidder, kind, steps * 100, None);
            if !secret_raise && matches!(entries[0], Entry::Bid { result: Outcome::Accepted { .. }, .. }) {
                last_accepted = Some(now);
            }
            log.extend(entries);
            if sudden {
                prop_assert_eq!(a.ends_at(), t(30_000));
            }
        }
        let end = a.ends_at().millis();
        log.extend(a.close_if_due(t(end)));
        if let (false, Some(at)) = (sudden, last_accepted) {
            prop_assert!(end >= at + 10_000, "ended {end} too soon after a bid at {at}");
        }
        let replayed = replay(&log).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let s = a.standing();
        prop_assert_eq!(replayed.winner, s.leader.clone());
        prop_assert_eq!(replayed.price_cents, s.leader.as_ref().map(|_| s.price_cents));
    }
}
