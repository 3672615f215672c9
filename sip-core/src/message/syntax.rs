//! Character classes of RFC 3261 §25.1 shared by the parsers.

/// `token` characters: alphanum and `-.!%*_+`~'`.
pub(crate) fn is_token(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
        )
}
