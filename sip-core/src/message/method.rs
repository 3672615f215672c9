//! Request methods (RFC 3261 §7.1 and the extensions a user agent meets).

use std::fmt;

use smol_str::SmolStr;

/// A SIP request method. Methods are case-sensitive (RFC 3261 §7.1): `invite` is an extension
/// method, not INVITE.
///
/// ```
/// use sansip_core::message::Method;
/// assert_eq!(Method::from_token("INVITE"), Some(Method::Invite));
/// assert_eq!(Method::from_token("NEWMETHOD").unwrap().as_str(), "NEWMETHOD");
/// assert_eq!(Method::from_token("BAD METHOD"), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// INVITE (RFC 3261).
    Invite,
    /// ACK (RFC 3261).
    Ack,
    /// BYE (RFC 3261).
    Bye,
    /// CANCEL (RFC 3261).
    Cancel,
    /// REGISTER (RFC 3261).
    Register,
    /// OPTIONS (RFC 3261).
    Options,
    /// PRACK (RFC 3262).
    Prack,
    /// UPDATE (RFC 3311).
    Update,
    /// INFO (RFC 6086).
    Info,
    /// MESSAGE (RFC 3428).
    Message,
    /// REFER (RFC 3515).
    Refer,
    /// SUBSCRIBE (RFC 6665).
    Subscribe,
    /// NOTIFY (RFC 6665).
    Notify,
    /// PUBLISH (RFC 3903).
    Publish,
    /// Any other token.
    Extension(SmolStr),
}

impl Method {
    /// Reads a method token; `None` when `s` is empty or holds a non-token character.
    pub fn from_token(s: &str) -> Option<Method> {
        Self::from_bytes(s.as_bytes())
    }

    /// Like [`Method::from_token`], over bytes.
    pub fn from_bytes(b: &[u8]) -> Option<Method> {
        let known = match b {
            b"INVITE" => Method::Invite,
            b"ACK" => Method::Ack,
            b"BYE" => Method::Bye,
            b"CANCEL" => Method::Cancel,
            b"REGISTER" => Method::Register,
            b"OPTIONS" => Method::Options,
            b"PRACK" => Method::Prack,
            b"UPDATE" => Method::Update,
            b"INFO" => Method::Info,
            b"MESSAGE" => Method::Message,
            b"REFER" => Method::Refer,
            b"SUBSCRIBE" => Method::Subscribe,
            b"NOTIFY" => Method::Notify,
            b"PUBLISH" => Method::Publish,
            _ => Method::Extension(SmolStr::default()),
        };
        if !matches!(known, Method::Extension(_)) {
            return Some(known);
        }
        if b.is_empty() || !b.iter().all(|&c| crate::message::syntax::is_token(c)) {
            return None;
        }
        // All bytes are ASCII token characters, so this cannot fail.
        std::str::from_utf8(b)
            .ok()
            .map(|s| Method::Extension(SmolStr::new(s)))
    }

    /// The method as written on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Prack => "PRACK",
            Method::Update => "UPDATE",
            Method::Info => "INFO",
            Method::Message => "MESSAGE",
            Method::Refer => "REFER",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Publish => "PUBLISH",
            Method::Extension(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
