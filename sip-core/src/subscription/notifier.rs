//! The notifier (RFC 6665 §4.2): a SUBSCRIBE for a package the application serves is
//! answered 200 at once and followed by a NOTIFY saying `pending` (202 is deprecated,
//! §8.3.1); the application then sends the state it decides
//! ([`UserAgent::notify`](crate::ua::UserAgent::notify): `active` with a body, or
//! `terminated;reason=rejected`). Each refresh gets its 200 and a NOTIFY with the current
//! state (§4.2.1.2); `Expires: 0`, or no refresh in time, a final `terminated` NOTIFY.

use std::time::Duration;

use bytes::Bytes;

use super::{Ctx, SubRequest, SubState, SubTimer, Subscription, SubscriptionHandle};
use crate::dialog::Dialog;
use crate::message::{Expires, HeaderName, Method, Request, Response, StatusCode};
use crate::transaction::TxId;
use crate::transport::FlowId;
use crate::ua::Event;

/// The longest subscription we grant, and what we grant when none is asked (RFC 6665
/// §4.2.1.1 leaves both to the package; an hour is what presence servers commonly use).
const MAX_EXPIRES: u32 = 3600;

/// A new SUBSCRIBE the user agent took for the application.
pub(crate) struct SubscribeIn {
    pub(crate) id: SubscriptionHandle,
    pub(crate) flow: FlowId,
    pub(crate) tx: TxId,
    pub(crate) request: Request,
    /// The dialog it makes, with our tag.
    pub(crate) dialog: Dialog,
}

/// The interval `req` asks for, within our bounds.
fn granted(req: &Request) -> u32 {
    req.headers()
        .get(HeaderName::Expires)
        .and_then(|v| Expires::parse(v).ok())
        .map_or(MAX_EXPIRES, |e| e.0.min(MAX_EXPIRES))
}

impl Subscription {
    /// The peer's SUBSCRIBE: 200, a `pending` NOTIFY, and the application told.
    pub(crate) fn incoming(ctx: &mut Ctx<'_>, sub: SubscribeIn) -> Self {
        let event = sub
            .request
            .headers()
            .get(HeaderName::Event)
            .unwrap_or_default()
            .to_string();
        let key = (
            sub.dialog.id().call_id.clone(),
            sub.dialog.id().local_tag.clone(),
        );
        let mut s = Subscription::new(sub.id, false, event.clone(), key, sub.flow, sub.request);
        s.dialog = Some(sub.dialog);
        let expires = granted(&s.subscribe);
        s.expires = expires;
        s.answer_subscribe(ctx, sub.tx, expires);
        let header = |name| {
            s.subscribe
                .headers()
                .get(name)
                .unwrap_or_default()
                .to_string()
        };
        let (from, to) = (header(HeaderName::From), header(HeaderName::To));
        let accept = header(HeaderName::Accept);
        ctx.event(Event::SubscriptionRequested {
            subscription: s.id,
            from,
            to,
            package: event,
            accept,
            expires,
        });
        if expires == 0 {
            // A fetch (§4.4.3): one NOTIFY with the state, and over.
            s.send_notify(ctx, SubState::Terminated, Some("timeout"));
            s.end(ctx, Some("timeout".into()), None, None);
        } else {
            s.send_notify(ctx, SubState::Pending, None);
            s.set_timer(ctx, SubTimer::Expiry, ctx.now + secs(expires));
        }
        s
    }

    /// 200 to a SUBSCRIBE (the first or a refresh) granting `expires` seconds.
    fn answer_subscribe(&mut self, ctx: &mut Ctx<'_>, tx: TxId, expires: u32) {
        let req = &self.subscribe;
        let mut resp = Response::from_request(req, StatusCode::new(200));
        if req.headers().to_tag().ok().flatten().is_none() {
            // Our tag: the subscriber's dialog is the one our NOTIFY continues (§4.2.1).
            resp.set_to_tag(&self.key.1);
            // The route set of a dialog-making request comes back in its 2xx (RFC 3261
            // §12.1.1), so the subscriber's refreshes pass the proxies ours did.
            resp.headers_mut()
                .copy_from(req.headers(), HeaderName::RecordRoute);
        }
        let h = resp.headers_mut();
        h.push(HeaderName::Expires, &expires.to_string());
        h.push(HeaderName::Contact, &ctx.local.contact);
        if let Some(server) = &ctx.config.user_agent {
            h.push(HeaderName::Server, server);
        }
        ctx.out.push_back(super::Action::Respond(tx, resp));
    }

    /// A NOTIFY with `state` and the application's last body.
    fn send_notify(&mut self, ctx: &mut Ctx<'_>, state: SubState, reason: Option<&str>) {
        let Some(mut req) = self.in_dialog_request(ctx, Method::Notify) else {
            return;
        };
        let left = self.timer(SubTimer::Expiry).map_or(self.expires, |end| {
            end.saturating_duration_since(ctx.now).as_secs() as u32
        });
        let value = match (state, reason) {
            (SubState::Terminated, Some(r)) => format!("terminated;reason={r}"),
            (SubState::Terminated, None) => "terminated".to_string(),
            (s, _) => format!("{s};expires={left}"),
        };
        req.headers_mut()
            .push(HeaderName::SubscriptionState, &value);
        if let Some((content_type, body)) = &self.body {
            req.set_body(content_type, body.clone());
        }
        self.state = state;
        self.send(ctx, req, SubRequest::Notify);
    }

    /// The application's NOTIFY: `state` (not `terminated`: see
    /// [`Subscription::terminate`]) with a new body, or the last one again.
    pub(crate) fn notify(
        &mut self,
        ctx: &mut Ctx<'_>,
        state: SubState,
        body: Option<(String, Bytes)>,
    ) {
        if body.is_some() {
            self.body = body;
        }
        self.send_notify(ctx, state, None);
    }

    /// Ends the subscription with a final NOTIFY giving `reason` (`rejected`,
    /// `noresource`, `deactivated`…, RFC 6665 §4.2.2).
    pub(crate) fn terminate(&mut self, ctx: &mut Ctx<'_>, reason: &str) {
        self.clear_timer(SubTimer::Expiry);
        self.send_notify(ctx, SubState::Terminated, Some(reason));
        self.end(ctx, Some(reason.to_string()), None, None);
    }

    /// A refresh or an unsubscribe from the subscriber (§4.2.1.2).
    pub(super) fn refresh_in(&mut self, ctx: &mut Ctx<'_>, tx: TxId, req: &Request) {
        if !self.same_event(req) {
            ctx.respond(tx, req, 489);
            return;
        }
        let expires = granted(req);
        self.subscribe = req.clone();
        self.answer_subscribe(ctx, tx, expires);
        if expires == 0 {
            self.clear_timer(SubTimer::Expiry);
            self.send_notify(ctx, SubState::Terminated, Some("timeout"));
            self.end(ctx, Some("unsubscribed".into()), None, None);
            return;
        }
        self.expires = expires;
        self.set_timer(ctx, SubTimer::Expiry, ctx.now + secs(expires));
        let state = self.state;
        self.send_notify(ctx, state, None);
    }

    /// No refresh came in time (§4.2.2).
    pub(super) fn expired(&mut self, ctx: &mut Ctx<'_>) {
        self.send_notify(ctx, SubState::Terminated, Some("timeout"));
        self.end(ctx, Some("timeout".into()), None, None);
    }

    /// The subscriber's answer to our NOTIFY: a 481 or any failure ends the subscription
    /// (§4.2.2); a 2xx is as it should be.
    pub(super) fn notify_answered(&mut self, ctx: &mut Ctx<'_>, resp: &Response) {
        let code = resp.status().code();
        if code >= 300 {
            self.clear_timer(SubTimer::Expiry);
            self.end(ctx, None, None, Some(code));
        }
    }
}

fn secs(s: u32) -> Duration {
    Duration::from_secs(u64::from(s))
}
