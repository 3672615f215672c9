//! Relayed candidates (RFC 8656): an allocation on a TURN server for each media socket,
//! through `turn-client-proto` (sans-IO: long-term credentials, allocation, permissions,
//! refreshes), so a call goes through where no direct path exists.
//!
//! The server is reached over UDP, over TCP (RFC 8656 §3.1: one connection carries the
//! allocation, its control and its data, framed), or over TLS on that connection
//! (`turn-client-rustls`, with the phone's rustls configuration). The peers are always
//! reached over UDP from the relayed address.
//!
//! Driven like [`crate::stun::Gatherer`]: [`Relays::handle_timeout`] and
//! [`Relays::poll_transmit`] move the protocol, [`Relays::handle_receive`] takes what the
//! servers send over UDP and [`Relays::handle_stream`] what they send on a connection (peer
//! data comes back out of [`Relays::poll_peer`] with the relayed address it arrived on), and
//! [`Relays::send`] wraps a call's datagram from a relayed address for its server, asking
//! for a permission to the peer first when there is none. Connections are the driver's to
//! open and carry: [`Relays::poll_stream`] asks, [`Relays::stream_connected`] and
//! [`Relays::stream_closed`] answer.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use turn_client_proto::api::{TurnConfig, TurnEvent, TurnPollRet, TurnRecvRet};
use turn_client_proto::prelude::TurnClientApi;
use turn_client_proto::stun::agent::Transmit;
use turn_client_proto::tcp::TurnClientTcp;
use turn_client_proto::types::TransportType;
use turn_client_proto::types::TurnCredentials;
use turn_client_proto::udp::TurnClientUdp;
use turn_client_rustls::TurnClientRustls;
use turn_client_rustls::rustls::ClientConfig;
use turn_client_rustls::rustls::pki_types::ServerName;

use crate::stats::{MediaTransmit, StreamId, StreamOutput};

/// A TURN server, found and with its long-term credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// How it is reached.
    pub transport: TurnTransport,
    /// The username.
    pub username: String,
    /// The password.
    pub credential: String,
}

/// How a TURN server is reached (RFC 7065's `turn:…?transport=` and `turns:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnTransport {
    /// UDP datagrams (`turn:host`).
    Udp,
    /// A TCP connection (`turn:host?transport=tcp`).
    Tcp,
    /// TLS on a TCP connection (`turns:host`); `name` is what the certificate must name.
    Tls {
        /// The server's name, as in its URL.
        name: String,
    },
}

turn_client_proto::impl_client!(
    Client,
    (Udp, TurnClientUdp),
    (Tcp, TurnClientTcp),
    (Tls, TurnClientRustls)
);

/// How long an allocation may take before it counts as failed, for [`Relays::is_settled`].
const ALLOCATE_WITHIN: Duration = Duration::from_secs(5);

/// After an allocation is lost or could not be made, the wait before trying again; it
/// doubles with every failure in a row, up to [`RETRY_AT_MOST`].
const RETRY_FIRST: Duration = Duration::from_secs(5);
const RETRY_AT_MOST: Duration = Duration::from_secs(300);

/// A connection's [`StreamId`] holds its relay's index in the low half and the attempt in
/// the high half, so what the driver reports about an old connection never reaches a new one.
const INDEX_BITS: u32 = 16;

struct Relay {
    /// The media socket whose candidate the relayed address becomes.
    base: SocketAddr,
    server: TurnServer,
    /// `None` while its connection is being opened (TCP and TLS), or while it waits to try
    /// again.
    client: Option<Client>,
    /// The connection asked for or open (TCP and TLS).
    stream: Option<StreamId>,
    attempt: u32,
    relayed: Option<SocketAddr>,
    failed: bool,
    /// It cannot work as configured (`turns:` without TLS): never tried again.
    hopeless: bool,
    /// Its release was sent and the server has not confirmed it yet.
    releasing: bool,
    /// The client's next deadline, or when to try again.
    next: Option<Instant>,
    backoff: Duration,
}

impl Relay {
    fn is_stream(&self) -> bool {
        self.server.transport != TurnTransport::Udp
    }

    /// Over UDP: whether a datagram from `source` to `destination` is its server's.
    fn is_from(&self, source: SocketAddr, destination: SocketAddr) -> bool {
        !self.is_stream()
            && self
                .client
                .as_ref()
                .is_some_and(|c| c.remote_addr() == source && c.local_addr() == destination)
    }
}

/// The allocations of a phone's media sockets: see the module docs.
pub struct Relays {
    relays: Vec<Relay>,
    out: VecDeque<MediaTransmit>,
    streams: VecDeque<StreamOutput>,
    /// Peer datagrams that came through a relay: (peer, our relayed address, datagram).
    peer: VecDeque<(SocketAddr, SocketAddr, Vec<u8>)>,
    tls: Option<Arc<ClientConfig>>,
    /// turn-client-proto counts time from an origin of its own: ours is the first instant.
    origin: Instant,
    started: Instant,
    /// [`Relays::release`] was called: nothing is allocated again.
    released: bool,
}

impl std::fmt::Debug for Relays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relays")
            .field("relayed", &self.relayed().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Relays {
    /// Allocates on every server from every local address of the same family: at once over
    /// UDP, once the driver has opened the connection over TCP and TLS. `tls` is the
    /// configuration `turns:` servers are checked with; without one they fail.
    ///
    /// An allocation that fails or is lost later (its connection closed, its refresh
    /// refused, the server restarted) is tried again after [`RETRY_FIRST`], doubling; the
    /// relayed address it then gets is offered in the calls made afterwards.
    pub fn new(
        locals: &[SocketAddr],
        servers: &[TurnServer],
        tls: Option<Arc<ClientConfig>>,
        now: Instant,
    ) -> Self {
        let mut relays = Self {
            relays: Vec::new(),
            out: VecDeque::new(),
            streams: VecDeque::new(),
            peer: VecDeque::new(),
            tls,
            origin: now,
            started: now,
            released: false,
        };
        for &base in locals {
            for server in servers
                .iter()
                .filter(|s| s.addr.is_ipv4() == base.is_ipv4())
            {
                relays.relays.push(Relay {
                    base,
                    server: server.clone(),
                    client: None,
                    stream: None,
                    attempt: 0,
                    relayed: None,
                    failed: false,
                    hopeless: false,
                    releasing: false,
                    next: None,
                    backoff: RETRY_FIRST,
                });
                relays.start(relays.relays.len() - 1, now);
            }
        }
        relays
    }

    /// Starts relay `i`'s allocation: its client over UDP, a connection for it otherwise.
    fn start(&mut self, i: usize, now: Instant) {
        let r = &mut self.relays[i];
        r.attempt = r.attempt.wrapping_add(1);
        if r.is_stream() {
            let id = StreamId((r.attempt << INDEX_BITS) | i as u32);
            r.stream = Some(id);
            r.next = None;
            self.streams.push_back(StreamOutput::Connect {
                id,
                server: r.server.addr,
            });
        } else {
            r.client = Some(Client::Udp(TurnClientUdp::allocate(
                r.base,
                r.server.addr,
                config(&r.server),
            )));
            r.next = Some(now);
        }
    }

    /// The relay whose current connection is `id`.
    fn by_stream(&self, id: StreamId) -> Option<usize> {
        let i = (id.0 & ((1 << INDEX_BITS) - 1)) as usize;
        self.relays
            .get(i)
            .is_some_and(|r| r.stream == Some(id))
            .then_some(i)
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

    /// The relayed addresses, each with the local media socket it stands for.
    pub fn relayed(&self) -> impl Iterator<Item = (SocketAddr, SocketAddr)> + '_ {
        self.relays
            .iter()
            .filter_map(|r| r.relayed.map(|a| (a, r.base)))
    }

    /// Whether `addr` is one of our relayed addresses.
    pub fn is_relayed(&self, addr: SocketAddr) -> bool {
        self.relays.iter().any(|r| r.relayed == Some(addr))
    }

    /// When [`Relays::handle_timeout`] is next needed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.relays.iter().filter_map(|r| r.next).min()
    }

    /// Moves every allocation on: requests, retransmissions, refreshes, new attempts.
    pub fn handle_timeout(&mut self, now: Instant) {
        for i in 0..self.relays.len() {
            let r = &self.relays[i];
            if r.next.is_none_or(|t| t > now) {
                continue;
            }
            if r.client.is_some() {
                self.poll(i, now);
            } else if r.stream.is_none() && !self.released {
                tracing::debug!(server = %r.server.addr, "TURN allocation: trying again");
                self.start(i, now);
                self.poll(i, now);
            }
        }
    }

    /// The next datagram for a TURN server over UDP.
    pub fn poll_transmit(&mut self) -> Option<MediaTransmit> {
        self.out.pop_front()
    }

    /// The next thing to do with a connection to a TURN server over TCP or TLS.
    pub fn poll_stream(&mut self) -> Option<StreamOutput> {
        self.streams.pop_front()
    }

    /// The next peer datagram that came through a relay: the peer that sent it, our
    /// relayed address it was sent to, and the datagram.
    pub fn poll_peer(&mut self) -> Option<(SocketAddr, SocketAddr, Vec<u8>)> {
        self.peer.pop_front()
    }

    /// Reads what a TURN server sent over UDP to our `destination`; `false` if it is not
    /// from one of ours (or not TURN), for the calls to take. Peer data it carried waits in
    /// [`Relays::poll_peer`].
    pub fn handle_receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        datagram: &[u8],
    ) -> bool {
        let Some(i) = self
            .relays
            .iter()
            .position(|r| r.is_from(source, destination))
        else {
            return false;
        };
        let transmit = Transmit::new(datagram, TransportType::Udp, source, destination);
        if !self.recv(i, now, transmit) {
            return false;
        }
        self.after_receive(i, now);
        true
    }

    /// The connection `id` asked for by [`StreamOutput::Connect`] is up, from `local`: the
    /// allocation starts (after the TLS handshake for `turns:`).
    pub fn stream_connected(&mut self, now: Instant, id: StreamId, local: SocketAddr) {
        let tls = self.tls.clone();
        let Some(i) = self.by_stream(id) else {
            return;
        };
        let r = &mut self.relays[i];
        if r.client.is_some() {
            return;
        }
        let server = r.server.addr;
        let client = match &r.server.transport {
            TurnTransport::Tls { name } => {
                let name = ServerName::try_from(name.clone());
                match (tls, name) {
                    (Some(tls), Ok(name)) => Client::Tls(TurnClientRustls::allocate(
                        local,
                        server,
                        config(&r.server),
                        name,
                        tls,
                    )),
                    (None, _) => {
                        tracing::debug!(%server, "turns: without a TLS configuration");
                        return self.abandon(i, now);
                    }
                    (_, Err(e)) => {
                        tracing::debug!(%server, error = %e, "turns: server name");
                        return self.abandon(i, now);
                    }
                }
            }
            _ => Client::Tcp(TurnClientTcp::allocate(local, server, config(&r.server))),
        };
        tracing::debug!(%server, %local, "TURN connection");
        r.client = Some(client);
        self.poll(i, now);
    }

    /// Reads bytes that arrived on connection `id` (any piece of the stream). Peer data
    /// they carried waits in [`Relays::poll_peer`].
    pub fn handle_stream(&mut self, now: Instant, id: StreamId, bytes: &[u8]) {
        let Some(i) = self.by_stream(id) else {
            return;
        };
        let Some(c) = self.relays[i].client.as_ref() else {
            return;
        };
        if bytes.is_empty() {
            return;
        }
        let transmit = Transmit::new(bytes, TransportType::Tcp, c.remote_addr(), c.local_addr());
        self.recv(i, now, transmit);
        // One piece of the stream may hold several messages: the rest come out one by one.
        let at = self.at(now);
        while let Some(p) = self.relays[i].client.as_mut().and_then(|c| c.poll_recv(at)) {
            if let Some(relayed) = self.relays[i].relayed {
                self.peer.push_back((p.peer, relayed, p.data().to_vec()));
            }
        }
        self.after_receive(i, now);
    }

    /// Connection `id` is closed, or could not be opened: its allocation is gone with it
    /// (RFC 8656 §3.1), and a new connection is asked for later.
    pub fn stream_closed(&mut self, now: Instant, id: StreamId) {
        let Some(i) = self.by_stream(id) else {
            return;
        };
        let r = &mut self.relays[i];
        r.stream = None;
        // The client goes with its connection: nothing is left to tell it.
        if r.client.is_some() {
            let server = r.server.addr;
            if r.releasing {
                tracing::debug!(%server, "TURN allocation released (connection closed)");
            } else {
                tracing::debug!(%server, "TURN connection closed");
            }
        }
        self.lost(i, now);
    }

    /// Wraps `data` from our relayed address `from` to `to` for the TURN server: into
    /// [`Relays::poll_transmit`] or [`Relays::poll_stream`]. Nothing while the permission for
    /// `to` is still being asked for (the caller's ICE will send again).
    pub fn send(&mut self, now: Instant, from: SocketAddr, to: SocketAddr, data: &[u8]) {
        let at = self.at(now);
        let Some(i) = self.relays.iter().position(|r| r.relayed == Some(from)) else {
            return;
        };
        let Some(client) = self.relays[i].client.as_mut() else {
            return;
        };
        if !client.have_permission(TransportType::Udp, to.ip()) {
            if let Err(e) = client.create_permission(TransportType::Udp, to.ip(), at) {
                tracing::trace!(peer = %to, error = %e, "TURN permission");
            }
            self.drain(i, now);
            self.reschedule(i, now);
            return;
        }
        match client.send_to(TransportType::Udp, to, data, at) {
            Ok(Some(t)) => {
                let t = t.build();
                self.push(i, t.from, t.to, Bytes::from(t.data));
            }
            Ok(None) => self.drain(i, now),
            Err(e) => tracing::trace!(peer = %to, error = %e, "TURN send"),
        }
    }

    /// Gives every allocation back (a Refresh with lifetime 0, RFC 8656 §7), so the
    /// server frees it now rather than when it expires; nothing is relayed afterwards.
    pub fn release(&mut self, now: Instant) {
        self.released = true;
        let at = self.at(now);
        for i in 0..self.relays.len() {
            let r = &mut self.relays[i];
            r.next = None;
            let held = r.relayed.take().is_some();
            let Some(client) = r.client.as_mut() else {
                continue;
            };
            if held {
                match client.delete(at) {
                    Ok(()) => {
                        r.releasing = true;
                        // Retransmitted until the server confirms, or gives up.
                        self.reschedule(i, now);
                    }
                    Err(e) => tracing::debug!(error = %e, "TURN release"),
                }
            } else {
                self.close_stream(i);
            }
            self.drain(i, now);
        }
        self.released = true;
    }

    /// Whether a release is still waiting for its server's confirmation: a phone that is
    /// shutting down may wait (briefly) until not.
    pub fn is_releasing(&self) -> bool {
        self.relays.iter().any(|r| r.releasing)
    }

    /// Feeds relay `i`'s client; whether it was the client's business.
    fn recv(&mut self, i: usize, now: Instant, transmit: Transmit<&[u8]>) -> bool {
        let at = self.at(now);
        let r = &mut self.relays[i];
        let Some(client) = r.client.as_mut() else {
            return false;
        };
        match client.recv(transmit, at) {
            TurnRecvRet::Handled => true,
            TurnRecvRet::Ignored(_) => false,
            // Data on an allocation we no longer hold is the protocol's to drop.
            TurnRecvRet::PeerData(p) => {
                if let Some(relayed) = r.relayed {
                    self.peer.push_back((p.peer, relayed, p.data().to_vec()));
                }
                true
            }
            TurnRecvRet::PeerIcmp { peer, .. } => {
                tracing::debug!(%peer, "ICMP from a peer through TURN");
                true
            }
        }
    }

    /// After a server's message: its events and answers, the next deadline (a response may
    /// have moved it), a confirmed release.
    fn after_receive(&mut self, i: usize, now: Instant) {
        self.drain(i, now);
        let at = self.at(now);
        let Some(client) = self.relays[i].client.as_mut() else {
            return;
        };
        match client.poll(at) {
            TurnPollRet::WaitUntil(t) => self.relays[i].next = Some(self.back(t).max(now)),
            TurnPollRet::Closed if self.relays[i].releasing => {
                let r = &mut self.relays[i];
                r.releasing = false;
                r.next = None;
                tracing::debug!(server = %r.server.addr, "TURN allocation released");
                self.close_stream(i);
            }
            TurnPollRet::Closed => {
                self.drain(i, now);
                self.close_stream(i);
                self.lost(i, now);
                return;
            }
            _ => {}
        }
        self.drain(i, now);
    }

    /// Polls relay `i`'s client at `now` and sets its next deadline.
    fn poll(&mut self, i: usize, now: Instant) {
        let at = self.at(now);
        let Some(client) = self.relays[i].client.as_mut() else {
            return;
        };
        let next = match client.poll(at) {
            TurnPollRet::WaitUntil(t) => Some(self.back(t).max(now)),
            TurnPollRet::Closed => {
                let r = &mut self.relays[i];
                if std::mem::take(&mut r.releasing) {
                    tracing::debug!(server = %r.server.addr, "TURN release unanswered");
                }
                self.drain(i, now);
                self.close_stream(i);
                self.lost(i, now);
                return;
            }
            _ => Some(now + Duration::from_secs(1)),
        };
        self.relays[i].next = next;
        self.drain(i, now);
    }

    /// Sets relay `i`'s next deadline from its client.
    fn reschedule(&mut self, i: usize, now: Instant) {
        let at = self.at(now);
        if let Some(TurnPollRet::WaitUntil(t)) = self.relays[i].client.as_mut().map(|c| c.poll(at))
        {
            self.relays[i].next = Some(self.back(t).max(now));
        }
        self.drain(i, now);
    }

    /// Closes the connection of a relay that cannot work as configured; it is not tried
    /// again.
    fn abandon(&mut self, i: usize, now: Instant) {
        self.relays[i].hopeless = true;
        self.close_stream(i);
        self.lost(i, now);
    }

    /// Asks the driver to close relay `i`'s connection, if it has one; what it reports
    /// about that connection afterwards is no longer ours.
    fn close_stream(&mut self, i: usize) {
        if let Some(id) = self.relays[i].stream.take() {
            self.streams.push_back(StreamOutput::Close { id });
        }
    }

    /// Relay `i` has no allocation (any more): it tries again later, unless the phone is
    /// releasing its relays or the relay cannot work.
    fn lost(&mut self, i: usize, now: Instant) {
        let released = self.released;
        let r = &mut self.relays[i];
        r.failed |= r.relayed.is_none();
        r.relayed = None;
        r.releasing = false;
        r.client = None;
        r.next = None;
        if !released && !r.hopeless && r.stream.is_none() {
            r.next = Some(now + r.backoff);
            r.backoff = (r.backoff * 2).min(RETRY_AT_MOST);
        }
    }

    /// Queues bytes for relay `i`'s server: a datagram, or a write on its connection.
    fn push(&mut self, i: usize, source: SocketAddr, destination: SocketAddr, contents: Bytes) {
        let r = &self.relays[i];
        if r.is_stream() {
            if let Some(id) = r.stream {
                self.streams.push_back(StreamOutput::Write {
                    id,
                    bytes: contents,
                });
            }
        } else {
            self.out.push_back(MediaTransmit {
                source,
                destination,
                contents,
            });
        }
    }

    /// Collects relay `i`'s events and datagrams.
    fn drain(&mut self, i: usize, now: Instant) {
        let at = self.at(now);
        let r = &mut self.relays[i];
        let Some(client) = r.client.as_mut() else {
            return;
        };
        while let Some(e) = client.poll_event() {
            match e {
                TurnEvent::AllocationCreated(TransportType::Udp, addr) => {
                    tracing::debug!(relayed = %addr, server = %r.server.addr, transport = ?r.server.transport, "TURN allocation");
                    r.relayed = Some(addr);
                    r.failed = false;
                    r.backoff = RETRY_FIRST;
                }
                TurnEvent::AllocationCreateFailed(_) => {
                    tracing::debug!(server = %r.server.addr, "TURN allocation refused");
                    r.failed = true;
                }
                other => tracing::trace!(event = ?other, "TURN"),
            }
        }
        let mut sent = Vec::new();
        while let Some(t) = client.poll_transmit(at) {
            sent.push((t.from, t.to, Bytes::copy_from_slice(t.data.as_ref())));
        }
        for (from, to, bytes) in sent {
            self.push(i, from, to, bytes);
        }
    }
}

/// The client configuration for `server`'s credentials.
fn config(server: &TurnServer) -> TurnConfig {
    TurnConfig::new(TurnCredentials::new(&server.username, &server.credential))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_clock::origin;

    fn server(addr: &str, transport: TurnTransport) -> TurnServer {
        TurnServer {
            addr: addr.parse().unwrap(),
            transport,
            username: "alice".into(),
            credential: "secret".into(),
        }
    }

    #[test]
    fn an_allocation_starts_at_once_and_a_silent_server_is_given_up_on() {
        let now = origin();
        let local: SocketAddr = "192.168.1.10:40000".parse().unwrap();
        let server = server("203.0.113.1:3478", TurnTransport::Udp);
        let mut r = Relays::new(&[local], std::slice::from_ref(&server), None, now);
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
        assert!(r.poll_peer().is_none());
        // Not from a TURN server of ours: not ours.
        assert!(!r.handle_receive(now, "198.51.100.1:9".parse().unwrap(), local, b"x"));
    }

    #[test]
    fn over_tcp_the_allocation_waits_for_the_connection_and_ends_with_it() {
        let now = origin();
        let base: SocketAddr = "192.168.1.10:40000".parse().unwrap();
        let tcp_local: SocketAddr = "192.168.1.10:51000".parse().unwrap();
        let server = server("203.0.113.1:3478", TurnTransport::Tcp);
        let mut r = Relays::new(&[base], std::slice::from_ref(&server), None, now);
        // Nothing is sent before the driver has the connection.
        assert_eq!(r.poll_timeout(), None);
        let Some(StreamOutput::Connect { id, server: to }) = r.poll_stream() else {
            panic!("no connect");
        };
        assert_eq!(to, server.addr);
        assert!(!r.is_settled(now));
        r.stream_connected(now, id, tcp_local);
        // The Allocate request goes on the connection, not to a UDP socket.
        assert!(r.poll_transmit().is_none());
        let Some(StreamOutput::Write { id: on, bytes }) = r.poll_stream() else {
            panic!("no allocate");
        };
        assert_eq!((on, &bytes[..2]), (id, &[0x00, 0x03][..]));
        // Stream garbage, in any pieces: taken or dropped, never a panic.
        let mut rng = fastrand::Rng::with_seed(4);
        for _ in 0..2_000 {
            let junk: Vec<u8> = (0..rng.usize(1..120)).map(|_| rng.u8(..)).collect();
            r.handle_stream(now, id, &junk);
        }
        assert!(r.poll_peer().is_none());
        // A connection that closes takes the allocation with it: settled, nothing relayed.
        r.stream_closed(now, id);
        assert!(r.is_settled(now));
        assert_eq!(r.relayed().count(), 0);
        // A new connection is asked for later, with an id of its own.
        assert_eq!(r.poll_timeout(), Some(now + RETRY_FIRST));
        r.handle_timeout(now + RETRY_FIRST);
        let Some(StreamOutput::Connect { id: again, .. }) = r.poll_stream() else {
            panic!("no second connect");
        };
        assert_ne!(again, id);
        // A late answer for the old connection, or one that never was, changes nothing.
        r.handle_stream(now, id, b"late");
        r.stream_connected(now, id, tcp_local);
        r.stream_connected(now, StreamId(7), tcp_local);
        assert!(r.poll_stream().is_none());
        // The new one is refused too: the next try waits twice as long.
        let later = now + RETRY_FIRST;
        r.stream_closed(later, again);
        assert_eq!(r.poll_timeout(), Some(later + 2 * RETRY_FIRST));
        // Once released, nothing is tried again.
        r.release(later);
        assert_eq!(r.poll_timeout(), None);
        r.handle_timeout(later + RETRY_AT_MOST);
        assert!(r.poll_stream().is_none());
    }

    #[test]
    fn a_udp_allocation_that_gets_no_answer_is_tried_again_later() {
        let now = origin();
        let local: SocketAddr = "192.168.1.10:40000".parse().unwrap();
        let server = server("203.0.113.1:3478", TurnTransport::Udp);
        let mut r = Relays::new(&[local], std::slice::from_ref(&server), None, now);
        let mut sent = Vec::new();
        let mut t = now;
        while t < now + Duration::from_secs(120) {
            r.handle_timeout(t);
            while let Some(m) = r.poll_transmit() {
                assert_eq!(&m.contents[..2], &[0x00, 0x03], "an Allocate request");
                sent.push(t - now);
            }
            t += Duration::from_millis(100);
        }
        // Requests, a silence longer than a retransmission gap (the first attempt was given
        // up on), then requests again: the second attempt.
        let gaps: Vec<_> = sent.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps.iter().any(|g| *g >= RETRY_FIRST),
            "no second attempt: {sent:?}"
        );
        assert!(sent.last().unwrap() > &Duration::from_secs(10), "{sent:?}");
    }

    #[test]
    fn turns_without_a_tls_configuration_closes_its_connection_and_fails() {
        let now = origin();
        let base: SocketAddr = "192.168.1.10:40000".parse().unwrap();
        let server = server(
            "203.0.113.1:5349",
            TurnTransport::Tls {
                name: "turn.example.com".into(),
            },
        );
        let mut r = Relays::new(&[base], std::slice::from_ref(&server), None, now);
        let Some(StreamOutput::Connect { id, .. }) = r.poll_stream() else {
            panic!("no connect");
        };
        r.stream_connected(now, id, "192.168.1.10:51000".parse().unwrap());
        assert_eq!(r.poll_stream(), Some(StreamOutput::Close { id }));
        assert!(r.is_settled(now));
        // It cannot work as configured: never tried again.
        assert_eq!(r.poll_timeout(), None);
    }
}
