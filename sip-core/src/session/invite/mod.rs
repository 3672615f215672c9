//! The INVITE dialog usage (RFC 5057): one call's session, from its INVITE to its last ACK
//! or BYE, as a machine of its own.
//!
//! The user agent owns the transactions and flows and routes to a session what is its:
//! responses to its requests, requests inside its dialog, CANCEL and ACK, its timers, and the
//! application's commands. Each step gets a small [`Ctx`] (the time, the id generator, the
//! settings, the Via and Contact of the flow its requests leave by) and says what it needs
//! done as [`Action`]s, which the user agent carries out: start a client transaction, answer
//! a server one, put bytes on the flow, arm a timer, tell the application.
//!
//! A session is either ours (we sent the INVITE: *caller*, `uac.rs`) or the peer's
//! (*callee*, `uas.rs`); re-INVITEs for hold and glare are in `reinvite.rs`, INFO, MESSAGE
//! and DTMF in `info.rs`. It moves through [`Phase`]s; once the application has been told
//! it ended, it may linger in `Ending` while RFC 3261 still asks something of us — a CANCEL
//! waiting for the provisional it needs (§9.1), the 487 or crossing 2xx after it, an ACK to
//! wait for before a BYE (§15). Every lingering session has a deadline, so none is left
//! alive; a finished one ([`Session::is_finished`]) is dropped by the user agent.

mod dialog_event;
mod info;
mod prack;
mod redirect;
mod refer;
mod reinvite;
mod reoffer;
mod timer;
mod uac;
mod uas;

pub(crate) use info::Outbound;
pub(crate) use refer::percent_encode;
pub(crate) use timer::too_brief;
pub(crate) use uac::Outgoing;
pub(crate) use uas::Incoming;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use smallvec::SmallVec;
use smol_str::SmolStr;

use crate::auth::Authenticator;
use crate::dialog::Dialog;
use crate::message::{HeaderName, Headers, Method, Request, Response, StatusCode};
use crate::session::details::{Times, without_tag};
use crate::session::{
    CallDetails, CallDirection, CallEnd, CallHandle, EndCause, HoldState, Originator, SdpHandler,
    sdp,
};
use crate::transaction::TxId;
use crate::transport::FlowId;
use crate::ua::{Event, OfferMethod, RequestId, UaConfig, add_headers, answer};

/// What a client transaction of a session was sent for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum CallRequest {
    Invite,
    Reinvite,
    Bye,
    Cancel,
    Info,
    /// A request of the application's inside the call (MESSAGE, INFO…), whose final
    /// response is reported as [`Event::RequestCompleted`].
    Request(RequestId),
    /// Our PRACK for a reliable provisional (RFC 3262).
    Prack,
    /// Our UPDATE refreshing the session (RFC 3311, RFC 4028).
    Update,
    /// Our UPDATE carrying an offer (RFC 3311).
    UpdateOffer,
    /// Our REFER transferring the peer (RFC 3515).
    Refer,
    /// Our NOTIFY telling the transferor how its transfer goes.
    Notify,
}

impl CallRequest {
    /// Requests that go one at a time inside the dialog (see [`Session::pump`]); PRACKs go
    /// when their provisional comes, but hold the others back too.
    fn is_serialized(self) -> bool {
        matches!(
            self,
            Self::Reinvite
                | Self::Info
                | Self::Request(_)
                | Self::Update
                | Self::UpdateOffer
                | Self::Refer
                | Self::Notify
        )
    }
}

/// A session's timers; each holds at most one deadline per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum CallTimer {
    /// Caller or callee: nobody answered in time.
    NoAnswer,
    /// Callee: resend the 2xx (§13.3.1.4), unreliable flows only.
    Retransmit2xx,
    /// Callee: the ACK for our 2xx is overdue (64·T1).
    AckWait,
    /// Our re-INVITE met a 491: try again (§14.1).
    Glare,
    /// The next queued DTMF tone.
    Dtmf,
    /// A lingering session gives up waiting (64·T1 after a CANCEL, §9.1).
    GiveUp,
    /// Callee: resend our reliable provisional (RFC 3262 §3).
    Retransmit1xx,
    /// Callee: the PRACK for our reliable provisional is overdue (64·T1).
    PrackWait,
    /// Our session refresh is due (RFC 4028).
    Refresh,
    /// The peer's session refresh is overdue (RFC 4028 §10).
    SessionExpiry,
    /// The application did not decide on the peer's offer in time.
    OfferWait,
    /// Caller: the 2xx our last ACK answered can no longer repeat (64·T1 after it came):
    /// the ACK is let go.
    AckKept,
}

/// A session's armed timers: few at a time (a confirmed call has its session refresh and
/// expiry, and for 32 s its kept ACK), so a short list rather than a slot per kind.
#[derive(Debug, Default)]
struct Timers(SmallVec<[(CallTimer, Instant); 3]>);

impl Timers {
    fn get(&self, kind: CallTimer) -> Option<Instant> {
        self.0.iter().find(|(k, _)| *k == kind).map(|(_, at)| *at)
    }

    fn set(&mut self, kind: CallTimer, at: Instant) {
        match self.0.iter_mut().find(|(k, _)| *k == kind) {
            Some(slot) => slot.1 = at,
            None => self.0.push((kind, at)),
        }
    }

    fn clear(&mut self, kind: CallTimer) {
        self.0.retain(|(k, _)| *k != kind);
    }
}

/// What a session asks of the user agent, in order (see [`crate::usage`]).
pub(crate) type Action = crate::usage::Action<CallRequest, CallTimer>;

/// What a session step gets from the user agent.
pub(crate) type Ctx<'a> = crate::usage::Ctx<'a, CallRequest, CallTimer>;

/// Allow, Supported and User-Agent, as every request and 2xx of ours that opens or
/// refreshes a session carries them.
pub(crate) fn common_headers(h: &mut Headers, config: &UaConfig) {
    h.push(HeaderName::Allow, answer::ALLOW);
    h.push(HeaderName::Supported, answer::SUPPORTED);
    if let Some(ua) = &config.user_agent {
        h.push(HeaderName::UserAgent, ua);
    }
}

/// The far end as `name` (To of a 2xx, From of an INVITE) and P-Asserted-Identity give it.
fn remote_of(h: &Headers, name: HeaderName) -> (String, Option<String>) {
    (
        h.get(name).unwrap_or_default().to_string(),
        h.get(HeaderName::PAssertedIdentity).map(str::to_string),
    )
}

fn reason_header(h: &Headers) -> Option<&str> {
    h.get(HeaderName::Reason)
}

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Caller: INVITE sent, no 2xx yet.
    Calling,
    /// Callee: ringing, waiting for the application.
    Ringing,
    /// A 2xx went out or came in.
    Confirmed,
    /// Over for the application; finishing what the RFC still asks.
    Ending,
}

/// A 2xx to an INVITE we received and must resend until its ACK arrives (§13.3.1.4).
#[derive(Debug)]
struct Accepting {
    cseq: u32,
    bytes: Bytes,
    interval: Duration,
    /// The 2xx carried our offer (the INVITE had none): the answer comes in the ACK.
    offer_in_2xx: bool,
}

/// What became of a request the user agent routed to a session's dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// The session answered it.
    Taken,
    /// Not the INVITE usage's: the user agent answers it (MESSAGE, OPTIONS, 405).
    NotMine,
}

/// One call's INVITE usage: see the module docs.
#[derive(Debug)]
pub(crate) struct Session<S> {
    id: CallHandle,
    caller: bool,
    phase: Phase,
    /// `None` for an incoming call until it is answered.
    sdp: Option<S>,
    flow: FlowId,
    /// Caller: the INVITE as last sent (it changes on an authenticated retry), until a 2xx
    /// confirms the call. Callee: the peer's INVITE, until its ACK. Then it is no longer
    /// needed and is let go. Boxed: a request is large, and a confirmed call keeps none.
    invite: Option<Box<Request>>,
    /// Caller: the CSeq of the INVITE a 2xx confirmed; another fork's 2xx to it is ACKed
    /// and hung up (§13.2.2.4).
    invite_seq: Option<u32>,
    invite_tx: Option<TxId>,
    /// Caller: a provisional answered the INVITE's transaction, so a CANCEL may go (§9.1).
    provisional: bool,
    /// The peer's re-INVITE we are answering, until its ACK (boxed: rare, and a request
    /// is large).
    peer_reinvite: Option<Box<(TxId, Request)>>,
    /// Call-ID and our tag: how responses and in-dialog requests find the session.
    key: (SmolStr, SmolStr),
    /// Callee: the peer's From tag too, for CANCEL and merged requests.
    remote_key: Option<(SmolStr, SmolStr)>,
    dialog: Option<Dialog>,
    /// Caller: the answer to our offer has been taken (from a 1xx or the 2xx).
    answer_taken: bool,
    /// Caller: the early dialog (the peer's tag) whose 1xx gave that answer.
    answer_from: Option<SmolStr>,
    /// Caller: hung up before any provisional; CANCEL when one comes (§9.1).
    cancel_pending: bool,
    hold: HoldState,
    /// The local hold the application asked for; differs from `hold.local` while a
    /// re-INVITE carrying it is pending or waiting out a glare.
    want_hold: bool,
    /// Our offer waiting for its answer.
    offer: Option<reinvite::OurOffer>,
    /// The renegotiation the application asked for, waiting its turn.
    want_reoffer: Option<OfferMethod>,
    /// The peer's offer waiting for the application (see `reoffer.rs`).
    asked: Option<Box<(TxId, Request)>>,
    /// The media lines of the peer's latest description.
    remote_media: Box<[sdp::MediaLine]>,
    accepting: Option<Accepting>,
    /// Caller: the ACK for the last 2xx, sent again when that 2xx repeats.
    ack: Option<(u32, Bytes)>,
    bye_after_ack: bool,
    dtmf: VecDeque<char>,
    /// The application's requests waiting for their turn.
    requests: VecDeque<info::Outbound>,
    /// The one re-INVITE, INFO or MESSAGE of ours in flight. They go one at a time: sent
    /// together, a proxy with several workers may reorder them, and the peer must refuse
    /// a CSeq lower than one it saw (§12.2.2) — Kamailio did exactly that to a hold sent
    /// while DTMF was in flight.
    in_flight: Option<CallRequest>,
    /// Digest state for the session's requests (boxed: most calls are never challenged).
    auth: Option<Box<Authenticator>>,
    timers: Timers,
    muted: bool,
    /// Stepped since the user agent last reported it (see `UserAgent::next_stepped_call`).
    stepped: bool,
    /// Told the application it ended and owes the RFC nothing more: drop it.
    finished: bool,
    /// Callee: our provisionals (RFC 3262).
    provisionals: prack::Provisionals,
    /// Callee: the answer our 183 carried (early media), repeated in the 2xx.
    early_answer: Option<Bytes>,
    /// Caller: our PRACKs (RFC 3262).
    pracks: prack::Pracks,
    /// The session timer (RFC 4028) and our refreshes.
    refresh: timer::Refresh,
    /// Transfers both ways (RFC 3515).
    transfers: refer::Transfers,
    /// Headers the application gave for our BYE or CANCEL (Reason, RFC 3326, and others).
    ending_headers: Vec<(String, String)>,
    /// The far end: how it named itself, and what a trusted proxy asserted (RFC 3325).
    remote: (String, Option<String>),
    /// Caller: redirect targets still to try, and those tried (RFC 3261 §8.1.3.4); boxed,
    /// as most calls are never redirected.
    redirects: Option<Box<redirect::Redirects>>,
    /// `call{handle, call_id}` on the target `sansip::call`: the call's events are logged
    /// inside it, and a media layer can enter it for its own logs.
    span: tracing::Span,
    /// When it started, rang and was answered (its details).
    times: Times,
}

impl<S> Session<S> {
    /// The INVITE, while the session keeps it (see the field).
    fn invite(&self) -> Option<&Request> {
        self.invite.as_deref()
    }

    fn new(
        id: CallHandle,
        caller: bool,
        sdp: Option<S>,
        flow: FlowId,
        invite: Request,
        key: (SmolStr, SmolStr),
        now: Instant,
    ) -> Self {
        let span = tracing::debug_span!(
            target: "sansip::call",
            "call",
            handle = %id,
            call_id = %key.0,
            direction = if caller { "outgoing" } else { "incoming" },
        );
        Self {
            id,
            caller,
            // The caller waits for a final response; the callee rings.
            phase: if caller {
                Phase::Calling
            } else {
                Phase::Ringing
            },
            sdp,
            flow,
            invite: Some(Box::new(invite)),
            invite_seq: None,
            invite_tx: None,
            provisional: false,
            peer_reinvite: None,
            key,
            remote_key: None,
            dialog: None,
            answer_taken: false,
            answer_from: None,
            cancel_pending: false,
            hold: HoldState::default(),
            want_hold: false,
            offer: None,
            want_reoffer: None,
            asked: None,
            remote_media: Box::default(),
            accepting: None,
            ack: None,
            bye_after_ack: false,
            dtmf: VecDeque::new(),
            requests: VecDeque::new(),
            in_flight: None,
            auth: None,
            timers: Timers::default(),
            muted: false,
            stepped: false,
            finished: false,
            provisionals: prack::Provisionals::default(),
            early_answer: None,
            pracks: prack::Pracks::default(),
            refresh: timer::Refresh::default(),
            transfers: refer::Transfers::default(),
            ending_headers: Vec::new(),
            remote: (String::new(), None),
            redirects: None,
            span,
            times: Times::new(now),
        }
    }

    /// Call-ID and our tag.
    pub(crate) fn key(&self) -> &(SmolStr, SmolStr) {
        &self.key
    }

    /// Callee: Call-ID and the peer's From tag.
    pub(crate) fn remote_key(&self) -> Option<&(SmolStr, SmolStr)> {
        self.remote_key.as_ref()
    }

    pub(crate) fn flow(&self) -> FlowId {
        self.flow
    }

    pub(crate) fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether the application can still act on it.
    pub(crate) fn is_live(&self) -> bool {
        self.phase != Phase::Ending && !self.finished
    }

    pub(crate) fn is_caller(&self) -> bool {
        self.caller
    }

    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }

    pub(crate) fn dialog(&self) -> Option<&Dialog> {
        self.dialog.as_ref()
    }

    pub(crate) fn dialog_mut(&mut self) -> Option<&mut Dialog> {
        self.dialog.as_mut()
    }

    /// The INVITE client (caller) or server (callee) transaction.
    pub(crate) fn invite_tx(&self) -> Option<TxId> {
        self.invite_tx
    }

    pub(crate) fn auth_mut(&mut self) -> &mut Option<Box<Authenticator>> {
        &mut self.auth
    }

    pub(crate) fn hold(&self) -> HoldState {
        self.hold
    }

    pub(crate) fn is_muted(&self) -> bool {
        self.muted
    }

    pub(crate) fn set_muted(&mut self, muted: bool) {
        self.muted = muted;
    }

    /// Notes that the session stepped; `true` when it had not since it was last reported.
    pub(crate) fn mark_stepped(&mut self) -> bool {
        !std::mem::replace(&mut self.stepped, true)
    }

    /// The step was reported; `true` when one was pending.
    pub(crate) fn clear_stepped(&mut self) -> bool {
        std::mem::replace(&mut self.stepped, false)
    }

    pub(crate) fn sdp(&self) -> Option<&S> {
        self.sdp.as_ref()
    }

    pub(crate) fn sdp_mut(&mut self) -> Option<&mut S> {
        self.sdp.as_mut()
    }

    pub(crate) fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// The deadline of timer `kind`, if armed.
    pub(crate) fn timer(&self, kind: CallTimer) -> Option<Instant> {
        self.timers.get(kind)
    }

    /// Whether a new offer may not start now (RFC 3261 §14.1): an INVITE transaction of
    /// ours or the peer's is still open.
    fn offer_in_progress(&self) -> bool {
        self.offer.is_some() || self.accepting.is_some() || self.asked.is_some()
    }

    fn set_timer(&mut self, ctx: &mut Ctx<'_>, kind: CallTimer, at: Instant) {
        self.timers.set(kind, at);
        ctx.timer(at, kind);
    }

    fn clear_timer(&mut self, kind: CallTimer) {
        self.timers.clear(kind);
    }

    /// Sends the ACK for the 2xx with CSeq `seq` and keeps it to send again when that 2xx
    /// repeats: for 64·T1, as long as the peer may resend it (§13.3.1.4).
    fn ack_2xx(&mut self, ctx: &mut Ctx<'_>, seq: u32, ack: Bytes) {
        ctx.transmit(ack.clone());
        self.ack = Some((seq, ack));
        let at = ctx.now + ctx.config.timers.t1() * 64;
        self.set_timer(ctx, CallTimer::AckKept, at);
    }
}

impl<S: SdpHandler> Session<S> {
    /// Our INVITE went out again (with credentials): responses now answer this one.
    pub(crate) fn invite_resent(&mut self, req: &Request) {
        self.invite = Some(Box::new(req.clone()));
    }

    /// Records the transaction a request of ours went out on.
    pub(crate) fn sent(&mut self, what: CallRequest, tx: TxId) {
        match what {
            CallRequest::Invite => {
                self.invite_tx = Some(tx);
                self.provisional = false;
            }
            CallRequest::Reinvite => {
                if let Some(o) = self.offer.as_mut() {
                    o.tx = Some(tx);
                }
            }
            _ => {}
        }
        if what.is_serialized() {
            self.in_flight = Some(what);
        }
    }

    /// Timer `kind`, armed for `at`, is due; stale deadlines are ignored.
    pub(crate) fn handle_timeout(&mut self, ctx: &mut Ctx<'_>, kind: CallTimer, at: Instant) {
        if self.finished || self.timers.get(kind) != Some(at) {
            return;
        }
        self.timers.clear(kind);
        match kind {
            CallTimer::NoAnswer => self.no_answer(ctx),
            CallTimer::Retransmit2xx => self.retransmit_2xx(ctx),
            CallTimer::AckWait => self.ack_overdue(ctx),
            CallTimer::Glare | CallTimer::Dtmf => self.pump(ctx),
            CallTimer::Retransmit1xx => self.retransmit_1xx(ctx),
            CallTimer::PrackWait => self.prack_overdue(ctx),
            CallTimer::Refresh => self.refresh_now(ctx),
            CallTimer::SessionExpiry => self.session_expired(ctx),
            CallTimer::OfferWait => self.refuse_reoffer(ctx, 488),
            CallTimer::AckKept => self.ack = None,
            CallTimer::GiveUp => {
                if let Some(tx) = self.invite_tx {
                    ctx.out.push_back(Action::Abandon(tx));
                }
                self.end(ctx, None);
            }
        }
    }

    /// Our INVITE went unanswered for too long (caller), or the application did not answer
    /// in time (callee).
    fn no_answer(&mut self, ctx: &mut Ctx<'_>) {
        match self.phase {
            Phase::Ringing => {
                self.reject_invite(ctx, StatusCode::new(480), &[]);
                let end = CallEnd::new(EndCause::NoAnswer, Originator::System).with_status(480);
                self.end(ctx, Some(end));
            }
            Phase::Calling => {
                self.cancel(ctx, CallEnd::new(EndCause::NoAnswer, Originator::System));
            }
            _ => {}
        }
    }

    /// The flow the session's requests used is gone and `flow` replaces it (the runtime
    /// reconnected): an established call tells the peer our new Contact by a re-INVITE,
    /// the target refresh every proxy routes (and the one that can carry new media
    /// addresses), so the peer's requests reach us again.
    pub(crate) fn moved_to(&mut self, ctx: &mut Ctx<'_>, flow: FlowId) {
        self.flow = flow;
        if self.phase == Phase::Confirmed {
            self.refresh.retarget = true;
            self.refresh_now(ctx);
        }
    }

    /// Ends the call: CANCEL while our call rings, 480 for an incoming call not yet
    /// answered, BYE once established; `cause` in place of `Bye`/`Canceled`, and
    /// `headers` (checked by the user agent) on the CANCEL or BYE.
    pub(crate) fn hangup(
        &mut self,
        ctx: &mut Ctx<'_>,
        cause: Option<EndCause>,
        headers: Vec<(String, String)>,
    ) {
        self.ending_headers = headers;
        match (self.caller, self.phase) {
            // Not yet answered: no media was negotiated, so no other cause applies.
            (false, Phase::Ringing) => self.decline(ctx, 480),
            (true, Phase::Calling) => {
                let end = CallEnd::new(cause.unwrap_or(EndCause::Canceled), Originator::Local);
                self.cancel(ctx, end);
            }
            _ => {
                let end = CallEnd::new(cause.unwrap_or(EndCause::Bye), Originator::Local);
                self.bye(ctx, end);
            }
        }
    }

    /// The far end: how it named itself (To of the 2xx, or From of the INVITE) and what a
    /// trusted proxy asserted.
    pub(crate) fn remote(&self) -> (&str, Option<&str>) {
        (&self.remote.0, self.remote.1.as_deref())
    }

    /// The call as the application sees it now; `end` once it has ended, at `now`.
    pub(crate) fn details(&self, now: Instant, end: Option<&CallEnd>) -> CallDetails {
        let invite = self.invite();
        let (ours, theirs) = if self.caller {
            (HeaderName::From, HeaderName::To)
        } else {
            (HeaderName::To, HeaderName::From)
        };
        let header = |name| {
            invite
                .and_then(|i| i.headers().get(name))
                .unwrap_or_default()
        };
        let local = match &self.dialog {
            Some(d) => d.local(),
            None => header(ours),
        };
        let (remote, asserted) = match (&self.remote.1, self.remote.0.as_str()) {
            (Some(pai), _) => (pai.as_str(), true),
            (None, "") => {
                let named = self.dialog.as_ref().map(|d| d.remote());
                (named.unwrap_or_else(|| header(theirs)), false)
            }
            (None, named) => (named, false),
        };
        CallDetails {
            call: self.id,
            direction: if self.caller {
                CallDirection::Outgoing
            } else {
                CallDirection::Incoming
            },
            call_id: self.key.0.to_string(),
            local: without_tag(local),
            remote: without_tag(remote),
            asserted,
            started: self.times.started,
            progressed: self.times.progressed,
            established: self.times.established,
            ended: end.map(|_| now),
            end: end.cloned(),
        }
    }

    fn answered_event(&mut self, now: Instant) -> Event {
        self.times.establish(now);
        Event::CallAnswered {
            call: self.id,
            remote: self.remote.0.clone(),
            asserted: self.remote.1.clone(),
        }
    }

    /// Tells the application (when `end` is given) and lets the session go.
    fn end(&mut self, ctx: &mut Ctx<'_>, end: Option<CallEnd>) {
        if self.finished {
            return;
        }
        if let Some(end) = end {
            let details = std::sync::Arc::new(self.details(ctx.now, Some(&end)));
            ctx.event(Event::CallEnded {
                call: self.id,
                end,
                details,
            });
        }
        // A re-INVITE still out when the dialog ends may never get a final response
        // (its 2xx was lost and the peer stopped resending on our BYE), and an INVITE
        // client transaction past Calling has no timer of its own: end it here.
        if let Some(tx) = self.offer.take().and_then(|o| o.tx) {
            ctx.out.push_back(Action::Abandon(tx));
        }
        self.finished = true;
    }

    /// Tells the application now, and keeps the session until the RFC is satisfied.
    fn linger(&mut self, ctx: &mut Ctx<'_>, end: CallEnd) {
        self.phase = Phase::Ending;
        let details = std::sync::Arc::new(self.details(ctx.now, Some(&end)));
        ctx.event(Event::CallEnded {
            call: self.id,
            end,
            details,
        });
    }

    /// A request inside the dialog, from the route set and the flow's Contact.
    fn in_dialog_request(&mut self, ctx: &mut Ctx<'_>, method: Method) -> Request {
        let mut req = match self.dialog.as_mut() {
            Some(d) => d.request(method, &ctx.local, ctx.ids),
            None => Request::new(method, ""),
        };
        let h = req.headers_mut();
        if let Some(ua) = &ctx.config.user_agent {
            h.push(HeaderName::UserAgent, ua);
        }
        add_headers(h, &ctx.config.extra_headers);
        req
    }

    fn send_bye(&mut self, ctx: &mut Ctx<'_>) {
        if self.dialog.is_none() {
            return;
        }
        let mut req = self.in_dialog_request(ctx, Method::Bye);
        add_headers(req.headers_mut(), &self.ending_headers);
        ctx.send(req, CallRequest::Bye);
    }

    /// BYE now, or after the ACK when our 2xx is still unacknowledged (§15).
    fn bye(&mut self, ctx: &mut Ctx<'_>, end: CallEnd) {
        if !self.caller && self.phase == Phase::Confirmed && self.accepting.is_some() {
            self.bye_after_ack = true;
            self.linger(ctx, end);
            return;
        }
        self.send_bye(ctx);
        self.end(ctx, Some(end));
    }

    /// RFC 3261 §12.2.1.2: a 481 or 408 to a request inside the dialog ends it.
    fn in_dialog_gone(&mut self, ctx: &mut Ctx<'_>, code: u16) {
        if self.phase == Phase::Ending {
            return;
        }
        let end = CallEnd::new(EndCause::from_status(code), Originator::Remote).with_status(code);
        self.bye(ctx, end);
    }

    /// Hands the peer's answer to our offer to the handler; an answer it cannot take ends
    /// the call (RFC 3261 §13.2.2.4 leaves nothing else once the ACK is out). Returns
    /// whether the call goes on.
    fn take_answer(&mut self, ctx: &mut Ctx<'_>, answer: &[u8]) -> bool {
        let taken = match self.sdp.as_mut().map(|s| s.accept_answer(answer)) {
            Some(Ok(())) => true,
            Some(Err(e)) => {
                self.span.in_scope(|| {
                    tracing::debug!(target: "sansip::call", error = %e, "answer refused");
                });
                false
            }
            None => false,
        };
        if taken {
            self.remember_remote(&sdp::text(answer));
        } else {
            let end = CallEnd::new(EndCause::IncompatibleSdp, Originator::System);
            self.bye(ctx, end);
        }
        taken
    }

    /// Sends the next of our queued in-dialog requests when nothing of ours is in flight:
    /// an offer first (a renegotiation, a hold change, or a refresh, which any offer is
    /// too), then MESSAGEs, then DTMF tones (paced by their timer).
    fn pump(&mut self, ctx: &mut Ctx<'_>) {
        // A callee's requests wait for the ACK of its 2xx: a peer may not know the dialog
        // before it has ACKed (SIP.js leaves such an INFO unanswered, which would hold up
        // every later request for 32 s). The ACK pumps again.
        // A PRACK out holds back the rest: a request overtaking one that was lost would make
        // its retransmission's lower CSeq unacceptable to the peer (RFC 3261 §12.2.2).
        if self.finished
            || self.in_flight.is_some()
            || self.pracks.in_flight()
            || self.accepting.is_some()
        {
            return;
        }
        let free = !self.offer_in_progress() && self.timer(CallTimer::Glare).is_none();
        if self.phase != Phase::Confirmed {
            // Before the answer only an UPDATE with an offer may go (RFC 3311 §5.1).
            if free && self.want_reoffer.is_some() && self.early_offer_allowed() {
                self.want_reoffer = None;
                self.send_offer(ctx, OfferMethod::Update, true);
            }
            return;
        }
        let hold_due = self.want_hold != self.hold.local;
        if free && let Some(method) = self.want_reoffer.take() {
            self.send_offer(ctx, method, true);
        } else if free && self.refresh.due {
            self.send_refresh(ctx);
        } else if free && hold_due {
            self.send_offer(ctx, OfferMethod::Invite, false);
        } else if self.send_transfer_message(ctx) {
            // A REFER or a NOTIFY about one went.
        } else if let Some(o) = self.requests.pop_front() {
            let mut req = self.in_dialog_request(ctx, o.method);
            add_headers(req.headers_mut(), &o.headers);
            if let Some(ct) = &o.content_type {
                req.set_body(ct, o.body);
            }
            ctx.send(req, CallRequest::Request(o.id));
        } else if self.timer(CallTimer::Dtmf).is_none() {
            self.next_tone(ctx);
        }
    }

    /// A request of the session could not be sent or got no final response.
    pub(crate) fn request_failed(&mut self, ctx: &mut Ctx<'_>, what: CallRequest, timed_out: bool) {
        if self.finished {
            return;
        }
        let (cause, status) = if timed_out {
            (EndCause::RequestTimeout, 408)
        } else {
            (EndCause::ConnectionError, 503)
        };
        let end = CallEnd::new(cause, Originator::System).with_status(status);
        let ending = self.phase == Phase::Ending;
        if self.in_flight == Some(what) {
            self.in_flight = None;
        }
        match what {
            CallRequest::Invite => self.end(ctx, (!ending).then_some(end)),
            CallRequest::Reinvite
            | CallRequest::Info
            | CallRequest::Update
            | CallRequest::UpdateOffer
                if !ending =>
            {
                if matches!(what, CallRequest::Reinvite | CallRequest::UpdateOffer)
                    && let Some(sdp) = self.sdp.as_mut()
                {
                    sdp.rollback();
                }
                // RFC 3261 §12.2.1.2: no answer inside a dialog ends it.
                self.bye(ctx, end);
            }
            CallRequest::Request(rid) => {
                ctx.event(Event::RequestCompleted {
                    id: rid,
                    status,
                    reason: if timed_out {
                        "Request Timeout".into()
                    } else {
                        "Service Unavailable".into()
                    },
                });
                self.pump(ctx);
            }
            CallRequest::Prack => self.prack_done(ctx),
            CallRequest::Refer => {
                self.transfer_failed();
                ctx.event(Event::TransferProgress {
                    call: self.id,
                    status,
                    reason: "no answer to the REFER".into(),
                });
                self.pump(ctx);
            }
            _ => {}
        }
    }

    /// A response to a request of the session (authentication challenges were the user
    /// agent's to answer first).
    pub(crate) fn handle_response(
        &mut self,
        ctx: &mut Ctx<'_>,
        what: CallRequest,
        resp: &Response,
    ) {
        if self.finished {
            return;
        }
        let code = resp.status().code();
        let done_serialized = what.is_serialized() && code >= 200;
        if done_serialized {
            self.in_flight = None;
        }
        match what {
            CallRequest::Invite => self.invite_answered(ctx, resp),
            CallRequest::Reinvite => self.reinvite_answered(ctx, resp),
            CallRequest::Info if code >= 200 => self.info_answered(ctx, code),
            CallRequest::Update if code >= 200 => self.update_answered(ctx, resp),
            CallRequest::Prack if code >= 200 => self.prack_done(ctx),
            CallRequest::UpdateOffer if code >= 200 => self.offer_answered(ctx, resp),
            CallRequest::Refer if code >= 200 => self.refer_answered(ctx, resp),
            CallRequest::Request(rid) if code >= 200 => {
                ctx.event(Event::RequestCompleted {
                    id: rid,
                    status: code,
                    reason: resp.status().reason().to_string(),
                });
            }
            _ => {}
        }
        if done_serialized {
            self.pump(ctx);
        }
    }

    /// A request inside the session's dialog (the user agent matched it by its dialog id).
    pub(crate) fn handle_request(&mut self, ctx: &mut Ctx<'_>, tx: TxId, req: &Request) -> Claim {
        if self.phase == Phase::Ending {
            let code = if *req.method() == Method::Bye {
                200
            } else {
                481
            };
            let waiting_ack = self.bye_after_ack;
            ctx.respond(tx, req, code);
            if code == 200 && !waiting_ack {
                self.end(ctx, None);
            }
            return Claim::Taken;
        }
        if let Some(Err(e)) = self.dialog.as_mut().map(|d| d.handle_request(req)) {
            ctx.respond_with(tx, req, e.status_code(), &[]);
            return Claim::Taken;
        }
        match req.method() {
            Method::Bye => {
                ctx.respond(tx, req, 200);
                if self.phase == Phase::Ringing {
                    self.reject_invite(ctx, StatusCode::new(487), &[]);
                }
                let end = CallEnd::new(EndCause::Bye, Originator::Remote)
                    .with_reason(reason_header(req.headers()));
                self.end(ctx, Some(end));
            }
            Method::Invite => self.reinvite_in(ctx, tx, req),
            Method::Info => self.info_in(ctx, tx, req),
            Method::Prack => self.prack_in(ctx, tx, req),
            Method::Update => self.update_in(ctx, tx, req),
            Method::Refer => self.refer_in(ctx, tx, req),
            Method::Notify => self.notify_in(ctx, tx, req),
            _ => return Claim::NotMine,
        }
        Claim::Taken
    }
}
