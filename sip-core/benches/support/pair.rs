//! Two user agents joined by a reliable (TCP) flow, messages handed from one to the other
//! as bytes: the setting the throughput and memory benchmarks share.

use std::net::SocketAddr;
use std::time::Instant;

use sansip_core::session::FakeSdp;
use sansip_core::transport::{FlowId, FlowInfo, Transport};
use sansip_core::ua::{Event, Input, Output, UaConfig, UserAgent};

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
        let now = origin();
        let a: SocketAddr = ([127, 0, 0, 1], 40000).into();
        let b: SocketAddr = ([127, 0, 0, 1], 5062).into();
        let mut alice = UserAgent::new(UaConfig::new("sip:alice@127.0.0.1"), now, 1);
        let a_flow = alice.add_flow(FlowInfo {
            transport: Transport::Tcp,
            local: a,
            remote: b,
        });
        alice.set_outbound_flow(a_flow);
        let mut bob = UserAgent::new(UaConfig::new("sip:bob@127.0.0.1"), now, 2);
        let b_flow = bob.add_accepted_flow(FlowInfo {
            transport: Transport::Tcp,
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
