//! How a call ended, in the terms SIP.js and JsSIP applications already use.

use std::fmt;

use super::FinalResponse;
use crate::message::{HeaderName, Response};

/// Who ended a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Originator {
    /// Our application (hangup, decline, cancel).
    Local,
    /// The peer or a server on the path (BYE, CANCEL, a final error response).
    Remote,
    /// The stack itself (a timeout, a lost connection, an answer it could not use).
    System,
}

impl std::fmt::Display for Originator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Originator::Local => "local",
            Originator::Remote => "remote",
            Originator::System => "system",
        })
    }
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndCause {
    /// An established call was hung up with BYE.
    Bye,
    /// The call was canceled before it was answered (CANCEL, or 487).
    Canceled,
    /// 486 Busy Here or 600 Busy Everywhere.
    Busy,
    /// Declined: 403, 603, or our own decline.
    Rejected,
    /// 3xx: the callee is elsewhere.
    Redirected,
    /// 480, 410 or 430: nobody there to take the call.
    Unavailable,
    /// 404 or 604.
    NotFound,
    /// Not answered in time: our no-answer timer, as caller or callee.
    NoAnswer,
    /// 408, or no final response at all (timer B).
    RequestTimeout,
    /// We answered and the ACK never came (RFC 3261 §13.3.1.4).
    NoAck,
    /// Our credentials were refused, or no challenge could be answered.
    AuthenticationError,
    /// 488 or 606, or a session description we could not take.
    IncompatibleSdp,
    /// The flow carrying the call failed.
    ConnectionError,
    /// The call's media never connected, and the media layer hung up.
    MediaFailed,
    /// Nobody refreshed the session in time (RFC 4028 §10): we sent BYE.
    SessionTimerExpired,
    /// We transferred the peer and the transfer succeeded (RFC 3515): we sent BYE.
    Transferred,
    /// Another call replaced this one (RFC 3891, attended transfer): we sent BYE.
    Replaced,
    /// Any other failure response; the status says which.
    SipFailure,
}

impl EndCause {
    /// The cause a final failure response stands for (the JsSIP mapping, RFC 3261 §21).
    pub fn from_status(status: u16) -> EndCause {
        match status {
            300..=399 => EndCause::Redirected,
            401 | 407 => EndCause::AuthenticationError,
            403 | 603 => EndCause::Rejected,
            404 | 604 => EndCause::NotFound,
            408 => EndCause::RequestTimeout,
            410 | 430 | 480 => EndCause::Unavailable,
            486 | 600 => EndCause::Busy,
            487 => EndCause::Canceled,
            488 | 606 => EndCause::IncompatibleSdp,
            _ => EndCause::SipFailure,
        }
    }

    /// A short name, e.g. `no answer`.
    pub fn as_str(self) -> &'static str {
        match self {
            EndCause::Bye => "bye",
            EndCause::Canceled => "canceled",
            EndCause::Busy => "busy",
            EndCause::Rejected => "rejected",
            EndCause::Redirected => "redirected",
            EndCause::Unavailable => "unavailable",
            EndCause::NotFound => "not found",
            EndCause::NoAnswer => "no answer",
            EndCause::RequestTimeout => "request timeout",
            EndCause::NoAck => "no ack",
            EndCause::AuthenticationError => "authentication error",
            EndCause::IncompatibleSdp => "incompatible sdp",
            EndCause::ConnectionError => "connection error",
            EndCause::MediaFailed => "media failed",
            EndCause::SessionTimerExpired => "session timer expired",
            EndCause::Transferred => "transferred",
            EndCause::Replaced => "replaced",
            EndCause::SipFailure => "sip failure",
        }
    }
}

impl fmt::Display for EndCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The end of a call: why, who, and the SIP that said so.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct CallEnd {
    /// Why.
    pub cause: EndCause,
    /// Who ended it.
    pub originator: Originator,
    /// The final status that ended it, when one did (a failure response, or the status we
    /// declined with).
    pub status: Option<u16>,
    /// The Reason header (RFC 3326) of the BYE, CANCEL or response that ended it, as sent.
    pub reason: Option<String>,
    /// The peer's final response that ended it (a refused or failed call), whole.
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "Option::is_none"))]
    pub response: Option<Box<FinalResponse>>,
}

impl CallEnd {
    pub(crate) fn new(cause: EndCause, originator: Originator) -> Self {
        Self {
            cause,
            originator,
            status: None,
            reason: None,
            response: None,
        }
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// With the final response that ended the call: its status, Reason and the rest.
    pub(crate) fn with_response(self, resp: &Response) -> Self {
        let mut end = self
            .with_status(resp.status().code())
            .with_reason(resp.headers().get(HeaderName::Reason));
        end.response = Some(Box::new(FinalResponse::of(resp)));
        end
    }

    pub(crate) fn with_reason(mut self, reason: Option<&str>) -> Self {
        self.reason = reason.map(str::to_string);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_the_causes_applications_expect() {
        for (status, cause) in [
            (302, EndCause::Redirected),
            (404, EndCause::NotFound),
            (480, EndCause::Unavailable),
            (486, EndCause::Busy),
            (487, EndCause::Canceled),
            (488, EndCause::IncompatibleSdp),
            (603, EndCause::Rejected),
            (500, EndCause::SipFailure),
        ] {
            assert_eq!(EndCause::from_status(status), cause, "{status}");
        }
        assert_eq!(EndCause::NoAnswer.to_string(), "no answer");
    }
}
