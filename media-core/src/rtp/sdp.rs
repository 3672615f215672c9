//! SDP for plain RTP calls: reading a peer's `RTP/AVP` or `RTP/SAVP` audio m-line (RFC 4566,
//! RFC 3264), its `a=rtcp` (RFC 3605), `a=rtcp-mux` (RFC 5761) and `a=crypto` lines
//! (RFC 4568), and writing ours.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sansip_core::session::SdpError;

use super::srtp::Suite;
use crate::audio::AudioCodec;

/// What a payload type carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Payload {
    Audio(AudioCodec),
    /// RFC 4733 telephone-events at this clock rate.
    Tone(u32),
}

/// One `a=crypto` line: a tag, a suite and the inline master key and salt.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Crypto {
    pub(crate) tag: u32,
    pub(crate) suite: Suite,
    pub(crate) key: [u8; Suite::MASTER_LEN],
}

impl std::fmt::Debug for Crypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        write!(f, "Crypto({} {})", self.tag, self.suite.name())
    }
}

impl Crypto {
    /// Reads `1 AES_CM_128_HMAC_SHA1_80 inline:KEY[|lifetime][|MKI:len] [session params]`;
    /// `None` for a suite or key we cannot use (other lines of the same offer may do).
    fn parse(value: &str) -> Option<Self> {
        let mut words = value.split_whitespace();
        let tag = words.next()?.parse().ok()?;
        let suite = Suite::from_name(words.next()?)?;
        let params = words.next()?.strip_prefix("inline:")?;
        let mut parts = params.split('|');
        let key = STANDARD.decode(parts.next()?).ok()?;
        // An MKI would have to be carried in every packet; nobody we meet uses one.
        if parts.any(|p| p.contains(':')) {
            return None;
        }
        // Session parameters (UNENCRYPTED_SRTP, KDR…) change the packet format.
        if words.next().is_some() {
            return None;
        }
        Some(Self {
            tag,
            suite,
            key: key.try_into().ok()?,
        })
    }

    fn line(&self) -> String {
        format!(
            "a=crypto:{} {} inline:{}",
            self.tag,
            self.suite.name(),
            STANDARD.encode(self.key)
        )
    }
}

/// One m-line of a description, as much as answering it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MLine {
    pub(crate) media: String,
    pub(crate) proto: String,
    /// Its first format (a refused line repeats one, RFC 3264 §6).
    pub(crate) format: String,
}

/// A peer's audio m-line and the rest of its description, as far as plain RTP needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PeerMedia {
    /// Every m-line, for answering each one.
    pub(crate) lines: Vec<MLine>,
    /// Which of them is the audio we take.
    pub(crate) audio: usize,
    pub(crate) rtp: SocketAddr,
    pub(crate) rtcp: SocketAddr,
    pub(crate) mux: bool,
    /// The payload types we understand, in the peer's order.
    pub(crate) payloads: Vec<(u8, Payload)>,
    /// Its usable `a=crypto` lines, in its order; empty for `RTP/AVP`.
    pub(crate) crypto: Vec<Crypto>,
}

impl PeerMedia {
    /// The protocol of the audio line.
    pub(crate) fn proto(&self) -> &str {
        &self.lines[self.audio].proto
    }

    /// Whether it asks for SRTP.
    pub(crate) fn secure(&self) -> bool {
        self.proto().contains("SAVP")
    }

    /// The codec we send with: the first of its payloads we can encode.
    pub(crate) fn send_codec(&self) -> Option<(u8, AudioCodec)> {
        self.payloads.iter().find_map(|&(pt, p)| match p {
            Payload::Audio(c) => Some((pt, c)),
            Payload::Tone(_) => None,
        })
    }

    /// Its telephone-event payload type at `rate`.
    pub(crate) fn tone_pt(&self, rate: u32) -> Option<u8> {
        self.payloads
            .iter()
            .find_map(|&(pt, p)| (p == Payload::Tone(rate)).then_some(pt))
    }
}

/// Whether `sdp` is for plain RTP: its first live audio m-line is `RTP/AVP`, `RTP/AVPF`, or
/// `RTP/SAVP`/`RTP/SAVPF` without a DTLS fingerprint (SDES). Everything else goes to
/// the WebRTC path (which refuses what it cannot take, with a reason).
pub(crate) fn is_plain(sdp: &str) -> bool {
    let (session, media) = sections(sdp);
    let fingerprint = session.iter().any(|l| l.starts_with("a=fingerprint:"));
    media
        .iter()
        .find(|m| {
            let w: Vec<&str> = m[0].split_whitespace().collect();
            w.first() == Some(&"m=audio") && w.get(1) != Some(&"0")
        })
        .is_some_and(|m| {
            let proto = m[0].split_whitespace().nth(2).unwrap_or_default();
            let has = |p: &str| m.iter().any(|l| l.starts_with(p));
            match proto {
                "RTP/AVP" | "RTP/AVPF" => true,
                // SRTP without DTLS: SDES, whose lines [`parse`] checks.
                "RTP/SAVP" | "RTP/SAVPF" => !has("a=fingerprint:") && !fingerprint,
                _ => false,
            }
        })
}

fn sections(sdp: &str) -> (Vec<&str>, Vec<Vec<&str>>) {
    let mut session = Vec::new();
    let mut media: Vec<Vec<&str>> = Vec::new();
    for line in sdp.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
        if line.starts_with("m=") {
            media.push(vec![line]);
        } else if let Some(m) = media.last_mut() {
            m.push(line);
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

fn connection(lines: &[&str]) -> Option<IpAddr> {
    let c = lines.iter().find_map(|l| l.strip_prefix("c="))?;
    let mut w = c.split_whitespace();
    let (_net, _family, addr) = (w.next()?, w.next()?, w.next()?);
    // A multicast address carries a TTL after a slash; we do not do multicast.
    addr.split('/').next()?.parse().ok()
}

fn payload(pt: u8, lines: &[&str]) -> Option<Payload> {
    let rtpmap = lines.iter().find_map(|l| {
        let (p, enc) = l.strip_prefix("a=rtpmap:")?.split_once(' ')?;
        (p.parse::<u8>().ok()? == pt).then_some(enc.trim())
    });
    let enc = match (rtpmap, pt) {
        (Some(e), _) => e,
        (None, 0) => "PCMU/8000",
        (None, 8) => "PCMA/8000",
        (None, 9) => "G722/8000",
        _ => return None,
    };
    let mut parts = enc.split('/');
    let name = parts.next()?.to_ascii_lowercase();
    let rate: u32 = parts.next()?.parse().ok()?;
    let codec = match (name.as_str(), rate) {
        ("pcmu", 8000) => AudioCodec::Pcmu,
        ("pcma", 8000) => AudioCodec::Pcma,
        ("opus", 48000) => AudioCodec::Opus,
        // RFC 3551 §4.5.2: G.722 is clocked at 8 kHz.
        ("g722", 8000) => AudioCodec::G722,
        ("telephone-event", r) => return Some(Payload::Tone(r)),
        _ => return None,
    };
    codec.available().then_some(Payload::Audio(codec))
}

/// Reads a peer's description for plain RTP. Fails with a reason fit for a 488's Warning
/// when it has no audio we can take.
pub(crate) fn parse(sdp: &[u8]) -> Result<PeerMedia, SdpError> {
    let text = std::str::from_utf8(sdp).map_err(|_| SdpError::Malformed("not UTF-8".into()))?;
    if !text.trim_start().starts_with("v=0") {
        return Err(SdpError::Malformed("no v=0 line".into()));
    }
    let (session, media) = sections(text);
    let mut lines = Vec::with_capacity(media.len());
    let mut found: Option<Result<PeerMedia, String>> = None;
    for (i, m) in media.iter().enumerate() {
        let mut w = m[0]["m=".len()..].split_whitespace();
        let kind = w.next().unwrap_or_default();
        let port = w.next().unwrap_or_default();
        let proto = w.next().unwrap_or_default();
        let formats: Vec<&str> = w.collect();
        lines.push(MLine {
            media: kind.to_string(),
            proto: proto.to_string(),
            format: formats.first().copied().unwrap_or("0").to_string(),
        });
        if kind != "audio" || port == "0" || matches!(found, Some(Ok(_))) {
            continue;
        }
        found = Some(
            audio_line(&session, m, port, proto, &formats).map(|p| PeerMedia { audio: i, ..p }),
        );
    }
    match found {
        Some(Ok(mut p)) => {
            p.lines = lines;
            Ok(p)
        }
        Some(Err(reason)) => Err(SdpError::Incompatible(reason)),
        None => Err(SdpError::Incompatible("no audio stream".into())),
    }
}

fn audio_line(
    session: &[&str],
    m: &[&str],
    port: &str,
    proto: &str,
    formats: &[&str],
) -> Result<PeerMedia, String> {
    if !matches!(proto, "RTP/AVP" | "RTP/AVPF" | "RTP/SAVP" | "RTP/SAVPF") {
        return Err(format!("transport {proto} is not supported"));
    }
    // The port may say how many follow ("49170/2"); we take the first.
    let port: u16 = port
        .split('/')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("bad port {port}"))?;
    let ip = connection(m)
        .or_else(|| connection(session))
        .ok_or("no c= address")?;
    let rtp = SocketAddr::new(ip, port);
    let mux = attr(m, "rtcp-mux").is_some();
    // RFC 3605: `a=rtcp:PORT [IN IP4 ADDR]`; else the next port up.
    let rtcp = match attr(m, "rtcp") {
        Some(v) => {
            let mut w = v.split_whitespace();
            let p = w.next().and_then(|p| p.parse().ok()).unwrap_or(port);
            let a = w.nth(2).and_then(|a| a.parse().ok()).unwrap_or(ip);
            SocketAddr::new(a, p)
        }
        None if mux => rtp,
        None => SocketAddr::new(ip, port.wrapping_add(1)),
    };
    let payloads: Vec<(u8, Payload)> = formats
        .iter()
        .filter_map(|f| f.parse::<u8>().ok())
        .filter_map(|pt| payload(pt, m).map(|p| (pt, p)))
        .collect();
    if !payloads.iter().any(|(_, p)| matches!(p, Payload::Audio(_))) {
        return Err("no audio codec in common (PCMU, PCMA, G722, opus)".into());
    }
    let crypto: Vec<Crypto> = m
        .iter()
        .filter_map(|l| l.strip_prefix("a=crypto:"))
        .filter_map(Crypto::parse)
        .collect();
    if proto.contains("SAVP") && crypto.is_empty() {
        return Err(
            "no usable a=crypto (AES_CM_128_HMAC_SHA1_80 or _32, inline key, no MKI)".into(),
        );
    }
    Ok(PeerMedia {
        lines: Vec::new(),
        audio: 0,
        rtp,
        rtcp,
        mux,
        payloads,
        crypto,
    })
}

/// Our side of a plain RTP description.
#[derive(Debug, Clone)]
pub(crate) struct Local<'a> {
    /// Where we receive RTP (and RTCP, which `a=rtcp` points at the same port).
    pub(crate) addr: SocketAddr,
    /// For `o=`.
    pub(crate) session_id: u64,
    pub(crate) proto: &'a str,
    pub(crate) payloads: &'a [(u8, Payload)],
    pub(crate) crypto: &'a [Crypto],
    /// Say `a=rtcp-mux` (always in an offer; in an answer when the offer did).
    pub(crate) mux: bool,
    /// For an answer: the offer's m-lines (the others are refused with port 0), and which
    /// is the audio we take.
    pub(crate) answering: Option<(&'a [MLine], usize)>,
}

/// Writes our description; its direction is `a=sendrecv`, which the caller rewrites.
pub(crate) fn write(local: &Local<'_>) -> String {
    let family = if local.addr.is_ipv4() { "IP4" } else { "IP6" };
    let ip = local.addr.ip();
    let mut s = String::with_capacity(512);
    let _ = write!(
        s,
        "v=0\r\no=- {id} 1 IN {family} {ip}\r\ns=-\r\nc=IN {family} {ip}\r\nt=0 0\r\n",
        id = local.session_id
    );
    let audio = |s: &mut String| {
        let pts: Vec<String> = local
            .payloads
            .iter()
            .map(|(pt, _)| pt.to_string())
            .collect();
        let _ = write!(
            s,
            "m=audio {} {} {}\r\n",
            local.addr.port(),
            local.proto,
            pts.join(" ")
        );
        for &(pt, p) in local.payloads {
            match p {
                Payload::Audio(AudioCodec::Opus) => {
                    let _ = write!(
                        s,
                        "a=rtpmap:{pt} opus/48000/2\r\na=fmtp:{pt} minptime=10;useinbandfec=1\r\n"
                    );
                }
                Payload::Audio(c) => {
                    let _ = write!(s, "a=rtpmap:{pt} {}/{}\r\n", c.name(), c.clock_rate());
                }
                Payload::Tone(rate) => {
                    let _ = write!(
                        s,
                        "a=rtpmap:{pt} telephone-event/{rate}\r\na=fmtp:{pt} 0-16\r\n"
                    );
                }
            }
        }
        let _ = write!(s, "a=rtcp:{}\r\n", local.addr.port());
        if local.mux {
            s.push_str("a=rtcp-mux\r\n");
        }
        for c in local.crypto {
            s.push_str(&c.line());
            s.push_str("\r\n");
        }
        s.push_str("a=ptime:20\r\na=sendrecv\r\n");
    };
    match local.answering {
        None => audio(&mut s),
        Some((lines, taken)) => {
            for (i, m) in lines.iter().enumerate() {
                if i == taken {
                    audio(&mut s);
                } else {
                    let _ = write!(s, "m={} 0 {} {}\r\n", m.media, m.proto, m.format);
                }
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const BARESIP_SDES: &str = "v=0\r\no=- 1 2 IN IP4 198.18.0.2\r\ns=-\r\nc=IN IP4 198.18.0.2\r\nt=0 0\r\n\
        m=audio 10000 RTP/SAVP 96 0 8 101\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:101 telephone-event/8000\r\n\
        a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd|2^31\r\n\
        a=crypto:2 AES_CM_256_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v\r\n\
        a=sendrecv\r\nm=video 10002 RTP/SAVP 97\r\na=rtpmap:97 VP8/90000\r\n";

    #[test]
    fn an_sdes_offer_is_read_with_its_usable_keys() {
        assert!(is_plain(BARESIP_SDES));
        let p = parse(BARESIP_SDES.as_bytes()).unwrap();
        assert_eq!(p.rtp, "198.18.0.2:10000".parse().unwrap());
        assert_eq!(p.rtcp, "198.18.0.2:10001".parse().unwrap());
        assert!(!p.mux && p.secure());
        assert_eq!(p.crypto.len(), 1, "AES-256 is not ours");
        assert_eq!(p.crypto[0].suite, Suite::AesCm128HmacSha1_32);
        assert_eq!(p.crypto[0].key[29], 29);
        assert_eq!(p.tone_pt(8000), Some(101));
        assert_eq!(p.lines.len(), 2);
        let first = p.send_codec().unwrap();
        if AudioCodec::Opus.available() {
            assert_eq!(first, (96, AudioCodec::Opus));
        } else {
            assert_eq!(first, (0, AudioCodec::Pcmu));
        }
    }

    #[test]
    fn rtcp_mux_and_rfc3605_ports_are_honoured() {
        let sdp =
            "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:4005 IN IP4 10.0.0.9\r\n";
        let p = parse(sdp.as_bytes()).unwrap();
        assert_eq!(p.rtcp, "10.0.0.9:4005".parse().unwrap());
        let sdp = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 8\r\na=rtcp-mux\r\n";
        let p = parse(sdp.as_bytes()).unwrap();
        assert!(p.mux);
        assert_eq!(p.rtcp, p.rtp);
        assert_eq!(p.send_codec(), Some((8, AudioCodec::Pcma)));
    }

    #[test]
    fn what_we_cannot_take_is_refused_with_a_reason() {
        let no_codec = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 18\r\n";
        let no_key = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/SAVP 0\r\n";
        let mki = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/SAVP 0\r\n\
            a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd|2^20|1:4\r\n";
        for sdp in [no_codec, no_key, mki] {
            match parse(sdp.as_bytes()) {
                Err(SdpError::Incompatible(reason)) => assert!(!reason.is_empty()),
                other => panic!("{sdp}: {other:?}"),
            }
        }
        assert!(matches!(parse(b"hello"), Err(SdpError::Malformed(_))));
        let webrtc = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=fingerprint:sha-256 AB\r\n";
        assert!(!is_plain(webrtc));
    }

    #[test]
    fn our_answer_keeps_the_offer_shape() {
        let p = parse(BARESIP_SDES.as_bytes()).unwrap();
        let ours = Crypto {
            tag: 1,
            suite: Suite::AesCm128HmacSha1_32,
            key: [7; 30],
        };
        let payloads = [
            (0, Payload::Audio(AudioCodec::Pcmu)),
            (101, Payload::Tone(8000)),
        ];
        let sdp = write(&Local {
            addr: "192.0.2.1:5004".parse().unwrap(),
            session_id: 42,
            proto: p.proto(),
            payloads: &payloads,
            crypto: std::slice::from_ref(&ours),
            mux: false,
            answering: Some((&p.lines, p.audio)),
        });
        assert!(sdp.contains("m=audio 5004 RTP/SAVP 0 101\r\n"), "{sdp}");
        assert!(sdp.contains("m=video 0 RTP/SAVP 97\r\n"), "{sdp}");
        assert!(sdp.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:"));
        assert!(!sdp.contains("rtcp-mux"));
        // It reads back.
        let back = parse(sdp.as_bytes()).unwrap();
        assert_eq!(back.crypto, vec![ours]);
        assert_eq!(back.rtcp, back.rtp, "a=rtcp names the RTP port");
    }
}
