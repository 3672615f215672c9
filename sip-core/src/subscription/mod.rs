//! Event subscriptions (RFC 6665): the second dialog usage, beside a call's INVITE usage.
//!
//! A subscription is ours (*subscriber*, `subscriber.rs`: SUBSCRIBE, the NOTIFYs, refresh
//! before expiry, unsubscribe) or the peer's (*notifier*, `notifier.rs`: the SUBSCRIBE
//! answered at once with `pending` state, the application's NOTIFYs, refreshes, expiry).
//! Like the INVITE usage it is a machine of its own: the user agent routes to it what is
//! its — the responses to its requests, the requests of its dialog, its timers — with a
//! small [`Ctx`], and carries out the [`Action`]s it answers with.
//!
//! Packages: the application names the ones it serves as notifier
//! ([`UaConfig::event_packages`](crate::ua::UaConfig::event_packages); a SUBSCRIBE for any
//! other gets 489) and subscribes to any. Bodies are the application's; these modules
//! read and write the common ones: [`message_summary`] (voicemail waiting, RFC 3842),
//! [`pidf`] (presence, RFC 3863) and [`dialog_info`] (busy lamp field, RFC 4235).

pub mod conference_info;
pub mod dialog_info;
pub mod message_summary;
mod notifier;
pub mod pidf;
mod subscriber;
mod xml;

pub use xml::XmlBodyError;

pub(crate) use notifier::SubscribeIn;
pub(crate) use subscriber::Outgoing;

use std::collections::VecDeque;
use std::fmt;
use std::time::Instant;

use bytes::Bytes;
use smol_str::SmolStr;

use crate::auth::Authenticator;
use crate::dialog::Dialog;
use crate::message::{Event as EventHeader, HeaderName, Method, Request, Response};
use crate::transaction::TxId;
use crate::transport::FlowId;
use crate::ua::Event;

/// A subscription's handle, unique for the life of its
/// [`UserAgent`](crate::ua::UserAgent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriptionHandle(pub(crate) u64);

impl fmt::Display for SubscriptionHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sub{}", self.0)
    }
}

/// Where a subscription stands (RFC 6665 §4.1.3, the Subscription-State values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SubState {
    /// Accepted, waiting for the notifier's policy (presence authorization…).
    Pending,
    /// Accepted and running.
    Active,
    /// Over.
    Terminated,
}

impl SubState {
    /// The Subscription-State token.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Terminated => "terminated",
        }
    }

    /// The state a Subscription-State token names; an extension token counts as pending
    /// (RFC 6665 §4.1.3: it must be treated as such).
    fn from_token(token: &str) -> Self {
        if token.eq_ignore_ascii_case("active") {
            Self::Active
        } else if token.eq_ignore_ascii_case("terminated") {
            Self::Terminated
        } else {
            Self::Pending
        }
    }
}

impl fmt::Display for SubState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a client transaction of a subscription was sent for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum SubRequest {
    Subscribe,
    Notify,
}

/// A subscription's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum SubTimer {
    /// Subscriber: refresh now.
    Refresh,
    /// The subscription runs out (subscriber: no refresh got through; notifier: none came).
    Expiry,
    /// Subscriber: the 2xx came but no NOTIFY within 64·T1 (RFC 6665 §4.1.2.4).
    NotifyWait,
}

const TIMER_KINDS: usize = 3;

/// What a subscription asks of the user agent (see [`crate::usage`]).
pub(crate) type Action = crate::usage::Action<SubRequest, SubTimer>;
/// What a subscription step gets from the user agent.
pub(crate) type Ctx<'a> = crate::usage::Ctx<'a, SubRequest, SubTimer>;

/// One subscription: see the module docs.
#[derive(Debug)]
pub(crate) struct Subscription {
    id: SubscriptionHandle,
    subscriber: bool,
    /// The Event header value both sides send (package and `id`).
    event: String,
    /// Call-ID and our tag: how NOTIFYs and in-dialog SUBSCRIBEs find it.
    key: (SmolStr, SmolStr),
    dialog: Option<Dialog>,
    flow: FlowId,
    /// Subscriber: our SUBSCRIBE as last sent (the first one until the dialog exists).
    subscribe: Request,
    /// Subscriber: our first SUBSCRIBE, out of any dialog: a new subscription after the
    /// notifier ended one starts from it.
    first: Option<Box<Request>>,
    /// Subscriber: new subscriptions made in a row since the last 2xx.
    restarts: u8,
    /// Subscriber: the interval we ask for. Notifier: the one granted.
    expires: u32,
    state: SubState,
    /// Notifier: the body of the last NOTIFY, sent again with each refresh (§4.2.1.2).
    body: Option<(String, Bytes)>,
    /// Our requests waiting for the one in flight: a NOTIFY overtaking another would reach
    /// the subscriber with a lower CSeq, which it must refuse (RFC 3261 §12.2.2).
    queue: VecDeque<(Request, SubRequest)>,
    in_flight: bool,
    /// Subscriber: an unsubscribe is out; what comes next ends it.
    unsubscribing: bool,
    timers: [Option<Instant>; TIMER_KINDS],
    /// Digest state for its requests.
    auth: Option<Box<Authenticator>>,
    finished: bool,
    span: tracing::Span,
}

impl Subscription {
    fn new(
        id: SubscriptionHandle,
        subscriber: bool,
        event: String,
        key: (SmolStr, SmolStr),
        flow: FlowId,
        subscribe: Request,
    ) -> Self {
        let span = tracing::debug_span!(
            target: "sansip::subscription",
            "subscription",
            handle = %id,
            event = %event,
            role = if subscriber { "subscriber" } else { "notifier" },
        );
        Self {
            id,
            subscriber,
            event,
            key,
            dialog: None,
            flow,
            subscribe,
            first: None,
            restarts: 0,
            expires: 0,
            state: SubState::Pending,
            body: None,
            queue: VecDeque::new(),
            in_flight: false,
            unsubscribing: false,
            timers: [None; TIMER_KINDS],
            auth: None,
            finished: false,
            span,
        }
    }

    /// Call-ID and our tag.
    pub(crate) fn key(&self) -> &(SmolStr, SmolStr) {
        &self.key
    }

    pub(crate) fn flow(&self) -> FlowId {
        self.flow
    }

    /// Over for the application, and no request of ours left to send (a final NOTIFY
    /// still goes out, and waits for its answer).
    pub(crate) fn is_finished(&self) -> bool {
        self.finished && !self.in_flight
    }

    /// The package its Event header names.
    pub(crate) fn package(&self) -> &str {
        EventHeader::parse(&self.event).map_or("", |e| e.package)
    }

    pub(crate) fn is_subscriber(&self) -> bool {
        self.subscriber
    }

    pub(crate) fn state(&self) -> SubState {
        self.state
    }

    pub(crate) fn dialog(&self) -> Option<&Dialog> {
        self.dialog.as_ref()
    }

    pub(crate) fn dialog_mut(&mut self) -> Option<&mut Dialog> {
        self.dialog.as_mut()
    }

    pub(crate) fn auth_mut(&mut self) -> &mut Option<Box<Authenticator>> {
        &mut self.auth
    }

    /// The deadline of timer `kind`, if armed.
    pub(crate) fn timer(&self, kind: SubTimer) -> Option<Instant> {
        self.timers[kind as usize]
    }

    fn set_timer(&mut self, ctx: &mut Ctx<'_>, kind: SubTimer, at: Instant) {
        self.timers[kind as usize] = Some(at);
        ctx.timer(at, kind);
    }

    fn clear_timer(&mut self, kind: SubTimer) {
        self.timers[kind as usize] = None;
    }

    /// Our SUBSCRIBE went out again (with credentials): responses now answer this one.
    pub(crate) fn subscribe_resent(&mut self, req: &Request) {
        self.subscribe = req.clone();
    }

    /// Whether `req`'s Event names this subscription's package and id (RFC 6665 §8.2.1).
    fn same_event(&self, req: &Request) -> bool {
        let ours = EventHeader::parse(&self.event).ok();
        let theirs = req
            .headers()
            .get(HeaderName::Event)
            .and_then(|v| EventHeader::parse(v).ok());
        match (ours, theirs) {
            (Some(a), Some(b)) => a.package == b.package && a.id == b.id,
            _ => false,
        }
    }

    /// A request inside the subscription's dialog, from the route set and the flow.
    fn in_dialog_request(&mut self, ctx: &mut Ctx<'_>, method: Method) -> Option<Request> {
        let mut req = self.dialog.as_mut()?.request(method, &ctx.local, ctx.ids);
        let h = req.headers_mut();
        h.push(HeaderName::Event, &self.event);
        if let Some(ua) = &ctx.config.user_agent {
            h.push(HeaderName::UserAgent, ua);
        }
        crate::ua::add_headers(h, &ctx.config.extra_headers);
        Some(req)
    }

    /// Sends `req` now, or after the request in flight.
    fn send(&mut self, ctx: &mut Ctx<'_>, req: Request, what: SubRequest) {
        if self.in_flight {
            self.queue.push_back((req, what));
        } else {
            self.in_flight = true;
            ctx.send(req, what);
        }
    }

    /// The request in flight is done: the next may go.
    fn next_request(&mut self, ctx: &mut Ctx<'_>) {
        self.in_flight = false;
        if let Some((req, what)) = self.queue.pop_front() {
            self.in_flight = true;
            ctx.send(req, what);
        }
    }

    /// Tells the application it is over (once) and lets it go.
    fn end(
        &mut self,
        ctx: &mut Ctx<'_>,
        reason: Option<String>,
        retry_after: Option<u32>,
        status: Option<u16>,
    ) {
        if self.finished {
            return;
        }
        self.state = SubState::Terminated;
        self.finished = true;
        self.span.in_scope(|| {
            tracing::debug!(target: "sansip::subscription", ?reason, ?status, "ended");
        });
        ctx.event(Event::SubscriptionEnded {
            subscription: self.id,
            reason,
            retry_after,
            status,
        });
    }

    /// Timer `kind`, armed for `at`, is due; stale deadlines are ignored.
    pub(crate) fn handle_timeout(&mut self, ctx: &mut Ctx<'_>, kind: SubTimer, at: Instant) {
        if self.finished || self.timers[kind as usize] != Some(at) {
            return;
        }
        self.timers[kind as usize] = None;
        match (self.subscriber, kind) {
            (true, SubTimer::Refresh) => self.refresh(ctx),
            (true, SubTimer::Expiry) => self.end(ctx, Some("timeout".into()), None, None),
            (true, SubTimer::NotifyWait) => {
                // §4.1.2.4: a 2xx without a NOTIFY within 64·T1 is a subscription that
                // failed (or, for an unsubscribe, one that is over).
                let reason = (!self.unsubscribing).then(|| "no notify".to_string());
                self.end(ctx, reason, None, None);
            }
            (false, SubTimer::Expiry) => self.expired(ctx),
            (false, _) => {}
        }
    }

    /// A request of the subscription could not be sent or got no final response.
    pub(crate) fn request_failed(&mut self, ctx: &mut Ctx<'_>, timed_out: bool) {
        self.next_request(ctx);
        let status = if timed_out { 408 } else { 503 };
        self.end(ctx, None, None, Some(status));
    }

    /// A final (or provisional) response to a request of the subscription.
    pub(crate) fn handle_response(&mut self, ctx: &mut Ctx<'_>, what: SubRequest, resp: &Response) {
        if resp.status().code() < 200 {
            return;
        }
        self.next_request(ctx);
        if self.finished {
            return;
        }
        match what {
            SubRequest::Subscribe => self.subscribe_answered(ctx, resp),
            SubRequest::Notify => self.notify_answered(ctx, resp),
        }
    }

    /// A request the user agent matched to the subscription's dialog (or, for a NOTIFY
    /// before the 2xx, to our SUBSCRIBE's Call-ID and tag).
    pub(crate) fn handle_request(&mut self, ctx: &mut Ctx<'_>, tx: TxId, req: &Request) {
        if self.finished {
            ctx.respond(tx, req, 481);
            return;
        }
        let remote = req.headers().from_tag().ok().flatten().unwrap_or_default();
        if self
            .dialog
            .as_ref()
            .is_some_and(|d| d.id().remote_tag != remote)
        {
            // Another fork's notifier (RFC 6665 §4.1.2.4): we keep the first one's.
            ctx.respond(tx, req, 481);
            return;
        }
        if let Some(Err(e)) = self.dialog.as_mut().map(|d| d.handle_request(req)) {
            ctx.respond_with(tx, req, e.status_code(), &[]);
            return;
        }
        match (self.subscriber, req.method()) {
            (true, Method::Notify) => self.notify_in(ctx, tx, req),
            (false, Method::Subscribe) => self.refresh_in(ctx, tx, req),
            _ => {
                let extra = [(HeaderName::Allow, crate::ua::answer::ALLOW.to_string())];
                ctx.respond_with(tx, req, crate::message::StatusCode::new(405), &extra);
            }
        }
    }
}
