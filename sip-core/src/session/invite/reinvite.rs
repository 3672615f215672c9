//! Offers after the first (RFC 3264 §8): ours, by re-INVITE (RFC 3261 §14) or UPDATE (RFC
//! 3311), for hold and unhold as RFC 6337 describes them or for a renegotiation the
//! application asked for; and the peer's re-INVITE. Refused offers roll back; glare gets
//! 491 and the §14.1 waits, an INVITE exchange still open the 500 with Retry-After of
//! §14.2.

use std::time::Duration;

use bytes::Bytes;

use super::{CallRequest, CallTimer, Ctx, Phase, Session, uas::warning};
use crate::message::{HeaderName, Method, Request, Response, RetryAfter, StatusCode};
use crate::session::{Direction, HoldState, Originator, SdpHandler, sdp};
use crate::transaction::TxId;
use crate::ua::{Event, OfferMethod, UaError, answer};

/// The longest Retry-After (seconds) after which a refused re-INVITE is tried again by
/// itself; a longer one fails the renegotiation instead.
const MAX_RETRY_AFTER: u32 = 32;

/// An offer of ours waiting for its answer.
#[derive(Debug, Clone, Copy)]
pub(super) struct OurOffer {
    /// Its re-INVITE's client transaction (an UPDATE's needs no tracking).
    pub(super) tx: Option<TxId>,
    /// The hold state it proposes.
    hold: HoldState,
    /// The application asked for it ([`Session::renegotiate`]): said how, so a glare
    /// sends it again the same way, and [`Event::Renegotiated`] follows its acceptance.
    renegotiation: Option<OfferMethod>,
}

impl<S: SdpHandler> Session<S> {
    /// Wants the peer held (`true`) or not. While an offer is out (ours or the peer's),
    /// another request of ours is in flight or a retry is scheduled, the wish is
    /// remembered and goes out after.
    pub(crate) fn set_hold(&mut self, ctx: &mut Ctx<'_>, local: bool) {
        self.want_hold = local;
        self.pump(ctx);
    }

    /// Sends a new offer from the handler (which the application changed: video added, a
    /// codec dropped, an ICE restart): by re-INVITE, or by UPDATE where the peer allows it.
    /// It waits its turn like a hold. In an early dialog only UPDATE may carry it (RFC
    /// 3311 §5.1), once the first offer/answer is done there reliably.
    pub(crate) fn renegotiate(
        &mut self,
        ctx: &mut Ctx<'_>,
        method: OfferMethod,
    ) -> Result<(), UaError> {
        if self.phase != Phase::Confirmed
            && (method != OfferMethod::Update || !self.early_answered())
        {
            return Err(UaError::InvalidState(
                "before the answer, only an UPDATE may renegotiate, once a reliable \
                 provisional completed the first offer and answer and the peer allows UPDATE",
            ));
        }
        self.want_reoffer = Some(method);
        self.pump(ctx);
        Ok(())
    }

    /// Whether the first offer/answer is complete in the early dialog, reliably, and the
    /// peer allows UPDATE there.
    fn early_answered(&self) -> bool {
        let reliable_answer = if self.caller {
            self.phase == Phase::Calling && self.answer_taken && self.pracks.any_seen()
        } else {
            self.phase == Phase::Ringing
                && self.early_answer.is_some()
                && self.provisionals.are_reliable()
        };
        reliable_answer && self.refresh.peer_allows_update && self.dialog.is_some()
    }

    /// Whether an UPDATE with an offer may go in the early dialog now (RFC 3311 §5.1): as
    /// callee, once the reliable provisional with our answer has been PRACKed.
    pub(super) fn early_offer_allowed(&self) -> bool {
        self.early_answered() && (self.caller || !self.provisionals.awaiting_prack())
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

    /// Sends our offer, with the hold state the application wants, by `method` (an UPDATE
    /// only where the peer allows it); `renegotiation` when the application asked for it.
    pub(super) fn send_offer(
        &mut self,
        ctx: &mut Ctx<'_>,
        method: OfferMethod,
        renegotiation: bool,
    ) {
        // Whatever it was for, this offer is also the refresh that was due, and a target
        // refresh (RFC 4028 §7.4, RFC 3311 §5.1).
        self.refresh.sent();
        let method = if self.refresh.peer_allows_update {
            method
        } else {
            OfferMethod::Invite
        };
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
                self.offer_refused(ctx, 488);
                return;
            }
        };
        self.offer = Some(OurOffer {
            tx: None,
            hold: target,
            renegotiation: renegotiation.then_some(method),
        });
        let (sip_method, what) = match method {
            OfferMethod::Invite => (Method::Invite, CallRequest::Reinvite),
            OfferMethod::Update => (Method::Update, CallRequest::UpdateOffer),
        };
        let mut req = self.in_dialog_request(ctx, sip_method);
        let h = req.headers_mut();
        h.push(HeaderName::Allow, answer::ALLOW);
        h.push(HeaderName::Supported, answer::SUPPORTED);
        self.refresh.headers(h, ctx.config);
        req.set_body("application/sdp", offer);
        ctx.send(req, what);
    }

    /// Our offer failed for good: the call goes on as it was, and the application hears.
    fn offer_refused(&mut self, ctx: &mut Ctx<'_>, status: u16) {
        self.want_hold = self.hold.local;
        ctx.event(Event::RenegotiationFailed {
            call: self.id,
            status,
        });
    }

    /// The final response to our re-INVITE: a 2xx is ACKed, then the offer is settled.
    pub(super) fn reinvite_answered(&mut self, ctx: &mut Ctx<'_>, resp: &Response) {
        let code = resp.status().code();
        if code < 200 {
            return;
        }
        if self.offer.is_none() {
            if code < 300 {
                self.stray_2xx(ctx, resp);
            }
            return;
        }
        if code < 300 {
            let seq = resp.cseq().map(|c| c.seq).unwrap_or_default();
            let Some(dialog) = self.dialog.as_mut() else {
                return;
            };
            let _ = dialog.handle_response(&Method::Invite, resp);
            let ack = dialog.ack(seq, &ctx.local, ctx.ids).to_bytes();
            self.ack_2xx(ctx, seq, ack);
        }
        self.offer_answered(ctx, resp);
    }

    /// The final response to our offer, in a re-INVITE's or an UPDATE's response.
    pub(super) fn offer_answered(&mut self, ctx: &mut Ctx<'_>, resp: &Response) {
        let code = resp.status().code();
        let Some(offer) = self.offer.take() else {
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
            // What is tried again goes as it went; a hold is retried by itself, since
            // `want_hold` still differs.
            let again = offer.renegotiation;
            match code {
                491 => {
                    self.want_reoffer = self.want_reoffer.or(again);
                    self.schedule_glare(ctx);
                }
                // §14.2: the peer was still busy with another INVITE; try once it is not.
                500 | 503 if retry_after.is_some_and(|s| s <= MAX_RETRY_AFTER) => {
                    self.want_reoffer = self.want_reoffer.or(again);
                    let secs = u64::from(retry_after.unwrap_or_default());
                    let at = ctx.now + Duration::from_secs(secs) + Duration::from_millis(1);
                    self.set_timer(ctx, CallTimer::Glare, at);
                }
                408 | 481 => self.in_dialog_gone(ctx, code),
                // The peer cannot take UPDATE after all (RFC 3311 §5.1): by re-INVITE.
                405 | 501 if again == Some(OfferMethod::Update) => {
                    self.refresh.peer_allows_update = false;
                    self.want_reoffer = Some(OfferMethod::Invite);
                }
                _ => self.offer_refused(ctx, code),
            }
            return;
        }
        if !self.take_answer(ctx, resp.body()) {
            return;
        }
        self.timer_granted(ctx, resp);
        let before = self.hold;
        self.hold.local = offer.hold.local;
        if self.hold != before {
            ctx.event(Event::HoldChanged {
                call: self.id,
                local: self.hold.local,
                remote: self.hold.remote,
            });
        }
        if offer.renegotiation.is_some() {
            ctx.event(Event::Renegotiated {
                call: self.id,
                originator: Originator::Local,
            });
        }
    }

    /// The peer's re-INVITE: hold, unhold, a refresh, or new media (RFC 6337, RFC 3261
    /// §14.2).
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
        if self.phase != Phase::Confirmed || self.accepting.is_some() || self.asked.is_some() {
            // §14.2: still answering the previous INVITE (or offer).
            let secs = ctx.ids.below(11);
            let extra = [(HeaderName::RetryAfter, secs.to_string())];
            ctx.respond_with(tx, req, StatusCode::new(500), &extra);
            return;
        }
        if self.offer.is_some() {
            ctx.respond(tx, req, 491);
            return;
        }
        if let Some(min) = super::too_brief(req, ctx.config) {
            let extra = [(HeaderName::MinSe, min.to_string())];
            ctx.respond_with(tx, req, StatusCode::new(422), &extra);
            return;
        }
        if self.ask_first(ctx, tx, req) {
            return;
        }
        self.take_reinvite(ctx, tx, req);
    }

    /// Answers the peer's re-INVITE with our answer to its offer (or our offer, when it
    /// has none).
    pub(super) fn take_reinvite(&mut self, ctx: &mut Ctx<'_>, tx: TxId, req: &Request) {
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
    /// §3.3). An offer that changes the media, not just its direction, is reported as
    /// [`Event::Renegotiated`] once answered.
    pub(super) fn answer_offer(
        &mut self,
        ctx: &mut Ctx<'_>,
        tx: TxId,
        req: &Request,
    ) -> Option<(HoldState, Bytes)> {
        let offer = req.body();
        let text = sdp::text(offer);
        let dir = sdp::media_direction(&text).unwrap_or(Direction::Inactive);
        let new_hold = self.hold.with_remote_offer(dir);
        let answer = self
            .sdp
            .as_mut()
            .map(|s| s.accept_offer(offer, new_hold.answer(dir)));
        match answer {
            Some(Ok(b)) => {
                if self.remember_remote(&text) {
                    ctx.event(Event::Renegotiated {
                        call: self.id,
                        originator: Originator::Remote,
                    });
                }
                Some((new_hold, b))
            }
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
