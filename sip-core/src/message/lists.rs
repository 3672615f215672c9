//! Comma lists of tokens: Require, Supported, Unsupported, Proxy-Require,
//! Allow, Allow-Events, Accept-Encoding without params (RFC 3261 §20, §25.1).

use crate::message::ValueError;
use crate::message::lex::{err, is_token_str, list};

/// Parses `token *(COMMA token)`. An empty value gives no items (Allow and
/// Supported may be empty, RFC 3261 §20.5, §20.37); callers of headers that
/// need at least one (Require) check that. Empty elements are errors.
pub fn parse_token_list(s: &str) -> impl Iterator<Item = Result<&str, ValueError>> {
    list(s, true, |t| {
        if is_token_str(t) {
            Ok(t)
        } else {
            Err(err("invalid token", 0))
        }
    })
}

/// Whether the token list `value` holds `token` (compared case-insensitively), as
/// [`parse_token_list`] reads it, faulty elements ignored. Option tags and methods are
/// looked up on every INVITE and its answers, so a value without quotes or angle brackets
/// (the only things that make an element span a comma) is split at its commas directly.
pub(crate) fn lists_token(value: &str, token: &str) -> bool {
    if memchr::memchr2(b'"', b'<', value.as_bytes()).is_some() {
        return parse_token_list(value)
            .filter_map(Result::ok)
            .any(|t| t.eq_ignore_ascii_case(token));
    }
    let ws = |c: &u8| *c == b' ' || *c == b'\t';
    value.as_bytes().split(|&c| c == b',').any(|item| {
        let start = item.iter().position(|c| !ws(c)).unwrap_or(item.len());
        let end = item.iter().rposition(|c| !ws(c)).map_or(start, |e| e + 1);
        item[start..end].eq_ignore_ascii_case(token.as_bytes())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_listed_as_the_full_reading_lists_it() {
        for value in [
            "timer",
            "100rel, timer",
            "a,TIMER ,b",
            "\ttimer\t",
            "",
            " , ",
            "a,,timer",
            "tim er",
            "timers",
            "\"a, timer\"",
            "<a, timer>",
            "\"x\", timer",
            "a, \"timer\"",
            "x;timer",
            "timer,",
        ] {
            let full = parse_token_list(value)
                .filter_map(Result::ok)
                .any(|t| t.eq_ignore_ascii_case("timer"));
            assert_eq!(lists_token(value, "timer"), full, "{value:?}");
        }
    }

    #[test]
    fn tokens() {
        let v: Vec<_> =
            parse_token_list("nothingSupportsThis, nothingSupportsThisEither").collect(); // bext01
        assert_eq!(
            v,
            vec![Ok("nothingSupportsThis"), Ok("nothingSupportsThisEither")]
        );
        let v: Result<Vec<_>, _> = parse_token_list("INVITE,ACK ,\tBYE").collect();
        assert_eq!(v.unwrap(), vec!["INVITE", "ACK", "BYE"]);
        assert_eq!(parse_token_list("").count(), 0);
        assert_eq!(parse_token_list(" ").count(), 0);
        let e = parse_token_list("a,,b").nth(1).unwrap().unwrap_err();
        assert_eq!((e.what, e.offset), ("empty list element", 2));
        assert_eq!(
            parse_token_list("a,").nth(1).unwrap().unwrap_err().what,
            "empty list element"
        );
        let e = parse_token_list("a, b c").nth(1).unwrap().unwrap_err();
        assert_eq!((e.what, e.offset), ("invalid token", 3));
    }
}
