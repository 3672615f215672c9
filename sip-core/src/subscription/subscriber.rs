//! The subscriber (RFC 6665 §4.1): our SUBSCRIBE, the dialog its 2xx or its first NOTIFY
//! makes (whichever comes first, §4.1.2.4), the NOTIFYs, refresh between half and
//! seven-tenths of the granted interval (jittered, as registrations are), and
//! unsubscribing with `Expires: 0`. When the notifier ends a subscription saying it may
//! be made again (`deactivated`, `timeout` at once; `probation`, `giveup` after its
//! retry-after, RFC 6665 §4.1.3), a new one starts by itself, as desk phones do, at most
//! [`MAX_RESTARTS`] times in a row without a 2xx between them.

use std::time::Duration;

use super::{Ctx, SubRequest, SubState, SubTimer, Subscription, SubscriptionHandle};
use crate::dialog::{Dialog, RequestHead};
use crate::message::{
    Expires, HeaderName, Method, Request, Response, RetryAfter, SubscriptionState,
};
use crate::transaction::TxId;
use crate::transport::FlowId;
use crate::ua::{Event, SubscribeOptions};

/// How many new subscriptions may follow each other without a 2xx between them.
const MAX_RESTARTS: u8 = 3;

/// What the user agent settled before a SUBSCRIBE goes out.
pub(crate) struct Outgoing<'a> {
    pub(crate) id: SubscriptionHandle,
    pub(crate) flow: FlowId,
    /// The Request-URI (and To).
    pub(crate) uri: &'a str,
    /// Our From without its tag.
    pub(crate) from: String,
    pub(crate) options: &'a SubscribeOptions,
}

impl Subscription {
    /// Builds our SUBSCRIBE and the subscription that sends it.
    pub(crate) fn outgoing(ctx: &mut Ctx<'_>, sub: Outgoing<'_>) -> Self {
        let o = sub.options;
        let tag = ctx.ids.tag();
        let call_id = ctx.ids.call_id();
        let from = format!("{};tag={tag}", sub.from);
        let mut req = RequestHead {
            method: Method::Subscribe,
            uri: sub.uri,
            routes: &[],
            from: &from,
            to: &format!("<{}>", sub.uri),
            call_id: &call_id,
            cseq: ctx.ids.initial_cseq(),
        }
        .build(&ctx.local, ctx.ids);
        let h = req.headers_mut();
        h.push(HeaderName::Contact, &ctx.local.contact);
        h.push(HeaderName::Event, &o.event);
        if !o.accept.is_empty() {
            h.push(HeaderName::Accept, &o.accept.join(", "));
        }
        h.push(HeaderName::Expires, &o.expires.to_string());
        h.push(HeaderName::Allow, crate::ua::answer::ALLOW);
        if let Some(ua) = &ctx.config.user_agent {
            h.push(HeaderName::UserAgent, ua);
        }
        crate::ua::add_headers(h, &ctx.config.extra_headers);
        crate::ua::add_headers(h, &o.headers);
        let mut s = Subscription::new(
            sub.id,
            true,
            o.event.clone(),
            (call_id, tag),
            sub.flow,
            req.clone(),
        );
        s.expires = o.expires;
        s.first = Some(Box::new(req.clone()));
        s.send(ctx, req, SubRequest::Subscribe);
        s
    }

    /// A SUBSCRIBE of ours inside the dialog asking for `expires` seconds; before the
    /// dialog exists, the first SUBSCRIBE again (next CSeq, new branch).
    fn resubscribe(&mut self, ctx: &mut Ctx<'_>, expires: u32) {
        let req = match self.in_dialog_request(ctx, Method::Subscribe) {
            Some(mut req) => {
                req.headers_mut()
                    .push(HeaderName::Expires, &expires.to_string());
                if let Some(accept) = self.subscribe.headers().get(HeaderName::Accept) {
                    let accept = accept.to_string();
                    req.headers_mut().push(HeaderName::Accept, &accept);
                }
                req
            }
            None => {
                // Out of any dialog: the first SUBSCRIBE again, with the next CSeq.
                let mut req = self
                    .first
                    .as_deref()
                    .cloned()
                    .unwrap_or_else(|| self.subscribe.clone());
                let seq = self.subscribe.cseq().map(|c| c.seq).unwrap_or_default();
                crate::dialog::rebranch(&mut req, seq.wrapping_add(1), ctx.ids);
                req.headers_mut()
                    .set(HeaderName::Expires, &expires.to_string());
                req
            }
        };
        self.subscribe = req.clone();
        self.send(ctx, req, SubRequest::Subscribe);
    }

    /// The notifier ended the subscription with `reason`: whether a new one starts (and
    /// when), RFC 6665 §4.1.3.
    fn restart(
        &mut self,
        ctx: &mut Ctx<'_>,
        reason: Option<&str>,
        retry_after: Option<u32>,
    ) -> bool {
        let wait = match reason {
            Some(r)
                if r.eq_ignore_ascii_case("deactivated") || r.eq_ignore_ascii_case("timeout") =>
            {
                Some(0)
            }
            Some(r) if r.eq_ignore_ascii_case("probation") || r.eq_ignore_ascii_case("giveup") => {
                retry_after
            }
            _ => None,
        };
        let Some(secs) = wait.filter(|_| !self.unsubscribing && self.restarts < MAX_RESTARTS)
        else {
            return false;
        };
        self.restarts += 1;
        self.dialog = None;
        self.state = SubState::Pending;
        self.clear_timer(SubTimer::Expiry);
        self.clear_timer(SubTimer::NotifyWait);
        let at = ctx.now + Duration::from_secs(u64::from(secs));
        self.set_timer(ctx, SubTimer::Refresh, at);
        true
    }

    /// The refresh is due.
    pub(super) fn refresh(&mut self, ctx: &mut Ctx<'_>) {
        if !self.unsubscribing {
            self.resubscribe(ctx, self.expires);
        }
    }

    /// Ends the subscription: `Expires: 0`, then the notifier's final NOTIFY (or, without
    /// one, 64·T1) ends it. Before any answer, it just ends.
    pub(crate) fn unsubscribe(&mut self, ctx: &mut Ctx<'_>) {
        if self.unsubscribing {
            return;
        }
        self.unsubscribing = true;
        self.clear_timer(SubTimer::Refresh);
        if self.dialog.is_none() {
            self.end(ctx, Some("unsubscribed".into()), None, None);
            return;
        }
        self.resubscribe(ctx, 0);
        let at = ctx.now + ctx.config.timers.t1() * 64;
        self.set_timer(ctx, SubTimer::NotifyWait, at);
    }

    /// Refreshes between 50 % and 70 % of `granted` seconds from now, and expires at its
    /// end unless a refresh gets through.
    fn schedule(&mut self, ctx: &mut Ctx<'_>, granted: u32) {
        let ms = u64::from(granted) * 1000;
        let at = ms / 2 + ctx.ids.below(ms / 5 + 1);
        self.set_timer(ctx, SubTimer::Refresh, ctx.now + Duration::from_millis(at));
        self.set_timer(ctx, SubTimer::Expiry, ctx.now + Duration::from_millis(ms));
    }

    /// The final response to our SUBSCRIBE.
    pub(super) fn subscribe_answered(&mut self, ctx: &mut Ctx<'_>, resp: &Response) {
        let code = resp.status().code();
        if (200..300).contains(&code) {
            self.restarts = 0;
            if self.dialog.is_none() {
                match Dialog::uac(&self.subscribe, resp) {
                    Ok(d) => self.dialog = Some(d),
                    Err(_) => {
                        self.end(ctx, None, None, Some(code));
                        return;
                    }
                }
            } else if let Some(d) = self.dialog.as_mut() {
                let _ = d.handle_response(&Method::Subscribe, resp);
                let _ = d.route_from_2xx(resp);
            }
            if self.unsubscribing {
                return;
            }
            let granted = resp
                .headers()
                .get(HeaderName::Expires)
                .and_then(|v| Expires::parse(v).ok())
                .map_or(self.expires, |e| e.0.min(self.expires));
            self.schedule(ctx, granted);
            if self.state == SubState::Pending && self.timer(SubTimer::NotifyWait).is_none() {
                let at = ctx.now + ctx.config.timers.t1() * 64;
                self.set_timer(ctx, SubTimer::NotifyWait, at);
            }
            return;
        }
        if self.unsubscribing {
            self.end(ctx, None, None, Some(code));
            return;
        }
        let retry_after = resp
            .headers()
            .get(HeaderName::RetryAfter)
            .and_then(|v| RetryAfter::parse(v).ok())
            .map(|r| r.seconds);
        match code {
            // A refresh the notifier no longer knows, or a first SUBSCRIBE refused (489:
            // no such package there, §8.3.2): over.
            _ if self.dialog.is_none() || code == 481 || code == 489 => {
                self.end(ctx, None, retry_after, Some(code));
            }
            // A refresh that failed otherwise: the subscription lasts until it expires;
            // try once more halfway there.
            _ => {
                if let Some(end) = self.timer(SubTimer::Expiry) {
                    let left = end.saturating_duration_since(ctx.now);
                    self.set_timer(ctx, SubTimer::Refresh, ctx.now + left / 2);
                }
            }
        }
    }

    /// The notifier's NOTIFY (§4.1.3).
    pub(super) fn notify_in(&mut self, ctx: &mut Ctx<'_>, tx: TxId, req: &Request) {
        if !self.same_event(req) {
            ctx.respond(tx, req, 489);
            return;
        }
        let h = req.headers();
        let Some(sub) = h
            .get(HeaderName::SubscriptionState)
            .and_then(|v| SubscriptionState::parse(v).ok())
        else {
            ctx.respond(tx, req, 400);
            return;
        };
        if self.dialog.is_none() {
            // Before the 2xx (§4.1.2.4): this NOTIFY makes the dialog.
            match Dialog::from_notify(&self.subscribe, req) {
                Ok(d) => self.dialog = Some(d),
                Err(e) => {
                    ctx.respond(tx, req, e.status());
                    return;
                }
            }
        }
        ctx.respond(tx, req, 200);
        self.clear_timer(SubTimer::NotifyWait);
        let state = SubState::from_token(sub.state);
        self.state = state;
        let content_type = h
            .get(HeaderName::ContentType)
            .unwrap_or_default()
            .to_string();
        ctx.event(Event::Notified {
            subscription: self.id,
            state,
            content_type,
            body: req.body().clone(),
        });
        if state == SubState::Terminated {
            if self.restart(ctx, sub.reason, sub.retry_after) {
                return;
            }
            let reason = sub.reason.map(str::to_string);
            self.end(ctx, reason, sub.retry_after, None);
            return;
        }
        // The notifier may shorten the interval (§4.1.3): refresh by its count.
        if let Some(left) = sub.expires.filter(|_| !self.unsubscribing)
            && self
                .timer(SubTimer::Expiry)
                .is_none_or(|end| ctx.now + Duration::from_secs(u64::from(left)) < end)
        {
            self.schedule(ctx, left);
        }
    }
}
