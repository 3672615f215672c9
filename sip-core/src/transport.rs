//! What the core knows about transports: names, reliability, and flows.
//!
//! Sockets are the runtime's business; the core only needs to know which flow a message came
//! on or must leave by, and whether that flow retransmits for us (RFC 3261 §17: timers A, E and
//! G run only on unreliable transports; D, I, J and K are zero on reliable ones).

use std::fmt;

/// A SIP transport (RFC 3261 §18, RFC 7118 for WebSocket).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// UDP: unreliable, one message per datagram.
    Udp,
    /// TCP: reliable byte stream, framed by Content-Length.
    Tcp,
    /// TLS over TCP.
    Tls,
    /// WebSocket (RFC 7118): reliable, one message per frame.
    Ws,
    /// Secure WebSocket.
    Wss,
}

impl Transport {
    /// Whether the transport delivers reliably, so SIP must not retransmit over it.
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    /// Whether messages arrive as one byte stream that must be framed (TCP, TLS).
    pub fn is_stream(self) -> bool {
        matches!(self, Transport::Tcp | Transport::Tls)
    }

    /// The token used in Via (`SIP/2.0/UDP`).
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Ws => "WS",
            Transport::Wss => "WSS",
        }
    }

    /// Reads a Via transport token, ignoring case.
    pub fn from_via_token(s: &str) -> Option<Transport> {
        [
            Transport::Udp,
            Transport::Tcp,
            Transport::Tls,
            Transport::Ws,
            Transport::Wss,
        ]
        .into_iter()
        .find(|t| t.via_token().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.via_token())
    }
}

/// A handle for one path to a peer: a UDP socket and remote address, or one connection.
/// The runtime and the core agree on these numbers; the core never looks inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowId(pub u64);

/// A flow and its transport: what the transaction layer needs to send on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    /// Which flow.
    pub id: FlowId,
    /// Over what.
    pub transport: Transport,
}

/// What the runtime knows about a flow it opened or accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowInfo {
    /// The transport.
    pub transport: Transport,
    /// Our address on it.
    pub local: std::net::SocketAddr,
    /// The peer's.
    pub remote: std::net::SocketAddr,
}
