//! The user agent: one object that owns flows, transactions and registrations, answers what
//! RFC 3261 says a UA answers by itself, and turns everything else into [`Event`]s.
//!
//! Driven like every machine in this crate (DESIGN.md §2): feed one [`Input`] or command,
//! drain [`UserAgent::poll_output`] until `None`, then wake at [`UserAgent::poll_timeout`].
//!
//! ```
//! use std::net::SocketAddr;
//! use std::time::Instant;
//! use sansip_core::ua::{FlowInfo, Output, UaConfig, UserAgent};
//! use sansip_core::transport::Transport;
//!
//! # #[allow(clippy::disallowed_methods)]
//! let now = Instant::now(); // the caller owns the clock
//! // `UserAgent` alone is the signalling-only agent (`UserAgent<NoMedia>`); a softphone
//! // names its handler, e.g. `UserAgent<RtcSession>`.
//! let mut ua: UserAgent = UserAgent::new(UaConfig::new("sip:alice@example.com"), now, 42);
//! // The runtime opened a UDP socket towards the server and tells the UA about it.
//! let flow = ua.add_flow(FlowInfo {
//!     transport: Transport::Udp,
//!     local: "192.0.2.10:5060".parse().unwrap(),
//!     remote: "192.0.2.1:5060".parse().unwrap(),
//! });
//! ua.set_outbound_flow(flow);
//! let id = ua.message(now, "sip:bob@example.com", "text/plain", "hello", &[]).unwrap();
//! while let Some(out) = ua.poll_output() {
//!     if let Output::Transmit { flow, bytes } = out {
//!         assert!(bytes.starts_with(b"MESSAGE sip:bob@example.com SIP/2.0\r\n"));
//!     }
//! }
//! # let _ = id;
//! ```
//!
//! It covers flows registered by the runtime, the automatic answers (OPTIONS, 400 with the
//! fault, 405, 415, 416, 420, 481, 482, 487, 505, 513), registration, MESSAGE both ways and
//! in calls, any out-of-dialog request with its final response as an event, and calls:
//! placing, answering, declining, cancelling and hanging up, hold and unhold by re-INVITE
//! with glare handling, and DTMF by INFO. Session descriptions come from an
//! [`SdpHandler`] per call: the UA is generic over it, and [`NoMedia`] (the default) refuses
//! every offer, for signalling-only use.

pub(crate) mod answer;
mod call;
mod connection;
mod dialog_package;
mod event;
mod gateway;
mod group;
mod local;
mod publish;
mod register;
mod room;
mod subscribe;
mod transfer;

pub use crate::session::{CallEnd, CallHandle, EndCause, HoldState, Originator};
pub use crate::transport::FlowInfo;
pub use call::{AnswerOptions, CallOptions, HangupOptions, OfferMethod};
pub use connection::{KeepAlive, ReconnectPolicy, Server};
pub use event::{Event, RequestId};
pub use gateway::{Gateway, NumberForm};
pub use publish::PublishOptions;
pub use register::RegisterOptions;
pub use subscribe::SubscribeOptions;

use crate::handles::{HandleMap, handle_map};
use crate::peer_map::{PeerMap, peer_map};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use smol_str::SmolStr;

use crate::auth::{Authenticator, DigestCredentials};
use crate::conference::RoomError;
use crate::dialog::{Local, RequestHead, rebranch};
use crate::e164::NumberError;
use crate::flows::{Arrival, Flows};
use crate::ids::IdGenerator;
use crate::message::{
    HeaderName, Headers, Limits, Message, Method, ParseError, Refresher, Request, Response,
    StatusCode, Uri,
};
use crate::publication::{PubTimer, Publication, PublicationHandle};
use crate::registration::Registration;
use crate::session::invite::{CallRequest, CallTimer, Session};
use crate::session::{CallDetails, NoMedia, SdpError, SdpHandler};
use crate::subscription::{SubRequest, SubTimer, Subscription, SubscriptionHandle};
use crate::transaction::{
    RequestOutcome, ResponseOutcome, TimerConfig, TransactionLayer, TxEvent, TxId, TxOutput,
};
use crate::transport::{Flow, FlowId, Transport};
use crate::usage::Deadlines;

/// Settings of one user agent.
#[derive(Debug, Clone)]
pub struct UaConfig {
    /// Our address-of-record, e.g. `sip:alice@example.com`.
    pub aor: String,
    /// Display name for From.
    pub display_name: Option<String>,
    /// User name and password (or HA1) for digest challenges.
    pub credentials: Option<DigestCredentials>,
    /// The User-Agent header value, if any.
    pub user_agent: Option<String>,
    /// T1, T2, T4.
    pub timers: TimerConfig,
    /// Parser bounds.
    pub limits: Limits,
    /// How long an incoming call rings before it is refused with 480 (default 60 s).
    pub no_answer_timeout: Duration,
    /// Servers to connect to with [`UserAgent::connect`], tried in order on failure. Leave
    /// empty to manage flows by hand ([`UserAgent::add_flow`],
    /// [`UserAgent::set_outbound_flow`]).
    pub servers: Vec<Server>,
    /// Backoff between connection attempts.
    pub reconnect: ReconnectPolicy,
    /// CRLF keep-alives on reliable flows to the server; `None` sends none.
    pub keepalive: Option<KeepAlive>,
    /// The Duration of each DTMF tone sent by INFO (default 100 ms).
    pub dtmf_duration: Duration,
    /// The pause after each DTMF INFO is answered before the next goes (default 500 ms).
    pub dtmf_gap: Duration,
    /// The bodies a MESSAGE may carry, as `type/subtype` (default `text/plain` only); any
    /// other is refused with 415 and an Accept listing these (RFC 3428 §7, RFC 3261
    /// §21.4.13). A `type/*` entry takes every subtype.
    pub message_types: Vec<String>,
    /// Send our provisional responses reliably (RFC 3262) when the caller supports
    /// `100rel` (default on); they always are when it requires it.
    pub reliable_provisionals: bool,
    /// The session interval our INVITEs ask for, in seconds (RFC 4028; default 1800);
    /// `None` asks for none (a callee's request is still honoured).
    pub session_expires: Option<u32>,
    /// The shortest session interval we accept, in seconds (default 90, RFC 4028's
    /// least): a shorter one is refused with 422.
    pub min_se: u32,
    /// Who our INVITEs ask to refresh the session (`uac`: us); `None` leaves it to the
    /// callee, which picks the caller when the caller supports timers.
    pub session_refresher: Option<Refresher>,
    /// Follow a 3xx to our INVITE to its Contacts, in q order (default on, at most five
    /// targets); off, the call ends `Redirected` with the 3xx's status.
    pub follow_redirects: bool,
    /// Headers every request we originate carries (REGISTER, INVITE, MESSAGE, and every
    /// request inside a call except ACK and CANCEL), e.g. `("X-Tenant", "7")`; entries that
    /// could not go on the wire are dropped, with a warning, by [`UserAgent::new`]. Add them
    /// with [`UaConfig::header`] to have them checked at once.
    pub extra_headers: Vec<(String, String)>,
    /// What becomes of the peer's offers that change a call's media beyond hold (default
    /// [`ReofferPolicy::Accept`]).
    pub reoffers: ReofferPolicy,
    /// The event packages (RFC 6665) we serve as notifier, e.g. `message-summary`,
    /// `presence`, `dialog`: a SUBSCRIBE for one is accepted (`pending`) and reported as
    /// [`Event::SubscriptionRequested`]; any other gets 489 (default: none).
    pub event_packages: Vec<String>,
    /// Share our calls with whoever subscribes to the `dialog` package (RFC 4235), as a
    /// desk phone with a busy lamp does: such a subscription is accepted at once with
    /// [`UserAgent::share_calls`], and the package is served whether or not
    /// `event_packages` names it (default: off). Who may watch is the server's to check
    /// (Kamailio authenticates subscribers; the embedded registrar does not).
    pub share_calls: bool,
    /// The gateway to the telephone network that [`UserAgent::call_phone_number`] calls
    /// through (default: none).
    pub gateway: Option<Gateway>,
    /// How many ended calls [`UserAgent::call_history`] keeps (default 100; 0 keeps none).
    pub call_history: usize,
    /// Serve groups ([`crate::group`]): a `conference` SUBSCRIBE to a `group-…` user makes
    /// its subscriber a member, and every member gets the group's members, in the order
    /// they joined, at once and whenever one joins or leaves. Such subscriptions are the
    /// user agent's own: no [`Event::SubscriptionRequested`] (default: off).
    pub serve_groups: bool,
}

/// What becomes of the peer's re-INVITE or UPDATE offers that change the media (a stream
/// added or removed, a codec in use dropped, another transport), rather than just its
/// direction, which hold decides by itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReofferPolicy {
    /// Answer them as the handler can, and report [`Event::Renegotiated`].
    #[default]
    Accept,
    /// Report [`Event::ReofferReceived`] and wait for [`UserAgent::accept_reoffer`] or
    /// [`UserAgent::refuse_reoffer`]; an offer left waiting 16·T1 is refused with 488.
    Ask,
}

impl UaConfig {
    /// A UA for `aor` with default timers and limits and no credentials.
    pub fn new(aor: impl Into<String>) -> Self {
        Self {
            aor: aor.into(),
            display_name: None,
            credentials: None,
            user_agent: None,
            timers: TimerConfig::default(),
            limits: Limits::default(),
            no_answer_timeout: Duration::from_secs(60),
            servers: Vec::new(),
            reconnect: ReconnectPolicy::default(),
            keepalive: Some(KeepAlive::default()),
            dtmf_duration: Duration::from_millis(100),
            dtmf_gap: Duration::from_millis(500),
            message_types: vec!["text/plain".into()],
            reliable_provisionals: true,
            session_expires: Some(1800),
            min_se: 90,
            session_refresher: None,
            follow_redirects: true,
            extra_headers: Vec::new(),
            reoffers: ReofferPolicy::Accept,
            event_packages: Vec::new(),
            share_calls: false,
            gateway: None,
            call_history: 100,
            serve_groups: false,
        }
    }

    /// Adds a header to every request we originate (see [`UaConfig::extra_headers`]).
    ///
    /// ```
    /// # use sansip_core::ua::UaConfig;
    /// let config = UaConfig::new("sip:alice@example.com").header("X-Tenant", "7")?;
    /// assert!(UaConfig::new("sip:a@b").header("Bad Name", "x").is_err());
    /// # Ok::<(), sansip_core::ua::UaError>(())
    /// ```
    pub fn header(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, UaError> {
        let (name, value) = (name.into(), value.into());
        Headers::check_named(&name, &value).map_err(|_| UaError::InvalidHeader(name.clone()))?;
        self.extra_headers.push((name, value));
        Ok(self)
    }
}

/// Adds the application's headers, checked when they were given.
pub(crate) fn add_headers(h: &mut Headers, extra: &[(String, String)]) {
    for (name, value) in extra {
        let _ = h.push_named(name, value);
    }
}

/// Something that happened outside the UA.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Input {
    /// Bytes arrived on a flow: one datagram or WebSocket frame, or a piece of a TCP/TLS
    /// stream.
    Received {
        /// The flow.
        flow: FlowId,
        /// The bytes.
        bytes: Bytes,
    },
    /// The flow is gone; its transactions end with a transport error, and if it was the
    /// connection to the server, reconnecting starts.
    FlowClosed {
        /// The flow.
        flow: FlowId,
    },
    /// The flow asked for by [`Output::OpenFlow`] is open; register it with
    /// [`UserAgent::add_flow`] first.
    FlowOpened {
        /// The flow.
        flow: FlowId,
    },
    /// The flow asked for by [`Output::OpenFlow`] could not be opened.
    ConnectFailed {
        /// The index of the server in [`UaConfig::servers`].
        server: usize,
        /// Why, for the application (e.g. a certificate that does not verify).
        reason: String,
    },
}

/// What the UA asks of its runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Send these bytes on this flow: one message (or a keep-alive pong).
    Transmit {
        /// The flow.
        flow: FlowId,
        /// The bytes.
        bytes: Bytes,
    },
    /// Something for the application.
    Event(Event),
    /// Open a flow to `UaConfig::servers[server]`, then report [`Input::FlowOpened`] or
    /// [`Input::ConnectFailed`].
    OpenFlow {
        /// The index of the server in [`UaConfig::servers`].
        server: usize,
        /// Its transport.
        transport: Transport,
    },
    /// Close this flow (its keep-alive went unanswered, or the application disconnected);
    /// no [`Input::FlowClosed`] is needed for it.
    CloseFlow {
        /// The flow.
        flow: FlowId,
    },
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UaError {
    /// No outbound flow to send on: the runtime has not connected yet.
    #[error("not connected")]
    NotConnected,
    /// The target is not a SIP URI, `user@domain`, a user name or a `tel:` URI.
    #[error("invalid target {0:?}")]
    InvalidTarget(String),
    /// A header name or value given by the application is not usable.
    #[error("invalid header {0:?}")]
    InvalidHeader(String),
    /// No registration is configured or running.
    #[error("not registered")]
    NotRegistered,
    /// The call does not exist, or has ended.
    #[error("no such call {0}")]
    NoSuchCall(CallHandle),
    /// The subscription does not exist, or has ended.
    #[error("no such subscription {0}")]
    NoSuchSubscription(SubscriptionHandle),
    /// The publication does not exist, or has ended.
    #[error("no such publication {0}")]
    NoSuchPublication(PublicationHandle),
    /// The call is not in a state where this command applies.
    #[error("invalid state: {0}")]
    InvalidState(&'static str),
    /// A DTMF string holds something other than tones and `,`.
    #[error("invalid dtmf tone {0:?}")]
    InvalidDtmf(char),
    /// A status that does not fit the command (decline takes 3xx–6xx).
    #[error("invalid status {0}")]
    InvalidStatus(u16),
    /// The session-description handler could not make or take a description.
    #[error(transparent)]
    Sdp(#[from] SdpError),
    /// What was dialled is not a phone number the gateway's dial plan can make E.164.
    #[error("invalid phone number: {0}")]
    InvalidNumber(#[from] NumberError),
    /// A phone number was called and no gateway is configured ([`UaConfig::gateway`]).
    #[error("no gateway for phone numbers")]
    NoGateway,
    /// A conference room id that cannot be used.
    #[error("invalid room: {0}")]
    InvalidRoom(#[from] RoomError),
    /// The gateway's URI cannot take a number: not a `sip:`/`sips:` URI, or with a user
    /// part or headers.
    #[error("invalid gateway {0:?}")]
    InvalidGateway(String),
}

/// What a client transaction was started for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Register,
    Request(RequestId),
    Call(CallHandle, CallRequest),
    Subscription(SubscriptionHandle, SubRequest),
    Publication(PublicationHandle),
}

/// A client transaction in flight: why, where, and the request as sent, for an
/// authenticated retry. The bytes are shared with the transaction's own copy; the rare
/// challenge pays for parsing them again.
#[derive(Debug)]
struct Pending {
    purpose: Purpose,
    flow: FlowId,
    request: Bytes,
}

/// The user agent; see the [module docs](self).
#[derive(Debug)]
pub struct UserAgent<S = NoMedia> {
    config: UaConfig,
    ids: IdGenerator,
    tx: TransactionLayer,
    flows: Flows,
    outbound: Option<FlowId>,
    registration: Option<Registration>,
    /// `registration{aor, registrar}` on the target `sansip::registration`.
    registration_span: tracing::Span,
    pending: HandleMap<TxId, Pending>,
    /// Digest state for out-of-dialog requests (calls keep their own).
    auth: Option<Box<Authenticator>>,
    /// Boxed: a call is about a kilobyte, and the map keeps spare slots.
    calls: HandleMap<CallHandle, Box<Session<S>>>,
    /// Calls that stepped since they were last reported, each once (see
    /// [`UserAgent::next_stepped_call`]); at most one entry per live call.
    stepped: Vec<CallHandle>,
    /// Someone reads `stepped`: until then nothing is recorded, and a UA nobody asks
    /// keeps no list.
    record_stepped: bool,
    /// Call-ID and our tag → the call.
    dialogs: PeerMap<(SmolStr, SmolStr), CallHandle>,
    /// Call-ID and the peer's From tag → the incoming call (CANCEL, merged requests).
    incoming: PeerMap<(SmolStr, SmolStr), CallHandle>,
    /// The details of the calls that ended, oldest first, at most `config.call_history`.
    history: VecDeque<std::sync::Arc<CallDetails>>,
    call_timers: Deadlines<CallHandle, CallTimer>,
    /// Boxed like calls: a subscription keeps its SUBSCRIBE.
    subscriptions: HandleMap<SubscriptionHandle, Box<Subscription>>,
    /// Call-ID and our tag → the subscription.
    sub_dialogs: PeerMap<(SmolStr, SmolStr), SubscriptionHandle>,
    sub_timers: Deadlines<SubscriptionHandle, SubTimer>,
    /// A transferee's new call → the call whose REFER asked for it.
    transfers: HashMap<CallHandle, CallHandle>,
    /// An incoming call → the call of ours it replaces once answered (RFC 3891).
    replacing: HashMap<CallHandle, CallHandle>,
    next_subscription: u64,
    /// Subscriptions to our calls (`dialog` package) → the next document's version.
    call_watchers: BTreeMap<SubscriptionHandle, u32>,
    /// The groups we serve, by their members' subscriptions ([`UaConfig::serve_groups`]).
    roster: crate::group::Roster,
    /// Boxed: a publication keeps its state and its PUBLISH in flight.
    publications: HandleMap<PublicationHandle, Box<Publication>>,
    pub_timers: Deadlines<PublicationHandle, PubTimer>,
    next_publication: u64,
    conn: connection::Connection,
    /// Via and Contact per flow, computed when the flow is added.
    locals: HandleMap<FlowId, Local>,
    next_call: u64,
    next_request: u64,
    out: VecDeque<Output>,
    /// The action queue a call's step fills, lent to each step and given back empty, so
    /// that a step does not allocate one.
    spare_actions: VecDeque<crate::session::invite::Action>,
    stats: UaStats,
    now: Instant,
}

/// Counters of what the UA dropped or answered on its own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UaStats {
    /// Responses that did not parse, dropped (RFC 3261 §18.1.2).
    pub malformed_responses: u64,
    /// Requests answered with an error by the UA itself.
    pub rejected_requests: u64,
    /// Bytes that could not be read at all (no headers to answer from).
    pub unparseable: u64,
    /// Requests and responses sent again because no answer or ACK came: the transaction
    /// timers A, E and G, and a callee's 2xx resent until its ACK (§13.3.1.4). Zero on a
    /// network that loses nothing and a peer that keeps up.
    pub retransmissions: u64,
}

impl<S: SdpHandler> UserAgent<S> {
    /// A user agent whose identifiers all come from `seed`.
    pub fn new(mut config: UaConfig, now: Instant, seed: u64) -> Self {
        let limits = config.limits;
        config.extra_headers.retain(|(name, value)| {
            let ok = Headers::check_named(name, value).is_ok();
            if !ok {
                tracing::warn!(header = %name, "UA-wide header dropped: not valid on the wire");
            }
            ok
        });
        Self {
            tx: TransactionLayer::new(config.timers),
            config,
            ids: IdGenerator::new(seed),
            flows: Flows::new(limits),
            outbound: None,
            registration: None,
            registration_span: tracing::Span::none(),
            pending: handle_map(),
            auth: None,
            calls: handle_map(),
            stepped: Vec::new(),
            record_stepped: false,
            dialogs: peer_map(),
            incoming: peer_map(),
            history: VecDeque::new(),
            call_timers: Deadlines::new(),
            subscriptions: handle_map(),
            sub_dialogs: peer_map(),
            sub_timers: Deadlines::new(),
            transfers: HashMap::new(),
            replacing: HashMap::new(),
            next_subscription: 0,
            call_watchers: BTreeMap::new(),
            roster: crate::group::Roster::new(),
            publications: handle_map(),
            pub_timers: Deadlines::new(),
            next_publication: 0,
            conn: connection::Connection::new(),
            locals: handle_map(),
            next_call: 0,
            next_request: 0,
            out: VecDeque::new(),
            spare_actions: VecDeque::new(),
            stats: UaStats::default(),
            now,
        }
    }

    /// Counters.
    pub fn stats(&self) -> UaStats {
        UaStats {
            retransmissions: self.stats.retransmissions + self.tx.stats().retransmissions,
            ..self.stats
        }
    }

    /// Requests we sent that have no final response yet. A program that wants to exit
    /// cleanly waits for zero, so its last BYE is answered rather than resent.
    pub fn requests_in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Live transactions; zero once everything has settled.
    pub fn transactions(&self) -> usize {
        self.tx.len()
    }

    /// Tells the UA about a flow the runtime opened or accepted; returns its id.
    pub fn add_flow(&mut self, info: FlowInfo) -> FlowId {
        let invalid_host = matches!(info.transport, Transport::Ws | Transport::Wss)
            .then(|| format!("{}.invalid", &self.ids.tag()[..12]));
        let flow = self.flows.add(info, false, invalid_host);
        self.remember_local(flow);
        flow
    }

    /// Tells the UA about a connection a peer opened to it (TCP, TLS or WebSocket): the
    /// keep-alive roles are reversed from [`UserAgent::add_flow`] (RFC 5626 §3.5.1).
    pub fn add_accepted_flow(&mut self, info: FlowInfo) -> FlowId {
        let flow = self.flows.add(info, true, None);
        self.remember_local(flow);
        flow
    }

    /// The flow for `info`, registering it first if the UA does not know it yet: how a
    /// runtime maps a datagram from a new peer, or a new connection, to a flow.
    pub fn flow_for(&mut self, info: FlowInfo) -> FlowId {
        match self.flows.find(&info) {
            Some(id) => id,
            None => self.add_flow(info),
        }
    }

    /// The flow out-of-dialog requests (REGISTER, MESSAGE…) leave by: the connection to the
    /// registrar or outbound proxy.
    pub fn set_outbound_flow(&mut self, flow: FlowId) {
        self.outbound = Some(flow);
    }

    /// Feeds one input.
    pub fn handle_input(&mut self, now: Instant, input: Input) {
        self.now = now;
        match input {
            Input::Received { flow, bytes } => self.received(now, flow, bytes),
            Input::FlowClosed { flow } => self.close_flow(now, flow),
            Input::FlowOpened { flow } => self.flow_opened(now, flow),
            Input::ConnectFailed { server, reason } => self.connect_failed(now, server, reason),
        }
    }

    /// Forgets a flow: its transactions fail, and the connection to the server is retried.
    fn close_flow(&mut self, now: Instant, flow: FlowId) {
        self.locals.remove(&flow);
        if let Some(state) = self.flows.remove(flow) {
            self.tx.handle_flow_closed(Flow {
                id: flow,
                transport: state.info.transport,
            });
            self.drain_tx();
        }
        if self.outbound == Some(flow) {
            self.outbound = None;
        }
        self.connection_lost(now, flow);
    }

    /// Fires what is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        self.tx.handle_timeout(now);
        self.drain_tx();
        self.fire_call_timers(now);
        self.fire_sub_timers(now);
        self.fire_pub_timers(now);
        self.connection_timeout(now);
        let local = self.local_for_outbound();
        if let (Some(reg), Some(local)) = (self.registration.as_mut(), local)
            && let Some(req) = reg.handle_timeout(now, &local, &mut self.ids)
        {
            self.send(now, req, Purpose::Register);
        }
        self.forward_registration_events();
    }

    /// The next thing to do; drain after every input and command.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        let out = self.out.pop_front();
        match &out {
            Some(Output::Transmit { flow, bytes }) => self.flows.trace_sent(*flow, bytes),
            // Drained: whatever comes next is a timer, so `poll_timeout` should name one
            // that will fire.
            None => self.prune_call_timers(),
            _ => {}
        }
        out
    }

    /// The settings the user agent runs with.
    pub fn config(&self) -> &UaConfig {
        &self.config
    }

    /// The latest instant the user agent was told of (by an input, a timeout or a command).
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The earliest deadline of anything inside.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let reg = self
            .registration
            .as_ref()
            .and_then(Registration::poll_timeout);
        [
            self.tx.poll_timeout(),
            reg,
            self.next_call_timer(),
            self.next_sub_timer(),
            self.next_pub_timer(),
            self.conn.deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Sends a MESSAGE (RFC 3428) out of dialog; its final response comes as
    /// [`Event::RequestCompleted`] with the returned id.
    pub fn message(
        &mut self,
        now: Instant,
        target: &str,
        content_type: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> Result<RequestId, UaError> {
        self.request(
            now,
            Method::Message,
            target,
            Some((content_type, body.as_bytes())),
            headers,
        )
    }

    /// Sends any request out of dialog (the old SIP.js `UA.request()`); the final response
    /// comes as [`Event::RequestCompleted`]. `target` may be a SIP URI, `user@domain`, a bare
    /// user (our domain is added) or a `tel:` URI.
    pub fn request(
        &mut self,
        now: Instant,
        method: Method,
        target: &str,
        body: Option<(&str, &[u8])>,
        headers: &[(&str, &str)],
    ) -> Result<RequestId, UaError> {
        let local = self.local_for_outbound().ok_or(UaError::NotConnected)?;
        let uri = self.target_uri(target)?;
        let from = format!("{};tag={}", self.our_from(None), self.ids.tag());
        let to = format!("<{uri}>");
        let call_id = self.ids.call_id();
        let cseq = self.ids.initial_cseq();
        let mut r = RequestHead {
            method,
            uri: &uri,
            routes: &[],
            from: &from,
            to: &to,
            call_id: &call_id,
            cseq,
        }
        .build(&local, &mut self.ids);
        let h = r.headers_mut();
        if let Some(ua) = &self.config.user_agent {
            h.push(HeaderName::UserAgent, ua);
        }
        add_headers(h, &self.config.extra_headers);
        for (name, value) in headers {
            h.push_named(name, value)
                .map_err(|_| UaError::InvalidHeader((*name).to_string()))?;
        }
        if let Some((content_type, body)) = body {
            r.set_body(content_type, Bytes::copy_from_slice(body));
        }
        if let Some(auth) = self.auth.as_mut() {
            let _ = auth.preauthorize(&mut r, &self.ids.cnonce());
        }
        let id = self.next_request_id();
        self.send(now, r, Purpose::Request(id));
        Ok(id)
    }

    fn next_request_id(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    /// Our From header value without the tag: `"Name" <aor>` or `<aor>`.
    fn our_from(&self, display_name: Option<&str>) -> String {
        match display_name.or(self.config.display_name.as_deref()) {
            Some(d) => [
                "\"",
                &d.replace(['"', '\\'], ""),
                "\" <",
                &self.config.aor,
                ">",
            ]
            .concat(),
            None => ["<", self.config.aor.as_str(), ">"].concat(),
        }
    }

    /// A target as a Request-URI: full URIs as given, `user@domain` and bare users as `sip:`.
    fn target_uri(&self, target: &str) -> Result<String, UaError> {
        let target = target.trim();
        let bad = || UaError::InvalidTarget(target.to_string());
        let uri = if target.contains(':') {
            target.to_string()
        } else if target.contains('@') {
            ["sip:", target].concat()
        } else {
            let ours = Uri::parse(&self.config.aor).map_err(|_| bad())?;
            format!("sip:{target}@{}", ours.host().ok_or_else(bad)?)
        };
        Uri::parse_request_uri(&uri).map_err(|_| bad())?;
        Ok(uri)
    }

    fn send(&mut self, now: Instant, req: Request, purpose: Purpose) {
        match self.outbound {
            Some(flow) => self.send_on(now, flow, req, purpose),
            None => self.fail_purpose(purpose, None, "not connected"),
        }
    }

    /// Starts a client transaction for `req` on `flow`; failures come back through the
    /// purpose like any other.
    fn send_on(&mut self, now: Instant, flow: FlowId, req: Request, purpose: Purpose) {
        let Some(f) = self.flow(flow) else {
            self.fail_purpose(purpose, None, "not connected");
            return;
        };
        match self.tx.send_request(now, f, req) {
            Ok(tx) => {
                let request = self.tx.request_bytes(tx).cloned().unwrap_or_default();
                self.pending.insert(
                    tx,
                    Pending {
                        purpose,
                        flow,
                        request,
                    },
                );
                if let Purpose::Call(id, what) = purpose {
                    self.track(id, what, tx);
                }
            }
            Err(e) => self.fail_purpose(purpose, None, &e.to_string()),
        }
        self.drain_tx();
    }

    /// Sends a challenged request again with credentials (RFC 3261 §22.2): same request,
    /// next CSeq, new branch. False when there is nothing to answer with, or the
    /// authenticator's loop guard says the credentials were refused.
    fn retry_with_auth(&mut self, now: Instant, p: Pending, resp: &Response) -> bool {
        let Ok(Message::Request(mut req)) = Message::parse(p.request) else {
            return false;
        };
        let old = req.cseq().map(|c| c.seq).unwrap_or_default();
        let seq = match p.purpose {
            Purpose::Register => return false,
            Purpose::Call(id, what) if what != CallRequest::Invite => {
                match self.calls.get_mut(&id).and_then(|c| c.dialog_mut()) {
                    Some(d) => d.next_seq(),
                    None => return false,
                }
            }
            Purpose::Subscription(id, _) => {
                subscribe::next_seq(self, id).unwrap_or_else(|| old.wrapping_add(1))
            }
            _ => old.wrapping_add(1),
        };
        rebranch(&mut req, seq, &mut self.ids);
        let cnonce = self.ids.cnonce();
        let auth = match p.purpose {
            Purpose::Call(id, _) => match self.calls.get_mut(&id) {
                Some(c) => c.auth_mut(),
                None => return false,
            },
            Purpose::Subscription(id, _) => match self.subscriptions.get_mut(&id) {
                Some(s) => s.auth_mut(),
                None => return false,
            },
            Purpose::Publication(id) => match self.publications.get_mut(&id) {
                Some(p) => p.auth_mut(),
                None => return false,
            },
            _ => &mut self.auth,
        };
        // A call through a gateway came with the gateway's credentials; the others answer
        // with ours.
        let auth = match auth {
            Some(auth) => auth,
            None => match self.config.credentials.clone() {
                Some(credentials) => auth.insert(Box::new(Authenticator::new(credentials))),
                None => return false,
            },
        };
        if auth.authorize(resp, &mut req, &cnonce).is_err() {
            return false;
        }
        match p.purpose {
            Purpose::Call(id, CallRequest::Invite) => self.call_invite_sent(id, &req),
            Purpose::Subscription(id, SubRequest::Subscribe) => self.subscribe_resent(id, &req),
            Purpose::Publication(id) => self.publish_resent(id, &req),
            _ => {}
        }
        self.send_on(now, p.flow, req, p.purpose);
        true
    }

    fn flow(&self, id: FlowId) -> Option<Flow> {
        self.flows.flow(id)
    }

    fn received(&mut self, now: Instant, flow: FlowId, bytes: Bytes) {
        let Some(f) = self.flows.flow(flow) else {
            return;
        };
        let mut next = self.flows.receive(flow, bytes);
        while let Some(arrival) = next {
            match arrival {
                Arrival::Message(m) => {
                    self.flows.trace_received(flow, &m);
                    self.message_in(now, f, m)
                }
                Arrival::Ping => self.out.push_back(Output::Transmit {
                    flow,
                    bytes: Bytes::from_static(b"\r\n"),
                }),
                Arrival::Pong => self.pong(flow),
                Arrival::Garbage => self.stats.unparseable += 1,
            }
            next = self.flows.next_arrival(flow);
        }
    }

    fn message_in(&mut self, now: Instant, flow: Flow, mut m: Message) {
        let valid = m.validate_for_ua();
        match m {
            Message::Response(r) => {
                if valid.is_err() {
                    self.stats.malformed_responses += 1;
                    return;
                }
                self.response(now, r);
            }
            Message::Request(r) => match valid.and_then(|()| r.check_required()) {
                Ok(()) => self.request_in(now, flow, r),
                Err(e) => self.reject_malformed(flow, &r, &e),
            },
        }
    }

    fn reject_malformed(&mut self, flow: Flow, r: &Request, e: &ParseError) {
        self.stats.rejected_requests += 1;
        if let Some(resp) = reject_response(r, e, &self.ids.tag()) {
            self.out.push_back(Output::Transmit {
                flow: flow.id,
                bytes: resp.to_bytes(),
            });
        }
    }

    fn request_in(&mut self, now: Instant, flow: Flow, req: Request) {
        let outcome = match self.tx.handle_request(now, flow, req.clone()) {
            Ok(o) => o,
            Err(e) => {
                self.reject_malformed(flow, &req, &e);
                return;
            }
        };
        let tx = match outcome {
            RequestOutcome::New(tx) => tx,
            RequestOutcome::Cancel { tx, invite } => {
                self.drain_tx();
                self.cancel_in(now, tx, invite, &req);
                return;
            }
            RequestOutcome::Ack => {
                self.drain_tx();
                self.ack_in(now, &req);
                return;
            }
            RequestOutcome::Absorbed => {
                self.drain_tx();
                return;
            }
        };
        let decision = answer::decide(&req, &self.config.message_types);
        match decision {
            answer::Decision::Reply(resp) => {
                if resp.code() >= 300 {
                    self.stats.rejected_requests += 1;
                }
                let extra = answer::extra_headers(&req, &resp, &self.config.message_types);
                self.respond_with(now, tx, &req, resp, &extra);
            }
            answer::Decision::Message => self.message_received(now, tx, &req, None),
            answer::Decision::Invite => self.invite_in(now, flow, tx, req),
            answer::Decision::InDialog => self.in_dialog(now, tx, req),
            answer::Decision::Subscribe => self.subscribe_in(now, flow, tx, req),
            answer::Decision::UnsolicitedNotify => self.unsolicited_notify(now, tx, &req),
        }
    }

    fn message_received(
        &mut self,
        now: Instant,
        tx: TxId,
        req: &Request,
        call: Option<CallHandle>,
    ) {
        let h = req.headers();
        let from = h.get(HeaderName::From).unwrap_or_default().to_string();
        let content_type = h
            .get(HeaderName::ContentType)
            .unwrap_or("text/plain")
            .to_string();
        self.out.push_back(Output::Event(Event::MessageReceived {
            call,
            from,
            content_type,
            body: req.body().clone(),
        }));
        self.respond(now, tx, req, answer::status(200));
    }

    fn respond(&mut self, now: Instant, tx: TxId, req: &Request, status: StatusCode) {
        self.respond_with(now, tx, req, status, &[]);
    }

    fn respond_with(
        &mut self,
        now: Instant,
        tx: TxId,
        req: &Request,
        status: StatusCode,
        extra: &[(HeaderName, String)],
    ) {
        let server = self.config.user_agent.as_deref();
        let resp = answer::reply(req, status, extra, &mut self.ids, server);
        // The transaction may have ended already (e.g. its flow closed); nothing to send then.
        let _ = self.tx.respond(now, tx, &resp);
        self.drain_tx();
    }

    fn response(&mut self, now: Instant, resp: Response) {
        let invite_2xx = resp.status().is_success()
            && resp
                .cseq()
                .is_ok_and(|c| c.method == Method::Invite.as_str());
        match self.tx.handle_response(now, &resp) {
            ResponseOutcome::Pass(tx) => {
                let pending = if resp.status().is_final() {
                    self.pending.remove(&tx)
                } else {
                    None
                };
                let purpose = pending
                    .as_ref()
                    .map(|p| p.purpose)
                    .or_else(|| self.pending.get(&tx).map(|p| p.purpose));
                self.drain_tx();
                match purpose {
                    Some(Purpose::Call(id, what)) => {
                        self.call_response(now, id, what, pending, &resp);
                    }
                    Some(Purpose::Subscription(id, what)) => {
                        self.sub_response(now, id, what, pending, &resp);
                    }
                    Some(Purpose::Publication(id)) => {
                        self.pub_response(now, id, pending, &resp);
                    }
                    Some(_) if resp.status().is_final() => self.complete(now, pending, &resp),
                    Some(_) => {}
                    None if invite_2xx => self.stray_2xx(now, &resp),
                    None => {}
                }
            }
            ResponseOutcome::Stray if invite_2xx => {
                self.drain_tx();
                self.stray_2xx(now, &resp);
            }
            _ => self.drain_tx(),
        }
    }

    fn complete(&mut self, now: Instant, pending: Option<Pending>, resp: &Response) {
        let code = resp.status().code();
        match pending {
            Some(p) if matches!(p.purpose, Purpose::Request(_)) && (code == 401 || code == 407) => {
                let Purpose::Request(id) = p.purpose else {
                    return;
                };
                if !self.retry_with_auth(now, p, resp) {
                    self.request_completed(id, resp);
                }
            }
            Some(Pending {
                purpose: Purpose::Register,
                ..
            }) => {
                let Some(local) = self.local_for_outbound() else {
                    return;
                };
                let retry = self
                    .registration
                    .as_mut()
                    .and_then(|reg| reg.handle_response(now, resp, &local, &mut self.ids));
                if let Some(req) = retry {
                    self.send(now, req, Purpose::Register);
                }
                self.forward_registration_events();
            }
            Some(Pending {
                purpose: Purpose::Request(id),
                ..
            }) => self.request_completed(id, resp),
            _ => {}
        }
    }

    fn request_completed(&mut self, id: RequestId, resp: &Response) {
        self.out.push_back(Output::Event(Event::RequestCompleted {
            id,
            status: resp.status().code(),
            reason: resp.status().reason().to_string(),
        }));
    }

    fn fail_purpose(&mut self, purpose: Purpose, timed_out: Option<bool>, reason: &str) {
        match purpose {
            Purpose::Call(id, what) => {
                let now = self.now;
                self.call_request_failed(now, id, what, timed_out.unwrap_or(false));
            }
            Purpose::Subscription(id, _) => {
                let now = self.now;
                self.sub_request_failed(now, id, timed_out.unwrap_or(false));
            }
            Purpose::Publication(id) => {
                let now = self.now;
                self.pub_request_failed(now, id, timed_out.unwrap_or(false));
            }
            Purpose::Register => {
                if let Some(reg) = self.registration.as_mut() {
                    reg.handle_failure(self.now, timed_out.unwrap_or(false), &mut self.ids);
                }
                self.forward_registration_events();
            }
            Purpose::Request(id) => {
                let (status, reason) = match timed_out {
                    Some(true) => (408, "Request Timeout".to_string()),
                    Some(false) => (503, "Service Unavailable".to_string()),
                    None => (503, reason.to_string()),
                };
                self.out.push_back(Output::Event(Event::RequestCompleted {
                    id,
                    status,
                    reason,
                }));
            }
        }
    }

    /// Moves the transaction layer's output into ours, reacting to its events.
    fn drain_tx(&mut self) {
        while let Some(o) = self.tx.poll_output() {
            match o {
                TxOutput::Transmit { flow, bytes } => {
                    self.out.push_back(Output::Transmit {
                        flow: flow.id,
                        bytes,
                    });
                }
                TxOutput::Event(TxEvent::Timeout { tx, .. }) => {
                    if let Some(p) = self.pending.remove(&tx) {
                        self.fail_purpose(p.purpose, Some(true), "timeout");
                    }
                }
                TxOutput::Event(TxEvent::TransportError { tx }) => {
                    if let Some(p) = self.pending.remove(&tx) {
                        self.fail_purpose(p.purpose, Some(false), "transport error");
                    }
                }
            }
        }
    }
}

/// The answer to a request that failed to parse, when it carries enough to route one
/// (RFC 3261 §8.2: a top Via); ACK is never answered. The reason phrase names the fault.
pub(crate) fn reject_response(r: &Request, e: &ParseError, to_tag: &str) -> Option<Response> {
    if *r.method() == Method::Ack || r.top_via().is_err() {
        return None;
    }
    let reason = e.to_string();
    let status =
        StatusCode::with_reason(e.status(), &reason).unwrap_or_else(|| StatusCode::new(e.status()));
    let mut resp = Response::from_request(r, status);
    resp.set_to_tag(to_tag);
    Some(resp)
}
