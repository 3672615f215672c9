//! Session timers (RFC 4028) and UPDATE (RFC 3311).
//!
//! Our INVITE asks for [`UaConfig::session_expires`] (with our Min-SE); the 2xx says who
//! refreshes. As callee we take the caller's interval (422 with our Min-SE when it is
//! shorter, §8) and, when it names no refresher, let a caller that supports timers refresh.
//! The refresher refreshes at half the interval — by UPDATE when the peer allows it,
//! else by re-INVITE — and every refresh, ours or the peer's, re-arms both ends. With no
//! refresh by the deadline (the interval less a third, at most 32 s, §10), we send BYE and
//! the call ends with [`EndCause::SessionTimerExpired`].
//!
//! UPDATE from the peer is answered in the early and the confirmed dialog: without a body
//! it refreshes the session; with an offer, the offer is answered as a re-INVITE's would
//! be, with the glare rules of RFC 3311 §5.2 (491 while our offer is out, 500 with
//! Retry-After while the peer's INVITE exchange is unfinished).
//!
//! [`UaConfig::session_expires`]: crate::ua::UaConfig::session_expires

use std::time::Duration;

use super::{CallRequest, CallTimer, Ctx, Phase, Session};
use crate::message::{
    HeaderName, Headers, Method, MinSe, Refresher, Request, Response, SessionExpires, StatusCode,
};
use crate::session::{CallEnd, EndCause, Originator, SdpHandler};
use crate::transaction::TxId;
use crate::ua::{Event, OfferMethod, UaConfig, answer};

/// A running session timer: the interval, and whether we are the refresher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Timer {
    interval: u32,
    we_refresh: bool,
}

/// The session timer (RFC 4028) and what our refreshes need to know.
#[derive(Debug, Default)]
pub(super) struct Refresh {
    /// The timer in force, if any.
    timer: Option<Timer>,
    /// The peer listed UPDATE in Allow: refreshes and offers may go by UPDATE.
    pub(super) peer_allows_update: bool,
    /// Our refresh waits for its turn (see `Session::pump`).
    pub(super) due: bool,
    /// That refresh must be a re-INVITE: our Contact changed with the flow.
    pub(super) retarget: bool,
    /// Caller: INVITEs sent again after a 422.
    retries_422: u8,
}

impl Refresh {
    /// Takes note of what the peer's message (`h`) allows.
    pub(super) fn allows(&mut self, h: &Headers) {
        self.peer_allows_update |= allows_update(h);
    }

    /// A request of the peer's that starts or refreshes the session (its INVITE, a
    /// re-INVITE, an UPDATE): the timer our 2xx will grant.
    pub(super) fn requested(&mut self, req: &Request) {
        self.timer = requested(req);
        self.allows(req.headers());
    }

    /// A 2xx to our INVITE, re-INVITE or UPDATE: the timer it grants (none when it names
    /// no interval, §7.2).
    fn granted(&mut self, h: &Headers) {
        self.timer = session_expires(h).map(|se| Timer {
            interval: se.delta,
            we_refresh: se.refresher != Some(Refresher::Uas),
        });
        self.allows(h);
    }

    /// A refresh of ours went (any offer of ours is one, and a target refresh too).
    pub(super) fn sent(&mut self) {
        self.due = false;
        self.retarget = false;
    }

    /// The timer headers of our 2xx to the peer's request (§9): the interval, who
    /// refreshes (the peer is `uac` in its own transaction), and Require when it is the
    /// peer.
    pub(super) fn grant_headers(&self, h: &mut Headers) {
        let Some(t) = self.timer else {
            return;
        };
        let refresher = if t.we_refresh {
            Refresher::Uas
        } else {
            Refresher::Uac
        };
        set_session_expires(h, t.interval, Some(refresher));
        if !t.we_refresh {
            h.push(HeaderName::Require, "timer");
        }
    }

    /// The timer headers of a refresh of ours: our interval, and us as refresher.
    pub(super) fn headers(&self, h: &mut Headers, config: &UaConfig) {
        if let Some(t) = self.timer {
            set_session_expires(h, t.interval, Some(Refresher::Uac));
            h.set(HeaderName::MinSe, itoa::Buffer::new().format(config.min_se));
        }
    }
}

/// How many times our INVITE is sent again after a 422 before the call fails.
const MAX_422_RETRIES: u8 = 2;

fn session_expires(h: &Headers) -> Option<SessionExpires<'_>> {
    h.get(HeaderName::SessionExpires)
        .and_then(|v| SessionExpires::parse(v).ok())
}

/// Sets Session-Expires to `interval`, naming `refresher` when there is one (§4).
fn set_session_expires(h: &mut Headers, interval: u32, refresher: Option<Refresher>) {
    let refresher = match refresher {
        Some(Refresher::Uac) => ";refresher=uac",
        Some(Refresher::Uas) => ";refresher=uas",
        None => "",
    };
    let mut digits = itoa::Buffer::new();
    let interval = digits.format(interval);
    h.set(HeaderName::SessionExpires, &[interval, refresher].concat());
}

/// Whether `h` (a request or a response) allows UPDATE.
fn allows_update(h: &Headers) -> bool {
    h.lists(HeaderName::Allow, "UPDATE")
}

/// The Min-SE a request whose session interval is below ours must be refused with (422,
/// RFC 4028 §8.1); `None` when the request is acceptable.
pub(crate) fn too_brief(req: &Request, config: &UaConfig) -> Option<u32> {
    let se = session_expires(req.headers())?;
    (se.delta < config.min_se).then_some(config.min_se)
}

/// The timer a request of the peer's asks for: its interval, and us as refresher when it
/// names `uas`, or names none and does not support timers itself (RFC 4028 §9).
pub(super) fn requested(req: &Request) -> Option<Timer> {
    let h = req.headers();
    let supports = h.lists(HeaderName::Supported, "timer") || h.lists(HeaderName::Require, "timer");
    session_expires(h).map(|se| {
        let refresher = se.refresher.unwrap_or(if supports {
            Refresher::Uac
        } else {
            Refresher::Uas
        });
        Timer {
            interval: se.delta,
            we_refresh: refresher == Refresher::Uas,
        }
    })
}

impl<S: SdpHandler> Session<S> {
    /// Caller: the session-timer headers of our INVITE.
    pub(super) fn ask_for_timer(h: &mut Headers, config: &UaConfig, interval: u32) {
        set_session_expires(h, interval, config.session_refresher);
        h.set(HeaderName::MinSe, itoa::Buffer::new().format(config.min_se));
    }

    /// Caller: a 422 to our INVITE names the Min-SE the peer wants (§7.4): ask again with
    /// it, up to [`MAX_422_RETRIES`] times; false when we gave up.
    pub(super) fn retry_after_422(&mut self, ctx: &mut Ctx<'_>, resp: &Response) -> bool {
        let Some(min) = resp
            .headers()
            .get(HeaderName::MinSe)
            .and_then(|v| MinSe::parse(v).ok())
        else {
            return false;
        };
        if self.refresh.retries_422 >= MAX_422_RETRIES || self.phase != Phase::Calling {
            return false;
        }
        self.refresh.retries_422 += 1;
        let config = ctx.config;
        self.invite_again(ctx, |req| {
            Self::ask_for_timer(req.headers_mut(), config, min.0);
        });
        true
    }

    /// A 2xx to our INVITE, re-INVITE or UPDATE: the timer it grants runs.
    pub(super) fn timer_granted(&mut self, ctx: &mut Ctx<'_>, resp: &Response) {
        self.refresh.granted(resp.headers());
        self.arm_session_timer(ctx);
    }

    /// (Re)starts the session timer after a refresh: ours at half the interval, or the
    /// deadline for the peer's (§10).
    pub(super) fn arm_session_timer(&mut self, ctx: &mut Ctx<'_>) {
        self.clear_timer(CallTimer::Refresh);
        self.clear_timer(CallTimer::SessionExpiry);
        self.refresh.due = false;
        let Some(t) = self.refresh.timer else {
            return;
        };
        let interval = Duration::from_secs(u64::from(t.interval));
        if t.we_refresh {
            self.set_timer(ctx, CallTimer::Refresh, ctx.now + interval / 2);
        } else {
            let margin = (interval / 3).min(Duration::from_secs(32));
            self.set_timer(ctx, CallTimer::SessionExpiry, ctx.now + interval - margin);
        }
    }

    /// Our refresh is due: it goes when nothing else of ours is in flight.
    pub(super) fn refresh_now(&mut self, ctx: &mut Ctx<'_>) {
        self.refresh.due = true;
        self.pump(ctx);
    }

    /// Nobody refreshed the session in time (§10).
    pub(super) fn session_expired(&mut self, ctx: &mut Ctx<'_>) {
        if self.phase != Phase::Confirmed {
            return;
        }
        let end = CallEnd::new(EndCause::SessionTimerExpired, Originator::System);
        self.send_bye(ctx);
        self.end(ctx, Some(end));
    }

    /// Sends our refresh: UPDATE when the peer allows it, else a re-INVITE (§7.4).
    pub(super) fn send_refresh(&mut self, ctx: &mut Ctx<'_>) {
        if !self.refresh.peer_allows_update || self.refresh.retarget {
            self.send_offer(ctx, OfferMethod::Invite, false);
            return;
        }
        self.refresh.sent();
        let mut req = self.in_dialog_request(ctx, Method::Update);
        // A target refresh: the dialog gave it our Contact (RFC 3311 §5.1).
        let h = req.headers_mut();
        h.push(HeaderName::Allow, answer::ALLOW);
        h.push(HeaderName::Supported, answer::SUPPORTED);
        self.refresh.headers(h, ctx.config);
        ctx.send(req, CallRequest::Update);
    }

    /// The final response to our UPDATE.
    pub(super) fn update_answered(&mut self, ctx: &mut Ctx<'_>, resp: &Response) {
        let code = resp.status().code();
        match code {
            200..=299 => self.timer_granted(ctx, resp),
            408 | 481 => self.in_dialog_gone(ctx, code),
            // The peer cannot take UPDATE after all: refresh by re-INVITE.
            405 | 501 => {
                self.refresh.peer_allows_update = false;
                self.refresh_now(ctx);
            }
            422 => {
                let min = resp
                    .headers()
                    .get(HeaderName::MinSe)
                    .and_then(|v| MinSe::parse(v).ok());
                if let (Some(min), Some(t)) = (min, self.refresh.timer.as_mut()) {
                    t.interval = t.interval.max(min.0);
                }
                self.refresh_now(ctx);
            }
            // Glare or a passing failure: try again a little later, well before the
            // peer's deadline.
            _ => {
                let wait = self.refresh.timer.map_or(Duration::from_secs(5), |t| {
                    Duration::from_secs(u64::from(t.interval / 8).max(1))
                });
                self.set_timer(ctx, CallTimer::Refresh, ctx.now + wait);
            }
        }
    }

    /// The peer's UPDATE (RFC 3311 §5.2): a refresh, or a new offer on the session.
    pub(super) fn update_in(&mut self, ctx: &mut Ctx<'_>, tx: TxId, req: &Request) {
        if let Some(min) = too_brief(req, ctx.config) {
            let extra = [(HeaderName::MinSe, min.to_string())];
            ctx.respond_with(tx, req, StatusCode::new(422), &extra);
            return;
        }
        if !req.body().is_empty() {
            if self.offer_in_progress() {
                // §5.2: our own offer is out, or the peer's INVITE exchange (or offer) is
                // unfinished.
                if self.offer.is_some() {
                    ctx.respond(tx, req, 491);
                } else {
                    let secs = ctx.ids.below(11);
                    let extra = [(HeaderName::RetryAfter, secs.to_string())];
                    ctx.respond_with(tx, req, StatusCode::new(500), &extra);
                }
                return;
            }
            if self.ask_first(ctx, tx, req) {
                return;
            }
        }
        self.take_update(ctx, tx, req);
    }

    /// Answers the peer's UPDATE: a refresh, with our answer to its offer if it has one.
    pub(super) fn take_update(&mut self, ctx: &mut Ctx<'_>, tx: TxId, req: &Request) {
        let mut body = None;
        let mut new_hold = self.hold;
        if !req.body().is_empty() {
            let Some((hold, answer)) = self.answer_offer(ctx, tx, req) else {
                return;
            };
            new_hold = hold;
            body = Some(answer);
        }
        self.refresh.requested(req);
        let mut resp = crate::ua::answer::reply(
            req,
            StatusCode::new(200),
            &[],
            ctx.ids,
            ctx.config.user_agent.as_deref(),
        );
        let h = resp.headers_mut();
        h.push(HeaderName::Contact, &ctx.local.contact);
        h.push(HeaderName::Allow, answer::ALLOW);
        h.push(HeaderName::Supported, answer::SUPPORTED);
        self.refresh.grant_headers(h);
        if let Some(b) = body {
            resp.set_body("application/sdp", b);
        }
        ctx.out.push_back(super::Action::Respond(tx, resp));
        if self.phase == Phase::Confirmed {
            self.arm_session_timer(ctx);
        }
        if new_hold != self.hold {
            self.hold = new_hold;
            ctx.event(Event::HoldChanged {
                call: self.id,
                local: new_hold.local,
                remote: new_hold.remote,
            });
        }
    }
}
