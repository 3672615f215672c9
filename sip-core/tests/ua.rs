//! The UA's own answers, checked on the RFC 4475 §3.3 messages, and MESSAGE and REGISTER
//! exchanged as wire bytes.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sansip_core::auth::{DigestAlgorithm, DigestCredentials, DigestQop, challenge, verify};
use sansip_core::message::{
    Credentials, HeaderName, Limits, Message, Method, Request, Response, StatusCode,
};
use sansip_core::registrar::{ExpiryPolicy, LocationService};
use sansip_core::transport::{FlowId, Transport};
use sansip_core::ua::{Event, FlowInfo, Input, Output, UaConfig, UaError, UserAgent};

/// Any instant works as the origin: the tests only add to it.
#[allow(clippy::disallowed_methods)]
fn start() -> Instant {
    Instant::now()
}

fn udp(local: &str, remote: &str) -> FlowInfo {
    FlowInfo {
        transport: Transport::Udp,
        local: local.parse().unwrap(),
        remote: remote.parse().unwrap(),
    }
}

fn ua(aor: &str, seed: u64) -> (UserAgent, FlowId) {
    let mut ua = UserAgent::new(UaConfig::new(aor), start(), seed);
    let flow = ua.add_flow(udp("192.0.2.10:5060", "192.0.2.1:5060"));
    ua.set_outbound_flow(flow);
    (ua, flow)
}

fn drain(ua: &mut UserAgent) -> Vec<Output> {
    std::iter::from_fn(|| ua.poll_output()).collect()
}

fn sent(outputs: &[Output]) -> Vec<Message> {
    outputs
        .iter()
        .filter_map(|o| match o {
            // Framed only: a 400 copies the request's broken header, as RFC 3261 §8.2.6 says.
            Output::Transmit { bytes, .. } => {
                Message::frame(bytes.clone(), &Limits::default()).ok()
            }
            _ => None,
        })
        .collect()
}

fn corpus(file: &str) -> Bytes {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = [
        root.join("../../shared/corpus"),
        root.join("../shared/corpus"),
    ]
    .into_iter()
    .find(|p| p.join("README.md").exists())
    .expect("the corpus lives in ../shared/corpus beside the project");
    Bytes::from(std::fs::read(dir.join("rfc4475").join(file)).unwrap())
}

/// The final status the UA sent for a datagram, with its Response.
fn answer_to(bytes: Bytes) -> Option<Response> {
    let (mut ua, flow) = ua("sip:user@example.com", 1);
    ua.handle_input(start(), Input::Received { flow, bytes });
    sent(&drain(&mut ua)).into_iter().find_map(|m| match m {
        Message::Response(r) if r.status().code() >= 200 => Some(r),
        _ => None,
    })
}

#[test]
fn rfc_4475_application_layer_answers() {
    for (file, code) in [
        ("insuf.dat", 400),
        ("unkscm.dat", 416),
        ("novelsc.dat", 416),
        ("unksm2.dat", 405),
        ("bext01.dat", 420),
        ("invut.dat", 415),
        ("regaut01.dat", 405),
        ("multi01.dat", 400),
        ("mcl01.dat", 400),
        ("zeromf.dat", 200),
        ("cparam01.dat", 405),
        ("cparam02.dat", 405),
        ("regescrt.dat", 405),
        ("sdp01.dat", 406),
    ] {
        let r = answer_to(corpus(file)).unwrap_or_else(|| panic!("{file}: no answer"));
        assert_eq!(r.status().code(), code, "{file}: {}", r.status());
        let h = r.headers();
        match code {
            420 => assert_eq!(
                h.get(HeaderName::Unsupported),
                Some("nothingSupportsThis, nothingSupportsThisEither"),
                "{file}"
            ),
            415 => assert!(
                h.contains(HeaderName::Accept),
                "{file}: 415 lists what we accept"
            ),
            405 => assert!(h.contains(HeaderName::Allow), "{file}: 405 carries Allow"),
            200 => assert!(h.contains(HeaderName::Allow) && h.contains(HeaderName::Supported)),
            _ => {}
        }
    }
    // RFC 4475 §3.4.1: the RFC 2543 INVITE (no branch, From tag, Max-Forwards or Contact)
    // is a call like any other: it rings.
    let (mut ua, flow) = ua("sip:user@example.com", 1);
    ua.handle_input(
        start(),
        Input::Received {
            flow,
            bytes: corpus("inv2543.dat"),
        },
    );
    let out = drain(&mut ua);
    let codes: Vec<u16> = sent(&out)
        .into_iter()
        .filter_map(|m| match m {
            Message::Response(r) => Some(r.status().code()),
            Message::Request(_) => None,
        })
        .collect();
    assert_eq!(codes, [100, 180], "inv2543 rings");
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Event(Event::IncomingCall { .. }))),
        "inv2543 is offered to the application"
    );
    // insuf lacks To, From and Call-ID: the reason names the first missing header.
    let r = answer_to(corpus("insuf.dat")).unwrap();
    assert_eq!(r.status().reason(), "missing To header");
    let r = answer_to(corpus("multi01.dat")).unwrap();
    assert_eq!(r.status().reason(), "repeated Call-ID header");
}

#[test]
fn malformed_requests_get_a_400_naming_the_fault_and_responses_are_dropped() {
    for (file, reason) in [
        ("quotbal.dat", "bad To header"),
        ("escruri.dat", "bad request-uri"),
        ("baddate.dat", "bad Date header"),
        ("regbadct.dat", "bad Contact header"),
        (
            "mismatch01.dat",
            "cseq method does not match request method",
        ),
    ] {
        let r = answer_to(corpus(file)).unwrap_or_else(|| panic!("{file}: no answer"));
        assert_eq!(r.status().code(), 400, "{file}");
        assert!(
            r.status().reason().starts_with(reason),
            "{file}: {}",
            r.status().reason()
        );
    }
    let r = answer_to(corpus("badvers.dat"));
    assert!(r.is_none(), "SIP/7.0 in Via too: nothing to route a 505 by");
    // A stray response (bcast: nothing of ours) and a malformed one are dropped and counted.
    let (mut ua, flow) = ua("sip:user@example.com", 1);
    ua.handle_input(
        start(),
        Input::Received {
            flow,
            bytes: corpus("bcast.dat"),
        },
    );
    ua.handle_input(
        start(),
        Input::Received {
            flow,
            bytes: corpus("scalarlg.dat"),
        },
    );
    assert!(drain(&mut ua).is_empty());
    assert_eq!(ua.stats().malformed_responses, 1);
    assert_eq!(ua.transactions(), 0);
}

/// Route and Record-Route are read by the layer that needs them, not on arrival: a faulty
/// Record-Route costs an INVITE its dialog (400 naming the header, nothing offered, nothing
/// left), while a MESSAGE, which no layer reads them from, is taken despite a faulty Route.
#[test]
fn route_headers_are_checked_by_the_layer_that_reads_them() {
    let invite = "INVITE sip:user@example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKlazy1\r\n\
        Max-Forwards: 70\r\n\
        From: <sip:caller@example.net>;tag=a1\r\n\
        To: <sip:user@example.com>\r\n\
        Call-ID: lazy-rr@192.0.2.1\r\n\
        CSeq: 1 INVITE\r\n\
        Contact: <sip:caller@192.0.2.1>\r\n\
        Record-Route: <sip:p1.example.net;lr>, <sip:p2 example.net;lr>\r\n\
        Content-Length: 0\r\n\r\n";
    let (mut ua, flow) = ua("sip:user@example.com", 1);
    let bytes = Bytes::copy_from_slice(invite.as_bytes());
    ua.handle_input(start(), Input::Received { flow, bytes });
    let out = drain(&mut ua);
    let codes: Vec<(u16, String)> = sent(&out)
        .into_iter()
        .filter_map(|m| match m {
            Message::Response(r) => Some((r.status().code(), r.status().reason().to_string())),
            Message::Request(_) => None,
        })
        .collect();
    let finals: Vec<_> = codes.iter().filter(|(code, _)| *code > 100).collect();
    assert_eq!(finals.len(), 1, "{codes:?}");
    assert_eq!(finals[0].0, 400);
    assert!(
        finals[0].1.starts_with("bad Record-Route header"),
        "{codes:?}"
    );
    assert!(
        !out.iter().any(|o| matches!(o, Output::Event(_))),
        "{out:?}"
    );
    assert_eq!(ua.calls().count(), 0);

    let message = "MESSAGE sip:user@example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKlazy2\r\n\
        Max-Forwards: 70\r\n\
        Route: <sip:p1 example.com;lr>\r\n\
        From: <sip:caller@example.net>;tag=a2\r\n\
        To: <sip:user@example.com>\r\n\
        Call-ID: lazy-route@192.0.2.1\r\n\
        CSeq: 1 MESSAGE\r\n\
        Content-Type: text/plain\r\n\
        Content-Length: 2\r\n\r\nhi";
    let bytes = Bytes::copy_from_slice(message.as_bytes());
    ua.handle_input(start(), Input::Received { flow, bytes });
    let out = drain(&mut ua);
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Event(Event::MessageReceived { .. }))),
        "{out:?}"
    );
    // The full check, which a proxy uses, still refuses the Route.
    let m = Message::frame(
        Bytes::copy_from_slice(message.as_bytes()),
        &Default::default(),
    )
    .unwrap();
    assert!(
        m.validate()
            .unwrap_err()
            .to_string()
            .starts_with("bad Route header")
    );
}

/// RFC 4475 §3.1.2 through the user agent, whose own check reads less of From and To than
/// `Message::validate` (the addresses are carried as text): every invalid request that can be
/// answered still gets a 400 naming its fault, the others and every invalid response are
/// dropped, and nothing reaches the application or stays behind.
#[test]
fn every_invalid_torture_message_is_refused_by_the_ua() {
    for (file, answer) in [
        ("badinv01.dat", None),
        ("clerr.dat", None),
        ("ncl.dat", None),
        ("scalar02.dat", Some("bad CSeq header")),
        ("scalarlg.dat", None),
        ("quotbal.dat", Some("bad To header")),
        ("ltgtruri.dat", Some("bad request-uri")),
        ("lwsruri.dat", None),
        ("lwsstart.dat", None),
        ("trws.dat", None),
        ("escruri.dat", Some("bad request-uri")),
        ("baddate.dat", Some("bad Date header")),
        ("regbadct.dat", Some("bad Contact header")),
        ("badaspec.dat", Some("bad To header")),
        ("baddn.dat", None),
        ("badvers.dat", None),
        ("mismatch01.dat", Some("cseq method does not match")),
        ("mismatch02.dat", Some("cseq method does not match")),
        ("bigcode.dat", None),
    ] {
        let (mut ua, flow) = ua("sip:user@example.com", 1);
        ua.handle_input(
            start(),
            Input::Received {
                flow,
                bytes: corpus(file),
            },
        );
        let out = drain(&mut ua);
        assert!(
            !out.iter().any(|o| matches!(o, Output::Event(_))),
            "{file}: nothing reaches the application"
        );
        let answers: Vec<Response> = sent(&out)
            .into_iter()
            .map(|m| match m {
                Message::Response(r) => r,
                Message::Request(r) => panic!("{file}: sent a {}", r.method()),
            })
            .collect();
        match answer {
            Some(reason) => {
                assert_eq!(answers.len(), 1, "{file}: one answer");
                assert_eq!(answers[0].status().code(), 400, "{file}");
                assert!(
                    answers[0].status().reason().starts_with(reason),
                    "{file}: {}",
                    answers[0].status()
                );
            }
            None => assert!(answers.is_empty(), "{file}: dropped"),
        }
        assert_eq!(ua.transactions(), 0, "{file}: nothing left");
    }
}

/// Moves every datagram between two UAs until both are quiet.
fn pump(a: &mut (UserAgent, FlowId), b: &mut (UserAgent, FlowId), now: Instant) -> Vec<Event> {
    let mut events = Vec::new();
    loop {
        let mut moved = false;
        for o in drain(&mut a.0) {
            match o {
                Output::Transmit { bytes, .. } => {
                    b.0.handle_input(now, Input::Received { flow: b.1, bytes });
                    moved = true;
                }
                Output::Event(e) => events.push(e),
                _ => {}
            }
        }
        for o in drain(&mut b.0) {
            match o {
                Output::Transmit { bytes, .. } => {
                    a.0.handle_input(now, Input::Received { flow: a.1, bytes });
                    moved = true;
                }
                Output::Event(e) => events.push(e),
                _ => {}
            }
        }
        if !moved {
            return events;
        }
    }
}

#[test]
fn message_both_ways_and_a_generic_request() {
    let now = start();
    let mut alice = ua("sip:alice@example.com", 1);
    let mut bob = ua("sip:bob@example.com", 2);
    let id = alice
        .0
        .message(now, "bob", "text/plain", "hello bob", &[("X-Trace", "t1")])
        .unwrap();
    let events = pump(&mut alice, &mut bob, now);
    assert!(
        events.contains(&Event::MessageReceived {
            call: None,
            from: events
                .iter()
                .find_map(|e| match e {
                    Event::MessageReceived { from, .. } => Some(from.clone()),
                    _ => None,
                })
                .unwrap(),
            content_type: "text/plain".into(),
            body: Bytes::from_static(b"hello bob"),
        })
    );
    assert!(events.contains(&Event::RequestCompleted {
        id,
        status: 200,
        reason: "OK".into()
    }));
    let back = bob
        .0
        .message(now, "sip:alice@example.com", "text/plain", "hi alice", &[])
        .unwrap();
    let events = pump(&mut alice, &mut bob, now);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::MessageReceived { body, .. } if &body[..] == b"hi alice"))
    );
    assert!(events.contains(&Event::RequestCompleted {
        id: back,
        status: 200,
        reason: "OK".into()
    }));
    // OPTIONS as a generic request.
    let id = alice
        .0
        .request(now, Method::Options, "bob@example.com", None, &[])
        .unwrap();
    assert!(
        pump(&mut alice, &mut bob, now).contains(&Event::RequestCompleted {
            id,
            status: 200,
            reason: "OK".into()
        })
    );
    // Bad commands are typed errors.
    assert!(matches!(
        alice.0.message(now, "sip:bob@", "text/plain", "x", &[]),
        Err(UaError::InvalidTarget(_))
    ));
    assert!(matches!(
        alice
            .0
            .message(now, "bob", "text/plain", "x", &[("Bad Name", "v")]),
        Err(UaError::InvalidHeader(_))
    ));
}

#[test]
fn an_unanswered_request_completes_with_408() {
    let now = start();
    let (mut alice, _) = ua("sip:alice@example.com", 1);
    let id = alice
        .message(now, "bob", "text/plain", "anyone?", &[])
        .unwrap();
    let mut t = now;
    let mut events = Vec::new();
    while let Some(next) = alice.poll_timeout() {
        t = next;
        alice.handle_timeout(t);
        events.extend(drain(&mut alice).into_iter().filter_map(|o| match o {
            Output::Event(e) => Some(e),
            _ => None,
        }));
    }
    assert_eq!(t - now, Duration::from_secs(32), "timer F");
    assert_eq!(
        events,
        [Event::RequestCompleted {
            id,
            status: 408,
            reason: "Request Timeout".into()
        }]
    );
    assert_eq!(alice.transactions(), 0);
}

#[test]
fn registers_with_digest_against_a_registrar_and_unregisters() {
    let now = start();
    let mut config = UaConfig::new("sip:alice@example.com");
    config.credentials = Some(DigestCredentials::new("alice", "secret"));
    let mut ua = UserAgent::new(config, now, 3);
    let flow = ua.add_flow(udp("192.0.2.10:5060", "192.0.2.1:5060"));
    ua.set_outbound_flow(flow);
    let mut loc = LocationService::new(ExpiryPolicy::default());
    let user = DigestCredentials::new("alice", "secret").for_realm("example.com");
    let mut registrar = |req: Request| -> Response {
        let ok = req
            .headers()
            .get(HeaderName::Authorization)
            .and_then(|v| Credentials::parse(v).ok())
            .is_some_and(|c| verify(&c, "REGISTER", req.body(), &user));
        let mut r = if ok {
            let aor = loc.register(now, &req, Some(flow)).unwrap();
            loc.ok_response(now, &req, &aor)
        } else {
            let mut r = Response::from_request(&req, StatusCode::new(401));
            let c = challenge(
                "example.com",
                "n1",
                DigestAlgorithm::MD5,
                &[DigestQop::Auth],
                None,
                false,
            );
            r.headers_mut().push(HeaderName::WwwAuthenticate, &c);
            r
        };
        r.set_to_tag("r1");
        r
    };
    ua.register(now, 300).unwrap();
    let mut events = Vec::new();
    for _ in 0..4 {
        for o in drain(&mut ua) {
            match o {
                Output::Transmit { bytes, .. } => {
                    let Message::Request(req) = Message::parse(bytes).unwrap() else {
                        continue;
                    };
                    assert_eq!(req.top_via().unwrap().transport(), "UDP");
                    assert_eq!(
                        req.headers().get(HeaderName::Contact),
                        Some("<sip:alice@192.0.2.10:5060>")
                    );
                    let resp = registrar(req);
                    ua.handle_input(
                        now,
                        Input::Received {
                            flow,
                            bytes: resp.to_bytes(),
                        },
                    );
                }
                Output::Event(e) => events.push(e),
                _ => {}
            }
        }
    }
    assert_eq!(
        events,
        [Event::Registered {
            expires: 300,
            gruu: None
        }]
    );
    assert!(ua.is_registered());
    ua.unregister(now, false).unwrap();
    let mut events = Vec::new();
    for _ in 0..3 {
        for o in drain(&mut ua) {
            match o {
                Output::Transmit { bytes, .. } => {
                    let Message::Request(req) = Message::parse(bytes).unwrap() else {
                        continue;
                    };
                    ua.handle_input(
                        now,
                        Input::Received {
                            flow,
                            bytes: registrar(req).to_bytes(),
                        },
                    );
                }
                Output::Event(e) => events.push(e),
                _ => {}
            }
        }
    }
    assert_eq!(
        events,
        [Event::Unregistered {
            cause: sansip_core::registration::RegistrationCause::Unregistered
        }]
    );
}

#[test]
fn websocket_flows_use_an_invalid_host_and_transport_param() {
    let mut ua = UserAgent::new(UaConfig::new("sip:alice@example.com"), start(), 9);
    let flow = ua.add_flow(FlowInfo {
        transport: Transport::Wss,
        local: "192.0.2.10:40000".parse().unwrap(),
        remote: "192.0.2.1:443".parse().unwrap(),
    });
    ua.set_outbound_flow(flow);
    ua.message(start(), "bob", "text/plain", "x", &[]).unwrap();
    let msgs = sent(&drain(&mut ua));
    let Message::Request(r) = &msgs[0] else {
        panic!()
    };
    let via = r.top_via().unwrap();
    assert_eq!(via.transport(), "WSS");
    assert!(
        via.host().to_string().ends_with(".invalid"),
        "RFC 7118 §5: {via}"
    );
}

/// A MESSAGE whose body is not one the application takes gets 415 with an Accept naming
/// what it does take, and raises no event (RFC 3428 §7); a declared type is taken.
#[test]
fn message_bodies_are_taken_only_of_the_declared_types() {
    let message = |ct: &str| {
        Bytes::from(format!(
            "MESSAGE sip:user@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-ct{}\r\nMax-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:user@example.com>\r\nCall-ID: ct-{}\r\nCSeq: 1 MESSAGE\r\nContent-Type: {ct}\r\nContent-Length: 4\r\n\r\nbody",
            ct.len(),
            ct.len()
        ))
    };
    let deliver = |config: UaConfig, ct: &str| {
        let mut ua = UserAgent::new(config, start(), 5);
        let flow = ua.add_flow(udp("192.0.2.10:5060", "192.0.2.1:5060"));
        ua.handle_input(
            start(),
            Input::Received {
                flow,
                bytes: message(ct),
            },
        );
        let out = drain(&mut ua);
        let raised = out
            .iter()
            .any(|o| matches!(o, Output::Event(Event::MessageReceived { .. })));
        let response = sent(&out).into_iter().find_map(|m| match m {
            Message::Response(r) => Some(r),
            _ => None,
        });
        (response.unwrap(), raised)
    };
    let config = UaConfig::new("sip:user@example.com");
    let (r, raised) = deliver(config.clone(), "text/plain;charset=UTF-8");
    assert_eq!((r.status().code(), raised), (200, true));
    for refused in ["application/sdp", "multipart/mixed;boundary=x", "text/html"] {
        let (r, raised) = deliver(config.clone(), refused);
        assert_eq!((r.status().code(), raised), (415, false), "{refused}");
        assert_eq!(r.headers().get(HeaderName::Accept), Some("text/plain"));
    }
    let mut wide = config;
    wide.message_types = vec!["text/plain".into(), "application/*".into()];
    let (r, raised) = deliver(wide, "application/im-iscomposing+xml");
    assert_eq!((r.status().code(), raised), (200, true));
}
