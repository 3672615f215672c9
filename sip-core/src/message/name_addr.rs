//! `[display-name] <uri> *(;param)` and bare addr-spec values: From, To,
//! Contact, Route, Record-Route, Refer-To, Reply-To, P-Asserted-Identity
//! (RFC 3261 §20.10, §25.1; RFC 3515; RFC 3325).

use crate::message::ValueError;
use crate::message::lex::{
    at, eq_fold, err, is_token, is_token_str, is_ws, list, scan_quoted, scan_token, shift, skip_ws,
    strip_quotes, sub, unescape_quoted,
};
use crate::message::params::{Params, scan_header_params, walk_header_params};
use crate::message::uri::{Uri, is_scheme};
use std::borrow::Cow;
use std::fmt;

#[derive(Debug, Clone, Copy)]
enum Display<'a> {
    /// Text between the quotes, escapes intact.
    Quoted(&'a str),
    /// `*(token LWS)` as written.
    Tokens(&'a str),
    /// Plain text from a builder; quoted on output when needed.
    Plain(&'a str),
}

impl<'a> Display<'a> {
    fn value(&self) -> Cow<'a, str> {
        match *self {
            Display::Quoted(r) => unescape_quoted(r),
            Display::Tokens(r) | Display::Plain(r) => Cow::Borrowed(r),
        }
    }
}

/// A name-addr or addr-spec with header parameters.
///
/// Display names compare by their unescaped value, so `"Joe"` equals `Joe`.
/// Output always uses angle brackets, which is always valid and keeps
/// URI parameters apart from header parameters (RFC 3261 §20.10).
#[derive(Debug, Clone, Copy)]
pub struct NameAddr<'a> {
    display: Option<Display<'a>>,
    uri: Uri<'a>,
    /// The URI as written, when parsed (a remote target is taken as written).
    uri_text: Option<&'a str>,
    params: Params<'a>,
}

impl PartialEq for NameAddr<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.display_name() == o.display_name() && self.uri == o.uri && self.params == o.params
    }
}
impl Eq for NameAddr<'_> {}

impl<'a> NameAddr<'a> {
    /// Parses one value (RFC 3261 §25.1 `( name-addr / addr-spec ) *( SEMI param )`).
    ///
    /// Without angle brackets everything after the first `;` is a header
    /// parameter and the URI may not contain `,`, `?` or `;` (§20.10).
    pub fn parse(s: &'a str) -> Result<Self, ValueError> {
        let b = s.as_bytes();
        let mut i = skip_ws(b, 0);
        let mut display = None;
        if at(b, i) == Some(b'"') {
            let end = scan_quoted(b, i)?;
            display = Some(Display::Quoted(sub(s, i + 1, end - 1)));
            i = skip_ws(b, end);
            if at(b, i) != Some(b'<') {
                return Err(err("expected '<'", i));
            }
        } else {
            // Either `*(token LWS) <` or the scheme of a bare addr-spec.
            let start = i;
            let mut j = i;
            let mut last = i;
            loop {
                let t = scan_token(b, j);
                if t == j {
                    break;
                }
                last = t;
                j = skip_ws(b, t);
            }
            match at(b, j) {
                Some(b'<') => {
                    if last > start {
                        display = Some(Display::Tokens(sub(s, start, last)));
                    }
                    i = j;
                }
                Some(b':') if last == j => {}
                _ if memchr::memchr(b'<', b).is_some() => {
                    return Err(err("invalid display name", j));
                }
                _ => {}
            }
        }
        let (uri, uri_text, end) = if at(b, i) == Some(b'<') {
            let close = memchr::memchr(b'>', b.get(i..).unwrap_or(&[]))
                .ok_or(err("expected '>'", s.len()))?
                + i;
            let inner = sub(s, i + 1, close);
            if inner.bytes().next().is_some_and(is_ws) || inner.bytes().last().is_some_and(is_ws) {
                return Err(err("whitespace inside angle brackets", i + 1));
            }
            (
                Uri::parse(inner).map_err(|e| shift(e, i + 1))?,
                inner,
                close + 1,
            )
        } else {
            let end = crate::message::lex::scan_while(b, i, |c| c != b';' && !is_ws(c));
            let text = sub(s, i, end);
            if let Some(p) = text.bytes().position(|c| c == b'?' || c == b',') {
                return Err(err("uri with '?' or ',' needs angle brackets", i + p));
            }
            (Uri::parse(text).map_err(|e| shift(e, i))?, text, end)
        };
        let ps = skip_ws(b, end);
        let pe = scan_header_params(b, end)?;
        let rest = skip_ws(b, pe);
        if rest < b.len() {
            return Err(err("unexpected character after address", rest));
        }
        Ok(NameAddr {
            display,
            uri,
            uri_text: Some(uri_text),
            params: Params::from_raw(sub(s, ps.min(pe), pe)),
        })
    }

    /// Splits a comma list (Contact, Route, Record-Route…) and parses each
    /// element; an empty element is an error (RFC 3261 §25.1 has no null elements).
    pub fn parse_list(
        s: &'a str,
    ) -> impl Iterator<Item = Result<NameAddr<'a>, ValueError>> + use<'a> {
        list(s, false, NameAddr::parse)
    }

    /// Builds a value; `display` is plain text, quoted on output when it is
    /// not a simple token sequence. CR and LF cannot be represented.
    pub fn new(display: Option<&'a str>, uri: Uri<'a>) -> Result<Self, ValueError> {
        if let Some(p) = display.and_then(|d| d.bytes().position(|c| c == b'\r' || c == b'\n')) {
            return Err(err("invalid display name", p));
        }
        Ok(NameAddr {
            display: display.map(Display::Plain),
            uri,
            uri_text: None,
            params: Params::default(),
        })
    }

    /// Replaces the header parameters with `params` (`;tag=x;expires=60`, validated).
    pub fn with_params(self, params: &'a str) -> Result<Self, ValueError> {
        Ok(NameAddr {
            params: Params::parse(params)?,
            ..self
        })
    }

    /// The display name, unescaped.
    pub fn display_name(&self) -> Option<Cow<'a, str>> {
        self.display.map(|d| d.value())
    }

    /// The display name as written (quotes removed, escapes kept).
    pub fn display_name_raw(&self) -> Option<&'a str> {
        self.display.map(|d| match d {
            Display::Quoted(r) | Display::Tokens(r) | Display::Plain(r) => r,
        })
    }

    /// The URI.
    pub fn uri(&self) -> Uri<'a> {
        self.uri
    }

    /// The URI as written, for a parsed value.
    pub(crate) fn uri_text(&self) -> Option<&'a str> {
        self.uri_text
    }

    /// The header parameters (after the URI, outside any brackets).
    pub fn params(&self) -> Params<'a> {
        self.params
    }

    /// The `tag` parameter (RFC 3261 §19.3).
    pub fn tag(&self) -> Option<&'a str> {
        self.params.get("tag").flatten()
    }

    /// The Contact `expires` parameter; absent or malformed gives `None` (RFC 3261 §20.10).
    pub fn expires(&self) -> Option<u32> {
        self.params
            .get("expires")
            .flatten()
            .and_then(|v| v.parse().ok())
    }

    /// The Contact `q` parameter in thousandths (0..=1000); malformed gives `None`.
    pub fn q(&self) -> Option<u16> {
        parse_qvalue(self.params.get("q").flatten()?)
    }
}

/// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ) (RFC 3261 §25.1).
pub(crate) fn parse_qvalue(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut f: u16 = 0;
    for i in 0..3 {
        f = f * 10 + frac.as_bytes().get(i).map_or(0, |c| u16::from(c - b'0'));
    }
    match int {
        "0" => Some(f),
        "1" if f == 0 => Some(1000),
        _ => None,
    }
}

fn write_display(f: &mut fmt::Formatter<'_>, d: Display<'_>) -> fmt::Result {
    match d {
        Display::Quoted(r) => write!(f, "\"{r}\" "),
        Display::Tokens(r) => write!(f, "{r} "),
        Display::Plain(p) if p.split(' ').all(is_token_str) => write!(f, "{p} "),
        Display::Plain(p) => {
            f.write_str("\"")?;
            for c in p.chars() {
                // quoted-pair is needed for '"', '\' and controls other than HTAB.
                if c == '"' || c == '\\' || (c.is_ascii_control() && c != '\t') {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str("\" ")
        }
    }
}

/// The `tag` parameter of a From or To value (RFC 3261 §19.3) without parsing the URI.
///
/// The transaction and dialog layers read tags on every message and the URI rarely, so this
/// skips the address — the quoted display name and `<…>`, or for a bare addr-spec everything
/// up to the first `;` (§20.10) — and reads only the header parameters. It accepts what
/// [`NameAddr::parse`] accepts and gives the same tag. Of the address it checks the outline:
/// quotes balanced, `<…>` closed, and the URI one run of non-blank characters that starts
/// with a scheme (RFC 4475 §3.1.2.15 badaspec fails here); the URI's own grammar is left to
/// [`NameAddr::parse`], which [`Message::validate`](crate::message::Message::validate) runs.
pub fn tag_param(s: &str) -> Result<Option<&str>, ValueError> {
    let b = s.as_bytes();
    let mut in_quotes = false;
    let mut i = 0;
    let mut params_at = None;
    let mut bracketed = false;
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' if in_quotes => i += 1,
            b'"' => in_quotes = !in_quotes,
            b'<' if !in_quotes => {
                let close = memchr::memchr(b'>', b.get(i..).unwrap_or(&[]))
                    .ok_or(err("expected '>'", s.len()))?;
                uri_outline(b.get(i + 1..i + close).unwrap_or_default(), i + 1, false)?;
                params_at = Some(i + close + 1);
                bracketed = true;
                break;
            }
            b';' if !in_quotes => {
                params_at = Some(i);
                break;
            }
            _ => {}
        }
        i += 1;
    }
    if in_quotes {
        return Err(err("unbalanced quote", i));
    }
    if !bracketed {
        let end = params_at.unwrap_or(b.len());
        let start = b.iter().take(end).take_while(|c| is_blank(**c)).count();
        let stop = end
            - b[start..end]
                .iter()
                .rev()
                .take_while(|c| is_blank(**c))
                .count();
        uri_outline(&b[start..stop], start, true)?;
    }
    let Some(at) = params_at else {
        return Ok(None);
    };
    // Nearly always the tag is the only parameter: `;tag=` and a token to the end.
    let tail = b.get(at..).unwrap_or_default();
    if tail.len() > 5 && eq_fold(&tail[..5], b";tag=") && tail[5..].iter().all(|&c| is_token(c)) {
        return Ok(Some(sub(s, at + 5, b.len())));
    }
    // The parameters as `Params::parse` reads them, walked once for the first `tag`.
    let start = skip_ws(b, at);
    if start >= b.len() {
        return Ok(None);
    }
    if b[start] != b';' {
        return Err(err("expected ';'", start));
    }
    let mut tag = None;
    let end = walk_header_params(b, start, |(ns, ne), v| {
        if tag.is_none() && eq_fold(sub(s, ns, ne), b"tag") {
            tag = Some(v.map(|(vs, ve)| strip_quotes(sub(s, vs, ve))));
        }
        Ok(())
    })?;
    let rest = skip_ws(b, end);
    if rest < b.len() {
        return Err(err("invalid parameter", rest));
    }
    Ok(tag.flatten())
}

fn is_blank(c: u8) -> bool {
    OUTLINE[c as usize] & BLANK != 0
}

const BLANK: u8 = 1;
const SEPARATOR: u8 = 2;

/// What [`uri_outline`] refuses inside a URI: blanks, and `?` and `,` in a bare one.
static OUTLINE: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b' ' as usize] = BLANK;
    t[b'\t' as usize] = BLANK;
    t[b'\r' as usize] = BLANK;
    t[b'\n' as usize] = BLANK;
    t[b'?' as usize] = SEPARATOR;
    t[b',' as usize] = SEPARATOR;
    t
};

/// The outline of a URI inside a From or To value (see [`tag_param`]): a scheme, then no
/// blanks; without angle brackets, no `?` or `,` either (§20.10).
fn uri_outline(uri: &[u8], offset: usize, bare: bool) -> Result<(), ValueError> {
    let scheme_ok = memchr::memchr(b':', uri).is_some_and(|colon| is_scheme(&uri[..colon]));
    if !scheme_ok {
        return Err(err("invalid scheme", offset));
    }
    let mask = if bare { BLANK | SEPARATOR } else { BLANK };
    match uri.iter().position(|&c| OUTLINE[c as usize] & mask != 0) {
        Some(at) => Err(err("blank or separator inside the uri", offset + at)),
        None => Ok(()),
    }
}

impl fmt::Display for NameAddr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = self.display {
            write_display(f, d)?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

/// A Contact header value: `*` or a list of addresses (RFC 3261 §20.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contact<'a> {
    /// `*`, only valid in REGISTER with Expires: 0 (RFC 3261 §10.2.2).
    Star,
    /// A validated, non-empty list; iterate with [`Contact::iter`].
    List(&'a str),
}

impl<'a> Contact<'a> {
    /// Parses and validates every element once.
    pub fn parse(s: &'a str) -> Result<Self, ValueError> {
        Ok(match crate::message::keys::contact_span(s)? {
            None => Contact::Star,
            Some(_) => Contact::List(s),
        })
    }

    /// The addresses; empty for `*`.
    pub fn iter(&self) -> impl Iterator<Item = NameAddr<'a>> + use<'a> {
        let s = match self {
            Contact::Star => None,
            Contact::List(s) => Some(*s),
        };
        s.into_iter()
            .flat_map(|s| NameAddr::parse_list(s).filter_map(Result::ok))
    }
}

impl fmt::Display for Contact<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Contact::Star = self {
            return f.write_str("*");
        }
        for (n, a) in self.iter().enumerate() {
            if n > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

/// Refer-To is a name-addr or addr-spec with params (RFC 3515 §2.1).
pub type ReferTo<'a> = NameAddr<'a>;

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The tag read without the address is the tag of the parsed address, whenever the
        /// address parses (the plain `;tag=token` tail included).
        #[test]
        fn the_tag_is_the_parsed_addresss_tag(
            s in "(\"[a ]{0,3}\" |[a ]{0,3})?(<sip:a@h(;p)?>|sip:a@h)( ?;(tag|TAG|x)(=[a-z0-9.\" ]{0,4})?){0,3}",
        ) {
            if let Ok(na) = NameAddr::parse(&s) {
                proptest::prop_assert_eq!(tag_param(&s), Ok(na.tag()), "{}", s);
            }
        }
    }
    use crate::message::host::Host;

    fn p(s: &str) -> NameAddr<'_> {
        NameAddr::parse(s).unwrap()
    }
    fn e(s: &str) -> &'static str {
        NameAddr::parse(s).unwrap_err().what
    }
    fn rt(a: NameAddr<'_>) {
        let s = a.to_string();
        assert_eq!(NameAddr::parse(&s).unwrap(), a, "{s}");
    }

    #[test]
    fn wsinv_values() {
        let a = p("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n");
        assert_eq!(a.tag(), Some("1918181833n"));
        assert_eq!(a.display_name(), None);
        rt(a);
        let a = p(r#""J Rosenberg \\\""       <sip:jdrosen@example.com> ;   tag = 98asjd8"#);
        assert_eq!(a.display_name().unwrap(), r#"J Rosenberg \""#);
        assert_eq!(a.display_name_raw(), Some(r#"J Rosenberg \\\""#));
        assert_eq!(a.tag(), Some("98asjd8"));
        rt(a);
        let a = p(
            r#""Quoted string \"\"" <sip:jdrosen@example.com> ; newparam =       newvalue ;   secondparam ; q = 0.33"#,
        );
        assert_eq!(a.display_name().unwrap(), r#"Quoted string """#);
        assert_eq!(a.q(), Some(330));
        assert_eq!(a.params().get("secondparam"), Some(None));
        rt(a);
        let a = p("<sip:services.example.com;lr;unknownwith=value;unknown-no-value>");
        assert!(a.uri().is_loose_route());
        assert!(a.params().is_empty());
        rt(a);
    }

    #[test]
    fn intmeth_values() {
        let a = p(
            "\"BEL:\\\x07 NUL:\\\0 DEL:\\\x7f\" <sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*@example.com>",
        );
        assert_eq!(a.display_name().unwrap(), "BEL:\x07 NUL:\0 DEL:\x7f");
        assert_eq!(
            a.uri().user(),
            Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        );
        rt(a);
        let a = p(
            "token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;fromParam''~+*_!.-%=\"работающий\";tag=_token~1'+`*%!-.",
        );
        assert_eq!(a.display_name().unwrap(), "token1~` token2'+_ token3*%!.-");
        assert_eq!(
            a.params().get("FROMPARAM''~+*_!.-%"),
            Some(Some("работающий"))
        );
        assert_eq!(a.tag(), Some("_token~1'+`*%!-."));
        rt(a);
    }

    #[test]
    fn valid_corpus_values() {
        // lwsdisp: no LWS between display name and '<'.
        let a = p("caller<sip:caller@example.com>;tag=323");
        assert_eq!(a.display_name().unwrap(), "caller");
        rt(a);
        // esc01
        let a = p("<sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>");
        assert_eq!(a.uri().user_unescaped().unwrap(), "caller");
        rt(a);
        // cparam01: unknownparam is a header param
        let a = p("sip:+19725552222@gw1.example.net;unknownparam");
        assert!(a.params().contains("unknownparam"));
        assert!(a.uri().params().is_empty());
        assert_eq!(
            a.to_string(),
            "<sip:+19725552222@gw1.example.net>;unknownparam"
        );
        // cparam02: inside brackets it is a URI param
        let a = p("<sip:+19725552222@gw1.example.net;unknownparam>");
        assert!(a.uri().params().contains("unknownparam"));
        assert!(a.params().is_empty());
        // regescrt
        let a = p("<sip:user@example.com?Route=%3Csip:sip.example.com%3E>");
        assert_eq!(a.uri().headers(), Some("Route=%3Csip:sip.example.com%3E"));
        rt(a);
        // scalar02 contact with a huge expires: view parses, expires() is None
        let a = p("<sip:user@host129.example.com>  ;expires=280297596632815");
        assert_eq!(a.expires(), None);
        // rfc5118
        let a = p("\"T. desk phone\" <sip:ted@[::ffff:192.0.2.2]>");
        assert!(matches!(a.uri().host(), Some(Host::Ipv6(_))));
        assert!(NameAddr::parse("sip:user@[2001:db8::192.0.2.1]").is_ok());
        // unksm2
        assert!(NameAddr::parse("isbn:2983792873").is_ok());
        assert!(NameAddr::parse("<http://www.example.com>;tag=3234233").is_ok());
        assert!(NameAddr::parse("<name:John_Smith>").is_ok());
        // badvers: token display names with dots
        assert_eq!(
            p("A. Bell <sip:a.g.bell@example.com>;tag=qweoiqpe")
                .display_name()
                .unwrap(),
            "A. Bell"
        );
        assert_eq!(
            p("\"Bell, Alexander\" <sip:a.g.bell@example.com>;tag=433423")
                .display_name()
                .unwrap(),
            "Bell, Alexander"
        );
        assert_eq!(p("<sip:a@b.com>;expires=3600;q=1").expires(), Some(3600));
        assert_eq!(p("<sip:a@b.com>;q=1").q(), Some(1000));
        assert_eq!(p("<sip:a@b.com>;q=1.5").q(), None);
    }

    #[test]
    fn corpus_negatives() {
        assert_eq!(e(r#""Joe" <sip:joe@example.org>;;;;"#), "empty parameter"); // badinv01
        assert_eq!(
            e(r#""Mr. J. User <sip:j.user@example.com>"#),
            "unbalanced quote"
        ); // quotbal
        assert_eq!(
            e("Bell, Alexander <sip:a.g.bell@example.com>;tag=43"),
            "invalid display name"
        ); // baddn
        assert_eq!(
            e("Watson, Thomas <sip:t.watson@example.org>"),
            "invalid display name"
        );
        assert_eq!(
            e(r#""Watson, Thomas" < sip:t.watson@example.org >"#),
            "whitespace inside angle brackets"
        ); // badaspec
        assert_eq!(
            e("sip:user@example.com?Route=%3Csip:sip.example.com%3E"),
            "uri with '?' or ',' needs angle brackets"
        ); // regbadct
        assert_eq!(e("sip:user@[2001:db8:::192.0.2.1]"), "invalid ipv6 address");
        assert_eq!(e("<sip:a@b.com"), "expected '>'");
        assert_eq!(e("\"a\" sip:a@b.com"), "expected '<'");
        assert_eq!(e("<sip:a@b.com> x"), "unexpected character after address");
        assert_eq!(e(""), "expected ':' after scheme");
    }

    #[test]
    fn contact_lists() {
        assert_eq!(Contact::parse(" * ").unwrap(), Contact::Star);
        let c =
            Contact::parse(r#""Joe" <sip:joe@example.org>, sip:a@b.com;q=0.5 , <sip:c,d@e.com>"#)
                .unwrap();
        let v: Vec<_> = c.iter().collect();
        assert_eq!(v.len(), 3);
        assert_eq!(v[2].uri().user(), Some("c,d"));
        assert_eq!(
            Contact::parse(&c.to_string())
                .unwrap()
                .iter()
                .collect::<Vec<_>>(),
            v
        );
        let e = Contact::parse("<sip:a@b.com>,,<sip:c@d.com>").unwrap_err();
        assert_eq!((e.what, e.offset), ("empty list element", 14));
        assert_eq!(
            Contact::parse("<sip:a@b.com>;;").unwrap_err().what,
            "empty parameter"
        );
        assert_eq!(Contact::parse("").unwrap_err().what, "empty list element");
    }

    #[test]
    fn builder() {
        let u = Uri::new_sip(Some("bob"), "example.com", None).unwrap();
        let a = NameAddr::new(Some("Bob \"B\" Smith, Jr."), u)
            .unwrap()
            .with_params(";tag=abc")
            .unwrap();
        assert_eq!(
            a.to_string(),
            r#""Bob \"B\" Smith, Jr." <sip:bob@example.com>;tag=abc"#
        );
        rt(a);
        let a = NameAddr::new(Some("Bob"), u).unwrap();
        assert_eq!(a.to_string(), "Bob <sip:bob@example.com>");
        rt(a);
        assert!(NameAddr::new(Some("a\r\nb"), u).is_err());
    }
}
