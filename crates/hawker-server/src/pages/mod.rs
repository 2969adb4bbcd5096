//! Server-rendered pages: one view struct per template (`templates/`), and one small ES module
//! per widget (`static/js/`). Pages read through the store and write through the JSON API, so
//! there is one place that changes anything.

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use hawker_core::ids::{ProductId, UserId};
use hawker_core::money::format_cents;
use serde::Deserialize;

use crate::auth::{self, CurrentUser, FORM_CSRF_COOKIE, Https, MaybeUser};
use crate::error::{ApiPath, ApiQuery, AppError};
use crate::secrets::random_token;
use crate::service::accounts;
use crate::state::AppState;
use crate::store::{
    Cursor, Order, PAGE_MAX, PageRequest, Product, Show, ShowFilter, ShowStatus, TokenKind,
};

pub mod assets;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/login", get(login_page).post(login_submit))
        .route("/signup", get(signup_page).post(signup_submit))
        .route("/logout", axum::routing::post(logout))
        .route("/shows/{id}", get(show_page))
        .route("/shows/{id}/host", get(host_page))
        .route("/stores/{id}", get(store_page))
        .route("/orders", get(orders_page))
        .route("/dashboard", get(dashboard))
        .route("/dashboard/products/new", get(new_product))
        .route("/dashboard/products/{id}", get(edit_product))
        .route("/dashboard/shows/new", get(new_show))
        .route("/dashboard/orders", get(seller_orders))
        .fallback(not_found)
}

/// What every page's frame needs (`templates/base.html`).
pub struct Layout {
    pub title: String,
    pub csrf: String,
    pub test_payments: bool,
    pub asset_version: &'static str,
    pub user: Option<UserNav>,
}

pub struct UserNav {
    pub name: String,
    pub seller: bool,
}

fn layout(state: &AppState, user: Option<&CurrentUser>, title: impl Into<String>) -> Layout {
    Layout {
        title: title.into(),
        csrf: user.map(|u| u.csrf().to_owned()).unwrap_or_default(),
        test_payments: state.services.payments.is_test(),
        asset_version: assets::version(),
        user: user.map(|u| UserNav {
            name: u.user.display_name.clone(),
            seller: u.user.role.can_sell(),
        }),
    }
}

/// A page's failure, drawn as a page (with the request id when it is ours).
pub struct PageError(AppError);

impl From<AppError> for PageError {
    fn from(e: AppError) -> Self {
        Self(e)
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        Self(e.into())
    }
}

impl From<crate::service::ServiceError> for PageError {
    fn from(e: crate::service::ServiceError) -> Self {
        Self(e.into())
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    status: u16,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let (_, message) = self.0.public_parts();
        let layout = Layout {
            title: "Error".into(),
            csrf: String::new(),
            test_payments: false,
            asset_version: assets::version(),
            user: None,
        };
        let page = ErrorPage {
            layout,
            status: status.as_u16(),
            message,
        };
        (status, Html(page.render().unwrap_or(page.message))).into_response()
    }
}

type PageResult = Result<Response, PageError>;

fn render(t: &impl Template) -> PageResult {
    let html = t
        .render()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("rendering: {e}")))?;
    Ok(Html(html).into_response())
}

fn login_redirect(next: &str) -> Response {
    Redirect::to(&format!("/login?next={}", urlencode(next))).into_response()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Only a path on this site, so `next` cannot send people to another one: it starts with one
/// `/`, and holds only visible ASCII without `\\`. Browsers read a backslash as a slash and drop
/// tabs and newlines, so `/\\evil.example` and `/<tab>/evil.example` both mean `//evil.example`;
/// control characters would also make the `Location` header invalid.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.len() <= 2048
                && n.starts_with('/')
                && !n[1..].starts_with(['/', '\\'])
                && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') =>
        {
            n.to_owned()
        }
        _ => "/".into(),
    }
}

/// Cents as a form field edits them: `1999` is `19.99` (no currency sign).
fn form_amount(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn human_time(ms: Option<i64>) -> String {
    ms.map(|ms| {
        let secs = ms / 1000;
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Civil date from days since the epoch (Howard Hinnant's algorithm).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        format!(
            "{y}-{m:02}-{d:02} {:02}:{:02} UTC",
            rem / 3600,
            rem % 3600 / 60
        )
    })
    .unwrap_or_else(|| "soon".into())
}

/// How many rows a page of a table lists.
const ROWS: u32 = 50;

/// How many cards a page of a grid shows (shows, a store's products).
const CARDS: u32 = 24;

/// `?after=`: where a paged list starts. Pages take other query parameters quietly (a link
/// with tracking parameters still opens), unlike the API.
#[derive(Deserialize)]
struct AfterQuery {
    after: Option<String>,
}

/// The page of `limit` items a list's `after` names (its first without one).
fn page_request(limit: u32, after: Option<&str>) -> Result<PageRequest, PageError> {
    Ok(PageRequest::parse(Some(limit), after).map_err(AppError::from)?)
}

/// The links under a paged list (`templates/_pager.html`).
pub struct Pager {
    /// What the list holds, for the links' label (and `data-more`, for tests).
    pub what: &'static str,
    /// The list's first page when this is a later one, else empty.
    pub first: String,
    /// The next page, empty on the last one.
    pub next: String,
    pub first_label: &'static str,
    pub next_label: &'static str,
}

impl Pager {
    /// The links of the list at `here` (a path, maybe with a query of its own), which its query
    /// parameter `param` pages: `after` is where this page started, `next` where the next starts.
    fn new(
        what: &'static str,
        here: &str,
        param: &str,
        after: Option<&str>,
        next: Option<&Cursor>,
        (first_label, next_label): (&'static str, &'static str),
    ) -> Self {
        let join = if here.contains('?') { '&' } else { '?' };
        Self {
            what,
            first: after.map(|_| here.to_owned()).unwrap_or_default(),
            next: next
                .map(|c| format!("{here}{join}{param}={c}"))
                .unwrap_or_default(),
            first_label,
            next_label,
        }
    }
}

pub struct ShowView {
    pub id: i64,
    pub title: String,
    pub category: String,
    pub seller_id: i64,
    pub seller_name: String,
    pub status: String,
    pub starts_at: String,
    pub cover: Option<String>,
}

impl From<&Show> for ShowView {
    fn from(s: &Show) -> Self {
        Self {
            id: s.id.0,
            title: s.title.clone(),
            category: s.category.clone(),
            seller_id: s.seller_id.0,
            seller_name: s.seller_name.clone(),
            status: s.status.as_str().into(),
            starts_at: human_time(s.scheduled_at.or(s.started_at).map(|t| t.0)),
            cover: s.cover.clone(),
        }
    }
}

pub struct VariantView {
    pub id: i64,
    pub name: String,
    pub price_cents: i64,
    pub price: String,
    pub stock: i64,
}

pub struct ProductView {
    pub id: i64,
    pub title: String,
    pub description: String,
    pub currency: String,
    pub image: Option<String>,
    pub images: Vec<String>,
    pub archived: bool,
    pub variants: Vec<VariantView>,
    pub from_price: String,
}

impl From<&Product> for ProductView {
    fn from(p: &Product) -> Self {
        let variants: Vec<VariantView> = p
            .variants
            .iter()
            .map(|v| VariantView {
                id: v.id.0,
                name: v.name.clone(),
                price_cents: v.price_cents,
                price: format_cents(v.price_cents, p.currency.as_str()),
                stock: v.stock,
            })
            .collect();
        let min = p.variants.iter().map(|v| v.price_cents).min().unwrap_or(0);
        Self {
            id: p.id.0,
            title: p.title.clone(),
            description: p.description.clone(),
            currency: p.currency.to_string(),
            image: p.images.first().cloned(),
            images: p.images.clone(),
            archived: p.archived,
            variants,
            from_price: format_cents(min, p.currency.as_str()),
        }
    }
}

pub struct OrderView {
    pub id: i64,
    pub status: String,
    pub show_id: i64,
    pub buyer_name: String,
    pub product_title: String,
    pub variant_name: String,
    pub quantity: i64,
    pub total: String,
    pub discount: String,
    /// The show's combined shipping fee, on the order that carries it.
    pub shipping: String,
    pub code: String,
    pub tracking: String,
    pub created: String,
}

impl From<&Order> for OrderView {
    fn from(o: &Order) -> Self {
        Self {
            id: o.id.0,
            status: o.status.to_string(),
            show_id: o.show_id.0,
            buyer_name: o.buyer_name.clone(),
            product_title: o.product_title.clone(),
            variant_name: o.variant_name.clone(),
            quantity: o.quantity,
            total: format_cents(o.total_cents, o.currency.as_str()),
            discount: if o.discount_cents > 0 {
                format_cents(o.discount_cents, o.currency.as_str())
            } else {
                String::new()
            },
            shipping: if o.shipping_cents > 0 {
                format_cents(o.shipping_cents, o.currency.as_str())
            } else {
                String::new()
            },
            code: o.code.clone().unwrap_or_default(),
            tracking: o.tracking.clone().unwrap_or_default(),
            created: human_time(Some(o.created_at.0)),
        }
    }
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    layout: Layout,
    /// One page of the shows live or scheduled, in the listing's order: the live ones (all
    /// before any scheduled one), then the scheduled.
    live: Vec<ShowView>,
    upcoming: Vec<ShowView>,
    /// Whether this is the listing's first page (a later one says nothing of empty sections).
    first_page: bool,
    pager: Pager,
    categories: Vec<String>,
    category: String,
}

#[derive(Deserialize)]
struct HomeQuery {
    category: Option<String>,
    after: Option<String>,
}

async fn home(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    ApiQuery(q): ApiQuery<HomeQuery>,
) -> PageResult {
    let category = q
        .category
        .map(|c| c.to_lowercase())
        .filter(|c| !c.is_empty());
    let after = q.after.as_deref();
    let filter = ShowFilter {
        hide_ended: true,
        category: category.clone(),
        ..ShowFilter::default()
    };
    let shows = state
        .services
        .store
        .shows(&filter, &page_request(CARDS, after)?)
        .await?;
    let categories = state.services.store.show_categories().await?;
    let (live, upcoming): (Vec<&Show>, Vec<&Show>) = shows
        .items
        .iter()
        .partition(|s| s.status == ShowStatus::Live);
    let here = match &category {
        Some(c) => format!("/?category={}", urlencode(c)),
        None => "/".to_owned(),
    };
    let pager = Pager::new(
        "shows",
        &here,
        "after",
        after,
        shows.next.as_ref(),
        ("Back to the top", "More shows"),
    );
    render(&HomePage {
        layout: layout(&state, user.as_ref(), "Live now"),
        live: live.into_iter().map(ShowView::from).collect(),
        upcoming: upcoming.into_iter().map(ShowView::from).collect(),
        first_page: after.is_none(),
        pager,
        categories,
        category: category.unwrap_or_default(),
    })
}

#[derive(Template)]
#[template(path = "auth.html")]
struct AuthPage {
    layout: Layout,
    signup: bool,
    error: String,
    next: String,
    form_csrf: String,
    email: String,
    display_name: String,
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// What the log-in or sign-up form shows: empty at first, the user's input after a refusal.
struct AuthDraft {
    signup: bool,
    next: String,
    error: String,
    email: String,
    display_name: String,
}

fn auth_page(
    state: &AppState,
    headers: &HeaderMap,
    Https(https): Https,
    draft: AuthDraft,
    status: StatusCode,
) -> PageResult {
    let AuthDraft {
        signup,
        next,
        error,
        email,
        display_name,
    } = draft;
    let form_csrf = auth::cookie(headers, FORM_CSRF_COOKIE)
        .map(str::to_owned)
        .unwrap_or_else(|| random_token(16));
    let page = AuthPage {
        layout: layout(state, None, if signup { "Sign up" } else { "Log in" }),
        signup,
        error,
        next,
        form_csrf: form_csrf.clone(),
        email,
        display_name,
    };
    let mut response = render(&page)?;
    *response.status_mut() = status;
    let secure = if state.services.config.secure_cookies || https {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!("{FORM_CSRF_COOKIE}={form_csrf}; Path=/; HttpOnly; SameSite=Lax{secure}");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}

async fn login_page(
    State(state): State<AppState>,
    https: Https,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<NextQuery>,
) -> PageResult {
    auth_page(
        &state,
        &headers,
        https,
        AuthDraft {
            signup: false,
            next: safe_next(q.next.as_deref()),
            error: String::new(),
            email: String::new(),
            display_name: String::new(),
        },
        StatusCode::OK,
    )
}

async fn signup_page(
    State(state): State<AppState>,
    https: Https,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<NextQuery>,
) -> PageResult {
    auth_page(
        &state,
        &headers,
        https,
        AuthDraft {
            signup: true,
            next: safe_next(q.next.as_deref()),
            error: String::new(),
            email: String::new(),
            display_name: String::new(),
        },
        StatusCode::OK,
    )
}

#[derive(Deserialize)]
struct AuthForm {
    #[serde(rename = "_csrf")]
    csrf: String,
    email: String,
    password: String,
    display_name: Option<String>,
    role: Option<String>,
    next: Option<String>,
}

fn form_csrf_ok(headers: &HeaderMap, submitted: &str) -> bool {
    auth::cookie(headers, FORM_CSRF_COOKIE).is_some_and(|c| !c.is_empty() && c == submitted)
}

/// Signs `user` in and sends them to `next`. The cookie is `Secure` when configured so, or when
/// the request came over HTTPS through a trusted proxy.
async fn start_session(
    state: &AppState,
    user: &crate::store::User,
    next: &str,
    Https(https): Https,
) -> PageResult {
    let token = accounts::issue_token(&state.services, user, TokenKind::Session).await?;
    let mut response = Redirect::to(next).into_response();
    let cookie = auth::session_cookie(
        &token,
        state.services.config.session_lifetime_s,
        state.services.config.secure_cookies || https,
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}

async fn login_submit(
    State(state): State<AppState>,
    client: crate::limits::ClientIp,
    https: Https,
    headers: HeaderMap,
    Form(form): Form<AuthForm>,
) -> PageResult {
    let next = safe_next(form.next.as_deref());
    if !form_csrf_ok(&headers, &form.csrf) {
        return auth_page(
            &state,
            &headers,
            https,
            AuthDraft {
                signup: false,
                next,
                error: "The form expired. Please try again.".into(),
                email: form.email,
                display_name: String::new(),
            },
            StatusCode::FORBIDDEN,
        );
    }
    match accounts::authenticate(&state.services, client, &form.email, &form.password).await {
        Ok(user) => start_session(&state, &user, &next, https).await,
        Err(e) => {
            let e = AppError::from(e);
            let status = e.status();
            let (_, message) = e.public_parts();
            auth_page(
                &state,
                &headers,
                https,
                AuthDraft {
                    signup: false,
                    next,
                    error: message,
                    email: form.email,
                    display_name: String::new(),
                },
                status,
            )
        }
    }
}

async fn signup_submit(
    State(state): State<AppState>,
    client: crate::limits::ClientIp,
    https: Https,
    headers: HeaderMap,
    Form(form): Form<AuthForm>,
) -> PageResult {
    let next = safe_next(form.next.as_deref());
    let name = form.display_name.clone().unwrap_or_default();
    if !form_csrf_ok(&headers, &form.csrf) {
        return auth_page(
            &state,
            &headers,
            https,
            AuthDraft {
                signup: true,
                next,
                error: "The form expired. Please try again.".into(),
                email: form.email,
                display_name: name,
            },
            StatusCode::FORBIDDEN,
        );
    }
    let role = form.role.as_deref().unwrap_or("buyer");
    match accounts::create_account(
        &state.services,
        client,
        &form.email,
        &form.password,
        &name,
        role,
    )
    .await
    {
        Ok(user) => start_session(&state, &user, &next, https).await,
        Err(e) => {
            let e = AppError::from(e);
            let status = e.status();
            let (_, message) = e.public_parts();
            auth_page(
                &state,
                &headers,
                https,
                AuthDraft {
                    signup: true,
                    next,
                    error: message,
                    email: form.email,
                    display_name: name,
                },
                status,
            )
        }
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(rename = "_csrf")]
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    if let Some(user) = user {
        user.check_form_csrf(&form.csrf)?;
        if let auth::Via::Session { token_hash, .. } = &user.via {
            state.services.store.delete_token(token_hash).await?;
        }
    }
    Ok((
        [(header::SET_COOKIE, auth::clear_session_cookie())],
        Redirect::to("/"),
    )
        .into_response())
}

pub struct PaymentMethodView {
    pub id: String,
    pub label: String,
}

#[derive(Template)]
#[template(path = "show.html")]
struct ShowPage {
    layout: Layout,
    show: ShowView,
    /// The viewer's account id (0 when signed out), so the page can tell "you're winning".
    user_id: i64,
    signed_in: bool,
    is_host: bool,
    can_moderate: bool,
    payment_methods: Vec<PaymentMethodView>,
}

async fn show_page(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    ApiPath(id): ApiPath<i64>,
) -> PageResult {
    let show = crate::api::shows::find_show(&state, id).await?;
    let is_host = user.as_ref().is_some_and(|u| u.user.id == show.seller_id);
    let can_moderate = is_host || user.as_ref().is_some_and(|u| u.user.role.can_moderate());
    let mut payment_methods = Vec::new();
    if let Some(u) = &user {
        payment_methods = state.services.store.payment_methods(u.user.id).await?;
        for (id, label) in state.services.payments.suggested_methods() {
            if !payment_methods.iter().any(|(m, _)| *m == id) {
                payment_methods.push((id, label));
            }
        }
    }
    render(&ShowPage {
        layout: layout(&state, user.as_ref(), show.title.clone()),
        show: ShowView::from(&show),
        user_id: user.as_ref().map_or(0, |u| u.user.id.0),
        signed_in: user.is_some(),
        is_host,
        can_moderate,
        payment_methods: payment_methods
            .into_iter()
            .map(|(id, label)| PaymentMethodView { id, label })
            .collect(),
    })
}

#[derive(Template)]
#[template(path = "host.html")]
struct HostPage {
    layout: Layout,
    show: ShowView,
    products: Vec<ProductView>,
}

async fn host_page(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    ApiPath(id): ApiPath<i64>,
) -> PageResult {
    let Some(user) = user else {
        return Ok(login_redirect(&format!("/shows/{id}/host")));
    };
    let show = crate::api::shows::find_show(&state, id).await?;
    if !user.user.acts_for(show.seller_id) {
        return Err(AppError::forbidden("only the show's host can open its console").into());
    }
    let mut products = Vec::new();
    for pid in &show.product_ids {
        if let Some(p) = state.services.store.product(*pid).await? {
            products.push(ProductView::from(&p));
        }
    }
    render(&HostPage {
        layout: layout(&state, Some(&user), format!("Host · {}", show.title)),
        show: ShowView::from(&show),
        products,
    })
}

/// Which page of each list a page with two of them shows (the dashboard, a store).
#[derive(Deserialize)]
struct ListsQuery {
    shows_after: Option<String>,
    products_after: Option<String>,
}

const PRODUCT_LINKS: (&str, &str) = ("First products", "More products");
const SHOW_LINKS: (&str, &str) = ("First shows", "More shows");

#[derive(Template)]
#[template(path = "store.html")]
struct StorePage {
    layout: Layout,
    seller_name: String,
    /// One page of the store's shows live or scheduled.
    shows: Vec<ShowView>,
    shows_pager: Pager,
    /// One page of the store's active products.
    products: Vec<ProductView>,
    products_pager: Pager,
}

async fn store_page(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<ListsQuery>,
) -> PageResult {
    let seller = state
        .services
        .store
        .user(UserId(id))
        .await?
        .filter(|u| u.role.can_sell())
        .ok_or_else(|| AppError::not_found("store"))?;
    let here = format!("/stores/{id}");
    let shows_after = q.shows_after.as_deref();
    let shows = state
        .services
        .store
        .shows(
            &ShowFilter {
                seller: Some(seller.id),
                hide_ended: true,
                ..ShowFilter::default()
            },
            &page_request(CARDS, shows_after)?,
        )
        .await?;
    let shows_pager = Pager::new(
        "shows",
        &here,
        "shows_after",
        shows_after,
        shows.next.as_ref(),
        SHOW_LINKS,
    );
    let products_after = q.products_after.as_deref();
    let products = state
        .services
        .store
        .products_by_seller(seller.id, false, &page_request(CARDS, products_after)?)
        .await?;
    let products_pager = Pager::new(
        "products",
        &here,
        "products_after",
        products_after,
        products.next.as_ref(),
        PRODUCT_LINKS,
    );
    render(&StorePage {
        layout: layout(&state, user.as_ref(), seller.display_name.clone()),
        seller_name: seller.display_name,
        shows: shows.items.iter().map(ShowView::from).collect(),
        shows_pager,
        products: products.items.iter().map(ProductView::from).collect(),
        products_pager,
    })
}

#[derive(Template)]
#[template(path = "orders.html")]
struct OrdersPage {
    layout: Layout,
    seller_view: bool,
    /// One page of orders, newest first.
    orders: Vec<OrderView>,
    pager: Pager,
    /// The buyer's daily spending limit in major units; empty for none.
    spend_limit: String,
}

const ORDER_LINKS: (&str, &str) = ("Newest orders", "Older orders");

async fn orders_page(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    ApiQuery(q): ApiQuery<AfterQuery>,
) -> PageResult {
    let Some(user) = user else {
        return Ok(login_redirect("/orders"));
    };
    let after = q.after.as_deref();
    let orders = state
        .services
        .store
        .orders_for_buyer(user.user.id, &page_request(ROWS, after)?)
        .await?;
    let spend_limit = user
        .user
        .daily_spend_limit_cents
        .map(form_amount)
        .unwrap_or_default();
    let pager = Pager::new(
        "orders",
        "/orders",
        "after",
        after,
        orders.next.as_ref(),
        ORDER_LINKS,
    );
    render(&OrdersPage {
        layout: layout(&state, Some(&user), "My orders"),
        seller_view: false,
        orders: orders.items.iter().map(OrderView::from).collect(),
        pager,
        spend_limit,
    })
}

async fn seller_orders(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    ApiQuery(q): ApiQuery<AfterQuery>,
) -> PageResult {
    let user = seller(user, "/dashboard/orders")?;
    let user = match user {
        Ok(u) => u,
        Err(r) => return Ok(r),
    };
    let after = q.after.as_deref();
    let orders = state
        .services
        .store
        .orders_for_seller(user.user.id, None, &page_request(ROWS, after)?)
        .await?;
    let pager = Pager::new(
        "orders",
        "/dashboard/orders",
        "after",
        after,
        orders.next.as_ref(),
        ORDER_LINKS,
    );
    render(&OrdersPage {
        layout: layout(&state, Some(&user), "Store orders"),
        seller_view: true,
        orders: orders.items.iter().map(OrderView::from).collect(),
        pager,
        spend_limit: String::new(),
    })
}

/// The signed-in seller, a redirect to log in, or a refusal.
fn seller(
    user: Option<CurrentUser>,
    here: &str,
) -> Result<Result<CurrentUser, Response>, PageError> {
    match user {
        None => Ok(Err(login_redirect(here))),
        Some(u) if u.user.role.can_sell() => Ok(Ok(u)),
        Some(_) => {
            Err(AppError::forbidden("this page is for sellers; sign up as a seller to sell").into())
        }
    }
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    layout: Layout,
    seller_id: i64,
    /// One page of the seller's products, the archived ones last.
    products: Vec<ProductView>,
    products_pager: Pager,
    /// One page of the seller's shows.
    shows: Vec<ShowView>,
    shows_pager: Pager,
    blocked_words: String,
    /// The shipping fee in major units, as the form edits it.
    shipping_fee: String,
}

async fn dashboard(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    ApiQuery(q): ApiQuery<ListsQuery>,
) -> PageResult {
    let user = match seller(user, "/dashboard")? {
        Ok(u) => u,
        Err(r) => return Ok(r),
    };
    let products_after = q.products_after.as_deref();
    let products = state
        .services
        .store
        .products_by_seller(user.user.id, true, &page_request(ROWS, products_after)?)
        .await?;
    let products_pager = Pager::new(
        "products",
        "/dashboard",
        "products_after",
        products_after,
        products.next.as_ref(),
        PRODUCT_LINKS,
    );
    let shows_after = q.shows_after.as_deref();
    let shows = state
        .services
        .store
        .shows(
            &ShowFilter {
                seller: Some(user.user.id),
                ..ShowFilter::default()
            },
            &page_request(ROWS, shows_after)?,
        )
        .await?;
    let shows_pager = Pager::new(
        "shows",
        "/dashboard",
        "shows_after",
        shows_after,
        shows.next.as_ref(),
        SHOW_LINKS,
    );
    render(&DashboardPage {
        layout: layout(&state, Some(&user), "Dashboard"),
        seller_id: user.user.id.0,
        products: products.items.iter().map(ProductView::from).collect(),
        products_pager,
        shows: shows.items.iter().map(ShowView::from).collect(),
        shows_pager,
        blocked_words: user.user.blocked_words.join(", "),
        shipping_fee: form_amount(user.user.shipping_fee_cents),
    })
}

#[derive(Template)]
#[template(path = "product_form.html")]
struct ProductFormPage {
    layout: Layout,
    product: Option<ProductView>,
}

async fn new_product(State(state): State<AppState>, MaybeUser(user): MaybeUser) -> PageResult {
    let user = match seller(user, "/dashboard/products/new")? {
        Ok(u) => u,
        Err(r) => return Ok(r),
    };
    render(&ProductFormPage {
        layout: layout(&state, Some(&user), "New product"),
        product: None,
    })
}

async fn edit_product(
    State(state): State<AppState>,
    MaybeUser(user): MaybeUser,
    ApiPath(id): ApiPath<i64>,
) -> PageResult {
    let user = match seller(user, &format!("/dashboard/products/{id}"))? {
        Ok(u) => u,
        Err(r) => return Ok(r),
    };
    let product = state
        .services
        .store
        .product(ProductId(id))
        .await?
        .filter(|p| p.seller_id == user.user.id)
        .ok_or_else(|| AppError::not_found("product"))?;
    render(&ProductFormPage {
        layout: layout(&state, Some(&user), format!("Edit {}", product.title)),
        product: Some(ProductView::from(&product)),
    })
}

#[derive(Template)]
#[template(path = "show_form.html")]
struct ShowFormPage {
    layout: Layout,
    products: Vec<ProductView>,
}

async fn new_show(State(state): State<AppState>, MaybeUser(user): MaybeUser) -> PageResult {
    let user = match seller(user, "/dashboard/shows/new")? {
        Ok(u) => u,
        Err(r) => return Ok(r),
    };
    // A lineup holds at most 100 products; the form offers the newest active ones.
    let products = state
        .services
        .store
        .products_by_seller(user.user.id, false, &PageRequest::first(PAGE_MAX))
        .await?;
    render(&ShowFormPage {
        layout: layout(&state, Some(&user), "Schedule a show"),
        products: products.items.iter().map(ProductView::from).collect(),
    })
}

async fn not_found() -> PageError {
    PageError(AppError::not_found("page"))
}
