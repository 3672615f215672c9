//! SIP messages: parsing, typed header views and writing (RFC 3261 §7, §20, §25).
//!
//! Reading happens in two layers. [`Message::frame`] reads the start line and builds the
//! header index — spans into the received [`Bytes`], no copies — and never fails because one
//! header value is odd. [`Message::validate`] then checks the headers the transaction and
//! dialog layers depend on, through the typed views ([`Via`], [`NameAddr`], [`CSeq`], …), and
//! names the fault in a [`ParseError`] short enough to be a 400's reason phrase.
//! [`Message::parse`] does both.
//!
//! ```
//! use bytes::Bytes;
//! use sansip_core::message::{HeaderName, Message, Method, StatusCode, Response};
//!
//! let wire = Bytes::from_static(
//!     b"OPTIONS sip:bob@example.com SIP/2.0\r\n\
//!       v: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds\r\n\
//!       Max-Forwards: 70\r\n\
//!       t: <sip:bob@example.com>\r\n\
//!       f: Alice <sip:alice@example.com>;tag=1928301774\r\n\
//!       i: a84b4c76e66710\r\n\
//!       CSeq: 63104 OPTIONS\r\n\
//!       l: 0\r\n\r\n",
//! );
//! let Message::Request(req) = Message::parse(wire).unwrap() else { unreachable!() };
//! assert_eq!(req.method(), &Method::Options);
//! assert_eq!(req.top_via().unwrap().branch(), Some("z9hG4bK776asdhds"));
//!
//! let resp = Response::from_request(&req, StatusCode::new(200));
//! let text = String::from_utf8(resp.to_bytes().to_vec()).unwrap();
//! assert!(text.starts_with("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds\r\n"));
//! ```

mod auth;
mod date;
mod error;
mod event;
mod framing;
mod header;
mod headers;
mod host;
mod keys;
mod lex;
mod limits;
mod lists;
mod media;
mod method;
mod name_addr;
mod params;
mod parse;
mod prebuilt;
mod reason;
mod replaces;
mod retry_after;
mod scalars;
mod session_timer;
mod status;
pub(crate) mod syntax;
pub mod text;
mod uri;
mod validate;
mod via;
mod warning;

// Framing, the header index and the writer.
pub use error::{ParseError, ValueError};
pub use framing::{StreamEvent, StreamFramer};
pub use header::HeaderName;
pub use headers::{Headers, InvalidHeaderName};
pub use limits::Limits;
pub use method::Method;
pub(crate) use prebuilt::Prebuilt;
pub use status::{StatusCode, default_reason};

// Typed views of header values, parsed on demand and borrowing from the message.
pub use auth::{Algorithm, AuthParams, Challenge, Credentials, Qop};
pub use date::Date;
pub use event::{Event, SubscriptionState};
pub use host::Host;
pub(crate) use lex::is_token_str as lex_is_token;
pub use lists::parse_token_list;
pub use media::ContentType;
pub use name_addr::{Contact, NameAddr, ReferTo, tag_param};
pub use params::Params;
pub use reason::Reason;
pub use replaces::Replaces;
pub use retry_after::RetryAfter;
pub use scalars::{
    CSeq, ContentLength, Expires, MaxForwards, MinExpires, MinSe, RAck, RSeq, parse_call_id,
};
pub use session_timer::{Refresher, SessionExpires};
pub use uri::{Scheme, Uri};
pub use via::Via;
pub use warning::Warning;

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use parse::{Completeness, Head, StartLine, parse_head};

/// A SIP request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A request.
    Request(Request),
    /// A response.
    Response(Response),
}

/// A SIP request.
#[derive(Clone)]
pub struct Request {
    method: Method,
    uri: Text,
    /// Shared, as in a framed head (see `parse::Head`): a clone (the transaction's copy of
    /// a request the call keeps too) shares the index, and an edit copies it only then.
    headers: Arc<Headers>,
    body: Bytes,
}

/// A SIP response.
#[derive(Clone)]
pub struct Response {
    status: StatusCode,
    /// Shared, as in a framed head (see `parse::Head`): a clone (the transaction's copy of
    /// a request the call keeps too) shares the index, and an edit copies it only then.
    headers: Arc<Headers>,
    body: Bytes,
}

/// Where the Request-URI's text lives inside the request's [`Headers`] storage.
#[derive(Debug, Clone, Copy)]
enum Text {
    Src(u32, u32),
    Extra(u32, u32),
}

impl Message {
    /// Frames and validates one whole message: a datagram or a WebSocket frame. Bytes past
    /// Content-Length are ignored (RFC 4475 dblreq); without Content-Length the rest of the
    /// datagram is the body.
    pub fn parse(src: Bytes) -> Result<Message, ParseError> {
        Self::parse_with(src, &Limits::default())
    }

    /// [`Message::parse`] with explicit limits.
    pub fn parse_with(src: Bytes, limits: &Limits) -> Result<Message, ParseError> {
        let m = Self::frame(src, limits)?;
        m.validate()?;
        Ok(m)
    }

    /// Reads the start line, the header index and the body of one whole message, checking
    /// only structure: values are not looked at except Content-Length. Use this when a
    /// request that fails [`Message::validate`] must still be answered (the 400 needs its
    /// Via, From, To, Call-ID and CSeq).
    pub fn frame(src: Bytes, limits: &Limits) -> Result<Message, ParseError> {
        if src.len() > limits.max_message_size {
            return Err(ParseError::TooLarge {
                size: src.len(),
                limit: limits.max_message_size,
            });
        }
        let head =
            parse_head(&src, limits, Completeness::Whole)?.ok_or(ParseError::Unterminated)?;
        let available = src.len() - head.body_start;
        let body_len = match parse::content_length(&head.headers)? {
            Some(n) if n > available => {
                return Err(ParseError::BodyTooShort {
                    expected: n,
                    actual: available,
                });
            }
            Some(n) => n,
            None => available,
        };
        let body = src.slice(head.body_start..head.body_start + body_len);
        Ok(Self::from_head_and_body(head, body))
    }

    pub(crate) fn from_head_and_body(head: Head, body: Bytes) -> Message {
        match head.start {
            StartLine::Request {
                method,
                uri_start,
                uri_len,
            } => Message::Request(Request {
                method,
                uri: Text::Src(uri_start, uri_len),
                headers: head.headers,
                body,
            }),
            StartLine::Response { status } => Message::Response(Response {
                status,
                headers: head.headers,
                body,
            }),
        }
    }

    /// Checks the headers the stack relies on; see the module docs.
    pub fn validate(&self) -> Result<(), ParseError> {
        match self {
            Message::Request(r) => r.validate(),
            Message::Response(r) => r.validate(),
        }
    }

    /// What the user agent checks of a message it receives: everything
    /// [`Message::validate`] checks except the addresses inside From and To, of which only the
    /// tags and the bounds are read. The transaction and dialog layers carry those addresses
    /// as text; a layer that needs the URI of one parses it then and answers 400 naming the
    /// header if it does not parse.
    ///
    /// A request's Route and Record-Route are not read here either: the dialog layer reads
    /// the Record-Route when the request creates a dialog, and answers 400 naming the header
    /// before anything is set up. A response has nobody to answer, so its route headers are
    /// checked now and a faulty one is dropped whole.
    ///
    /// The first Contact, which this check parses, is kept (as framing keeps the keys), so
    /// that the dialog layer takes its remote target without parsing it again.
    pub fn validate_for_ua(&mut self) -> Result<(), ParseError> {
        match self {
            Message::Request(r) => {
                r.headers_mut().learn(HeaderName::Contact);
                validate::request(r, validate::Depth::Keys)
            }
            Message::Response(r) => {
                r.headers_mut().learn(HeaderName::Contact);
                validate::response(r, validate::Depth::Tags)
            }
        }
    }

    /// The header lines.
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    /// The body (empty when there is none).
    pub fn body(&self) -> &Bytes {
        match self {
            Message::Request(r) => &r.body,
            Message::Response(r) => &r.body,
        }
    }

    /// The message as wire bytes.
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
}

/// What requests and responses share: headers, body, and the typed getters the transaction
/// and dialog layers use (each a shortcut for the same getter on [`Headers`]).
macro_rules! common_accessors {
    () => {
        /// The header lines.
        pub fn headers(&self) -> &Headers {
            &self.headers
        }

        /// The header lines, for editing.
        pub fn headers_mut(&mut self) -> &mut Headers {
            Arc::make_mut(&mut self.headers)
        }

        /// The body.
        pub fn body(&self) -> &Bytes {
            &self.body
        }

        /// Sets the body and its Content-Type, and keeps Content-Length in step.
        pub fn set_body(&mut self, content_type: &str, body: Bytes) {
            set_body(
                Arc::make_mut(&mut self.headers),
                &mut self.body,
                content_type,
                body,
            );
        }

        /// The top Via.
        pub fn top_via(&self) -> Result<Via<'_>, ParseError> {
            self.headers.top_via()
        }

        /// CSeq.
        pub fn cseq(&self) -> Result<CSeq<'_>, ParseError> {
            self.headers.cseq()
        }

        /// Call-ID.
        pub fn call_id(&self) -> Result<&str, ParseError> {
            self.headers.call_id()
        }

        /// From.
        pub fn from(&self) -> Result<NameAddr<'_>, ParseError> {
            self.headers.from()
        }

        /// To.
        pub fn to(&self) -> Result<NameAddr<'_>, ParseError> {
            self.headers.to()
        }
    };
}
impl Request {
    /// Checks the headers the stack relies on, the Request-URI and the CSeq method (see
    /// [`Message::validate`]).
    pub fn validate(&self) -> Result<(), ParseError> {
        validate::request(self, validate::Depth::Full)
    }

    /// A request with no headers and no body. The caller adds the headers RFC 3261 §8.1.1
    /// requires; [`Request::to_bytes`] adds Content-Length when none is present.
    ///
    /// Line breaks and spaces in `uri` are dropped: they cannot occur in a Request-URI.
    pub fn new(method: Method, uri: &str) -> Request {
        let mut headers = Headers::for_message();
        let (s, l) = store_uri(&mut headers, uri);
        Request {
            method,
            uri: Text::Extra(s, l),
            headers: Arc::new(headers),
            body: Bytes::new(),
        }
    }

    /// A request whose Request-URI and first header lines are `p`'s, copied at once (see
    /// [`Prebuilt`]), with room for `reserve` more bytes of headers.
    pub(crate) fn from_prebuilt(method: Method, p: &Prebuilt, reserve: usize) -> Request {
        Request {
            method,
            uri: Text::Extra(0, p.uri_len),
            headers: Arc::new(Headers::from_prebuilt(p, reserve)),
            body: Bytes::new(),
        }
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The Request-URI as written.
    pub fn uri(&self) -> &str {
        match self.uri {
            Text::Src(s, l) => self.headers.src_text(s, l),
            Text::Extra(s, l) => self.headers.extra_text(s, l),
        }
    }

    /// The header index itself, shared (the application's copy of an INVITE's headers).
    pub(crate) fn shared_headers(&self) -> Arc<Headers> {
        Arc::clone(&self.headers)
    }

    /// Replaces the Request-URI (a proxy retargeting, RFC 3261 §16.5).
    pub fn set_uri(&mut self, uri: &str) {
        let (s, l) = store_uri(Arc::make_mut(&mut self.headers), uri);
        self.uri = Text::Extra(s, l);
    }

    common_accessors!();

    /// The request as wire bytes.
    pub fn to_bytes(&self) -> Bytes {
        let size = self.method.as_str().len()
            + 1
            + self.uri().len()
            + 10
            + rest_len(&self.headers, &self.body);
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(self.method.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.uri().as_bytes());
        out.extend_from_slice(b" SIP/2.0\r\n");
        write_rest(&self.headers, &self.body, &mut out);
        debug_assert_eq!(out.len(), size, "rest_len must match write_rest");
        Bytes::from(out)
    }
}

impl Response {
    /// Checks the headers the stack relies on (see [`Message::validate`]).
    pub fn validate(&self) -> Result<(), ParseError> {
        validate::response(self, validate::Depth::Full)
    }

    /// A response with no headers and no body.
    pub fn new(status: StatusCode) -> Response {
        Response {
            status,
            headers: Arc::new(Headers::for_message()),
            body: Bytes::new(),
        }
    }

    /// A response to `req` per RFC 3261 §8.2.6.2: Via (every value, in order), From, To,
    /// Call-ID and CSeq copied; the To tag, when the UAS adds one, via
    /// [`Response::set_to_tag`].
    pub fn from_request(req: &Request, status: StatusCode) -> Response {
        let mut h = Headers::for_message();
        for name in [
            HeaderName::Via,
            HeaderName::From,
            HeaderName::To,
            HeaderName::CallId,
            HeaderName::CSeq,
        ] {
            h.copy_from(&req.headers, name);
        }
        // RFC 3261 §8.2.6.1: a 100 echoes the request's Timestamp.
        if status.code() == 100 {
            h.copy_from(&req.headers, HeaderName::Timestamp);
        }
        Response {
            status,
            headers: Arc::new(h),
            body: Bytes::new(),
        }
    }

    /// Adds `;tag=` to the To header unless it already has a tag (RFC 3261 §8.2.6.2).
    pub fn set_to_tag(&mut self, tag: &str) {
        let Some(to) = self.headers.get(HeaderName::To) else {
            return;
        };
        // The request's To key came along with its line (see `Headers::copy_from`).
        if self.headers.to_tag().is_ok_and(|t| t.is_some()) {
            return;
        }
        let mut value = String::with_capacity(to.len() + 5 + tag.len());
        value.push_str(to);
        value.push_str(";tag=");
        value.push_str(tag);
        self.headers_mut().set(HeaderName::To, &value);
    }

    /// The status code and reason phrase.
    pub fn status(&self) -> &StatusCode {
        &self.status
    }

    common_accessors!();

    /// The response as wire bytes.
    pub fn to_bytes(&self) -> Bytes {
        let size = 12 + self.status.reason().len() + 2 + rest_len(&self.headers, &self.body);
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(b"SIP/2.0 ");
        let code = self.status.code();
        out.extend_from_slice(&[
            b'0' + (code / 100) as u8,
            b'0' + (code / 10 % 10) as u8,
            b'0' + (code % 10) as u8,
            b' ',
        ]);
        out.extend_from_slice(self.status.reason().as_bytes());
        out.extend_from_slice(b"\r\n");
        write_rest(&self.headers, &self.body, &mut out);
        debug_assert_eq!(out.len(), size, "rest_len must match write_rest");
        Bytes::from(out)
    }
}

/// Stores a Request-URI without the line breaks and spaces it cannot contain.
fn store_uri(headers: &mut Headers, uri: &str) -> (u32, u32) {
    if uri.bytes().any(|b| b.is_ascii_whitespace()) || !uri.is_ascii() {
        let clean: String = uri.chars().filter(|c| !c.is_whitespace()).collect();
        headers.store_text(&clean)
    } else {
        headers.store_text(uri)
    }
}

fn set_body(headers: &mut Headers, slot: &mut Bytes, content_type: &str, body: Bytes) {
    if body.is_empty() {
        headers.remove(HeaderName::ContentType);
    } else {
        headers.set(HeaderName::ContentType, content_type);
    }
    headers.set(
        HeaderName::ContentLength,
        length(&body, &mut itoa::Buffer::new()),
    );
    *slot = body;
}

/// A body's length as Content-Length writes it.
fn length<'d>(body: &Bytes, digits: &'d mut itoa::Buffer) -> &'d str {
    digits.format(body.len())
}

/// The exact size [`write_rest`] writes. Sizing the buffer exactly lets `Bytes::from(Vec)`
/// take it over without reallocating, so writing a message costs one allocation.
fn rest_len(headers: &Headers, body: &Bytes) -> usize {
    let content_length = if headers.contains(HeaderName::ContentLength) {
        0
    } else {
        "Content-Length: \r\n".len() + length(body, &mut itoa::Buffer::new()).len()
    };
    headers.written_len() + content_length + 2 + body.len()
}

fn write_rest(headers: &Headers, body: &Bytes, out: &mut Vec<u8>) {
    headers.write_to(out);
    if !headers.contains(HeaderName::ContentLength) {
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(length(body, &mut itoa::Buffer::new()).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("uri", &self.uri())
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl PartialEq for Request {
    fn eq(&self, other: &Self) -> bool {
        self.method == other.method
            && self.uri() == other.uri()
            && self.headers == other.headers
            && self.body == other.body
    }
}

impl Eq for Request {}

impl PartialEq for Response {
    fn eq(&self, other: &Self) -> bool {
        self.status == other.status && self.headers == other.headers && self.body == other.body
    }
}

impl Eq for Response {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fuzz finding (message_parse): a datagram may omit Content-Length; writing it back adds
    /// exactly that header and changes nothing else.
    #[test]
    fn a_datagram_without_content_length_writes_back_with_one() {
        let m = Message::frame(Bytes::from_static(b"E m SIP/2.0\n\n"), &Limits::default()).unwrap();
        assert!(m.headers().is_empty());
        assert_eq!(
            &m.to_bytes()[..],
            b"E m SIP/2.0\r\nContent-Length: 0\r\n\r\n"
        );
        let again = Message::frame(m.to_bytes(), &Limits::default()).unwrap();
        assert_eq!(again.headers().get(HeaderName::ContentLength), Some("0"));
        assert_eq!(again.headers().len(), 1);
    }

    /// A response takes the request's keys with the lines it copies; they read as a fresh
    /// parse of the response's own lines does, and an edited To is read again.
    #[test]
    fn a_response_reads_the_keys_it_copied_as_its_own_lines_say() {
        // The compact From is written out, not spliced, and loses the form feed framing
        // kept: its key must be read from the new text, not taken along.
        let wire = "INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b\r\n\
f: \x0c<sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c@h\r\nCSeq: 7 INVITE\r\n\r\n";
        let framed = Message::frame(Bytes::from_static(wire.as_bytes()), &Limits::default());
        let Message::Request(req) = framed.unwrap() else {
            panic!("a request")
        };
        let mut ok = Response::from_request(&req, StatusCode::new(200));
        let fresh = |r: &Response| {
            let mut h = Headers::new();
            for (name, value) in r.headers().iter() {
                h.push_named(name, value).unwrap();
            }
            h
        };
        let check = |r: &Response| {
            let (h, f) = (r.headers(), fresh(r));
            assert_eq!(h.top_via().unwrap(), f.top_via().unwrap());
            assert_eq!(h.cseq().unwrap(), f.cseq().unwrap());
            assert_eq!(h.call_id().unwrap(), f.call_id().unwrap());
            assert_eq!(h.from_tag().unwrap(), f.from_tag().unwrap());
            assert_eq!(h.to_tag().unwrap(), f.to_tag().unwrap());
        };
        check(&ok);
        assert_eq!(ok.headers().to_tag().unwrap(), None);
        ok.set_to_tag("x9");
        check(&ok);
        assert_eq!(ok.headers().to_tag().unwrap(), Some("x9"));
    }

    #[test]
    fn responses_copy_the_request_headers_rfc_3261_8_2_6() {
        let wire = "INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP b;branch=z9hG4bK2\r\n\
From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nTimestamp: 54\r\nSubject: x\r\nContent-Length: 0\r\n\r\n";
        let Message::Request(req) = Message::parse(Bytes::from_static(wire.as_bytes())).unwrap()
        else {
            panic!("a request")
        };
        let mut ok = Response::from_request(&req, StatusCode::new(200));
        ok.set_to_tag("x9");
        ok.set_to_tag("ignored: a tag is only added once");
        let h = ok.headers();
        assert_eq!(h.get_all(HeaderName::Via).count(), 2);
        assert_eq!(h.get(HeaderName::To), Some("<sip:b@h>;tag=x9"));
        assert!(
            !h.contains(HeaderName::Timestamp),
            "only a 100 echoes Timestamp"
        );
        assert!(!h.contains(HeaderName::Subject));
        let trying = Response::from_request(&req, StatusCode::new(100));
        assert_eq!(trying.headers().get(HeaderName::Timestamp), Some("54"));
    }
}
