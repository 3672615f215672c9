//! The SIP message trace, like SIP.js's `traceSip`: every message a user agent or the
//! embedded registrar sends or receives, whole, as a `tracing` event at DEBUG level on the
//! target [`TARGET`]
//! (`sansip::sip`), with the direction, flow, transport and addresses as fields. Credentials
//! never appear: the values of `Authorization` and `Proxy-Authorization` are replaced by
//! `<redacted>` (the scheme stays, so a trace still shows that a request was authenticated).
//!
//! Turn it on with a subscriber filter such as `RUST_LOG=sansip::sip=debug` (the softphone's
//! `--sip-trace` does this). When it is off, the cost is one cached check per message.
//!
//! ```
//! let traced = sansip_core::trace::redact(
//!     "REGISTER sip:example.com SIP/2.0\r\nAuthorization: Digest username=\"alice\", response=\"6629fae49393a05397450978507c4ef1\"\r\n\r\n",
//! );
//! assert!(traced.contains("Authorization: Digest <redacted>"));
//! assert!(!traced.contains("6629fae4"));
//! ```

use std::borrow::Cow;

use crate::transport::{FlowId, FlowInfo};

/// The `tracing` target of the SIP message trace.
pub const TARGET: &str = "sansip::sip";

/// Which way a traced message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Sent,
    Received,
}

/// Whether anyone listens to the trace: callers skip building the text when not.
pub(crate) fn enabled() -> bool {
    tracing::enabled!(target: TARGET, tracing::Level::DEBUG)
}

/// Emits one message of the trace.
pub(crate) fn message(direction: Direction, flow: FlowId, info: Option<FlowInfo>, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let text = redact(&text);
    let direction = match direction {
        Direction::Sent => "sent",
        Direction::Received => "received",
    };
    match info {
        Some(i) => tracing::debug!(
            target: TARGET,
            direction,
            flow = flow.0,
            transport = %i.transport,
            local = %i.local,
            remote = %i.remote,
            "{} bytes\n{}",
            bytes.len(),
            text
        ),
        None => tracing::debug!(
            target: TARGET,
            direction,
            flow = flow.0,
            "{} bytes\n{}",
            bytes.len(),
            text
        ),
    }
}

/// `message` with the values of its `Authorization` and `Proxy-Authorization` headers
/// replaced by `<redacted>` (the scheme kept). Only the head is looked at; a body is left
/// as it is.
pub fn redact(message: &str) -> Cow<'_, str> {
    let head_end = message.find("\r\n\r\n").unwrap_or(message.len());
    let head = &message[..head_end];
    let sensitive = |line: &str| {
        line.split_once(':').is_some_and(|(name, _)| {
            let name = name.trim();
            name.eq_ignore_ascii_case("authorization")
                || name.eq_ignore_ascii_case("proxy-authorization")
        })
    };
    if !head.split('\n').any(sensitive) {
        return Cow::Borrowed(message);
    }
    let mut out = String::with_capacity(message.len());
    // Folded continuation lines (RFC 3261 §7.3.1) belong to the header above them.
    let mut in_sensitive = false;
    for line in head.split_inclusive('\n') {
        let folded = line.starts_with([' ', '\t']);
        if folded && in_sensitive {
            continue;
        }
        in_sensitive = !folded && sensitive(line);
        if in_sensitive {
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            let scheme = value.split_whitespace().next().unwrap_or("");
            out.push_str(name);
            out.push_str(": ");
            out.push_str(scheme);
            out.push_str(" <redacted>");
            out.push_str(if line.ends_with("\r\n") { "\r\n" } else { "\n" });
        } else {
            out.push_str(line);
        }
    }
    out.push_str(&message[head_end..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted_and_the_rest_kept() {
        let m = "INVITE sip:bob@b SIP/2.0\r\nVia: SIP/2.0/UDP a\r\nproxy-authorization : Digest username=\"a\",\r\n response=\"deadbeef\"\r\nCSeq: 2 INVITE\r\n\r\nv=0\r\nAuthorization: body text\r\n";
        let r = redact(m);
        assert!(!r.contains("deadbeef"));
        assert!(!r.contains("username"));
        assert!(r.contains("proxy-authorization : Digest <redacted>\r\nCSeq: 2 INVITE\r\n"));
        assert!(r.starts_with("INVITE sip:bob@b SIP/2.0\r\nVia: SIP/2.0/UDP a\r\n"));
        // The body is not a header; it stays as it is.
        assert!(r.ends_with("\r\n\r\nv=0\r\nAuthorization: body text\r\n"));
        let plain = "OPTIONS sip:a SIP/2.0\r\nCSeq: 1 OPTIONS\r\n\r\n";
        assert!(matches!(redact(plain), Cow::Borrowed(_)));
    }
}
