//! Transaction timers (RFC 3261 §17, Table 4 in Appendix A; RFC 6026 §8.4 adds L and M).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use super::TxId;

/// The base timer values. Defaults are RFC 3261's: T1 500 ms (RTT estimate), T2 4 s (cap on
/// non-INVITE retransmission intervals), T4 5 s (how long a message may stay in the network).
///
/// ```
/// use std::time::Duration;
/// use sansip_core::transaction::TimerConfig;
/// let fast = TimerConfig::default().set_t1(Duration::from_millis(100));
/// assert_eq!(fast.t1(), Duration::from_millis(100));
/// assert_eq!(fast.timer_b(), Duration::from_millis(6400));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    t1: Duration,
    t2: Duration,
    t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerConfig {
    /// Sets T1, the round-trip estimate every other interval scales with.
    pub fn set_t1(mut self, t1: Duration) -> Self {
        self.t1 = t1;
        self
    }

    /// Sets T2, the longest retransmission interval for non-INVITE requests and responses.
    pub fn set_t2(mut self, t2: Duration) -> Self {
        self.t2 = t2;
        self
    }

    /// Sets T4, the longest time a message lingers in the network.
    pub fn set_t4(mut self, t4: Duration) -> Self {
        self.t4 = t4;
        self
    }

    /// T1.
    pub fn t1(&self) -> Duration {
        self.t1
    }

    /// T2.
    pub fn t2(&self) -> Duration {
        self.t2
    }

    /// T4.
    pub fn t4(&self) -> Duration {
        self.t4
    }

    /// 64·T1: how long a client waits for any final response (timers B and F) and a server
    /// lingers (H, J, L, M).
    pub fn timer_b(&self) -> Duration {
        self.t1 * 64
    }

    /// Timer D: how long an INVITE client absorbs retransmitted final responses; at least
    /// 32 s on unreliable transports, zero on reliable ones.
    pub fn timer_d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            Duration::from_secs(32).max(self.timer_b())
        }
    }

    /// Timers I and K: T4 on unreliable transports, zero on reliable ones.
    pub fn timer_k(&self, reliable: bool) -> Duration {
        if reliable { Duration::ZERO } else { self.t4 }
    }

    /// Timer J: 64·T1 on unreliable transports, zero on reliable ones.
    pub fn timer_j(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.timer_b()
        }
    }
}

/// Which timer fired. Each variant is named as in RFC 3261 Table 4 / RFC 6026.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TxTimer {
    /// INVITE client: retransmit the INVITE (unreliable only), doubling from T1.
    A,
    /// INVITE client: no response at all within 64·T1.
    B,
    /// INVITE client: stop absorbing retransmitted non-2xx finals.
    D,
    /// Non-INVITE client: retransmit the request, doubling from T1 up to T2.
    E,
    /// Non-INVITE client: no final response within 64·T1.
    F,
    /// INVITE server: retransmit the non-2xx final, doubling from T1 up to T2.
    G,
    /// INVITE server: no ACK for the non-2xx final within 64·T1.
    H,
    /// INVITE server: stop absorbing ACK retransmissions.
    I,
    /// Non-INVITE server: stop absorbing request retransmissions.
    J,
    /// Non-INVITE client: stop absorbing response retransmissions.
    K,
    /// INVITE server (RFC 6026): stop absorbing INVITE retransmissions after a 2xx.
    L,
    /// INVITE client (RFC 6026): stop accepting forked 2xx responses.
    M,
}

/// Every pending deadline of the layer, soonest first. Entries are not removed when a
/// transaction cancels a timer; a popped entry that no longer matches the transaction's own
/// record is skipped (lazy deletion keeps arming a timer O(log n)).
#[derive(Debug, Default)]
pub(crate) struct TimerQueue {
    heap: BinaryHeap<Reverse<(Instant, TxId, TxTimer)>>,
}

impl TimerQueue {
    pub(crate) fn push(&mut self, at: Instant, tx: TxId, timer: TxTimer) {
        self.heap.push(Reverse((at, tx, timer)));
    }

    pub(crate) fn peek(&self) -> Option<(Instant, TxId, TxTimer)> {
        self.heap.peek().map(|Reverse(e)| *e)
    }

    pub(crate) fn pop(&mut self) -> Option<(Instant, TxId, TxTimer)> {
        self.heap.pop().map(|Reverse(e)| e)
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}
