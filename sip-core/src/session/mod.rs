//! INVITE sessions (RFC 3261 §13–15, RFC 3264, RFC 6337): the pieces the user agent's
//! calls are made of.
//!
//! The signalling core treats session descriptions as opaque bytes produced and consumed by
//! an [`SdpHandler`] — in the spirit of SIP.js's SessionDescriptionHandler — except for the
//! direction attributes, which the hold logic decides ([`HoldState`]) and can rewrite
//! ([`sdp::rewrite_directions`]). `sansip-media` implements the handler over str0m; the
//! simulator, the tests and signalling-only programs use [`FakeSdp`], which negotiates
//! honestly but has no media behind it.
//!
//! The INVITE usage itself (offer/answer with rollback, 100/180/183, CANCEL, BYE,
//! re-INVITE and glare) is a machine of its own, `invite::Session`, which the
//! [`UserAgent`](crate::ua::UserAgent) drives: it owns the transactions and flows every call
//! uses, routes to a session what is its, and carries out what the session asks. The
//! application's commands are the user agent's `call`, `answer`, `hold`….

mod cause;
mod details;
mod direction;
pub mod dtmf;
pub(crate) mod invite;
pub mod sdp;

mod fake;

pub use cause::{CallEnd, EndCause, Originator};
pub use details::{CallDetails, CallDirection, CallState, FinalResponse};
pub use direction::{Direction, HoldState};
pub use fake::FakeSdp;

use std::fmt;

use bytes::Bytes;

/// A call's handle, unique for the life of its [`UserAgent`](crate::ua::UserAgent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallHandle(pub(crate) u64);

impl fmt::Display for CallHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call{}", self.0)
    }
}

/// Why a session description could not be made or taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// The peer's description asks for what we cannot do (no common codec, plain RTP where
    /// we need DTLS-SRTP, …): answer 488 with this as the Warning text (RFC 3261 §21.4.26).
    #[error("incompatible sdp: {0}")]
    Incompatible(String),
    /// The body is not a session description.
    #[error("malformed sdp: {0}")]
    Malformed(String),
}

/// Produces and consumes session descriptions for one call (RFC 3264 offer/answer).
///
/// Calls come in offer/answer order: `create_offer` then `accept_answer` (or `rollback`
/// when the offer was refused), or `accept_offer` alone. `direction` is what the hold logic
/// decided for every active media section; the handler writes it and makes its media
/// follow it, whatever its own defaults.
pub trait SdpHandler {
    /// Our offer for a new session or an update.
    fn create_offer(&mut self, direction: Direction) -> Result<Bytes, SdpError>;
    /// Takes the peer's offer and returns our answer.
    fn accept_offer(&mut self, offer: &[u8], direction: Direction) -> Result<Bytes, SdpError>;
    /// Takes the peer's answer to our last offer.
    fn accept_answer(&mut self, answer: &[u8]) -> Result<(), SdpError>;
    /// Our last offer was refused (488, 491, a failed re-INVITE): return to the state
    /// before it (RFC 3264 §8, RFC 6337 §3.3).
    fn rollback(&mut self);
    /// A forked call (RFC 3261 §13.2.2.4, RFC 3960): one early dialog's answer was taken
    /// for early media, and another answers the call with this one. The media must follow
    /// the dialog that answered; a handler that cannot move it refuses, and the call ends
    /// with [`EndCause::IncompatibleSdp`].
    fn replace_answer(&mut self, answer: &[u8]) -> Result<(), SdpError> {
        let _ = answer;
        Err(SdpError::Incompatible(
            "the media cannot move to another fork".into(),
        ))
    }
}

/// The handler of a user agent without media: every offer it is asked for or given is
/// refused as incompatible, so its calls fail with [`EndCause::IncompatibleSdp`] and
/// incoming ones are best declined. For signalling-only use (MESSAGE bots, registration
/// monitors), where calls are not the point.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoMedia;

impl SdpHandler for NoMedia {
    fn create_offer(&mut self, _: Direction) -> Result<Bytes, SdpError> {
        Err(SdpError::Incompatible("no media configured".into()))
    }
    fn accept_offer(&mut self, _: &[u8], _: Direction) -> Result<Bytes, SdpError> {
        Err(SdpError::Incompatible("no media configured".into()))
    }
    fn accept_answer(&mut self, _: &[u8]) -> Result<(), SdpError> {
        Err(SdpError::Incompatible("no media configured".into()))
    }
    fn rollback(&mut self) {}
}
