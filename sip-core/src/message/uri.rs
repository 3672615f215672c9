//! URIs: `sip:`/`sips:` (RFC 3261 §19.1, §25.1), `tel:` (RFC 3966) and any
//! other scheme kept opaque (RFC 3986 characters only).

use crate::message::ValueError;
use crate::message::host::{Host, parse_port, scan_host};
use crate::message::lex::{
    at, check_escaped, eq_fold, err, percent_decode, scan_while, shift, sub,
};
use crate::message::params::{Params, scan_uri_params};
use crate::message::syntax::{URI_HNV, URI_OPAQUE, URI_PASSWORD, URI_USER};
use std::borrow::Cow;
use std::fmt;

/// The URI scheme; compared case-insensitively (RFC 3261 §19.1.4).
#[derive(Debug, Clone, Copy)]
pub enum Scheme<'a> {
    /// `sip:`
    Sip,
    /// `sips:`
    Sips,
    /// `tel:` (RFC 3966)
    Tel,
    /// Any other scheme, as written; the rest of the URI is opaque.
    Other(&'a str),
}

impl<'a> Scheme<'a> {
    pub(crate) fn from_str(s: &'a str) -> Self {
        if eq_fold(s, b"sip") {
            Scheme::Sip
        } else if eq_fold(s, b"sips") {
            Scheme::Sips
        } else if eq_fold(s, b"tel") {
            Scheme::Tel
        } else {
            Scheme::Other(s)
        }
    }

    /// The scheme name, lowercase for the known ones.
    pub fn as_str(&self) -> &'a str {
        match self {
            Scheme::Sip => "sip",
            Scheme::Sips => "sips",
            Scheme::Tel => "tel",
            Scheme::Other(s) => s,
        }
    }
}

impl PartialEq for Scheme<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_str().eq_ignore_ascii_case(other.as_str())
    }
}
impl Eq for Scheme<'_> {}

/// A URI view.
///
/// For `sip`/`sips`, `host()` is always `Some`. For `tel`, the number is in
/// `user()` and `host()` is `None`. For other schemes only `scheme()` and
/// `opaque()` are set. Equality is structural (host and scheme
/// case-insensitive, parameter names case-insensitive), not the full
/// RFC 3261 §19.1.4 comparison, which would need unescaping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uri<'a> {
    scheme: Scheme<'a>,
    user: Option<&'a str>,
    password: Option<&'a str>,
    host: Option<Host<'a>>,
    port: Option<u16>,
    params: Params<'a>,
    headers: Option<&'a str>,
    opaque: Option<&'a str>,
}

impl<'a> Uri<'a> {
    /// Parses a URI as it may appear inside `<...>` (RFC 3261 §19.1, §25.1).
    pub fn parse(s: &'a str) -> Result<Self, ValueError> {
        let b = s.as_bytes();
        let colon = memchr::memchr(b':', b).ok_or(err("expected ':' after scheme", 0))?;
        let name = sub(s, 0, colon);
        if !is_scheme(name.as_bytes()) {
            return Err(err("invalid scheme", 0));
        }
        let scheme = Scheme::from_str(name);
        match scheme {
            Scheme::Sip | Scheme::Sips => parse_sip(s, colon + 1, scheme),
            Scheme::Tel => parse_tel(s, colon + 1),
            Scheme::Other(_) => {
                let rest = sub(s, colon + 1, s.len());
                if rest.is_empty() {
                    return Err(err("empty uri", colon + 1));
                }
                check_escaped(b, colon + 1, s.len(), &URI_OPAQUE, "invalid uri character")?;
                Ok(Uri {
                    opaque: Some(rest),
                    ..Uri::empty(scheme)
                })
            }
        }
    }

    /// Parses a Request-URI: like [`Uri::parse`], but a `sip`/`sips` URI may
    /// not carry `?headers` (RFC 3261 §19.1.5, RFC 4475 §3.1.2.12).
    pub fn parse_request_uri(s: &'a str) -> Result<Self, ValueError> {
        let u = Uri::parse(s)?;
        if matches!(u.scheme, Scheme::Sip | Scheme::Sips) && u.headers.is_some() {
            let q = memchr::memrchr(b'?', s.as_bytes()).unwrap_or(0);
            return Err(err("headers not allowed in request-uri", q));
        }
        Ok(u)
    }

    fn empty(scheme: Scheme<'a>) -> Self {
        Uri {
            scheme,
            user: None,
            password: None,
            host: None,
            port: None,
            params: Params::default(),
            headers: None,
            opaque: None,
        }
    }

    /// Builds a `sip:` URI. `user` must already be escaped (RFC 3261 §19.1.2);
    /// `host` is a domain, IPv4, or IPv6 with or without brackets.
    pub fn new_sip(
        user: Option<&'a str>,
        host: &'a str,
        port: Option<u16>,
    ) -> Result<Self, ValueError> {
        Self::build(Scheme::Sip, user, host, port)
    }

    /// Builds a `sips:` URI; see [`Uri::new_sip`].
    pub fn new_sips(
        user: Option<&'a str>,
        host: &'a str,
        port: Option<u16>,
    ) -> Result<Self, ValueError> {
        Self::build(Scheme::Sips, user, host, port)
    }

    fn build(
        scheme: Scheme<'a>,
        user: Option<&'a str>,
        host: &'a str,
        port: Option<u16>,
    ) -> Result<Self, ValueError> {
        if let Some(u) = user {
            if u.is_empty() {
                return Err(err("empty user", 0));
            }
            check_escaped(u.as_bytes(), 0, u.len(), &URI_USER, "invalid user")?;
        }
        let host = match host.parse::<std::net::Ipv6Addr>() {
            Ok(a) => Host::Ipv6(a),
            Err(_) => Host::parse(host)?,
        };
        Ok(Uri {
            user,
            host: Some(host),
            port,
            ..Uri::empty(scheme)
        })
    }

    /// Replaces the URI parameters with `params` (`;a=b;c`, validated).
    pub fn with_params(self, params: &'a str) -> Result<Self, ValueError> {
        if matches!(self.scheme, Scheme::Other(_)) {
            return Err(err("opaque uri has no parameters", 0));
        }
        Ok(Uri {
            params: Params::parse_uri(params)?,
            ..self
        })
    }

    /// Replaces the `?h=v&...` part (give it without the `?`; validated).
    pub fn with_headers(self, headers: &'a str) -> Result<Self, ValueError> {
        if !matches!(self.scheme, Scheme::Sip | Scheme::Sips) {
            return Err(err("uri headers need sip or sips", 0));
        }
        check_headers(headers.as_bytes(), 0)?;
        Ok(Uri {
            headers: Some(headers),
            ..self
        })
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme<'a> {
        self.scheme
    }

    /// The user part as written (escapes kept); for `tel:`, the number.
    pub fn user(&self) -> Option<&'a str> {
        self.user
    }

    /// The user part with `%HH` escapes decoded (lossy for non-UTF-8).
    pub fn user_unescaped(&self) -> Option<Cow<'a, str>> {
        self.user.map(percent_decode)
    }

    /// The password as written (RFC 3261 §19.1.1 discourages its use).
    pub fn password(&self) -> Option<&'a str> {
        self.password
    }

    /// The host: `Some` for sip/sips, `None` for tel and opaque URIs.
    pub fn host(&self) -> Option<Host<'a>> {
        self.host
    }

    /// The explicit port, if any (RFC 5118 §4.3: `[2001:db8::10:5070]` has none).
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The URI parameters (names and values as written, escapes kept).
    pub fn params(&self) -> Params<'a> {
        self.params
    }

    /// The raw `h=v&h2=v2` header part, without the `?`.
    pub fn headers(&self) -> Option<&'a str> {
        self.headers
    }

    /// Each `(hname, hvalue)` of the header part, escapes kept.
    pub fn header_pairs(&self) -> impl Iterator<Item = (&'a str, &'a str)> + use<'a> {
        self.headers
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').unwrap_or((p, "")))
    }

    /// Everything after `scheme:` for schemes other than sip, sips and tel.
    pub fn opaque(&self) -> Option<&'a str> {
        self.opaque
    }

    /// The `transport` URI parameter (RFC 3261 §19.1.1).
    pub fn transport(&self) -> Option<&'a str> {
        self.params.get("transport").flatten()
    }

    /// Whether the `lr` parameter is present (RFC 3261 §19.1.1 loose routing).
    pub fn is_loose_route(&self) -> bool {
        self.params.contains("lr")
    }
}

fn parse_sip<'a>(s: &'a str, start: usize, scheme: Scheme<'a>) -> Result<Uri<'a>, ValueError> {
    let b = s.as_bytes();
    let mut u = Uri::empty(scheme);
    let mut i = start;
    // '@' is legal in neither params nor headers, so the first one ends userinfo.
    if let Some(rel) = memchr::memchr(b'@', b.get(start..).unwrap_or(&[])) {
        let at_pos = start + rel;
        let colon = memchr::memchr(b':', b.get(start..at_pos).unwrap_or(&[])).map(|c| start + c);
        let user_end = colon.unwrap_or(at_pos);
        if user_end == start {
            return Err(err("empty user", start));
        }
        check_escaped(b, start, user_end, &URI_USER, "invalid user")?;
        u.user = Some(sub(s, start, user_end));
        if let Some(c) = colon {
            check_escaped(b, c + 1, at_pos, &URI_PASSWORD, "invalid password")?;
            u.password = Some(sub(s, c + 1, at_pos));
        }
        i = at_pos + 1;
    }
    if i >= b.len() {
        return Err(err("missing host", i));
    }
    let (host, mut i) = scan_host(s, i)?;
    u.host = Some(host);
    if at(b, i) == Some(b':') {
        let pe = scan_while(b, i + 1, |c| c.is_ascii_digit());
        u.port = Some(parse_port(sub(s, i + 1, pe), i + 1)?);
        i = pe;
    }
    let ps = i;
    i = scan_uri_params(b, i)?;
    u.params = Params::from_raw(sub(s, ps, i));
    if at(b, i) == Some(b'?') {
        check_headers(b.get(i + 1..).unwrap_or(&[]), 0).map_err(|e| shift(e, i + 1))?;
        u.headers = Some(sub(s, i + 1, s.len()));
        i = s.len();
    }
    if i < b.len() {
        return Err(err("invalid character in uri", i));
    }
    Ok(u)
}

/// headers = header *( "&" header ); header = hname "=" hvalue (RFC 3261 §25.1).
fn check_headers(b: &[u8], base: usize) -> Result<(), ValueError> {
    let mut i = base;
    loop {
        let end = scan_while(b, i, |c| c != b'&');
        let eq = memchr::memchr(b'=', b.get(i..end).unwrap_or(&[])).map(|e| i + e);
        let Some(eq) = eq.filter(|&e| e > i) else {
            return Err(err("invalid uri header", i));
        };
        check_escaped(b, i, eq, &URI_HNV, "invalid uri header")?;
        check_escaped(b, eq + 1, end, &URI_HNV, "invalid uri header")?;
        if end >= b.len() {
            return Ok(());
        }
        i = end + 1;
    }
}

/// RFC 3966 §3 telephone-subscriber. Local numbers without a phone-context
/// are accepted (Postel), though RFC 3966 requires one.
fn parse_tel(s: &str, start: usize) -> Result<Uri<'_>, ValueError> {
    let b = s.as_bytes();
    let end = scan_while(b, start, |c| c != b';');
    let num = sub(s, start, end);
    let visual = |c: u8| matches!(c, b'-' | b'.' | b'(' | b')');
    let ok = if let Some(g) = num.strip_prefix('+') {
        g.bytes().any(|c| c.is_ascii_digit()) && g.bytes().all(|c| c.is_ascii_digit() || visual(c))
    } else {
        let dig = |c: u8| c.is_ascii_hexdigit() || c == b'*' || c == b'#';
        num.bytes().any(dig) && num.bytes().all(|c| dig(c) || visual(c))
    };
    if !ok {
        return Err(err("invalid telephone number", start));
    }
    let pe = scan_uri_params(b, end)?;
    if pe < b.len() {
        return Err(err("invalid character in uri", pe));
    }
    Ok(Uri {
        user: Some(num),
        params: Params::from_raw(sub(s, end, pe)),
        ..Uri::empty(Scheme::Tel)
    })
}

impl fmt::Display for Uri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.scheme.as_str())?;
        if let Some(o) = self.opaque {
            return f.write_str(o);
        }
        if let Some(u) = self.user {
            f.write_str(u)?;
            if let Some(p) = self.password {
                write!(f, ":{p}")?;
            }
            if self.host.is_some() {
                f.write_str("@")?;
            }
        }
        if let Some(h) = self.host {
            write!(f, "{h}")?;
        }
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)?;
        if let Some(h) = self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

/// `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` (RFC 3261 §25.1).
pub(crate) fn is_scheme(name: &[u8]) -> bool {
    name.first().is_some_and(u8::is_ascii_alphabetic)
        && name
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn e(s: &str) -> &'static str {
        Uri::parse(s).unwrap_err().what
    }

    #[test]
    fn esc01_contact_uri() {
        let u =
            Uri::parse("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31").unwrap();
        assert_eq!(u.user(), Some("cal%6Cer"));
        assert_eq!(u.user_unescaped().unwrap(), "caller");
        assert_eq!(u.host(), Some(Host::Domain("HOST5.example.net")));
        assert_eq!(u.params().get("n%61me"), Some(Some("v%61lue%25%34%31")));
        assert!(u.params().contains("%6C%72"));
        let r = Uri::parse_request_uri("sip:sips%3Auser%40example.com@example.net").unwrap();
        assert_eq!(r.user_unescaped().unwrap(), "sips:user@example.com");
        assert_eq!(r.scheme(), Scheme::Sip);
    }

    #[test]
    fn escnull_and_esc01_to() {
        let u = Uri::parse("sip:null-%00-null@example.com").unwrap();
        assert_eq!(u.user_unescaped().unwrap(), "null-\0-null");
        assert!(Uri::parse("sip:%00%00@host5.example.com").is_ok());
        assert_eq!(
            Uri::parse("sip:%75se%72@example.com")
                .unwrap()
                .user_unescaped()
                .unwrap(),
            "user"
        );
        assert_eq!(
            Uri::parse("sip:I%20have%20spaces@example.net")
                .unwrap()
                .user_unescaped()
                .unwrap(),
            "I have spaces"
        );
        assert_eq!(e("sip:a%4@example.com"), "invalid escape");
        assert_eq!(e("sip:a%zz@example.com"), "invalid escape");
    }

    #[test]
    fn intmeth_and_semiuri() {
        let s = "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com";
        let u = Uri::parse_request_uri(s).unwrap();
        assert_eq!(
            u.user(),
            Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        );
        assert_eq!(
            u.password(),
            Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
        );
        assert_eq!(u.to_string(), s);
        let u = Uri::parse_request_uri("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.user(), Some("user;par=u%40example.net"));
        assert!(u.params().is_empty());
    }

    #[test]
    fn request_uri_negatives() {
        let r = |s| Uri::parse_request_uri(s).unwrap_err().what;
        assert_eq!(
            r("sip:user@example.com?Route=%3Csip:example.com%3E"),
            "headers not allowed in request-uri"
        );
        assert_eq!(r("<sip:user@example.com>"), "invalid scheme");
        assert_eq!(r("sip:user@example.com; lr"), "empty parameter");
        assert_eq!(r("sip:2001:db8::10"), "ipv6 address needs brackets");
        assert_eq!(r("sip:user@[2001:db8:::192.0.2.1]"), "invalid ipv6 address");
        assert_eq!(r("sip:user@example.com "), "invalid character in uri");
        assert_eq!(r("sip:@example.com"), "empty user");
        assert_eq!(r("sip:"), "missing host");
        assert_eq!(r("sip:h:99999"), "port out of range");
        assert_eq!(r("sip:h:"), "invalid port");
        assert_eq!(r("sip:h?"), "invalid uri header");
    }

    #[test]
    fn rfc5118_hosts_and_ports() {
        let u = Uri::parse_request_uri("sip:[2001:db8::10:5070]").unwrap();
        assert_eq!(u.port(), None);
        assert_eq!(
            u.host(),
            Some(Host::Ipv6("2001:db8::10:5070".parse().unwrap()))
        );
        let u = Uri::parse_request_uri("sip:[2001:db8::10]:5070").unwrap();
        assert_eq!(u.port(), Some(5070));
        assert_eq!(u.host(), Some(Host::Ipv6("2001:db8::10".parse().unwrap())));
        let u = Uri::parse("sip:user@[2001:db8::192.0.2.1]").unwrap();
        assert_eq!(
            u.host(),
            Some(Host::Ipv6("2001:db8::c000:201".parse().unwrap()))
        );
        let u = Uri::parse("sip:ted@[::ffff:192.0.2.2]").unwrap();
        assert_eq!(
            u.host(),
            Some(Host::Ipv6(Ipv6Addr::from([
                0, 0, 0, 0, 0, 0xffff, 0xc000, 0x202
            ])))
        );
        assert_eq!(Uri::parse(&u.to_string()).unwrap(), u);
        assert!(Uri::parse_request_uri("sip:[2001:db8::10]").is_ok());
    }

    #[test]
    fn regescrt_headers() {
        let u = Uri::parse("sip:user@example.com?Route=%3Csip:sip.example.com%3E").unwrap();
        assert_eq!(u.headers(), Some("Route=%3Csip:sip.example.com%3E"));
        assert_eq!(
            u.header_pairs().collect::<Vec<_>>(),
            vec![("Route", "%3Csip:sip.example.com%3E")]
        );
        let u = Uri::parse("sips:a@b.com;lr;transport=TCP?x=1&y=").unwrap();
        assert_eq!(u.header_pairs().count(), 2);
        assert!(u.is_loose_route());
        assert_eq!(u.transport(), Some("TCP"));
        assert_eq!(u.to_string(), "sips:a@b.com;lr;transport=TCP?x=1&y=");
    }

    #[test]
    fn tel_and_other_schemes() {
        let u = Uri::parse("tel:+1-201-555-0123;phone-context=example.com").unwrap();
        assert_eq!(u.scheme(), Scheme::Tel);
        assert_eq!(u.user(), Some("+1-201-555-0123"));
        assert_eq!(u.host(), None);
        assert_eq!(u.params().get("phone-context"), Some(Some("example.com")));
        assert_eq!(
            u.to_string(),
            "tel:+1-201-555-0123;phone-context=example.com"
        );
        assert!(Uri::parse("tel:7042;phone-context=example.com").is_ok());
        assert_eq!(e("tel:+"), "invalid telephone number");
        assert_eq!(e("tel:abc@x"), "invalid telephone number");
        for s in [
            "nobodyKnowsThisScheme:totallyopaquecontent",
            "soap.beep://192.0.2.103:3002",
            "http://www.example.com",
            "isbn:2983792873",
            "name:John_Smith",
        ] {
            let u = Uri::parse(s).unwrap();
            assert!(matches!(u.scheme(), Scheme::Other(_)));
            assert_eq!(u.to_string(), s);
        }
        assert_eq!(e("http://a b"), "invalid uri character");
        assert_eq!(e("x:"), "empty uri");
        assert_eq!(e("nocolon"), "expected ':' after scheme");
    }

    #[test]
    fn builders_and_equality() {
        let u = Uri::new_sip(Some("alice"), "Example.com", Some(5060))
            .unwrap()
            .with_params(";transport=tcp;lr")
            .unwrap();
        assert_eq!(u.to_string(), "sip:alice@Example.com:5060;transport=tcp;lr");
        assert_eq!(
            u,
            Uri::parse("SIP:alice@example.COM:5060;TRANSPORT=tcp;lr").unwrap()
        );
        assert_ne!(
            u,
            Uri::parse("sip:alice@example.com:5060;transport=TCP;lr").unwrap()
        );
        let v6 = Uri::new_sips(None, "2001:db8::1", None).unwrap();
        assert_eq!(v6.to_string(), "sips:[2001:db8::1]");
        assert!(Uri::new_sip(Some("a b"), "h", None).is_err());
        assert!(
            Uri::new_sip(None, "h", None)
                .unwrap()
                .with_headers("a=b")
                .is_ok()
        );
    }
}
