//! Message boundaries on byte streams (TCP, TLS): RFC 3261 §18.3 and RFC 5626 keep-alives.
//!
//! A stream carries messages back to back; the only way to find where one ends is the empty
//! line after its headers plus Content-Length, which is therefore mandatory here. Reads may
//! split a message anywhere or carry several.
//!
//! Between messages RFC 5626 §3.5.1 puts keep-alives: the side that opened the connection
//! sends `CRLF CRLF` (a ping) and the accepting side answers `CRLF` (a pong). Which one a
//! `CRLF` is depends on the role, so the framer is told its role: on a connection we opened,
//! every `CRLF` is a pong; on one we accepted, `CRLF CRLF` is a ping and a lone `CRLF` is
//! ignored as RFC 3261 §7.5 allows. Either way the events do not depend on how the bytes
//! were split into reads.

use bytes::{Buf, BytesMut};
use std::sync::LazyLock;

use memchr::memmem::Finder;

use super::parse::{self, Completeness, parse_head};
use super::{Limits, Message, ParseError};

/// What a stream yielded.
#[derive(Debug, Clone, PartialEq, Eq)]
// A message keeps its header index inline so parsing allocates nothing; boxing it here would
// add an allocation per message on every stream, so the size difference is deliberate.
#[allow(clippy::large_enum_variant)]
pub enum StreamEvent {
    /// A whole message, framed but not validated (see [`Message::frame`]).
    Message(Message),
    /// `CRLF CRLF` between messages on an accepted connection: the peer asks for a `CRLF`
    /// pong (RFC 5626 §3.5.1).
    Ping,
    /// A `CRLF` between messages on a connection we opened: the answer to our ping.
    Pong,
}

/// Splits a byte stream into messages.
///
/// After an error the stream cannot be resynchronised: the framer drops what it held and the
/// caller should close the connection (RFC 3261 §18.3).
///
/// ```
/// use sansip_core::message::{StreamEvent, StreamFramer, Limits};
/// let mut f = StreamFramer::accepted(Limits::default());
/// f.push(b"\r\n\r\nOPTIONS sip:a@example.com SIP/2.0\r\nContent-Length: 4\r\n\r\nab");
/// assert_eq!(f.poll(), Some(Ok(StreamEvent::Ping)));
/// assert_eq!(f.poll(), None); // the body is not all here yet
/// f.push(b"cd");
/// let Some(Ok(StreamEvent::Message(m))) = f.poll() else { panic!() };
/// assert_eq!(&m.body()[..], b"abcd");
/// ```
#[derive(Debug)]
pub struct StreamFramer {
    buf: BytesMut,
    limits: Limits,
    /// We accepted the connection: the peer pings us.
    accepted: bool,
    /// A header section already read whose body is still arriving.
    pending: Option<(parse::Head, usize)>,
}

impl StreamFramer {
    /// A framer for a connection we opened: `CRLF`s between messages are pongs.
    pub fn new(limits: Limits) -> Self {
        Self {
            buf: BytesMut::new(),
            limits,
            accepted: false,
            pending: None,
        }
    }

    /// A framer for a connection a peer opened to us: `CRLF CRLF` between messages is a ping.
    pub fn accepted(limits: Limits) -> Self {
        Self {
            accepted: true,
            ..Self::new(limits)
        }
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes held that do not yet form a whole message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next message or keep-alive, `None` when more bytes are needed.
    pub fn poll(&mut self) -> Option<Result<StreamEvent, ParseError>> {
        let r = self.poll_inner();
        if matches!(r, Some(Err(_))) {
            self.buf.clear();
            self.pending = None;
        }
        r
    }

    fn poll_inner(&mut self) -> Option<Result<StreamEvent, ParseError>> {
        if let Some((_, body_len)) = &self.pending {
            if self.buf.len() < *body_len {
                return None;
            }
            let (head, body_len) = self.pending.take()?;
            let body = self.buf.split_to(body_len).freeze();
            return Some(Ok(StreamEvent::Message(Message::from_head_and_body(
                head, body,
            ))));
        }
        // Keep-alives and stray line ends between messages.
        loop {
            if self.buf.starts_with(b"\r\n") {
                if !self.accepted {
                    self.buf.advance(2);
                    return Some(Ok(StreamEvent::Pong));
                }
                if self.buf.starts_with(b"\r\n\r\n") {
                    self.buf.advance(4);
                    return Some(Ok(StreamEvent::Ping));
                }
                if b"\r\n\r".starts_with(&self.buf) {
                    return None; // the rest of a ping may still come
                }
                self.buf.advance(2);
            } else if self.buf.first() == Some(&b'\n') {
                self.buf.advance(1);
            } else {
                break;
            }
        }
        let Some(head_len) = head_end(&self.buf) else {
            if self.buf.len() > self.limits.max_message_size {
                return Some(Err(ParseError::TooLarge {
                    size: self.buf.len(),
                    limit: self.limits.max_message_size,
                }));
            }
            return None;
        };
        let head_src = self.buf.split_to(head_len).freeze();
        let head = match parse_head(&head_src, &self.limits, Completeness::Whole) {
            Ok(Some(h)) => h,
            Ok(None) => return Some(Err(ParseError::Unterminated)),
            Err(e) => return Some(Err(e)),
        };
        let body_len = match parse::content_length(&head.headers) {
            Ok(Some(n)) => n,
            Ok(None) => return Some(Err(ParseError::NoContentLength)),
            Err(e) => return Some(Err(e)),
        };
        if head_len + body_len > self.limits.max_message_size {
            return Some(Err(ParseError::TooLarge {
                size: head_len + body_len,
                limit: self.limits.max_message_size,
            }));
        }
        self.pending = Some((head, body_len));
        self.poll_inner()
    }
}

/// Length of the start line and headers including the empty line, if it has arrived.
///
/// The empty line is the first `LF CRLF` or `LF LF`. Both are found with one vectorised
/// substring search each (the second only before the first's place), not a search per line.
fn head_end(buf: &[u8]) -> Option<usize> {
    static CRLF_LINE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\n\r\n"));
    static LF_LINE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\n\n"));
    let crlf = CRLF_LINE.find(buf);
    let before = crlf.map_or(buf, |at| &buf[..at + 1]);
    match LF_LINE.find(before) {
        Some(lf) => Some(lf + 2),
        None => crlf.map(|at| at + 3),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    /// The empty line found line by line: the oracle for [`head_end`].
    fn head_end_by_lines(buf: &[u8]) -> Option<usize> {
        memchr::memchr_iter(b'\n', buf).find_map(|lf| match buf.get(lf + 1..) {
            Some([b'\n', ..]) => Some(lf + 2),
            Some([b'\r', b'\n', ..]) => Some(lf + 3),
            _ => None,
        })
    }

    #[test]
    fn the_empty_line_is_the_first_of_either_kind() {
        for buf in [
            &b"A\r\nB\r\n\r\nbody\n\n"[..],
            b"A\nB\n\nbody\r\n\r\n",
            b"A\r\nB\n\nx\n\r\n",
            b"A\nB\n\r\n",
            b"A\r\nB\r\n\r",
            b"A\r\nB\r\n",
            b"\n\n",
            b"\n\r\n",
            b"",
            b"\r\n\r\n",
        ] {
            assert_eq!(
                head_end(buf),
                head_end_by_lines(buf),
                "{:?}",
                String::from_utf8_lossy(buf)
            );
        }
    }

    const MSG: &[u8] = b"MESSAGE sip:bob@example.com SIP/2.0\r\nv: SIP/2.0/TCP h;branch=z9hG4bK1\r\nl: 5\r\n\r\nhello";

    fn drain(f: &mut StreamFramer) -> Vec<StreamEvent> {
        std::iter::from_fn(|| f.poll())
            .map(|r| r.unwrap())
            .collect()
    }

    #[test]
    fn every_split_point_yields_the_same_message() {
        for cut in 0..MSG.len() {
            let mut f = StreamFramer::new(Limits::default());
            f.push(&MSG[..cut]);
            let early = drain(&mut f);
            assert!(early.is_empty(), "cut {cut} yielded early");
            f.push(&MSG[cut..]);
            let got = drain(&mut f);
            assert_eq!(got.len(), 1, "cut {cut}");
            let StreamEvent::Message(m) = &got[0] else {
                panic!()
            };
            assert_eq!(&m.body()[..], b"hello");
            assert_eq!(m.to_bytes(), Bytes::from_static(MSG));
        }
    }

    #[test]
    fn several_messages_and_keepalives_in_one_read() {
        let mut f = StreamFramer::accepted(Limits::default());
        let mut data = MSG.to_vec();
        data.extend_from_slice(b"\r\n\r\n");
        data.extend_from_slice(MSG);
        data.extend_from_slice(b"\r\n");
        data.extend_from_slice(MSG);
        f.push(&data);
        let got = drain(&mut f);
        // On an accepted connection a lone CRLF is not a ping: it is skipped.
        assert!(matches!(
            got.as_slice(),
            [
                StreamEvent::Message(_),
                StreamEvent::Ping,
                StreamEvent::Message(_),
                StreamEvent::Message(_)
            ]
        ));
    }

    /// The events must not depend on how the stream was cut into reads (fuzz finding:
    /// a ping split in two read as two pongs).
    #[test]
    fn keepalives_read_the_same_however_the_stream_is_split() {
        for (accepted, stream, want) in [
            (true, &b"\r\n\r\n"[..], vec![StreamEvent::Ping]),
            (
                false,
                &b"\r\n\r\n"[..],
                vec![StreamEvent::Pong, StreamEvent::Pong],
            ),
            (false, &b"\n\r\n"[..], vec![StreamEvent::Pong]),
            (false, &b"\n\r\n\n"[..], vec![StreamEvent::Pong]),
            (true, &b"\n\r\n\n\r\n\r\n"[..], vec![StreamEvent::Ping]),
        ] {
            for cut in 0..=stream.len() {
                let mut f = if accepted {
                    StreamFramer::accepted(Limits::default())
                } else {
                    StreamFramer::new(Limits::default())
                };
                f.push(&stream[..cut]);
                let mut got = drain(&mut f);
                f.push(&stream[cut..]);
                got.extend(drain(&mut f));
                assert_eq!(got, want, "{stream:?} cut at {cut}");
            }
        }
    }

    #[test]
    fn content_length_is_required() {
        let mut f = StreamFramer::new(Limits::default());
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n");
        assert_eq!(f.poll(), Some(Err(ParseError::NoContentLength)));
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn an_endless_header_section_hits_the_size_limit() {
        let mut f = StreamFramer::new(Limits {
            max_message_size: 100,
            ..Limits::default()
        });
        f.push(&[b'a'; 101]);
        assert!(matches!(f.poll(), Some(Err(ParseError::TooLarge { .. }))));
    }

    #[test]
    fn a_huge_content_length_is_refused_before_buffering_the_body() {
        let mut f = StreamFramer::new(Limits::default());
        f.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 4000000000\r\n\r\n");
        assert!(matches!(f.poll(), Some(Err(ParseError::TooLarge { .. }))));
    }
}
