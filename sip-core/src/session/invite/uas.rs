//! The callee's side (RFC 3261 §13.3): the peer's INVITE, ringing, our answer and its
//! retransmission until the ACK (§13.3.1.4), refusals, and the peer's CANCEL (§9.2).

use bytes::Bytes;
use smol_str::SmolStr;

use super::{
    Accepting, Action, CallTimer, Ctx, Phase, Session, common_headers, prack, reason_header,
};
use crate::dialog::Dialog;
use crate::message::{HeaderName, Request, Response, StatusCode};
use crate::session::{
    CallEnd, CallHandle, Direction, EndCause, Originator, SdpError, SdpHandler, sdp,
};
use crate::transaction::TxId;
use crate::transport::FlowId;
use crate::ua::add_headers;

/// Our 2xx to the peer's INVITE as the application gave it, held while a reliable
/// provisional waits for its PRACK.
#[derive(Debug)]
pub(super) struct Final2xx {
    body: Bytes,
    /// The INVITE had no offer: this is ours, and the answer comes in the ACK.
    offer_in_2xx: bool,
    headers: Vec<(String, String)>,
}

/// A new INVITE the user agent took for a call.
pub(crate) struct Incoming {
    pub(crate) id: CallHandle,
    pub(crate) flow: FlowId,
    /// Its server transaction.
    pub(crate) tx: TxId,
    pub(crate) invite: Request,
    /// The early dialog the user agent made of it, with our tag.
    pub(crate) dialog: Dialog,
    /// Call-ID and the peer's From tag.
    pub(crate) remote_key: (SmolStr, SmolStr),
}

impl<S: SdpHandler> Session<S> {
    /// The session of the peer's new INVITE: it rings (180) and waits for the application
    /// within the configured time.
    pub(crate) fn incoming(ctx: &mut Ctx<'_>, call: Incoming) -> Self {
        let tag = call.dialog.id().local_tag.clone();
        let key = (call.remote_key.0.clone(), tag);
        let remote = super::remote_of(call.invite.headers(), HeaderName::From);
        let reliable = prack::wanted(&call.invite, ctx.config.reliable_provisionals);
        let mut session = Session::new(call.id, false, None, call.flow, call.invite, key, ctx.now);
        session.invite_tx = Some(call.tx);
        session.remote = remote;
        session.remote_key = Some(call.remote_key);
        session.dialog = Some(call.dialog);
        if let Some(invite) = session.invite.as_deref() {
            session.refresh.allows(invite.headers());
        }
        // RFC 3262 §3: the first RSeq is random, below 2**31.
        let first_rseq = 1 + ctx.ids.below((1 << 31) - 2) as u32;
        session.provisionals = prack::Provisionals::new(reliable, first_rseq);
        session.provisional(ctx, StatusCode::new(180), None);
        let at = ctx.now + ctx.config.no_answer_timeout;
        session.set_timer(ctx, CallTimer::NoAnswer, at);
        session
    }

    /// Answers the ringing call with `sdp` producing our answer (or our offer, when the
    /// INVITE had none). An offer it cannot take is refused with 488 and ends the call. The
    /// 2xx waits for the PRACK of a reliable provisional still unacknowledged.
    /// `headers` (checked by the user agent) go on the 2xx.
    pub(crate) fn answer(
        &mut self,
        ctx: &mut Ctx<'_>,
        mut sdp: S,
        headers: Vec<(String, String)>,
    ) -> Result<(), SdpError> {
        let offer_in_2xx = !self.has_offer();
        let body = self.describe(ctx, &mut sdp)?;
        self.sdp = Some(sdp);
        self.answer_with(
            ctx,
            Final2xx {
                body,
                offer_in_2xx,
                headers,
            },
        );
        Ok(())
    }

    /// Answers a call that had early media ([`Session::progress`]): the 2xx repeats the
    /// answer its 183 carried.
    pub(crate) fn accept(&mut self, ctx: &mut Ctx<'_>, headers: Vec<(String, String)>) {
        if let Some(body) = self.early_answer.clone() {
            let answer = Final2xx {
                body,
                offer_in_2xx: false,
                headers,
            };
            self.answer_with(ctx, answer);
        }
    }

    /// 183 Session Progress; with `sdp`, it carries our answer to the INVITE's offer and
    /// media may flow before the call is answered (early media, RFC 3261 §13.3.1.1). An
    /// offer `sdp` cannot take is refused with 488 and ends the call.
    pub(crate) fn progress(&mut self, ctx: &mut Ctx<'_>, sdp: Option<S>) -> Result<(), SdpError> {
        let body = match sdp {
            Some(mut sdp) => {
                let body = self.describe(ctx, &mut sdp)?;
                self.sdp = Some(sdp);
                self.early_answer = Some(body.clone());
                Some(body)
            }
            None => None,
        };
        self.provisional(ctx, StatusCode::new(183), body);
        Ok(())
    }

    /// Whether the application answered and the 2xx waits for a PRACK.
    pub(crate) fn is_answering(&self) -> bool {
        self.provisionals.holds_2xx()
    }

    /// Whether a 183 carried our answer already: the call is answered with
    /// [`Session::accept`].
    pub(crate) fn has_early_answer(&self) -> bool {
        self.early_answer.is_some()
    }

    /// Whether the peer's INVITE carried an offer.
    pub(crate) fn has_offer(&self) -> bool {
        self.invite().is_some_and(|i| !i.body().is_empty())
    }

    /// Our answer to the INVITE's offer from `sdp` (or our offer, when it had none); when
    /// `sdp` cannot take the offer, the INVITE is refused with 488 and the call ends.
    fn describe(&mut self, ctx: &mut Ctx<'_>, sdp: &mut S) -> Result<Bytes, SdpError> {
        let offer = self.invite().map(|i| i.body().clone()).unwrap_or_default();
        let hold = self.hold;
        let body = if offer.is_empty() {
            sdp.create_offer(hold.offer())
        } else {
            let text = sdp::text(&offer);
            let dir = sdp::media_direction(&text).unwrap_or(Direction::Inactive);
            let hold = hold.with_remote_offer(dir);
            sdp.accept_offer(&offer, hold.answer(dir)).inspect(|_| {
                self.hold = hold;
                self.remember_remote(&text);
            })
        };
        body.inspect_err(|e| {
            self.refuse_offer(ctx, e);
            let end = CallEnd::new(EndCause::IncompatibleSdp, Originator::System).with_status(488);
            self.end(ctx, Some(end));
        })
    }

    /// The application answered: the 2xx now, or once the outstanding reliable provisional
    /// is PRACKed.
    fn answer_with(&mut self, ctx: &mut Ctx<'_>, answer: Final2xx) {
        self.clear_timer(CallTimer::NoAnswer);
        if self.provisionals.awaiting_prack() {
            self.provisionals.hold_2xx(answer);
        } else {
            self.confirm(ctx, answer);
        }
    }

    /// Sends our 2xx: the dialog is confirmed and the application told.
    pub(super) fn confirm(&mut self, ctx: &mut Ctx<'_>, answer: Final2xx) {
        self.phase = Phase::Confirmed;
        if let Some(d) = self.dialog.as_mut() {
            d.confirm();
        }
        self.accept_invite(ctx, answer.body, answer.offer_in_2xx, &answer.headers);
        let answered = self.answered_event(ctx.now);
        ctx.event(answered);
    }

    /// Refuses the ringing call with `status` (3xx–6xx).
    pub(crate) fn decline(&mut self, ctx: &mut Ctx<'_>, status: u16) {
        self.reject_invite(ctx, StatusCode::new(status), &[]);
        let end = CallEnd::new(EndCause::Rejected, Originator::Local).with_status(status);
        self.end(ctx, Some(end));
    }

    /// The UAS answer to the session's INVITE (the initial one, or the peer's re-INVITE
    /// being answered), with our tag, Contact and the Record-Route the dialog was built
    /// from (§12.1.1).
    pub(super) fn invite_response(
        &self,
        ctx: &Ctx<'_>,
        status: StatusCode,
    ) -> Option<(TxId, Response)> {
        let (tx, invite) = match self.peer_reinvite.as_deref() {
            Some((tx, req)) => (*tx, req),
            None => (self.invite_tx?, self.invite.as_deref()?),
        };
        let mut resp = Response::from_request(invite, status);
        resp.set_to_tag(&self.key.1);
        if resp.status().code() < 300 {
            let h = resp.headers_mut();
            h.copy_from(invite.headers(), HeaderName::RecordRoute);
            h.push(HeaderName::Contact, &ctx.local.contact);
        }
        if let Some(ua) = &ctx.config.user_agent {
            resp.headers_mut().push(HeaderName::Server, ua);
        }
        Some((tx, resp))
    }

    pub(super) fn reject_invite(
        &mut self,
        ctx: &mut Ctx<'_>,
        status: StatusCode,
        extra: &[(HeaderName, String)],
    ) {
        if let Some((tx, mut resp)) = self.invite_response(ctx, status) {
            for (name, value) in extra {
                resp.headers_mut().push(*name, value);
            }
            ctx.out.push_back(Action::Respond(tx, resp));
        }
    }

    /// 488 with a Warning naming what was wrong (RFC 3261 §21.4.26, §20.43).
    fn refuse_offer(&mut self, ctx: &mut Ctx<'_>, e: &SdpError) {
        let warning = (HeaderName::Warning, warning(e));
        self.reject_invite(ctx, StatusCode::new(488), &[warning]);
    }

    /// Sends our 2xx to the session's INVITE (initial or re-INVITE, whichever is being
    /// answered), with `extra` headers, and resends it until the ACK comes.
    pub(super) fn accept_invite(
        &mut self,
        ctx: &mut Ctx<'_>,
        body: Bytes,
        offer_in_2xx: bool,
        extra: &[(String, String)],
    ) {
        let Some((tx, mut resp)) = self.invite_response(ctx, StatusCode::new(200)) else {
            return;
        };
        common_headers(resp.headers_mut(), ctx.config);
        resp.headers_mut().remove(HeaderName::UserAgent);
        add_headers(resp.headers_mut(), extra);
        let answered = match self.peer_reinvite.as_deref() {
            Some((_, req)) => Some(req),
            None => self.invite.as_deref(),
        };
        let cseq = answered
            .and_then(|a| a.cseq().ok())
            .map(|c| c.seq)
            .unwrap_or_default();
        if let Some(answered) = answered {
            self.refresh.requested(answered);
        }
        self.refresh.grant_headers(resp.headers_mut());
        resp.set_body("application/sdp", body);
        let bytes = resp.to_bytes();
        ctx.out.push_back(Action::Respond(tx, resp));
        let t1 = ctx.config.timers.t1();
        self.arm_session_timer(ctx);
        self.accepting = Some(Accepting {
            cseq,
            bytes,
            interval: t1,
            offer_in_2xx,
        });
        if !ctx.reliable {
            self.set_timer(ctx, CallTimer::Retransmit2xx, ctx.now + t1);
        }
        self.set_timer(ctx, CallTimer::AckWait, ctx.now + t1 * 64);
    }

    pub(super) fn retransmit_2xx(&mut self, ctx: &mut Ctx<'_>) {
        let t2 = ctx.config.timers.t2();
        let Some(a) = self.accepting.as_mut() else {
            return;
        };
        let bytes = a.bytes.clone();
        a.interval = (a.interval * 2).min(t2);
        let next = ctx.now + a.interval;
        ctx.out.push_back(Action::Transmit {
            bytes,
            retransmission: true,
        });
        self.set_timer(ctx, CallTimer::Retransmit2xx, next);
    }

    /// No ACK for our 2xx within 64·T1: the call cannot stand (§13.3.1.4).
    pub(super) fn ack_overdue(&mut self, ctx: &mut Ctx<'_>) {
        self.accepting = None;
        self.clear_timer(CallTimer::Retransmit2xx);
        let ended = self.phase == Phase::Ending;
        let end = CallEnd::new(EndCause::NoAck, Originator::System);
        self.send_bye(ctx);
        self.end(ctx, (!ended).then_some(end));
    }

    /// The peer's CANCEL matched our INVITE server transaction (the user agent answered the
    /// CANCEL itself, §9.2): a call still ringing ends with 487.
    pub(crate) fn cancel_in(&mut self, ctx: &mut Ctx<'_>, req: &Request) {
        if self.phase != Phase::Ringing {
            return;
        }
        self.reject_invite(ctx, StatusCode::new(487), &[]);
        let end = CallEnd::new(EndCause::Canceled, Originator::Remote)
            .with_reason(reason_header(req.headers()));
        self.end(ctx, Some(end));
    }

    /// An ACK for a 2xx of ours (§13.3.1.4).
    pub(crate) fn ack_in(&mut self, ctx: &mut Ctx<'_>, req: &Request) {
        let seq = req.cseq().map(|c| c.seq).unwrap_or_default();
        let Some(accepting) = self.accepting.take_if(|a| a.cseq == seq) else {
            return;
        };
        self.acked();
        if self.bye_after_ack {
            self.send_bye(ctx);
            self.end(ctx, None);
            return;
        }
        if accepting.offer_in_2xx && !self.take_answer(ctx, req.body()) {
            return;
        }
        // Whatever waited for this exchange (a hold wanted meanwhile) may go now.
        self.pump(ctx);
    }

    /// Our 2xx needs sending no more; the INVITE it answered is done with.
    pub(super) fn acked(&mut self) {
        self.accepting = None;
        self.clear_timer(CallTimer::Retransmit2xx);
        self.clear_timer(CallTimer::AckWait);
        if self.peer_reinvite.take().is_none() && !self.caller {
            self.invite = None;
        }
    }
}

/// A Warning header's value naming why an offer was refused.
pub(super) fn warning(e: &SdpError) -> String {
    let text = e.to_string().replace(['"', '\\'], "'");
    format!("399 sansip \"{text}\"")
}
