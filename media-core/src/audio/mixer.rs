//! A conference bridge's audio: each participant hears everyone but themselves (an N−1
//! mix). Sans-IO: participants push the frames they send and pull the frames they hear,
//! at their own codec's rate; one [`Mixer::tick`] makes 20 ms of every mix. The mixer reads
//! no clock: whoever drives it ticks it every 20 ms, or lets the pulls do it
//! ([`Mixer::pull`] ticks when the puller has nothing left to hear).
//!
//! One tick costs O(N) in the number of participants, not O(N²): it sums every
//! participant's frame once and takes each one's own frame back out of the sum.
//!
//! ```
//! use sansip_media::audio::{AudioFrame, Mixer};
//!
//! let mut m = Mixer::new(16_000, 8);
//! let (a, b, c) = (m.join().unwrap(), m.join().unwrap(), m.join().unwrap());
//! for (who, level) in [(a, 1000), (b, 200), (c, 30)] {
//!     m.push(who, &AudioFrame { rate: 16_000, samples: vec![level; 320] });
//! }
//! let mut heard = [0i16; 320];
//! m.pull(a, 16_000, &mut heard);
//! assert_eq!(heard[0], 230, "a hears b and c, not itself");
//! m.pull(c, 16_000, &mut heard);
//! assert_eq!(heard[0], 1200, "c hears a and b");
//! ```

use std::collections::VecDeque;

use super::{AudioFrame, Resampler, frame_samples};

/// Frames a participant may have waiting, in either direction, before the oldest go: a
/// participant whose clock runs fast (or one that stalls) costs the others no more than
/// this much delay.
const QUEUED_FRAMES: usize = 3;

/// One participant of a [`Mixer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(u32);

impl std::fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "p{}", self.0)
    }
}

/// Why a participant cannot join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MixerError {
    /// The mixer has as many participants as it was made for.
    #[error("the mix is full ({0} participants)")]
    Full(usize),
}

/// Audio of one participant at the mixer's rate, both ways.
#[derive(Debug)]
struct Participant {
    id: ParticipantId,
    /// What it sent, waiting for a tick.
    input: VecDeque<i16>,
    /// Its mix, waiting to be pulled.
    output: VecDeque<i16>,
    /// Its frames to the mixer's rate, made when its first frame of a new rate arrives.
    upsampler: Option<Resampler>,
    /// Its mix to the rate it pulls at.
    downsampler: Option<Resampler>,
    /// The mix at its rate, waiting to fill a pull.
    heard: VecDeque<i16>,
    /// Pulled from before: its first pull takes a frame more, as a reserve for the
    /// resampler's uneven chunks.
    primed: bool,
    /// Hears only this participant, not the sum ([`Mixer::join_hearing`]).
    hears: Option<ParticipantId>,
    scratch: Vec<i16>,
}

/// An N−1 audio mix: see the module docs.
#[derive(Debug)]
pub struct Mixer {
    rate: u32,
    frame: usize,
    capacity: usize,
    next_id: u32,
    participants: Vec<Participant>,
    sum: Vec<i32>,
    own: Vec<i16>,
    /// Each participant's frame of the current tick, in participant order.
    frames: Vec<i16>,
}

impl Mixer {
    /// A mix at `rate` Hz (16 000 is wideband voice; 48 000 keeps Opus's full band) for at
    /// most `capacity` participants.
    pub fn new(rate: u32, capacity: usize) -> Self {
        let frame = frame_samples(rate);
        Self {
            rate,
            frame,
            capacity,
            next_id: 0,
            participants: Vec::new(),
            sum: vec![0; frame],
            own: vec![0; frame],
            frames: Vec::new(),
        }
    }

    /// The mixing rate.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// How many participants are in the mix.
    pub fn len(&self) -> usize {
        self.participants.len()
    }

    /// Whether nobody is in the mix.
    pub fn is_empty(&self) -> bool {
        self.participants.is_empty()
    }

    /// Everyone in the mix, in the order they joined.
    pub fn participants(&self) -> impl Iterator<Item = ParticipantId> + '_ {
        self.participants.iter().map(|p| p.id)
    }

    /// Adds a participant, who hears everyone from the next tick on.
    pub fn join(&mut self) -> Result<ParticipantId, MixerError> {
        self.add(None)
    }

    /// Adds a participant who hears only `other`, not the mix: a leg of a group call
    /// ([`crate::group`]) hears the local phone, since the members hear each other over
    /// their own legs. `other` still hears the newcomer in its mix.
    ///
    /// ```
    /// use sansip_media::audio::{AudioFrame, Mixer};
    ///
    /// let mut m = Mixer::new(8_000, 4);
    /// let me = m.join().unwrap();
    /// let (a, b) = (m.join_hearing(me).unwrap(), m.join_hearing(me).unwrap());
    /// for (who, level) in [(me, 7), (a, 100), (b, 20)] {
    ///     m.push(who, &AudioFrame { rate: 8_000, samples: vec![level; 160] });
    /// }
    /// let mut heard = [0i16; 160];
    /// m.pull(a, 8_000, &mut heard);
    /// assert_eq!(heard[0], 7, "a leg hears the local phone only");
    /// m.pull(me, 8_000, &mut heard);
    /// assert_eq!(heard[0], 120, "the local phone hears every leg");
    /// ```
    pub fn join_hearing(&mut self, other: ParticipantId) -> Result<ParticipantId, MixerError> {
        self.add(Some(other))
    }

    fn add(&mut self, hears: Option<ParticipantId>) -> Result<ParticipantId, MixerError> {
        if self.participants.len() >= self.capacity {
            return Err(MixerError::Full(self.capacity));
        }
        self.next_id += 1;
        let id = ParticipantId(self.next_id);
        self.participants.push(Participant {
            id,
            input: VecDeque::with_capacity(self.frame * QUEUED_FRAMES),
            output: VecDeque::with_capacity(self.frame * QUEUED_FRAMES),
            upsampler: None,
            downsampler: None,
            heard: VecDeque::new(),
            primed: false,
            hears,
            scratch: Vec::new(),
        });
        Ok(id)
    }

    /// Takes a participant out: nobody hears it from the next tick on. False if it was not
    /// in the mix.
    pub fn leave(&mut self, id: ParticipantId) -> bool {
        let before = self.participants.len();
        self.participants.retain(|p| p.id != id);
        self.participants.len() != before
    }

    /// A frame `id` sent, at any rate. Ignored for a participant not in the mix.
    pub fn push(&mut self, id: ParticipantId, frame: &AudioFrame) {
        let (rate, limit) = (self.rate, self.frame * QUEUED_FRAMES);
        let Some(p) = self.participants.iter_mut().find(|p| p.id == id) else {
            return;
        };
        if frame.rate == rate {
            p.input.extend(&frame.samples);
        } else {
            let up = match &mut p.upsampler {
                Some(r) if r.rates().0 == frame.rate => r,
                slot => slot.insert(Resampler::new(frame.rate, rate)),
            };
            p.scratch.clear();
            up.process(&frame.samples, &mut p.scratch);
            p.input.extend(&p.scratch);
        }
        let excess = p.input.len().saturating_sub(limit);
        p.input.drain(..excess);
    }

    /// Mixes 20 ms: takes one frame from every participant (silence from one that sent
    /// none) and gives each the sum of all the others, clipped to 16 bits (or the one
    /// participant it hears).
    pub fn tick(&mut self) {
        let (frame, limit) = (self.frame, self.frame * QUEUED_FRAMES);
        self.sum.fill(0);
        self.frames.clear();
        self.frames.resize(frame * self.participants.len(), 0);
        for (p, own) in self
            .participants
            .iter_mut()
            .zip(self.frames.chunks_exact_mut(frame))
        {
            let n = p.input.len().min(frame);
            for ((o, s), x) in own
                .iter_mut()
                .zip(self.sum.iter_mut())
                .zip(p.input.drain(..n))
            {
                *o = x;
                *s += i32::from(x);
            }
        }
        let Self {
            participants,
            frames,
            sum,
            ..
        } = self;
        let ids: Vec<ParticipantId> = match participants.iter().any(|p| p.hears.is_some()) {
            true => participants.iter().map(|p| p.id).collect(),
            false => Vec::new(),
        };
        for (k, p) in participants.iter_mut().enumerate() {
            let heard = p.hears.map(|h| ids.iter().position(|i| *i == h));
            match heard {
                None => {
                    let own = &frames[k * frame..(k + 1) * frame];
                    p.output.extend(
                        sum.iter()
                            .zip(own)
                            .map(|(s, o)| (s - i32::from(*o)).clamp(-32_768, 32_767) as i16),
                    );
                }
                Some(Some(j)) => p.output.extend(&frames[j * frame..(j + 1) * frame]),
                // The one it hears has left: silence.
                Some(None) => p.output.extend(std::iter::repeat_n(0, frame)),
            }
            let excess = p.output.len().saturating_sub(limit);
            p.output.drain(..excess);
        }
    }

    /// How many samples (at the mixer's rate) `id` has mixed and not yet pulled.
    pub fn queued(&self, id: ParticipantId) -> usize {
        self.participants
            .iter()
            .find(|p| p.id == id)
            .map_or(0, |p| p.output.len())
    }

    /// Takes what `id` has mixed, at the mixer's rate, without ticking: for a participant
    /// whose owner ticks the mixer itself. Returns how many samples went into `out`.
    pub fn take(&mut self, id: ParticipantId, out: &mut [i16]) -> usize {
        let Some(p) = self.participants.iter_mut().find(|p| p.id == id) else {
            return 0;
        };
        let n = p.output.len().min(out.len());
        for (o, x) in out.iter_mut().zip(p.output.drain(..n)) {
            *o = x;
        }
        n
    }

    /// Fills `out` with what `id` hears, at `rate` Hz; ticks first when nothing is left to
    /// hear (so a bridge whose participants pull every 20 ms needs no timer). Silence for
    /// a participant not in the mix; false then.
    pub fn pull(&mut self, id: ParticipantId, rate: u32, out: &mut [i16]) -> bool {
        let Some(i) = self.participants.iter().position(|p| p.id == id) else {
            out.fill(0);
            return false;
        };
        let mix_rate = self.rate;
        // One frame of the mix per pull, so that pulls every 20 ms tick the mix every
        // 20 ms whatever the rates: taking more whenever a resampler's chunk comes up a few
        // samples short would run the mix ahead of its participants, and they would be
        // heard with gaps. The first pull takes two, a reserve for those short chunks.
        let frames = if self.participants[i].primed { 1 } else { 2 };
        self.participants[i].primed = true;
        for _ in 0..frames {
            if self.participants[i].output.len() < self.frame {
                self.tick();
            }
            let (p, mixed) = (&mut self.participants[i], &mut self.own);
            let n = p.output.len().min(mixed.len());
            for (m, x) in mixed.iter_mut().zip(p.output.drain(..n)) {
                *m = x;
            }
            if rate == mix_rate {
                p.heard.extend(&mixed[..n]);
            } else {
                let down = match &mut p.downsampler {
                    Some(r) if r.rates().1 == rate => r,
                    slot => slot.insert(Resampler::new(mix_rate, rate)),
                };
                p.scratch.clear();
                down.process(&mixed[..n], &mut p.scratch);
                p.heard.extend(&p.scratch);
            }
        }
        let p = &mut self.participants[i];
        let n = p.heard.len().min(out.len());
        for (o, x) in out.iter_mut().zip(p.heard.drain(..n)) {
            *o = x;
        }
        out[n..].fill(0);
        // What a resampler's chunking left over beyond a frame or two only adds delay.
        let excess = p.heard.len().saturating_sub(out.len() * QUEUED_FRAMES);
        p.heard.drain(..excess);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::analysis::goertzel;

    fn tone(hz: f64, rate: u32, n: usize, frame: usize) -> AudioFrame {
        let samples = (0..frame)
            .map(|i| {
                let t = (n * frame + i) as f64 / f64::from(rate);
                (4000.0 * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16
            })
            .collect();
        AudioFrame { rate, samples }
    }

    /// Four participants at three codec rates, each sending its own tone for a second:
    /// everyone hears the three others' tones and not its own.
    #[test]
    fn each_hears_everyone_but_themselves_at_their_own_rate() {
        let mut m = Mixer::new(16_000, 4);
        let people = [
            (500.0, 8_000),
            (800.0, 16_000),
            (1300.0, 48_000),
            (440.0, 48_000),
        ];
        let ids: Vec<ParticipantId> = people.iter().map(|_| m.join().unwrap()).collect();
        assert_eq!(m.join(), Err(MixerError::Full(4)));
        let mut heard: Vec<Vec<i16>> = vec![Vec::new(); 4];
        for n in 0..50 {
            for (id, (hz, rate)) in ids.iter().zip(people) {
                m.push(*id, &tone(hz, rate, n, frame_samples(rate)));
            }
            for (k, (id, (_, rate))) in ids.iter().zip(people).enumerate() {
                let mut out = vec![0; frame_samples(rate)];
                assert!(m.pull(*id, rate, &mut out));
                heard[k].extend(out);
            }
        }
        for (k, (own, rate)) in people.iter().enumerate() {
            // The second half: past the resamplers' delay.
            let tail = &heard[k][heard[k].len() / 2..];
            for (j, (hz, _)) in people.iter().enumerate() {
                let level = goertzel(tail, *rate, *hz);
                if j == k {
                    assert!(level < 0.02, "{own} Hz hears itself: {level}");
                } else {
                    assert!(level > 0.05, "{own} Hz does not hear {hz} Hz: {level}");
                }
            }
        }
    }

    /// A participant at 11,025 Hz pulls through a resampler whose chunks come out uneven
    /// (20 ms is 220.5 samples there); the mix must still advance one frame per 20 ms, or
    /// the others' frames run out and that participant hears them with gaps.
    #[test]
    fn a_resampled_participant_hears_the_others_without_gaps() {
        let mut m = Mixer::new(16_000, 2);
        let (talker, listener) = (m.join().unwrap(), m.join().unwrap());
        let mut levels = Vec::new();
        for n in 0..100 {
            m.push(talker, &tone(700.0, 16_000, n, 320));
            m.push(
                listener,
                &AudioFrame {
                    rate: 11_025,
                    samples: vec![0; 220],
                },
            );
            let mut out = [0i16; 220];
            m.pull(listener, 11_025, &mut out);
            m.pull(talker, 16_000, &mut [0i16; 320]);
            levels.push(crate::audio::analysis::rms(&out));
        }
        let steady = &levels[10..];
        let (lo, hi) = steady
            .iter()
            .fold((f64::MAX, 0.0f64), |(lo, hi), l| (lo.min(*l), hi.max(*l)));
        assert!(
            lo > 0.8 * hi,
            "frames between {lo:.0} and {hi:.0} rms: gaps"
        );
    }

    #[test]
    fn who_leaves_is_no_longer_heard_and_a_full_sum_clips() {
        let mut m = Mixer::new(8_000, 3);
        let (a, b, c) = (m.join().unwrap(), m.join().unwrap(), m.join().unwrap());
        let loud = |m: &mut Mixer, who| {
            m.push(
                who,
                &AudioFrame {
                    rate: 8_000,
                    samples: vec![30_000; 160],
                },
            )
        };
        let mut out = [0i16; 160];
        loud(&mut m, a);
        loud(&mut m, b);
        m.pull(c, 8_000, &mut out);
        assert_eq!(out[0], 32_767, "clipped, not wrapped");
        assert!(m.leave(b));
        assert!(!m.leave(b));
        // c's first pull kept a frame in reserve (silence here): the next mix comes after.
        for _ in 0..2 {
            loud(&mut m, a);
            loud(&mut m, b);
            m.pull(c, 8_000, &mut out);
        }
        assert_eq!(out[0], 30_000, "b is gone");
        assert!(!m.pull(b, 8_000, &mut out));
        assert_eq!(out, [0; 160]);
        assert_eq!(m.participants().collect::<Vec<_>>(), [a, c]);
    }

    #[test]
    fn a_participant_that_pushes_too_fast_or_never_pulls_stays_bounded() {
        let mut m = Mixer::new(8_000, 2);
        let (a, b) = (m.join().unwrap(), m.join().unwrap());
        for _ in 0..1000 {
            for _ in 0..2 {
                m.push(
                    a,
                    &AudioFrame {
                        rate: 8_000,
                        samples: vec![1; 160],
                    },
                );
            }
            m.tick();
        }
        let p = |m: &Mixer, id| {
            m.participants
                .iter()
                .find(|p| p.id == id)
                .map(|p| (p.input.len(), p.output.len()))
        };
        assert_eq!(p(&m, a), Some((320, 480)));
        assert_eq!(p(&m, b), Some((0, 480)));
    }
}
