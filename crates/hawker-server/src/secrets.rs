//! Random secrets and how they are kept: tokens are random bytes, and only their SHA-256 is
//! stored, so a copy of the database signs nobody in.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Hex of `bytes` random bytes.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// A show's stream key: the Bearer token its host (console or OBS) publishes video with.
pub fn new_stream_key() -> String {
    format!("sk_{}", random_token(24))
}

/// What is stored of a token (session, API token, stream key).
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares without stopping at the first difference, so timing does not reveal a secret.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
