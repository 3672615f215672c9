//! The header index: every header line of a message, in order, as spans into the received
//! bytes.
//!
//! Parsing a message builds this index and nothing else: no header value is copied, so the
//! transaction layer can read the few headers it needs (Via, CSeq, Call-ID, tags) without an
//! allocation. The index never fails because one header is bad; typed views parse a value
//! only when somebody asks. Headers nobody edits are written back byte for byte, folds,
//! compact names and odd spacing included.

use std::fmt;

use bytes::Bytes;
use bytestring::ByteString;

use super::HeaderName;
use super::keys::{KEYED, Keys};
use super::prebuilt::Prebuilt;

/// Lines a message usually has (typical requests carry 8–15 headers): room for this many
/// is taken at once, so an index grows again only for the rare larger message.
const TYPICAL_LINES: usize = 16;

/// The line lives in `extra` (added or edited after parsing), not in the received bytes.
const LINE_EXTRA: u8 = 1;
/// The value lives in `extra`: the line was edited, folded or not UTF-8, so the readable
/// value is a cleaned copy while the line itself is written back as received.
const VALUE_EXTRA: u8 = 2;
/// A received line written under its full name (in any case), not a compact form: a
/// response may take it over as it is.
const FULL_NAME: u8 = 4;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    /// `None` for names the stack does not know; their text is the line's first `name_len` bytes.
    name: Option<HeaderName>,
    flags: u8,
    name_len: u16,
    line_start: u32,
    line_len: u32,
    value_start: u32,
    value_len: u32,
}

/// The headers of one message, in order.
///
/// ```
/// use sansip_core::message::{HeaderName, Headers};
/// let mut h = Headers::new();
/// h.push(HeaderName::Via, "SIP/2.0/UDP host.example.com;branch=z9hG4bK776asdhds");
/// h.push_named("X-Tenant", "blue").unwrap();
/// h.insert_first(HeaderName::Via, "SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKnashds7");
/// assert_eq!(h.count(HeaderName::Via), 2);
/// assert!(h.get(HeaderName::Via).unwrap().contains("WSS"));
/// assert_eq!(h.get_by_name("x-tenant"), Some("blue"));
/// ```
#[derive(Clone, Default)]
pub struct Headers {
    src: Bytes,
    /// The received start line and headers, checked as UTF-8 once when framed (`None` when
    /// they are not, and for built messages), so that values are handed out without checking
    /// them again.
    text: Option<ByteString>,
    extra: String,
    /// On the heap, not inline: a message is moved many times on its way through the
    /// layers, and a small `Headers` moves cheaply.
    entries: Vec<Entry>,
    keys: Keys,
    /// The known names that may have a line here: a clear bit means none does, so asking
    /// for a header a message lacks (Require, Replaces, Session-Expires…) scans nothing.
    /// Set when a line is added and never cleared when one is removed, which keeps it a
    /// superset and always safe to trust for "absent".
    maybe: NameSet,
}

/// A set of known header names, a bit each (there are fewer than 128).
#[derive(Debug, Clone, Copy, Default)]
struct NameSet([u64; 2]);

impl NameSet {
    fn insert(&mut self, name: HeaderName) {
        let n = name as usize;
        self.0[(n / 64) & 1] |= 1 << (n % 64);
    }

    fn contains(&self, name: HeaderName) -> bool {
        let n = name as usize;
        self.0[(n / 64) & 1] & (1 << (n % 64)) != 0
    }

    fn of<'e>(entries: impl IntoIterator<Item = &'e Entry>) -> NameSet {
        let mut set = NameSet::default();
        for name in entries.into_iter().filter_map(|e| e.name) {
            set.insert(name);
        }
        set
    }
}

/// A name that cannot be a header name (not a token), or a value that would break the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid header name {0:?}")]
pub struct InvalidHeaderName(pub String);

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// No headers yet, with room for a message's usual lines (a request or response being
    /// built), so that adding them does not grow the index step by step.
    pub(crate) fn for_message() -> Self {
        Self {
            entries: Vec::with_capacity(TYPICAL_LINES),
            ..Self::default()
        }
    }

    pub(crate) fn from_parsed(
        src: Bytes,
        head_len: usize,
        mut extra: String,
        mut entries: Vec<Entry>,
    ) -> Self {
        let text = ByteString::try_from(src.slice(..head_len.min(src.len()))).ok();
        if text.is_none() {
            // Some value is not UTF-8: those get a readable copy (the line is still written
            // back as received). Only such a head pays for looking value by value.
            for e in entries.iter_mut().filter(|e| e.flags & VALUE_EXTRA == 0) {
                let range = e.value_start as usize..(e.value_start + e.value_len) as usize;
                let raw = src.get(range).unwrap_or_default();
                if std::str::from_utf8(raw).is_err() {
                    let clean = super::parse::clean_value(raw);
                    e.value_start = extra.len() as u32;
                    e.value_len = clean.len() as u32;
                    e.flags |= VALUE_EXTRA;
                    extra.push_str(&clean);
                }
            }
        }
        let mut h = Self {
            src,
            text,
            extra,
            entries,
            keys: Keys::default(),
            maybe: NameSet::default(),
        };
        let mut keys = Keys::default();
        let mut seen = [false; KEYED];
        for e in &h.entries {
            let Some(name) = e.name else { continue };
            h.maybe.insert(name);
            if !Keys::framed(name) {
                continue;
            }
            let Some(slot) = Keys::slot(name) else {
                continue;
            };
            if !std::mem::replace(&mut seen[slot], true) {
                keys.learn(name, h.value(e));
            }
        }
        h.keys = keys;
        h
    }

    /// The lines of `p` as built headers (see [`Prebuilt`]): its text copied into this
    /// storage at once, with room for `reserve` more bytes, and its index taken as laid out.
    /// The Request-URI's text is at the start of the storage, `p.uri_len` bytes long.
    pub(crate) fn from_prebuilt(p: &Prebuilt, reserve: usize) -> Headers {
        let mut extra = String::with_capacity(p.text.len() + reserve);
        extra.push_str(&p.text);
        let mut entries = Vec::with_capacity(p.lines.len() + TYPICAL_LINES / 2);
        let mut line_start = p.uri_len;
        for (name, value_start, end) in p.spans() {
            entries.push(Entry {
                name: Some(name),
                flags: LINE_EXTRA | VALUE_EXTRA,
                name_len: name.as_str().len() as u16,
                line_start,
                line_len: end as u32 - line_start,
                value_start: value_start as u32,
                value_len: (end - value_start) as u32,
            });
            line_start = end as u32;
        }
        Headers {
            extra,
            maybe: NameSet::of(&entries),
            entries,
            ..Headers::default()
        }
    }

    /// Parses and keeps the key of `name` (see [`Keys`]) now, for a key framing leaves to
    /// the first layer that reads it.
    pub(crate) fn learn(&mut self, name: HeaderName) {
        if let Some(line) = self.get(name) {
            let mut keys = self.keys;
            keys.learn(name, line);
            self.keys = keys;
        }
    }

    /// The keys framing parsed (see [`Keys`]).
    pub(crate) fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Forgets what framing knew of the headers called `name`, which are being edited.
    /// Every edit that adds a line of `name` comes through here, so this also marks the
    /// name as maybe present.
    fn edited(&mut self, name: Option<HeaderName>) {
        if let Some(name) = name {
            self.keys.forget(name);
            self.maybe.insert(name);
        }
    }

    /// Number of header lines.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no header lines.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The first value of a known header.
    pub fn get(&self, name: HeaderName) -> Option<&str> {
        if !self.maybe.contains(name) {
            return None;
        }
        self.entries
            .iter()
            .find(|e| e.name == Some(name))
            .map(|e| self.value(e))
    }

    /// Whether any `name` header lists `token` (an option tag, a method), compared
    /// case-insensitively; elements that are not tokens are ignored.
    pub(crate) fn lists(&self, name: HeaderName, token: &str) -> bool {
        self.get_all(name)
            .any(|v| super::lists::lists_token(v, token))
    }

    /// Every value of a known header, in order. A comma-separated line counts as one value;
    /// typed views split lists.
    pub fn get_all(&self, name: HeaderName) -> impl Iterator<Item = &str> + '_ {
        let lines = if self.maybe.contains(name) {
            &self.entries[..]
        } else {
            &[]
        };
        lines
            .iter()
            .filter(move |e| e.name == Some(name))
            .map(|e| self.value(e))
    }

    /// How many lines carry this header.
    pub fn count(&self, name: HeaderName) -> usize {
        if !self.maybe.contains(name) {
            return 0;
        }
        self.entries.iter().filter(|e| e.name == Some(name)).count()
    }

    /// The known name of each line in order (`None` for names the stack does not know).
    pub(crate) fn names(&self) -> impl Iterator<Item = Option<HeaderName>> + '_ {
        self.entries.iter().map(|e| e.name)
    }

    /// Whether the header is present.
    pub fn contains(&self, name: HeaderName) -> bool {
        self.maybe.contains(name) && self.entries.iter().any(|e| e.name == Some(name))
    }

    /// The first value of a header named by text, ignoring case. Known names and compact
    /// forms resolve as in [`HeaderName::from_name`], so `get_by_name("v")` finds Via.
    pub fn get_by_name<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.get_all_by_name(name).next()
    }

    /// Every value of a header named by text, ignoring case.
    pub fn get_all_by_name<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let known = HeaderName::from_name(name);
        self.entries
            .iter()
            .filter(move |e| match known {
                Some(k) => e.name == Some(k),
                None => e.name.is_none() && self.name_text(e).eq_ignore_ascii_case(name),
            })
            .map(|e| self.value(e))
    }

    /// Every header as `(name as written, value)`, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.entries
            .iter()
            .map(|e| (self.name_text(e), self.value(e)))
    }

    /// Every line with a known name, its value read only when asked for (a check that
    /// passes over most lines by their name alone).
    pub(crate) fn known_lines<'h>(
        &'h self,
    ) -> impl Iterator<Item = (HeaderName, impl Fn() -> &'h str)> {
        self.entries
            .iter()
            .filter_map(move |e| Some((e.name?, move || self.value(e))))
    }

    /// Every header as `(known name or None, value)`, in order.
    pub fn iter_known(&self) -> impl Iterator<Item = (Option<HeaderName>, &str)> + '_ {
        self.entries.iter().map(|e| (e.name, self.value(e)))
    }

    /// Appends a header. ASCII whitespace around `value` is dropped (SIP's LWS is ASCII), and
    /// line breaks inside it become spaces, so a value can never inject a header of its own.
    pub fn push(&mut self, name: HeaderName, value: &str) {
        self.edited(Some(name));
        let e = self.make_entry(Some(name), name.as_str(), value);
        self.entries.push(e);
    }

    /// Puts a header before all others of any name (a new top Via, RFC 3261 §8.1.1.7).
    pub fn insert_first(&mut self, name: HeaderName, value: &str) {
        self.edited(Some(name));
        let e = self.make_entry(Some(name), name.as_str(), value);
        self.entries.insert(0, e);
    }

    /// Checks a header given as text: the name a token, the value free of line breaks (so
    /// an application's value can never inject a header of its own).
    pub fn check_named(name: &str, value: &str) -> Result<(), InvalidHeaderName> {
        let name_ok = !name.is_empty() && name.bytes().all(super::syntax::is_token);
        if !name_ok || value.contains(['\r', '\n']) {
            return Err(InvalidHeaderName(name.to_owned()));
        }
        Ok(())
    }

    /// Appends a header named by text; known names resolve to their variant. Fails as
    /// [`Headers::check_named`] does.
    pub fn push_named(&mut self, name: &str, value: &str) -> Result<(), InvalidHeaderName> {
        Self::check_named(name, value)?;
        let known = HeaderName::from_name(name);
        self.edited(known);
        let e = match known {
            Some(k) => self.make_entry(Some(k), k.as_str(), value),
            None => self.make_entry(None, name, value),
        };
        self.entries.push(e);
        Ok(())
    }

    /// Replaces the first line of `name` in place (its position kept), removes any others,
    /// or appends when absent.
    pub fn set(&mut self, name: HeaderName, value: &str) {
        self.edited(Some(name));
        match self.entries.iter().position(|e| e.name == Some(name)) {
            Some(i) => {
                self.entries[i] = self.make_entry(Some(name), name.as_str(), value);
                let mut seen = false;
                self.entries.retain(|e| {
                    if e.name != Some(name) {
                        return true;
                    }
                    let keep = !seen;
                    seen = true;
                    keep
                });
            }
            None => self.push(name, value),
        }
    }

    /// Removes every line of `name`; returns how many there were.
    pub fn remove(&mut self, name: HeaderName) -> usize {
        self.edited(Some(name));
        let before = self.entries.len();
        self.entries.retain(|e| e.name != Some(name));
        before - self.entries.len()
    }

    /// Removes the first line of `name` (the top Via when a response goes upstream).
    pub fn remove_first(&mut self, name: HeaderName) -> bool {
        self.edited(Some(name));
        match self.entries.iter().position(|e| e.name == Some(name)) {
            Some(i) => {
                self.entries.remove(i);
                true
            }
            None => false,
        }
    }

    /// Appends every line of `other` that carries `name`, as written there.
    ///
    /// A line received under its full name (in any case) is spliced: the new entry points
    /// into the bytes `other` was parsed from, which these headers then share, so nothing is
    /// copied. That works while these headers hold no received bytes of their own (a
    /// response being built) or the same ones.
    pub fn copy_from(&mut self, other: &Headers, name: HeaderName) {
        let had = self.contains(name);
        self.edited(Some(name));
        let own_src_unused =
            self.src.is_empty() && self.entries.iter().all(|e| e.flags & LINE_EXTRA != 0);
        let same_src = self.src.as_ptr() == other.src.as_ptr() && self.src.len() == other.src.len();
        let shares = own_src_unused || same_src;
        for (n, e) in other
            .entries
            .iter()
            .filter(|e| e.name == Some(name))
            .enumerate()
        {
            let spliceable = e.flags == FULL_NAME;
            if shares && spliceable {
                if self.src.is_empty() {
                    self.src = other.src.clone();
                    self.text = other.text.clone();
                }
                self.entries.push(*e);
                if n == 0 && !had {
                    // This is now the first line of `name`, the very text `other`'s key was
                    // read from: a response knows the request's To tag, top Via and CSeq
                    // without parsing them again.
                    self.keys.carry(name, &other.keys);
                }
            } else {
                let e = self.make_entry(Some(name), name.as_str(), other.value(e));
                self.entries.push(e);
            }
        }
    }

    /// Appends a header whose value is `parts` joined, written straight into the index's
    /// storage (no formatting, no intermediate string). Line breaks become spaces as in
    /// [`Headers::push`].
    pub(crate) fn push_parts(&mut self, name: HeaderName, parts: &[&str]) {
        self.edited(Some(name));
        let line_start = self.extra.len();
        self.extra.push_str(name.as_str());
        self.extra.push_str(": ");
        let value_start = self.extra.len();
        for part in parts {
            push_line_safe(&mut self.extra, part);
        }
        let end = self.extra.len();
        self.entries.push(Entry {
            name: Some(name),
            flags: LINE_EXTRA | VALUE_EXTRA,
            name_len: name.as_str().len() as u16,
            line_start: line_start as u32,
            line_len: (end - line_start) as u32,
            value_start: value_start as u32,
            value_len: (end - value_start) as u32,
        });
    }

    /// Puts a header whose value is `parts` joined before all others, as
    /// [`Headers::insert_first`] does, written as [`Headers::push_parts`] writes.
    pub(crate) fn insert_first_parts(&mut self, name: HeaderName, parts: &[&str]) {
        self.push_parts(name, parts);
        if let Some(e) = self.entries.pop() {
            self.entries.insert(0, e);
        }
    }

    /// Gives back the text room a message was built with (the line slots are few and
    /// cheaper to keep than to move): for a message kept for a call's life, its INVITE,
    /// which every copy shares.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.extra.shrink_to_fit();
    }

    /// Makes room for `lines` more header lines taking `bytes` more bytes, so that building
    /// a message grows its storage once.
    pub(crate) fn reserve(&mut self, lines: usize, bytes: usize) {
        self.entries.reserve(lines);
        self.extra.reserve(bytes);
    }

    /// Writes every header line, each ending in CRLF. Lines nobody edited are copied as
    /// received.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        for e in &self.entries {
            out.extend_from_slice(self.line(e));
            out.extend_from_slice(b"\r\n");
        }
    }

    /// Bytes the header lines take when written.
    pub(crate) fn written_len(&self) -> usize {
        self.entries.iter().map(|e| e.line_len as usize + 2).sum()
    }

    fn make_entry(&mut self, name: Option<HeaderName>, name_text: &str, value: &str) -> Entry {
        let need = name_text.len() + 2 + value.len();
        if self.extra.capacity() - self.extra.len() < need {
            // A built message gains its lines one by one: grow in one step to a size that
            // holds a typical head, not through 8, 16, 32… bytes (the doubling ends at the
            // same capacity).
            self.extra.reserve(need.max(self.extra.capacity()).max(512));
        }
        let line_start = self.extra.len();
        self.extra.push_str(name_text);
        self.extra.push_str(": ");
        let value_start = self.extra.len();
        push_line_safe(&mut self.extra, value.trim_ascii());
        let end = self.extra.len();
        Entry {
            name,
            flags: LINE_EXTRA | VALUE_EXTRA,
            name_len: name_text.len().min(u16::MAX as usize) as u16,
            line_start: line_start as u32,
            line_len: (end - line_start) as u32,
            value_start: value_start as u32,
            value_len: (end - value_start) as u32,
        }
    }

    pub(crate) fn store_text(&mut self, text: &str) -> (u32, u32) {
        let start = self.extra.len();
        self.extra.push_str(text);
        (start as u32, text.len() as u32)
    }

    pub(crate) fn extra_text(&self, start: u32, len: u32) -> &str {
        self.extra
            .get(start as usize..(start + len) as usize)
            .unwrap_or("")
    }

    pub(crate) fn src_text(&self, start: u32, len: u32) -> &str {
        let range = start as usize..(start + len) as usize;
        if let Some(text) = &self.text
            && let Some(s) = text.get(range.clone())
        {
            return s;
        }
        self.src
            .get(range)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }

    fn line(&self, e: &Entry) -> &[u8] {
        let r = e.line_start as usize..(e.line_start + e.line_len) as usize;
        let bytes = if e.flags & LINE_EXTRA != 0 {
            self.extra.as_bytes().get(r)
        } else {
            self.src.get(r)
        };
        bytes.unwrap_or_default()
    }

    fn name_text(&self, e: &Entry) -> &str {
        if e.flags & LINE_EXTRA == 0 {
            self.src_text(e.line_start, u32::from(e.name_len))
        } else {
            self.extra_text(e.line_start, u32::from(e.name_len))
        }
    }

    fn value(&self, e: &Entry) -> &str {
        if e.flags & VALUE_EXTRA != 0 {
            self.extra_text(e.value_start, e.value_len)
        } else {
            // The parser copied every value that is not valid UTF-8 into `extra`, so this
            // conversion succeeds; it is checked because the index must never panic.
            self.src_text(e.value_start, e.value_len)
        }
    }
}

/// Appends `value` with any CR or LF made a space: either would end the line early and let
/// the value forge headers.
pub(super) fn push_line_safe(out: &mut String, value: &str) {
    if has_line_break(value.as_bytes()) {
        out.extend(
            value
                .chars()
                .map(|c| if c == '\r' || c == '\n' { ' ' } else { c }),
        );
    } else {
        out.push_str(value);
    }
}

/// Whether `b` holds a CR or LF. Most values a message is built from are a few bytes (a
/// tag, a number, a method), for which a vectorised search costs more to start than a
/// byte loop costs to finish.
fn has_line_break(b: &[u8]) -> bool {
    if b.len() <= 16 {
        b.iter().any(|&c| c == b'\r' || c == b'\n')
    } else {
        memchr::memchr2(b'\r', b'\n', b).is_some()
    }
}

/// Builds the index while the parser walks the header section.
pub(crate) struct IndexBuilder {
    pub(crate) extra: String,
    pub(crate) entries: Vec<Entry>,
}

impl IndexBuilder {
    pub(crate) fn new() -> Self {
        Self {
            extra: String::new(),
            entries: Vec::with_capacity(TYPICAL_LINES),
        }
    }

    /// Records one logical header line. `value` is the trimmed value span in `src`;
    /// `clean` is `Some` when the value had to be unfolded or repaired to be read as text.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(crate) fn push(
        &mut self,
        name: Option<HeaderName>,
        name_len: usize,
        line_start: usize,
        line_len: usize,
        value_start: usize,
        value_len: usize,
        clean: Option<&str>,
    ) {
        let (mut flags, value_start, value_len) = match clean {
            None => (0, value_start, value_len),
            Some(text) => {
                let s = self.extra.len();
                self.extra.push_str(text);
                (VALUE_EXTRA, s, text.len())
            }
        };
        // Compact forms are the single letters (RFC 3261 §7.3.3); every full name is longer.
        if name.is_some() && name_len > 1 {
            flags |= FULL_NAME;
        }
        self.entries.push(Entry {
            name,
            flags,
            name_len: name_len.min(u16::MAX as usize) as u16,
            line_start: line_start as u32,
            line_len: line_len as u32,
            value_start: value_start as u32,
            value_len: value_len as u32,
        });
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for Headers {
    /// Two header lists are equal when they hold the same names (ignoring case and compact
    /// forms) with the same values, in the same order.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self.entries.iter().zip(other.entries.iter()).all(|(a, b)| {
                let same_name = match (a.name, b.name) {
                    (Some(x), Some(y)) => x == y,
                    (None, None) => self.name_text(a).eq_ignore_ascii_case(other.name_text(b)),
                    _ => false,
                };
                same_name && self.value(a) == other.value(b)
            })
    }
}

impl Eq for Headers {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NAMES: [HeaderName; 4] = [
        HeaderName::Via,
        HeaderName::Require,
        HeaderName::Contact,
        HeaderName::Subject,
    ];

    #[test]
    fn full_names_are_spliced_and_compact_forms_written_out() {
        let src = Bytes::from_static(
            b"OPTIONS sip:a@b SIP/2.0\r\nvia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nf: <sip:a@b>;tag=1\r\n\r\n",
        );
        let head = super::super::parse::parse_head(
            &src,
            &super::super::Limits::default(),
            super::super::parse::Completeness::Whole,
        )
        .unwrap()
        .unwrap();
        let mut out = Headers::new();
        out.copy_from(&head.headers, HeaderName::Via);
        out.copy_from(&head.headers, HeaderName::From);
        let mut text = Vec::new();
        out.write_to(&mut text);
        assert_eq!(
            text,
            b"via: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\n".to_vec()
        );
        // The spliced line shares the received bytes; the compact one was written out.
        assert_eq!(out.entries[0].flags, FULL_NAME);
        assert_ne!(out.entries[1].flags & LINE_EXTRA, 0);
    }

    #[test]
    fn line_breaks_are_found_at_any_length_and_place() {
        for len in 0..40 {
            let clean = vec![b'a'; len];
            assert!(!has_line_break(&clean));
            for at in 0..len {
                for c in [b'\r', b'\n'] {
                    let mut b = clean.clone();
                    b[at] = c;
                    assert!(has_line_break(&b), "{len} {at}");
                }
            }
        }
    }

    proptest! {
        /// Whatever edits come, lookups answer as a plain list of lines does: the set of
        /// names that may be present never hides one that is.
        #[test]
        fn lookups_agree_with_a_plain_list_through_any_edits(
            ops in proptest::collection::vec((0u8..6, 0usize..4, "[a-z]{1,3}"), 0..24),
        ) {
            let mut h = Headers::new();
            let mut model: Vec<(HeaderName, String)> = Vec::new();
            for (op, n, value) in ops {
                let name = NAMES[n];
                match op {
                    0 => {
                        h.push(name, &value);
                        model.push((name, value));
                    }
                    1 => {
                        h.insert_first(name, &value);
                        model.insert(0, (name, value));
                    }
                    2 => {
                        h.remove(name);
                        model.retain(|(m, _)| *m != name);
                    }
                    3 => {
                        h.remove_first(name);
                        if let Some(i) = model.iter().position(|(m, _)| *m == name) {
                            model.remove(i);
                        }
                    }
                    4 => {
                        h.set(name, &value);
                        match model.iter().position(|(m, _)| *m == name) {
                            Some(i) => {
                                model[i].1 = value;
                                let mut seen = false;
                                model.retain(|(m, _)| *m != name || !std::mem::replace(&mut seen, true));
                            }
                            None => model.push((name, value)),
                        }
                    }
                    _ => {
                        let mut other = Headers::new();
                        other.push(name, &value);
                        h.copy_from(&other, name);
                        model.push((name, value));
                    }
                }
                for name in NAMES {
                    let lines: Vec<&str> = model
                        .iter()
                        .filter(|(m, _)| *m == name)
                        .map(|(_, v)| v.as_str())
                        .collect();
                    prop_assert_eq!(h.get(name), lines.first().copied());
                    prop_assert_eq!(h.get_all(name).collect::<Vec<_>>(), lines.clone());
                    prop_assert_eq!(h.count(name), lines.len());
                    prop_assert_eq!(h.contains(name), !lines.is_empty());
                }
            }
        }
    }
}
