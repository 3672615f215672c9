//! The dialog-info parser (RFC 4235) never panics, and what it accepts `to_xml` writes
//! back in a form that parses to an equal value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sansip_core::subscription::dialog_info::DialogInfo;

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = DialogInfo::parse(data) {
        let text = info.to_xml();
        match DialogInfo::parse(text.as_bytes()) {
            Ok(again) => assert_eq!(again, info, "{data:?} written as {text:?}"),
            Err(e) => panic!("{data:?} written as {text:?}, which fails: {e:?}"),
        }
    }
});
