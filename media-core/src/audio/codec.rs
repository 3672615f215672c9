//! The audio codecs a call can negotiate, and their encoders and decoders.

use super::g711;

/// An audio codec sansip can encode and decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AudioCodec {
    /// G.711 µ-law, 8 kHz.
    Pcmu,
    /// G.711 A-law, 8 kHz.
    Pcma,
    /// Opus, 48 kHz (mono here). Needs the `opus` feature.
    Opus,
}

impl AudioCodec {
    /// The sample rate frames of this codec are in (also its RTP clock rate).
    pub const fn rate(self) -> u32 {
        match self {
            AudioCodec::Pcmu | AudioCodec::Pcma => 8_000,
            AudioCodec::Opus => 48_000,
        }
    }

    /// The `a=rtpmap` encoding name.
    pub const fn name(self) -> &'static str {
        match self {
            AudioCodec::Pcmu => "PCMU",
            AudioCodec::Pcma => "PCMA",
            AudioCodec::Opus => "opus",
        }
    }

    /// Whether this build can encode and decode it.
    pub const fn available(self) -> bool {
        match self {
            AudioCodec::Pcmu | AudioCodec::Pcma => true,
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

/// Encodes 20 ms frames of one codec.
pub struct Encoder {
    inner: EncoderInner,
}

enum EncoderInner {
    Pcmu,
    Pcma,
    #[cfg(feature = "opus")]
    Opus(Box<opus::Encoder>),
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
            #[cfg(feature = "opus")]
            AudioCodec::Opus => EncoderInner::Opus(Box::new(
                opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip)
                    .map_err(|e| failed(codec, e))?,
            )),
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
            #[cfg(feature = "opus")]
            EncoderInner::Opus(enc) => {
                out.resize(1_275, 0);
                let n = enc
                    .encode(samples, out)
                    .map_err(|e| failed(AudioCodec::Opus, e))?;
                out.truncate(n);
            }
        }
        Ok(())
    }
}

/// Decodes frames of one codec.
pub struct Decoder {
    inner: DecoderInner,
}

enum DecoderInner {
    Pcmu,
    Pcma,
    #[cfg(feature = "opus")]
    Opus(Box<opus::Decoder>),
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
            #[cfg(feature = "opus")]
            AudioCodec::Opus => DecoderInner::Opus(Box::new(
                opus::Decoder::new(48_000, opus::Channels::Mono).map_err(|e| failed(codec, e))?,
            )),
            #[cfg(not(feature = "opus"))]
            AudioCodec::Opus => return Err(CodecError::Unavailable(codec)),
        };
        Ok(Self { inner })
    }

    /// The codec.
    pub fn codec(&self) -> AudioCodec {
        match self.inner {
            DecoderInner::Pcmu => AudioCodec::Pcmu,
            DecoderInner::Pcma => AudioCodec::Pcma,
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
            #[cfg(feature = "opus")]
            DecoderInner::Opus(dec) => {
                // 120 ms is the longest Opus packet.
                out.resize(5_760, 0);
                let n = dec
                    .decode(payload, out, false)
                    .map_err(|e| failed(AudioCodec::Opus, e))?;
                out.truncate(n);
            }
        }
        Ok(())
    }
}

#[cfg(feature = "opus")]
fn failed(codec: AudioCodec, e: opus::Error) -> CodecError {
    CodecError::Failed {
        codec,
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::analysis::dominant_frequency;
    use crate::audio::{AudioSource, Tone, frame_samples};

    fn round_trip(codec: AudioCodec) {
        let rate = codec.rate();
        let mut enc = Encoder::new(codec).unwrap();
        let mut dec = Decoder::new(codec).unwrap();
        let mut tone = Tone::new(1_000.0);
        let (mut payload, mut pcm, mut all) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..25 {
            let mut frame = vec![0i16; frame_samples(rate)];
            tone.fill(rate, &mut frame);
            enc.encode(&frame, &mut payload).unwrap();
            assert!(!payload.is_empty());
            dec.decode(&payload, &mut pcm).unwrap();
            assert_eq!(pcm.len(), frame.len());
            all.extend_from_slice(&pcm);
        }
        // Skip the codec's warm-up before measuring.
        let f = dominant_frequency(&all[all.len() / 2..], rate).unwrap();
        assert!((f - 1_000.0).abs() < 5.0, "{codec}: {f}");
    }

    #[test]
    fn g711_carries_a_tone() {
        round_trip(AudioCodec::Pcmu);
        round_trip(AudioCodec::Pcma);
    }

    #[cfg(feature = "opus")]
    #[test]
    fn opus_carries_a_tone() {
        round_trip(AudioCodec::Opus);
    }
}
