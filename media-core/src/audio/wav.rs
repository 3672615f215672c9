//! WAV files (through `hound`) as a call's source and sink.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use super::{AudioFrame, AudioSink, AudioSource, Resampler, resample};

/// Plays a WAV file (16-bit PCM, any rate, channels mixed down to mono), converted to the
/// call's rate; ends at the end of the file unless it loops.
#[derive(Debug)]
pub struct WavSource {
    samples: Vec<i16>,
    rate: u32,
    pos: usize,
    looping: bool,
    /// The file's samples at the rate last asked for.
    converted: Option<(u32, Vec<i16>)>,
}

impl WavSource {
    /// Reads the whole file (telephony prompts are small).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, hound::Error> {
        let mut reader = hound::WavReader::open(path)?;
        let spec = reader.spec();
        if spec.sample_format != hound::SampleFormat::Int || spec.bits_per_sample != 16 {
            return Err(hound::Error::Unsupported);
        }
        let channels = usize::from(spec.channels.max(1));
        let all: Vec<i16> = reader.samples::<i16>().collect::<Result<_, _>>()?;
        let samples = all
            .chunks(channels)
            .map(|c| (c.iter().map(|&s| i32::from(s)).sum::<i32>() / c.len() as i32) as i16)
            .collect();
        Ok(Self {
            samples,
            rate: spec.sample_rate,
            pos: 0,
            looping: false,
            converted: None,
        })
    }

    /// How long the file plays.
    pub fn duration(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.samples.len() as f64 / f64::from(self.rate.max(1)))
    }

    /// Starts over at the end instead of ending.
    pub fn looping(mut self, yes: bool) -> Self {
        self.looping = yes;
        self
    }
}

impl AudioSource for WavSource {
    fn fill(&mut self, rate: u32, out: &mut [i16]) -> bool {
        if self.converted.as_ref().map(|c| c.0) != Some(rate) {
            // Keep the position at the same point in time across a rate change.
            let old_rate = self.converted.as_ref().map_or(self.rate, |c| c.0);
            self.pos = (self.pos as u64 * u64::from(rate) / u64::from(old_rate.max(1))) as usize;
            self.converted = Some((rate, resample(&self.samples, self.rate, rate)));
        }
        let Some((_, data)) = &self.converted else {
            return false;
        };
        for s in out.iter_mut() {
            if self.pos >= data.len() {
                if self.looping && !data.is_empty() {
                    self.pos = 0;
                } else {
                    *s = 0;
                    continue;
                }
            }
            *s = data[self.pos];
            self.pos += 1;
        }
        self.pos < data.len() || self.looping
    }
}

/// Records a call's incoming audio to a mono 16-bit WAV file at a fixed rate (frames at
/// other rates are converted).
pub struct WavSink {
    writer: Option<hound::WavWriter<BufWriter<File>>>,
    rate: u32,
    /// Converts frames at another rate, keeping its filter's state from frame to frame.
    converter: Option<Resampler>,
    converted: Vec<i16>,
}

impl std::fmt::Debug for WavSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavSink").field("rate", &self.rate).finish()
    }
}

impl WavSink {
    fn append(&mut self, samples: &[i16]) {
        let Some(w) = self.writer.as_mut() else {
            return;
        };
        for &s in samples {
            if w.write_sample(s).is_err() {
                // A full disk: stop recording rather than fail the call.
                tracing::warn!("wav write failed; recording stopped");
                self.writer = None;
                return;
            }
        }
    }

    /// Creates (or truncates) `path`, to be written at `rate` Hz.
    pub fn create(path: impl AsRef<Path>, rate: u32) -> Result<Self, hound::Error> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        Ok(Self {
            writer: Some(hound::WavWriter::create(path, spec)?),
            rate,
            converter: None,
            converted: Vec::new(),
        })
    }
}

impl AudioSink for WavSink {
    fn write(&mut self, frame: &AudioFrame) {
        if frame.rate == self.rate {
            self.append(&frame.samples);
            return;
        }
        let converter = match &mut self.converter {
            Some(c) if c.rates() == (frame.rate, self.rate) => c,
            // The codec changed (a re-INVITE): a new filter for the new rate.
            slot => slot.insert(Resampler::new(frame.rate, self.rate)),
        };
        let mut converted = std::mem::take(&mut self.converted);
        converted.clear();
        converter.process(&frame.samples, &mut converted);
        self.append(&converted);
        self.converted = converted;
    }

    fn finish(&mut self) -> std::io::Result<()> {
        if let Some(mut c) = self.converter.take() {
            let mut tail = Vec::new();
            c.flush(&mut tail);
            self.append(&tail);
        }
        match self.writer.take() {
            Some(w) => w.finalize().map_err(std::io::Error::other),
            None => Ok(()),
        }
    }
}

impl Drop for WavSink {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::{Tone, analysis::dominant_frequency};

    #[test]
    fn a_recorded_tone_plays_back_at_another_rate() {
        let dir = std::env::temp_dir().join(format!("sansip-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tone.wav");
        let mut sink = WavSink::create(&path, 16_000).unwrap();
        let mut tone = Tone::new(1_000.0);
        for _ in 0..25 {
            let mut buf = vec![0i16; 960];
            tone.fill(48_000, &mut buf);
            sink.write(&AudioFrame {
                rate: 48_000,
                samples: buf,
            });
        }
        sink.finish().unwrap();
        let mut src = WavSource::open(&path).unwrap();
        let mut out = vec![0i16; 3_000];
        assert!(src.fill(8_000, &mut out));
        let f = dominant_frequency(&out, 8_000).unwrap();
        assert!((f - 1_000.0).abs() < 5.0, "{f}");
        // Half a second of audio at 8 kHz is 4000 samples, plus the converter's few
        // milliseconds of delay: the file is used up.
        assert!(!src.fill(8_000, &mut out));
        assert!(out[1_050..].iter().all(|&s| s == 0));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
