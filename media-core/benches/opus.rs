//! Opus: the pure-Rust codec of the default build (opus-rs) against the system libopus,
//! measured in the same run (issue 12, part 1).
//!
//! Each case encodes and decodes one 20 ms frame of 48 kHz mono speech-like noise at
//! 32 kbit/s (what a call does per frame and direction). Before criterion's timing, the
//! bench prints what each codec makes of a 1 kHz tone and of the noise (dominant frequency,
//! SNR at the best delay), and whether each decodes the other's packets.
//!
//! `cargo bench -p sansip-media --features libopus --bench opus` (needs libopus-dev).

#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::Criterion;
use sansip_media::audio::analysis::{aligned_snr, dominant_frequency};
use sansip_media::audio::{AudioSource, SpeechNoise, Tone};

const RATE: usize = 48_000;
const FRAME: usize = 960;
const BITRATE: i32 = 32_000;

/// Makes a fresh encoder and decoder pair.
type Make = fn() -> Box<dyn Codec>;

trait Codec {
    fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> usize;
    fn decode(&mut self, packet: &[u8], out: &mut [i16]) -> usize;
}

struct Pure(opus_rs::OpusEncoder, opus_rs::OpusDecoder, Vec<f32>);

impl Codec for Pure {
    fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> usize {
        self.0.encode_i16(pcm, FRAME, out).unwrap()
    }
    fn decode(&mut self, packet: &[u8], out: &mut [i16]) -> usize {
        let n = self.1.decode(packet, 5_760, &mut self.2).unwrap();
        for (o, s) in out.iter_mut().zip(&self.2[..n]) {
            *o = (s * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16;
        }
        n
    }
}

fn pure() -> Box<dyn Codec> {
    let mut enc = opus_rs::OpusEncoder::new(48_000, 1, opus_rs::Application::Voip).unwrap();
    enc.bitrate_bps = BITRATE;
    let dec = opus_rs::OpusDecoder::new(48_000, 1).unwrap();
    Box::new(Pure(enc, dec, vec![0.0; 5_760]))
}

struct Lib(opus::Encoder, opus::Decoder);

impl Codec for Lib {
    fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> usize {
        self.0.encode(pcm, out).unwrap()
    }
    fn decode(&mut self, packet: &[u8], out: &mut [i16]) -> usize {
        self.1.decode(packet, out, false).unwrap()
    }
}

fn lib() -> Box<dyn Codec> {
    let mut enc =
        opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).unwrap();
    enc.set_bitrate(opus::Bitrate::Bits(BITRATE)).unwrap();
    let dec = opus::Decoder::new(48_000, opus::Channels::Mono).unwrap();
    Box::new(Lib(enc, dec))
}

fn signal(source: &mut dyn AudioSource, seconds: usize) -> Vec<i16> {
    let mut x = vec![0i16; RATE * seconds];
    source.fill(RATE as u32, &mut x);
    x
}

/// Encodes with `enc` and decodes with `dec`: (decoded audio, kbit/s).
fn through(enc: &mut dyn Codec, dec: &mut dyn Codec, input: &[i16]) -> (Vec<i16>, f64) {
    let (mut packet, mut pcm) = ([0u8; 1_500], [0i16; 5_760]);
    let (mut out, mut bytes) = (Vec::new(), 0);
    for frame in input.chunks_exact(FRAME) {
        let n = enc.encode(frame, &mut packet);
        bytes += n;
        let m = dec.decode(&packet[..n], &mut pcm);
        out.extend_from_slice(&pcm[..m]);
    }
    let kbps = bytes as f64 * 8.0 / (input.len() as f64 / RATE as f64) / 1_000.0;
    (out, kbps)
}

fn quality(codecs: &[(&str, Make)]) {
    let tone = signal(&mut Tone::new(1_000.0), 3);
    let noise = signal(&mut SpeechNoise::new(42), 3);
    let measured = &noise[RATE / 2..noise.len() - 2_000];
    println!("Opus round trips, 48 kHz mono VoIP at {BITRATE} bit/s (encoder -> decoder):");
    for (en, e) in codecs {
        for (dn, d) in codecs {
            let (out, _) = through(&mut *e(), &mut *d(), &tone);
            let f = dominant_frequency(&out[RATE..2 * RATE], RATE as u32).unwrap_or(0.0);
            let (out, kbps) = through(&mut *e(), &mut *d(), &noise);
            let (snr, delay) = aligned_snr(measured, &out[RATE / 2..], 1_500).unwrap();
            println!(
                "  {en:>7} -> {dn:<7}  tone 1000 Hz -> {f:.0} Hz   speech-like noise SNR {snr:.1} dB (delay {delay} samples)   {kbps:.1} kbit/s"
            );
        }
    }
}

fn bench(c: &mut Criterion) {
    let codecs: [(&str, Make); 2] = [("opus-rs", pure), ("libopus", lib)];
    quality(&codecs);
    let noise = signal(&mut SpeechNoise::new(7), 2);
    let mut group = c.benchmark_group("opus/encode+decode 20 ms");
    for (name, make) in codecs {
        let mut codec = make();
        let (mut packet, mut pcm) = ([0u8; 1_500], [0i16; 5_760]);
        let mut frames = noise.chunks_exact(FRAME).cycle();
        group.bench_function(name, |b| {
            b.iter(|| {
                let frame = frames.next().unwrap();
                let n = codec.encode(black_box(frame), &mut packet);
                black_box(codec.decode(&packet[..n], &mut pcm))
            })
        });
    }
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
