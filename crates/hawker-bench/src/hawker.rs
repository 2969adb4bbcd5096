//! Hawker as the benchmarks run it: a fresh data directory holding a seller, one product, a show
//! and N buyers with API tokens; then `hawker serve` on it as its own process, and the show
//! started and a sale opened over the API, as a host would.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, ensure};
use serde_json::{Value, json};
use sqlx::{ConnectOptions, Connection};

use super::client::HttpConn;
use super::{Server, spawn_hawker};
use hawker_core::ids::{UserId, VariantId};
use hawker_server::App;
use hawker_server::clock::Clock;
use hawker_server::config::Config;
use hawker_server::secrets::{random_token, token_hash};

use hawker_server::store::{NewShow, NewUser, ProductEdit, Show, Store, TokenKind, VariantEdit};

pub struct Fixture {
    pub dir: PathBuf,
    pub db: PathBuf,
    pub show_id: i64,
    pub variant_id: i64,
    pub seller_token: String,
    pub buyer_tokens: Vec<String>,
}

pub fn buyer_tokens(buyers: usize) -> Vec<String> {
    (0..buyers).map(|_| random_token(16)).collect()
}

impl Fixture {
    /// Writes a [`Shop`] with `stock` units, and `buyers` buyers.
    pub async fn create(dir: &Path, stock: usize, buyers: usize) -> anyhow::Result<Self> {
        let config = Config {
            listen: "127.0.0.1:0".into(),
            data_dir: dir.to_path_buf(),
            media_port: 0,
            ..Config::default()
        };
        let (show_id, variant_id, seller_token) = {
            let app = App::build(config).await?;
            let store = app.state().services.store.as_ref();
            let shop = Shop::create(store, stock).await?;
            let token = random_token(16);
            store
                .insert_token(
                    &token_hash(&token),
                    shop.seller,
                    TokenKind::Api,
                    None,
                    Clock::system().now(),
                )
                .await?;
            (shop.show.id.0, shop.variant.0, token)
        };
        let db = dir.join("hawker.db");
        let (_, buyer_tokens) = insert_buyers(&db, buyers).await?;
        Ok(Self {
            dir: dir.to_path_buf(),
            db,
            show_id,
            variant_id,
            seller_token,
            buyer_tokens,
        })
    }

    /// Runs `hawker serve` on the data directory and starts the show.
    pub async fn serve(&self) -> anyhow::Result<(Server, SocketAddr)> {
        self.serve_with(&[]).await
    }

    /// [`Self::serve`] with more `HAWKER_*` settings.
    pub async fn serve_with(
        &self,
        settings: &[(&str, &str)],
    ) -> anyhow::Result<(Server, SocketAddr)> {
        // Every simulated buyer connects from this machine's one address.
        let settings = [&[("HAWKER_SOCKETS_PER_CLIENT", "1000000")], settings].concat();
        let (server, addr) = spawn_hawker(&self.dir, &[], &settings).await?;
        let started = self
            .host_post(addr, &format!("/api/v1/shows/{}/start", self.show_id), "")
            .await?;
        ensure!(started.0 == 200, "starting the show: {}", started.1);
        Ok((server, addr))
    }

    /// Opens a flash sale of `units` with `per_buyer_limit`; answers its id.
    pub async fn open_sale(
        &self,
        addr: SocketAddr,
        units: usize,
        per_buyer_limit: u32,
    ) -> anyhow::Result<i64> {
        let sale = json!({ "variant_id": self.variant_id, "quantity": units, "price_cents": 1500,
                           "per_buyer_limit": per_buyer_limit, "duration_s": 3600 });
        let (_, answer) = self
            .host_post(
                addr,
                &format!("/api/v1/shows/{}/flash-sales", self.show_id),
                &sale.to_string(),
            )
            .await?;
        answer["id"]
            .as_i64()
            .with_context(|| format!("opening the sale: {answer}"))
    }

    /// A POST as the show's host (the seller's token); the status and the JSON answer.
    pub async fn host_post(
        &self,
        addr: SocketAddr,
        path: &str,
        body: &str,
    ) -> anyhow::Result<(u16, Value)> {
        let mut http = HttpConn::connect(addr, None).await?;
        let bearer = format!("Bearer {}", self.seller_token);
        let headers = [
            ("Authorization", bearer.as_str()),
            ("Content-Type", "application/json"),
        ];
        let r = http
            .request("POST", path, &headers, body.as_bytes())
            .await?;
        Ok((
            r.status,
            serde_json::from_slice(&r.body).unwrap_or(Value::Null),
        ))
    }
}

/// A seller, one product with `stock` units of its one variant, and a scheduled show of it.
pub struct Shop {
    pub seller: UserId,
    pub variant: VariantId,
    pub show: Show,
}

impl Shop {
    pub async fn create(store: &dyn Store, stock: usize) -> anyhow::Result<Self> {
        let now = Clock::system().now();
        let seller = store
            .create_user(
                &NewUser {
                    email: "seller@bench".into(),
                    password_hash: "x".into(),
                    display_name: "Bench seller".into(),
                    role: hawker_core::account::Role::Seller,
                },
                now,
            )
            .await?;
        let product = ProductEdit {
            title: "Bench lipstick".into(),
            description: String::new(),
            currency: hawker_core::money::Currency::USD,
            variants: vec![VariantEdit {
                id: None,
                name: "Ruby".into(),
                price_cents: 2000,
                stock: stock as i64,
            }],
        };
        let product = store.create_product(seller.id, &product, now).await?;
        let show = NewShow {
            seller_id: seller.id,
            title: "Bench".into(),
            category: "bench".into(),
            scheduled_at: None,
            stream_key_hash: hawker_server::secrets::token_hash(
                &hawker_server::secrets::new_stream_key(),
            ),
            product_ids: vec![product.id],
        };
        Ok(Self {
            seller: seller.id,
            variant: product.variants[0].id,
            show: store.create_show(&show, now).await?,
        })
    }
}

/// Buyer accounts and their API tokens, in one transaction (the API would hash a password
/// each).
pub async fn insert_buyers(db: &Path, buyers: usize) -> anyhow::Result<(Vec<UserId>, Vec<String>)> {
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(db)
        .connect()
        .await?;
    let (first,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(id), 0) + 1 FROM users")
        .fetch_one(&mut conn)
        .await?;
    let tokens = buyer_tokens(buyers);
    // Made now: the server deletes tokens older than their lifetime.
    let now = Clock::system().now().0;
    let mut tx = conn.begin().await?;
    for (chunk_no, chunk) in tokens.chunks(400).enumerate() {
        let base = first + (chunk_no * 400) as i64;
        let mut users = String::from(
            "INSERT INTO users (id, email, password_hash, display_name, role, created_at) VALUES ",
        );
        let mut toks =
            String::from("INSERT INTO tokens (token_hash, user_id, kind, created_at) VALUES ");
        for (i, token) in chunk.iter().enumerate() {
            let id = base + i as i64;
            let sep = if i == 0 { "" } else { "," };
            users.push_str(&format!(
                "{sep}({id}, 'b{id}@bench', 'x', 'Buyer {id}', 'buyer', 0)"
            ));
            toks.push_str(&format!(
                "{sep}('{}', {id}, 'api', {now})",
                token_hash(token)
            ));
        }
        sqlx::raw_sql(&users).execute(&mut *tx).await?;
        sqlx::raw_sql(&toks).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    let ids = (first..first + buyers as i64).map(UserId).collect();
    Ok((ids, tokens))
}
