//! Why a message could not be read.
//!
//! One opaque "malformed" would not do: a request that fails to parse must still be answered
//! with a 400 whose reason phrase names the fault (RFC 3261 §21.4.1, RFC 4475 §3.1.2), a
//! response is dropped and counted, and a stream transport must know whether it can resync.
//! So each variant says what was wrong and where, and [`ParseError::status`] maps it to the
//! wire in exactly one place.

/// Why a header value did not parse: what was expected and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {offset}")]
pub struct ValueError {
    /// Short lowercase description, fit for a reason phrase (e.g. "invalid host").
    pub what: &'static str,
    /// Byte offset inside the header value where the fault was found.
    pub offset: usize,
}

impl ValueError {
    pub(crate) const fn new(what: &'static str, offset: usize) -> Self {
        Self { what, offset }
    }
}

/// A message that cannot be read or does not meet RFC 3261's syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// A datagram or frame ends before the empty line that closes the header section.
    #[error("unterminated header section")]
    Unterminated,
    /// The message is larger than [`Limits::max_message_size`](super::Limits). Answered with 513.
    #[error("message too large ({size} bytes, limit {limit})")]
    TooLarge {
        /// Size seen so far.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// More header lines than [`Limits::max_headers`](super::Limits).
    #[error("too many headers (limit {limit})")]
    TooManyHeaders {
        /// The configured limit.
        limit: usize,
    },
    /// A header line longer than [`Limits::max_line_length`](super::Limits).
    #[error("header line too long at byte {offset}")]
    LineTooLong {
        /// Where the line starts in the message.
        offset: usize,
    },
    /// The first line is neither `Method SP Request-URI SP SIP/2.0` nor `SIP/2.0 SP code SP reason`.
    #[error("bad start line: {what}")]
    StartLine {
        /// What is wrong with it.
        what: &'static str,
    },
    /// The protocol version is not SIP/2.0. A request gets 505 (RFC 3261 §21.5.6).
    #[error("unsupported version")]
    Version,
    /// The Request-URI does not parse.
    #[error("bad request-uri: {0}")]
    RequestUri(ValueError),
    /// A line in the header section has no `name:` before its value.
    #[error("malformed header line at byte {offset}")]
    HeaderLine {
        /// Where the line starts in the message.
        offset: usize,
    },
    /// A header the stack depends on has a value that does not parse.
    #[error("bad {name} header: {error}")]
    Header {
        /// The header's canonical name.
        name: &'static str,
        /// What is wrong with the value.
        error: ValueError,
    },
    /// A header the stack needs is missing.
    #[error("missing {name} header")]
    Missing {
        /// The header's canonical name.
        name: &'static str,
    },
    /// A header that may appear once appears several times (RFC 3261 §7.3.1).
    #[error("repeated {name} header")]
    Repeated {
        /// The header's canonical name.
        name: &'static str,
    },
    /// CSeq's method differs from the request method (RFC 3261 §8.1.1.5, RFC 4475 mismatch01).
    #[error("cseq method does not match request method")]
    CSeqMethod,
    /// Content-Length promises more body than the datagram holds (RFC 4475 clerr).
    #[error("body shorter than content-length ({expected} expected, {actual} present)")]
    BodyTooShort {
        /// What Content-Length says.
        expected: usize,
        /// What arrived.
        actual: usize,
    },
    /// A stream transport needs Content-Length to find the end of the message (RFC 3261 §18.3).
    #[error("missing content-length on a stream transport")]
    NoContentLength,
}

impl ParseError {
    /// The status code a UAS answers a request with when it failed this way.
    ///
    /// Most faults are a 400 whose reason phrase is this error's `Display` text; a wrong
    /// version is 505 and an oversized message 513 (RFC 3261 §21.4.1, §21.5.6, §21.4.25).
    pub fn status(&self) -> u16 {
        match self {
            ParseError::Version => 505,
            ParseError::TooLarge { .. } => 513,
            _ => 400,
        }
    }
}
