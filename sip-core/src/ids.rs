//! Identifiers SIP needs fresh randomness for: branches, tags, Call-IDs, the first CSeq and
//! client nonces (RFC 3261 §8.1.1.4–7, §19.3; RFC 7616 §3.4 for cnonce).
//!
//! All of them come from one generator seeded at construction, so a scenario with the same
//! seed and inputs produces the same bytes (DESIGN.md §2). The generator is ChaCha12: one
//! identifier says nothing about the next, so a peer that sees our tags cannot forge the
//! next dialog's. Outside tests the runtime seeds it from the operating system's CSPRNG.

use rand_chacha::ChaCha12Rng;
use rand_core::{RngCore, SeedableRng};
use smol_str::SmolStr;

use crate::transaction::MAGIC_COOKIE;

/// A seeded source of SIP identifiers.
///
/// ```
/// use sansip_core::ids::IdGenerator;
/// let mut a = IdGenerator::new(7);
/// let mut b = IdGenerator::new(7);
/// let branch = a.branch();
/// assert!(branch.starts_with("z9hG4bK"));
/// assert_eq!(branch, b.branch(), "same seed, same identifiers");
/// assert_ne!(a.branch(), branch);
/// ```
#[derive(Debug, Clone)]
pub struct IdGenerator {
    rng: ChaCha12Rng,
}

impl IdGenerator {
    /// A generator whose whole output is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: ChaCha12Rng::seed_from_u64(seed),
        }
    }

    /// A Via branch: the magic cookie and 64 random bits, 23 characters in all (so it is
    /// stored inline, without an allocation).
    pub fn branch(&mut self) -> SmolStr {
        self.hex(MAGIC_COOKIE, 1)
    }

    /// A From or To tag: 64 random bits (RFC 3261 §19.3 asks for at least 32).
    pub fn tag(&mut self) -> SmolStr {
        self.hex("", 1)
    }

    /// A Call-ID: 128 random bits, globally unique without naming a host.
    pub fn call_id(&mut self) -> SmolStr {
        self.hex("", 2)
    }

    /// A client nonce for digest authentication: 64 random bits.
    pub fn cnonce(&mut self) -> SmolStr {
        self.hex("", 1)
    }

    /// The first CSeq number of a dialog or registration: below 2³¹ as RFC 3261 §8.1.1.5
    /// requires, and low enough that a long dialog never wraps.
    pub fn initial_cseq(&mut self) -> u32 {
        1 + (self.rng.next_u32() % ((1 << 30) - 1))
    }

    /// A uniformly random value in `0..max`, for jitter and backoff (RFC 3261 §14.1 glare
    /// timers, registration refresh).
    pub fn below(&mut self, max: u64) -> u64 {
        // Widening multiplication maps 64 random bits onto 0..max with a bias below 2⁻³².
        if max == 0 {
            0
        } else {
            ((u128::from(self.rng.next_u64()) * u128::from(max)) >> 64) as u64
        }
    }

    fn hex(&mut self, prefix: &str, words: usize) -> SmolStr {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        // Written on the stack and handed over at once: a branch (23 bytes) fits a SmolStr
        // inline, and pushing a char at a time cost more than the random words.
        let mut buf = [0u8; 64];
        let start = prefix.len().min(buf.len() - 32);
        buf[..start].copy_from_slice(&prefix.as_bytes()[..start]);
        let mut end = start;
        for _ in 0..words.min(2) {
            let word = self.rng.next_u64();
            for (shift, slot) in buf[end..end + 16].iter_mut().enumerate() {
                *slot = DIGITS[(word >> ((15 - shift) * 4)) as usize & 0xf];
            }
            end += 16;
        }
        // Only the prefix (the ASCII magic cookie) and hex digits were written.
        SmolStr::new(std::str::from_utf8(&buf[..end]).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_have_the_promised_shape() {
        let mut g = IdGenerator::new(1);
        let b = g.branch();
        assert_eq!(b.len(), 23);
        assert!(!b.is_heap_allocated());
        assert!(b[7..].bytes().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(g.tag().len(), 16);
        assert_eq!(g.call_id().len(), 32);
        let cseq = g.initial_cseq();
        assert!((1..1 << 30).contains(&cseq));
    }

    #[test]
    fn identifiers_do_not_repeat() {
        let mut g = IdGenerator::new(99);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            assert!(seen.insert(g.branch()));
        }
    }
}
