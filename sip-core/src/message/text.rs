//! On-demand decoding for values the views keep raw.

use std::borrow::Cow;

/// Removes quoted-pair backslashes from text taken from between quotes
/// (RFC 3261 §25.1), e.g. a Reason `text`, Warning text or digest `realm`.
pub fn unquote(raw: &str) -> Cow<'_, str> {
    crate::message::lex::unescape_quoted(raw)
}

/// Decodes `%HH` escapes (RFC 3261 §19.1.2), e.g. in URI parameters;
/// bytes that do not form UTF-8 become U+FFFD.
pub fn percent_decode(raw: &str) -> Cow<'_, str> {
    crate::message::lex::percent_decode(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoders() {
        assert_eq!(unquote(r#"a \"b\" \\"#), r#"a "b" \"#);
        assert!(matches!(unquote("plain"), Cow::Borrowed("plain")));
        assert_eq!(percent_decode("v%61lue%25%34%31"), "value%41");
    }
}
