//! Opus (RFC 6716) at 48 kHz mono, behind one small interface with two backends: the
//! pure-Rust `opus-rs` port of libopus 1.6 (feature `opus`, on by default: it needs no system
//! library), or the system libopus through the `opus` binding (feature `libopus`, which
//! implies `opus` and takes its place).

use super::codec::{AudioCodec, CodecError};

/// Bits per second we ask the encoder for: wideband voice with room to spare, close to what
/// libopus chooses by itself for one 48 kHz VoIP channel.
const BITRATE: i32 = 32_000;
/// The longest Opus packet is 120 ms: 5,760 samples at 48 kHz.
const MAX_SAMPLES: usize = 5_760;
/// The largest packet RFC 6716 §3.2.1 allows for one frame.
const MAX_PACKET: usize = 1_275;

fn failed(message: impl std::fmt::Display) -> CodecError {
    CodecError::Failed {
        codec: AudioCodec::Opus,
        message: message.to_string(),
    }
}

#[cfg(not(feature = "libopus"))]
mod backend {
    use super::*;

    pub(crate) struct OpusEncoder(opus_rs::OpusEncoder);

    impl OpusEncoder {
        pub(crate) fn new() -> Result<Self, CodecError> {
            let mut enc =
                opus_rs::OpusEncoder::new(48_000, 1, opus_rs::Application::Voip).map_err(failed)?;
            enc.bitrate_bps = BITRATE;
            Ok(Self(enc))
        }

        pub(crate) fn encode(
            &mut self,
            samples: &[i16],
            out: &mut Vec<u8>,
        ) -> Result<(), CodecError> {
            out.resize(MAX_PACKET, 0);
            let n = self
                .0
                .encode_i16(samples, samples.len(), out)
                .map_err(failed)?;
            out.truncate(n);
            Ok(())
        }
    }

    /// opus-rs decodes to `f32`; the scratch buffer keeps a call's decoding allocation-free.
    pub(crate) struct OpusDecoder(opus_rs::OpusDecoder, Vec<f32>);

    impl OpusDecoder {
        pub(crate) fn new() -> Result<Self, CodecError> {
            let dec = opus_rs::OpusDecoder::new(48_000, 1).map_err(failed)?;
            Ok(Self(dec, vec![0.0; MAX_SAMPLES]))
        }

        pub(crate) fn decode(
            &mut self,
            payload: &[u8],
            out: &mut Vec<i16>,
        ) -> Result<(), CodecError> {
            let n = self
                .0
                .decode(payload, MAX_SAMPLES, &mut self.1)
                .map_err(failed)?;
            self.take(n, out);
            Ok(())
        }

        /// Conceals `samples` lost samples: rebuilt from `next`'s in-band FEC when it has
        /// some, else Opus's own loss concealment.
        pub(crate) fn conceal(
            &mut self,
            samples: usize,
            next: Option<&[u8]>,
            out: &mut Vec<i16>,
        ) -> Result<(), CodecError> {
            let n = match next {
                Some(p) => self.0.decode_fec(p, samples, &mut self.1),
                None => self.0.decode(&[], samples, &mut self.1),
            }
            .map_err(failed)?;
            self.take(n, out);
            Ok(())
        }

        // The C `opus_decode` convention: ±1.0 is full scale, rounded and clamped.
        fn take(&self, n: usize, out: &mut Vec<i16>) {
            out.extend(
                self.1[..n.min(self.1.len())]
                    .iter()
                    .map(|&s| (s * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16),
            );
        }
    }
}

#[cfg(feature = "libopus")]
mod backend {
    use super::*;

    pub(crate) struct OpusEncoder(opus::Encoder);

    impl OpusEncoder {
        pub(crate) fn new() -> Result<Self, CodecError> {
            let mut enc = opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip)
                .map_err(failed)?;
            enc.set_bitrate(opus::Bitrate::Bits(BITRATE))
                .map_err(failed)?;
            Ok(Self(enc))
        }

        pub(crate) fn encode(
            &mut self,
            samples: &[i16],
            out: &mut Vec<u8>,
        ) -> Result<(), CodecError> {
            out.resize(MAX_PACKET, 0);
            let n = self.0.encode(samples, out).map_err(failed)?;
            out.truncate(n);
            Ok(())
        }
    }

    pub(crate) struct OpusDecoder(opus::Decoder);

    impl OpusDecoder {
        pub(crate) fn new() -> Result<Self, CodecError> {
            Ok(Self(
                opus::Decoder::new(48_000, opus::Channels::Mono).map_err(failed)?,
            ))
        }

        pub(crate) fn decode(
            &mut self,
            payload: &[u8],
            out: &mut Vec<i16>,
        ) -> Result<(), CodecError> {
            out.resize(MAX_SAMPLES, 0);
            let n = self.0.decode(payload, out, false).map_err(failed)?;
            out.truncate(n);
            Ok(())
        }

        /// Conceals `samples` lost samples: rebuilt from `next`'s in-band FEC when it has
        /// some, else Opus's own loss concealment.
        pub(crate) fn conceal(
            &mut self,
            samples: usize,
            next: Option<&[u8]>,
            out: &mut Vec<i16>,
        ) -> Result<(), CodecError> {
            out.resize(samples, 0);
            let n = match next {
                Some(p) => self.0.decode(p, out, true),
                None => self.0.decode(&[], out, false),
            }
            .map_err(failed)?;
            out.truncate(n);
            Ok(())
        }
    }
}

pub(crate) use backend::{OpusDecoder, OpusEncoder};

/// Which implementation this build encodes and decodes Opus with.
pub const OPUS_BACKEND: &str = if cfg!(feature = "libopus") {
    "libopus"
} else {
    "opus-rs"
};
