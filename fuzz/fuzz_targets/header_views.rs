//! Typed header views: every parser in `sansip_core::message` is total (no panic), and what
//! it accepts its `Display` writes back in a form that parses to an equal value:
//! `parse(display(x)) == x`. Lists are checked element by element and as a whole
//! (`parse_list(join(", ", displays))` gives the same elements).
//!
//! The first input byte picks the view; the rest is its input, as lossy UTF-8.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sansip_core::message::{
    CSeq, Challenge, Contact, ContentLength, ContentType, Credentials, Date, Event, Expires, Host,
    MaxForwards, MinExpires, MinSe, NameAddr, Params, RAck, RSeq, Reason, Replaces, RetryAfter,
    SessionExpires, SubscriptionState, Uri, Via, Warning, parse_call_id, parse_token_list,
};

/// `parse(s)` succeeded as `v`: its display must parse back to `v`.
macro_rules! roundtrip_value {
    ($parse:expr, $v:expr, $input:expr) => {{
        let v = $v;
        let text = v.to_string();
        match $parse(text.as_str()) {
            Ok(again) => assert_eq!(again, v, "{:?} displayed as {text:?}", $input),
            Err(e) => panic!("{:?} displayed as {text:?}, which fails: {e:?}", $input),
        }
    }};
}

/// One value: `parse(display(parse(s))) == parse(s)`.
macro_rules! one {
    ($parse:expr, $s:expr) => {{
        if let Ok(v) = $parse($s) {
            roundtrip_value!($parse, v, $s);
        }
    }};
}

/// A comma list: each element round-trips through `one`, and the joined displays re-parse
/// to the same list.
macro_rules! list {
    ($list:expr, $one:expr, $s:expr) => {{
        let items: Vec<_> = $list($s).collect();
        for v in items.iter().flatten() {
            roundtrip_value!($one, *v, $s);
        }
        if items.iter().all(Result::is_ok) {
            let joined = items
                .iter()
                .flatten()
                .map(|v| v.to_string())
                .collect::<Vec<_>>();
            let joined = joined.join(", ");
            let again: Vec<_> = $list(joined.as_str()).collect();
            assert_eq!(again, items, "{:?} displayed as {joined:?}", $s);
        }
    }};
}

/// A single token, for `parse_token_list` elements.
fn token(s: &str) -> Result<&str, ()> {
    let mut it = parse_token_list(s);
    match (it.next(), it.next()) {
        (Some(Ok(t)), None) => Ok(t),
        _ => Err(()),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let s: &str = &text;
    match which % 34 {
        0 => one!(Uri::parse, s),
        1 => one!(Uri::parse_request_uri, s),
        2 => one!(NameAddr::parse, s),
        3 => list!(NameAddr::parse_list, NameAddr::parse, s),
        // Contact compares its raw text; compare the addresses it holds instead.
        4 => {
            if let Ok(c) = Contact::parse(s) {
                let text = c.to_string();
                let again = Contact::parse(&text)
                    .unwrap_or_else(|e| panic!("{s:?} displayed as {text:?}, which fails: {e:?}"));
                assert_eq!(
                    (matches!(c, Contact::Star), c.iter().collect::<Vec<_>>()),
                    (
                        matches!(again, Contact::Star),
                        again.iter().collect::<Vec<_>>()
                    ),
                    "{s:?} displayed as {text:?}"
                );
            }
        }
        5 => one!(Via::parse, s),
        6 => list!(Via::parse_list, Via::parse, s),
        7 => one!(Challenge::parse, s),
        8 => list!(Challenge::parse_list, Challenge::parse, s),
        9 => one!(Credentials::parse, s),
        10 => one!(CSeq::parse, s),
        11 => one!(parse_call_id, s),
        12 => one!(MaxForwards::parse, s),
        13 => one!(Expires::parse, s),
        14 => one!(ContentType::parse, s),
        15 => list!(ContentType::parse_accept, ContentType::parse_range, s),
        16 => list!(parse_token_list, token, s),
        17 => one!(Reason::parse, s),
        18 => list!(Reason::parse_list, Reason::parse, s),
        19 => one!(RAck::parse, s),
        20 => one!(SessionExpires::parse, s),
        21 => one!(Replaces::parse, s),
        22 => one!(Event::parse, s),
        23 => one!(SubscriptionState::parse, s),
        24 => one!(RetryAfter::parse, s),
        25 => one!(Date::parse, s),
        26 => one!(Warning::parse, s),
        27 => list!(Warning::parse_list, Warning::parse, s),
        28 => one!(Params::parse, s),
        29 => one!(Params::parse_uri, s),
        30 => one!(Host::parse, s),
        31 => one!(ContentType::parse_range, s),
        32 => one!(MinSe::parse, s),
        _ => {
            one!(MinExpires::parse, s);
            one!(RSeq::parse, s);
            one!(ContentLength::parse, s);
        }
    }
});
