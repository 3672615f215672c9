//! The host part of SIP URIs and Via sent-by (RFC 3261 §25.1, RFC 5118).

use crate::message::ValueError;
use crate::message::lex::{at, err, scan_while, sub};
use crate::message::syntax::is_hostname;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// A host: domain name, IPv4 address or (bracketed on the wire) IPv6 address.
///
/// Domain names compare case-insensitively (RFC 3261 §19.1.4).
#[derive(Debug, Clone, Copy)]
pub enum Host<'a> {
    /// A hostname, as written.
    Domain(&'a str),
    /// A dotted-quad IPv4 address.
    Ipv4(Ipv4Addr),
    /// An IPv6 address, written as `[...]` (RFC 3261 §25.1 IPv6reference).
    Ipv6(Ipv6Addr),
}

impl<'a> Host<'a> {
    /// Parses exactly one host; IPv6 must be bracketed (RFC 5118 §4.2).
    pub fn parse(s: &'a str) -> Result<Self, ValueError> {
        let (h, end) = scan_host(s, 0)?;
        if end != s.len() {
            return Err(err("invalid host", end));
        }
        Ok(h)
    }

    /// The domain name, if this host is one.
    pub fn domain(&self) -> Option<&'a str> {
        match self {
            Host::Domain(d) => Some(d),
            _ => None,
        }
    }
}

impl PartialEq for Host<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Host::Domain(a), Host::Domain(b)) => a.eq_ignore_ascii_case(b),
            (Host::Ipv4(a), Host::Ipv4(b)) => a == b,
            (Host::Ipv6(a), Host::Ipv6(b)) => a == b,
            _ => false,
        }
    }
}
impl Eq for Host<'_> {}

impl fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::Ipv4(a) => f.write_str(ipv4_text(a, &mut [0; 15])),
            Host::Ipv6(a) => write!(f, "[{a}]"),
        }
    }
}

/// A dotted quad written into `buf`: the formatting machinery behind `Ipv4Addr`'s `Display`
/// cost ~1,000 instructions for every sent-by key and Via written.
pub(crate) fn ipv4_text<'b>(a: &Ipv4Addr, buf: &'b mut [u8; 15]) -> &'b str {
    let mut n = 0;
    for (k, octet) in a.octets().into_iter().enumerate() {
        if k > 0 {
            buf[n] = b'.';
            n += 1;
        }
        if octet >= 100 {
            buf[n] = b'0' + octet / 100;
            n += 1;
        }
        if octet >= 10 {
            buf[n] = b'0' + octet / 10 % 10;
            n += 1;
        }
        buf[n] = b'0' + octet % 10;
        n += 1;
    }
    // Only digits and dots were written.
    std::str::from_utf8(&buf[..n]).unwrap_or_default()
}

/// Scans a host at `i`; returns it and the index after it.
pub(crate) fn scan_host(s: &str, i: usize) -> Result<(Host<'_>, usize), ValueError> {
    let b = s.as_bytes();
    if at(b, i) == Some(b'[') {
        let close =
            memchr::memchr(b']', b.get(i..).unwrap_or(&[])).ok_or(err("expected ']'", i))?;
        let a = sub(s, i + 1, i + close)
            .parse::<Ipv6Addr>()
            .map_err(|_| err("invalid ipv6 address", i))?;
        return Ok((Host::Ipv6(a), i + close + 1));
    }
    let end = scan_while(b, i, is_hostname);
    let h = sub(s, i, end);
    // RFC 5118 §4.2: say so when an unbracketed IPv6 address is what we see. Only a colon
    // right after the host followed by a second one (past hex digits and dots) can be one,
    // so a host and port pay for no more than that look.
    let second_colon = || {
        let after = scan_while(b, end + 1, |c| c.is_ascii_hexdigit() || c == b'.');
        at(b, after) == Some(b':')
    };
    if at(b, end) == Some(b':') && second_colon() {
        let v6end = scan_while(b, i, |c| c.is_ascii_hexdigit() || c == b':' || c == b'.');
        let v6 = sub(s, i, v6end);
        if v6.bytes().filter(|&c| c == b':').count() >= 2 && v6.parse::<Ipv6Addr>().is_ok() {
            return Err(err("ipv6 address needs brackets", i));
        }
    }
    classify(h).map(|h| (h, end)).ok_or(err("invalid host", i))
}

/// hostname / IPv4address per RFC 3261 §25.1 (a toplabel starts with ALPHA,
/// so an all-numeric name must be a valid IPv4 address). One pass, no splitting.
pub(crate) fn classify(h: &str) -> Option<Host<'_>> {
    let b = h.as_bytes();
    let &first = b.first()?;
    if first.is_ascii_digit()
        && let Some(quad) = dotted_quad(b)
    {
        return quad.map(Host::Ipv4);
    }
    // A fully qualified name may end in one dot.
    let name = b.strip_suffix(b".").unwrap_or(b);
    // Each label is non-empty and alphanumeric at both ends, with `-` only inside; the
    // last (top) label starts with a letter. One table load per byte.
    let mut prev = DOT;
    let mut top_first = 0u8;
    for &c in name {
        let class = HOST_CLASS[c as usize];
        if class == DOT {
            if prev & ALNUM == 0 {
                return None;
            }
        } else if prev == DOT {
            if class & ALNUM == 0 {
                return None;
            }
            top_first = class;
        } else if class & (ALNUM | DASH) == 0 {
            return None;
        }
        prev = class;
    }
    (prev & ALNUM != 0 && top_first & ALPHA != 0).then_some(Host::Domain(h))
}

const ALNUM: u8 = 1;
const ALPHA: u8 = 2;
const DASH: u8 = 4;
const DOT: u8 = 8;

/// The classes of hostname bytes [`classify`] tells apart (0 for every other byte).
static HOST_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = if b.is_ascii_alphabetic() {
            ALNUM | ALPHA
        } else if b.is_ascii_digit() {
            ALNUM
        } else if b == b'-' {
            DASH
        } else if b == b'.' {
            DOT
        } else {
            0
        };
        c += 1;
    }
    t
};

/// A host of digits and dots only, read in one pass: `Some(Some(address))` for a dotted
/// quad (four `1*3DIGIT` parts, each at most 255, leading zeros allowed), `Some(None)` for
/// any other digits and dots (which no rule accepts: an all-numeric name is not a
/// hostname), `None` when another byte shows it is a name to classify.
pub(crate) fn dotted_quad(h: &[u8]) -> Option<Option<Ipv4Addr>> {
    let mut o = [0u8; 4];
    let (mut n, mut digits, mut v, mut bad) = (0usize, 0, 0u16, false);
    for &c in h {
        if c == b'.' {
            match o.get_mut(n) {
                Some(slot) if digits > 0 && v <= 255 => *slot = v as u8,
                _ => bad = true,
            }
            n += 1;
            (digits, v) = (0, 0);
        } else if c.is_ascii_digit() {
            digits += 1;
            bad |= digits > 3;
            // Kept below 10,000 however long the run, so it cannot overflow.
            v = (v % 1000) * 10 + u16::from(c - b'0');
        } else {
            return None;
        }
    }
    if bad || n != 3 || digits == 0 || v > 255 {
        return Some(None);
    }
    o[3] = v as u8;
    Some(Some(Ipv4Addr::from(o)))
}

/// Parses a port (1*DIGIT, at most 65535).
pub(crate) fn parse_port(s: &str, base: usize) -> Result<u16, ValueError> {
    // One pass: a fault in the digits is named before the range, as the grammar reads it.
    let (mut v, mut digits) = (0u32, true);
    for c in s.bytes() {
        digits &= c.is_ascii_digit();
        v = (v * 10 + u32::from(c.wrapping_sub(b'0'))).min(1 << 16);
    }
    if s.is_empty() || !digits {
        return Err(err("invalid port", base));
    }
    u16::try_from(v).map_err(|_| err("port out of range", base))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The grammar read the plain way, label by label: the oracle for [`classify`].
    fn by_labels(h: &str) -> Option<Host<'_>> {
        if !h.is_empty() && h.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
            return h.parse::<Ipv4Addr>().ok().map(Host::Ipv4).or_else(|| {
                // std refuses leading zeros, which RFC 3261's IPv4address allows.
                let parts: Vec<&str> = h.split('.').collect();
                let ok = parts.len() == 4
                    && parts
                        .iter()
                        .all(|p| (1..=3).contains(&p.len()) && p.parse::<u8>().is_ok());
                ok.then(|| {
                    let o: Vec<u8> = parts.iter().map(|p| p.parse().unwrap()).collect();
                    Host::Ipv4(Ipv4Addr::new(o[0], o[1], o[2], o[3]))
                })
            });
        }
        let labels: Vec<&str> = h.strip_suffix('.').unwrap_or(h).split('.').collect();
        let ok = labels.iter().all(|l| {
            let b = l.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        });
        let top = labels.last().and_then(|l| l.bytes().next());
        (ok && top.is_some_and(|c| c.is_ascii_alphabetic())).then_some(Host::Domain(h))
    }

    proptest! {
        #[test]
        fn one_pass_classification_agrees_with_reading_label_by_label(h in "[a1Z9.-]{0,12}") {
            prop_assert_eq!(classify(&h), by_labels(&h));
        }

        #[test]
        fn digits_and_dots_are_classified_as_label_by_label(h in "[0-9.]{0,18}|[0-9.a]{0,10}") {
            prop_assert_eq!(classify(&h), by_labels(&h));
        }

        #[test]
        fn a_port_is_read_as_the_grammar_reads_it(p in "[0-9]{0,8}|[0-9a: ]{0,6}") {
            let grammar = if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
                Err(err("invalid port", 3))
            } else {
                p.parse::<u16>().map_err(|_| err("port out of range", 3))
            };
            prop_assert_eq!(parse_port(&p, 3), grammar);
        }
    }

    #[test]
    fn dotted_quads_are_written_as_std_writes_them() {
        for a in [
            [0, 0, 0, 0],
            [255, 255, 255, 255],
            [192, 0, 2, 1],
            [10, 100, 7, 99],
        ] {
            let a = Ipv4Addr::from(a);
            assert_eq!(Host::Ipv4(a).to_string(), a.to_string());
        }
    }

    #[test]
    fn hosts() {
        assert_eq!(
            Host::parse("Example.COM").unwrap(),
            Host::parse("example.com").unwrap()
        );
        assert_eq!(
            Host::parse("192.0.2.1").unwrap(),
            Host::Ipv4(Ipv4Addr::new(192, 0, 2, 1))
        );
        assert!(matches!(
            Host::parse("[2001:db8::192.0.2.1]"),
            Ok(Host::Ipv6(_))
        ));
        assert_eq!(
            Host::parse("[2001:db8:::192.0.2.1]").unwrap_err().what,
            "invalid ipv6 address"
        );
        assert_eq!(
            Host::parse("2001:db8::10").unwrap_err().what,
            "ipv6 address needs brackets"
        );
        assert_eq!(Host::parse("256.1.1.1").unwrap_err().what, "invalid host");
        assert_eq!(Host::parse("a..b").unwrap_err().what, "invalid host");
        assert_eq!(Host::parse("-a.com").unwrap_err().what, "invalid host");
        assert_eq!(Host::parse("a.123").unwrap_err().what, "invalid host");
        assert!(Host::parse("example.com.").is_ok());
        assert_eq!(
            Host::parse("[::ffff:192.0.2.2]").unwrap().to_string(),
            "[::ffff:192.0.2.2]"
        );
        assert_eq!(
            parse_port("70000", 0).unwrap_err().what,
            "port out of range"
        );
    }
}
