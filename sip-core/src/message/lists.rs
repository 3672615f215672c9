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
/// (the only things that make an element span a comma) is not split at all: the token's
/// first letter is searched for in either case, and an occurrence counts when blanks and
/// then a comma or the value's end lie on both sides of it, which is when the trimmed
/// element is the token.
pub(crate) fn lists_token(value: &str, token: &str) -> bool {
    let b = value.as_bytes();
    if memchr::memchr2(b'"', b'<', b).is_some() {
        return parse_token_list(value)
            .filter_map(Result::ok)
            .any(|t| t.eq_ignore_ascii_case(token));
    }
    let t = token.as_bytes();
    let Some(&first) = t.first() else {
        return false; // an empty element is a fault, never listed
    };
    // Blanks, then a comma or nothing.
    fn bounded<'a>(mut side: impl Iterator<Item = &'a u8>) -> bool {
        side.find(|&&c| c != b' ' && c != b'\t')
            .is_none_or(|&c| c == b',')
    }
    let (lower, upper) = (first.to_ascii_lowercase(), first.to_ascii_uppercase());
    memchr::memchr2_iter(lower, upper, b).any(|at| {
        let end = at + t.len();
        b.get(at..end).is_some_and(|w| w.eq_ignore_ascii_case(t))
            && bounded(b[..at].iter().rev())
            && bounded(b[end..].iter())
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
            "xtimer, timer",
            "timerx,timer",
            "timer timer",
            "Timer",
            " ,\tTIMER\t, ",
            "t,ti,tim,time,timer",
            "ttimer",
        ] {
            let full = parse_token_list(value)
                .filter_map(Result::ok)
                .any(|t| t.eq_ignore_ascii_case("timer"));
            assert_eq!(lists_token(value, "timer"), full, "{value:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_value_lists_the_token_as_the_full_reading_does(
            value in "[tTimerx, \t,\"<]{0,24}",
            token in "[tTi]{1,2}|timer|TIMER",
        ) {
            let full = parse_token_list(&value)
                .filter_map(Result::ok)
                .any(|t| t.eq_ignore_ascii_case(&token));
            proptest::prop_assert_eq!(lists_token(&value, &token), full);
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
