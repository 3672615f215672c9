//! The location service: which contacts an address-of-record is bound to, until when
//! (RFC 3261 §10.3), with RFC 5626 outbound bindings keyed by instance and reg-id.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use smol_str::SmolStr;

use crate::message::{
    Contact, Expires, HeaderName, NameAddr, ParseError, Request, Response, Scheme, StatusCode,
};
use crate::peer_map::PeerMap;
use crate::transport::FlowId;

/// Expiry bounds of the registrar (RFC 3261 §10.3 step 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryPolicy {
    /// Shorter requests get 423 Interval Too Brief with this as Min-Expires.
    pub min: u32,
    /// Longer requests are granted this much.
    pub max: u32,
    /// When neither the Contact nor the request says.
    pub default: u32,
}

impl Default for ExpiryPolicy {
    /// 60 s minimum, one day maximum, one hour by default.
    fn default() -> Self {
        Self {
            min: 60,
            max: 86_400,
            default: 3600,
        }
    }
}

/// One registered contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The contact URI requests for the address-of-record are forwarded to.
    pub uri: String,
    /// When the binding lapses.
    pub expires_at: Instant,
    /// The Call-ID of the REGISTER that made or last refreshed it.
    pub call_id: SmolStr,
    /// Its CSeq number.
    pub cseq: u32,
    /// `q` in thousandths, when the contact gave one.
    pub q: Option<u16>,
    /// RFC 5626 `+sip.instance`, with its angle brackets and quotes removed.
    pub instance: Option<SmolStr>,
    /// RFC 5626 `reg-id`.
    pub reg_id: Option<u32>,
    /// The flow the REGISTER came in on: with outbound (or a client behind NAT) requests
    /// for this contact go back over it.
    pub flow: Option<FlowId>,
}

impl Binding {
    /// Seconds left, rounded up, as written in a Contact's `expires`.
    pub fn remaining(&self, now: Instant) -> u32 {
        let left = self.expires_at.saturating_duration_since(now);
        u32::try_from(left.as_secs() + u64::from(left.subsec_nanos() > 0)).unwrap_or(u32::MAX)
    }
}

/// Why a REGISTER was refused, with the status to answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegisterError {
    /// A header the registrar reads does not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The To URI is not a sip: or sips: address-of-record.
    #[error("to is not a sip address-of-record")]
    NotAnAor,
    /// `Contact: *` must stand alone, with `Expires: 0` (§10.3 step 6).
    #[error("contact * needs expires 0 and no other contact")]
    BadWildcard,
    /// An expiry below the minimum (§10.3 step 7): answer 423 with Min-Expires.
    #[error("interval too brief (minimum {min} s)")]
    TooBrief {
        /// The Min-Expires to send.
        min: u32,
    },
    /// A REGISTER older than the one that set the binding (same Call-ID, CSeq not higher).
    #[error("out-of-order register")]
    OutOfOrder,
}

impl RegisterError {
    /// The status code to answer with.
    pub fn status(&self) -> u16 {
        match self {
            RegisterError::TooBrief { .. } => 423,
            RegisterError::OutOfOrder => 500,
            RegisterError::NotAnAor => 404,
            _ => 400,
        }
    }

    /// The response to the REGISTER, Min-Expires included for 423.
    pub fn response(&self, req: &Request) -> Response {
        let status = StatusCode::with_reason(self.status(), &self.to_string())
            .unwrap_or_else(|| StatusCode::new(self.status()));
        let mut r = Response::from_request(req, status);
        if let RegisterError::TooBrief { min } = self {
            r.headers_mut()
                .push(HeaderName::MinExpires, &min.to_string());
        }
        r
    }
}

/// Every binding of every address-of-record, with their expiry.
#[derive(Debug, Default)]
pub struct LocationService {
    policy: ExpiryPolicy,
    bindings: PeerMap<SmolStr, Vec<Binding>>,
    /// Lazy expiry queue: an entry is stale when its binding was refreshed or removed.
    expiry: BinaryHeap<Reverse<(Instant, SmolStr)>>,
}

impl LocationService {
    /// An empty location service.
    pub fn new(policy: ExpiryPolicy) -> Self {
        Self {
            policy,
            ..Self::default()
        }
    }

    /// The address-of-record key of a sip/sips URI: `user@host`, host lowercased (user
    /// parts are case-sensitive, RFC 3261 §19.1.4).
    pub fn aor_key(uri: &str) -> Option<SmolStr> {
        let na = NameAddr::parse(uri).ok()?;
        let u = na.uri();
        if !matches!(u.scheme(), Scheme::Sip | Scheme::Sips) {
            return None;
        }
        let host = u.host()?.to_string().to_ascii_lowercase();
        Some(match u.user_unescaped() {
            Some(user) => smol_str::format_smolstr!("{user}@{host}"),
            None => SmolStr::new(host),
        })
    }

    /// Applies a REGISTER (RFC 3261 §10.3 steps 5–7) and returns the address-of-record's key.
    /// Without Contact it is a query and changes nothing.
    pub fn register(
        &mut self,
        now: Instant,
        req: &Request,
        flow: Option<FlowId>,
    ) -> Result<SmolStr, RegisterError> {
        let h = req.headers();
        let to = h
            .get(HeaderName::To)
            .ok_or(ParseError::Missing { name: "To" })?;
        let aor = Self::aor_key(to).ok_or(RegisterError::NotAnAor)?;
        let call_id = SmolStr::new(req.call_id()?);
        let cseq = req.cseq()?.seq;
        let header_expires = match h.get(HeaderName::Expires) {
            Some(v) => Some(Expires::parse(v).map_err(|error| ParseError::Header {
                name: HeaderName::Expires.as_str(),
                error,
            })?),
            None => None,
        };
        let contacts: Vec<&str> = h.get_all(HeaderName::Contact).collect();
        if contacts
            .iter()
            .any(|c| matches!(Contact::parse(c), Ok(Contact::Star)))
        {
            if contacts.len() != 1 || header_expires.map(|e| e.0) != Some(0) {
                return Err(RegisterError::BadWildcard);
            }
            self.bindings.remove(&aor);
            return Ok(aor);
        }
        // Validate everything before changing anything: a refused REGISTER changes nothing.
        let mut updates = Vec::new();
        for line in &contacts {
            let parsed = Contact::parse(line).map_err(|error| ParseError::Header {
                name: HeaderName::Contact.as_str(),
                error,
            })?;
            for na in parsed.iter() {
                let requested = na
                    .expires()
                    .or(header_expires.map(|e| e.0))
                    .unwrap_or(self.policy.default);
                if requested != 0 && requested < self.policy.min {
                    return Err(RegisterError::TooBrief {
                        min: self.policy.min,
                    });
                }
                let params = na.params();
                let instance = params
                    .get("+sip.instance")
                    .flatten()
                    .map(|v| SmolStr::new(v.trim_matches(['"', '<', '>'])));
                let reg_id = params.get("reg-id").flatten().and_then(|v| v.parse().ok());
                updates.push((
                    na.uri().to_string(),
                    requested.min(self.policy.max),
                    na.q(),
                    instance,
                    reg_id,
                ));
            }
        }
        // Most AORs have one contact; a default Vec would reserve four on the first push.
        let list = self
            .bindings
            .entry(aor.clone())
            .or_insert_with(|| Vec::with_capacity(1));
        for (uri, _, _, instance, reg_id) in &updates {
            let same = |b: &Binding| match (instance, &b.instance) {
                // RFC 5626 §6: one binding per instance and reg-id, whatever its URI.
                (Some(i), Some(bi)) => i == bi && *reg_id == b.reg_id,
                _ => b.uri == *uri,
            };
            if let Some(b) = list.iter().find(|b| same(b))
                && b.call_id == call_id
                && cseq <= b.cseq
            {
                return Err(RegisterError::OutOfOrder);
            }
        }
        for (uri, expires, q, instance, reg_id) in updates {
            list.retain(|b| match (&instance, &b.instance) {
                (Some(i), Some(bi)) => !(*i == *bi && reg_id == b.reg_id),
                _ => b.uri != uri,
            });
            if expires == 0 {
                continue;
            }
            let expires_at = now + Duration::from_secs(u64::from(expires));
            self.expiry.push(Reverse((expires_at, aor.clone())));
            list.push(Binding {
                uri,
                expires_at,
                call_id: call_id.clone(),
                cseq,
                q,
                instance,
                reg_id,
                flow,
            });
        }
        if list.is_empty() {
            self.bindings.remove(&aor);
        }
        Ok(aor)
    }

    /// The live bindings of an address-of-record key.
    pub fn lookup(&self, now: Instant, aor: &str) -> impl Iterator<Item = &Binding> + '_ {
        self.bindings
            .get(aor)
            .into_iter()
            .flatten()
            .filter(move |b| b.expires_at > now)
    }

    /// The live binding whose contact URI is `uri`, in any address-of-record: where an
    /// in-dialog request addressed to a registered contact goes.
    pub fn find_contact(&self, now: Instant, uri: &str) -> Option<&Binding> {
        self.bindings
            .values()
            .flatten()
            .find(|b| b.expires_at > now && b.uri == uri)
    }

    /// The 200 OK for a REGISTER: every current binding as a Contact with its remaining
    /// `expires` (§10.3 step 8).
    pub fn ok_response(&self, now: Instant, req: &Request, aor: &str) -> Response {
        let mut r = Response::from_request(req, StatusCode::new(200));
        for b in self.lookup(now, aor) {
            let mut value = format!("<{}>;expires={}", b.uri, b.remaining(now));
            if let Some(i) = &b.instance {
                value.push_str(&format!(";+sip.instance=\"<{i}>\""));
            }
            if let Some(id) = b.reg_id {
                value.push_str(&format!(";reg-id={id}"));
            }
            r.headers_mut().push(HeaderName::Contact, &value);
        }
        r
    }

    /// Removes every binding that has lapsed by `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, aor))) = self.expiry.peek() {
            if *at > now {
                break;
            }
            let aor = aor.clone();
            self.expiry.pop();
            if let Some(list) = self.bindings.get_mut(&aor) {
                list.retain(|b| b.expires_at > now);
                if list.is_empty() {
                    self.bindings.remove(&aor);
                }
            }
        }
    }

    /// When the next binding may lapse.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.expiry.peek().map(|Reverse((at, _))| *at)
    }

    /// How many addresses-of-record have at least one binding.
    pub fn len(&self) -> usize {
        self.bindings.len()
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.bindings.is_empty()
    }

    /// Forgets every binding, as a restarted registrar would.
    pub fn clear(&mut self) {
        self.bindings.clear();
        self.expiry.clear();
    }
}
