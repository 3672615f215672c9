//! Event and Subscription-State (RFC 6665 §8.2.1, §8.2.3).

use crate::message::ValueError;
use crate::message::lex::{err, is_token, is_token_str, parse_u32};
use crate::message::params::{Params, eq_except, head_params, write_except};
use std::fmt;

const EVENT_TYPED: &[&str] = &["id"];
const SUB_TYPED: &[&str] = &["expires", "reason", "retry-after"];

/// `event-type *(;id=token ;generic-param)`, e.g. `presence.winfo;id=1`.
///
/// `params` holds every parameter as received; `id` is authoritative.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// The whole event-type as written: package plus any `.template`s.
    pub package: &'a str,
    /// The `id` parameter.
    pub id: Option<&'a str>,
    /// All parameters as received.
    pub params: Params<'a>,
}

impl<'a> Event<'a> {
    /// Parses an Event value; package names compare exactly (RFC 6665 §8.2.1).
    pub fn parse(s: &'a str) -> Result<Self, ValueError> {
        let (package, params) = head_params(s)?;
        // event-package = token-nodot; templates are token-nodot too.
        let ok = package
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|c| is_token(c) && c != b'.'));
        if !ok {
            return Err(err("invalid event package", 0));
        }
        let at = s.len() - params.as_str().len();
        let id = match params.get_raw("id") {
            None => None,
            Some(Some(v)) if is_token_str(v) => Some(v),
            Some(_) => return Err(err("invalid event id", at)),
        };
        Ok(Event {
            package,
            id,
            params,
        })
    }

    /// The package name without templates (`presence` for `presence.winfo`).
    pub fn package_name(&self) -> &'a str {
        self.package.split('.').next().unwrap_or(self.package)
    }
}

impl PartialEq for Event<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.package == o.package
            && self.id == o.id
            && eq_except(&self.params, &o.params, EVENT_TYPED)
    }
}
impl Eq for Event<'_> {}

impl fmt::Display for Event<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.package)?;
        if let Some(id) = self.id {
            write!(f, ";id={id}")?;
        }
        write_except(f, &self.params, EVENT_TYPED)
    }
}

/// `substate-value *(;reason= ;expires= ;retry-after= ;generic-param)`.
///
/// `params` holds every parameter as received; the typed fields are authoritative.
#[derive(Debug, Clone, Copy)]
pub struct SubscriptionState<'a> {
    /// `active`, `pending`, `terminated` or an extension token.
    pub state: &'a str,
    /// `expires` in seconds.
    pub expires: Option<u32>,
    /// `reason`, e.g. `timeout`.
    pub reason: Option<&'a str>,
    /// `retry-after` in seconds.
    pub retry_after: Option<u32>,
    /// All parameters as received.
    pub params: Params<'a>,
}

impl<'a> SubscriptionState<'a> {
    /// Parses a Subscription-State value.
    pub fn parse(s: &'a str) -> Result<Self, ValueError> {
        let (state, params) = head_params(s)?;
        if !is_token_str(state) {
            return Err(err("invalid subscription state", 0));
        }
        let at = s.len() - params.as_str().len();
        let num = |name, what| match params.get_raw(name) {
            None => Ok(None),
            Some(v) => v
                .and_then(|v| parse_u32(v, what).ok())
                .map(Some)
                .ok_or(err(what, at)),
        };
        let reason = match params.get_raw("reason") {
            None => None,
            Some(Some(v)) if is_token_str(v) => Some(v),
            Some(_) => return Err(err("invalid reason", at)),
        };
        Ok(SubscriptionState {
            state,
            expires: num("expires", "invalid expires")?,
            reason,
            retry_after: num("retry-after", "invalid retry-after")?,
            params,
        })
    }

    /// Case-insensitive check of the state (`active`, `pending`, `terminated`).
    pub fn is(&self, state: &str) -> bool {
        self.state.eq_ignore_ascii_case(state)
    }
}

impl PartialEq for SubscriptionState<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.state.eq_ignore_ascii_case(o.state)
            && (self.expires, self.reason, self.retry_after) == (o.expires, o.reason, o.retry_after)
            && eq_except(&self.params, &o.params, SUB_TYPED)
    }
}
impl Eq for SubscriptionState<'_> {}

impl fmt::Display for SubscriptionState<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.state)?;
        if let Some(r) = self.reason {
            write!(f, ";reason={r}")?;
        }
        if let Some(e) = self.expires {
            write!(f, ";expires={e}")?;
        }
        if let Some(r) = self.retry_after {
            write!(f, ";retry-after={r}")?;
        }
        write_except(f, &self.params, SUB_TYPED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event() {
        let e = Event::parse("presence.winfo ;id=7;x").unwrap();
        assert_eq!(
            (e.package, e.package_name(), e.id),
            ("presence.winfo", "presence", Some("7"))
        );
        assert_eq!(e.to_string(), "presence.winfo;id=7;x");
        assert_eq!(Event::parse(&e.to_string()).unwrap(), e);
        assert_eq!(Event::parse("refer").unwrap().id, None);
        assert_eq!(
            Event::parse("a..b").unwrap_err().what,
            "invalid event package"
        );
        assert_eq!(
            Event::parse("refer;id=\"x\"").unwrap_err().what,
            "invalid event id"
        );
    }

    #[test]
    fn subscription_state() {
        let s = SubscriptionState::parse("active;expires=3600").unwrap();
        assert!(s.is("ACTIVE"));
        assert_eq!(s.expires, Some(3600));
        let s = SubscriptionState::parse("terminated;reason=timeout;retry-after=60").unwrap();
        assert_eq!((s.reason, s.retry_after), (Some("timeout"), Some(60)));
        assert_eq!(s.to_string(), "terminated;reason=timeout;retry-after=60");
        assert_eq!(SubscriptionState::parse(&s.to_string()).unwrap(), s);
        assert_eq!(
            SubscriptionState::parse("active;expires=x")
                .unwrap_err()
                .what,
            "invalid expires"
        );
        assert_eq!(
            SubscriptionState::parse("active;expires").unwrap_err().what,
            "invalid expires"
        );
        assert_eq!(
            SubscriptionState::parse("a b").unwrap_err().what,
            "invalid subscription state"
        );
    }
}
