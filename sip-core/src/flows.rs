//! The flows a user agent or the registrar knows, and how bytes on each become messages:
//! datagrams and WebSocket frames carry one message each (RFC 7118), byte streams are framed
//! by Content-Length with RFC 5626 keep-alives between messages.

use crate::handles::{HandleMap, handle_map};

use bytes::Bytes;

use crate::message::{Limits, Message, StreamEvent, StreamFramer};
use crate::trace;
use crate::transport::{Flow, FlowId, FlowInfo};

/// What arrived on a flow.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // a message is the common case; boxing it costs an allocation
pub(crate) enum Arrival {
    /// A framed (not yet validated) message.
    Message(Message),
    /// A keep-alive ping that wants a `CRLF` pong.
    Ping,
    /// The pong to a ping of ours (RFC 5626 §4.4.1).
    Pong,
    /// Bytes that are not a message; on a stream the connection cannot be trusted after this.
    Garbage,
}

#[derive(Debug)]
pub(crate) struct FlowState {
    pub(crate) info: FlowInfo,
    framer: Option<StreamFramer>,
    /// RFC 7118 §5: a WebSocket client writes a random `.invalid` host in Via and Contact.
    pub(crate) invalid_host: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Flows {
    map: HandleMap<FlowId, FlowState>,
    next: u64,
    limits: Limits,
}

impl Flows {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            map: handle_map(),
            next: 0,
            limits,
        }
    }

    /// Registers a flow. `accepted`: the peer opened it, so on a stream it is the peer that
    /// pings (RFC 5626 §3.5.1).
    pub(crate) fn add(
        &mut self,
        info: FlowInfo,
        accepted: bool,
        invalid_host: Option<String>,
    ) -> FlowId {
        self.next += 1;
        let id = FlowId(self.next);
        let framer = info.transport.is_stream().then(|| {
            if accepted {
                StreamFramer::accepted(self.limits)
            } else {
                StreamFramer::new(self.limits)
            }
        });
        self.map.insert(
            id,
            FlowState {
                info,
                framer,
                invalid_host,
            },
        );
        id
    }

    pub(crate) fn remove(&mut self, id: FlowId) -> Option<FlowState> {
        self.map.remove(&id)
    }

    /// Whether flow `id` is there and reliable (no retransmissions over it).
    pub(crate) fn is_reliable(&self, id: FlowId) -> bool {
        self.get(id).is_some_and(|f| f.info.transport.is_reliable())
    }

    pub(crate) fn get(&self, id: FlowId) -> Option<&FlowState> {
        self.map.get(&id)
    }

    /// Traces a message sent on `flow` (see [`crate::trace`]); a bare CRLF keep-alive is
    /// not a message.
    pub(crate) fn trace_sent(&self, flow: FlowId, bytes: &[u8]) {
        if bytes.len() > 4 && trace::enabled() {
            let info = self.get(flow).map(|f| f.info);
            trace::message(trace::Direction::Sent, flow, info, bytes);
        }
    }

    /// Traces a message that arrived on `flow`, as framed (one of several in a stream read).
    pub(crate) fn trace_received(&self, flow: FlowId, message: &Message) {
        if trace::enabled() {
            let info = self.get(flow).map(|f| f.info);
            trace::message(trace::Direction::Received, flow, info, &message.to_bytes());
        }
    }

    pub(crate) fn flow(&self, id: FlowId) -> Option<Flow> {
        self.map.get(&id).map(|s| Flow {
            id,
            transport: s.info.transport,
        })
    }

    /// The flow with this transport and remote address, if any.
    pub(crate) fn find(&self, info: &FlowInfo) -> Option<FlowId> {
        self.find_remote(info.transport, info.remote)
    }

    /// The flow with this transport to `remote`, if any.
    pub(crate) fn find_remote(
        &self,
        transport: crate::transport::Transport,
        remote: std::net::SocketAddr,
    ) -> Option<FlowId> {
        self.map
            .iter()
            .find(|(_, s)| s.info.transport == transport && s.info.remote == remote)
            .map(|(id, _)| *id)
    }

    /// Whether any flow's local address satisfies `f` (is this Route URI us?).
    pub(crate) fn any_local(&self, f: impl Fn(std::net::SocketAddr) -> bool) -> bool {
        self.map.values().any(|s| f(s.info.local))
    }

    /// Turns received bytes into arrivals: the first one now, the rest of a stream's from
    /// [`Flows::next_arrival`]. Handing them out one at a time lets the caller act on each
    /// (which needs the flows too) without collecting them first.
    pub(crate) fn receive(&mut self, id: FlowId, bytes: Bytes) -> Option<Arrival> {
        let limits = self.limits;
        let state = self.map.get_mut(&id)?;
        let Some(framer) = state.framer.as_mut() else {
            // A datagram or WebSocket message; keep-alives come as bare CRLFs here too
            // (RFC 5626 §3.5.1 over UDP, SIP.js's habit over WebSocket).
            return Some(match &bytes[..] {
                b"\r\n\r\n" => Arrival::Ping,
                b"\r\n" => Arrival::Pong,
                _ => match Message::frame(bytes, &limits) {
                    Ok(m) => Arrival::Message(m),
                    Err(_) => Arrival::Garbage,
                },
            });
        };
        framer.push(&bytes);
        self.next_arrival(id)
    }

    /// The next arrival a stream flow holds, if any: its framer's next message or
    /// keep-alive (a datagram flow has none after [`Flows::receive`]'s).
    pub(crate) fn next_arrival(&mut self, id: FlowId) -> Option<Arrival> {
        let framer = self.map.get_mut(&id)?.framer.as_mut()?;
        Some(match framer.poll()? {
            Ok(StreamEvent::Message(m)) => Arrival::Message(m),
            Ok(StreamEvent::Ping) => Arrival::Ping,
            Ok(StreamEvent::Pong) => Arrival::Pong,
            Err(_) => Arrival::Garbage,
        })
    }
}
