//! Byte scanners for the RFC 3261 §25.1 core rules shared by every view.
//!
//! All scanners take an index and return a new index; none of them index
//! without a bounds check, so no input can make them panic.

use crate::message::ValueError;
use std::borrow::Cow;

pub(crate) fn err(what: &'static str, offset: usize) -> ValueError {
    ValueError { what, offset }
}

/// Re-bases an error from a sub-slice onto the enclosing value.
pub(crate) fn shift(e: ValueError, base: usize) -> ValueError {
    ValueError {
        what: e.what,
        offset: e.offset + base,
    }
}

/// RFC 3261 §25.1 `token` characters.
pub(crate) use crate::message::syntax::{ByteSet, is_token};

pub(crate) fn is_ws(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// Whether `a` is the ASCII literal `canonical` in any case. Peers send the canonical
/// spelling almost always, so a byte is first compared as it is, and only a letter is then
/// compared with its case bit set. Inline and by byte: the literals are a few bytes long,
/// shorter than what a library compare or `eq_ignore_ascii_case` costs to set up.
#[inline]
pub(crate) fn eq_fold(a: impl AsRef<[u8]>, canonical: &[u8]) -> bool {
    let a = a.as_ref();
    a.len() == canonical.len()
        && a.iter()
            .zip(canonical)
            .all(|(&c, &l)| c == l || (l.is_ascii_alphabetic() && c | 0x20 == l | 0x20))
}

#[inline]
pub(crate) fn at(b: &[u8], i: usize) -> Option<u8> {
    b.get(i).copied()
}

pub(crate) fn scan_while(b: &[u8], mut i: usize, f: impl Fn(u8) -> bool) -> usize {
    while let Some(&c) = b.get(i) {
        if !f(c) {
            break;
        }
        i += 1;
    }
    i
}

pub(crate) fn skip_ws(b: &[u8], i: usize) -> usize {
    scan_while(b, i, is_ws)
}

pub(crate) fn scan_token(b: &[u8], i: usize) -> usize {
    scan_while(b, i, is_token)
}

pub(crate) fn is_token_str(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token)
}

/// Slices without panicking; out-of-range or non-boundary gives "".
#[inline]
pub(crate) fn sub(s: &str, from: usize, to: usize) -> &str {
    s.get(from..to).unwrap_or("")
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Checks `b[from..to]` against `allowed / escaped` (RFC 3261 §25.1).
pub(crate) fn check_escaped(
    b: &[u8],
    from: usize,
    to: usize,
    allowed: &ByteSet,
    what: &'static str,
) -> Result<(), ValueError> {
    let mut i = from;
    while i < to {
        let c = at(b, i).ok_or(err(what, i))?;
        if allowed[c as usize] {
            i += 1;
        } else if c == b'%' {
            if !escape_at(b, i) || i + 2 >= to {
                return Err(err("invalid escape", i));
            }
            i += 3;
        } else {
            return Err(err(what, i));
        }
    }
    Ok(())
}

/// Whether `b[i..]` starts with `%HH`.
pub(crate) fn escape_at(b: &[u8], i: usize) -> bool {
    at(b, i + 1).and_then(hex).is_some() && at(b, i + 2).and_then(hex).is_some()
}

/// Scans a quoted-string starting at the opening quote; returns the index
/// past the closing quote (RFC 3261 §25.1 quoted-string, quoted-pair).
pub(crate) fn scan_quoted(b: &[u8], i: usize) -> Result<usize, ValueError> {
    if at(b, i) != Some(b'"') {
        return Err(err("expected '\"'", i));
    }
    let mut j = i + 1;
    loop {
        match at(b, j) {
            None => return Err(err("unbalanced quote", i)),
            Some(b'"') => return Ok(j + 1),
            // quoted-pair excludes CR and LF: they could never be re-folded safely.
            Some(b'\\') => match at(b, j + 1) {
                Some(c) if c <= 0x7f && c != b'\r' && c != b'\n' => j += 2,
                Some(_) => return Err(err("invalid escape in quoted string", j)),
                None => return Err(err("unbalanced quote", i)),
            },
            Some(c) if c == b'\t' || (c >= 0x20 && c != 0x7f) => j += 1,
            Some(_) => return Err(err("control character in quoted string", j)),
        }
    }
}

/// Removes quoted-pair backslashes from the text between the quotes.
pub(crate) fn unescape_quoted(raw: &str) -> Cow<'_, str> {
    if !raw.contains('\\') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut esc = false;
    for c in raw.chars() {
        if esc || c != '\\' {
            out.push(c);
            esc = false;
        } else {
            esc = true;
        }
    }
    Cow::Owned(out)
}

/// Strips one pair of surrounding quotes, leaving escapes as they are.
pub(crate) fn strip_quotes(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

/// Decodes `%HH` escapes; bytes that are not UTF-8 become U+FFFD.
pub(crate) fn percent_decode(raw: &str) -> Cow<'_, str> {
    if !raw.contains('%') {
        return Cow::Borrowed(raw);
    }
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%'
            && let (Some(h), Some(l)) = (at(b, i + 1).and_then(hex), at(b, i + 2).and_then(hex))
        {
            out.push((h << 4) | l);
            i += 3;
            continue;
        }
        out.push(c);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

/// Parses 1*DIGIT into a u32; `overflow` names the error for too-large values.
pub(crate) fn parse_u32(s: &str, overflow: &'static str) -> Result<u32, ValueError> {
    if s.is_empty() {
        return Err(err("expected digits", 0));
    }
    let mut v: u32 = 0;
    for (i, c) in s.bytes().enumerate() {
        if !c.is_ascii_digit() {
            return Err(err("expected digits", i));
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u32::from(c - b'0')))
            .ok_or(err(overflow, 0))?;
    }
    Ok(v)
}

/// Splits a header value on commas outside quotes and `<...>`
/// (RFC 3261 §7.3.1); yields each element trimmed, with its offset.
#[derive(Debug, Clone)]
pub(crate) struct TopLevel<'a> {
    s: &'a str,
    pos: usize,
    done: bool,
}

impl<'a> TopLevel<'a> {
    /// `empty_ok`: an all-whitespace value is a list of zero elements.
    pub(crate) fn new(s: &'a str, empty_ok: bool) -> Self {
        let done = empty_ok && s.trim_matches([' ', '\t']).is_empty();
        TopLevel { s, pos: 0, done }
    }
}

impl<'a> Iterator for TopLevel<'a> {
    type Item = (usize, &'a str);
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let b = self.s.as_bytes();
        let start = self.pos;
        let mut i = start;
        let (mut inq, mut angle) = (false, false);
        while let Some(&c) = b.get(i) {
            if inq {
                match c {
                    b'\\' => i += 1,
                    b'"' => inq = false,
                    _ => {}
                }
            } else {
                match c {
                    b'"' => inq = true,
                    b'<' => angle = true,
                    b'>' => angle = false,
                    b',' if !angle => break,
                    _ => {}
                }
            }
            i += 1;
        }
        let end = i.min(b.len());
        if end >= b.len() {
            self.done = true;
        } else {
            self.pos = end + 1;
        }
        let raw = sub(self.s, start, end);
        let t = raw.trim_start_matches([' ', '\t']);
        let off = start + (raw.len() - t.len());
        Some((off, t.trim_end_matches([' ', '\t'])))
    }
}

/// Maps each top-level element through `parse`, rejecting empty elements.
pub(crate) fn list<'a, T>(
    s: &'a str,
    empty_ok: bool,
    parse: impl Fn(&'a str) -> Result<T, ValueError>,
) -> impl Iterator<Item = Result<T, ValueError>> {
    TopLevel::new(s, empty_ok).map(move |(off, el)| {
        if el.is_empty() {
            Err(err("empty list element", off))
        } else {
            parse(el).map_err(|e| shift(e, off))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eq_fold_is_eq_ignore_ascii_case() {
        for lit in [&b"SIP/2.0"[..], b";tag=", b"branch", b"sips", b"@[`{"] {
            for i in 0..lit.len() {
                for c in 0..=255u8 {
                    let mut a = lit.to_vec();
                    a[i] = c;
                    assert_eq!(eq_fold(&a, lit), a.eq_ignore_ascii_case(lit), "{a:?}");
                }
            }
            assert!(!eq_fold(&lit[1..], lit));
        }
    }

    #[test]
    fn top_level_respects_quotes_and_angles() {
        let v: Vec<_> = TopLevel::new(r#""a,\"b" <sip:x,y@h>;p=1 , c"#, false).collect();
        assert_eq!(v, vec![(0, r#""a,\"b" <sip:x,y@h>;p=1"#), (26, "c")]);
        assert_eq!(TopLevel::new("  ", true).count(), 0);
        assert_eq!(TopLevel::new("", false).count(), 1);
    }

    #[test]
    fn quoted_and_escapes() {
        assert_eq!(scan_quoted(br#""a\"b" x"#, 0), Ok(6));
        assert_eq!(
            scan_quoted(br#""abc\""#, 0).unwrap_err().what,
            "unbalanced quote"
        );
        assert_eq!(unescape_quoted(r#"J Rosenberg \\\""#), r#"J Rosenberg \""#);
        assert_eq!(percent_decode("cal%6Cer"), "caller");
        assert_eq!(percent_decode("null-%00-null"), "null-\0-null");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
        assert_eq!(parse_u32("4294967295", "x"), Ok(u32::MAX));
        assert_eq!(parse_u32("4294967296", "x").unwrap_err().what, "x");
    }
}
