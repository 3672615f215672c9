//! Calls: the INVITE session of RFC 3261 §13–§15 with RFC 3264 offer/answer and the RFC 6337
//! hold re-INVITE, run by the user agent that owns their transactions and flows.
//!
//! A call is either ours (we sent the INVITE: *caller*) or the peer's (*callee*). It moves
//! through [`Phase`]s; once the application has been told it ended, it may linger in
//! `Ending` while RFC 3261 still asks something of us — a CANCEL waiting for the provisional
//! it needs (§9.1), the 487 or crossing 2xx after it, an ACK to wait for before a BYE
//! (§15). Every lingering call has a deadline, so none is left alive.

use std::cmp::Reverse;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use smol_str::SmolStr;

use super::{Event, Output, Pending, Purpose, RequestId, UaError, UserAgent, answer};
use crate::auth::Authenticator;
use crate::dialog::{Dialog, DialogId, DialogState, RequestHead};
use crate::message::{HeaderName, Method, Request, Response, RetryAfter, StatusCode};
use crate::session::{
    CallEnd, CallHandle, Direction, EndCause, HoldState, Originator, SdpError, SdpHandler, dtmf,
    sdp,
};
use crate::transaction::TxId;
use crate::transport::{Flow, FlowId};

/// What a client transaction of a call was sent for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum CallRequest {
    Invite,
    Reinvite,
    Bye,
    Cancel,
    Info,
    Message(RequestId),
}

/// A call's timers; each call holds at most one deadline per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum CallTimer {
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
    /// A lingering call gives up waiting (64·T1 after a CANCEL, §9.1).
    GiveUp,
}

const TIMER_KINDS: usize = 6;

/// The longest Retry-After (seconds) after which a refused re-INVITE is tried again by
/// itself; a longer one fails the renegotiation instead.
const MAX_RETRY_AFTER: u32 = 32;

/// Options for [`UserAgent::call`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CallOptions {
    /// Extra headers for the INVITE, e.g. `("X-Campaign", "7")`.
    pub headers: Vec<(String, String)>,
    /// Hide our identity (RFC 3323, RFC 3325): an anonymous From, `Privacy: id`, and our
    /// address-of-record in P-Preferred-Identity for a trusted proxy to assert.
    pub anonymous: bool,
    /// Display name for this call's From, instead of the configured one.
    pub display_name: Option<String>,
    /// Give up (CANCEL, [`EndCause::NoAnswer`]) when not answered within this time.
    pub no_answer_timeout: Option<Duration>,
}

impl CallOptions {
    /// Adds an extra header.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Calls anonymously.
    #[must_use]
    pub fn anonymous(mut self) -> Self {
        self.anonymous = true;
        self
    }

    /// Sets the From display name.
    #[must_use]
    pub fn display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }

    /// Sets the no-answer timeout.
    #[must_use]
    pub fn no_answer_timeout(mut self, after: Duration) -> Self {
        self.no_answer_timeout = Some(after);
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Caller: INVITE sent, no 2xx yet.
    Calling,
    /// Callee: ringing, waiting for the application.
    Ringing,
    /// A 2xx went out or came in.
    Confirmed,
    /// Over for the application; finishing what the RFC still asks.
    Ending,
}

/// A 2xx to an INVITE we sent and must resend until its ACK arrives (§13.3.1.4).
#[derive(Debug)]
struct Accepting {
    cseq: u32,
    bytes: Bytes,
    interval: Duration,
    /// The 2xx carried our offer (the INVITE had none): the answer comes in the ACK.
    offer_in_2xx: bool,
}

#[derive(Debug)]
pub(super) struct Call<S> {
    caller: bool,
    phase: Phase,
    /// `None` for an incoming call until it is answered.
    sdp: Option<S>,
    flow: FlowId,
    /// Caller: the INVITE as last sent (it changes on an authenticated retry). Callee: the
    /// peer's INVITE, until its ACK (then it is no longer needed and is let go).
    invite: Request,
    invite_tx: Option<TxId>,
    /// The peer's re-INVITE we are answering, until its ACK (boxed: rare, and a request
    /// is large).
    peer_reinvite: Option<Box<(TxId, Request)>>,
    /// Call-ID and our tag: how responses and in-dialog requests find the call.
    key: (SmolStr, SmolStr),
    /// Callee: the peer's From tag too, for CANCEL and merged requests.
    remote_key: Option<(SmolStr, SmolStr)>,
    pub(super) dialog: Option<Dialog>,
    /// Caller: the answer to our offer has been taken (from a 1xx or the 2xx).
    answer_taken: bool,
    /// Caller: hung up before any provisional; CANCEL when one comes (§9.1).
    cancel_pending: bool,
    hold: HoldState,
    /// The local hold the application asked for; differs from `hold.local` while a
    /// re-INVITE carrying it is pending or waiting out a glare.
    want_hold: bool,
    /// Our pending re-INVITE: its transaction and the hold state it proposes.
    reinvite: Option<(Option<TxId>, HoldState)>,
    accepting: Option<Accepting>,
    /// Caller: the ACK for the last 2xx, sent again when that 2xx repeats.
    ack: Option<(u32, Bytes)>,
    bye_after_ack: bool,
    dtmf: VecDeque<char>,
    /// MESSAGEs waiting for their turn.
    messages: VecDeque<(RequestId, String, Bytes)>,
    /// The one re-INVITE, INFO or MESSAGE of ours in flight. They go one at a time: sent
    /// together, a proxy with several workers may reorder them, and the peer must refuse
    /// a CSeq lower than one it saw (§12.2.2) — Kamailio did exactly that to a hold sent
    /// while DTMF was in flight.
    in_flight: Option<CallRequest>,
    pub(super) auth: Option<Authenticator>,
    timers: [Option<Instant>; TIMER_KINDS],
    muted: bool,
    /// `call{handle, call_id}` on the target `sansip::call`: the call's events are logged
    /// inside it, and a media layer can enter it for its own logs ([`UserAgent::call_span`]).
    span: tracing::Span,
}

impl<S> Call<S> {
    fn new(caller: bool, phase: Phase, sdp: Option<S>, flow: FlowId, invite: Request) -> Self {
        Self {
            caller,
            phase,
            sdp,
            flow,
            invite,
            invite_tx: None,
            peer_reinvite: None,
            key: (SmolStr::default(), SmolStr::default()),
            remote_key: None,
            dialog: None,
            answer_taken: false,
            cancel_pending: false,
            hold: HoldState::default(),
            want_hold: false,
            reinvite: None,
            accepting: None,
            ack: None,
            bye_after_ack: false,
            dtmf: VecDeque::new(),
            messages: VecDeque::new(),
            in_flight: None,
            auth: None,
            timers: [None; TIMER_KINDS],
            muted: false,
            span: tracing::Span::none(),
        }
    }

    fn open_span(&mut self, id: CallHandle) {
        self.span = tracing::debug_span!(
            target: "sansip::call",
            "call",
            handle = %id,
            call_id = %self.key.0,
            direction = if self.caller { "outgoing" } else { "incoming" },
        );
    }

    /// Whether a new offer may not start now (RFC 3261 §14.1): an INVITE transaction of
    /// ours or the peer's is still open.
    fn offer_in_progress(&self) -> bool {
        self.reinvite.is_some() || self.accepting.is_some()
    }
}

fn reason_header(h: &crate::message::Headers) -> Option<&str> {
    h.get(HeaderName::Reason)
}

impl<S: SdpHandler> UserAgent<S> {
    /// Places a call to `target` (a SIP URI, `user@domain`, a bare user or a `tel:` URI)
    /// with `sdp` producing its session descriptions. Progress, answer and end come as
    /// [`Event::CallProgress`], [`Event::CallAnswered`] and [`Event::CallEnded`].
    pub fn call(
        &mut self,
        now: Instant,
        target: &str,
        options: CallOptions,
        mut sdp: S,
    ) -> Result<CallHandle, UaError> {
        self.now = now;
        let flow = self.outbound.ok_or(UaError::NotConnected)?;
        let local = self.local_for(flow);
        let uri = self.target_uri(target)?;
        let offer = sdp
            .create_offer(HoldState::default().offer())
            .map_err(UaError::Sdp)?;
        let tag = self.ids.tag();
        let from = if options.anonymous {
            format!("\"Anonymous\" <sip:anonymous@anonymous.invalid>;tag={tag}")
        } else {
            format!(
                "{};tag={tag}",
                self.our_from(options.display_name.as_deref())
            )
        };
        let call_id = self.ids.call_id();
        let mut req = RequestHead {
            method: Method::Invite,
            uri: &uri,
            routes: &[],
            from: &from,
            to: &format!("<{uri}>"),
            call_id: &call_id,
            cseq: self.ids.initial_cseq(),
        }
        .build(&local, &mut self.ids);
        let h = req.headers_mut();
        h.push(HeaderName::Contact, &local.contact);
        self.common_headers(h);
        if options.anonymous {
            h.push(HeaderName::Privacy, "id");
            h.push_named("P-Preferred-Identity", &format!("<{}>", self.config.aor))
                .map_err(|_| UaError::InvalidHeader("P-Preferred-Identity".into()))?;
        }
        for (name, value) in &options.headers {
            h.push_named(name, value)
                .map_err(|_| UaError::InvalidHeader(name.clone()))?;
        }
        req.set_body("application/sdp", offer);
        self.next_call += 1;
        let id = CallHandle(self.next_call);
        let mut call = Call::new(true, Phase::Calling, Some(sdp), flow, req.clone());
        call.key = (call_id, tag);
        call.open_span(id);
        self.dialogs.insert(call.key.clone(), id);
        self.calls.insert(id, Box::new(call));
        if let Some(after) = options.no_answer_timeout {
            self.set_timer(id, CallTimer::NoAnswer, now + after);
        }
        self.send_on(now, flow, req, Purpose::Call(id, CallRequest::Invite));
        Ok(id)
    }

    /// Answers an incoming call with `sdp` producing our answer (or our offer, when the
    /// INVITE had none). If the peer's offer cannot be taken the call is refused with 488
    /// and ends with [`EndCause::IncompatibleSdp`]; the error says why.
    pub fn answer(&mut self, now: Instant, id: CallHandle, mut sdp: S) -> Result<(), UaError> {
        self.now = now;
        let call = self.live_call(id)?;
        if call.caller || call.phase != Phase::Ringing {
            return Err(UaError::InvalidState(
                "only a ringing incoming call can be answered",
            ));
        }
        let offer = call.invite.body().clone();
        let hold = call.hold;
        let body = if offer.is_empty() {
            sdp.create_offer(hold.offer())
        } else {
            let dir = sdp::media_direction(&String::from_utf8_lossy(&offer))
                .unwrap_or(Direction::Inactive);
            let hold = hold.with_remote_offer(dir);
            sdp.accept_offer(&offer, hold.answer(dir))
                .inspect(|_| self.call_mut(id).hold = hold)
        };
        let body = match body {
            Ok(b) => b,
            Err(e) => {
                self.refuse_offer(now, id, &e);
                let end =
                    CallEnd::new(EndCause::IncompatibleSdp, Originator::System).with_status(488);
                self.end_call(id, Some(end));
                return Err(UaError::Sdp(e));
            }
        };
        let call = self.call_mut(id);
        call.sdp = Some(sdp);
        call.phase = Phase::Confirmed;
        call.timers[CallTimer::NoAnswer as usize] = None;
        if let Some(d) = call.dialog.as_mut() {
            d.confirm();
        }
        let offer_in_2xx = offer.is_empty();
        self.accept_invite(now, id, body, offer_in_2xx);
        self.event(Event::CallAnswered { call: id });
        Ok(())
    }

    /// Refuses an incoming call with `status` (3xx–6xx; 480 when `None`).
    pub fn decline(
        &mut self,
        now: Instant,
        id: CallHandle,
        status: Option<u16>,
    ) -> Result<(), UaError> {
        self.now = now;
        let status = status.unwrap_or(480);
        if !(300..700).contains(&status) {
            return Err(UaError::InvalidStatus(status));
        }
        let call = self.live_call(id)?;
        if call.caller || call.phase != Phase::Ringing {
            return Err(UaError::InvalidState(
                "only a ringing incoming call can be declined",
            ));
        }
        self.reject_invite(now, id, StatusCode::new(status), &[]);
        let end = CallEnd::new(EndCause::Rejected, Originator::Local).with_status(status);
        self.end_call(id, Some(end));
        Ok(())
    }

    /// Ends a call whatever its state: CANCEL while our call rings, 480 for an incoming call
    /// not yet answered, BYE once established.
    pub fn hangup(&mut self, now: Instant, id: CallHandle) -> Result<(), UaError> {
        self.hangup_because(now, id, None)
    }

    /// [`UserAgent::hangup`], with the cause [`Event::CallEnded`] reports in place of
    /// `Bye`/`Canceled`: what the media layer uses when the call's media failed.
    pub fn hangup_because(
        &mut self,
        now: Instant,
        id: CallHandle,
        cause: Option<EndCause>,
    ) -> Result<(), UaError> {
        self.now = now;
        let call = self.live_call(id)?;
        match (call.caller, call.phase) {
            // Not yet answered: no media was negotiated, so no other cause applies.
            (false, Phase::Ringing) => self.decline(now, id, None),
            (true, Phase::Calling) => {
                let end = CallEnd::new(cause.unwrap_or(EndCause::Canceled), Originator::Local);
                self.cancel(now, id, end);
                Ok(())
            }
            _ => {
                let end = CallEnd::new(cause.unwrap_or(EndCause::Bye), Originator::Local);
                self.bye(now, id, end);
                Ok(())
            }
        }
    }

    /// Puts the peer on hold (RFC 6337): a re-INVITE offering `sendonly`, or `inactive`
    /// when the peer holds us already. [`Event::HoldChanged`] follows its acceptance;
    /// [`Event::RenegotiationFailed`] a refusal, which leaves the call as it was.
    pub fn hold(&mut self, now: Instant, id: CallHandle) -> Result<(), UaError> {
        self.set_hold(now, id, true)
    }

    /// Takes the peer off hold: `sendrecv`, or `recvonly` while the peer still holds us.
    pub fn unhold(&mut self, now: Instant, id: CallHandle) -> Result<(), UaError> {
        self.set_hold(now, id, false)
    }

    /// Mutes or unmutes our side of a call. Signalling does not change (mute is not hold);
    /// the flag is for the media layer, which stops sending audio while it is set. A UA
    /// without media (`NoMedia`, `FakeSdp`) only records it.
    pub fn set_muted(&mut self, id: CallHandle, muted: bool) -> Result<(), UaError> {
        self.live_call(id)?;
        self.call_mut(id).muted = muted;
        Ok(())
    }

    /// Whether our side of the call is muted.
    pub fn is_muted(&self, id: CallHandle) -> Result<bool, UaError> {
        Ok(self.live_call(id)?.muted)
    }

    /// The SIP Call-ID of a call (the header's value), to match it with a server's or a
    /// peer's logs.
    pub fn sip_call_id(&self, id: CallHandle) -> Result<&str, UaError> {
        self.calls
            .get(&id)
            .map(|c| c.key.0.as_str())
            .ok_or(UaError::NoSuchCall(id))
    }

    /// Whether the call is established (answered, not ended).
    pub fn is_established(&self, id: CallHandle) -> bool {
        self.live_call(id)
            .is_ok_and(|c| c.phase == Phase::Confirmed)
    }

    /// Who holds whom in a call.
    pub fn hold_state(&self, id: CallHandle) -> Result<HoldState, UaError> {
        Ok(self.live_call(id)?.hold)
    }

    /// Whether we hold the peer.
    pub fn is_held(&self, id: CallHandle) -> Result<bool, UaError> {
        Ok(self.live_call(id)?.hold.local)
    }

    /// Sends DTMF tones (`0`–`9`, `*`, `#`, `A`–`D`; `,` pauses two seconds) as SIP INFO
    /// `application/dtmf-relay`, one at a time, each after the previous one's response and
    /// the configured gap.
    pub fn send_dtmf(&mut self, now: Instant, id: CallHandle, tones: &str) -> Result<(), UaError> {
        self.now = now;
        dtmf::check(tones).map_err(UaError::InvalidDtmf)?;
        let call = self.live_call(id)?;
        if call.phase != Phase::Confirmed {
            return Err(UaError::InvalidState("dtmf needs an established call"));
        }
        self.call_mut(id).dtmf.extend(tones.chars());
        self.pump(now, id);
        Ok(())
    }

    /// Sends a MESSAGE inside a call; its final response comes as
    /// [`Event::RequestCompleted`].
    pub fn call_message(
        &mut self,
        now: Instant,
        id: CallHandle,
        content_type: &str,
        body: &str,
    ) -> Result<RequestId, UaError> {
        self.now = now;
        let call = self.live_call(id)?;
        if call.phase != Phase::Confirmed {
            return Err(UaError::InvalidState("messages need an established call"));
        }
        let rid = self.next_request_id();
        let body = Bytes::copy_from_slice(body.as_bytes());
        self.call_mut(id)
            .messages
            .push_back((rid, content_type.to_string(), body));
        self.pump(now, id);
        Ok(rid)
    }

    /// The session-description handler of a call, e.g. to reach its media.
    pub fn sdp_handler(&self, id: CallHandle) -> Option<&S> {
        self.calls.get(&id)?.sdp.as_ref()
    }

    /// The session-description handler of a call, mutably.
    pub fn sdp_handler_mut(&mut self, id: CallHandle) -> Option<&mut S> {
        self.calls.get_mut(&id)?.sdp.as_mut()
    }

    /// Calls the application can still act on.
    pub fn calls(&self) -> impl Iterator<Item = CallHandle> + '_ {
        self.calls
            .iter()
            .filter(|(_, c)| c.phase != Phase::Ending)
            .map(|(id, _)| *id)
    }

    /// Every call the UA still keeps state for, including ended ones it is finishing
    /// (waiting for a 487 or an ACK). Zero once everything has settled.
    pub fn call_states(&self) -> usize {
        self.calls.len()
    }

    // ---- internals -------------------------------------------------------------------

    fn live_call(&self, id: CallHandle) -> Result<&Call<S>, UaError> {
        self.calls
            .get(&id)
            .map(|c| &**c)
            .filter(|c| c.phase != Phase::Ending)
            .ok_or(UaError::NoSuchCall(id))
    }

    /// A call known to exist; callers check first.
    fn call_mut(&mut self, id: CallHandle) -> &mut Call<S> {
        #[allow(clippy::expect_used)]
        self.calls.get_mut(&id).expect("call checked by the caller")
    }

    pub(super) fn event(&mut self, e: Event) {
        if let Some(call) = e.call().and_then(|id| self.calls.get(&id)) {
            call.span
                .in_scope(|| tracing::debug!(target: "sansip::call", event = e.name()));
        }
        self.out.push_back(Output::Event(e));
    }

    /// The call's `tracing` span (`call{handle, call_id, direction}`), for logs about the
    /// call from outside the user agent (its media, the application).
    pub fn call_span(&self, id: CallHandle) -> Option<&tracing::Span> {
        self.calls.get(&id).map(|c| &c.span)
    }

    fn set_timer(&mut self, id: CallHandle, kind: CallTimer, at: Instant) {
        if let Some(c) = self.calls.get_mut(&id) {
            c.timers[kind as usize] = Some(at);
            self.call_timers.push(Reverse((at, id, kind)));
        }
    }

    /// The next deadline of any call (stale entries only cause an early, harmless wake-up).
    pub(super) fn next_call_timer(&self) -> Option<Instant> {
        self.call_timers.peek().map(|Reverse((at, _, _))| *at)
    }

    pub(super) fn fire_call_timers(&mut self, now: Instant) {
        while let Some(Reverse((at, id, kind))) = self.call_timers.peek().copied() {
            if at > now {
                break;
            }
            self.call_timers.pop();
            let Some(call) = self.calls.get_mut(&id) else {
                continue;
            };
            if call.timers[kind as usize] != Some(at) {
                continue;
            }
            call.timers[kind as usize] = None;
            self.call_timer(now, id, kind);
        }
    }

    fn call_timer(&mut self, now: Instant, id: CallHandle, kind: CallTimer) {
        let call = self.call_mut(id);
        match kind {
            CallTimer::NoAnswer => match call.phase {
                Phase::Ringing => {
                    self.reject_invite(now, id, StatusCode::new(480), &[]);
                    let end = CallEnd::new(EndCause::NoAnswer, Originator::System).with_status(480);
                    self.end_call(id, Some(end));
                }
                Phase::Calling => {
                    self.cancel(
                        now,
                        id,
                        CallEnd::new(EndCause::NoAnswer, Originator::System),
                    );
                }
                _ => {}
            },
            CallTimer::Retransmit2xx => {
                let flow = call.flow;
                let t2 = self.config.timers.t2();
                let Some(a) = self.call_mut(id).accepting.as_mut() else {
                    return;
                };
                let bytes = a.bytes.clone();
                a.interval = (a.interval * 2).min(t2);
                let next = now + a.interval;
                self.stats.retransmissions += 1;
                self.out.push_back(Output::Transmit { flow, bytes });
                self.set_timer(id, CallTimer::Retransmit2xx, next);
            }
            CallTimer::AckWait => {
                call.accepting = None;
                call.timers[CallTimer::Retransmit2xx as usize] = None;
                let ended = call.phase == Phase::Ending;
                let end = CallEnd::new(EndCause::NoAck, Originator::System);
                self.send_bye(now, id);
                self.end_call(id, (!ended).then_some(end));
            }
            CallTimer::Glare | CallTimer::Dtmf => self.pump(now, id),
            CallTimer::GiveUp => {
                if let Some(tx) = call.invite_tx {
                    self.tx.abandon(tx);
                }
                self.end_call(id, None);
            }
        }
    }

    /// Tells the application (when `end` is given) and forgets the call.
    fn end_call(&mut self, id: CallHandle, end: Option<CallEnd>) {
        if let Some(end) = end {
            self.event(Event::CallEnded { call: id, end });
        }
        if let Some(call) = self.calls.remove(&id) {
            // A re-INVITE still out when the dialog ends may never get a final response
            // (its 2xx was lost and the peer stopped resending on our BYE), and an INVITE
            // client transaction past Calling has no timer of its own: end it here.
            if let Some((Some(tx), _)) = call.reinvite {
                self.tx.abandon(tx);
                self.pending.remove(&tx);
            }
            self.dialogs.remove(&call.key);
            if let Some(k) = &call.remote_key {
                self.incoming.remove(k);
            }
        }
    }

    /// Tells the application now, and keeps the call until the RFC is satisfied.
    fn linger(&mut self, id: CallHandle, end: CallEnd) {
        self.call_mut(id).phase = Phase::Ending;
        self.event(Event::CallEnded { call: id, end });
    }

    fn common_headers(&self, h: &mut crate::message::Headers) {
        h.push(HeaderName::Allow, answer::ALLOW);
        h.push(HeaderName::Supported, answer::SUPPORTED);
        if let Some(ua) = &self.config.user_agent {
            h.push(HeaderName::UserAgent, ua);
        }
    }

    fn in_dialog_request(&mut self, id: CallHandle, method: Method) -> Request {
        // The call's flow may have been replaced by a reconnect: speak for the live one.
        let local = self.local_for(self.call_flow(id));
        let dialog = self.calls.get_mut(&id).and_then(|c| c.dialog.as_mut());
        let mut req = match dialog {
            Some(d) => d.request(method, &local, &mut self.ids),
            None => Request::new(method, ""),
        };
        if let Some(ua) = &self.config.user_agent {
            req.headers_mut().push(HeaderName::UserAgent, ua);
        }
        req
    }

    /// The flow a call's requests leave by: its own while it lives, else the outbound one
    /// (the runtime reconnected).
    fn call_flow(&self, id: CallHandle) -> FlowId {
        let own = self.calls.get(&id).map(|c| c.flow);
        match own {
            Some(f) if self.flows.get(f).is_some() => f,
            other => self.outbound.or(other).unwrap_or(FlowId(0)),
        }
    }

    fn send_bye(&mut self, now: Instant, id: CallHandle) {
        if self.calls.get(&id).is_none_or(|c| c.dialog.is_none()) {
            return;
        }
        let req = self.in_dialog_request(id, Method::Bye);
        let flow = self.call_flow(id);
        self.send_on(now, flow, req, Purpose::Call(id, CallRequest::Bye));
    }

    /// BYE now, or after the ACK when our 2xx is still unacknowledged (§15).
    fn bye(&mut self, now: Instant, id: CallHandle, end: CallEnd) {
        let call = self.call_mut(id);
        if !call.caller && call.phase == Phase::Confirmed && call.accepting.is_some() {
            call.bye_after_ack = true;
            self.linger(id, end);
            return;
        }
        self.send_bye(now, id);
        self.end_call(id, Some(end));
    }

    /// CANCEL our INVITE, at once if a provisional came, else when one does (§9.1).
    fn cancel(&mut self, now: Instant, id: CallHandle, end: CallEnd) {
        let tx = self.call_mut(id).invite_tx;
        self.linger(id, end);
        match tx {
            Some(tx) if self.tx.has_provisional(tx) => self.send_cancel(now, id, tx),
            _ => self.call_mut(id).cancel_pending = true,
        }
        let give_up = now + self.config.timers.t1() * 64;
        self.set_timer(id, CallTimer::GiveUp, give_up);
    }

    fn send_cancel(&mut self, now: Instant, id: CallHandle, tx: TxId) {
        self.call_mut(id).cancel_pending = false;
        if let Some(cancel) = self.tx.cancel_request(tx) {
            let flow = self.call_flow(id);
            self.send_on(now, flow, cancel, Purpose::Call(id, CallRequest::Cancel));
        }
    }

    /// The UAS answer to a call's INVITE, with our tag, Contact and the Record-Route the
    /// dialog was built from (§12.1.1).
    fn invite_response(&self, id: CallHandle, status: StatusCode) -> Option<(TxId, Response)> {
        let call = self.calls.get(&id)?;
        let (tx, invite) = match call.peer_reinvite.as_deref() {
            Some((tx, req)) => (*tx, req),
            None => (call.invite_tx?, &call.invite),
        };
        let mut resp = Response::from_request(invite, status);
        resp.set_to_tag(&call.key.1);
        let code = resp.status().code();
        if code < 300 {
            let h = resp.headers_mut();
            h.copy_from(invite.headers(), HeaderName::RecordRoute);
            h.push(HeaderName::Contact, &self.local_for(call.flow).contact);
        }
        if let Some(ua) = &self.config.user_agent {
            resp.headers_mut().push(HeaderName::Server, ua);
        }
        Some((tx, resp))
    }

    fn reject_invite(
        &mut self,
        now: Instant,
        id: CallHandle,
        status: StatusCode,
        extra: &[(HeaderName, String)],
    ) {
        if let Some((tx, mut resp)) = self.invite_response(id, status) {
            for (name, value) in extra {
                resp.headers_mut().push(*name, value);
            }
            let _ = self.tx.respond(now, tx, &resp);
            self.drain_tx();
        }
    }

    /// 488 with a Warning naming what was wrong (RFC 3261 §21.4.26, §20.43).
    fn refuse_offer(&mut self, now: Instant, id: CallHandle, e: &SdpError) {
        let text = e.to_string().replace(['"', '\\'], "'");
        let warning = format!("399 sansip \"{text}\"");
        self.reject_invite(
            now,
            id,
            StatusCode::new(488),
            &[(HeaderName::Warning, warning)],
        );
    }

    /// Sends our 2xx to the call's INVITE (initial or re-INVITE, whichever `invite_tx` is)
    /// and resends it until the ACK comes.
    fn accept_invite(&mut self, now: Instant, id: CallHandle, body: Bytes, offer_in_2xx: bool) {
        let Some((tx, mut resp)) = self.invite_response(id, StatusCode::new(200)) else {
            return;
        };
        self.common_headers(resp.headers_mut());
        resp.headers_mut().remove(HeaderName::UserAgent);
        resp.set_body("application/sdp", body);
        let _ = self.tx.respond(now, tx, &resp);
        self.drain_tx();
        let t1 = self.config.timers.t1();
        let flow = self.call_mut(id).flow;
        let reliable = self
            .flows
            .get(flow)
            .is_some_and(|f| f.info.transport.is_reliable());
        let call = self.call_mut(id);
        let answered = match call.peer_reinvite.as_deref() {
            Some((_, req)) => req,
            None => &call.invite,
        };
        call.accepting = Some(Accepting {
            cseq: answered.cseq().map(|c| c.seq).unwrap_or_default(),
            bytes: resp.to_bytes(),
            interval: t1,
            offer_in_2xx,
        });
        if !reliable {
            self.set_timer(id, CallTimer::Retransmit2xx, now + t1);
        }
        self.set_timer(id, CallTimer::AckWait, now + t1 * 64);
    }

    fn set_hold(&mut self, now: Instant, id: CallHandle, local: bool) -> Result<(), UaError> {
        self.now = now;
        let call = self.live_call(id)?;
        if call.phase != Phase::Confirmed {
            return Err(UaError::InvalidState("hold needs an established call"));
        }
        // While an offer is out (ours or the peer's), another request of ours is in flight
        // or a retry is scheduled, the wish is remembered and goes out after.
        self.call_mut(id).want_hold = local;
        self.pump(now, id);
        Ok(())
    }

    /// Sends the next of our queued in-dialog requests when nothing of ours is in flight:
    /// a wanted hold change first, then MESSAGEs, then DTMF tones (paced by their timer).
    fn pump(&mut self, now: Instant, id: CallHandle) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        // A callee's requests wait for the ACK of its 2xx: a peer may not know the dialog
        // before it has ACKed (SIP.js leaves such an INFO unanswered, which would hold up
        // every later request for 32 s). The ACK pumps again.
        if call.phase != Phase::Confirmed || call.in_flight.is_some() || call.accepting.is_some() {
            return;
        }
        let hold_due = call.want_hold != call.hold.local
            && !call.offer_in_progress()
            && call.timers[CallTimer::Glare as usize].is_none();
        if hold_due {
            self.send_reinvite(now, id);
        } else if let Some((rid, ct, body)) = call.messages.pop_front() {
            let mut req = self.in_dialog_request(id, Method::Message);
            req.set_body(&ct, body);
            let flow = self.call_flow(id);
            self.send_on(now, flow, req, Purpose::Call(id, CallRequest::Message(rid)));
        } else if call.timers[CallTimer::Dtmf as usize].is_none() {
            self.next_tone(now, id);
        }
    }

    /// RFC 3261 §14.1: the Call-ID's owner (the caller) waits 2.1–4 s, the other 0–2 s.
    fn schedule_glare(&mut self, now: Instant, id: CallHandle) {
        let caller = self.call_mut(id).caller;
        let ms = if caller {
            2100 + self.ids.below(1901)
        } else {
            self.ids.below(2001)
        };
        self.set_timer(id, CallTimer::Glare, now + Duration::from_millis(ms));
    }

    fn send_reinvite(&mut self, now: Instant, id: CallHandle) {
        let call = self.call_mut(id);
        let target = HoldState {
            local: call.want_hold,
            remote: call.hold.remote,
        };
        let Some(sdp) = call.sdp.as_mut() else {
            return;
        };
        let offer = match sdp.create_offer(target.offer()) {
            Ok(o) => o,
            Err(_) => {
                call.want_hold = call.hold.local;
                self.event(Event::RenegotiationFailed {
                    call: id,
                    status: 488,
                });
                return;
            }
        };
        call.reinvite = Some((None, target));
        let mut req = self.in_dialog_request(id, Method::Invite);
        let h = req.headers_mut();
        h.push(HeaderName::Allow, answer::ALLOW);
        h.push(HeaderName::Supported, answer::SUPPORTED);
        req.set_body("application/sdp", offer);
        let flow = self.call_flow(id);
        self.send_on(now, flow, req, Purpose::Call(id, CallRequest::Reinvite));
    }

    fn next_tone(&mut self, now: Instant, id: CallHandle) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        match call.dtmf.pop_front() {
            None => {}
            Some(',') => self.set_timer(id, CallTimer::Dtmf, now + Duration::from_secs(2)),
            Some(tone) => {
                let body = dtmf::relay_body(tone, self.config.dtmf_duration);
                let mut req = self.in_dialog_request(id, Method::Info);
                req.set_body("application/dtmf-relay", Bytes::from(body));
                let flow = self.call_flow(id);
                self.send_on(now, flow, req, Purpose::Call(id, CallRequest::Info));
            }
        }
    }

    /// Our INVITE went out again (with credentials): responses now answer this one.
    pub(super) fn call_invite_sent(&mut self, id: CallHandle, req: &Request) {
        if let Some(c) = self.calls.get_mut(&id) {
            c.invite = req.clone();
        }
    }

    /// Records the transaction a call's request went out on.
    pub(super) fn track(&mut self, id: CallHandle, what: CallRequest, tx: TxId) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        match what {
            CallRequest::Invite => call.invite_tx = Some(tx),
            CallRequest::Reinvite => {
                if let Some(r) = call.reinvite.as_mut() {
                    r.0 = Some(tx);
                }
            }
            _ => {}
        }
        if matches!(
            what,
            CallRequest::Reinvite | CallRequest::Info | CallRequest::Message(_)
        ) {
            call.in_flight = Some(what);
        }
    }

    /// A request of a call could not be sent or got no final response.
    pub(super) fn call_request_failed(
        &mut self,
        now: Instant,
        id: CallHandle,
        what: CallRequest,
        timed_out: bool,
    ) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let (cause, status) = if timed_out {
            (EndCause::RequestTimeout, 408)
        } else {
            (EndCause::ConnectionError, 503)
        };
        let end = CallEnd::new(cause, Originator::System).with_status(status);
        let ending = call.phase == Phase::Ending;
        if call.in_flight == Some(what) {
            call.in_flight = None;
        }
        match what {
            CallRequest::Invite => self.end_call(id, (!ending).then_some(end)),
            CallRequest::Reinvite | CallRequest::Info if !ending => {
                if what == CallRequest::Reinvite
                    && let Some(sdp) = call.sdp.as_mut()
                {
                    sdp.rollback();
                }
                // RFC 3261 §12.2.1.2: no answer inside a dialog ends it.
                self.bye(now, id, end);
            }
            CallRequest::Message(rid) => {
                self.event(Event::RequestCompleted {
                    id: rid,
                    status,
                    reason: if timed_out {
                        "Request Timeout".into()
                    } else {
                        "Service Unavailable".into()
                    },
                });
                self.pump(now, id);
            }
            _ => {}
        }
    }

    /// A response to a request of call `id`; `pending` is given for final responses.
    pub(super) fn call_response(
        &mut self,
        now: Instant,
        id: CallHandle,
        what: CallRequest,
        pending: Option<Pending>,
        resp: &Response,
    ) {
        let code = resp.status().code();
        if !self.calls.contains_key(&id) {
            if code < 300 && what == CallRequest::Invite {
                self.stray_2xx(now, resp);
            }
            return;
        }
        let serialized = matches!(
            what,
            CallRequest::Reinvite | CallRequest::Info | CallRequest::Message(_)
        );
        if serialized && code >= 200 {
            self.call_mut(id).in_flight = None;
        }
        if (code == 401 || code == 407)
            && let Some(p) = pending
            && self.call_mut(id).phase != Phase::Ending
            && self.retry_with_auth(now, p, resp)
        {
            return;
        }
        match what {
            CallRequest::Invite => self.invite_answered(now, id, resp),
            CallRequest::Reinvite => self.reinvite_answered(now, id, resp),
            CallRequest::Info if code >= 200 => {
                if code == 481 || code == 408 {
                    self.in_dialog_gone(now, id, code);
                } else {
                    let at = now + self.config.dtmf_gap;
                    self.set_timer(id, CallTimer::Dtmf, at);
                }
            }
            CallRequest::Message(rid) if code >= 200 => {
                self.event(Event::RequestCompleted {
                    id: rid,
                    status: code,
                    reason: resp.status().reason().to_string(),
                });
            }
            _ => {}
        }
        if serialized && code >= 200 {
            self.pump(now, id);
        }
    }

    /// Hands the peer's answer to our offer to the handler; an answer it cannot take ends
    /// the call (RFC 3261 §13.2.2.4 leaves nothing else once the ACK is out). Returns
    /// whether the call goes on.
    fn take_answer(&mut self, now: Instant, id: CallHandle, answer: &[u8]) -> bool {
        let taken = self
            .call_mut(id)
            .sdp
            .as_mut()
            .is_some_and(|s| s.accept_answer(answer).is_ok());
        if !taken {
            let end = CallEnd::new(EndCause::IncompatibleSdp, Originator::System);
            self.bye(now, id, end);
        }
        taken
    }

    /// RFC 3261 §12.2.1.2: a 481 or 408 to a request inside the dialog ends it.
    fn in_dialog_gone(&mut self, now: Instant, id: CallHandle, code: u16) {
        if self.call_mut(id).phase == Phase::Ending {
            return;
        }
        let end = CallEnd::new(EndCause::from_status(code), Originator::Remote).with_status(code);
        self.bye(now, id, end);
    }

    fn invite_answered(&mut self, now: Instant, id: CallHandle, resp: &Response) {
        let code = resp.status().code();
        let call = self.call_mut(id);
        match code {
            100 => {}
            101..=199 => {
                if call.phase == Phase::Ending {
                    if call.cancel_pending
                        && let Some(tx) = call.invite_tx
                    {
                        self.send_cancel(now, id, tx);
                    }
                    return;
                }
                let tag = resp.headers().to_tag().ok().flatten().map(SmolStr::new);
                let fresh = tag.is_some()
                    && call
                        .dialog
                        .as_ref()
                        .is_none_or(|d| Some(&d.id().remote_tag) != tag.as_ref());
                if fresh && let Ok(d) = Dialog::uac(&call.invite, resp) {
                    call.dialog = Some(d);
                }
                let early_media = !resp.body().is_empty();
                if early_media
                    && !call.answer_taken
                    && let Some(sdp) = call.sdp.as_mut()
                    && sdp.accept_answer(resp.body()).is_ok()
                {
                    call.answer_taken = true;
                }
                self.event(Event::CallProgress {
                    call: id,
                    status: code,
                    reason: resp.status().reason().to_string(),
                    early_media,
                });
            }
            200..=299 => self.invite_2xx(now, id, resp),
            _ => {
                if call.phase != Phase::Ending {
                    if let Some(sdp) = call.sdp.as_mut() {
                        sdp.rollback();
                    }
                    let end = CallEnd::new(EndCause::from_status(code), Originator::Remote)
                        .with_status(code)
                        .with_reason(reason_header(resp.headers()));
                    self.end_call(id, Some(end));
                } else {
                    self.end_call(id, None);
                }
            }
        }
    }

    /// The first 2xx confirms the call; a repeat is ACKed again; a 2xx from another fork
    /// is ACKed and hung up (§13.2.2.4).
    fn invite_2xx(&mut self, now: Instant, id: CallHandle, resp: &Response) {
        let call = self.call_mut(id);
        let seq = resp.cseq().map(|c| c.seq).unwrap_or_default();
        let tag = resp.headers().to_tag().ok().flatten().unwrap_or_default();
        if let Some(d) = &call.dialog
            && d.state() == DialogState::Confirmed
        {
            // Only our own initial INVITE can fork; a callee's `invite` is the peer's.
            let initial = call.caller && call.invite.cseq().is_ok_and(|c| c.seq == seq);
            if d.id().remote_tag == tag {
                if let Some((ack_seq, bytes)) = &call.ack
                    && *ack_seq == seq
                {
                    let (flow, bytes) = (call.flow, bytes.clone());
                    self.out.push_back(Output::Transmit { flow, bytes });
                }
            } else if initial {
                self.ack_and_bye_fork(now, id, resp);
            }
            return;
        }
        let dialog = match call.dialog.take() {
            Some(mut d) if d.id().remote_tag == tag => {
                d.handle_response(&Method::Invite, resp).map(|()| d)
            }
            _ => Dialog::uac(&call.invite, resp),
        };
        let Ok(dialog) = dialog else {
            let end = CallEnd::new(EndCause::SipFailure, Originator::System)
                .with_status(resp.status().code());
            let ending = call.phase == Phase::Ending;
            self.end_call(id, (!ending).then_some(end));
            return;
        };
        let flow = call.flow;
        let local = self.local_for(flow);
        let ack = dialog.ack(seq, &local, &mut self.ids).to_bytes();
        self.out.push_back(Output::Transmit {
            flow,
            bytes: ack.clone(),
        });
        let call = self.call_mut(id);
        call.ack = Some((seq, ack));
        call.dialog = Some(dialog);
        call.timers[CallTimer::NoAnswer as usize] = None;
        call.timers[CallTimer::GiveUp as usize] = None;
        if call.phase == Phase::Ending {
            // Our CANCEL crossed the 2xx: the call exists now, so end it properly.
            self.send_bye(now, id);
            self.end_call(id, None);
            return;
        }
        let usable = if call.answer_taken {
            Ok(())
        } else if resp.body().is_empty() {
            Err(())
        } else {
            call.sdp
                .as_mut()
                .map_or(Err(()), |s| s.accept_answer(resp.body()).map_err(|_| ()))
        };
        if usable.is_err() {
            let end = CallEnd::new(EndCause::IncompatibleSdp, Originator::System);
            self.send_bye(now, id);
            self.end_call(id, Some(end));
            return;
        }
        call.answer_taken = true;
        call.phase = Phase::Confirmed;
        self.event(Event::CallAnswered { call: id });
    }

    fn ack_and_bye_fork(&mut self, now: Instant, id: CallHandle, resp: &Response) {
        let call = self.call_mut(id);
        let Ok(mut fork) = Dialog::uac(&call.invite, resp) else {
            return;
        };
        let flow = call.flow;
        let local = self.local_for(flow);
        let seq = resp.cseq().map(|c| c.seq).unwrap_or_default();
        let ack = fork.ack(seq, &local, &mut self.ids).to_bytes();
        self.out.push_back(Output::Transmit { flow, bytes: ack });
        let bye = fork.request(Method::Bye, &local, &mut self.ids);
        self.send_on(now, flow, bye, Purpose::Call(id, CallRequest::Bye));
    }

    /// A 2xx to INVITE that no transaction claims any more (it outlived timer M, or the
    /// first final already completed the transaction): a repeat to ACK again, or another
    /// fork's answer to ACK and hang up.
    pub(super) fn stray_2xx(&mut self, now: Instant, resp: &Response) {
        let h = resp.headers();
        let (Ok(call_id), Ok(Some(tag))) = (h.call_id(), h.from_tag()) else {
            return;
        };
        let key = (SmolStr::new(call_id), SmolStr::new(tag));
        let Some(&id) = self.dialogs.get(&key) else {
            return;
        };
        let confirmed = self.calls.get(&id).is_some_and(|c| {
            c.dialog
                .as_ref()
                .is_some_and(|d| d.state() == DialogState::Confirmed)
        });
        if confirmed {
            self.invite_2xx(now, id, resp);
        }
    }

    fn reinvite_answered(&mut self, now: Instant, id: CallHandle, resp: &Response) {
        let code = resp.status().code();
        if code < 200 {
            return;
        }
        let call = self.call_mut(id);
        let Some((_, target)) = call.reinvite.take() else {
            if code < 300 {
                self.stray_2xx(now, resp);
            }
            return;
        };
        if code >= 300 {
            if let Some(sdp) = call.sdp.as_mut() {
                sdp.rollback();
            }
            let retry_after = resp
                .headers()
                .get(HeaderName::RetryAfter)
                .and_then(|v| RetryAfter::parse(v).ok())
                .map(|r| r.seconds);
            match code {
                491 => self.schedule_glare(now, id),
                // §14.2: the peer was still busy with another INVITE; try once it is not.
                500 | 503 if retry_after.is_some_and(|s| s <= MAX_RETRY_AFTER) => {
                    let secs = u64::from(retry_after.unwrap_or_default());
                    let at = now + Duration::from_secs(secs) + Duration::from_millis(1);
                    self.set_timer(id, CallTimer::Glare, at);
                }
                408 | 481 => self.in_dialog_gone(now, id, code),
                _ => {
                    call.want_hold = call.hold.local;
                    self.event(Event::RenegotiationFailed {
                        call: id,
                        status: code,
                    });
                }
            }
            return;
        }
        let seq = resp.cseq().map(|c| c.seq).unwrap_or_default();
        let flow = call.flow;
        let local = self.local_for(flow);
        let Some(dialog) = self.calls.get_mut(&id).and_then(|c| c.dialog.as_mut()) else {
            return;
        };
        let _ = dialog.handle_response(&Method::Invite, resp);
        let ack = dialog.ack(seq, &local, &mut self.ids).to_bytes();
        self.out.push_back(Output::Transmit {
            flow,
            bytes: ack.clone(),
        });
        self.call_mut(id).ack = Some((seq, ack));
        if !self.take_answer(now, id, resp.body()) {
            return;
        }
        let call = self.call_mut(id);
        let before = call.hold;
        call.hold.local = target.local;
        let hold = call.hold;
        if hold != before {
            self.event(Event::HoldChanged {
                call: id,
                local: hold.local,
                remote: hold.remote,
            });
        }
    }

    // ---- requests from the peer ------------------------------------------------------

    /// A new INVITE outside any dialog: a call for the application.
    pub(super) fn invite_in(&mut self, now: Instant, flow: Flow, tx: TxId, req: Request) {
        let h = req.headers();
        // An RFC 2543 peer sends no From tag (RFC 4475 §3.4.1): the empty tag stands in.
        let remote_key = match (h.call_id(), h.from_tag()) {
            (Ok(c), Ok(t)) => (SmolStr::new(c), SmolStr::new(t.unwrap_or_default())),
            _ => {
                self.respond(now, tx, &req, StatusCode::new(400));
                return;
            }
        };
        // §8.2.2.2: the same request again by another path (a loop or a fork) is merged.
        if self.incoming.contains_key(&remote_key) {
            self.respond(now, tx, &req, StatusCode::new(482));
            return;
        }
        let tag = self.ids.tag();
        let seq = self.ids.initial_cseq();
        let dialog = match Dialog::uas(&req, &tag, seq, DialogState::Early) {
            Ok(d) => d,
            Err(e) => {
                let status = StatusCode::with_reason(e.status(), &e.to_string())
                    .unwrap_or_else(|| StatusCode::new(e.status()));
                self.respond(now, tx, &req, status);
                return;
            }
        };
        self.next_call += 1;
        let id = CallHandle(self.next_call);
        let event = Event::IncomingCall {
            call: id,
            from: h.get(HeaderName::From).unwrap_or_default().to_string(),
            to: h.get(HeaderName::To).unwrap_or_default().to_string(),
            headers: h
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        };
        let mut call = Call::new(false, Phase::Ringing, None, flow.id, req);
        call.invite_tx = Some(tx);
        call.key = (remote_key.0.clone(), tag);
        call.open_span(id);
        call.remote_key = Some(remote_key.clone());
        call.dialog = Some(dialog);
        self.dialogs.insert(call.key.clone(), id);
        self.incoming.insert(remote_key, id);
        self.calls.insert(id, Box::new(call));
        if let Some((tx, resp)) = self.invite_response(id, StatusCode::new(180)) {
            let _ = self.tx.respond(now, tx, &resp);
            self.drain_tx();
        }
        let at = now + self.config.no_answer_timeout;
        self.set_timer(id, CallTimer::NoAnswer, at);
        self.event(event);
    }

    /// A CANCEL the transaction layer matched to `invite` (or to nothing).
    pub(super) fn cancel_in(
        &mut self,
        now: Instant,
        tx: TxId,
        invite: Option<TxId>,
        req: &Request,
    ) {
        let h = req.headers();
        let key = match (h.call_id(), h.from_tag()) {
            (Ok(c), Ok(t)) => Some((SmolStr::new(c), SmolStr::new(t.unwrap_or_default()))),
            _ => None,
        };
        let id = key
            .and_then(|k| self.incoming.get(&k).copied())
            .filter(|id| {
                self.calls
                    .get(id)
                    .is_some_and(|c| c.invite_tx == invite && invite.is_some())
            });
        // §9.2: 200 to a CANCEL that matched a transaction, even one already answered.
        let status = if invite.is_some() { 200 } else { 481 };
        self.respond(now, tx, req, StatusCode::new(status));
        let Some(id) = id else {
            return;
        };
        if self.call_mut(id).phase != Phase::Ringing {
            return;
        }
        self.reject_invite(now, id, StatusCode::new(487), &[]);
        let end =
            CallEnd::new(EndCause::Canceled, Originator::Remote).with_reason(reason_header(h));
        self.end_call(id, Some(end));
    }

    /// An ACK for a 2xx: the dialog's (§13.3.1.4).
    pub(super) fn ack_in(&mut self, now: Instant, req: &Request) {
        let Some(id) = self.dialog_of(req) else {
            return;
        };
        let call = self.call_mut(id);
        let seq = req.cseq().map(|c| c.seq).unwrap_or_default();
        let Some(accepting) = call.accepting.take_if(|a| a.cseq == seq) else {
            return;
        };
        call.timers[CallTimer::Retransmit2xx as usize] = None;
        call.timers[CallTimer::AckWait as usize] = None;
        // The INVITE this ACK completes is answered for good: let it go.
        if call.peer_reinvite.take().is_none() && !call.caller {
            call.invite = Request::new(Method::Invite, "");
        }
        if call.bye_after_ack {
            self.send_bye(now, id);
            self.end_call(id, None);
            return;
        }
        if accepting.offer_in_2xx && !self.take_answer(now, id, req.body()) {
            return;
        }
        // Whatever waited for this exchange (a hold wanted meanwhile) may go now.
        self.pump(now, id);
    }

    fn dialog_of(&self, req: &Request) -> Option<CallHandle> {
        let d: DialogId = DialogId::of_incoming(req).ok().flatten()?;
        let id = *self.dialogs.get(&(d.call_id, d.local_tag))?;
        let call = self.calls.get(&id)?;
        let dialog = call.dialog.as_ref()?;
        (dialog.id().remote_tag == d.remote_tag).then_some(id)
    }

    /// A request with a To tag: it belongs to a call's dialog, or gets 481 (§12.2.2).
    pub(super) fn in_dialog(&mut self, now: Instant, tx: TxId, req: Request) {
        let Some(id) = self.dialog_of(&req) else {
            self.respond(now, tx, &req, StatusCode::new(481));
            return;
        };
        let call = self.call_mut(id);
        if call.phase == Phase::Ending {
            let status = if *req.method() == Method::Bye {
                200
            } else {
                481
            };
            let waiting_ack = call.bye_after_ack;
            self.respond(now, tx, &req, StatusCode::new(status));
            if status == 200 && !waiting_ack {
                self.end_call(id, None);
            }
            return;
        }
        if let Some(Err(e)) = call.dialog.as_mut().map(|d| d.handle_request(&req)) {
            self.respond(now, tx, &req, StatusCode::new(e.status()));
            return;
        }
        match req.method() {
            Method::Bye => {
                self.respond(now, tx, &req, StatusCode::new(200));
                if self.call_mut(id).phase == Phase::Ringing {
                    self.reject_invite(now, id, StatusCode::new(487), &[]);
                }
                let end = CallEnd::new(EndCause::Bye, Originator::Remote)
                    .with_reason(reason_header(req.headers()));
                self.end_call(id, Some(end));
            }
            Method::Invite => self.reinvite_in(now, id, tx, &req),
            Method::Info => self.info_in(now, id, tx, &req),
            Method::Message => self.message_received(now, tx, &req, Some(id)),
            Method::Options => {
                let status = StatusCode::new(200);
                let extra = answer::extra_headers(&req, &status, &self.config.message_types);
                self.respond_with(now, tx, &req, status, &extra);
            }
            _ => {
                let status = StatusCode::new(405);
                let extra = answer::extra_headers(&req, &status, &self.config.message_types);
                self.respond_with(now, tx, &req, status, &extra);
            }
        }
    }

    /// The peer's re-INVITE: hold, unhold, or a refresh (RFC 6337, RFC 3261 §14.2).
    fn reinvite_in(&mut self, now: Instant, id: CallHandle, tx: TxId, req: &Request) {
        // §14.2 asks for a 500 only while the previous INVITE has no final response. A 2xx
        // of ours still waiting for its ACK does not count: the peer may not start an INVITE
        // while its previous one is in progress (§14.1), and a timed-out re-INVITE ends the
        // dialog, so this re-INVITE proves our 2xx arrived and stands in for an ACK that was
        // lost or is late. Not when our 2xx carried an offer: its answer is in that ACK, so
        // the 500 stays until the ACK comes.
        let call = self.call_mut(id);
        let implied_ack = call.phase == Phase::Confirmed
            && call.accepting.as_ref().is_some_and(|a| !a.offer_in_2xx);
        if implied_ack {
            call.accepting = None;
            call.timers[CallTimer::Retransmit2xx as usize] = None;
            call.timers[CallTimer::AckWait as usize] = None;
            if call.peer_reinvite.take().is_none() && !call.caller {
                call.invite = Request::new(Method::Invite, "");
            }
        }
        self.answer_reinvite(now, id, tx, req);
        if implied_ack {
            // As after an ACK: what waited for the exchange may go, unless the new one
            // is under way (then its ACK pumps).
            self.pump(now, id);
        }
    }

    fn answer_reinvite(&mut self, now: Instant, id: CallHandle, tx: TxId, req: &Request) {
        let call = self.call_mut(id);
        if call.phase != Phase::Confirmed || call.accepting.is_some() {
            // §14.2: still answering the previous INVITE.
            let secs = self.ids.below(11);
            let extra = [(HeaderName::RetryAfter, secs.to_string())];
            self.respond_with(now, tx, req, StatusCode::new(500), &extra);
            return;
        }
        if call.reinvite.is_some() {
            self.respond(now, tx, req, StatusCode::new(491));
            return;
        }
        let hold = call.hold;
        let offer = req.body();
        let (new_hold, body) = if offer.is_empty() {
            (
                hold,
                call.sdp.as_mut().map(|s| s.create_offer(hold.offer())),
            )
        } else {
            let dir = sdp::media_direction(&String::from_utf8_lossy(offer))
                .unwrap_or(Direction::Inactive);
            let new_hold = hold.with_remote_offer(dir);
            let answer = call
                .sdp
                .as_mut()
                .map(|s| s.accept_offer(offer, new_hold.answer(dir)));
            (new_hold, answer)
        };
        let body = match body {
            Some(Ok(b)) => b,
            Some(Err(e)) => {
                // The offer is refused; the call goes on as it was (RFC 6337 §3.3).
                let text = e.to_string().replace(['"', '\\'], "'");
                let extra = [(HeaderName::Warning, format!("399 sansip \"{text}\""))];
                self.respond_with(now, tx, req, StatusCode::new(488), &extra);
                return;
            }
            None => {
                self.respond(now, tx, req, StatusCode::new(488));
                return;
            }
        };
        call.peer_reinvite = Some(Box::new((tx, req.clone())));
        call.hold = new_hold;
        self.accept_invite(now, id, body, offer.is_empty());
        if new_hold != hold {
            self.event(Event::HoldChanged {
                call: id,
                local: new_hold.local,
                remote: new_hold.remote,
            });
        }
    }

    fn info_in(&mut self, now: Instant, id: CallHandle, tx: TxId, req: &Request) {
        if req.body().is_empty() {
            self.respond(now, tx, req, StatusCode::new(200));
            return;
        }
        let ct = req
            .headers()
            .get(HeaderName::ContentType)
            .unwrap_or_default();
        let media = ct.split(';').next().unwrap_or_default().trim();
        match dtmf::parse(media, req.body()) {
            Some((tone, duration)) => {
                self.respond(now, tx, req, StatusCode::new(200));
                self.event(Event::DtmfReceived {
                    call: id,
                    tone,
                    duration,
                });
            }
            None => {
                let extra = [(HeaderName::Accept, "application/dtmf-relay".to_string())];
                self.respond_with(now, tx, req, StatusCode::new(415), &extra);
            }
        }
    }
}
