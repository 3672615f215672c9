//! `RtcSession`: one call's media behind sip-core's [`SdpHandler`] seam: a str0m [`Rtc`]
//! for WebRTC peers, or our own RTP session for plain RTP and SDES peers, whichever the
//! first offer asks for.
//!
//! - `webrtc`: str0m's side. The session speaks SDP through the glue in [`crate::sdp`] and
//!   keeps str0m's single-mutation rule (every change is followed by draining `poll_output`
//!   into the session's own queues).
//! - `plain`: the plain RTP path ([`crate::rtp`]).
//! - `audio`: what both share: a source asked for a frame every 20 ms, an encoder, the
//!   jitter buffer and decoders per incoming codec, a sink, RFC 4733 tones both ways.
//!
//! Hold: sip-core decides each offer's and answer's direction; the session writes it into
//! the SDP it hands out and gates its own sending and receiving on the negotiated result.
//! str0m is never asked to change direction, so its habit of answering a `sendrecv`
//! re-offer with `sendrecv` cannot undo a hold. Our own re-offers (hold, unhold) reuse the
//! last description we sent with the new direction and the next `o=` version: they change
//! nothing else, so str0m has nothing to renegotiate.

mod audio;
mod plain;
mod video;
mod webrtc;

use audio::Audio;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sansip_core::session::sdp::{media_direction, rewrite_directions};
use sansip_core::session::{Direction, SdpError, SdpHandler};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::crypto::CryptoProvider;
use str0m::format::{Codec, FormatParams};
use str0m::media::{Frequency, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Input, Rtc, RtcConfig};

use crate::audio::{
    AudioCodec, AudioFrame, AudioSink, AudioSource, FRAME, Ringback, RingbackTone, Silence,
    frame_samples,
};
use crate::config::{MediaConfig, MediaProfile};
use crate::rtp::{PlainMedia, Protection, is_plain};
use crate::sdp::{
    Accept, keep_sections, normalize_answer, normalize_offer, set_default_candidates,
    set_origin_version,
};
use crate::stats::{MediaFailure, MediaStats, MediaTransmit};
use crate::video::VideoSink;

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
    /// The ICE credentials and DTLS fingerprint of the last answer str0m took.
    answered_by: Option<String>,
    /// The last description we sent, and the one before (for rollback).
    local_sdp: Option<String>,
    previous_sdp: Option<String>,
    /// The direction of our outstanding offer.
    offered: Option<Direction>,
    /// The direction of our last offer that was answered.
    answered_offer: Direction,
    version: u64,
    /// The negotiated direction, from our side: whether we may send and receive.
    direction: Direction,
    audio: Option<Audio>,
    video: Option<Mid>,
    video_state: video::Video,
    /// Take video the peer offers, and offer it in our next offer.
    video_wanted: bool,
    /// Changes our next offer makes (kept until an answer takes them: a glare retry
    /// offers them again).
    changes: Changes,
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
    /// The ringback tone playing into the sink, and when its next frame is due.
    ringback: Option<(RingbackTone, Instant)>,
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
        // Always: video may be added later in the call (`set_video`); only an offer with
        // a video section brings them into play.
        codecs.enable_vp8(true);
        codecs.enable_h264(true);
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
            answered_by: None,
            local_sdp: None,
            previous_sdp: None,
            offered: None,
            answered_offer: Direction::SendRecv,
            version: 0,
            direction: Direction::SendRecv,
            audio: None,
            video: None,
            video_state: video::Video::default(),
            video_wanted: template.config.video,
            changes: Changes::default(),
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
            ringback: None,
            muted: false,
            dtmf_out: VecDeque::new(),
            dtmf_next: None,
            last_tele: None,
            stats: MediaStats::default(),
        };
        s.drain();
        s
    }

    /// Has the next offer restart ICE: new credentials, so the peer checks every pair again
    /// (after a network change, or when media stopped flowing). WebRTC only; a plain RTP
    /// offer goes unchanged. Send it with the user agent's `renegotiate`.
    pub fn restart_ice(&mut self) {
        self.changes.ice_restart = true;
    }

    /// Adds video to the call (`true`) or stops it, from the next offer on, and takes or
    /// refuses the video the peer offers from now on. WebRTC only. A stopped video cannot
    /// come back in the same call (RFC 8843 §7.5.3), and stopping is not undone when the
    /// offer is refused.
    pub fn set_video(&mut self, video: bool) {
        self.video_wanted = video;
        self.changes.video = video != self.video.is_some();
    }

    /// Whether the call has video (negotiated and not stopped).
    pub fn has_video(&self) -> bool {
        self.video.is_some()
    }

    /// A fresh str0m offer with the changes asked for, or the last description again
    /// when none of them needs negotiating.
    fn changed_offer(&mut self) -> Result<String, SdpError> {
        let last = self.local_sdp.clone().unwrap_or_default();
        let sendrecv = str0m::media::Direction::SendRecv;
        let mut api = self.rtc.sdp_api();
        if self.changes.ice_restart {
            api.ice_restart(true);
        }
        if self.changes.video {
            match self.video {
                Some(mid) if !self.video_wanted => api.stop_media(mid),
                None if self.video_wanted => {
                    let mid = api.add_media(MediaKind::Video, sendrecv, None, None, None);
                    self.changes.added_video = Some(mid);
                }
                _ => {}
            }
        }
        let applied = api.apply();
        self.drain();
        Ok(match applied {
            Some((offer, pending)) => {
                let text = keep_sections(&offer.to_sdp_string(), &last);
                self.pending = Some((pending, text.clone()));
                text
            }
            None => last,
        })
    }

    /// An answer took our offer with its changes.
    fn changes_made(&mut self) {
        if self.changes.video {
            self.video = self.changes.added_video.filter(|_| self.video_wanted);
        }
        self.changes = Changes::default();
    }

    /// Plays `tone` into the sink from `now` on, until [`RtcSession::stop_ringback`] (a
    /// tone already playing goes on).
    pub fn start_ringback(&mut self, now: Instant, tone: Ringback) {
        if self.ringback.is_none() {
            self.ringback = Some((RingbackTone::new(tone), now.max(self.now)));
        }
    }

    /// Stops the ringback tone.
    pub fn stop_ringback(&mut self) {
        self.ringback = None;
    }

    /// Whether the ringback tone is playing.
    pub fn is_ringback_playing(&self) -> bool {
        self.ringback.is_some()
    }

    /// The ringback frames due by `now`, at 8 kHz (the sink resamples what it must).
    fn play_ringback(&mut self, now: Instant) {
        const RATE: u32 = 8_000;
        let Some((tone, at)) = self.ringback.as_mut() else {
            return;
        };
        while *at <= now {
            // Late by more than a few frames (a stalled runtime): skip ahead.
            *at = if now.saturating_duration_since(*at) > FRAME * 5 {
                now + FRAME
            } else {
                *at + FRAME
            };
            let mut samples = vec![0; frame_samples(RATE)];
            tone.fill(RATE, &mut samples);
            if let Some(sink) = self.sink.as_mut() {
                sink.write(&AudioFrame {
                    rate: RATE,
                    samples,
                });
            }
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
        self.restart_recording();
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
        let ringback = self.ringback.as_ref().map(|r| r.1);
        [self.next_frame, self.connect_by, engine, ringback]
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
        self.play_ringback(now);
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

    fn finish_local(&mut self, sdp: String, direction: Direction) -> Bytes {
        self.version += 1;
        let sdp = set_default_candidates(&rewrite_directions(&sdp, |_| direction));
        let sdp = set_origin_version(&sdp, self.version);
        self.previous_sdp = self.local_sdp.replace(sdp.clone());
        Bytes::from(sdp)
    }
}

/// Changes the application asked of the next offer.
#[derive(Debug, Default, Clone, Copy)]
struct Changes {
    /// New ICE credentials, so the peer checks every pair again (RFC 8445 §9).
    ice_restart: bool,
    /// Video added or stopped.
    video: bool,
    /// The section our pending offer adds for it.
    added_video: Option<Mid>,
}

impl Changes {
    fn any(self) -> bool {
        self.ice_restart || self.video
    }
}

/// The ICE credentials and DTLS fingerprints of a description: who its WebRTC endpoint is.
fn transport_identity(sdp: &str) -> String {
    let mut lines: Vec<&str> = sdp
        .lines()
        .map(str::trim_end)
        .filter(|l| l.starts_with("a=ice-ufrag:") || l.starts_with("a=fingerprint:"))
        .collect();
    lines.sort_unstable();
    lines.dedup();
    lines.join("\n")
}

/// Whether a description has a video section with a port.
fn has_active_video(sdp: &str) -> bool {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("m=video "))
        .any(|rest| !rest.starts_with("0 "))
}

/// An `o=` session id (RFC 4566 §5.2), unique enough from the OS's randomness.
fn session_id() -> u64 {
    getrandom::u64().map_or(1, |n| n >> 2)
}

pub(super) fn incompatible(e: impl std::fmt::Display) -> SdpError {
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
            Some(_) if self.changes.any() && self.plain.is_none() => self.changed_offer()?,
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
            video: self.video_wanted,
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
        if !self.video_wanted || !has_active_video(&remote.normalized) {
            self.video = None;
        }
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
            self.answered_by = Some(transport_identity(&String::from_utf8_lossy(answer)));
            self.changes_made();
        }
        let text =
            std::str::from_utf8(answer).map_err(|_| SdpError::Malformed("not UTF-8".into()))?;
        let theirs = media_direction(text).unwrap_or(Direction::Inactive);
        let ours = self.offered.take().unwrap_or(self.direction);
        self.answered_offer = ours;
        self.direction = ours.intersect(theirs.reversed());
        self.negotiated();
        self.expect_connection(text);
        self.drain_plain();
        Ok(())
    }

    /// Plain RTP moves to the answering fork's address; WebRTC keeps the ICE and DTLS it
    /// has, so it takes another fork's answer only from the same endpoint (an SBC or media
    /// server anchoring every fork), and refuses a new one.
    fn replace_answer(&mut self, answer: &[u8]) -> Result<(), SdpError> {
        if self.plain.is_some() {
            return self.accept_answer(answer);
        }
        let text = String::from_utf8_lossy(answer);
        if self.answered_by.as_deref() != Some(transport_identity(&text).as_str()) {
            return Err(incompatible(
                "the answering fork is another WebRTC endpoint than the early media's",
            ));
        }
        let theirs = media_direction(&text).unwrap_or(Direction::Inactive);
        self.direction = self.answered_offer.intersect(theirs.reversed());
        self.negotiated();
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
            // Our first offer leaves nothing; a re-offer the one before it.
            self.local_sdp = self.previous_sdp.take();
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

    fn pair() -> (RtcSession, RtcSession) {
        let now = crate::test_clock::origin();
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

    fn session(port: u16, profile: MediaProfile) -> RtcSession {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let config = MediaConfig {
            offer_profile: profile,
            ..MediaConfig::default()
        };
        let template = SessionTemplate::new(config, vec![addr]).unwrap();
        RtcSession::new(crate::test_clock::origin(), &template)
    }

    #[test]
    fn webrtc_takes_another_forks_answer_only_from_the_same_endpoint() {
        let (mut a, mut b1) = pair();
        let mut b2 = session(40004, MediaProfile::WebRtc);
        let offer = a.create_offer(Direction::SendRecv).unwrap();
        let early = b1.accept_offer(&offer, Direction::SendRecv).unwrap();
        let other = b2.accept_offer(&offer, Direction::SendRecv).unwrap();
        a.accept_answer(&early).unwrap();
        assert!(matches!(
            a.replace_answer(&other),
            Err(SdpError::Incompatible(_))
        ));
        // The same endpoint answering from another dialog, receiving only: we send only.
        let same = rewrite_directions(&String::from_utf8_lossy(&early), |_| Direction::RecvOnly);
        a.replace_answer(same.as_bytes()).unwrap();
        assert_eq!(a.direction(), Direction::SendOnly);
    }

    #[test]
    fn plain_rtp_moves_to_the_answering_forks_address() {
        let mut a = session(40010, MediaProfile::Plain);
        let mut b1 = session(40012, MediaProfile::Plain);
        let mut b2 = session(40014, MediaProfile::Plain);
        let offer = a.create_offer(Direction::SendRecv).unwrap();
        let early = b1.accept_offer(&offer, Direction::SendRecv).unwrap();
        let answer = b2.accept_offer(&offer, Direction::SendRecv).unwrap();
        a.accept_answer(&early).unwrap();
        a.replace_answer(&answer).unwrap();
        let later = a.now + Duration::from_millis(100);
        a.handle_timeout(later);
        let sent: Vec<_> = std::iter::from_fn(|| a.poll_transmit()).collect();
        assert!(!sent.is_empty());
        assert!(
            sent.iter()
                .all(|t| t.destination == SocketAddr::from(([127, 0, 0, 1], 40014))),
            "{:?}",
            sent.iter().map(|t| t.destination).collect::<Vec<_>>()
        );
    }
}
