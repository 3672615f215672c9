//! Sans-IO throughput on one thread, no sockets (issue 6, part 2): digest registrations
//! (REGISTER → 401 → REGISTER with credentials → 200: two transactions) through the
//! embedded registrar, and whole calls (INVITE, 100, 180, 200, ACK, BYE, 200) between two
//! user agents. Messages are handed from one machine to the other as bytes over reliable
//! (TCP) flows, so nothing is lost and no retransmission timer is left running.
//!
//! `cargo bench -p sansip-core --bench throughput`; criterion reports elements per second
//! (transactions, calls). The aims are 400 000 transactions/s and 100 000 calls/s.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sansip_core::auth::DigestCredentials;
use sansip_core::registrar::{Registrar, RegistrarConfig};
use sansip_core::session::FakeSdp;
use sansip_core::transport::{FlowId, FlowInfo, Transport};
use sansip_core::ua::{CallOptions, Event, Input, Output, UaConfig, UserAgent};

#[allow(clippy::disallowed_methods)]
fn origin() -> Instant {
    Instant::now()
}

fn addr(s: &str) -> SocketAddr {
    s.parse()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 5060)))
}

/// Moves every transmit of `from` into `to` on `to_flow`; returns the events `from` gave.
fn hand_over<A, B>(
    from: &mut A,
    poll: impl Fn(&mut A) -> Option<Output>,
    to: &mut B,
    feed: impl Fn(&mut B, Input),
    to_flow: FlowId,
    events: &mut Vec<Event>,
) -> bool {
    let mut moved = false;
    while let Some(o) = poll(from) {
        match o {
            Output::Transmit { bytes, .. } => {
                feed(
                    to,
                    Input::Received {
                        flow: to_flow,
                        bytes,
                    },
                );
                moved = true;
            }
            Output::Event(e) => events.push(e),
            _ => {}
        }
    }
    moved
}

struct RegisterPair {
    ua: UserAgent<FakeSdp>,
    registrar: Registrar,
    reg_flow: FlowId,
    ua_flow: FlowId,
    now: Instant,
}

impl RegisterPair {
    fn new() -> Self {
        let now = origin();
        let mut config = UaConfig::new("sip:alice@example.com");
        config.credentials = Some(DigestCredentials::new("alice", "secret"));
        let mut ua = UserAgent::new(config, now, 1);
        let (ua_addr, reg_addr) = (addr("127.0.0.1:40000"), addr("127.0.0.1:5060"));
        let ua_flow = ua.add_flow(FlowInfo {
            transport: Transport::Tcp,
            local: ua_addr,
            remote: reg_addr,
        });
        ua.set_outbound_flow(ua_flow);
        let mut rc = RegistrarConfig::new("example.com");
        rc.users = vec![("alice".into(), "secret".into())];
        let mut registrar = Registrar::new(rc, 2);
        let reg_flow = registrar.flow_for(FlowInfo {
            transport: Transport::Tcp,
            local: reg_addr,
            remote: ua_addr,
        });
        Self {
            ua,
            registrar,
            reg_flow,
            ua_flow,
            now,
        }
    }

    /// One digest registration, start to finish.
    fn register(&mut self) -> usize {
        self.now += Duration::from_millis(1);
        let now = self.now;
        let _ = self.ua.register(now, 600);
        let mut events = Vec::new();
        loop {
            let a = hand_over(
                &mut self.ua,
                |u| u.poll_output(),
                &mut self.registrar,
                |r, i| r.handle_input(now, i),
                self.reg_flow,
                &mut events,
            );
            let b = hand_over(
                &mut self.registrar,
                |r| r.poll_output(),
                &mut self.ua,
                |u, i| u.handle_input(now, i),
                self.ua_flow,
                &mut events,
            );
            if !a && !b {
                break;
            }
        }
        // Zero-length linger timers on reliable flows end the transactions here.
        self.ua.handle_timeout(now);
        self.registrar.handle_timeout(now);
        events.len()
    }
}

struct CallPair {
    alice: UserAgent<FakeSdp>,
    bob: UserAgent<FakeSdp>,
    a_flow: FlowId,
    b_flow: FlowId,
    now: Instant,
}

impl CallPair {
    fn new() -> Self {
        let now = origin();
        let (a_addr, b_addr) = (addr("127.0.0.1:40000"), addr("127.0.0.1:5062"));
        let mut alice = UserAgent::new(UaConfig::new("sip:alice@127.0.0.1"), now, 1);
        let a_flow = alice.add_flow(FlowInfo {
            transport: Transport::Tcp,
            local: a_addr,
            remote: b_addr,
        });
        alice.set_outbound_flow(a_flow);
        let mut bob = UserAgent::new(UaConfig::new("sip:bob@127.0.0.1"), now, 2);
        let b_flow = bob.add_accepted_flow(FlowInfo {
            transport: Transport::Tcp,
            local: b_addr,
            remote: a_addr,
        });
        Self {
            alice,
            bob,
            a_flow,
            b_flow,
            now,
        }
    }

    fn pump(&mut self, events: &mut Vec<Event>) {
        let now = self.now;
        loop {
            let a = hand_over(
                &mut self.alice,
                |u| u.poll_output(),
                &mut self.bob,
                |u, i| u.handle_input(now, i),
                self.b_flow,
                events,
            );
            let b = hand_over(
                &mut self.bob,
                |u| u.poll_output(),
                &mut self.alice,
                |u, i| u.handle_input(now, i),
                self.a_flow,
                events,
            );
            if !a && !b {
                return;
            }
        }
    }

    /// One call: INVITE, 100, 180, 200, ACK, then BYE and its 200.
    fn call(&mut self) -> usize {
        // Past 64·T1: the INVITE transactions of the last call, which RFC 6026 keeps in
        // Accepted for 32 s even on reliable flows, end now rather than pile up.
        self.now += Duration::from_secs(40);
        let now = self.now;
        self.alice.handle_timeout(now);
        self.bob.handle_timeout(now);
        let mut events = Vec::new();
        let Ok(id) = self.alice.call(
            now,
            "sip:bob@127.0.0.1:5062",
            CallOptions::default(),
            FakeSdp::new("alice"),
        ) else {
            return 0;
        };
        self.pump(&mut events);
        let incoming = events.iter().find_map(|e| match e {
            Event::IncomingCall { call, .. } => Some(*call),
            _ => None,
        });
        if let Some(c) = incoming {
            let _ = self.bob.answer(now, c, FakeSdp::new("bob"));
        }
        self.pump(&mut events);
        let _ = self.alice.hangup(now, id);
        self.pump(&mut events);
        self.alice.handle_timeout(now);
        self.bob.handle_timeout(now);
        events.len()
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sans-io");
    g.throughput(Throughput::Elements(2));
    let mut reg = RegisterPair::new();
    g.bench_function("register_digest_transactions", |b| {
        b.iter(|| black_box(reg.register()))
    });
    g.throughput(Throughput::Elements(1));
    let mut calls = CallPair::new();
    g.bench_function("calls", |b| b.iter(|| black_box(calls.call())));
    g.finish();
    // Nothing may be left behind by a finished exchange (the INVITE transactions once
    // their 32 s are up).
    assert_eq!(reg.ua.transactions(), 0, "register transactions left");
    let later = calls.now + Duration::from_secs(40);
    calls.alice.handle_timeout(later);
    calls.bob.handle_timeout(later);
    assert_eq!(calls.alice.transactions() + calls.bob.transactions(), 0);
    assert_eq!(calls.alice.call_states() + calls.bob.call_states(), 0);
}

criterion_group!(benches, bench);
criterion_main!(benches);
