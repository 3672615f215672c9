//! Two user agents joined by a reliable (TCP) flow, messages handed from one to the other
//! as bytes, and a user agent registering at the embedded registrar: the settings the
//! throughput, memory and instruction-count benchmarks share (each uses part of them).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sansip_core::auth::DigestCredentials;
use sansip_core::registrar::{Registrar, RegistrarConfig};
use sansip_core::session::FakeSdp;
use sansip_core::transport::{FlowId, FlowInfo, Transport};
use sansip_core::ua::{CallOptions, Event, Input, Output, UaConfig, UserAgent};

/// Any instant works: the benchmarks only add to it.
#[allow(clippy::disallowed_methods)]
pub(crate) fn origin() -> Instant {
    Instant::now()
}

/// Moves every transmit of `from` into `to` on `to_flow`, collecting `from`'s events;
/// returns whether anything moved.
pub(crate) fn hand_over<A, B>(
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

/// The callee's address; alice calls `sip:bob@127.0.0.1:5062`.
pub(crate) const BOB: &str = "sip:bob@127.0.0.1:5062";

pub(crate) struct CallPair {
    pub(crate) alice: UserAgent<FakeSdp>,
    pub(crate) bob: UserAgent<FakeSdp>,
    a_flow: FlowId,
    b_flow: FlowId,
    pub(crate) now: Instant,
}

impl CallPair {
    pub(crate) fn new() -> Self {
        Self::over(Transport::Tcp)
    }

    /// Two user agents joined by a flow of `transport` (UDP: the timers of an unreliable
    /// flow, as a load over UDP has them).
    pub(crate) fn over(transport: Transport) -> Self {
        Self::with(transport, |_| {})
    }

    /// The calls SIPp's built-in `uac` and `uas` make: no reliable provisionals (so no
    /// PRACK) and no session timer, seven messages a call.
    pub(crate) fn plain() -> Self {
        Self::with(Transport::Tcp, |c| {
            c.reliable_provisionals = false;
            c.session_expires = None;
        })
    }

    fn with(transport: Transport, configure: impl Fn(&mut UaConfig)) -> Self {
        let now = origin();
        let a: SocketAddr = ([127, 0, 0, 1], 40000).into();
        let b: SocketAddr = ([127, 0, 0, 1], 5062).into();
        let config = |aor: &str| {
            let mut c = UaConfig::new(aor);
            configure(&mut c);
            c
        };
        let mut alice = UserAgent::new(config("sip:alice@127.0.0.1"), now, 1);
        let a_flow = alice.add_flow(FlowInfo {
            transport,
            local: a,
            remote: b,
        });
        alice.set_outbound_flow(a_flow);
        let mut bob = UserAgent::new(config("sip:bob@127.0.0.1"), now, 2);
        let b_flow = bob.add_accepted_flow(FlowInfo {
            transport,
            local: b,
            remote: a,
        });
        Self {
            alice,
            bob,
            a_flow,
            b_flow,
            now,
        }
    }

    /// Moves messages both ways until both are quiet; returns the events they gave.
    pub(crate) fn pump(&mut self) -> Vec<Event> {
        let now = self.now;
        let mut events = Vec::new();
        loop {
            let a = hand_over(
                &mut self.alice,
                |u| u.poll_output(),
                &mut self.bob,
                |u, i| u.handle_input(now, i),
                self.b_flow,
                &mut events,
            );
            let b = hand_over(
                &mut self.bob,
                |u| u.poll_output(),
                &mut self.alice,
                |u, i| u.handle_input(now, i),
                self.a_flow,
                &mut events,
            );
            if !a && !b {
                return events;
            }
        }
    }

    /// Bob answers every call that rang in `events`.
    pub(crate) fn answer_all(&mut self, events: &[Event]) {
        for e in events {
            if let Event::IncomingCall { call, .. } = e {
                let _ = self.bob.answer(self.now, *call, FakeSdp::new("bob"));
            }
        }
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 5060)))
}

pub(crate) struct RegisterPair {
    pub(crate) ua: UserAgent<FakeSdp>,
    registrar: Registrar,
    reg_flow: FlowId,
    ua_flow: FlowId,
    now: Instant,
}

impl RegisterPair {
    pub(crate) fn new() -> Self {
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
    pub(crate) fn register(&mut self) -> usize {
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
pub(crate) fn one_call(p: &mut CallPair) -> usize {
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
