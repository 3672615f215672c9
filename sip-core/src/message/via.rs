//! Via header values (RFC 3261 §20.42, §25.1; RFC 3581 rport; RFC 5118 §4.5).

use crate::message::ValueError;
use crate::message::host::{Host, classify, dotted_quad, ipv4_text, parse_port, scan_host};
use crate::message::keys::Span;
use crate::message::lex::{
    at, eq_fold, err, is_token_str, list, scan_token, scan_while, skip_ws, strip_quotes, sub,
};
use crate::message::params::{Params, walk_header_params};
use crate::message::syntax::is_hostname;
use std::fmt;
use std::net::IpAddr;

/// One via-parm: `SIP/2.0/<transport> sent-by *(;param)`.
///
/// Parse checks the typed parameters (`branch`, `received`, `rport`,
/// `maddr`, `ttl`) once, so their accessors cannot fail.
///
/// Equality: transport case-insensitive, host, port, branch, then the other
/// parameters in order.
#[derive(Debug, Clone, Copy)]
pub struct Via<'a> {
    transport: &'a str,
    host: Host<'a>,
    port: Option<u16>,
    params: Params<'a>,
    /// The branch, found once while the parameters are checked (the transaction layer reads
    /// it for every message), or given to the builder.
    branch: Option<&'a str>,
    /// The branch came from the builder, so `params` does not hold it.
    own_branch: bool,
}

impl<'a> Via<'a> {
    /// The sent-by as a matching key (RFC 3261 §17.2.3): host lowercased, with the port
    /// as written (0 when absent).
    pub fn sent_by_key(&self) -> smol_str::SmolStr {
        let mut key = smol_str::SmolStrBuilder::new();
        match self.host {
            // A name as written, lowercased; addresses print lowercase already.
            Host::Domain(d) if d.bytes().any(|c| c.is_ascii_uppercase()) => {
                d.chars().for_each(|c| key.push(c.to_ascii_lowercase()));
            }
            Host::Domain(d) => key.push_str(d),
            Host::Ipv4(a) => key.push_str(ipv4_text(&a, &mut [0; 15])),
            other => {
                use std::fmt::Write;
                let _ = write!(key, "{other}");
            }
        }
        key.push(':');
        key.push_str(itoa::Buffer::new().format(self.port.unwrap_or(0)));
        key.finish()
    }

    /// Parses one via-parm; LWS is allowed around `/`, `:` and `;`.
    pub fn parse(s: &'a str) -> Result<Self, ValueError> {
        // Every message's top Via is read on arrival; nearly all are in the plain shape.
        match Self::parse_plain(s) {
            Some(via) => Ok(via),
            None => Self::parse_grammar(s),
        }
    }

    /// The plain shape of a via-parm, read in one pass: `SIP/2.0/`, a transport token, one
    /// space, a host name or IPv4 address, an optional `:port`, and `;name[=token]`
    /// parameters, with no other whitespace, quotes, brackets or commas. `None` for anything
    /// else (including every fault), which [`Via::parse_grammar`] then reads. What this
    /// accepts, the grammar accepts with the same parts.
    fn parse_plain(s: &'a str) -> Option<Self> {
        let b = s.as_bytes();
        let protocol = b.get(..8)?;
        if !eq_fold(&protocol[..4], b"SIP/") || &protocol[4..] != b"2.0/" {
            return None;
        }
        let te = scan_token(b, 8);
        if te == 8 || at(b, te) != Some(b' ') {
            return None;
        }
        let hs = te + 1;
        let he = scan_while(b, hs, is_hostname);
        let host = classify(sub(s, hs, he))?;
        let mut i = he;
        let mut port = None;
        if at(b, i) == Some(b':') {
            let pe = scan_while(b, i + 1, |c| c.is_ascii_digit());
            port = Some(parse_port(sub(s, i + 1, pe), 0).ok()?);
            i = pe;
        }
        let ps = i;
        let mut branch = None;
        while i < b.len() {
            if b[i] != b';' {
                return None;
            }
            let ns = i + 1;
            let ne = scan_token(b, ns);
            if ne == ns {
                return None;
            }
            i = ne;
            let mut value = None;
            if at(b, i) == Some(b'=') {
                let ve = scan_token(b, i + 1);
                if ve == i + 1 {
                    return None;
                }
                value = Some(sub(s, i + 1, ve));
                i = ve;
            }
            // A branch's value is a token by the scan above; the rest are checked as the
            // grammar checks them.
            let name = sub(s, ns, ne);
            let found = if eq_fold(name, b"branch") {
                Some(value?)
            } else {
                check_param(name, value).ok()?
            };
            if branch.is_none() {
                branch = found;
            }
        }
        Some(Via {
            transport: sub(s, 8, te),
            host,
            port,
            params: Params::from_raw(sub(s, ps, b.len())),
            branch,
            own_branch: false,
        })
    }

    /// One via-parm by the full grammar of RFC 3261 §25.1 (with RFC 5118 §4.5's addresses).
    fn parse_grammar(s: &'a str) -> Result<Self, ValueError> {
        let b = s.as_bytes();
        let mut i = skip_ws(b, 0);
        let mut parts = [""; 3];
        for (n, part) in parts.iter_mut().enumerate() {
            if n > 0 {
                if at(b, i) != Some(b'/') {
                    return Err(err("expected '/'", i));
                }
                i = skip_ws(b, i + 1);
            }
            let e = scan_token(b, i);
            if e == i {
                return Err(err("expected token", i));
            }
            *part = sub(s, i, e);
            i = skip_ws(b, e);
        }
        let [name, version, transport] = parts;
        if !name.eq_ignore_ascii_case("SIP") {
            return Err(err("unsupported protocol", 0));
        }
        if version != "2.0" {
            return Err(err("unsupported sip version", 0));
        }
        if i >= b.len() {
            return Err(err("missing sent-by", i));
        }
        // sent-protocol LWS sent-by: at least one space is required.
        if !b
            .get(i.saturating_sub(1))
            .is_some_and(|c| *c == b' ' || *c == b'\t')
        {
            return Err(err("expected whitespace", i));
        }
        let (host, e) = scan_host(s, i)?;
        i = e;
        let mut port = None;
        let c = skip_ws(b, i);
        if at(b, c) == Some(b':') {
            let ps = skip_ws(b, c + 1);
            let pe = crate::message::lex::scan_while(b, ps, |c| c.is_ascii_digit());
            port = Some(parse_port(sub(s, ps, pe), ps)?);
            i = pe;
        }
        let ps = skip_ws(b, i);
        // One walk checks the list and the typed parameters, and finds the branch.
        let mut branch = None;
        let pe = walk_header_params(b, i, |(ns, ne), v| {
            let v = v.map(|(vs, ve)| sub(s, vs, ve));
            match check_param(sub(s, ns, ne), v) {
                Ok(Some(b)) if branch.is_none() => branch = Some(b),
                Ok(_) => {}
                Err(what) => return Err(err(what, ps)),
            }
            Ok(())
        })?;
        let rest = skip_ws(b, pe);
        if rest < b.len() {
            return Err(err("unexpected character in via", rest));
        }
        let params = Params::from_raw(sub(s, ps.min(pe), pe));
        Ok(Via {
            transport,
            host,
            port,
            params,
            branch,
            own_branch: false,
        })
    }

    /// Splits a Via value on top-level commas; empty elements are errors.
    pub fn parse_list(s: &'a str) -> impl Iterator<Item = Result<Via<'a>, ValueError>> + use<'a> {
        list(s, false, Via::parse)
    }

    /// Builds `SIP/2.0/<transport> host[:port];branch=<branch>`.
    /// `host` may be a domain, IPv4, or IPv6 with or without brackets.
    pub fn new(
        transport: &'a str,
        host: &'a str,
        port: Option<u16>,
        branch: &'a str,
    ) -> Result<Self, ValueError> {
        if !is_token_str(transport) {
            return Err(err("invalid transport", 0));
        }
        if !is_token_str(branch) {
            return Err(err("invalid branch", 0));
        }
        let host = match host.parse::<std::net::Ipv6Addr>() {
            Ok(a) => Host::Ipv6(a),
            Err(_) => Host::parse(host)?,
        };
        Ok(Via {
            transport,
            host,
            port,
            params: Params::default(),
            branch: Some(branch),
            own_branch: true,
        })
    }

    /// Sets the parameters other than the builder's branch, e.g. `;rport`.
    pub fn with_params(self, params: &'a str) -> Result<Self, ValueError> {
        let params = Params::parse(params)?;
        let parsed_branch = check_params(&params).map_err(|what| err(what, 0))?;
        if self.own_branch && parsed_branch.is_some() {
            return Err(err("duplicate branch", 0));
        }
        let branch = if self.own_branch {
            self.branch
        } else {
            parsed_branch
        };
        Ok(Via {
            params,
            branch,
            ..self
        })
    }

    /// Always `SIP/2.0`: any other version fails to parse.
    pub fn protocol_version(&self) -> &'static str {
        "SIP/2.0"
    }

    /// The transport token as written (UDP, TCP, TLS, SCTP, WS, WSS or other).
    pub fn transport(&self) -> &'a str {
        self.transport
    }

    /// The sent-by host.
    pub fn host(&self) -> Host<'a> {
        self.host
    }

    /// The sent-by port, if written.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// All parameters except a branch given to the builder.
    pub fn params(&self) -> Params<'a> {
        self.params
    }

    /// The `branch` parameter (RFC 3261 §8.1.1.7); may lack the magic cookie.
    pub fn branch(&self) -> Option<&'a str> {
        self.branch
    }

    /// The `received` address, bracketed or not (RFC 5118 §4.5).
    pub fn received(&self) -> Option<IpAddr> {
        self.params.get("received").flatten().and_then(parse_ip)
    }

    /// `rport`: outer `None` absent, inner `None` present without a value (RFC 3581).
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params
            .get("rport")
            .map(|v| v.and_then(|p| p.parse().ok()))
    }

    /// The `maddr` host (RFC 3261 §18.2.1).
    pub fn maddr(&self) -> Option<Host<'a>> {
        self.params
            .get("maddr")
            .flatten()
            .and_then(|h| Host::parse(h).ok())
    }

    /// The `ttl` parameter (0..=255).
    pub fn ttl(&self) -> Option<u8> {
        self.params
            .get("ttl")
            .flatten()
            .and_then(|t| t.parse().ok())
    }
}

/// A parsed Via remembered as offsets into the value it was parsed from, so that the header
/// index can hand the top Via out again without parsing it (the transaction layer reads it for
/// every message, several times).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ViaSpans {
    transport: Span,
    host: HostSpan,
    port: Option<u16>,
    params: Span,
    branch: Option<Span>,
}

#[derive(Debug, Clone, Copy)]
enum HostSpan {
    Domain(Span),
    Ipv4(std::net::Ipv4Addr),
    Ipv6(std::net::Ipv6Addr),
}

impl<'a> Via<'a> {
    /// This Via as offsets into `base`, the value it was parsed from.
    pub(crate) fn spans(&self, base: &str) -> ViaSpans {
        ViaSpans {
            transport: Span::of(base, self.transport),
            host: match self.host {
                Host::Domain(d) => HostSpan::Domain(Span::of(base, d)),
                Host::Ipv4(a) => HostSpan::Ipv4(a),
                Host::Ipv6(a) => HostSpan::Ipv6(a),
            },
            port: self.port,
            params: Span::of(base, self.params.raw()),
            branch: self.branch.map(|b| Span::of(base, b)),
        }
    }

    /// The Via that [`Via::spans`] remembered, read back from the same `base`.
    pub(crate) fn from_spans(base: &'a str, s: ViaSpans) -> Via<'a> {
        Via {
            transport: s.transport.get(base),
            host: match s.host {
                HostSpan::Domain(d) => Host::Domain(d.get(base)),
                HostSpan::Ipv4(a) => Host::Ipv4(a),
                HostSpan::Ipv6(a) => Host::Ipv6(a),
            },
            port: s.port,
            params: Params::from_raw(s.params.get(base)),
            branch: s.branch.map(|b| b.get(base)),
            own_branch: false,
        }
    }
}

/// `received`'s value (RFC 3261 §25.1: IPv4address / IPv6address, RFC 5118 §4.5 lets the
/// latter come bracketed). A dotted quad is read as the grammar reads it, leading zeros
/// allowed, in one pass.
fn parse_ip(v: &str) -> Option<IpAddr> {
    if let Some(quad) = dotted_quad(v.as_bytes()) {
        return quad.map(IpAddr::V4);
    }
    let v = v
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(v);
    v.parse().ok()
}

/// Validates the typed via-params (RFC 3261 §25.1 via-params).
/// Checks the parameters RFC 3261 and RFC 3581 give a syntax, and returns the branch.
fn check_params<'a>(p: &Params<'a>) -> Result<Option<&'a str>, &'static str> {
    let mut branch = None;
    for (n, v) in p.iter_raw() {
        if let Some(b) = check_param(n, v)?
            && branch.is_none()
        {
            branch = Some(b);
        }
    }
    Ok(branch)
}

/// The via-params whose syntax RFC 3261 or RFC 3581 gives.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Typed {
    Branch,
    Received,
    Rport,
    Maddr,
    Ttl,
}

/// Checks one via-param whose syntax RFC 3261 or RFC 3581 gives; returns the value when it
/// is the branch.
fn check_param<'a>(n: &str, v: Option<&'a str>) -> Result<Option<&'a str>, &'static str> {
    // Dispatch on the first letter: most parameters are none of these five.
    let (param, name, what) = match n.as_bytes().first().map(u8::to_ascii_lowercase) {
        Some(b'b') => (Typed::Branch, "branch", "invalid branch"),
        Some(b'r') if n.len() == 8 => (Typed::Received, "received", "invalid received"),
        Some(b'r') => (Typed::Rport, "rport", "invalid rport"),
        Some(b'm') => (Typed::Maddr, "maddr", "invalid maddr"),
        Some(b't') => (Typed::Ttl, "ttl", "invalid ttl"),
        _ => return Ok(None),
    };
    if !eq_fold(n, name.as_bytes()) {
        return Ok(None);
    }
    let ok = match param {
        Typed::Branch => v.is_some_and(is_token_str),
        Typed::Received => v.and_then(parse_ip).is_some(),
        Typed::Rport => v.is_none_or(|p| parse_port(p, 0).is_ok()),
        Typed::Maddr => v.and_then(|h| Host::parse(strip_quotes(h)).ok()).is_some(),
        Typed::Ttl => v.and_then(|t| t.parse::<u8>().ok()).is_some(),
    };
    if !ok {
        return Err(what);
    }
    Ok(if param == Typed::Branch { v } else { None })
}

impl PartialEq for Via<'_> {
    fn eq(&self, o: &Self) -> bool {
        let rest = |v: &Self| {
            v.params
                .iter_raw()
                .filter(|(n, _)| !n.eq_ignore_ascii_case("branch"))
        };
        self.transport.eq_ignore_ascii_case(o.transport)
            && self.host == o.host
            && self.port == o.port
            && self.branch() == o.branch()
            && rest(self).count() == rest(o).count()
            && rest(self)
                .zip(rest(o))
                .all(|((n1, v1), (n2, v2))| n1.eq_ignore_ascii_case(n2) && v1 == v2)
    }
}
impl Eq for Via<'_> {}

impl fmt::Display for Via<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        if let (true, Some(b)) = (self.own_branch, self.branch) {
            write!(f, ";branch={b}")?;
        }
        write!(f, "{}", self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    /// Via values near the plain shape, with the faults and variations that must send a
    /// value to the grammar: case, spacing, odd hosts and ports, quoted and bracketed values.
    fn near_plain() -> impl Strategy<Value = String> {
        let protocol = prop::sample::select(vec!["SIP/2.0/", "sip/2.0/", "SIP/2.1/", "SIP /2.0/"]);
        let transport = prop::sample::select(vec!["UDP", "tcp", "WSS", "", "U:DP"]);
        let space = prop::sample::select(vec![" ", "  ", "\t", ""]);
        let host = prop::sample::select(vec![
            "127.0.0.1",
            "192.0.2.300",
            "pc33.atlanta.example.com",
            "a-.b",
            "host.",
            "1.2.3",
            "[::1]",
            "fe80::1",
            "Example.COM",
            "",
        ]);
        let port = prop::sample::select(vec!["", ":5060", ":65536", ":", " :5060", ":0x1"]);
        let param = prop::sample::select(vec![
            ";branch=z9hG4bK776asdhds",
            ";rport",
            ";rport=5060",
            ";rport=x",
            ";received=192.0.2.1",
            ";received=::1",
            ";received=[::1]",
            ";maddr=224.2.0.1",
            ";ttl=16",
            ";ttl=256",
            ";branch",
            ";BRANCH=z9hG4bKx",
            ";x=\"q\"",
            "; lr",
            ";",
            ";a=b:c",
            ";branch=a:b",
            ",",
        ]);
        (
            protocol,
            transport,
            space,
            host,
            port,
            prop::collection::vec(param, 0..4),
        )
            .prop_map(|(pr, t, sp, h, po, params)| format!("{pr}{t}{sp}{h}{po}{}", params.concat()))
    }

    proptest! {
        // Roughly one value in fifty has the plain shape: enough cases to see many.
        #![proptest_config(ProptestConfig::with_cases(4096))]
        #[test]
        fn the_plain_reading_agrees_with_the_grammar(v in near_plain()) {
            if let Some(plain) = Via::parse_plain(&v) {
                let full = Via::parse_grammar(&v);
                prop_assert!(full.is_ok(), "{v:?}: plain read it, the grammar says {full:?}");
                let full = full.unwrap();
                prop_assert_eq!(plain, full);
                prop_assert_eq!(plain.params().raw(), full.params().raw());
                prop_assert_eq!(plain.transport(), full.transport());
            }
        }
    }

    #[test]
    fn the_common_shapes_are_read_plainly() {
        for v in [
            "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1;rport",
            "SIP/2.0/TCP pc33.atlanta.example.com;received=192.0.2.1;branch=z9hG4bK2",
            "SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK3;rport=5060",
        ] {
            assert!(Via::parse_plain(v).is_some(), "{v}");
        }
    }

    fn p(s: &str) -> Via<'_> {
        Via::parse(s).unwrap()
    }
    fn e(s: &str) -> &'static str {
        Via::parse(s).unwrap_err().what
    }
    fn rt(v: Via<'_>) {
        let s = v.to_string();
        assert_eq!(Via::parse(&s).unwrap(), v, "{s}");
    }

    #[test]
    fn wsinv_whitespace() {
        let v = p("SIP  /   2.0  /UDP    192.0.2.2;branch=390skdjuw");
        assert_eq!(v.transport(), "UDP");
        assert_eq!(v.host(), Host::Ipv4(Ipv4Addr::new(192, 0, 2, 2)));
        assert_eq!(v.branch(), Some("390skdjuw"));
        rt(v);
        let l: Vec<_> = Via::parse_list("SIP  / 2.0  / TCP     spindle.example.com   ;   branch  =   z9hG4bK9ikj8  ,  SIP  /    2.0   / UDP  192.168.255.111   ; branch=  z9hG4bK30239")
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].branch(), Some("z9hG4bK9ikj8"));
        assert_eq!(l[0].host(), Host::Domain("spindle.example.com"));
        assert_eq!(l[1].transport(), "UDP");
        assert_eq!(l[1].branch(), Some("z9hG4bK30239"));
        assert_eq!(
            l[1].to_string(),
            "SIP/2.0/UDP 192.168.255.111;branch=z9hG4bK30239"
        );
    }

    #[test]
    fn transports_and_misc() {
        for (t, h) in [
            ("UDP", "t1"),
            ("SCTP", "t2"),
            ("TLS", "t3"),
            ("UNKNOWN", "t4"),
            ("TCP", "t5"),
        ] {
            let s = format!("SIP/2.0/{t} {h}.example.com;branch=z9hG4bKkdjuw");
            let v = Via::parse(&s).unwrap();
            assert_eq!(v.transport(), t);
            assert_eq!(v.host().domain(), Some(format!("{h}.example.com").as_str()));
        }
        let v =
            p("SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-;rport");
        assert_eq!((v.port(), v.rport()), (Some(5070), Some(None)));
        assert_eq!(p("SIP/2.0/UDP h;rport=5060").rport(), Some(Some(5060)));
        assert_eq!(
            p("SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~").branch(),
            Some("z9hG4bK-.!%66*_+`'~")
        );
        assert_eq!(
            p("SIP/2.0/TCP host.example.com;branch=z9hG4bK209%fzsnel234").branch(),
            Some("z9hG4bK209%fzsnel234")
        );
        let v = p("SIP/2.0/UDP iftgw.example.com"); // inv2543: no branch
        assert_eq!(v.branch(), None);
        rt(v);
        let v = p("SIP/2.0/UDP 192.0.2.1 : 5060 ;maddr=224.2.0.1;ttl=16;received=192.0.2.9");
        assert_eq!(v.port(), Some(5060));
        assert_eq!(v.maddr(), Some(Host::Ipv4(Ipv4Addr::new(224, 2, 0, 1))));
        assert_eq!(v.ttl(), Some(16));
        assert_eq!(v.received(), Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9))));
        rt(v);
        assert_eq!(
            p("sip/2.0/ws df7jal23ls0d.invalid;branch=z9hG4bK").transport(),
            "ws"
        );
    }

    #[test]
    fn rfc5118() {
        let v = p("SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3");
        assert_eq!(v.received(), Some("2001:db8::9:255".parse().unwrap()));
        rt(v);
        let v = p("SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255];branch=z9hG4bKas3-111");
        assert_eq!(v.received(), Some("2001:db8::9:255".parse().unwrap()));
        rt(v);
        let v = p("SIP/2.0/UDP [2001:db8::9:1]:6050;branch=z9hG4bKas3-111");
        assert_eq!(
            (v.host(), v.port()),
            (Host::Ipv6("2001:db8::9:1".parse().unwrap()), Some(6050))
        );
        let v = p("SIP/2.0/TCP [2001:db8::9:255];branch=z9hG4bK451jj;received=192.0.2.200");
        assert_eq!(v.received(), Some("192.0.2.200".parse().unwrap()));
        let v = p("SIP/2.0/UDP [::ffff:192.0.2.10]:19823;branch=z9hG4bKbh19");
        assert_eq!(v.port(), Some(19823));
        rt(v);
        assert_eq!(
            e("SIP/2.0/UDP 2001:db8::9:1;branch=x"),
            "ipv6 address needs brackets"
        );
    }

    #[test]
    fn negatives() {
        assert_eq!(
            e("SIP/7.0/UDP c.example.com;branch=z9hG4bKkdjuw"),
            "unsupported sip version"
        ); // badvers
        assert_eq!(e("SIP/2.0/UDP 192.0.2.15;;"), "empty parameter"); // badinv01
        let l: Vec<_> = Via::parse_list("SIP/2.0/UDP 192.0.2.15;;,;,,").collect();
        assert!(l.iter().all(Result::is_err));
        assert_eq!(
            Via::parse_list("SIP/2.0/UDP a.com,,SIP/2.0/UDP b.com")
                .nth(1)
                .unwrap()
                .unwrap_err()
                .what,
            "empty list element"
        );
        assert_eq!(
            Via::parse_list("SIP/2.0/UDP a.com,")
                .nth(1)
                .unwrap()
                .unwrap_err()
                .what,
            "empty list element"
        );
        assert_eq!(e("HTTP/2.0/UDP a.com"), "unsupported protocol");
        assert_eq!(e("SIP/2.0 a.com"), "expected '/'");
        assert_eq!(e("SIP/2.0/UDP"), "missing sent-by");
        assert_eq!(e("SIP/2.0/UDP ;branch=x"), "invalid host");
        assert_eq!(e("SIP/2.0/UDPa.com"), "missing sent-by");
        assert_eq!(e("SIP/2.0/UDP a.com:99999"), "port out of range");
        assert_eq!(e("SIP/2.0/UDP a.com;received=a.com"), "invalid received");
        assert_eq!(
            e("SIP/2.0/UDP a.com;received=1.2.3.256"),
            "invalid received"
        );
        assert_eq!(e("SIP/2.0/UDP a.com;received=1.2.3"), "invalid received");
        assert_eq!(e("SIP/2.0/UDP a.com;rport=+5"), "invalid rport");
        // IPv4address is 1*3DIGIT per part (RFC 3261 §25.1): leading zeros are allowed.
        let v = Via::parse("SIP/2.0/UDP a.com;received=192.000.002.009").unwrap();
        assert_eq!(v.received(), Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9))));
        assert_eq!(e("SIP/2.0/UDP a.com;branch"), "invalid branch");
        assert_eq!(e("SIP/2.0/UDP a.com;branch=\"x\""), "invalid branch");
        assert_eq!(e("SIP/2.0/UDP a.com;ttl=256"), "invalid ttl");
        assert_eq!(e("SIP/2.0/UDP a.com;rport=x"), "invalid rport");
        assert_eq!(e("SIP/2.0/UDP a.com x"), "unexpected character in via");
    }

    #[test]
    fn builder() {
        let v = Via::new("TLS", "2001:db8::1", Some(5061), "z9hG4bK776")
            .unwrap()
            .with_params(";rport")
            .unwrap();
        assert_eq!(
            v.to_string(),
            "SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bK776;rport"
        );
        assert_eq!(v.branch(), Some("z9hG4bK776"));
        rt(v);
        assert!(Via::new("U D P", "a.com", None, "b").is_err());
        assert!(
            Via::new("UDP", "a.com", None, "z9hG4bK1")
                .unwrap()
                .with_params(";branch=x")
                .is_err()
        );
    }
}
