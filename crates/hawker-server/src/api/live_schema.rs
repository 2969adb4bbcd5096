//! JSON Schemas (draft 2020-12) of the live socket's messages, generated from the very types
//! that read and write them, so they cannot drift from the code: what a client may send
//! ([`ClientMsg`]) and what the server sends (the show's [`Envelope`]s, and the
//! [`OrderAnswer`] to a buyer's `buy`). Served at `/api/v1/live/client.schema.json` and
//! `/api/v1/live/server.schema.json`; the copies in `docs/protocol/`, which PROTOCOL.md links,
//! are kept in step by a test.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use hawker_core::protocol::{ClientMsg, Envelope};
use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

use crate::socket::OrderAnswer;

/// What a client may send on the socket.
pub fn client_messages() -> Value {
    SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator()
        .into_root_schema_for::<ClientMsg>()
        .to_value()
}

/// What the server sends on the socket.
pub fn server_messages() -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator();
    let room = generator.subschema_for::<Envelope>();
    let answer = generator.subschema_for::<OrderAnswer<'static>>();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "ServerMessage",
        "description": "A message from the server on the live socket: one of the show's messages \
                        to every viewer, or the answer to one buyer's `buy`.",
        "oneOf": [room, answer],
        "$defs": generator.take_definitions(true),
    })
}

/// The schemas as they are served and checked in: pretty, with a final newline.
pub fn text(schema: &Value) -> String {
    let mut text = serde_json::to_string_pretty(schema).unwrap_or_default();
    text.push('\n');
    text
}

/// `GET /live/client.schema.json`: made once, then served as a file would be.
pub async fn client() -> impl IntoResponse {
    static TEXT: OnceLock<String> = OnceLock::new();
    schema_response(TEXT.get_or_init(|| text(&client_messages())))
}

/// `GET /live/server.schema.json`.
pub async fn server() -> impl IntoResponse {
    static TEXT: OnceLock<String> = OnceLock::new();
    schema_response(TEXT.get_or_init(|| text(&server_messages())))
}

fn schema_response(text: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/schema+json"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        text,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `UPDATE_EXPECT=1 cargo test -p hawker-server live_schema` writes them anew.
    #[test]
    fn the_checked_in_schemas_are_the_generated_ones() {
        expect_test::expect_file!["../../../../docs/protocol/client.schema.json"]
            .assert_eq(&text(&client_messages()));
        expect_test::expect_file!["../../../../docs/protocol/server.schema.json"]
            .assert_eq(&text(&server_messages()));
    }
}
