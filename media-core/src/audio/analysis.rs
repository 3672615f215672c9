//! Measuring audio: level and dominant frequency. Tests use them to prove media really
//! flowed ("the recording is a 1 kHz tone, not silence"); applications can use them for
//! simple checks such as silence detection.

use std::f64::consts::TAU;

/// Root-mean-square level of `samples` (0 for silence, about 7071 for a full-scale/√2
/// sine of amplitude 10000).
pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt()
}

/// The power of `freq` Hz in `samples` (Goertzel's algorithm), normalized by length.
pub fn goertzel(samples: &[i16], rate: u32, freq: f64) -> f64 {
    let w = TAU * freq / f64::from(rate.max(1));
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    power / (samples.len().max(1) as f64).powi(2)
}

/// The strongest frequency in `samples` between 50 Hz and the lower of 4 kHz and Nyquist,
/// to within about 1 Hz; `None` for silence.
pub fn dominant_frequency(samples: &[i16], rate: u32) -> Option<f64> {
    if rms(samples) < 1.0 || rate == 0 {
        return None;
    }
    let top = (f64::from(rate) / 2.0).min(4_000.0);
    let scan = |from: f64, to: f64, step: f64| {
        let mut best = (from, f64::MIN);
        let mut f = from;
        while f <= to {
            let p = goertzel(samples, rate, f);
            if p > best.1 {
                best = (f, p);
            }
            f += step;
        }
        best.0
    };
    let coarse = scan(50.0, top, 10.0);
    Some(scan(
        (coarse - 10.0).max(50.0),
        (coarse + 10.0).min(top),
        1.0,
    ))
}

/// How faithfully `received` carries `reference`: the signal-to-noise ratio in dB at the
/// delay (0 to `max_delay` samples) where the two line up best, and that delay. A codec's
/// look-ahead delays its output; this finds it instead of assuming it. `None` when there is
/// too little of `received` to compare.
pub fn aligned_snr(reference: &[i16], received: &[i16], max_delay: usize) -> Option<(f64, usize)> {
    let len = reference.len().min(received.len().checked_sub(max_delay)?);
    if len == 0 {
        return None;
    }
    let signal: f64 = reference[..len].iter().map(|&r| f64::from(r).powi(2)).sum();
    (0..=max_delay)
        .map(|delay| {
            let noise: f64 = reference[..len]
                .iter()
                .zip(&received[delay..delay + len])
                .map(|(&r, &g)| (f64::from(r) - f64::from(g)).powi(2))
                .sum();
            (
                10.0 * (signal / noise.max(f64::MIN_POSITIVE)).log10(),
                delay,
            )
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::{AudioSource, Tone};

    #[test]
    fn finds_the_tone_and_reports_silence() {
        let mut buf = vec![0i16; 8_000];
        assert_eq!(dominant_frequency(&buf, 8_000), None);
        Tone::new(440.0).fill(8_000, &mut buf);
        let f = dominant_frequency(&buf, 8_000).unwrap();
        assert!((f - 440.0).abs() <= 2.0, "{f}");
        assert!(rms(&buf) > 6_000.0);
    }

    #[test]
    fn snr_finds_the_delay_and_the_noise() {
        let mut x = vec![0i16; 2_000];
        crate::audio::SpeechNoise::new(7).fill(8_000, &mut x);
        let mut late = vec![0i16; 30];
        late.extend_from_slice(&x);
        let (snr, delay) = aligned_snr(&x, &late, 50).unwrap();
        assert_eq!(delay, 30);
        assert!(snr > 100.0, "{snr}");
        let noisy: Vec<i16> = late
            .iter()
            .map(|&s| s.saturating_add(if s % 2 == 0 { 20 } else { -20 }))
            .collect();
        let (snr, _) = aligned_snr(&x, &noisy, 50).unwrap();
        assert!((10.0..60.0).contains(&snr), "{snr}");
        assert_eq!(aligned_snr(&x, &x[..10], 50), None);
    }
}
