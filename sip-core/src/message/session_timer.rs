//! Session-Expires (RFC 4028 §4).

use crate::message::ValueError;
use crate::message::lex::{err, parse_u32};
use crate::message::params::{Params, eq_except, head_params, write_except};
use std::fmt;

const TYPED: &[&str] = &["refresher"];

/// Who refreshes the session (RFC 4028 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refresher {
    /// `uac`
    Uac,
    /// `uas`
    Uas,
}

/// `delta-seconds *(;refresher=uac|uas ;generic-param)`.
///
/// `params` holds every parameter as received; `refresher` is authoritative
/// for `Display` and equality.
#[derive(Debug, Clone, Copy)]
pub struct SessionExpires<'a> {
    /// The session interval in seconds.
    pub delta: u32,
    /// The `refresher` parameter.
    pub refresher: Option<Refresher>,
    /// All parameters as received.
    pub params: Params<'a>,
}

impl<'a> SessionExpires<'a> {
    /// Parses the value; an unknown refresher is "invalid refresher".
    pub fn parse(s: &'a str) -> Result<Self, ValueError> {
        let (head, params) = head_params(s)?;
        let delta = parse_u32(head, "delta-seconds too large")?;
        let at = s.len() - params.as_str().len();
        let refresher = match params.get_raw("refresher") {
            None => None,
            Some(Some(v)) if v.eq_ignore_ascii_case("uac") => Some(Refresher::Uac),
            Some(Some(v)) if v.eq_ignore_ascii_case("uas") => Some(Refresher::Uas),
            Some(_) => return Err(err("invalid refresher", at)),
        };
        Ok(SessionExpires {
            delta,
            refresher,
            params,
        })
    }
}

impl PartialEq for SessionExpires<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.delta == o.delta
            && self.refresher == o.refresher
            && eq_except(&self.params, &o.params, TYPED)
    }
}
impl Eq for SessionExpires<'_> {}

impl fmt::Display for SessionExpires<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.delta)?;
        match self.refresher {
            Some(Refresher::Uac) => f.write_str(";refresher=uac")?,
            Some(Refresher::Uas) => f.write_str(";refresher=uas")?,
            None => {}
        }
        write_except(f, &self.params, TYPED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_expires() {
        let s = SessionExpires::parse("4000;refresher=UAC;x").unwrap();
        assert_eq!((s.delta, s.refresher), (4000, Some(Refresher::Uac)));
        assert_eq!(s.to_string(), "4000;refresher=uac;x");
        assert_eq!(SessionExpires::parse(&s.to_string()).unwrap(), s);
        let b = SessionExpires {
            delta: 1800,
            refresher: Some(Refresher::Uas),
            params: Params::default(),
        };
        assert_eq!(SessionExpires::parse(&b.to_string()).unwrap(), b);
        assert_eq!(SessionExpires::parse("90").unwrap().refresher, None);
        assert_eq!(
            SessionExpires::parse("90;refresher=me").unwrap_err().what,
            "invalid refresher"
        );
        assert_eq!(
            SessionExpires::parse("90;refresher").unwrap_err().what,
            "invalid refresher"
        );
        assert_eq!(
            SessionExpires::parse("x").unwrap_err().what,
            "expected digits"
        );
    }
}
