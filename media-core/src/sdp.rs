//! SDP glue between SIP peers and str0m (DESIGN.md §4).
//!
//! str0m takes only WebRTC-profile SDP: `UDP/TLS/RTP/SAVPF` m-lines, ICE and DTLS
//! attributes, an `a=mid` on every m-line, an `a=group:BUNDLE` listing them in order, and an
//! explicit direction per m-line. SIP peers that do DTLS-SRTP vary around that: baresip
//! sends `a=mid` without a BUNDLE group, Asterisk- and FreeSWITCH-style offers put the
//! direction or the ICE and fingerprint attributes at session level or leave out `a=mid`,
//! some write `UDP/TLS/RTP/SAVP` or `RTP/SAVPF` for the same thing, and offers carry m-lines
//! str0m does not take (data channels, BFCP, rejected port-0 lines).
//!
//! [`normalize_offer`] turns such an offer into what str0m takes, and remembers every
//! original m-line; [`RemoteOffer::fix_answer`] then puts str0m's answer back in the shape
//! RFC 3264 §6 demands: one m-line per offered one, same order, the ones we did not take
//! rejected with port 0, the offered transport protocol echoed. Offers with no DTLS-SRTP
//! stream at all (plain `RTP/AVP`, SDES `RTP/SAVP` with `a=crypto`) do not come here: the
//! session sends them to its own RTP path (`crate::rtp`); what neither takes is refused
//! with a reason fit for a 488's Warning header.

use std::borrow::Cow;
use std::net::SocketAddr;

use sansip_core::session::SdpError;
use sansip_core::session::sdp::rewrite_directions;

/// The transport str0m speaks for media.
const SAVPF: &str = "UDP/TLS/RTP/SAVPF";

/// One m-line of the peer's offer, as offered.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Offered {
    media: String,
    proto: String,
    /// The first format, for a rejected line (RFC 3264 §6 wants at least one).
    fmt: String,
    mid: String,
    /// Whether the offer said `a=mid` itself (else we made one up).
    had_mid: bool,
    /// Whether str0m sees it.
    kept: bool,
}

/// A peer's offer, made fit for str0m, and what is needed to answer the original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteOffer {
    /// The offer as str0m should read it.
    pub normalized: String,
    sections: Vec<Offered>,
}

/// What media an offer may keep, and what the session already knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accept<'a> {
    /// Take video m-lines (else they are rejected with port 0).
    pub video: bool,
    /// The description we sent last, for a re-offer: an m-line the peer left without
    /// `a=mid` keeps the mid its position had (str0m matches m-lines by mid).
    pub current: Option<&'a str>,
}

/// The `a=mid` of each m-line of `sdp`, by position (`None` where there is none).
pub fn mids(sdp: &str) -> Vec<Option<String>> {
    split(sdp)
        .1
        .iter()
        .map(|m| attr(&m.lines, "mid").map(str::to_string))
        .collect()
}

struct Section<'a> {
    mline: &'a str,
    lines: Vec<&'a str>,
}

fn split(sdp: &str) -> (Vec<&str>, Vec<Section<'_>>) {
    let mut session = Vec::new();
    let mut media: Vec<Section<'_>> = Vec::new();
    for line in sdp.lines().map(|l| l.trim_end_matches('\r')) {
        if line.is_empty() {
            continue;
        }
        if line.starts_with("m=") {
            media.push(Section {
                mline: line,
                lines: Vec::new(),
            });
        } else if let Some(m) = media.last_mut() {
            m.lines.push(line);
        } else {
            session.push(line);
        }
    }
    (session, media)
}

fn attr<'a>(lines: &[&'a str], name: &str) -> Option<&'a str> {
    lines.iter().find_map(|l| {
        let rest = l.strip_prefix("a=")?.strip_prefix(name)?;
        if rest.is_empty() {
            Some(rest)
        } else {
            rest.strip_prefix(':')
        }
    })
}

/// RFC 3551's static payload types, which peers may list without an `a=rtpmap` (str0m needs
/// one for every payload type).
fn static_rtpmap(pt: u8) -> Option<&'static str> {
    Some(match pt {
        0 => "PCMU/8000",
        3 => "GSM/8000",
        4 => "G723/8000",
        5 => "DVI4/8000",
        6 => "DVI4/16000",
        7 => "LPC/8000",
        8 => "PCMA/8000",
        9 => "G722/8000",
        10 => "L16/44100/2",
        11 => "L16/44100",
        12 => "QCELP/8000",
        13 => "CN/8000",
        14 => "MPA/90000",
        15 => "G728/8000",
        16 => "DVI4/11025",
        17 => "DVI4/22050",
        18 => "G729/8000",
        25 => "CelB/90000",
        26 => "JPEG/90000",
        28 => "nv/90000",
        31 => "H261/90000",
        32 => "MPV/90000",
        33 => "MP2T/90000",
        34 => "H263/90000",
        _ => return None,
    })
}

/// The section's payload types with their encoding names (lowercase), completing static
/// ones from RFC 3551; payload types with neither are left out.
fn payload_map(formats: &[&str], lines: &[&str]) -> Vec<(u8, String, bool)> {
    formats
        .iter()
        .filter_map(|f| f.parse::<u8>().ok())
        .filter_map(|pt| {
            let own = lines.iter().find_map(|l| {
                let rest = l.strip_prefix("a=rtpmap:")?;
                let (p, enc) = rest.split_once(' ')?;
                (p.parse::<u8>().ok()? == pt).then(|| enc.trim().to_string())
            });
            match own {
                Some(enc) => Some((pt, enc, true)),
                None => static_rtpmap(pt).map(|enc| (pt, enc.to_string(), false)),
            }
        })
        .collect()
}

fn encoding_name(enc: &str) -> String {
    enc.split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// Session-level attributes RFC 8839 and RFC 8122 allow there, which str0m reads per
/// m-line: copied into each m-line that lacks them.
const PUSHED_DOWN: &[&str] = &[
    "ice-ufrag",
    "ice-pwd",
    "fingerprint",
    "setup",
    "ice-options",
];

/// Makes the peer's offer fit for str0m; see the module docs. Fails with
/// [`SdpError::Incompatible`] (answer 488 with its text as the Warning) when no m-line
/// can be taken, and with [`SdpError::Malformed`] when the body is not SDP.
pub fn normalize_offer(sdp: &[u8], accept: Accept) -> Result<RemoteOffer, SdpError> {
    let text = std::str::from_utf8(sdp).map_err(|_| SdpError::Malformed("not UTF-8".into()))?;
    if !text.trim_start().starts_with("v=0") {
        return Err(SdpError::Malformed("no v=0 line".into()));
    }
    // Session-level directions move into the m-lines first (RFC 4566 §6).
    let text = rewrite_directions(text, |d| d);
    let (session, media) = split(&text);
    if media.is_empty() {
        return Err(SdpError::Incompatible("no media lines".into()));
    }
    let known = accept.current.map(mids).unwrap_or_default();
    let mut sections = Vec::with_capacity(media.len());
    let mut refusal = None;
    let mut maps: Vec<Vec<(u8, String, bool)>> = Vec::with_capacity(media.len());
    // Payload types already bound in kept sections: one m-line's PT 96 being opus and
    // another's VP8 is legal SDP, but str0m's single payload space cannot take it.
    let mut bound: Vec<(u8, String)> = Vec::new();
    for (i, m) in media.iter().enumerate() {
        let mut words = m.mline["m=".len()..].split_whitespace();
        let kind = words.next().unwrap_or_default();
        let port = words.next().unwrap_or_default();
        let proto = words.next().unwrap_or_default();
        let formats: Vec<&str> = words.collect();
        let fmt = formats.first().copied().unwrap_or("0");
        let map = payload_map(&formats, &m.lines);
        let own_mid = attr(&m.lines, "mid");
        let has = |name| {
            attr(&m.lines, name)
                .or_else(|| attr(&session, name))
                .is_some()
        };
        let dtls = has("fingerprint");
        let srtp_profile = matches!(
            proto,
            "UDP/TLS/RTP/SAVPF" | "UDP/TLS/RTP/SAVP" | "RTP/SAVPF"
        );
        let wanted = match kind {
            "audio" => true,
            "video" => accept.video,
            _ => false,
        };
        let clash = map.iter().find_map(|(pt, enc, _)| {
            bound
                .iter()
                .find(|(b, e)| b == pt && *e != encoding_name(enc))
                .map(|(_, e)| (*pt, e.clone(), encoding_name(enc)))
        });
        let usable = port != "0" && wanted && srtp_profile && dtls && has("ice-ufrag");
        let kept = usable && !map.is_empty() && clash.is_none();
        if kept {
            bound.extend(map.iter().map(|(pt, enc, _)| (*pt, encoding_name(enc))));
        } else if let Some((pt, a, b)) = clash.filter(|_| usable) {
            refusal.get_or_insert(format!(
                "payload type {pt} is {a} in one m-line and {b} in another"
            ));
        }
        maps.push(map);
        if !kept && port != "0" && wanted {
            refusal.get_or_insert(match (proto, dtls) {
                ("RTP/AVP" | "RTP/AVPF", _) => {
                    format!("plain {proto} offered; DTLS-SRTP ({SAVPF}) with ICE is required")
                }
                (_, false) if attr(&m.lines, "crypto").is_some() => {
                    "SDES-SRTP (a=crypto) is not supported; DTLS-SRTP with ICE is required".into()
                }
                (_, false) => "no a=fingerprint: DTLS-SRTP with ICE is required".into(),
                _ if !srtp_profile => format!("transport {proto} is not supported"),
                _ => "no ICE credentials (a=ice-ufrag): ICE is required".into(),
            });
        }
        sections.push(Offered {
            media: kind.to_string(),
            proto: proto.to_string(),
            fmt: fmt.to_string(),
            mid: own_mid
                .map(str::to_string)
                .or_else(|| known.get(i).cloned().flatten())
                .unwrap_or_else(|| i.to_string()),
            had_mid: own_mid.is_some(),
            kept,
        });
    }
    // A made-up mid must not collide with a real one.
    for i in 0..sections.len() {
        if !sections[i].had_mid {
            let mut candidate = sections[i].mid.clone();
            while sections
                .iter()
                .enumerate()
                .any(|(j, s)| j != i && s.mid == candidate)
            {
                candidate.push('x');
            }
            sections[i].mid = candidate;
        }
    }
    if !sections.iter().any(|s| s.kept) {
        return Err(SdpError::Incompatible(
            refusal.unwrap_or_else(|| "no audio or video stream to accept".into()),
        ));
    }

    let mut out = String::with_capacity(text.len() + 128);
    for line in &session {
        if line.starts_with("a=group:BUNDLE") {
            continue;
        }
        push(&mut out, line);
    }
    let bundle: Vec<&str> = sections
        .iter()
        .filter(|s| s.kept)
        .map(|s| s.mid.as_str())
        .collect();
    push(&mut out, &format!("a=group:BUNDLE {}", bundle.join(" ")));
    for ((m, s), map) in media.iter().zip(&sections).zip(&maps) {
        if !s.kept {
            continue;
        }
        // The m-line lists only payload types we can name.
        let head: Vec<&str> = m.mline.split_whitespace().take(2).collect();
        let pts: Vec<String> = map.iter().map(|(pt, _, _)| pt.to_string()).collect();
        push(
            &mut out,
            &format!("{} {} {SAVPF} {}", head[0], head[1], pts.join(" ")),
        );
        for line in &m.lines {
            push(&mut out, line);
        }
        for (pt, enc, own) in map {
            if !own {
                push(&mut out, &format!("a=rtpmap:{pt} {enc}"));
            }
        }
        if !s.had_mid {
            push(&mut out, &format!("a=mid:{}", s.mid));
        }
        for name in PUSHED_DOWN {
            if attr(&m.lines, name).is_none()
                && let Some(v) = attr(&session, name)
            {
                push(&mut out, &format!("a={name}:{v}"));
            }
        }
    }
    Ok(RemoteOffer {
        normalized: out,
        sections,
    })
}

impl RemoteOffer {
    /// Puts str0m's `answer` to [`RemoteOffer::normalized`] back in the shape of the
    /// original offer: same m-line count and order, rejected lines with port 0, the
    /// offered transport echoed.
    pub fn fix_answer(&self, answer: &str) -> String {
        let (session, media) = split(answer);
        let mut out = String::with_capacity(answer.len() + 64);
        for line in &session {
            push(&mut out, line);
        }
        for s in &self.sections {
            let found = s
                .kept
                .then(|| {
                    media
                        .iter()
                        .find(|m| attr(&m.lines, "mid") == Some(s.mid.as_str()))
                })
                .flatten()
                .filter(|m| m.mline.split_whitespace().nth(1) != Some("0"));
            match found {
                Some(m) => {
                    push(&mut out, &m.mline.replacen(SAVPF, &s.proto, 1));
                    for line in &m.lines {
                        push(&mut out, line);
                    }
                }
                None => {
                    push(&mut out, &format!("m={} 0 {} {}", s.media, s.proto, s.fmt));
                    if s.had_mid {
                        push(&mut out, &format!("a=mid:{}", s.mid));
                    }
                }
            }
        }
        out
    }
}

/// Our new offer from str0m (`fresh`) in the shape RFC 3264 §8 asks of an offer after the
/// first: every m-line of our last description (`last`) in its place. The ones str0m never
/// saw (lines of the peer's we rejected) stay rejected with port 0; lines str0m adds come
/// after them.
pub fn keep_sections(fresh: &str, last: &str) -> String {
    let (session, media) = split(fresh);
    let (_, before) = split(last);
    fn mid_of<'a>(m: &Section<'a>) -> Option<&'a str> {
        attr(&m.lines, "mid").filter(|mid| !mid.is_empty())
    }
    fn section(out: &mut String, m: &Section<'_>) {
        push(out, m.mline);
        for line in &m.lines {
            push(out, line);
        }
    }
    let mut out = String::with_capacity(fresh.len() + 64);
    for line in &session {
        push(&mut out, line);
    }
    let mut used = vec![false; media.len()];
    for old in &before {
        let found = mid_of(old).and_then(|mid| media.iter().position(|m| mid_of(m) == Some(mid)));
        match found {
            Some(i) => {
                used[i] = true;
                section(&mut out, &media[i]);
            }
            None => {
                let mut words = old.mline.split_whitespace();
                let media_kind = words.next().unwrap_or("m=audio");
                let proto = words.nth(1).unwrap_or(SAVPF);
                let fmt = words.next().unwrap_or("0");
                push(&mut out, &format!("{media_kind} 0 {proto} {fmt}"));
                if let Some(mid) = mid_of(old) {
                    push(&mut out, &format!("a=mid:{mid}"));
                }
            }
        }
    }
    for (m, used) in media.iter().zip(used) {
        if !used {
            section(&mut out, m);
        }
    }
    out
}

/// Makes a peer's answer to our offer fit for str0m: directions per m-line, a BUNDLE group,
/// `a=mid` where the answerer left it out (taken from our offer by position), and without
/// the lines our offer kept rejected (str0m never offered them).
pub fn normalize_answer(sdp: &[u8], our_offer: &str) -> Result<String, SdpError> {
    let text = std::str::from_utf8(sdp).map_err(|_| SdpError::Malformed("not UTF-8".into()))?;
    if !text.trim_start().starts_with("v=0") {
        return Err(SdpError::Malformed("no v=0 line".into()));
    }
    let text = rewrite_directions(text, |d| d);
    let (session, media) = split(&text);
    let (_, ours) = split(our_offer);
    if media.len() != ours.len() {
        return Err(SdpError::Incompatible(format!(
            "answer has {} m-lines, the offer {}",
            media.len(),
            ours.len()
        )));
    }
    let mut mids = Vec::with_capacity(media.len());
    let mut out = String::with_capacity(text.len() + 64);
    for line in session.iter().filter(|l| !l.starts_with("a=group:BUNDLE")) {
        push(&mut out, line);
    }
    for (m, o) in media.iter().zip(&ours) {
        let mid = attr(&m.lines, "mid")
            .or_else(|| attr(&o.lines, "mid"))
            .unwrap_or_default();
        let active = m.mline.split_whitespace().nth(1) != Some("0");
        if active {
            mids.push(mid.to_string());
        }
    }
    push(&mut out, &format!("a=group:BUNDLE {}", mids.join(" ")));
    for (m, o) in media.iter().zip(&ours) {
        if o.mline.split_whitespace().nth(1) == Some("0") {
            continue;
        }
        let mut words = m.mline.split_whitespace().skip(1);
        let (port, proto) = (words.next(), words.next());
        let mline = match proto {
            Some(p) if p != SAVPF && port != Some("0") => m.mline.replacen(p, SAVPF, 1),
            _ => m.mline.to_string(),
        };
        push(&mut out, &mline);
        for line in &m.lines {
            push(&mut out, line);
        }
        if attr(&m.lines, "mid").is_none()
            && let Some(mid) = attr(&o.lines, "mid")
        {
            push(&mut out, &format!("a=mid:{mid}"));
        }
        for name in PUSHED_DOWN {
            if attr(&m.lines, name).is_none()
                && let Some(v) = attr(&session, name)
            {
                push(&mut out, &format!("a={name}:{v}"));
            }
        }
    }
    Ok(out)
}

/// Puts each m-line's default candidate in its `c=` line and port (RFC 8839 §4.2.1.2:
/// the relayed candidate when there is one, else the server-reflexive, else the host one,
/// for RTP's component), the first one in the `o=` line, and drops `a=ice-options:trickle`,
/// since every candidate we have is in the description.
///
/// str0m writes `c=IN IP4 0.0.0.0` and port 9, the trickle-ICE placeholders (RFC 8840
/// §4.1.1.1), which Chromium takes but which ICE stacks that check the default address
/// (baresip, linphone) answer with `a=ice-mismatch`. Rejected m-lines (port 0) stay as
/// they are. Applying it twice changes nothing.
///
/// ```
/// let sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
///     c=IN IP4 0.0.0.0\r\na=candidate:1 1 udp 2130706175 192.0.2.7 40000 typ host\r\n\
///     a=candidate:2 1 udp 1694498815 203.0.113.9 41000 typ srflx raddr 192.0.2.7 rport 40000\r\n\
///     a=ice-options:trickle\r\n";
/// let fixed = sansip_media::sdp::set_default_candidates(sdp);
/// assert!(fixed.contains("m=audio 41000 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 203.0.113.9\r\n"));
/// assert!(fixed.contains("o=- 1 1 IN IP4 203.0.113.9\r\n"));
/// assert!(!fixed.contains("trickle"));
/// ```
pub fn set_default_candidates(sdp: &str) -> String {
    let (session, media) = split(sdp);
    let defaults: Vec<Option<SocketAddr>> = media.iter().map(default_candidate).collect();
    let first = defaults.iter().flatten().next().copied();
    let mut out = String::with_capacity(sdp.len() + 32);
    for line in session {
        match (line.strip_prefix("o="), line.strip_prefix("c="), first) {
            (Some(o), _, Some(addr)) => {
                let f: Vec<&str> = o.split(' ').collect();
                if f.len() == 6 {
                    let o = format!("o={} {} {}", f[..3].join(" "), family(addr), addr.ip());
                    push(&mut out, &o);
                } else {
                    push(&mut out, line);
                }
            }
            (_, Some(_), Some(addr)) => push(&mut out, &connection(addr)),
            _ => {
                if let Some(line) = without_trickle(line) {
                    push(&mut out, &line);
                }
            }
        }
    }
    for (m, default) in media.iter().zip(&defaults) {
        let mut words: Vec<&str> = m.mline.split(' ').collect();
        let rejected = words.get(1) == Some(&"0");
        let default = default.filter(|_| !rejected && words.len() > 1);
        let port;
        if let Some(addr) = default {
            port = addr.port().to_string();
            words[1] = &port;
        }
        push(&mut out, &words.join(" "));
        let mut wrote_c = false;
        for line in &m.lines {
            let Some(line) = without_trickle(line) else {
                continue;
            };
            if line.starts_with("c=")
                && let Some(addr) = default
            {
                if !wrote_c {
                    push(&mut out, &connection(addr));
                    wrote_c = true;
                }
                continue;
            }
            push(&mut out, &line);
        }
    }
    out
}

/// `line` without the `trickle` ICE option: `None` when nothing is left of it.
fn without_trickle(line: &str) -> Option<Cow<'_, str>> {
    let Some(options) = line.strip_prefix("a=ice-options:") else {
        return Some(Cow::Borrowed(line));
    };
    let kept: Vec<&str> = options
        .split_whitespace()
        .filter(|o| !o.eq_ignore_ascii_case("trickle"))
        .collect();
    (!kept.is_empty()).then(|| Cow::Owned(format!("a=ice-options:{}", kept.join(" "))))
}

fn family(addr: SocketAddr) -> &'static str {
    if addr.is_ipv4() { "IN IP4" } else { "IN IP6" }
}

fn connection(addr: SocketAddr) -> String {
    format!("c={} {}", family(addr), addr.ip())
}

/// The candidate a peer without ICE should send to: RTP's (component 1, UDP), of the
/// most reachable type, then of the highest priority.
fn default_candidate(m: &Section<'_>) -> Option<SocketAddr> {
    m.lines
        .iter()
        .filter_map(|l| l.strip_prefix("a=candidate:"))
        .filter_map(|c| {
            // foundation component transport priority address port "typ" type …
            let f: Vec<&str> = c.split_whitespace().collect();
            if f.len() < 8 || f[1] != "1" || !f[2].eq_ignore_ascii_case("udp") || f[6] != "typ" {
                return None;
            }
            let rank = match f[7] {
                "relay" => 3,
                "srflx" => 2,
                "prflx" => 1,
                _ => 0,
            };
            let priority: u32 = f[3].parse().ok()?;
            let addr = SocketAddr::new(f[4].parse().ok()?, f[5].parse().ok()?);
            Some(((rank, priority), addr))
        })
        .max_by_key(|(key, _)| *key)
        .map(|(_, addr)| addr)
}

/// Sets the version in the `o=` line (RFC 3264 §8: each new description we send has the
/// previous version plus one), keeping everything else.
pub fn set_origin_version(sdp: &str, version: u64) -> String {
    let mut out = String::with_capacity(sdp.len() + 8);
    for line in sdp.lines().map(|l| l.trim_end_matches('\r')) {
        if let Some(rest) = line.strip_prefix("o=") {
            let mut f: Vec<&str> = rest.split(' ').collect();
            let v = version.to_string();
            if f.len() >= 3 {
                f[2] = &v;
                push(&mut out, &format!("o={}", f.join(" ")));
                continue;
            }
        }
        push(&mut out, line);
    }
    out
}

fn push(out: &mut String, line: &str) {
    out.push_str(line);
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_LINES: &str = "v=0\r\no=- 7 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
        a=ice-options:trickle renomination\r\n\
        m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n\
        a=candidate:1 1 udp 2130706175 192.0.2.7 40000 typ host\r\n\
        a=candidate:1 2 udp 2130706174 192.0.2.7 40001 typ host\r\n\
        a=candidate:3 1 udp 16777215 198.51.100.4 50000 typ relay raddr 0.0.0.0 rport 0\r\n\
        a=candidate:2 1 udp 1694498815 203.0.113.9 41000 typ srflx raddr 192.0.2.7 rport 40000\r\n\
        a=candidate:4 1 tcp 2105524479 192.0.2.7 9 typ host tcptype active\r\n\
        m=video 0 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\n";

    #[test]
    fn the_relayed_candidate_is_the_default_and_rejected_lines_stay_rejected() {
        let fixed = set_default_candidates(TWO_LINES);
        assert!(
            fixed.contains("m=audio 50000 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 198.51.100.4\r\n"),
            "{fixed}"
        );
        assert!(fixed.contains("o=- 7 2 IN IP4 198.51.100.4\r\n"), "{fixed}");
        assert!(
            fixed.contains("m=video 0 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\n"),
            "{fixed}"
        );
        // Only the trickle option goes.
        assert!(fixed.contains("a=ice-options:renomination\r\n"), "{fixed}");
        assert_eq!(set_default_candidates(&fixed), fixed, "idempotent");
    }

    #[test]
    fn without_candidates_nothing_moves_and_ipv6_is_named_so() {
        let none = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\n";
        assert_eq!(set_default_candidates(none), none);
        let v6 = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
            c=IN IP4 0.0.0.0\r\na=candidate:1 1 UDP 2130706175 2001:db8::5 40000 typ host\r\n";
        let fixed = set_default_candidates(v6);
        assert!(fixed.contains("m=audio 40000 "), "{fixed}");
        assert!(fixed.contains("c=IN IP6 2001:db8::5\r\n"), "{fixed}");
    }

    #[test]
    fn a_new_offer_keeps_every_earlier_line_in_its_place() {
        let last = "v=0\r\no=- 1 2 IN IP4 192.0.2.7\r\ns=-\r\nt=0 0\r\n\
m=audio 40000 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\nm=video 0 UDP/TLS/RTP/SAVPF 96\r\n";
        let fresh = "v=0\r\no=- 1 3 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 2\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=ice-ufrag:new\r\n\
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:2\r\n";
        let kept = keep_sections(fresh, last);
        assert_eq!(
            kept,
            "v=0\r\no=- 1 3 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 2\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=ice-ufrag:new\r\n\
m=video 0 UDP/TLS/RTP/SAVPF 96\r\n\
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:2\r\n"
        );
        // The answer's line for the kept rejection is not str0m's to see.
        let answer = "v=0\r\nm=audio 5000 UDP/TLS/RTP/SAVPF 111\r\na=sendrecv\r\n\
m=video 0 UDP/TLS/RTP/SAVPF 96\r\nm=application 5000 UDP/DTLS/SCTP webrtc-datachannel\r\n";
        let for_str0m = normalize_answer(answer.as_bytes(), &kept).unwrap();
        assert!(!for_str0m.contains("m=video"), "{for_str0m}");
        assert!(for_str0m.contains("a=group:BUNDLE 0 2\r\n"), "{for_str0m}");
    }
}
