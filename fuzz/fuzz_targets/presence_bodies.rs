//! The PIDF presence parser (RFC 3863, with RPID) never panics, and what it accepts
//! `to_xml` writes back in a form that parses to an equal value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sansip_core::subscription::pidf::Presence;

fuzz_target!(|data: &[u8]| {
    if let Ok(presence) = Presence::parse(data) {
        let text = presence.to_xml();
        match Presence::parse(text.as_bytes()) {
            Ok(again) => assert_eq!(again, presence, "{data:?} written as {text:?}"),
            Err(e) => panic!("{data:?} written as {text:?}, which fails: {e:?}"),
        }
    }
});
