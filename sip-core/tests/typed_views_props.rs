//! Property tests: no input panics any parser, and whatever parses writes
//! back (Display) to something that parses to an equal value.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use sansip_core::message::*;

/// Asserts parse(display(x)) == x for a successfully parsed x.
macro_rules! rt {
    ($parse:expr, $v:expr) => {{
        let v = $v;
        let s = v.to_string();
        match $parse(&s) {
            Ok(w) => prop_assert_eq!(&w, &v, "display: {}", s),
            Err(e) => prop_assert!(false, "display {:?} of {:?} does not parse: {}", s, v, e),
        }
    }};
}

fn exercise(s: &str) -> Result<(), TestCaseError> {
    if let Ok(u) = Uri::parse(s) {
        let _ = (
            u.user_unescaped(),
            u.transport(),
            u.is_loose_route(),
            u.header_pairs().count(),
        );
        rt!(Uri::parse, u);
    }
    if let Ok(u) = Uri::parse_request_uri(s) {
        rt!(Uri::parse_request_uri, u);
    }
    if let Ok(h) = Host::parse(s) {
        rt!(Host::parse, h);
    }
    if let Ok(p) = Params::parse(s) {
        let _ = (p.get("a"), p.iter().count());
        rt!(Params::parse, p);
    }
    if let Ok(p) = Params::parse_uri(s) {
        rt!(Params::parse_uri, p);
    }
    if let Ok(a) = NameAddr::parse(s) {
        let _ = (a.display_name(), a.tag(), a.expires(), a.q());
        // The fast tag reader agrees with the full parse wherever the full parse succeeds.
        prop_assert_eq!(tag_param(s), Ok(a.tag()), "{}", s);
        rt!(NameAddr::parse, a);
    }
    for a in NameAddr::parse_list(s).flatten() {
        rt!(NameAddr::parse, a);
    }
    if let Ok(c) = Contact::parse(s) {
        let v: Vec<_> = c.iter().collect();
        let out = c.to_string();
        let back: Vec<_> = Contact::parse(&out)
            .map(|c| c.iter().collect())
            .unwrap_or_default();
        prop_assert_eq!(back, v, "{}", out);
    }
    if let Ok(v) = Via::parse(s) {
        let _ = (v.branch(), v.received(), v.rport(), v.maddr(), v.ttl());
        rt!(Via::parse, v);
    }
    for v in Via::parse_list(s).flatten() {
        rt!(Via::parse, v);
    }
    for c in Challenge::parse_list(s).flatten() {
        rt!(Challenge::parse, c);
    }
    if let Ok(c) = Credentials::parse(s) {
        rt!(Credentials::parse, c);
    }
    if let Ok(c) = CSeq::parse(s) {
        rt!(CSeq::parse, c);
    }
    let _ = parse_call_id(s);
    if let Ok(v) = MaxForwards::parse(s) {
        rt!(MaxForwards::parse, v);
    }
    if let Ok(v) = Expires::parse(s) {
        rt!(Expires::parse, v);
    }
    if let Ok(v) = MinExpires::parse(s) {
        rt!(MinExpires::parse, v);
    }
    if let Ok(v) = ContentLength::parse(s) {
        rt!(ContentLength::parse, v);
    }
    if let Ok(v) = RSeq::parse(s) {
        rt!(RSeq::parse, v);
    }
    if let Ok(v) = MinSe::parse(s) {
        rt!(MinSe::parse, v);
    }
    if let Ok(v) = RAck::parse(s) {
        rt!(RAck::parse, v);
    }
    if let Ok(v) = ContentType::parse(s) {
        rt!(ContentType::parse, v);
    }
    for v in ContentType::parse_accept(s).flatten() {
        rt!(ContentType::parse_range, v);
    }
    let _ = parse_token_list(s).count();
    for v in Reason::parse_list(s).flatten() {
        rt!(Reason::parse, v);
    }
    if let Ok(v) = SessionExpires::parse(s) {
        rt!(SessionExpires::parse, v);
    }
    if let Ok(v) = Replaces::parse(s) {
        rt!(Replaces::parse, v);
    }
    if let Ok(v) = Event::parse(s) {
        rt!(Event::parse, v);
    }
    if let Ok(v) = SubscriptionState::parse(s) {
        rt!(SubscriptionState::parse, v);
    }
    if let Ok(v) = RetryAfter::parse(s) {
        rt!(RetryAfter::parse, v);
    }
    if let Ok(v) = Date::parse(s) {
        rt!(Date::parse, v);
    }
    for v in Warning::parse_list(s).flatten() {
        rt!(Warning::parse, v);
    }
    Ok(())
}

/// Text made mostly of the characters SIP grammar cares about.
fn sipish() -> impl Strategy<Value = String> {
    proptest::string::string_regex(
        "([a-zA-Z0-9]|[:@;=<>\"\\\\,?%/\\[\\].* \t()&+$'~!_-]|sip:|SIP/2.0/UDP |tag=|Digest |realm=|%4[0-9]|\\[::1\\]|é){0,40}",
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics(s in any::<String>()) {
        exercise(&s)?;
    }

    #[test]
    fn never_panics_sipish(s in sipish()) {
        exercise(&s)?;
    }
}

fn user() -> impl Strategy<Value = String> {
    proptest::string::string_regex("([a-zA-Z0-9]|%[0-9a-fA-F]{2}|[-_.!~*'()&=+$,;?/]){1,12}")
        .unwrap()
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::string::string_regex(
            "([a-z][a-z0-9-]{0,5}[a-z0-9]\\.){0,2}[a-zA-Z][a-zA-Z0-9]{0,4}"
        )
        .unwrap(),
        any::<[u8; 4]>().prop_map(|o| std::net::Ipv4Addr::from(o).to_string()),
        any::<[u16; 8]>().prop_map(|o| format!("[{}]", std::net::Ipv6Addr::from(o))),
        any::<[u8; 4]>().prop_map(|o| format!("[::ffff:{}]", std::net::Ipv4Addr::from(o))),
    ]
}

fn uri_params() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just(";lr".to_string()),
            Just(";transport=tcp".to_string()),
            Just(";maddr=[2001:db8::1]".to_string()),
            proptest::string::string_regex(";([a-z0-9]|%[0-9a-f]{2}){1,4}(=[a-z0-9:&+$]{1,4})?")
                .unwrap(),
        ],
        0..4,
    )
    .prop_map(|v| v.concat())
}

fn uri() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("sip"), Just("sips"), Just("SIP")],
        proptest::option::of(user()),
        proptest::option::of(proptest::string::string_regex("[a-z0-9&=+$,]{0,4}").unwrap()),
        host(),
        proptest::option::of(any::<u16>()),
        uri_params(),
        proptest::option::of(
            proptest::string::string_regex("[A-Za-z]{1,4}=([a-z0-9]|%3C){0,5}(&x=y)?").unwrap(),
        ),
    )
        .prop_map(|(sch, u, pw, h, port, params, hdr)| {
            let mut s = format!("{sch}:");
            if let Some(u) = u {
                s += &u;
                if let Some(pw) = pw {
                    s += ":";
                    s += &pw;
                }
                s += "@";
            }
            s += &h;
            if let Some(p) = port {
                s += &format!(":{p}");
            }
            s += &params;
            if let Some(h) = hdr {
                s += "?";
                s += &h;
            }
            s
        })
}

fn display_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        proptest::string::string_regex("[A-Za-z.!%*_+`'~-]{1,6}( {1,3}[A-Za-z0-9]{1,5}){0,2} ?")
            .unwrap(),
        proptest::string::string_regex("\"([a-z ,<>;@é]|\\\\\"|\\\\\\\\|\\\\[a-z]){0,10}\" ?")
            .unwrap(),
    ]
}

fn header_params() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            proptest::string::string_regex(" ?; ?tag ?= ?[a-z0-9]{1,6}").unwrap(),
            Just(";expires=60".to_string()),
            Just(";q=0.5".to_string()),
            Just(";+sip.instance=\"<urn:uuid:1>\"".to_string()),
            proptest::string::string_regex(";[a-z]{1,3}").unwrap(),
        ],
        0..4,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn roundtrip_uri(s in uri()) {
        let u = Uri::parse(&s).map_err(|e| TestCaseError::fail(format!("{s}: {e}")))?;
        rt!(Uri::parse, u);
    }

    #[test]
    fn roundtrip_name_addr(d in display_name(), u in uri(), p in header_params()) {
        let s = format!("{d}<{u}>{p}");
        let a = NameAddr::parse(&s).map_err(|e| TestCaseError::fail(format!("{s}: {e}")))?;
        rt!(NameAddr::parse, a);
        // Bare addr-spec form, when the URI allows it (RFC 3261 §20.10).
        if d.is_empty() && !u.contains([';', '?', ',']) {
            let s = format!("{u}{p}");
            let b = NameAddr::parse(&s).map_err(|e| TestCaseError::fail(format!("{s}: {e}")))?;
            prop_assert_eq!(b, a);
        }
    }

    #[test]
    fn roundtrip_via(
        t in prop_oneof![Just("UDP"), Just("TCP"), Just("TLS"), Just("WSS"), Just("SCTP")],
        sp in proptest::string::string_regex(" {0,2}").unwrap(),
        h in host(),
        port in proptest::option::of(any::<u16>()),
        params in proptest::collection::vec(prop_oneof![
            Just(";branch=z9hG4bK776asdhds"),
            Just(" ; rport"),
            Just(";rport=5060"),
            Just(";received=2001:db8::9:255"),
            Just(";received=[2001:db8::9:255]"),
            Just(";received=192.0.2.1"),
            Just(";maddr=example.com"),
            Just(";ttl=1"),
            Just(";x=\"a,b\""),
        ], 0..5),
    ) {
        let mut s = format!("SIP{sp}/{sp}2.0{sp}/{sp}{t} {h}");
        if let Some(p) = port {
            s += &format!("{sp}:{sp}{p}");
        }
        s += &params.concat();
        let v = Via::parse(&s).map_err(|e| TestCaseError::fail(format!("{s}: {e}")))?;
        rt!(Via::parse, v);
        let list = format!("{s} ,{s}");
        prop_assert_eq!(Via::parse_list(&list).filter(|r| r.is_ok()).count(), 2);
    }
}
