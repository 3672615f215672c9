//! Reason header values (RFC 3326 §2).

use crate::message::ValueError;
use crate::message::lex::{err, is_token_str, list, strip_quotes};
use crate::message::params::{Params, eq_except, head_params, write_except};
use std::fmt;

const TYPED: &[&str] = &["cause", "text"];

/// `protocol *(;cause=N ;text="..." ;ext)`, e.g. `SIP ;cause=200 ;text="Call completed elsewhere"`.
///
/// `params` holds every parameter as received; `Display` and equality use
/// `cause`/`text` from the typed fields and the other parameters from `params`.
#[derive(Debug, Clone, Copy)]
pub struct Reason<'a> {
    /// `SIP`, `Q.850` or another token.
    pub protocol: &'a str,
    /// The cause code.
    pub cause: Option<u16>,
    /// The text between the quotes, escapes kept.
    pub text: Option<&'a str>,
    /// All parameters as received.
    pub params: Params<'a>,
}

impl<'a> Reason<'a> {
    /// Parses one reason-value.
    pub fn parse(s: &'a str) -> Result<Self, ValueError> {
        let (protocol, params) = head_params(s)?;
        if !is_token_str(protocol) {
            return Err(err("invalid protocol", 0));
        }
        let at = s.len() - params.as_str().len();
        let mut r = Reason {
            protocol,
            cause: None,
            text: None,
            params,
        };
        for (n, v) in params.iter_raw() {
            if n.eq_ignore_ascii_case("cause") {
                let c = v
                    .filter(|v| v.bytes().all(|c| c.is_ascii_digit()))
                    .and_then(|v| v.parse().ok());
                r.cause = Some(c.ok_or(err("invalid cause", at))?);
            } else if n.eq_ignore_ascii_case("text") {
                let v = v
                    .filter(|v| v.starts_with('"'))
                    .ok_or(err("expected quoted text", at))?;
                r.text = Some(strip_quotes(v));
            }
        }
        Ok(r)
    }

    /// Parses a comma list of reason-values.
    pub fn parse_list(s: &'a str) -> impl Iterator<Item = Result<Self, ValueError>> + use<'a> {
        list(s, false, Reason::parse)
    }
}

impl PartialEq for Reason<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.protocol.eq_ignore_ascii_case(o.protocol)
            && self.cause == o.cause
            && self.text == o.text
            && eq_except(&self.params, &o.params, TYPED)
    }
}
impl Eq for Reason<'_> {}

impl fmt::Display for Reason<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.protocol)?;
        if let Some(c) = self.cause {
            write!(f, ";cause={c}")?;
        }
        if let Some(t) = self.text {
            write!(f, ";text=\"{t}\"")?;
        }
        write_except(f, &self.params, TYPED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons() {
        let r = Reason::parse("SIP ;cause=200 ;text=\"Call completed elsewhere\"").unwrap();
        assert_eq!(
            (r.protocol, r.cause, r.text),
            ("SIP", Some(200), Some("Call completed elsewhere"))
        );
        assert_eq!(
            r.to_string(),
            "SIP;cause=200;text=\"Call completed elsewhere\""
        );
        assert_eq!(Reason::parse(&r.to_string()).unwrap(), r);
        let l: Vec<_> = Reason::parse_list("Q.850;cause=16;text=\"Terminated\", SIP;cause=600;x=y")
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!((l[0].protocol, l[0].cause), ("Q.850", Some(16)));
        assert_eq!(l[1].to_string(), "SIP;cause=600;x=y");
        let built = Reason {
            protocol: "SIP",
            cause: Some(487),
            text: None,
            params: Params::default(),
        };
        assert_eq!(Reason::parse("SIP;cause=487").unwrap(), built);
        let e = |s| Reason::parse(s).unwrap_err().what;
        assert_eq!(e("SIP;cause=abc"), "invalid cause");
        assert_eq!(e("SIP;cause=99999"), "invalid cause");
        assert_eq!(e("SIP;text=bare"), "expected quoted text");
        assert_eq!(e("S I P"), "invalid protocol");
        assert_eq!(e(";cause=1"), "expected value");
    }
}
