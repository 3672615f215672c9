//! Phone numbers in E.164 form (ITU-T E.164; RFC 3966 §5.1.4 calls them global numbers):
//! a `+`, a country code and the national number, 1 to 15 digits in all. What a user dials
//! is turned into one by a [`DialPlan`] (a national prefix, an international prefix) and
//! checked, so that a gateway only ever sees a number it can route.
//!
//! ```
//! use sansip_core::e164::{DialPlan, NumberError, PhoneNumber};
//!
//! let n = PhoneNumber::parse("+46 (0)8-123 456 78");
//! assert_eq!(n, Err(NumberError::Trunk));
//! let n = PhoneNumber::parse("+46 8-123 456 78").unwrap();
//! assert_eq!(n.as_str(), "+46812345678");
//!
//! let sweden = DialPlan::national("46", "0", "00");
//! assert_eq!(sweden.to_e164("08-123 456 78").unwrap().as_str(), "+46812345678");
//! assert_eq!(sweden.to_e164("0044 20 7946 0000").unwrap().as_str(), "+442079460000");
//! assert!(matches!(sweden.to_e164("12345"), Err(NumberError::NotInternational)));
//! ```

use std::fmt;

/// The most digits an E.164 number has, country code included.
pub const MAX_DIGITS: usize = 15;

/// A phone number in E.164 form: `+` and 1 to 15 digits, the first not `0` (no country
/// code starts with 0).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

/// Why a number is not a phone number in E.164 form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NumberError {
    /// Nothing was dialled.
    #[error("no number")]
    Empty,
    /// A character that is neither a digit nor a visual separator (space, `-`, `.`, `(`,
    /// `)`, RFC 3966 §5.1.1), or a `+` that does not lead.
    #[error("{ch:?} at {at} is not part of a phone number")]
    Character {
        /// The character.
        ch: char,
        /// Its byte offset in what was dialled.
        at: usize,
    },
    /// The number has no `+` and the dial plan gave it no country code.
    #[error("not an international number: start with + and the country code")]
    NotInternational,
    /// More than [`MAX_DIGITS`] digits.
    #[error("{digits} digits: an E.164 number has at most 15")]
    TooLong {
        /// How many digits there were.
        digits: usize,
    },
    /// A `+` with no digits after it.
    #[error("no digits after +")]
    NoDigits,
    /// The country code would start with 0.
    #[error("a country code never starts with 0")]
    CountryCode,
    /// A national trunk prefix in brackets after the country code (`+44 (0)20 …`): it is
    /// not dialled from abroad, so the number is ambiguous.
    #[error("(0) after the country code: leave the trunk prefix out")]
    Trunk,
}

impl PhoneNumber {
    /// Reads a number written in international form, visual separators allowed:
    /// `+46 8-123 456 78` is `+46812345678`.
    pub fn parse(text: &str) -> Result<PhoneNumber, NumberError> {
        let digits = digits(text)?;
        match digits.strip_prefix('+') {
            Some(rest) => Self::from_digits(rest),
            None if digits.is_empty() => Err(NumberError::Empty),
            None => Err(NumberError::NotInternational),
        }
    }

    /// `+` and `digits` (the country code first), checked.
    fn from_digits(digits: &str) -> Result<PhoneNumber, NumberError> {
        match digits.len() {
            0 => Err(NumberError::NoDigits),
            n if n > MAX_DIGITS => Err(NumberError::TooLong { digits: n }),
            _ if digits.starts_with('0') => Err(NumberError::CountryCode),
            _ => Ok(PhoneNumber(format!("+{digits}"))),
        }
    }

    /// The number, `+` and digits only.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits, without the `+`.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for PhoneNumber {
    type Err = NumberError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PhoneNumber::parse(s)
    }
}

/// `text` without its visual separators: digits, and a `+` only in front. A `(0)` right
/// after the country code is refused ([`NumberError::Trunk`]), as it is ambiguous.
fn digits(text: &str) -> Result<String, NumberError> {
    let text = text.trim();
    if text.starts_with('+') && text.replace([' ', '-', '.'], "").contains("(0)") {
        return Err(NumberError::Trunk);
    }
    let mut out = String::with_capacity(text.len());
    for (at, ch) in text.char_indices() {
        match ch {
            '0'..='9' => out.push(ch),
            '+' if at == 0 => out.push(ch),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return Err(NumberError::Character { ch, at }),
        }
    }
    Ok(out)
}

/// How dialled numbers become E.164 ones: the rules of the country the user dials from.
/// The default plan takes only numbers already written with `+`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DialPlan {
    /// The country code of national numbers, e.g. `46` for Sweden, `1` for NANP.
    pub country_code: Option<String>,
    /// What national numbers start with and E.164 drops, e.g. `0` (most of Europe), `1`
    /// (NANP); empty when there is none (NANP numbers are also dialled as 10 digits).
    pub national_prefix: String,
    /// What numbers abroad start with instead of `+`, e.g. `00` (most of the world), `011`
    /// (NANP).
    pub international_prefix: Option<String>,
}

impl DialPlan {
    /// The plan of a country: its code, national prefix and international prefix.
    pub fn national(
        country_code: impl Into<String>,
        national_prefix: impl Into<String>,
        international_prefix: impl Into<String>,
    ) -> Self {
        Self {
            country_code: Some(country_code.into()),
            national_prefix: national_prefix.into(),
            international_prefix: Some(international_prefix.into()),
        }
    }

    /// The E.164 form of `dialled`: kept when it starts with `+`; the international prefix
    /// becomes `+`; a national number (after the national prefix, if the plan has one)
    /// gets the country code.
    pub fn to_e164(&self, dialled: &str) -> Result<PhoneNumber, NumberError> {
        let digits = digits(dialled)?;
        if let Some(rest) = digits.strip_prefix('+') {
            return PhoneNumber::from_digits(rest);
        }
        if digits.is_empty() {
            return Err(NumberError::Empty);
        }
        if let Some(rest) = self
            .international_prefix
            .as_deref()
            .filter(|p| !p.is_empty())
            .and_then(|p| digits.strip_prefix(p))
        {
            return PhoneNumber::from_digits(rest);
        }
        let cc = self
            .country_code
            .as_deref()
            .ok_or(NumberError::NotInternational)?;
        let national = digits
            .strip_prefix(self.national_prefix.as_str())
            .ok_or(NumberError::NotInternational)?;
        if national.is_empty() {
            return Err(NumberError::NoDigits);
        }
        PhoneNumber::from_digits(&format!("{cc}{national}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn international_numbers_are_read_with_their_separators_dropped() {
        let n = PhoneNumber::parse(" +1 (201) 555-0123 ").unwrap();
        assert_eq!(n.as_str(), "+12015550123");
        assert_eq!(n.digits(), "12015550123");
        assert_eq!(n.to_string(), "+12015550123");
        assert_eq!(
            "+46000000000"
                .parse::<PhoneNumber>()
                .unwrap()
                .digits()
                .len(),
            11
        );
        assert!(PhoneNumber::parse("+123456789012345").is_ok());
    }

    #[test]
    fn what_is_not_e164_gets_its_own_error() {
        let e = |t: &str| PhoneNumber::parse(t).unwrap_err();
        assert_eq!(e(""), NumberError::Empty);
        assert_eq!(e("  "), NumberError::Empty);
        assert_eq!(e("+"), NumberError::NoDigits);
        assert_eq!(e("0701234567"), NumberError::NotInternational);
        assert_eq!(e("+1234567890123456"), NumberError::TooLong { digits: 16 });
        assert_eq!(e("+0123"), NumberError::CountryCode);
        assert_eq!(e("+44 (0)20 7946 0000"), NumberError::Trunk);
        assert_eq!(e("+46*123"), NumberError::Character { ch: '*', at: 3 });
        assert_eq!(e("+46+123"), NumberError::Character { ch: '+', at: 3 });
        assert_eq!(e("sip:+4612@x"), NumberError::Character { ch: 's', at: 0 });
        assert_eq!(e("+46 70 ä"), NumberError::Character { ch: 'ä', at: 7 });
    }

    #[test]
    fn a_dial_plan_makes_national_and_prefixed_numbers_international() {
        let se = DialPlan::national("46", "0", "00");
        assert_eq!(
            se.to_e164("070-123 45 67").unwrap().as_str(),
            "+46701234567"
        );
        assert_eq!(
            se.to_e164("00 1 201 555 0123").unwrap().as_str(),
            "+12015550123"
        );
        assert_eq!(se.to_e164("+4670").unwrap().as_str(), "+4670");
        assert_eq!(se.to_e164("70123"), Err(NumberError::NotInternational));
        assert_eq!(se.to_e164("0"), Err(NumberError::NoDigits));
        assert_eq!(se.to_e164("000"), Err(NumberError::CountryCode));
        // NANP, dialled as 10 digits with no prefix.
        let nanp = DialPlan {
            country_code: Some("1".into()),
            national_prefix: String::new(),
            international_prefix: Some("011".into()),
        };
        assert_eq!(
            nanp.to_e164("(201) 555-0123").unwrap().as_str(),
            "+12015550123"
        );
        assert_eq!(nanp.to_e164("011 46 8 123").unwrap().as_str(), "+468123");
        // The default plan takes only + numbers.
        let none = DialPlan::default();
        assert_eq!(none.to_e164("+46 8 123").unwrap().as_str(), "+468123");
        assert_eq!(none.to_e164("08123"), Err(NumberError::NotInternational));
        assert_eq!(none.to_e164(""), Err(NumberError::Empty));
    }
}
