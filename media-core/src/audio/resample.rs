//! Sample-rate conversion through rubato's synchronous FFT resampler: a real anti-aliasing
//! filter (48 kHz → 16 kHz no longer folds 10 kHz down to 6 kHz) and state carried from one
//! 20 ms frame to the next, so frame edges leave no clicks.

use rubato::audioadapter_buffers::direct::SequentialSlice;
use rubato::{Fft, FixedSync, Resampler as _};

/// A stream of mono samples at one rate, turned into a stream at another. Feed it frames of
/// any length with [`process`](Self::process); output comes out a chunk (20 ms of input) at a
/// time and lags the input by the filter's delay, a few milliseconds.
///
/// ```
/// use sansip_media::audio::Resampler;
/// let mut r = Resampler::new(48_000, 16_000);
/// let mut out = Vec::new();
/// for _ in 0..50 {
///     r.process(&[0i16; 960], &mut out); // one second in 20 ms frames
/// }
/// r.flush(&mut out);
/// assert!((out.len() as i64 - 16_000).abs() <= 320 + r.delay() as i64);
/// ```
pub struct Resampler {
    from: u32,
    to: u32,
    /// `None` when the rates are equal (or one is zero): samples pass through.
    inner: Option<Fft<f32>>,
    pending: Vec<f32>,
    scratch: Vec<f32>,
    /// Samples taken in and given out so far, so that a flush ends the output where the
    /// input ended.
    taken: u64,
    given: u64,
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resampler")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl Resampler {
    /// A converter from `from` Hz to `to` Hz.
    pub fn new(from: u32, to: u32) -> Self {
        let inner = if from == to || from == 0 || to == 0 {
            None
        } else {
            // One chunk is 20 ms of input; rubato rounds its FFT blocks to what the two
            // rates allow. A pair it cannot build (never for telephony rates) passes through.
            let chunk = (from as usize / 50).max(1);
            Fft::new(from as usize, to as usize, chunk, 1, FixedSync::Input)
                .inspect_err(|e| tracing::warn!(from, to, error = %e, "no resampler; audio passes unconverted"))
                .ok()
        };
        let scratch = vec![0.0; inner.as_ref().map_or(0, |r| r.output_frames_max())];
        Self {
            from,
            to,
            inner,
            pending: Vec::new(),
            scratch,
            taken: 0,
            given: 0,
        }
    }

    /// The input and output rates.
    pub fn rates(&self) -> (u32, u32) {
        (self.from, self.to)
    }

    /// How many output samples the output lags the input by.
    pub fn delay(&self) -> usize {
        self.inner.as_ref().map_or(0, |r| r.output_delay())
    }

    /// Converts `input`, appending every output sample that is ready to `out`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        self.taken += input.len() as u64;
        self.convert(input, out);
    }

    fn convert(&mut self, input: &[i16], out: &mut Vec<i16>) {
        let Some(inner) = self.inner.as_mut() else {
            out.extend_from_slice(input);
            return;
        };
        self.pending
            .extend(input.iter().map(|&s| f32::from(s) / 32_768.0));
        loop {
            let need = inner.input_frames_next();
            if self.pending.len() < need {
                return;
            }
            let room = self.scratch.len();
            let (Ok(src), Ok(mut dst)) = (
                SequentialSlice::new(&self.pending[..need], 1, need),
                SequentialSlice::new_mut(&mut self.scratch[..], 1, room),
            ) else {
                return;
            };
            match inner.process_into_buffer(&src, &mut dst, None) {
                Ok((used, made)) => {
                    self.given += made as u64;
                    out.extend(
                        self.scratch[..made]
                            .iter()
                            .map(|&s| (s * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16),
                    );
                    self.pending.drain(..used.max(1).min(self.pending.len()));
                }
                Err(e) => {
                    tracing::debug!(error = %e, "resampling failed; a chunk is dropped");
                    self.pending.drain(..need);
                }
            }
        }
    }

    /// Pushes out what the filter still holds, at the end of a stream: the output then
    /// holds the whole input's length in time, after the filter's delay.
    pub fn flush(&mut self, out: &mut Vec<i16>) {
        let Some(inner) = self.inner.as_ref() else {
            return;
        };
        let due = inner.output_delay() as u64
            + (self.taken * u64::from(self.to)).div_ceil(u64::from(self.from));
        // Enough silence to complete the pending chunk and drain the filter's delay.
        let input_per_output = f64::from(self.from) / f64::from(self.to);
        let tail = inner.input_frames_next()
            + (inner.output_delay() as f64 * input_per_output).ceil() as usize;
        let start = out.len();
        let before = self.given;
        self.convert(&vec![0i16; tail], out);
        let keep = due.saturating_sub(before).min(self.given - before) as usize;
        out.truncate(start + keep);
        self.given = before + keep as u64;
        self.pending.clear();
    }
}

/// `samples` at `from` Hz, converted to `to` Hz: the same length in time (rounded down),
/// lined up with the input (the filter's delay removed).
pub fn resample(samples: &[i16], from: u32, to: u32) -> Vec<i16> {
    if from == to || from == 0 || to == 0 || samples.is_empty() {
        return samples.to_vec();
    }
    let mut r = Resampler::new(from, to);
    let mut out = Vec::with_capacity(samples.len() * to as usize / from as usize + 1_024);
    r.process(samples, &mut out);
    r.flush(&mut out);
    let want = (samples.len() as u64 * u64::from(to) / u64::from(from)) as usize;
    let delay = r.delay().min(out.len());
    out.drain(..delay);
    out.resize(want, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::analysis::{aligned_snr, goertzel, rms};
    use crate::audio::{AudioSource, Tone};

    #[test]
    fn lengths_scale_with_the_rates() {
        let x = vec![100i16; 160];
        assert_eq!(resample(&x, 8_000, 48_000).len(), 960);
        assert_eq!(resample(&x, 8_000, 16_000).len(), 320);
        assert_eq!(resample(&vec![1i16; 960], 48_000, 8_000).len(), 160);
        assert_eq!(resample(&x, 8_000, 8_000), x);
        assert!(resample(&[], 8_000, 48_000).is_empty());
        assert_eq!(resample(&vec![0i16; 44_100], 44_100, 48_000).len(), 48_000);
    }

    fn tone(hz: f64, rate: u32, samples: usize) -> Vec<i16> {
        let mut x = vec![0i16; samples];
        Tone::new(hz).fill(rate, &mut x);
        x
    }

    #[test]
    fn a_tone_keeps_its_pitch_and_level_and_lines_up() {
        let x = tone(1_000.0, 48_000, 48_000);
        let y = resample(&x, 48_000, 16_000);
        let mid = &y[4_000..12_000];
        assert!(goertzel(mid, 16_000, 1_000.0) > 1e6, "the tone is there");
        assert!(
            (rms(mid) - rms(&x[12_000..36_000])).abs() < 200.0,
            "{}",
            rms(mid)
        );
        // Lined up: down and up again, the tone comes back within a sample of where it was.
        let back = resample(&y, 16_000, 48_000);
        let (snr, delay) = aligned_snr(&x[6_000..42_000], &back[6_000..], 3).unwrap();
        assert!(
            snr > 30.0 && delay <= 1,
            "round trip: {snr:.1} dB at delay {delay}"
        );
    }

    /// What linear interpolation got wrong: 10 kHz at 48 kHz, taken down to 16 kHz, must
    /// vanish (it is above the new Nyquist frequency), not fold down to 6 kHz.
    #[test]
    fn frequencies_above_the_new_nyquist_are_filtered_not_folded() {
        let x = tone(10_000.0, 48_000, 48_000);
        let y = resample(&x, 48_000, 16_000);
        let mid = &y[4_000..12_000];
        assert!(rms(mid) < 100.0, "aliased energy, rms {}", rms(mid));
    }

    #[test]
    fn a_stream_of_frames_matches_the_whole() {
        let x = tone(700.0, 8_000, 8_000);
        let mut r = Resampler::new(8_000, 48_000);
        let mut streamed = Vec::new();
        for frame in x.chunks(160) {
            r.process(frame, &mut streamed);
        }
        r.flush(&mut streamed);
        let delay = r.delay();
        let whole = resample(&x, 8_000, 48_000);
        assert_eq!(&streamed[delay..delay + 40_000], &whole[..40_000]);
    }
}
