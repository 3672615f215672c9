//! An adaptive playout (jitter) buffer for one call's received audio.
//!
//! Packets go in as they arrive, keyed by RTP time; the call's 20 ms clock takes one frame
//! out per tick. Between the two, the buffer reorders, holds enough to ride out the delay
//! variation it measures, drops what comes too late to play, and says where a frame is
//! missing so the decoder can conceal it. The sink thus gets a frame every 20 ms once the
//! stream has started: a recording's length is the call's.
//!
//! The target delay follows the interarrival jitter (RFC 3550 §6.4.1's estimator): about
//! three times the jitter, in whole frames, between one and [`MAX_DELAY_FRAMES`]. When a
//! frame's packet is missing with little buffered behind it, the packet is taken as late:
//! the buffer conceals one frame and waits for it (the delay grows by a frame) rather than
//! skipping it, and raises the target. With enough buffered behind, it is lost and
//! skipped. When the buffer holds far more than its target it drops a frame per tick.

use std::collections::BTreeMap;
use std::time::Instant;

use super::AudioCodec;

/// The longest delay the buffer adds, in 20 ms frames.
pub const MAX_DELAY_FRAMES: u64 = 10;
/// How many packets it holds at most (a burst beyond is dropped as late).
const CAPACITY: usize = 64;
/// After this many frames with nothing to play, the stream is taken as paused (hold,
/// silence suppression): silence is played, not concealment, until packets come back.
const PAUSE_FRAMES: u32 = 5;
/// Frames buffered beyond the target before the buffer drops one to catch up.
const SLACK_FRAMES: u64 = 4;

/// What to play for one 20 ms frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Playout {
    /// Decode this payload.
    Packet {
        /// Its codec.
        codec: AudioCodec,
        /// The payload.
        payload: Vec<u8>,
    },
    /// The frame is missing (lost, or late): conceal it. `next` is the packet that follows,
    /// when it is already here (Opus can rebuild the gap from its in-band FEC).
    Missing {
        /// The stream's codec.
        codec: AudioCodec,
        /// The following packet's payload, if buffered.
        next: Option<Vec<u8>>,
    },
    /// The stream paused: play silence.
    Silence,
    /// Nothing has been received yet.
    Idle,
}

/// Counts kept by the buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Frames played from a packet.
    pub played: u64,
    /// Frames concealed because their packet was lost or late.
    pub concealed: u64,
    /// Packets that came after their frame had been played (or concealed).
    pub late: u64,
    /// Frames dropped to bring the delay back down.
    pub discarded: u64,
}

/// The playout buffer of one stream; see the module docs.
#[derive(Debug)]
pub struct JitterBuffer {
    queue: BTreeMap<u64, (AudioCodec, Vec<u8>)>,
    /// The RTP time of the next frame to play, once playing.
    next: Option<u64>,
    /// The last timestamp pushed, extended to 64 bits (for unwrapping the next).
    last: Option<u64>,
    codec: Option<AudioCodec>,
    /// Interarrival jitter in seconds, and the last relative transit time.
    jitter: f64,
    transit: Option<f64>,
    origin: Option<Instant>,
    target: u64,
    /// Frames in a row with nothing to play.
    dry: u32,
    /// Frames in a row spent waiting for the packet of `next`.
    waits: u64,
    stats: JitterStats,
}

impl Default for JitterBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl JitterBuffer {
    /// An empty buffer with a one-frame target.
    pub fn new() -> Self {
        Self {
            queue: BTreeMap::new(),
            next: None,
            last: None,
            codec: None,
            jitter: 0.0,
            transit: None,
            origin: None,
            target: 1,
            dry: 0,
            waits: 0,
            stats: JitterStats::default(),
        }
    }

    /// The counts so far.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// The codec of the stream, once a packet came.
    pub fn codec(&self) -> Option<AudioCodec> {
        self.codec
    }

    /// The delay the buffer aims for, in 20 ms frames.
    pub fn target_frames(&self) -> u64 {
        self.target
    }

    /// Takes a packet with RTP time `timestamp` (32 bits as on the wire), arrived `now`.
    pub fn push(&mut self, now: Instant, codec: AudioCodec, timestamp: u32, payload: &[u8]) {
        let ts = self.extend(timestamp);
        if self.codec != Some(codec) {
            // A new codec: its clock differs, start over.
            self.queue.clear();
            self.next = None;
            self.transit = None;
            self.codec = Some(codec);
        }
        self.measure(now, codec.rate(), ts);
        if self.next.is_some_and(|n| ts < n) {
            // Its slot was concealed already: the delay is too short for this network.
            self.stats.late += 1;
            self.target = (self.target + 1).min(MAX_DELAY_FRAMES);
            return;
        }
        if self.queue.len() >= CAPACITY {
            self.stats.late += 1;
            return;
        }
        self.queue.insert(ts, (codec, payload.to_vec()));
    }

    /// 32-bit RTP time to 64 bits, near the last one seen.
    fn extend(&mut self, ts: u32) -> u64 {
        let ext = match self.last {
            None => u64::from(ts) + (1 << 32),
            Some(last) => {
                let delta = i64::from(ts.wrapping_sub(last as u32) as i32);
                last.saturating_add_signed(delta)
            }
        };
        self.last = Some(self.last.map_or(ext, |l| l.max(ext)));
        ext
    }

    /// RFC 3550 §6.4.1's jitter estimate, in seconds, and the target delay it implies.
    fn measure(&mut self, now: Instant, rate: u32, ts: u64) {
        let origin = *self.origin.get_or_insert(now);
        let arrival = now.saturating_duration_since(origin).as_secs_f64();
        let transit = arrival - ts as f64 / f64::from(rate);
        if let Some(prev) = self.transit.replace(transit) {
            self.jitter += ((transit - prev).abs() - self.jitter) / 16.0;
        }
        let wanted = ((3.0 * self.jitter) / 0.020).ceil() as u64;
        self.target = self.target.max(wanted.clamp(1, MAX_DELAY_FRAMES));
    }

    /// The frame to play now (called every 20 ms).
    pub fn pop(&mut self) -> Playout {
        let Some(codec) = self.codec else {
            return Playout::Idle;
        };
        let frame = u64::from(super::frame_samples(codec.rate()) as u32);
        let next = match self.next {
            Some(n) => n,
            None => {
                // Start (or restart after a pause) once the target delay is buffered.
                let Some((&first, _)) = self.queue.first_key_value() else {
                    return self.dry_frame();
                };
                let span = self.queue.last_key_value().map_or(0, |(&l, _)| l - first) / frame;
                if span + 1 < self.target {
                    return self.dry_frame();
                }
                first
            }
        };
        // Far more buffered than needed: drop the oldest frame, one per tick.
        let mut next = next;
        if let Some((&last, _)) = self.queue.last_key_value()
            && last >= next + frame * (self.target + SLACK_FRAMES)
        {
            if self.queue.remove(&next).is_some() {
                self.stats.discarded += 1;
            }
            next += frame;
        }
        // Packets from before `next` (a restart) are late now.
        while let Some((&ts, _)) = self.queue.first_key_value()
            && ts < next
        {
            self.queue.remove(&ts);
            self.stats.late += 1;
        }
        self.next = Some(next);
        if let Some((codec, payload)) = self.queue.remove(&next) {
            self.next = Some(next + frame);
            self.dry = 0;
            self.waits = 0;
            self.stats.played += 1;
            return Playout::Packet { codec, payload };
        }
        if self.queue.is_empty() {
            self.dry += 1;
            if self.dry > PAUSE_FRAMES {
                // The stream paused: wait for it to come back at the target delay.
                self.next = None;
                self.waits = 0;
                return Playout::Silence;
            }
        }
        self.stats.concealed += 1;
        let behind = self.queue.range(next..).count() as u64;
        if behind < self.target && self.waits < MAX_DELAY_FRAMES {
            // Too little behind it for the packet to be lost: it is late. Wait a frame for
            // it (the concealed frame stretches the delay) and aim for more delay.
            self.waits += 1;
            self.target = (self.target + 1).min(MAX_DELAY_FRAMES);
            return Playout::Missing { codec, next: None };
        }
        self.waits = 0;
        self.next = Some(next + frame);
        Playout::Missing {
            codec,
            next: self.queue.get(&(next + frame)).map(|(_, p)| p.clone()),
        }
    }

    fn dry_frame(&mut self) -> Playout {
        if self.stats.played == 0 && self.stats.concealed == 0 {
            Playout::Idle
        } else {
            Playout::Silence
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::test_clock::origin;

    fn played(p: &Playout) -> Option<u8> {
        match p {
            Playout::Packet { payload, .. } => Some(payload[0]),
            _ => None,
        }
    }

    #[test]
    fn reordered_packets_play_in_order_and_a_lost_one_is_concealed() {
        let t0 = origin();
        let mut jb = JitterBuffer::new();
        assert_eq!(jb.pop(), Playout::Idle);
        let push = |jb: &mut JitterBuffer, n: u8| {
            let at = t0 + Duration::from_millis(20 * u64::from(n));
            jb.push(at, AudioCodec::Pcmu, 160 * u32::from(n), &[n]);
        };
        // Frames 0 to 6 with 2 and 3 swapped and 4 lost, popped as they would be played.
        for n in [0, 1, 3] {
            push(&mut jb, n);
        }
        let mut out = vec![jb.pop()];
        push(&mut jb, 2);
        out.push(jb.pop());
        push(&mut jb, 5);
        out.push(jb.pop());
        out.push(jb.pop());
        push(&mut jb, 6);
        out.extend((0..3).map(|_| jb.pop()));
        let seq: Vec<Option<u8>> = out.iter().map(played).collect();
        assert_eq!(seq[..4], [Some(0), Some(1), Some(2), Some(3)], "{out:?}");
        assert!(matches!(
            &out[4],
            Playout::Missing { next: Some(p), .. } if p == &vec![5]
        ));
        assert_eq!(seq[5..], [Some(5), Some(6)]);
        let s = jb.stats();
        assert_eq!((s.played, s.concealed, s.late, s.discarded), (6, 1, 0, 0));
    }

    #[test]
    fn a_late_packet_is_counted_and_dropped_and_wraparound_is_seamless() {
        let t0 = origin();
        let mut jb = JitterBuffer::new();
        let start = u32::MAX - 160 * 2 + 1;
        jb.push(t0, AudioCodec::Pcmu, start, &[0]);
        assert_eq!(played(&jb.pop()), Some(0));
        // Frame 1 is missing when its tick comes; it arrives after.
        jb.push(t0, AudioCodec::Pcmu, start.wrapping_add(320), &[2]);
        assert!(matches!(jb.pop(), Playout::Missing { .. }));
        jb.push(t0, AudioCodec::Pcmu, start.wrapping_add(160), &[1]);
        assert_eq!(jb.stats().late, 1);
        assert_eq!(played(&jb.pop()), Some(2), "across the 32-bit wrap");
    }

    #[test]
    fn jitter_raises_the_target_and_a_pause_plays_silence() {
        let t0 = origin();
        let mut jb = JitterBuffer::new();
        for i in 0..50u32 {
            // ±30 ms of jitter.
            let wobble = if i % 2 == 0 { 0 } else { 30 };
            let at = t0 + Duration::from_millis(20 * u64::from(i) + wobble);
            jb.push(at, AudioCodec::Pcmu, 160 * i, &[i as u8]);
        }
        assert!(jb.target_frames() >= 3, "{}", jb.target_frames());
        let mut silence = 0;
        for _ in 0..70 {
            if jb.pop() == Playout::Silence {
                silence += 1;
            }
        }
        assert!(silence > 10, "{silence}");
        assert!(jb.stats().concealed <= PAUSE_FRAMES as u64 + 1);
    }
}
