//! Maps keyed by what peers send: branches, sent-by addresses, Call-IDs, tags, addresses of
//! record. Anybody on the network picks these keys, so the hash must be keyed with a secret
//! the peer cannot learn (HashDoS); std's SipHash-1-3 is such a hash, but it costs some 400
//! instructions per lookup on a transaction key, and a call looks keys up some twenty times.
//! aHash is keyed the same way (random keys per process, from the operating system) at a
//! fraction of the cost.
//!
//! Iteration order stays unspecified, as with std's maps: nothing in the stack depends on
//! it, so a seeded run still replays exactly.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use smol_str::SmolStr;

/// A map keyed by peer-chosen values.
pub(crate) type PeerMap<K, V> = HashMap<K, V, ahash::RandomState>;

/// A new, empty [`PeerMap`] with fresh random keys.
pub(crate) fn peer_map<K, V>() -> PeerMap<K, V> {
    HashMap::default()
}

/// A key of two strings, such as a Call-ID and a tag, that a map keeps as
/// `(SmolStr, SmolStr)` and that a received message holds as two `&str`: looking one up
/// through this view builds no key (and copies no Call-ID longer than `SmolStr` keeps
/// inline to the heap) per message.
pub(crate) trait Pair {
    fn pair(&self) -> (&str, &str);
}

impl Pair for (SmolStr, SmolStr) {
    fn pair(&self) -> (&str, &str) {
        (&self.0, &self.1)
    }
}

impl Pair for (&str, &str) {
    fn pair(&self) -> (&str, &str) {
        (self.0, self.1)
    }
}

impl<'a> Borrow<dyn Pair + 'a> for (SmolStr, SmolStr) {
    fn borrow(&self) -> &(dyn Pair + 'a) {
        self
    }
}

// Hashed as the stored tuple hashes: `SmolStr` hashes as its `str`.
impl Hash for dyn Pair + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.pair().hash(state);
    }
}

impl PartialEq for dyn Pair + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.pair() == other.pair()
    }
}

impl Eq for dyn Pair + '_ {}

/// `(a, b)` as the borrowed form of a `(SmolStr, SmolStr)` key.
pub(crate) fn pair<'k>(key: &'k (&'k str, &'k str)) -> &'k (dyn Pair + 'k) {
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_of_strs_finds_the_pair_of_smol_strs() {
        let mut m: PeerMap<(SmolStr, SmolStr), u8> = peer_map();
        let long = "a-call-id-longer-than-twenty-three-bytes@192.0.2.1";
        m.insert((SmolStr::new(long), SmolStr::new("tag1")), 1);
        m.insert((SmolStr::new("short"), SmolStr::new("tag2")), 2);
        assert_eq!(m.get(pair(&(long, "tag1"))), Some(&1));
        assert_eq!(m.get(pair(&("short", "tag2"))), Some(&2));
        assert_eq!(m.get(pair(&("short", "tag1"))), None);
        // The split between the parts matters, not just their concatenation.
        assert_eq!(m.get(pair(&("shortt", "ag2"))), None);
    }
}
