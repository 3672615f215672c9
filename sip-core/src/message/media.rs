//! Media types: Content-Type (RFC 3261 §20.15) and Accept (§20.1).

use crate::message::ValueError;
use crate::message::lex::{at, err, list, scan_token, shift, skip_ws, sub};
use crate::message::name_addr::parse_qvalue;
use crate::message::params::Params;
use std::fmt;

/// `m-type "/" m-subtype *(;param)`, e.g. `multipart/mixed;boundary=x`.
///
/// Also used for Accept media-ranges, where `*` is allowed as either part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentType<'a> {
    /// The top-level type, e.g. `application`.
    pub mtype: &'a str,
    /// The subtype, e.g. `sdp`.
    pub subtype: &'a str,
    /// Parameters as written.
    pub params: Params<'a>,
}

impl<'a> ContentType<'a> {
    /// Parses a Content-Type value; every m-parameter needs a value (RFC 3261 §25.1).
    pub fn parse(s: &'a str) -> Result<Self, ValueError> {
        let c = Self::parse_range(s)?;
        if let Some((n, _)) = c.params.iter().find(|(_, v)| v.is_none()) {
            let at = s.find(n).unwrap_or(0);
            return Err(err("expected '='", at + n.len()));
        }
        Ok(c)
    }

    /// Parses one Accept media-range (flag parameters allowed).
    pub fn parse_range(s: &'a str) -> Result<Self, ValueError> {
        let b = s.as_bytes();
        let i = skip_ws(b, 0);
        let te = scan_token(b, i);
        if te == i {
            return Err(err("expected media type", i));
        }
        let slash = skip_ws(b, te);
        if at(b, slash) != Some(b'/') {
            return Err(err("expected '/'", slash));
        }
        let ss = skip_ws(b, slash + 1);
        let se = scan_token(b, ss);
        if se == ss {
            return Err(err("expected media subtype", ss));
        }
        let params = Params::parse(sub(s, se, s.len())).map_err(|e| shift(e, se))?;
        Ok(ContentType {
            mtype: sub(s, i, te),
            subtype: sub(s, ss, se),
            params,
        })
    }

    /// Builds `mtype/subtype` with no parameters (both must be tokens).
    pub fn new(mtype: &'a str, subtype: &'a str) -> Result<Self, ValueError> {
        if !crate::message::lex::is_token_str(mtype) || !crate::message::lex::is_token_str(subtype)
        {
            return Err(err("invalid media type", 0));
        }
        Ok(ContentType {
            mtype,
            subtype,
            params: Params::default(),
        })
    }

    /// Case-insensitive comparison of type and subtype (RFC 2045 §5.1).
    pub fn is(&self, mtype: &str, subtype: &str) -> bool {
        self.mtype.eq_ignore_ascii_case(mtype) && self.subtype.eq_ignore_ascii_case(subtype)
    }

    /// Whether this Accept range covers `mtype/subtype` (`*` wildcards).
    pub fn matches(&self, mtype: &str, subtype: &str) -> bool {
        (self.mtype == "*" || self.mtype.eq_ignore_ascii_case(mtype))
            && (self.subtype == "*" || self.subtype.eq_ignore_ascii_case(subtype))
    }

    /// The `q` parameter in thousandths, for Accept ranges.
    pub fn q(&self) -> Option<u16> {
        parse_qvalue(self.params.get("q").flatten()?)
    }

    /// Parses an Accept value; an empty value is an empty list (RFC 3261 §20.1).
    pub fn parse_accept(s: &'a str) -> impl Iterator<Item = Result<Self, ValueError>> + use<'a> {
        list(s, true, ContentType::parse_range)
    }
}

impl fmt::Display for ContentType<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}{}", self.mtype, self.subtype, self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type() {
        let c = ContentType::parse("multipart/mixed;boundary=7a9cbec02ceef655").unwrap(); // mpart01
        assert!(c.is("Multipart", "MIXED"));
        assert_eq!(c.params.get("boundary"), Some(Some("7a9cbec02ceef655")));
        assert_eq!(ContentType::parse(&c.to_string()).unwrap(), c);
        let c = ContentType::parse("application/sdp").unwrap();
        assert!(c.is("application", "sdp"));
        let c = ContentType::parse("text/plain ; charset = \"utf-8\"").unwrap();
        assert_eq!(c.to_string(), "text/plain;charset=\"utf-8\"");
        assert_eq!(
            ContentType::parse("application / unknownformat")
                .unwrap()
                .subtype,
            "unknownformat"
        );
        let e = |s| ContentType::parse(s).unwrap_err().what;
        assert_eq!(e("application"), "expected '/'");
        assert_eq!(e("application/"), "expected media subtype");
        assert_eq!(e("/sdp"), "expected media type");
        assert_eq!(e("text/plain;flag"), "expected '='");
        assert_eq!(e("text/plain x"), "expected ';'");
        assert_eq!(
            ContentType::new("application", "sdp").unwrap().to_string(),
            "application/sdp"
        );
    }

    #[test]
    fn accept() {
        let v: Vec<_> = ContentType::parse_accept("application/sdp, application/pkcs7-mime,         multipart/mixed, multipart/signed,         message/sip, message/sipfrag")
            .collect::<Result<_, _>>()
            .unwrap(); // semiuri
        assert_eq!(v.len(), 6);
        assert!(v[5].is("message", "sipfrag"));
        let v: Vec<_> = ContentType::parse_accept("*/*;q=0.1, text/*")
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(v[0].q(), Some(100));
        assert!(v[1].matches("TEXT", "html"));
        assert_eq!(ContentType::parse_accept("").count(), 0);
        assert!(ContentType::parse_accept("text/nobodyKnowsThis").all(|r| r.is_ok())); // sdp01
        assert!(ContentType::parse_accept("a/b,,c/d").any(|r| r.is_err()));
    }
}
