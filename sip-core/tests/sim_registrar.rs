//! User agents and the embedded registrar in the simulator: digest registration, MESSAGE
//! routed through the registrar both ways, unknown and unregistered targets, and the
//! registrar losing its bindings — at 0 % and at 20 % loss with reordering; calls to
//! conference rooms routed to the focus; group memberships kept by the focus.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sansip_core::auth::DigestCredentials;
use sansip_core::conference::{RoomError, RoomId};
use sansip_core::message::NameAddr;
use sansip_core::registrar::{Registrar, RegistrarConfig};
use sansip_core::session::FakeSdp;
use sansip_core::sim::{LinkConfig, Network, Node, RegistrarNode, Sim};
use sansip_core::subscription::conference_info::{CONTENT_TYPE, ConferenceInfo};
use sansip_core::transport::{FlowId, FlowInfo, Transport};
use sansip_core::ua::{
    CallOptions, Event, Input, Output, SubscribeOptions, UaConfig, UaError, UserAgent,
};

/// The origin of virtual time: any instant works, the simulation only adds to it.
#[allow(clippy::disallowed_methods)]
fn origin() -> Instant {
    Instant::now()
}

const REGISTRAR: &str = "127.0.0.1:5060";

struct UaNode {
    addr: SocketAddr,
    ua: UserAgent<FakeSdp>,
    flow: FlowId,
    events: Vec<(Duration, Event)>,
    start: Instant,
    pending: Vec<Bytes>,
}

impl UaNode {
    fn new(user: &str, password: &str, port: u16, now: Instant, seed: u64) -> Self {
        Self::with(user, password, port, now, seed, |_| {})
    }

    fn with(
        user: &str,
        password: &str,
        port: u16,
        now: Instant,
        seed: u64,
        edit: impl FnOnce(&mut UaConfig),
    ) -> Self {
        let mut config = UaConfig::new(format!("sip:{user}@example.com"));
        config.credentials = Some(DigestCredentials::new(user, password));
        edit(&mut config);
        let mut ua = UserAgent::new(config, now, seed);
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
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
            start: now,
            pending: Vec::new(),
        }
    }

    fn drain(&mut self, now: Instant) {
        while let Some(o) = self.ua.poll_output() {
            match o {
                Output::Transmit { bytes, .. } => self.pending.push(bytes),
                Output::Event(e) => self.events.push((now - self.start, e)),
                _ => {}
            }
        }
    }

    fn saw(&self, f: impl Fn(&Event) -> bool) -> bool {
        self.events.iter().any(|(_, e)| f(e))
    }
}

impl Node for UaNode {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn handle_datagram(&mut self, now: Instant, _from: SocketAddr, bytes: Bytes) {
        self.ua.handle_input(
            now,
            Input::Received {
                flow: self.flow,
                bytes,
            },
        );
        self.drain(now);
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.ua.handle_timeout(now);
        self.drain(now);
    }
    fn poll_transmit(&mut self) -> Option<(SocketAddr, Bytes)> {
        if self.pending.is_empty() {
            None
        } else {
            Some((REGISTRAR.parse().unwrap(), self.pending.remove(0)))
        }
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.ua.poll_timeout()
    }
}

fn world(seed: u64, loss: f32) -> (Sim, RegistrarNode, UaNode, UaNode) {
    let link = LinkConfig {
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(15),
        loss,
        duplicate: 0.0,
    };
    let sim = Sim::new(origin(), Network::new(seed, link));
    let mut config = RegistrarConfig::new("example.com");
    config.users = vec![
        ("alice".into(), "alice-pw".into()),
        ("bob".into(), "bob-pw".into()),
        ("carol".into(), "carol-pw".into()),
    ];
    let registrar = RegistrarNode::new(REGISTRAR.parse().unwrap(), Registrar::new(config, seed));
    let alice = UaNode::new("alice", "alice-pw", 5071, sim.now(), seed ^ 1);
    let bob = UaNode::new("bob", "bob-pw", 5072, sim.now(), seed ^ 2);
    (sim, registrar, alice, bob)
}

fn scenario(seed: u64, loss: f32) {
    let (mut sim, mut registrar, mut alice, mut bob) = world(seed, loss);
    let now = sim.now();
    alice.ua.register(now, 600).unwrap();
    bob.ua.register(now, 600).unwrap();
    alice.drain(now);
    bob.drain(now);
    let registered = sim.run_until(
        &mut [&mut registrar, &mut alice, &mut bob],
        Duration::from_secs(120),
        |_| false,
    );
    let _ = registered;
    assert!(
        alice.ua.is_registered() && bob.ua.is_registered(),
        "seed {seed} loss {loss}: both registered"
    );
    assert_eq!(registrar.registrar.location().len(), 2);

    // MESSAGE through the registrar, both ways.
    let t = sim.now();
    let to_bob = alice
        .ua
        .message(t, "bob", "text/plain", "hello bob", &[])
        .unwrap();
    let to_alice = bob
        .ua
        .message(t, "sip:alice@example.com", "text/plain", "hi alice", &[])
        .unwrap();
    let nobody = alice
        .ua
        .message(t, "nobody", "text/plain", "?", &[])
        .unwrap();
    let carol = alice
        .ua
        .message(t, "carol", "text/plain", "?", &[])
        .unwrap();
    alice.drain(t);
    bob.drain(t);
    sim.run_until(
        &mut [&mut registrar, &mut alice, &mut bob],
        Duration::from_secs(200),
        |_| false,
    );
    assert!(bob.saw(|e| matches!(e, Event::MessageReceived { body, from, .. } if &body[..] == b"hello bob" && from.contains("alice"))));
    assert!(
        alice.saw(|e| matches!(e, Event::MessageReceived { body, .. } if &body[..] == b"hi alice"))
    );
    let status = |n: &UaNode, id| {
        n.events.iter().find_map(|(_, e)| match e {
            Event::RequestCompleted { id: x, status, .. } if *x == id => Some(*status),
            _ => None,
        })
    };
    assert_eq!(status(&alice, to_bob), Some(200), "seed {seed} loss {loss}");
    assert_eq!(status(&bob, to_alice), Some(200));
    assert_eq!(status(&alice, nobody), Some(404), "unknown user");
    assert_eq!(status(&alice, carol), Some(480), "known but not registered");

    // The registrar restarts and forgets everyone: messages fail until the next refresh.
    registrar.registrar.forget_bindings();
    let t = sim.now();
    let lost = bob
        .ua
        .message(t, "alice", "text/plain", "are you there?", &[])
        .unwrap();
    bob.drain(t);
    // Refreshes fall at 50–70 % of 600 s after registering; by 500 s both have re-registered.
    sim.run_until(
        &mut [&mut registrar, &mut alice, &mut bob],
        Duration::from_secs(560),
        |_| false,
    );
    assert_eq!(status(&bob, lost), Some(480));
    assert_eq!(
        registrar.registrar.location().len(),
        2,
        "the refresh registered both again"
    );
    let t = sim.now();
    let again = bob
        .ua
        .message(t, "alice", "text/plain", "back?", &[])
        .unwrap();
    bob.drain(t);
    sim.run_until(
        &mut [&mut registrar, &mut alice, &mut bob],
        Duration::from_secs(700),
        |_| false,
    );
    assert_eq!(status(&bob, again), Some(200));
    assert!(
        alice.saw(|e| matches!(e, Event::MessageReceived { body, .. } if &body[..] == b"back?"))
    );
}

#[test]
fn registration_and_messages_through_the_registrar_without_loss() {
    scenario(1, 0.0);
}

#[test]
fn registration_and_messages_through_the_registrar_with_20_percent_loss() {
    for seed in 1..=20 {
        scenario(seed, 0.2);
    }
}

#[test]
fn calls_to_rooms_reach_the_user_registered_as_the_conference_focus() {
    let link = LinkConfig {
        latency: Duration::from_millis(20),
        jitter: Duration::from_millis(5),
        loss: 0.0,
        duplicate: 0.0,
    };
    let mut sim = Sim::new(origin(), Network::new(7, link));
    let mut config = RegistrarConfig::new("example.com");
    config.users = vec![
        ("alice".into(), "alice-pw".into()),
        ("focus".into(), "focus-pw".into()),
    ];
    config.conference_user = Some("focus".into());
    let mut registrar = RegistrarNode::new(REGISTRAR.parse().unwrap(), Registrar::new(config, 7));
    let mut alice = UaNode::new("alice", "alice-pw", 5071, sim.now(), 1);
    let mut focus = UaNode::new("focus", "focus-pw", 5079, sim.now(), 2);
    let now = sim.now();
    alice.ua.register(now, 600).unwrap();
    focus.ua.register(now, 600).unwrap();
    alice.drain(now);
    focus.drain(now);
    sim.run_until(
        &mut [&mut registrar, &mut alice, &mut focus],
        Duration::from_secs(10),
        |_| false,
    );
    assert!(alice.ua.is_registered() && focus.ua.is_registered());

    let t = sim.now();
    let options = CallOptions::default;
    for room in ["weekly sync", "Ü/1"] {
        alice
            .ua
            .call_conference(t, room, options(), FakeSdp::new("a"))
            .unwrap();
    }
    // Not a room, and nobody registered as it: refused as before.
    alice
        .ua
        .call(t, "roomy", options(), FakeSdp::new("a"))
        .unwrap();
    alice.drain(t);
    sim.run_until(
        &mut [&mut registrar, &mut alice, &mut focus],
        Duration::from_secs(20),
        |_| false,
    );
    let rooms: Vec<String> = focus
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::IncomingCall { to, .. } => {
                let user = NameAddr::parse(to).ok()?.uri().user()?.to_string();
                Some(RoomId::from_user(&user)?.to_string())
            }
            _ => None,
        })
        .collect();
    assert_eq!(rooms, ["weekly sync", "Ü/1"]);
    assert!(alice.saw(|e| matches!(e, Event::CallEnded { end, .. } if end.status == Some(404))));
    assert_eq!(
        alice
            .ua
            .call_conference(t, "", options(), FakeSdp::new("a")),
        Err(UaError::InvalidRoom(RoomError::Empty))
    );
}

/// The members of the last group document `node` got.
fn last_members(node: &UaNode) -> Option<(u32, Vec<String>)> {
    node.events.iter().rev().find_map(|(_, e)| match e {
        Event::Notified {
            content_type, body, ..
        } if content_type == CONTENT_TYPE => {
            let info = ConferenceInfo::parse(body).ok()?;
            Some((
                info.version,
                info.users.into_iter().map(|u| u.entity).collect(),
            ))
        }
        _ => None,
    })
}

/// Groups (issue 17 §3) as the server keeps them: three members subscribe to
/// `group-g` through the registrar, which routes the group to the focus; each gets the
/// members in the order they joined. One unsubscribes and the others are told; one
/// vanishes without a word and is dropped when its membership expires (the server's NOTIFY
/// to it times out first). The focus's application never sees these subscriptions.
#[test]
fn the_focus_keeps_group_members_in_join_order_and_drops_the_silent() {
    let mut sim = Sim::new(origin(), Network::new(9, LinkConfig::default()));
    let mut config = RegistrarConfig::new("example.com");
    let users = ["alice", "bob", "carol", "focus"];
    config.users = users
        .iter()
        .map(|u| (u.to_string(), format!("{u}-pw")))
        .collect();
    config.conference_user = Some("focus".into());
    let mut registrar = RegistrarNode::new(REGISTRAR.parse().unwrap(), Registrar::new(config, 9));
    let now = sim.now();
    let mut focus = UaNode::with("focus", "focus-pw", 5079, now, 4, |c| c.serve_groups = true);
    let mut members: Vec<UaNode> = users[..3]
        .iter()
        .enumerate()
        .map(|(i, u)| UaNode::new(u, &format!("{u}-pw"), 5071 + i as u16, now, i as u64))
        .collect();
    focus.ua.register(now, 600).unwrap();
    focus.drain(now);
    sim.run_until(
        &mut [&mut registrar, &mut focus],
        Duration::from_secs(5),
        |_| false,
    );
    assert!(focus.ua.is_registered());
    let options = || {
        SubscribeOptions::new("conference")
            .accept(CONTENT_TYPE)
            .expires(120)
    };
    let mut subs = Vec::new();
    for i in 0..3 {
        let t = sim.now();
        let m = &mut members[i];
        subs.push(
            m.ua.subscribe(t, "sip:group-g@example.com", options())
                .unwrap(),
        );
        m.drain(t);
        let [alice, bob, carol] = &mut members[..] else {
            unreachable!()
        };
        let limit = sim.elapsed() + Duration::from_secs(2);
        sim.run_until(
            &mut [&mut registrar, &mut focus, alice, bob, carol],
            limit,
            |_| false,
        );
    }
    let [alice, bob, carol] = &mut members[..] else {
        unreachable!()
    };
    let all: Vec<String> = users[..3]
        .iter()
        .map(|u| format!("sip:{u}@example.com"))
        .collect();
    assert_eq!(last_members(alice), Some((3, all.clone())));
    assert_eq!(last_members(bob), Some((2, all.clone())));
    assert_eq!(last_members(carol), Some((1, all.clone())));
    assert!(
        !focus.saw(|e| matches!(e, Event::SubscriptionRequested { .. })),
        "memberships are the focus's user agent's own"
    );

    // bob leaves.
    let t = sim.now();
    bob.ua.unsubscribe(t, subs[1]).unwrap();
    bob.drain(t);
    let limit = sim.elapsed() + Duration::from_secs(2);
    sim.run_until(
        &mut [&mut registrar, &mut focus, alice, bob, carol],
        limit,
        |_| false,
    );
    let without_bob = vec![all[0].clone(), all[2].clone()];
    assert_eq!(last_members(alice), Some((4, without_bob.clone())));
    assert_eq!(last_members(carol), Some((2, without_bob)));

    // carol vanishes: only alice, the focus and the registrar run on. carol's
    // membership ends by itself; alice is told.
    let alice_only = Some((5, vec![all[0].clone()]));
    let limit = sim.elapsed() + Duration::from_secs(200);
    sim.run_until(&mut [&mut registrar, &mut focus, alice], limit, |_| false);
    assert_eq!(last_members(alice), alice_only);
    assert!(
        alice.ua.subscription_state(subs[0]).is_ok(),
        "alice refreshed hers"
    );
}
