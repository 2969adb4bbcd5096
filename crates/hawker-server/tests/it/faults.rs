//! Storage fault injection: a [`Store`] that passes everything to the real one except the group
//! commits a test chooses to fail, as a full disk or a constraint the owner did not foresee would.

use std::sync::Arc;

use async_trait::async_trait;
use hawker_core::account::Role;
use hawker_core::commerce::Restore;
use hawker_core::ids::{AuctionId, OrderId, ProductId, SaleId, ShowId, UserId, VariantId};
use hawker_core::protocol::HostStats;
use hawker_core::time::Timestamp;
use hawker_server::auction_log::LogEntry;
use hawker_server::store::{
    AuctionRow, Batch, LogLine, Maintained, NewShow, NewUser, Order, Page, PageRequest, Product,
    ProductEdit, SaleRow, Show, ShowFilter, ShowStatus, Store, StoreError, StoreResult, TokenKind,
    User,
};

/// Which batches fail: `true` fails the whole commit, as the backend would.
pub type FailWhen = Box<dyn Fn(&Batch) -> bool + Send + Sync>;

pub struct FaultyStore {
    pub inner: Arc<dyn Store>,
    pub fail_commit: FailWhen,
    /// Every group commit waits this long first, so that commands pile up into shared batches.
    pub commit_pause: std::time::Duration,
}

impl FaultyStore {
    pub fn wrap(
        fail_commit: impl Fn(&Batch) -> bool + Send + Sync + 'static,
        commit_pause: std::time::Duration,
    ) -> impl FnOnce(Arc<dyn Store>) -> Arc<dyn Store> {
        move |inner| {
            Arc::new(Self {
                inner,
                fail_commit: Box::new(fail_commit),
                commit_pause,
            })
        }
    }
}

#[async_trait]
impl Store for FaultyStore {
    async fn maintain(&self) -> StoreResult<Maintained> {
        self.inner.maintain().await
    }
    async fn create_user(&self, user: &NewUser, now: Timestamp) -> StoreResult<User> {
        self.inner.create_user(user, now).await
    }
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<(User, String)>> {
        self.inner.user_by_email(email).await
    }
    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        self.inner.user(id).await
    }
    async fn set_blocked_words(&self, id: UserId, words: &[String]) -> StoreResult<()> {
        self.inner.set_blocked_words(id, words).await
    }
    async fn set_role(&self, email: &str, role: Role) -> StoreResult<()> {
        self.inner.set_role(email, role).await
    }
    async fn insert_token(
        &self,
        hash: &str,
        user: UserId,
        kind: TokenKind,
        csrf: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<()> {
        self.inner.insert_token(hash, user, kind, csrf, now).await
    }
    async fn user_by_token(&self, hash: &str) -> StoreResult<Option<(User, Option<String>)>> {
        self.inner.user_by_token(hash).await
    }
    async fn delete_token(&self, hash: &str) -> StoreResult<()> {
        self.inner.delete_token(hash).await
    }
    async fn warm_sessions(&self) -> StoreResult<usize> {
        self.inner.warm_sessions().await
    }
    async fn save_payment_method(
        &self,
        user: UserId,
        method: &str,
        label: &str,
        make_default: bool,
    ) -> StoreResult<()> {
        self.inner
            .save_payment_method(user, method, label, make_default)
            .await
    }
    async fn payment_methods(&self, user: UserId) -> StoreResult<Vec<(String, String)>> {
        self.inner.payment_methods(user).await
    }
    async fn create_product(
        &self,
        seller: UserId,
        product: &ProductEdit,
        now: Timestamp,
    ) -> StoreResult<Product> {
        self.inner.create_product(seller, product, now).await
    }
    async fn update_product(
        &self,
        id: ProductId,
        product: &ProductEdit,
        now: Timestamp,
    ) -> StoreResult<Product> {
        self.inner.update_product(id, product, now).await
    }
    async fn archive_product(&self, id: ProductId, now: Timestamp) -> StoreResult<()> {
        self.inner.archive_product(id, now).await
    }
    async fn product(&self, id: ProductId) -> StoreResult<Option<Product>> {
        self.inner.product(id).await
    }
    async fn product_of_variant(&self, variant: VariantId) -> StoreResult<Option<Product>> {
        self.inner.product_of_variant(variant).await
    }
    async fn products_by_seller(
        &self,
        seller: UserId,
        with_archived: bool,
        page: &PageRequest,
    ) -> StoreResult<Page<Product>> {
        self.inner
            .products_by_seller(seller, with_archived, page)
            .await
    }
    async fn add_product_image(&self, id: ProductId, url: &str) -> StoreResult<()> {
        self.inner.add_product_image(id, url).await
    }
    async fn create_show(&self, show: &NewShow, now: Timestamp) -> StoreResult<Show> {
        self.inner.create_show(show, now).await
    }
    async fn show(&self, id: ShowId) -> StoreResult<Option<Show>> {
        self.inner.show(id).await
    }
    async fn shows(&self, filter: &ShowFilter, page: &PageRequest) -> StoreResult<Page<Show>> {
        self.inner.shows(filter, page).await
    }
    async fn show_categories(&self) -> StoreResult<Vec<String>> {
        self.inner.show_categories().await
    }
    async fn set_show_status(
        &self,
        id: ShowId,
        status: ShowStatus,
        now: Timestamp,
    ) -> StoreResult<()> {
        self.inner.set_show_status(id, status, now).await
    }
    async fn set_show_cover(&self, id: ShowId, url: &str) -> StoreResult<()> {
        self.inner.set_show_cover(id, url).await
    }
    async fn set_pinned(&self, id: ShowId, product: Option<ProductId>) -> StoreResult<()> {
        self.inner.set_pinned(id, product).await
    }
    async fn shows_with_unsettled_commerce(&self) -> StoreResult<Vec<ShowId>> {
        self.inner.shows_with_unsettled_commerce().await
    }
    async fn open_reservations(&self, now: Timestamp) -> StoreResult<Vec<Order>> {
        self.inner.open_reservations(now).await
    }
    async fn delete_tokens_created_before(
        &self,
        kind: TokenKind,
        created_before: Timestamp,
    ) -> StoreResult<u64> {
        self.inner
            .delete_tokens_created_before(kind, created_before)
            .await
    }

    async fn set_stream_key_hash(&self, id: ShowId, hash: &str) -> StoreResult<()> {
        self.inner.set_stream_key_hash(id, hash).await
    }

    async fn go_live(&self, id: ShowId, now: Timestamp) -> StoreResult<Result<(), ShowId>> {
        self.inner.go_live(id, now).await
    }

    async fn live_show_sharing_products(
        &self,
        products: &[ProductId],
        except: ShowId,
    ) -> StoreResult<Option<ShowId>> {
        self.inner
            .live_show_sharing_products(products, except)
            .await
    }
    async fn load_commerce(&self, show: ShowId) -> StoreResult<Restore> {
        self.inner.load_commerce(show).await
    }
    async fn commit(&self, show: ShowId, now: Timestamp, batch: &Batch) -> StoreResult<()> {
        tokio::time::sleep(self.commit_pause).await;
        if (self.fail_commit)(batch) {
            return Err(StoreError::Backend(anyhow::anyhow!("injected fault")));
        }
        self.inner.commit(show, now, batch).await
    }
    async fn sale(&self, id: SaleId) -> StoreResult<Option<SaleRow>> {
        self.inner.sale(id).await
    }
    async fn host_stats(&self, show: ShowId) -> StoreResult<HostStats> {
        self.inner.host_stats(show).await
    }
    async fn commerce_log(&self, show: ShowId, page: &PageRequest) -> StoreResult<Page<LogLine>> {
        self.inner.commerce_log(show, page).await
    }
    async fn product_log(
        &self,
        product: ProductId,
        page: &PageRequest,
    ) -> StoreResult<Page<LogLine>> {
        self.inner.product_log(product, page).await
    }
    async fn auction(&self, id: AuctionId) -> StoreResult<Option<AuctionRow>> {
        self.inner.auction(id).await
    }
    async fn auctions_of_show(&self, show: ShowId) -> StoreResult<Vec<AuctionRow>> {
        self.inner.auctions_of_show(show).await
    }
    async fn auction_log(&self, id: AuctionId) -> StoreResult<Vec<LogEntry>> {
        self.inner.auction_log(id).await
    }
    async fn auction_log_page(
        &self,
        id: AuctionId,
        page: &PageRequest,
    ) -> StoreResult<Page<LogEntry>> {
        self.inner.auction_log_page(id, page).await
    }
    async fn auction_log_last(&self, id: AuctionId) -> StoreResult<Option<LogEntry>> {
        self.inner.auction_log_last(id).await
    }
    async fn auction_bidders(&self, id: AuctionId) -> StoreResult<Vec<(String, UserId, String)>> {
        self.inner.auction_bidders(id).await
    }
    async fn save_pre_bid(
        &self,
        show: ShowId,
        variant: VariantId,
        user: UserId,
        max_cents: i64,
        now: Timestamp,
    ) -> StoreResult<()> {
        self.inner
            .save_pre_bid(show, variant, user, max_cents, now)
            .await
    }
    async fn pre_bids(&self, show: ShowId) -> StoreResult<Vec<(VariantId, UserId, String, i64)>> {
        self.inner.pre_bids(show).await
    }
    async fn order(&self, id: OrderId) -> StoreResult<Option<Order>> {
        self.inner.order(id).await
    }
    async fn order_by_key(&self, buyer: UserId, key: &str) -> StoreResult<Option<Order>> {
        self.inner.order_by_key(buyer, key).await
    }
    async fn orders_by_keys(
        &self,
        keys: &[(UserId, String)],
    ) -> StoreResult<Vec<(UserId, String, OrderId)>> {
        self.inner.orders_by_keys(keys).await
    }
    async fn buyer_has_orders(&self, buyer: UserId) -> StoreResult<bool> {
        self.inner.buyer_has_orders(buyer).await
    }
    async fn orders_for_buyer(
        &self,
        buyer: UserId,
        page: &PageRequest,
    ) -> StoreResult<Page<Order>> {
        self.inner.orders_for_buyer(buyer, page).await
    }
    async fn orders_for_seller(
        &self,
        seller: UserId,
        show: Option<ShowId>,
        page: &PageRequest,
    ) -> StoreResult<Page<Order>> {
        self.inner.orders_for_seller(seller, show, page).await
    }
    async fn mark_shipped(&self, id: OrderId, tracking: &str, now: Timestamp) -> StoreResult<()> {
        self.inner.mark_shipped(id, tracking, now).await
    }
    async fn set_shipping_fee(&self, seller: UserId, fee_cents: i64) -> StoreResult<()> {
        self.inner.set_shipping_fee(seller, fee_cents).await
    }
    async fn set_spend_limit(&self, user: UserId, limit_cents: Option<i64>) -> StoreResult<()> {
        self.inner.set_spend_limit(user, limit_cents).await
    }
    async fn spent_since(&self, user: UserId, since: Timestamp) -> StoreResult<i64> {
        self.inner.spent_since(user, since).await
    }
    async fn mark_refunded(&self, id: OrderId, now: Timestamp) -> StoreResult<()> {
        self.inner.mark_refunded(id, now).await
    }
    async fn refunds_due(&self) -> StoreResult<Vec<(OrderId, String)>> {
        self.inner.refunds_due().await
    }
    async fn refund_sent(&self, id: OrderId) -> StoreResult<()> {
        self.inner.refund_sent(id).await
    }
}
