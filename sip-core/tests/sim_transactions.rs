//! The RFC 3261 §17 transaction machines, run in the simulator on a virtual clock.
//!
//! Each peer is a `TransactionLayer` plus a scripted transaction user: the client sends what
//! the test asks, the server answers every new request with a fixed script. Timings are
//! asserted exactly: the clock only moves when the simulator jumps it to a deadline.

#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use sansip_core::ids::IdGenerator;
use sansip_core::message::{HeaderName, Message, Method, Request, Response, StatusCode};
use sansip_core::sim::{LinkConfig, Network, Node, Sim};
use sansip_core::transaction::{
    RequestOutcome, ResponseOutcome, TimerConfig, TransactionLayer, TxEvent, TxId, TxOutput,
    TxState, TxTimer,
};
use sansip_core::transport::{Flow, FlowId, Transport};

/// The origin of virtual time: any instant works, the simulation only adds to it.
#[allow(clippy::disallowed_methods)]
fn origin() -> Instant {
    Instant::now()
}

const T1: Duration = Duration::from_millis(500);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// How a server peer answers each new request.
#[derive(Debug, Clone, Copy)]
struct Script {
    /// Sent at once for INVITE (the layer already sent 100 Trying).
    ringing: bool,
    /// The final response, or `None` to never answer.
    final_code: Option<u16>,
}

/// A transaction layer and a scripted transaction user at one address.
struct Peer {
    addr: SocketAddr,
    peer: SocketAddr,
    flow: Flow,
    layer: TransactionLayer,
    script: Script,
    out: VecDeque<(SocketAddr, Bytes)>,
    start: Instant,
    /// (time since start, first line) of every datagram this peer sent.
    sent: Vec<(Duration, String)>,
    /// The same datagrams, whole.
    wire: Vec<(Duration, Bytes)>,
    /// Responses passed up, with the time.
    passed: Vec<(Duration, TxId, u16)>,
    /// Requests passed up: (time, method, outcome).
    requests: Vec<(Duration, String, RequestOutcome)>,
    events: Vec<(Duration, TxEvent)>,
    /// Client transactions: (id, started at, whether an INVITE's).
    started: Vec<(TxId, Duration, bool)>,
    ids: IdGenerator,
    now: Instant,
    /// 2xx responses to INVITE this UAS core retransmits until their ACK arrives
    /// (RFC 3261 §13.3.1.4): (Call-ID, bytes, next send, interval, give up at).
    pending_2xx: Vec<(String, Bytes, Instant, Duration, Instant)>,
}

impl Peer {
    fn new(
        port: u16,
        peer_port: u16,
        transport: Transport,
        script: Script,
        start: Instant,
    ) -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            peer: SocketAddr::from(([127, 0, 0, 1], peer_port)),
            flow: Flow {
                id: FlowId(u64::from(peer_port)),
                transport,
            },
            layer: TransactionLayer::new(TimerConfig::default()),
            script,
            out: VecDeque::new(),
            start,
            sent: Vec::new(),
            wire: Vec::new(),
            passed: Vec::new(),
            requests: Vec::new(),
            events: Vec::new(),
            started: Vec::new(),
            ids: IdGenerator::new(u64::from(port)),
            now: start,
            pending_2xx: Vec::new(),
        }
    }

    fn at(&self) -> Duration {
        self.now - self.start
    }

    /// A request as a UAC core would build it (RFC 3261 §8.1.1).
    fn request(&mut self, method: Method, cseq: u32) -> Request {
        let (branch, tag, call_id) = (self.ids.branch(), self.ids.tag(), self.ids.call_id());
        let mut r = Request::new(method.clone(), "sip:bob@127.0.0.1");
        let h = r.headers_mut();
        let via = format!(
            "SIP/2.0/{} {};branch={branch}",
            self.flow.transport, self.addr
        );
        h.push(HeaderName::Via, &via);
        h.push(HeaderName::MaxForwards, "70");
        h.push(
            HeaderName::From,
            &format!("<sip:alice@127.0.0.1>;tag={tag}"),
        );
        h.push(HeaderName::To, "<sip:bob@127.0.0.1>");
        h.push(HeaderName::CallId, &call_id);
        h.push(HeaderName::CSeq, &format!("{cseq} {method}"));
        r
    }

    fn send(&mut self, method: Method) -> TxId {
        let invite = method == Method::Invite;
        let req = self.request(method, 1);
        let tx = self.layer.send_request(self.now, self.flow, req).unwrap();
        self.started.push((tx, self.at(), invite));
        self.drain();
        tx
    }

    fn drain(&mut self) {
        while let Some(o) = self.layer.poll_output() {
            match o {
                TxOutput::Transmit { bytes, .. } => self.push_out(bytes),
                TxOutput::Event(e) => self.events.push((self.at(), e)),
            }
        }
    }

    fn push_out(&mut self, bytes: Bytes) {
        let line = String::from_utf8_lossy(&bytes)
            .lines()
            .next()
            .unwrap_or("")
            .to_string();
        self.sent.push((self.at(), line));
        self.wire.push((self.at(), bytes.clone()));
        self.out.push_back((self.peer, bytes));
    }

    fn on_request(&mut self, req: Request) {
        let method = req.method().to_string();
        let outcome = self
            .layer
            .handle_request(self.now, self.flow, req.clone())
            .unwrap();
        self.requests.push((self.at(), method, outcome));
        let tx = match outcome {
            RequestOutcome::New(tx) | RequestOutcome::Cancel { tx, .. } => tx,
            RequestOutcome::Ack => {
                let call_id = req.call_id().unwrap().to_string();
                self.pending_2xx.retain(|p| p.0 != call_id);
                return;
            }
            RequestOutcome::Absorbed => return,
        };
        if *req.method() == Method::Invite && self.script.ringing {
            let mut ringing = Response::from_request(&req, StatusCode::new(180));
            ringing.set_to_tag("b1");
            self.layer.respond(self.now, tx, &ringing).unwrap();
        }
        if let Some(code) = self.script.final_code {
            let mut resp = Response::from_request(&req, StatusCode::new(code));
            resp.set_to_tag("b1");
            self.layer.respond(self.now, tx, &resp).unwrap();
            if *req.method() == Method::Invite
                && (200..300).contains(&code)
                && !self.flow.transport.is_reliable()
            {
                let call_id = req.call_id().unwrap().to_string();
                self.pending_2xx.push((
                    call_id,
                    resp.to_bytes(),
                    self.now + T1,
                    T1,
                    self.now + 64 * T1,
                ));
            }
        }
    }

    fn on_response(&mut self, resp: Response) {
        match self.layer.handle_response(self.now, &resp) {
            ResponseOutcome::Pass(tx) => {
                let code = resp.status().code();
                self.passed.push((self.at(), tx, code));
                if (200..300).contains(&code) && resp.cseq().unwrap().method == "INVITE" {
                    // The 2xx ACK is the transaction user's, on a new branch (RFC 3261 §13.2.2.4).
                    let mut ack = self.request(Method::Ack, resp.cseq().unwrap().seq);
                    let to = resp.headers().get(HeaderName::To).unwrap().to_string();
                    ack.headers_mut().set(HeaderName::To, &to);
                    self.push_out(ack.to_bytes());
                }
            }
            ResponseOutcome::Absorbed | ResponseOutcome::Stray => {}
        }
    }

    fn sent_times(&self, prefix: &str) -> Vec<Duration> {
        self.sent
            .iter()
            .filter(|(_, l)| l.starts_with(prefix))
            .map(|(t, _)| *t)
            .collect()
    }
}

impl Node for Peer {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn handle_datagram(&mut self, now: Instant, _from: SocketAddr, bytes: Bytes) {
        self.now = now;
        match Message::parse(bytes).unwrap() {
            Message::Request(r) => self.on_request(r),
            Message::Response(r) => self.on_response(r),
        }
        self.drain();
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        self.layer.handle_timeout(now);
        self.drain();
        let mut resend = Vec::new();
        self.pending_2xx
            .retain_mut(|(_, bytes, next, interval, give_up)| {
                if *give_up <= now {
                    return false;
                }
                if *next <= now {
                    resend.push(bytes.clone());
                    *interval = (*interval * 2).min(Duration::from_secs(4));
                    *next = now + *interval;
                }
                true
            });
        for b in resend {
            self.push_out(b);
        }
    }

    fn poll_transmit(&mut self) -> Option<(SocketAddr, Bytes)> {
        self.out.pop_front()
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let retransmit = self.pending_2xx.iter().map(|p| p.2.min(p.4)).min();
        match (self.layer.poll_timeout(), retransmit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

const SILENT: Script = Script {
    ringing: false,
    final_code: None,
};

fn secs(list: &[u64]) -> Vec<Duration> {
    list.iter().map(|&m| ms(m)).collect()
}

/// A client whose peer never answers: the address has no node, so every datagram is lost.
fn unanswered(transport: Transport, method: Method) -> (Sim, Peer) {
    let mut sim = Sim::new(origin(), Network::new(1, LinkConfig::default()));
    let mut a = Peer::new(5060, 5999, transport, SILENT, sim.now());
    a.send(method);
    assert!(sim.run_to_quiet(&mut [&mut a], Duration::from_secs(120)));
    (sim, a)
}

#[test]
fn invite_client_doubles_timer_a_then_gives_up_at_timer_b() {
    let (_, a) = unanswered(Transport::Udp, Method::Invite);
    // Sent at 0, then timer A at 0.5, 1, 2, 4, 8, 16 s intervals (RFC 3261 §17.1.1.2).
    assert_eq!(
        a.sent_times("INVITE"),
        secs(&[0, 500, 1500, 3500, 7500, 15500, 31500])
    );
    assert_eq!(a.events.len(), 1);
    let (at, ev) = &a.events[0];
    assert_eq!(*at, 64 * T1, "timer B is 64·T1");
    assert!(matches!(
        ev,
        TxEvent::Timeout {
            timer: TxTimer::B,
            ..
        }
    ));
    assert!(a.layer.is_empty());
}

#[test]
fn non_invite_client_doubles_timer_e_up_to_t2_then_gives_up_at_timer_f() {
    let (_, a) = unanswered(Transport::Udp, Method::Options);
    let expect: Vec<u64> = vec![
        0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500,
    ];
    assert_eq!(
        a.sent_times("OPTIONS"),
        secs(&expect),
        "intervals cap at T2 = 4 s"
    );
    assert!(
        matches!(a.events[..], [(t, TxEvent::Timeout { timer: TxTimer::F, .. })] if t == 64 * T1)
    );
    assert!(a.layer.is_empty());
}

#[test]
fn nothing_is_retransmitted_on_a_reliable_flow() {
    for method in [Method::Invite, Method::Options] {
        let (_, a) = unanswered(Transport::Tcp, method.clone());
        assert_eq!(a.sent.len(), 1, "{method}: one send, no timer A/E");
        // Timers B and F still run: a reliable transport can lose the peer too.
        assert!(matches!(a.events[..], [(t, TxEvent::Timeout { .. })] if t == 64 * T1));
    }
}

fn pair(transport: Transport, script: Script, link: LinkConfig, seed: u64) -> (Sim, Peer, Peer) {
    let sim = Sim::new(origin(), Network::new(seed, link));
    let mut a = Peer::new(5060, 5070, transport, SILENT, sim.now());
    let mut b = Peer::new(5070, 5060, transport, script, sim.now());
    a.ids = IdGenerator::new(seed);
    b.ids = IdGenerator::new(!seed);
    (sim, a, b)
}

#[test]
fn a_provisional_response_stops_invite_retransmission_and_timer_b() {
    let script = Script {
        ringing: true,
        final_code: None,
    };
    let (mut sim, mut a, mut b) = pair(Transport::Udp, script, LinkConfig::default(), 1);
    let tx = a.send(Method::Invite);
    sim.run_until(&mut [&mut a, &mut b], Duration::from_secs(100), |_| false);
    assert_eq!(
        a.sent_times("INVITE"),
        vec![Duration::ZERO],
        "the 100 arrived before timer A"
    );
    assert_eq!(a.layer.state(tx), Some(TxState::Proceeding));
    assert!(a.events.is_empty(), "no timer B in Proceeding");
    let codes: Vec<u16> = a.passed.iter().map(|p| p.2).collect();
    assert_eq!(codes, vec![100, 180]);
}

#[test]
fn non_invite_client_in_proceeding_retransmits_every_t2() {
    // The server only ever sends 100 Trying-like provisionals: script a 100 via final None and
    // answer by hand below.
    let (mut sim, mut a, mut b) = pair(Transport::Udp, SILENT, LinkConfig::default(), 1);
    let tx = a.send(Method::Options);
    // Deliver the request, then have the server send a provisional.
    sim.run_until(&mut [&mut a, &mut b], Duration::from_secs(1), |n| {
        let _ = n;
        false
    });
    let server_tx = match b.requests[0].2 {
        RequestOutcome::New(t) => t,
        o => panic!("{o:?}"),
    };
    let req = b.layer.request(server_tx).unwrap().clone();
    let trying = Response::from_request(&req, StatusCode::new(100));
    b.layer.respond(b.now, server_tx, &trying).unwrap();
    b.drain();
    sim.run_until(&mut [&mut a, &mut b], Duration::from_secs(100), |_| false);
    assert_eq!(a.layer.state(tx), None, "timer F ended it");
    let times = a.sent_times("OPTIONS");
    // Sent at 0 and 0.5 (timer E before the 100 arrived at ~0.52)... then every T2.
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(
        gaps.iter().skip(2).all(|g| *g == ms(4000)),
        "gaps after the 100: {gaps:?}"
    );
    assert!(
        matches!(a.events[..], [(t, TxEvent::Timeout { timer: TxTimer::F, .. })] if t == 64 * T1)
    );
}

#[test]
fn server_transactions_absorb_retransmissions_and_resend_the_last_response() {
    // Drop everything the server sends for the first 2 s, so the client retransmits.
    let script = Script {
        ringing: false,
        final_code: Some(486),
    };
    let (mut sim, mut a, mut b) = pair(Transport::Udp, script, LinkConfig::default(), 1);
    sim.net.set_link(
        b.addr,
        a.addr,
        LinkConfig {
            loss: 1.0,
            ..LinkConfig::default()
        },
    );
    a.send(Method::Invite);
    sim.run_until(&mut [&mut a, &mut b], Duration::from_secs(2), |_| false);
    sim.net.set_link(b.addr, a.addr, LinkConfig::default());
    sim.run_to_quiet(&mut [&mut a, &mut b], Duration::from_secs(200));

    let outcomes: Vec<&RequestOutcome> = b.requests.iter().map(|r| &r.2).collect();
    assert!(matches!(outcomes[0], RequestOutcome::New(_)));
    assert!(
        outcomes[1..]
            .iter()
            .all(|o| matches!(o, RequestOutcome::Absorbed)),
        "retransmitted INVITEs and the ACK never reach the user: {outcomes:?}"
    );
    // Every INVITE retransmission was answered with the 486 again.
    let invites = a.sent_times("INVITE").len();
    assert!(invites >= 3);
    let finals = b.sent_times("SIP/2.0 486");
    assert!(
        finals.len() >= invites,
        "486 resent for each INVITE: {finals:?}"
    );
    // The client passed the 486 up exactly once and ACKed every copy it got.
    assert_eq!(a.passed.iter().filter(|p| p.2 == 486).count(), 1);
    assert!(a.layer.is_empty() && b.layer.is_empty());
}

#[test]
fn invite_server_retransmits_its_final_on_timer_g_until_timer_h() {
    let script = Script {
        ringing: false,
        final_code: Some(603),
    };
    let (mut sim, mut a, mut b) = pair(Transport::Udp, script, LinkConfig::default(), 1);
    // The client's ACKs (and INVITE retransmissions) never arrive; the INVITE is handed over.
    sim.net.set_link(
        a.addr,
        b.addr,
        LinkConfig {
            loss: 1.0,
            ..LinkConfig::default()
        },
    );
    a.send(Method::Invite);
    let (_, invite) = a.out.pop_front().unwrap();
    b.handle_datagram(sim.now(), a.addr, invite);
    sim.run_to_quiet(&mut [&mut a, &mut b], Duration::from_secs(200));
    let g = b.sent_times("SIP/2.0 603");
    let expect: Vec<u64> = vec![
        0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500,
    ];
    assert_eq!(g, secs(&expect), "G doubles from T1 to T2");
    assert!(
        matches!(b.events[..], [(t, TxEvent::Timeout { timer: TxTimer::H, .. })] if t == 64 * T1)
    );
    assert!(b.layer.is_empty());
}

#[test]
fn timer_lifetimes_d_i_j_k_after_the_final_response() {
    for (transport, linger) in [(Transport::Udp, true), (Transport::Tcp, false)] {
        let zero = LinkConfig {
            latency: ms(0),
            ..LinkConfig::default()
        };
        // INVITE rejected: client lingers in Completed for D, server in Confirmed for I.
        let script = Script {
            ringing: false,
            final_code: Some(486),
        };
        let (mut sim, mut a, mut b) = pair(transport, script, zero, 1);
        let c = a.send(Method::Invite);
        sim.run_until(&mut [&mut a, &mut b], ms(1), |_| false);
        let s = match b.requests[0].2 {
            RequestOutcome::New(t) => t,
            o => panic!("{o:?}"),
        };
        if linger {
            assert_eq!(a.layer.state(c), Some(TxState::Completed));
            assert_eq!(b.layer.state(s), Some(TxState::Confirmed));
            sim.run_until(
                &mut [&mut a, &mut b],
                Duration::from_secs(5) - ms(1),
                |_| false,
            );
            assert_eq!(b.layer.state(s), Some(TxState::Confirmed), "I = T4 = 5 s");
            sim.run_until(&mut [&mut a, &mut b], Duration::from_secs(5), |_| false);
            assert_eq!(b.layer.state(s), None);
            sim.run_until(
                &mut [&mut a, &mut b],
                Duration::from_secs(32) - ms(1),
                |_| false,
            );
            assert_eq!(a.layer.state(c), Some(TxState::Completed), "D = 32 s");
            sim.run_until(&mut [&mut a, &mut b], Duration::from_secs(32), |_| false);
        }
        assert_eq!(a.layer.state(c), None, "{transport}: D over");
        assert_eq!(b.layer.state(s), None, "{transport}: I over");

        // OPTIONS answered: client lingers for K, server for J.
        let script = Script {
            ringing: false,
            final_code: Some(200),
        };
        let (mut sim, mut a, mut b) = pair(transport, script, zero, 1);
        let c = a.send(Method::Options);
        sim.run_until(&mut [&mut a, &mut b], ms(1), |_| false);
        let s = match b.requests[0].2 {
            RequestOutcome::New(t) => t,
            o => panic!("{o:?}"),
        };
        if linger {
            sim.run_until(
                &mut [&mut a, &mut b],
                Duration::from_secs(5) - ms(1),
                |_| false,
            );
            assert_eq!(a.layer.state(c), Some(TxState::Completed), "K = T4");
            sim.run_until(&mut [&mut a, &mut b], Duration::from_secs(5), |_| false);
            assert_eq!(a.layer.state(c), None);
            sim.run_until(
                &mut [&mut a, &mut b],
                Duration::from_secs(32) - ms(1),
                |_| false,
            );
            assert_eq!(b.layer.state(s), Some(TxState::Completed), "J = 64·T1");
            sim.run_until(&mut [&mut a, &mut b], Duration::from_secs(32), |_| false);
        }
        assert_eq!(a.layer.state(c), None, "{transport}: K over");
        assert_eq!(b.layer.state(s), None, "{transport}: J over");
    }
}

#[test]
fn the_ack_for_a_non_2xx_final_uses_the_invite_branch_and_the_response_to_tag() {
    let script = Script {
        ringing: false,
        final_code: Some(486),
    };
    let (mut sim, mut a, mut b) = pair(Transport::Udp, script, LinkConfig::default(), 1);
    a.send(Method::Invite);
    sim.run_to_quiet(&mut [&mut a, &mut b], Duration::from_secs(100));
    let acks: Vec<&(Duration, String, RequestOutcome)> =
        b.requests.iter().filter(|r| r.1 == "ACK").collect();
    assert_eq!(acks.len(), 1);
    assert_eq!(
        acks[0].2,
        RequestOutcome::Absorbed,
        "matched the INVITE server transaction"
    );
    // Rebuild what was on the wire to check its fields.
    let invite = a.sent.iter().find(|s| s.1.starts_with("INVITE")).unwrap();
    assert_eq!(invite.0, Duration::ZERO);
    let ack_wire = a.sent.iter().find(|s| s.1.starts_with("ACK")).unwrap();
    assert_eq!(ack_wire.1, "ACK sip:bob@127.0.0.1 SIP/2.0");
}

#[test]
fn the_ack_carries_the_right_headers() {
    // Drive two layers by hand to see the ACK bytes.
    let now = origin();
    let mut a = Peer::new(5060, 5070, Transport::Udp, SILENT, now);
    a.send(Method::Invite);
    let (_, invite_bytes) = a.out.pop_front().unwrap();
    let Message::Request(invite) = Message::parse(invite_bytes).unwrap() else {
        panic!()
    };
    let mut busy = Response::from_request(&invite, StatusCode::new(486));
    busy.set_to_tag("xyz");
    assert!(matches!(
        a.layer.handle_response(now, &busy),
        ResponseOutcome::Pass(_)
    ));
    a.drain();
    let (_, ack_bytes) = a.out.pop_front().unwrap();
    let Message::Request(ack) = Message::parse(ack_bytes).unwrap() else {
        panic!()
    };
    assert_eq!(ack.method(), &Method::Ack);
    assert_eq!(ack.uri(), invite.uri());
    assert_eq!(
        ack.top_via().unwrap().branch(),
        invite.top_via().unwrap().branch()
    );
    assert_eq!(ack.headers().count(HeaderName::Via), 1);
    assert_eq!(ack.to().unwrap().tag(), Some("xyz"));
    assert_eq!(ack.from().unwrap().tag(), invite.from().unwrap().tag());
    assert_eq!(ack.call_id().unwrap(), invite.call_id().unwrap());
    assert_eq!(ack.cseq().unwrap().seq, invite.cseq().unwrap().seq);
    assert_eq!(ack.cseq().unwrap().method, "ACK");
    // A retransmitted 486 is absorbed and re-ACKed with the same bytes.
    assert_eq!(
        a.layer.handle_response(now, &busy),
        ResponseOutcome::Absorbed
    );
    a.drain();
    assert_eq!(a.out.len(), 1);
}

#[test]
fn a_forked_2xx_reaches_the_user_each_time() {
    let now = origin();
    let mut a = Peer::new(5060, 5070, Transport::Udp, SILENT, now);
    let tx = a.send(Method::Invite);
    let (_, invite_bytes) = a.out.pop_front().unwrap();
    let Message::Request(invite) = Message::parse(invite_bytes).unwrap() else {
        panic!()
    };
    for tag in ["fork1", "fork2", "fork1"] {
        let mut ok = Response::from_request(&invite, StatusCode::new(200));
        ok.set_to_tag(tag);
        assert_eq!(
            a.layer.handle_response(now, &ok),
            ResponseOutcome::Pass(tx),
            "{tag}"
        );
    }
    assert_eq!(a.layer.state(tx), Some(TxState::Accepted));
    a.layer.handle_timeout(now + 64 * T1);
    assert_eq!(a.layer.state(tx), None, "timer M ends Accepted");
}

#[test]
fn cancel_matches_the_invite_server_transaction() {
    let now = origin();
    let mut a = Peer::new(5060, 5070, Transport::Udp, SILENT, now);
    let mut b = Peer::new(5070, 5060, Transport::Udp, SILENT, now);
    let tx = a.send(Method::Invite);
    let (_, inv) = a.out.pop_front().unwrap();
    b.handle_datagram(now, a.addr, inv);
    let (_, trying) = b.out.pop_front().unwrap();
    a.handle_datagram(now, b.addr, trying);
    assert!(a.layer.has_provisional(tx));
    let cancel = a.layer.cancel_request(tx).unwrap();
    assert_eq!(
        cancel.top_via().unwrap().branch(),
        match Message::parse(a.layer.request_bytes(tx).unwrap().clone()).unwrap() {
            Message::Request(r) => r.top_via().unwrap().branch().map(str::to_string),
            Message::Response(_) => None,
        }
        .as_deref()
    );
    a.layer.send_request(now, a.flow, cancel).unwrap();
    a.drain();
    let (_, c) = a.out.pop_front().unwrap();
    b.handle_datagram(now, a.addr, c);
    let invite_server = match b.requests[0].2 {
        RequestOutcome::New(t) => t,
        o => panic!("{o:?}"),
    };
    assert!(matches!(
        b.requests[1].2,
        RequestOutcome::Cancel { invite: Some(t), .. } if t == invite_server
    ));
}

#[test]
fn the_rfc_2543_fallback_matches_requests_without_the_magic_cookie() {
    let now = origin();
    let mut b = Peer::new(
        5070,
        5060,
        Transport::Udp,
        Script {
            ringing: false,
            final_code: Some(486),
        },
        now,
    );
    let wire = "INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=oldstyle1\r\n\
From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c2543\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n";
    b.handle_datagram(now, b.peer, Bytes::from_static(wire.as_bytes()));
    b.handle_datagram(now, b.peer, Bytes::from_static(wire.as_bytes()));
    let ack = "ACK sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=oldstyle1\r\n\
From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=b1\r\nCall-ID: c2543\r\nCSeq: 7 ACK\r\nContent-Length: 0\r\n\r\n";
    b.handle_datagram(now, b.peer, Bytes::from_static(ack.as_bytes()));
    let outcomes: Vec<RequestOutcome> = b.requests.iter().map(|r| r.2).collect();
    assert!(matches!(
        outcomes[..],
        [
            RequestOutcome::New(_),
            RequestOutcome::Absorbed,
            RequestOutcome::Absorbed
        ]
    ));
    assert_eq!(b.layer.len(), 1);
    assert_eq!(
        b.sent_times("SIP/2.0 486").len(),
        2,
        "the retransmission got the 486 again"
    );
}

#[test]
fn a_closed_flow_ends_its_transactions_with_a_transport_error() {
    let now = origin();
    let mut a = Peer::new(5060, 5070, Transport::Tcp, SILENT, now);
    let t1 = a.send(Method::Invite);
    let t2 = a.send(Method::Options);
    a.layer.handle_flow_closed(a.flow);
    a.drain();
    let errs: Vec<TxId> = a
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            TxEvent::TransportError { tx } => Some(*tx),
            _ => None,
        })
        .collect();
    assert_eq!(errs, vec![t1, t2]);
    assert!(a.layer.is_empty());
    assert_eq!(a.layer.poll_timeout(), None, "no dead deadline is reported");
}

/// Everything one run put on the wire, for determinism checks.
fn transcript(seed: u64, loss: f32) -> Vec<(Duration, u16, Bytes)> {
    let link = LinkConfig {
        latency: ms(20),
        jitter: ms(15),
        loss,
        duplicate: 0.1,
    };
    let script = Script {
        ringing: true,
        final_code: Some(200),
    };
    let (mut sim, mut a, mut b) = pair(Transport::Udp, script, link, seed);
    for m in [
        Method::Invite,
        Method::Options,
        Method::Message,
        Method::Invite,
    ] {
        a.send(m);
    }
    sim.run_to_quiet(&mut [&mut a, &mut b], Duration::from_secs(300));
    let mut all: Vec<(Duration, u16, Bytes)> = Vec::new();
    for p in [&a, &b] {
        all.extend(
            p.wire
                .iter()
                .map(|(t, bytes)| (*t, p.addr.port(), bytes.clone())),
        );
    }
    all
}

#[test]
fn the_same_seed_and_inputs_give_the_same_bytes() {
    assert_eq!(transcript(42, 0.2), transcript(42, 0.2));
    assert_ne!(transcript(42, 0.2), transcript(43, 0.2), "the seed matters");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Under up to 30 % loss, 30 % duplication and jitter-driven reordering, every client
    /// transaction reaches a final outcome (response or timeout) within 64·T1 plus one
    /// round of slack, and once the lingering timers run out no transaction is left alive.
    #[test]
    fn every_transaction_ends_under_loss_duplication_and_reordering(
        seed in any::<u64>(),
        loss in 0.0f32..0.3,
        duplicate in 0.0f32..0.3,
        jitter_ms in 0u64..200,
        reliable in any::<bool>(),
        requests in proptest::collection::vec((0usize..4, 0u64..3000), 1..8),
        ringing in any::<bool>(),
        code in prop::sample::select(vec![200u16, 404, 486, 503, 603]),
    ) {
        let (transport, link) = if reliable {
            (Transport::Tcp, LinkConfig { latency: ms(20), ..LinkConfig::default() })
        } else {
            (Transport::Udp, LinkConfig { latency: ms(20), jitter: ms(jitter_ms), loss, duplicate })
        };
        let script = Script { ringing, final_code: Some(code) };
        let (mut sim, mut a, mut b) = pair(transport, script, link, seed);
        let methods = [Method::Invite, Method::Options, Method::Message, Method::Bye];
        let mut pending: Vec<(Duration, Method)> =
            requests.iter().map(|(m, at)| (ms(*at), methods[*m].clone())).collect();
        pending.sort_by_key(|p| p.0);
        for (at, m) in pending {
            sim.run_until(&mut [&mut a, &mut b], at, |_| false);
            a.now = sim.now();
            a.send(m);
        }
        let quiet = sim.run_to_quiet(&mut [&mut a, &mut b], Duration::from_secs(3600));
        prop_assert!(quiet, "the simulation went quiet (no livelock)");
        prop_assert!(a.layer.is_empty(), "client transactions left: {}", a.layer.len());
        prop_assert!(b.layer.is_empty(), "server transactions left: {}", b.layer.len());
        let slack = ms(500);
        for (tx, started, invite) in &a.started {
            let final_at = a.passed.iter().filter(|p| p.1 == *tx && p.2 >= 200).map(|p| p.0).next();
            // An INVITE that got a provisional waits for its final without Timer B
            // (§17.1.1.2), and the server sends that final for 64·T1 from when the request
            // reached it, which is no later than the provisional came back: the bound
            // runs from there (a request that got through on its last retransmission
            // legitimately ends past 64·T1 from its start).
            let provisional = a.passed.iter().filter(|p| p.1 == *tx && p.2 < 200).map(|p| p.0).next();
            let from = if *invite { provisional.unwrap_or(*started) } else { *started };
            let timeout_at = a.events.iter().filter_map(|(t, e)| match e {
                TxEvent::Timeout { tx: x, .. } if x == tx => Some(*t),
                _ => None,
            }).next();
            let ended = final_at
                .or(timeout_at)
                .ok_or_else(|| TestCaseError::fail(format!("{tx} never ended")))?;
            prop_assert!(ended - from <= 64 * T1 + slack, "{tx} took {:?}", ended - *started);
        }
    }
}
