//! Relayed candidates (RFC 8656): an allocation on a TURN server for each media socket,
//! over UDP, through `turn-client-proto` (sans-IO: long-term credentials, allocation,
//! permissions, refreshes), so a call goes through where no direct path exists.
//!
//! Driven like [`crate::stun::Gatherer`]: [`Relays::handle_timeout`] and
//! [`Relays::poll_transmit`] move the protocol, [`Relays::handle_receive`] takes what the
//! servers send (peer data comes back out with the relayed address it arrived on), and
//! [`Relays::send`] wraps a call's datagram from a relayed address for its server, asking
//! for a permission to the peer first when there is none.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use turn_client_proto::api::{TurnConfig, TurnEvent, TurnPollRet, TurnRecvRet};
use turn_client_proto::prelude::TurnClientApi;
use turn_client_proto::stun::agent::Transmit;
use turn_client_proto::types::TransportType;
use turn_client_proto::types::TurnCredentials;
use turn_client_proto::udp::TurnClientUdp;

use crate::stats::MediaTransmit;

/// A TURN server, found and with its long-term credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnServer {
    /// Where it listens (UDP).
    pub addr: SocketAddr,
    /// The username.
    pub username: String,
    /// The password.
    pub credential: String,
}

/// What a TURN server sent us, once [`Relays::handle_receive`] has read it.
#[derive(Debug, PartialEq, Eq)]
pub enum FromServer {
    /// The TURN protocol's own business (an answer, a refresh).
    Taken,
    /// A peer's datagram, which arrived on our relayed address.
    Peer {
        /// The peer that sent it.
        peer: SocketAddr,
        /// Our relayed address it was sent to.
        relayed: SocketAddr,
        /// The datagram.
        data: Vec<u8>,
    },
}

/// How long an allocation may take before it counts as failed, for [`Relays::is_settled`].
const ALLOCATE_WITHIN: Duration = Duration::from_secs(5);

struct Relay {
    client: TurnClientUdp,
    relayed: Option<SocketAddr>,
    failed: bool,
    /// Its release was sent and the server has not confirmed it yet.
    releasing: bool,
    next: Option<Instant>,
}

/// The allocations of a phone's media sockets: see the module docs.
pub struct Relays {
    relays: Vec<Relay>,
    out: VecDeque<MediaTransmit>,
    /// turn-client-proto counts time from an origin of its own: ours is the first instant.
    origin: Instant,
    started: Instant,
}

impl std::fmt::Debug for Relays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relays")
            .field("relayed", &self.relayed().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Relays {
    /// Allocates on every server from every local address of the same family.
    pub fn new(locals: &[SocketAddr], servers: &[TurnServer], now: Instant) -> Self {
        let mut relays = Vec::new();
        for &local in locals {
            for s in servers
                .iter()
                .filter(|s| s.addr.is_ipv4() == local.is_ipv4())
            {
                let config = TurnConfig::new(TurnCredentials::new(&s.username, &s.credential));
                relays.push(Relay {
                    client: TurnClientUdp::allocate(local, s.addr, config),
                    relayed: None,
                    failed: false,
                    releasing: false,
                    next: Some(now),
                });
            }
        }
        Relays {
            relays,
            out: VecDeque::new(),
            origin: now,
            started: now,
        }
    }

    fn at(&self, now: Instant) -> turn_client_proto::stun::Instant {
        let nanos = now.saturating_duration_since(self.origin).as_nanos();
        turn_client_proto::stun::Instant::from_nanos(i64::try_from(nanos).unwrap_or(i64::MAX))
    }

    fn back(&self, at: turn_client_proto::stun::Instant) -> Instant {
        let nanos = at.duration_since(turn_client_proto::stun::Instant::ZERO);
        self.origin + nanos
    }

    /// Whether every allocation has succeeded or failed (or had its time).
    pub fn is_settled(&self, now: Instant) -> bool {
        now >= self.started + ALLOCATE_WITHIN
            || self.relays.iter().all(|r| r.relayed.is_some() || r.failed)
    }

    /// The relayed addresses, each with the local socket its allocation belongs to.
    pub fn relayed(&self) -> impl Iterator<Item = (SocketAddr, SocketAddr)> + '_ {
        self.relays
            .iter()
            .filter_map(|r| r.relayed.map(|a| (a, r.client.local_addr())))
    }

    /// Whether `addr` is one of our relayed addresses.
    pub fn is_relayed(&self, addr: SocketAddr) -> bool {
        self.relays.iter().any(|r| r.relayed == Some(addr))
    }

    /// When [`Relays::handle_timeout`] is next needed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.relays.iter().filter_map(|r| r.next).min()
    }

    /// Moves every allocation on: requests, retransmissions, refreshes.
    pub fn handle_timeout(&mut self, now: Instant) {
        let at = self.at(now);
        for i in 0..self.relays.len() {
            let next = match self.relays[i].client.poll(at) {
                TurnPollRet::WaitUntil(t) => Some(self.back(t).max(now)),
                TurnPollRet::Closed => {
                    let r = &mut self.relays[i];
                    if std::mem::take(&mut r.releasing) {
                        tracing::debug!(server = %r.client.remote_addr(), "TURN release unanswered");
                    }
                    r.failed = r.relayed.is_none();
                    None
                }
                _ => Some(now + Duration::from_secs(1)),
            };
            self.relays[i].next = next;
            self.drain(i, now);
        }
    }

    /// The next datagram for a TURN server.
    pub fn poll_transmit(&mut self) -> Option<MediaTransmit> {
        self.out.pop_front()
    }

    /// Reads what a TURN server sent to our `destination`; `None` if it is not from one of
    /// ours (or not TURN), for the calls to take.
    pub fn handle_receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        datagram: &[u8],
    ) -> Option<FromServer> {
        let at = self.at(now);
        let i = self.relays.iter().position(|r| {
            r.client.remote_addr() == source && r.client.local_addr() == destination
        })?;
        let transmit = Transmit::new(datagram, TransportType::Udp, source, destination);
        let result = match self.relays[i].client.recv(transmit, at) {
            TurnRecvRet::Handled => Some(FromServer::Taken),
            TurnRecvRet::Ignored(_) => None,
            // Data on an allocation we no longer hold is the protocol's to drop.
            TurnRecvRet::PeerData(p) => Some(match self.relays[i].relayed {
                Some(relayed) => FromServer::Peer {
                    peer: p.peer,
                    relayed,
                    data: p.data().to_vec(),
                },
                None => FromServer::Taken,
            }),
            TurnRecvRet::PeerIcmp { peer, .. } => {
                tracing::debug!(%peer, "ICMP from a peer through TURN");
                Some(FromServer::Taken)
            }
        };
        self.drain(i, now);
        // A response may have moved the next deadline, or confirmed a release.
        match self.relays[i].client.poll(at) {
            TurnPollRet::WaitUntil(t) => self.relays[i].next = Some(self.back(t).max(now)),
            TurnPollRet::Closed if self.relays[i].releasing => {
                let r = &mut self.relays[i];
                r.releasing = false;
                r.next = None;
                tracing::debug!(server = %r.client.remote_addr(), "TURN allocation released");
            }
            _ => {}
        }
        self.drain(i, now);
        result
    }

    /// Wraps `data` from our relayed address `from` to `to` for the TURN server; `None`
    /// while the permission for `to` is still being asked for (the caller's ICE will send
    /// again).
    pub fn send(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        data: &[u8],
    ) -> Option<MediaTransmit> {
        let at = self.at(now);
        let i = self.relays.iter().position(|r| r.relayed == Some(from))?;
        let client = &mut self.relays[i].client;
        if !client.have_permission(TransportType::Udp, to.ip()) {
            if let Err(e) = client.create_permission(TransportType::Udp, to.ip(), at) {
                tracing::trace!(peer = %to, error = %e, "TURN permission");
            }
            self.drain(i, now);
            if let TurnPollRet::WaitUntil(t) = self.relays[i].client.poll(at) {
                self.relays[i].next = Some(self.back(t).max(now));
            }
            return None;
        }
        match client.send_to(TransportType::Udp, to, data, at) {
            Ok(Some(t)) => {
                let t = t.build();
                Some(MediaTransmit {
                    source: t.from,
                    destination: t.to,
                    contents: Bytes::from(t.data),
                })
            }
            Ok(None) => None,
            Err(e) => {
                tracing::trace!(peer = %to, error = %e, "TURN send");
                None
            }
        }
    }

    /// Gives every allocation back (a Refresh with lifetime 0, RFC 8656 §7), so the
    /// server frees it now rather than when it expires; nothing is relayed afterwards.
    pub fn release(&mut self, now: Instant) {
        let at = self.at(now);
        for i in 0..self.relays.len() {
            let r = &mut self.relays[i];
            r.next = None;
            if r.relayed.take().is_some() {
                match r.client.delete(at) {
                    Ok(()) => {
                        r.releasing = true;
                        // Retransmitted until the server confirms, or gives up.
                        if let TurnPollRet::WaitUntil(t) = r.client.poll(at) {
                            let next = self.back(t).max(now);
                            self.relays[i].next = Some(next);
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "TURN release"),
                }
            }
            self.drain(i, now);
        }
    }

    /// Whether a release is still waiting for its server's confirmation: a phone that is
    /// shutting down may wait (briefly) until not.
    pub fn is_releasing(&self) -> bool {
        self.relays.iter().any(|r| r.releasing)
    }

    /// Collects relay `i`'s events and datagrams.
    fn drain(&mut self, i: usize, now: Instant) {
        let at = self.at(now);
        let r = &mut self.relays[i];
        while let Some(e) = r.client.poll_event() {
            match e {
                TurnEvent::AllocationCreated(TransportType::Udp, addr) => {
                    tracing::debug!(relayed = %addr, server = %r.client.remote_addr(), "TURN allocation");
                    r.relayed = Some(addr);
                }
                TurnEvent::AllocationCreateFailed(_) => {
                    tracing::debug!(server = %r.client.remote_addr(), "TURN allocation refused");
                    r.failed = true;
                }
                other => tracing::trace!(event = ?other, "TURN"),
            }
        }
        while let Some(t) = r.client.poll_transmit(at) {
            self.out.push_back(MediaTransmit {
                source: t.from,
                destination: t.to,
                contents: Bytes::copy_from_slice(t.data.as_ref()),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::disallowed_methods)] // any instant will do
    fn an_allocation_starts_at_once_and_a_silent_server_is_given_up_on() {
        let now = Instant::now();
        let local: SocketAddr = "192.168.1.10:40000".parse().unwrap();
        let server = TurnServer {
            addr: "203.0.113.1:3478".parse().unwrap(),
            username: "alice".into(),
            credential: "secret".into(),
        };
        let mut r = Relays::new(&[local], std::slice::from_ref(&server), now);
        assert_eq!(r.poll_timeout(), Some(now));
        r.handle_timeout(now);
        let allocate = r.poll_transmit().unwrap();
        assert_eq!(
            (allocate.source, allocate.destination),
            (local, server.addr)
        );
        // An Allocate request (method 0x003, class request).
        assert_eq!(&allocate.contents[..2], &[0x00, 0x03]);
        assert!(!r.is_settled(now));
        assert!(r.is_settled(now + ALLOCATE_WITHIN));
        assert_eq!(r.relayed().count(), 0);
        // Garbage from the server is taken or left, never a panic.
        let mut rng = fastrand::Rng::with_seed(9);
        for _ in 0..2_000 {
            let junk: Vec<u8> = (0..rng.usize(0..120)).map(|_| rng.u8(..)).collect();
            let _ = r.handle_receive(now, server.addr, local, &junk);
        }
        // Not from a TURN server of ours: not ours.
        assert!(
            r.handle_receive(now, "198.51.100.1:9".parse().unwrap(), local, b"x")
                .is_none()
        );
    }
}
