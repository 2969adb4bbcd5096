//! Live auctions: the host starts one on a lineup variant, viewers bid (over HTTP or the live
//! socket) or leave a maximum before it starts, and a lot whose winner's charge failed goes to
//! the next bidder. The show's owner decides every bid; this layer checks who may bid first.

use hawker_core::InvalidInput;
use hawker_core::auction::{BidKind, Mode, Outcome, Terms};
use hawker_core::ids::{AuctionId, ShowId, VariantId};
use hawker_core::time::Timestamp;

use super::{ServiceError, ServiceResult, Services};
use crate::live::auctions::{PreBid, bid_policy};
use crate::live::{CommerceCmd, LiveShow, Refusal};
use crate::secrets::random_token;
use crate::store::{Show, ShowStatus, User, new_id};

/// Starts an auction of one unit of `variant_id`, which must be in the show's lineup; answers
/// its id and deadline.
pub async fn start(
    s: &Services,
    show: &Show,
    variant_id: VariantId,
    start_cents: i64,
    duration_s: i64,
    mode: Mode,
) -> ServiceResult<(AuctionId, Timestamp)> {
    let live = s.hub.live(show).await?;
    let terms = Terms::new(start_cents, duration_s, mode, s.config.increments()?)?;
    let product = s.store.product_of_variant(variant_id).await?;
    let lot = match &product {
        Some(p) if show.product_ids.contains(&p.id) => {
            let name = p
                .variants
                .iter()
                .find(|v| v.id == variant_id)
                .map(|v| v.name.clone())
                .unwrap_or_default();
            format!("{} · {name}", p.title)
        }
        _ => return Err(ServiceError::NotInLineup),
    };
    Ok(live
        .ask(|reply| CommerceCmd::StartAuction {
            id: AuctionId(new_id()),
            variant_id,
            lot,
            terms,
            salt: random_token(16),
            reply,
        })
        .await?)
}

/// A bid, as the bidder sent it.
pub struct Bid {
    pub auction_id: AuctionId,
    pub kind: BidKind,
    pub amount_cents: i64,
    /// The show the bidder is watching, if they said: a bid on another show's lot is refused.
    pub watching: Option<ShowId>,
    /// A retry with the same key gets the first answer.
    pub key: Option<String>,
}

/// Places a bid with the owner of `live`, the show whose auction it is. The policy checks
/// (the host's own lot, the bidder's spending limit, the wrong show) fail closed, and what they
/// refuse still reaches the owner, so the log records every attempt.
pub async fn bid(s: &Services, live: &LiveShow, bidder: &User, bid: Bid) -> ServiceResult<Outcome> {
    let policy = if bid.watching.is_some_and(|w| w != live.show_id) {
        Some("wrong_show".to_owned())
    } else {
        let now = s.clock.now();
        bid_policy(
            s.store.as_ref(),
            live.host,
            bidder.id,
            bid.amount_cents,
            now,
        )
        .await?
    };
    Ok(live
        .ask(|reply| CommerceCmd::Bid {
            auction_id: bid.auction_id,
            bidder: bidder.id,
            name: bidder.display_name.clone(),
            kind: bid.kind,
            amount_cents: bid.amount_cents,
            policy,
            key: bid.key,
            reply,
        })
        .await?)
}

/// Places a bid on auction `auction_id` wherever it runs (the API's way in).
pub async fn bid_on(s: &Services, bidder: &User, bid: Bid) -> ServiceResult<Outcome> {
    let row = s
        .store
        .auction(bid.auction_id)
        .await?
        .ok_or(ServiceError::NotFound("auction"))?;
    // An auction's owner runs from its start until well after its end.
    let live = s.hub.get(row.show_id).ok_or(ServiceError::AuctionClosed)?;
    match self::bid(s, &live, bidder, bid).await {
        // Ended long enough ago that its owner let it go (`live::auctions::kept_in_memory`).
        Err(ServiceError::Refused(Refusal::UnknownAuction)) if row.summary.ended => {
            Err(ServiceError::AuctionClosed)
        }
        answer => answer,
    }
}

/// A maximum on a lineup variant before its auction starts; it joins that auction as a max bid
/// the moment it opens.
pub async fn pre_bid(
    s: &Services,
    show: &Show,
    bidder: &User,
    variant_id: VariantId,
    max_cents: i64,
) -> ServiceResult<()> {
    if show.status == ShowStatus::Ended {
        return Err(Refusal::ShowEnded.into());
    }
    if !(1..=hawker_core::money::Price::MAX_CENTS).contains(&max_cents) {
        return Err(InvalidInput::new("max_cents", "a positive number of cents").into());
    }
    let in_lineup = s
        .store
        .product_of_variant(variant_id)
        .await?
        .is_some_and(|p| show.product_ids.contains(&p.id));
    if !in_lineup {
        return Err(ServiceError::NotInLineup);
    }
    let now = s.clock.now();
    match bid_policy(s.store.as_ref(), show.seller_id, bidder.id, max_cents, now)
        .await?
        .as_deref()
    {
        Some("shill_bid") => return Err(ServiceError::ShillBid),
        Some(_) => return Err(ServiceError::OverSpendingLimit),
        None => {}
    }
    let running = s
        .store
        .auctions_of_show(show.id)
        .await?
        .into_iter()
        .any(|a| a.variant_id == variant_id && !a.summary.ended);
    if running {
        return Err(ServiceError::LotOnAuction);
    }
    s.store
        .save_pre_bid(show.id, variant_id, bidder.id, max_cents, now)
        .await?;
    if let Some(live) = s.hub.get(show.id) {
        let pre = PreBid {
            variant_id,
            user: bidder.id,
            name: bidder.display_name.clone(),
            max_cents,
        };
        let _ = live.commerce.send(CommerceCmd::PreBid(pre)).await;
    }
    Ok(())
}

/// The winner's charge failed: offers the lot to the next bidder at their highest bid, charged
/// to their saved card. Answers their pseudonym and the price.
pub async fn second_chance(
    s: &Services,
    show: &Show,
    auction_id: AuctionId,
) -> ServiceResult<(String, i64)> {
    let live = match s.hub.get(show.id) {
        Some(live) => live,
        None => s.hub.open(show).await?,
    };
    Ok(live
        .ask(|reply| CommerceCmd::SecondChance { auction_id, reply })
        .await?)
}
