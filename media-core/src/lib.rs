//! WebRTC media for sansip calls.
//!
//! - [`MediaAgent`] (feature `rtc`, on by default): the sans-IO composite of a
//!   [`UserAgent`](sansip_core::ua::UserAgent) and one str0m [`RtcSession`] per call —
//!   ICE, DTLS-SRTP, RTP — or, for trunks and desk phones, plain RTP and SDES-SRTP on our
//!   own RTP session; with audio (G.711 written here, Opus in pure Rust or through
//!   libopus) behind a jitter buffer, RFC 4733 DTMF, statistics, and video as pre-encoded
//!   frames.
//! - [`sdp`]: the glue that makes real SIP peers' SDP fit str0m and str0m's answers fit
//!   RFC 3264.
//! - [`audio`] and [`video`]: frames, codecs, sources and sinks (tones, WAV, IVF).
//! - [`driver`]: the one runtime-independent driver loop, its transports, and the async
//!   `Phone`/`Call`/`SimpleUser` API that `sansip-tokio` and `sansip-smol` share.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use sansip_core as core;

pub mod audio;
mod config;
pub mod driver;
mod ice_server;
pub mod sdp;
mod stats;
#[cfg(test)]
mod test_clock;
pub mod video;

#[cfg(feature = "rtc")]
mod agent;
#[cfg(feature = "rtc")]
mod dtls;
#[cfg(feature = "rtc")]
mod rtp;
#[cfg(feature = "rtc")]
mod session;
#[cfg(feature = "rtc")]
pub mod stun;
#[cfg(feature = "rtc")]
pub mod turn;

pub use config::{DtmfMethod, MediaConfig, MediaProfile};
pub use ice_server::{IceScheme, IceServer, IceUrl, IceUrlError};
pub use stats::{
    MediaEvent, MediaFailure, MediaStats, MediaTransmit, StreamId, StreamOutput, is_media,
};

#[cfg(feature = "rtc")]
pub use agent::MediaAgent;
#[cfg(feature = "rtc")]
pub use session::{MediaError, RtcSession, SessionTemplate};
