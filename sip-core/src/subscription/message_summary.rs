//! The `message-summary` event package body (RFC 3842 §5.2), voicemail waiting:
//!
//! ```text
//! Messages-Waiting: yes
//! Message-Account: sip:alice@vmail.example.com
//! Voice-Message: 2/8 (0/2)
//! ```
//!
//! [`MessageSummary::parse`] reads it leniently, as desk phones must (servers differ in
//! case, spacing and extra lines), and never panics; a body without `Messages-Waiting`
//! is an error.

use std::fmt;

/// The media type of the body.
pub const CONTENT_TYPE: &str = "application/simple-message-summary";

/// Messages of one class (RFC 3842 §5.2, `voice-message`, `fax-message`…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageCounts {
    /// The class as written, lower case: `voice-message`, `fax-message`, …
    pub class: String,
    /// New messages.
    pub new: u32,
    /// Old (already heard) messages.
    pub old: u32,
    /// New urgent messages, when given.
    pub new_urgent: Option<u32>,
    /// Old urgent messages, when given.
    pub old_urgent: Option<u32>,
}

/// A parsed `message-summary` body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageSummary {
    /// Whether messages wait (`Messages-Waiting: yes`).
    pub waiting: bool,
    /// The account the summary is for (`Message-Account`), if given.
    pub account: Option<String>,
    /// The counts per class, in the body's order.
    pub counts: Vec<MessageCounts>,
}

/// Why a body is not a message summary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SummaryError {
    /// Not UTF-8 text.
    #[error("the message summary is not text")]
    NotText,
    /// No `Messages-Waiting: yes|no` line.
    #[error("the message summary has no Messages-Waiting line")]
    NoStatus,
}

impl MessageSummary {
    /// Parses a body. Lines it does not know, and count lines it cannot read, are skipped.
    ///
    /// ```
    /// use sansip_core::subscription::message_summary::MessageSummary;
    /// let s = MessageSummary::parse(b"Messages-Waiting: yes\r\nVoice-Message: 2/8 (0/2)\r\n")?;
    /// assert!(s.waiting);
    /// assert_eq!((s.counts[0].new, s.counts[0].old, s.counts[0].old_urgent), (2, 8, Some(2)));
    /// # Ok::<(), sansip_core::subscription::message_summary::SummaryError>(())
    /// ```
    pub fn parse(body: &[u8]) -> Result<Self, SummaryError> {
        let text = std::str::from_utf8(body).map_err(|_| SummaryError::NotText)?;
        let mut summary = MessageSummary::default();
        let mut status = None;
        for line in text.lines() {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            match name.as_str() {
                "messages-waiting" => {
                    status = match value.to_ascii_lowercase().as_str() {
                        "yes" => Some(true),
                        "no" => Some(false),
                        _ => status,
                    };
                }
                "message-account" if !value.is_empty() => {
                    summary.account = Some(value.to_string());
                }
                class if class.ends_with("-message") => {
                    if let Some(c) = counts(class, value) {
                        summary.counts.push(c);
                    }
                }
                _ => {}
            }
        }
        summary.waiting = status.ok_or(SummaryError::NoStatus)?;
        Ok(summary)
    }

    /// The counts of `class` (`voice-message`…), if the body has them.
    pub fn class(&self, class: &str) -> Option<&MessageCounts> {
        self.counts
            .iter()
            .find(|c| c.class.eq_ignore_ascii_case(class))
    }
}

/// `new/old` with an optional `(new_urgent/old_urgent)`.
fn counts(class: &str, value: &str) -> Option<MessageCounts> {
    let (main, urgent) = match value.split_once('(') {
        Some((main, rest)) => (main, Some(rest.trim_end().trim_end_matches(')'))),
        None => (value, None),
    };
    let pair = |s: &str| -> Option<(u32, u32)> {
        let (a, b) = s.split_once('/')?;
        Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
    };
    let (new, old) = pair(main)?;
    let urgent = urgent.and_then(pair);
    Some(MessageCounts {
        class: class.to_string(),
        new,
        old,
        new_urgent: urgent.map(|u| u.0),
        old_urgent: urgent.map(|u| u.1),
    })
}

impl fmt::Display for MessageSummary {
    /// The body as RFC 3842 writes it (for a notifier).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let waiting = if self.waiting { "yes" } else { "no" };
        write!(f, "Messages-Waiting: {waiting}\r\n")?;
        if let Some(a) = &self.account {
            write!(f, "Message-Account: {a}\r\n")?;
        }
        for c in &self.counts {
            let class = capitalized(&c.class);
            write!(f, "{class}: {}/{}", c.new, c.old)?;
            if let (Some(n), Some(o)) = (c.new_urgent, c.old_urgent) {
                write!(f, " ({n}/{o})")?;
            }
            f.write_str("\r\n")?;
        }
        Ok(())
    }
}

/// `voice-message` as `Voice-Message`.
fn capitalized(class: &str) -> String {
    class
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_3842_examples_and_what_servers_send() {
        let body = b"Messages-Waiting: yes\r\nMessage-Account: sip:alice@vmail.example.com\r\n\
Voice-Message: 4/8 (1/2)\r\nFax-Message: 0/1\r\n\r\nTo: <sip:alice@example.com>\r\n";
        let s = MessageSummary::parse(body).unwrap();
        assert!(s.waiting);
        assert_eq!(s.account.as_deref(), Some("sip:alice@vmail.example.com"));
        let voice = s.class("voice-message").unwrap();
        assert_eq!((voice.new, voice.old, voice.new_urgent), (4, 8, Some(1)));
        assert_eq!(s.class("fax-message").unwrap().old_urgent, None);
        // Asterisk's lower case and no urgent counts; junk lines skipped.
        let s = MessageSummary::parse(b"messages-waiting: no\nvoice-message: 0/3\nx\n").unwrap();
        assert!(!s.waiting);
        assert_eq!(s.counts[0].old, 3);
        // Written back, it reads the same.
        let again = MessageSummary::parse(s.to_string().as_bytes()).unwrap();
        assert_eq!(again, s);
        assert_eq!(
            MessageSummary::parse(b"Voice-Message: 1/1"),
            Err(SummaryError::NoStatus)
        );
        assert_eq!(MessageSummary::parse(&[0xff]), Err(SummaryError::NotText));
        let odd =
            MessageSummary::parse(b"Messages-Waiting: yes\nVoice-Message: 9999999999/x (/)\n");
        assert!(odd.unwrap().counts.is_empty());
    }
}
