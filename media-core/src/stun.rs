//! Server-reflexive candidates (RFC 8445 §5.1.1.2): a STUN Binding request (RFC 8489) from
//! every media socket to every STUN server; the XOR-MAPPED-ADDRESS of the answer is the
//! socket's address as the far side of a NAT sees it.
//!
//! Sans-IO like the rest: [`Gatherer::handle_timeout`] queues requests (and their
//! retransmissions, RFC 8489 §6.2.1, bounded so a call never waits long for a server that
//! is not there), [`Gatherer::handle_receive`] claims the answers, and
//! [`Gatherer::reflexive`] lists what was found. A found mapping is refreshed every
//! [`REFRESH`], which also keeps the NAT binding open between calls.
//!
//! Only Binding requests without credentials are needed here: the request is 20 bytes and
//! the answer's one attribute of interest a dozen, so both are written and read here.
//! (str0m's STUN parser is built for ICE checks and wants their attributes; TURN, which
//! needs long-term credentials, allocations and permissions, is where a client crate such
//! as `turn-client-proto` would earn its place.)

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::stats::MediaTransmit;

/// The magic cookie of RFC 8489 §5.
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
/// The first retransmission timeout; it doubles with each retransmission.
const RTO: Duration = Duration::from_millis(500);
/// Requests per attempt (RFC 8489 suggests 7; a call setup cannot wait 39.5 s).
const TRIES: u32 = 3;
/// How long after the last request an attempt gives up.
const LAST_WAIT: Duration = Duration::from_secs(2);
/// How often a found mapping is asked again: under the 30 s many NATs keep a UDP binding.
pub const REFRESH: Duration = Duration::from_secs(25);

/// One socket asking one server.
#[derive(Debug)]
struct Probe {
    local: SocketAddr,
    server: SocketAddr,
    transaction: [u8; 12],
    /// Requests sent in this attempt.
    sent: u32,
    next: Instant,
    mapped: Option<SocketAddr>,
    /// This attempt ended without an answer (the server may be down; we ask again later).
    gave_up: bool,
}

/// Gathers server-reflexive candidates for a phone's media sockets: see the module docs.
#[derive(Debug)]
pub struct Gatherer {
    probes: Vec<Probe>,
    out: VecDeque<MediaTransmit>,
    /// xorshift state for transaction ids (RFC 8489 §6: random; the seed makes runs replay).
    rng: u64,
}

impl Gatherer {
    /// Asks every server in `servers` from every address in `locals`, from `now` on.
    pub fn new(locals: &[SocketAddr], servers: &[SocketAddr], now: Instant, seed: u64) -> Self {
        let mut g = Gatherer {
            probes: Vec::new(),
            out: VecDeque::new(),
            rng: seed | 1,
        };
        for &local in locals {
            for &server in servers.iter().filter(|s| s.is_ipv4() == local.is_ipv4()) {
                let transaction = g.transaction();
                g.probes.push(Probe {
                    local,
                    server,
                    transaction,
                    sent: 0,
                    next: now,
                    mapped: None,
                    gave_up: false,
                });
            }
        }
        g
    }

    /// Whether every probe has an answer or has given up: what a caller waits for before
    /// its first offer.
    pub fn is_settled(&self) -> bool {
        self.probes.iter().all(|p| p.mapped.is_some() || p.gave_up)
    }

    /// The server-reflexive addresses found, each with its base (the local socket).
    pub fn reflexive(&self) -> impl Iterator<Item = (SocketAddr, SocketAddr)> + '_ {
        self.probes
            .iter()
            .filter_map(|p| p.mapped.map(|m| (m, p.local)))
    }

    /// When [`Gatherer::handle_timeout`] is next needed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.probes.iter().map(|p| p.next).min()
    }

    /// Sends what is due: first requests, retransmissions, refreshes; ends attempts whose
    /// last request went unanswered.
    pub fn handle_timeout(&mut self, now: Instant) {
        for i in 0..self.probes.len() {
            if self.probes[i].next > now {
                continue;
            }
            if self.probes[i].sent >= TRIES {
                // Unanswered: keep what an earlier attempt found, and ask again later.
                let p = &mut self.probes[i];
                p.gave_up = true;
                p.sent = 0;
                p.next = now + REFRESH;
                continue;
            }
            if self.probes[i].sent == 0 {
                self.probes[i].transaction = self.transaction();
            }
            let p = &mut self.probes[i];
            p.sent += 1;
            p.next = if p.sent < TRIES {
                now + RTO * (1 << (p.sent - 1))
            } else {
                now + LAST_WAIT
            };
            let mut request = Vec::with_capacity(20);
            request.extend_from_slice(&[0x00, 0x01, 0x00, 0x00]); // Binding request, no attributes
            request.extend_from_slice(&MAGIC_COOKIE);
            request.extend_from_slice(&p.transaction);
            self.out.push_back(MediaTransmit {
                source: p.local,
                destination: p.server,
                contents: Bytes::from(request),
            });
        }
    }

    /// The next request to send.
    pub fn poll_transmit(&mut self) -> Option<MediaTransmit> {
        self.out.pop_front()
    }

    /// Takes `datagram` if it answers one of our requests (whatever it says); `false`
    /// leaves it to the calls.
    pub fn handle_receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        datagram: &[u8],
    ) -> bool {
        if datagram.len() < 20 || datagram[4..8] != MAGIC_COOKIE {
            return false;
        }
        let Some(p) = self.probes.iter_mut().find(|p| {
            p.server == source
                && p.local == destination
                && p.sent > 0
                && datagram[8..20] == p.transaction
        }) else {
            return false;
        };
        match (datagram[0..2] == [0x01, 0x01], mapped_address(datagram)) {
            (true, Some(mapped)) => {
                if p.mapped != Some(mapped) {
                    tracing::debug!(local = %p.local, server = %p.server, %mapped, "server-reflexive address");
                }
                p.mapped = Some(mapped);
            }
            _ => tracing::debug!(server = %p.server, "STUN binding refused or unreadable"),
        }
        p.gave_up = p.mapped.is_none();
        p.sent = 0;
        p.next = now + REFRESH;
        true
    }

    fn transaction(&mut self) -> [u8; 12] {
        let mut t = [0u8; 12];
        for chunk in t.chunks_mut(4) {
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 7;
            self.rng ^= self.rng << 17;
            chunk.copy_from_slice(&self.rng.to_le_bytes()[..4]);
        }
        t
    }
}

/// The XOR-MAPPED-ADDRESS of a Binding response (RFC 8489 §14.2), or the MAPPED-ADDRESS an
/// RFC 3489 server sends instead (§14.1).
fn mapped_address(message: &[u8]) -> Option<SocketAddr> {
    let length = usize::from(u16::from_be_bytes([message[2], message[3]]));
    let body = message.get(20..20 + length)?;
    let mut plain = None;
    let mut at = 0;
    while at + 4 <= body.len() {
        let kind = u16::from_be_bytes([body[at], body[at + 1]]);
        let len = usize::from(u16::from_be_bytes([body[at + 2], body[at + 3]]));
        let value = body.get(at + 4..at + 4 + len)?;
        match kind {
            0x0020 => return address(value, Some(&message[4..20])),
            0x0001 => plain = address(value, None),
            _ => {}
        }
        at += 4 + len.div_ceil(4) * 4;
    }
    plain
}

/// A (XOR-)MAPPED-ADDRESS value; `xor` is the cookie and transaction id it is masked with.
fn address(value: &[u8], xor: Option<&[u8]>) -> Option<SocketAddr> {
    let mask = |i: usize| xor.map_or(0, |x| x[i]);
    let port = u16::from_be_bytes([value.get(2)? ^ mask(0), value.get(3)? ^ mask(1)]);
    let ip: std::net::IpAddr = match value.get(1)? {
        0x01 => {
            let o: [u8; 4] = std::array::from_fn(|i| value.get(4 + i).map_or(0, |b| b ^ mask(i)));
            (value.len() >= 8).then_some(o.into())?
        }
        0x02 => {
            let o: [u8; 16] = std::array::from_fn(|i| value.get(4 + i).map_or(0, |b| b ^ mask(i)));
            (value.len() >= 20).then_some(o.into())?
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_clock::origin;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// A STUN server's answer to `request` (RFC 8489 §14.2), mapping it to `mapped` (IPv4).
    fn answer(request: &[u8], mapped: SocketAddr) -> Vec<u8> {
        let SocketAddr::V4(v4) = mapped else {
            panic!("IPv4 only")
        };
        let mut a = vec![0x01, 0x01, 0x00, 0x0c];
        a.extend_from_slice(&MAGIC_COOKIE);
        a.extend_from_slice(&request[8..20]);
        a.extend_from_slice(&[0x00, 0x20, 0x00, 0x08, 0x00, 0x01]); // XOR-MAPPED-ADDRESS, IPv4
        a.extend_from_slice(&(v4.port() ^ 0x2112).to_be_bytes());
        for (b, m) in v4.ip().octets().iter().zip(MAGIC_COOKIE) {
            a.push(b ^ m);
        }
        a
    }

    #[test]
    fn a_binding_answer_gives_the_mapped_address_and_is_refreshed() {
        let now = origin();
        let (local, server) = (addr("192.168.1.10:40000"), addr("203.0.113.1:3478"));
        let mut g = Gatherer::new(&[local], &[server], now, 7);
        assert!(!g.is_settled());
        g.handle_timeout(now);
        let req = g.poll_transmit().unwrap();
        assert_eq!(
            (req.source, req.destination, req.contents.len()),
            (local, server, 20)
        );
        assert_eq!(&req.contents[..2], &[0x00, 0x01]);
        // Something else from the server, or an answer to another transaction, is not ours.
        assert!(!g.handle_receive(now, server, local, &[0x80; 40]));
        let mut wrong = answer(&req.contents, addr("198.51.100.7:50000"));
        wrong[19] ^= 0xff;
        assert!(!g.handle_receive(now, server, local, &wrong));
        let ours = answer(&req.contents, addr("198.51.100.7:50000"));
        assert!(g.handle_receive(now, server, local, &ours));
        assert!(g.is_settled());
        assert_eq!(
            g.reflexive().collect::<Vec<_>>(),
            [(addr("198.51.100.7:50000"), local)]
        );
        // Refreshed later, with a new transaction.
        assert_eq!(g.poll_timeout(), Some(now + REFRESH));
        g.handle_timeout(now + REFRESH);
        let again = g.poll_transmit().unwrap();
        assert_ne!(&again.contents[8..20], &req.contents[8..20]);
    }

    #[test]
    fn a_silent_server_is_asked_three_times_then_given_up_on_until_later() {
        let now = origin();
        let (local, server) = (addr("192.168.1.10:40000"), addr("203.0.113.1:3478"));
        let mut g = Gatherer::new(&[local, addr("[fd00::1]:40000")], &[server], now, 7);
        let mut t = now;
        let mut sent = Vec::new();
        while !g.is_settled() {
            t = g.poll_timeout().unwrap();
            g.handle_timeout(t);
            while let Some(r) = g.poll_transmit() {
                sent.push((t - now, r.source));
            }
        }
        // One probe only (no IPv6 server), at 0, 0.5 and 1.5 s; given up at 3.5 s.
        let at: Vec<Duration> = sent.iter().map(|s| s.0).collect();
        assert_eq!(at, [Duration::ZERO, RTO, RTO * 3]);
        assert_eq!(t - now, RTO * 3 + LAST_WAIT);
        assert_eq!(g.reflexive().count(), 0);
        assert_eq!(g.poll_timeout(), Some(t + REFRESH));
    }

    #[test]
    fn garbage_that_looks_like_an_answer_is_taken_without_panicking() {
        let now = origin();
        let (local, server) = (addr("192.168.1.10:40000"), addr("203.0.113.1:3478"));
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..20_000 {
            let mut g = Gatherer::new(&[local], &[server], now, 7);
            g.handle_timeout(now);
            let req = g.poll_transmit().unwrap();
            let mut junk: Vec<u8> = (0..rng.usize(20..80)).map(|_| rng.u8(..)).collect();
            junk[..2].copy_from_slice(&[0x01, 0x01]);
            junk[4..20].copy_from_slice(&req.contents[4..20]);
            assert!(g.handle_receive(now, server, local, &junk));
            assert!(g.is_settled());
        }
    }
}
