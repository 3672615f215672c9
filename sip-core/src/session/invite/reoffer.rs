//! The peer's offers that change the media (video added, a codec dropped, another
//! transport), not just its direction.
//!
//! The session keeps the media lines of the peer's last description
//! ([`sdp::media_lines`]) and compares each new offer with them. By default such an offer is
//! answered like any other and [`Event::Renegotiated`] says the media changed; with
//! [`ReofferPolicy::Ask`] it waits for the application ([`Event::ReofferReceived`]), which
//! accepts or refuses it. An offer the application leaves unanswered for 16·T1 is refused
//! with 488, well inside an UPDATE's 64·T1 transaction; meanwhile the peer's next offer gets
//! 500 with Retry-After (RFC 3261 §14.2, RFC 3311 §5.2) and ours wait.
//!
//! [`ReofferPolicy::Ask`]: crate::ua::ReofferPolicy::Ask

use super::{CallTimer, Ctx, Session};
use crate::message::{Method, Request};
use crate::session::{SdpHandler, sdp};
use crate::transaction::TxId;
use crate::ua::{Event, ReofferPolicy};

impl<S: SdpHandler> Session<S> {
    /// Remembers the media lines of the peer's latest description; true when they changed
    /// the session's media (never for the first).
    pub(super) fn remember_remote(&mut self, description: &str) -> bool {
        let changed =
            !self.remote_media.is_empty() && sdp::changes_media(&self.remote_media, description);
        self.remote_media = sdp::media_lines(description);
        changed
    }

    /// With [`ReofferPolicy::Ask`], an offer in the peer's re-INVITE or UPDATE that changes
    /// the media waits for the application: true when it does.
    pub(super) fn ask_first(&mut self, ctx: &mut Ctx<'_>, tx: TxId, req: &Request) -> bool {
        let offer = req.body();
        if ctx.config.reoffers != ReofferPolicy::Ask || offer.is_empty() {
            return false;
        }
        if !sdp::changes_media(&self.remote_media, &sdp::text(offer)) {
            return false;
        }
        self.asked = Some(Box::new((tx, req.clone())));
        let at = ctx.now + ctx.config.timers.t1() * 16;
        self.set_timer(ctx, CallTimer::OfferWait, at);
        ctx.event(Event::ReofferReceived {
            call: self.id,
            offer: offer.clone(),
        });
        true
    }

    /// Whether the peer's offer waits for the application.
    pub(crate) fn has_reoffer(&self) -> bool {
        self.asked.is_some()
    }

    /// Answers the peer's waiting offer as any other.
    pub(crate) fn accept_reoffer(&mut self, ctx: &mut Ctx<'_>) {
        let Some(asked) = self.asked.take() else {
            return;
        };
        self.clear_timer(CallTimer::OfferWait);
        let (tx, req) = *asked;
        if *req.method() == Method::Invite {
            self.take_reinvite(ctx, tx, &req);
        } else {
            self.take_update(ctx, tx, &req);
        }
        self.pump(ctx);
    }

    /// Refuses the peer's waiting offer with `status`; the call goes on as it was (RFC 6337
    /// §3.3).
    pub(crate) fn refuse_reoffer(&mut self, ctx: &mut Ctx<'_>, status: u16) {
        let Some(asked) = self.asked.take() else {
            return;
        };
        self.clear_timer(CallTimer::OfferWait);
        let (tx, req) = *asked;
        ctx.respond(tx, &req, status);
        self.pump(ctx);
    }
}
