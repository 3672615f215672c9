//! Small numeric and word-valued headers: CSeq, Call-ID, Max-Forwards,
//! Expires, Min-Expires, Content-Length, RSeq, RAck, Min-SE.

use crate::message::ValueError;
use crate::message::lex::{err, is_token_str, parse_u32, shift, skip_ws, sub};
use crate::message::syntax::is_word;
use std::fmt;

/// Splits on runs of LWS into exactly `N` non-empty fields.
fn fields<const N: usize>(s: &str) -> Result<[(usize, &str); N], ValueError> {
    let b = s.as_bytes();
    let mut out = [(0, ""); N];
    let mut i = skip_ws(b, 0);
    for slot in out.iter_mut() {
        let e = crate::message::lex::scan_while(b, i, |c| c != b' ' && c != b'\t');
        if e == i {
            return Err(err("missing field", i));
        }
        *slot = (i, sub(s, i, e));
        i = skip_ws(b, e);
    }
    if i < b.len() {
        return Err(err("unexpected text", i));
    }
    Ok(out)
}

fn num(at: usize, s: &str, overflow: &'static str) -> Result<u32, ValueError> {
    parse_u32(s, overflow).map_err(|e| shift(e, at))
}

fn method(at: usize, s: &str) -> Result<&str, ValueError> {
    if is_token_str(s) {
        Ok(s)
    } else {
        Err(err("invalid method", at))
    }
}

/// CSeq: `1*DIGIT LWS Method` (RFC 3261 §20.16); any u32 is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// The sequence number.
    pub seq: u32,
    /// The method, case-sensitive (RFC 3261 §7.1).
    pub method: &'a str,
}

impl<'a> CSeq<'a> {
    /// Parses `seq method`; a number over u32 is "cseq number too large" (RFC 4475 scalar02).
    pub fn parse(s: &'a str) -> Result<Self, ValueError> {
        if let Some(cseq) = Self::parse_plain(s) {
            return Ok(cseq);
        }
        let [(a, n), (b, m)] = fields::<2>(s)?;
        Ok(CSeq {
            seq: num(a, n, "cseq number too large")?,
            method: method(b, m)?,
        })
    }

    /// The shape every CSeq has in practice, read in one pass: up to ten digits whose value
    /// fits a u32, one space, a method token to the end. `None` for anything else (every
    /// fault included), which the field grammar then reads and names.
    fn parse_plain(s: &'a str) -> Option<Self> {
        let b = s.as_bytes();
        let (mut i, mut seq) = (0, 0u64);
        while let Some(d) = b.get(i).filter(|c| c.is_ascii_digit() && i < 10) {
            seq = seq * 10 + u64::from(d - b'0');
            i += 1;
        }
        if i == 0 || b.get(i) != Some(&b' ') {
            return None;
        }
        let method = s
            .get(i + 1..)
            .filter(|m| !m.is_empty() && is_token_str(m))?;
        Some(CSeq {
            seq: u32::try_from(seq).ok()?,
            method,
        })
    }
}

impl fmt::Display for CSeq<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// Validates a Call-ID, `word [ "@" word ]` (RFC 3261 §20.8), returning it.
pub fn parse_call_id(s: &str) -> Result<&str, ValueError> {
    let (a, b) = match memchr::memchr(b'@', s.as_bytes()) {
        // '@' is ASCII, so both sides are on character boundaries.
        Some(at) => (&s[..at], &s[at + 1..]),
        None => (s, "x"),
    };
    if a.is_empty() || !a.bytes().all(is_word) {
        return Err(err("invalid call-id", 0));
    }
    if b.is_empty() || !b.bytes().all(is_word) {
        return Err(err("invalid call-id", a.len() + 1));
    }
    Ok(s)
}

macro_rules! delta {
    ($(#[$m:meta])* $name:ident, $over:literal) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u32);

        impl $name {
            /// Parses `1*DIGIT`; values over u32 are an error, not clamped.
            pub fn parse(s: &str) -> Result<Self, ValueError> {
                parse_u32(s, $over).map($name)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

delta!(
    /// Expires delta-seconds (RFC 3261 §20.19). RFC 3261 lets a UA read
    /// huge values as 2**32-1; this parser rejects them instead (RFC 4475 scalar02).
    Expires,
    "delta-seconds too large"
);
delta!(
    /// Min-Expires delta-seconds (RFC 3261 §20.23); overflow is an error.
    MinExpires,
    "delta-seconds too large"
);
delta!(
    /// Content-Length (RFC 3261 §20.14): digits only, so `-999` fails (RFC 4475 ncl).
    ContentLength,
    "content-length too large"
);
delta!(
    /// RSeq response number (RFC 3262 §7.1).
    RSeq,
    "rseq too large"
);

/// Max-Forwards, 0 to 255 (RFC 3261 §20.22; leading zeros allowed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MaxForwards(pub u8);

impl MaxForwards {
    /// Parses `1*DIGIT`; above 255 is "max-forwards out of range".
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let v = parse_u32(s, "max-forwards out of range")?;
        u8::try_from(v)
            .map(MaxForwards)
            .map_err(|_| err("max-forwards out of range", 0))
    }
}

impl fmt::Display for MaxForwards {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Min-SE (RFC 4028 §5): delta-seconds; generic params are accepted and dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MinSe(pub u32);

impl MinSe {
    /// Parses `delta-seconds *(;generic-param)`.
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let (head, _) = crate::message::params::head_params(s)?;
        parse_u32(head, "delta-seconds too large").map(MinSe)
    }
}

impl fmt::Display for MinSe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// RAck: `response-num LWS CSeq-num LWS Method` (RFC 3262 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RAck<'a> {
    /// The RSeq being acknowledged.
    pub rseq: u32,
    /// The CSeq number of the request the response was for.
    pub cseq: u32,
    /// That request's method.
    pub method: &'a str,
}

impl<'a> RAck<'a> {
    /// Parses the three fields.
    pub fn parse(s: &'a str) -> Result<Self, ValueError> {
        let [(a, r), (b, c), (m, me)] = fields::<3>(s)?;
        Ok(RAck {
            rseq: num(a, r, "rseq too large")?,
            cseq: num(b, c, "cseq number too large")?,
            method: method(m, me)?,
        })
    }
}

impl fmt::Display for RAck<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.rseq, self.cseq, self.method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn the_plain_cseq_reading_agrees_with_the_field_grammar(
            s in "[0-9]{0,12}[ \t]{0,2}[A-Za-z0-9@ ]{0,8}",
        ) {
            if let Some(plain) = CSeq::parse_plain(&s) {
                let [(a, n), (b, m)] = fields::<2>(&s).unwrap();
                let grammar = CSeq {
                    seq: num(a, n, "cseq number too large").unwrap(),
                    method: method(b, m).unwrap(),
                };
                proptest::prop_assert_eq!(plain, grammar);
            }
        }
    }

    #[test]
    fn cseq() {
        assert_eq!(
            CSeq::parse("0009   INVITE").unwrap(),
            CSeq {
                seq: 9,
                method: "INVITE"
            }
        ); // wsinv
        let m = "!interesting-Method0123456789_*+`.%indeed'~";
        let c = CSeq::parse("139122385 !interesting-Method0123456789_*+`.%indeed'~").unwrap(); // intmeth
        assert_eq!(c.method, m);
        assert_eq!(CSeq::parse(&c.to_string()).unwrap(), c);
        assert_eq!(CSeq::parse("4294967295 ACK").unwrap().seq, u32::MAX);
        let e = |s| CSeq::parse(s).unwrap_err().what;
        assert_eq!(e("36893488147419103232 REGISTER"), "cseq number too large"); // scalar02
        assert_eq!(e("9292394834772304023312 OPTIONS"), "cseq number too large"); // scalarlg
        assert_eq!(e("1"), "missing field");
        assert_eq!(e("1 INVITE x"), "unexpected text");
        assert_eq!(e("-1 INVITE"), "expected digits");
        assert_eq!(e("1 IN\"VITE"), "invalid method");
        assert_eq!(e("RE%47IST%45R"), "missing field");
        assert_eq!(
            CSeq::parse("29344 RE%47IST%45R").unwrap().method,
            "RE%47IST%45R"
        ); // esc02
    }

    #[test]
    fn call_id() {
        for ok in [
            "wsinv.ndaksdj@192.0.2.1",
            "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{",
            "3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..",
            "SSG9559905523997077@hlau_4100",
            "esc01.239409asdfakjkn23onasd0-3234",
        ] {
            assert_eq!(parse_call_id(ok), Ok(ok));
        }
        for bad in ["", "a@", "@b", "a@b@c", "a b", "a;b", "a,b"] {
            assert_eq!(
                parse_call_id(bad).unwrap_err().what,
                "invalid call-id",
                "{bad}"
            );
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(MaxForwards::parse("0068"), Ok(MaxForwards(68)));
        assert_eq!(MaxForwards::parse("255"), Ok(MaxForwards(255)));
        assert_eq!(
            MaxForwards::parse("300").unwrap_err().what,
            "max-forwards out of range"
        ); // scalar02
        assert_eq!(
            MaxForwards::parse("99999999999").unwrap_err().what,
            "max-forwards out of range"
        );
        assert_eq!(MaxForwards::parse("").unwrap_err().what, "expected digits");
        let huge = format!("1{}", "0".repeat(100));
        assert_eq!(
            Expires::parse(&huge).unwrap_err().what,
            "delta-seconds too large"
        ); // scalar02
        assert_eq!(Expires::parse("4294967295"), Ok(Expires(u32::MAX)));
        assert_eq!(MinExpires::parse("60").unwrap().to_string(), "60");
        assert_eq!(
            ContentLength::parse("-999").unwrap_err().what,
            "expected digits"
        ); // ncl
        assert_eq!(ContentLength::parse("150"), Ok(ContentLength(150)));
        assert_eq!(
            ContentLength::parse("1 5").unwrap_err().what,
            "expected digits"
        );
        assert_eq!(RSeq::parse("988789"), Ok(RSeq(988789)));
        assert_eq!(MinSe::parse("90;x=y"), Ok(MinSe(90)));
        assert_eq!(MinSe::parse(";x").unwrap_err().what, "expected value");
        let r = RAck::parse("776656 1 INVITE").unwrap();
        assert_eq!((r.rseq, r.cseq, r.method), (776656, 1, "INVITE"));
        assert_eq!(RAck::parse(&r.to_string()).unwrap(), r);
        assert_eq!(RAck::parse("1 INVITE").unwrap_err().what, "missing field");
        assert_eq!(
            RAck::parse("1 x INVITE").unwrap_err().what,
            "expected digits"
        );
    }
}
