//! The audio codecs a call can negotiate, and their encoders and decoders.

use audio_codec::g722::{G722Decoder, G722Encoder};
use audio_codec::{Decoder as _, Encoder as _};

use super::g711;
#[cfg(feature = "opus")]
use super::opus::{OpusDecoder, OpusEncoder};

/// An audio codec sansip can encode and decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AudioCodec {
    /// G.711 µ-law, 8 kHz.
    Pcmu,
    /// G.711 A-law, 8 kHz.
    Pcma,
    /// Opus, 48 kHz (mono here). Needs the `opus` feature (on by default).
    Opus,
    /// G.722, 16 kHz wideband (64 kbit/s): what desk phones call HD voice.
    G722,
}

impl AudioCodec {
    /// The sample rate frames of this codec are in.
    pub const fn rate(self) -> u32 {
        match self {
            AudioCodec::Pcmu | AudioCodec::Pcma => 8_000,
            AudioCodec::G722 => 16_000,
            AudioCodec::Opus => 48_000,
        }
    }

    /// Its RTP clock rate: the sample rate, except for G.722, which RFC 3551 §4.5.2 clocks
    /// at 8 kHz though it samples at 16.
    pub const fn clock_rate(self) -> u32 {
        match self {
            AudioCodec::G722 => 8_000,
            c => c.rate(),
        }
    }

    /// The `a=rtpmap` encoding name.
    pub const fn name(self) -> &'static str {
        match self {
            AudioCodec::Pcmu => "PCMU",
            AudioCodec::Pcma => "PCMA",
            AudioCodec::Opus => "opus",
            AudioCodec::G722 => "G722",
        }
    }

    /// Whether this build can encode and decode it.
    pub const fn available(self) -> bool {
        match self {
            AudioCodec::Pcmu | AudioCodec::Pcma | AudioCodec::G722 => true,
            AudioCodec::Opus => cfg!(feature = "opus"),
        }
    }
}

impl std::fmt::Display for AudioCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A codec could not be set up or failed on a frame.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// This build lacks the codec (Opus without the `opus` feature).
    #[error("{0} is not available in this build")]
    Unavailable(AudioCodec),
    /// The codec library refused.
    #[error("{codec}: {message}")]
    Failed {
        /// Which codec.
        codec: AudioCodec,
        /// What it said.
        message: String,
    },
}

fn g722_failed(e: &impl std::fmt::Debug) -> CodecError {
    CodecError::Failed {
        codec: AudioCodec::G722,
        message: format!("{e:?}"),
    }
}

/// Encodes 20 ms frames of one codec.
pub struct Encoder {
    inner: EncoderInner,
}

enum EncoderInner {
    Pcmu,
    Pcma,
    G722(Box<G722Encoder>),
    #[cfg(feature = "opus")]
    Opus(Box<OpusEncoder>),
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("codec", &self.codec())
            .finish()
    }
}

impl Encoder {
    /// An encoder for `codec`.
    pub fn new(codec: AudioCodec) -> Result<Self, CodecError> {
        let inner = match codec {
            AudioCodec::Pcmu => EncoderInner::Pcmu,
            AudioCodec::Pcma => EncoderInner::Pcma,
            AudioCodec::G722 => EncoderInner::G722(Box::default()),
            #[cfg(feature = "opus")]
            AudioCodec::Opus => EncoderInner::Opus(Box::new(OpusEncoder::new()?)),
            #[cfg(not(feature = "opus"))]
            AudioCodec::Opus => return Err(CodecError::Unavailable(codec)),
        };
        Ok(Self { inner })
    }

    /// The codec.
    pub fn codec(&self) -> AudioCodec {
        match self.inner {
            EncoderInner::Pcmu => AudioCodec::Pcmu,
            EncoderInner::Pcma => AudioCodec::Pcma,
            EncoderInner::G722(_) => AudioCodec::G722,
            #[cfg(feature = "opus")]
            EncoderInner::Opus(_) => AudioCodec::Opus,
        }
    }

    /// Encodes `samples` (one frame at the codec's rate) into `out`, replacing its contents.
    pub fn encode(&mut self, samples: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.clear();
        match &mut self.inner {
            EncoderInner::Pcmu => out.extend(samples.iter().map(|&s| g711::ulaw_encode(s))),
            EncoderInner::Pcma => out.extend(samples.iter().map(|&s| g711::alaw_encode(s))),
            EncoderInner::G722(enc) => {
                out.resize(enc.max_encode_bytes(samples.len()), 0);
                let n = enc.encode_into(samples, out).map_err(|e| g722_failed(&e))?;
                out.truncate(n);
            }
            #[cfg(feature = "opus")]
            EncoderInner::Opus(enc) => enc.encode(samples, out)?,
        }
        Ok(())
    }
}

/// Decodes frames of one codec, and conceals the ones that never came.
pub struct Decoder {
    inner: DecoderInner,
    /// G.711's last frame, replayed (fading) in place of a lost one.
    last: Vec<i16>,
    /// Frames concealed in a row.
    losses: u32,
}

enum DecoderInner {
    Pcmu,
    Pcma,
    G722(Box<G722Decoder>),
    #[cfg(feature = "opus")]
    Opus(Box<OpusDecoder>),
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("codec", &self.codec())
            .finish()
    }
}

impl Decoder {
    /// A decoder for `codec`.
    pub fn new(codec: AudioCodec) -> Result<Self, CodecError> {
        let inner = match codec {
            AudioCodec::Pcmu => DecoderInner::Pcmu,
            AudioCodec::Pcma => DecoderInner::Pcma,
            AudioCodec::G722 => DecoderInner::G722(Box::default()),
            #[cfg(feature = "opus")]
            AudioCodec::Opus => DecoderInner::Opus(Box::new(OpusDecoder::new()?)),
            #[cfg(not(feature = "opus"))]
            AudioCodec::Opus => return Err(CodecError::Unavailable(codec)),
        };
        Ok(Self {
            inner,
            last: Vec::new(),
            losses: 0,
        })
    }

    /// Conceals one lost frame of `samples` samples into `out`, replacing its contents.
    /// Opus uses its own concealment, or the in-band FEC of `next` (the packet after the
    /// gap) when it carries some; G.711 and G.722 replay the last frame, halving it each
    /// time, so a long gap fades to silence.
    pub fn conceal(
        &mut self,
        samples: usize,
        next: Option<&[u8]>,
        out: &mut Vec<i16>,
    ) -> Result<(), CodecError> {
        out.clear();
        self.losses = self.losses.saturating_add(1);
        match &mut self.inner {
            #[cfg(feature = "opus")]
            DecoderInner::Opus(dec) => dec.conceal(samples, next, out)?,
            _ => {
                let _ = next;
                let shift = self.losses.min(15);
                out.extend(self.last.iter().map(|&s| s >> shift));
                out.resize(samples, 0);
            }
        }
        Ok(())
    }

    /// The codec.
    pub fn codec(&self) -> AudioCodec {
        match self.inner {
            DecoderInner::Pcmu => AudioCodec::Pcmu,
            DecoderInner::Pcma => AudioCodec::Pcma,
            DecoderInner::G722(_) => AudioCodec::G722,
            #[cfg(feature = "opus")]
            DecoderInner::Opus(_) => AudioCodec::Opus,
        }
    }

    /// Decodes one payload into `out`, replacing its contents.
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError> {
        out.clear();
        match &mut self.inner {
            DecoderInner::Pcmu => out.extend(payload.iter().map(|&b| g711::ulaw_decode(b))),
            DecoderInner::Pcma => out.extend(payload.iter().map(|&b| g711::alaw_decode(b))),
            DecoderInner::G722(dec) => {
                out.resize(dec.max_decode_samples(payload.len()), 0);
                let n = dec.decode_into(payload, out).map_err(|e| g722_failed(&e))?;
                out.truncate(n);
            }
            #[cfg(feature = "opus")]
            DecoderInner::Opus(dec) => dec.decode(payload, out)?,
        }
        self.losses = 0;
        if self.codec() != AudioCodec::Opus {
            self.last.clear();
            self.last.extend_from_slice(out);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::analysis::{aligned_snr, dominant_frequency};
    use crate::audio::{AudioSource, SpeechNoise, Tone, frame_samples};

    /// One second of `source` through an encoder and a decoder: (sent, received).
    fn through(codec: AudioCodec, source: &mut dyn AudioSource) -> (Vec<i16>, Vec<i16>) {
        let rate = codec.rate();
        let mut enc = Encoder::new(codec).unwrap();
        let mut dec = Decoder::new(codec).unwrap();
        let (mut payload, mut pcm) = (Vec::new(), Vec::new());
        let (mut sent, mut received) = (Vec::new(), Vec::new());
        for _ in 0..50 {
            let mut frame = vec![0i16; frame_samples(rate)];
            source.fill(rate, &mut frame);
            enc.encode(&frame, &mut payload).unwrap();
            assert!(!payload.is_empty());
            dec.decode(&payload, &mut pcm).unwrap();
            assert_eq!(pcm.len(), frame.len());
            sent.extend_from_slice(&frame);
            received.extend_from_slice(&pcm);
        }
        (sent, received)
    }

    fn carries_a_tone(codec: AudioCodec) {
        let (_, received) = through(codec, &mut Tone::new(1_000.0));
        // Skip the codec's warm-up before measuring.
        let f = dominant_frequency(&received[received.len() / 2..], codec.rate()).unwrap();
        assert!((f - 1_000.0).abs() < 5.0, "{codec}: {f}");
    }

    /// Speech-like noise keeps its shape: the SNR after lining up the codec's delay.
    fn carries_speech_like_noise(codec: AudioCodec, min_db: f64) {
        let (sent, received) = through(codec, &mut SpeechNoise::new(42));
        let skip = sent.len() / 5;
        let (snr, _) =
            aligned_snr(&sent[skip..sent.len() - 1_000], &received[skip..], 1_000).unwrap();
        assert!(snr >= min_db, "{codec}: {snr:.1} dB");
    }

    #[test]
    fn g711_carries_a_tone_and_speech() {
        for codec in [AudioCodec::Pcmu, AudioCodec::Pcma] {
            carries_a_tone(codec);
            carries_speech_like_noise(codec, 30.0);
        }
    }

    #[test]
    fn g722_carries_a_tone_and_speech_in_160_bytes_a_frame() {
        carries_a_tone(AudioCodec::G722);
        // Sub-band ADPCM at 64 kbit/s is close to waveform-exact.
        carries_speech_like_noise(AudioCodec::G722, 15.0);
        let mut enc = Encoder::new(AudioCodec::G722).unwrap();
        let mut payload = Vec::new();
        enc.encode(&[0; 320], &mut payload).unwrap();
        assert_eq!(payload.len(), 160, "64 kbit/s: 160 bytes per 20 ms");
        assert_eq!(AudioCodec::G722.clock_rate(), 8_000);
        // Garbage decodes to something, never a panic, and an odd length too.
        let mut dec = Decoder::new(AudioCodec::G722).unwrap();
        let mut pcm = Vec::new();
        for len in [0, 1, 7, 161] {
            dec.decode(&vec![0xa5; len], &mut pcm).unwrap();
            assert_eq!(pcm.len(), 2 * len);
        }
    }

    #[cfg(feature = "opus")]
    #[test]
    fn opus_carries_a_tone_and_speech() {
        carries_a_tone(AudioCodec::Opus);
        // Opus at 32 kbit/s is perceptual, not waveform-exact: libopus itself scores about
        // 9 dB on this noise (media-core/benches/opus.rs prints both).
        carries_speech_like_noise(AudioCodec::Opus, 6.0);
    }

    #[cfg(feature = "opus")]
    #[test]
    fn opus_survives_garbage_payloads() {
        let mut dec = Decoder::new(AudioCodec::Opus).unwrap();
        let mut pcm = Vec::new();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..400 {
            let payload: Vec<u8> = (0..len % 300)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            // An error or some audio; never a panic.
            let _ = dec.decode(&payload, &mut pcm);
        }
        // And the decoder still works afterwards.
        let mut enc = Encoder::new(AudioCodec::Opus).unwrap();
        let mut payload = Vec::new();
        enc.encode(&[0; 960], &mut payload).unwrap();
        dec.decode(&payload, &mut pcm).unwrap();
        assert_eq!(pcm.len(), 960);
    }
}
