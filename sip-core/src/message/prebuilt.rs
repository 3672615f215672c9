//! Request heads written once and stamped out many times (issue 16, "build by splicing").
//!
//! Every request inside a dialog repeats the same Request-URI, Max-Forwards, Route set,
//! From, To and Call-ID (RFC 3261 §12.2.1.1); only the Via branch, the CSeq and what a
//! method adds differ. A [`Prebuilt`] holds those parts as the header storage of a request
//! already laid out, so a new request copies them with one `memcpy` and takes their index
//! entries as they are, instead of formatting each line again.

use super::HeaderName;
use super::headers::push_line_safe;

/// A Request-URI and header lines laid out once, as a request's storage holds them.
///
/// The text is the URI followed by each line (`Name: value`, no line ends) back to back;
/// `lines` gives each line's name and where it ends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Prebuilt {
    pub(super) text: Box<str>,
    pub(super) uri_len: u32,
    pub(super) lines: Box<[(HeaderName, u32)]>,
}

impl Prebuilt {
    /// Lays out `uri` and `lines` in order. Values are trimmed and their line breaks become
    /// spaces, as [`Headers::push`](super::Headers::push) does; blanks in the URI are
    /// dropped, as [`Request::new`](super::Request::new) does.
    pub(crate) fn new(uri: &str, lines: &[(HeaderName, &str)]) -> Prebuilt {
        let size = uri.len()
            + lines
                .iter()
                .map(|(n, v)| n.as_str().len() + 2 + v.len())
                .sum::<usize>();
        let mut text = String::with_capacity(size);
        if uri
            .bytes()
            .any(|c| c.is_ascii_whitespace() || !c.is_ascii())
        {
            text.extend(uri.chars().filter(|c| !c.is_whitespace()));
        } else {
            text.push_str(uri);
        }
        let uri_len = text.len() as u32;
        let lines = lines
            .iter()
            .map(|(name, value)| {
                text.push_str(name.as_str());
                text.push_str(": ");
                push_line_safe(&mut text, value.trim_ascii());
                (*name, text.len() as u32)
            })
            .collect();
        Prebuilt {
            text: text.into_boxed_str(),
            uri_len,
            lines,
        }
    }

    /// The value of the first line called `name`.
    pub(crate) fn value(&self, name: HeaderName) -> Option<&str> {
        self.spans()
            .find(|(n, _, _)| *n == name)
            .and_then(|(_, value, end)| self.text.get(value..end))
    }

    /// Each line's name, where its value starts and where it ends, in order.
    pub(super) fn spans(&self) -> impl Iterator<Item = (HeaderName, usize, usize)> + '_ {
        let mut start = self.uri_len as usize;
        self.lines.iter().map(move |&(name, end)| {
            let value = start + name.as_str().len() + 2;
            start = end as usize;
            (name, value, end as usize)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Method, Request};

    #[test]
    fn a_request_from_a_prebuilt_head_reads_and_writes_as_one_built_line_by_line() {
        let p = Prebuilt::new(
            "sip:bob@192.0.2.4 ",
            &[
                (HeaderName::MaxForwards, "70"),
                (HeaderName::Route, "<sip:p1.example.com;lr>"),
                (HeaderName::From, "<sip:alice@example.com>;tag=a1"),
                (HeaderName::To, " <sip:bob@example.com>;tag=b\r\n2"),
                (HeaderName::CallId, "c@h"),
            ],
        );
        assert_eq!(
            p.value(HeaderName::To),
            Some("<sip:bob@example.com>;tag=b  2")
        );
        assert_eq!(p.value(HeaderName::Contact), None);

        let mut stamped = Request::from_prebuilt(Method::Bye, &p, 64);
        stamped
            .headers_mut()
            .insert_first(HeaderName::Via, "SIP/2.0/UDP h;branch=z9hG4bK1");
        stamped.headers_mut().push(HeaderName::CSeq, "2 BYE");

        let mut by_line = Request::new(Method::Bye, "sip:bob@192.0.2.4");
        let h = by_line.headers_mut();
        h.push(HeaderName::Via, "SIP/2.0/UDP h;branch=z9hG4bK1");
        h.push(HeaderName::MaxForwards, "70");
        h.push(HeaderName::Route, "<sip:p1.example.com;lr>");
        h.push(HeaderName::From, "<sip:alice@example.com>;tag=a1");
        h.push(HeaderName::To, "<sip:bob@example.com>;tag=b\r\n2");
        h.push(HeaderName::CallId, "c@h");
        h.push(HeaderName::CSeq, "2 BYE");

        assert_eq!(stamped.to_bytes(), by_line.to_bytes());
        assert_eq!(stamped.uri(), "sip:bob@192.0.2.4");
        assert_eq!(stamped.headers().from_tag(), Ok(Some("a1")));
        assert_eq!(
            stamped.headers().get(HeaderName::Route),
            by_line.headers().get(HeaderName::Route)
        );
        assert_eq!(stamped.cseq().map(|c| c.seq), Ok(2));
        // Edits after stamping behave as on any built request.
        stamped
            .headers_mut()
            .set(HeaderName::To, "<sip:carol@example.com>");
        assert_eq!(stamped.headers().to_tag(), Ok(None));
    }
}
