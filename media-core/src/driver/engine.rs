//! The sans-IO machines the driver can run: a user agent (signalling only), a media
//! [`crate::MediaAgent`], or the embedded registrar.

use std::net::SocketAddr;
use std::time::Instant;

use sansip_core::registrar::Registrar;
use sansip_core::session::{CallHandle, FakeSdp, NoMedia, SdpHandler};

use crate::audio::{AudioSink, AudioSource};
use sansip_core::transport::{FlowId, FlowInfo};
use sansip_core::ua::{AnswerOptions, CallOptions, Input, Output, UaError, UserAgent};

use crate::stats::{MediaEvent, MediaTransmit, StreamId, StreamOutput};

/// One sans-IO machine driven by the driver loop (DESIGN.md §2).
pub trait Engine: Send + 'static {
    /// The flow for a datagram or connection described by `info`.
    fn flow_for(&mut self, info: FlowInfo) -> FlowId;
    /// A flow for a connection a peer opened to us.
    fn accept_flow(&mut self, info: FlowInfo) -> FlowId;
    /// Feeds one input.
    fn handle_input(&mut self, now: Instant, input: Input);
    /// Fires what is due.
    fn handle_timeout(&mut self, now: Instant);
    /// The next output.
    fn poll_output(&mut self) -> Option<Output>;
    /// The next deadline.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Feeds a datagram that arrived on the media socket.
    fn handle_media(&mut self, now: Instant, source: SocketAddr, local: SocketAddr, data: &[u8]) {
        let _ = (now, source, local, data);
    }
    /// The next media datagram to send.
    fn poll_media(&mut self) -> Option<MediaTransmit> {
        None
    }
    /// The next thing to do with a media connection (TURN over TCP or TLS).
    fn poll_stream(&mut self) -> Option<StreamOutput> {
        None
    }
    /// A media connection asked for by [`StreamOutput::Connect`] is up, from `local`.
    fn stream_connected(&mut self, now: Instant, id: StreamId, local: SocketAddr) {
        let _ = (now, id, local);
    }
    /// Bytes arrived on a media connection.
    fn handle_stream(&mut self, now: Instant, id: StreamId, bytes: &[u8]) {
        let _ = (now, id, bytes);
    }
    /// A media connection is closed, or could not be opened.
    fn stream_closed(&mut self, now: Instant, id: StreamId) {
        let _ = (now, id);
    }
    /// Whether the engine still awaits STUN answers for its first offer.
    fn is_gathering(&self) -> bool {
        false
    }
    /// Gives back what servers hold for the engine (TURN allocations): the phone is going.
    fn release_servers(&mut self, now: Instant) {
        let _ = now;
    }
    /// Whether a released server has yet to confirm.
    fn is_releasing(&self) -> bool {
        false
    }
    /// The next media event.
    fn poll_media_event(&mut self) -> Option<MediaEvent> {
        None
    }
}

/// An engine built around a [`UserAgent`]: what the async [`Phone`](super::Phone) commands.
pub trait UaEngine: Engine {
    /// The calls' session-description handler.
    type Sdp: SdpHandler + Send + 'static;
    /// The user agent.
    fn ua(&self) -> &UserAgent<Self::Sdp>;
    /// The user agent, mutably.
    fn ua_mut(&mut self) -> &mut UserAgent<Self::Sdp>;
    /// Places a call with a fresh session.
    fn call(
        &mut self,
        now: Instant,
        target: &str,
        options: CallOptions,
    ) -> Result<CallHandle, UaError>;
    /// Calls a phone number through the gateway with a fresh session.
    fn call_phone_number(
        &mut self,
        now: Instant,
        dialled: &str,
        options: CallOptions,
    ) -> Result<CallHandle, UaError>;
    /// Joins a conference room with a fresh session.
    fn call_conference(
        &mut self,
        now: Instant,
        room: &str,
        options: CallOptions,
    ) -> Result<CallHandle, UaError>;
    /// Answers a call with a fresh session.
    fn answer(
        &mut self,
        now: Instant,
        id: CallHandle,
        options: AnswerOptions,
    ) -> Result<(), UaError>;
    /// Sends 183 for an incoming call; with `early_media`, with a fresh session's answer.
    fn progress(&mut self, now: Instant, id: CallHandle, early_media: bool) -> Result<(), UaError>;
    /// Answers a call that has early media with its session.
    fn accept(
        &mut self,
        now: Instant,
        id: CallHandle,
        options: AnswerOptions,
    ) -> Result<(), UaError> {
        self.ua_mut().accept_with(now, id, options)
    }
    /// Accepts the transfer asked of a call: the new call, with a fresh session.
    fn accept_transfer(&mut self, now: Instant, id: CallHandle) -> Result<CallHandle, UaError>;
    /// Sends DTMF (by INFO unless the engine has a better way).
    fn send_dtmf(&mut self, now: Instant, id: CallHandle, tones: &str) -> Result<(), UaError> {
        self.ua_mut().send_dtmf(now, id, tones)
    }
    /// Mutes or unmutes a call's audio.
    fn set_muted(&mut self, id: CallHandle, muted: bool) -> Result<(), UaError> {
        self.ua_mut().set_muted(id, muted)
    }
    /// Gives a call the audio it plays and the sink for what it hears; `Ok(false)` when the
    /// engine carries no media (the call goes on without).
    fn set_audio(
        &mut self,
        id: CallHandle,
        source: Option<Box<dyn AudioSource>>,
        sink: Option<Box<dyn AudioSink>>,
    ) -> Result<bool, UaError> {
        let _ = (source, sink);
        self.ua().hold_state(id).map(|_| false)
    }
}

/// A kind of call session the async phone can run, and the engine that carries it:
/// [`FakeSdp`] and [`NoMedia`] run on a bare [`UserAgent`] (signalling only);
/// `RtcSession` runs on a media [`crate::MediaAgent`] with its own UDP socket.
pub trait Session: SdpHandler + Send + Sized + 'static {
    /// The engine.
    type Engine: UaEngine<Sdp = Self>;
    /// Whether the engine needs a media socket.
    const MEDIA_SOCKET: bool;
    /// Builds the engine around `ua`; `media` are the media sockets' addresses when
    /// [`Session::MEDIA_SOCKET`] asked for them.
    fn engine(
        ua: UserAgent<Self>,
        config: &super::PhoneConfig,
        media: &[SocketAddr],
    ) -> Result<Self::Engine, super::PhoneError>;
}

/// Sessions a bare user agent can make by itself.
pub trait DefaultSession: SdpHandler + Default + Send + 'static {}

impl DefaultSession for FakeSdp {}
impl DefaultSession for NoMedia {}

impl<S: DefaultSession> UaEngine for UserAgent<S> {
    type Sdp = S;
    fn ua(&self) -> &UserAgent<S> {
        self
    }
    fn ua_mut(&mut self) -> &mut UserAgent<S> {
        self
    }
    fn call(
        &mut self,
        now: Instant,
        target: &str,
        options: CallOptions,
    ) -> Result<CallHandle, UaError> {
        UserAgent::call(self, now, target, options, S::default())
    }
    fn call_phone_number(
        &mut self,
        now: Instant,
        dialled: &str,
        options: CallOptions,
    ) -> Result<CallHandle, UaError> {
        UserAgent::call_phone_number(self, now, dialled, options, S::default())
    }
    fn call_conference(
        &mut self,
        now: Instant,
        room: &str,
        options: CallOptions,
    ) -> Result<CallHandle, UaError> {
        UserAgent::call_conference(self, now, room, options, S::default())
    }
    fn answer(
        &mut self,
        now: Instant,
        id: CallHandle,
        options: AnswerOptions,
    ) -> Result<(), UaError> {
        UserAgent::answer_with(self, now, id, S::default(), options)
    }
    fn progress(&mut self, now: Instant, id: CallHandle, early_media: bool) -> Result<(), UaError> {
        UserAgent::progress(self, now, id, early_media.then(S::default))
    }
    fn accept_transfer(&mut self, now: Instant, id: CallHandle) -> Result<CallHandle, UaError> {
        UserAgent::accept_transfer(self, now, id, S::default())
    }
}

impl<S: DefaultSession> Session for S {
    type Engine = UserAgent<S>;
    const MEDIA_SOCKET: bool = false;
    fn engine(
        ua: UserAgent<S>,
        _: &super::PhoneConfig,
        _: &[SocketAddr],
    ) -> Result<UserAgent<S>, super::PhoneError> {
        Ok(ua)
    }
}

#[cfg(feature = "rtc")]
mod media {
    use super::*;
    use crate::{MediaAgent, RtcSession, SessionTemplate};

    impl Engine for MediaAgent {
        fn flow_for(&mut self, info: FlowInfo) -> FlowId {
            self.ua_mut().flow_for(info)
        }
        fn accept_flow(&mut self, info: FlowInfo) -> FlowId {
            self.ua_mut().add_accepted_flow(info)
        }
        fn handle_input(&mut self, now: Instant, input: Input) {
            MediaAgent::handle_input(self, now, input);
        }
        fn handle_timeout(&mut self, now: Instant) {
            MediaAgent::handle_timeout(self, now);
        }
        fn poll_output(&mut self) -> Option<Output> {
            MediaAgent::poll_output(self)
        }
        fn poll_timeout(&self) -> Option<Instant> {
            MediaAgent::poll_timeout(self)
        }
        fn handle_media(
            &mut self,
            now: Instant,
            source: SocketAddr,
            local: SocketAddr,
            data: &[u8],
        ) {
            MediaAgent::handle_media(self, now, source, local, data);
        }
        fn poll_media(&mut self) -> Option<MediaTransmit> {
            MediaAgent::poll_media(self)
        }
        fn poll_stream(&mut self) -> Option<StreamOutput> {
            MediaAgent::poll_stream(self)
        }
        fn stream_connected(&mut self, now: Instant, id: StreamId, local: SocketAddr) {
            MediaAgent::stream_connected(self, now, id, local);
        }
        fn handle_stream(&mut self, now: Instant, id: StreamId, bytes: &[u8]) {
            MediaAgent::handle_stream(self, now, id, bytes);
        }
        fn stream_closed(&mut self, now: Instant, id: StreamId) {
            MediaAgent::stream_closed(self, now, id);
        }
        fn is_gathering(&self) -> bool {
            MediaAgent::is_gathering(self)
        }
        fn release_servers(&mut self, now: Instant) {
            MediaAgent::release_servers(self, now);
        }
        fn is_releasing(&self) -> bool {
            MediaAgent::is_releasing(self)
        }
        fn poll_media_event(&mut self) -> Option<MediaEvent> {
            MediaAgent::poll_media_event(self)
        }
    }

    impl UaEngine for MediaAgent {
        type Sdp = RtcSession;
        fn ua(&self) -> &UserAgent<RtcSession> {
            MediaAgent::ua(self)
        }
        fn ua_mut(&mut self) -> &mut UserAgent<RtcSession> {
            MediaAgent::ua_mut(self)
        }
        fn call(
            &mut self,
            now: Instant,
            target: &str,
            options: CallOptions,
        ) -> Result<CallHandle, UaError> {
            MediaAgent::call(self, now, target, options)
        }
        fn call_phone_number(
            &mut self,
            now: Instant,
            dialled: &str,
            options: CallOptions,
        ) -> Result<CallHandle, UaError> {
            MediaAgent::call_phone_number(self, now, dialled, options)
        }
        fn call_conference(
            &mut self,
            now: Instant,
            room: &str,
            options: CallOptions,
        ) -> Result<CallHandle, UaError> {
            MediaAgent::call_conference(self, now, room, options)
        }
        fn answer(
            &mut self,
            now: Instant,
            id: CallHandle,
            options: AnswerOptions,
        ) -> Result<(), UaError> {
            MediaAgent::answer_with(self, now, id, options)
        }
        fn progress(
            &mut self,
            now: Instant,
            id: CallHandle,
            early_media: bool,
        ) -> Result<(), UaError> {
            MediaAgent::progress(self, now, id, early_media)
        }
        fn accept(
            &mut self,
            now: Instant,
            id: CallHandle,
            options: AnswerOptions,
        ) -> Result<(), UaError> {
            MediaAgent::accept_with(self, now, id, options)
        }
        fn send_dtmf(&mut self, now: Instant, id: CallHandle, tones: &str) -> Result<(), UaError> {
            MediaAgent::send_dtmf(self, now, id, tones)
        }
        fn accept_transfer(&mut self, now: Instant, id: CallHandle) -> Result<CallHandle, UaError> {
            MediaAgent::accept_transfer(self, now, id)
        }
        fn set_muted(&mut self, id: CallHandle, muted: bool) -> Result<(), UaError> {
            MediaAgent::set_muted(self, id, muted)
        }
        fn set_audio(
            &mut self,
            id: CallHandle,
            source: Option<Box<dyn AudioSource>>,
            sink: Option<Box<dyn AudioSink>>,
        ) -> Result<bool, UaError> {
            if let Some(source) = source {
                self.set_source(id, source)?;
            }
            if let Some(sink) = sink {
                self.set_sink(id, sink)?;
            }
            Ok(true)
        }
    }

    impl Session for RtcSession {
        type Engine = MediaAgent;
        const MEDIA_SOCKET: bool = true;
        fn engine(
            ua: UserAgent<RtcSession>,
            config: &super::super::PhoneConfig,
            media: &[SocketAddr],
        ) -> Result<MediaAgent, super::super::PhoneError> {
            let template = SessionTemplate::new(config.media.clone(), media.to_vec())
                .map_err(|e| super::super::PhoneError::Io(std::io::Error::other(e)))?;
            let now = ua.now();
            let mut agent = MediaAgent::with_agent(ua, template);
            let seed = config.seed.map_or_else(|| fastrand::u64(..), |s| s ^ 0x57);
            agent.set_stun_servers(now, &config.stun_servers, seed);
            // `turns:` servers are checked as the SIP TLS links are.
            let tls = config
                .turn_servers
                .iter()
                .any(|s| matches!(s.transport, crate::turn::TurnTransport::Tls { .. }))
                .then(|| super::super::tls::client_config(&config.tls))
                .transpose()?;
            agent.set_turn_servers(now, &config.turn_servers, tls);
            Ok(agent)
        }
    }
}

impl<S: SdpHandler + Send + 'static> Engine for UserAgent<S> {
    fn flow_for(&mut self, info: FlowInfo) -> FlowId {
        UserAgent::flow_for(self, info)
    }
    fn accept_flow(&mut self, info: FlowInfo) -> FlowId {
        UserAgent::add_accepted_flow(self, info)
    }
    fn handle_input(&mut self, now: Instant, input: Input) {
        UserAgent::handle_input(self, now, input);
    }
    fn handle_timeout(&mut self, now: Instant) {
        UserAgent::handle_timeout(self, now);
    }
    fn poll_output(&mut self) -> Option<Output> {
        UserAgent::poll_output(self)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        UserAgent::poll_timeout(self)
    }
}

impl Engine for Registrar {
    fn flow_for(&mut self, info: FlowInfo) -> FlowId {
        Registrar::flow_for(self, info)
    }
    fn accept_flow(&mut self, info: FlowInfo) -> FlowId {
        // Every flow of the registrar is one a peer opened.
        Registrar::flow_for(self, info)
    }
    fn handle_input(&mut self, now: Instant, input: Input) {
        Registrar::handle_input(self, now, input);
    }
    fn handle_timeout(&mut self, now: Instant) {
        Registrar::handle_timeout(self, now);
    }
    fn poll_output(&mut self) -> Option<Output> {
        Registrar::poll_output(self)
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Registrar::poll_timeout(self)
    }
}
