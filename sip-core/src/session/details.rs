//! What an application shows of a call, live or ended: who called whom, its SIP Call-ID,
//! when it started, rang, was answered and ended, and why it ended — with the final
//! response that ended it, as the Sinch SDK's call details and error object give them.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use memchr::memmem::Finder;

use super::{CallEnd, CallHandle};
use crate::message::{HeaderName, Response, RetryAfter};

/// Which way a call goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "lowercase")
)]
pub enum CallDirection {
    /// We placed it.
    Outgoing,
    /// The peer did.
    Incoming,
}

/// Where a call stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize),
    serde(rename_all = "lowercase")
)]
pub enum CallState {
    /// Placed (or received) and not yet ringing.
    Initiating,
    /// Ringing, or with early media.
    Progressing,
    /// Answered.
    Established,
    /// Over.
    Ended,
}

/// The final response that ended a call, whole: its status and reason phrase, the
/// Warning (RFC 3261 §20.43) and Retry-After (§20.33) that explain it, and every header.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct FinalResponse {
    /// 4xx, 5xx, 6xx (or a 3xx not followed).
    pub status: u16,
    /// Its reason phrase.
    pub reason: String,
    /// Its Warning header, as received.
    pub warning: Option<String>,
    /// Its Retry-After, in seconds.
    pub retry_after: Option<u32>,
    /// Every header, name and value as received.
    pub headers: Vec<(String, String)>,
}

impl FinalResponse {
    pub(crate) fn of(resp: &Response) -> Self {
        let h = resp.headers();
        Self {
            status: resp.status().code(),
            reason: resp.status().reason().to_string(),
            warning: h.get(HeaderName::Warning).map(str::to_string),
            retry_after: h
                .get(HeaderName::RetryAfter)
                .and_then(|v| RetryAfter::parse(v).ok())
                .map(|r| r.seconds),
            headers: h
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }
}

/// One call as the application sees it, live ([`UserAgent::call_details`]) or ended (and
/// kept in [`UserAgent::call_history`]).
///
/// [`UserAgent::call_details`]: crate::ua::UserAgent::call_details
/// [`UserAgent::call_history`]: crate::ua::UserAgent::call_history
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallDetails {
    /// Its handle.
    pub call: CallHandle,
    /// Which way it went.
    pub direction: CallDirection,
    /// The SIP Call-ID.
    pub call_id: String,
    /// Us, as the call named us (From of our INVITE, To of the peer's), without tag.
    pub local: String,
    /// The far end: its P-Asserted-Identity when a trusted proxy gave one (RFC 3325), else
    /// how it named itself (To of the 2xx, From of its INVITE), else whom we called.
    pub remote: String,
    /// Whether `remote` is an asserted identity.
    pub asserted: bool,
    /// When it was placed or received.
    pub started: Instant,
    /// When it first rang or had early media.
    pub progressed: Option<Instant>,
    /// When it was answered.
    pub established: Option<Instant>,
    /// When it ended (for the application: the RFC's lingering is not counted).
    pub ended: Option<Instant>,
    /// Why it ended, who ended it, and the final response that did.
    pub end: Option<CallEnd>,
}

impl CallDetails {
    /// Where it stands.
    pub fn state(&self) -> CallState {
        if self.ended.is_some() {
            CallState::Ended
        } else if self.established.is_some() {
            CallState::Established
        } else if self.progressed.is_some() {
            CallState::Progressing
        } else {
            CallState::Initiating
        }
    }

    /// How long it was (or has been, at `now`) established: zero if never answered.
    pub fn duration(&self, now: Instant) -> Duration {
        match self.established {
            Some(at) => self.ended.unwrap_or(now).saturating_duration_since(at),
            None => Duration::ZERO,
        }
    }
}

/// The instants a session records for its details.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Times {
    pub(crate) started: Instant,
    pub(crate) progressed: Option<Instant>,
    pub(crate) established: Option<Instant>,
}

impl Times {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            started: now,
            progressed: None,
            established: None,
        }
    }

    pub(crate) fn progress(&mut self, now: Instant) {
        self.progressed.get_or_insert(now);
    }

    pub(crate) fn establish(&mut self, now: Instant) {
        self.established.get_or_insert(now);
    }
}

/// A name-addr or addr-spec without its tag parameter.
pub(crate) fn without_tag(value: &str) -> String {
    // Header parameters follow the `>` of a name-addr (before it, `;tag=` would be a URI
    // parameter). Every call's details strip two tags: find the usual `;tag=` by a plain
    // search, and leave odd spellings (`; TAG = x`) to the parameter parser.
    static TAG: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b";tag="));
    let b = value.as_bytes();
    let params = memchr::memrchr(b'>', b).map_or(0, |i| i + 1);
    let found = TAG.find(&b[params..]).map(|i| {
        let start = params + i;
        let end = memchr::memchr(b';', &b[start + 1..]).map_or(value.len(), |j| start + 1 + j);
        (start, end)
    });
    let span = found.or_else(|| {
        let tag = crate::message::tag_param(value).ok().flatten()?;
        let at = (tag.as_ptr() as usize).checked_sub(value.as_ptr() as usize)?;
        Some((value.get(..at)?.rfind(';')?, at + tag.len()))
    });
    match span {
        Some((start, end)) => {
            let mut out = String::with_capacity(value.len());
            out.push_str(&value[..start]);
            out.push_str(&value[end..]);
            out
        }
        None => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_goes_and_the_rest_stays() {
        assert_eq!(
            without_tag("\"Bob\" <sip:bob@b.example>;tag=xy;x=1"),
            "\"Bob\" <sip:bob@b.example>;x=1"
        );
        assert_eq!(without_tag("sip:bob@b.example"), "sip:bob@b.example");
        assert_eq!(without_tag("<sip:b@x;tag=u>;tag=h"), "<sip:b@x;tag=u>");
        assert_eq!(without_tag("sip:b@x ; TAG = h ;y"), "sip:b@x  ;y");
        assert_eq!(
            without_tag("\"a;tag=q\" <sip:b@x>"),
            "\"a;tag=q\" <sip:b@x>"
        );
    }
}
