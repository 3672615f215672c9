//! The user agent's lazy validation (`Message::validate_for_ua`): it reads less of From and
//! To than `Message::validate`, and the keys come from framing. Whatever the datagram:
//! - nothing panics;
//! - the lazy check never refuses what the full one accepts, and a message the full check
//!   accepts reads the same keys both ways (framing's cached ones and a fresh parse);
//! - a request the lazy check refuses gets a 400 and nothing else — no event, no request,
//!   no transaction left — and a refused response is dropped;
//! - a request the lazy check lets through with a fault the full one finds (a Route or
//!   Record-Route left to the layer that reads it) is either refused with 400 by that layer,
//!   and then nothing of it reaches the application or stays as a call, or handled as if
//!   the faulty header were not there — never half of each.
#![no_main]

use std::time::Instant;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sansip_core::message::{HeaderName, Limits, Message};
use sansip_core::session::FakeSdp;
use sansip_core::transport::{FlowInfo, Transport};
use sansip_core::ua::{Input, Output, UaConfig, UserAgent};

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    let Ok(mut m) = Message::frame(bytes.clone(), &Limits::default()) else {
        return;
    };
    let lazy = m.validate_for_ua();
    let full = m.validate();
    if full.is_ok() {
        assert!(lazy.is_ok(), "lazy refused what full accepts: {lazy:?}");
        let h = m.headers();
        // Framing's cached keys against a parse of the same lines now.
        // (A value holding a bare CR cannot be pushed again: those messages are skipped.)
        let mut fresh = sansip_core::message::Headers::new();
        let copied = h
            .iter()
            .all(|(name, value)| fresh.push_named(name, value).is_ok());
        if copied {
            assert_eq!(h.top_via().ok(), fresh.top_via().ok());
            assert_eq!(h.cseq().ok(), fresh.cseq().ok());
            assert_eq!(h.call_id().ok(), fresh.call_id().ok());
            assert_eq!(h.from_tag().ok(), fresh.from_tag().ok());
            assert_eq!(h.to_tag().ok(), fresh.to_tag().ok());
        }
    }
    if lazy.is_ok() {
        if full.is_err() && matches!(m, Message::Request(_)) {
            left_to_the_layers(bytes);
        }
        return;
    }
    let (mut ua, now, flow) = user_agent();
    ua.handle_input(now, Input::Received { flow, bytes });
    while let Some(o) = ua.poll_output() {
        match o {
            // Framed only: the 400 copies the request's headers, the faulty one included.
            Output::Transmit { bytes, .. } => match Message::frame(bytes, &Limits::default()) {
                Ok(Message::Response(r)) => {
                    assert_eq!(r.status().code(), 400, "a refused request gets 400");
                    assert!(matches!(m, Message::Request(_)), "a response is dropped");
                    assert!(r.headers().contains(HeaderName::Via));
                }
                other => panic!("only a 400 may leave: {other:?}"),
            },
            Output::Event(e) => panic!("a refused message reached the application: {e:?}"),
            _ => {}
        }
    }
    assert_eq!(ua.transactions(), 0, "nothing half-processed is left");
    assert_eq!(ua.calls().count(), 0);
});

fn user_agent() -> (UserAgent<FakeSdp>, Instant, sansip_core::transport::FlowId) {
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let mut ua: UserAgent<FakeSdp> = UserAgent::new(UaConfig::new("sip:alice@example.com"), now, 1);
    let flow = ua.add_flow(FlowInfo {
        transport: Transport::Udp,
        local: "192.0.2.10:5060".parse().unwrap(),
        remote: "192.0.2.1:5060".parse().unwrap(),
    });
    (ua, now, flow)
}

/// A request whose fault the arrival check left to the layer that reads the header.
fn left_to_the_layers(bytes: Bytes) {
    let (mut ua, now, flow) = user_agent();
    ua.handle_input(now, Input::Received { flow, bytes });
    let (mut refused, mut events) = (false, 0);
    while let Some(o) = ua.poll_output() {
        match o {
            Output::Transmit { bytes, .. } => {
                if let Ok(Message::Response(r)) = Message::frame(bytes, &Limits::default()) {
                    refused |= r.status().code() == 400;
                }
            }
            Output::Event(_) => events += 1,
            _ => {}
        }
    }
    if refused {
        assert_eq!(
            events, 0,
            "a request refused by a layer reached the application"
        );
        assert_eq!(ua.calls().count(), 0, "a refused request left a call");
    }
}
