//! The `message-summary` body parser (RFC 3842) never panics, and what it accepts its
//! `Display` writes back in a form that parses to an equal value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sansip_core::subscription::message_summary::MessageSummary;

fuzz_target!(|data: &[u8]| {
    if let Ok(summary) = MessageSummary::parse(data) {
        let text = summary.to_string();
        match MessageSummary::parse(text.as_bytes()) {
            Ok(again) => assert_eq!(again, summary, "{data:?} written as {text:?}"),
            Err(e) => panic!("{data:?} written as {text:?}, which fails: {e:?}"),
        }
    }
});
