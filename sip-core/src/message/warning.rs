//! Warning (RFC 3261 §20.43).

use crate::message::ValueError;
use crate::message::host::{parse_port, scan_host};
use crate::message::lex::{at, err, is_token_str, list, scan_quoted, scan_while, sub};
use std::fmt;

/// `warn-code SP warn-agent SP warn-text`, e.g. `307 isi.edu "Session parameter 'foo' not understood"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Warning<'a> {
    /// Three-digit code (3xx in RFC 3261).
    pub code: u16,
    /// hostport or pseudonym.
    pub agent: &'a str,
    /// The text between the quotes, escapes kept.
    pub text: &'a str,
}

/// warn-agent = hostport / pseudonym.
fn valid_agent(a: &str) -> bool {
    if is_token_str(a) {
        return true;
    }
    let Ok((_, e)) = scan_host(a, 0) else {
        return false;
    };
    match a.as_bytes().get(e) {
        None => true,
        Some(b':') => parse_port(sub(a, e + 1, a.len()), 0).is_ok(),
        _ => false,
    }
}

impl<'a> Warning<'a> {
    /// Parses one warning-value.
    pub fn parse(s: &'a str) -> Result<Self, ValueError> {
        let b = s.as_bytes();
        let ce = scan_while(b, 0, |c| c.is_ascii_digit());
        if ce != 3 {
            return Err(err("invalid warning code", 0));
        }
        let code = sub(s, 0, 3)
            .parse()
            .map_err(|_| err("invalid warning code", 0))?;
        if at(b, 3) != Some(b' ') {
            return Err(err("expected ' '", 3));
        }
        let ae = scan_while(b, 4, |c| c != b' ');
        let agent = sub(s, 4, ae);
        if !valid_agent(agent) {
            return Err(err("invalid warning agent", 4));
        }
        if at(b, ae) != Some(b' ') {
            return Err(err("expected ' '", ae));
        }
        let ts = ae + 1;
        let te = scan_quoted(b, ts)?;
        if te != b.len() {
            return Err(err("unexpected text after warning", te));
        }
        Ok(Warning {
            code,
            agent,
            text: sub(s, ts + 1, te - 1),
        })
    }

    /// Parses a comma list of warning-values.
    pub fn parse_list(s: &'a str) -> impl Iterator<Item = Result<Self, ValueError>> + use<'a> {
        list(s, false, Warning::parse)
    }

    /// Builds a warning; `text` must already be escaped for a quoted-string.
    pub fn new(code: u16, agent: &'a str, text: &'a str) -> Result<Self, ValueError> {
        if !(100..=999).contains(&code) {
            return Err(err("invalid warning code", 0));
        }
        if !valid_agent(agent) {
            return Err(err("invalid warning agent", 0));
        }
        let quoted_ok = {
            let mut esc = false;
            let mut ok = true;
            for c in text.bytes() {
                if esc {
                    esc = false;
                } else if c == b'\\' {
                    esc = true;
                } else if c == b'"' || (c < 0x20 && c != b'\t') || c == 0x7f {
                    ok = false;
                }
            }
            ok && !esc
        };
        if !quoted_ok {
            return Err(err("invalid warning text", 0));
        }
        Ok(Warning { code, agent, text })
    }
}

impl fmt::Display for Warning<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // warn-code is exactly three digits (RFC 3261 §25.1), so a parsed `002` stays `002`.
        write!(f, "{:03} {} \"{}\"", self.code, self.agent, self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings() {
        let w = Warning::parse("307 isi.edu \"Session parameter 'foo' not understood\"").unwrap();
        assert_eq!(
            (w.code, w.agent, w.text),
            (307, "isi.edu", "Session parameter 'foo' not understood")
        );
        assert_eq!(Warning::parse(&w.to_string()).unwrap(), w);
        let l: Vec<_> = Warning::parse_list("301 isi.edu \"Incompatible network address type 'E.164'\", 399 [2001:db8::1]:5060 \"a, \\\"b\\\"\"")
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(l[1].text, "a, \\\"b\\\"");
        let e = |s| Warning::parse(s).unwrap_err().what;
        assert_eq!(e("1812 overture \"In Progress\""), "invalid warning code"); // scalarlg
        assert_eq!(e("399 a,b \"x\""), "invalid warning agent");
        assert_eq!(e("399 host \"x"), "unbalanced quote");
        assert_eq!(e("399 host x"), "expected '\"'");
        assert_eq!(e("399 host \"x\" y"), "unexpected text after warning");
        assert_eq!(
            Warning::new(370, "proxy.example.com:5060", "Insufficient bandwidth")
                .unwrap()
                .to_string(),
            "370 proxy.example.com:5060 \"Insufficient bandwidth\""
        );
        assert!(Warning::new(370, "a", "bad \" quote").is_err());
        assert!(Warning::new(37, "a", "x").is_err());
    }
}

#[cfg(test)]
mod regression {
    use super::*;

    /// Fuzz finding (header_views): `002` was written back as `2`, which does not parse.
    #[test]
    fn a_code_with_leading_zeros_writes_back_as_three_digits() {
        let w = Warning::parse("002 em \"\"").unwrap();
        assert_eq!(w.to_string(), "002 em \"\"");
        assert_eq!(Warning::parse(&w.to_string()).unwrap(), w);
    }
}
