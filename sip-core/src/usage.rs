//! What every dialog usage (RFC 5057) shares with the user agent that drives it: the small
//! context a step gets, and the actions it answers with.
//!
//! A usage — a call's INVITE usage (`session::invite`), a subscription
//! (`subscription`) — never borrows the [`UserAgent`](crate::ua::UserAgent). Each step
//! gets a [`Ctx`] (the time, the id generator, the settings, the Via and Contact of its
//! flow) and says what it needs done as [`Action`]s, in order; the user agent carries them
//! out: it starts and answers transactions, puts bytes on flows, keeps the timers, tells
//! the application. `R` names what a usage's requests are for (so their responses find
//! their way back), `T` its timers.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

use bytes::Bytes;

use crate::dialog::Local;
use crate::ids::IdGenerator;
use crate::message::{HeaderName, Request, Response, StatusCode};
use crate::transaction::TxId;
use crate::ua::{Event, UaConfig, answer};

/// What a usage asks of the user agent.
#[derive(Debug)]
pub(crate) enum Action<R, T> {
    /// Start a client transaction for this request of the usage.
    Send(Request, R),
    /// Answer this server transaction.
    Respond(TxId, Response),
    /// Put bytes on the usage's flow outside any transaction (an ACK for a 2xx, our 2xx
    /// again); `retransmission` counts it as one.
    Transmit { bytes: Bytes, retransmission: bool },
    /// CANCEL this INVITE client transaction, with these extra headers.
    Cancel(TxId, Vec<(String, String)>),
    /// Forget this client transaction without a word.
    Abandon(TxId),
    /// Wake the usage at this instant for this timer.
    Timer(Instant, T),
    /// Tell the application.
    Event(Event),
}

/// What a usage's step gets from the user agent.
pub(crate) struct Ctx<'a, R, T> {
    pub(crate) now: Instant,
    pub(crate) ids: &'a mut IdGenerator,
    pub(crate) config: &'a UaConfig,
    /// Via and Contact of the flow the usage's requests leave by now.
    pub(crate) local: Local,
    /// Whether the usage's own flow is reliable: no 2xx retransmissions then.
    pub(crate) reliable: bool,
    pub(crate) out: &'a mut VecDeque<Action<R, T>>,
}

impl<R, T> Ctx<'_, R, T> {
    pub(crate) fn event(&mut self, e: Event) {
        self.out.push_back(Action::Event(e));
    }

    pub(crate) fn send(&mut self, req: Request, what: R) {
        self.out.push_back(Action::Send(req, what));
    }

    pub(crate) fn transmit(&mut self, bytes: Bytes) {
        self.out.push_back(Action::Transmit {
            bytes,
            retransmission: false,
        });
    }

    pub(crate) fn timer(&mut self, at: Instant, kind: T) {
        self.out.push_back(Action::Timer(at, kind));
    }

    /// Answers `req` on `tx` with `status` and `extra` headers (a fresh To tag where the
    /// request has none).
    pub(crate) fn respond_with(
        &mut self,
        tx: TxId,
        req: &Request,
        status: StatusCode,
        extra: &[(HeaderName, String)],
    ) {
        let server = self.config.user_agent.as_deref();
        let resp = answer::reply(req, status, extra, self.ids, server);
        self.out.push_back(Action::Respond(tx, resp));
    }

    pub(crate) fn respond(&mut self, tx: TxId, req: &Request, code: u16) {
        self.respond_with(tx, req, StatusCode::new(code), &[]);
    }
}

/// The deadlines the usages of one kind asked for (`Action::Timer`), earliest first. A
/// usage keeps its own armed instant per timer kind; a popped deadline that no longer
/// matches it was re-armed or cleared, and is ignored by the caller.
#[derive(Debug)]
pub(crate) struct Deadlines<K, T>(BinaryHeap<Reverse<(Instant, K, T)>>);

impl<K: Ord + Copy, T: Ord + Copy> Deadlines<K, T> {
    pub(crate) fn new() -> Self {
        Self(BinaryHeap::new())
    }

    pub(crate) fn push(&mut self, at: Instant, id: K, kind: T) {
        self.0.push(Reverse((at, id, kind)));
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.0.peek().map(|Reverse((at, _, _))| *at)
    }

    /// Drops the deadlines at the front that `live` says were re-armed or cleared, so
    /// [`Deadlines::next`] names one that will fire: a stale one would wake the caller
    /// for nothing (a callee's cleared 2xx retransmission, 500 ms after every call).
    pub(crate) fn prune(&mut self, live: impl Fn(Instant, K, T) -> bool) {
        while let Some(&Reverse((at, id, kind))) = self.0.peek() {
            if live(at, id, kind) {
                return;
            }
            self.0.pop();
        }
    }

    /// The earliest deadline if it is due at `now`, taken out.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, K, T)> {
        let Reverse((at, _, _)) = self.0.peek()?;
        if *at > now {
            return None;
        }
        self.0.pop().map(|Reverse(d)| d)
    }
}
