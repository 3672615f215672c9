//! What the user agent tells the application.

use std::time::Duration;

use bytes::Bytes;

use crate::registration::RegistrationCause;

/// The handle of an out-of-dialog request sent with
/// [`UserAgent::request`](super::UserAgent::request) or
/// [`UserAgent::message`](super::UserAgent::message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub(crate) u64);

/// News for the application, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Registered for `expires` seconds (refreshed by itself before then).
    Registered {
        /// Granted expiry in seconds.
        expires: u32,
        /// The public GRUU the registrar assigned, if any (RFC 5627).
        gruu: Option<String>,
    },
    /// No longer registered.
    Unregistered {
        /// Why.
        cause: RegistrationCause,
    },
    /// A REGISTER failed; `retry_in` says when it is tried again, if ever.
    RegistrationFailed {
        /// Why.
        cause: RegistrationCause,
        /// When the next attempt goes out by itself.
        retry_in: Option<Duration>,
    },
    /// A MESSAGE arrived (it has been answered 200).
    MessageReceived {
        /// The From header as received.
        from: String,
        /// Its Content-Type.
        content_type: String,
        /// The body.
        body: Bytes,
    },
    /// An out-of-dialog request got its final response, or failed: 408 after a timeout,
    /// 503 when the flow failed (RFC 3261 §8.1.3.1).
    RequestCompleted {
        /// Which request.
        id: RequestId,
        /// The final status.
        status: u16,
        /// Its reason phrase.
        reason: String,
    },
}
