//! The sans-IO [`MediaAgent`]: a [`UserAgent`] whose calls carry real media (DESIGN.md §4
//! calls it the sans-IO `Phone`; the async handle the application holds is
//! [`crate::driver::Phone`]).
//!
//! One object, driven like the user agent: SIP bytes and flow events through
//! [`MediaAgent::handle_input`], media datagrams through [`MediaAgent::handle_media`], time through
//! [`MediaAgent::handle_timeout`]; out come SIP outputs ([`MediaAgent::poll_output`]), media datagrams
//! ([`MediaAgent::poll_media`]) and media events ([`MediaAgent::poll_media_event`]), and one deadline
//! for everything ([`MediaAgent::poll_timeout`]). Media datagrams are matched to their call here,
//! once: by the sender's address when it is known, else by asking each call's ICE agent.
//!
//! ```
//! # use std::time::Instant;
//! use sansip_media::{MediaConfig, MediaAgent};
//! use sansip_media::core::ua::UaConfig;
//!
//! let now = Instant::now();
//! let media = vec!["127.0.0.1:40000".parse().unwrap()];
//! let mut phone = MediaAgent::new(UaConfig::new("sip:alice@example.com"), MediaConfig::default(), media, now, 7)?;
//! while let Some(out) = phone.poll_output() { /* send SIP, show events */ }
//! while let Some(t) = phone.poll_media() { /* send t.contents from t.source to t.destination */ }
//! let _next = phone.poll_timeout();
//! # Ok::<(), sansip_media::MediaError>(())
//! ```

mod group;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use sansip_core::session::{CallHandle, EndCause, dtmf};
use sansip_core::ua::{
    AnswerOptions, CallOptions, Event, Input, OfferMethod, Output, UaConfig, UaError, UserAgent,
};

use crate::audio::{AudioSink, AudioSource};
use crate::config::{DtmfMethod, MediaConfig};
use crate::session::{MediaError, RtcSession, SessionTemplate};
use crate::stats::{MediaEvent, MediaStats, MediaTransmit, StreamId, StreamOutput};
use crate::stun::Gatherer;
use crate::turn::{Relays, TurnServer};
use crate::video::{VideoFrame, VideoSink};
use turn_client_rustls::rustls::ClientConfig;

/// A SIP phone with media: see the module docs.
pub struct MediaAgent {
    ua: UserAgent<RtcSession>,
    template: SessionTemplate,
    transmits: VecDeque<MediaTransmit>,
    /// DTMF heard in-band, surfaced as the user agent's own event.
    extra: VecDeque<Output>,
    media_events: VecDeque<MediaEvent>,
    /// The latest totals of each live call, for its `Ended` event (the user agent drops the
    /// session with the call).
    stats: HashMap<CallHandle, MediaStats>,
    /// Media senders already matched to a call.
    routes: HashMap<SocketAddr, CallHandle>,
    /// Media addresses no call holds.
    free: Vec<SocketAddr>,
    /// Each call's own media address.
    ports: HashMap<SocketAddr, CallHandle>,
    /// The totals of the calls that ended last (bounded), for late readers.
    finished: VecDeque<(CallHandle, MediaStats)>,
    /// Reused list of the calls due at a wake-up.
    ids: Vec<CallHandle>,
    /// Each call's media deadline as last read, and the same deadlines earliest first: a
    /// wake-up finds the calls that are due without visiting the others (2,000 calls
    /// must not cost 2,000 visits per 20 ms tick). A queued entry that no longer matches
    /// `deadlines` is stale and skipped.
    deadlines: HashMap<CallHandle, Instant>,
    queue: BinaryHeap<Reverse<(Instant, CallHandle)>>,
    /// Calls whose session was handed out mutably since: their deadline and output are
    /// read again at the next step.
    touched: Vec<CallHandle>,
    /// The latest instant we were told of (the user agent hears only of its own timers).
    now: Instant,
    /// Server-reflexive addresses of the media sockets, once STUN servers are set.
    stun: Option<Gatherer>,
    /// Relayed addresses of the media sockets, once TURN servers are set.
    turn: Option<Relays>,
    /// The groups we are in, with their legs and audio.
    groups: group::Groups,
}

/// How many ended calls' totals [`MediaAgent::media_stats`] still knows.
const FINISHED_KEPT: usize = 64;

impl std::fmt::Debug for MediaAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaAgent")
            .field("template", &self.template)
            .field("calls", &self.stats.len())
            .finish_non_exhaustive()
    }
}

impl MediaAgent {
    /// A phone for `ua`, with media at `media_addrs` (the addresses of the sockets its
    /// media is sent from and received on; each becomes an ICE host candidate).
    pub fn new(
        ua: UaConfig,
        media: MediaConfig,
        media_addrs: Vec<SocketAddr>,
        now: Instant,
        seed: u64,
    ) -> Result<Self, MediaError> {
        Ok(Self::with_agent(
            UserAgent::new(ua, now, seed),
            SessionTemplate::new(media, media_addrs)?,
        ))
    }

    /// A phone over an existing user agent and session template.
    pub fn with_agent(mut ua: UserAgent<RtcSession>, template: SessionTemplate) -> Self {
        // What the agent syncs after each step (see `sync_stepped`).
        ua.record_stepped_calls();
        let free = template.addresses().iter().rev().copied().collect();
        let now = ua.now();
        Self {
            ua,
            template,
            transmits: VecDeque::new(),
            extra: VecDeque::new(),
            media_events: VecDeque::new(),
            stats: HashMap::new(),
            routes: HashMap::new(),
            free,
            ports: HashMap::new(),
            finished: VecDeque::new(),
            ids: Vec::new(),
            deadlines: HashMap::new(),
            queue: BinaryHeap::new(),
            touched: Vec::new(),
            now,
            stun: None,
            turn: None,
            groups: group::Groups::default(),
        }
    }

    /// The user agent, for reading.
    pub fn ua(&self) -> &UserAgent<RtcSession> {
        &self.ua
    }

    /// The user agent, for every command this type does not wrap (register, message, hold,
    /// hangup…). Media follows on the next `poll_*` call: the calls those commands stepped
    /// are read again ([`UserAgent::next_stepped_call`]). A session changed through its
    /// `sdp_handler_mut` here is not; change it with this type's methods (`set_source`,
    /// `set_video`…).
    pub fn ua_mut(&mut self) -> &mut UserAgent<RtcSession> {
        &mut self.ua
    }

    /// A new media session with this phone's settings, for [`UserAgent::call`] or
    /// [`UserAgent::answer`].
    pub fn new_session(&self, now: Instant) -> RtcSession {
        self.with_reflexive(RtcSession::new(now, &self.template), None)
    }

    /// Asks `servers` (STUN, by address) for the media sockets' server-reflexive addresses
    /// (RFC 8445 §5.1.1.2), which every session made from then on offers beside its host
    /// candidates, and keeps asking every [`crate::stun::REFRESH`]. `seed` makes the
    /// transaction ids replay.
    pub fn set_stun_servers(&mut self, now: Instant, servers: &[SocketAddr], seed: u64) {
        self.now = self.now.max(now);
        self.stun = (!servers.is_empty())
            .then(|| Gatherer::new(self.template.addresses(), servers, now, seed));
    }

    /// Allocates a relayed address for every media socket on each of `servers` (TURN,
    /// RFC 8656); every session made once they are allocated offers them too. Servers over
    /// TCP and TLS need connections from the driver ([`MediaAgent::poll_stream`]); `tls`
    /// checks the `turns:` ones.
    pub fn set_turn_servers(
        &mut self,
        now: Instant,
        servers: &[TurnServer],
        tls: Option<Arc<ClientConfig>>,
    ) {
        self.now = self.now.max(now);
        self.turn = (!servers.is_empty())
            .then(|| Relays::new(self.template.addresses(), servers, tls, now));
    }

    /// The next thing to do with a connection to a TURN server (TCP or TLS): open it, write
    /// on it, close it.
    pub fn poll_stream(&mut self) -> Option<StreamOutput> {
        self.turn.as_mut().and_then(Relays::poll_stream)
    }

    /// The connection `id` ([`StreamOutput::Connect`]) is up, from `local`.
    pub fn stream_connected(&mut self, now: Instant, id: StreamId, local: SocketAddr) {
        self.now = self.now.max(now);
        if let Some(r) = self.turn.as_mut() {
            r.stream_connected(now, id, local);
        }
    }

    /// Bytes arrived on connection `id`.
    pub fn handle_stream(&mut self, now: Instant, id: StreamId, bytes: &[u8]) {
        self.now = self.now.max(now);
        if let Some(r) = self.turn.as_mut() {
            r.handle_stream(now, id, bytes);
        }
        self.relayed_to_calls(now);
    }

    /// Connection `id` is closed, or could not be opened.
    pub fn stream_closed(&mut self, now: Instant, id: StreamId) {
        self.now = self.now.max(now);
        if let Some(r) = self.turn.as_mut() {
            r.stream_closed(now, id);
        }
    }

    /// Hands the calls what came through a relay, as sent to our relayed address.
    fn relayed_to_calls(&mut self, now: Instant) {
        while let Some((peer, relayed, data)) = self.turn.as_mut().and_then(Relays::poll_peer) {
            self.dispatch(now, peer, relayed, &data);
        }
    }

    /// Stops asking STUN servers and gives the TURN allocations back: for a phone that is
    /// shutting down. Calls placed afterwards have host candidates only.
    pub fn release_servers(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.stun = None;
        if let Some(r) = self.turn.as_mut() {
            r.release(now);
        }
    }

    /// Whether a TURN server has yet to confirm the release of its allocation.
    pub fn is_releasing(&self) -> bool {
        self.turn.as_ref().is_some_and(Relays::is_releasing)
    }

    /// Whether STUN answers or TURN allocations are still awaited: a caller may hold its
    /// first call until not, so the offer carries those candidates.
    pub fn is_gathering(&self) -> bool {
        self.stun.as_ref().is_some_and(|g| !g.is_settled())
            || self.turn.as_ref().is_some_and(|r| !r.is_settled(self.now))
    }

    /// `session` with the server-reflexive candidates of its addresses (`only`, or all).
    fn with_reflexive(&self, mut session: RtcSession, only: Option<SocketAddr>) -> RtcSession {
        for (addr, base) in self.stun.iter().flat_map(Gatherer::reflexive) {
            if only.is_none_or(|o| o == base) {
                session.add_reflexive(addr, base);
            }
        }
        for (addr, base) in self.turn.iter().flat_map(Relays::relayed) {
            if only.is_none_or(|o| o == base) {
                session.add_relayed(addr, base);
            }
        }
        session
    }

    /// The media configuration.
    pub fn media_config(&self) -> &MediaConfig {
        self.template.config()
    }

    /// Places a call with media.
    ///
    /// Each call gets a media address of its own while the phone has a free one; beyond
    /// that, calls share every address and are told apart by their peers' addresses.
    pub fn call(
        &mut self,
        now: Instant,
        target: &str,
        options: CallOptions,
    ) -> Result<CallHandle, UaError> {
        self.place(now, |ua, session| ua.call(now, target, options, session))
    }

    /// Calls a phone number through the gateway, with media: see
    /// [`UserAgent::call_phone_number`].
    pub fn call_phone_number(
        &mut self,
        now: Instant,
        dialled: &str,
        options: CallOptions,
    ) -> Result<CallHandle, UaError> {
        self.place(now, |ua, session| {
            ua.call_phone_number(now, dialled, options, session)
        })
    }

    /// Joins a conference room on our server, with media: see
    /// [`UserAgent::call_conference`].
    pub fn call_conference(
        &mut self,
        now: Instant,
        room: &str,
        options: CallOptions,
    ) -> Result<CallHandle, UaError> {
        self.place(now, |ua, session| {
            ua.call_conference(now, room, options, session)
        })
    }

    fn place(
        &mut self,
        now: Instant,
        call: impl FnOnce(&mut UserAgent<RtcSession>, RtcSession) -> Result<CallHandle, UaError>,
    ) -> Result<CallHandle, UaError> {
        let (session, port) = self.own_session(now);
        let result = call(&mut self.ua, session);
        let id = self.took(port, result)?;
        self.sync_stepped();
        Ok(id)
    }

    /// Answers an incoming call with media (a media address of its own, as for `call`).
    pub fn answer(&mut self, now: Instant, id: CallHandle) -> Result<(), UaError> {
        self.answer_with(now, id, AnswerOptions::default())
    }

    /// [`MediaAgent::answer`] with options: extra headers on the 2xx.
    pub fn answer_with(
        &mut self,
        now: Instant,
        id: CallHandle,
        options: AnswerOptions,
    ) -> Result<(), UaError> {
        let (session, port) = self.own_session(now);
        let result = self.ua.answer_with(now, id, session, options).map(|()| id);
        self.took(port, result)?;
        self.sync_stepped();
        Ok(())
    }

    /// Sends 183 Session Progress for an incoming call; with `early_media`, with our answer
    /// to the caller's offer, so media flows before the call is answered (set its source
    /// and sink now). Answer such a call with [`MediaAgent::accept`].
    pub fn progress(
        &mut self,
        now: Instant,
        id: CallHandle,
        early_media: bool,
    ) -> Result<(), UaError> {
        if !early_media {
            return self.ua.progress(now, id, None);
        }
        let (session, port) = self.own_session(now);
        let result = self.ua.progress(now, id, Some(session)).map(|()| id);
        self.took(port, result)?;
        self.sync_stepped();
        Ok(())
    }

    /// Answers an incoming call that has early media ([`MediaAgent::progress`]).
    pub fn accept(&mut self, now: Instant, id: CallHandle) -> Result<(), UaError> {
        self.accept_with(now, id, AnswerOptions::default())
    }

    /// [`MediaAgent::accept`] with options: extra headers on the 2xx.
    pub fn accept_with(
        &mut self,
        now: Instant,
        id: CallHandle,
        options: AnswerOptions,
    ) -> Result<(), UaError> {
        self.ua.accept_with(now, id, options)?;
        self.sync_stepped();
        Ok(())
    }

    fn own_session(&mut self, now: Instant) -> (RtcSession, Option<SocketAddr>) {
        match self.free.pop() {
            Some(addr) => {
                let session = RtcSession::with_address(now, &self.template, addr);
                (self.with_reflexive(session, Some(addr)), Some(addr))
            }
            None => (self.new_session(now), None),
        }
    }

    /// Books `port` for the call `result` names, or frees it again.
    fn took(
        &mut self,
        port: Option<SocketAddr>,
        result: Result<CallHandle, UaError>,
    ) -> Result<CallHandle, UaError> {
        if let Some(addr) = port {
            match &result {
                Ok(id) => {
                    self.ports.insert(addr, *id);
                }
                Err(_) => self.free.push(addr),
            }
        }
        result
    }

    /// Sends DTMF the configured way ([`DtmfMethod`]): RFC 4733 events in the media when
    /// the call negotiated them (or always, with `Rfc4733`), else SIP INFO.
    pub fn send_dtmf(&mut self, now: Instant, id: CallHandle, tones: &str) -> Result<(), UaError> {
        dtmf::check(tones).map_err(UaError::InvalidDtmf)?;
        let method = self.template.config().dtmf;
        let rfc4733 = method != DtmfMethod::Info
            && self
                .ua
                .sdp_handler_mut(id)
                .is_some_and(|s| s.has_telephone_events());
        match (method, rfc4733) {
            (_, true) => {
                if !self.ua.is_established(id) {
                    return Err(UaError::InvalidState("dtmf needs an established call"));
                }
                self.session(id)?.queue_dtmf(tones);
                Ok(())
            }
            (DtmfMethod::Rfc4733, false) => Err(UaError::InvalidState(
                "the call did not negotiate telephone-events",
            )),
            _ => {
                self.ua.send_dtmf(now, id, tones)?;
                Ok(())
            }
        }
    }

    /// Mutes or unmutes our audio (silence is sent meanwhile; nothing is signalled).
    pub fn set_muted(&mut self, id: CallHandle, muted: bool) -> Result<(), UaError> {
        self.ua.set_muted(id, muted)?;
        // A call still ringing has no media yet; it starts muted from the UA's flag.
        if let Ok(s) = self.session(id) {
            s.set_muted(muted);
        }
        Ok(())
    }

    /// Adds video to call `id` or stops it, from its next offer on ([`RtcSession::set_video`]);
    /// send that offer with [`MediaAgent::renegotiate`], or accept the peer's with
    /// [`UserAgent::accept_reoffer`].
    pub fn set_video(&mut self, id: CallHandle, video: bool) -> Result<(), UaError> {
        self.session(id)?.set_video(video);
        Ok(())
    }

    /// Has call `id`'s next offer restart ICE ([`RtcSession::restart_ice`]); send it with
    /// [`MediaAgent::renegotiate`].
    pub fn restart_ice(&mut self, id: CallHandle) -> Result<(), UaError> {
        self.session(id)?.restart_ice();
        Ok(())
    }

    /// Offers call `id`'s changed media to the peer ([`UserAgent::renegotiate`]).
    pub fn renegotiate(
        &mut self,
        now: Instant,
        id: CallHandle,
        method: OfferMethod,
    ) -> Result<(), UaError> {
        self.ua.renegotiate(now, id, method)?;
        self.sync_stepped();
        Ok(())
    }

    /// Accepts the transfer the peer asked of call `id`
    /// ([`Event::TransferRequested`]): the new call, with media of its own.
    pub fn accept_transfer(&mut self, now: Instant, id: CallHandle) -> Result<CallHandle, UaError> {
        let (session, port) = self.own_session(now);
        let result = self.ua.accept_transfer(now, id, session);
        let new = self.took(port, result)?;
        self.sync_stepped();
        Ok(new)
    }

    /// Plays `source` into call `id`.
    pub fn set_source(
        &mut self,
        id: CallHandle,
        source: Box<dyn AudioSource>,
    ) -> Result<(), UaError> {
        self.session(id)?.set_source(source);
        Ok(())
    }

    /// Sends call `id`'s decoded audio to `sink`.
    pub fn set_sink(&mut self, id: CallHandle, sink: Box<dyn AudioSink>) -> Result<(), UaError> {
        self.session(id)?.set_sink(sink);
        Ok(())
    }

    /// Sends call `id`'s received video frames to `sink`.
    pub fn set_video_sink(
        &mut self,
        id: CallHandle,
        sink: Box<dyn VideoSink>,
    ) -> Result<(), UaError> {
        self.session(id)?.set_video_sink(sink);
        Ok(())
    }

    /// Sends one encoded video frame on call `id`; `false` when the call has no video
    /// (not negotiated, not connected, or held).
    pub fn send_video(
        &mut self,
        now: Instant,
        id: CallHandle,
        frame: &VideoFrame,
    ) -> Result<bool, UaError> {
        let sent = self.session(id)?.send_video(now, frame);
        self.sync_call(id);
        Ok(sent)
    }

    /// Call `id`'s media statistics so far, or its totals if it ended recently.
    pub fn media_stats(&self, id: CallHandle) -> Option<MediaStats> {
        self.ua.sdp_handler(id).map(RtcSession::stats).or_else(|| {
            self.finished
                .iter()
                .find(|(c, _)| *c == id)
                .map(|(_, s)| *s)
        })
    }

    /// Whether call `id`'s media is connected (ICE and DTLS up).
    pub fn is_media_connected(&self, id: CallHandle) -> bool {
        self.ua
            .sdp_handler(id)
            .is_some_and(RtcSession::is_connected)
    }

    /// Call `id`'s media session, to change it: its deadline is read again at the next
    /// step.
    fn session(&mut self, id: CallHandle) -> Result<&mut RtcSession, UaError> {
        let s = self.ua.sdp_handler_mut(id).ok_or(UaError::NoSuchCall(id))?;
        self.touched.push(id);
        Ok(s)
    }

    /// Feeds SIP input (bytes on a flow, flow events).
    pub fn handle_input(&mut self, now: Instant, input: Input) {
        self.now = self.now.max(now);
        self.ua.handle_input(now, input);
        self.sync_stepped();
    }

    /// Feeds one media datagram that arrived from `source` on our `destination`.
    pub fn handle_media(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        datagram: &[u8],
    ) {
        self.now = self.now.max(now);
        if let Some(g) = self.stun.as_mut()
            && g.handle_receive(now, source, destination, datagram)
        {
            return;
        }
        if let Some(r) = self.turn.as_mut()
            && r.handle_receive(now, source, destination, datagram)
        {
            self.relayed_to_calls(now);
            return;
        }
        self.dispatch(now, source, destination, datagram);
    }

    /// Hands a media datagram to the call it belongs to.
    fn dispatch(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        datagram: &[u8],
    ) {
        // A call's own port names it, unless calls beyond the pool share the addresses too
        // (then its ICE agent must recognise the sender).
        let shared = self.stats.len() > self.ports.len();
        if let Some(&id) = self.ports.get(&destination)
            && let Some(s) = self.ua.sdp_handler_mut(id)
            && (!shared || s.accepts(now, source, destination, datagram))
        {
            s.handle_receive(now, source, destination, datagram);
            self.sync_call(id);
            return;
        }
        let known = self.routes.get(&source).copied().filter(|&id| {
            self.ua
                .sdp_handler(id)
                .is_some_and(|s| s.accepts(now, source, destination, datagram))
        });
        let id = known.or_else(|| {
            let ua = &self.ua;
            ua.calls().find(|&id| {
                ua.sdp_handler(id)
                    .is_some_and(|s| s.accepts(now, source, destination, datagram))
            })
        });
        let Some(id) = id else {
            tracing::trace!(%source, "media datagram for no call dropped");
            return;
        };
        self.routes.insert(source, id);
        if let Some(s) = self.ua.sdp_handler_mut(id) {
            s.handle_receive(now, source, destination, datagram);
        }
        self.sync_call(id);
    }

    /// Fires every timer that is due: the user agent's, each call's media and audio clocks.
    /// Only the calls that are due, or that the user agent's timers stepped, are visited.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.catch_up();
        if let Some(g) = self.stun.as_mut()
            && g.poll_timeout().is_some_and(|t| t <= now)
        {
            g.handle_timeout(now);
        }
        if let Some(r) = self.turn.as_mut()
            && r.poll_timeout().is_some_and(|t| t <= now)
        {
            r.handle_timeout(now);
        }
        if self.ua.poll_timeout().is_some_and(|t| t <= now) {
            self.ua.handle_timeout(now);
            self.sync_stepped();
        }
        // Collected first: a session still due after its turn waits for the next wake-up
        // rather than spinning this one.
        let mut due = std::mem::take(&mut self.ids);
        due.clear();
        while let Some(&Reverse((at, id))) = self.queue.peek() {
            if at > now {
                break;
            }
            self.queue.pop();
            if self.deadlines.get(&id) == Some(&at) {
                self.deadlines.remove(&id);
                due.push(id);
            }
        }
        for &id in &due {
            if let Some(s) = self.ua.sdp_handler_mut(id) {
                s.handle_timeout(now);
            }
            self.sync_call(id);
        }
        self.ids = due;
    }

    /// The next SIP output: bytes to send, flows to open or close, events.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.catch_up();
        if let Some(o) = self.extra.pop_front() {
            return Some(o);
        }
        let mut out = self.ua.poll_output()?;
        while self.group_output(&out) {
            if let Some(o) = self.extra.pop_front() {
                return Some(o);
            }
            out = self.ua.poll_output()?;
        }
        if let Output::Event(e) = &out {
            self.ringback_on(e);
            let accept = self.template.config().accept_transfers;
            let result = match e {
                Event::TransferRequested { call, .. } if accept => {
                    self.accept_transfer(self.now, *call).map(|_| ())
                }
                // An attended transfer's INVITE replaces a call of ours (RFC 3891): a
                // desk phone takes it without ringing.
                Event::IncomingCall {
                    call,
                    replaces: Some(_),
                    ..
                } if accept => self.answer(self.now, *call),
                _ => Ok(()),
            };
            if let Err(error) = result {
                tracing::debug!(%error, "the transfer could not be accepted");
            }
        }
        if let Output::Event(Event::CallEnded { call, .. }) = &out {
            let stats = self.stats.remove(call).unwrap_or_default();
            self.deadlines.remove(call);
            self.routes.retain(|_, c| c != call);
            let free = &mut self.free;
            self.ports.retain(|addr, c| {
                let keep = c != call;
                if !keep {
                    free.push(*addr);
                }
                keep
            });
            if self.finished.len() == FINISHED_KEPT {
                self.finished.pop_front();
            }
            self.finished.push_back((*call, stats));
            self.media_events
                .push_back(MediaEvent::Ended { call: *call, stats });
        }
        Some(out)
    }

    /// Starts or stops the configured ringback tone on what a call's signalling says:
    /// ringing without early media starts it; early media or the answer stop it.
    fn ringback_on(&mut self, e: &Event) {
        let Some(tone) = self.template.config().ringback else {
            return;
        };
        let now = self.now;
        let (call, ringing) = match e {
            Event::CallProgress {
                call, early_media, ..
            } => (*call, !early_media),
            Event::CallAnswered { call, .. } => (*call, false),
            _ => return,
        };
        if let Ok(s) = self.session(call) {
            if ringing {
                s.start_ringback(now, tone);
            } else {
                s.stop_ringback();
            }
        }
    }

    /// The next media datagram to send.
    pub fn poll_media(&mut self) -> Option<MediaTransmit> {
        self.catch_up();
        if let Some(t) = self.stun.as_mut().and_then(Gatherer::poll_transmit) {
            return Some(t);
        }
        if let Some(t) = self.turn.as_mut().and_then(Relays::poll_transmit) {
            return Some(t);
        }
        while let Some(t) = self.transmits.pop_front() {
            match self.turn.as_mut() {
                // From a relayed address: it goes to the TURN server, wrapped.
                // (Over TCP or TLS it waits in poll_stream.)
                Some(r) if r.is_relayed(t.source) => {
                    r.send(self.now, t.source, t.destination, &t.contents);
                    if let Some(t) = r.poll_transmit() {
                        return Some(t);
                    }
                }
                _ => return Some(t),
            }
        }
        None
    }

    /// The next media event.
    pub fn poll_media_event(&mut self) -> Option<MediaEvent> {
        self.media_events.pop_front()
    }

    /// The earliest deadline of the user agent and every call's media.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.ua.has_stepped_calls() {
            // Commands through `ua_mut` stepped calls: the next step reads them again.
            return Some(self.now);
        }
        let touched = self
            .touched
            .iter()
            .filter_map(|&id| self.ua.sdp_handler(id))
            .map(RtcSession::poll_timeout)
            .min();
        [
            self.ua.poll_timeout(),
            self.queue.peek().map(|Reverse((at, _))| *at),
            touched,
            self.stun.as_ref().and_then(Gatherer::poll_timeout),
            self.turn.as_ref().and_then(Relays::poll_timeout),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Collects what the sessions handed out since the last step, and those the user agent
    /// stepped, have to say.
    fn catch_up(&mut self) {
        while let Some(id) = self.touched.pop() {
            self.sync_call(id);
        }
        self.sync_stepped();
    }

    /// Syncs the calls the user agent stepped: a message, a timer or a command reaches one
    /// call (or a few), and 2,000 calls must not cost 2,000 visits per SIP message.
    fn sync_stepped(&mut self) {
        while let Some(id) = self.ua.next_stepped_call() {
            self.sync_call(id);
        }
    }

    /// Moves a session's output into the phone's queues.
    fn sync_call(&mut self, id: CallHandle) {
        let muted = self.ua.is_muted(id).unwrap_or(false);
        let Some(s) = self.ua.sdp_handler_mut(id) else {
            self.deadlines.remove(&id);
            return;
        };
        s.set_muted(muted);
        while let Some(t) = s.poll_transmit() {
            self.transmits.push_back(t);
        }
        while let Some((tone, duration)) = s.poll_dtmf() {
            self.extra.push_back(Output::Event(Event::DtmfReceived {
                call: id,
                tone,
                duration: Some(duration),
            }));
        }
        let mut changes = Vec::new();
        while let Some(up) = s.poll_connection_change() {
            changes.push(up);
        }
        let failure = s.poll_failure();
        if s.poll_keyframe_request() {
            self.media_events
                .push_back(MediaEvent::KeyframeRequested { call: id });
        }
        self.stats.insert(id, s.stats());
        for up in changes {
            // In the call's span, beside its signalling events.
            if let Some(span) = self.ua.call_span(id) {
                span.in_scope(|| {
                    tracing::debug!(target: "sansip::call", media = if up { "connected" } else { "disconnected" });
                });
            }
            self.media_events.push_back(if up {
                MediaEvent::Connected { call: id }
            } else {
                MediaEvent::Disconnected { call: id }
            });
        }
        if let Some(failure) = failure {
            if let Some(span) = self.ua.call_span(id) {
                span.in_scope(|| tracing::info!(target: "sansip::call", %failure, "media failed"));
            }
            self.media_events
                .push_back(MediaEvent::Failed { call: id, failure });
            if self.template.config().end_call_on_failure {
                let now = self.now;
                // The call may be ending already; then there is nothing to hang up.
                let _ = self.ua.hangup_because(now, id, Some(EndCause::MediaFailed));
            }
        }
        self.reschedule(id);
    }

    /// Queues call `id`'s media deadline again if it moved.
    fn reschedule(&mut self, id: CallHandle) {
        let Some(at) = self.ua.sdp_handler(id).map(RtcSession::poll_timeout) else {
            self.deadlines.remove(&id);
            return;
        };
        if self.deadlines.insert(id, at) != Some(at) {
            self.queue.push(Reverse((at, id)));
        }
    }
}
