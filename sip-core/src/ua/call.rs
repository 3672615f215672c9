//! Calls from the user agent's side: the application's commands on a call, and the routing
//! of what arrives for one to its INVITE session ([`crate::session::invite`]), which takes
//! the steps. The user agent keeps the table of sessions and carries out what they ask
//! ([`Action`]): their transactions, their timers, their events.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use smol_str::SmolStr;

use super::{Event, Output, Pending, Purpose, RequestId, UaError, UserAgent, answer};
use crate::auth::DigestCredentials;
use crate::dialog::{Dialog, DialogId, DialogState, Local};
use crate::message::{HeaderName, Method, Request, Response, StatusCode};
use crate::peer_map::pair;
use crate::session::invite::{
    Action, CallRequest, Claim, Ctx, Incoming, Outbound, Outgoing, Phase, Session, too_brief,
};
use crate::session::{CallDetails, CallHandle, EndCause, HoldState, SdpHandler, dtmf};
use crate::transaction::TxId;
use crate::transport::{Flow, FlowId};

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

/// Options for [`UserAgent::hangup_with`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct HangupOptions {
    /// The cause [`Event::CallEnded`] reports in place of `Bye`/`Canceled`.
    pub cause: Option<EndCause>,
    /// A Reason header value for the CANCEL or BYE (RFC 3326), e.g.
    /// `SIP;cause=200;text="Call completed elsewhere"` or `Q.850;cause=16`.
    pub reason: Option<String>,
    /// Extra headers for the CANCEL or BYE.
    pub headers: Vec<(String, String)>,
}

impl HangupOptions {
    /// Sets the Reason header value.
    #[must_use]
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Adds an extra header.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// Options for [`UserAgent::answer_with`] and [`UserAgent::accept_with`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct AnswerOptions {
    /// Extra headers for the 2xx, e.g. `("X-Agent", "42")`.
    pub headers: Vec<(String, String)>,
}

impl AnswerOptions {
    /// Adds an extra header.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// How [`UserAgent::renegotiate`] sends its offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OfferMethod {
    /// A re-INVITE (RFC 3261 §14), which every peer takes.
    Invite,
    /// An UPDATE (RFC 3311): also before the answer, and answered at once without an ACK;
    /// a re-INVITE instead when the peer does not allow UPDATE.
    Update,
}

/// `status` if `allowed` has it, else the error naming it.
fn status_within(status: u16, allowed: std::ops::Range<u16>) -> Result<u16, UaError> {
    if allowed.contains(&status) {
        Ok(status)
    } else {
        Err(UaError::InvalidStatus(status))
    }
}

/// Refuses headers that could not go on the wire, naming the first.
pub(super) fn checked(headers: &[(String, String)]) -> Result<(), UaError> {
    for (name, value) in headers {
        crate::message::Headers::check_named(name, value)
            .map_err(|_| UaError::InvalidHeader(name.clone()))?;
    }
    Ok(())
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
        sdp: S,
    ) -> Result<CallHandle, UaError> {
        let uri = self.target_uri(target)?;
        self.place_call(now, &uri, options, sdp, None)
    }

    /// Places a call to the Request-URI `uri`; `credentials` (a gateway's) answer its
    /// challenges before ours.
    pub(super) fn place_call(
        &mut self,
        now: Instant,
        uri: &str,
        options: CallOptions,
        sdp: S,
        credentials: Option<DigestCredentials>,
    ) -> Result<CallHandle, UaError> {
        self.now = now;
        let flow = self.outbound.ok_or(UaError::NotConnected)?;
        let from = self.our_from(options.display_name.as_deref());
        self.start_session(now, flow, |ctx, id| {
            let call = Outgoing {
                id,
                flow,
                uri,
                from,
                options: &options,
                credentials,
            };
            Session::outgoing(ctx, call, sdp)
        })
    }

    /// Answers an incoming call with `sdp` producing our answer (or our offer, when the
    /// INVITE had none). If the peer's offer cannot be taken the call is refused with 488
    /// and ends with [`EndCause::IncompatibleSdp`]; the error says why.
    pub fn answer(&mut self, now: Instant, id: CallHandle, sdp: S) -> Result<(), UaError> {
        self.answer_with(now, id, sdp, AnswerOptions::default())
    }

    /// [`UserAgent::answer`] with options: extra headers on the 2xx.
    pub fn answer_with(
        &mut self,
        now: Instant,
        id: CallHandle,
        sdp: S,
        options: AnswerOptions,
    ) -> Result<(), UaError> {
        self.now = now;
        let call = self.ringing(id, "only a ringing incoming call can be answered")?;
        if call.has_early_answer() {
            return Err(UaError::InvalidState(
                "the call has early media: answer it with accept",
            ));
        }
        checked(&options.headers)?;
        self.with_session(now, id, |s, ctx| s.answer(ctx, sdp, options.headers))
            .unwrap_or(Ok(()))
            .map_err(UaError::Sdp)
    }

    /// Sends 183 Session Progress for an incoming call. With `early_media`, the handler's
    /// answer to the caller's offer goes in it, so media flows before the call is answered
    /// (RFC 3261 §13.3.1.1); the call is then answered with [`UserAgent::accept`], whose 2xx
    /// repeats that answer. The 183 is reliable (RFC 3262) when the caller supports it.
    pub fn progress(
        &mut self,
        now: Instant,
        id: CallHandle,
        early_media: Option<S>,
    ) -> Result<(), UaError> {
        self.now = now;
        let call = self.ringing(id, "only a ringing incoming call can send progress")?;
        if early_media.is_some() && (call.has_early_answer() || !call.has_offer()) {
            return Err(UaError::InvalidState(
                "early media needs the caller's offer, answered once",
            ));
        }
        self.with_session(now, id, |s, ctx| s.progress(ctx, early_media))
            .unwrap_or(Ok(()))
            .map_err(UaError::Sdp)
    }

    /// Answers an incoming call that has early media ([`UserAgent::progress`]) with the
    /// handler given there.
    pub fn accept(&mut self, now: Instant, id: CallHandle) -> Result<(), UaError> {
        self.accept_with(now, id, AnswerOptions::default())
    }

    /// [`UserAgent::accept`] with options: extra headers on the 2xx.
    pub fn accept_with(
        &mut self,
        now: Instant,
        id: CallHandle,
        options: AnswerOptions,
    ) -> Result<(), UaError> {
        self.now = now;
        if !self
            .ringing(id, "only a ringing incoming call can be accepted")?
            .has_early_answer()
        {
            return Err(UaError::InvalidState(
                "accept answers a call with early media: use answer",
            ));
        }
        checked(&options.headers)?;
        self.with_session(now, id, |s, ctx| s.accept(ctx, options.headers));
        Ok(())
    }

    /// The incoming call `id`, ringing and not answered yet; else `refusal`.
    fn ringing(&self, id: CallHandle, refusal: &'static str) -> Result<&Session<S>, UaError> {
        let call = self.live_call(id)?;
        if call.is_caller() || call.phase() != Phase::Ringing || call.is_answering() {
            return Err(UaError::InvalidState(refusal));
        }
        Ok(call)
    }

    /// Refuses an incoming call with `status` (3xx–6xx; 480 when `None`).
    pub fn decline(
        &mut self,
        now: Instant,
        id: CallHandle,
        status: Option<u16>,
    ) -> Result<(), UaError> {
        self.now = now;
        let status = status_within(status.unwrap_or(480), 300..700)?;
        self.ringing(id, "only a ringing incoming call can be declined")?;
        self.with_session(now, id, |s, ctx| s.decline(ctx, status));
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
        let options = HangupOptions {
            cause,
            ..HangupOptions::default()
        };
        self.hangup_with(now, id, options)
    }

    /// [`UserAgent::hangup`] with options: a Reason for the peer (RFC 3326), extra
    /// headers on the CANCEL or BYE, the cause to report.
    pub fn hangup_with(
        &mut self,
        now: Instant,
        id: CallHandle,
        options: HangupOptions,
    ) -> Result<(), UaError> {
        self.now = now;
        self.live_call(id)?;
        let mut headers = options.headers;
        if let Some(reason) = options.reason {
            headers.push(("Reason".into(), reason));
        }
        checked(&headers)?;
        self.with_session(now, id, |s, ctx| s.hangup(ctx, options.cause, headers));
        Ok(())
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

    fn set_hold(&mut self, now: Instant, id: CallHandle, local: bool) -> Result<(), UaError> {
        self.now = now;
        if self.live_call(id)?.phase() != Phase::Confirmed {
            return Err(UaError::InvalidState("hold needs an established call"));
        }
        self.with_session(now, id, |s, ctx| s.set_hold(ctx, local));
        Ok(())
    }

    /// Offers the peer a new description from the call's handler, which the application
    /// changed first (through [`UserAgent::sdp_handler_mut`]: video added or removed, a
    /// codec dropped, an ICE restart): by re-INVITE, or by UPDATE (RFC 3311) where the peer
    /// allows it. In an established call it waits for whatever offer or request is in
    /// flight; before the answer only an UPDATE may carry it, once the first offer and
    /// answer are done reliably. [`Event::Renegotiated`] follows its acceptance,
    /// [`Event::RenegotiationFailed`] a refusal, which leaves the call as it was.
    pub fn renegotiate(
        &mut self,
        now: Instant,
        id: CallHandle,
        method: OfferMethod,
    ) -> Result<(), UaError> {
        self.now = now;
        self.live_call(id)?;
        self.with_session(now, id, |s, ctx| s.renegotiate(ctx, method))
            .unwrap_or(Ok(()))
    }

    /// Answers the peer's offer that [`Event::ReofferReceived`] reported (with
    /// [`ReofferPolicy::Ask`](super::ReofferPolicy::Ask)) as any other.
    pub fn accept_reoffer(&mut self, now: Instant, id: CallHandle) -> Result<(), UaError> {
        self.now = now;
        if !self.live_call(id)?.has_reoffer() {
            return Err(UaError::InvalidState("no offer of the peer's is waiting"));
        }
        self.with_session(now, id, |s, ctx| s.accept_reoffer(ctx));
        Ok(())
    }

    /// Refuses the peer's offer that [`Event::ReofferReceived`] reported, with `status`
    /// (4xx–6xx; 488 when `None`); the call goes on as it was.
    pub fn refuse_reoffer(
        &mut self,
        now: Instant,
        id: CallHandle,
        status: Option<u16>,
    ) -> Result<(), UaError> {
        self.now = now;
        let status = status_within(status.unwrap_or(488), 400..700)?;
        if !self.live_call(id)?.has_reoffer() {
            return Err(UaError::InvalidState("no offer of the peer's is waiting"));
        }
        self.with_session(now, id, |s, ctx| s.refuse_reoffer(ctx, status));
        Ok(())
    }

    /// Mutes or unmutes our side of a call. Signalling does not change (mute is not hold);
    /// the flag is for the media layer, which stops sending audio while it is set. A UA
    /// without media (`NoMedia`, `FakeSdp`) only records it.
    pub fn set_muted(&mut self, id: CallHandle, muted: bool) -> Result<(), UaError> {
        self.live_call(id)?;
        if let Some(s) = self.calls.get_mut(&id) {
            s.set_muted(muted);
        }
        self.mark_stepped(id);
        Ok(())
    }

    /// Whether our side of the call is muted.
    pub fn is_muted(&self, id: CallHandle) -> Result<bool, UaError> {
        Ok(self.live_call(id)?.is_muted())
    }

    /// The SIP Call-ID of a call (the header's value), to match it with a server's or a
    /// peer's logs.
    pub fn sip_call_id(&self, id: CallHandle) -> Result<&str, UaError> {
        self.calls
            .get(&id)
            .map(|c| c.key().0.as_str())
            .ok_or(UaError::NoSuchCall(id))
    }

    /// Whether the call is established (answered, not ended).
    pub fn is_established(&self, id: CallHandle) -> bool {
        self.live_call(id)
            .is_ok_and(|c| c.phase() == Phase::Confirmed)
    }

    /// The far end of a call: how it named itself (the To of the 2xx when we called, the
    /// From of the INVITE when it called; empty before an answer when we called) and the
    /// identity a trusted proxy asserted for it (P-Asserted-Identity, RFC 3325).
    pub fn remote_party(&self, id: CallHandle) -> Result<(&str, Option<&str>), UaError> {
        Ok(self.live_call(id)?.remote())
    }

    /// Who holds whom in a call.
    pub fn hold_state(&self, id: CallHandle) -> Result<HoldState, UaError> {
        Ok(self.live_call(id)?.hold())
    }

    /// Whether we hold the peer.
    pub fn is_held(&self, id: CallHandle) -> Result<bool, UaError> {
        Ok(self.live_call(id)?.hold().local)
    }

    /// Sends DTMF tones (`0`–`9`, `*`, `#`, `A`–`D`; `,` pauses two seconds) as SIP INFO
    /// `application/dtmf-relay`, one at a time, each after the previous one's response and
    /// the configured gap.
    pub fn send_dtmf(&mut self, now: Instant, id: CallHandle, tones: &str) -> Result<(), UaError> {
        self.now = now;
        dtmf::check(tones).map_err(UaError::InvalidDtmf)?;
        if self.live_call(id)?.phase() != Phase::Confirmed {
            return Err(UaError::InvalidState("dtmf needs an established call"));
        }
        self.with_session(now, id, |s, ctx| s.send_dtmf(ctx, tones));
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
        self.request_in_call(now, id, Method::Message, Some((content_type, body)), &[])
    }

    /// Sends an INFO with any body inside a call (DTMF has [`UserAgent::send_dtmf`]); its
    /// final response comes as [`Event::RequestCompleted`]. The peer's INFOs that are not
    /// DTMF arrive as [`Event::InfoReceived`].
    pub fn send_info(
        &mut self,
        now: Instant,
        id: CallHandle,
        content_type: &str,
        body: &str,
    ) -> Result<RequestId, UaError> {
        self.request_in_call(now, id, Method::Info, Some((content_type, body)), &[])
    }

    /// Sends any request inside an established call, after the ones of ours before it
    /// (they go one at a time): `method` with an optional (Content-Type, body) and extra
    /// headers. Its final response comes as [`Event::RequestCompleted`]. The session's
    /// own methods (INVITE, ACK, CANCEL, BYE, PRACK, UPDATE) are refused: use the call's
    /// commands.
    pub fn request_in_call(
        &mut self,
        now: Instant,
        id: CallHandle,
        method: Method,
        body: Option<(&str, &str)>,
        headers: &[(String, String)],
    ) -> Result<RequestId, UaError> {
        self.now = now;
        if self.live_call(id)?.phase() != Phase::Confirmed {
            return Err(UaError::InvalidState("requests need an established call"));
        }
        if matches!(
            method,
            Method::Invite
                | Method::Ack
                | Method::Cancel
                | Method::Bye
                | Method::Prack
                | Method::Update
        ) {
            return Err(UaError::InvalidState(
                "the session's own method: use the call's commands",
            ));
        }
        checked(headers)?;
        let rid = self.next_request_id();
        let request = Outbound {
            id: rid,
            method,
            content_type: body.map(|(ct, _)| ct.to_string()),
            body: body.map_or_else(Bytes::new, |(_, b)| Bytes::copy_from_slice(b.as_bytes())),
            headers: headers.to_vec(),
        };
        self.with_session(now, id, |s, ctx| s.send_request(ctx, request));
        Ok(rid)
    }

    /// The session-description handler of a call, e.g. to reach its media.
    pub fn sdp_handler(&self, id: CallHandle) -> Option<&S> {
        self.calls.get(&id)?.sdp()
    }

    /// The session-description handler of a call, mutably.
    pub fn sdp_handler_mut(&mut self, id: CallHandle) -> Option<&mut S> {
        self.calls.get_mut(&id)?.sdp_mut()
    }

    /// Has the user agent record, from now on, which calls step (see
    /// [`UserAgent::next_stepped_call`]). Off by default, so a UA whose calls nobody
    /// watches this way keeps no such list.
    pub fn record_stepped_calls(&mut self) {
        self.record_stepped = true;
    }

    /// The next call whose session took a step (a message, a timer or a command reached
    /// it) since this last returned it; each call at most once until then, and a call that
    /// ended in its step not at all. Only once [`UserAgent::record_stepped_calls`] was
    /// called.
    ///
    /// A media layer driving the calls' [`SdpHandler`]s reads its sessions' output for
    /// these calls only, instead of visiting every call after each input. A session
    /// changed through [`UserAgent::sdp_handler_mut`] is not marked: whoever changed it
    /// knows.
    ///
    /// ```
    /// use sansip_core::session::FakeSdp;
    /// use sansip_core::transport::Transport;
    /// use sansip_core::ua::{CallOptions, FlowInfo, UaConfig, UserAgent};
    /// use std::time::Instant;
    ///
    /// # #[allow(clippy::disallowed_methods)]
    /// let now = Instant::now();
    /// let mut ua = UserAgent::<FakeSdp>::new(UaConfig::new("sip:alice@example.com"), now, 1);
    /// let flow = ua.add_flow(FlowInfo {
    ///     transport: Transport::Udp,
    ///     local: "192.0.2.10:5060".parse().unwrap(),
    ///     remote: "192.0.2.1:5060".parse().unwrap(),
    /// });
    /// ua.set_outbound_flow(flow);
    /// ua.record_stepped_calls();
    /// let sdp = FakeSdp::default();
    /// let call = ua.call(now, "sip:bob@example.com", CallOptions::default(), sdp).unwrap();
    /// assert_eq!(ua.next_stepped_call(), Some(call));
    /// assert_eq!(ua.next_stepped_call(), None);
    /// ```
    pub fn next_stepped_call(&mut self) -> Option<CallHandle> {
        while let Some(id) = self.stepped.pop() {
            if self.calls.get_mut(&id).is_some_and(|s| s.clear_stepped()) {
                return Some(id);
            }
        }
        None
    }

    /// Whether a call stepped since [`UserAgent::next_stepped_call`] last reported it.
    pub fn has_stepped_calls(&self) -> bool {
        !self.stepped.is_empty()
    }

    fn mark_stepped(&mut self, id: CallHandle) {
        if self.record_stepped && self.calls.get_mut(&id).is_some_and(|s| s.mark_stepped()) {
            self.stepped.push(id);
        }
    }

    /// Calls the application can still act on.
    pub fn calls(&self) -> impl Iterator<Item = CallHandle> + '_ {
        self.calls
            .iter()
            .filter(|(_, c)| c.is_live())
            .map(|(id, _)| *id)
    }

    /// Every call the UA still keeps state for, including ended ones it is finishing
    /// (waiting for a 487 or an ACK). Zero once everything has settled.
    pub fn call_states(&self) -> usize {
        self.calls.len()
    }

    /// The details of call `id`, live or among the ended ones kept
    /// ([`UserAgent::call_history`]): who, which way, its Call-ID, when it started, rang,
    /// was answered and ended, and why.
    pub fn call_details(&self, id: CallHandle) -> Option<CallDetails> {
        if let Some(ended) = self.history.iter().rev().find(|d| d.call == id) {
            return Some((**ended).clone());
        }
        let call = self.calls.get(&id).filter(|c| c.is_live())?;
        Some(call.details(self.now, None))
    }

    /// The calls that ended, oldest first: the last [`UaConfig::call_history`] of them.
    ///
    /// [`UaConfig::call_history`]: super::UaConfig::call_history
    pub fn call_history(&self) -> impl ExactSizeIterator<Item = &CallDetails> + '_ {
        self.history.iter().map(|d| &**d)
    }

    /// The call's `tracing` span (`call{handle, call_id, direction}`), for logs about the
    /// call from outside the user agent (its media, the application).
    pub fn call_span(&self, id: CallHandle) -> Option<&tracing::Span> {
        self.calls.get(&id).map(|c| c.span())
    }

    // ---- driving the sessions ----------------------------------------------------------

    pub(super) fn live_call(&self, id: CallHandle) -> Result<&Session<S>, UaError> {
        self.calls
            .get(&id)
            .map(|c| &**c)
            .filter(|c| c.is_live())
            .ok_or(UaError::NoSuchCall(id))
    }

    pub(super) fn event(&mut self, e: Event) {
        if let Some(call) = e.call().and_then(|id| self.calls.get(&id)) {
            call.span()
                .in_scope(|| tracing::debug!(target: "sansip::call", event = e.name()));
        }
        let now = self.now;
        if !self.transfers.is_empty() || !self.replacing.is_empty() {
            self.transfer_step(now, &e);
        }
        if let Event::CallEnded { details, .. } = &e
            && self.config.call_history > 0
        {
            if self.history.len() == self.config.call_history {
                self.history.pop_front();
            }
            self.history.push_back(details.clone());
        }
        // A new call tells the watchers as it starts (`start_session`).
        if matches!(
            e,
            Event::CallProgress { .. } | Event::CallAnswered { .. } | Event::CallEnded { .. }
        ) {
            self.calls_changed(now);
        }
        self.out.push_back(Output::Event(e));
    }

    /// Makes a new session on `flow` with `make`, given its handle, and takes it into the
    /// table.
    fn start_session<E>(
        &mut self,
        now: Instant,
        flow: FlowId,
        make: impl FnOnce(&mut Ctx<'_>, CallHandle) -> Result<Session<S>, E>,
    ) -> Result<CallHandle, E> {
        let mut out = std::mem::take(&mut self.spare_actions);
        let local = self.session_local(flow);
        let mut ctx = Ctx {
            now,
            ids: &mut self.ids,
            config: &self.config,
            local,
            reliable: self.flows.is_reliable(flow),
            out: &mut out,
        };
        let id = CallHandle(self.next_call + 1);
        let session = make(&mut ctx, id)?;
        self.next_call += 1;
        self.dialogs.insert(session.key().clone(), id);
        if let Some(k) = session.remote_key() {
            self.incoming.insert(k.clone(), id);
        }
        self.calls.insert(id, Box::new(session));
        self.run_actions(now, id, out);
        self.calls_changed(now);
        Ok(id)
    }

    /// Runs one step of session `id` and carries out what it asked; `None` when there is
    /// no such session.
    pub(super) fn with_session<R>(
        &mut self,
        now: Instant,
        id: CallHandle,
        step: impl FnOnce(&mut Session<S>, &mut Ctx<'_>) -> R,
    ) -> Option<R> {
        let reliable = self.flows.is_reliable(self.calls.get(&id)?.flow());
        let local = self.session_local(self.call_flow(id));
        let mut out = std::mem::take(&mut self.spare_actions);
        let session = self.calls.get_mut(&id)?;
        let mut ctx = Ctx {
            now,
            ids: &mut self.ids,
            config: &self.config,
            local,
            reliable,
            out: &mut out,
        };
        let r = step(session, &mut ctx);
        self.run_actions(now, id, out);
        Some(r)
    }

    /// Carries out session `id`'s actions in order, then lets it go if it has finished.
    fn run_actions(&mut self, now: Instant, id: CallHandle, mut actions: VecDeque<Action>) {
        let own = self.calls.get(&id).map(|s| s.flow());
        while let Some(action) = actions.pop_front() {
            match action {
                Action::Send(req, what) => {
                    let flow = self.call_flow(id);
                    self.send_on(now, flow, req, Purpose::Call(id, what));
                }
                Action::Respond(tx, resp) => {
                    // The transaction may have ended already (e.g. its flow closed).
                    let _ = self.tx.respond(now, tx, &resp);
                    self.drain_tx();
                }
                Action::Transmit {
                    bytes,
                    retransmission,
                } => {
                    if retransmission {
                        self.stats.retransmissions += 1;
                    }
                    if let Some(flow) = own {
                        self.out.push_back(Output::Transmit { flow, bytes });
                    }
                }
                Action::Cancel(tx, headers) => {
                    if let Some(mut cancel) = self.tx.cancel_request(tx) {
                        for (name, value) in &headers {
                            let _ = cancel.headers_mut().push_named(name, value);
                        }
                        let flow = self.call_flow(id);
                        self.send_on(now, flow, cancel, Purpose::Call(id, CallRequest::Cancel));
                    }
                }
                Action::Abandon(tx) => {
                    self.tx.abandon(tx);
                    self.pending.remove(&tx);
                }
                Action::Timer(at, kind) => self.call_timers.push(at, id, kind),
                Action::Event(e) => self.event(e),
            }
        }
        // Emptied, it keeps its room for the next step.
        self.spare_actions = actions;
        if self.calls.get(&id).is_some_and(|s| s.is_finished())
            && let Some(mut s) = self.calls.remove(&id)
        {
            self.dialogs.remove(s.key());
            if let Some(k) = s.remote_key() {
                self.incoming.remove(k);
            }
            if s.clear_stepped() {
                self.stepped.retain(|c| *c != id);
            }
        } else {
            self.mark_stepped(id);
        }
    }

    /// The next deadline of any call (stale entries only cause an early, harmless wake-up).
    pub(super) fn next_call_timer(&self) -> Option<Instant> {
        self.call_timers.next()
    }

    pub(super) fn fire_call_timers(&mut self, now: Instant) {
        while let Some((at, id, kind)) = self.call_timers.pop_due(now) {
            if self
                .calls
                .get(&id)
                .is_some_and(|s| s.timer(kind) == Some(at))
            {
                self.with_session(now, id, |s, ctx| s.handle_timeout(ctx, kind, at));
            }
        }
    }

    /// Drops cleared or re-armed call timers from the front of the queue.
    pub(super) fn prune_call_timers(&mut self) {
        let calls = &self.calls;
        self.call_timers
            .prune(|at, id, kind| calls.get(&id).is_some_and(|s| s.timer(kind) == Some(at)));
    }

    /// The connection to the server was replaced by `flow`: every call whose flow is gone
    /// moves to it (RFC 5626 §4.4.1 for the registration; the dialogs need a target
    /// refresh of their own).
    pub(super) fn calls_moved_to(&mut self, now: Instant, flow: FlowId) {
        let moved: Vec<CallHandle> = self
            .calls
            .iter()
            .filter(|(_, s)| self.flows.get(s.flow()).is_none())
            .map(|(id, _)| *id)
            .collect();
        for id in moved {
            self.with_session(now, id, |s, ctx| s.moved_to(ctx, flow));
        }
    }

    /// Via and Contact for a session's messages on `flow`: the flow's, with the GRUU the
    /// registrar granted as the Contact when the flow is the one we registered on (RFC 5627
    /// §4.3): requests to it reach this instance wherever it is connected from.
    fn session_local(&self, flow: FlowId) -> Local {
        let mut local = self.local_for(flow);
        let gruu = self.registration.as_ref().and_then(|r| r.gruu(self.now));
        if let Some(gruu) = gruu.filter(|_| self.outbound == Some(flow)) {
            local.contact = format!("<{gruu}>").into();
        }
        local
    }

    /// The flow a call's requests leave by: its own while it lives, else the outbound one
    /// (the runtime reconnected).
    fn call_flow(&self, id: CallHandle) -> FlowId {
        match self.calls.get(&id) {
            Some(c) => self.live_flow(c.flow()),
            None => self.outbound.unwrap_or(FlowId(0)),
        }
    }

    /// A usage's flow while it lives, else the outbound one (the runtime reconnected).
    pub(super) fn live_flow(&self, own: FlowId) -> FlowId {
        if self.flows.get(own).is_some() {
            own
        } else {
            self.outbound.unwrap_or(own)
        }
    }

    // ---- routing to the sessions -------------------------------------------------------

    /// Our INVITE went out again (with credentials): responses now answer this one.
    pub(super) fn call_invite_sent(&mut self, id: CallHandle, req: &Request) {
        if let Some(s) = self.calls.get_mut(&id) {
            s.invite_resent(req);
        }
    }

    /// Records the transaction a call's request went out on.
    pub(super) fn track(&mut self, id: CallHandle, what: CallRequest, tx: TxId) {
        if let Some(s) = self.calls.get_mut(&id) {
            s.sent(what, tx);
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
        self.with_session(now, id, |s, ctx| s.request_failed(ctx, what, timed_out));
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
        let Some(session) = self.calls.get(&id) else {
            if code < 300 && what == CallRequest::Invite {
                self.stray_2xx(now, resp);
            }
            return;
        };
        if (code == 401 || code == 407)
            && let Some(p) = pending
            && session.phase() != Phase::Ending
            && self.retry_with_auth(now, p, resp)
        {
            return;
        }
        self.with_session(now, id, |s, ctx| s.handle_response(ctx, what, resp));
    }

    /// A 2xx to INVITE that no transaction claims any more: its session's, if any.
    pub(super) fn stray_2xx(&mut self, now: Instant, resp: &Response) {
        let h = resp.headers();
        let (Ok(call_id), Ok(Some(tag))) = (h.call_id(), h.from_tag()) else {
            return;
        };
        if let Some(&id) = self.dialogs.get(pair(&(call_id, tag))) {
            self.with_session(now, id, |s, ctx| s.stray_2xx(ctx, resp));
        }
    }

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
        if let Some(min) = too_brief(&req, &self.config) {
            let extra = [(HeaderName::MinSe, min.to_string())];
            self.respond_with(now, tx, &req, StatusCode::new(422), &extra);
            return;
        }
        let replaces = match self.replaced_by(&req) {
            Ok(r) => r,
            Err(status) => {
                self.respond(now, tx, &req, StatusCode::new(status));
                return;
            }
        };
        let tag = self.ids.tag();
        let seq = self.ids.initial_cseq();
        let dialog = match Dialog::uas(&req, &tag, seq, DialogState::Early) {
            Ok(d) => d,
            Err(e) => {
                self.respond(now, tx, &req, e.status_code());
                return;
            }
        };
        let from = h.get(HeaderName::From).unwrap_or_default().to_string();
        let to = h.get(HeaderName::To).unwrap_or_default().to_string();
        // The INVITE's own header index, shared with the call that keeps the INVITE.
        let headers = req.shared_headers();
        let mut event = None;
        let Ok(_) = self.start_session(now, flow.id, |ctx, id| {
            event = Some(Event::IncomingCall {
                call: id,
                from,
                to,
                headers,
                replaces,
            });
            let call = Incoming {
                id,
                flow: flow.id,
                tx,
                invite: req,
                dialog,
                remote_key,
            };
            Ok::<_, std::convert::Infallible>(Session::incoming(ctx, call))
        });
        if let Some(e) = event {
            if let (Event::IncomingCall { call, .. }, Some(old)) = (&e, replaces) {
                self.replacing.insert(*call, old);
            }
            self.event(e);
        }
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
            (Ok(c), Ok(t)) => Some((c, t.unwrap_or_default())),
            _ => None,
        };
        let id = key
            .and_then(|k| self.incoming.get(pair(&k)).copied())
            .filter(|id| {
                self.calls
                    .get(id)
                    .is_some_and(|c| c.invite_tx() == invite && invite.is_some())
            });
        // §9.2: 200 to a CANCEL that matched a transaction, even one already answered.
        let status = if invite.is_some() { 200 } else { 481 };
        self.respond(now, tx, req, StatusCode::new(status));
        if let Some(id) = id {
            self.with_session(now, id, |s, ctx| s.cancel_in(ctx, req));
        }
    }

    /// An ACK for a 2xx: the dialog's (§13.3.1.4).
    pub(super) fn ack_in(&mut self, now: Instant, req: &Request) {
        if let Some(id) = self.dialog_of(req) {
            self.with_session(now, id, |s, ctx| s.ack_in(ctx, req));
        }
    }

    fn dialog_of(&self, req: &Request) -> Option<CallHandle> {
        let (call_id, local, remote) = DialogId::parts_of_incoming(req).ok().flatten()?;
        let id = *self.dialogs.get(pair(&(call_id, local)))?;
        let dialog = self.calls.get(&id)?.dialog()?;
        (dialog.id().remote_tag == remote).then_some(id)
    }

    /// A request with a To tag: it belongs to a call's dialog, or gets 481 (§12.2.2). What
    /// the INVITE usage does not take, the user agent answers.
    pub(super) fn in_dialog(&mut self, now: Instant, tx: TxId, req: Request) {
        let Some(id) = self.dialog_of(&req) else {
            match self.subscription_of(&req) {
                Some(sub) => self.sub_request_in(now, sub, tx, &req),
                None => self.respond(now, tx, &req, StatusCode::new(481)),
            }
            return;
        };
        let claim = self.with_session(now, id, |s, ctx| s.handle_request(ctx, tx, &req));
        if claim != Some(Claim::NotMine) {
            return;
        }
        let status = match req.method() {
            Method::Message => return self.message_received(now, tx, &req, Some(id)),
            Method::Options => StatusCode::new(200),
            _ => StatusCode::new(405),
        };
        let extra = answer::extra_headers(&req, &status, &self.config.message_types);
        self.respond_with(now, tx, &req, status, &extra);
    }
}
