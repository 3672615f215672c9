//! What a phone's media offers and how it behaves.

use std::time::Duration;

use crate::audio::{AudioCodec, Ringback};
use crate::ice_server::IceServer;

/// How DTMF goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DtmfMethod {
    /// RFC 4733 telephone-events in the RTP stream when the call negotiated them, else SIP
    /// INFO.
    #[default]
    Auto,
    /// Always RFC 4733 (tones fail with an error when the call did not negotiate it).
    Rfc4733,
    /// Always SIP INFO (`application/dtmf-relay`), which every PBX and SIP.js understand.
    Info,
}

/// How a phone's own offers carry audio. The answer to a peer's offer follows that offer,
/// whatever this says: a phone set for WebRTC still answers a trunk's `RTP/AVP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MediaProfile {
    /// `UDP/TLS/RTP/SAVPF` with ICE and DTLS-SRTP: browsers, SIP.js, WebRTC gateways.
    #[default]
    WebRtc,
    /// `RTP/SAVP` keyed by SDES (`a=crypto`, RFC 4568): PBXs and phones that do SRTP
    /// without DTLS. Keys travel in the SDP, so use it over TLS.
    Sdes,
    /// Plain `RTP/AVP` (RFC 3551): trunks, carriers and most desk phones.
    Plain,
}

/// The media side of a phone: codecs, video, DTMF, statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaConfig {
    /// Audio codecs in order of preference. Codecs this build lacks are skipped.
    pub audio_codecs: Vec<AudioCodec>,
    /// Offer and accept RFC 4733 telephone-events (0-16).
    pub telephone_event: bool,
    /// Offer and accept video (VP8, H264) as pre-encoded frames.
    pub video: bool,
    /// How our offers carry audio (the answers to peers' offers follow the offer).
    pub offer_profile: MediaProfile,
    /// How [`crate::MediaAgent::send_dtmf`] sends.
    pub dtmf: DtmfMethod,
    /// How long each RFC 4733 tone lasts.
    pub dtmf_duration: Duration,
    /// The pause between RFC 4733 tones (at least 50 ms, RFC 4733 §2.5.1.4).
    pub dtmf_gap: Duration,
    /// How often statistics are updated: str0m's reports on WebRTC calls, and the RTCP
    /// report interval of plain RTP calls (RFC 3550's reduced minimum; at least 100 ms).
    pub stats_interval: Duration,
    /// How long ICE and DTLS may take to connect after an offer/answer before
    /// [`crate::MediaEvent::Failed`] says the media failed.
    pub connect_timeout: Duration,
    /// STUN and TURN servers, as SIP.js's `iceServers`. The async phone resolves the
    /// `stun:` ones into [`crate::driver::PhoneConfig::stun_servers`] and the `turn:` and
    /// `turns:` ones (UDP, `?transport=tcp`, TLS) into `turn_servers`; a sans-IO
    /// [`crate::MediaAgent`] takes them through `set_stun_servers` and `set_turn_servers`.
    /// `stuns:` is not supported and is skipped with a warning. Plain RTP calls announce
    /// the server-reflexive address when there is one; they do not use relays.
    pub ice_servers: Vec<IceServer>,
    /// Hang up a call whose media failed (BYE, or CANCEL while it rings), ending it with
    /// [`EndCause::MediaFailed`](sansip_core::session::EndCause::MediaFailed). Off by
    /// default: the event alone lets the application decide.
    pub end_call_on_failure: bool,
    /// Play this ringback tone into our calls' sinks while the far end rings without
    /// early media (a 180, or a 183 without a description), until it answers, sends
    /// early media, or the call ends. `None` (the default) leaves it to the application.
    pub ringback: Option<Ringback>,
    /// Accept a transfer the peer asks of a call (RFC 3515 REFER) by placing the new call
    /// at once, and answer an incoming call that replaces one of ours (RFC 3891, the
    /// target of an attended transfer) without ringing, as desk phones do (default on);
    /// off, the application answers
    /// [`Event::TransferRequested`](sansip_core::ua::Event::TransferRequested) and such
    /// calls itself.
    pub accept_transfers: bool,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            audio_codecs: vec![
                AudioCodec::Opus,
                AudioCodec::G722,
                AudioCodec::Pcmu,
                AudioCodec::Pcma,
            ],
            telephone_event: true,
            video: false,
            offer_profile: MediaProfile::WebRtc,
            dtmf: DtmfMethod::Auto,
            dtmf_duration: Duration::from_millis(100),
            dtmf_gap: Duration::from_millis(100),
            stats_interval: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(10),
            ice_servers: Vec::new(),
            end_call_on_failure: false,
            ringback: None,
            accept_transfers: true,
        }
    }
}
