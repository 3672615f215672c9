//! Authentication header values: WWW-Authenticate / Proxy-Authenticate
//! challenges and Authorization / Proxy-Authorization credentials
//! (RFC 3261 §20.7, §25.1; RFC 2617; RFC 7616; RFC 7235 §2.1, §4.1).
//!
//! Several challenges in one value (`Digest realm="a", Basic realm="b"`,
//! RFC 7235 §4.1) are told apart by the rule that after a comma, a token
//! that is not followed by `=` starts a new challenge. Quoted values are
//! returned without their quotes, escapes left as they are.

use crate::message::ValueError;
use crate::message::lex::{
    TopLevel, at, err, is_token_str, scan_quoted, scan_token, scan_while, skip_ws, strip_quotes,
    sub,
};
use std::fmt;

/// A digest algorithm (RFC 7616 §6.1); compared case-insensitively.
#[derive(Debug, Clone, Copy)]
pub enum Algorithm<'a> {
    /// `MD5`
    Md5,
    /// `MD5-sess`
    Md5Sess,
    /// `SHA-256`
    Sha256,
    /// `SHA-256-sess`
    Sha256Sess,
    /// `SHA-512-256`
    Sha512_256,
    /// `SHA-512-256-sess`
    Sha512_256Sess,
    /// Any other token, as written.
    Other(&'a str),
}

const ALGORITHMS: [(&str, Algorithm<'static>); 6] = [
    ("MD5", Algorithm::Md5),
    ("MD5-sess", Algorithm::Md5Sess),
    ("SHA-256", Algorithm::Sha256),
    ("SHA-256-sess", Algorithm::Sha256Sess),
    ("SHA-512-256", Algorithm::Sha512_256),
    ("SHA-512-256-sess", Algorithm::Sha512_256Sess),
];

impl<'a> Algorithm<'a> {
    /// Maps a name (case-insensitive) to an algorithm; never fails.
    pub fn from_name(s: &'a str) -> Self {
        ALGORITHMS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(s))
            .map_or(Algorithm::Other(s), |(_, a)| *a)
    }

    /// The canonical name (RFC 7616 §6.1 spelling).
    pub fn as_str(&self) -> &'a str {
        match self {
            Algorithm::Other(s) => s,
            known => ALGORITHMS
                .iter()
                .find(|(_, a)| std::mem::discriminant(a) == std::mem::discriminant(known))
                .map_or("", |(n, _)| n),
        }
    }
}

impl PartialEq for Algorithm<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.as_str().eq_ignore_ascii_case(o.as_str())
    }
}
impl Eq for Algorithm<'_> {}

impl fmt::Display for Algorithm<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A qop value as written without quotes: one token or a comma list (RFC 7616 §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Qop<'a>(pub &'a str);

impl<'a> Qop<'a> {
    /// Each qop option, trimmed.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        self.0
            .split(',')
            .map(|t| t.trim_matches([' ', '\t']))
            .filter(|t| !t.is_empty())
    }
    /// Offers or uses `auth`.
    pub fn has_auth(&self) -> bool {
        self.iter().any(|t| t.eq_ignore_ascii_case("auth"))
    }
    /// Offers or uses `auth-int`.
    pub fn has_auth_int(&self) -> bool {
        self.iter().any(|t| t.eq_ignore_ascii_case("auth-int"))
    }
}

/// The raw parameter text after the scheme: `name=value` pairs separated by
/// commas, or a token68 (RFC 7235 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuthParams<'a>(&'a str);

impl<'a> AuthParams<'a> {
    /// The raw text.
    pub fn as_str(&self) -> &'a str {
        self.0
    }
    /// Each `(name, value)`, value quotes stripped; empty for a token68.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + use<'a> {
        TopLevel::new(self.0, true).filter_map(|(_, p)| {
            let (n, v) = p.split_once('=')?;
            let n = n.trim_matches([' ', '\t']);
            is_token_str(n).then(|| (n, strip_quotes(v.trim_matches([' ', '\t']))))
        })
    }
    /// The value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

/// Parses one `scheme [params]` at `i`; returns (scheme, params, end, next start).
fn parse_one(s: &str, i: usize) -> Result<(&str, AuthParams<'_>, Option<usize>), ValueError> {
    let b = s.as_bytes();
    let i = skip_ws(b, i);
    let se = scan_token(b, i);
    if se == i {
        return Err(err("expected auth scheme", i));
    }
    let scheme = sub(s, i, se);
    let mut j = skip_ws(b, se);
    match at(b, j) {
        None => return Ok((scheme, AuthParams::default(), None)),
        Some(b',') => return Ok((scheme, AuthParams::default(), next_after_comma(b, j)?)),
        _ if j == se => return Err(err("expected whitespace after scheme", j)),
        _ => {}
    }
    let ps = j;
    // token68 (RFC 7235 §2.1), never used by Digest.
    if !scheme.eq_ignore_ascii_case("Digest") {
        let t = scan_while(b, j, |c| {
            c.is_ascii_alphanumeric() || b"-._~+/".contains(&c)
        });
        let t = scan_while(b, t, |c| c == b'=');
        let k = skip_ws(b, t);
        if t > j
            && matches!(at(b, k), None | Some(b','))
            && !sub(s, j, t).trim_end_matches('=').contains('=')
        {
            let next = if at(b, k).is_some() {
                next_after_comma(b, k)?
            } else {
                None
            };
            return Ok((scheme, AuthParams(sub(s, ps, t)), next));
        }
    }
    loop {
        let ne = scan_token(b, j);
        if ne == j {
            return Err(err("expected auth param", j));
        }
        let k = skip_ws(b, ne);
        if at(b, k) != Some(b'=') {
            return Err(err("expected '='", k));
        }
        let v = skip_ws(b, k + 1);
        let ve = if at(b, v) == Some(b'"') {
            scan_quoted(b, v)?
        } else {
            let ve = scan_token(b, v);
            if ve == v {
                return Err(err("expected auth param value", v));
            }
            ve
        };
        let p = skip_ws(b, ve);
        match at(b, p) {
            None => return Ok((scheme, AuthParams(sub(s, ps, ve)), None)),
            Some(b',') => {}
            Some(_) => return Err(err("expected ','", p)),
        }
        let q = skip_commas(b, p);
        let te = scan_token(b, q);
        if te > q && at(b, skip_ws(b, te)) != Some(b'=') {
            return Ok((scheme, AuthParams(sub(s, ps, ve)), Some(q)));
        }
        j = q;
    }
}

/// RFC 7230 §7: recipients skip empty list elements.
fn skip_commas(b: &[u8], mut i: usize) -> usize {
    while at(b, i) == Some(b',') {
        i = skip_ws(b, i + 1);
    }
    i
}

fn next_after_comma(b: &[u8], p: usize) -> Result<Option<usize>, ValueError> {
    let q = skip_commas(b, p);
    if q >= b.len() {
        return Err(err("expected auth scheme", q));
    }
    Ok(Some(q))
}

/// Iterates the challenges or credentials of one value.
fn parse_all<'a, T>(
    s: &'a str,
    build: fn(&'a str, AuthParams<'a>, usize) -> Result<T, ValueError>,
) -> impl Iterator<Item = Result<T, ValueError>> {
    let mut pos = Some(0);
    std::iter::from_fn(move || {
        let p = pos.take()?;
        match parse_one(s, p) {
            Ok((scheme, params, next)) => {
                pos = next;
                Some(build(scheme, params, p))
            }
            Err(e) => Some(Err(e)),
        }
    })
}

/// Maps a known parameter name to its canonical lowercase spelling without allocating.
fn lower(n: &str) -> &'static str {
    const KNOWN: [&str; 14] = [
        "realm",
        "domain",
        "nonce",
        "opaque",
        "stale",
        "algorithm",
        "qop",
        "charset",
        "userhash",
        "username",
        "uri",
        "response",
        "cnonce",
        "nc",
    ];
    KNOWN
        .iter()
        .find(|k| k.eq_ignore_ascii_case(n))
        .copied()
        .unwrap_or("")
}

fn is_true(v: &str) -> bool {
    v.eq_ignore_ascii_case("true")
}

/// nc-value = 8LHEX (RFC 2617 §3.2.2).
fn parse_nc(v: &str, at: usize) -> Result<u32, ValueError> {
    if v.len() != 8 || !v.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(err("invalid nonce count", at));
    }
    u32::from_str_radix(v, 16).map_err(|_| err("invalid nonce count", at))
}

/// A challenge from WWW-Authenticate or Proxy-Authenticate.
///
/// For Digest the typed fields are filled and `Display` writes them
/// (unknown parameters are dropped); for other schemes `Display` writes
/// `params` as received. Fields hold values without quotes, escapes kept.
#[derive(Debug, Clone, Copy)]
pub struct Challenge<'a> {
    /// The auth-scheme, e.g. `Digest`.
    pub scheme: &'a str,
    /// `realm`
    pub realm: Option<&'a str>,
    /// `domain`: space-separated URIs.
    pub domain: Option<&'a str>,
    /// `nonce`
    pub nonce: Option<&'a str>,
    /// `opaque`
    pub opaque: Option<&'a str>,
    /// `stale=true`
    pub stale: bool,
    /// `algorithm`; absent means MD5 (RFC 7616 §3.3).
    pub algorithm: Option<Algorithm<'a>>,
    /// `qop` options.
    pub qop: Option<Qop<'a>>,
    /// `charset` (RFC 7616: only `UTF-8`).
    pub charset: Option<&'a str>,
    /// `userhash=true` (RFC 7616 §3.4.4).
    pub userhash: bool,
    /// The raw parameter text (empty when built).
    pub params: AuthParams<'a>,
}

impl<'a> Challenge<'a> {
    /// Parses a value holding exactly one challenge.
    pub fn parse(s: &'a str) -> Result<Self, ValueError> {
        let mut it = Challenge::parse_list(s);
        let c = it.next().unwrap_or(Err(err("expected auth scheme", 0)))?;
        match it.next() {
            None => Ok(c),
            Some(_) => Err(err("multiple challenges", 0)),
        }
    }

    /// Parses every challenge in one value (RFC 7235 §4.1).
    pub fn parse_list(s: &'a str) -> impl Iterator<Item = Result<Self, ValueError>> + use<'a> {
        parse_all(s, Challenge::from_params)
    }

    fn from_params(
        scheme: &'a str,
        params: AuthParams<'a>,
        _at: usize,
    ) -> Result<Self, ValueError> {
        let mut c = Challenge {
            scheme,
            params,
            ..Challenge::digest("", "")
        };
        c.realm = None;
        c.nonce = None;
        for (n, v) in params.iter() {
            match lower(n) {
                "realm" => c.realm = Some(v),
                "domain" => c.domain = Some(v),
                "nonce" => c.nonce = Some(v),
                "opaque" => c.opaque = Some(v),
                "stale" => c.stale = is_true(v),
                "algorithm" => c.algorithm = Some(Algorithm::from_name(v)),
                "qop" => c.qop = Some(Qop(v)),
                "charset" => c.charset = Some(v),
                "userhash" => c.userhash = is_true(v),
                _ => {}
            }
        }
        Ok(c)
    }

    /// A Digest challenge with `realm` and `nonce`; set the other fields directly.
    pub fn digest(realm: &'a str, nonce: &'a str) -> Self {
        Challenge {
            scheme: "Digest",
            realm: Some(realm),
            domain: None,
            nonce: Some(nonce),
            opaque: None,
            stale: false,
            algorithm: None,
            qop: None,
            charset: None,
            userhash: false,
            params: AuthParams::default(),
        }
    }

    /// Whether this is a Digest challenge.
    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("Digest")
    }
}

impl PartialEq for Challenge<'_> {
    fn eq(&self, o: &Self) -> bool {
        let digest = |c: &Self| {
            (
                c.realm,
                c.domain,
                c.nonce,
                c.opaque,
                c.stale,
                c.algorithm,
                c.qop,
                c.charset,
                c.userhash,
            )
        };
        self.scheme.eq_ignore_ascii_case(o.scheme)
            && if self.is_digest() {
                digest(self) == digest(o)
            } else {
                self.params == o.params
            }
    }
}
impl Eq for Challenge<'_> {}

/// Writes `, name="value"` (or without the leading comma for the first).
fn put(
    f: &mut fmt::Formatter<'_>,
    first: &mut bool,
    name: &str,
    v: Option<&str>,
    quote: bool,
) -> fmt::Result {
    let Some(v) = v else { return Ok(()) };
    let sep = if *first { " " } else { ", " };
    *first = false;
    if quote || !is_token_str(v) {
        write!(f, "{sep}{name}=\"{v}\"")
    } else {
        write!(f, "{sep}{name}={v}")
    }
}

impl fmt::Display for Challenge<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.scheme)?;
        if !self.is_digest() {
            return if self.params.0.is_empty() {
                Ok(())
            } else {
                write!(f, " {}", self.params.0)
            };
        }
        let first = &mut true;
        put(f, first, "realm", self.realm, true)?;
        put(f, first, "domain", self.domain, true)?;
        put(f, first, "nonce", self.nonce, true)?;
        put(f, first, "opaque", self.opaque, true)?;
        put(f, first, "stale", self.stale.then_some("true"), false)?;
        put(
            f,
            first,
            "algorithm",
            self.algorithm.map(|a| a.as_str()),
            false,
        )?;
        put(f, first, "qop", self.qop.map(|q| q.0), true)?;
        put(f, first, "charset", self.charset, false)?;
        put(f, first, "userhash", self.userhash.then_some("true"), false)
    }
}

/// Credentials from Authorization or Proxy-Authorization.
///
/// As for [`Challenge`]: Digest fields are typed, other schemes keep `params`.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    /// The auth-scheme, e.g. `Digest`.
    pub scheme: &'a str,
    /// `username` (or the user hash when `userhash` is set).
    pub username: Option<&'a str>,
    /// `realm`
    pub realm: Option<&'a str>,
    /// `nonce`
    pub nonce: Option<&'a str>,
    /// `uri` (digest-uri)
    pub uri: Option<&'a str>,
    /// `response`: hex digest.
    pub response: Option<&'a str>,
    /// `algorithm`
    pub algorithm: Option<Algorithm<'a>>,
    /// `cnonce`
    pub cnonce: Option<&'a str>,
    /// `opaque`
    pub opaque: Option<&'a str>,
    /// `qop`: the single option chosen.
    pub qop: Option<Qop<'a>>,
    /// `nc`, from 8 hex digits.
    pub nc: Option<u32>,
    /// `userhash=true`
    pub userhash: bool,
    /// The raw parameter text (empty when built).
    pub params: AuthParams<'a>,
}

impl<'a> Credentials<'a> {
    /// Parses a value holding exactly one set of credentials.
    pub fn parse(s: &'a str) -> Result<Self, ValueError> {
        let mut it = parse_all(s, Credentials::from_params);
        let c = it.next().unwrap_or(Err(err("expected auth scheme", 0)))?;
        match it.next() {
            None => Ok(c),
            Some(_) => Err(err("multiple credentials", 0)),
        }
    }

    fn from_params(scheme: &'a str, params: AuthParams<'a>, at: usize) -> Result<Self, ValueError> {
        let mut c = Credentials::digest("", "", "", "", "");
        c.scheme = scheme;
        c.params = params;
        (c.username, c.realm, c.nonce, c.uri, c.response) = (None, None, None, None, None);
        for (n, v) in params.iter() {
            match lower(n) {
                "username" => c.username = Some(v),
                "realm" => c.realm = Some(v),
                "nonce" => c.nonce = Some(v),
                "uri" => c.uri = Some(v),
                "response" => c.response = Some(v),
                "algorithm" => c.algorithm = Some(Algorithm::from_name(v)),
                "cnonce" => c.cnonce = Some(v),
                "opaque" => c.opaque = Some(v),
                "qop" => c.qop = Some(Qop(v)),
                "nc" => c.nc = Some(parse_nc(v, at)?),
                "userhash" => c.userhash = is_true(v),
                _ => {}
            }
        }
        Ok(c)
    }

    /// Digest credentials with the always-present fields; set the others directly.
    pub fn digest(
        username: &'a str,
        realm: &'a str,
        nonce: &'a str,
        uri: &'a str,
        response: &'a str,
    ) -> Self {
        Credentials {
            scheme: "Digest",
            username: Some(username),
            realm: Some(realm),
            nonce: Some(nonce),
            uri: Some(uri),
            response: Some(response),
            algorithm: None,
            cnonce: None,
            opaque: None,
            qop: None,
            nc: None,
            userhash: false,
            params: AuthParams::default(),
        }
    }

    /// Whether these are Digest credentials.
    pub fn is_digest(&self) -> bool {
        self.scheme.eq_ignore_ascii_case("Digest")
    }
}

impl PartialEq for Credentials<'_> {
    fn eq(&self, o: &Self) -> bool {
        let d = |c: &Self| {
            (
                (c.username, c.realm, c.nonce, c.uri, c.response, c.algorithm),
                (c.cnonce, c.opaque, c.qop, c.nc, c.userhash),
            )
        };
        self.scheme.eq_ignore_ascii_case(o.scheme)
            && if self.is_digest() {
                d(self) == d(o)
            } else {
                self.params == o.params
            }
    }
}
impl Eq for Credentials<'_> {}

impl fmt::Display for Credentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.scheme)?;
        if !self.is_digest() {
            return if self.params.0.is_empty() {
                Ok(())
            } else {
                write!(f, " {}", self.params.0)
            };
        }
        let first = &mut true;
        put(f, first, "username", self.username, true)?;
        put(f, first, "realm", self.realm, true)?;
        put(f, first, "nonce", self.nonce, true)?;
        put(f, first, "uri", self.uri, true)?;
        put(f, first, "response", self.response, true)?;
        put(
            f,
            first,
            "algorithm",
            self.algorithm.map(|a| a.as_str()),
            false,
        )?;
        put(f, first, "cnonce", self.cnonce, true)?;
        put(f, first, "opaque", self.opaque, true)?;
        put(f, first, "qop", self.qop.map(|q| q.0), false)?;
        if let Some(nc) = self.nc {
            write!(f, "{}nc={nc:08x}", if *first { " " } else { ", " })?;
            *first = false;
        }
        put(f, first, "userhash", self.userhash.then_some("true"), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC2617_CHALLENGE: &str = r#"Digest
                 realm="testrealm@host.com",
                 qop="auth,auth-int",
                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                 opaque="5ccc069c403ebaf9f0171e9517f40e41""#;
    const RFC2617_CREDENTIALS: &str = r#"Digest username="Mufasa",
                 realm="testrealm@host.com",
                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                 uri="/dir/index.html",
                 qop=auth,
                 nc=00000001,
                 cnonce="0a4f113b",
                 response="6629fae49393a05397450978507c4ef1",
                 opaque="5ccc069c403ebaf9f0171e9517f40e41""#;
    const RFC7616_CHALLENGE: &str = r#"Digest
       realm="http-auth@example.org",
       qop="auth, auth-int",
       algorithm=SHA-256,
       nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
       opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
    const RFC7616_CREDENTIALS: &str = r#"Digest username="Mufasa",
       realm="http-auth@example.org",
       uri="/dir/index.html",
       algorithm=SHA-256,
       nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
       nc=00000001,
       cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
       qop=auth,
       response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
       opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;

    /// Header values arrive unfolded: newline plus indentation becomes one space.
    fn unfold(s: &str) -> String {
        s.split('\n').map(str::trim).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn rfc2617_examples() {
        let v = unfold(RFC2617_CHALLENGE);
        let c = Challenge::parse(&v).unwrap();
        assert!(c.is_digest());
        assert_eq!(c.realm, Some("testrealm@host.com"));
        assert_eq!(c.nonce, Some("dcd98b7102dd2f0e8b11d0f600bfb0c093"));
        assert_eq!(c.opaque, Some("5ccc069c403ebaf9f0171e9517f40e41"));
        let q = c.qop.unwrap();
        assert!(q.has_auth() && q.has_auth_int());
        assert_eq!(c.algorithm, None);
        assert!(!c.stale);
        let out = c.to_string();
        assert_eq!(
            out,
            r#"Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41", qop="auth,auth-int""#
        );
        assert_eq!(Challenge::parse(&out).unwrap(), c);

        let v = unfold(RFC2617_CREDENTIALS);
        let a = Credentials::parse(&v).unwrap();
        assert_eq!(a.username, Some("Mufasa"));
        assert_eq!(a.uri, Some("/dir/index.html"));
        assert_eq!(a.nc, Some(1));
        assert_eq!(a.cnonce, Some("0a4f113b"));
        assert_eq!(a.response, Some("6629fae49393a05397450978507c4ef1"));
        assert!(a.qop.unwrap().has_auth());
        let out = a.to_string();
        assert_eq!(
            out,
            r#"Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", response="6629fae49393a05397450978507c4ef1", cnonce="0a4f113b", opaque="5ccc069c403ebaf9f0171e9517f40e41", qop=auth, nc=00000001"#
        );
        assert_eq!(Credentials::parse(&out).unwrap(), a);
    }

    #[test]
    fn rfc7616_examples() {
        let v = unfold(RFC7616_CHALLENGE);
        let c = Challenge::parse(&v).unwrap();
        assert_eq!(c.algorithm, Some(Algorithm::Sha256));
        assert_eq!(c.realm, Some("http-auth@example.org"));
        assert!(c.qop.unwrap().has_auth_int());
        assert_eq!(Challenge::parse(&c.to_string()).unwrap(), c);
        let v = unfold(RFC7616_CREDENTIALS);
        let a = Credentials::parse(&v).unwrap();
        assert_eq!(a.algorithm, Some(Algorithm::Sha256));
        assert_eq!(
            a.cnonce,
            Some("f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")
        );
        assert_eq!(
            a.response,
            Some("753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1")
        );
        assert!(a.to_string().contains("algorithm=SHA-256, "));
        assert_eq!(Credentials::parse(&a.to_string()).unwrap(), a);
    }

    #[test]
    fn lws_order_and_unknowns() {
        let c = Challenge::parse(r#"digest  nonce = "n" ,realm="r\"x",  stale=TRUE,algorithm=md5-SESS, foo=bar, charset=UTF-8, userhash=true"#).unwrap();
        assert_eq!(
            (c.realm, c.nonce, c.stale),
            (Some(r#"r\"x"#), Some("n"), true)
        );
        assert_eq!(c.algorithm, Some(Algorithm::Md5Sess));
        assert_eq!(c.algorithm.unwrap().to_string(), "MD5-sess");
        assert!(c.userhash);
        assert_eq!(c.params.get("FOO"), Some("bar"));
        assert_eq!(Challenge::parse(&c.to_string()).unwrap(), c);
        assert_eq!(
            Algorithm::from_name("SHA-512-256-Sess"),
            Algorithm::Sha512_256Sess
        );
        assert_eq!(Algorithm::from_name("x"), Algorithm::Other("X"));
    }

    #[test]
    fn multiple_and_other_schemes() {
        let l: Vec<_> = Challenge::parse_list(
            r#"Digest realm="a", nonce="b", Basic realm="c", Negotiate, Bearer abc.def=="#,
        )
        .collect::<Result<_, _>>()
        .unwrap();
        assert_eq!(l.len(), 4);
        assert_eq!((l[0].realm, l[0].nonce), (Some("a"), Some("b")));
        assert_eq!((l[1].scheme, l[1].realm), ("Basic", Some("c")));
        assert_eq!((l[2].scheme, l[2].params.as_str()), ("Negotiate", ""));
        assert_eq!(l[3].params.as_str(), "abc.def==");
        assert_eq!(l[3].to_string(), "Bearer abc.def==");
        assert_eq!(
            Challenge::parse(r#"Digest realm="a", Basic realm="c""#)
                .unwrap_err()
                .what,
            "multiple challenges"
        );
        let r = Credentials::parse("NoOneKnowsThisScheme opaque-data=here").unwrap(); // regaut01
        assert_eq!(r.scheme, "NoOneKnowsThisScheme");
        assert_eq!(r.params.get("opaque-data"), Some("here"));
        assert_eq!(r.to_string(), "NoOneKnowsThisScheme opaque-data=here");
        assert_eq!(Credentials::parse(&r.to_string()).unwrap(), r);
    }

    #[test]
    fn negatives() {
        let e = |s| Credentials::parse(s).unwrap_err().what;
        assert_eq!(e(""), "expected auth scheme");
        assert_eq!(e("Digest nc=1"), "invalid nonce count");
        assert_eq!(e("Digest nc=0000000g"), "invalid nonce count");
        assert_eq!(e(r#"Digest realm="abc"#), "unbalanced quote");
        assert_eq!(e("Digest realm"), "expected '='");
        assert_eq!(e("Digest realm="), "expected auth param value");
        assert_eq!(e("Digest realm=a b=c"), "expected ','");
        assert_eq!(e("Digest realm=a,"), "expected auth param");
        assert_eq!(e("Digest,"), "expected auth scheme");
        assert_eq!(e("Digest\"x\""), "expected whitespace after scheme");
    }

    #[test]
    fn builders() {
        let mut c = Challenge::digest("atlanta.com", "84a4cc6f3082121f32b42a2187831a9e");
        c.qop = Some(Qop("auth"));
        c.algorithm = Some(Algorithm::Sha256);
        c.stale = true;
        let s = c.to_string();
        assert_eq!(
            s,
            r#"Digest realm="atlanta.com", nonce="84a4cc6f3082121f32b42a2187831a9e", stale=true, algorithm=SHA-256, qop="auth""#
        );
        assert_eq!(Challenge::parse(&s).unwrap(), c);
        let mut a = Credentials::digest(
            "bob",
            "biloxi.com",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "sip:bob@biloxi.com",
            "245f23415f11432b3434341c022",
        );
        a.nc = Some(0xab);
        a.qop = Some(Qop("auth"));
        a.cnonce = Some("0a4f113b");
        let s = a.to_string();
        assert!(
            s.ends_with(r#"cnonce="0a4f113b", qop=auth, nc=000000ab"#),
            "{s}"
        );
        assert_eq!(Credentials::parse(&s).unwrap(), a);
    }
}
