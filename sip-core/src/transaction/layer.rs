//! The layer that owns every transaction, its keys and its timers.

use crate::handles::{HandleMap, handle_map};
use crate::peer_map::{PeerMap, peer_map};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use smallvec::SmallVec;

use super::key::{ClientKey, ServerKey};
use super::timer::TimerQueue;
use super::{TimerConfig, TxId, TxKind, TxState, TxTimer};
use crate::message::{Method, ParseError, Request};
use crate::transport::Flow;

/// What the layer asks of its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxOutput {
    /// Send these bytes on this flow. A transmit is always queued before the timer that
    /// would retransmit it.
    Transmit {
        /// Where to send.
        flow: Flow,
        /// One whole message.
        bytes: Bytes,
    },
    /// Something the transaction user must act on.
    Event(TxEvent),
}

/// Timer- and transport-driven news for the transaction user. Responses and requests are
/// not here: [`TransactionLayer::handle_response`] and [`TransactionLayer::handle_request`]
/// answer for them directly.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxEvent {
    /// A client transaction got no final response in time (timer B or F), or an INVITE
    /// server transaction never got the ACK for its non-2xx final (timer H). The client's
    /// user should act as on a 408 (RFC 3261 §8.1.3.1).
    Timeout {
        /// Which transaction.
        tx: TxId,
        /// Which timer ended it.
        timer: TxTimer,
    },
    /// The flow the transaction used is gone (RFC 3261 §17.1.4, §17.2.4). The client's user
    /// should act as on a 503.
    TransportError {
        /// Which transaction.
        tx: TxId,
    },
}

/// What became of a request handed to [`TransactionLayer::handle_request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// A new server transaction; the user must answer it with
    /// [`TransactionLayer::respond`]. For INVITE a 100 Trying has been queued already.
    New(TxId),
    /// A CANCEL: its own server transaction (answer 200 or 481) and the INVITE server
    /// transaction it matches, if any (RFC 3261 §9.2).
    Cancel {
        /// The CANCEL's transaction.
        tx: TxId,
        /// The INVITE transaction it cancels, when one matches and is still proceeding.
        invite: Option<TxId>,
    },
    /// An ACK that matches no INVITE transaction in the Completed state: the ACK for a 2xx,
    /// which belongs to the dialog (RFC 3261 §17.2.3, RFC 6026 §8.5).
    Ack,
    /// A retransmission the layer handled (resent the last response, or absorbed it).
    Absorbed,
}

/// What became of a response handed to [`TransactionLayer::handle_response`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseOutcome {
    /// The user must see it: a provisional, a first final, or (INVITE) any 2xx including
    /// forked and retransmitted ones.
    Pass(TxId),
    /// A retransmission the layer handled (a repeated non-2xx final, re-ACKed if INVITE).
    Absorbed,
    /// No transaction matches. A 2xx to INVITE arriving after timer M belongs to the
    /// dialog layer; anything else is dropped (RFC 3261 §18.1.2).
    Stray,
}

/// A command the layer cannot carry out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxError {
    /// The request lacks what a transaction needs (a top Via with a branch, a CSeq).
    #[error("request cannot start a transaction: {0}")]
    Malformed(#[from] ParseError),
    /// ACK never has a client transaction: send it as a plain transmit.
    #[error("ACK has no transaction")]
    Ack,
    /// Another live client transaction already uses this branch and method.
    #[error("branch already in use")]
    DuplicateBranch,
    /// No such transaction (it ended, or the id belongs to another layer).
    #[error("no such transaction")]
    NoTransaction,
    /// A response for a client transaction, or a final response after the final.
    #[error("transaction is not in a state to send that response")]
    WrongState,
}

/// Counters for what the layer did on its own. Useful in tests and for monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxStats {
    /// Requests and responses sent again by timers A, E and G.
    pub retransmissions: u64,
    /// Retransmitted requests answered from the transaction's last response, or absorbed.
    pub absorbed_requests: u64,
    /// Retransmitted responses absorbed (and re-ACKed for INVITE non-2xx).
    pub absorbed_responses: u64,
    /// Responses that matched no transaction.
    pub stray_responses: u64,
    /// Transactions ended by timers B, F or H.
    pub timeouts: u64,
}

#[derive(Debug)]
pub(crate) struct Tx {
    pub(crate) kind: TxKind,
    pub(crate) state: TxState,
    pub(crate) flow: Flow,
    /// Server: the request received, let go once the transaction only lingers to absorb
    /// retransmissions (see [`Tx::enter`]). A client keeps only the bytes it sent (`last`).
    /// Boxed: a request is large, and most transactions have none.
    pub(crate) request: Option<Box<Request>>,
    /// Client: the request's bytes (retransmitted by A/E), until a final response;
    /// server: the last response's bytes.
    pub(crate) last: Option<Bytes>,
    /// Client INVITE: the ACK sent for a non-2xx final, resent for each retransmission.
    pub(crate) ack: Option<Bytes>,
    /// The interval the next retransmission timer uses.
    pub(crate) interval: Duration,
    pub(crate) timers: SmallVec<[(TxTimer, Instant); 2]>,
    /// How the transaction is found: one key, as it is either a client or a server.
    pub(crate) key: TxKey,
}

/// A transaction's key in the layer's tables.
#[derive(Debug)]
pub(crate) enum TxKey {
    Client(ClientKey),
    Server(ServerKey),
}

impl Tx {
    /// Enters `state`. A transaction that only lingers (RFC 6026 Accepted; Completed;
    /// Confirmed) answers retransmissions from its key and the bytes it may still repeat
    /// (a non-INVITE server's or a rejecting INVITE server's last response, an INVITE
    /// client's ACK), so it lets its request go, and the bytes it will not send again: at
    /// thousands of calls a second, 32 s of lingering transactions is most of a loaded user
    /// agent's memory.
    pub(crate) fn enter(&mut self, state: TxState) {
        self.state = state;
        let lingers = matches!(
            state,
            TxState::Accepted | TxState::Completed | TxState::Confirmed
        );
        if lingers {
            self.request = None;
        }
        // A client never resends its request after a final response; an INVITE server
        // absorbs retransmissions once its 2xx went (the TU resends that) or its ACK came.
        let done_sending = self.kind.is_client()
            || (self.kind == TxKind::InviteServer
                && matches!(state, TxState::Accepted | TxState::Confirmed));
        if lingers && done_sending {
            self.last = None;
        }
    }
}

/// Owns every transaction of one user agent; see the [module docs](super).
#[derive(Debug)]
pub struct TransactionLayer {
    pub(crate) config: TimerConfig,
    pub(crate) txs: HandleMap<TxId, Tx>,
    pub(crate) clients: PeerMap<ClientKey, TxId>,
    pub(crate) servers: PeerMap<ServerKey, TxId>,
    pub(crate) queue: TimerQueue,
    pub(crate) out: VecDeque<TxOutput>,
    pub(crate) next_id: u64,
    pub(crate) stats: TxStats,
}

impl TransactionLayer {
    /// An empty layer using `config`'s T1, T2 and T4.
    pub fn new(config: TimerConfig) -> Self {
        Self {
            config,
            txs: handle_map(),
            clients: peer_map(),
            servers: peer_map(),
            queue: TimerQueue::default(),
            out: VecDeque::new(),
            next_id: 0,
            stats: TxStats::default(),
        }
    }

    /// The timer configuration.
    pub fn config(&self) -> &TimerConfig {
        &self.config
    }

    /// Live transactions.
    #[must_use]
    pub fn len(&self) -> usize {
        self.txs.len()
    }

    /// Whether no transaction is alive.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> TxStats {
        self.stats
    }

    /// A transaction's state, `None` once it has ended.
    #[must_use]
    pub fn state(&self, tx: TxId) -> Option<TxState> {
        self.txs.get(&tx).map(|t| t.state)
    }

    /// A transaction's kind, `None` once it has ended.
    #[must_use]
    pub fn kind(&self, tx: TxId) -> Option<TxKind> {
        self.txs.get(&tx).map(|t| t.kind)
    }

    /// The request a server transaction received, while it is live: `None` once it
    /// lingers in Accepted, Completed or Confirmed (RFC 6026), where only its key and the
    /// bytes it may repeat are kept. A client transaction keeps only the bytes it sent:
    /// see [`TransactionLayer::request_bytes`].
    #[must_use]
    pub fn request(&self, tx: TxId) -> Option<&Request> {
        self.txs.get(&tx).and_then(|t| t.request.as_deref())
    }

    /// A client transaction's request as sent (the bytes its retransmissions repeat).
    pub fn request_bytes(&self, tx: TxId) -> Option<&Bytes> {
        self.txs
            .get(&tx)
            .filter(|t| t.kind.is_client())
            .and_then(|t| t.last.as_ref())
    }

    /// The flow a transaction runs on.
    #[must_use]
    pub fn flow(&self, tx: TxId) -> Option<Flow> {
        self.txs.get(&tx).map(|t| t.flow)
    }

    /// The next thing to do, or `None` when everything queued has been drained. Drain after
    /// every input, command and timeout.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<TxOutput> {
        self.out.pop_front()
    }

    /// The earliest deadline of any timer; call [`TransactionLayer::handle_timeout`] then.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.queue.peek().map(|(at, _, _)| at)
    }

    /// Why the next wake-up is due: which transaction and timer, for diagnosing a stalled
    /// simulation.
    #[must_use]
    pub fn next_timer(&self) -> Option<(Instant, TxId, TxTimer)> {
        self.queue.peek()
    }

    /// Fires every timer due at or before `now`. Calling early or twice is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((at, tx, timer)) = self.queue.peek() {
            if at > now {
                break;
            }
            self.queue.pop();
            let live = self.txs.get_mut(&tx).and_then(|t| {
                let i = t.timers.iter().position(|&(k, d)| k == timer && d == at)?;
                t.timers.swap_remove(i);
                Some(t.kind)
            });
            let Some(kind) = live else {
                continue; // cancelled or the transaction ended
            };
            if kind.is_client() {
                self.client_timer(now, tx, timer);
            } else {
                self.server_timer(now, tx, timer);
            }
        }
        self.prune_timers();
    }

    /// Ends every transaction on `flow` because the connection is gone; each queues a
    /// [`TxEvent::TransportError`].
    pub fn handle_flow_closed(&mut self, flow: Flow) {
        let mut ids: Vec<TxId> = self
            .txs
            .iter()
            .filter(|(_, t)| t.flow.id == flow.id && t.state != TxState::Terminated)
            .map(|(id, _)| *id)
            .collect();
        ids.sort();
        for tx in ids {
            self.out
                .push_back(TxOutput::Event(TxEvent::TransportError { tx }));
            self.terminate(tx);
        }
        self.prune_timers();
    }

    /// Forgets a transaction without a word: for an INVITE whose CANCEL drew no final
    /// response within 64·T1 (RFC 3261 §9.1 lets the client consider it cancelled then).
    pub fn abandon(&mut self, tx: TxId) {
        self.terminate(tx);
        self.prune_timers();
    }

    pub(crate) fn alloc_id(&mut self) -> TxId {
        self.next_id += 1;
        TxId(self.next_id)
    }

    pub(crate) fn transmit(&mut self, flow: Flow, bytes: Bytes) {
        self.out.push_back(TxOutput::Transmit { flow, bytes });
    }

    /// Arms `timer` to fire `after` from `now`, replacing any earlier arming of it.
    pub(crate) fn arm(&mut self, now: Instant, tx: TxId, timer: TxTimer, after: Duration) {
        let at = now + after;
        if let Some(t) = self.txs.get_mut(&tx) {
            t.timers.retain(|(k, _)| *k != timer);
            t.timers.push((timer, at));
            self.queue.push(at, tx, timer);
        }
    }

    pub(crate) fn disarm(&mut self, tx: TxId, timer: TxTimer) {
        if let Some(t) = self.txs.get_mut(&tx) {
            t.timers.retain(|(k, _)| *k != timer);
        }
    }

    /// Removes a transaction and its keys. Its timer entries die lazily.
    pub(crate) fn terminate(&mut self, tx: TxId) {
        if let Some(t) = self.txs.remove(&tx) {
            match t.key {
                TxKey::Client(k) => self.clients.remove(&k),
                TxKey::Server(k) => self.servers.remove(&k),
            };
        }
    }

    /// Moves to a state whose linger time may be zero (D, I, J, K on reliable flows):
    /// a zero timer ends the transaction at once instead of waking the caller for nothing.
    pub(crate) fn linger(&mut self, now: Instant, tx: TxId, timer: TxTimer, after: Duration) {
        if after.is_zero() {
            self.terminate(tx);
        } else {
            self.arm(now, tx, timer, after);
        }
    }

    /// Pops entries at the head of the queue that no transaction holds any more, so
    /// [`TransactionLayer::poll_timeout`] never reports a dead deadline.
    pub(crate) fn prune_timers(&mut self) {
        while let Some((at, tx, timer)) = self.queue.peek() {
            let live = self
                .txs
                .get(&tx)
                .is_some_and(|t| t.timers.iter().any(|&(k, d)| k == timer && d == at));
            if live {
                break;
            }
            self.queue.pop();
        }
    }

    /// Heap entries including dead ones; for tests that check nothing piles up.
    #[doc(hidden)]
    pub fn _queued_timers(&self) -> usize {
        self.queue.len()
    }

    pub(crate) fn new_tx(
        &mut self,
        kind: TxKind,
        state: TxState,
        flow: Flow,
        request: Option<Request>,
        key: TxKey,
    ) -> TxId {
        let id = self.alloc_id();
        match &key {
            TxKey::Client(k) => self.clients.insert(k.clone(), id),
            TxKey::Server(k) => self.servers.insert(k.clone(), id),
        };
        self.txs.insert(
            id,
            Tx {
                kind,
                state,
                flow,
                request: request.map(Box::new),
                last: None,
                ack: None,
                interval: self.config.t1(),
                timers: SmallVec::new(),
                key,
            },
        );
        id
    }
}

/// `INVITE` or `ACK`-for-INVITE versus everything else.
pub(crate) fn is_invite(m: &Method) -> bool {
    matches!(m, Method::Invite)
}
