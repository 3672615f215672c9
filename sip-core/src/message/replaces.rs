//! Replaces (RFC 3891 §6.1).

use crate::message::ValueError;
use crate::message::lex::{err, is_token_str};
use crate::message::params::{Params, eq_except, head_params, write_except};
use crate::message::scalars::parse_call_id;
use std::fmt;

const TYPED: &[&str] = &["to-tag", "from-tag", "early-only"];

/// `callid ;to-tag=x ;from-tag=y [;early-only]`.
///
/// `params` holds every parameter as received; the typed fields are
/// authoritative for `Display` and equality.
#[derive(Debug, Clone, Copy)]
pub struct Replaces<'a> {
    /// The Call-ID of the dialog to replace.
    pub call_id: &'a str,
    /// `to-tag` (required).
    pub to_tag: &'a str,
    /// `from-tag` (required).
    pub from_tag: &'a str,
    /// `early-only` flag.
    pub early_only: bool,
    /// All parameters as received.
    pub params: Params<'a>,
}

impl<'a> Replaces<'a> {
    /// Parses the value; both tags are required and must be tokens.
    pub fn parse(s: &'a str) -> Result<Self, ValueError> {
        let (call_id, params) = head_params(s)?;
        parse_call_id(call_id)?;
        let at = s.len() - params.as_str().len();
        let tag = |name, what| match params.get_raw(name) {
            Some(Some(t)) if is_token_str(t) => Ok(t),
            _ => Err(err(what, at)),
        };
        Ok(Replaces {
            call_id,
            to_tag: tag("to-tag", "missing to-tag")?,
            from_tag: tag("from-tag", "missing from-tag")?,
            early_only: params.contains("early-only"),
            params,
        })
    }
}

impl PartialEq for Replaces<'_> {
    fn eq(&self, o: &Self) -> bool {
        (self.call_id, self.to_tag, self.from_tag, self.early_only)
            == (o.call_id, o.to_tag, o.from_tag, o.early_only)
            && eq_except(&self.params, &o.params, TYPED)
    }
}
impl Eq for Replaces<'_> {}

impl fmt::Display for Replaces<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{};to-tag={};from-tag={}",
            self.call_id, self.to_tag, self.from_tag
        )?;
        if self.early_only {
            f.write_str(";early-only")?;
        }
        write_except(f, &self.params, TYPED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces() {
        let r =
            Replaces::parse("98732@sip.example.com ;from-tag=r33th4x0r ;to-tag=ff87ff").unwrap();
        assert_eq!(
            (r.call_id, r.to_tag, r.from_tag, r.early_only),
            ("98732@sip.example.com", "ff87ff", "r33th4x0r", false)
        );
        assert_eq!(
            r.to_string(),
            "98732@sip.example.com;to-tag=ff87ff;from-tag=r33th4x0r"
        );
        assert_eq!(Replaces::parse(&r.to_string()).unwrap(), r);
        let r = Replaces::parse(
            "12345600@atlanta.example.com;from-tag=1234567;to-tag=12345;early-only",
        )
        .unwrap();
        assert!(r.early_only);
        assert_eq!(Replaces::parse(&r.to_string()).unwrap(), r);
        assert_eq!(
            Replaces::parse("a@b;from-tag=1").unwrap_err().what,
            "missing to-tag"
        );
        assert_eq!(
            Replaces::parse("a@b;to-tag=1").unwrap_err().what,
            "missing from-tag"
        );
        assert_eq!(
            Replaces::parse("a@b@c;to-tag=1;from-tag=2")
                .unwrap_err()
                .what,
            "invalid call-id"
        );
    }
}
