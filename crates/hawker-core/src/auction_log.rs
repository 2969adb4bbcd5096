//! The auction log's hash chain: entry `n` is `{seq, body, prev_hash, hash}` with `hash` the
//! lower-case hex SHA-256 of `prev_hash` followed by `body` (the exact JSON text of the event), and
//! `prev_hash` the previous entry's hash (64 zeros first). [`verify`] checks the chain and then
//! replays the bodies through the rules (`hawker_core::auction::replay`).

use crate::auction::{Entry, Replayed, replay};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One published log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub seq: u64,
    pub body: String,
    pub prev_hash: String,
    pub hash: String,
}

pub fn chain_hash(prev_hash: &str, body: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(body.as_bytes());
    hex::encode(h.finalize())
}

/// Appends bodies to a chain whose last entry is `(seq, hash)`.
pub struct Chain {
    pub seq: u64,
    pub last_hash: String,
}

impl Chain {
    pub fn new() -> Self {
        Self {
            seq: 0,
            last_hash: GENESIS.to_owned(),
        }
    }

    pub fn append(&mut self, entry: &Entry) -> LogEntry {
        let body = serde_json::to_string(entry).unwrap_or_default();
        let hash = chain_hash(&self.last_hash, &body);
        self.seq += 1;
        LogEntry {
            seq: self.seq,
            body,
            prev_hash: std::mem::replace(&mut self.last_hash, hash.clone()),
            hash,
        }
    }
}

impl Default for Chain {
    fn default() -> Self {
        Self::new()
    }
}

/// A log as people save it, for [`verify`]: the pages of `GET /api/v1/auctions/{id}/log`
/// (`{"entries": […], "next": …}`) one after another, in order, as a client fetches them
/// following `next`; or a JSON array of entries, as the log was served before it was paged.
/// The entries come out joined in the order given; [`verify`] then refuses a page missing,
/// repeated or out of place, as it refuses any break in the chain.
pub fn parse_log(text: &str) -> Result<Vec<LogEntry>, serde_json::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Part {
        Entries(Vec<LogEntry>),
        Page { entries: Vec<LogEntry> },
    }
    let entries = |part| match part {
        Part::Entries(e) | Part::Page { entries: e } => e,
    };
    let mut parts = serde_json::Deserializer::from_str(text)
        .into_iter::<Part>()
        .peekable();
    if parts.peek().is_none() {
        // Nothing but white space: the error a single document would give.
        return serde_json::from_str::<Part>(text).map(entries);
    }
    let mut all = Vec::new();
    for part in parts {
        all.extend(entries(part?));
    }
    Ok(all)
}

/// Which entry (1-based `seq` position) breaks the log, and how.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {position} (seq {seq}): {message}")]
pub struct VerifyError {
    /// 1-based position in the array.
    pub position: usize,
    pub seq: u64,
    pub message: String,
}

/// Checks the chain, then the rules. On success: the winner, the price and the final hash.
pub fn verify(entries: &[LogEntry]) -> Result<(Replayed, String), VerifyError> {
    let mut prev = GENESIS.to_owned();
    let mut bodies = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let fail = |message: String| VerifyError {
            position: i + 1,
            seq: e.seq,
            message,
        };
        if e.seq != i as u64 + 1 {
            return Err(fail(format!("seq should be {}", i + 1)));
        }
        if e.prev_hash != prev {
            return Err(fail("prev_hash is not the previous entry's hash".into()));
        }
        if chain_hash(&e.prev_hash, &e.body) != e.hash {
            return Err(fail("hash does not match prev_hash + body".into()));
        }
        let body: Entry = serde_json::from_str(&e.body)
            .map_err(|err| fail(format!("body is not an auction event: {err}")))?;
        bodies.push(body);
        prev = e.hash.clone();
    }
    let outcome = replay(&bodies).map_err(|err| {
        let position = err.index + 1;
        VerifyError {
            position,
            seq: entries.get(err.index).map_or(position as u64, |e| e.seq),
            message: err.message,
        }
    })?;
    Ok((outcome, prev))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64) -> LogEntry {
        LogEntry {
            seq,
            body: format!("{{\"n\":{seq}}}"),
            prev_hash: GENESIS.into(),
            hash: GENESIS.into(),
        }
    }

    #[test]
    fn a_saved_log_is_its_pages_one_after_another_or_one_array() {
        let page = |from: u64, to: u64, next: Option<&str>| {
            serde_json::json!({ "entries": (from..=to).map(entry).collect::<Vec<_>>(), "next": next })
                .to_string()
        };
        let pages = format!(
            "{}\n{}{}",
            page(1, 2, Some("01aa")),
            page(3, 4, Some("01bb")),
            page(5, 5, None)
        );
        let seqs = |text: &str| -> Vec<u64> {
            parse_log(text)
                .expect("a log")
                .iter()
                .map(|e| e.seq)
                .collect()
        };
        assert_eq!(seqs(&pages), [1, 2, 3, 4, 5]);
        let array = serde_json::to_string(&[entry(1), entry(2)]).expect("json");
        assert_eq!(seqs(&array), [1, 2]);
        for bad in ["", "  \n", "{}", "[1, 2]", "{\"entries\": 3}", "[] garbage"] {
            assert!(parse_log(bad).is_err(), "{bad:?}");
        }
    }
}
