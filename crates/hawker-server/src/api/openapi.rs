//! The OpenAPI 3.1 document at `/api/v1/openapi.json`. Written by hand, next to the handlers, so
//! it says exactly what the stable core promises.

use axum::Json;
use serde_json::{Value, json};

fn op(summary: &str, body: Option<Value>, ok: (&str, &str), errors: &[(&str, &str)]) -> Value {
    let mut responses = serde_json::Map::new();
    responses.insert(ok.0.into(), json!({ "description": ok.1 }));
    for (status, what) in errors {
        responses.insert((*status).into(), json!({ "description": what, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }));
    }
    let mut o = json!({ "summary": summary, "responses": responses });
    if let Some(schema) = body {
        o["requestBody"] =
            json!({ "required": true, "content": { "application/json": { "schema": schema } } });
    }
    o
}

/// A WHIP/WHEP operation: an SDP offer in, an SDP answer out.
fn sdp_op(summary: &str, errors: &[(&str, &str)]) -> Value {
    let mut o = op(
        summary,
        None,
        (
            "201",
            "the SDP answer (application/sdp); `Location` names the session to DELETE",
        ),
        errors,
    );
    o["requestBody"] = json!({ "required": true, "content": { "application/sdp": { "schema": { "type": "string" } } } });
    o
}

/// `o` as a list read a page at a time ([`super::PageQuery`]): its own query parameters
/// (`filters`), then `limit` and `after`, and the 400 either can cause.
fn paged(mut o: Value, filters: &[Value]) -> Value {
    let mut params = filters.to_vec();
    params.push(json!({ "name": "limit", "in": "query", "description": "how many items a page holds", "schema": { "type": "integer", "minimum": 1, "maximum": crate::store::PAGE_MAX, "default": crate::store::PAGE_DEFAULT } }));
    params.push(json!({ "name": "after", "in": "query", "description": "the `next` cursor of the previous page (opaque); without it, the first page", "schema": { "type": "string" } }));
    o["parameters"] = json!(params);
    o["responses"]["400"] = json!({ "description": "bad_query (limit out of range), bad_cursor", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } });
    o
}

/// The live room's WebSocket: the upgrade, and where its messages are described.
fn live_socket() -> Value {
    let mut o = op(
        "The live room WebSocket (see PROTOCOL.md)",
        None,
        ("101", "switching protocols"),
        &[("409", "show not live")],
    );
    o["description"] = json!(
        "Messages are JSON text frames. What a client may send: `/api/v1/live/client.schema.json`; \
         what the server sends: `/api/v1/live/server.schema.json` (JSON Schema 2020-12, generated \
         from the server's own types)."
    );
    o["externalDocs"] = json!({ "description": "JSON Schema of the server's messages", "url": "/api/v1/live/server.schema.json" });
    o
}

fn obj(required: &[&str], props: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": props, "additionalProperties": false })
}

pub fn spec() -> Value {
    let int = json!({ "type": "integer" });
    let s = json!({ "type": "string" });
    let id_param =
        json!([{ "name": "id", "in": "path", "required": true, "schema": { "type": "integer" } }]);
    let session_params = json!([
        { "name": "id", "in": "path", "required": true, "schema": { "type": "integer" } },
        { "name": "session", "in": "path", "required": true, "schema": { "type": "string" } }
    ]);
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": { "title": "Hawker API", "version": "1", "description": "Live-stream shopping. Authenticate with `Authorization: Bearer <token>` (from signup or login) or the session cookie plus `X-CSRF-Token`. Errors are `{\"error\":{\"code\",\"message\"}}`." },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": { "Error": obj(&["error"], json!({ "error": obj(&["code", "message"], json!({ "code": s, "message": s })) })) }
        },
        "security": [{ "bearer": [] }],
        "paths": {
            "/api/v1/auth/signup": { "post": op("Create an account; returns an API token", Some(obj(&["email", "password", "display_name", "role"], json!({ "email": s, "password": s, "display_name": s, "role": { "enum": ["buyer", "seller"] } }))), ("201", "{user, token}"), &[("409", "e-mail taken"), ("422", "invalid input")]) },
            "/api/v1/auth/login": { "post": op("Log in; returns an API token", Some(obj(&["email", "password"], json!({ "email": s, "password": s }))), ("200", "{token}"), &[("401", "wrong e-mail or password")]) },
            "/api/v1/products": {
                "post": op("Create a product with variants (sellers)", Some(obj(&["title", "currency", "variants"], json!({ "title": s, "description": s, "currency": s, "variants": { "type": "array", "items": obj(&["name", "price_cents", "stock"], json!({ "name": s, "price_cents": int, "stock": int })) } }))), ("201", "{id, variants:[{id, name, price_cents, stock}]}"), &[("403", "not a seller"), ("422", "invalid input")]),
                "get": paged(op("My products with their variants: the active ones first, newest first", None, ("200", "{products, next}"), &[("401", "not signed in")]), &[])
            },
            "/api/v1/products/{id}": { "parameters": id_param, "get": op("A product", None, ("200", "the product"), &[("404", "unknown")]), "put": op("Edit a product (not while live)", None, ("200", "the product"), &[("409", "product is live")]), "delete": op("Archive a product", None, ("204", "archived"), &[("409", "product is live")]) },
            "/api/v1/products/{id}/images": { "parameters": id_param, "post": op("Upload an image (multipart field `image`)", None, ("201", "{url}"), &[("413", "too large"), ("415", "not an image")]) },
            "/api/v1/shows": {
                "post": op("Schedule a show", Some(obj(&["title", "category", "product_ids"], json!({ "title": s, "category": s, "scheduled_at": { "type": ["integer", "null"], "description": "ms since the epoch" }, "product_ids": { "type": "array", "items": int } }))), ("201", "{id, stream_key}"), &[("422", "invalid input")]),
                "get": paged(json!({ "summary": "List shows: the live ones first, then the scheduled, then the ended, each latest first", "responses": { "200": { "description": "{shows, next}" } } }), &[json!({ "name": "status", "in": "query", "schema": { "enum": ["live", "scheduled", "ended"] } }), json!({ "name": "category", "in": "query", "schema": s }), json!({ "name": "seller_id", "in": "query", "schema": int })])
            },
            "/api/v1/shows/{id}": { "parameters": id_param, "get": op("A show", None, ("200", "the show"), &[("404", "unknown")]) },
            "/api/v1/shows/{id}/start": { "parameters": id_param, "post": op("Go live (host)", None, ("200", "the show"), &[("409", "ended, or a product is live elsewhere")]) },
            "/api/v1/shows/{id}/end": { "parameters": id_param, "post": op("End the show (host); running sales end", None, ("200", "the show"), &[]) },
            "/api/v1/shows/{id}/pin": { "parameters": id_param, "post": op("Pin a product of the lineup, or unpin with null (host)", Some(obj(&["product_id"], json!({ "product_id": { "type": ["integer", "null"] } }))), ("200", "{pinned}"), &[("409", "not live"), ("422", "not in lineup")]) },
            "/api/v1/shows/{id}/flash-sales": { "parameters": id_param, "post": op("Start a flash sale (host)", Some(obj(&["variant_id", "quantity", "price_cents", "per_buyer_limit", "duration_s"], json!({ "variant_id": int, "quantity": int, "price_cents": int, "per_buyer_limit": int, "duration_s": int }))), ("201", "{id, ends_at}"), &[("409", "not enough stock or already running"), ("422", "invalid input")]) },
            "/api/v1/flash-sales/{id}": { "parameters": id_param, "get": op("A flash sale", None, ("200", "{id, remaining, ends_at, status}"), &[("404", "unknown")]) },
            "/api/v1/flash-sales/{id}/end": { "parameters": id_param, "post": op("End a flash sale early (host)", None, ("200", "ended"), &[("409", "not running")]) },
            "/api/v1/shows/{id}/codes": { "parameters": id_param, "post": op("Create a show-exclusive code (host)", Some(obj(&["code", "max_uses"], json!({ "code": s, "percent_off": int, "amount_off_cents": int, "max_uses": int, "expires_at": int, "first_order_only": { "type": "boolean" }, "announce": { "type": "boolean" } }))), ("201", "the code"), &[("409", "code exists"), ("422", "invalid input")]) },
            "/api/v1/shows/{id}/log": { "parameters": id_param, "get": paged(op("The show's append-only commerce log, oldest first (host)", None, ("200", "{entries:[{seq, at, event}], next}"), &[("403", "not the host")]), &[]) },
            "/api/v1/products/{id}/log": { "parameters": id_param, "get": paged(op("A product's catalog edits: prices, stock, variants, oldest first (seller)", None, ("200", "{entries:[{seq, at, event}], next}"), &[("403", "not the seller")]), &[]) },
            "/api/v1/shows/{id}/live": { "parameters": id_param, "get": live_socket() },
            "/api/v1/orders": {
                "post": {
                    "summary": "Buy: reserve, charge, confirm. Send Idempotency-Key; a retry returns the first answer. With Prefer: respond-async the answer is 202 once the order is durably reserved, and it is paid in the background (GET /orders/{id} for the outcome).",
                    "parameters": [{ "name": "Idempotency-Key", "in": "header", "required": true, "schema": s }, { "name": "Prefer", "in": "header", "required": false, "schema": s, "description": "respond-async: answer at the reservation" }],
                    "requestBody": { "required": true, "content": { "application/json": { "schema": obj(&["show_id", "quantity", "payment_method"], json!({ "show_id": int, "flash_sale_id": int, "variant_id": int, "quantity": int, "code": s, "payment_method": s })) } } },
                    "responses": { "201": { "description": "{order:{id, status, total_cents, …}}" }, "202": { "description": "{order:{…, status:\"reserved\"}}; Location: the order; pending without Prefer: still being paid, retry" }, "402": { "description": "payment_declined" }, "409": { "description": "sold_out, sale_ended, per_buyer_limit, show_not_live" }, "422": { "description": "invalid input or code" } }
                },
                "get": paged(op("My orders, newest first", None, ("200", "{orders, next}: next is the cursor of the next page, null on the last"), &[]), &[])
            },
            "/api/v1/orders/{id}/ship": { "parameters": id_param, "post": op("Mark shipped with a tracking number (seller)", Some(obj(&["tracking"], json!({ "tracking": s }))), ("200", "{order}"), &[("409", "not paid")]) },
            "/api/v1/orders/{id}/refund": { "parameters": id_param, "post": op("Cancel and refund a paid order (seller)", None, ("200", "{order}"), &[("409", "not paid")]) },
            "/api/v1/seller/orders": { "get": paged(op("My store's orders, newest first", None, ("200", "{orders, next}"), &[("403", "not a seller")]), &[json!({ "name": "show_id", "in": "query", "description": "only this show's", "schema": int })]) },
            "/api/v1/payment-methods": {
                "get": op("Saved and available payment methods", None, ("200", "{saved, available, test_mode}"), &[]),
                "post": op("Save a payment method and make it the default", Some(obj(&["method"], json!({ "method": s }))), ("201", "{id, label}"), &[("422", "unknown method")])
            },
            "/api/v1/shows/{id}/auctions": { "parameters": id_param, "post": op("Start an auction of one unit (host)", Some(obj(&["variant_id", "start_cents", "mode"], json!({ "variant_id": int, "start_cents": int, "duration_s": int, "mode": { "enum": ["standard", "sudden_death"] }, "extend_s": int }))), ("201", "{id, ends_at}"), &[("409", "another auction running, or no stock"), ("422", "invalid input")]) },
            "/api/v1/auctions/{id}": { "parameters": id_param, "get": op("An auction", None, ("200", "{id, status, price_cents, leader, ends_at, winner?, final_hash?}"), &[("404", "unknown")]) },
            "/api/v1/auctions/{id}/bids": { "parameters": id_param, "post": op("Bid (Idempotency-Key recommended)", Some(obj(&["amount_cents"], json!({ "amount_cents": int, "show_id": int }))), ("201", "{accepted:true, price_cents, leader, ends_at}"), &[("403", "shill_bid"), ("409", "auction_closed, already_winning"), ("422", "bid_too_low, wrong_show")]) },
            "/api/v1/auctions/{id}/max-bid": { "parameters": id_param, "post": op("Set a maximum (proxy bid)", Some(obj(&["max_cents"], json!({ "max_cents": int, "show_id": int }))), ("201", "{accepted:true, price_cents, leader, ends_at}"), &[("409", "auction_closed"), ("422", "bid_too_low, max_not_higher")]) },
            "/api/v1/auctions/{id}/second-chance": { "parameters": id_param, "post": op("The winner's charge failed: offer the lot to the next bidder at their highest bid (host)", None, ("201", "{bidder, price_cents}"), &[("409", "no_second_chance")]) },
            "/api/v1/shows/{id}/pre-bids": { "parameters": id_param, "post": op("A maximum on a lineup variant, bid the moment its auction starts", Some(obj(&["variant_id", "max_cents"], json!({ "variant_id": int, "max_cents": int }))), ("201", "{variant_id, max_cents}"), &[("403", "shill_bid"), ("422", "not in the lineup")]) },
            "/api/v1/me/shipping": { "put": op("A seller's shipping fee per buyer per show (combined shipping)", Some(obj(&["fee_cents"], json!({ "fee_cents": int }))), ("200", "{fee_cents}"), &[("403", "not a seller")]) },
            "/api/v1/me/spending-limit": { "put": op("A buyer's daily spending limit, checked at bid time; null removes it", Some(obj(&["daily_limit_cents"], json!({ "daily_limit_cents": { "type": ["integer", "null"] } }))), ("200", "{daily_limit_cents}"), &[("422", "invalid")]) },
            "/api/v1/auctions/{id}/log": { "parameters": id_param, "get": paged(op("The hash-chained log, oldest first; save every page (follow `next`) one after another and check them with `hawker verify-auction`", None, ("200", "{entries:[{seq, body, prev_hash, hash}], next}"), &[("404", "unknown")]), &[]) }
        }
    });
    doc["paths"]["/api/v1/shows/{id}/whip"] = json!({ "parameters": id_param, "post": sdp_op("WHIP: publish the show's video (Authorization: Bearer <stream key>, or the host's session cookie with X-CSRF-Token); a scheduled show goes live when media arrives", &[("400", "bad_sdp, unsupported_codec"), ("401", "bad_stream_key"), ("409", "already_publishing, show_ended, product_live_elsewhere"), ("415", "not application/sdp")]) });
    for (who, what) in [
        ("client", "a client may send"),
        ("server", "the server sends"),
    ] {
        doc["paths"][format!("/api/v1/live/{who}.schema.json")] = json!({ "get": op(&format!("JSON Schema of the messages {what} on the live socket"), None, ("200", "the schema (application/schema+json)"), &[]) });
    }
    doc["paths"]["/api/v1/shows/{id}/whip/{session}"] = json!({ "parameters": session_params, "delete": op("Stop publishing (Bearer stream key); viewers wait out the reconnect grace", None, ("204", "stopped"), &[("401", "bad_stream_key"), ("404", "unknown session")]), "patch": op("Trickle ICE: not supported (the answer carries the server's candidate)", None, ("405", "not supported"), &[]) });
    doc["paths"]["/api/v1/shows/{id}/stream-key"] = json!({ "parameters": id_param, "post": op("A new stream key (host), shown this once; the old one stops working", None, ("200", "{stream_key}"), &[("403", "not the host")]) });
    doc["paths"]["/api/v1/shows/{id}/whep"] = json!({ "parameters": id_param, "post": sdp_op("WHEP: play the show's video", &[("400", "bad_sdp, unsupported_codec"), ("409", "show_not_live, not_on_air"), ("415", "not application/sdp"), ("429", "rate_limited, too_many_sessions"), ("503", "show_full, server_full")]) });
    doc["paths"]["/api/v1/shows/{id}/whep/{session}"] = json!({ "parameters": session_params, "delete": op("Stop playing", None, ("204", "stopped"), &[("404", "unknown session")]), "patch": op("Trickle ICE: not supported", None, ("405", "not supported"), &[]) });
    doc
}

pub async fn document() -> Json<Value> {
    Json(spec())
}
