//! Retry-After (RFC 3261 §20.33).

use crate::message::ValueError;
use crate::message::lex::{at, err, parse_u32, scan_while, shift, skip_ws, sub};
use crate::message::params::{Params, eq_except, write_except};
use std::fmt;

const TYPED: &[&str] = &["duration"];

/// `delta-seconds [ comment ] *(;duration=N ;generic-param)`.
///
/// `params` holds every parameter as received; `duration` is authoritative.
#[derive(Debug, Clone, Copy)]
pub struct RetryAfter<'a> {
    /// Seconds to wait; overflow is an error (RFC 4475 scalarlg).
    pub seconds: u32,
    /// The comment without its outer parentheses, as written.
    pub comment: Option<&'a str>,
    /// The `duration` parameter.
    pub duration: Option<u32>,
    /// All parameters as received.
    pub params: Params<'a>,
}

/// comment = "(" *(ctext / quoted-pair / comment) ")" (RFC 3261 §25.1); returns the end.
fn scan_comment(b: &[u8], i: usize) -> Result<usize, ValueError> {
    let mut depth = 0usize;
    let mut j = i;
    loop {
        match at(b, j) {
            None => return Err(err("unbalanced parenthesis", i)),
            Some(b'(') => depth += 1,
            Some(b')') => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Ok(j + 1);
                }
            }
            Some(b'\\') => match at(b, j + 1) {
                Some(c) if c <= 0x7f && c != b'\r' && c != b'\n' => j += 1,
                _ => return Err(err("invalid escape in comment", j)),
            },
            Some(c) if c < 0x20 && c != b'\t' || c == 0x7f => {
                return Err(err("control character in comment", j));
            }
            Some(_) => {}
        }
        j += 1;
    }
}

impl<'a> RetryAfter<'a> {
    /// Parses the value.
    pub fn parse(s: &'a str) -> Result<Self, ValueError> {
        let b = s.as_bytes();
        let ds = skip_ws(b, 0);
        let de = scan_while(b, ds, |c| c.is_ascii_digit());
        let seconds =
            parse_u32(sub(s, ds, de), "delta-seconds too large").map_err(|e| shift(e, ds))?;
        let mut i = skip_ws(b, de);
        let mut comment = None;
        if at(b, i) == Some(b'(') {
            let ce = scan_comment(b, i)?;
            comment = Some(sub(s, i + 1, ce - 1));
            i = ce;
        }
        let params = Params::parse(sub(s, i, s.len())).map_err(|e| shift(e, i))?;
        let duration = match params.get("duration") {
            None => None,
            Some(v) => Some(
                v.and_then(|v| parse_u32(v, "x").ok())
                    .ok_or(err("invalid duration", i))?,
            ),
        };
        Ok(RetryAfter {
            seconds,
            comment,
            duration,
            params,
        })
    }
}

impl PartialEq for RetryAfter<'_> {
    fn eq(&self, o: &Self) -> bool {
        (self.seconds, self.comment, self.duration) == (o.seconds, o.comment, o.duration)
            && eq_except(&self.params, &o.params, TYPED)
    }
}
impl Eq for RetryAfter<'_> {}

impl fmt::Display for RetryAfter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.seconds)?;
        if let Some(c) = self.comment {
            write!(f, " ({c})")?;
        }
        if let Some(d) = self.duration {
            write!(f, ";duration={d}")?;
        }
        write_except(f, &self.params, TYPED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after() {
        let r = RetryAfter::parse("18000;duration=3600").unwrap();
        assert_eq!(
            (r.seconds, r.duration, r.comment),
            (18000, Some(3600), None)
        );
        let r =
            RetryAfter::parse("120 (I'm in a meeting; (really) \\) busy);duration=60;x").unwrap();
        assert_eq!(r.comment, Some("I'm in a meeting; (really) \\) busy"));
        assert_eq!(
            r.to_string(),
            "120 (I'm in a meeting; (really) \\) busy);duration=60;x"
        );
        assert_eq!(RetryAfter::parse(&r.to_string()).unwrap(), r);
        let e = |s| RetryAfter::parse(s).unwrap_err().what;
        assert_eq!(e("949302838503028349304023988"), "delta-seconds too large"); // scalarlg
        assert_eq!(e("120 (open"), "unbalanced parenthesis");
        assert_eq!(e("120;duration=x"), "invalid duration");
        assert_eq!(e("x"), "expected digits");
        assert_eq!(e("120 x"), "expected ';'");
    }
}
