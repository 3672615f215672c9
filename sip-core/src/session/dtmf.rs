//! DTMF carried in SIP INFO: the `application/dtmf-relay` body most servers and phones use
//! (`Signal=5` / `Duration=160`), and the bare `application/dtmf` one.

use std::time::Duration;

/// The tones a keypad sends, plus `,` for a pause between them.
pub fn is_tone(c: char) -> bool {
    matches!(c, '0'..='9' | '*' | '#' | 'A'..='D' | 'a'..='d')
}

/// Checks a string of tones for [`send_dtmf`](crate::ua::UserAgent::send_dtmf): tones and
/// `,` only. Returns the first character that is neither.
pub fn check(tones: &str) -> Result<(), char> {
    match tones.chars().find(|&c| !is_tone(c) && c != ',') {
        Some(c) => Err(c),
        None => Ok(()),
    }
}

/// The `application/dtmf-relay` body for one tone.
pub fn relay_body(tone: char, duration: Duration) -> String {
    format!(
        "Signal={}\r\nDuration={}\r\n",
        tone.to_ascii_uppercase(),
        duration.as_millis()
    )
}

/// Reads an INFO body as a tone: `application/dtmf-relay` (`Signal=` and an optional
/// `Duration=` in milliseconds, keys in any case, lines in any order) or
/// `application/dtmf` (the tone alone). `None` when it carries no valid tone.
pub fn parse(content_type: &str, body: &[u8]) -> Option<(char, Option<Duration>)> {
    let text = std::str::from_utf8(body).ok()?;
    let mut tone = None;
    let mut duration = None;
    if content_type.eq_ignore_ascii_case("application/dtmf") {
        tone = single(text.trim());
    } else {
        for line in super::sdp::lines(text) {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim();
            match key.trim().to_ascii_lowercase().as_str() {
                "signal" => tone = single(value),
                "duration" => duration = value.parse().ok().map(Duration::from_millis),
                _ => {}
            }
        }
    }
    Some((tone?, duration))
}

fn single(s: &str) -> Option<char> {
    let mut chars = s.chars();
    let c = chars.next()?;
    (chars.next().is_none() && is_tone(c)).then(|| c.to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_bodies_round_trip_and_odd_ones_read() {
        let body = relay_body('#', Duration::from_millis(160));
        assert_eq!(body, "Signal=#\r\nDuration=160\r\n");
        assert_eq!(
            parse("application/dtmf-relay", body.as_bytes()),
            Some(('#', Some(Duration::from_millis(160))))
        );
        assert_eq!(
            parse("application/dtmf-relay", b"duration= 250\nsignal = a\n"),
            Some(('A', Some(Duration::from_millis(250))))
        );
        assert_eq!(parse("application/dtmf", b"7\r\n"), Some(('7', None)));
        assert_eq!(parse("application/dtmf-relay", b"Signal=X\r\n"), None);
        assert_eq!(parse("application/dtmf-relay", b"Duration=100\r\n"), None);
        assert_eq!(parse("application/dtmf", b"12"), None);
        assert_eq!(check("12,#*AbD"), Ok(()));
        assert_eq!(check("12x"), Err('x'));
    }
}
