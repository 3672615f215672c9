//! `RtcSession`: one call's media, a str0m [`Rtc`] behind sip-core's [`SdpHandler`] seam.
//!
//! The session speaks SDP through the glue in [`crate::sdp`], keeps str0m's single-mutation
//! rule (every change is followed by draining `poll_output` into the session's own queues),
//! and owns the call's audio: a source asked for a frame every 20 ms, an encoder, decoders
//! per incoming codec, a sink, RFC 4733 tones both ways, and statistics.
//!
//! Hold: sip-core decides each offer's and answer's direction; the session writes it into
//! the SDP it hands out and gates its own sending and receiving on the negotiated result.
//! str0m is never asked to change direction, so its habit of answering a `sendrecv`
//! re-offer with `sendrecv` cannot undo a hold. Our own re-offers (hold, unhold) reuse the
//! last description we sent with the new direction and the next `o=` version: they change
//! nothing else, so str0m has nothing to renegotiate.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sansip_core::session::sdp::{media_direction, rewrite_directions};
use sansip_core::session::{Direction, SdpError, SdpHandler};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::crypto::CryptoProvider;
use str0m::format::{Codec, CodecExtra, FormatParams};
use str0m::media::{Frequency, MediaData, MediaKind, MediaTime, Mid, Pt, TelephoneEvent};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};

use crate::audio::jitter::{JitterBuffer, Playout};
use crate::audio::{
    AudioCodec, AudioFrame, AudioSink, AudioSource, Decoder, Encoder, FRAME, Silence, frame_samples,
};
use crate::config::{MediaConfig, MediaProfile};
use crate::rtp::packet::ToneEvent;
use crate::rtp::{Payload, PlainMedia, Protection, is_plain};
use crate::sdp::{
    Accept, normalize_answer, normalize_offer, set_default_candidates, set_origin_version,
};
use crate::stats::{MediaFailure, MediaStats, MediaTransmit};
use crate::video::{VideoCodec, VideoFrame, VideoSink};

/// What every session of one phone shares: its configuration, its local addresses, and one
/// DTLS certificate (generating a key per call would cost more than the rest of call setup).
#[derive(Clone)]
pub struct SessionTemplate {
    pub(crate) config: Arc<MediaConfig>,
    pub(crate) candidates: Vec<SocketAddr>,
    pub(crate) crypto: Arc<CryptoProvider>,
    pub(crate) cert: str0m::config::DtlsCert,
}

impl std::fmt::Debug for SessionTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionTemplate")
            .field("config", &self.config)
            .field("candidates", &self.candidates)
            .finish_non_exhaustive()
    }
}

/// Why a media session could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The DTLS certificate could not be generated.
    #[error("dtls certificate: {0}")]
    Certificate(String),
    /// A local address cannot be an ICE candidate (unspecified, multicast…).
    #[error("bad local media address {0}")]
    Candidate(SocketAddr),
}

impl SessionTemplate {
    /// A template for sessions with `config`, reachable at `candidates` (the phone's media
    /// socket addresses; each becomes an ICE host candidate).
    pub fn new(config: MediaConfig, candidates: Vec<SocketAddr>) -> Result<Self, MediaError> {
        for &c in &candidates {
            Candidate::host(c, "udp").map_err(|_| MediaError::Candidate(c))?;
        }
        let crypto = crate::dtls::provider();
        let cert = crypto
            .dtls_provider
            .generate_certificate()
            .ok_or_else(|| MediaError::Certificate("generation failed".into()))?;
        Ok(Self {
            config: Arc::new(config),
            candidates,
            crypto: Arc::new(crypto),
            cert,
        })
    }

    /// The media configuration.
    pub fn config(&self) -> &MediaConfig {
        &self.config
    }

    /// The media addresses sessions are reachable at.
    pub fn addresses(&self) -> &[SocketAddr] {
        &self.candidates
    }
}

/// The audio half of a session, once negotiated.
struct Audio {
    /// str0m's media line; none on the plain RTP path.
    mid: Option<Mid>,
    /// The payload type and codec we send with (the first the peer accepted).
    send: Option<(Pt, AudioCodec)>,
    encoder: Option<Encoder>,
    decoders: HashMap<AudioCodec, Decoder>,
    /// RTP time of the next frame, at the send codec's rate.
    rtp_time: u64,
    payload: Vec<u8>,
    pcm: Vec<i16>,
    frame: Vec<i16>,
    /// What we received, waiting for its 20 ms slot.
    jitter: JitterBuffer,
}

/// One call's media: a str0m `Rtc` with audio (and optionally video), driven through
/// sip-core's [`SdpHandler`]. Made by [`crate::MediaAgent`]; applications reach it through the
/// phone's per-call methods.
pub struct RtcSession {
    rtc: Rtc,
    /// The plain RTP path, when the call negotiated `RTP/AVP` or `RTP/SAVP` instead of
    /// WebRTC (then `rtc` stays idle).
    plain: Option<PlainMedia>,
    /// Our media sockets, and the server-reflexive address of each (if known), for plain
    /// RTP's single address.
    addrs: Vec<SocketAddr>,
    reflexive: Vec<(SocketAddr, SocketAddr)>,
    config: Arc<MediaConfig>,
    /// Our str0m offer waiting for its answer (the first offer of a call we place).
    pending: Option<(SdpPendingOffer, String)>,
    /// The last description we sent, and the one before (for rollback).
    local_sdp: Option<String>,
    previous_sdp: Option<String>,
    /// The direction of our outstanding offer.
    offered: Option<Direction>,
    version: u64,
    /// The negotiated direction, from our side: whether we may send and receive.
    direction: Direction,
    audio: Option<Audio>,
    video: Option<Mid>,
    connected: bool,
    /// When ICE and DTLS must be up, once an offer/answer is done and until they are.
    connect_by: Option<Instant>,
    /// A failure not yet collected, and whether one was ever found (it is said once).
    failure: Option<MediaFailure>,
    failed: bool,
    /// The latest instant we were told of.
    now: Instant,
    // Queues filled by `drain`, emptied by the phone.
    transmits: VecDeque<MediaTransmit>,
    dtmf_in: VecDeque<(char, Duration)>,
    connection_changes: VecDeque<bool>,
    timeout: Instant,
    // Audio plumbing.
    source: Box<dyn AudioSource>,
    sink: Option<Box<dyn AudioSink>>,
    video_sink: Option<Box<dyn VideoSink>>,
    next_frame: Option<Instant>,
    muted: bool,
    dtmf_out: VecDeque<char>,
    dtmf_next: Option<Instant>,
    /// RTP time of the last RFC 4733 event reported (its retransmissions are not new).
    last_tele: Option<u64>,
    stats: MediaStats,
}

impl std::fmt::Debug for RtcSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtcSession")
            .field("direction", &self.direction)
            .field("connected", &self.connected)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

const TELE_PT_8K: u8 = 101;
const TELE_PT_48K: u8 = 110;

impl RtcSession {
    /// A session for one call, starting at `now`, reachable at every address of the
    /// template.
    pub fn new(now: Instant, template: &SessionTemplate) -> Self {
        Self::build(now, template, &template.candidates)
    }

    /// A session reachable at `addr` only (a media port of its own, as desk phones give
    /// every call: then its datagrams are told from other calls' by where they arrive).
    pub fn with_address(now: Instant, template: &SessionTemplate, addr: SocketAddr) -> Self {
        Self::build(now, template, &[addr])
    }

    fn build(now: Instant, template: &SessionTemplate, addrs: &[SocketAddr]) -> Self {
        let config = template.config.clone();
        let mut builder: RtcConfig = Rtc::builder()
            .clear_codecs()
            .set_crypto_provider(template.crypto.clone())
            .set_dtls_cert(template.cert.clone())
            .set_stats_interval(Some(config.stats_interval));
        let codecs = builder.codec_config();
        for codec in config.audio_codecs.iter().filter(|c| c.available()) {
            match codec {
                AudioCodec::Opus => codecs.enable_opus(true, false),
                AudioCodec::Pcmu => codecs.enable_pcmu(true, false),
                AudioCodec::Pcma => codecs.enable_pcma(true, false),
                // str0m runs G.722 at 16 kHz and writes the 8 kHz RTP clock itself.
                AudioCodec::G722 => codecs.enable_g722(true, false),
            }
        }
        if config.telephone_event {
            for (pt, rate) in [
                (TELE_PT_48K, Frequency::FORTY_EIGHT_KHZ),
                (TELE_PT_8K, Frequency::EIGHT_KHZ),
            ] {
                let format = FormatParams::parse_line("0-16");
                codecs.add_config(pt.into(), None, Codec::Tele, rate, None, format);
            }
        }
        if config.video {
            codecs.enable_vp8(true);
            codecs.enable_h264(true);
        }
        let mut rtc = builder.build(now);
        for &addr in addrs {
            if let Ok(c) = Candidate::host(addr, "udp") {
                rtc.add_local_candidate(c);
            }
        }
        let mut s = Self {
            rtc,
            plain: None,
            addrs: addrs.to_vec(),
            reflexive: Vec::new(),
            config,
            pending: None,
            local_sdp: None,
            previous_sdp: None,
            offered: None,
            version: 0,
            direction: Direction::SendRecv,
            audio: None,
            video: None,
            connected: false,
            connect_by: None,
            failure: None,
            failed: false,
            now,
            transmits: VecDeque::new(),
            dtmf_in: VecDeque::new(),
            connection_changes: VecDeque::new(),
            timeout: now,
            source: Box::new(Silence),
            sink: None,
            video_sink: None,
            next_frame: None,
            muted: false,
            dtmf_out: VecDeque::new(),
            dtmf_next: None,
            last_tele: None,
            stats: MediaStats::default(),
        };
        s.drain();
        s
    }

    /// Offers `addr`, the server-reflexive address of our local `base` (one of the
    /// session's addresses), as an ICE candidate too.
    pub(crate) fn add_reflexive(&mut self, addr: SocketAddr, base: SocketAddr) {
        self.reflexive.push((addr, base));
        self.add_candidate(Candidate::server_reflexive(addr, base, "udp"), addr);
    }

    /// Offers `addr`, relayed for us by a TURN server from our local `base`, as an ICE
    /// candidate too.
    pub(crate) fn add_relayed(&mut self, addr: SocketAddr, base: SocketAddr) {
        self.add_candidate(Candidate::relayed(addr, base, "udp"), addr);
    }

    fn add_candidate(
        &mut self,
        candidate: Result<Candidate, impl std::fmt::Display>,
        addr: SocketAddr,
    ) {
        match candidate {
            Ok(c) => {
                if self.rtc.add_local_candidate(c).is_none() {
                    tracing::debug!(%addr, "candidate not taken");
                }
            }
            Err(e) => tracing::debug!(%addr, error = %e, "bad candidate"),
        }
    }

    /// Whether ICE and DTLS are up.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// The negotiated direction, from our side.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// The statistics so far.
    pub fn stats(&self) -> MediaStats {
        self.stats
    }

    /// Plays `source` into the call from the next frame on.
    pub fn set_source(&mut self, source: Box<dyn AudioSource>) {
        self.source = source;
    }

    /// Sends the call's decoded audio to `sink` (replacing, and finishing, the previous one).
    pub fn set_sink(&mut self, sink: Box<dyn AudioSink>) {
        if let Some(mut old) = self.sink.replace(sink) {
            let _ = old.finish();
        }
    }

    /// Sends the call's received video frames to `sink`.
    pub fn set_video_sink(&mut self, sink: Box<dyn VideoSink>) {
        if let Some(mut old) = self.video_sink.replace(sink) {
            let _ = old.finish();
        }
    }

    /// Sends silence instead of the source (the call and its packets go on).
    pub fn set_muted(&mut self, muted: bool) {
        self.muted = muted;
    }

    /// Whether RFC 4733 telephone-events were negotiated at our send rate.
    pub fn has_telephone_events(&mut self) -> bool {
        self.tele_pt().is_some()
    }

    /// Queues DTMF tones (`0`-`9`, `*`, `#`, `A`-`D`; `,` pauses 2 s) as RFC 4733 events.
    pub(crate) fn queue_dtmf(&mut self, tones: &str) {
        self.dtmf_out.extend(tones.chars());
    }

    /// The next instant the session needs [`RtcSession::handle_timeout`].
    pub fn poll_timeout(&self) -> Instant {
        let engine = match &self.plain {
            Some(p) => p.poll_timeout(),
            None => Some(self.timeout),
        };
        [self.next_frame, self.connect_by, engine]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.now + Duration::from_secs(3600))
    }

    /// Whether `source` (a datagram's sender) belongs to this session: its nominated peer,
    /// a STUN request with our credentials, or one of its remote candidates.
    pub(crate) fn accepts(
        &self,
        now: Instant,
        source: SocketAddr,
        dest: SocketAddr,
        bytes: &[u8],
    ) -> bool {
        if let Some(p) = &self.plain {
            return p.accepts(source, dest, bytes);
        }
        match Receive::new(Protocol::Udp, source, dest, bytes) {
            Ok(r) => self.rtc.accepts(&Input::Receive(now, r)),
            Err(_) => false,
        }
    }

    /// Feeds one media datagram.
    pub(crate) fn handle_receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        dest: SocketAddr,
        bytes: &[u8],
    ) {
        self.now = self.now.max(now);
        if self.plain.is_some() {
            self.receive_plain(now, source, bytes);
            return;
        }
        let Ok(r) = Receive::new(Protocol::Udp, source, dest, bytes) else {
            return;
        };
        if let Err(e) = self.rtc.handle_input(Input::Receive(now, r)) {
            tracing::debug!(error = %e, "media datagram refused");
        }
        self.drain();
    }

    /// Fires what is due: str0m's timers and the 20 ms audio clock.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        if let Some(p) = self.plain.as_mut() {
            p.handle_timeout(now);
            self.drain_plain();
        } else if now >= self.timeout {
            if let Err(e) = self.rtc.handle_input(Input::Timeout(now)) {
                tracing::debug!(error = %e, "media timeout failed");
            }
            self.drain();
        }
        if let Some(at) = self.next_frame
            && now >= at
        {
            self.send_frame(now);
        }
        if self.connect_by.is_some_and(|by| now >= by) {
            self.fail(MediaFailure::NotConnected {
                after: self.config.connect_timeout,
            });
        }
    }

    /// The media failure found since the last call, if any (a call fails at most once).
    pub(crate) fn poll_failure(&mut self) -> Option<MediaFailure> {
        self.failure.take()
    }

    fn fail(&mut self, failure: MediaFailure) {
        self.connect_by = None;
        if !std::mem::replace(&mut self.failed, true) {
            tracing::debug!(%failure, "media failed");
            self.failure = Some(failure);
        }
    }

    /// After an offer/answer: the clock for connecting starts, unless the peer's
    /// description says its ICE will not run with ours. Plain RTP "connects" when the
    /// peer's first packet comes, which it need not send while we hold.
    fn expect_connection(&mut self, peer_sdp: &str) {
        if self.plain.is_some() {
            if self.next_frame.is_none() {
                self.next_frame = Some(self.now);
            }
            if !self.direction.receives() {
                return;
            }
        }
        if peer_sdp.lines().any(|l| l.trim_end() == "a=ice-mismatch") {
            self.fail(MediaFailure::IceMismatch);
        } else if !self.connected && !self.failed && self.connect_by.is_none() {
            self.connect_by = Some(self.now + self.config.connect_timeout);
        }
    }

    /// The socket plain RTP uses, and the address it announces for it: the
    /// server-reflexive one behind a NAT.
    fn plain_address(&self) -> Result<(SocketAddr, SocketAddr), SdpError> {
        let local = *self
            .addrs
            .first()
            .ok_or_else(|| incompatible("no media address"))?;
        let announced = self
            .reflexive
            .iter()
            .find(|(_, base)| *base == local)
            .map_or(local, |(addr, _)| *addr);
        Ok((local, announced))
    }

    /// Feeds a datagram to the plain RTP path: audio to the sink, tones to the queue.
    fn receive_plain(&mut self, now: Instant, source: SocketAddr, bytes: &[u8]) {
        // Out for the while: the packet borrows its buffer while the audio path runs.
        let Some(mut plain) = self.plain.take() else {
            return;
        };
        if let Some((payload, incoming)) = plain.handle_receive(now, source, bytes) {
            if !self.connected {
                self.connected = true;
                self.connect_by = None;
                self.connection_changes.push_back(true);
            }
            match payload {
                Payload::Audio(codec) => self.on_audio(codec, incoming.timestamp, incoming.payload),
                Payload::Tone(rate) => {
                    if let Some(ev) = ToneEvent::parse(incoming.payload)
                        && ev.end
                    {
                        let duration = Duration::from_secs_f64(
                            f64::from(ev.duration) / f64::from(rate.max(1)),
                        );
                        self.on_tone(u64::from(incoming.timestamp), ev.event, duration);
                    }
                }
            }
        }
        self.plain = Some(plain);
        self.drain_plain();
    }

    /// Moves the plain RTP path's datagrams to our queue and its reports to the stats.
    fn drain_plain(&mut self) {
        let Some(plain) = self.plain.as_mut() else {
            return;
        };
        while let Some(t) = plain.poll_transmit() {
            self.transmits.push_back(t);
        }
        if let Some((r, remote)) = plain.reports() {
            self.stats.remote = Some(remote);
            self.stats.loss = r.loss.or(self.stats.loss);
            self.stats.remote_loss = r.remote_loss.or(self.stats.remote_loss);
            self.stats.rtt = r.rtt.or(self.stats.rtt);
            if let Some(j) = r.jitter {
                let rate = self.stats.codec.map_or(8_000, AudioCodec::rate);
                self.stats.jitter = Some(Duration::from_secs_f64(f64::from(j) / f64::from(rate)));
            }
        }
    }

    /// The next datagram to send.
    pub(crate) fn poll_transmit(&mut self) -> Option<MediaTransmit> {
        self.transmits.pop_front()
    }

    pub(crate) fn poll_dtmf(&mut self) -> Option<(char, Duration)> {
        self.dtmf_in.pop_front()
    }

    pub(crate) fn poll_connection_change(&mut self) -> Option<bool> {
        self.connection_changes.pop_front()
    }

    /// Sends one pre-encoded video frame (no-op without negotiated video).
    pub fn send_video(&mut self, now: Instant, frame: &VideoFrame) -> bool {
        let Some(mid) = self.video else {
            return false;
        };
        self.now = self.now.max(now);
        if !self.connected || !self.direction.sends() {
            return false;
        }
        let want = match frame.codec {
            VideoCodec::Vp8 => Codec::Vp8,
            VideoCodec::H264 => Codec::H264,
        };
        let Some(writer) = self.rtc.writer(mid) else {
            return false;
        };
        let Some(pt) = writer
            .payload_params()
            .find(|p| p.spec().codec == want)
            .map(|p| p.pt())
        else {
            return false;
        };
        let ok = writer
            .write(
                pt,
                now,
                MediaTime::from_90khz(frame.rtp_time),
                frame.data.clone(),
            )
            .is_ok();
        if ok {
            self.stats.video_frames_sent += 1;
        }
        self.drain();
        ok
    }

    fn tele_pt(&mut self) -> Option<Pt> {
        if let Some(p) = &self.plain {
            return p.tone_pt().map(Pt::from);
        }
        let audio = self.audio.as_ref()?;
        let (_, codec) = audio.send?;
        // Events run at the audio's RTP clock (8 kHz for G.722).
        let rate = codec.clock_rate();
        let writer = self.rtc.writer(audio.mid?)?;
        writer
            .payload_params()
            .find(|p| p.spec().codec == Codec::Tele && p.spec().clock_rate.get() == rate)
            .map(|p| p.pt())
    }

    /// Picks the send codec after a negotiation: the first audio payload the peer took.
    fn negotiated(&mut self) {
        let Some(audio) = self.audio.as_mut() else {
            return;
        };
        let send = match (&self.plain, audio.mid) {
            (Some(p), _) => p.send_codec().map(|(pt, c)| (Pt::from(pt), c)),
            (None, Some(mid)) => {
                let Some(writer) = self.rtc.writer(mid) else {
                    return;
                };
                writer.payload_params().find_map(|p| {
                    let codec = match p.spec().codec {
                        Codec::Opus => AudioCodec::Opus,
                        Codec::PCMU => AudioCodec::Pcmu,
                        Codec::PCMA => AudioCodec::Pcma,
                        Codec::G722 => AudioCodec::G722,
                        _ => return None,
                    };
                    codec.available().then_some((p.pt(), codec))
                })
            }
            (None, None) => return,
        };
        if send.map(|s| s.1) != audio.send.map(|s| s.1) {
            audio.encoder = send.and_then(|(_, c)| Encoder::new(c).ok());
            audio.rtp_time = 0;
        }
        audio.send = send;
        self.stats.codec = send.map(|s| s.1);
    }

    fn send_frame(&mut self, now: Instant) {
        let Some(at) = self.next_frame else {
            return;
        };
        // Late by more than a few frames (a stalled runtime): skip ahead rather than burst.
        self.next_frame = Some(if now.saturating_duration_since(at) > FRAME * 5 {
            now + FRAME
        } else {
            at + FRAME
        });
        self.play_frame();
        let tele = if self.dtmf_next.is_none_or(|t| now >= t) {
            self.next_tone(now)
        } else {
            None
        };
        if self.audio.as_ref().is_some_and(|a| a.send.is_none()) {
            // The answerer learns its audio m-line only after the answer went out.
            self.negotiated();
        }
        // Plain RTP has no handshake: it sends from the offer/answer on.
        let sends = self.direction.sends() && (self.connected || self.plain.is_some());
        let Some(audio) = self.audio.as_mut() else {
            return;
        };
        let Some((pt, codec)) = audio.send else {
            return;
        };
        let n = frame_samples(codec.rate());
        audio.frame.resize(n, 0);
        if !self.source.fill(codec.rate(), &mut audio.frame) {
            // The source ended: silence from now on.
            self.source = Box::new(Silence);
        }
        if self.muted {
            audio.frame.fill(0);
        }
        let rtp_time = audio.rtp_time;
        audio.rtp_time += n as u64;
        if !sends {
            return;
        }
        let Some(encoder) = audio.encoder.as_mut() else {
            return;
        };
        if encoder.encode(&audio.frame, &mut audio.payload).is_err() {
            return;
        }
        let len = audio.payload.len() as u64;
        if let Some(p) = self.plain.as_mut() {
            if let Some(ev) = tele {
                let length = (ev.duration.as_secs_f64() * f64::from(codec.rate())) as u64;
                p.start_tone(ev.event, rtp_time, length);
                self.stats.dtmf_sent += 1;
            }
            p.send_audio(now, rtp_time, &audio.payload);
            self.stats.packets_sent += 1;
            self.stats.bytes_sent += len;
            self.drain_plain();
            return;
        }
        let payload: Arc<[u8]> = audio.payload.as_slice().into();
        let Some(mid) = audio.mid else {
            return;
        };
        let Some(mut writer) = self.rtc.writer(mid) else {
            return;
        };
        if let Some(ev) = tele {
            writer = writer.telephone_event(ev);
        }
        let time = MediaTime::new(
            rtp_time,
            Frequency::new(codec.rate()).unwrap_or(Frequency::EIGHT_KHZ),
        );
        match writer.write(pt, now, time, payload) {
            Ok(()) => {
                self.stats.packets_sent += 1;
                self.stats.bytes_sent += len;
                if tele.is_some() {
                    self.stats.dtmf_sent += 1;
                }
            }
            Err(e) => tracing::debug!(error = %e, "audio write failed"),
        }
        self.drain();
    }

    /// The next RFC 4733 event to start now, if one is queued and negotiated.
    fn next_tone(&mut self, now: Instant) -> Option<TelephoneEvent> {
        let tone = *self.dtmf_out.front()?;
        if tone == ',' {
            self.dtmf_out.pop_front();
            self.dtmf_next = Some(now + Duration::from_secs(2));
            return None;
        }
        self.tele_pt()?;
        self.dtmf_out.pop_front();
        let event = event_of(tone)?;
        let duration = self.config.dtmf_duration;
        self.dtmf_next = Some(now + duration + self.config.dtmf_gap.max(Duration::from_millis(50)));
        Some(TelephoneEvent {
            event,
            end: true,
            volume: 10,
            duration,
        })
    }

    /// Empties str0m's output into our queues (the single-mutation rule).
    fn drain(&mut self) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.timeout = t;
                    return;
                }
                Ok(Output::Transmit(t)) => {
                    // STUN checks go to every candidate; once connected, media goes to
                    // the nominated pair only.
                    if self.connected && !crate::stats::is_stun(&t.contents) {
                        self.stats.remote = Some(t.destination);
                    }
                    self.transmits.push_back(MediaTransmit {
                        source: t.source,
                        destination: t.destination,
                        contents: Bytes::copy_from_slice(&t.contents),
                    })
                }
                Ok(Output::Event(e)) => self.on_event(e),
                Err(e) => {
                    tracing::debug!(error = %e, "media session failed");
                    // Nothing more will come; wake up rarely.
                    self.timeout = self.now + Duration::from_secs(3600);
                    return;
                }
            }
        }
    }

    fn on_event(&mut self, e: Event) {
        match e {
            Event::Connected => {
                self.connected = true;
                self.connect_by = None;
                self.connection_changes.push_back(true);
                if self.next_frame.is_none() {
                    self.next_frame = Some(self.now);
                }
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) if self.connected => {
                self.connected = false;
                self.connection_changes.push_back(false);
            }
            Event::MediaAdded(m) => match m.kind {
                MediaKind::Audio => self.add_audio(Some(m.mid)),
                MediaKind::Video => self.video = self.video.or(Some(m.mid)),
            },
            Event::MediaData(d) => self.on_media(d),
            Event::MediaIngressStats(s) => {
                self.stats.loss = s.loss.or(self.stats.loss);
                let rate = self.stats.codec.map_or(8_000, AudioCodec::rate);
                self.stats.jitter = Some(Duration::from_secs_f64(
                    f64::from(s.jitter) / f64::from(rate),
                ));
                self.stats.rtt = s.rtt.or(self.stats.rtt);
            }
            Event::MediaEgressStats(s) => {
                self.stats.remote_loss = s.loss.or(self.stats.remote_loss);
                self.stats.rtt = s.rtt.or(self.stats.rtt);
            }
            Event::PeerStats(s) => self.stats.rtt = s.rtt.or(self.stats.rtt),
            _ => {}
        }
    }

    fn on_media(&mut self, d: MediaData) {
        if Some(d.mid) == self.video {
            if self.direction.receives()
                && let Some(sink) = self.video_sink.as_mut()
            {
                let codec = match d.params.spec().codec {
                    Codec::Vp8 => VideoCodec::Vp8,
                    Codec::H264 => VideoCodec::H264,
                    _ => return,
                };
                sink.write(&VideoFrame {
                    codec,
                    rtp_time: d.time.rebase(Frequency::NINETY_KHZ).numer(),
                    data: d.data.to_vec(),
                });
            }
            self.stats.video_frames_received += 1;
            return;
        }
        if self.audio.as_ref().is_none_or(|a| a.mid != Some(d.mid)) {
            return;
        }
        if let CodecExtra::Tele(ev) = d.codec_extra {
            if ev.end {
                self.on_tone(d.time.numer(), ev.event, ev.duration);
            }
            return;
        }
        let codec = match d.params.spec().codec {
            Codec::Opus => AudioCodec::Opus,
            Codec::PCMU => AudioCodec::Pcmu,
            Codec::PCMA => AudioCodec::Pcma,
            Codec::G722 => AudioCodec::G722,
            _ => return,
        };
        self.on_audio(codec, d.time.numer() as u32, &d.data);
    }

    /// An RFC 4733 event ended: a tone heard (its retransmitted end packets are not new).
    fn on_tone(&mut self, start: u64, event: u8, duration: Duration) {
        if self.last_tele != Some(start) {
            self.last_tele = Some(start);
            if let Some(tone) = tone_of(event) {
                self.stats.dtmf_received += 1;
                self.dtmf_in.push_back((tone, duration));
            }
        }
    }

    /// An audio payload arrived: into the jitter buffer, to be played in its slot.
    fn on_audio(&mut self, codec: AudioCodec, timestamp: u32, data: &[u8]) {
        if !self.direction.receives() {
            return;
        }
        let Some(audio) = self.audio.as_mut() else {
            return;
        };
        self.stats.packets_received += 1;
        self.stats.bytes_received += data.len() as u64;
        audio.jitter.push(self.now, codec, timestamp, data);
    }

    /// Plays one 20 ms frame into the sink: the next packet decoded, a missing one
    /// concealed, or silence while the stream pauses (hold, silence suppression).
    fn play_frame(&mut self) {
        let Some(audio) = self.audio.as_mut() else {
            return;
        };
        let playout = audio.jitter.pop();
        let jitter = audio.jitter.stats();
        self.stats.concealed = jitter.concealed;
        self.stats.late = jitter.late;
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        let (codec, decoded) = match playout {
            Playout::Idle => return,
            Playout::Silence => {
                let Some(codec) = audio.jitter.codec() else {
                    return;
                };
                audio.pcm.clear();
                audio.pcm.resize(frame_samples(codec.rate()), 0);
                (codec, Ok(()))
            }
            Playout::Packet { codec, payload } => {
                let Some(decoder) = decoder(&mut audio.decoders, codec) else {
                    return;
                };
                (codec, decoder.decode(&payload, &mut audio.pcm))
            }
            Playout::Missing { codec, next } => {
                let Some(decoder) = decoder(&mut audio.decoders, codec) else {
                    return;
                };
                let n = frame_samples(codec.rate());
                (codec, decoder.conceal(n, next.as_deref(), &mut audio.pcm))
            }
        };
        if decoded.is_ok() {
            let frame = AudioFrame {
                rate: codec.rate(),
                samples: std::mem::take(&mut audio.pcm),
            };
            sink.write(&frame);
            audio.pcm = frame.samples;
        }
    }

    /// The call's first audio m-line carries its audio.
    fn add_audio(&mut self, mid: Option<Mid>) {
        if self.audio.is_none() {
            self.audio = Some(Audio {
                mid,
                send: None,
                encoder: None,
                decoders: HashMap::new(),
                rtp_time: 0,
                payload: Vec::with_capacity(256),
                pcm: Vec::with_capacity(960),
                frame: Vec::with_capacity(960),
                jitter: JitterBuffer::new(),
            });
        }
    }

    fn finish_local(&mut self, sdp: String, direction: Direction) -> Bytes {
        self.version += 1;
        let sdp = set_default_candidates(&rewrite_directions(&sdp, |_| direction));
        let sdp = set_origin_version(&sdp, self.version);
        self.previous_sdp = self.local_sdp.replace(sdp.clone());
        Bytes::from(sdp)
    }
}

/// The call's decoder for `codec`, made on first use.
fn decoder(decoders: &mut HashMap<AudioCodec, Decoder>, codec: AudioCodec) -> Option<&mut Decoder> {
    match decoders.entry(codec) {
        std::collections::hash_map::Entry::Occupied(o) => Some(o.into_mut()),
        std::collections::hash_map::Entry::Vacant(v) => {
            Decoder::new(codec).ok().map(|d| v.insert(d))
        }
    }
}

/// An `o=` session id (RFC 4566 §5.2), unique enough from the OS's randomness.
fn session_id() -> u64 {
    getrandom::u64().map_or(1, |n| n >> 2)
}

/// RFC 4733 §3.2: the event code of a DTMF tone, and back.
fn event_of(tone: char) -> Option<u8> {
    Some(match tone.to_ascii_uppercase() {
        '0'..='9' => tone as u8 - b'0',
        '*' => 10,
        '#' => 11,
        t @ 'A'..='D' => t as u8 - b'A' + 12,
        _ => return None,
    })
}

fn tone_of(event: u8) -> Option<char> {
    Some(match event {
        0..=9 => (b'0' + event) as char,
        10 => '*',
        11 => '#',
        12..=15 => (b'A' + event - 12) as char,
        _ => return None,
    })
}

fn incompatible(e: impl std::fmt::Display) -> SdpError {
    SdpError::Incompatible(e.to_string())
}

/// Runs one of str0m's negotiation steps so that an assertion inside it (which the glue
/// tries to rule out beforehand) refuses the description instead of taking the process
/// down: a peer's SDP must never crash the phone.
fn guarded<T>(f: impl FnOnce() -> Result<T, str0m::RtcError>) -> Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err("the media engine could not take this description".into()),
    }
}

impl SdpHandler for RtcSession {
    fn create_offer(&mut self, direction: Direction) -> Result<Bytes, SdpError> {
        let sdp = match &self.local_sdp {
            Some(last) => last.clone(),
            None if self.config.offer_profile != MediaProfile::WebRtc => {
                let protection = match self.config.offer_profile {
                    MediaProfile::Sdes => Protection::Sdes,
                    _ => Protection::Plain,
                };
                let (local, announced) = self.plain_address()?;
                let (media, text) =
                    PlainMedia::offer(local, announced, protection, &self.config, session_id())?;
                self.plain = Some(media);
                self.add_audio(None);
                text
            }
            None => {
                let sendrecv = str0m::media::Direction::SendRecv;
                let mut api = self.rtc.sdp_api();
                let audio = api.add_media(MediaKind::Audio, sendrecv, None, None, None);
                let video = self
                    .config
                    .video
                    .then(|| api.add_media(MediaKind::Video, sendrecv, None, None, None));
                let applied = api.apply();
                self.drain();
                let Some((offer, pending)) = applied else {
                    return Err(incompatible("nothing to offer"));
                };
                self.add_audio(Some(audio));
                self.video = self.video.or(video);
                let text = offer.to_sdp_string();
                self.pending = Some((pending, text.clone()));
                text
            }
        };
        self.offered = Some(direction);
        Ok(self.finish_local(sdp, direction))
    }

    fn accept_offer(&mut self, offer: &[u8], direction: Direction) -> Result<Bytes, SdpError> {
        let text = String::from_utf8_lossy(offer);
        let plain_answer = match self.plain.as_mut() {
            Some(p) => Some(p.accept_offer(self.now, offer, &self.config)?),
            None if self.local_sdp.is_none() && is_plain(&text) => {
                let (local, announced) = self.plain_address()?;
                let (media, answer) = PlainMedia::answer(
                    self.now,
                    local,
                    announced,
                    offer,
                    &self.config,
                    session_id(),
                )?;
                self.plain = Some(media);
                self.add_audio(None);
                Some(answer)
            }
            None => None,
        };
        if let Some(answer) = plain_answer {
            self.offered = None;
            self.direction = direction;
            self.negotiated();
            self.expect_connection(&text);
            self.drain_plain();
            return Ok(self.finish_local(answer, direction));
        }
        let accept = Accept {
            video: self.config.video,
            current: self.local_sdp.as_deref(),
        };
        let remote = normalize_offer(offer, accept)?;
        let parsed = SdpOffer::from_sdp_string(&remote.normalized).map_err(incompatible)?;
        let answer = guarded(|| self.rtc.sdp_api().accept_offer(parsed));
        // Whatever happened, str0m may have output to give.
        self.drain();
        let answer = answer.map_err(incompatible)?;
        self.pending = None;
        self.offered = None;
        let text = remote.fix_answer(&answer.to_sdp_string());
        self.direction = direction;
        self.negotiated();
        self.expect_connection(&String::from_utf8_lossy(offer));
        Ok(self.finish_local(text, direction))
    }

    fn accept_answer(&mut self, answer: &[u8]) -> Result<(), SdpError> {
        if let Some(p) = self.plain.as_mut() {
            p.accept_answer(self.now, answer)?;
        } else if let Some((pending, our_offer)) = self.pending.take() {
            let text = normalize_answer(answer, &our_offer)?;
            let parsed = SdpAnswer::from_sdp_string(&text).map_err(incompatible)?;
            let r = guarded(|| self.rtc.sdp_api().accept_answer(pending, parsed));
            self.drain();
            r.map_err(incompatible)?;
        }
        let text =
            std::str::from_utf8(answer).map_err(|_| SdpError::Malformed("not UTF-8".into()))?;
        let theirs = media_direction(text).unwrap_or(Direction::Inactive);
        let ours = self.offered.take().unwrap_or(self.direction);
        self.direction = ours.intersect(theirs.reversed());
        self.negotiated();
        self.expect_connection(text);
        self.drain_plain();
        Ok(())
    }

    fn rollback(&mut self) {
        self.offered = None;
        if self.plain.as_ref().is_some_and(|p| !p.is_started()) {
            // Our first plain offer, never answered.
            self.plain = None;
            self.audio = None;
            self.local_sdp = None;
        } else if self.pending.take().is_some() {
            self.local_sdp = None;
        } else if let Some(prev) = self.previous_sdp.take() {
            self.local_sdp = Some(prev);
        }
    }
}

impl Drop for RtcSession {
    fn drop(&mut self) {
        if let Some(mut s) = self.sink.take() {
            let _ = s.finish();
        }
        if let Some(mut s) = self.video_sink.take() {
            let _ = s.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::disallowed_methods)] // any instant will do
    fn pair() -> (RtcSession, RtcSession) {
        let now = Instant::now();
        let template = |port| {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            SessionTemplate::new(MediaConfig::default(), vec![addr]).unwrap()
        };
        (
            RtcSession::new(now, &template(40000)),
            RtcSession::new(now, &template(40002)),
        )
    }

    #[test]
    fn an_answer_saying_ice_mismatch_fails_the_media_at_once() {
        let (mut a, mut b) = pair();
        let offer = a.create_offer(Direction::SendRecv).unwrap();
        let answer = b.accept_offer(&offer, Direction::SendRecv).unwrap();
        let answer = format!("{}a=ice-mismatch\r\n", String::from_utf8_lossy(&answer));
        a.accept_answer(answer.as_bytes()).unwrap();
        assert_eq!(a.poll_failure(), Some(MediaFailure::IceMismatch));
        assert_eq!(a.poll_failure(), None, "said once");
        // Its connect clock is off: no second failure when the bound passes.
        let later = a.now + Duration::from_secs(60);
        a.handle_timeout(later);
        assert_eq!(a.poll_failure(), None);
        // The answerer's own clock runs from the offer/answer.
        assert!(b.poll_timeout() <= b.now + MediaConfig::default().connect_timeout);
    }
}
