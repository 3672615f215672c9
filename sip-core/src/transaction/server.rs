//! Server transactions: INVITE (RFC 3261 §17.2.1, RFC 6026 §8.5) and non-INVITE (§17.2.2).

use std::time::Instant;

use super::key::ServerKey;
use super::layer::{RequestOutcome, TransactionLayer, TxError, TxEvent, TxKey, TxOutput};
use super::{TxId, TxKind, TxState, TxTimer};
use crate::message::{Method, ParseError, Request, Response, StatusCode};
use crate::transport::Flow;

impl TransactionLayer {
    /// Feeds a received request. See [`RequestOutcome`] for what the user must do next.
    ///
    /// A new INVITE gets its 100 Trying queued at once (RFC 3261 §17.2.1 allows waiting
    /// 200 ms for the user, but answering at once stops the peer's timer A soonest and costs
    /// one small datagram).
    pub fn handle_request(
        &mut self,
        now: Instant,
        flow: Flow,
        request: Request,
    ) -> Result<RequestOutcome, ParseError> {
        let r = self.handle_request_inner(now, flow, request);
        self.prune_timers();
        r
    }

    fn handle_request_inner(
        &mut self,
        now: Instant,
        flow: Flow,
        request: Request,
    ) -> Result<RequestOutcome, ParseError> {
        let key = ServerKey::of_request(&request)?;
        if let Some(&id) = self.servers.get(&key) {
            return Ok(self.server_retransmission(now, id, request.method()));
        }
        match request.method() {
            // An ACK that matches nothing acknowledges a 2xx: the dialog's business.
            Method::Ack => return Ok(RequestOutcome::Ack),
            Method::Cancel => {
                let invite_key = ServerKey::with_method(&request, Method::Invite)?;
                let invite = self.servers.get(&invite_key).copied().filter(|id| {
                    self.txs
                        .get(id)
                        .is_some_and(|t| t.state == TxState::Proceeding)
                });
                let tx = self.new_server(flow, request, key, TxKind::NonInviteServer);
                return Ok(RequestOutcome::Cancel { tx, invite });
            }
            _ => {}
        }
        if *request.method() == Method::Invite {
            let trying = Response::from_request(&request, StatusCode::new(100));
            let id = self.new_server(flow, request, key, TxKind::InviteServer);
            self.send_response(id, flow, &trying);
            Ok(RequestOutcome::New(id))
        } else {
            Ok(RequestOutcome::New(self.new_server(
                flow,
                request,
                key,
                TxKind::NonInviteServer,
            )))
        }
    }

    fn new_server(&mut self, flow: Flow, request: Request, key: ServerKey, kind: TxKind) -> TxId {
        let state = if kind == TxKind::InviteServer {
            TxState::Proceeding
        } else {
            TxState::Trying
        };
        self.new_tx(kind, state, flow, Some(request), TxKey::Server(key))
    }

    fn server_retransmission(&mut self, now: Instant, id: TxId, method: &Method) -> RequestOutcome {
        self.stats.absorbed_requests += 1;
        let Some(t) = self.txs.get(&id) else {
            return RequestOutcome::Absorbed;
        };
        let (kind, state, flow, last) = (t.kind, t.state, t.flow, t.last.clone());
        if *method == Method::Ack {
            if kind == TxKind::InviteServer && state == TxState::Completed {
                // §17.2.1: the ACK ends retransmission of our non-2xx final.
                self.set_state(id, TxState::Confirmed);
                self.disarm(id, TxTimer::G);
                self.disarm(id, TxTimer::H);
                self.linger(
                    now,
                    id,
                    TxTimer::I,
                    self.config.timer_k(flow.transport.is_reliable()),
                );
            }
            return RequestOutcome::Absorbed;
        }
        let resend = match (kind, state) {
            // RFC 6026 §8.5: after a 2xx the TU retransmits it; the transaction only absorbs.
            (TxKind::InviteServer, TxState::Accepted | TxState::Confirmed) => false,
            (TxKind::InviteServer, _) => true,
            (_, TxState::Proceeding | TxState::Completed) => true,
            _ => false,
        };
        if resend && let Some(bytes) = last {
            self.transmit(flow, bytes);
        }
        RequestOutcome::Absorbed
    }

    /// Sends a response on a server transaction and moves its state (§17.2.1, §17.2.2).
    /// Provisional responses may repeat; after a final only further 2xx to INVITE are taken
    /// (RFC 6026: the user retransmits its 2xx itself).
    pub fn respond(&mut self, now: Instant, tx: TxId, response: &Response) -> Result<(), TxError> {
        let t = self.txs.get(&tx).ok_or(TxError::NoTransaction)?;
        let (kind, state, flow) = (t.kind, t.state, t.flow);
        let code = response.status().code();
        let reliable = flow.transport.is_reliable();
        match (kind, state) {
            (TxKind::InviteServer, TxState::Proceeding) => {
                self.send_response(tx, flow, response);
                if (200..300).contains(&code) {
                    self.set_state(tx, TxState::Accepted);
                    self.arm(now, tx, TxTimer::L, self.config.timer_b());
                } else if code >= 300 {
                    self.set_state(tx, TxState::Completed);
                    if !reliable {
                        self.arm(now, tx, TxTimer::G, self.config.t1());
                    }
                    self.arm(now, tx, TxTimer::H, self.config.timer_b());
                }
            }
            (TxKind::InviteServer, TxState::Accepted) if (200..300).contains(&code) => {
                self.send_response(tx, flow, response);
            }
            (TxKind::NonInviteServer, TxState::Trying | TxState::Proceeding) => {
                self.send_response(tx, flow, response);
                if code < 200 {
                    self.set_state(tx, TxState::Proceeding);
                } else {
                    self.set_state(tx, TxState::Completed);
                    self.linger(now, tx, TxTimer::J, self.config.timer_j(reliable));
                }
            }
            _ => return Err(TxError::WrongState),
        }
        self.prune_timers();
        Ok(())
    }

    fn send_response(&mut self, tx: TxId, flow: Flow, response: &Response) {
        let bytes = response.to_bytes();
        if let Some(t) = self.txs.get_mut(&tx) {
            t.last = Some(bytes.clone());
        }
        self.transmit(flow, bytes);
    }

    pub(crate) fn server_timer(&mut self, now: Instant, id: TxId, timer: TxTimer) {
        let Some(t) = self.txs.get_mut(&id) else {
            return;
        };
        match timer {
            TxTimer::G => {
                let interval = (t.interval * 2).min(self.config.t2());
                t.interval = interval;
                let flow = t.flow;
                if let Some(bytes) = t.last.clone() {
                    self.stats.retransmissions += 1;
                    self.transmit(flow, bytes);
                }
                self.arm(now, id, TxTimer::G, interval);
            }
            TxTimer::H => {
                // No ACK ever came (§17.2.1): the user learns, e.g. to end the dialog.
                self.stats.timeouts += 1;
                self.out
                    .push_back(TxOutput::Event(TxEvent::Timeout { tx: id, timer }));
                self.terminate(id);
            }
            _ => self.terminate(id), // I, J, L: lingering over.
        }
    }
}
