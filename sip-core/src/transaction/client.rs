//! Client transactions: INVITE (RFC 3261 §17.1.1, RFC 6026 §8.4) and non-INVITE (§17.1.2).

use std::time::Instant;

use super::key::ClientKey;
use super::layer::{
    ResponseOutcome, TransactionLayer, TxError, TxEvent, TxKey, TxOutput, is_invite,
};
use super::{TxId, TxKind, TxState, TxTimer};
use crate::message::{HeaderName, Headers, Message, Method, Request, Response};
use crate::transport::Flow;

impl TransactionLayer {
    /// Starts a client transaction and queues the request for sending. The request must carry
    /// its top Via with a fresh branch (RFC 3261 §8.1.1.7) and a CSeq.
    pub fn send_request(
        &mut self,
        now: Instant,
        flow: Flow,
        request: Request,
    ) -> Result<TxId, TxError> {
        if *request.method() == Method::Ack {
            return Err(TxError::Ack);
        }
        let key = ClientKey::of_request(&request)?;
        request.cseq()?;
        if self.clients.contains_key(&key) {
            return Err(TxError::DuplicateBranch);
        }
        let invite = is_invite(request.method());
        let (kind, state) = if invite {
            (TxKind::InviteClient, TxState::Calling)
        } else {
            (TxKind::NonInviteClient, TxState::Trying)
        };
        let bytes = request.to_bytes();
        let id = self.new_tx(kind, state, flow, None, TxKey::Client(key));
        if let Some(t) = self.txs.get_mut(&id) {
            t.last = Some(bytes.clone());
        }
        self.transmit(flow, bytes);
        let t1 = self.config.t1();
        if invite {
            if !flow.transport.is_reliable() {
                self.arm(now, id, TxTimer::A, t1);
            }
            self.arm(now, id, TxTimer::B, self.config.timer_b());
        } else {
            if !flow.transport.is_reliable() {
                self.arm(now, id, TxTimer::E, t1);
            }
            self.arm(now, id, TxTimer::F, self.config.timer_b());
        }
        Ok(id)
    }

    /// Builds the CANCEL for an INVITE client transaction (RFC 3261 §9.1): same Request-URI,
    /// Call-ID, From, To, CSeq number and Route, and only the INVITE's top Via, so it shares
    /// the INVITE's branch. `None` unless the transaction is an INVITE still waiting for a
    /// final response. Send it with [`TransactionLayer::send_request`] once a provisional
    /// response has arrived.
    pub fn cancel_request(&self, tx: TxId) -> Option<Request> {
        let t = self.txs.get(&tx)?;
        if t.kind != TxKind::InviteClient
            || !matches!(t.state, TxState::Calling | TxState::Proceeding)
        {
            return None;
        }
        let invite = sent_request(t)?;
        derived_request(&invite, Method::Cancel, invite.headers())
    }

    /// Whether an INVITE client transaction has seen a provisional response, which RFC 3261
    /// §9.1 requires before a CANCEL may be sent.
    #[must_use]
    pub fn has_provisional(&self, tx: TxId) -> bool {
        self.txs
            .get(&tx)
            .is_some_and(|t| t.state == TxState::Proceeding)
    }

    /// Feeds a received response. See [`ResponseOutcome`] for what to do with it.
    pub fn handle_response(&mut self, now: Instant, response: &Response) -> ResponseOutcome {
        let outcome = self.handle_response_inner(now, response);
        if outcome == ResponseOutcome::Stray {
            self.stats.stray_responses += 1;
        }
        self.prune_timers();
        outcome
    }

    fn handle_response_inner(&mut self, now: Instant, response: &Response) -> ResponseOutcome {
        let Ok(key) = ClientKey::of_response(response) else {
            return ResponseOutcome::Stray;
        };
        let Some(&id) = self.clients.get(&key) else {
            return ResponseOutcome::Stray;
        };
        let Some(t) = self.txs.get(&id) else {
            return ResponseOutcome::Stray;
        };
        let (kind, state, flow) = (t.kind, t.state, t.flow);
        let code = response.status().code();
        match kind {
            TxKind::InviteClient => {
                self.invite_client_response(now, id, state, flow, code, response)
            }
            _ => self.non_invite_client_response(now, id, state, flow, code),
        }
    }

    fn invite_client_response(
        &mut self,
        now: Instant,
        id: TxId,
        state: TxState,
        flow: Flow,
        code: u16,
        response: &Response,
    ) -> ResponseOutcome {
        match (state, code) {
            (TxState::Calling | TxState::Proceeding, 100..=199) => {
                // Any provisional stops INVITE retransmission and timer B (§17.1.1.2).
                self.set_state(id, TxState::Proceeding);
                self.disarm(id, TxTimer::A);
                self.disarm(id, TxTimer::B);
                ResponseOutcome::Pass(id)
            }
            (TxState::Calling | TxState::Proceeding, 200..=299) => {
                // RFC 6026: stay around as Accepted to pass forked 2xx responses up.
                self.set_state(id, TxState::Accepted);
                self.disarm(id, TxTimer::A);
                self.disarm(id, TxTimer::B);
                self.arm(now, id, TxTimer::M, self.config.timer_b());
                ResponseOutcome::Pass(id)
            }
            (TxState::Accepted, 200..=299) => ResponseOutcome::Pass(id),
            (TxState::Calling | TxState::Proceeding, _) if code >= 300 => {
                let ack = self
                    .txs
                    .get(&id)
                    .and_then(|t| build_ack(&sent_request(t)?, response));
                if let Some(ack) = ack {
                    let bytes = ack.to_bytes();
                    if let Some(t) = self.txs.get_mut(&id) {
                        t.ack = Some(bytes.clone());
                    }
                    self.transmit(flow, bytes);
                }
                self.set_state(id, TxState::Completed);
                self.disarm(id, TxTimer::A);
                self.disarm(id, TxTimer::B);
                self.linger(
                    now,
                    id,
                    TxTimer::D,
                    self.config.timer_d(flow.transport.is_reliable()),
                );
                ResponseOutcome::Pass(id)
            }
            (TxState::Completed, _) if code >= 300 => {
                // A retransmitted final: our ACK was lost (§17.1.1.2).
                if let Some(ack) = self.txs.get(&id).and_then(|t| t.ack.clone()) {
                    self.transmit(flow, ack);
                }
                self.stats.absorbed_responses += 1;
                ResponseOutcome::Absorbed
            }
            _ => {
                self.stats.absorbed_responses += 1;
                ResponseOutcome::Absorbed
            }
        }
    }

    fn non_invite_client_response(
        &mut self,
        now: Instant,
        id: TxId,
        state: TxState,
        flow: Flow,
        code: u16,
    ) -> ResponseOutcome {
        match (state, code) {
            (TxState::Trying | TxState::Proceeding, 100..=199) => {
                if state == TxState::Trying {
                    self.set_state(id, TxState::Proceeding);
                }
                ResponseOutcome::Pass(id)
            }
            (TxState::Trying | TxState::Proceeding, _) => {
                self.set_state(id, TxState::Completed);
                self.disarm(id, TxTimer::E);
                self.disarm(id, TxTimer::F);
                self.linger(
                    now,
                    id,
                    TxTimer::K,
                    self.config.timer_k(flow.transport.is_reliable()),
                );
                ResponseOutcome::Pass(id)
            }
            _ => {
                self.stats.absorbed_responses += 1;
                ResponseOutcome::Absorbed
            }
        }
    }

    pub(crate) fn client_timer(&mut self, now: Instant, id: TxId, timer: TxTimer) {
        let Some(t) = self.txs.get_mut(&id) else {
            return;
        };
        match timer {
            TxTimer::A | TxTimer::E => {
                let flow = t.flow;
                let Some(bytes) = t.last.clone() else {
                    return;
                };
                let interval = if timer == TxTimer::A {
                    // Timer A doubles without a cap (§17.1.1.2).
                    t.interval * 2
                } else if t.state == TxState::Proceeding {
                    // In Proceeding, non-INVITE retransmits every T2 (§17.1.2.2).
                    self.config.t2()
                } else {
                    (t.interval * 2).min(self.config.t2())
                };
                t.interval = interval;
                self.stats.retransmissions += 1;
                self.transmit(flow, bytes);
                self.arm(now, id, timer, interval);
            }
            TxTimer::B | TxTimer::F => {
                self.stats.timeouts += 1;
                self.out
                    .push_back(TxOutput::Event(TxEvent::Timeout { tx: id, timer }));
                self.terminate(id);
            }
            _ => self.terminate(id), // D, K, M: the lingering is over.
        }
    }

    pub(crate) fn set_state(&mut self, id: TxId, state: TxState) {
        if let Some(t) = self.txs.get_mut(&id) {
            t.enter(state);
        }
    }
}

/// The request a client transaction sent, read back from its bytes: a client keeps only
/// those (to retransmit them), and needs the request itself only to CANCEL it or ACK a
/// non-2xx final, which most calls never do.
fn sent_request(t: &super::layer::Tx) -> Option<Request> {
    match Message::parse(t.last.clone()?) {
        Ok(Message::Request(r)) => Some(r),
        _ => None,
    }
}

/// The ACK for a non-2xx final (RFC 3261 §17.1.1.3): like the INVITE, with To taken from
/// the response (it carries the tag).
fn build_ack(invite: &Request, response: &Response) -> Option<Request> {
    derived_request(invite, Method::Ack, response.headers())
}

/// A request that rides on an INVITE's transaction, CANCEL (§9.1) or the ACK for a non-2xx
/// (§17.1.1.3): the INVITE's Request-URI, Call-ID, From, Route, CSeq number and only its top
/// Via, so the branch is shared; To comes from `to_source`.
fn derived_request(invite: &Request, method: Method, to_source: &Headers) -> Option<Request> {
    let mut r = Request::new(method.clone(), invite.uri());
    let h = r.headers_mut();
    h.push(HeaderName::Via, &invite.top_via().ok()?.to_string());
    h.push(HeaderName::MaxForwards, "70");
    h.copy_from(invite.headers(), HeaderName::Route);
    h.copy_from(invite.headers(), HeaderName::From);
    h.copy_from(to_source, HeaderName::To);
    h.copy_from(invite.headers(), HeaderName::CallId);
    let seq = invite.cseq().ok()?.seq;
    h.push(HeaderName::CSeq, &format!("{seq} {method}"));
    Some(r)
}
