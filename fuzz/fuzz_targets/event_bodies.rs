//! Event package bodies (RFC 6665): the parsers of `message-summary` (RFC 3842), PIDF
//! presence (RFC 3863) and dialog-info (RFC 4235) never panic, and what each accepts its
//! writer writes back in a form that parses to an equal value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sansip_core::subscription::dialog_info::DialogInfo;
use sansip_core::subscription::message_summary::MessageSummary;
use sansip_core::subscription::pidf::Presence;

fuzz_target!(|data: &[u8]| {
    if let Ok(summary) = MessageSummary::parse(data) {
        let text = summary.to_string();
        match MessageSummary::parse(text.as_bytes()) {
            Ok(again) => assert_eq!(again, summary, "{data:?} written as {text:?}"),
            Err(e) => panic!("{data:?} written as {text:?}, which fails: {e:?}"),
        }
    }
    if let Ok(presence) = Presence::parse(data) {
        let text = presence.to_xml();
        match Presence::parse(text.as_bytes()) {
            Ok(again) => assert_eq!(again, presence, "{data:?} written as {text:?}"),
            Err(e) => panic!("{data:?} written as {text:?}, which fails: {e:?}"),
        }
    }
    if let Ok(info) = DialogInfo::parse(data) {
        let text = info.to_xml();
        match DialogInfo::parse(text.as_bytes()) {
            Ok(again) => assert_eq!(again, info, "{data:?} written as {text:?}"),
            Err(e) => panic!("{data:?} written as {text:?}, which fails: {e:?}"),
        }
    }
});
