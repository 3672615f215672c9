//! Event state publication (RFC 3903): our own state — presence, most often — sent to
//! the state compositor (a presence server) with PUBLISH, kept alive and changed by its
//! entity-tag.
//!
//! The first PUBLISH carries the state; the 2xx gives an entity-tag (`SIP-ETag`) and the
//! interval granted. Before that runs out the publication is *refreshed* (`SIP-If-Match`,
//! no body), *modified* (`SIP-If-Match` and the new state) or *removed* (`SIP-If-Match`,
//! `Expires: 0`), each answered by a new entity-tag. A 412 says the compositor forgot the
//! tag: the state goes out again as a first PUBLISH (§4.1 ¶5). A 423 asks for a longer
//! interval (its Min-Expires). One PUBLISH is in flight at a time (§4.1); a change asked
//! meanwhile waits, and only the latest one goes out.
//!
//! Like the dialog usages (`crate::usage`), a publication never borrows the
//! [`UserAgent`](crate::ua::UserAgent): each step gets a [`Ctx`] and answers with
//! actions.

use std::fmt;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::auth::Authenticator;
use crate::dialog::RequestHead;
use crate::message::{Expires, HeaderName, Method, Request, Response};
use crate::transport::FlowId;
use crate::ua::Event;

/// A publication's handle, unique for the life of its
/// [`UserAgent`](crate::ua::UserAgent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicationHandle(pub(crate) u64);

impl fmt::Display for PublicationHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pub{}", self.0)
    }
}

/// A publication's one timer: refresh now (the compositor would drop the state soon).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct PubTimer;

/// What a publication asks of the user agent.
pub(crate) type Action = crate::usage::Action<(), PubTimer>;
/// What a publication step gets from the user agent.
pub(crate) type Ctx<'a> = crate::usage::Ctx<'a, (), PubTimer>;

/// What the next PUBLISH does.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    /// The state, without an entity-tag: the first one, or after a 412.
    Initial,
    /// The same state for longer.
    Refresh,
    /// New state (kept in `Publication::body`).
    Modify,
    /// Remove it.
    Remove,
}

/// What the user agent settled before the first PUBLISH.
pub(crate) struct Outgoing<'a> {
    pub(crate) id: PublicationHandle,
    pub(crate) flow: FlowId,
    /// The Request-URI and To: the presentity, normally our own address-of-record.
    pub(crate) uri: &'a str,
    /// Our From without its tag.
    pub(crate) from: String,
    pub(crate) event: &'a str,
    pub(crate) content_type: &'a str,
    pub(crate) body: Bytes,
    pub(crate) expires: u32,
    pub(crate) headers: &'a [(String, String)],
}

/// One publication: see the module docs.
#[derive(Debug)]
pub(crate) struct Publication {
    id: PublicationHandle,
    flow: FlowId,
    uri: String,
    from: String,
    call_id: String,
    seq: u32,
    event: String,
    content_type: String,
    body: Bytes,
    expires: u32,
    headers: Vec<(String, String)>,
    etag: Option<String>,
    /// The PUBLISH in flight, as last sent (a challenge resends it), and what it does.
    in_flight: Option<(Request, Op)>,
    /// The change asked while one was in flight.
    queued: Option<Op>,
    /// A 412 already sent the state again once: a second ends the publication.
    reinitiated: bool,
    refresh_at: Option<Instant>,
    auth: Option<Box<Authenticator>>,
    finished: bool,
}

impl Publication {
    /// Builds the publication and sends its first PUBLISH.
    pub(crate) fn outgoing(ctx: &mut Ctx<'_>, p: Outgoing<'_>) -> Self {
        let mut s = Self {
            id: p.id,
            flow: p.flow,
            uri: p.uri.to_string(),
            from: format!("{};tag={}", p.from, ctx.ids.tag()),
            call_id: ctx.ids.call_id().to_string(),
            seq: ctx.ids.initial_cseq(),
            event: p.event.to_string(),
            content_type: p.content_type.to_string(),
            body: p.body,
            expires: p.expires,
            headers: p.headers.to_vec(),
            etag: None,
            in_flight: None,
            queued: None,
            reinitiated: false,
            refresh_at: None,
            auth: None,
            finished: false,
        };
        s.start(ctx, Op::Initial);
        s
    }

    pub(crate) fn flow(&self) -> FlowId {
        self.flow
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }

    pub(crate) fn refresh_at(&self) -> Option<Instant> {
        self.refresh_at
    }

    pub(crate) fn auth_mut(&mut self) -> &mut Option<Box<Authenticator>> {
        &mut self.auth
    }

    /// The entity-tag the compositor gave last, if any.
    pub(crate) fn etag(&self) -> Option<&str> {
        self.etag.as_deref()
    }

    /// Our PUBLISH went out again (with credentials): its response answers this one.
    pub(crate) fn resent(&mut self, req: &Request) {
        if let Some((sent, _)) = &mut self.in_flight {
            *sent = req.clone();
        }
        self.seq = req.cseq().map_or(self.seq, |c| c.seq);
    }

    /// New state to publish.
    pub(crate) fn modify(&mut self, ctx: &mut Ctx<'_>, content_type: &str, body: Bytes) {
        self.content_type = content_type.to_string();
        self.body = body;
        self.start(ctx, Op::Modify);
    }

    /// Removes the state (RFC 3903 §4.5).
    pub(crate) fn remove(&mut self, ctx: &mut Ctx<'_>) {
        self.start(ctx, Op::Remove);
    }

    pub(crate) fn handle_timeout(&mut self, ctx: &mut Ctx<'_>, at: Instant) {
        if self.refresh_at == Some(at) {
            self.refresh_at = None;
            self.start(ctx, Op::Refresh);
        }
    }

    /// The PUBLISH got no final response, or its flow broke.
    pub(crate) fn request_failed(&mut self, ctx: &mut Ctx<'_>, timed_out: bool) {
        self.in_flight = None;
        let reason = if timed_out {
            "Request Timeout"
        } else {
            "Transport Error"
        };
        self.end(ctx, 408, reason);
    }

    pub(crate) fn handle_response(&mut self, ctx: &mut Ctx<'_>, resp: &Response) {
        let code = resp.status().code();
        if code < 200 {
            return;
        }
        let Some((_, op)) = self.in_flight.take() else {
            return;
        };
        let reason = resp.status().reason().to_string();
        match code {
            200..=299 if op == Op::Remove => self.end(ctx, code, &reason),
            200..=299 => {
                self.etag = resp.headers().get(HeaderName::SipETag).map(str::to_string);
                self.reinitiated = false;
                // The compositor may shorten the interval, never lengthen it (§4.1 ¶9).
                let granted = resp
                    .headers()
                    .get(HeaderName::Expires)
                    .and_then(|v| Expires::parse(v).ok())
                    .map_or(self.expires, |e| e.0.min(self.expires));
                let ms = u64::from(granted) * 1000;
                // Between 80 % and 90 %: well before the compositor drops the state,
                // jittered so that many phones do not refresh together.
                let at = ctx.now + Duration::from_millis(ms * 4 / 5 + ctx.ids.below(ms / 10 + 1));
                self.refresh_at = Some(at);
                ctx.timer(at, PubTimer);
                ctx.event(Event::Published {
                    publication: self.id,
                    etag: self.etag.clone().unwrap_or_default(),
                    expires: granted,
                });
                if let Some(next) = self.queued.take() {
                    self.start(ctx, next);
                }
            }
            // Our entity-tag is unknown there: the state again, from scratch (§4.1 ¶5).
            412 if op != Op::Remove && !self.reinitiated => {
                self.reinitiated = true;
                self.etag = None;
                self.start(ctx, Op::Initial);
            }
            412 if op == Op::Remove => self.end(ctx, code, &reason),
            423 => {
                let min = resp
                    .headers()
                    .get(HeaderName::MinExpires)
                    .and_then(|v| Expires::parse(v).ok())
                    .map(|e| e.0);
                match min {
                    // Only a longer interval than ours helps; anything else would loop.
                    Some(min) if min > self.expires => {
                        self.expires = min;
                        self.start(ctx, op);
                    }
                    _ => self.end(ctx, code, &reason),
                }
            }
            _ => self.end(ctx, code, &reason),
        }
    }

    /// Sends `op` now, or after the PUBLISH in flight (a removal or new state replaces a
    /// queued refresh; a refresh never replaces a change).
    fn start(&mut self, ctx: &mut Ctx<'_>, op: Op) {
        if self.finished {
            return;
        }
        if self.in_flight.is_some() {
            self.queued = match (self.queued.take(), op) {
                (Some(Op::Remove), _) | (_, Op::Remove) => Some(Op::Remove),
                (Some(q), Op::Refresh) => Some(q),
                (_, op) => Some(op),
            };
            return;
        }
        // Without an entity-tag there is nothing to refresh, modify or remove but the
        // whole state (the first PUBLISH failed over to us while this waited).
        let op = match (op, &self.etag) {
            (Op::Remove, None) => {
                self.end(ctx, 200, "OK");
                return;
            }
            (Op::Refresh | Op::Modify, None) => Op::Initial,
            (op, _) => op,
        };
        self.seq = self.seq.wrapping_add(1);
        let mut req = RequestHead {
            method: Method::Publish,
            uri: &self.uri,
            routes: &[],
            from: &self.from,
            to: &format!("<{}>", self.uri),
            call_id: &self.call_id,
            cseq: self.seq,
        }
        .build(&ctx.local, ctx.ids);
        let h = req.headers_mut();
        h.push(HeaderName::Event, &self.event);
        let expires = if op == Op::Remove { 0 } else { self.expires };
        h.push(HeaderName::Expires, &expires.to_string());
        if op != Op::Initial
            && let Some(tag) = &self.etag
        {
            h.push(HeaderName::SipIfMatch, tag);
        }
        if let Some(ua) = &ctx.config.user_agent {
            h.push(HeaderName::UserAgent, ua);
        }
        crate::ua::add_headers(h, &ctx.config.extra_headers);
        crate::ua::add_headers(h, &self.headers);
        if matches!(op, Op::Initial | Op::Modify) {
            req.set_body(&self.content_type, self.body.clone());
        }
        // Credentials from the last challenge, so a refresh is not challenged again.
        if let Some(auth) = self.auth.as_mut() {
            let _ = auth.preauthorize(&mut req, &ctx.ids.cnonce());
        }
        self.refresh_at = None;
        self.in_flight = Some((req.clone(), op));
        ctx.send(req, ());
    }

    fn end(&mut self, ctx: &mut Ctx<'_>, status: u16, reason: &str) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.refresh_at = None;
        ctx.event(Event::PublicationEnded {
            publication: self.id,
            status,
            reason: reason.to_string(),
        });
    }
}
