//! What we know of the stream we receive: extended sequence numbers, loss and interarrival
//! jitter, kept as RFC 3550 Appendix A.1, A.3 and A.8 describe, and the report block that
//! tells the sender.

use std::time::Instant;

use super::rtcp::ReportBlock;

/// A sequence number jump this large restarts the count (RFC 3550 A.1's MAX_DROPOUT).
const MAX_DROPOUT: u16 = 3000;
/// Packets this far behind are old or duplicated.
const MAX_MISORDER: u16 = 100;

/// Reception statistics for one source.
#[derive(Debug, Clone)]
pub(crate) struct Reception {
    pub(crate) ssrc: u32,
    base_seq: u32,
    max_seq: u16,
    cycles: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    /// Relative transit time of the last packet, in timestamp units.
    transit: Option<i64>,
    /// Interarrival jitter, in timestamp units, scaled by 16 (A.8).
    jitter16: u64,
    /// When we started, for arrival times in timestamp units.
    origin: Instant,
}

impl Reception {
    pub(crate) fn new(ssrc: u32, seq: u16, origin: Instant) -> Self {
        Self {
            ssrc,
            base_seq: u32::from(seq),
            max_seq: seq.wrapping_sub(1),
            cycles: 0,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter16: 0,
            origin,
        }
    }

    /// Counts one packet; `false` for a packet too old or too far ahead to count (a restart
    /// is then taken as a new sequence).
    pub(crate) fn update(&mut self, seq: u16, timestamp: u32, rate: u32, now: Instant) -> bool {
        let delta = seq.wrapping_sub(self.max_seq);
        if delta == 0 && self.received > 0 {
            return false;
        }
        if delta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += 1 << 16;
            }
            self.max_seq = seq;
        } else if delta <= u16::MAX - MAX_MISORDER {
            // A large jump: the sender restarted. Count afresh from here.
            *self = Self::new(self.ssrc, seq, self.origin);
            self.max_seq = seq;
        } else {
            // Late or duplicated: counted, not a new maximum.
        }
        self.received += 1;
        let arrival =
            (now.saturating_duration_since(self.origin).as_secs_f64() * f64::from(rate)) as i64;
        let transit = arrival - i64::from(timestamp);
        if let Some(prev) = self.transit.replace(transit) {
            let d = (transit - prev).unsigned_abs();
            // J += (|D| - J) / 16, kept scaled by 16.
            self.jitter16 = self.jitter16 + d - ((self.jitter16 + 8) >> 4);
        }
        true
    }

    fn extended_max(&self) -> u32 {
        self.cycles + u32::from(self.max_seq)
    }

    fn expected(&self) -> u32 {
        self.extended_max()
            .wrapping_sub(self.base_seq)
            .wrapping_add(1)
    }

    /// Interarrival jitter in timestamp units.
    pub(crate) fn jitter(&self) -> u32 {
        (self.jitter16 >> 4) as u32
    }

    /// The report block for the next RTCP packet, and the fraction lost it says (0–1);
    /// `last_sr` and `delay` come from the sender's last SR. Starts the next interval.
    pub(crate) fn report(&mut self, last_sr: u32, delay: u32) -> (ReportBlock, f32) {
        let expected = self.expected();
        let lost = i64::from(expected) - i64::from(self.received);
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        let fraction = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        };
        let block = ReportBlock {
            ssrc: self.ssrc,
            fraction_lost: fraction,
            lost: lost.clamp(-0x80_0000, 0x7f_ffff) as i32,
            highest_seq: self.extended_max(),
            jitter: self.jitter(),
            last_sr,
            delay,
        };
        (block, f32::from(fraction) / 256.0)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::test_clock::origin;

    #[test]
    fn loss_and_wrap_are_counted() {
        let t0 = origin();
        let mut r = Reception::new(1, 65_530, t0);
        let mut seq = 65_530u16;
        for i in 0..20u32 {
            // Every fifth packet is lost.
            if i % 5 != 4 {
                let at = t0 + Duration::from_millis(20 * u64::from(i));
                assert!(r.update(seq, 160 * i, 8000, at));
            }
            seq = seq.wrapping_add(1);
        }
        let (block, fraction) = r.report(0, 0);
        assert_eq!(block.highest_seq, (1 << 16) + 12, "wrapped once");
        assert_eq!(block.lost, 3, "the last lost packet is not known yet");
        assert!((fraction - 3.0 / 19.0).abs() < 0.01, "{fraction}");
        assert_eq!(block.jitter, 0, "perfectly paced");
        // The next interval starts clean.
        assert_eq!(r.report(0, 0).1, 0.0);
    }

    #[test]
    fn jitter_grows_with_uneven_arrival_and_duplicates_do_not_count() {
        let t0 = origin();
        let mut r = Reception::new(1, 0, t0);
        for i in 0..50u16 {
            let wobble = if i % 2 == 0 { 0 } else { 10 };
            let at = t0 + Duration::from_millis(20 * u64::from(i) + wobble);
            r.update(i, 160 * u32::from(i), 8000, at);
        }
        // |D| is 80 timestamp units every packet: J tends to 80.
        assert!((60..=80).contains(&r.jitter()), "{}", r.jitter());
        assert!(!r.update(49, 0, 8000, t0), "duplicate");
    }
}
