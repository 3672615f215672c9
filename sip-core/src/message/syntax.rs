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
static UNRESERVED: [bool; 256] = class(b"-_.!~*'()");
static HOSTNAME: [bool; 256] = class(b"-.");
static WORD: [bool; 256] = class(b"-.!%*_+`'~()<>:\\\"/[]?{}");

/// `token` characters: alphanum and `-.!%*_+`~'`.
pub(crate) fn is_token(c: u8) -> bool {
    TOKEN[c as usize]
}

/// `unreserved` = alphanum / mark.
pub(crate) fn is_unreserved(c: u8) -> bool {
    UNRESERVED[c as usize]
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
