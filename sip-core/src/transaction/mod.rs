//! The transaction layer (RFC 3261 §17, with the RFC 6026 corrections for INVITE 2xx).
//!
//! A transaction is one request and the responses it draws. Four machines exist:
//!
//! | machine | states | timers |
//! |---|---|---|
//! | INVITE client (§17.1.1, RFC 6026 §8.4) | Calling → Proceeding → Accepted / Completed | A, B, D, M |
//! | non-INVITE client (§17.1.2) | Trying → Proceeding → Completed | E, F, K |
//! | INVITE server (§17.2.1, RFC 6026 §8.5) | Proceeding → Accepted / Completed → Confirmed | G, H, I, L |
//! | non-INVITE server (§17.2.2) | Trying → Proceeding → Completed | J |
//!
//! The [`TransactionLayer`] owns all of them. Its user (the UA core, or a test) hands it
//! parsed requests and responses, commands such as [`TransactionLayer::send_request`] and
//! [`TransactionLayer::respond`], and the time; it answers with a [`RequestOutcome`] or
//! [`ResponseOutcome`] at once and queues bytes to send and timer-driven events, drained with
//! [`TransactionLayer::poll_output`]. Retransmissions happen only on unreliable flows, and a
//! flow's loss ends its transactions with [`TxEvent::TransportError`].
//!
//! Matching follows §17.1.3 (branch and CSeq method) for responses and §17.2.3 for requests
//! (branch, sent-by and method with ACK matching INVITE), falling back to the RFC 2543 rules
//! when a branch lacks the `z9hG4bK` magic cookie.

mod client;
mod key;
mod layer;
mod server;
mod timer;

pub use layer::{
    RequestOutcome, ResponseOutcome, TransactionLayer, TxError, TxEvent, TxOutput, TxStats,
};
pub use timer::{TimerConfig, TxTimer};

use std::fmt;

/// A transaction's handle, unique for the life of its [`TransactionLayer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxId(pub(crate) u64);

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tx{}", self.0)
    }
}

/// Which of the four machines a transaction runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxKind {
    /// Sent an INVITE.
    InviteClient,
    /// Sent any other request (not ACK, which has no transaction).
    NonInviteClient,
    /// Received an INVITE.
    InviteServer,
    /// Received any other request.
    NonInviteServer,
}

impl TxKind {
    /// Whether this side sent the request.
    pub fn is_client(self) -> bool {
        matches!(self, TxKind::InviteClient | TxKind::NonInviteClient)
    }
}

/// A transaction's state, with the names RFC 3261 and RFC 6026 use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxState {
    /// INVITE client: request sent, nothing heard.
    Calling,
    /// Non-INVITE (either side): request sent or received, no response yet.
    Trying,
    /// A provisional response was received or sent.
    Proceeding,
    /// RFC 6026: a 2xx to INVITE was received or sent; the TU owns the ACK and the 2xx
    /// retransmissions.
    Accepted,
    /// A non-2xx final response (or, non-INVITE, any final) was received or sent.
    Completed,
    /// INVITE server: the ACK for a non-2xx final arrived.
    Confirmed,
    /// Done; about to be removed.
    Terminated,
}

/// The branch magic cookie of RFC 3261 §8.1.1.7.
pub const MAGIC_COOKIE: &str = "z9hG4bK";
