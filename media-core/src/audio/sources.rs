//! Built-in sources: a sine tone, speech-like noise, silence, and a queue the application
//! pushes frames into.

use std::collections::VecDeque;
use std::f64::consts::TAU;

use super::{AudioFrame, AudioSource, Resampler, resample};

/// A sine tone at a fixed frequency and level, endless (or for a set number of samples'
/// worth of time).
#[derive(Debug, Clone)]
pub struct Tone {
    hz: f64,
    amplitude: f64,
    phase: f64,
}

impl Tone {
    /// A tone of `hz` at about -10 dBFS, loud enough to hear and far from clipping.
    pub fn new(hz: f64) -> Self {
        Self::with_amplitude(hz, 10_000.0)
    }

    /// A tone of `hz` with peak `amplitude` (at most 32767).
    pub fn with_amplitude(hz: f64, amplitude: f64) -> Self {
        Self {
            hz,
            amplitude: amplitude.clamp(0.0, 32_767.0),
            phase: 0.0,
        }
    }
}

impl AudioSource for Tone {
    fn fill(&mut self, rate: u32, out: &mut [i16]) -> bool {
        let step = TAU * self.hz / f64::from(rate.max(1));
        for s in out {
            *s = (self.phase.sin() * self.amplitude) as i16;
            // Keeping the phase small keeps the sine exact over hours.
            self.phase = (self.phase + step) % TAU;
        }
        true
    }
}

/// Noise shaped like speech, for measuring codecs and links with something less kind than a
/// tone: white noise through one formant-like resonance at 700 Hz, its level swelling and
/// fading four times a second as syllables do. Deterministic for a given seed.
#[derive(Debug, Clone)]
pub struct SpeechNoise {
    state: u64,
    y1: f64,
    y2: f64,
    t: u64,
}

impl SpeechNoise {
    /// A source whose noise is drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            // xorshift has one fixed point: zero.
            state: seed | 1,
            y1: 0.0,
            y2: 0.0,
            t: 0,
        }
    }

    fn white(&mut self) -> f64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        (self.state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

impl AudioSource for SpeechNoise {
    fn fill(&mut self, rate: u32, out: &mut [i16]) -> bool {
        let rate = f64::from(rate.max(1));
        let (r, w) = (0.97, TAU * 700.0 / rate);
        let (a1, a2) = (2.0 * r * w.cos(), -r * r);
        for s in out {
            let y = self.white() + a1 * self.y1 + a2 * self.y2;
            (self.y2, self.y1) = (self.y1, y);
            let envelope = 0.5 + 0.5 * (TAU * 4.0 * self.t as f64 / rate).sin();
            self.t += 1;
            *s = (y * 400.0 * envelope).clamp(-32_000.0, 32_000.0) as i16;
        }
        true
    }
}

/// Silence, forever.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silence;

impl AudioSource for Silence {
    fn fill(&mut self, _rate: u32, out: &mut [i16]) -> bool {
        out.fill(0);
        true
    }
}

/// Frames pushed by the application, played in order; silence while it is empty. This is the
/// "send PCM frames into a call" half of the frames API.
#[derive(Debug, Default)]
pub struct FrameQueue {
    pending: VecDeque<i16>,
    rate: u32,
    /// Frames beyond this many samples are dropped (the application is ahead of real time).
    limit: usize,
    /// When the call asks for another rate: the converter, with its filter's state, and
    /// what it has made that the call has not taken yet.
    converter: Option<Resampler>,
    converted: VecDeque<i16>,
}

impl FrameQueue {
    /// An empty queue holding at most `seconds` of audio.
    pub fn new(seconds: u32) -> Self {
        Self {
            pending: VecDeque::new(),
            rate: 0,
            limit: (48_000 * seconds.max(1)) as usize,
            converter: None,
            converted: VecDeque::new(),
        }
    }

    /// Queues `frame`; returns `false` (and drops it) when the queue is full.
    pub fn push(&mut self, frame: &AudioFrame) -> bool {
        if self.pending.len() + frame.samples.len() > self.limit {
            return false;
        }
        if self.rate != 0 && self.rate != frame.rate && !self.pending.is_empty() {
            let old: Vec<i16> = self.pending.drain(..).collect();
            self.pending.extend(resample(&old, self.rate, frame.rate));
        }
        self.rate = frame.rate;
        self.pending.extend(frame.samples.iter().copied());
        true
    }

    /// Samples queued.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

impl AudioSource for FrameQueue {
    fn fill(&mut self, rate: u32, out: &mut [i16]) -> bool {
        if self.rate == rate || self.rate == 0 {
            for s in out.iter_mut() {
                *s = self.pending.pop_front().unwrap_or(0);
            }
            return true;
        }
        let converter = match &mut self.converter {
            Some(c) if c.rates() == (self.rate, rate) => c,
            slot => {
                self.converted.clear();
                slot.insert(Resampler::new(self.rate, rate))
            }
        };
        // Feed 20 ms of input at a time (silence when the application is behind) until the
        // converter has made enough.
        let chunk = (self.rate / 50).max(1) as usize;
        let mut input = Vec::with_capacity(chunk);
        let mut made = Vec::new();
        while self.converted.len() < out.len() {
            input.clear();
            input.extend((0..chunk).map(|_| self.pending.pop_front().unwrap_or(0)));
            made.clear();
            converter.process(&input, &mut made);
            self.converted.extend(made.iter().copied());
        }
        for s in out.iter_mut() {
            *s = self.converted.pop_front().unwrap_or(0);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::analysis::dominant_frequency;

    #[test]
    fn tone_is_at_its_frequency_at_every_rate() {
        for rate in [8_000, 16_000, 48_000] {
            let mut t = Tone::new(1_000.0);
            let mut buf = vec![0i16; rate as usize / 2];
            assert!(t.fill(rate, &mut buf));
            let f = dominant_frequency(&buf, rate).unwrap();
            assert!((f - 1_000.0).abs() < 20.0, "{rate}: {f}");
        }
    }

    #[test]
    fn queue_plays_pushed_frames_then_silence() {
        let mut q = FrameQueue::new(1);
        assert!(q.push(&AudioFrame {
            rate: 8_000,
            samples: vec![7; 160],
        }));
        let mut out = vec![1i16; 200];
        q.fill(8_000, &mut out);
        assert!(out[..160].iter().all(|&s| s == 7));
        assert!(out[160..].iter().all(|&s| s == 0));
        assert!(!q.push(&AudioFrame {
            rate: 8_000,
            samples: vec![0; 48_001],
        }));
    }
}
