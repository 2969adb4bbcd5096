//! Deterministic mutations for the stable-Rust replays (here and in the server's API fuzz
//! test): libFuzzer's simplest moves, from a seeded generator, so a failure replays.

/// xorshift64*: the same mutations on every run, so a failure here replays.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}

/// A seed with a few of libFuzzer's simplest moves applied: flip, insert, delete, repeat,
/// splice in an interesting byte string.
pub fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    const INTERESTING: &[&[u8]] = &[
        b"\0",
        b"\xff\xff\xff\xff",
        b"\"",
        b"\\u202e",
        b"-9223372036854775808",
        b"18446744073709551616",
        b"\r\n",
        b"{}",
        b"[]",
        b"a=",
        b"m=video 9 UDP/TLS/RTP/SAVPF 96\r\n",
    ];
    let mut out = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(5) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 => out.insert(at, rng.next_u64() as u8),
            2 if at < out.len() => {
                let end = (at + rng.below(16)).min(out.len());
                out.drain(at..end);
            }
            3 if at < out.len() => {
                let end = (at + rng.below(64)).min(out.len());
                let piece = out[at..end].to_vec();
                out.splice(at..at, piece);
            }
            _ => {
                let piece = INTERESTING[rng.below(INTERESTING.len())];
                out.splice(at..at, piece.iter().copied());
            }
        }
    }
    out
}
