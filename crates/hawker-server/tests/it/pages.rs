//! Server-rendered pages: what they list, the log-in and sign-up forms end to end, who may open
//! what, error pages, and how static files, uploads and the OpenAPI document are served.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Account, Page, TestApp, input_value, meta_csrf, png_bytes, read_page, spawn_app,
};

/// The part of the home page between `id="live-now"` and the upcoming shows.
fn live_now(html: &str) -> &str {
    let start = html.find("id=\"live-now\"").expect("a live-now section");
    let end = html[start..]
        .find("id=\"upcoming\"")
        .map_or(html.len(), |e| start + e);
    &html[start..end]
}

fn upcoming(html: &str) -> &str {
    &html[html.find("id=\"upcoming\"").expect("an upcoming section")..]
}

fn card(show_id: i64) -> String {
    format!("href=\"/shows/{show_id}\"")
}

/// A show of a new seller in `category`, started if `live`.
async fn show_in(app: &TestApp, category: &str, live: bool) -> (Account, i64) {
    let seller = app.signup("seller").await;
    let (product_id, _) = app.product(&seller, &[("One", 1000, 5)]).await;
    let (status, body) = app.post(&seller.token, "/api/v1/shows", json!({ "title": format!("{category} hour"), "category": category, "product_ids": [product_id] })).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_i64().expect("id");
    if live {
        let (status, body) = app
            .post(
                &seller.token,
                &format!("/api/v1/shows/{id}/start"),
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    (seller, id)
}

fn is_html(page: &Page) -> bool {
    page.header("content-type").starts_with("text/html")
}

#[tokio::test]
async fn home_lists_live_shows_under_live_now_and_filters_by_category() {
    let app = spawn_app().await;
    let browser = app.browser();
    let beauty = app.live_show(&[("Ruby", 2400, 80)]).await.show_id;
    let (_, sneakers) = show_in(&app, "sneakers", true).await;
    let (_, later) = show_in(&app, "sneakers", false).await;

    let home = app.page(&browser, "/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("<h2>Live now</h2>"));
    let live = live_now(&home.body);
    assert!(
        live.contains(&card(beauty)) && live.contains(&card(sneakers)),
        "{live}"
    );
    assert!(
        !live.contains(&card(later)),
        "a scheduled show is not live: {live}"
    );
    assert!(upcoming(&home.body).contains(&card(later)));
    assert!(
        home.body.contains("href=\"/?category=sneakers\""),
        "category chips"
    );

    let filtered = app.page(&browser, "/?category=Sneakers").await;
    assert_eq!(filtered.status, StatusCode::OK);
    let live = live_now(&filtered.body);
    assert!(live.contains(&card(sneakers)), "{live}");
    assert!(
        !live.contains(&card(beauty)),
        "the filter leaves other categories out: {live}"
    );
    assert!(upcoming(&filtered.body).contains(&card(later)));

    let nothing = app.page(&browser, "/?category=garden").await;
    assert!(
        !live_now(&nothing.body).contains("href=\"/shows/"),
        "{}",
        nothing.body
    );
    assert!(nothing.body.contains("Nobody is live right now in garden"));
}

#[tokio::test]
async fn the_signup_form_starts_a_session() {
    let app = spawn_app().await;
    let browser = app.browser();
    let form = app.page(&browser, "/signup").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(
        form.header("set-cookie").starts_with("hawker_csrf="),
        "{:?}",
        form.headers
    );
    assert!(form.body.contains("id=\"auth-form\""));

    let user = app.form_signup(&browser, "buyer", "/orders").await;
    let orders = app.page(&browser, "/orders").await;
    assert_eq!(orders.status, StatusCode::OK);
    assert!(
        orders.body.contains("<h1>My orders</h1>"),
        "{}",
        orders.body
    );
    assert!(
        orders
            .body
            .contains(&format!("Log out ({})", user.display_name)),
        "the page is for this session"
    );
    // Without the session, the same page asks to log in.
    let anonymous = app.page(&app.browser(), "/orders").await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert_eq!(anonymous.header("location"), "/login?next=/orders");
    // The account is real: its password works on the API.
    let (status, body) = app
        .request(
            reqwest::Method::POST,
            None,
            "/api/v1/auth/login",
            Some(json!({ "email": user.email, "password": user.password })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["role"], "buyer");
}

#[tokio::test]
async fn the_login_form_refuses_a_wrong_password_then_logs_in() {
    let app = spawn_app().await;
    let user = app.form_signup(&app.browser(), "buyer", "/").await;
    let browser = app.browser();
    let form = app.page(&browser, "/login?next=/orders").await;
    assert_eq!(form.status, StatusCode::OK);
    let csrf = input_value(&form.body, "_csrf");
    assert_eq!(input_value(&form.body, "next"), "/orders");

    let wrong = [
        ("_csrf", csrf.as_str()),
        ("email", &user.email),
        ("password", "wrong password"),
        ("next", "/orders"),
    ];
    let page = read_page(
        browser
            .post(app.url("/login"))
            .form(&wrong)
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(is_html(&page));
    assert!(
        page.body.contains("id=\"auth-error\"") && page.body.contains("wrong e-mail or password"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("id=\"auth-form\""),
        "the form is drawn again"
    );
    assert_eq!(
        input_value(&page.body, "email"),
        user.email,
        "what was typed is kept"
    );
    assert!(
        !page
            .headers
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap_or("").starts_with("hawker_session="))
    );
    assert_eq!(
        app.page(&browser, "/orders").await.status,
        StatusCode::SEE_OTHER,
        "not logged in"
    );

    let right = [
        ("_csrf", csrf.as_str()),
        ("email", &user.email),
        ("password", &user.password),
        ("next", "/orders"),
    ];
    let res = browser
        .post(app.url("/login"))
        .form(&right)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        res.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/orders")
    );
    let orders = app.page(&browser, "/orders").await;
    assert_eq!(orders.status, StatusCode::OK);
    assert!(orders.body.contains("<h1>My orders</h1>"));
}

#[tokio::test]
async fn a_form_post_without_the_matching_csrf_cookie_is_403_and_creates_nothing() {
    let app = spawn_app().await;
    let fields = |csrf: &'static str, email: &'static str| {
        vec![
            ("_csrf", csrf),
            ("email", email),
            ("password", "correct horse"),
            ("display_name", "Mallory"),
            ("role", "seller"),
            ("next", "/"),
        ]
    };

    // No cookie at all: a cross-site form post.
    let no_cookie = app.browser();
    let page = read_page(
        no_cookie
            .post(app.url("/signup"))
            .form(&fields("abc123", "forged1@test.dev"))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(
        is_html(&page) && page.body.contains("The form expired"),
        "{}",
        page.body
    );

    // A cookie that does not match the field.
    let res = app
        .client
        .post(app.url("/signup"))
        .header("cookie", "hawker_csrf=aaaaaaaa")
        .form(&fields("bbbbbbbb", "forged2@test.dev"))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // An empty cookie and an empty field are no match either.
    let res = app
        .client
        .post(app.url("/signup"))
        .header("cookie", "hawker_csrf=")
        .form(&fields("", "forged3@test.dev"))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    for email in ["forged1@test.dev", "forged2@test.dev", "forged3@test.dev"] {
        let (status, body) = app
            .request(
                reqwest::Method::POST,
                None,
                "/api/v1/auth/login",
                Some(json!({ "email": email, "password": "correct horse" })),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "no account for {email}: {body}"
        );
    }
    // The log-in form is guarded the same way.
    let user = app.form_signup(&app.browser(), "buyer", "/").await;
    let login = [
        ("_csrf", "abc123"),
        ("email", user.email.as_str()),
        ("password", user.password.as_str()),
    ];
    let res = app
        .browser()
        .post(app.url("/login"))
        .form(&login)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(
        res.headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .is_none_or(|c| !c.starts_with("hawker_session="))
    );
}

#[tokio::test]
async fn logout_needs_the_sessions_csrf_token_and_ends_the_session() {
    let app = spawn_app().await;
    let browser = app.browser();
    app.form_signup(&browser, "buyer", "/orders").await;
    let orders = app.page(&browser, "/orders").await;
    let csrf = meta_csrf(&orders.body);
    assert_eq!(
        input_value(&orders.body, "_csrf"),
        csrf,
        "the log-out form carries the session's token"
    );

    let forged = read_page(
        browser
            .post(app.url("/logout"))
            .form(&[("_csrf", "forged")])
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(is_html(&forged));
    assert_eq!(
        app.page(&browser, "/orders").await.status,
        StatusCode::OK,
        "still logged in"
    );

    let res = browser
        .post(app.url("/logout"))
        .form(&[("_csrf", csrf.as_str())])
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        res.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/")
    );
    let after = app.page(&browser, "/orders").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert_eq!(after.header("location"), "/login?next=/orders");
}

#[tokio::test]
async fn the_show_page_renders_for_anonymous_viewers() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 80)]).await;
    let page = app
        .page(&app.browser(), &format!("/shows/{}", show.show_id))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(is_html(&page));
    assert!(
        page.body.contains(&format!(
            "href=\"/login?next=/shows/{}\">Log in to chat</a>",
            show.show_id
        )),
        "{}",
        page.body
    );
    assert!(page.body.contains("<title>Drop · Hawker</title>"));

    let missing = app.page(&app.browser(), "/shows/987654321").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(is_html(&missing));
}

#[tokio::test]
async fn the_host_console_is_for_the_host_only() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Ruby", 2400, 80)]).await;
    let path = format!("/shows/{}/host", show.show_id);

    let anonymous = app.page(&app.browser(), &path).await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert_eq!(
        anonymous.header("location"),
        format!("/login?next=/shows/{}/host", show.show_id)
    );

    let other = app.signup("seller").await;
    let res = app
        .client
        .get(app.url(&path))
        .bearer_auth(&other.token)
        .send()
        .await
        .expect("sent");
    let refused = read_page(res).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        is_html(&refused) && refused.body.contains("only the show"),
        "{}",
        refused.body
    );
    // Another seller's browser session is refused the same way.
    let browser = app.browser();
    app.form_signup(&browser, "seller", "/").await;
    assert_eq!(
        app.page(&browser, &path).await.status,
        StatusCode::FORBIDDEN
    );

    let res = app
        .client
        .get(app.url(&path))
        .bearer_auth(&show.seller.token)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::OK, "the host gets in");
}

#[tokio::test]
async fn the_dashboard_is_a_readable_403_for_buyers() {
    let app = spawn_app().await;
    let browser = app.browser();
    app.form_signup(&browser, "buyer", "/").await;
    let page = app.page(&browser, "/dashboard").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(is_html(&page));
    assert!(
        page.body.contains("<h1>403</h1>") && page.body.contains("this page is for sellers"),
        "{}",
        page.body
    );

    let anonymous = app.page(&app.browser(), "/dashboard").await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert_eq!(anonymous.header("location"), "/login?next=/dashboard");
}

#[tokio::test]
async fn an_unknown_page_is_a_404_page() {
    let app = spawn_app().await;
    let page = app.page(&app.browser(), "/no/such/page").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(is_html(&page));
    assert!(
        page.body.contains("<h1>404</h1>") && page.body.contains("Back to live shows"),
        "{}",
        page.body
    );
    // Under the API, an unknown route is JSON instead.
    let (status, body) = app.get(None, "/api/v1/no-such-thing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found", "{body}");
}

/// The value of the first `{attr}="…"` after `marker` in `html`.
fn attr_after<'a>(html: &'a str, marker: &str, attr: &str) -> &'a str {
    let from = &html[html
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {html}"))..];
    let value = &from[from.find(&format!("{attr}=\"")).expect("attribute") + attr.len() + 2..];
    &value[..value.find('"').expect("closing quote")]
}

#[tokio::test]
async fn static_assets_are_served_with_cache_control() {
    let app = spawn_app().await;
    let browser = app.browser();
    let show = app.live_show(&[("Ruby", 2400, 80)]).await;
    let home = app.page(&browser, "/").await;
    let show_page = app
        .page(&browser, &format!("/shows/{}", show.show_id))
        .await;
    // What the pages link (versioned for cache busting), and the plain paths.
    let linked_css = attr_after(&home.body, "rel=\"stylesheet\"", "href").to_owned();
    let linked_js = attr_after(&show_page.body, "<script type=\"module\"", "src").to_owned();
    assert!(
        linked_css.starts_with("/static/")
            && linked_css.contains("app.css")
            && linked_css != "/static/app.css",
        "{linked_css}"
    );
    assert!(
        linked_js.starts_with("/static/")
            && linked_js.contains("js/show.mjs")
            && linked_js != "/static/js/show.mjs",
        "{linked_js}"
    );

    for (path, content_type, needle, linked) in [
        ("/static/app.css", "text/css", "{", false),
        ("/static/js/show.mjs", "text/javascript", "import", false),
        (linked_css.as_str(), "text/css", "{", true),
        (linked_js.as_str(), "text/javascript", "import", true),
    ] {
        let page = app.page(&browser, path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(
            page.header("content-type").starts_with(content_type),
            "{path}: {:?}",
            page.headers
        );
        assert!(page.body.contains(needle), "{path}");
        let cache = page.header("cache-control");
        assert!(cache.starts_with("public"), "{path}: {cache:?}");
        if linked {
            assert!(
                cache.contains("max-age=") && !cache.contains("max-age=0"),
                "a versioned link is cached: {path}: {cache:?}"
            );
        }
    }
    assert_eq!(
        app.page(&browser, "/static/js/nope.mjs").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn an_uploaded_image_is_served_immutable_with_its_type() {
    let app = spawn_app().await;
    let seller = app.signup("seller").await;
    let (product_id, _) = app.product(&seller, &[("Ruby", 2400, 80)]).await;
    let bytes = png_bytes(2048);
    let (status, body) = app
        .upload(
            &seller.token,
            &format!("/api/v1/products/{product_id}/images"),
            &bytes,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let url = body["url"].as_str().expect("url").to_owned();
    assert!(url.starts_with("/media/") && url.ends_with(".png"), "{url}");
    let (_, product) = app
        .get(None, &format!("/api/v1/products/{product_id}"))
        .await;
    assert_eq!(product["images"], json!([url]));

    let res = app.client.get(app.url(&url)).send().await.expect("sent");
    assert_eq!(res.status(), StatusCode::OK);
    let header = |name: &str| {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    assert_eq!(header("content-type"), "image/png");
    assert_eq!(
        header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(res.bytes().await.expect("body").as_ref(), bytes.as_slice());

    let missing = url.replace(".png", ".gif");
    assert_eq!(
        app.client
            .get(app.url(&missing))
            .send()
            .await
            .expect("sent")
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.client
            .get(app.url("/media/..%2Fhawker.db"))
            .send()
            .await
            .expect("sent")
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_openapi_document_is_3_1_and_documents_orders() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("application/json"))
    );
    let doc: Value = serde_json::from_str(&res.text().await.expect("body")).expect("valid JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let orders = &doc["paths"]["/api/v1/orders"];
    assert!(orders["post"].is_object(), "buying is documented: {orders}");
    assert!(
        orders["post"]["responses"]["402"].is_object(),
        "with its refusals: {orders}"
    );
    assert!(doc["components"]["schemas"]["Error"].is_object());
}

#[tokio::test]
async fn the_live_sockets_schemas_are_served_and_named_by_the_openapi_document() {
    let app = spawn_app().await;
    for who in ["client", "server"] {
        let path = format!("/api/v1/live/{who}.schema.json");
        let res = app.client.get(app.url(&path)).send().await.expect("sent");
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert_eq!(
            res.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/schema+json")
        );
        let schema: Value = serde_json::from_str(&res.text().await.expect("body")).expect("JSON");
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{path}"
        );
        // The same document the repository links from PROTOCOL.md.
        let checked_in = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("../../docs/protocol/{who}.schema.json")),
        )
        .expect("the checked-in schema");
        assert_eq!(
            schema,
            serde_json::from_str::<Value>(&checked_in).expect("JSON")
        );
    }
    let (_, doc) = app.get(None, "/api/v1/openapi.json").await;
    let socket = doc["paths"]["/api/v1/shows/{id}/live"]["get"]["description"].to_string();
    assert!(
        socket.contains("/api/v1/live/server.schema.json"),
        "{socket}"
    );
}
