//! Framing: the start line and the header index (RFC 3261 §7).
//!
//! This layer reads structure only. It accepts what §7.3.1 allows in the header section —
//! any case, compact names, whitespace before and after the colon, folded continuation lines,
//! LF-only line ends — and leaves every value as a span into the received bytes.

use std::sync::Arc;

use bytes::Bytes;
use memchr::memchr;

use super::error::ParseError;
use super::headers::{Headers, IndexBuilder};
use super::lex::eq_fold;
use super::syntax::is_token;
use super::{HeaderName, Limits, Method, StatusCode};

/// The first line of a message.
#[derive(Debug)]
pub(crate) enum StartLine {
    Request {
        method: Method,
        uri_start: u32,
        uri_len: u32,
    },
    Response {
        status: StatusCode,
    },
}

/// A parsed start line and header section.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) start: StartLine,
    /// Behind a pointer: a head and the message made of it are moved many times on their
    /// way through the layers, and a pointer moves more cheaply than the index. Shared, so
    /// that a clone of the message shares it too.
    pub(crate) headers: Arc<Headers>,
    /// Offset of the first body byte.
    pub(crate) body_start: usize,
}

/// Whether the caller has the whole message (a datagram, a WebSocket frame) or a prefix of a
/// byte stream that may still grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Completeness {
    Whole,
    Prefix,
}

/// Reads the start line and header section of `src`. With [`Completeness::Prefix`], `Ok(None)`
/// means the empty line that ends the headers has not arrived yet.
pub(crate) fn parse_head(
    src: &Bytes,
    limits: &Limits,
    completeness: Completeness,
) -> Result<Option<Head>, ParseError> {
    let buf: &[u8] = src;
    // RFC 3261 §7.5: CRLFs before the start line are ignored.
    let mut pos = 0;
    while matches!(buf.get(pos), Some(b'\r' | b'\n')) {
        pos += 1;
    }
    let Some(first_end) = memchr(b'\n', &buf[pos..]).map(|i| pos + i) else {
        return incomplete(buf.len(), limits, completeness);
    };
    let start = parse_start_line(buf, pos, strip_cr(buf, pos, first_end))?;
    pos = first_end + 1;

    let mut index = IndexBuilder::new();
    loop {
        let Some(lf) = memchr(b'\n', &buf[pos..]).map(|i| pos + i) else {
            return incomplete(buf.len(), limits, completeness);
        };
        let line_end = strip_cr(buf, pos, lf);
        if line_end == pos {
            // The empty line: headers are over.
            let headers = Arc::new(Headers::from_parsed(
                src.clone(),
                lf + 1,
                index.extra,
                index.entries,
            ));
            return Ok(Some(Head {
                start,
                headers,
                body_start: lf + 1,
            }));
        }
        // A logical header line runs on while the next physical line starts with whitespace
        // (RFC 3261 §7.3.1 folding).
        let mut end = line_end;
        let mut next = lf + 1;
        let mut folded = false;
        loop {
            match buf.get(next) {
                Some(b' ' | b'\t') => {
                    let Some(lf2) = memchr(b'\n', &buf[next..]).map(|i| next + i) else {
                        return incomplete(buf.len(), limits, completeness);
                    };
                    folded = true;
                    end = strip_cr(buf, next, lf2);
                    next = lf2 + 1;
                }
                Some(_) => break,
                None if completeness == Completeness::Prefix => {
                    // A fold might still arrive.
                    return incomplete(buf.len(), limits, completeness);
                }
                None => break,
            }
        }
        if end - pos > limits.max_line_length {
            return Err(ParseError::LineTooLong { offset: pos });
        }
        if index.entries.len() >= limits.max_headers {
            return Err(ParseError::TooManyHeaders {
                limit: limits.max_headers,
            });
        }
        push_header_line(&mut index, buf, pos, end, folded)?;
        pos = next;
    }
}

fn incomplete(
    len: usize,
    limits: &Limits,
    completeness: Completeness,
) -> Result<Option<Head>, ParseError> {
    if len > limits.max_message_size {
        return Err(ParseError::TooLarge {
            size: len,
            limit: limits.max_message_size,
        });
    }
    match completeness {
        Completeness::Prefix => Ok(None),
        Completeness::Whole => Err(ParseError::Unterminated),
    }
}

/// The end of a line's content: `lf` minus a CR just before it.
fn strip_cr(buf: &[u8], start: usize, lf: usize) -> usize {
    if lf > start && buf.get(lf - 1) == Some(&b'\r') {
        lf - 1
    } else {
        lf
    }
}

fn is_ws(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

fn push_header_line(
    index: &mut IndexBuilder,
    buf: &[u8],
    start: usize,
    end: usize,
    folded: bool,
) -> Result<(), ParseError> {
    let line = &buf[start..end];
    let bad_line = ParseError::HeaderLine { offset: start };
    let name_len = line
        .iter()
        .position(|&c| !is_token(c))
        .unwrap_or(line.len());
    if name_len == 0 {
        return Err(bad_line);
    }
    // HCOLON = *( SP / HTAB ) ":" SWS
    let mut i = name_len;
    while line.get(i).copied().is_some_and(is_ws) {
        i += 1;
    }
    if line.get(i) != Some(&b':') {
        return Err(bad_line);
    }
    i += 1;
    let name = HeaderName::from_bytes(&line[..name_len]);
    let mut v_start = i;
    let mut v_end = line.len();
    while v_start < v_end && matches!(line[v_start], b' ' | b'\t' | b'\r' | b'\n') {
        v_start += 1;
    }
    while v_end > v_start && matches!(line[v_end - 1], b' ' | b'\t' | b'\r' | b'\n') {
        v_end -= 1;
    }
    let raw = &line[v_start..v_end];
    // A value that is not UTF-8 is repaired after the loop, when the head as a whole fails
    // the one check it gets (`Headers::from_parsed`); a fold is unfolded now.
    let clean = folded.then(|| clean_value(raw));
    index.push(
        name,
        name_len,
        start,
        line.len(),
        start + v_start,
        v_end - v_start,
        clean.as_deref(),
    );
    Ok(())
}

/// A readable copy of a value: each fold (LWS around a line break) becomes one space
/// (RFC 3261 §7.3.1), and bytes that are not UTF-8 become U+FFFD. The line itself is still
/// written back as received.
pub(crate) fn clean_value(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len());
    for (i, piece) in text.split('\n').enumerate() {
        let piece = piece.trim_end_matches(['\r', ' ', '\t']);
        if i > 0 {
            out.truncate(out.trim_end_matches([' ', '\t']).len());
            out.push(' ');
            out.push_str(piece.trim_start_matches([' ', '\t']));
        } else {
            out.push_str(piece);
        }
    }
    out
}

fn parse_start_line(buf: &[u8], start: usize, end: usize) -> Result<StartLine, ParseError> {
    let line = &buf[start..end];
    if line.len() >= 4 && eq_fold(&line[..4], b"SIP/") {
        return parse_status_line(line);
    }
    // Request-Line = Method SP Request-URI SP SIP-Version CRLF, single spaces (RFC 4475 lwsstart,
    // lwsruri, trws are all rejected here).
    let sp1 = memchr(b' ', line).ok_or(ParseError::StartLine {
        what: "expected method and request-uri",
    })?;
    let method = Method::from_bytes(&line[..sp1]).ok_or(ParseError::StartLine {
        what: "invalid method",
    })?;
    let rest = &line[sp1 + 1..];
    let sp2 = memchr(b' ', rest).ok_or(ParseError::StartLine {
        what: "expected sip version",
    })?;
    if sp2 == 0 {
        return Err(ParseError::StartLine {
            what: "extra whitespace before request-uri",
        });
    }
    let version = &rest[sp2 + 1..];
    if version.iter().any(|&c| is_ws(c)) {
        return Err(ParseError::StartLine {
            what: "extra whitespace in request line",
        });
    }
    check_version(version)?;
    // The Request-URI grammar is ASCII only (non-ASCII must be %-escaped), so anything else
    // is malformed rather than a URI to carry around.
    if !rest[..sp2].iter().all(|c| (0x21..0x7f).contains(c)) {
        return Err(ParseError::StartLine {
            what: "invalid character in request-uri",
        });
    }
    Ok(StartLine::Request {
        method,
        uri_start: (start + sp1 + 1) as u32,
        uri_len: sp2 as u32,
    })
}

fn check_version(v: &[u8]) -> Result<(), ParseError> {
    // RFC 3261 §7.1: the version string is case-insensitive.
    if eq_fold(v, b"SIP/2.0") {
        Ok(())
    } else if v.len() > 4 && eq_fold(&v[..4], b"SIP/") {
        Err(ParseError::Version)
    } else {
        Err(ParseError::StartLine {
            what: "invalid sip version",
        })
    }
}

fn parse_status_line(line: &[u8]) -> Result<StartLine, ParseError> {
    // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
    let sp1 = memchr(b' ', line).ok_or(ParseError::StartLine {
        what: "expected status code",
    })?;
    check_version(&line[..sp1])?;
    let rest = &line[sp1 + 1..];
    let code_end = memchr(b' ', rest).unwrap_or(rest.len());
    let code = &rest[..code_end];
    if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::StartLine {
            what: "status code is not three digits",
        });
    }
    let code = code.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    if !(100..=699).contains(&code) {
        return Err(ParseError::StartLine {
            what: "status code out of range",
        });
    }
    let reason = rest.get(code_end + 1..).unwrap_or_default();
    let reason = std::str::from_utf8(reason).map_err(|_| ParseError::StartLine {
        what: "reason phrase is not utf-8",
    })?;
    let status = StatusCode::with_reason(code, reason).ok_or(ParseError::StartLine {
        what: "invalid reason phrase",
    })?;
    Ok(StartLine::Response { status })
}

/// The value of the first Content-Length header, or `None` when there is none.
pub(crate) fn content_length(headers: &Headers) -> Result<Option<usize>, ParseError> {
    let Some(v) = headers.get(HeaderName::ContentLength) else {
        return Ok(None);
    };
    let digits_ok = !v.is_empty() && v.len() <= 10 && v.bytes().all(|c| c.is_ascii_digit());
    let err = ParseError::Header {
        name: HeaderName::ContentLength.as_str(),
        error: super::ValueError::new("invalid content length", 0),
    };
    if !digits_ok {
        return Err(err);
    }
    v.parse::<u32>().map(|n| Some(n as usize)).map_err(|_| err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(s: &str) -> Result<Head, ParseError> {
        parse_head(
            &Bytes::copy_from_slice(s.as_bytes()),
            &Limits::default(),
            Completeness::Whole,
        )
        .map(|h| h.expect("whole input gives a head or an error"))
    }

    #[test]
    fn folded_values_read_as_one_line_and_write_back_unchanged() {
        let msg = "OPTIONS sip:a@b SIP/2.0\r\nSubject: first\r\n   second \r\n\tthird\r\nv : SIP/2.0/UDP h\r\n\r\n";
        let h = head(msg).unwrap();
        assert_eq!(
            h.headers.get(HeaderName::Subject),
            Some("first second third")
        );
        assert_eq!(h.headers.get(HeaderName::Via), Some("SIP/2.0/UDP h"));
        let mut out = Vec::new();
        h.headers.write_to(&mut out);
        assert_eq!(
            out,
            b"Subject: first\r\n   second \r\n\tthird\r\nv : SIP/2.0/UDP h\r\n".to_vec()
        );
    }

    #[test]
    fn lf_only_line_ends_are_accepted() {
        let h = head("SIP/2.0 200 OK\nCall-ID: x\n\nbody").unwrap();
        assert_eq!(h.headers.get(HeaderName::CallId), Some("x"));
        assert_eq!(h.body_start, "SIP/2.0 200 OK\nCall-ID: x\n\n".len());
    }

    #[test]
    fn a_line_without_a_colon_is_rejected_with_its_offset() {
        let e = head("OPTIONS sip:a@b SIP/2.0\r\nbroken line\r\n\r\n").unwrap_err();
        assert_eq!(e, ParseError::HeaderLine { offset: 25 });
    }

    #[test]
    fn non_utf8_values_read_lossily_and_write_back_as_received() {
        let mut msg = b"OPTIONS sip:a@b SIP/2.0\r\nFrom: \"Jos\xe9\" <sip:j@h>\r\n\r\n".to_vec();
        let h = parse_head(
            &Bytes::from(msg.clone()),
            &Limits::default(),
            Completeness::Whole,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            h.headers.get(HeaderName::From),
            Some("\"Jos\u{fffd}\" <sip:j@h>")
        );
        let mut out = b"OPTIONS sip:a@b SIP/2.0\r\n".to_vec();
        h.headers.write_to(&mut out);
        out.extend_from_slice(b"\r\n");
        msg.truncate(msg.len());
        assert_eq!(out, msg);
    }

    #[test]
    fn limits_are_enforced() {
        let limits = Limits {
            max_headers: 2,
            ..Limits::default()
        };
        let src = Bytes::from_static(b"OPTIONS sip:a@b SIP/2.0\r\na: 1\r\nb: 2\r\nc: 3\r\n\r\n");
        assert_eq!(
            parse_head(&src, &limits, Completeness::Whole).unwrap_err(),
            ParseError::TooManyHeaders { limit: 2 }
        );
        let limits = Limits {
            max_line_length: 3,
            ..Limits::default()
        };
        assert!(matches!(
            parse_head(&src, &limits, Completeness::Whole).unwrap_err(),
            ParseError::LineTooLong { .. }
        ));
    }

    #[test]
    fn status_lines() {
        for (line, ok) in [
            ("SIP/2.0 200 OK", true),
            ("SIP/2.0 100", true),
            ("SIP/2.0 100 ", true),
            ("sip/2.0 180 Ringing", true),
            ("SIP/2.0 4294967301 better not break the receiver", false),
            ("SIP/2.0 099 Low", false),
            ("SIP/2.0 20 OK", false),
        ] {
            let r = head(&format!("{line}\r\n\r\n"));
            assert_eq!(r.is_ok(), ok, "{line}: {r:?}");
        }
        assert_eq!(
            head("SIP/3.0 200 OK\r\n\r\n").unwrap_err(),
            ParseError::Version
        );
    }
}
