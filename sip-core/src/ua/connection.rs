//! The connection to the server: which configured server to open a flow to, when to try
//! again after a failure or a loss (jittered exponential backoff, failing over across the
//! servers), and CRLF keep-alives with a pong timeout on reliable flows (RFC 5626 §3.5.1,
//! §4.4.1). The runtime only connects when asked ([`Output::OpenFlow`]) and reports what
//! happened ([`Input::FlowOpened`], [`Input::ConnectFailed`], [`Input::FlowClosed`]).

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Event, Output, UserAgent};
use crate::session::SdpHandler;
use crate::transport::{FlowId, Transport};

/// A server the UA may connect to; the runtime resolves and opens it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// How to reach it.
    pub transport: Transport,
    /// Where, as the runtime understands it: `host:port`, or the `ws://` / `wss://` URL.
    pub address: String,
}

/// When to try again after a failed or lost connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// The first delay (default 2 s).
    pub min: Duration,
    /// The longest delay (default 30 s).
    pub max: Duration,
    /// Give up after this many failures in a row; `None` (the default) never gives up.
    pub max_attempts: Option<u32>,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        Self {
            min: Duration::from_secs(2),
            max: Duration::from_secs(30),
            max_attempts: None,
        }
    }
}

/// Keep-alives on a reliable flow (RFC 5626 §3.5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepAlive {
    /// A `CRLFCRLF` ping this often (default 30 s).
    pub interval: Duration,
    /// The flow is considered dead without a `CRLF` pong within this (default 10 s, as
    /// RFC 5626 §4.4.1 says).
    pub timeout: Duration,
}

impl Default for KeepAlive {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not asked to connect, or told to disconnect.
    Idle,
    /// `OpenFlow` is out for this server.
    Connecting(usize),
    /// Connected on this flow.
    Up(FlowId),
    /// Trying again at this instant.
    Waiting(Instant),
    /// Out of attempts.
    GaveUp,
}

#[derive(Debug)]
pub(super) struct Connection {
    state: State,
    /// The server to try next.
    next: usize,
    failures: u32,
    /// When the next ping goes out, and the pong deadline while one is awaited.
    ping_at: Option<Instant>,
    pong_by: Option<Instant>,
}

impl Connection {
    pub(super) fn new() -> Self {
        Self {
            state: State::Idle,
            next: 0,
            failures: 0,
            ping_at: None,
            pong_by: None,
        }
    }

    pub(super) fn deadline(&self) -> Option<Instant> {
        let wait = match self.state {
            State::Waiting(at) => Some(at),
            _ => None,
        };
        [wait, self.ping_at, self.pong_by]
            .into_iter()
            .flatten()
            .min()
    }

    pub(super) fn is_up(&self) -> bool {
        matches!(self.state, State::Up(_))
    }
}

impl<S: SdpHandler> UserAgent<S> {
    /// Connects to the first configured server ([`UaConfig::servers`](super::UaConfig)),
    /// and keeps connected from then on: a failed attempt or a lost flow is retried after
    /// the [`ReconnectPolicy`] backoff, on the next server. Events:
    /// [`Event::Connected`], [`Event::Disconnected`].
    pub fn connect(&mut self, now: Instant) {
        self.now = now;
        if self.config.servers.is_empty()
            || matches!(self.conn.state, State::Connecting(_) | State::Up(_))
        {
            return;
        }
        self.conn.failures = 0;
        self.open_next();
    }

    /// Closes the connection and stops reconnecting.
    pub fn disconnect(&mut self, now: Instant) {
        self.now = now;
        if let State::Up(flow) = self.conn.state {
            self.out.push_back(Output::CloseFlow { flow });
        }
        self.conn.state = State::Idle;
        self.conn.ping_at = None;
        self.conn.pong_by = None;
    }

    /// Whether the connection to the server is up.
    pub fn is_connected(&self) -> bool {
        self.conn.is_up()
    }

    fn open_next(&mut self) {
        let server = self.conn.next % self.config.servers.len();
        self.conn.state = State::Connecting(server);
        self.out.push_back(Output::OpenFlow {
            server,
            transport: self.config.servers[server].transport,
        });
    }

    /// The runtime opened the flow we asked for (after [`UserAgent::add_flow`]).
    pub(super) fn flow_opened(&mut self, now: Instant, flow: FlowId) {
        if !matches!(self.conn.state, State::Connecting(_)) {
            return;
        }
        self.conn.state = State::Up(flow);
        self.conn.failures = 0;
        self.outbound = Some(flow);
        let reliable = self.flows.is_reliable(flow);
        self.conn.pong_by = None;
        self.conn.ping_at = match (reliable, self.config.keepalive) {
            (true, Some(k)) => Some(now + k.interval),
            _ => None,
        };
        self.out.push_back(Output::Event(Event::Connected { flow }));
        // The old binding points at a dead flow (RFC 5626 §4.4.1): register again.
        let local = self.local_for(flow);
        if let Some(req) = self
            .registration
            .as_mut()
            .and_then(|r| r.reconnected(&local, &mut self.ids))
        {
            self.send(now, req, super::Purpose::Register);
        }
        self.calls_moved_to(now, flow);
    }

    /// The runtime could not open the flow to `server`.
    pub(super) fn connect_failed(&mut self, now: Instant, server: usize, reason: String) {
        if self.conn.state != State::Connecting(server) {
            return;
        }
        self.conn.next = server + 1;
        self.schedule_reconnect(now, reason);
    }

    /// A flow closed; the outbound one is reconnected.
    pub(super) fn connection_lost(&mut self, now: Instant, flow: FlowId) {
        if self.conn.state != State::Up(flow) {
            return;
        }
        self.conn.ping_at = None;
        self.conn.pong_by = None;
        self.schedule_reconnect(now, "connection lost".into());
    }

    fn schedule_reconnect(&mut self, now: Instant, reason: String) {
        self.conn.failures += 1;
        let policy = self.config.reconnect;
        if policy.max_attempts.is_some_and(|m| self.conn.failures > m) {
            self.conn.state = State::GaveUp;
            self.out.push_back(Output::Event(Event::Disconnected {
                retry_in: None,
                reason,
            }));
            return;
        }
        let exp = self.conn.failures.saturating_sub(1).min(16);
        let full = policy.min.saturating_mul(1 << exp).min(policy.max);
        // Jitter over the upper half, so a crowd of clients does not come back at once.
        let half = full / 2;
        let jitter = Duration::from_millis(self.ids.below(half.as_millis() as u64 + 1));
        let delay = half + jitter;
        self.conn.state = State::Waiting(now + delay);
        self.out.push_back(Output::Event(Event::Disconnected {
            retry_in: Some(delay),
            reason,
        }));
    }

    /// Reconnect attempts and keep-alives that are due.
    pub(super) fn connection_timeout(&mut self, now: Instant) {
        if let State::Waiting(at) = self.conn.state
            && at <= now
        {
            self.open_next();
        }
        let State::Up(flow) = self.conn.state else {
            return;
        };
        if self.conn.pong_by.is_some_and(|t| t <= now) {
            // No pong: the flow is dead even if the socket does not know yet.
            tracing::debug!(?flow, "keep-alive pong missing, closing the flow");
            self.out.push_back(Output::CloseFlow { flow });
            self.close_flow(now, flow);
            return;
        }
        if self.conn.ping_at.is_some_and(|t| t <= now)
            && let Some(k) = self.config.keepalive
        {
            self.out.push_back(Output::Transmit {
                flow,
                bytes: Bytes::from_static(b"\r\n\r\n"),
            });
            self.conn.ping_at = Some(now + k.interval);
            self.conn.pong_by = Some(now + k.timeout);
        }
    }

    pub(super) fn pong(&mut self, flow: FlowId) {
        if self.conn.state == State::Up(flow) {
            self.conn.pong_by = None;
        }
    }
}
