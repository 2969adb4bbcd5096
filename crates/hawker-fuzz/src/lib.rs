//! One function per parser of network input, each taking arbitrary bytes. A parser may refuse
//! anything; it must never panic, hang or grow without bound. The cargo-fuzz targets in `fuzz/`
//! call these under libFuzzer; `tests/` replays the corpus and every kept crash on stable Rust.

pub mod mutate;

use std::cell::RefCell;
use std::time::Instant;

use hawker_core::account::Role;
use hawker_core::auction_log::{parse_log, verify};
use hawker_core::ids::{ShowId, UserId};
use hawker_core::protocol::ClientMsg;
use hawker_core::room::{Author, Room};
use hawker_core::time::Timestamp;
use hawker_media::{SessionId, Sfu, SfuConfig};

/// A fuzz target: bytes in, nothing out, never a panic.
pub type Target = fn(&[u8]);

/// The targets by name, as `fuzz/fuzz_targets/` and the corpus folders name them.
pub const TARGETS: &[(&str, Target)] = &[
    ("sdp_offer", sdp_offer),
    ("client_message", client_message),
    ("api_input", api_input),
    ("verify_auction", verify_auction),
    ("image", image),
];

thread_local! {
    /// One forwarding unit per thread: making one costs a DTLS certificate.
    static SFU: RefCell<Option<Sfu>> = const { RefCell::new(None) };
}

/// An SDP offer, as a WHIP publisher and as a WHEP viewer would send it.
pub fn sdp_offer(data: &[u8]) {
    let Ok(offer) = std::str::from_utf8(data) else {
        return;
    };
    SFU.with(|cell| {
        let mut cell = cell.borrow_mut();
        let now = Instant::now();
        if cell.is_none() {
            *cell = Sfu::new(SfuConfig::new(([127, 0, 0, 1], 9).into()), now);
        }
        let Some(sfu) = cell.as_mut() else {
            return;
        };
        let show = ShowId(1);
        let _ = sfu.publish(now, show, SessionId(1), offer);
        let _ = sfu.play(now, show, SessionId(2), [192, 0, 2, 1].into(), offer);
        // Forget both, so state does not pile up over millions of inputs.
        sfu.end_show(now, show);
        sfu.handle_timeout(now);
        while !matches!(sfu.poll_output(), hawker_media::Output::Timeout(_)) {}
    });
}

/// A live socket's client message, and what the room does with a chat line.
pub fn client_message(data: &[u8]) {
    let Ok(msg) = serde_json::from_slice::<ClientMsg>(data) else {
        return;
    };
    if let ClientMsg::Chat { text } = msg {
        let mut room = Room::new(ShowId(1), UserId(1), &["blocked".to_owned()]);
        let author = Author {
            id: UserId(2),
            name: "Ana".into(),
            role: Role::Buyer,
        };
        let _ = room.chat(Timestamp(0), &author, &text);
    }
}

/// The values API bodies and query strings carry, through the checked constructors every
/// handler uses: `{"text": …, "email": …, "key": …, "currency": …, "cents": …, "quantity": …}`.
pub fn api_input(data: &[u8]) {
    let Ok(serde_json::Value::Object(body)) = serde_json::from_slice(data) else {
        return;
    };
    for value in body.values() {
        match value {
            serde_json::Value::String(s) => {
                let _ = hawker_core::catalog::text("text", s, 200);
                let _ = hawker_core::account::email(s);
                let _ = hawker_core::ids::IdempotencyKey::parse(s);
                let _ = hawker_core::money::Currency::parse(s);
                let _ = Role::parse(s);
            }
            serde_json::Value::Number(n) => {
                if let Some(n) = n.as_i64() {
                    let _ = hawker_core::money::Price::new("cents", n);
                    let _ = hawker_core::catalog::Quantity::new(n);
                    let _ = hawker_core::catalog::stock_level("stock", n);
                }
            }
            _ => {}
        }
    }
}

/// `hawker verify-auction FILE` on any file.
pub fn verify_auction(data: &[u8]) {
    if let Ok(Ok(entries)) = std::str::from_utf8(data).map(parse_log) {
        let _ = verify(&entries);
    }
}

/// The image check every upload goes through.
pub fn image(data: &[u8]) {
    let _ = hawker_core::image::sniff(data);
}
