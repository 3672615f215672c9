//! Maps keyed by the handles the stack hands out itself (call, transaction, flow and request
//! ids): counters we choose, so nobody on the network can pick colliding keys, and the
//! DoS-resistant SipHash that std's maps use by default buys nothing for them. A call
//! looks such handles up a few dozen times per message; a multiply is enough.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map from one of our own handles.
pub(crate) type HandleMap<K, V> = HashMap<K, V, BuildHasherDefault<HandleHasher>>;

/// A new, empty [`HandleMap`].
pub(crate) fn handle_map<K, V>() -> HandleMap<K, V> {
    HashMap::default()
}

/// Fibonacci hashing of a u64 counter: the multiply spreads consecutive ids over the
/// high bits the table's control bytes use.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct HandleHasher(u64);

impl Hasher for HandleHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn write(&mut self, bytes: &[u8]) {
        // Handles hash through write_u64; this only serves other shapes of key.
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_handles_spread_over_the_high_bits() {
        let top = |n: u64| {
            let mut h = HandleHasher::default();
            h.write_u64(n);
            h.finish() >> 57
        };
        let distinct: std::collections::HashSet<u64> = (0..64).map(top).collect();
        assert!(distinct.len() > 32, "{distinct:?}");
        let mut m = handle_map();
        for i in 0..1000u64 {
            m.insert(i, i * 2);
        }
        assert!((0..1000u64).all(|i| m[&i] == i * 2));
    }
}
