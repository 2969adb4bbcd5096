//! The storage story: one walk through the `Store` trait that every backend must pass, including
//! the database's own guards (CHECK constraints, unique keys, the append-only log).

use hawker_core::account::Role;
use hawker_core::commerce::{Event, OrderLine, Sale, SaleStatus};
use hawker_core::ids::{OrderId, SaleId, ShowId};
use hawker_core::money::Currency;
use hawker_core::time::Timestamp;
use hawker_server::clock::Clock;
use hawker_server::store::{
    self, Batch, NewShow, NewUser, OrderMeta, ProductEdit, ShowStatus, StoreError, VariantEdit,
};

#[tokio::test]
async fn the_store_keeps_the_story_and_guards_the_invariants() {
    let dir = tempfile::tempdir().expect("dir");
    let url = std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("story.db").display()));
    let store = store::open(&url, true, Clock::system())
        .await
        .expect("opens");
    let now = Timestamp(1_000);
    let seller = store
        .create_user(
            &NewUser {
                email: "s@x.dev".into(),
                password_hash: "h".into(),
                display_name: "S".into(),
                role: Role::Seller,
            },
            now,
        )
        .await
        .expect("user");
    let dup = store
        .create_user(
            &NewUser {
                email: "s@x.dev".into(),
                password_hash: "h".into(),
                display_name: "S".into(),
                role: Role::Buyer,
            },
            now,
        )
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))));
    let buyer = store
        .create_user(
            &NewUser {
                email: "b@x.dev".into(),
                password_hash: "h".into(),
                display_name: "B".into(),
                role: Role::Buyer,
            },
            now,
        )
        .await
        .expect("user");
    let product = store
        .create_product(
            seller.id,
            &ProductEdit {
                title: "P".into(),
                description: String::new(),
                currency: Currency::USD,
                variants: vec![VariantEdit {
                    id: None,
                    name: "V".into(),
                    price_cents: 100,
                    stock: 3,
                }],
            },
            now,
        )
        .await
        .expect("product");
    let variant = product.variants[0].id;
    let show = store
        .create_show(
            &NewShow {
                seller_id: seller.id,
                title: "T".into(),
                category: "c".into(),
                scheduled_at: None,
                stream_key_hash: "sk".into(),
                product_ids: vec![product.id],
            },
            now,
        )
        .await
        .expect("show");
    store
        .set_show_status(show.id, ShowStatus::Live, now)
        .await
        .expect("live");

    let sale = Sale {
        id: SaleId(7),
        variant_id: variant,
        price_cents: 90,
        quantity: 2,
        remaining: 2,
        per_buyer_limit: 2,
        starts_at: now,
        ends_at: Timestamp(9_000),
        status: SaleStatus::Running,
    };
    let order = OrderLine {
        id: OrderId(11),
        buyer: buyer.id,
        variant_id: variant,
        sale_id: Some(sale.id),
        quantity: 2,
        unit_price_cents: 90,
        subtotal_cents: 180,
        discount_cents: 0,
        total_cents: 180,
        currency: Currency::parse("USD").expect("usd"),
        code_id: None,
        hold_until: Timestamp(5_000),
        auction_id: None,
        shipping_cents: 0,
    };
    let meta = OrderMeta {
        order_id: order.id,
        idempotency_key: "k".into(),
        payment_method: "pm_card_visa".into(),
    };
    let batch = Batch {
        events: vec![
            Event::SaleStarted {
                sale: sale.clone(),
                variant_stock_left: 1,
            },
            Event::Reserved {
                order: order.clone(),
                left: 0,
            },
        ],
        new_orders: vec![meta.clone()],
        ..Batch::default()
    };
    store.commit(show.id, now, &batch).await.expect("commits");
    let restored = store.load_commerce(show.id).await.expect("loads");
    assert_eq!(restored.variants[0].stock, 1);
    assert_eq!(restored.running_sales[0].remaining, 0);
    assert_eq!(restored.reservations, vec![order.clone()]);
    assert_eq!(restored.held, vec![(sale.id, buyer.id, 2)]);

    // The database refuses what the owner must never do, and a failed batch changes nothing.
    let mut oversell = order.clone();
    oversell.id = OrderId(12);
    let bad = Batch {
        events: vec![Event::Reserved {
            order: oversell,
            left: 0,
        }],
        new_orders: vec![OrderMeta {
            order_id: OrderId(12),
            idempotency_key: "k2".into(),
            payment_method: "pm".into(),
        }],
        ..Batch::default()
    };
    assert!(
        matches!(
            store.commit(show.id, now, &bad).await,
            Err(StoreError::Conflict(_))
        ),
        "CHECK (remaining >= 0) holds"
    );
    let mut same_key = order.clone();
    same_key.id = OrderId(13);
    same_key.sale_id = None;
    same_key.quantity = 1;
    let bad = Batch {
        events: vec![Event::Reserved {
            order: same_key,
            left: 0,
        }],
        new_orders: vec![OrderMeta {
            order_id: OrderId(13),
            ..meta
        }],
        ..Batch::default()
    };
    assert!(
        matches!(
            store.commit(show.id, now, &bad).await,
            Err(StoreError::Conflict(_))
        ),
        "unique (buyer, idempotency key)"
    );
    assert_eq!(
        store.load_commerce(show.id).await.expect("loads").variants[0].stock,
        1,
        "the failed batches left no trace"
    );

    let paid = Batch {
        events: vec![Event::Paid {
            order_id: order.id,
            buyer: buyer.id,
            variant_id: variant,
            sale_id: Some(sale.id),
            quantity: 2,
            total_cents: 180,
            payment_ref: Some("ch".into()),
        }],
        new_orders: vec![],
        ..Batch::default()
    };
    store.commit(show.id, now, &paid).await.expect("commits");
    let stored = store.order(order.id).await.expect("reads").expect("exists");
    assert_eq!(stored.status, store::OrderStatus::Paid);
    let stats = store.host_stats(show.id).await.expect("stats");
    assert_eq!(
        (stats.orders, stats.units, stats.revenue_cents),
        (1, 2, 180)
    );
    let log = store
        .commerce_log(show.id, &store::PageRequest::first(2))
        .await
        .expect("log");
    let next = log.next.expect("a second page");
    let rest = store
        .commerce_log(show.id, &store::PageRequest::first(2).then(next))
        .await
        .expect("log");
    assert_eq!((log.items.len(), rest.items.len()), (2, 1), "three lines");
    assert!(rest.next.is_none());
    assert!(
        store
            .order_by_key(buyer.id, "k")
            .await
            .expect("reads")
            .is_some()
    );
    assert_eq!(
        store
            .show(ShowId(show.id.0))
            .await
            .expect("reads")
            .map(|s| s.status),
        Some(ShowStatus::Live)
    );
    // A refund takes the order out of the host's totals.
    store.mark_refunded(order.id, now).await.expect("refunds");
    assert_eq!(
        store.host_stats(show.id).await.expect("stats"),
        Default::default()
    );
}

/// A server keeps sessions in memory; another process's change to a user or a token (here a
/// second store on the same file, as `hawker user set-role` is) reaches it within 2 s, through
/// the `session_changes` the database counts, even when so many changes came after it that
/// its own was pruned before the server read it.
#[tokio::test]
async fn another_process_s_session_changes_reach_a_server_within_two_seconds() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("sessions.db").display());
    let clock = Clock::manual();
    let server = store::open(&url, false, clock.clone())
        .await
        .expect("opens");
    let other = store::open(&url, false, Clock::system())
        .await
        .expect("opens again");
    let now = Timestamp(1_000);
    let mut tokens = Vec::new();
    for name in ["role", "logout", "renamed"] {
        let user = server
            .create_user(
                &NewUser {
                    email: format!("{name}@x.dev"),
                    password_hash: "h".into(),
                    display_name: name.into(),
                    role: Role::Buyer,
                },
                now,
            )
            .await
            .expect("user");
        let hash = format!("hash-of-{name}");
        server
            .insert_token(&hash, user.id, store::TokenKind::Api, None, now)
            .await
            .expect("token");
        tokens.push(hash);
    }
    assert_eq!(server.warm_sessions().await.expect("warms"), 3);
    let who = |hash: &str| {
        let server = server.clone();
        let hash = hash.to_owned();
        async move {
            server
                .user_by_token(&hash)
                .await
                .expect("reads")
                .map(|(u, _)| u)
        }
    };
    let wait = || clock.advance(2_000);
    // Served, and the first check of the changes made: the next is due in 2 s.
    assert_eq!(who(&tokens[0]).await.map(|u| u.role), Some(Role::Buyer));
    assert_eq!(
        server.warm_sessions().await.expect("warms"),
        0,
        "a cache in use is not warmed again"
    );

    // Changes counted one by one.
    other
        .set_role("role@x.dev", Role::Moderator)
        .await
        .expect("set");
    other.delete_token(&tokens[1]).await.expect("logout");
    assert_eq!(
        who(&tokens[0]).await.map(|u| u.role),
        Some(Role::Buyer),
        "served from memory until the next check is due"
    );
    wait();
    assert_eq!(who(&tokens[0]).await.map(|u| u.role), Some(Role::Moderator));
    assert!(
        who(&tokens[1]).await.is_none(),
        "the other process's logout is seen"
    );

    // A change, then more changes than are kept: the server cannot tell whose, so it forgets all.
    assert_eq!(
        who(&tokens[2]).await.map(|u| u.display_name).as_deref(),
        Some("renamed")
    );
    let mut db = rusqlite::Connection::open(dir.path().join("sessions.db")).expect("raw");
    let tx = db.transaction().expect("tx");
    tx.execute(
        "UPDATE users SET display_name = 'Renamed' WHERE email = 'renamed@x.dev'",
        [],
    )
    .expect("rename");
    for _ in 0..10_000 {
        tx.execute("INSERT INTO session_changes (user_id) VALUES (-1)", [])
            .expect("filler");
    }
    tx.commit().expect("commits");
    wait();
    assert_eq!(
        who(&tokens[2]).await.map(|u| u.display_name).as_deref(),
        Some("Renamed")
    );
    assert_eq!(who(&tokens[0]).await.map(|u| u.role), Some(Role::Moderator));
}

/// A database from before stream keys were hashed keeps working: its plain keys are hashed in
/// place when it is opened, so the host's key still publishes and the file no longer holds it.
#[tokio::test]
async fn plain_stream_keys_of_an_older_database_are_hashed_when_it_opens() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    let store = store::open(&url, true, Clock::system())
        .await
        .expect("opens");
    let now = Timestamp(1_000);
    let seller = store
        .create_user(
            &NewUser {
                email: "s@x.dev".into(),
                password_hash: "h".into(),
                display_name: "S".into(),
                role: Role::Seller,
            },
            now,
        )
        .await
        .expect("user");
    let plain = "sk_0123456789abcdef";
    let show = store
        .create_show(
            &NewShow {
                seller_id: seller.id,
                title: "T".into(),
                category: "c".into(),
                scheduled_at: None,
                // As an older release stored it.
                stream_key_hash: plain.into(),
                product_ids: vec![],
            },
            now,
        )
        .await
        .expect("show");
    drop(store);
    // As an older release left it: no record of migrations, nor what they did after 0001.
    rusqlite::Connection::open(dir.path().join("old.db"))
        .expect("db")
        .execute_batch(
            "DROP TABLE _sqlx_migrations; DROP INDEX tokens_by_age; \
             DROP INDEX orders_by_seller; DROP INDEX orders_reserved; DROP INDEX orders_by_show; \
             CREATE INDEX orders_by_show ON orders (show_id, status); \
             ALTER TABLE orders DROP COLUMN seller_id; \
             DROP INDEX products_by_seller; DROP INDEX variants_by_product; \
             DROP INDEX shows_by_status; DROP INDEX shows_by_seller; \
             DROP INDEX orders_carrying_shipping; ALTER TABLE shows DROP COLUMN paid_orders; \
             ALTER TABLE shows DROP COLUMN paid_units; ALTER TABLE shows DROP COLUMN paid_revenue_cents;",
        )
        .expect("made old");
    let store = store::open(&url, true, Clock::system())
        .await
        .expect("opens again");
    let stored = store.show(show.id).await.expect("read").expect("show");
    assert_eq!(
        stored.stream_key_hash,
        hawker_server::secrets::token_hash(plain)
    );
}

/// A database made before migrations existed (`tests/fixtures/pre-migrations.db`: `hawker serve
/// --demo` at 370753c and two paid orders) is upgraded when opened, without losing a row, and
/// opening it again applies nothing twice.
#[tokio::test]
async fn a_database_from_before_migrations_is_upgraded_without_losing_a_row() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("hawker.db");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/pre-migrations.db"
        ),
        &path,
    )
    .expect("fixture");
    let url = format!("sqlite://{}", path.display());
    let counts = |table: &'static str| {
        let path = path.clone();
        move || -> i64 {
            let db = rusqlite::Connection::open(&path).expect("db");
            db.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
                .expect("count")
        }
    };
    let tables = [
        "users",
        "products",
        "variants",
        "shows",
        "orders",
        "commerce_log",
    ];
    let before: Vec<i64> = tables.iter().map(|t| counts(t)()).collect();
    assert_eq!(before, [4, 5, 9, 3, 2, 14], "the fixture as made");
    for _ in 0..2 {
        let store = store::open(&url, true, Clock::system())
            .await
            .expect("opens and migrates");
        let ana = store
            .user_by_email("ana@demo.hawker.dev")
            .await
            .expect("read")
            .expect("the demo buyer");
        let orders = store
            .orders_for_buyer(ana.0.id, &store::PageRequest::first(50))
            .await
            .expect("orders")
            .items;
        assert_eq!(orders.len(), 2, "her paid orders");
        assert!(orders.iter().all(|o| o.status == store::OrderStatus::Paid));
        drop(store);
        let after: Vec<i64> = tables.iter().map(|t| counts(t)()).collect();
        assert_eq!(after, before, "no row lost");
        let applied: i64 = rusqlite::Connection::open(&path)
            .expect("db")
            .query_row(
                "SELECT COUNT(*) FROM _sqlx_migrations WHERE success",
                [],
                |r| r.get(0),
            )
            .expect("migrations recorded");
        assert_eq!(
            applied, 6,
            "0001 (the schema as it was) and each later one, once"
        );
        let index: i64 = rusqlite::Connection::open(&path)
            .expect("db")
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'tokens_by_age'",
                [],
                |r| r.get(0),
            )
            .expect("schema");
        assert_eq!(index, 1, "0002 applied to the old database");
        let unowned: i64 = rusqlite::Connection::open(&path)
            .expect("db")
            .query_row(
                "SELECT COUNT(*) FROM orders o JOIN shows s ON s.id = o.show_id \
                 WHERE o.seller_id IS NOT s.seller_id",
                [],
                |r| r.get(0),
            )
            .expect("sellers");
        assert_eq!(unowned, 0, "0003 gave every old order its show's seller");
        let paid: i64 = rusqlite::Connection::open(&path)
            .expect("db")
            .query_row("SELECT SUM(paid_orders) FROM shows", [], |r| r.get(0))
            .expect("totals");
        assert_eq!(
            paid, 2,
            "0006 counted the paid orders into their shows' totals"
        );
    }
}

#[tokio::test]
async fn space_freed_by_deletes_goes_back_to_the_file_system_step_by_step() {
    use hawker_server::store::TokenKind;
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("upkeep.db").display());
    let store = store::open(&url, true, Clock::system())
        .await
        .expect("opens");
    let user = store
        .create_user(
            &NewUser {
                email: "b@x.dev".into(),
                password_hash: "h".into(),
                display_name: "B".into(),
                role: Role::Buyer,
            },
            Timestamp(1_000),
        )
        .await
        .expect("user");
    // A few thousand sessions (about 2,000 pages), all expired and deleted.
    for i in 0..20_000 {
        let hash = format!("{i:0>64}");
        store
            .insert_token(
                &hash,
                user.id,
                TokenKind::Session,
                Some("csrf"),
                Timestamp(1_000),
            )
            .await
            .expect("token");
    }
    let deleted = store
        .delete_tokens_created_before(TokenKind::Session, Timestamp(2_000))
        .await
        .expect("deleted");
    assert_eq!(deleted, 20_000);
    let first = store.maintain().await.expect("maintained");
    assert!(first.pages_returned > 0, "{first:?}");
    // Each step is bounded; the steps after it give back the rest, then there is nothing left.
    let mut last = first;
    for _ in 0..20 {
        if last.free_pages_left == 0 {
            break;
        }
        last = store.maintain().await.expect("maintained");
    }
    assert_eq!(last.free_pages_left, 0, "{last:?}");
    assert_eq!(
        store.maintain().await.expect("maintained").pages_returned,
        0
    );
}

/// The WAL is copied into the database file beside the commits rather than inside one of them:
/// rows written reach the file although no commit took the WAL anywhere near the size at which
/// SQLite checkpoints on its own.
#[tokio::test]
async fn the_wal_is_checkpointed_beside_the_commits() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("wal.db");
    let store = store::open(
        &format!("sqlite://{}", path.display()),
        true,
        Clock::system(),
    )
    .await
    .expect("opens");
    let file_len = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    // Whatever the migrations left in the WAL reaches the file first.
    let mut settled = file_len();
    crate::helpers::eventually("the migrations are checkpointed", || {
        let (before, now) = (settled, file_len());
        settled = now;
        async move { now > 0 && now == before }
    })
    .await;
    // A few hundred accounts: a few dozen pages, where SQLite's own mark is 1,000.
    for i in 0..300 {
        store
            .create_user(
                &NewUser {
                    email: format!("b{i}@x.dev"),
                    password_hash: "h".repeat(100),
                    display_name: format!("Buyer {i}"),
                    role: Role::Buyer,
                },
                Timestamp(1_000),
            )
            .await
            .expect("user");
    }
    crate::helpers::eventually("the accounts reach the database file", || {
        let grown = file_len() > settled;
        async move { grown }
    })
    .await;
}
