//! Date (RFC 3261 §20.17): rfc1123-date in GMT only.

use crate::message::ValueError;
use crate::message::lex::err;
use std::fmt;

const WKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `wkday "," SP 2DIGIT SP month SP 4DIGIT SP 2DIGIT ":" 2DIGIT ":" 2DIGIT SP "GMT"`.
///
/// The weekday is kept as written and not checked against the date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Date {
    /// 0 = Monday … 6 = Sunday.
    pub weekday: u8,
    /// 1..=31
    pub day: u8,
    /// 1 = January … 12 = December.
    pub month: u8,
    /// Four-digit year.
    pub year: u16,
    /// 0..=23
    pub hour: u8,
    /// 0..=59
    pub minute: u8,
    /// 0..=60 (leap second allowed).
    pub second: u8,
}

fn find(names: &[&str], s: &str) -> Option<u8> {
    names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(s))
        .and_then(|p| u8::try_from(p).ok())
}

fn digits(s: &str, n: usize, at: usize) -> Result<u16, ValueError> {
    if s.len() != n || !s.bytes().all(|c| c.is_ascii_digit()) {
        return Err(err("invalid date", at));
    }
    s.parse().map_err(|_| err("invalid date", at))
}

impl Date {
    /// Parses an rfc1123-date; a zone other than `GMT` is "date must be in gmt" (RFC 4475 baddate).
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        // Fixed layout: "Sat, 13 Nov 2010 23:29:00 GMT" is 29 bytes.
        let f = |a: usize, b: usize| s.get(a..b).unwrap_or("");
        if !s.is_ascii() {
            return Err(err("invalid date", 0));
        }
        if s.len() >= 26 && f(25, 26) == " " && !f(26, s.len()).eq_ignore_ascii_case("GMT") {
            return Err(err("date must be in gmt", 26));
        }
        if s.len() != 29
            || f(3, 5) != ", "
            || f(7, 8) != " "
            || f(11, 12) != " "
            || f(16, 17) != " "
            || f(19, 20) != ":"
            || f(22, 23) != ":"
            || f(25, 26) != " "
        {
            return Err(err("invalid date", 0));
        }
        let weekday = find(&WKDAYS, f(0, 3)).ok_or(err("invalid weekday", 0))?;
        let month = find(&MONTHS, f(8, 11)).ok_or(err("invalid month", 8))? + 1;
        let small = |a, what| -> Result<u8, ValueError> {
            u8::try_from(digits(f(a, a + 2), 2, a)?).map_err(|_| err(what, a))
        };
        let d = Date {
            weekday,
            day: small(5, "invalid day")?,
            month,
            year: digits(f(12, 16), 4, 12)?,
            hour: small(17, "invalid time")?,
            minute: small(20, "invalid time")?,
            second: small(23, "invalid time")?,
        };
        if !(1..=31).contains(&d.day) {
            return Err(err("invalid day", 5));
        }
        if d.hour > 23 || d.minute > 59 || d.second > 60 {
            return Err(err("invalid time", 17));
        }
        Ok(d)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let wk = WKDAYS
            .get(usize::from(self.weekday))
            .copied()
            .unwrap_or("Mon");
        let mo = MONTHS
            .get(usize::from(self.month).wrapping_sub(1))
            .copied()
            .unwrap_or("Jan");
        write!(
            f,
            "{wk}, {:02} {mo} {:04} {:02}:{:02}:{:02} GMT",
            self.day, self.year, self.hour, self.minute, self.second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let d = Date::parse("Sat, 13 Nov 2010 23:29:00 GMT").unwrap();
        assert_eq!(
            (
                d.weekday, d.day, d.month, d.year, d.hour, d.minute, d.second
            ),
            (5, 13, 11, 2010, 23, 29, 0)
        );
        assert_eq!(d.to_string(), "Sat, 13 Nov 2010 23:29:00 GMT");
        assert_eq!(
            Date::parse("Sat, 15 Oct 2005 04:44:56 GMT").unwrap().month,
            10
        ); // mpart01
        assert_eq!(
            Date::parse("Fri, 01 Jan 2010 16:00:00 EST")
                .unwrap_err()
                .what,
            "date must be in gmt"
        ); // baddate
        assert_eq!(
            Date::parse("Fri, 01 Jan 2010 16:00:00 GMT+1")
                .unwrap_err()
                .what,
            "date must be in gmt"
        );
        let e = |s| Date::parse(s).unwrap_err().what;
        assert_eq!(e("Fry, 01 Jan 2010 16:00:00 GMT"), "invalid weekday");
        assert_eq!(e("Fri, 01 Jax 2010 16:00:00 GMT"), "invalid month");
        assert_eq!(e("Fri, 32 Jan 2010 16:00:00 GMT"), "invalid day");
        assert_eq!(e("Fri, 01 Jan 2010 24:00:00 GMT"), "invalid time");
        assert_eq!(e("Fri, 1 Jan 2010 16:00:00 GMT"), "invalid date");
        assert_eq!(e("Fri, 01 Jan 2010 16:00:00"), "invalid date");
        assert_eq!(e("Fri, 01 Jan 2010 1x:00:00 GMT"), "invalid date");
    }
}
