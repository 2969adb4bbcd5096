//! The API's JSON bodies, fuzzed on stable Rust in every test run: for every operation the
//! OpenAPI document gives a JSON body, a valid seed is made from its schema, then mutated
//! thousands of times, byte by byte (`hawker_fuzz::mutate`) and value by value (hostile
//! numbers, strings, types, missing and unknown fields), and sent to a live show's server as
//! its seller and as a buyer. No answer may be a 5xx, and every refusal must be the JSON error
//! shape (`{"error":{"code","message"}}`).

use hawker_fuzz::mutate::{Rng, mutate};
use serde_json::{Value, json};

use crate::auctions::{bidder, start_auction};
use crate::helpers::spawn_app;

/// A value for a field, by its name: the ids this server has, or something plausible.
fn seed_value(name: &str, schema: &Value, ids: &Ids) -> Value {
    match name {
        "show_id" => json!(ids.show),
        "variant_id" => json!(ids.variant),
        "product_id" => json!(ids.product),
        "product_ids" => json!([ids.product]),
        "user_id" => json!(ids.buyer),
        "email" => json!("fuzz@test.dev"),
        "password" => json!("correct horse"),
        "role" => json!("buyer"),
        "currency" => json!("USD"),
        "mode" => json!("standard"),
        "method" | "payment_method" => json!("pm_card_visa"),
        "variants" => json!([{ "name": "One", "price_cents": 1_000, "stock": 3 }]),
        "words" | "blocked_words" => json!(["spam"]),
        _ => match schema["type"]
            .as_str()
            .or_else(|| schema["type"][0].as_str())
        {
            Some("integer") => json!(if name.ends_with("_s") { 30 } else { 1_000 }),
            Some("boolean") => json!(false),
            Some("array") => json!([]),
            Some("object") => json!({}),
            _ => json!("Fuzzy"),
        },
    }
}

struct Ids {
    show: i64,
    variant: i64,
    product: i64,
    buyer: i64,
    auction: i64,
    order: i64,
    sale: i64,
}

/// The values a fuzzer tries first: the edges of every type, and the wrong types.
fn hostile(rng: &mut Rng) -> Value {
    let pick = [
        json!(null),
        json!(-1),
        json!(0),
        json!(i64::MAX),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(1e308),
        json!(-0.0),
        json!(0.5),
        json!("1"),
        json!(""),
        json!("\u{202e}evil\u{0}"),
        json!("x".repeat(100_000)),
        json!([[[[[[[[[[]]]]]]]]]]),
        json!({ "a": { "b": { "c": [] } } }),
        json!(true),
        json!([1, "two", null]),
    ];
    pick[rng.below(pick.len())].clone()
}

/// One mutation of `seed`: half the time its bytes, half the time one of its values.
fn mutated(rng: &mut Rng, seed: &Value) -> Vec<u8> {
    if rng.below(2) == 0 {
        return mutate(rng, seed.to_string().as_bytes());
    }
    let mut body = seed.clone();
    if let Some(fields) = body.as_object_mut() {
        let keys: Vec<String> = fields.keys().cloned().collect();
        match rng.below(3) {
            0 if !keys.is_empty() => {
                fields.remove(&keys[rng.below(keys.len())]);
            }
            1 => {
                fields.insert("unexpected".into(), hostile(rng));
            }
            _ if !keys.is_empty() => {
                let key = &keys[rng.below(keys.len())];
                fields.insert(key.clone(), hostile(rng));
            }
            _ => {}
        }
    }
    body.to_string().into_bytes()
}

/// `/api/v1/shows/{id}/…` with the id this path's resource has here.
fn concrete(path: &str, ids: &Ids) -> String {
    let id = if path.starts_with("/api/v1/shows/") {
        ids.show
    } else if path.starts_with("/api/v1/products/") {
        ids.product
    } else if path.starts_with("/api/v1/auctions/") {
        ids.auction
    } else if path.starts_with("/api/v1/orders/") {
        ids.order
    } else if path.starts_with("/api/v1/flash-sales/") {
        ids.sale
    } else {
        ids.show
    };
    path.replace("{id}", &id.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_json_body_of_the_api_survives_hostile_mutations() {
    let app = spawn_app().await;
    let show = app.live_show(&[("Card", 5_000, 1_000)]).await;
    let buyer = bidder(&app).await;
    let sale = app.start_sale(&show, 100, 1_000, 3_600).await;
    let (auction, _) = start_auction(
        &app,
        &show,
        json!({ "variant_id": show.variant_ids[0], "start_cents": 1_000, "duration_s": 120, "mode": "standard" }),
    )
    .await;
    let (status, bought) = app
        .buy(
            &buyer.token,
            "fuzz-seed",
            json!({ "show_id": show.show_id, "variant_id": show.variant_ids[0], "quantity": 1, "payment_method": "pm_card_visa" }),
        )
        .await;
    assert!(status.is_success(), "{bought}");
    let ids = Ids {
        show: show.show_id,
        variant: show.variant_ids[0],
        product: show.product_id,
        buyer: buyer.id,
        auction,
        order: bought["order"]["id"].as_i64().expect("order"),
        sale,
    };
    let (_, doc) = app.get(None, "/api/v1/openapi.json").await;
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        // Ending the show or the session would only turn the rest into 409s and 401s.
        if path.ends_with("/end") || path.ends_with("/logout") {
            continue;
        }
        for method in ["post", "patch", "put"] {
            let schema = &item[method]["requestBody"]["content"]["application/json"]["schema"];
            let Some(props) = schema["properties"].as_object() else {
                continue;
            };
            let seed: serde_json::Map<String, Value> = props
                .iter()
                .map(|(name, s)| (name.clone(), seed_value(name, s, &ids)))
                .collect();
            operations.push((method, concrete(path, &ids), Value::Object(seed)));
        }
    }
    assert!(
        operations.len() >= 12,
        "the document lists the JSON bodies: {operations:?}"
    );

    let mut rng = Rng(0xF022_BAD1_D00D_5EED);
    let mut sent = 0;
    for (method, path, seed) in &operations {
        for round in 0..400 {
            let token = if round % 2 == 0 {
                &show.seller.token
            } else {
                &buyer.token
            };
            let body = mutated(&mut rng, seed);
            let method =
                reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            let res = app
                .client
                .request(method.clone(), app.url(path))
                .bearer_auth(token)
                .header("content-type", "application/json")
                .header("idempotency-key", format!("fuzz-{sent}"))
                .body(body.clone())
                .send()
                .await
                .expect("an answer");
            let status = res.status();
            let text = res.text().await.unwrap_or_default();
            assert!(
                !status.is_server_error(),
                "{method} {path} answered {status} to {:?}: {text}",
                String::from_utf8_lossy(&body)
            );
            if status.is_client_error() {
                let error: Value = serde_json::from_str(&text).unwrap_or_default();
                assert!(
                    error["error"]["code"].is_string() && error["error"]["message"].is_string(),
                    "{method} {path} refused {:?} without the error shape: {text}",
                    String::from_utf8_lossy(&body)
                );
            }
            sent += 1;
        }
    }
    eprintln!("{sent} mutated bodies over {} operations", operations.len());
}
