//! Demo data for `hawker serve --demo`: two sellers, products with variants, one live show with a
//! running flash sale, and upcoming shows. Seeding is idempotent: a second run only restarts the
//! demo flash sale if it has ended.

use hawker_core::account::Role;
use hawker_core::commerce::SaleRequest;
use hawker_core::ids::{SaleId, ShowId};
use hawker_core::money::Price;
use tokio::sync::oneshot;

use crate::live::CommerceCmd;
use crate::secrets::{new_stream_key, token_hash};
use crate::service::shows::start_show;
use crate::state::AppState;
use crate::store::new_id;
use crate::store::{
    NewShow, NewUser, PageRequest, ProductEdit, ShowFilter, ShowStatus, User, VariantEdit,
};

/// Every demo account uses this password.
pub const DEMO_PASSWORD: &str = "hawker-demo";

pub async fn seed(state: &AppState) -> anyhow::Result<()> {
    let seller = match state
        .services
        .store
        .user_by_email("lumi@demo.hawker.dev")
        .await?
    {
        Some((user, _)) => user,
        None => create_everything(state).await?,
    };
    ensure_flash_sale(state, &seller).await
}

async fn user(state: &AppState, email: &str, name: &str, role: Role) -> anyhow::Result<User> {
    let password_hash = state
        .services
        .passwords
        .hash(DEMO_PASSWORD)
        .await
        .map_err(|e| anyhow::anyhow!("hashing the demo password: {e:?}"))?;
    Ok(state
        .services
        .store
        .create_user(
            &NewUser {
                email: email.into(),
                password_hash,
                display_name: name.into(),
                role,
            },
            state.services.clock.now(),
        )
        .await?)
}

fn product(title: &str, description: &str, variants: &[(&str, i64, i64)]) -> ProductEdit {
    ProductEdit {
        title: title.into(),
        description: description.into(),
        currency: hawker_core::money::Currency::USD,
        variants: variants
            .iter()
            .map(|(name, price, stock)| VariantEdit {
                id: None,
                name: (*name).into(),
                price_cents: *price,
                stock: *stock,
            })
            .collect(),
    }
}

async fn create_everything(state: &AppState) -> anyhow::Result<User> {
    let now = state.services.clock.now();
    let lumi = user(state, "lumi@demo.hawker.dev", "Lumi Beauty", Role::Seller).await?;
    let vault = user(state, "vault@demo.hawker.dev", "Card Vault", Role::Seller).await?;
    user(state, "ana@demo.hawker.dev", "Ana", Role::Buyer).await?;
    user(
        state,
        "mod@demo.hawker.dev",
        "Mo the moderator",
        Role::Moderator,
    )
    .await?;

    let lipstick = state
        .services
        .store
        .create_product(
            lumi.id,
            &product(
                "Velvet Matte Lipstick",
                "Long-wear matte finish, 12 hours, no transfer.",
                &[
                    ("Ruby", 2400, 300),
                    ("Nude Rose", 2400, 200),
                    ("Berry", 2400, 150),
                ],
            ),
            now,
        )
        .await?;
    let serum = state
        .services
        .store
        .create_product(
            lumi.id,
            &product(
                "Glow Serum",
                "Vitamin C serum for a morning glow.",
                &[("30 ml", 3900, 120), ("50 ml", 5900, 80)],
            ),
            now,
        )
        .await?;
    let palette = state
        .services
        .store
        .create_product(
            lumi.id,
            &product(
                "Sunset Eyeshadow Palette",
                "Twelve warm shades.",
                &[("One size", 4500, 60)],
            ),
            now,
        )
        .await?;
    let booster = state
        .services
        .store
        .create_product(
            vault.id,
            &product(
                "Booster Box — Series 7",
                "Sealed box of 36 packs.",
                &[("Sealed", 14_900, 12)],
            ),
            now,
        )
        .await?;
    let sleeves = state
        .services
        .store
        .create_product(
            vault.id,
            &product(
                "Card Sleeves (100)",
                "Matte, acid-free.",
                &[("Black", 999, 400), ("Clear", 899, 400)],
            ),
            now,
        )
        .await?;

    let live = state
        .services
        .store
        .create_show(
            &NewShow {
                seller_id: lumi.id,
                title: "Lipstick Drop: Velvet Matte launch".into(),
                category: "beauty".into(),
                scheduled_at: Some(now),
                stream_key_hash: token_hash(&new_stream_key()),
                product_ids: vec![lipstick.id, serum.id, palette.id],
            },
            now,
        )
        .await?;
    state
        .services
        .store
        .create_show(
            &NewShow {
                seller_id: vault.id,
                title: "Series 7 box break".into(),
                category: "trading cards".into(),
                scheduled_at: Some(now.plus_secs(2 * 3600)),
                stream_key_hash: token_hash(&new_stream_key()),
                product_ids: vec![booster.id, sleeves.id],
            },
            now,
        )
        .await?;
    state
        .services
        .store
        .create_show(
            &NewShow {
                seller_id: lumi.id,
                title: "Sunday skincare Q&A".into(),
                category: "beauty".into(),
                scheduled_at: Some(now.plus_secs(26 * 3600)),
                stream_key_hash: token_hash(&new_stream_key()),
                product_ids: vec![serum.id],
            },
            now,
        )
        .await?;
    start_show(&state.services, live)
        .await
        .map_err(|e| anyhow::anyhow!("starting the demo show: {e:?}"))?;
    Ok(lumi)
}

/// Starts (or restarts) a one-hour flash sale on the demo show's first lipstick shade, and pins it.
async fn ensure_flash_sale(state: &AppState, seller: &User) -> anyhow::Result<()> {
    let shows = state
        .services
        .store
        .shows(
            &ShowFilter {
                status: Some(ShowStatus::Live),
                seller: Some(seller.id),
                ..ShowFilter::default()
            },
            &PageRequest::first(1),
        )
        .await?;
    let Some(show) = shows.items.into_iter().next() else {
        return Ok(());
    };
    let live = state
        .services
        .hub
        .live(&show)
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let restore = state
        .services
        .store
        .load_commerce(ShowId(show.id.0))
        .await?;
    // A sale past its deadline is still marked running until the owner's first tick ends it.
    if restore
        .running_sales
        .iter()
        .any(|s| s.ends_at > state.services.clock.now().plus_secs(60))
    {
        return Ok(());
    }
    let Some(variant) = restore.variants.first() else {
        return Ok(());
    };
    let (reply, answer) = oneshot::channel();
    let req = SaleRequest {
        id: SaleId(new_id()),
        variant_id: variant.id,
        quantity: 50.min(variant.stock),
        price: Price::new("price_cents", 1500)?,
        per_buyer_limit: 2,
        duration_ms: 3_600_000,
    };
    live.commerce
        .send(CommerceCmd::StartSale { req, reply })
        .await?;
    answer
        .await?
        .map_err(|e| anyhow::anyhow!("starting the demo sale: {e}"))?;
    let (reply, answer) = oneshot::channel();
    live.commerce
        .send(CommerceCmd::Pin {
            product: Some(variant.product_id),
            reply,
        })
        .await?;
    answer.await?.map_err(|e| anyhow::anyhow!("pinning: {e}"))?;
    Ok(())
}
