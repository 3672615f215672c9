//! Calls at the wire level: one user agent against hand-written peer messages, for what the
//! simulator's well-behaved peers never send (forked and repeated 2xx, challenges, merged
//! requests, odd INFO bodies, missing ACKs).

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use sansip_core::auth::{DigestAlgorithm, DigestCredentials, DigestQop, challenge, verify};
use sansip_core::e164::{DialPlan, NumberError};
use sansip_core::message::{
    Credentials, HeaderName, Message, Method, Request, Response, StatusCode,
};
use sansip_core::session::{CallDirection, CallState, FakeSdp};
use sansip_core::subscription::message_summary::MessageSummary;
use sansip_core::transport::{FlowId, FlowInfo, Transport};
use sansip_core::ua::{
    CallHandle, CallOptions, EndCause, Event, Gateway, Input, Originator, Output, UaConfig,
    UaError, UserAgent,
};

#[allow(clippy::disallowed_methods)]
fn start() -> Instant {
    Instant::now()
}

struct Harness {
    ua: UserAgent<FakeSdp>,
    flow: FlowId,
    now: Instant,
    sent: Vec<Message>,
    events: Vec<Event>,
}

impl Harness {
    fn new(config: UaConfig) -> Self {
        let now = start();
        let mut ua = UserAgent::new(config, now, 5);
        let flow = ua.add_flow(FlowInfo {
            transport: Transport::Udp,
            local: "192.0.2.10:5060".parse().unwrap(),
            remote: "192.0.2.1:5060".parse().unwrap(),
        });
        ua.set_outbound_flow(flow);
        Self {
            ua,
            flow,
            now,
            sent: Vec::new(),
            events: Vec::new(),
        }
    }

    fn alice() -> Self {
        let mut c = UaConfig::new("sip:alice@example.com");
        c.credentials = Some(DigestCredentials::new("alice", "secret"));
        Self::new(c)
    }

    /// Drains the UA; returns what it sent since the last call.
    fn drain(&mut self) -> Vec<Message> {
        let mut fresh = Vec::new();
        while let Some(o) = self.ua.poll_output() {
            match o {
                Output::Transmit { bytes, .. } => fresh.push(Message::parse(bytes).unwrap()),
                Output::Event(e) => self.events.push(e),
                _ => {}
            }
        }
        self.sent.extend(fresh.iter().cloned());
        fresh
    }

    fn feed(&mut self, m: impl Into<Bytes>) -> Vec<Message> {
        let flow = self.flow;
        self.ua.handle_input(
            self.now,
            Input::Received {
                flow,
                bytes: m.into(),
            },
        );
        self.drain()
    }

    fn feed_response(&mut self, r: &Response) -> Vec<Message> {
        self.feed(r.to_bytes())
    }

    fn advance(&mut self, d: Duration) -> Vec<Message> {
        let until = self.now + d;
        let mut out = Vec::new();
        while let Some(t) = self.ua.poll_timeout().filter(|t| *t <= until) {
            self.now = t.max(self.now);
            self.ua.handle_timeout(self.now);
            out.extend(self.drain());
        }
        self.now = until;
        out
    }

    fn call(&mut self, target: &str, options: CallOptions) -> (CallHandle, Request) {
        let now = self.now;
        let id = self
            .ua
            .call(now, target, options, FakeSdp::new("alice"))
            .unwrap();
        let invite = requests(&self.drain()).remove(0);
        (id, invite)
    }

    fn ended(&self, id: CallHandle) -> Option<&sansip_core::ua::CallEnd> {
        self.events.iter().find_map(|e| match e {
            Event::CallEnded { call, end, .. } if *call == id => Some(end),
            _ => None,
        })
    }
}

fn requests(msgs: &[Message]) -> Vec<Request> {
    msgs.iter()
        .filter_map(|m| match m {
            Message::Request(r) => Some(r.clone()),
            Message::Response(_) => None,
        })
        .collect()
}

fn responses(msgs: &[Message]) -> Vec<Response> {
    msgs.iter()
        .filter_map(|m| match m {
            Message::Response(r) => Some(r.clone()),
            Message::Request(_) => None,
        })
        .collect()
}

/// A response from the callee with its tag, Contact and (for 2xx) an SDP answer.
fn answer_from(invite: &Request, code: u16, tag: &str) -> Response {
    let mut r = Response::from_request(invite, StatusCode::new(code));
    r.set_to_tag(tag);
    r.headers_mut()
        .push(HeaderName::Contact, &format!("<sip:{tag}@192.0.2.77:5060>"));
    if (200..300).contains(&code) {
        let body = "v=0\r\no=bob 1 1 IN IP4 192.0.2.77\r\ns=-\r\nc=IN IP4 192.0.2.77\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n";
        r.set_body("application/sdp", Bytes::from_static(body.as_bytes()));
    }
    r
}

const OFFER: &str = "v=0\r\no=bob 1 1 IN IP4 192.0.2.77\r\ns=-\r\nc=IN IP4 192.0.2.77\r\n\
t=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n";

/// An INVITE from bob to alice, straight from bob's phone.
fn incoming_invite(branch: &str, call_id: &str, body: &str) -> String {
    format!(
        "INVITE sip:alice@192.0.2.10:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.77:5060;branch={branch}\r\n\
Max-Forwards: 70\r\n\
From: <sip:bob@example.com>;tag=bob1\r\n\
To: <sip:alice@example.com>\r\n\
Call-ID: {call_id}\r\n\
CSeq: 10 INVITE\r\n\
Contact: <sip:bob@192.0.2.77:5060>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn in_dialog(method: &str, seq: u32, alice_tag: &str, extra: &str, body: &str) -> String {
    format!(
        "{method} sip:alice@192.0.2.10:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.77:5060;branch=z9hG4bK{method}{seq}x{}\r\n\
Max-Forwards: 70\r\n\
From: <sip:bob@example.com>;tag=bob1\r\n\
To: <sip:alice@example.com>;tag={alice_tag}\r\n\
Call-ID: c1@bob\r\n\
CSeq: {seq} {method}\r\n\
Contact: <sip:bob@192.0.2.77:5060>\r\n\
{extra}Content-Length: {}\r\n\r\n{body}",
        body.len(),
        body.len()
    )
}

#[test]
fn the_invite_carries_what_the_options_ask() {
    let mut h = Harness::alice();
    let options = CallOptions::default()
        .anonymous()
        .header("X-Campaign", "spring");
    let (_, invite) = h.call("tel:+15551234", options);
    let hd = invite.headers();
    assert_eq!(invite.uri(), "tel:+15551234");
    assert!(
        hd.get(HeaderName::From)
            .unwrap()
            .starts_with("\"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=")
    );
    assert_eq!(hd.get(HeaderName::Privacy), Some("id"));
    assert_eq!(
        hd.get_by_name("P-Preferred-Identity"),
        Some("<sip:alice@example.com>")
    );
    assert_eq!(hd.get_by_name("X-Campaign"), Some("spring"));
    assert_eq!(
        hd.get(HeaderName::Contact),
        Some("<sip:alice@192.0.2.10:5060>")
    );
    assert_eq!(hd.get(HeaderName::ContentType), Some("application/sdp"));
    assert!(invite.body().starts_with(b"v=0"));

    let (_, invite) = h.call("bob", CallOptions::default().display_name("Alice Q"));
    assert_eq!(invite.uri(), "sip:bob@example.com");
    assert!(
        invite
            .headers()
            .get(HeaderName::From)
            .unwrap()
            .starts_with("\"Alice Q\" <sip:alice@example.com>;tag=")
    );
    for bad in [("Bad Name", "x"), ("X-Inject", "a\r\nVia: evil")] {
        let now = h.now;
        let r = h.ua.call(
            now,
            "bob",
            CallOptions::default().header(bad.0, bad.1),
            FakeSdp::new("a"),
        );
        assert_eq!(r, Err(UaError::InvalidHeader(bad.0.into())));
    }
    let now = h.now;
    assert!(matches!(
        h.ua.call(now, "sip:", CallOptions::default(), FakeSdp::new("a")),
        Err(UaError::InvalidTarget(_))
    ));
}

#[test]
fn a_proxy_challenge_is_answered_once_and_a_refusal_ends_the_call() {
    let mut h = Harness::alice();
    let (id, invite) = h.call("bob", CallOptions::default());
    let mut c407 = Response::from_request(&invite, StatusCode::new(407));
    c407.set_to_tag("proxy");
    let ch = challenge(
        "example.com",
        "n1",
        DigestAlgorithm::SHA256,
        &[DigestQop::Auth],
        None,
        false,
    );
    c407.headers_mut().push(HeaderName::ProxyAuthenticate, &ch);
    let out = h.feed_response(&c407);
    let reqs = requests(&out);
    assert_eq!(reqs.len(), 2, "ACK for the 407, then the retry");
    assert_eq!(*reqs[0].method(), Method::Ack);
    let retry = &reqs[1];
    assert_eq!(*retry.method(), Method::Invite);
    assert_eq!(retry.cseq().unwrap().seq, invite.cseq().unwrap().seq + 1);
    assert_eq!(retry.call_id().unwrap(), invite.call_id().unwrap());
    assert_eq!(retry.from().unwrap().tag(), invite.from().unwrap().tag());
    assert_ne!(
        retry.top_via().unwrap().branch(),
        invite.top_via().unwrap().branch()
    );
    let creds =
        Credentials::parse(retry.headers().get(HeaderName::ProxyAuthorization).unwrap()).unwrap();
    let user = DigestCredentials::new("alice", "secret").for_realm("example.com");
    assert!(verify(&creds, "INVITE", retry.body(), &user));
    assert_eq!(retry.body(), invite.body(), "the same offer");
    // The proxy refuses the credentials: no third INVITE, the call fails.
    let mut again = Response::from_request(retry, StatusCode::new(407));
    again.set_to_tag("proxy");
    again.headers_mut().push(HeaderName::ProxyAuthenticate, &ch);
    let out = h.feed_response(&again);
    assert!(requests(&out).iter().all(|r| *r.method() == Method::Ack));
    let end = h.ended(id).unwrap();
    assert_eq!(end.cause, EndCause::AuthenticationError);
    assert_eq!(end.status, Some(407));
    h.advance(Duration::from_secs(40));
    assert_eq!(h.ua.transactions(), 0);
    assert_eq!(h.ua.call_states(), 0);
}

#[test]
fn an_identity_given_for_the_call_replaces_the_gateways() {
    let mut c = UaConfig::new("sip:alice@example.com");
    c.gateway = Some(
        Gateway::new("sip:gw.example.net")
            .with_asserted_identity("<sip:+46812345678@example.com>")
            .with_privacy("none"),
    );
    let mut h = Harness::new(c);
    let now = h.now;
    let options = CallOptions::default().header("p-asserted-identity", "<sip:+4611@example.com>");
    h.ua.call_phone_number(now, "+4670", options, FakeSdp::new("a"))
        .unwrap();
    let invite = requests(&h.drain()).remove(0);
    let pai: Vec<&str> = invite
        .headers()
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("P-Asserted-Identity"))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        pai,
        ["<sip:+4611@example.com>"],
        "one identity, the call's own"
    );
    assert_eq!(invite.headers().get(HeaderName::Privacy), Some("none"));
}

#[test]
fn a_phone_number_goes_to_the_gateway_with_its_identity_and_credentials() {
    let mut c = UaConfig::new("sip:alice@example.com");
    c.credentials = Some(DigestCredentials::new("alice", "secret").for_realm("example.com"));
    let mut h = Harness::new(c.clone());
    let now = h.now;
    assert_eq!(
        h.ua.call_phone_number(
            now,
            "+46000000000",
            CallOptions::default(),
            FakeSdp::new("a")
        ),
        Err(UaError::NoGateway)
    );
    c.gateway = Some(
        Gateway::new("sip:gw.example.net:5070;transport=udp")
            .with_dial_plan(DialPlan::national("46", "0", "00"))
            .with_credentials(DigestCredentials::new("trunk7", "pstn").for_realm("carrier"))
            .with_asserted_identity("<sip:+46812345678@example.com>")
            .with_privacy("none"),
    );
    let mut h = Harness::new(c);
    let now = h.now;
    for (dialled, why) in [
        ("12345", NumberError::NotInternational),
        ("+46 70 12*", NumberError::Character { ch: '*', at: 9 }),
        ("+4670123456789012", NumberError::TooLong { digits: 16 }),
    ] {
        let r =
            h.ua.call_phone_number(now, dialled, CallOptions::default(), FakeSdp::new("a"));
        assert_eq!(r, Err(UaError::InvalidNumber(why)), "{dialled}");
    }
    assert!(h.drain().is_empty(), "a refused number sends nothing");

    let options = CallOptions::default().header("X-Campaign", "spring");
    let id =
        h.ua.call_phone_number(now, "070-000 00 00", options, FakeSdp::new("a"))
            .unwrap();
    let invite = requests(&h.drain()).remove(0);
    assert_eq!(
        invite.uri(),
        "sip:+46700000000@gw.example.net:5070;transport=udp;user=phone"
    );
    let hd = invite.headers();
    assert_eq!(
        hd.get_by_name("P-Asserted-Identity"),
        Some("<sip:+46812345678@example.com>")
    );
    assert_eq!(hd.get(HeaderName::Privacy), Some("none"));
    assert_eq!(hd.get_by_name("X-Campaign"), Some("spring"));
    assert!(
        hd.get(HeaderName::To)
            .unwrap()
            .starts_with("<sip:+46700000000@gw.example.net")
    );

    // The carrier challenges with its realm: the gateway's credentials answer; then the
    // proxy challenges with ours, and ours answer.
    let mut retry = invite;
    for (realm, user) in [
        (
            "carrier",
            DigestCredentials::new("trunk7", "pstn").for_realm("carrier"),
        ),
        (
            "example.com",
            DigestCredentials::new("alice", "secret").for_realm("example.com"),
        ),
    ] {
        let mut c407 = Response::from_request(&retry, StatusCode::new(407));
        c407.set_to_tag("proxy");
        let ch = challenge(
            realm,
            "n1",
            DigestAlgorithm::MD5,
            &[DigestQop::Auth],
            None,
            false,
        );
        c407.headers_mut().push(HeaderName::ProxyAuthenticate, &ch);
        let reqs = requests(&h.feed_response(&c407));
        assert_eq!(reqs.len(), 2, "ACK for the 407, then the retry");
        retry = reqs[1].clone();
        // Each realm's credentials, the earlier realm's kept (RFC 3261 §22.3).
        let creds: Vec<Credentials> = retry
            .headers()
            .get_all(HeaderName::ProxyAuthorization)
            .map(|v| Credentials::parse(v).unwrap())
            .collect();
        let ours = creds.iter().find(|c| c.realm == Some(realm)).unwrap();
        assert!(verify(ours, "INVITE", retry.body(), &user), "{realm}");
    }
    let out = h.feed_response(&answer_from(&retry, 200, "gw"));
    assert!(requests(&out).iter().any(|r| *r.method() == Method::Ack));
    assert!(h.ended(id).is_none(), "the call is up");
}

#[test]
fn every_call_has_details_and_the_ended_ones_a_bounded_history() {
    let mut c = UaConfig::new("sip:alice@example.com");
    c.call_history = 2;
    let mut h = Harness::new(c);
    let t0 = h.now;

    // Refused: the final response comes whole, as an application shows an error.
    let (busy, invite) = h.call("bob", CallOptions::default());
    let d = h.ua.call_details(busy).unwrap();
    assert_eq!(
        (d.direction, d.state(), d.started),
        (CallDirection::Outgoing, CallState::Initiating, t0)
    );
    assert_eq!(d.call_id, invite.call_id().unwrap());
    assert_eq!(d.local, "<sip:alice@example.com>");
    assert_eq!(d.remote, "<sip:bob@example.com>");
    h.advance(Duration::from_secs(1));
    h.feed_response(&answer_from(&invite, 180, "b1"));
    h.advance(Duration::from_secs(2));
    let mut r486 = answer_from(&invite, 486, "b1");
    r486.headers_mut()
        .push(HeaderName::Warning, "399 pbx.example \"In a meeting\"");
    r486.headers_mut()
        .push(HeaderName::RetryAfter, "300 (back at noon);duration=60");
    r486.headers_mut().push_named("X-Queue", "7").unwrap();
    h.feed_response(&r486);
    let d = h.ua.call_details(busy).unwrap();
    assert_eq!(d.state(), CallState::Ended);
    assert_eq!(d.progressed, Some(t0 + Duration::from_secs(1)));
    assert_eq!(
        (d.established, d.ended),
        (None, Some(t0 + Duration::from_secs(3)))
    );
    assert_eq!(d.duration(h.now), Duration::ZERO);
    let end = d.end.unwrap();
    assert_eq!(
        (end.cause, end.originator),
        (EndCause::Busy, Originator::Remote)
    );
    let resp = end.response.unwrap();
    assert_eq!((resp.status, resp.reason.as_str()), (486, "Busy Here"));
    assert_eq!(
        resp.warning.as_deref(),
        Some("399 pbx.example \"In a meeting\"")
    );
    assert_eq!(resp.retry_after, Some(300));
    assert!(resp.headers.contains(&("X-Queue".into(), "7".into())));

    // Answered, with an identity asserted by the proxy; we hang up 5 s later.
    let (talk, invite) = h.call("bob", CallOptions::default());
    let mut ok = answer_from(&invite, 200, "b2");
    ok.headers_mut().push(
        HeaderName::PAssertedIdentity,
        "\"Bob\" <sip:+4612345@example.com>",
    );
    h.feed_response(&ok);
    let d = h.ua.call_details(talk).unwrap();
    assert_eq!(d.state(), CallState::Established);
    assert_eq!(d.remote, "\"Bob\" <sip:+4612345@example.com>");
    assert!(d.asserted);
    assert_eq!(d.local, "<sip:alice@example.com>");
    h.advance(Duration::from_secs(5));
    assert_eq!(d.duration(h.now), Duration::from_secs(5), "live: up to now");
    let now = h.now;
    h.ua.hangup(now, talk).unwrap();
    h.drain();
    let d = h.ua.call_details(talk).unwrap();
    assert_eq!(
        d.duration(now + Duration::from_secs(60)),
        Duration::from_secs(5)
    );
    assert_eq!(d.end.unwrap().originator, Originator::Local);

    // Incoming: us as the INVITE's To, the peer as its From; the peer hangs up.
    let (their, tag) = answered_incoming(&mut h);
    let d = h.ua.call_details(their).unwrap();
    assert_eq!(
        (d.direction, d.call_id.as_str()),
        (CallDirection::Incoming, "c1@bob")
    );
    assert_eq!(
        (d.local.as_str(), d.remote.as_str()),
        ("<sip:alice@example.com>", "<sip:bob@example.com>")
    );
    assert!(!d.asserted);
    h.feed(in_dialog("BYE", 11, &tag, "", ""));
    assert_eq!(
        h.ua.call_details(their).unwrap().end.unwrap().originator,
        Originator::Remote
    );

    // Two kept: the busy call has gone from the history.
    let kept: Vec<CallHandle> = h.ua.call_history().map(|d| d.call).collect();
    assert_eq!(kept, [talk, their]);
    assert!(h.ua.call_details(busy).is_none());
}

#[test]
fn repeated_and_forked_2xx_are_acked_and_a_second_fork_is_hung_up() {
    let mut h = Harness::alice();
    let (id, invite) = h.call("bob", CallOptions::default());
    let ringing = answer_from(&invite, 180, "fork-a");
    h.feed_response(&ringing);
    assert!(h.events.iter().any(|e| matches!(
        e,
        Event::CallProgress {
            status: 180,
            early_media: false,
            ..
        }
    )));
    let ok = answer_from(&invite, 200, "fork-a");
    let ack = requests(&h.feed_response(&ok)).remove(0);
    assert_eq!(*ack.method(), Method::Ack);
    assert_eq!(ack.uri(), "sip:fork-a@192.0.2.77:5060");
    assert_eq!(ack.cseq().unwrap().seq, invite.cseq().unwrap().seq);
    // The 2xx again (our ACK was lost): the same ACK again.
    let again = requests(&h.feed_response(&ok));
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].to_bytes(), ack.to_bytes());
    // Another fork answers too: ACK it and hang it up (RFC 3261 §13.2.2.4).
    let other = answer_from(&invite, 200, "fork-b");
    let reqs = requests(&h.feed_response(&other));
    let methods: Vec<&Method> = reqs.iter().map(|r| r.method()).collect();
    assert_eq!(methods, [&Method::Ack, &Method::Bye]);
    assert!(reqs.iter().all(|r| r.to().unwrap().tag() == Some("fork-b")));
    // The fork's dialog is made from ours (the INVITE is let go once a 2xx confirms the
    // call): our From and Call-ID, the INVITE's CSeq, the fork's Contact as target.
    let seq = invite.cseq().unwrap().seq;
    assert_eq!(reqs[0].cseq().unwrap().seq, seq);
    assert_eq!(reqs[1].cseq().unwrap().seq, seq + 1);
    for r in &reqs {
        assert_eq!(r.uri(), "sip:fork-b@192.0.2.77:5060");
        assert_eq!(r.call_id().unwrap(), invite.call_id().unwrap());
        assert_eq!(r.from().unwrap().tag(), invite.from().unwrap().tag());
    }
    let answered = h
        .events
        .iter()
        .filter(|e| matches!(e, Event::CallAnswered { .. }))
        .count();
    assert_eq!(answered, 1);
    assert!(
        h.ua.calls().any(|c| c == id),
        "the first fork's call lives on"
    );
}

#[test]
fn cleared_call_timers_do_not_wake_the_user_agent() {
    let mut h = Harness::alice();
    let options = CallOptions::default().no_answer_timeout(Duration::from_secs(120));
    let (id, invite) = h.call("bob", options);
    let ok = answer_from(&invite, 200, "bob-tag");
    h.feed_response(&ok);
    h.ua.hangup(h.now, id).unwrap();
    let bye = requests(&h.drain()).remove(0);
    assert_eq!(*bye.method(), Method::Bye);
    h.feed_response(&Response::from_request(&bye, StatusCode::new(200)));
    assert!(h.ended(id).is_some());
    // Past every transaction's lingering (64·T1) and the kept ACK: the no-answer timer was
    // cleared by the 2xx, so nothing is left to wake for.
    h.advance(Duration::from_secs(40));
    assert_eq!(
        h.ua.poll_timeout(),
        None,
        "a cleared timer still wakes the UA"
    );
}

#[test]
fn the_calls_a_step_reached_are_reported_once_and_no_others() {
    // What a media layer reads instead of visiting every call after each input.
    let mut h = Harness::alice();
    let (unwatched, _) = h.call("dave", CallOptions::default());
    assert_eq!(
        h.ua.next_stepped_call(),
        None,
        "nothing recorded until asked"
    );
    h.ua.record_stepped_calls();
    h.ua.hangup(h.now, unwatched).unwrap();
    h.drain();
    assert_eq!(h.ua.next_stepped_call(), Some(unwatched));
    let stepped =
        |h: &mut Harness| std::iter::from_fn(|| h.ua.next_stepped_call()).collect::<Vec<_>>();
    let (first, invite) = h.call("bob", CallOptions::default());
    let (second, refused) = h.call("carol", CallOptions::default());
    let mut both = stepped(&mut h);
    both.sort();
    assert_eq!(both, [first, second], "each new call once");
    assert!(!h.ua.has_stepped_calls());
    // A response reaches the first call only.
    h.feed_response(&answer_from(&invite, 180, "bob-tag"));
    assert_eq!(stepped(&mut h), [first]);
    // A request for none of the calls steps none.
    h.feed(
        "OPTIONS sip:alice@192.0.2.10:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.77:5060;branch=z9hG4bKopt1\r\n\
Max-Forwards: 70\r\n\
From: <sip:bob@example.com>;tag=o1\r\n\
To: <sip:alice@example.com>\r\n\
Call-ID: opt@bob\r\n\
CSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n",
    );
    assert_eq!(stepped(&mut h), []);
    // A command, twice before it is read: one report. Muting counts (the media reads it).
    h.ua.set_muted(second, true).unwrap();
    h.ua.set_muted(second, false).unwrap();
    assert_eq!(stepped(&mut h), [second]);
    // A call that ends and is let go within its step is not reported, even when a report
    // was pending.
    h.ua.set_muted(second, true).unwrap();
    h.feed_response(&answer_from(&refused, 486, "carol-tag"));
    assert!(h.ended(second).is_some());
    assert_eq!(stepped(&mut h), []);
}

#[test]
fn a_merged_invite_gets_482_and_an_unknown_dialog_481() {
    let mut h = Harness::alice();
    let first = h.feed(incoming_invite("z9hG4bKone", "m1@bob", OFFER));
    assert_eq!(
        responses(&first)
            .iter()
            .map(|r| r.status().code())
            .collect::<Vec<_>>(),
        [100, 180]
    );
    let second = h.feed(incoming_invite("z9hG4bKtwo", "m1@bob", OFFER));
    let codes: Vec<u16> = responses(&second)
        .iter()
        .map(|r| r.status().code())
        .collect();
    assert_eq!(codes, [100, 482]);
    let bye = h.feed(in_dialog("BYE", 11, "nosuchtag", "", ""));
    assert_eq!(responses(&bye)[0].status().code(), 481);
    assert_eq!(h.ua.calls().count(), 1, "the first call is undisturbed");
}

/// Bob's INVITE (carrying `offer`, which may be empty) rings alice: returns the call.
fn ringing(h: &mut Harness, offer: &str) -> CallHandle {
    ringing_with(h, incoming_invite("z9hG4bKinv", "c1@bob", offer))
}

/// The call `invite` rings.
fn ringing_with(h: &mut Harness, invite: String) -> CallHandle {
    h.feed(invite);
    h.events
        .iter()
        .find_map(|e| match e {
            Event::IncomingCall { call, .. } => Some(*call),
            _ => None,
        })
        .unwrap()
}

/// Bob calls alice, alice answers, bob ACKs: returns the call and alice's tag.
fn answered_incoming(h: &mut Harness) -> (CallHandle, String) {
    let id = ringing(h, OFFER);
    let now = h.now;
    h.ua.answer(now, id, FakeSdp::new("alice")).unwrap();
    let ok = responses(&h.drain()).remove(0);
    assert_eq!(ok.status().code(), 200);
    assert!(ok.body().starts_with(b"v=0"));
    let tag = ok.to().unwrap().tag().unwrap().to_string();
    (id, tag)
}

#[test]
fn in_dialog_info_options_and_out_of_order_cseq() {
    let mut h = Harness::alice();
    let (id, tag) = answered_incoming(&mut h);
    h.feed(in_dialog("ACK", 10, &tag, "", ""));
    let relay = in_dialog(
        "INFO",
        11,
        &tag,
        "Content-Type: application/dtmf-relay\r\n",
        "Signal=5\r\nDuration=160\r\n",
    );
    assert_eq!(responses(&h.feed(relay))[0].status().code(), 200);
    let plain = in_dialog("INFO", 12, &tag, "Content-Type: application/dtmf\r\n", "#");
    assert_eq!(responses(&h.feed(plain))[0].status().code(), 200);
    let tones: Vec<(char, Option<Duration>)> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::DtmfReceived {
                call,
                tone,
                duration,
            } if *call == id => Some((*tone, *duration)),
            _ => None,
        })
        .collect();
    assert_eq!(
        tones,
        [('5', Some(Duration::from_millis(160))), ('#', None)]
    );
    // Any other INFO (RFC 6086 legacy usage) is the application's: 200 and an event.
    let other = in_dialog("INFO", 13, &tag, "Content-Type: application/json\r\n", "{}");
    let r = responses(&h.feed(other)).remove(0);
    assert_eq!(r.status().code(), 200);
    assert!(h.events.iter().any(|e| matches!(
        e,
        Event::InfoReceived { call, content_type, body }
            if *call == id && content_type == "application/json" && &body[..] == b"{}"
    )));
    let options = in_dialog("OPTIONS", 14, &tag, "", "");
    let r = responses(&h.feed(options)).remove(0);
    assert_eq!(r.status().code(), 200);
    assert!(
        r.headers()
            .get(HeaderName::Allow)
            .unwrap()
            .contains("INVITE")
    );
    let stale = in_dialog("INFO", 12, &tag, "", "");
    assert_eq!(responses(&h.feed(stale))[0].status().code(), 500);
    assert!(h.ua.calls().any(|c| c == id));
}

#[test]
fn a_reinvite_before_the_ack_stands_for_it_and_no_ack_ends_the_call() {
    let mut h = Harness::alice();
    let (id, tag) = answered_incoming(&mut h);
    // The ACK for CSeq 10 is lost; the peer's re-INVITE shows it got our 2xx (§14.1), and
    // our 2xx went out, so no 500 (§14.2): it is answered.
    let reinvite = in_dialog(
        "INVITE",
        11,
        &tag,
        "Content-Type: application/sdp\r\n",
        OFFER,
    );
    let r = responses(&h.feed(reinvite))
        .into_iter()
        .find(|r| r.status().code() >= 200)
        .unwrap();
    assert_eq!(r.status().code(), 200);
    assert!(r.body().starts_with(b"v=0"));
    // No ACK ever: only the new 2xx is resent, on T1 doubling to T2, then the call is given
    // up.
    let out = h.advance(Duration::from_secs(33));
    let resent: Vec<u32> = responses(&out)
        .iter()
        .filter(|r| r.status().code() == 200)
        .map(|r| r.cseq().unwrap().seq)
        .collect();
    assert!(resent.iter().all(|&s| s == 11), "resent {resent:?}");
    assert!(
        (7..=11).contains(&resent.len()),
        "resent {} times",
        resent.len()
    );
    assert!(requests(&out).iter().any(|r| *r.method() == Method::Bye));
    let end = h.ended(id).unwrap();
    assert_eq!(
        (end.cause, end.originator),
        (EndCause::NoAck, Originator::System)
    );
}

#[test]
fn a_reinvite_before_the_ack_with_the_answer_to_our_offer_gets_500() {
    let mut h = Harness::alice();
    let id = ringing(&mut h, "");
    let now = h.now;
    h.ua.answer(now, id, FakeSdp::new("alice")).unwrap();
    let ok = responses(&h.drain()).remove(0);
    assert_eq!(ok.status().code(), 200);
    let tag = ok.to().unwrap().tag().unwrap().to_string();
    // Our 2xx carried the offer; its answer is in the ACK that has not come.
    let reinvite = in_dialog(
        "INVITE",
        11,
        &tag,
        "Content-Type: application/sdp\r\n",
        OFFER,
    );
    let r = responses(&h.feed(reinvite))
        .into_iter()
        .find(|r| r.status().code() >= 200)
        .unwrap();
    assert_eq!(r.status().code(), 500);
    assert!(r.headers().contains(HeaderName::RetryAfter));
    assert!(h.ended(id).is_none());
}

#[test]
fn an_offer_we_cannot_take_is_refused_with_488_and_a_warning() {
    let mut h = Harness::alice();
    let savp = OFFER.replace("RTP/AVP", "RTP/SAVP");
    let id = ringing_with(&mut h, incoming_invite("z9hG4bKs", "s1@bob", &savp));
    let now = h.now;
    let err = h.ua.answer(now, id, FakeSdp::new("alice")).unwrap_err();
    assert!(matches!(err, UaError::Sdp(_)));
    let r = responses(&h.drain()).remove(0);
    assert_eq!(r.status().code(), 488);
    assert!(
        r.headers()
            .get(HeaderName::Warning)
            .unwrap()
            .starts_with("399 ")
    );
    assert_eq!(h.ended(id).unwrap().cause, EndCause::IncompatibleSdp);
}

#[test]
fn our_in_dialog_requests_go_one_at_a_time_so_no_proxy_can_reorder_them() {
    let mut h = Harness::alice();
    let (id, tag) = answered_incoming(&mut h);
    h.feed(in_dialog("ACK", 10, &tag, "", ""));
    let now = h.now;
    h.ua.send_dtmf(now, id, "12").unwrap();
    h.ua.call_message(now, id, "text/plain", "hi").unwrap();
    h.ua.hold(now, id).unwrap();
    let mut order = Vec::new();
    let mut out = requests(&h.drain());
    for _ in 0..8 {
        assert!(out.len() <= 1, "one request at a time, got {}", out.len());
        let Some(req) = out.pop() else {
            // A DTMF gap: let the timer run.
            out = requests(&h.advance(Duration::from_millis(600)));
            if out.is_empty() {
                break;
            }
            continue;
        };
        order.push((req.method().to_string(), req.cseq().unwrap().seq));
        let mut ok = Response::from_request(&req, StatusCode::new(200));
        if *req.method() == Method::Invite {
            ok.headers_mut()
                .push(HeaderName::Contact, "<sip:bob@192.0.2.77:5060>");
            let answer = OFFER.replace("a=sendrecv", "a=recvonly");
            ok.set_body("application/sdp", Bytes::from(answer));
        }
        out = requests(&h.feed_response(&ok))
            .into_iter()
            .filter(|r| *r.method() != Method::Ack)
            .collect();
    }
    let methods: Vec<&str> = order.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(methods, ["INFO", "INVITE", "MESSAGE", "INFO"]);
    assert!(
        order.windows(2).all(|w| w[0].1 < w[1].1),
        "CSeq rises: {order:?}"
    );
    assert!(h.ua.is_held(id).unwrap());
}

const SENDONLY_OFFER: &str = "v=0\r\no=bob 1 2 IN IP4 192.0.2.77\r\ns=-\r\nc=IN IP4 192.0.2.77\r\n\
t=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendonly\r\n";

#[test]
fn an_update_holds_us_refreshes_the_session_and_follows_the_glare_rules() {
    let mut h = Harness::alice();
    let (id, tag) = answered_incoming(&mut h);
    // Before the ACK the peer's INVITE exchange is unfinished: 500 with Retry-After.
    let early = in_dialog(
        "UPDATE",
        11,
        &tag,
        "Content-Type: application/sdp\r\n",
        SENDONLY_OFFER,
    );
    let r = responses(&h.feed(early)).remove(0);
    assert_eq!(r.status().code(), 500);
    assert!(r.headers().contains(HeaderName::RetryAfter));
    h.feed(in_dialog("ACK", 10, &tag, "", ""));
    // An UPDATE with a sendonly offer holds us: 200 with a recvonly answer.
    let hold = in_dialog(
        "UPDATE",
        12,
        &tag,
        "Session-Expires: 120;refresher=uac\r\nSupported: timer\r\nContent-Type: application/sdp\r\n",
        SENDONLY_OFFER,
    );
    let r = responses(&h.feed(hold)).remove(0);
    assert_eq!(r.status().code(), 200);
    assert!(String::from_utf8_lossy(r.body()).contains("a=recvonly"));
    assert_eq!(
        r.headers().get(HeaderName::SessionExpires),
        Some("120;refresher=uac")
    );
    assert!(h.ua.hold_state(id).unwrap().remote);
    // Without a body an UPDATE only refreshes; a too short interval gets 422 and Min-SE.
    let brief = in_dialog("UPDATE", 13, &tag, "Session-Expires: 30\r\n", "");
    let r = responses(&h.feed(brief)).remove(0);
    assert_eq!(r.status().code(), 422);
    assert_eq!(r.headers().get(HeaderName::MinSe), Some("90"));
    let refresh = in_dialog(
        "UPDATE",
        14,
        &tag,
        "Session-Expires: 90\r\nSupported: timer\r\n",
        "",
    );
    let r = responses(&h.feed(refresh)).remove(0);
    assert_eq!(r.status().code(), 200);
    assert!(r.body().is_empty());
    // The peer supports timers and named no refresher: it refreshes (RFC 4028 §9).
    assert_eq!(
        r.headers().get(HeaderName::SessionExpires),
        Some("90;refresher=uac")
    );
    // No refresh from the peer within 90 s less 30: BYE, session timer expired.
    let out = h.advance(Duration::from_secs(61));
    assert!(requests(&out).iter().any(|r| *r.method() == Method::Bye));
    assert_eq!(
        h.ended(id).map(|e| e.cause),
        Some(sansip_core::ua::EndCause::SessionTimerExpired)
    );
}

#[test]
fn an_update_offer_while_our_reinvite_is_out_gets_491() {
    let mut h = Harness::alice();
    let (id, tag) = answered_incoming(&mut h);
    h.feed(in_dialog("ACK", 10, &tag, "", ""));
    // Our own hold re-INVITE is out: a second offer by UPDATE meets 491 (RFC 3311 §5.2).
    let now = h.now;
    h.ua.hold(now, id).unwrap();
    let reinvite = requests(&h.drain()).remove(0);
    assert_eq!(*reinvite.method(), Method::Invite);
    let glare = in_dialog(
        "UPDATE",
        11,
        &tag,
        "Content-Type: application/sdp\r\n",
        OFFER,
    );
    assert_eq!(responses(&h.feed(glare))[0].status().code(), 491);
}

#[test]
fn an_invite_asking_for_too_short_a_session_gets_422_with_our_min_se() {
    let mut h = Harness::alice();
    let invite = incoming_invite("z9hG4bKbrief", "c9@bob", OFFER).replace(
        "CSeq: 10 INVITE\r\n",
        "CSeq: 10 INVITE\r\nSession-Expires: 60\r\n",
    );
    let out = responses(&h.feed(invite));
    let r = out.iter().find(|r| r.status().code() >= 200).unwrap();
    assert_eq!(r.status().code(), 422);
    assert_eq!(r.headers().get(HeaderName::MinSe), Some("90"));
    assert!(h.ua.calls().next().is_none());
}

#[test]
fn the_application_sends_info_and_any_request_in_the_call_and_hangs_up_with_a_reason() {
    let mut h = Harness::alice();
    let (id, tag) = answered_incoming(&mut h);
    h.feed(in_dialog("ACK", 10, &tag, "", ""));
    let now = h.now;
    let rid =
        h.ua.send_info(now, id, "application/x-app", "ping")
            .unwrap();
    let info = requests(&h.drain()).remove(0);
    assert_eq!(*info.method(), Method::Info);
    assert_eq!(
        info.headers().get(HeaderName::ContentType),
        Some("application/x-app")
    );
    assert_eq!(&info.body()[..], b"ping");
    // The next waits for the first's answer (one at a time), and carries its headers.
    let headers = [("X-Trace".to_string(), "7".to_string())];
    let rid2 =
        h.ua.request_in_call(now, id, Method::Options, None, &headers)
            .unwrap();
    assert!(requests(&h.drain()).is_empty());
    h.feed_response(&Response::from_request(&info, StatusCode::new(200)));
    let options = requests(&h.sent)
        .into_iter()
        .find(|r| *r.method() == Method::Options)
        .unwrap();
    assert!(options.headers().iter().any(|h| h == ("X-Trace", "7")));
    h.feed_response(&Response::from_request(&options, StatusCode::new(200)));
    let completed: Vec<_> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::RequestCompleted { id, status, .. } => Some((*id, *status)),
            _ => None,
        })
        .collect();
    assert_eq!(completed, [(rid, 200), (rid2, 200)]);
    // The session's own methods and bad headers are refused.
    assert!(matches!(
        h.ua.request_in_call(now, id, Method::Bye, None, &[]),
        Err(UaError::InvalidState(_))
    ));
    let bad = [("Bad Name".to_string(), "x".to_string())];
    assert_eq!(
        h.ua.request_in_call(now, id, Method::Info, None, &bad),
        Err(UaError::InvalidHeader("Bad Name".into()))
    );
    // Our BYE carries the Reason we give (RFC 3326).
    let options = sansip_core::ua::HangupOptions::default()
        .reason("SIP;cause=200;text=\"Call completed elsewhere\"")
        .header("X-Why", "done");
    h.ua.hangup_with(now, id, options).unwrap();
    let bye = requests(&h.drain()).remove(0);
    assert_eq!(*bye.method(), Method::Bye);
    assert_eq!(
        bye.headers().get(HeaderName::Reason),
        Some("SIP;cause=200;text=\"Call completed elsewhere\"")
    );
    assert!(bye.headers().iter().any(|h| h == ("X-Why", "done")));
}

#[test]
fn our_cancel_carries_the_reason_and_a_received_reason_reaches_call_end() {
    let mut h = Harness::alice();
    let (a, invite) = h.call("sip:bob@example.com", CallOptions::default());
    h.feed_response(&answer_from(&invite, 180, "bob9"));
    let now = h.now;
    let options = sansip_core::ua::HangupOptions::default().reason("Q.850;cause=16");
    h.ua.hangup_with(now, a, options).unwrap();
    let cancel = requests(&h.drain()).remove(0);
    assert_eq!(*cancel.method(), Method::Cancel);
    assert_eq!(
        cancel.headers().get(HeaderName::Reason),
        Some("Q.850;cause=16")
    );
    // The peer's BYE with a Reason: it reaches CallEnd.reason.
    let (id, tag) = answered_incoming(&mut h);
    h.feed(in_dialog("ACK", 10, &tag, "", ""));
    h.feed(in_dialog("BYE", 11, &tag, "Reason: Q.850;cause=31\r\n", ""));
    assert_eq!(
        h.ended(id).and_then(|e| e.reason.clone()).as_deref(),
        Some("Q.850;cause=31")
    );
}

#[test]
fn a_302_is_followed_in_q_order_and_a_failing_target_lets_the_next_go() {
    let mut h = Harness::alice();
    let (a, invite) = h.call("sip:bob@example.com", CallOptions::default());
    let mut moved = answer_from(&invite, 302, "redir");
    moved.headers_mut().remove(HeaderName::Contact);
    moved.headers_mut().push(
        HeaderName::Contact,
        "<sip:bob@192.0.2.51>;q=0.5, <sip:bob@192.0.2.52>;q=0.9",
    );
    moved
        .headers_mut()
        .push(HeaderName::Contact, "<mailto:bob@example.com>");
    let out = requests(&h.feed_response(&moved));
    // The ACK for the 302 is the transaction's; the new INVITE goes to the best target.
    let second = out.iter().find(|r| *r.method() == Method::Invite).unwrap();
    assert_eq!(second.uri(), "sip:bob@192.0.2.52");
    assert_eq!(second.cseq().unwrap().seq, invite.cseq().unwrap().seq + 1);
    assert_eq!(second.headers().call_id(), invite.headers().call_id());
    assert_eq!(second.body(), invite.body());
    // Busy there: the next target.
    let out = requests(&h.feed_response(&answer_from(second, 486, "busy")));
    let third = out.iter().find(|r| *r.method() == Method::Invite).unwrap();
    assert_eq!(third.uri(), "sip:bob@192.0.2.51");
    assert!(h.ended(a).is_none());
    h.feed_response(&answer_from(third, 200, "bob3"));
    assert!(h.ua.is_established(a));
}

#[test]
fn without_following_a_302_ends_the_call_as_redirected() {
    let mut c = UaConfig::new("sip:alice@example.com");
    c.follow_redirects = false;
    let mut h = Harness::new(c);
    let (a, invite) = h.call("sip:bob@example.com", CallOptions::default());
    h.feed_response(&answer_from(&invite, 302, "redir"));
    let end = h.ended(a).unwrap();
    assert_eq!(
        (end.cause, end.status),
        (sansip_core::ua::EndCause::Redirected, Some(302))
    );
}

#[test]
fn the_answer_names_the_far_end_and_what_the_proxy_asserted() {
    let mut h = Harness::alice();
    let (a, invite) = h.call("sip:bob@example.com", CallOptions::default());
    let mut ok = answer_from(&invite, 200, "bob7");
    ok.headers_mut().push(
        HeaderName::PAssertedIdentity,
        "\"Bob\" <sip:+15551234@example.com;user=phone>",
    );
    h.feed_response(&ok);
    let answered = h
        .events
        .iter()
        .find_map(|e| match e {
            Event::CallAnswered {
                call,
                remote,
                asserted,
            } if *call == a => Some((remote.clone(), asserted.clone())),
            _ => None,
        })
        .unwrap();
    assert_eq!(answered.0, "<sip:bob@example.com>;tag=bob7");
    assert_eq!(
        answered.1.as_deref(),
        Some("\"Bob\" <sip:+15551234@example.com;user=phone>")
    );
    assert_eq!(h.ua.remote_party(a).unwrap().0, answered.0);
    // The callee side: the INVITE's From.
    let (id, _) = answered_incoming(&mut h);
    assert_eq!(
        h.ua.remote_party(id).unwrap(),
        ("<sip:bob@example.com>;tag=bob1", None)
    );
}

#[test]
fn ua_wide_headers_go_on_every_request_and_answer_headers_on_the_2xx() {
    let config = UaConfig::new("sip:alice@example.com")
        .header("X-Tenant", "7")
        .unwrap();
    assert_eq!(
        UaConfig::new("sip:a@b").header("Bad Name", "x").err(),
        Some(UaError::InvalidHeader("Bad Name".into()))
    );
    let mut h = Harness::new(config);
    let tenant = |r: &Request| r.headers().iter().any(|h| h == ("X-Tenant", "7"));
    // Out of dialog: REGISTER, MESSAGE, INVITE.
    let now = h.now;
    h.ua.register(now, 600).unwrap();
    h.ua.message(now, "bob", "text/plain", "hi", &[]).unwrap();
    h.drain();
    let (out_id, invite) = h.call("bob", CallOptions::default());
    let sent = requests(&h.sent);
    assert_eq!(sent.len(), 3);
    assert!(sent.iter().all(tenant), "{sent:?}");
    // Our answer to bob's call carries the application's header, not the UA-wide one.
    let id = ringing(&mut h, OFFER);
    let now = h.now;
    let bad = sansip_core::ua::AnswerOptions::default().header("Bad Name", "x");
    assert_eq!(
        h.ua.answer_with(now, id, FakeSdp::new("alice"), bad),
        Err(UaError::InvalidHeader("Bad Name".into()))
    );
    let options = sansip_core::ua::AnswerOptions::default().header("X-Agent", "42");
    h.ua.answer_with(now, id, FakeSdp::new("alice"), options)
        .unwrap();
    let ok = responses(&h.drain()).remove(0);
    assert_eq!(ok.status().code(), 200);
    assert!(ok.headers().iter().any(|h| h == ("X-Agent", "42")));
    let tag = ok.to().unwrap().tag().unwrap().to_string();
    h.feed(in_dialog("ACK", 10, &tag, "", ""));
    // In the dialog: INFO and BYE carry it too; the ACK for our own call does not.
    let now = h.now;
    h.ua.send_info(now, id, "application/x-app", "ping")
        .unwrap();
    let info = requests(&h.drain()).remove(0);
    assert!(tenant(&info));
    h.feed_response(&Response::from_request(&info, StatusCode::new(200)));
    h.ua.hangup(now, id).unwrap();
    let bye = requests(&h.drain()).remove(0);
    assert_eq!(*bye.method(), Method::Bye);
    assert!(tenant(&bye));
    let msgs = h.feed_response(&answer_from(&invite, 200, "bob9"));
    let ack = requests(&msgs).remove(0);
    assert_eq!(*ack.method(), Method::Ack);
    assert!(!tenant(&ack));
    assert!(h.ua.is_established(out_id));
}

#[test]
fn the_gruu_the_registrar_grants_is_our_contact_in_calls() {
    let mut h = Harness::alice();
    let now = h.now;
    let options = sansip_core::ua::RegisterOptions::new(600)
        .outbound("urn:uuid:00000000-0000-1000-8000-000000000001", 1);
    h.ua.register_with(now, options).unwrap();
    let register = requests(&h.drain()).remove(0);
    let contact = register.headers().get(HeaderName::Contact).unwrap();
    let gruu = "sip:alice@example.com;gr=urn:uuid:00000000-0000-1000-8000-000000000001";
    let mut ok = Response::from_request(&register, StatusCode::new(200));
    ok.set_to_tag("reg1");
    ok.headers_mut().push(
        HeaderName::Contact,
        &format!("{contact};expires=600;pub-gruu=\"{gruu}\""),
    );
    h.feed_response(&ok);
    assert!(h.events.iter().any(|e| matches!(
        e,
        Event::Registered { gruu: Some(g), .. } if g == gruu
    )));
    // Our INVITE and our 2xx name the GRUU as the remote target.
    let (_, invite) = h.call("bob", CallOptions::default());
    assert_eq!(
        invite.headers().get(HeaderName::Contact),
        Some(format!("<{gruu}>").as_str())
    );
    let (_, tag) = answered_incoming(&mut h);
    let ok = responses(&h.sent)
        .into_iter()
        .find(|r| r.status().code() == 200 && r.to().unwrap().tag() == Some(tag.as_str()))
        .unwrap();
    assert_eq!(
        ok.headers().get(HeaderName::Contact),
        Some(format!("<{gruu}>").as_str())
    );
    // Once the binding is gone, the flow's own address is the Contact again.
    let now = h.now;
    h.ua.unregister(now, false).unwrap();
    let unregister = requests(&h.drain()).remove(0);
    assert_ne!(unregister.headers().get(HeaderName::Contact), Some(gruu));
    let mut ok = Response::from_request(&unregister, StatusCode::new(200));
    ok.set_to_tag("reg1");
    h.feed_response(&ok);
    let (_, invite) = h.call("carol", CallOptions::default());
    assert!(
        invite
            .headers()
            .get(HeaderName::Contact)
            .is_some_and(|c| c.contains("192.0.2.10"))
    );
}

const VIDEO_OFFER: &str = "v=0\r\no=bob 1 2 IN IP4 192.0.2.77\r\ns=-\r\nc=IN IP4 192.0.2.77\r\n\
t=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendrecv\r\nm=video 5000 RTP/AVP 96\r\na=sendrecv\r\n";

/// Bob, whose INVITE allows UPDATE, calls alice; she answers and he ACKs.
fn established_with_update(h: &mut Harness) -> (CallHandle, String) {
    let invite = incoming_invite("z9hG4bKinv", "c1@bob", OFFER).replace(
        "CSeq: 10 INVITE\r\n",
        "CSeq: 10 INVITE\r\nAllow: INVITE, ACK, BYE, CANCEL, UPDATE\r\n",
    );
    let id = ringing_with(h, invite);
    let now = h.now;
    h.ua.answer(now, id, FakeSdp::new("alice")).unwrap();
    let ok = responses(&h.drain()).remove(0);
    let tag = ok.to().unwrap().tag().unwrap().to_string();
    h.feed(in_dialog("ACK", 10, &tag, "", ""));
    (id, tag)
}

fn renegotiated(h: &Harness) -> Vec<Originator> {
    h.events
        .iter()
        .filter_map(|e| match e {
            Event::Renegotiated { originator, .. } => Some(*originator),
            _ => None,
        })
        .collect()
}

fn answered_with(req: &Request, code: u16, body: &str) -> Response {
    let mut r = Response::from_request(req, StatusCode::new(code));
    if !body.is_empty() {
        r.set_body("application/sdp", Bytes::copy_from_slice(body.as_bytes()));
    }
    r
}

#[test]
fn our_renegotiation_goes_by_update_or_reinvite_and_a_refusal_leaves_the_call_as_it_was() {
    use sansip_core::ua::OfferMethod;
    let mut h = Harness::alice();
    let (id, _) = established_with_update(&mut h);
    let now = h.now;
    // The application adds video and offers it by UPDATE, which the peer allows.
    h.ua.sdp_handler_mut(id).unwrap().set_video(true);
    h.ua.renegotiate(now, id, OfferMethod::Update).unwrap();
    let update = requests(&h.drain()).remove(0);
    assert_eq!(*update.method(), Method::Update);
    assert!(String::from_utf8_lossy(update.body()).contains("m=video 51372"));
    h.feed_response(&answered_with(&update, 200, VIDEO_OFFER));
    assert_eq!(renegotiated(&h), [Originator::Local]);
    assert!(h.ua.sdp_handler(id).unwrap().has_video());
    // Dropping it by re-INVITE: refused, the call keeps its video and nothing else moves.
    h.ua.sdp_handler_mut(id).unwrap().set_video(false);
    h.ua.renegotiate(now, id, OfferMethod::Invite).unwrap();
    let reinvite = requests(&h.drain()).remove(0);
    assert_eq!(*reinvite.method(), Method::Invite);
    assert!(String::from_utf8_lossy(reinvite.body()).contains("m=video 0"));
    h.feed_response(&answered_with(&reinvite, 488, ""));
    assert!(
        h.events
            .iter()
            .any(|e| matches!(e, Event::RenegotiationFailed { status: 488, .. }))
    );
    assert!(h.ua.sdp_handler(id).unwrap().has_video());
    assert!(!h.ua.hold_state(id).unwrap().local);
    // An UPDATE the peer turns out not to take goes again as a re-INVITE (RFC 3311 §5.1).
    h.ua.renegotiate(now, id, OfferMethod::Update).unwrap();
    let update = requests(&h.drain()).remove(0);
    assert_eq!(*update.method(), Method::Update);
    let msgs = h.feed_response(&answered_with(&update, 501, ""));
    let reinvite = requests(&msgs).remove(0);
    assert_eq!(*reinvite.method(), Method::Invite);
    assert!(String::from_utf8_lossy(reinvite.body()).contains("m=video 0"));
    let msgs = h.feed_response(&answered_with(&reinvite, 200, OFFER));
    assert_eq!(*requests(&msgs)[0].method(), Method::Ack);
    assert_eq!(renegotiated(&h), [Originator::Local, Originator::Local]);
    assert!(!h.ua.sdp_handler(id).unwrap().has_video());
    // Glare: a 491 sends the same offer again after the §14.1 wait.
    h.ua.sdp_handler_mut(id).unwrap().set_video(true);
    h.ua.renegotiate(now, id, OfferMethod::Invite).unwrap();
    let reinvite = requests(&h.drain()).remove(0);
    h.feed_response(&answered_with(&reinvite, 491, ""));
    let again = requests(&h.advance(Duration::from_secs(5)));
    assert_eq!(*again[0].method(), Method::Invite);
    assert!(String::from_utf8_lossy(again[0].body()).contains("m=video 51372"));
}

#[test]
fn the_peers_offer_that_changes_the_media_is_reported_and_a_hold_is_not() {
    let mut h = Harness::alice();
    let (id, tag) = established_with_update(&mut h);
    let add_video = in_dialog(
        "INVITE",
        11,
        &tag,
        "Content-Type: application/sdp\r\n",
        VIDEO_OFFER,
    );
    let ok = responses(&h.feed(add_video));
    let ok = ok.iter().find(|r| r.status().code() >= 200).unwrap();
    assert_eq!(ok.status().code(), 200);
    // Alice has no camera: the video section is refused with port 0.
    assert!(String::from_utf8_lossy(ok.body()).contains("m=video 0"));
    h.feed(in_dialog("ACK", 11, &tag, "", ""));
    assert_eq!(renegotiated(&h), [Originator::Remote]);
    // A hold changes direction only.
    let hold = VIDEO_OFFER.replace("a=sendrecv", "a=sendonly");
    let hold = in_dialog(
        "INVITE",
        12,
        &tag,
        "Content-Type: application/sdp\r\n",
        &hold,
    );
    let ok = responses(&h.feed(hold));
    assert_eq!(ok.last().unwrap().status().code(), 200);
    h.feed(in_dialog("ACK", 12, &tag, "", ""));
    assert!(h.ua.hold_state(id).unwrap().remote);
    assert_eq!(renegotiated(&h), [Originator::Remote]);
}

#[test]
fn asked_first_the_application_accepts_or_refuses_the_peers_new_media() {
    let mut config = UaConfig::new("sip:alice@example.com");
    config.reoffers = sansip_core::ua::ReofferPolicy::Ask;
    let mut h = Harness::new(config);
    let (id, tag) = established_with_update(&mut h);
    let now = h.now;
    assert!(matches!(
        h.ua.accept_reoffer(now, id),
        Err(UaError::InvalidState(_))
    ));
    let sdp = "Content-Type: application/sdp\r\n";
    // The peer adds video: nothing final goes until the application says.
    let out = responses(&h.feed(in_dialog("INVITE", 11, &tag, sdp, VIDEO_OFFER)));
    assert!(out.iter().all(|r| r.status().code() < 200));
    assert!(h.events.iter().any(|e| matches!(
        e,
        Event::ReofferReceived { offer, .. } if offer.starts_with(b"v=0")
    )));
    // Meanwhile another offer meets 500 with Retry-After (RFC 3311 §5.2).
    let r = responses(&h.feed(in_dialog("UPDATE", 12, &tag, sdp, OFFER)))
        .into_iter()
        .find(|r| r.cseq().is_ok_and(|c| c.method == "UPDATE"))
        .unwrap();
    assert_eq!(r.status().code(), 500);
    assert!(r.headers().contains(HeaderName::RetryAfter));
    h.ua.sdp_handler_mut(id).unwrap().set_video(true);
    h.ua.accept_reoffer(now, id).unwrap();
    let ok = responses(&h.drain()).pop().unwrap();
    assert_eq!(ok.status().code(), 200);
    assert!(String::from_utf8_lossy(ok.body()).contains("m=video 51372"));
    h.feed(in_dialog("ACK", 11, &tag, "", ""));
    assert!(h.ua.sdp_handler(id).unwrap().has_video());
    // Dropping the video by UPDATE: refused by the application with its status.
    let r = h.feed(in_dialog("UPDATE", 13, &tag, sdp, OFFER));
    assert!(responses(&r).iter().all(|r| r.status().code() < 200));
    assert_eq!(
        h.ua.refuse_reoffer(now, id, Some(200)),
        Err(UaError::InvalidStatus(200))
    );
    h.ua.refuse_reoffer(now, id, None).unwrap();
    assert_eq!(responses(&h.drain())[0].status().code(), 488);
    assert!(h.ua.sdp_handler(id).unwrap().has_video());
    // Left unanswered, an offer is refused with 488 after 16·T1.
    let r = h.feed(in_dialog("UPDATE", 14, &tag, sdp, OFFER));
    assert!(responses(&r).is_empty());
    let out = responses(&h.advance(Duration::from_secs(9)));
    assert_eq!(out[0].status().code(), 488);
    assert!(h.ua.is_established(id));
    assert_eq!(
        renegotiated(&h),
        [Originator::Remote],
        "the accepted one only"
    );
}

#[test]
fn media_follows_the_fork_that_answers_not_the_one_that_gave_early_media() {
    use sansip_core::session::Direction;
    let mut h = Harness::alice();
    let (id, invite) = h.call("bob", CallOptions::default());
    // Fork A plays early media (a sendrecv answer in its 183)…
    let mut progress = answer_from(&invite, 183, "fork-a");
    progress.set_body("application/sdp", Bytes::from_static(OFFER.as_bytes()));
    h.feed_response(&progress);
    assert_eq!(
        h.ua.sdp_handler(id).unwrap().remote_direction(),
        Some(Direction::SendRecv)
    );
    // …and fork B answers with its own description: the media moves to B.
    let mut ok = answer_from(&invite, 200, "fork-b");
    let recvonly = OFFER.replace("a=sendrecv", "a=recvonly");
    ok.set_body("application/sdp", Bytes::from(recvonly));
    let ack = requests(&h.feed_response(&ok)).remove(0);
    assert_eq!(*ack.method(), Method::Ack);
    assert_eq!(ack.to().unwrap().tag(), Some("fork-b"));
    assert!(h.ua.is_established(id));
    assert_eq!(
        h.ua.sdp_handler(id).unwrap().remote_direction(),
        Some(Direction::RecvOnly)
    );
    let now = h.now;
    h.ua.hangup(now, id).unwrap();
    let bye = requests(&h.drain()).remove(0);
    assert_eq!(bye.uri(), "sip:fork-b@192.0.2.77:5060");
}

// ---- Subscriptions at the wire level (RFC 6665) ------------------------------------------

fn notify_for(subscribe: &Request, from_tag: &str, seq: u32, state: &str, body: &str) -> String {
    let h = subscribe.headers();
    let our_tag = h.from_tag().unwrap().unwrap();
    let content = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/simple-message-summary\r\n".into()
    };
    format!(
        "NOTIFY sip:alice@192.0.2.10:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.77:5060;branch=z9hG4bKn{from_tag}{seq}\r\n\
Max-Forwards: 70\r\n\
From: <sip:bob@example.com>;tag={from_tag}\r\n\
To: <sip:alice@example.com>;tag={our_tag}\r\n\
Call-ID: {}\r\n\
CSeq: {seq} NOTIFY\r\n\
Contact: <sip:{from_tag}@192.0.2.77:5060>\r\n\
Event: message-summary\r\n\
Subscription-State: {state}\r\n\
{content}Content-Length: {}\r\n\r\n{body}",
        h.call_id().unwrap(),
        body.len()
    )
}

#[test]
fn a_dialog_a_notify_made_without_a_route_takes_the_2xx_record_route() {
    // A proxy that record-routes the SUBSCRIBE but not its NOTIFY (RFC 6665 §4.3 says it
    // must): the NOTIFY overtakes the 2xx and makes the dialog with no route; the
    // unsubscribe must still go through that proxy, as Kamailio answers 404 otherwise.
    for (notify_route, expected) in [
        (None, "<sip:proxy.example.com;lr>"),
        // A route the NOTIFY gave is the dialog's: the 2xx does not change it.
        (
            Some("<sip:edge.example.com;lr>"),
            "<sip:edge.example.com;lr>",
        ),
    ] {
        let mut h = Harness::alice();
        let now = h.now;
        let options = sansip_core::ua::SubscribeOptions::new("message-summary").expires(600);
        let sub = h.ua.subscribe(now, "bob", options).unwrap();
        let subscribe = requests(&h.drain()).remove(0);
        let mut notify = notify_for(&subscribe, "nA", 1, "active;expires=600", "");
        if let Some(rr) = notify_route {
            notify = notify.replace(
                "Max-Forwards",
                &format!("Record-Route: {rr}\r\nMax-Forwards"),
            );
        }
        assert_eq!(responses(&h.feed(notify))[0].status().code(), 200);
        let mut ok = Response::from_request(&subscribe, StatusCode::new(200));
        ok.set_to_tag("nA");
        ok.headers_mut()
            .push(HeaderName::RecordRoute, "<sip:proxy.example.com;lr>");
        ok.headers_mut().push(HeaderName::Expires, "600");
        h.feed_response(&ok);
        let now = h.now;
        h.ua.unsubscribe(now, sub).unwrap();
        let unsubscribe = requests(&h.drain()).remove(0);
        assert_eq!(unsubscribe.headers().get(HeaderName::Expires), Some("0"));
        assert_eq!(unsubscribe.uri(), "sip:nA@192.0.2.77:5060");
        assert_eq!(
            unsubscribe.headers().get(HeaderName::Route),
            Some(expected),
            "{notify_route:?}"
        );
    }
}

fn subscription_events(h: &Harness) -> Vec<Event> {
    h.events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Notified { .. }
                    | Event::SubscriptionEnded { .. }
                    | Event::SubscriptionRequested { .. }
            )
        })
        .cloned()
        .collect()
}

#[test]
fn a_notify_before_the_2xx_makes_the_dialog_and_another_forks_is_refused() {
    use sansip_core::subscription::SubState;
    let mut h = Harness::alice();
    let now = h.now;
    let options = sansip_core::ua::SubscribeOptions::new("message-summary").expires(600);
    let sub = h.ua.subscribe(now, "bob", options).unwrap();
    let subscribe = requests(&h.drain()).remove(0);
    assert_eq!(*subscribe.method(), Method::Subscribe);
    assert_eq!(
        subscribe.headers().get(HeaderName::Event),
        Some("message-summary")
    );
    assert_eq!(subscribe.headers().get(HeaderName::Expires), Some("600"));
    // The NOTIFY overtakes the 2xx (RFC 6665 §4.1.2.4).
    let body = "Messages-Waiting: yes\r\nVoice-Message: 1/0\r\n";
    let ok = responses(&h.feed(notify_for(&subscribe, "nA", 1, "active;expires=600", body)));
    assert_eq!(ok[0].status().code(), 200);
    // A wrong package, or no Subscription-State, is refused.
    let wrong = notify_for(&subscribe, "nA", 2, "active", "")
        .replace("Event: message-summary", "Event: presence");
    assert_eq!(responses(&h.feed(wrong))[0].status().code(), 489);
    let stateless =
        notify_for(&subscribe, "nA", 3, "active", "").replace("Subscription-State: active\r\n", "");
    assert_eq!(responses(&h.feed(stateless))[0].status().code(), 400);
    // Another fork's notifier: refused, the first one's subscription goes on.
    let fork = notify_for(&subscribe, "nB", 1, "active;expires=600", body);
    assert_eq!(responses(&h.feed(fork))[0].status().code(), 481);
    let mut twohundred = Response::from_request(&subscribe, StatusCode::new(200));
    twohundred.set_to_tag("nA");
    twohundred.headers_mut().push(HeaderName::Expires, "600");
    h.feed_response(&twohundred);
    assert_eq!(h.ua.subscription_state(sub), Ok(SubState::Active));
    // The refresh goes inside the dialog the NOTIFY made, to its Contact.
    let mut refresh = None;
    for _ in 0..43 {
        let out = requests(&h.advance(Duration::from_secs(10)));
        refresh = out.into_iter().find(|r| *r.method() == Method::Subscribe);
        if refresh.is_some() {
            break;
        }
    }
    let refresh = refresh.expect("refreshed before 70 % of 600 s");
    assert_eq!(refresh.uri(), "sip:nA@192.0.2.77:5060");
    assert_eq!(refresh.to().unwrap().tag(), Some("nA"));
    let mut ok = Response::from_request(&refresh, StatusCode::new(200));
    ok.headers_mut().push(HeaderName::Expires, "600");
    h.feed_response(&ok);
    // The notifier ends it as deactivated: a new subscription starts at once (RFC 6665
    // §4.1.3), out of any dialog, to the first target.
    let end = notify_for(&subscribe, "nA", 4, "terminated;reason=deactivated", "");
    let out = h.feed(end);
    assert_eq!(responses(&out)[0].status().code(), 200);
    let mut out = requests(&out);
    out.extend(requests(&h.advance(Duration::from_millis(10))));
    let again = out
        .iter()
        .find(|r| *r.method() == Method::Subscribe)
        .unwrap();
    assert_eq!(again.uri(), "sip:bob@example.com");
    assert_eq!(again.to().unwrap().tag(), None);
    assert_eq!(
        again.headers().call_id().ok(),
        subscribe.headers().call_id().ok()
    );
    assert!(again.cseq().unwrap().seq > refresh.cseq().unwrap().seq);
    let mut ok = Response::from_request(again, StatusCode::new(200));
    ok.set_to_tag("nC");
    ok.headers_mut()
        .push(HeaderName::Contact, "<sip:nC@192.0.2.77:5060>");
    h.feed_response(&ok);
    let active = notify_for(&subscribe, "nC", 1, "active;expires=600", body);
    assert_eq!(responses(&h.feed(active))[0].status().code(), 200);
    assert_eq!(h.ua.subscription_state(sub), Ok(SubState::Active));
    // Rejected: over for good.
    let reason = "terminated;reason=rejected;retry-after=30";
    let end = notify_for(&subscribe, "nC", 2, reason, "");
    assert_eq!(responses(&h.feed(end))[0].status().code(), 200);
    let ended: Vec<_> = subscription_events(&h)
        .into_iter()
        .filter_map(|e| match e {
            Event::SubscriptionEnded {
                reason,
                retry_after,
                ..
            } => Some((reason, retry_after)),
            _ => None,
        })
        .collect();
    assert_eq!(ended, [(Some("rejected".to_string()), Some(30))]);
    assert!(h.ua.subscription_state(sub).is_err());
}

#[test]
fn as_notifier_a_subscription_without_refresh_ends_with_a_timeout_notify() {
    let mut config = UaConfig::new("sip:alice@example.com");
    config.event_packages = vec!["message-summary".into()];
    let mut h = Harness::new(config);
    let subscribe = "SUBSCRIBE sip:alice@192.0.2.10:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.77:5060;branch=z9hG4bKsub1\r\n\
Record-Route: <sip:192.0.2.1;lr>\r\n\
Max-Forwards: 70\r\n\
From: <sip:bob@example.com>;tag=bobsub\r\n\
To: <sip:alice@example.com>\r\n\
Call-ID: s1@bob\r\n\
CSeq: 1 SUBSCRIBE\r\n\
Contact: <sip:bob@192.0.2.77:5060>\r\n\
Event: message-summary\r\n\
Expires: 60\r\n\
Content-Length: 0\r\n\r\n";
    let out = h.feed(subscribe);
    let ok = responses(&out).remove(0);
    assert_eq!(ok.status().code(), 200);
    assert_eq!(ok.headers().get(HeaderName::Expires), Some("60"));
    // The route set comes back (RFC 3261 §12.1.1), and our NOTIFYs follow it.
    assert_eq!(
        ok.headers().get(HeaderName::RecordRoute),
        Some("<sip:192.0.2.1;lr>")
    );
    let our_tag = ok.to().unwrap().tag().unwrap().to_string();
    let notify = requests(&out).remove(0);
    assert_eq!(*notify.method(), Method::Notify);
    assert_eq!(notify.to().unwrap().tag(), Some("bobsub"));
    assert_eq!(
        notify.headers().get(HeaderName::Route),
        Some("<sip:192.0.2.1;lr>")
    );
    assert_eq!(notify.headers().get_all(HeaderName::Contact).count(), 1);
    assert_eq!(notify.from().unwrap().tag(), Some(our_tag.as_str()));
    assert!(
        notify
            .headers()
            .get(HeaderName::SubscriptionState)
            .is_some_and(|s| s.starts_with("pending;expires="))
    );
    h.feed_response(&Response::from_request(&notify, StatusCode::new(200)));
    let sub = match subscription_events(&h).remove(0) {
        Event::SubscriptionRequested {
            subscription,
            expires,
            ..
        } => {
            assert_eq!(expires, 60);
            subscription
        }
        e => panic!("{e:?}"),
    };
    // The application says active, with a body.
    let now = h.now;
    let body = b"Messages-Waiting: no\r\n";
    h.ua.notify(
        now,
        sub,
        sansip_core::subscription::SubState::Active,
        Some(("application/simple-message-summary", body)),
    )
    .unwrap();
    let active = requests(&h.drain()).remove(0);
    assert!(
        active
            .headers()
            .get(HeaderName::SubscriptionState)
            .is_some_and(|s| s.starts_with("active;expires="))
    );
    assert_eq!(&active.body()[..], body);
    h.feed_response(&Response::from_request(&active, StatusCode::new(200)));
    // No refresh within 60 s: a final NOTIFY, with the last body.
    let out = requests(&h.advance(Duration::from_secs(61)));
    let last = out.iter().find(|r| *r.method() == Method::Notify).unwrap();
    assert_eq!(
        last.headers().get(HeaderName::SubscriptionState),
        Some("terminated;reason=timeout")
    );
    assert_eq!(&last.body()[..], body);
    assert!(subscription_events(&h).iter().any(|e| matches!(
        e,
        Event::SubscriptionEnded { reason: Some(r), .. } if r == "timeout"
    )));
    // A SUBSCRIBE for a package not served: 489 with the ones that are.
    let presence = subscribe
        .replace("Event: message-summary", "Event: presence")
        .replace("z9hG4bKsub1", "z9hG4bKsub2")
        .replace("s1@bob", "s2@bob");
    let r = responses(&h.feed(presence)).remove(0);
    assert_eq!(r.status().code(), 489);
    assert_eq!(
        r.headers().get(HeaderName::AllowEvents),
        Some("message-summary")
    );
}

#[test]
fn an_invite_replacing_no_call_of_ours_gets_481() {
    let mut h = Harness::alice();
    let (id, tag) = answered_incoming(&mut h);
    h.feed(in_dialog("ACK", 10, &tag, "", ""));
    let replacing = |branch: &str, call_id: &str, value: &str| {
        incoming_invite(branch, call_id, OFFER).replace(
            "CSeq: 10 INVITE\r\n",
            &format!("CSeq: 10 INVITE\r\nReplaces: {value}\r\n"),
        )
    };
    let status = |out: Vec<Message>| {
        responses(&out)
            .into_iter()
            .map(|r| r.status().code())
            .find(|c| *c >= 200)
    };
    // Wrong tags, another Call-ID, an unparsable value.
    let wrong = format!("c1@bob;to-tag={tag};from-tag=nobody");
    assert_eq!(
        status(h.feed(replacing("z9hG4bKr1", "r1@carol", &wrong))),
        Some(481)
    );
    let other = format!("c9@bob;to-tag={tag};from-tag=bob1");
    assert_eq!(
        status(h.feed(replacing("z9hG4bKr2", "r2@carol", &other))),
        Some(481)
    );
    assert_eq!(
        status(h.feed(replacing("z9hG4bKr3", "r3@carol", "c1@bob"))),
        Some(400)
    );
    // The right one rings as a call replacing ours.
    let right = format!("c1@bob;to-tag={tag};from-tag=bob1");
    h.feed(replacing("z9hG4bKr4", "r4@carol", &right));
    assert!(h.events.iter().any(|e| matches!(
        e,
        Event::IncomingCall { replaces: Some(r), .. } if *r == id
    )));
}

#[test]
fn an_unsolicited_voicemail_notify_is_taken_and_any_other_gets_481() {
    // Asterisk's unsolicited MWI: a NOTIFY out of any dialog, to a phone that never
    // subscribed.
    let mut h = Harness::alice();
    let notify = |branch: &str, event: &str, body: &str| {
        format!(
            "NOTIFY sip:alice@192.0.2.10:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.77:5060;branch={branch}\r\n\
Max-Forwards: 70\r\n\
From: <sip:asterisk@example.com>;tag=vm1\r\n\
To: <sip:alice@example.com>\r\n\
Call-ID: {branch}@vm\r\n\
CSeq: 102 NOTIFY\r\n\
Event: {event}\r\n\
Subscription-State: active\r\n\
Content-Type: application/simple-message-summary\r\n\
Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let status = |out: Vec<Message>| {
        responses(&out)
            .into_iter()
            .map(|r| r.status().code())
            .find(|c| *c >= 200)
    };
    let body = "Messages-Waiting: yes\r\nMessage-Account: sip:*97@example.com\r\nVoice-Message: 3/1 (1/0)\r\n";
    assert_eq!(
        status(h.feed(notify("z9hG4bKmwi1", "message-summary", body))),
        Some(200)
    );
    let got = h.events.iter().find_map(|e| match e {
        Event::UnsolicitedNotify {
            from,
            package,
            body,
            ..
        } => Some((from.clone(), package.clone(), body.clone())),
        _ => None,
    });
    let (from, package, body) = got.expect("the application hears it");
    assert!(from.contains("asterisk@example.com"));
    assert_eq!(package, "message-summary");
    let mwi = MessageSummary::parse(&body).unwrap();
    assert_eq!(
        mwi.class("voice-message").map(|c| (c.new, c.old)),
        Some((3, 1))
    );
    // Presence nobody asked for matches no subscription.
    assert_eq!(
        status(h.feed(notify("z9hG4bKmwi2", "presence", ""))),
        Some(481)
    );
}
