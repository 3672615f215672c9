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
use sansip_core::ua::{CallOptions, UaConfig, UserAgent};

#[path = "support/pair.rs"]
mod pair;

use pair::{BOB, CallPair, hand_over, origin};

fn addr(s: &str) -> SocketAddr {
    s.parse()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 5060)))
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

/// One call on `p`: INVITE, 100, 180, 200, ACK, then BYE and its 200; returns the
/// number of events, so the work cannot be optimised away.
fn one_call(p: &mut CallPair) -> usize {
    // Past 64·T1: the INVITE transactions of the last call, which RFC 6026 keeps in
    // Accepted for 32 s even on reliable flows, end now rather than pile up.
    p.now += Duration::from_secs(40);
    let now = p.now;
    p.alice.handle_timeout(now);
    p.bob.handle_timeout(now);
    let Ok(id) = p
        .alice
        .call(now, BOB, CallOptions::default(), FakeSdp::new("alice"))
    else {
        return 0;
    };
    let mut events = p.pump();
    p.answer_all(&events);
    events.extend(p.pump());
    let _ = p.alice.hangup(now, id);
    events.extend(p.pump());
    p.alice.handle_timeout(now);
    p.bob.handle_timeout(now);
    events.len()
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
    g.bench_function("calls", |b| b.iter(|| black_box(one_call(&mut calls))));
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
