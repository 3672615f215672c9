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

#[cfg(test)]
mod tests {
    use super::*;

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
