//! The registrar's location service (RFC 3261 §10.3, RFC 5626 bindings).

#![allow(clippy::unwrap_used)]
use std::time::{Duration, Instant};

use sansip_core::message::{HeaderName, Message, Method, Request};
use sansip_core::registrar::{Binding, ExpiryPolicy, LocationService, RegisterError};
use sansip_core::transport::FlowId;

fn register(cseq: u32, call_id: &str, contacts: &[&str], expires: Option<u32>) -> Request {
    let mut r = Request::new(Method::Register, "sip:example.com");
    let h = r.headers_mut();
    h.push(HeaderName::Via, "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1");
    h.push(HeaderName::From, "<sip:alice@Example.COM>;tag=1");
    h.push(HeaderName::To, "<sip:alice@Example.COM>");
    h.push(HeaderName::CallId, call_id);
    h.push(HeaderName::CSeq, &format!("{cseq} REGISTER"));
    for c in contacts {
        h.push(HeaderName::Contact, c);
    }
    if let Some(e) = expires {
        h.push(HeaderName::Expires, &e.to_string());
    }
    // What goes on the wire must parse back.
    match Message::parse(r.to_bytes()).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => unreachable!(),
    }
}

/// Any instant works as the origin: the tests only add to it.
#[allow(clippy::disallowed_methods)]
fn start() -> Instant {
    Instant::now()
}

#[test]
fn register_refresh_expire_and_remove() {
    let now = start();
    let mut loc = LocationService::new(ExpiryPolicy::default());
    let aor = loc
        .register(
            now,
            &register(1, "c1", &["<sip:alice@192.0.2.1:5060>"], Some(300)),
            None,
        )
        .unwrap();
    assert_eq!(aor, "alice@example.com", "host lowercased, user kept");
    assert_eq!(loc.lookup(now, &aor).count(), 1);
    let ok = loc.ok_response(now, &register(1, "c1", &[], None), &aor);
    assert_eq!(
        ok.headers().get(HeaderName::Contact),
        Some("<sip:alice@192.0.2.1:5060>;expires=300")
    );
    // A refresh with a higher CSeq moves the expiry.
    loc.register(
        now + Duration::from_secs(200),
        &register(2, "c1", &["<sip:alice@192.0.2.1:5060>"], Some(300)),
        None,
    )
    .unwrap();
    assert_eq!(loc.lookup(now + Duration::from_secs(400), &aor).count(), 1);
    // A replay of the older REGISTER is refused and changes nothing.
    let err = loc
        .register(
            now,
            &register(1, "c1", &["<sip:alice@192.0.2.1:5060>"], Some(300)),
            None,
        )
        .unwrap_err();
    assert_eq!(err.status(), 500);
    // Expiry.
    loc.handle_timeout(now + Duration::from_secs(500));
    assert!(loc.is_empty());
    assert_eq!(loc.poll_timeout(), None);
}

#[test]
fn too_brief_gets_423_with_min_expires_and_zero_removes() {
    let now = start();
    let mut loc = LocationService::new(ExpiryPolicy::default());
    let req = register(1, "c1", &["<sip:alice@192.0.2.1>;expires=30"], None);
    let err = loc.register(now, &req, None).unwrap_err();
    assert_eq!(err, RegisterError::TooBrief { min: 60 });
    let resp = err.response(&req);
    assert_eq!(resp.status().code(), 423);
    assert_eq!(resp.headers().get(HeaderName::MinExpires), Some("60"));
    assert!(loc.is_empty());
    loc.register(
        now,
        &register(
            2,
            "c1",
            &["<sip:alice@192.0.2.1>", "<sip:alice@192.0.2.2>"],
            Some(3600),
        ),
        None,
    )
    .unwrap();
    assert_eq!(loc.lookup(now, "alice@example.com").count(), 2);
    loc.register(
        now,
        &register(3, "c1", &["<sip:alice@192.0.2.1>;expires=0"], None),
        None,
    )
    .unwrap();
    let left: Vec<&str> = loc
        .lookup(now, "alice@example.com")
        .map(|b| b.uri.as_str())
        .collect();
    assert_eq!(left, ["sip:alice@192.0.2.2"]);
    // Longer than the maximum is granted the maximum.
    loc.register(
        now,
        &register(4, "c1", &["<sip:alice@192.0.2.3>"], Some(10_000_000)),
        None,
    )
    .unwrap();
    let b = loc
        .lookup(now, "alice@example.com")
        .find(|b| b.uri.ends_with(".3"))
        .unwrap();
    assert_eq!(b.remaining(now), 86_400);
}

#[test]
fn the_wildcard_removes_every_binding_only_with_expires_zero() {
    let now = start();
    let mut loc = LocationService::new(ExpiryPolicy::default());
    loc.register(
        now,
        &register(1, "c1", &["<sip:alice@192.0.2.1>"], Some(600)),
        None,
    )
    .unwrap();
    assert_eq!(
        loc.register(now, &register(2, "c1", &["*"], None), None)
            .unwrap_err(),
        RegisterError::BadWildcard
    );
    loc.register(now, &register(2, "c2", &["*"], Some(0)), None)
        .unwrap();
    assert!(loc.is_empty());
}

#[test]
fn an_outbound_instance_replaces_its_binding_across_addresses() {
    let now = start();
    let mut loc = LocationService::new(ExpiryPolicy::default());
    let inst = ";+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\";reg-id=1";
    loc.register(
        now,
        &register(
            1,
            "c1",
            &[&format!("<sip:alice@192.0.2.1>{inst}")],
            Some(600),
        ),
        Some(FlowId(1)),
    )
    .unwrap();
    // After a reconnect the same instance registers from a new address and flow.
    loc.register(
        now,
        &register(
            1,
            "c2",
            &[&format!("<sip:alice@198.51.100.9:5062>{inst}")],
            Some(600),
        ),
        Some(FlowId(2)),
    )
    .unwrap();
    let all: Vec<&Binding> = loc.lookup(now, "alice@example.com").collect();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].flow, Some(FlowId(2)));
    assert_eq!(
        all[0].instance.as_deref(),
        Some("urn:uuid:00000000-0000-1000-8000-000A95A0E128")
    );
    assert_eq!(all[0].reg_id, Some(1));
}

#[test]
fn a_query_without_contact_changes_nothing() {
    let now = start();
    let mut loc = LocationService::new(ExpiryPolicy::default());
    let aor = loc
        .register(now, &register(1, "c1", &[], None), None)
        .unwrap();
    assert!(loc.is_empty());
    assert_eq!(
        loc.ok_response(now, &register(1, "c1", &[], None), &aor)
            .headers()
            .count(HeaderName::Contact),
        0
    );
}
