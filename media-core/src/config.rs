//! What a phone's media offers and how it behaves.

use std::time::Duration;

use crate::audio::AudioCodec;
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

/// The media side of a phone: codecs, video, DTMF, statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaConfig {
    /// Audio codecs in order of preference. Codecs this build lacks are skipped.
    pub audio_codecs: Vec<AudioCodec>,
    /// Offer and accept RFC 4733 telephone-events (0-16).
    pub telephone_event: bool,
    /// Offer and accept video (VP8, H264) as pre-encoded frames.
    pub video: bool,
    /// How [`crate::MediaAgent::send_dtmf`] sends.
    pub dtmf: DtmfMethod,
    /// How long each RFC 4733 tone lasts.
    pub dtmf_duration: Duration,
    /// The pause between RFC 4733 tones (at least 50 ms, RFC 4733 §2.5.1.4).
    pub dtmf_gap: Duration,
    /// How often str0m reports RTCP statistics.
    pub stats_interval: Duration,
    /// How long ICE and DTLS may take to connect after an offer/answer before
    /// [`crate::MediaEvent::Failed`] says the media failed.
    pub connect_timeout: Duration,
    /// STUN (and, later, TURN) servers, as SIP.js's `iceServers`. The async phone resolves
    /// the `stun:` ones into [`crate::driver::PhoneConfig::stun_servers`]; a sans-IO
    /// [`crate::MediaAgent`] takes addresses through `set_stun_servers`. TURN is not
    /// supported yet: `turn:`/`turns:` URLs are skipped with a warning.
    pub ice_servers: Vec<IceServer>,
    /// Hang up a call whose media failed (BYE, or CANCEL while it rings), ending it with
    /// [`EndCause::MediaFailed`](sansip_core::session::EndCause::MediaFailed). Off by
    /// default: the event alone lets the application decide.
    pub end_call_on_failure: bool,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            audio_codecs: vec![AudioCodec::Opus, AudioCodec::Pcmu, AudioCodec::Pcma],
            telephone_event: true,
            video: false,
            dtmf: DtmfMethod::Auto,
            dtmf_duration: Duration::from_millis(100),
            dtmf_gap: Duration::from_millis(100),
            stats_interval: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(10),
            ice_servers: Vec::new(),
            end_call_on_failure: false,
        }
    }
}
