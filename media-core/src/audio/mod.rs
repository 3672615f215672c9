//! Audio for calls: 16-bit PCM frames, the codecs that carry them, and the sources and sinks
//! a call plays from and records to.
//!
//! Audio is mono, 16-bit, 20 ms per frame. A [`AudioFrame`] states its sample rate, because
//! the rate is the codec's (8 kHz for G.711, 48 kHz for Opus): a call asks its
//! [`AudioSource`] for samples at the negotiated codec's rate and hands every decoded frame to
//! its [`AudioSink`] at that rate too.

pub mod analysis;
mod codec;
#[cfg(feature = "devices")]
pub mod devices;
pub mod g711;
pub mod jitter;
mod mixer;
#[cfg(feature = "opus")]
mod opus;
mod resample;
mod ringback;
mod sources;
mod wav;

pub use codec::{AudioCodec, CodecError, Decoder, Encoder};
pub use mixer::{Mixer, MixerError, ParticipantId};
#[cfg(feature = "opus")]
pub use opus::OPUS_BACKEND;
pub use resample::{Resampler, resample};
pub use ringback::{Ringback, RingbackTone};
pub use sources::{FrameQueue, Silence, SpeechNoise, Tone};
pub use wav::{WavSink, WavSource};

use std::time::Duration;

/// The length of one audio frame (and so of one RTP packet's audio).
pub const FRAME: Duration = Duration::from_millis(20);

/// Samples in one 20 ms frame at `rate` Hz.
pub const fn frame_samples(rate: u32) -> usize {
    (rate / 50) as usize
}

/// Mono 16-bit PCM audio at a stated sample rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioFrame {
    /// Samples per second.
    pub rate: u32,
    /// The samples, oldest first.
    pub samples: Vec<i16>,
}

impl AudioFrame {
    /// How long the frame plays.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.samples.len() as f64 / f64::from(self.rate.max(1)))
    }
}

/// Where a call's outgoing audio comes from: asked for one frame every 20 ms.
pub trait AudioSource: Send {
    /// Fills `out` with the next samples at `rate` Hz. Returns `false` when the source has
    /// ended (the call then sends silence; the call itself goes on).
    fn fill(&mut self, rate: u32, out: &mut [i16]) -> bool;
}

/// Where a call's incoming audio goes: every decoded frame, in arrival order.
pub trait AudioSink: Send {
    /// Takes one decoded frame.
    fn write(&mut self, frame: &AudioFrame);
    /// The call is over: flush and close (a WAV file writes its header here).
    fn finish(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<S: AudioSource + ?Sized> AudioSource for Box<S> {
    fn fill(&mut self, rate: u32, out: &mut [i16]) -> bool {
        (**self).fill(rate, out)
    }
}

impl<S: AudioSink + ?Sized> AudioSink for Box<S> {
    fn write(&mut self, frame: &AudioFrame) {
        (**self).write(frame);
    }
    fn finish(&mut self) -> std::io::Result<()> {
        (**self).finish()
    }
}

/// A source shared with the application, which feeds it while the call runs (a
/// [`FrameQueue`] pushed into from another task).
impl<S: AudioSource> AudioSource for std::sync::Arc<std::sync::Mutex<S>> {
    fn fill(&mut self, rate: u32, out: &mut [i16]) -> bool {
        match self.lock() {
            Ok(mut s) => s.fill(rate, out),
            Err(_) => false,
        }
    }
}

/// A sink shared with the application, which reads it while the call runs.
impl<S: AudioSink> AudioSink for std::sync::Arc<std::sync::Mutex<S>> {
    fn write(&mut self, frame: &AudioFrame) {
        if let Ok(mut s) = self.lock() {
            s.write(frame);
        }
    }
    fn finish(&mut self) -> std::io::Result<()> {
        match self.lock() {
            Ok(mut s) => s.finish(),
            Err(_) => Ok(()),
        }
    }
}

/// A sink that keeps every frame in memory: for tests and analysis.
#[derive(Debug, Default, Clone)]
pub struct Recorder {
    /// The frames, in arrival order.
    pub frames: Vec<AudioFrame>,
}

impl Recorder {
    /// All samples, concatenated, with the rate of the first frame (0 when empty); runs of
    /// frames at another rate are converted as a whole.
    pub fn samples(&self) -> (u32, Vec<i16>) {
        let rate = self.frames.first().map_or(0, |f| f.rate);
        let mut samples = Vec::new();
        for run in self.frames.chunk_by(|a, b| a.rate == b.rate) {
            let joined: Vec<i16> = run.iter().flat_map(|f| f.samples.iter().copied()).collect();
            samples.extend(resample(&joined, run[0].rate, rate));
        }
        (rate, samples)
    }
}

impl AudioSink for Recorder {
    fn write(&mut self, frame: &AudioFrame) {
        self.frames.push(frame.clone());
    }
}
