//! The user agent's side of subscriptions (RFC 6665): the application's commands, and
//! routing to each [`Subscription`] what is its. The machine itself is in
//! [`crate::subscription`].

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;

use super::{Output, Pending, Purpose, UaError, UserAgent};
use crate::dialog::{Dialog, DialogId, DialogState};
use crate::message::{Event as EventHeader, HeaderName, Request, Response, StatusCode};
use crate::peer_map::pair;
use crate::session::SdpHandler;
use crate::subscription::{
    Action, Ctx, Outgoing, SubRequest, SubState, SubscribeIn, Subscription, SubscriptionHandle,
};
use crate::transaction::TxId;
use crate::transport::Flow;

/// Options for [`UserAgent::subscribe`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SubscribeOptions {
    /// The Event header value: the package, e.g. `message-summary`, `presence`, `dialog`.
    pub event: String,
    /// The bodies we take, for Accept (e.g. `application/simple-message-summary`).
    pub accept: Vec<String>,
    /// The interval we ask for, in seconds.
    pub expires: u32,
    /// Extra headers for the SUBSCRIBE.
    pub headers: Vec<(String, String)>,
}

impl SubscribeOptions {
    /// Subscribing to `event` for an hour, taking whatever body it sends.
    pub fn new(event: impl Into<String>) -> Self {
        Self {
            event: event.into(),
            accept: Vec::new(),
            expires: 3600,
            headers: Vec::new(),
        }
    }

    /// Adds a body type we take.
    #[must_use]
    pub fn accept(mut self, content_type: impl Into<String>) -> Self {
        self.accept.push(content_type.into());
        self
    }

    /// Sets the interval.
    #[must_use]
    pub fn expires(mut self, secs: u32) -> Self {
        self.expires = secs;
        self
    }

    /// Adds an extra header.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

impl<S: SdpHandler> UserAgent<S> {
    /// Subscribes to `target`'s events (RFC 6665): a SUBSCRIBE now, refreshed by itself
    /// before it expires. Each NOTIFY comes as [`Event::Notified`](super::Event::Notified);
    /// the end, whoever ends it, as
    /// [`Event::SubscriptionEnded`](super::Event::SubscriptionEnded).
    pub fn subscribe(
        &mut self,
        now: Instant,
        target: &str,
        options: SubscribeOptions,
    ) -> Result<SubscriptionHandle, UaError> {
        self.now = now;
        let flow = self.outbound.ok_or(UaError::NotConnected)?;
        let uri = self.target_uri(target)?;
        if EventHeader::parse(&options.event).is_err() {
            return Err(UaError::InvalidHeader("Event".into()));
        }
        super::call::checked(&options.headers)?;
        let from = self.our_from(None);
        self.next_subscription += 1;
        let id = SubscriptionHandle(self.next_subscription);
        let mut out = VecDeque::new();
        let local = self.local_for(flow);
        let mut ctx = Ctx {
            now,
            ids: &mut self.ids,
            config: &self.config,
            local,
            reliable: self.flows.is_reliable(flow),
            out: &mut out,
        };
        let sub = Outgoing {
            id,
            flow,
            uri: &uri,
            from,
            options: &options,
        };
        let s = Subscription::outgoing(&mut ctx, sub);
        self.sub_dialogs.insert(s.key().clone(), id);
        self.subscriptions.insert(id, Box::new(s));
        self.run_sub_actions(now, id, out);
        Ok(id)
    }

    /// Ends our subscription: `Expires: 0`, then the notifier's final NOTIFY.
    pub fn unsubscribe(&mut self, now: Instant, id: SubscriptionHandle) -> Result<(), UaError> {
        self.now = now;
        if !self.live_subscription(id)?.is_subscriber() {
            return Err(UaError::InvalidState(
                "only our own subscriptions are unsubscribed",
            ));
        }
        self.with_subscription(now, id, |s, ctx| s.unsubscribe(ctx));
        Ok(())
    }

    /// As notifier: sends `state` (pending or active) with a new body (or the last one
    /// again) to the subscriber of `id`.
    pub fn notify(
        &mut self,
        now: Instant,
        id: SubscriptionHandle,
        state: SubState,
        body: Option<(&str, &[u8])>,
    ) -> Result<(), UaError> {
        self.now = now;
        if self.live_subscription(id)?.is_subscriber() || state == SubState::Terminated {
            return Err(UaError::InvalidState(
                "notify sends pending or active state of a subscription to us; \
                 end one with terminate_subscription",
            ));
        }
        if let Some((ct, _)) = body {
            crate::message::Headers::check_named("Content-Type", ct)
                .map_err(|_| UaError::InvalidHeader("Content-Type".into()))?;
        }
        let body = body.map(|(ct, b)| (ct.to_string(), Bytes::copy_from_slice(b)));
        self.with_subscription(now, id, |s, ctx| s.notify(ctx, state, body));
        Ok(())
    }

    /// As notifier: ends the subscription with a final NOTIFY giving `reason` (`rejected`
    /// refuses it, `noresource`, `deactivated`…).
    pub fn terminate_subscription(
        &mut self,
        now: Instant,
        id: SubscriptionHandle,
        reason: &str,
    ) -> Result<(), UaError> {
        self.now = now;
        if self.live_subscription(id)?.is_subscriber() {
            return Err(UaError::InvalidState(
                "end our own subscriptions with unsubscribe",
            ));
        }
        if !crate::message::lex_is_token(reason) {
            return Err(UaError::InvalidHeader("Subscription-State".into()));
        }
        self.with_subscription(now, id, |s, ctx| s.terminate(ctx, reason));
        Ok(())
    }

    /// Where subscription `id` stands.
    pub fn subscription_state(&self, id: SubscriptionHandle) -> Result<SubState, UaError> {
        Ok(self.live_subscription(id)?.state())
    }

    /// The live subscriptions.
    pub fn subscriptions(&self) -> impl Iterator<Item = SubscriptionHandle> + '_ {
        self.subscriptions.keys().copied()
    }

    pub(super) fn live_subscription(
        &self,
        id: SubscriptionHandle,
    ) -> Result<&Subscription, UaError> {
        self.subscriptions
            .get(&id)
            .map(|s| &**s)
            .ok_or(UaError::NoSuchSubscription(id))
    }

    /// Runs one step of subscription `id` and carries out what it asked.
    pub(super) fn with_subscription<R>(
        &mut self,
        now: Instant,
        id: SubscriptionHandle,
        step: impl FnOnce(&mut Subscription, &mut Ctx<'_>) -> R,
    ) -> Option<R> {
        let flow = self.live_flow(self.subscriptions.get(&id)?.flow());
        let local = self.local_for(flow);
        let reliable = self.flows.is_reliable(flow);
        let mut out = VecDeque::new();
        let sub = self.subscriptions.get_mut(&id)?;
        let mut ctx = Ctx {
            now,
            ids: &mut self.ids,
            config: &self.config,
            local,
            reliable,
            out: &mut out,
        };
        let r = step(sub, &mut ctx);
        self.run_sub_actions(now, id, out);
        Some(r)
    }

    fn run_sub_actions(&mut self, now: Instant, id: SubscriptionHandle, actions: VecDeque<Action>) {
        for action in actions {
            match action {
                Action::Send(req, what) => {
                    match self
                        .subscriptions
                        .get(&id)
                        .map(|s| self.live_flow(s.flow()))
                    {
                        Some(flow) => {
                            self.send_on(now, flow, req, Purpose::Subscription(id, what));
                        }
                        None => self.sub_request_failed(now, id, false),
                    }
                }
                Action::Respond(tx, resp) => {
                    let _ = self.tx.respond(now, tx, &resp);
                    self.drain_tx();
                }
                Action::Timer(at, kind) => self.sub_timers.push(at, id, kind),
                Action::Event(e) => {
                    if !self.group_event(now, &e) {
                        self.out.push_back(Output::Event(e));
                    }
                }
                // Subscriptions send no bytes outside transactions and cancel nothing.
                Action::Transmit { .. } | Action::Cancel(..) | Action::Abandon(_) => {}
            }
        }
        if self.subscriptions.get(&id).is_some_and(|s| s.is_finished())
            && let Some(s) = self.subscriptions.remove(&id)
        {
            self.sub_dialogs.remove(s.key());
        }
    }

    pub(super) fn next_sub_timer(&self) -> Option<Instant> {
        self.sub_timers.next()
    }

    pub(super) fn fire_sub_timers(&mut self, now: Instant) {
        while let Some((at, id, kind)) = self.sub_timers.pop_due(now) {
            if self
                .subscriptions
                .get(&id)
                .is_some_and(|s| s.timer(kind) == Some(at))
            {
                self.with_subscription(now, id, |s, ctx| s.handle_timeout(ctx, kind, at));
            }
        }
    }

    /// Our SUBSCRIBE went out again (with credentials).
    pub(super) fn subscribe_resent(&mut self, id: SubscriptionHandle, req: &Request) {
        if let Some(s) = self.subscriptions.get_mut(&id) {
            s.subscribe_resent(req);
        }
    }

    pub(super) fn sub_request_failed(
        &mut self,
        now: Instant,
        id: SubscriptionHandle,
        timed_out: bool,
    ) {
        self.with_subscription(now, id, |s, ctx| s.request_failed(ctx, timed_out));
    }

    /// A response to a request of subscription `id`; `pending` is given for final ones.
    pub(super) fn sub_response(
        &mut self,
        now: Instant,
        id: SubscriptionHandle,
        what: SubRequest,
        pending: Option<Pending>,
        resp: &Response,
    ) {
        let code = resp.status().code();
        if (code == 401 || code == 407)
            && let Some(p) = pending
            && self.retry_with_auth(now, p, resp)
        {
            return;
        }
        self.with_subscription(now, id, |s, ctx| s.handle_response(ctx, what, resp));
    }

    /// A SUBSCRIBE outside any dialog: a subscription to us, for a package we serve (else
    /// 489 with the ones we do, RFC 6665 §4.2.1.1).
    pub(super) fn subscribe_in(&mut self, now: Instant, flow: Flow, tx: TxId, req: Request) {
        let package = req
            .headers()
            .get(HeaderName::Event)
            .and_then(|v| EventHeader::parse(v).ok())
            .map(|e| e.package.to_string());
        let Some(package) = package else {
            self.respond(now, tx, &req, StatusCode::new(400));
            return;
        };
        let mut served = self.config.event_packages.clone();
        if self.config.share_calls && !served.iter().any(|p| p.eq_ignore_ascii_case("dialog")) {
            served.push("dialog".into());
        }
        let group = self.group_membership(&req, &package);
        if group.is_none() && !served.iter().any(|p| p.eq_ignore_ascii_case(&package)) {
            let extra = [(HeaderName::AllowEvents, served.join(", "))];
            let extra = if served.is_empty() {
                &[][..]
            } else {
                &extra[..]
            };
            self.respond_with(now, tx, &req, StatusCode::new(489), extra);
            return;
        }
        let tag = self.ids.tag();
        let seq = self.ids.initial_cseq();
        let dialog = match Dialog::uas(&req, &tag, seq, DialogState::Confirmed) {
            Ok(d) => d,
            Err(e) => {
                self.respond(now, tx, &req, e.status_code());
                return;
            }
        };
        self.next_subscription += 1;
        let id = SubscriptionHandle(self.next_subscription);
        let mut out = VecDeque::new();
        let local = self.local_for(flow.id);
        let mut ctx = Ctx {
            now,
            ids: &mut self.ids,
            config: &self.config,
            local,
            reliable: self.flows.is_reliable(flow.id),
            out: &mut out,
        };
        let sub = SubscribeIn {
            id,
            flow: flow.id,
            tx,
            request: req,
            dialog,
        };
        let s = Subscription::incoming(&mut ctx, sub);
        self.sub_dialogs.insert(s.key().clone(), id);
        self.subscriptions.insert(id, Box::new(s));
        let joined = group.map(|g| self.roster.join(g.group, id, &g.uri, g.display));
        self.run_sub_actions(now, id, out);
        if let Some(joined) = joined {
            self.group_joined(now, id, joined);
            return;
        }
        if self.config.share_calls && package.eq_ignore_ascii_case("dialog") {
            // A fetch (Expires: 0) is over already: nothing to share.
            let _ = self.share_calls(now, id);
        }
    }

    /// A NOTIFY outside any subscription. Voicemail servers (Asterisk's unsolicited MWI)
    /// send `message-summary` so to phones that never subscribed, and desk phones take it:
    /// 200 and [`Event::UnsolicitedNotify`](super::Event::UnsolicitedNotify). Any other
    /// package matches no subscription of ours: 481 (RFC 6665 §4.1.3).
    pub(super) fn unsolicited_notify(&mut self, now: Instant, tx: TxId, req: &Request) {
        let h = req.headers();
        let package = h
            .get(HeaderName::Event)
            .and_then(|v| EventHeader::parse(v).ok())
            .map(|e| e.package.to_string());
        if !package
            .as_deref()
            .is_some_and(|p| p.eq_ignore_ascii_case("message-summary"))
        {
            self.respond(now, tx, req, StatusCode::new(481));
            return;
        }
        self.respond(now, tx, req, StatusCode::new(200));
        let e = super::Event::UnsolicitedNotify {
            from: h.get(HeaderName::From).unwrap_or_default().to_string(),
            package: package.unwrap_or_default(),
            content_type: h
                .get(HeaderName::ContentType)
                .unwrap_or_default()
                .to_string(),
            body: req.body().clone(),
        };
        self.out.push_back(Output::Event(e));
    }

    /// The subscription a request with a To tag belongs to: by Call-ID and our tag, and
    /// by the peer's tag once the dialog is known (a subscriber's first NOTIFY may come
    /// before the 2xx, and makes the dialog).
    pub(super) fn subscription_of(&self, req: &Request) -> Option<SubscriptionHandle> {
        let (call_id, local, remote) = DialogId::parts_of_incoming(req).ok().flatten()?;
        let id = *self.sub_dialogs.get(pair(&(call_id, local)))?;
        let s = self.subscriptions.get(&id)?;
        // A subscriber refuses another fork's NOTIFY itself; a notifier's dialog is known.
        let ours = s
            .dialog()
            .is_some_and(|dialog| dialog.id().remote_tag == remote);
        (s.is_subscriber() || ours).then_some(id)
    }

    /// A request inside subscription `id`'s dialog.
    pub(super) fn sub_request_in(
        &mut self,
        now: Instant,
        id: SubscriptionHandle,
        tx: TxId,
        req: &Request,
    ) {
        self.with_subscription(now, id, |s, ctx| s.handle_request(ctx, tx, req));
    }
}

/// Our retry of a subscription's request needs the next CSeq of its dialog, when it has
/// one.
pub(super) fn next_seq<S>(ua: &mut UserAgent<S>, id: SubscriptionHandle) -> Option<u32> {
    ua.subscriptions
        .get_mut(&id)
        .and_then(|s| s.dialog_mut())
        .map(Dialog::next_seq)
}
