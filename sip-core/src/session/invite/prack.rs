//! Reliable provisional responses (RFC 3262, `100rel`), both ways.
//!
//! As caller we PRACK every reliable provisional once, in order, and drop its
//! retransmissions. As callee we send our provisionals reliably when the INVITE requires
//! `100rel`, or supports it and [`UaConfig::reliable_provisionals`] is on: each carries
//! `Require: 100rel` and an RSeq, goes again at T1, doubling, until its PRACK comes, and
//! the next provisional and the 2xx wait for that PRACK. Without a PRACK within 64·T1 the
//! INVITE is refused with 504 (§3).
//!
//! [`UaConfig::reliable_provisionals`]: crate::ua::UaConfig::reliable_provisionals

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use smol_str::SmolStr;

use super::uas::Final2xx;
use super::{Action, CallRequest, CallTimer, Ctx, Phase, Session};
use crate::message::{HeaderName, Method, RAck, RSeq, Request, Response, StatusCode};
use crate::session::{CallEnd, EndCause, Originator, SdpHandler};
use crate::transaction::TxId;

/// The option tag (RFC 3262 §10).
const TAG: &str = "100rel";

/// A reliable provisional of ours waiting for its PRACK.
#[derive(Debug)]
struct Unacked {
    rseq: u32,
    response: Response,
    interval: Duration,
}

/// Callee: our provisionals, and what waits for their PRACKs (§3).
#[derive(Debug, Default)]
pub(super) struct Provisionals {
    /// They go reliably.
    reliable: bool,
    /// The RSeq of the next reliable one.
    next_rseq: u32,
    /// The one waiting for its PRACK (boxed: a response is large, and most calls have none).
    unacked: Option<Box<Unacked>>,
    /// Reliable ones waiting for that PRACK before they go.
    queued: VecDeque<Response>,
    /// Our 2xx, waiting for that PRACK.
    /// Boxed: most calls send no reliable provisional.
    held_2xx: Option<Box<Final2xx>>,
}

impl Provisionals {
    /// Reliable or not, numbered from `first_rseq` (random, below 2**31, §3).
    pub(super) fn new(reliable: bool, first_rseq: u32) -> Self {
        Self {
            reliable,
            next_rseq: first_rseq,
            ..Self::default()
        }
    }

    pub(super) fn are_reliable(&self) -> bool {
        self.reliable
    }

    /// Whether a reliable provisional waits for its PRACK.
    pub(super) fn awaiting_prack(&self) -> bool {
        self.unacked.is_some()
    }

    /// Whether our 2xx waits for a PRACK.
    pub(super) fn holds_2xx(&self) -> bool {
        self.held_2xx.is_some()
    }

    /// Keeps our 2xx until the outstanding PRACK comes.
    pub(super) fn hold_2xx(&mut self, answer: Final2xx) {
        self.held_2xx = Some(Box::new(answer));
    }

    /// Whether `rack` acknowledges the outstanding provisional to the INVITE with CSeq
    /// `invite_seq` (§7.2).
    fn acknowledged_by(&self, rack: &RAck<'_>, invite_seq: Option<u32>) -> bool {
        self.unacked.as_ref().is_some_and(|u| u.rseq == rack.rseq)
            && Some(rack.cseq) == invite_seq
            && rack.method.eq_ignore_ascii_case(Method::Invite.as_str())
    }
}

/// Caller: the reliable provisionals we PRACKed, and our PRACKs in flight (§4).
#[derive(Debug, Default)]
pub(super) struct Pracks {
    /// The last RSeq PRACKed, per early dialog (the peer's tag).
    seen: Vec<(SmolStr, u32)>,
    /// PRACKs without a final response.
    out: u8,
}

impl Pracks {
    /// Whether the reliable provisional `rseq` of the early dialog `tag` is the next one
    /// there (or its first), remembering it; a retransmission or one out of order is not.
    fn admit(&mut self, tag: SmolStr, rseq: u32) -> bool {
        match self.seen.iter_mut().find(|(t, _)| *t == tag) {
            Some((_, last)) if rseq != last.wrapping_add(1) => false,
            Some((_, last)) => {
                *last = rseq;
                true
            }
            None => {
                self.seen.push((tag, rseq));
                true
            }
        }
    }

    /// The call is confirmed: provisionals no longer matter, so what was seen of them is
    /// let go (a PRACK still out keeps being counted).
    pub(super) fn confirmed(&mut self) {
        self.seen = Vec::new();
    }

    /// Whether a reliable provisional came.
    pub(super) fn any_seen(&self) -> bool {
        !self.seen.is_empty()
    }

    /// Whether a PRACK of ours waits for its final response.
    pub(super) fn in_flight(&self) -> bool {
        self.out > 0
    }

    /// Our INVITE goes to a new target: its provisionals start over.
    pub(super) fn restart(&mut self) {
        self.seen.clear();
    }
}

/// Whether `h`'s `name` header lists the `100rel` option tag.
fn lists_100rel(h: &crate::message::Headers, name: HeaderName) -> bool {
    h.lists(name, TAG)
}

/// Whether our provisionals to `invite` go reliably.
pub(super) fn wanted(invite: &Request, ours: bool) -> bool {
    let h = invite.headers();
    lists_100rel(h, HeaderName::Require) || (ours && lists_100rel(h, HeaderName::Supported))
}

impl<S: SdpHandler> Session<S> {
    /// Caller: a provisional to our INVITE. A reliable one is PRACKed, once and in order
    /// (§4); false when it must be dropped: a retransmission, or one out of order.
    pub(super) fn prack_if_reliable(&mut self, ctx: &mut Ctx<'_>, resp: &Response) -> bool {
        let h = resp.headers();
        if !lists_100rel(h, HeaderName::Require) {
            return true;
        }
        let Some(rseq) = h.get(HeaderName::RSeq).and_then(|v| RSeq::parse(v).ok()) else {
            // §4: a reliable provisional without RSeq is not one we can acknowledge.
            return true;
        };
        let tag = SmolStr::new(h.to_tag().ok().flatten().unwrap_or_default());
        if !self.pracks.admit(tag, rseq.0) {
            return false;
        }
        if self.dialog.is_none() {
            return true;
        }
        let cseq = resp.cseq().map(|c| c.seq).unwrap_or_default();
        let mut prack = self.in_dialog_request(ctx, Method::Prack);
        let rack = RAck {
            rseq: rseq.0,
            cseq,
            method: Method::Invite.as_str(),
        };
        prack
            .headers_mut()
            .push(HeaderName::RAck, &rack.to_string());
        ctx.send(prack, CallRequest::Prack);
        self.pracks.out = self.pracks.out.saturating_add(1);
        true
    }

    /// Caller: one of our PRACKs is done with; what waited for it may go.
    pub(super) fn prack_done(&mut self, ctx: &mut Ctx<'_>) {
        self.pracks.out = self.pracks.out.saturating_sub(1);
        self.pump(ctx);
    }

    /// Callee: sends provisional `status` (with `body`, an early answer), reliably when the
    /// INVITE asked for it; behind any reliable one still waiting for its PRACK.
    pub(super) fn provisional(
        &mut self,
        ctx: &mut Ctx<'_>,
        status: StatusCode,
        body: Option<Bytes>,
    ) {
        self.times.progress(ctx.now);
        let Some((tx, mut resp)) = self.invite_response(ctx, status) else {
            return;
        };
        // The caller learns here that it may UPDATE in the early dialog (RFC 3311 §5.1).
        resp.headers_mut()
            .push(HeaderName::Allow, crate::ua::answer::ALLOW);
        if let Some(body) = body {
            resp.set_body("application/sdp", body);
        }
        if !self.provisionals.reliable {
            ctx.out.push_back(Action::Respond(tx, resp));
            return;
        }
        if self.provisionals.awaiting_prack() {
            self.provisionals.queued.push_back(resp);
            return;
        }
        self.send_reliable(ctx, tx, resp);
    }

    fn send_reliable(&mut self, ctx: &mut Ctx<'_>, tx: TxId, mut resp: Response) {
        let p = &mut self.provisionals;
        let rseq = p.next_rseq;
        p.next_rseq = p.next_rseq.wrapping_add(1);
        let h = resp.headers_mut();
        h.push(HeaderName::Require, TAG);
        h.push(HeaderName::RSeq, itoa::Buffer::new().format(rseq));
        let t1 = ctx.config.timers.t1();
        ctx.out.push_back(Action::Respond(tx, resp.clone()));
        self.provisionals.unacked = Some(Box::new(Unacked {
            rseq,
            response: resp,
            interval: t1,
        }));
        self.set_timer(ctx, CallTimer::Retransmit1xx, ctx.now + t1);
        self.set_timer(ctx, CallTimer::PrackWait, ctx.now + t1 * 64);
    }

    pub(super) fn retransmit_1xx(&mut self, ctx: &mut Ctx<'_>) {
        let (Some(tx), Some(u)) = (self.invite_tx, self.provisionals.unacked.as_mut()) else {
            return;
        };
        u.interval *= 2;
        let next = ctx.now + u.interval;
        ctx.out.push_back(Action::Respond(tx, u.response.clone()));
        self.set_timer(ctx, CallTimer::Retransmit1xx, next);
    }

    /// No PRACK within 64·T1: the INVITE is refused (§3) and the call ends.
    pub(super) fn prack_overdue(&mut self, ctx: &mut Ctx<'_>) {
        self.provisionals = Provisionals::new(false, 0);
        self.clear_timer(CallTimer::Retransmit1xx);
        if self.phase != Phase::Ringing {
            return;
        }
        self.reject_invite(ctx, StatusCode::new(504), &[]);
        let end = CallEnd::new(EndCause::RequestTimeout, Originator::System).with_status(504);
        self.end(ctx, Some(end));
    }

    /// The peer's PRACK (§3): the one for our outstanding reliable provisional gets 200 and
    /// lets the next provisional, or the held 2xx, go; any other gets 481.
    pub(super) fn prack_in(&mut self, ctx: &mut Ctx<'_>, tx: TxId, req: &Request) {
        let invite_seq = self.invite().and_then(|i| i.cseq().ok()).map(|c| c.seq);
        let acks = req
            .headers()
            .get(HeaderName::RAck)
            .and_then(|v| RAck::parse(v).ok())
            .is_some_and(|r| self.provisionals.acknowledged_by(&r, invite_seq));
        if !acks {
            ctx.respond(tx, req, 481);
            return;
        }
        ctx.respond(tx, req, 200);
        self.provisionals.unacked = None;
        self.clear_timer(CallTimer::Retransmit1xx);
        self.clear_timer(CallTimer::PrackWait);
        let next = self.provisionals.queued.pop_front();
        if let (Some(next), Some(tx)) = (next, self.invite_tx) {
            self.send_reliable(ctx, tx, next);
        } else if let Some(answer) = self.provisionals.held_2xx.take() {
            self.confirm(ctx, *answer);
        } else {
            // An early UPDATE of ours may have waited for this PRACK.
            self.pump(ctx);
        }
    }
}
