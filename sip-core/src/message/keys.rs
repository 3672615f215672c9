//! The transaction and dialog keys of a received message — top Via, CSeq, Call-ID, From and
//! To tags (RFC 3261 §17.1.3, §17.2.3, §12) — parsed once, when the message is framed, and
//! kept as offsets into the header values, so that the transaction layer, the dialog layer
//! and the user agent read them without parsing again. The first Contact (a dialog's remote
//! target) is kept the same way, learnt by the user agent's check rather than by framing.

use super::name_addr::{NameAddr, tag_param};
use super::scalars::{CSeq, parse_call_id};
use super::via::{Via, ViaSpans};
use super::{HeaderName, ValueError};

/// Where a part lies inside a header value: start and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span(u32, u32);

impl Span {
    /// Where `part` lies inside `base`; `part` must be a slice of `base`.
    pub(crate) fn of(base: &str, part: &str) -> Span {
        let start = (part.as_ptr() as usize).saturating_sub(base.as_ptr() as usize);
        Span(start as u32, part.len() as u32)
    }

    /// The part, read back from the same `base`.
    pub(crate) fn get(self, base: &str) -> &str {
        base.get(self.0 as usize..(self.0 + self.1) as usize)
            .unwrap_or("")
    }
}

/// One key of the first line of its header: not looked at yet (or the line was edited),
/// found bad, or parsed. An absent header is simply not found when the key is read.
///
/// `Bad` keeps no error: reading the key parses the line again to say what is wrong, which
/// only a faulty message pays for, while every message kept (a call's INVITE, a
/// transaction's request) is smaller by the error's 24 bytes in each of six keys.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) enum Key<T> {
    #[default]
    Unknown,
    Bad,
    Parsed(T),
}

/// The keys of one message, each about the first line of its header.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Keys {
    pub(crate) top_via: Key<ViaSpans>,
    pub(crate) cseq: Key<(u32, Span)>,
    pub(crate) call_id: Key<()>,
    pub(crate) from_tag: Key<Option<Span>>,
    pub(crate) to_tag: Key<Option<Span>>,
    /// The first Contact's URI as written (`None` for `*`): the remote target a dialog
    /// takes (RFC 3261 §12.1). The whole line is checked when it is learnt (not by
    /// framing: see [`Keys::framed`]).
    pub(crate) contact: Key<Option<Span>>,
}

/// The headers whose first line is a key, in the order of [`Keys::slot`].
pub(crate) const KEYED: usize = 6;

impl Keys {
    /// Parses the key of `name` from `line`, the first line of that header.
    pub(crate) fn learn(&mut self, name: HeaderName, line: &str) {
        match name {
            HeaderName::Via => self.top_via = key(first_via(line).map(|v| v.spans(line))),
            HeaderName::CSeq => {
                self.cseq = key(CSeq::parse(line).map(|c| (c.seq, Span::of(line, c.method))))
            }
            HeaderName::CallId => self.call_id = key(parse_call_id(line).map(drop)),
            HeaderName::From => self.from_tag = key(tag_span(line)),
            HeaderName::To => self.to_tag = key(tag_span(line)),
            HeaderName::Contact => self.contact = key(contact_span(line)),
            _ => {}
        }
    }

    /// Whether framing learns the key of `name`: the transaction and dialog keys every
    /// message needs. The Contact is learnt by the user agent's check, which parses it
    /// anyway (`Message::validate_for_ua`); a proxy or a parser-only user never pays for it.
    pub(crate) fn framed(name: HeaderName) -> bool {
        name != HeaderName::Contact
    }

    /// Where `name` counts among the keyed headers, if it is one.
    pub(crate) fn slot(name: HeaderName) -> Option<usize> {
        Some(match name {
            HeaderName::Via => 0,
            HeaderName::CSeq => 1,
            HeaderName::CallId => 2,
            HeaderName::From => 3,
            HeaderName::To => 4,
            HeaderName::Contact => 5,
            _ => return None,
        })
    }

    /// Forgets the key of `name`, whose lines are being edited.
    pub(crate) fn forget(&mut self, name: HeaderName) {
        match name {
            HeaderName::Via => self.top_via = Key::Unknown,
            HeaderName::CSeq => self.cseq = Key::Unknown,
            HeaderName::CallId => self.call_id = Key::Unknown,
            HeaderName::From => self.from_tag = Key::Unknown,
            HeaderName::To => self.to_tag = Key::Unknown,
            HeaderName::Contact => self.contact = Key::Unknown,
            _ => {}
        }
    }

    /// Takes `other`'s key of `name` (whatever it knows of it), for a first line copied
    /// from there with the same value text.
    pub(crate) fn carry(&mut self, name: HeaderName, other: &Keys) {
        match name {
            HeaderName::Via => self.top_via = other.top_via,
            HeaderName::CSeq => self.cseq = other.cseq,
            HeaderName::CallId => self.call_id = other.call_id,
            HeaderName::From => self.from_tag = other.from_tag,
            HeaderName::To => self.to_tag = other.to_tag,
            HeaderName::Contact => self.contact = other.contact,
            _ => {}
        }
    }

    /// Whether the first line of `name` is a key that was parsed and found good.
    pub(crate) fn checked(&self, name: HeaderName) -> bool {
        match name {
            HeaderName::Via => matches!(self.top_via, Key::Parsed(_)),
            HeaderName::CSeq => matches!(self.cseq, Key::Parsed(_)),
            HeaderName::CallId => matches!(self.call_id, Key::Parsed(_)),
            HeaderName::From => matches!(self.from_tag, Key::Parsed(_)),
            HeaderName::To => matches!(self.to_tag, Key::Parsed(_)),
            HeaderName::Contact => matches!(self.contact, Key::Parsed(_)),
            _ => false,
        }
    }
}

fn key<T>(r: Result<T, ValueError>) -> Key<T> {
    match r {
        Ok(t) => Key::Parsed(t),
        Err(_) => Key::Bad,
    }
}

fn tag_span(line: &str) -> Result<Option<Span>, ValueError> {
    tag_param(line).map(|t| t.map(|t| Span::of(line, t)))
}

/// Checks a Contact line whole (as `Contact::parse` does) and finds its first URI.
pub(crate) fn contact_span(line: &str) -> Result<Option<Span>, ValueError> {
    if line.trim_matches([' ', '\t']) == "*" {
        return Ok(None);
    }
    // A single value (the usual Contact) needs no list split, which tracks quotes and
    // brackets byte by byte. (An empty one is left to the list, which names the fault.)
    let blank = |c: u8| c == b' ' || c == b'\t';
    if memchr::memchr(b',', line.as_bytes()).is_none() && !line.bytes().all(blank) {
        return NameAddr::parse(line).map(|na| na.uri_text().map(|t| Span::of(line, t)));
    }
    let mut first = None;
    for na in NameAddr::parse_list(line) {
        let na = na?;
        if first.is_none() {
            first = na.uri_text().map(|t| Span::of(line, t));
        }
    }
    Ok(first)
}

/// [`contact_span`], giving the text.
pub(crate) fn contact_span_text(line: &str) -> Result<Option<&str>, ValueError> {
    contact_span(line).map(|s| s.map(|s| s.get(line)))
}

/// The first value of a Via line. Most lines hold one value, and then the list split (a
/// second pass that tracks quotes) is not needed.
pub(crate) fn first_via(line: &str) -> Result<Via<'_>, ValueError> {
    if memchr::memchr(b',', line.as_bytes()).is_none() {
        Via::parse(line)
    } else {
        Via::parse_list(line)
            .next()
            .unwrap_or(Err(ValueError::new("empty via", 0)))
    }
}

/// Reads a key: the cached one while it is known and good, else `parse` on the line now
/// (which also says what is wrong with a bad one).
pub(crate) fn read<'a, T: Copy, U>(
    cached: Key<T>,
    line: &'a str,
    from_cache: impl FnOnce(&'a str, T) -> U,
    parse: impl FnOnce(&'a str) -> Result<U, ValueError>,
) -> Result<U, ValueError> {
    match cached {
        Key::Parsed(t) => Ok(from_cache(line, t)),
        Key::Bad | Key::Unknown => parse(line),
    }
}
