//! Maps keyed by what peers send: branches, sent-by addresses, Call-IDs, tags, addresses of
//! record. Anybody on the network picks these keys, so the hash must be keyed with a secret
//! the peer cannot learn (HashDoS); std's SipHash-1-3 is such a hash, but it costs some 400
//! instructions per lookup on a transaction key, and a call looks keys up some twenty times.
//! aHash is keyed the same way (random keys per process, from the operating system) at a
//! fraction of the cost.
//!
//! Iteration order stays unspecified, as with std's maps: nothing in the stack depends on
//! it, so a seeded run still replays exactly.

use std::collections::HashMap;

/// A map keyed by peer-chosen values.
pub(crate) type PeerMap<K, V> = HashMap<K, V, ahash::RandomState>;

/// A new, empty [`PeerMap`] with fresh random keys.
pub(crate) fn peer_map<K, V>() -> PeerMap<K, V> {
    HashMap::default()
}
