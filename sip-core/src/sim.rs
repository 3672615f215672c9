//! Deterministic simulation: a virtual clock and a seeded network for sans-IO parties.
//!
//! Every party implements [`Node`]. [`Sim::step`] delivers what is due, fires what is due,
//! and then jumps the clock straight to the earliest pending deadline of any node or link —
//! so a 32-second timer B costs microseconds of wall time, and a scenario replays exactly from
//! its seed. Links are [`str0m_netem`] emulators (latency, jitter, random loss, duplication,
//! reordering), one per direction, each seeded from the simulation seed and its endpoints.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use sansip_core::sim::{LinkConfig, Network, Sim};
//! let link = LinkConfig { latency: Duration::from_millis(20), loss: 0.3, ..LinkConfig::default() };
//! # #[allow(clippy::disallowed_methods)]
//! let mut sim = Sim::new(Instant::now(), Network::new(7, link));
//! assert_eq!(sim.elapsed(), Duration::ZERO);
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use str0m_netem::{Input, Netem, NetemConfig, Probability, RandomLoss, WithLen};

use crate::registrar::Registrar;
use crate::transport::{FlowId, FlowInfo, Transport};
use crate::ua;

/// One datagram in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// Sender.
    pub from: SocketAddr,
    /// Receiver.
    pub to: SocketAddr,
    /// Payload.
    pub bytes: Bytes,
}

impl WithLen for Datagram {
    fn len(&self) -> usize {
        self.bytes.len()
    }
}

/// How one direction of a link treats datagrams.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkConfig {
    /// One-way delay.
    pub latency: Duration,
    /// Uniform jitter around the latency; jitter larger than the gap between two datagrams
    /// reorders them.
    pub jitter: Duration,
    /// Probability (0..=1) that a datagram is lost.
    pub loss: f32,
    /// Probability (0..=1) that a datagram is delivered twice.
    pub duplicate: f32,
}

impl Default for LinkConfig {
    /// 10 ms one way, no jitter, no loss, no duplication.
    fn default() -> Self {
        Self {
            latency: Duration::from_millis(10),
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
        }
    }
}

impl LinkConfig {
    fn netem(&self, seed: u64) -> NetemConfig {
        let mut c = NetemConfig::new()
            .latency(self.latency)
            .jitter(self.jitter)
            .seed(seed);
        if self.loss > 0.0 {
            c = c.loss(RandomLoss::new(Probability::new(self.loss)));
        }
        if self.duplicate > 0.0 {
            c = c.duplicate(Probability::new(self.duplicate));
        }
        c
    }
}

/// Counters of what the network did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Datagrams handed to the network.
    pub sent: u64,
    /// Datagrams delivered (duplicates count twice; lost ones not at all).
    pub delivered: u64,
    /// Datagrams addressed to nobody.
    pub undeliverable: u64,
}

/// The simulated network: one emulated link per (sender, receiver) pair.
pub struct Network {
    seed: u64,
    default_link: LinkConfig,
    overrides: BTreeMap<(SocketAddr, SocketAddr), LinkConfig>,
    links: BTreeMap<(SocketAddr, SocketAddr), Netem<Datagram>>,
    stats: NetStats,
}

impl Network {
    /// A network whose links all behave as `default_link`, seeded with `seed`.
    pub fn new(seed: u64, default_link: LinkConfig) -> Self {
        Self {
            seed,
            default_link,
            overrides: BTreeMap::new(),
            links: BTreeMap::new(),
            stats: NetStats::default(),
        }
    }

    /// Gives the direction `from → to` its own behaviour (before its first datagram).
    pub fn set_link(&mut self, from: SocketAddr, to: SocketAddr, config: LinkConfig) {
        self.overrides.insert((from, to), config);
        self.links.remove(&(from, to));
    }

    /// Counters.
    pub fn stats(&self) -> NetStats {
        self.stats
    }

    /// Hands a datagram to the network at `now`.
    pub fn send(&mut self, now: Instant, d: Datagram) {
        self.stats.sent += 1;
        let key = (d.from, d.to);
        let link = self.links.entry(key).or_insert_with(|| {
            let cfg = self
                .overrides
                .get(&key)
                .copied()
                .unwrap_or(self.default_link);
            Netem::new(cfg.netem(link_seed(self.seed, key)))
        });
        link.handle_input(Input::Packet(now, d));
    }

    /// When the next datagram arrives somewhere.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.links
            .values()
            .filter(|l| !l.is_empty())
            .map(|l| l.poll_timeout())
            .min()
    }

    /// The next datagram due at or before `now`, links taken in a fixed order.
    pub fn poll_deliver(&mut self, now: Instant) -> Option<Datagram> {
        for link in self.links.values_mut() {
            if link.is_empty() || link.poll_timeout() > now {
                continue;
            }
            link.handle_input(Input::Timeout(now));
            while let Some(out) = link.poll_output() {
                if let str0m_netem::Output::Packet(d) = out {
                    self.stats.delivered += 1;
                    return Some(d);
                }
            }
        }
        None
    }
}

fn link_seed(seed: u64, (from, to): (SocketAddr, SocketAddr)) -> u64 {
    // FNV-1a over the endpoints: stable across runs and platforms, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in from
        .to_string()
        .bytes()
        .chain([b'>'])
        .chain(to.to_string().bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A sans-IO party on the simulated network.
pub trait Node {
    /// The address datagrams for this node are sent to.
    fn addr(&self) -> SocketAddr;
    /// A datagram arrived.
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: Bytes);
    /// The clock reached (at least) the node's `poll_timeout`.
    fn handle_timeout(&mut self, now: Instant);
    /// The next datagram to send, as (destination, payload).
    fn poll_transmit(&mut self) -> Option<(SocketAddr, Bytes)>;
    /// The node's next deadline.
    fn poll_timeout(&self) -> Option<Instant>;
}

/// The embedded registrar and proxy as a party on the simulated network, over UDP: each
/// peer address becomes a flow of its own.
#[derive(Debug)]
pub struct RegistrarNode {
    addr: SocketAddr,
    /// The registrar, for inspection (bindings, stats) and for tests that disturb it.
    pub registrar: Registrar,
    peers: HashMap<FlowId, SocketAddr>,
    pending: VecDeque<(SocketAddr, Bytes)>,
}

impl RegistrarNode {
    /// `registrar` listening at `addr`.
    pub fn new(addr: SocketAddr, registrar: Registrar) -> Self {
        Self {
            addr,
            registrar,
            peers: HashMap::new(),
            pending: VecDeque::new(),
        }
    }

    fn drain(&mut self) {
        while let Some(o) = self.registrar.poll_output() {
            if let ua::Output::Transmit { flow, bytes } = o
                && let Some(to) = self.peers.get(&flow)
            {
                self.pending.push_back((*to, bytes));
            }
        }
    }
}

impl Node for RegistrarNode {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: Bytes) {
        let flow = self.registrar.flow_for(FlowInfo {
            transport: Transport::Udp,
            local: self.addr,
            remote: from,
        });
        self.peers.insert(flow, from);
        self.registrar
            .handle_input(now, ua::Input::Received { flow, bytes });
        self.drain();
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.registrar.handle_timeout(now);
        self.drain();
    }
    fn poll_transmit(&mut self) -> Option<(SocketAddr, Bytes)> {
        self.pending.pop_front()
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.registrar.poll_timeout()
    }
}

/// Rounds of delivery at one instant before the simulator calls it a livelock (a node whose
/// `poll_timeout` stays in the past, or two nodes answering each other forever).
const SETTLE_LIMIT: usize = 100_000;

/// The virtual clock plus the network.
pub struct Sim {
    start: Instant,
    now: Instant,
    /// The network, for stats and per-link settings.
    pub net: Network,
    steps: u64,
}

impl Sim {
    /// A simulation whose virtual clock starts at `start`. Any instant will do: the
    /// simulation only ever adds to it, so the caller (a test) picks the origin.
    pub fn new(start: Instant, net: Network) -> Self {
        Self {
            start,
            now: start,
            net,
            steps: 0,
        }
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// How many times the clock has advanced.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Settles everything due now (transmits, deliveries, timeouts), then advances the clock
    /// to the next deadline and settles that. Returns `false` when nothing is pending anywhere.
    pub fn step(&mut self, nodes: &mut [&mut dyn Node]) -> bool {
        self.step_capped(nodes, None)
    }

    /// Like [`Sim::step`], but never moves the clock past `cap`; when nothing is pending
    /// the clock still moves to `cap`.
    fn step_capped(&mut self, nodes: &mut [&mut dyn Node], cap: Option<Instant>) -> bool {
        self.settle(nodes);
        let next_node = nodes.iter().filter_map(|n| n.poll_timeout()).min();
        let next = match (next_node, self.net.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let pending = next.is_some();
        let target = match (next, cap) {
            (Some(n), Some(c)) => n.min(c),
            (Some(n), None) => n,
            (None, Some(c)) => c,
            (None, None) => return false,
        };
        self.now = self.now.max(target);
        self.steps += 1;
        self.settle(nodes);
        pending
    }

    /// Steps until `until` returns true or virtual time reaches `limit` after the start
    /// (the clock ends exactly there). Returns whether `until` became true.
    pub fn run_until(
        &mut self,
        nodes: &mut [&mut dyn Node],
        limit: Duration,
        mut until: impl FnMut(&mut [&mut dyn Node]) -> bool,
    ) -> bool {
        let deadline = self.start + limit;
        loop {
            if until(nodes) {
                return true;
            }
            if self.now >= deadline {
                self.settle(nodes);
                return until(nodes);
            }
            self.step_capped(nodes, Some(deadline));
        }
    }

    /// Steps until nothing is pending or virtual time passes `limit`; returns whether the
    /// simulation went quiet (`false` means it was still busy at the limit: a livelock).
    pub fn run_to_quiet(&mut self, nodes: &mut [&mut dyn Node], limit: Duration) -> bool {
        let deadline = self.start + limit;
        while self.now < deadline {
            if !self.step(nodes) {
                return true;
            }
        }
        false
    }

    fn settle(&mut self, nodes: &mut [&mut dyn Node]) {
        let now = self.now;
        for _ in 0..SETTLE_LIMIT {
            let mut progressed = false;
            for n in nodes.iter_mut() {
                if n.poll_timeout().is_some_and(|t| t <= now) {
                    n.handle_timeout(now);
                    progressed = true;
                }
                let from = n.addr();
                while let Some((to, bytes)) = n.poll_transmit() {
                    self.net.send(now, Datagram { from, to, bytes });
                    progressed = true;
                }
            }
            while let Some(d) = self.net.poll_deliver(now) {
                progressed = true;
                match nodes.iter_mut().find(|n| n.addr() == d.to) {
                    Some(n) => n.handle_datagram(now, d.from, d.bytes),
                    None => self.net.stats.undeliverable += 1,
                }
            }
            if !progressed {
                return;
            }
        }
        panic!("simulation livelock: still busy after {SETTLE_LIMIT} rounds at one instant");
    }
}
