//! The embedded server's event state compositor (RFC 3903 §6): it takes PUBLISH for its
//! users' addresses-of-record, keeps each publication's state under an entity-tag, and
//! answers refreshes, modifications and removals by that tag.
//!
//! It keeps each publication's body as sent; [`Compositor::state`] hands them out, and the
//! presence agent (`presence.rs`) composes and notifies them.

use std::time::{Duration, Instant};

use bytes::Bytes;
use smol_str::SmolStr;

use super::LocationService;
use crate::ids::IdGenerator;
use crate::message::{Event as EventHeader, Expires, HeaderName, Request, Response, StatusCode};
use crate::peer_map::PeerMap;

/// The packages it keeps state for.
const PACKAGES: &[&str] = &["presence", "dialog", "message-summary"];
/// Bounds on the interval (RFC 3903 §6 step 4).
const MIN_EXPIRES: u32 = 60;
const MAX_EXPIRES: u32 = 3600;
/// Publications kept at most, so a flood of PUBLISH costs bounded memory.
const MAX_ENTRIES: usize = 10_000;

/// One publication's state.
#[derive(Debug, Clone)]
struct Entry {
    aor: SmolStr,
    event: SmolStr,
    content_type: String,
    body: Bytes,
    expires_at: Instant,
}

/// The compositor; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct Compositor {
    entries: PeerMap<SmolStr, Entry>,
}

impl Compositor {
    /// The answer to a PUBLISH for one of our addresses-of-record (authenticated already).
    pub(crate) fn publish(
        &mut self,
        now: Instant,
        req: &Request,
        ids: &mut IdGenerator,
    ) -> Response {
        self.entries.retain(|_, e| e.expires_at > now);
        let reply = |code: u16| Response::from_request(req, StatusCode::new(code));
        let Some(aor) = LocationService::aor_key(req.uri()) else {
            return reply(404);
        };
        let event = match req.headers().get(HeaderName::Event).map(EventHeader::parse) {
            Some(Ok(e)) => SmolStr::new(e.package),
            _ => return reply(400),
        };
        if !PACKAGES.iter().any(|p| p.eq_ignore_ascii_case(&event)) {
            let mut r = reply(489);
            r.headers_mut()
                .push(HeaderName::AllowEvents, &PACKAGES.join(", "));
            return r;
        }
        let expires = match req.headers().get(HeaderName::Expires).map(Expires::parse) {
            None => MAX_EXPIRES,
            Some(Ok(e)) => e.0.min(MAX_EXPIRES),
            Some(Err(_)) => return reply(400),
        };
        if expires != 0 && expires < MIN_EXPIRES {
            let mut r = reply(423);
            r.headers_mut()
                .push(HeaderName::MinExpires, &MIN_EXPIRES.to_string());
            return r;
        }
        let body = req.body();
        let old = match req.headers().get(HeaderName::SipIfMatch) {
            Some(tag) => {
                let tag = SmolStr::new(tag.trim());
                // An unknown tag, or another resource's, is a failed condition (step 5).
                match self.entries.remove(&tag) {
                    Some(e) if e.aor == aor && e.event == event && e.expires_at > now => Some(e),
                    Some(e) => {
                        self.entries.insert(tag, e);
                        return reply(412);
                    }
                    None => return reply(412),
                }
            }
            // A first PUBLISH carries the state (step 6).
            None if body.is_empty() || expires == 0 => return reply(400),
            None => None,
        };
        let etag = SmolStr::new(ids.tag());
        let mut r = reply(200);
        r.headers_mut().push(HeaderName::SipETag, &etag);
        r.headers_mut()
            .push(HeaderName::Expires, &expires.to_string());
        if expires == 0 {
            return r;
        }
        if self.entries.len() >= MAX_ENTRIES {
            return reply(503);
        }
        let (content_type, body) = match old {
            // A refresh keeps the state it had.
            Some(old) if body.is_empty() => (old.content_type, old.body),
            _ => {
                let ct = req
                    .headers()
                    .get(HeaderName::ContentType)
                    .unwrap_or_default();
                (ct.to_string(), body.clone())
            }
        };
        self.entries.insert(
            etag,
            Entry {
                aor,
                event,
                content_type,
                body,
                expires_at: now + Duration::from_secs(u64::from(expires)),
            },
        );
        r
    }

    /// When the next publication runs out.
    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.entries.values().map(|e| e.expires_at).min()
    }

    /// Drops the publications that ran out by `now`, and says whose state that changed
    /// (address-of-record and package, once each).
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<(SmolStr, SmolStr)> {
        let mut changed: Vec<(SmolStr, SmolStr)> = Vec::new();
        self.entries.retain(|_, e| {
            let live = e.expires_at > now;
            if !live && !changed.iter().any(|(a, ev)| *a == e.aor && *ev == e.event) {
                changed.push((e.aor.clone(), e.event.clone()));
            }
            live
        });
        changed
    }

    /// The live state published for `aor` (its location-service key, `user@host`) and
    /// `event`: content type and body of each
    /// publication.
    pub(crate) fn state(&self, now: Instant, aor: &str, event: &str) -> Vec<(String, Bytes)> {
        self.entries
            .values()
            .filter(|e| e.expires_at > now && e.aor == aor && e.event.eq_ignore_ascii_case(event))
            .map(|e| (e.content_type.clone(), e.body.clone()))
            .collect()
    }
}
