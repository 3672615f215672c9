//! Calls between our user agents through the embedded registrar/proxy, in the simulator:
//! every scenario of issue 3 at 0 % loss and again at 20 % random loss with reordering
//! (jitter) on UDP, plus a property test of random command interleavings.

#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use sansip_core::auth::DigestCredentials;
use sansip_core::message::{HeaderName, Message, Method};
use sansip_core::publication::PublicationHandle;
use sansip_core::registrar::{Registrar, RegistrarConfig};
use sansip_core::registration::RegistrationCause;
use sansip_core::session::{CallEnd, CallHandle, Direction, EndCause, FakeSdp, Originator};
use sansip_core::sim::{LinkConfig, Network, Node, RegistrarNode, Sim};
use sansip_core::subscription::pidf::{self, Presence};
use sansip_core::transport::{FlowId, FlowInfo, Transport};
use sansip_core::ua::{
    CallOptions, Event, Input, Output, PublishOptions, UaConfig, UaError, UserAgent,
};

#[allow(clippy::disallowed_methods)]
fn origin() -> Instant {
    Instant::now()
}

const REGISTRAR: &str = "127.0.0.1:5060";
const ALICE: usize = 0;
const BOB: usize = 1;
const CAROL: usize = 2;
const NAMES: [&str; 3] = ["alice", "bob", "carol"];

struct Phone {
    addr: SocketAddr,
    ua: UserAgent<FakeSdp>,
    flow: FlowId,
    events: Vec<Event>,
    pending: VecDeque<Bytes>,
    /// Every datagram this phone sent, for the determinism check.
    log: Vec<Bytes>,
}

impl Phone {
    fn new(i: usize, now: Instant, seed: u64, config: &dyn Fn(&mut UaConfig)) -> Self {
        let name = NAMES[i];
        let mut c = UaConfig::new(format!("sip:{name}@example.com"));
        c.credentials = Some(DigestCredentials::new(name, format!("{name}-pw")));
        // The scenarios of issue 3 are calls whose provisionals are not reliable, as with
        // most desk phones and browsers; the RFC 3262 scenarios turn 100rel on.
        c.reliable_provisionals = false;
        config(&mut c);
        let mut ua = UserAgent::new(c, now, seed);
        let addr: SocketAddr = format!("127.0.0.1:{}", 5071 + i).parse().unwrap();
        let flow = ua.add_flow(FlowInfo {
            transport: Transport::Udp,
            local: addr,
            remote: REGISTRAR.parse().unwrap(),
        });
        ua.set_outbound_flow(flow);
        Self {
            addr,
            ua,
            flow,
            events: Vec::new(),
            pending: VecDeque::new(),
            log: Vec::new(),
        }
    }

    fn drain(&mut self) {
        while let Some(o) = self.ua.poll_output() {
            match o {
                Output::Transmit { bytes, .. } => {
                    self.log.push(bytes.clone());
                    self.pending.push_back(bytes);
                }
                Output::Event(e) => self.events.push(e),
                _ => {}
            }
        }
    }

    fn incoming(&self) -> Vec<CallHandle> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::IncomingCall { call, .. } => Some(*call),
                _ => None,
            })
            .collect()
    }

    fn ended(&self, call: CallHandle) -> Vec<&CallEnd> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::CallEnded { call: c, end, .. } if *c == call => Some(end),
                _ => None,
            })
            .collect()
    }

    fn end(&self, call: CallHandle) -> Option<(EndCause, Originator, Option<u16>)> {
        let ends = self.ended(call);
        assert!(ends.len() <= 1, "one end per call: {ends:?}");
        ends.first().map(|e| (e.cause, e.originator, e.status))
    }

    fn answered(&self, call: CallHandle) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, Event::CallAnswered { call: c, .. } if *c == call))
    }

    fn sdp(&self, call: CallHandle) -> &FakeSdp {
        self.ua.sdp_handler(call).unwrap()
    }

    fn directions(&self, call: CallHandle) -> Option<Direction> {
        self.sdp(call).local_direction()
    }

    fn dtmf(&self, call: CallHandle) -> String {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::DtmfReceived { call: c, tone, .. } if *c == call => Some(*tone),
                _ => None,
            })
            .collect()
    }

    fn saw(&self, f: impl Fn(&Event) -> bool) -> bool {
        self.events.iter().any(f)
    }
}

impl Node for Phone {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn handle_datagram(&mut self, now: Instant, _from: SocketAddr, bytes: Bytes) {
        let flow = self.flow;
        self.ua.handle_input(now, Input::Received { flow, bytes });
        self.drain();
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.ua.handle_timeout(now);
        self.drain();
    }
    fn poll_transmit(&mut self) -> Option<(SocketAddr, Bytes)> {
        let b = self.pending.pop_front()?;
        Some((REGISTRAR.parse().unwrap(), b))
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.ua.poll_timeout()
    }
}

struct World {
    sim: Sim,
    proxy: RegistrarNode,
    phones: Vec<Phone>,
    label: String,
}

impl World {
    fn new(seed: u64, loss: f32) -> Self {
        Self::with(seed, loss, &|_| {})
    }

    /// Three phones registered at the proxy; `config` adjusts each UA's settings.
    fn with(seed: u64, loss: f32, config: &dyn Fn(&mut UaConfig)) -> Self {
        Self::build(seed, loss, 3600, config)
    }

    fn build(seed: u64, loss: f32, expires: u32, config: &dyn Fn(&mut UaConfig)) -> Self {
        let link = LinkConfig {
            latency: Duration::from_millis(20),
            jitter: Duration::from_millis(15),
            loss,
            duplicate: 0.0,
        };
        let sim = Sim::new(origin(), Network::new(seed, link));
        let mut rc = RegistrarConfig::new("example.com");
        rc.users = NAMES
            .iter()
            .map(|n| (n.to_string(), format!("{n}-pw")))
            .collect();
        let proxy = RegistrarNode::new(REGISTRAR.parse().unwrap(), Registrar::new(rc, seed));
        let now = sim.now();
        let phones = (0..3)
            .map(|i| Phone::new(i, now, seed.wrapping_mul(31) ^ (i as u64 + 1), config))
            .collect();
        let mut w = World {
            sim,
            proxy,
            phones,
            label: format!("seed {seed} loss {loss}"),
        };
        for i in 0..3 {
            w.act(i, |ua, now| ua.register(now, expires)).unwrap();
        }
        assert!(
            w.run_until(120, |w| w.phones.iter().all(|p| p.ua.is_registered())),
            "{}: all registered",
            w.label
        );
        w
    }

    /// Runs a command on phone `i` at the current virtual time.
    fn act<R>(&mut self, i: usize, f: impl FnOnce(&mut UserAgent<FakeSdp>, Instant) -> R) -> R {
        let now = self.sim.now();
        let r = f(&mut self.phones[i].ua, now);
        self.phones[i].drain();
        r
    }

    fn step_to(&mut self, limit: Duration) {
        let mut nodes: Vec<&mut dyn Node> = vec![&mut self.proxy];
        nodes.extend(self.phones.iter_mut().map(|p| p as &mut dyn Node));
        self.sim.run_until(&mut nodes, limit, |_| false);
    }

    /// Runs `secs` of virtual time.
    fn run(&mut self, secs: u64) {
        let limit = self.sim.elapsed() + Duration::from_secs(secs);
        self.step_to(limit);
    }

    /// Runs until `done` holds (checked every 50 ms of virtual time) or `secs` pass.
    fn run_until(&mut self, secs: u64, done: impl Fn(&World) -> bool) -> bool {
        let limit = self.sim.elapsed() + Duration::from_secs(secs);
        while self.sim.elapsed() < limit {
            if done(self) {
                return true;
            }
            let next = (self.sim.elapsed() + Duration::from_millis(50)).min(limit);
            self.step_to(next);
        }
        done(self)
    }

    /// Calls `callee` from `caller` and waits for the callee to ring.
    fn ring(&mut self, caller: usize, callee: usize) -> (CallHandle, CallHandle) {
        let before = self.phones[callee].incoming().len();
        let a = self
            .act(caller, |ua, now| {
                ua.call(
                    now,
                    NAMES[callee],
                    CallOptions::default(),
                    FakeSdp::new(NAMES[caller]),
                )
            })
            .unwrap();
        assert!(
            self.run_until(60, |w| w.phones[callee].incoming().len() > before),
            "{}: {} rings",
            self.label,
            NAMES[callee]
        );
        (a, self.phones[callee].incoming()[before])
    }

    /// A call from `caller` to `callee`, answered and confirmed on both sides.
    fn connect(&mut self, caller: usize, callee: usize) -> (CallHandle, CallHandle) {
        let (a, b) = self.ring(caller, callee);
        self.act(callee, |ua, now| {
            ua.answer(now, b, FakeSdp::new(NAMES[callee]))
        })
        .unwrap();
        assert!(
            self.run_until(60, |w| w.phones[caller].answered(a)
                && w.phones[callee].answered(b)),
            "{}: answered",
            self.label
        );
        // Let the ACK land so the callee can start offers of its own.
        self.run(5);
        (a, b)
    }

    fn wait_ended(&mut self, pairs: &[(usize, CallHandle)]) {
        let ok = self.run_until(90, |w| {
            pairs.iter().all(|&(i, c)| !w.phones[i].ended(c).is_empty())
        });
        assert!(ok, "{}: calls {pairs:?} ended", self.label);
    }

    /// Every call, transaction and dialog is gone once the timers have run out.
    /// 40 s covers the longest linger: a non-INVITE client transaction's timer F (32 s)
    /// and K (5 s).
    fn assert_settled(&mut self) {
        self.run(40);
        for (i, p) in self.phones.iter().enumerate() {
            assert_eq!(
                p.ua.call_states(),
                0,
                "{}: {} keeps calls",
                self.label,
                NAMES[i]
            );
            assert_eq!(
                p.ua.transactions(),
                0,
                "{}: {} keeps transactions",
                self.label,
                NAMES[i]
            );
        }
    }
}

fn for_each_network(scenario: impl Fn(u64, f32)) {
    scenario(1, 0.0);
    for seed in 1..=12 {
        scenario(seed, 0.2);
    }
}

#[test]
fn answered_and_hung_up_by_the_caller_or_the_callee() {
    for_each_network(|seed, loss| {
        for caller_hangs_up in [true, false] {
            let mut w = World::new(seed, loss);
            let (a, b) = w.connect(ALICE, BOB);
            assert_eq!(w.phones[ALICE].directions(a), Some(Direction::SendRecv));
            assert_eq!(w.phones[BOB].directions(b), Some(Direction::SendRecv));
            let (who, id, other, oid) = if caller_hangs_up {
                (ALICE, a, BOB, b)
            } else {
                (BOB, b, ALICE, a)
            };
            w.act(who, |ua, now| ua.hangup(now, id)).unwrap();
            w.wait_ended(&[(ALICE, a), (BOB, b)]);
            assert_eq!(
                w.phones[who].end(id),
                Some((EndCause::Bye, Originator::Local, None))
            );
            assert_eq!(
                w.phones[other].end(oid),
                Some((EndCause::Bye, Originator::Remote, None)),
                "{}",
                w.label
            );
            assert_eq!(
                w.act(who, |ua, now| ua.hangup(now, id)),
                Err(UaError::NoSuchCall(id))
            );
            w.assert_settled();
        }
    });
}

#[test]
fn declined_and_busy() {
    for_each_network(|seed, loss| {
        for (status, cause) in [(None, EndCause::Unavailable), (Some(486), EndCause::Busy)] {
            let mut w = World::new(seed, loss);
            let (a, b) = w.ring(ALICE, BOB);
            w.act(BOB, |ua, now| ua.decline(now, b, status)).unwrap();
            w.wait_ended(&[(ALICE, a), (BOB, b)]);
            let code = status.unwrap_or(480);
            assert_eq!(
                w.phones[ALICE].end(a),
                Some((cause, Originator::Remote, Some(code))),
                "{}",
                w.label
            );
            assert_eq!(
                w.phones[BOB].end(b),
                Some((EndCause::Rejected, Originator::Local, Some(code)))
            );
            w.assert_settled();
        }
    });
}

#[test]
fn caller_cancels_while_ringing() {
    for_each_network(|seed, loss| {
        let mut w = World::new(seed, loss);
        let (a, b) = w.ring(ALICE, BOB);
        w.run(1);
        w.act(ALICE, |ua, now| ua.hangup(now, a)).unwrap();
        w.wait_ended(&[(ALICE, a), (BOB, b)]);
        assert_eq!(
            w.phones[ALICE].end(a),
            Some((EndCause::Canceled, Originator::Local, None))
        );
        assert_eq!(
            w.phones[BOB].end(b),
            Some((EndCause::Canceled, Originator::Remote, None)),
            "{}",
            w.label
        );
        w.assert_settled();
    });
}

#[test]
fn cancel_crossing_the_200_still_ends_both_sides() {
    for_each_network(|seed, loss| {
        let mut w = World::new(seed, loss);
        let (a, b) = w.ring(ALICE, BOB);
        w.run(1);
        // Same instant: the CANCEL and the 200 cross in the network.
        w.act(BOB, |ua, now| ua.answer(now, b, FakeSdp::new("bob")))
            .unwrap();
        w.act(ALICE, |ua, now| ua.hangup(now, a)).unwrap();
        w.wait_ended(&[(ALICE, a), (BOB, b)]);
        assert_eq!(
            w.phones[ALICE].end(a),
            Some((EndCause::Canceled, Originator::Local, None))
        );
        // The callee answered; the caller's ACK and BYE end its call.
        assert_eq!(
            w.phones[BOB].end(b),
            Some((EndCause::Bye, Originator::Remote, None)),
            "{}",
            w.label
        );
        w.assert_settled();
    });
}

/// Every phone sends its provisionals reliably (RFC 3262) when the caller supports it, as
/// every phone here does.
fn with_100rel(seed: u64, loss: f32) -> World {
    World::with(seed, loss, &|c| c.reliable_provisionals = true)
}

/// The datagrams phone `i` sent that start with `start`.
fn sent(w: &World, i: usize, start: &str) -> Vec<String> {
    w.phones[i]
        .log
        .iter()
        .filter(|b| b.starts_with(start.as_bytes()))
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect()
}

/// A PRACK or other request the peer sent just before the end may arrive up to timer F
/// (32 s) later and then lingers for timer J (32 s): wait that out before settling.
fn settle_after_prack(w: &mut World) {
    w.run(30);
    w.assert_settled();
}

#[test]
fn a_reliable_180_is_pracked_and_the_2xx_waits_for_its_prack() {
    for_each_network(|seed, loss| {
        let mut w = with_100rel(seed, loss);
        let (a, b) = w.ring(ALICE, BOB);
        // The 2xx goes at once or after the PRACK; either way both sides connect.
        w.act(BOB, |ua, now| ua.answer(now, b, FakeSdp::new("bob")))
            .unwrap();
        assert!(
            w.run_until(60, |w| w.phones[ALICE].answered(a)
                && w.phones[BOB].answered(b)),
            "{}: answered",
            w.label
        );
        let ringing = sent(&w, BOB, "SIP/2.0 180 ");
        assert!(
            ringing
                .iter()
                .all(|r| r.contains("Require: 100rel\r\n") && r.contains("RSeq: ")),
            "{}: {ringing:?}",
            w.label
        );
        let rseq = ringing[0]
            .split("RSeq: ")
            .nth(1)
            .unwrap()
            .split("\r\n")
            .next()
            .unwrap();
        let pracks = sent(&w, ALICE, "PRACK ");
        assert!(!pracks.is_empty(), "{}: no PRACK", w.label);
        assert!(
            pracks
                .iter()
                .all(|p| p.contains(&format!("RAck: {rseq} ")) && p.contains(" INVITE\r\n")),
            "{}: {pracks:?}",
            w.label
        );
        // No 2xx left before the PRACK was answered.
        let bob = &w.phones[BOB].log;
        let first_2xx = bob.iter().position(|m| {
            m.starts_with(b"SIP/2.0 200 ") && String::from_utf8_lossy(m).contains(" INVITE\r\n")
        });
        let prack_ok = bob.iter().position(|m| {
            m.starts_with(b"SIP/2.0 200 ") && String::from_utf8_lossy(m).contains(" PRACK\r\n")
        });
        assert!(prack_ok.unwrap() < first_2xx.unwrap(), "{}", w.label);
        assert_eq!(w.phones[ALICE].directions(a), Some(Direction::SendRecv));
        w.act(ALICE, |ua, now| ua.hangup(now, a)).unwrap();
        w.wait_ended(&[(ALICE, a), (BOB, b)]);
        assert_eq!(
            w.phones[BOB].end(b),
            Some((EndCause::Bye, Originator::Remote, None)),
            "{}",
            w.label
        );
        settle_after_prack(&mut w);
    });
}

#[test]
fn early_media_in_a_reliable_183_then_the_call_is_accepted() {
    for_each_network(|seed, loss| {
        let mut w = with_100rel(seed, loss);
        let (a, b) = w.ring(ALICE, BOB);
        w.act(BOB, |ua, now| {
            ua.progress(now, b, Some(FakeSdp::new("bob")))
        })
        .unwrap();
        assert!(
            w.run_until(60, |w| w.phones[ALICE].saw(|e| matches!(
                e,
                Event::CallProgress { call, status: 183, early_media: true, .. } if *call == a
            ))),
            "{}: early media reported",
            w.label
        );
        // The early answer is taken: the caller's media runs before the 2xx.
        assert_eq!(
            w.phones[ALICE].sdp(a).remote_direction(),
            Some(Direction::SendRecv)
        );
        assert!(!w.phones[ALICE].answered(a));
        // Answering with a handler again is refused: the 183 chose it.
        assert!(matches!(
            w.act(BOB, |ua, now| ua.answer(now, b, FakeSdp::new("bob"))),
            Err(UaError::InvalidState(_))
        ));
        w.act(BOB, |ua, now| ua.accept(now, b)).unwrap();
        assert!(
            w.run_until(60, |w| w.phones[ALICE].answered(a)
                && w.phones[BOB].answered(b)),
            "{}: answered",
            w.label
        );
        let progress = sent(&w, BOB, "SIP/2.0 183 ");
        assert!(progress[0].contains("Require: 100rel\r\n") && progress[0].contains("\r\n\r\nv=0"));
        // The 2xx repeats the 183's answer.
        let ok = sent(&w, BOB, "SIP/2.0 200 OK");
        let ok = ok.iter().find(|m| m.contains(" INVITE\r\n")).unwrap();
        let body = |m: &str| m.split("\r\n\r\n").nth(1).unwrap().to_string();
        assert_eq!(body(ok), body(&progress[0]));
        w.act(BOB, |ua, now| ua.hangup(now, b)).unwrap();
        w.wait_ended(&[(ALICE, a), (BOB, b)]);
        settle_after_prack(&mut w);
    });
}

#[test]
fn declined_or_cancelled_while_a_reliable_180_waits_for_its_prack() {
    for_each_network(|seed, loss| {
        let mut w = with_100rel(seed, loss);
        let (a, b) = w.ring(ALICE, BOB);
        w.act(BOB, |ua, now| ua.decline(now, b, Some(486))).unwrap();
        w.wait_ended(&[(ALICE, a), (BOB, b)]);
        assert_eq!(
            w.phones[ALICE].end(a),
            Some((EndCause::Busy, Originator::Remote, Some(486))),
            "{}",
            w.label
        );
        settle_after_prack(&mut w);

        // The callee answered, but its 2xx waits for the PRACK: a CANCEL still wins (487).
        let mut w = with_100rel(seed, loss);
        let (a, b) = w.ring(ALICE, BOB);
        w.act(BOB, |ua, now| ua.answer(now, b, FakeSdp::new("bob")))
            .unwrap();
        w.act(ALICE, |ua, now| ua.hangup(now, a)).unwrap();
        w.wait_ended(&[(ALICE, a), (BOB, b)]);
        assert_eq!(
            w.phones[ALICE].end(a),
            Some((EndCause::Canceled, Originator::Local, None))
        );
        assert!(
            matches!(
                w.phones[BOB].end(b),
                Some((EndCause::Canceled | EndCause::Bye, Originator::Remote, None))
            ),
            "{}: {:?}",
            w.label,
            w.phones[BOB].end(b)
        );
        settle_after_prack(&mut w);
    });
}

/// Session timers (RFC 4028) of `secs` seconds on both phones.
fn with_timers(seed: u64, loss: f32, secs: u32, more: &dyn Fn(&mut UaConfig)) -> World {
    World::with(seed, loss, &|c| {
        c.session_expires = Some(secs);
        more(c);
    })
}

/// Long calls with refreshes: without loss, and at 5 % loss with reordering. At 20 %
/// through the two-hop proxy, one refresh in a few hundred gets no answer within timer F,
/// and RFC 3261 §12.2.1.2 then ends the dialog (as the missing-refresh test checks), so a
/// half-hour call at 20 % is a matter of luck.
fn for_each_long_call_network(scenario: impl Fn(u64, f32)) {
    scenario(1, 0.0);
    for seed in 1..=6 {
        scenario(seed, 0.05);
    }
}

/// How many UPDATE requests phone `i` sent (retransmissions counted once).
fn updates(w: &World, i: usize) -> usize {
    let mut cseqs: Vec<String> = sent(w, i, "UPDATE ")
        .iter()
        .filter_map(|m| m.split("\r\nCSeq: ").nth(1))
        .filter_map(|c| c.split("\r\n").next())
        .map(str::to_string)
        .collect();
    cseqs.sort();
    cseqs.dedup();
    cseqs.len()
}

#[test]
fn the_caller_refreshes_by_update_for_half_an_hour_and_hold_survives() {
    for_each_long_call_network(|seed, loss| {
        let mut w = with_timers(seed, loss, 90, &|_| {});
        let (a, b) = w.connect(ALICE, BOB);
        let ok = sent(&w, BOB, "SIP/2.0 200 OK");
        let ok = ok.iter().find(|m| m.contains(" INVITE\r\n")).unwrap();
        assert!(
            ok.contains("Session-Expires: 90;refresher=uac\r\n")
                && ok.contains("Require: timer\r\n"),
            "{ok}"
        );
        w.act(ALICE, |ua, now| ua.hold(now, a)).unwrap();
        w.run(30 * 60);
        for (i, c) in [(ALICE, a), (BOB, b)] {
            assert!(
                w.phones[i].ended(c).is_empty(),
                "{}: {} ended",
                w.label,
                NAMES[i]
            );
            assert!(w.phones[i].ua.is_established(c));
        }
        // Every 45 s for 30 minutes; a lost one is sent again, not refreshed twice.
        let n = updates(&w, ALICE);
        assert!(
            (38..=44).contains(&n) || loss > 0.0 && n >= 38,
            "{}: {n} UPDATEs",
            w.label
        );
        assert_eq!(updates(&w, BOB), 0, "{}: bob does not refresh", w.label);
        assert!(
            w.phones[ALICE].ua.hold_state(a).unwrap().local,
            "{}: still held",
            w.label
        );
        assert!(w.phones[BOB].ua.hold_state(b).unwrap().remote);
        w.act(BOB, |ua, now| ua.hangup(now, b)).unwrap();
        w.wait_ended(&[(ALICE, a), (BOB, b)]);
        w.assert_settled();
    });
}

#[test]
fn the_callee_refreshes_when_the_caller_asks_it_to() {
    for_each_long_call_network(|seed, loss| {
        let mut w = with_timers(seed, loss, 120, &|c| {
            c.session_refresher = Some(sansip_core::message::Refresher::Uas)
        });
        let (a, b) = w.connect(ALICE, BOB);
        w.run(10 * 60);
        assert!(
            w.phones[ALICE].ended(a).is_empty() && w.phones[BOB].ended(b).is_empty(),
            "{}: {:?} {:?}",
            w.label,
            w.phones[ALICE].ended(a),
            w.phones[BOB].ended(b)
        );
        assert!(updates(&w, BOB) >= 9, "{}: bob refreshes", w.label);
        assert_eq!(updates(&w, ALICE), 0, "{}", w.label);
        w.act(ALICE, |ua, now| ua.hangup(now, a)).unwrap();
        w.wait_ended(&[(ALICE, a), (BOB, b)]);
        w.assert_settled();
    });
}

#[test]
fn a_missing_refresh_ends_the_call_as_session_timer_expired() {
    let mut w = with_timers(1, 0.0, 90, &|_| {});
    let (a, b) = w.connect(ALICE, BOB);
    // The network goes: alice's refreshes are lost, bob's deadline passes.
    let cut = LinkConfig {
        loss: 1.0,
        ..LinkConfig::default()
    };
    for p in 0..2 {
        let addr = w.phones[p].addr;
        w.sim.net.set_link(addr, REGISTRAR.parse().unwrap(), cut);
        w.sim.net.set_link(REGISTRAR.parse().unwrap(), addr, cut);
    }
    w.wait_ended(&[(ALICE, a), (BOB, b)]);
    assert_eq!(
        w.phones[BOB].end(b),
        Some((EndCause::SessionTimerExpired, Originator::System, None))
    );
    // Alice's UPDATE went unanswered: no answer inside a dialog ends it (§12.2.1.2).
    assert_eq!(
        w.phones[ALICE].end(a),
        Some((EndCause::RequestTimeout, Originator::System, Some(408)))
    );
}

#[test]
fn a_422_raises_the_interval_and_the_call_goes_through() {
    for_each_network(|seed, loss| {
        let mut w = World::with(seed, loss, &|c| {
            if c.aor.starts_with("sip:alice") {
                c.session_expires = Some(60);
                c.min_se = 60;
            } else {
                c.min_se = 120;
            }
        });
        let (a, b) = w.connect(ALICE, BOB);
        let invites = sent(&w, ALICE, "INVITE ");
        assert!(
            invites
                .iter()
                .any(|i| i.contains("Session-Expires: 60\r\n"))
        );
        assert!(
            invites
                .iter()
                .any(|i| i.contains("Session-Expires: 120\r\n")),
            "{}",
            w.label
        );
        assert!(w.phones[BOB].ua.is_established(b) && w.phones[ALICE].ua.is_established(a));
        // Bob's Min-SE holds: alice refreshes every 60 s.
        w.run(200);
        assert!(updates(&w, ALICE) >= 3, "{}", w.label);
        w.act(ALICE, |ua, now| ua.hangup(now, a)).unwrap();
        w.wait_ended(&[(ALICE, a), (BOB, b)]);
        w.assert_settled();
    });
}

#[test]
fn no_answer_timeouts_on_either_side() {
    for_each_network(|seed, loss| {
        // The callee gives up after its configured ring time.
        let mut w = World::with(seed, loss, &|c| {
            c.no_answer_timeout = Duration::from_secs(8)
        });
        let (a, b) = w.ring(ALICE, BOB);
        w.wait_ended(&[(ALICE, a), (BOB, b)]);
        assert_eq!(
            w.phones[BOB].end(b),
            Some((EndCause::NoAnswer, Originator::System, Some(480)))
        );
        assert_eq!(
            w.phones[ALICE].end(a),
            Some((EndCause::Unavailable, Originator::Remote, Some(480))),
            "{}",
            w.label
        );
        w.assert_settled();

        // The caller gives up first.
        let mut w = World::new(seed, loss);
        let a = w
            .act(ALICE, |ua, now| {
                let options = CallOptions::default().no_answer_timeout(Duration::from_secs(5));
                ua.call(now, "bob", options, FakeSdp::new("alice"))
            })
            .unwrap();
        assert!(w.run_until(60, |w| !w.phones[BOB].incoming().is_empty()));
        let b = w.phones[BOB].incoming()[0];
        w.wait_ended(&[(ALICE, a), (BOB, b)]);
        assert_eq!(
            w.phones[ALICE].end(a),
            Some((EndCause::NoAnswer, Originator::System, None))
        );
        assert_eq!(
            w.phones[BOB].end(b),
            Some((EndCause::Canceled, Originator::Remote, None))
        );
        w.assert_settled();
    });
}

fn hold_flags(p: &Phone, call: CallHandle) -> (bool, bool) {
    let h = p.ua.hold_state(call).unwrap();
    (h.local, h.remote)
}

#[test]
fn hold_and_unhold_from_each_side() {
    for_each_network(|seed, loss| {
        let mut w = World::new(seed, loss);
        let (a, b) = w.connect(ALICE, BOB);
        for (holder, hid, peer, pid) in [(ALICE, a, BOB, b), (BOB, b, ALICE, a)] {
            w.act(holder, |ua, now| ua.hold(now, hid)).unwrap();
            assert!(
                w.run_until(30, |w| hold_flags(&w.phones[peer], pid) == (false, true)
                    && hold_flags(&w.phones[holder], hid) == (true, false)),
                "{}",
                w.label
            );
            assert!(w.phones[holder].ua.is_held(hid).unwrap());
            assert_eq!(w.phones[holder].directions(hid), Some(Direction::SendOnly));
            assert_eq!(w.phones[peer].directions(pid), Some(Direction::RecvOnly));
            assert!(w.phones[peer].saw(|e| matches!(e, Event::HoldChanged { call, local: false, remote: true } if *call == pid)));
            w.act(holder, |ua, now| ua.unhold(now, hid)).unwrap();
            assert!(
                w.run_until(30, |w| hold_flags(&w.phones[peer], pid) == (false, false)
                    && hold_flags(&w.phones[holder], hid) == (false, false))
            );
            assert_eq!(w.phones[holder].directions(hid), Some(Direction::SendRecv));
            assert_eq!(w.phones[peer].directions(pid), Some(Direction::SendRecv));
        }
        w.act(ALICE, |ua, now| ua.hangup(now, a)).unwrap();
        w.wait_ended(&[(ALICE, a), (BOB, b)]);
        w.assert_settled();
    });
}

#[test]
fn mutual_hold_and_resuming_while_the_peer_still_holds() {
    for_each_network(|seed, loss| {
        let mut w = World::new(seed, loss);
        let (a, b) = w.connect(ALICE, BOB);
        w.act(ALICE, |ua, now| ua.hold(now, a)).unwrap();
        assert!(
            w.run_until(30, |w| hold_flags(&w.phones[ALICE], a) == (true, false)
                && hold_flags(&w.phones[BOB], b) == (false, true)),
            "{}",
            w.label
        );
        w.act(BOB, |ua, now| ua.hold(now, b)).unwrap();
        // A hold while held is inactive on both sides (RFC 6337 §5.3).
        assert!(
            w.run_until(30, |w| hold_flags(&w.phones[BOB], b) == (true, true)
                && hold_flags(&w.phones[ALICE], a) == (true, true)),
            "{}",
            w.label
        );
        assert_eq!(w.phones[ALICE].directions(a), Some(Direction::Inactive));
        assert_eq!(w.phones[BOB].directions(b), Some(Direction::Inactive));
        // Alice resumes while Bob still holds her: recvonly, never sendrecv.
        w.act(ALICE, |ua, now| ua.unhold(now, a)).unwrap();
        assert!(
            w.run_until(30, |w| hold_flags(&w.phones[ALICE], a) == (false, true)
                && hold_flags(&w.phones[BOB], b) == (true, false))
        );
        assert_eq!(w.phones[ALICE].directions(a), Some(Direction::RecvOnly));
        assert_eq!(w.phones[BOB].directions(b), Some(Direction::SendOnly));
        w.act(BOB, |ua, now| ua.unhold(now, b)).unwrap();
        assert!(
            w.run_until(30, |w| hold_flags(&w.phones[ALICE], a) == (false, false)
                && hold_flags(&w.phones[BOB], b) == (false, false))
        );
        assert_eq!(w.phones[ALICE].directions(a), Some(Direction::SendRecv));
        assert_eq!(w.phones[BOB].directions(b), Some(Direction::SendRecv));
        w.act(BOB, |ua, now| ua.hangup(now, b)).unwrap();
        w.wait_ended(&[(ALICE, a), (BOB, b)]);
        w.assert_settled();
    });
}

#[test]
fn a_refused_hold_rolls_back_and_keeps_the_call() {
    for_each_network(|seed, loss| {
        let mut w = World::new(seed, loss);
        let (a, b) = w.connect(ALICE, BOB);
        w.phones[BOB]
            .ua
            .sdp_handler_mut(b)
            .unwrap()
            .refuse_offers(1);
        w.act(ALICE, |ua, now| ua.hold(now, a)).unwrap();
        assert!(
            w.run_until(30, |w| w.phones[ALICE].saw(|e| matches!(
                e,
                Event::RenegotiationFailed { status: 488, .. }
            ))),
            "{}",
            w.label
        );
        assert_eq!(hold_flags(&w.phones[ALICE], a), (false, false));
        assert_eq!(w.phones[ALICE].directions(a), Some(Direction::SendRecv));
        assert_eq!(hold_flags(&w.phones[BOB], b), (false, false));
        assert_eq!(w.phones[BOB].directions(b), Some(Direction::SendRecv));
        // The call goes on: a second hold works.
        w.run(3);
        w.act(ALICE, |ua, now| ua.hold(now, a)).unwrap();
        assert!(w.run_until(30, |w| hold_flags(&w.phones[BOB], b) == (false, true)));
        w.act(ALICE, |ua, now| ua.hangup(now, a)).unwrap();
        w.wait_ended(&[(ALICE, a), (BOB, b)]);
        assert_eq!(w.phones[BOB].end(b).unwrap().0, EndCause::Bye);
        w.assert_settled();
    });
}

#[test]
fn glare_on_simultaneous_holds_resolves_by_the_rfc_3261_timers() {
    for_each_network(|seed, loss| {
        let mut w = World::new(seed, loss);
        let (a, b) = w.connect(ALICE, BOB);
        w.act(ALICE, |ua, now| ua.hold(now, a)).unwrap();
        w.act(BOB, |ua, now| ua.hold(now, b)).unwrap();
        assert!(
            w.run_until(60, |w| hold_flags(&w.phones[ALICE], a) == (true, true)
                && hold_flags(&w.phones[BOB], b) == (true, true)),
            "{}: both end up holding",
            w.label
        );
        w.run(3);
        assert_eq!(w.phones[ALICE].directions(a), Some(Direction::Inactive));
        assert_eq!(w.phones[BOB].directions(b), Some(Direction::Inactive));
        if loss == 0.0 {
            // Without loss the re-INVITEs surely crossed: both sides answered 491.
            for p in [&w.phones[ALICE], &w.phones[BOB]] {
                assert!(
                    p.log.iter().any(|m| m.starts_with(b"SIP/2.0 491")),
                    "a 491 was sent"
                );
            }
        }
        w.act(ALICE, |ua, now| ua.hangup(now, a)).unwrap();
        w.wait_ended(&[(ALICE, a), (BOB, b)]);
        w.assert_settled();
    });
}

#[test]
fn dtmf_and_messages_inside_the_call_and_outside() {
    for_each_network(|seed, loss| {
        let mut w = World::new(seed, loss);
        let (a, b) = w.connect(ALICE, BOB);
        w.act(ALICE, |ua, now| ua.send_dtmf(now, a, "12,#"))
            .unwrap();
        w.act(BOB, |ua, now| ua.send_dtmf(now, b, "9*")).unwrap();
        assert_eq!(
            w.act(ALICE, |ua, now| ua.send_dtmf(now, a, "1x")),
            Err(UaError::InvalidDtmf('x'))
        );
        assert!(
            w.run_until(60, |w| w.phones[BOB].dtmf(b) == "12#"
                && w.phones[ALICE].dtmf(a) == "9*"),
            "{}: tones in order, got {:?} / {:?}",
            w.label,
            w.phones[BOB].dtmf(b),
            w.phones[ALICE].dtmf(a)
        );
        let m = w
            .act(ALICE, |ua, now| {
                ua.call_message(now, a, "text/plain", "in call")
            })
            .unwrap();
        w.act(BOB, |ua, now| ua.call_message(now, b, "text/plain", "back"))
            .unwrap();
        w.act(CAROL, |ua, now| {
            ua.message(now, "alice", "text/plain", "outside", &[])
        })
        .unwrap();
        assert!(w.run_until(60, |w| {
            w.phones[BOB].saw(|e| matches!(e, Event::MessageReceived { call: Some(c), body, .. } if *c == b && &body[..] == b"in call"))
                && w.phones[ALICE].saw(|e| matches!(e, Event::MessageReceived { call: Some(c), body, .. } if *c == a && &body[..] == b"back"))
                && w.phones[ALICE].saw(|e| matches!(e, Event::MessageReceived { call: None, body, .. } if &body[..] == b"outside"))
        }), "{}", w.label);
        assert!(w.run_until(30, |w| w.phones[ALICE].saw(
            |e| matches!(e, Event::RequestCompleted { id, status: 200, .. } if *id == m)
        )));
        w.act(BOB, |ua, now| ua.hangup(now, b)).unwrap();
        w.wait_ended(&[(ALICE, a), (BOB, b)]);
        w.assert_settled();
    });
}

#[test]
fn two_simultaneous_calls_on_one_user_agent() {
    for_each_network(|seed, loss| {
        let mut w = World::new(seed, loss);
        let (a, b1) = w.connect(ALICE, BOB);
        let (c, b2) = w.connect(CAROL, BOB);
        assert_ne!(b1, b2);
        assert_eq!(w.phones[BOB].ua.calls().count(), 2);
        // Holding one leaves the other alone.
        w.act(BOB, |ua, now| ua.hold(now, b1)).unwrap();
        assert!(w.run_until(30, |w| hold_flags(&w.phones[ALICE], a) == (false, true)));
        assert_eq!(hold_flags(&w.phones[CAROL], c), (false, false));
        w.act(BOB, |ua, now| ua.send_dtmf(now, b2, "5")).unwrap();
        assert!(w.run_until(30, |w| w.phones[CAROL].dtmf(c) == "5"));
        assert_eq!(w.phones[ALICE].dtmf(a), "");
        w.act(ALICE, |ua, now| ua.hangup(now, a)).unwrap();
        w.wait_ended(&[(ALICE, a), (BOB, b1)]);
        assert!(
            w.phones[BOB].ended(b2).is_empty(),
            "the other call lives on"
        );
        w.act(BOB, |ua, now| ua.hangup(now, b2)).unwrap();
        w.wait_ended(&[(CAROL, c), (BOB, b2)]);
        w.assert_settled();
    });
}

/// The REGISTER requests a phone sent: (Call-ID, CSeq number).
fn registers(p: &Phone) -> Vec<(String, u32)> {
    p.log
        .iter()
        .filter_map(|b| match Message::parse(b.clone()) {
            Ok(Message::Request(r)) if *r.method() == Method::Register => {
                Some((r.call_id().unwrap().to_string(), r.cseq().unwrap().seq))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn registration_refresh_unregister_and_unregister_all() {
    for_each_network(|seed, loss| {
        let mut w = World::build(seed, loss, 60, &|_| {});
        assert_eq!(w.proxy.registrar.location().len(), 3);
        // Refreshes keep the binding through five expiry periods, one Call-ID, rising CSeq.
        w.run(300);
        for p in &w.phones {
            assert!(p.ua.is_registered(), "{}", w.label);
            let sent = registers(p);
            assert!(sent.len() >= 5, "{}: {} REGISTERs", w.label, sent.len());
            assert!(sent.windows(2).all(|x| x[0].0 == x[1].0), "one Call-ID");
            let mut seqs: Vec<u32> = sent.iter().map(|r| r.1).collect();
            seqs.dedup(); // retransmissions repeat a CSeq
            assert!(seqs.windows(2).all(|x| x[0] < x[1]), "CSeq rises");
            assert!(p.saw(|e| matches!(e, Event::RegistrationExpiring { .. })));
        }
        assert_eq!(w.proxy.registrar.location().len(), 3);
        // Unregistering one binding: calls to alice now find nobody.
        w.act(ALICE, |ua, now| ua.unregister(now, false)).unwrap();
        assert!(
            w.run_until(60, |w| w.phones[ALICE].saw(|e| matches!(
                e,
                Event::Unregistered {
                    cause: RegistrationCause::Unregistered
                }
            ))),
            "{}",
            w.label
        );
        assert!(!w.phones[ALICE].ua.is_registered());
        assert_eq!(w.proxy.registrar.location().len(), 2);
        let b = w
            .act(BOB, |ua, now| {
                ua.call(now, "alice", CallOptions::default(), FakeSdp::new("bob"))
            })
            .unwrap();
        w.wait_ended(&[(BOB, b)]);
        assert_eq!(
            w.phones[BOB].end(b),
            Some((EndCause::Unavailable, Originator::Remote, Some(480)))
        );
        // Unregistering all of bob's bindings (Contact: *).
        w.act(BOB, |ua, now| ua.unregister(now, true)).unwrap();
        assert!(w.run_until(60, |w| w.proxy.registrar.location().len() == 1
            && !w.phones[BOB].ua.is_registered()));
        w.run(120);
        assert_eq!(
            w.proxy.registrar.location().len(),
            1,
            "no refresh after unregistering"
        );
    });
}

#[test]
fn a_wrong_password_fails_once_and_never_loops() {
    for_each_network(|seed, loss| {
        let mut w = World::new(seed, loss);
        let now = w.sim.now();
        w.phones[CAROL] = Phone::new(CAROL, now, seed, &|c| {
            c.credentials = Some(DigestCredentials::new("carol", "wrong"));
        });
        w.act(CAROL, |ua, now| ua.register(now, 600)).unwrap();
        assert!(
            w.run_until(60, |w| w.phones[CAROL].saw(|e| matches!(
                e,
                Event::RegistrationFailed {
                    cause: RegistrationCause::Authentication(_),
                    retry_in: None
                }
            ))),
            "{}",
            w.label
        );
        w.run(600);
        let mut seqs: Vec<u32> = registers(&w.phones[CAROL]).iter().map(|r| r.1).collect();
        seqs.dedup();
        assert_eq!(
            seqs.len(),
            2,
            "{}: one try, one answered challenge, no more",
            w.label
        );
        assert!(!w.phones[CAROL].ua.is_registered());
    });
}

/// Everything a phone sent in a fixed scenario, for comparing runs.
fn transcript(seed: u64) -> Vec<Vec<Bytes>> {
    let mut w = World::new(seed, 0.2);
    let (a, _) = w.connect(ALICE, BOB);
    w.act(ALICE, |ua, now| ua.hold(now, a)).unwrap();
    w.run(10);
    w.act(ALICE, |ua, now| ua.send_dtmf(now, a, "42")).unwrap();
    w.run(10);
    w.act(ALICE, |ua, now| ua.hangup(now, a)).unwrap();
    w.run(40);
    w.phones.into_iter().map(|p| p.log).collect()
}

#[test]
fn same_seed_same_bytes() {
    assert_eq!(transcript(7), transcript(7));
    assert_ne!(transcript(7), transcript(8));
}

/// A user command in the property test.
#[derive(Debug, Clone)]
enum Cmd {
    Call,
    Answer,
    Decline,
    Hold,
    Unhold,
    Dtmf,
    Message,
    Hangup,
    /// REFER the peer to carol, who never answers.
    Transfer,
    /// Accept whatever transfer the peer asked of a call.
    AcceptTransfer,
    Subscribe,
    /// As notifier: active, with a body.
    Notify,
    Unsubscribe,
}

fn cmd() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        Just(Cmd::Call),
        Just(Cmd::Answer),
        Just(Cmd::Decline),
        Just(Cmd::Hold),
        Just(Cmd::Unhold),
        Just(Cmd::Dtmf),
        Just(Cmd::Message),
        Just(Cmd::Hangup),
        Just(Cmd::Transfer),
        Just(Cmd::AcceptTransfer),
        Just(Cmd::Subscribe),
        Just(Cmd::Notify),
        Just(Cmd::Unsubscribe),
    ]
}

/// Applies a command to some call of phone `i` (the `pick`-th, if it has several); errors
/// are fine, the point is that nothing panics and everything ends.
fn apply(w: &mut World, i: usize, c: &Cmd, pick: usize, placed: &mut Vec<(usize, CallHandle)>) {
    let calls: Vec<CallHandle> = {
        let mut v: Vec<CallHandle> = w.phones[i].ua.calls().collect();
        v.sort();
        v
    };
    let target = (!calls.is_empty()).then(|| calls[pick % calls.len()]);
    let subs: Vec<SubscriptionHandle> = {
        let mut v: Vec<SubscriptionHandle> = w.phones[i].ua.subscriptions().collect();
        v.sort();
        v
    };
    let sub = (!subs.is_empty()).then(|| subs[pick % subs.len()]);
    let peer = NAMES[1 - i];
    let _ = w.act(i, |ua, now| -> Result<(), UaError> {
        match (c, target) {
            (Cmd::Call, _) => ua
                .call(now, peer, CallOptions::default(), FakeSdp::new(NAMES[i]))
                .map(|id| placed.push((i, id))),
            (Cmd::Subscribe, _) => ua
                .subscribe(
                    now,
                    peer,
                    SubscribeOptions::new("message-summary").expires(120),
                )
                .map(|_| ()),
            (Cmd::Notify, _) => match sub {
                Some(s) => ua.notify(
                    now,
                    s,
                    SubState::Active,
                    Some((message_summary::CONTENT_TYPE, b"Messages-Waiting: no\r\n")),
                ),
                None => Ok(()),
            },
            (Cmd::Unsubscribe, _) => match sub {
                Some(s) => ua.unsubscribe(now, s),
                None => Ok(()),
            },
            (_, None) => Ok(()),
            (Cmd::Transfer, Some(t)) => ua.transfer(now, t, "carol"),
            (Cmd::AcceptTransfer, Some(t)) => ua
                .accept_transfer(now, t, FakeSdp::new(NAMES[i]))
                .map(|id| placed.push((i, id))),
            (Cmd::Answer, Some(t)) => ua.answer(now, t, FakeSdp::new(NAMES[i])),
            (Cmd::Decline, Some(t)) => ua.decline(now, t, Some(603)),
            (Cmd::Hold, Some(t)) => ua.hold(now, t),
            (Cmd::Unhold, Some(t)) => ua.unhold(now, t),
            (Cmd::Dtmf, Some(t)) => ua.send_dtmf(now, t, "1#"),
            (Cmd::Message, Some(t)) => ua.call_message(now, t, "text/plain", "hi").map(|_| ()),
            (Cmd::Hangup, Some(t)) => ua.hangup(now, t),
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random interleavings of user commands on both sides under random loss never panic;
    /// every call ends on both sides, and no call, dialog or transaction is left alive.
    #[test]
    fn random_commands_always_end_cleanly(
        seed in 1u64..10_000,
        loss in prop_oneof![Just(0.0f32), 0.0f32..0.25],
        script in prop::collection::vec((0usize..2, cmd(), 0usize..3, 0u64..3000), 1..25),
    ) {
        let mut w = with_mwi(seed, loss);
        let mut placed = Vec::new();
        for (who, c, pick, wait_ms) in &script {
            apply(&mut w, *who, c, *pick, &mut placed);
            let limit = w.sim.elapsed() + Duration::from_millis(*wait_ms);
            w.step_to(limit);
        }
        // Hang up and unsubscribe whatever is left, then let every timer run out.
        w.run(5);
        for i in [ALICE, BOB, CAROL] {
            let calls: Vec<CallHandle> = w.phones[i].ua.calls().collect();
            for c in calls {
                let _ = w.act(i, |ua, now| ua.hangup(now, c));
            }
            let subs: Vec<SubscriptionHandle> = w.phones[i].ua.subscriptions().collect();
            for s in subs {
                let _ = w.act(i, |ua, now| match ua.unsubscribe(now, s) {
                    Err(UaError::InvalidState(_)) => ua.terminate_subscription(now, s, "noresource"),
                    other => other,
                });
            }
        }
        w.run(120);
        for i in [ALICE, BOB, CAROL] {
            let p = &w.phones[i];
            prop_assert_eq!(p.ua.calls().count(), 0, "{}: {} has live calls", w.label, NAMES[i]);
            prop_assert_eq!(p.ua.call_states(), 0);
            prop_assert_eq!(p.ua.transactions(), 0);
            prop_assert_eq!(p.ua.subscriptions().count(), 0, "{}: {} keeps subscriptions", w.label, NAMES[i]);
            // Every call the phone knew of ended exactly once.
            let mut started: Vec<CallHandle> = p.incoming();
            let placed = p.events.iter().filter_map(|e| match e {
                Event::CallEnded { call, .. } => Some(*call),
                _ => None,
            });
            let mut ended: Vec<CallHandle> = placed.collect();
            ended.sort();
            let before = ended.len();
            ended.dedup();
            prop_assert_eq!(before, ended.len(), "a call ended twice");
            started.retain(|c| !ended.contains(c));
            prop_assert!(started.is_empty(), "incoming calls never ended: {:?}", started);
        }
        // Every call placed ended exactly once on its caller too, and a call the caller saw
        // answered was answered by a callee.
        for (i, id) in &placed {
            prop_assert_eq!(w.phones[*i].ended(*id).len(), 1, "{}: placed call {} ended", w.label, id);
        }
        let answered = |p: &Phone, calls: &mut dyn Iterator<Item = CallHandle>| {
            calls.filter(|c| p.answered(*c)).count()
        };
        for i in [ALICE, BOB] {
            let callee = 1 - i;
            let placed_answered = answered(
                &w.phones[i],
                &mut placed.iter().filter(|(who, _)| *who == i).map(|(_, c)| *c),
            );
            let incoming = w.phones[callee].incoming();
            let callee_answered = answered(&w.phones[callee], &mut incoming.into_iter());
            prop_assert!(
                placed_answered <= callee_answered,
                "{}: {} saw {} answers, {} gave {}",
                w.label, NAMES[i], placed_answered, NAMES[callee], callee_answered
            );
        }
    }
}

#[test]
fn video_added_by_an_early_update_and_dropped_by_a_reinvite_after_the_answer() {
    use sansip_core::ua::OfferMethod;
    for_each_network(|seed, loss| {
        let mut w = with_100rel(seed, loss);
        let (a, b) = w.ring(ALICE, BOB);
        let mut bob_media = FakeSdp::new("bob");
        bob_media.set_video(true);
        w.act(BOB, |ua, now| ua.progress(now, b, Some(bob_media)))
            .unwrap();
        assert!(
            w.run_until(60, |w| w.phones[ALICE].saw(|e| matches!(
                e,
                Event::CallProgress { call, status: 183, .. } if *call == a
            ))),
            "{}: early media",
            w.label
        );
        // Before the answer, only UPDATE may carry an offer (RFC 3311 §5.1).
        assert!(matches!(
            w.act(ALICE, |ua, now| ua.renegotiate(now, a, OfferMethod::Invite)),
            Err(UaError::InvalidState(_))
        ));
        w.phones[ALICE]
            .ua
            .sdp_handler_mut(a)
            .unwrap()
            .set_video(true);
        w.act(ALICE, |ua, now| ua.renegotiate(now, a, OfferMethod::Update))
            .unwrap();
        let renegotiated = |p: &Phone, call: CallHandle, by: Originator| {
            p.saw(|e| {
                matches!(e, Event::Renegotiated { call: c, originator } if *c == call && *originator == by)
            })
        };
        assert!(
            w.run_until(60, |w| renegotiated(&w.phones[ALICE], a, Originator::Local)
                && renegotiated(&w.phones[BOB], b, Originator::Remote)),
            "{}: video added in the early dialog",
            w.label
        );
        assert!(sent(&w, ALICE, "UPDATE ")[0].contains("m=video 51372"));
        assert!(w.phones[ALICE].sdp(a).has_video() && w.phones[BOB].sdp(b).has_video());
        assert!(!w.phones[ALICE].answered(a));
        w.act(BOB, |ua, now| ua.accept(now, b)).unwrap();
        assert!(
            w.run_until(60, |w| w.phones[ALICE].answered(a)
                && w.phones[BOB].answered(b)),
            "{}: answered",
            w.label
        );
        // The callee drops its camera after the answer: a re-INVITE.
        w.phones[BOB]
            .ua
            .sdp_handler_mut(b)
            .unwrap()
            .set_video(false);
        w.act(BOB, |ua, now| ua.renegotiate(now, b, OfferMethod::Invite))
            .unwrap();
        assert!(
            w.run_until(60, |w| renegotiated(&w.phones[BOB], b, Originator::Local)
                && renegotiated(&w.phones[ALICE], a, Originator::Remote)),
            "{}: video dropped",
            w.label
        );
        assert!(!w.phones[ALICE].sdp(a).has_video() && !w.phones[BOB].sdp(b).has_video());
        assert_eq!(w.phones[ALICE].directions(a), Some(Direction::SendRecv));
        w.act(ALICE, |ua, now| ua.hangup(now, a)).unwrap();
        w.wait_ended(&[(ALICE, a), (BOB, b)]);
        settle_after_prack(&mut w);
    });
}

// ---- Subscriptions (RFC 6665) ---------------------------------------------------------

use sansip_core::subscription::dialog_info::{
    self, DialogInfo, Direction as DialogDirection, EntryState,
};
use sansip_core::subscription::message_summary::{self, MessageSummary};
use sansip_core::subscription::{SubState, SubscriptionHandle};
use sansip_core::ua::SubscribeOptions;

/// Every phone serves `message-summary`.
fn with_mwi(seed: u64, loss: f32) -> World {
    World::with(seed, loss, &|c| {
        c.event_packages = vec!["message-summary".into()]
    })
}

fn notified(p: &Phone, sub: SubscriptionHandle) -> Vec<(SubState, Bytes)> {
    p.events
        .iter()
        .filter_map(|e| match e {
            Event::Notified {
                subscription,
                state,
                body,
                ..
            } if *subscription == sub => Some((*state, body.clone())),
            _ => None,
        })
        .collect()
}

fn sub_ended(p: &Phone, sub: SubscriptionHandle) -> Vec<(Option<String>, Option<u16>)> {
    p.events
        .iter()
        .filter_map(|e| match e {
            Event::SubscriptionEnded {
                subscription,
                reason,
                status,
                ..
            } if *subscription == sub => Some((reason.clone(), *status)),
            _ => None,
        })
        .collect()
}

fn requested(p: &Phone) -> Option<SubscriptionHandle> {
    p.events.iter().find_map(|e| match e {
        Event::SubscriptionRequested { subscription, .. } => Some(*subscription),
        _ => None,
    })
}

#[test]
fn voicemail_waiting_is_subscribed_notified_refreshed_and_unsubscribed() {
    for_each_network(|seed, loss| {
        let mut w = with_mwi(seed, loss);
        let options = SubscribeOptions::new("message-summary")
            .accept(message_summary::CONTENT_TYPE)
            .expires(600);
        let a = w
            .act(ALICE, |ua, now| ua.subscribe(now, "bob", options))
            .unwrap();
        assert!(
            w.run_until(60, |w| requested(&w.phones[BOB]).is_some()
                && !notified(&w.phones[ALICE], a).is_empty()),
            "{}: subscribed, pending",
            w.label
        );
        assert_eq!(notified(&w.phones[ALICE], a)[0].0, SubState::Pending);
        let b = requested(&w.phones[BOB]).unwrap();
        let summary = "Messages-Waiting: yes\r\nVoice-Message: 2/8 (0/1)\r\n";
        w.act(BOB, |ua, now| {
            ua.notify(
                now,
                b,
                SubState::Active,
                Some((message_summary::CONTENT_TYPE, summary.as_bytes())),
            )
        })
        .unwrap();
        assert!(
            w.run_until(60, |w| notified(&w.phones[ALICE], a)
                .iter()
                .any(|(s, _)| *s == SubState::Active)),
            "{}: active",
            w.label
        );
        let (_, body) = notified(&w.phones[ALICE], a).pop().unwrap();
        let mwi = MessageSummary::parse(&body).unwrap();
        assert!(mwi.waiting && mwi.class("voice-message").unwrap().new == 2);
        // Fifty minutes: alice refreshes at 50–70 % of 600 s, bob answers each refresh
        // with the state again, and neither side lets it lapse.
        w.run(3000);
        // Distinct SUBSCRIBEs (by CSeq; loss makes retransmissions).
        let mut cseqs: Vec<String> = sent(&w, ALICE, "SUBSCRIBE ")
            .iter()
            .filter_map(|m| {
                m.lines()
                    .find(|l| l.starts_with("CSeq:"))
                    .map(str::to_string)
            })
            .collect();
        cseqs.dedup();
        let refreshes = cseqs.len();
        assert!(refreshes >= 6, "{}: {refreshes} SUBSCRIBEs", w.label);
        assert_eq!(
            w.phones[ALICE].ua.subscription_state(a),
            Ok(SubState::Active)
        );
        assert_eq!(w.phones[BOB].ua.subscription_state(b), Ok(SubState::Active));
        assert!(notified(&w.phones[ALICE], a).len() >= refreshes);
        // Alice unsubscribes: both sides end, once.
        w.act(ALICE, |ua, now| ua.unsubscribe(now, a)).unwrap();
        assert!(
            w.run_until(90, |w| !sub_ended(&w.phones[ALICE], a).is_empty()
                && !sub_ended(&w.phones[BOB], b).is_empty()),
            "{}: unsubscribed",
            w.label
        );
        assert_eq!(sub_ended(&w.phones[ALICE], a).len(), 1);
        assert_eq!(sub_ended(&w.phones[BOB], b).len(), 1);
        w.assert_settled();
        for p in &w.phones {
            assert_eq!(p.ua.subscriptions().count(), 0, "{}", w.label);
        }
    });
}

#[test]
fn a_notifier_refuses_and_an_unserved_package_gets_489() {
    for_each_network(|seed, loss| {
        let mut w = with_mwi(seed, loss);
        let a = w
            .act(ALICE, |ua, now| {
                ua.subscribe(now, "bob", SubscribeOptions::new("message-summary"))
            })
            .unwrap();
        assert!(
            w.run_until(60, |w| requested(&w.phones[BOB]).is_some()),
            "{}",
            w.label
        );
        let b = requested(&w.phones[BOB]).unwrap();
        w.act(BOB, |ua, now| ua.terminate_subscription(now, b, "rejected"))
            .unwrap();
        assert!(
            w.run_until(60, |w| !sub_ended(&w.phones[ALICE], a).is_empty()),
            "{}: refused",
            w.label
        );
        assert_eq!(
            sub_ended(&w.phones[ALICE], a),
            [(Some("rejected".to_string()), None)]
        );
        // Carol does not share her calls (the dialog package): 489 Bad Event (RFC 6665
        // §8.3.2).
        let p = w
            .act(ALICE, |ua, now| {
                ua.subscribe(now, "carol", SubscribeOptions::new("dialog"))
            })
            .unwrap();
        assert!(
            w.run_until(60, |w| !sub_ended(&w.phones[ALICE], p).is_empty()),
            "{}: 489",
            w.label
        );
        assert_eq!(sub_ended(&w.phones[ALICE], p), [(None, Some(489))]);
        w.assert_settled();
    });
}

// ---- Blind transfer (RFC 3515) ----------------------------------------------------------

fn transfer_requested(p: &Phone, call: CallHandle) -> Option<String> {
    p.events.iter().find_map(|e| match e {
        Event::TransferRequested {
            call: c, target, ..
        } if *c == call => Some(target.clone()),
        _ => None,
    })
}

fn transfer_steps(p: &Phone, call: CallHandle) -> Vec<u16> {
    p.events
        .iter()
        .filter_map(|e| match e {
            Event::TransferProgress {
                call: c, status, ..
            } if *c == call => Some(*status),
            _ => None,
        })
        .collect()
}

#[test]
fn bob_transfers_alice_to_carol_and_every_call_ends_once() {
    for_each_network(|seed, loss| {
        let mut w = World::new(seed, loss);
        let (a, b) = w.connect(ALICE, BOB);
        w.act(BOB, |ua, now| ua.transfer(now, b, "carol")).unwrap();
        assert!(
            w.run_until(60, |w| transfer_requested(&w.phones[ALICE], a).is_some()),
            "{}: alice is asked",
            w.label
        );
        assert!(
            transfer_requested(&w.phones[ALICE], a)
                .is_some_and(|t| t.starts_with("sip:carol@example.com")),
            "{}",
            w.label
        );
        let a2 = w
            .act(ALICE, |ua, now| {
                ua.accept_transfer(now, a, FakeSdp::new("alice"))
            })
            .unwrap();
        let before = w.phones[CAROL].incoming().len();
        assert!(
            w.run_until(60, |w| w.phones[CAROL].incoming().len() > before),
            "{}: carol rings",
            w.label
        );
        let c = w.phones[CAROL].incoming()[before];
        w.act(CAROL, |ua, now| ua.answer(now, c, FakeSdp::new("carol")))
            .unwrap();
        // Alice talks to carol; bob heard 100, then 200, and hung up on alice.
        w.wait_ended(&[(BOB, b), (ALICE, a)]);
        assert!(w.phones[ALICE].answered(a2) && w.phones[CAROL].answered(c));
        assert_eq!(
            w.phones[BOB].end(b),
            Some((EndCause::Transferred, Originator::Local, None)),
            "{}",
            w.label
        );
        assert_eq!(
            w.phones[ALICE].end(a).map(|e| (e.0, e.1)),
            Some((EndCause::Bye, Originator::Remote)),
            "{}",
            w.label
        );
        let steps = transfer_steps(&w.phones[BOB], b);
        assert_eq!(steps.first(), Some(&100), "{}: {steps:?}", w.label);
        assert_eq!(steps.last(), Some(&200), "{}: {steps:?}", w.label);
        w.act(ALICE, |ua, now| ua.hangup(now, a2)).unwrap();
        w.wait_ended(&[(ALICE, a2), (CAROL, c)]);
        for (i, call) in [(ALICE, a), (ALICE, a2), (BOB, b), (CAROL, c)] {
            assert_eq!(w.phones[i].ended(call).len(), 1, "{}: one end", w.label);
        }
        w.assert_settled();
    });
}

#[test]
fn a_refused_transfer_leaves_the_call_as_it_was() {
    let mut w = World::new(4, 0.0);
    let (a, b) = w.connect(ALICE, BOB);
    w.act(BOB, |ua, now| ua.transfer(now, b, "carol")).unwrap();
    assert!(w.run_until(30, |w| transfer_requested(&w.phones[ALICE], a).is_some()));
    w.act(ALICE, |ua, now| ua.refuse_transfer(now, a)).unwrap();
    assert!(w.run_until(30, |w| transfer_steps(&w.phones[BOB], b).last()
        == Some(&603)));
    w.run(5);
    assert!(w.phones[ALICE].ended(a).is_empty() && w.phones[BOB].ended(b).is_empty());
    // An answered REFER cannot be answered again.
    assert!(matches!(
        w.act(ALICE, |ua, now| ua.refuse_transfer(now, a)),
        Err(UaError::InvalidState(_))
    ));
    w.act(ALICE, |ua, now| ua.hangup(now, a)).unwrap();
    w.wait_ended(&[(ALICE, a), (BOB, b)]);
    w.assert_settled();
}

#[test]
fn bob_consults_carol_then_hands_alice_over_with_replaces() {
    for_each_network(|seed, loss| {
        let mut w = World::new(seed, loss);
        let (a, b1) = w.connect(ALICE, BOB);
        let (b2, c) = w.connect(BOB, CAROL);
        w.act(BOB, |ua, now| ua.transfer_to(now, b1, b2)).unwrap();
        assert!(
            w.run_until(60, |w| transfer_requested(&w.phones[ALICE], a).is_some()),
            "{}: alice is asked",
            w.label
        );
        let a2 = w
            .act(ALICE, |ua, now| {
                ua.accept_transfer(now, a, FakeSdp::new("alice"))
            })
            .unwrap();
        // Carol's phone gets a call that replaces her consultation with bob.
        let replacing = |p: &Phone| {
            p.events.iter().find_map(|e| match e {
                Event::IncomingCall {
                    call,
                    replaces: Some(r),
                    ..
                } => Some((*call, *r)),
                _ => None,
            })
        };
        assert!(
            w.run_until(60, |w| replacing(&w.phones[CAROL]).is_some()),
            "{}: the replacing INVITE reaches carol",
            w.label
        );
        let (c2, replaced) = replacing(&w.phones[CAROL]).unwrap();
        assert_eq!(replaced, c, "{}", w.label);
        w.act(CAROL, |ua, now| ua.answer(now, c2, FakeSdp::new("carol")))
            .unwrap();
        w.wait_ended(&[(BOB, b1), (BOB, b2), (ALICE, a), (CAROL, c)]);
        assert!(w.phones[ALICE].answered(a2) && w.phones[CAROL].answered(c2));
        assert_eq!(
            w.phones[CAROL].end(c).map(|e| e.0),
            Some(EndCause::Replaced)
        );
        assert_eq!(
            w.phones[BOB].end(b1).map(|e| e.0),
            Some(EndCause::Transferred)
        );
        assert_eq!(
            w.phones[BOB].end(b2).map(|e| (e.0, e.1)),
            Some((EndCause::Bye, Originator::Remote))
        );
        w.act(CAROL, |ua, now| ua.hangup(now, c2)).unwrap();
        w.wait_ended(&[(ALICE, a2), (CAROL, c2)]);
        for (i, call) in [
            (ALICE, a),
            (ALICE, a2),
            (BOB, b1),
            (BOB, b2),
            (CAROL, c),
            (CAROL, c2),
        ] {
            assert_eq!(w.phones[i].ended(call).len(), 1, "{}: one end", w.label);
        }
        w.assert_settled();
    });
}

#[test]
fn a_transfer_without_its_subscription_is_done_at_the_202() {
    for_each_network(|seed, loss| {
        let mut w = World::new(seed, loss);
        let (a, b) = w.connect(ALICE, BOB);
        w.act(BOB, |ua, now| ua.transfer_with(now, b, "carol", true))
            .unwrap();
        assert!(
            w.run_until(60, |w| transfer_requested(&w.phones[ALICE], a).is_some()),
            "{}",
            w.label
        );
        let before = w.phones[CAROL].incoming().len();
        let a2 = w
            .act(ALICE, |ua, now| {
                ua.accept_transfer(now, a, FakeSdp::new("alice"))
            })
            .unwrap();
        // Bob's part ended at the 202 (RFC 4488): no NOTIFY, and alice's call to carol goes
        // on by itself.
        w.wait_ended(&[(BOB, b), (ALICE, a)]);
        assert_eq!(transfer_steps(&w.phones[BOB], b), [202], "{}", w.label);
        assert_eq!(
            w.phones[BOB].end(b).map(|e| e.0),
            Some(EndCause::Transferred)
        );
        assert!(sent(&w, ALICE, "NOTIFY ").is_empty(), "{}", w.label);
        assert!(w.run_until(60, |w| w.phones[CAROL].incoming().len() > before));
        let c = w.phones[CAROL].incoming()[before];
        w.act(CAROL, |ua, now| ua.answer(now, c, FakeSdp::new("carol")))
            .unwrap();
        assert!(
            w.run_until(60, |w| w.phones[ALICE].answered(a2)),
            "{}",
            w.label
        );
        w.act(ALICE, |ua, now| ua.hangup(now, a2)).unwrap();
        w.wait_ended(&[(ALICE, a2), (CAROL, c)]);
        w.assert_settled();
    });
}

fn published(p: &Phone, id: PublicationHandle) -> Vec<(String, u32)> {
    p.events
        .iter()
        .filter_map(|e| match e {
            Event::Published {
                publication,
                etag,
                expires,
            } if *publication == id => Some((etag.clone(), *expires)),
            _ => None,
        })
        .collect()
}

fn publication_ended(p: &Phone, id: PublicationHandle) -> Vec<u16> {
    p.events
        .iter()
        .filter_map(|e| match e {
            Event::PublicationEnded {
                publication,
                status,
                ..
            } if *publication == id => Some(*status),
            _ => None,
        })
        .collect()
}

/// PUBLISH requests alice sent, once each (loss makes retransmissions): whether each
/// carried SIP-If-Match, a body, and its Expires.
fn publishes(w: &World) -> Vec<(bool, bool, String)> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for m in sent(w, ALICE, "PUBLISH ") {
        let Ok(Message::Request(r)) = Message::parse(Bytes::from(m)) else {
            continue;
        };
        let cseq = r.cseq().unwrap().seq;
        if seen.contains(&cseq) {
            continue;
        }
        seen.push(cseq);
        let h = r.headers();
        out.push((
            h.get(HeaderName::SipIfMatch).is_some(),
            !r.body().is_empty(),
            h.get(HeaderName::Expires).unwrap_or_default().to_string(),
        ));
    }
    out
}

#[test]
fn presence_is_published_refreshed_modified_recovered_after_a_412_and_removed() {
    for_each_network(|seed, loss| {
        let mut w = World::new(seed, loss);
        let aor = "sip:alice@example.com";
        let open = Presence::basic(aor, true, Some("At my desk"));
        let options = PublishOptions::presence(&open).expires(600);
        let id = w.act(ALICE, |ua, now| ua.publish(now, options)).unwrap();
        // Challenged (401), then taken with an entity-tag.
        assert!(
            w.run_until(60, |w| !published(&w.phones[ALICE], id).is_empty()),
            "{}: published",
            w.label
        );
        let state = |w: &World| {
            w.proxy
                .registrar
                .published(w.sim.now(), aor, "presence")
                .into_iter()
                .map(|(ct, body)| {
                    assert_eq!(ct, pidf::CONTENT_TYPE);
                    Presence::parse(&body).unwrap()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(state(&w), std::slice::from_ref(&open), "{}", w.label);
        // Fifty minutes: refreshed at 80–90 % of 600 s, each with the last entity-tag and
        // no body, each answered with a new tag; the state never lapses.
        w.run(3000);
        let tags: Vec<String> = published(&w.phones[ALICE], id)
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        assert!(tags.len() >= 6, "{}: {tags:?} {:?}", w.label, publishes(&w));
        let mut distinct = tags.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            tags.len(),
            "{}: a new tag each time",
            w.label
        );
        assert_eq!(state(&w), std::slice::from_ref(&open), "{}", w.label);
        assert_eq!(
            w.act(ALICE, |ua, _| ua
                .publication_etag(id)
                .unwrap()
                .map(str::to_string)),
            tags.last().cloned()
        );
        // New state replaces the old one (a modification, not a second publication).
        let busy = Presence::basic(aor, true, None).activity("on-the-phone");
        let before = tags.len();
        w.act(ALICE, |ua, now| {
            ua.republish(now, id, pidf::CONTENT_TYPE, busy.to_xml())
        })
        .unwrap();
        assert!(
            w.run_until(60, |w| published(&w.phones[ALICE], id).len() > before),
            "{}: modified",
            w.label
        );
        assert_eq!(state(&w), std::slice::from_ref(&busy), "{}", w.label);
        // The server restarts and forgets: the next refresh gets 412, and the state goes
        // out again without SIP-If-Match.
        w.proxy.registrar.forget_bindings();
        assert!(state(&w).is_empty());
        assert!(
            w.run_until(600, |w| state(w).len() == 1),
            "{}: recovered after a 412",
            w.label
        );
        assert_eq!(state(&w), [busy], "{}", w.label);
        // Removed: Expires 0 with the tag; the publication ends with the 2xx.
        w.act(ALICE, |ua, now| ua.unpublish(now, id)).unwrap();
        assert!(
            w.run_until(60, |w| !publication_ended(&w.phones[ALICE], id).is_empty()),
            "{}: removed",
            w.label
        );
        assert_eq!(
            publication_ended(&w.phones[ALICE], id),
            [200],
            "{}",
            w.label
        );
        assert!(state(&w).is_empty(), "{}", w.label);
        assert_eq!(w.phones[ALICE].ua.publications().count(), 0);
        assert!(matches!(
            w.act(ALICE, |ua, now| ua.unpublish(now, id)),
            Err(UaError::NoSuchPublication(_))
        ));
        // On the wire: the first PUBLISH has the body and no tag; refreshes a tag and no
        // body; the modification both; after the 412 the body again without a tag; the
        // removal a tag, no body, Expires 0.
        let p = publishes(&w);
        assert_eq!(p.first(), Some(&(false, true, "600".into())), "{}", w.label);
        assert!(
            p.contains(&(true, false, "600".into())),
            "{}: {p:?}",
            w.label
        );
        assert!(
            p.contains(&(true, true, "600".into())),
            "{}: {p:?}",
            w.label
        );
        assert!(
            p.iter().skip(2).any(|x| *x == (false, true, "600".into())),
            "{}: {p:?}",
            w.label
        );
        assert_eq!(p.last(), Some(&(true, false, "0".into())), "{}", w.label);
    });
}

/// The dialog-info documents bob got on subscription `sub`, in order.
fn lamp(p: &Phone, sub: SubscriptionHandle) -> Vec<DialogInfo> {
    notified(p, sub)
        .into_iter()
        .filter(|(s, _)| *s == SubState::Active)
        .map(|(_, body)| DialogInfo::parse(&body).unwrap())
        .collect()
}

/// The states the lamp showed for the one call of each document that has one.
fn lamp_states(docs: &[DialogInfo]) -> Vec<(EntryState, Option<DialogDirection>)> {
    let mut states: Vec<(EntryState, Option<DialogDirection>)> = docs
        .iter()
        .filter_map(|d| d.dialogs.first().map(|e| (e.state, e.direction)))
        .collect();
    states.dedup();
    states
}

#[test]
fn a_busy_lamp_follows_alices_calls_by_the_dialog_package() {
    for_each_network(|seed, loss| {
        let mut w = World::with(seed, loss, &|c| c.event_packages = vec!["dialog".into()]);
        let options = SubscribeOptions::new("dialog")
            .accept(dialog_info::CONTENT_TYPE)
            .expires(600);
        let sub = w
            .act(BOB, |ua, now| ua.subscribe(now, "alice", options))
            .unwrap();
        assert!(
            w.run_until(60, |w| requested(&w.phones[ALICE]).is_some()),
            "{}: asked",
            w.label
        );
        let theirs = requested(&w.phones[ALICE]).unwrap();
        w.act(ALICE, |ua, now| ua.share_calls(now, theirs)).unwrap();
        assert!(
            w.run_until(60, |w| !lamp(&w.phones[BOB], sub).is_empty()),
            "{}: active",
            w.label
        );
        let idle = lamp(&w.phones[BOB], sub);
        assert!(idle[0].dialogs.is_empty() && !idle[0].busy(), "{}", w.label);
        assert_eq!(idle[0].entity, "sip:alice@example.com");

        // Carol calls alice: the lamp rings, lights, and goes out. Each step waits for
        // bob to see it before the next, so that each state has a document of its own.
        let shows = |w: &World, state: EntryState| {
            lamp(&w.phones[BOB], sub)
                .last()
                .is_some_and(|d| d.dialogs.iter().any(|e| e.state == state))
        };
        let (c, a) = w.ring(CAROL, ALICE);
        assert!(
            w.run_until(60, |w| shows(w, EntryState::Early)),
            "{}",
            w.label
        );
        w.act(ALICE, |ua, now| ua.answer(now, a, FakeSdp::new("alice")))
            .unwrap();
        assert!(
            w.run_until(60, |w| shows(w, EntryState::Confirmed)),
            "{}",
            w.label
        );
        w.act(CAROL, |ua, now| ua.hangup(now, c)).unwrap();
        w.wait_ended(&[(CAROL, c), (ALICE, a)]);
        assert!(
            w.run_until(60, |w| shows(w, EntryState::Terminated)),
            "{}: the lamp goes out",
            w.label
        );
        let docs = lamp(&w.phones[BOB], sub);
        let recipient = Some(DialogDirection::Recipient);
        assert_eq!(
            lamp_states(&docs),
            [
                (EntryState::Early, recipient),
                (EntryState::Confirmed, recipient),
                (EntryState::Terminated, recipient)
            ],
            "{}",
            w.label
        );
        let entry = &docs.last().unwrap().dialogs[0];
        assert_eq!(
            entry.remote.as_ref().unwrap().identity,
            "sip:carol@example.com"
        );
        assert!(entry.call_id.is_some() && entry.local_tag.is_some());
        // Each document a new version (a refresh's NOTIFY repeats the last one).
        let versions: Vec<u32> = docs.iter().map(|d| d.version).collect();
        assert!(versions.windows(2).all(|v| v[0] <= v[1]), "{versions:?}");
        assert_eq!(versions[0], 0);

        // Alice calls carol, who declines: initiator this time.
        let before = lamp(&w.phones[BOB], sub).len();
        let (a2, c2) = w.ring(ALICE, CAROL);
        assert!(
            w.run_until(60, |w| lamp(&w.phones[BOB], sub)[before..]
                .iter()
                .any(|d| d.busy())),
            "{}: lit while ringing",
            w.label
        );
        w.act(CAROL, |ua, now| ua.decline(now, c2, None)).unwrap();
        w.wait_ended(&[(ALICE, a2), (CAROL, c2)]);
        assert!(
            w.run_until(60, |w| lamp(&w.phones[BOB], sub).last().is_some_and(|d| d
                .dialogs
                .iter()
                .any(|e| e.state == EntryState::Terminated
                    && e.direction == Some(DialogDirection::Initiator)))),
            "{}: the outgoing call is shown and ends",
            w.label
        );
        // Bob stops watching; alice's next call notifies nobody.
        w.act(BOB, |ua, now| ua.unsubscribe(now, sub)).unwrap();
        assert!(
            w.run_until(60, |w| !sub_ended(&w.phones[BOB], sub).is_empty()),
            "{}: unsubscribed",
            w.label
        );
        w.assert_settled();
    });
}

/// The presence documents bob got on subscription `sub` while it was active.
fn buddy(p: &Phone, sub: SubscriptionHandle) -> Vec<Presence> {
    notified(p, sub)
        .into_iter()
        .filter(|(s, _)| *s == SubState::Active)
        .map(|(_, body)| Presence::parse(&body).unwrap())
        .collect()
}

#[test]
fn the_embedded_server_tells_watchers_what_a_user_publishes() {
    for_each_network(|seed, loss| {
        let mut w = World::new(seed, loss);
        let aor = "sip:alice@example.com";
        let options = SubscribeOptions::new("presence")
            .accept(pidf::CONTENT_TYPE)
            .expires(600);
        let sub = w
            .act(BOB, |ua, now| ua.subscribe(now, "alice", options))
            .unwrap();
        // Nothing published yet: a document without tuples.
        assert!(
            w.run_until(60, |w| !buddy(&w.phones[BOB], sub).is_empty()),
            "{}: watching",
            w.label
        );
        let first = buddy(&w.phones[BOB], sub).remove(0);
        assert_eq!(first.entity, aor);
        assert!(first.tuples.is_empty() && !first.is_open(), "{}", w.label);
        let shows = |w: &World, f: &dyn Fn(&Presence) -> bool| {
            buddy(&w.phones[BOB], sub).last().is_some_and(f)
        };
        // Alice publishes; bob hears it.
        let open = Presence::basic(aor, true, Some("At my desk"));
        let id = w
            .act(ALICE, |ua, now| {
                ua.publish(now, PublishOptions::presence(&open).expires(600))
            })
            .unwrap();
        assert!(
            w.run_until(60, |w| shows(w, &|p| p.is_open()
                && p.note() == Some("At my desk"))),
            "{}: open {:?}",
            w.label,
            notified(&w.phones[BOB], sub)
        );
        // Fifty minutes: both refresh (bob's SUBSCRIBE inside the agent's dialog, alice's
        // PUBLISH by entity-tag); nothing lapses.
        w.run(3000);
        assert!(w.phones[BOB].ua.subscriptions().any(|s| s == sub));
        assert!(sub_ended(&w.phones[BOB], sub).is_empty(), "{}", w.label);
        assert!(shows(&w, &|p| p.is_open()), "{}", w.label);
        // A change of state, then its removal.
        let busy = Presence::basic(aor, true, None).activity("on-the-phone");
        w.act(ALICE, |ua, now| {
            ua.republish(now, id, pidf::CONTENT_TYPE, busy.to_xml())
        })
        .unwrap();
        assert!(
            w.run_until(60, |w| shows(w, &|p| p.activities == ["on-the-phone"])),
            "{}: on the phone",
            w.label
        );
        w.act(ALICE, |ua, now| ua.unpublish(now, id)).unwrap();
        assert!(
            w.run_until(60, |w| shows(w, &|p| p.tuples.is_empty())),
            "{}: gone",
            w.label
        );
        w.act(BOB, |ua, now| ua.unsubscribe(now, sub)).unwrap();
        assert!(
            w.run_until(60, |w| !sub_ended(&w.phones[BOB], sub).is_empty()),
            "{}: unsubscribed",
            w.label
        );
        w.assert_settled();
    });
}
