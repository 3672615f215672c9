//! Character classes of RFC 3261 §25.1 shared by the parsers, as lookup tables: these run
//! once per byte of every header, so a table load beats a chain of comparisons.

/// A set of bytes: `set[c as usize]` says whether `c` belongs.
pub(crate) type ByteSet = [bool; 256];

/// `set` with `extra` added.
const fn with(mut set: ByteSet, extra: &[u8]) -> ByteSet {
    let mut i = 0;
    while i < extra.len() {
        set[extra[i] as usize] = true;
        i += 1;
    }
    set
}

const ALPHANUM: ByteSet = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = (c as u8).is_ascii_alphanumeric();
        c += 1;
    }
    t
};

/// `unreserved` = alphanum / mark.
const UNRESERVED: ByteSet = with(ALPHANUM, b"-_.!~*'()");

static TOKEN: ByteSet = with(ALPHANUM, b"-.!%*_+`'~");
static HOSTNAME: ByteSet = with(ALPHANUM, b"-.");
static WORD: ByteSet = with(TOKEN, b"()<>:\\\"/[]?{}");

/// A SIP URI's user part: unreserved and user-unreserved `&=+$,;?/` (RFC 3261 §25.1).
pub(crate) static URI_USER: ByteSet = with(UNRESERVED, b"&=+$,;?/");
/// A SIP URI's password: unreserved and `&=+$,` (RFC 3261 §25.1).
pub(crate) static URI_PASSWORD: ByteSet = with(UNRESERVED, b"&=+$,");
/// A URI header name or value: unreserved and hnv-unreserved `[]/?:+$` (RFC 3261 §25.1).
pub(crate) static URI_HNV: ByteSet = with(UNRESERVED, b"[]/?:+$");
/// An opaque URI of another scheme: unreserved and RFC 3986's reserved characters.
pub(crate) static URI_OPAQUE: ByteSet = with(UNRESERVED, b":/?#[]@!$&'()*+,;=");
/// A URI parameter's name or value: unreserved and param-unreserved `[]/:&+$` (RFC 3261
/// §25.1).
pub(crate) static URI_PARAM: ByteSet = with(UNRESERVED, b"[]/:&+$");

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
