//! Re-INVITEs (RFC 3261 §14): hold and unhold as RFC 6337 describes them, both ways, with
//! rollback when refused, glare (491 and the §14.1 waits), and the 500 with Retry-After of
//! §14.2.

use std::time::Duration;

use bytes::Bytes;

use super::{CallRequest, CallTimer, Ctx, Phase, Session, uas::warning};
use crate::message::{HeaderName, Method, Request, Response, RetryAfter, StatusCode};
use crate::session::{Direction, HoldState, SdpHandler, sdp};
use crate::transaction::TxId;
use crate::ua::{Event, answer};

/// The longest Retry-After (seconds) after which a refused re-INVITE is tried again by
/// itself; a longer one fails the renegotiation instead.
const MAX_RETRY_AFTER: u32 = 32;

impl<S: SdpHandler> Session<S> {
    /// Wants the peer held (`true`) or not. While an offer is out (ours or the peer's),
    /// another request of ours is in flight or a retry is scheduled, the wish is
    /// remembered and goes out after.
    pub(crate) fn set_hold(&mut self, ctx: &mut Ctx<'_>, local: bool) {
        self.want_hold = local;
        self.pump(ctx);
    }

    /// RFC 3261 §14.1: the Call-ID's owner (the caller) waits 2.1–4 s, the other 0–2 s.
    fn schedule_glare(&mut self, ctx: &mut Ctx<'_>) {
        let ms = if self.caller {
            2100 + ctx.ids.below(1901)
        } else {
            ctx.ids.below(2001)
        };
        let at = ctx.now + Duration::from_millis(ms);
        self.set_timer(ctx, CallTimer::Glare, at);
    }

    pub(super) fn send_reinvite(&mut self, ctx: &mut Ctx<'_>) {
        // Whatever it was for, this re-INVITE is also the refresh that was due.
        self.refresh_due = false;
        self.retarget = false;
        let target = HoldState {
            local: self.want_hold,
            remote: self.hold.remote,
        };
        let Some(sdp) = self.sdp.as_mut() else {
            return;
        };
        let offer = match sdp.create_offer(target.offer()) {
            Ok(o) => o,
            Err(_) => {
                self.want_hold = self.hold.local;
                ctx.event(Event::RenegotiationFailed {
                    call: self.id,
                    status: 488,
                });
                return;
            }
        };
        self.reinvite = Some((None, target));
        let mut req = self.in_dialog_request(ctx, Method::Invite);
        let h = req.headers_mut();
        h.push(HeaderName::Allow, answer::ALLOW);
        h.push(HeaderName::Supported, answer::SUPPORTED);
        // Any re-INVITE of ours refreshes the session too (RFC 4028 §7.4).
        self.refresh_headers(h, ctx.config);
        req.set_body("application/sdp", offer);
        ctx.send(req, CallRequest::Reinvite);
    }

    pub(super) fn reinvite_answered(&mut self, ctx: &mut Ctx<'_>, resp: &Response) {
        let code = resp.status().code();
        if code < 200 {
            return;
        }
        let Some((_, target)) = self.reinvite.take() else {
            if code < 300 {
                self.stray_2xx(ctx, resp);
            }
            return;
        };
        if code >= 300 {
            if let Some(sdp) = self.sdp.as_mut() {
                sdp.rollback();
            }
            let retry_after = resp
                .headers()
                .get(HeaderName::RetryAfter)
                .and_then(|v| RetryAfter::parse(v).ok())
                .map(|r| r.seconds);
            match code {
                491 => self.schedule_glare(ctx),
                // §14.2: the peer was still busy with another INVITE; try once it is not.
                500 | 503 if retry_after.is_some_and(|s| s <= MAX_RETRY_AFTER) => {
                    let secs = u64::from(retry_after.unwrap_or_default());
                    let at = ctx.now + Duration::from_secs(secs) + Duration::from_millis(1);
                    self.set_timer(ctx, CallTimer::Glare, at);
                }
                408 | 481 => self.in_dialog_gone(ctx, code),
                _ => {
                    self.want_hold = self.hold.local;
                    ctx.event(Event::RenegotiationFailed {
                        call: self.id,
                        status: code,
                    });
                }
            }
            return;
        }
        let seq = resp.cseq().map(|c| c.seq).unwrap_or_default();
        let Some(dialog) = self.dialog.as_mut() else {
            return;
        };
        let _ = dialog.handle_response(&Method::Invite, resp);
        let ack = dialog.ack(seq, &ctx.local, ctx.ids).to_bytes();
        ctx.transmit(ack.clone());
        self.ack = Some((seq, ack));
        if !self.take_answer(ctx, resp.body()) {
            return;
        }
        self.timer_granted(ctx, resp);
        let before = self.hold;
        self.hold.local = target.local;
        if self.hold != before {
            ctx.event(Event::HoldChanged {
                call: self.id,
                local: self.hold.local,
                remote: self.hold.remote,
            });
        }
    }

    /// The peer's re-INVITE: hold, unhold, or a refresh (RFC 6337, RFC 3261 §14.2).
    pub(super) fn reinvite_in(&mut self, ctx: &mut Ctx<'_>, tx: TxId, req: &Request) {
        // §14.2 asks for a 500 only while the previous INVITE has no final response. A 2xx
        // of ours still waiting for its ACK does not count: the peer may not start an INVITE
        // while its previous one is in progress (§14.1), and a timed-out re-INVITE ends the
        // dialog, so this re-INVITE proves our 2xx arrived and stands in for an ACK that was
        // lost or is late. Not when our 2xx carried an offer: its answer is in that ACK, so
        // the 500 stays until the ACK comes.
        let implied_ack = self.phase == Phase::Confirmed
            && self.accepting.as_ref().is_some_and(|a| !a.offer_in_2xx);
        if implied_ack {
            self.acked();
        }
        self.answer_reinvite(ctx, tx, req);
        if implied_ack {
            // As after an ACK: what waited for the exchange may go, unless the new one
            // is under way (then its ACK pumps).
            self.pump(ctx);
        }
    }

    fn answer_reinvite(&mut self, ctx: &mut Ctx<'_>, tx: TxId, req: &Request) {
        if self.phase != Phase::Confirmed || self.accepting.is_some() {
            // §14.2: still answering the previous INVITE.
            let secs = ctx.ids.below(11);
            let extra = [(HeaderName::RetryAfter, secs.to_string())];
            ctx.respond_with(tx, req, StatusCode::new(500), &extra);
            return;
        }
        if self.reinvite.is_some() {
            ctx.respond(tx, req, 491);
            return;
        }
        if let Some(min) = super::too_brief(req, ctx.config) {
            let extra = [(HeaderName::MinSe, min.to_string())];
            ctx.respond_with(tx, req, StatusCode::new(422), &extra);
            return;
        }
        let hold = self.hold;
        let offer = req.body();
        let (new_hold, body) = if offer.is_empty() {
            let body = self.sdp.as_mut().map(|s| s.create_offer(hold.offer()));
            match body {
                Some(Ok(b)) => (hold, b),
                Some(Err(e)) => {
                    let extra = [(HeaderName::Warning, warning(&e))];
                    ctx.respond_with(tx, req, StatusCode::new(488), &extra);
                    return;
                }
                None => {
                    ctx.respond(tx, req, 488);
                    return;
                }
            }
        } else {
            match self.answer_offer(ctx, tx, req) {
                Some(answered) => answered,
                None => return,
            }
        };
        self.peer_reinvite = Some(Box::new((tx, req.clone())));
        self.hold = new_hold;
        self.accept_invite(ctx, body, offer.is_empty(), &[]);
        if new_hold != hold {
            ctx.event(Event::HoldChanged {
                call: self.id,
                local: new_hold.local,
                remote: new_hold.remote,
            });
        }
    }

    /// Our answer to the offer in the peer's re-INVITE or UPDATE, and the hold state it
    /// brings; `None` when it is refused with 488 (the call goes on as it was, RFC 6337
    /// §3.3).
    pub(super) fn answer_offer(
        &mut self,
        ctx: &mut Ctx<'_>,
        tx: TxId,
        req: &Request,
    ) -> Option<(HoldState, Bytes)> {
        let offer = req.body();
        let dir =
            sdp::media_direction(&String::from_utf8_lossy(offer)).unwrap_or(Direction::Inactive);
        let new_hold = self.hold.with_remote_offer(dir);
        let answer = self
            .sdp
            .as_mut()
            .map(|s| s.accept_offer(offer, new_hold.answer(dir)));
        match answer {
            Some(Ok(b)) => Some((new_hold, b)),
            Some(Err(e)) => {
                let extra = [(HeaderName::Warning, warning(&e))];
                ctx.respond_with(tx, req, StatusCode::new(488), &extra);
                None
            }
            None => {
                ctx.respond(tx, req, 488);
                None
            }
        }
    }
}
