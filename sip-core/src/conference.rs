//! Conference rooms by name: a room is the SIP user `room-<id>` at the server's domain
//! (the focus of RFC 4579 answers it), so any SIP phone can join by dialling that URI.
//!
//! A room id is 1 to 64 characters, as the Sinch SDK's are. Characters a SIP user part
//! may not carry as they are (RFC 3261 §25.1: anything but letters, digits and
//! `-_.!~*'()&=+$,;?/`) are percent-escaped in the URI, so every id is usable and
//! [`RoomId::from_user`] gives the same id back.
//!
//! ```
//! use sansip_core::conference::{RoomError, RoomId};
//!
//! let room = RoomId::new("sales weekly").unwrap();
//! assert_eq!(room.user(), "room-sales%20weekly");
//! assert_eq!(RoomId::from_user("room-sales%20weekly"), Some(room));
//! assert_eq!(RoomId::new(""), Err(RoomError::Empty));
//! assert_eq!(RoomId::new(&"x".repeat(65)), Err(RoomError::TooLong(65)));
//! ```

use std::fmt;

/// The most characters a room id has.
pub const MAX_ROOM_ID: usize = 64;

/// What starts the SIP user part of every room.
pub const ROOM_PREFIX: &str = "room-";

/// A conference room's id: 1 to [`MAX_ROOM_ID`] characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(String);

/// Why a room id cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoomError {
    /// The id is empty.
    #[error("a room id cannot be empty")]
    Empty,
    /// The id has more than [`MAX_ROOM_ID`] characters.
    #[error("a room id has at most 64 characters, not {0}")]
    TooLong(usize),
    /// The id holds a control character (a line break, a tab…).
    #[error("a room id cannot hold control characters")]
    Control,
}

impl RoomId {
    /// Checks `id`.
    pub fn new(id: &str) -> Result<RoomId, RoomError> {
        check_id(id).map(|()| RoomId(id.to_string()))
    }

    /// The id as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The SIP user part of the room: `room-` and the id, escaped where it must be.
    pub fn user(&self) -> String {
        user_part(ROOM_PREFIX, &self.0)
    }

    /// The room a SIP user part names (`room-…`, escapes undone), if it names one.
    pub fn from_user(user: &str) -> Option<RoomId> {
        RoomId::new(&from_user_part(ROOM_PREFIX, user)?).ok()
    }
}

/// The rules of a room id, which a group name shares ([`crate::group::GroupId`]).
pub(crate) fn check_id(id: &str) -> Result<(), RoomError> {
    let chars = id.chars().count();
    if chars == 0 {
        return Err(RoomError::Empty);
    }
    if chars > MAX_ROOM_ID {
        return Err(RoomError::TooLong(chars));
    }
    if id.chars().any(char::is_control) {
        return Err(RoomError::Control);
    }
    Ok(())
}

/// `prefix` and `id`, escaped where a SIP user part must be (RFC 3261 §25.1).
pub(crate) fn user_part(prefix: &str, id: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + id.len());
    out.push_str(prefix);
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What follows `prefix` in a user part, escapes undone; `None` without the prefix or
/// with a broken escape.
pub(crate) fn from_user_part(prefix: &str, user: &str) -> Option<String> {
    let escaped = user.strip_prefix(prefix)?;
    let bytes = escaped.as_bytes();
    let mut raw = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = escaped.get(i + 1..i + 3)?;
            raw.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            raw.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(raw).ok()
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_goes_into_a_user_part_and_comes_back_the_same() {
        for id in [
            "a",
            "Team-7",
            "sales weekly",
            "möte/2026",
            "100%",
            "x".repeat(64).as_str(),
        ] {
            let room = RoomId::new(id).unwrap();
            let user = room.user();
            assert!(
                crate::message::Uri::parse(&format!("sip:{user}@example.com")).is_ok(),
                "{user}"
            );
            assert_eq!(RoomId::from_user(&user).as_ref(), Some(&room), "{id}");
        }
        assert_eq!(
            RoomId::new("möte/2026").unwrap().user(),
            "room-m%C3%B6te/2026"
        );
    }

    #[test]
    fn what_is_not_a_room_is_refused() {
        assert_eq!(RoomId::new(""), Err(RoomError::Empty));
        assert_eq!(RoomId::new(&"é".repeat(65)), Err(RoomError::TooLong(65)));
        assert!(
            RoomId::new(&"é".repeat(64)).is_ok(),
            "characters, not bytes"
        );
        assert_eq!(RoomId::new("a\r\nb"), Err(RoomError::Control));
        for user in [
            "alice", "room-", "room-%G1", "room-%C3", "room-%0A", "room-%4",
        ] {
            assert_eq!(RoomId::from_user(user), None, "{user}");
        }
    }
}
