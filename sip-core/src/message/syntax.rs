//! Character classes of RFC 3261 §25.1 shared by the parsers, as lookup tables: these run
//! once per byte of every header, so a table load beats a chain of comparisons.

const fn class(extra: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = (c as u8).is_ascii_alphanumeric();
        c += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = true;
        i += 1;
    }
    t
}

static TOKEN: [bool; 256] = class(b"-.!%*_+`'~");
static HOSTNAME: [bool; 256] = class(b"-.");
/// A set of bytes: `set[c as usize]` says whether `c` belongs.
pub(crate) type ByteSet = [bool; 256];

/// The unreserved characters plus `extra`.
const fn unreserved_and(extra: &[u8]) -> ByteSet {
    let mut t = class(b"-_.!~*'()");
    let mut i = 0;
    while i < extra.len() {
        t[extra[i] as usize] = true;
        i += 1;
    }
    t
}

/// A SIP URI's user part: unreserved and user-unreserved `&=+$,;?/` (RFC 3261 §25.1).
pub(crate) static URI_USER: ByteSet = unreserved_and(b"&=+$,;?/");
/// A SIP URI's password: unreserved and `&=+$,` (RFC 3261 §25.1).
pub(crate) static URI_PASSWORD: ByteSet = unreserved_and(b"&=+$,");
/// A URI header name or value: unreserved and hnv-unreserved `[]/?:+$` (RFC 3261 §25.1).
pub(crate) static URI_HNV: ByteSet = unreserved_and(b"[]/?:+$");
/// An opaque URI of another scheme: unreserved and RFC 3986's reserved characters.
pub(crate) static URI_OPAQUE: ByteSet = unreserved_and(b":/?#[]@!$&'()*+,;=");
/// A URI parameter's name or value: unreserved and param-unreserved `[]/:&+$` (RFC 3261
/// §25.1).
pub(crate) static URI_PARAM: ByteSet = unreserved_and(b"[]/:&+$");

static WORD: [bool; 256] = class(b"-.!%*_+`'~()<>:\\\"/[]?{}");

/// `token` characters: alphanum and `-.!%*_+`~'`.
pub(crate) fn is_token(c: u8) -> bool {
    TOKEN[c as usize]
}

/// Characters of `hostname` and `IPv4address`: alphanum, `-` and `.`.
pub(crate) fn is_hostname(c: u8) -> bool {
    HOSTNAME[c as usize]
}

/// `word` characters (RFC 3261 §25.1, the Call-ID's): token characters and `()<>:\"/[]?{}`.
pub(crate) fn is_word(c: u8) -> bool {
    WORD[c as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_is_token_and_the_separators_a_call_id_may_hold() {
        for c in 0..=255u8 {
            let want = is_token(c) || b"()<>:\\\"/[]?{}".contains(&c);
            assert_eq!(is_word(c), want, "{:?}", c as char);
        }
    }
}
