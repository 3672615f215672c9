//! `;name[=value]` parameter lists: header generic-params (RFC 3261 §25.1)
//! and URI parameters (RFC 3261 §19.1.1).

use crate::message::ValueError;
use crate::message::lex::{
    at, err, escape_at, is_token, scan_quoted, scan_token, skip_ws, strip_quotes, sub,
};
use crate::message::syntax::URI_PARAM;
use std::fmt;

/// A validated `;name[=value]` list kept as raw text.
///
/// Names compare case-insensitively (RFC 3261 §7.3.1); values are compared
/// exactly. Equality is per parameter, so `; a = b` equals `;a=b`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Params<'a> {
    raw: &'a str,
}

impl<'a> Params<'a> {
    /// Parses header parameters, e.g. `;tag=x ; lr` (RFC 3261 §25.1 generic-param).
    ///
    /// Values may be a token, a host (IPv6 bracketed, or unbracketed as in
    /// Via `received`, RFC 5118 §4.5) or a quoted-string.
    pub fn parse(s: &'a str) -> Result<Self, ValueError> {
        let b = s.as_bytes();
        let start = skip_ws(b, 0);
        if start >= b.len() {
            return Ok(Params::default());
        }
        if at(b, start) != Some(b';') {
            return Err(err("expected ';'", start));
        }
        let end = scan_header_params(b, start)?;
        let rest = skip_ws(b, end);
        if rest < b.len() {
            return Err(err("invalid parameter", rest));
        }
        Ok(Params {
            raw: sub(s, start, end),
        })
    }

    /// Parses URI parameters, e.g. `;transport=tcp;lr` (RFC 3261 §19.1.1): no
    /// whitespace, `%HH` escapes allowed and kept raw.
    pub fn parse_uri(s: &'a str) -> Result<Self, ValueError> {
        let end = scan_uri_params(s.as_bytes(), 0)?;
        if end < s.len() {
            return Err(err("invalid uri parameter", end));
        }
        Ok(Params { raw: s })
    }

    pub(crate) fn from_raw(raw: &'a str) -> Self {
        Params { raw }
    }

    /// The parameters as written, from the first `;`.
    pub(crate) fn raw(&self) -> &'a str {
        self.raw
    }

    /// The value of `name`: outer `None` = absent, inner `None` = flag
    /// parameter. Quotes are stripped; escapes inside are left as they are.
    pub fn get(&self, name: &str) -> Option<Option<&'a str>> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Like [`Params::get`] but with quotes kept, to tell `"x"` from `x`.
    pub fn get_raw(&self, name: &str) -> Option<Option<&'a str>> {
        self.iter_raw()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Whether `name` is present, with or without a value.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Each `(name, value)` in order, quotes stripped from values.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + use<'a> {
        self.iter_raw().map(|(n, v)| (n, v.map(strip_quotes)))
    }

    /// Each `(name, value)` in order, values exactly as written (quotes kept).
    pub fn iter_raw(&self) -> ParamsIter<'a> {
        ParamsIter { rest: self.raw }
    }

    /// True when there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The raw text, starting at the first `;` (may contain LWS).
    pub fn as_str(&self) -> &'a str {
        self.raw
    }
}

impl PartialEq for Params<'_> {
    fn eq(&self, other: &Self) -> bool {
        let mut a = self.iter_raw();
        let mut b = other.iter_raw();
        loop {
            match (a.next(), b.next()) {
                (None, None) => return true,
                (Some((n1, v1)), Some((n2, v2))) if n1.eq_ignore_ascii_case(n2) && v1 == v2 => {}
                _ => return false,
            }
        }
    }
}
impl Eq for Params<'_> {}

impl fmt::Display for Params<'_> {
    /// Writes `;a=b;c` with no whitespace.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, v) in self.iter_raw() {
            match v {
                Some(v) => write!(f, ";{n}={v}")?,
                None => write!(f, ";{n}")?,
            }
        }
        Ok(())
    }
}

/// Iterator over the raw `(name, value)` pairs of a [`Params`].
#[derive(Debug, Clone)]
pub struct ParamsIter<'a> {
    rest: &'a str,
}

impl<'a> Iterator for ParamsIter<'a> {
    type Item = (&'a str, Option<&'a str>);
    fn next(&mut self) -> Option<Self::Item> {
        let r = self.rest.trim_start_matches([' ', '\t', ';']);
        if r.is_empty() {
            self.rest = r;
            return None;
        }
        // Values were validated, so the only ';' inside one is within quotes.
        let b = r.as_bytes();
        let mut i = 0;
        while let Some(c) = at(b, i) {
            match c {
                b';' => break,
                b'"' => i = scan_quoted(b, i).unwrap_or(b.len()),
                _ => i += 1,
            }
        }
        let piece = sub(r, 0, i);
        self.rest = r.get(i..).unwrap_or("");
        let (n, v) = match piece.split_once('=') {
            Some((n, v)) => (n, Some(v.trim_matches([' ', '\t']))),
            None => (piece, None),
        };
        Some((n.trim_matches([' ', '\t']), v))
    }
}

/// Scans `*( SEMI generic-param )` from `i`; returns the end of the last param.
pub(crate) fn scan_header_params(b: &[u8], i: usize) -> Result<usize, ValueError> {
    walk_header_params(b, i, |_, _| Ok(()))
}

/// [`scan_header_params`] that also hands each parameter to `each` as it is checked — the
/// name's span and the raw value's span (quotes kept) — so that a caller looking for a few
/// parameters (a Via's branch, a tag) reads the list once.
pub(crate) fn walk_header_params(
    b: &[u8],
    mut i: usize,
    mut each: impl FnMut((usize, usize), Option<(usize, usize)>) -> Result<(), ValueError>,
) -> Result<usize, ValueError> {
    loop {
        let j = skip_ws(b, i);
        if at(b, j) != Some(b';') {
            return Ok(i);
        }
        let ns = skip_ws(b, j + 1);
        let ne = scan_token(b, ns);
        if ne == ns {
            return Err(err("empty parameter", ns));
        }
        i = ne;
        let k = skip_ws(b, ne);
        let mut value = None;
        if at(b, k) == Some(b'=') {
            let vs = skip_ws(b, k + 1);
            i = scan_gen_value(b, vs)?;
            value = Some((vs, i));
        }
        each((ns, ne), value)?;
    }
}

/// gen-value = token / host / quoted-string (RFC 3261 §25.1); ':' is also
/// let through so unbracketed IPv6 in Via `received` parses (RFC 5118 §4.5).
pub(crate) fn scan_gen_value(b: &[u8], i: usize) -> Result<usize, ValueError> {
    match at(b, i) {
        Some(b'"') => scan_quoted(b, i),
        Some(b'[') => {
            let close =
                memchr::memchr(b']', b.get(i..).unwrap_or(&[])).ok_or(err("expected ']'", i))?;
            let inner = b.get(i + 1..i + close).unwrap_or(&[]);
            let ok = std::str::from_utf8(inner)
                .ok()
                .and_then(|t| t.parse::<std::net::Ipv6Addr>().ok())
                .is_some();
            if !ok {
                return Err(err("invalid ipv6 address", i));
            }
            Ok(i + close + 1)
        }
        _ => {
            let e = scan_while_value(b, i);
            if e == i {
                Err(err("expected parameter value", i))
            } else {
                Ok(e)
            }
        }
    }
}

fn scan_while_value(b: &[u8], i: usize) -> usize {
    crate::message::lex::scan_while(b, i, |c| is_token(c) || c == b':')
}

/// Scans `*( ";" uri-parameter )` from `i` (RFC 3261 §19.1.1 / RFC 3966 §3).
pub(crate) fn scan_uri_params(b: &[u8], mut i: usize) -> Result<usize, ValueError> {
    loop {
        if at(b, i) != Some(b';') {
            return Ok(i);
        }
        let ns = i + 1;
        let ne = scan_paramchars(b, ns)?;
        if ne == ns {
            return Err(err("empty parameter", ns));
        }
        i = ne;
        if at(b, i) == Some(b'=') {
            let vs = i + 1;
            i = scan_paramchars(b, vs)?;
            if i == vs {
                return Err(err("expected parameter value", vs));
            }
        }
    }
}

fn scan_paramchars(b: &[u8], mut i: usize) -> Result<usize, ValueError> {
    while let Some(&c) = b.get(i) {
        if URI_PARAM[c as usize] {
            i += 1;
        } else if c == b'%' {
            if !escape_at(b, i) {
                return Err(err("invalid escape", i));
            }
            i += 3;
        } else {
            break;
        }
    }
    Ok(i)
}

/// Writes the parameters whose names are not in `skip` (typed fields carry those).
pub(crate) fn write_except(
    f: &mut fmt::Formatter<'_>,
    p: &Params<'_>,
    skip: &[&str],
) -> fmt::Result {
    for (n, v) in p
        .iter_raw()
        .filter(|(n, _)| !skip.iter().any(|s| s.eq_ignore_ascii_case(n)))
    {
        match v {
            Some(v) => write!(f, ";{n}={v}")?,
            None => write!(f, ";{n}")?,
        }
    }
    Ok(())
}

/// Compares the parameters whose names are not in `skip`, in order.
pub(crate) fn eq_except(a: &Params<'_>, b: &Params<'_>, skip: &[&str]) -> bool {
    let keep = |(n, _): &(&str, Option<&str>)| !skip.iter().any(|s| s.eq_ignore_ascii_case(n));
    let mut x = a.iter_raw().filter(keep);
    let mut y = b.iter_raw().filter(keep);
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some((n1, v1)), Some((n2, v2))) if n1.eq_ignore_ascii_case(n2) && v1 == v2 => {}
            _ => return false,
        }
    }
}

/// Splits `head *(SEMI param)` at the first `;`; `head` is trimmed and non-empty.
pub(crate) fn head_params(s: &str) -> Result<(&str, Params<'_>), ValueError> {
    let i = memchr::memchr(b';', s.as_bytes()).unwrap_or(s.len());
    let head = sub(s, 0, i).trim_matches([' ', '\t']);
    if head.is_empty() {
        return Err(err("expected value", 0));
    }
    let params = Params::parse(sub(s, i, s.len())).map_err(|e| crate::message::lex::shift(e, i))?;
    Ok((head, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_params() {
        let p =
            Params::parse(r#" ; newparam =  newvalue ;  secondparam ; q = 0.33;x="a;b""#).unwrap();
        assert_eq!(p.get("NEWPARAM"), Some(Some("newvalue")));
        assert_eq!(p.get("secondparam"), Some(None));
        assert_eq!(p.get("q"), Some(Some("0.33")));
        assert_eq!(p.get("x"), Some(Some("a;b")));
        assert_eq!(p.get("y"), None);
        assert!(p.contains("Q"));
        assert_eq!(
            p.to_string(),
            r#";newparam=newvalue;secondparam;q=0.33;x="a;b""#
        );
        assert_eq!(Params::parse(&p.to_string()).unwrap(), p);
        assert_eq!(p.iter().count(), 4);
    }

    #[test]
    fn header_params_errors() {
        assert_eq!(Params::parse(";;").unwrap_err().what, "empty parameter");
        assert_eq!(Params::parse(";a;").unwrap_err().what, "empty parameter");
        assert_eq!(
            Params::parse(";a=").unwrap_err().what,
            "expected parameter value"
        );
        assert_eq!(
            Params::parse(";a=\"x").unwrap_err().what,
            "unbalanced quote"
        );
        assert_eq!(Params::parse("a").unwrap_err().what, "expected ';'");
        assert_eq!(Params::parse(";a=[::1").unwrap_err().what, "expected ']'");
        assert_eq!(
            Params::parse(";a=[zz]").unwrap_err().what,
            "invalid ipv6 address"
        );
        assert!(Params::parse("").unwrap().is_empty());
    }

    #[test]
    fn uri_params() {
        let p = Params::parse_uri(";%6C%72;n%61me=v%61lue%25%34%31;lr").unwrap();
        assert_eq!(p.get("n%61me"), Some(Some("v%61lue%25%34%31")));
        assert!(p.contains("LR"));
        assert_eq!(
            Params::parse_uri("; lr").unwrap_err().what,
            "empty parameter"
        );
        assert_eq!(
            Params::parse_uri(";a=%4").unwrap_err().what,
            "invalid escape"
        );
        assert_eq!(
            Params::parse_uri(";a=\"b\"").unwrap_err().what,
            "expected parameter value"
        );
    }
}
