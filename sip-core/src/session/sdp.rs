//! The only SDP the signalling core reads or writes: direction attributes (RFC 4566 §6,
//! RFC 3264 §5.1). Everything else in a body is the [`SdpHandler`](super::SdpHandler)'s.

use std::borrow::Cow;
use std::sync::LazyLock;

use memchr::memmem::Finder;

use super::Direction;

/// A body as text: borrowed when it is UTF-8, as SDP almost always is (the check takes the
/// ASCII fast path), else with U+FFFD for the bytes that are not.
pub(crate) fn text(body: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(body) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(body),
    }
}

/// The lines of `text` as [`str::lines`] gives them (split at LF, a CR before it dropped,
/// no empty line after a final LF), found with a vectorised byte search: SDP bodies are read
/// line by line several times per call, and the generic `char` search cost more than the
/// rest of the reading.
pub(crate) fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        // LF is ASCII, so both sides of it are on character boundaries. A CR is part of
        // the line ending only before an LF.
        let line = match memchr::memchr(b'\n', rest.as_bytes()) {
            Some(lf) => {
                let line = &rest[..lf];
                rest = &rest[lf + 1..];
                line.strip_suffix('\r').unwrap_or(line)
            }
            None => std::mem::take(&mut rest),
        };
        Some(line)
    })
}

/// One media section's direction: its own attribute, else the session-level one, else
/// `sendrecv` (RFC 4566 §6). `None` for a rejected section (port 0).
fn section_direction(session: Option<Direction>, lines: &[&str]) -> Option<Direction> {
    let port_zero = lines
        .first()
        .and_then(|m| m.strip_prefix("m="))
        .and_then(|m| m.split_whitespace().nth(1))
        .is_some_and(|p| p == "0");
    if port_zero {
        return None;
    }
    let own = lines.iter().find_map(|l| attribute(l));
    Some(own.or(session).unwrap_or(Direction::SendRecv))
}

fn attribute(line: &str) -> Option<Direction> {
    Direction::from_attribute(line.trim_end().strip_prefix("a=")?)
}

/// Splits a body into the session part and one slice of lines per `m=` section.
fn sections(sdp: &str) -> (Vec<&str>, Vec<Vec<&str>>) {
    let mut session = Vec::new();
    let mut media: Vec<Vec<&str>> = Vec::new();
    for line in lines(sdp) {
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

/// Walks the media sections in order without collecting them, handing `f` each one's
/// direction as [`directions`] gives it, until `f` returns `true`.
fn walk_directions(sdp: &str, mut f: impl FnMut(Option<Direction>) -> bool) {
    let mut session = None;
    // The section being read: whether it is active, and its own direction attribute.
    let mut section: Option<(bool, Option<Direction>)> = None;
    let done = |(active, own): (bool, Option<Direction>), session: Option<Direction>| {
        active.then(|| own.or(session).unwrap_or(Direction::SendRecv))
    };
    for line in lines(sdp) {
        if let Some(m) = line.strip_prefix("m=") {
            if let Some(s) = section.take()
                && f(done(s, session))
            {
                return;
            }
            section = Some((m.split_whitespace().nth(1) != Some("0"), None));
        } else if let Some(dir) = attribute(line) {
            let slot = match &mut section {
                Some((_, own)) => own,
                None => &mut session,
            };
            slot.get_or_insert(dir);
        }
    }
    if let Some(s) = section {
        f(done(s, session));
    }
}

/// The direction of every media section in order (`None` for rejected ones).
pub fn directions(sdp: &str) -> Vec<Option<Direction>> {
    let mut all = Vec::new();
    walk_directions(sdp, |d| {
        all.push(d);
        false
    });
    all
}

/// The direction the hold logic reads: the first active media section's.
pub fn media_direction(sdp: &str) -> Option<Direction> {
    let mut first = None;
    walk_directions(sdp, |d| {
        first = d;
        d.is_some()
    });
    first
}

/// Rewrites the direction of every active media section to `f(current)`, removes
/// session-level direction lines (each section then says its own), and leaves every other
/// line and the line-ending style as they were.
pub fn rewrite_directions(sdp: &str, f: impl Fn(Direction) -> Direction) -> String {
    let eol = if sdp.contains("\r\n") { "\r\n" } else { "\n" };
    let (session, media) = sections(sdp);
    let session_dir = session.iter().find_map(|l| attribute(l));
    let mut out = String::with_capacity(sdp.len() + 16);
    for line in session.iter().filter(|l| attribute(l).is_none()) {
        out.push_str(line);
        out.push_str(eol);
    }
    for m in &media {
        let Some(current) = section_direction(session_dir, m) else {
            for line in m {
                out.push_str(line);
                out.push_str(eol);
            }
            continue;
        };
        for line in m.iter().filter(|l| attribute(l).is_none()) {
            out.push_str(line);
            out.push_str(eol);
        }
        out.push_str("a=");
        out.push_str(f(current).as_str());
        out.push_str(eol);
    }
    out
}

/// One media section as offer/answer compares it, apart from its port and direction: its
/// media, transport protocol and formats, and whether it is active. Kept for the whole
/// call, so it is one allocation: the `m=` line's words without the port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaLine {
    /// Media, protocol and formats, separated by single spaces.
    words: Box<str>,
    active: bool,
}

impl MediaLine {
    fn words(&self) -> std::str::SplitAsciiWhitespace<'_> {
        self.words.split_ascii_whitespace()
    }

    fn media(&self) -> &str {
        self.words().next().unwrap_or_default()
    }

    fn proto(&self) -> &str {
        self.words().nth(1).unwrap_or_default()
    }

    fn formats(&self) -> impl Iterator<Item = &str> {
        self.words().skip(2)
    }
}

/// The `m=` lines of `sdp` without the `m=`, in order, found by searching for them rather
/// than reading every line.
fn m_lines(sdp: &str) -> impl Iterator<Item = &str> {
    static M_LINE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\nm="));
    let first = sdp.starts_with("m=").then_some(0);
    let rest = M_LINE.find_iter(sdp.as_bytes()).map(|lf| lf + 1);
    // Each `at` is the `m` after a line feed (or the start): a character boundary.
    first
        .into_iter()
        .chain(rest)
        .filter_map(|at| lines(sdp.get(at..)?).next()?.strip_prefix("m="))
}

/// The media sections of a description, in order.
pub fn media_lines(sdp: &str) -> Box<[MediaLine]> {
    m_lines(sdp)
        .filter_map(|m| {
            let mut fields = m.split_ascii_whitespace();
            let media = fields.next()?;
            let active = fields.next()? != "0";
            let proto = fields.next()?;
            let mut words = String::with_capacity(m.len());
            for w in [media, proto].into_iter().chain(fields) {
                if !words.is_empty() {
                    words.push(' ');
                }
                words.push_str(w);
            }
            Some(MediaLine {
                words: words.into_boxed_str(),
                active,
            })
        })
        .collect()
}

/// Whether `offer` changes the media of a session whose last description from the peer
/// had `previous` sections, beyond direction (which hold decides): a section added,
/// removed, (de)activated or moved to another transport, or a format in use left out. An
/// offer may list more formats than the answer it follows did, so new formats alone are
/// no change; ports are no change either (an ICE restart or a new relay moves them).
pub fn changes_media(previous: &[MediaLine], offer: &str) -> bool {
    let now = media_lines(offer);
    now.len() != previous.len()
        || now.iter().zip(previous).any(|(n, p)| {
            n.media() != p.media()
                || n.proto() != p.proto()
                || n.active != p.active
                || (n.active && p.formats().any(|f| !n.formats().any(|g| g == f)))
        })
}

#[cfg(test)]
mod tests {

    #[test]
    fn m_lines_are_the_lines_that_start_with_m() {
        for text in [
            "",
            "m=audio 1 RTP/AVP 0",
            "v=0\r\nm=audio 1 RTP/AVP 0\r\na=x\r\nm=video 0 RTP/AVP 96\r\n",
            "m=a\nm=b\n",
            "v=0\nam=x\n m=y\nm=\n",
            "v=0\r\nm=audio 1\r",
        ] {
            let by_lines: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("m=")).collect();
            assert_eq!(m_lines(text).collect::<Vec<_>>(), by_lines, "{text:?}");
        }
    }

    #[test]
    fn lines_split_as_the_standard_library_does() {
        for text in [
            "",
            "\n",
            "\r\n",
            "a",
            "a\n",
            "a\r\n",
            "a\r\nb",
            "a\n\nb\n",
            "a\r\r\nb",
            "\rx\n",
            "v=0\r\nm=audio 1 RTP/AVP 0\r\na=sendonly\r\n",
            "é\nü\r\n",
        ] {
            assert_eq!(
                lines(text).collect::<Vec<_>>(),
                text.lines().collect::<Vec<_>>(),
                "{text:?}"
            );
        }
    }

    use super::*;
    use Direction::*;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
a=sendonly\r\nm=audio 49170 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\nm=video 0 RTP/AVP 31\r\n\
m=video 51372 RTP/AVP 31\r\na=recvonly\r\n";

    #[test]
    fn session_level_directions_apply_where_a_section_has_none() {
        assert_eq!(directions(OFFER), [Some(SendOnly), None, Some(RecvOnly)]);
        assert_eq!(media_direction(OFFER), Some(SendOnly));
        assert_eq!(directions("v=0\nm=audio 1 RTP/AVP 0\n"), [Some(SendRecv)]);
        // The first active section, past a rejected one; a section's first attribute wins.
        let rejected_first = "v=0\nm=audio 0 RTP/AVP 0\na=sendonly\nm=audio 2 RTP/AVP 0\n\
a=inactive\na=sendonly\n";
        assert_eq!(directions(rejected_first), [None, Some(Inactive)]);
        assert_eq!(media_direction(rejected_first), Some(Inactive));
        assert_eq!(media_direction("v=0\na=recvonly\n"), None);
        assert_eq!(directions("v=0\r\n"), []);
    }

    #[test]
    fn rewriting_keeps_everything_else_and_the_line_endings() {
        let held = rewrite_directions(OFFER, |d| d.intersect(SendOnly));
        assert_eq!(
            held,
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=audio 49170 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendonly\r\nm=video 0 RTP/AVP 31\r\n\
m=video 51372 RTP/AVP 31\r\na=inactive\r\n"
        );
        assert_eq!(directions(&held), [Some(SendOnly), None, Some(Inactive)]);
        let lf = rewrite_directions("v=0\nm=audio 1 RTP/AVP 0\n", |_| Inactive);
        assert_eq!(lf, "v=0\nm=audio 1 RTP/AVP 0\na=inactive\n");
    }

    #[test]
    fn a_change_is_new_media_or_a_format_left_out_not_a_direction_or_port() {
        let before = media_lines(OFFER);
        assert_eq!(before.len(), 3);
        assert!(!changes_media(&before, OFFER));
        let held = rewrite_directions(OFFER, |_| Inactive).replace("49170", "40000");
        assert!(!changes_media(&before, &held), "hold and a new port");
        let more_formats = OFFER.replace("RTP/AVP 0\r\na=rtpmap", "RTP/AVP 0 8\r\na=rtpmap");
        assert!(!changes_media(&before, &more_formats));
        let other_codec = OFFER.replace("RTP/AVP 0\r\na=rtpmap", "RTP/AVP 8\r\na=rtpmap");
        assert!(changes_media(&before, &other_codec));
        let video_on = OFFER.replace("m=video 0 RTP/AVP 31", "m=video 5000 RTP/AVP 31");
        assert!(changes_media(&before, &video_on));
        let secure = OFFER.replace("49170 RTP/AVP", "49170 RTP/SAVP");
        assert!(changes_media(&before, &secure));
        assert!(changes_media(&before, "v=0\r\nm=audio 1 RTP/AVP 0\r\n"));
    }
}
