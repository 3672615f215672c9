//! Per-call media statistics and media events.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use sansip_core::session::CallHandle;

use crate::audio::AudioCodec;

/// What a call's media did, counted by us (packets and bytes) and reported by RTCP (loss,
/// jitter, round-trip time).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MediaStats {
    /// Audio RTP packets we sent.
    pub packets_sent: u64,
    /// Their payload bytes.
    pub bytes_sent: u64,
    /// Audio RTP packets we received and decoded.
    pub packets_received: u64,
    /// Their payload bytes.
    pub bytes_received: u64,
    /// Video frames sent and received.
    pub video_frames_sent: u64,
    /// Video frames received.
    pub video_frames_received: u64,
    /// Keyframe requests (PLI, FIR) the peer sent us.
    pub video_keyframe_requests: u64,
    /// Received audio frames the jitter buffer had to conceal (lost, or too late).
    pub concealed: u64,
    /// Audio packets that came too late to be played.
    pub late: u64,
    /// RFC 4733 tones sent and received.
    pub dtmf_sent: u64,
    /// RFC 4733 tones received.
    pub dtmf_received: u64,
    /// Fraction of the peer's packets lost on the way to us, from our RTCP receiver
    /// reports.
    pub loss: Option<f32>,
    /// Fraction of our packets lost on the way to the peer, from its receiver reports.
    pub remote_loss: Option<f32>,
    /// Interarrival jitter of what we receive.
    pub jitter: Option<Duration>,
    /// Round-trip time, from RTCP.
    pub rtt: Option<Duration>,
    /// The codec we send with.
    pub codec: Option<AudioCodec>,
    /// Where our media goes since ICE connected: the remote address of the nominated
    /// candidate pair (a server-reflexive one when the peer sits behind a NAT).
    pub remote: Option<SocketAddr>,
}

/// Something a call's media did.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MediaEvent {
    /// ICE and DTLS are up: media flows from now on.
    Connected {
        /// Which call.
        call: CallHandle,
    },
    /// ICE lost the peer (or never found it).
    Disconnected {
        /// Which call.
        call: CallHandle,
    },
    /// The media of a call never connected (see [`MediaFailure`]); with
    /// [`crate::MediaConfig::end_call_on_failure`] the call ends too, with
    /// [`EndCause::MediaFailed`](sansip_core::session::EndCause::MediaFailed).
    Failed {
        /// Which call.
        call: CallHandle,
        /// What went wrong.
        failure: MediaFailure,
    },
    /// The peer asked for a video keyframe (PLI or FIR). A live video source should send
    /// one; a file source is answered by the session itself (it re-sends the last one).
    KeyframeRequested {
        /// Which call.
        call: CallHandle,
    },
    /// A call ended; its media's totals.
    Ended {
        /// Which call.
        call: CallHandle,
        /// The totals.
        stats: MediaStats,
    },
}

/// Why a call's media failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MediaFailure {
    /// ICE and DTLS did not connect within [`crate::MediaConfig::connect_timeout`] of the
    /// offer/answer (the peer is unreachable, or takes nothing we send).
    #[error("media did not connect within {} s", .after.as_secs_f32())]
    NotConnected {
        /// The bound that passed.
        after: Duration,
    },
    /// The peer's description said `a=ice-mismatch` (RFC 8839 §5.4): its ICE found our
    /// default address among none of our candidates and will not run ICE with us.
    #[error("the peer answered a=ice-mismatch")]
    IceMismatch,
}

/// A media datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaTransmit {
    /// The local address to send from (one of the phone's media addresses).
    pub source: SocketAddr,
    /// Where to.
    pub destination: SocketAddr,
    /// The datagram (STUN, DTLS, SRTP or SRTCP).
    pub contents: Bytes,
}

/// A TCP connection the phone asked its driver for: TURN over TCP or TLS (RFC 8656 §3.1)
/// runs the allocation's control and data over one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u32);

/// What the phone asks of its driver's TCP connections ([`crate::MediaAgent::poll_stream`]).
///
/// The driver answers [`StreamOutput::Connect`] with `stream_connected` (the local address)
/// or `stream_closed`, feeds what arrives to `handle_stream` and reports the end with
/// `stream_closed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamOutput {
    /// Open a TCP connection to `server`.
    Connect {
        /// Its name in the messages that follow.
        id: StreamId,
        /// Where to connect.
        server: SocketAddr,
    },
    /// Write `bytes` on the connection (TLS records or TURN framing: opaque to the driver).
    Write {
        /// The connection.
        id: StreamId,
        /// What to write.
        bytes: Bytes,
    },
    /// Close the connection.
    Close {
        /// The connection.
        id: StreamId,
    },
}

/// Whether a datagram is media (STUN, DTLS, RTP, RTCP) rather than SIP: RFC 7983's first
/// byte ranges, none of which a SIP message or keep-alive starts with. For sharing one
/// socket between SIP and media.
pub fn is_media(datagram: &[u8]) -> bool {
    matches!(datagram.first(), Some(0..=3 | 20..=63 | 128..=191))
}

/// Whether a media datagram is STUN (RFC 7983: a first byte of 0 to 3).
#[cfg(feature = "rtc")]
pub(crate) fn is_stun(datagram: &[u8]) -> bool {
    matches!(datagram.first(), Some(0..=3))
}
