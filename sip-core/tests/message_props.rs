//! Property tests of the message layer: round trips, hostile bytes, and rsip as an oracle.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use proptest::prelude::*;
use rsip::prelude::*;
use sansip_core::message::{
    HeaderName, Limits, Message, Method, Request, Response, StatusCode, StreamFramer,
};

fn re(pattern: &str) -> impl Strategy<Value = String> + use<> {
    proptest::string::string_regex(pattern).unwrap()
}

/// Hosts as they appear in real traffic: names, IPv4, bracketed IPv6 (full, compressed,
/// IPv4-mapped).
fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        re("[a-z]([a-z0-9-]{0,7}[a-z0-9])?(\\.[a-z][a-z0-9]{0,6}){0,3}"),
        (any::<u8>(), any::<u8>(), any::<u8>(), 1u8..255)
            .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
        any::<[u16; 8]>().prop_map(|s| format!("[{}]", std::net::Ipv6Addr::from(s))),
        any::<u32>().prop_map(|v| format!("[::ffff:{}]", std::net::Ipv4Addr::from(v))),
    ]
}

/// Users with escapes and the user-unreserved characters RFC 3261 allows.
fn user() -> impl Strategy<Value = String> {
    re("([a-zA-Z0-9]|%[0-9A-F]{2}|[-_.!~*'()&=+$,;?/]){1,12}")
}

fn uri() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["sip", "sips"]),
        proptest::option::of(user()),
        host(),
        proptest::option::of(1u16..),
        proptest::collection::vec(re(";[a-z]{1,6}(=[a-z0-9.]{1,6})?"), 0..3),
    )
        .prop_map(|(scheme, user, host, port, params)| {
            let user = user.map(|u| format!("{u}@")).unwrap_or_default();
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            format!("{scheme}:{user}{host}{port}{}", params.concat())
        })
}

fn display_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        re("[A-Za-z][A-Za-z0-9.!*_+`'~-]{0,6}( [A-Za-z][A-Za-z0-9]{0,5}){0,2} "),
        re("\"([a-zA-Z ,;:<>@é]|\\\\\"|\\\\\\\\){0,12}\" "),
    ]
}

fn name_addr(tag: Option<String>) -> impl Strategy<Value = String> {
    (
        display_name(),
        uri(),
        proptest::collection::vec(re(";[a-z]{1,5}=[a-z0-9]{1,5}"), 0..2),
    )
        .prop_map(move |(d, u, params)| {
            let tag = tag
                .as_ref()
                .map(|t| format!(";tag={t}"))
                .unwrap_or_default();
            format!("{d}<{u}>{}{tag}", params.concat())
        })
}

fn via() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["UDP", "TCP", "TLS", "WS", "WSS", "SCTP"]),
        host(),
        proptest::option::of(1u16..),
        re("[a-zA-Z0-9]{4,20}"),
        any::<bool>(),
    )
        .prop_map(|(t, h, port, branch, rport)| {
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let rport = if rport { ";rport" } else { "" };
            format!("SIP/2.0/{t} {h}{port};branch=z9hG4bK{branch}{rport}")
        })
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        prop::sample::select(vec![
            Method::Invite,
            Method::Bye,
            Method::Options,
            Method::Register,
            Method::Message,
            Method::Info,
            Method::Refer,
            Method::Notify,
        ]),
        re("[A-Z][A-Z0-9_.!%*+`'~-]{2,10}").prop_map(|m| Method::from_token(&m).unwrap()),
    ]
}

/// A message built with the API: what a UA would send.
fn built_message() -> impl Strategy<Value = Message> {
    (
        any::<bool>(),
        method(),
        uri(),
        proptest::collection::vec(via(), 1..4),
        name_addr(Some("f1928".into())),
        prop_oneof![name_addr(None), name_addr(Some("t77".into()))],
        re("[a-zA-Z0-9.!%*_+`'~()<>:\\\\\"/\\[\\]?{}-]{1,20}(@[a-zA-Z0-9.-]{1,10})?"),
        1u32..,
        proptest::collection::vec((re("X-[A-Za-z]{1,8}"), re("[ -~]{0,30}")), 0..4),
        proptest::collection::vec(any::<u8>(), 0..200),
        100u16..700,
    )
        .prop_map(
            |(is_req, method, ruri, vias, from, to, call_id, seq, extra, body, code)| {
                let fill = |h: &mut sansip_core::message::Headers| {
                    for v in &vias {
                        h.push(HeaderName::Via, v);
                    }
                    h.push(HeaderName::From, &from);
                    h.push(HeaderName::To, &to);
                    h.push(HeaderName::CallId, &call_id);
                    h.push(HeaderName::CSeq, &format!("{seq} {method}"));
                    h.push(HeaderName::MaxForwards, "70");
                    for (n, v) in &extra {
                        h.push_named(n, v).unwrap();
                    }
                };
                let body = Bytes::from(body);
                if is_req {
                    let mut r = Request::new(method.clone(), &ruri);
                    fill(r.headers_mut());
                    r.set_body("application/octet-stream", body);
                    Message::Request(r)
                } else {
                    let mut r = Response::new(StatusCode::new(code));
                    fill(r.headers_mut());
                    r.set_body("application/octet-stream", body);
                    Message::Response(r)
                }
            },
        )
}

/// Rewrites a message's header section the way real peers do: compact names, any case,
/// whitespace around the colon, folded lines, LF-only line ends.
fn reformat(wire: &[u8], choices: &[u8]) -> Vec<u8> {
    let text = wire.to_vec();
    let Some(split) = text.windows(4).position(|w| w == b"\r\n\r\n") else {
        return text;
    };
    let head = String::from_utf8(text[..split].to_vec()).unwrap();
    let body = &text[split + 4..];
    let mut lines = head.split("\r\n");
    let mut out = String::from(lines.next().unwrap());
    let lf_only = choices.first().is_some_and(|c| c % 5 == 0);
    let eol = if lf_only { "\n" } else { "\r\n" };
    out.push_str(eol);
    for (i, line) in lines.enumerate() {
        let c = choices.get(i + 1).copied().unwrap_or(0);
        let (name, value) = line.split_once(": ").unwrap();
        let name = match (c % 4, HeaderName::from_name(name).and_then(|h| h.compact())) {
            (0, Some(compact)) => compact.to_string(),
            (1, _) => name.to_ascii_uppercase(),
            (2, _) => name.to_ascii_lowercase(),
            _ => name.to_string(),
        };
        let colon = match c / 4 % 3 {
            0 => ": ",
            1 => " :\t",
            _ => ":",
        };
        // Fold at a lone space inside the value: a fold and the whitespace around it read as
        // one space (RFC 3261 §7.3.1), so folding inside a run of spaces would change it.
        let value = if c / 12 % 3 == 0 {
            let b = value.as_bytes();
            let lone = (1..b.len().saturating_sub(1))
                .find(|&i| b[i] == b' ' && b[i - 1] != b' ' && b[i + 1] != b' ');
            match lone {
                Some(sp) if !value.contains('"') => {
                    format!("{}{eol}   {}", &value[..sp], &value[sp + 1..])
                }
                _ => value.to_string(),
            }
        } else {
            value.to_string()
        };
        out.push_str(&format!("{name}{colon}{value}{eol}"));
    }
    out.push_str(eol);
    let mut v = out.into_bytes();
    v.extend_from_slice(body);
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// What the writer emits, the parser reads back as the same message.
    #[test]
    fn parse_of_write_is_identity(m in built_message()) {
        let wire = m.to_bytes();
        let back = Message::parse(wire.clone());
        prop_assert!(back.is_ok(), "{:?}\n{}", back, String::from_utf8_lossy(&wire));
        prop_assert_eq!(back.unwrap(), m);
    }

    /// Odd-but-legal formatting (compact names, case, spaces around the colon, folds, LF
    /// line ends) reads as the same message, and writing it back keeps the bytes.
    #[test]
    fn reformatted_messages_read_the_same(m in built_message(), choices in proptest::collection::vec(any::<u8>(), 0..20)) {
        let odd = reformat(&m.to_bytes(), &choices);
        let parsed = Message::parse(Bytes::from(odd.clone()));
        prop_assert!(parsed.is_ok(), "{:?}\n{}", parsed, String::from_utf8_lossy(&odd));
        let parsed = parsed.unwrap();
        prop_assert_eq!(&parsed, &m);
        // Unedited headers go back out byte for byte (the start line is always CRLF-ended).
        let again = parsed.to_bytes();
        let reparsed = Message::parse(again).unwrap();
        prop_assert_eq!(reparsed, m);
    }

    /// No byte string makes any entry point panic.
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let b = Bytes::from(data.clone());
        let _ = Message::parse(b.clone());
        if let Ok(m) = Message::frame(b, &Limits::default()) {
            let _ = m.validate();
            let _ = m.to_bytes();
            let h = m.headers();
            let _ = (h.top_via(), h.cseq(), h.call_id(), h.from(), h.to());
        }
        let mut f = StreamFramer::new(Limits::default());
        for chunk in data.chunks(7) {
            f.push(chunk);
            while let Some(r) = f.poll() {
                let _ = r;
            }
        }
    }

    /// Valid messages with bytes flipped, inserted or cut: never a panic, and whatever still
    /// frames writes back to something that frames to the same message.
    #[test]
    fn mutated_messages_never_panic(
        m in built_message(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let mut data = m.to_bytes().to_vec();
        for (at, byte, kind) in edits {
            if data.is_empty() {
                break;
            }
            let i = at.index(data.len());
            match kind {
                0 => data[i] = byte,
                1 => data.insert(i, byte),
                _ => data.truncate(i),
            }
        }
        let b = Bytes::from(data);
        let _ = Message::parse(b.clone());
        if let Ok(mut framed) = Message::frame(b, &Limits::default()) {
            let again = Message::frame(framed.to_bytes(), &Limits::default());
            prop_assert!(again.is_ok(), "{:?}", again);
            // The writer adds the Content-Length a datagram may omit.
            if !framed.headers().contains(HeaderName::ContentLength) {
                let len = framed.body().len().to_string();
                match &mut framed {
                    Message::Request(r) => r.headers_mut().push(HeaderName::ContentLength, &len),
                    Message::Response(r) => r.headers_mut().push(HeaderName::ContentLength, &len),
                }
            }
            prop_assert_eq!(again.unwrap(), framed);
        }
    }

    /// rsip 0.4 as a differential oracle on the keys a transaction layer reads. Where both
    /// parsers accept a message they must agree on method or status, Call-ID, CSeq, the tags
    /// and the top Via branch.
    ///
    /// Disagreements that are rsip's and are skipped, each seen while writing this test:
    /// - rsip rejects extension methods, `tel:` URIs and bracketed IPv6 hosts in some
    ///   positions (DESIGN.md §3 records this); those messages are simply not compared.
    /// - rsip keeps a display name's surrounding quotes and does not unescape; names are not
    ///   compared, only tags.
    #[test]
    fn rsip_agrees_on_the_transaction_keys(m in built_message()) {
        let wire = m.to_bytes();
        let Ok(theirs) = rsip::SipMessage::try_from(wire.clone()) else {
            return Ok(());
        };
        let ours = Message::parse(wire).unwrap();
        let h = ours.headers();
        match (&ours, &theirs) {
            (Message::Request(r), rsip::SipMessage::Request(t)) => {
                prop_assert_eq!(r.method().as_str(), t.method.to_string());
            }
            (Message::Response(r), rsip::SipMessage::Response(t)) => {
                prop_assert_eq!(r.status().code(), t.status_code.code());
            }
            _ => prop_assert!(false, "request/response disagreement"),
        }
        prop_assert_eq!(h.call_id().unwrap(), theirs.call_id_header().unwrap().value());
        if let Ok(cseq) = theirs.cseq_header().unwrap().typed() {
            prop_assert_eq!(h.cseq().unwrap().seq, cseq.seq);
        }
        if let Ok(Some(tag)) = theirs.from_header().unwrap().tag() {
            prop_assert_eq!(h.from().unwrap().tag(), Some(tag.value()));
        }
        if let Ok(Some(tag)) = theirs.to_header().unwrap().tag() {
            prop_assert_eq!(h.to().unwrap().tag(), Some(tag.value()));
        }
        if let Ok(via) = theirs.via_header().unwrap().typed() {
            let branch = via.branch().map(|b| b.to_string());
            prop_assert_eq!(h.top_via().unwrap().branch().map(str::to_string), branch);
        }
    }
}
