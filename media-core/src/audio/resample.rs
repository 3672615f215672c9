//! Sample-rate conversion by linear interpolation: enough for telephony between 8, 16 and
//! 48 kHz (a WAV file at one rate played into a call at another), not for hi-fi.

/// `samples` at `from` Hz, converted to `to` Hz.
pub fn resample(samples: &[i16], from: u32, to: u32) -> Vec<i16> {
    if from == to || from == 0 || to == 0 || samples.is_empty() {
        return samples.to_vec();
    }
    let out_len = (samples.len() as u64 * u64::from(to) / u64::from(from)) as usize;
    let step = f64::from(from) / f64::from(to);
    (0..out_len)
        .map(|i| {
            let pos = i as f64 * step;
            let idx = pos as usize;
            let frac = pos - idx as f64;
            let a = f64::from(samples[idx.min(samples.len() - 1)]);
            let b = f64::from(samples[(idx + 1).min(samples.len() - 1)]);
            (a + (b - a) * frac).round() as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_scale_with_the_rates() {
        let x = vec![100i16; 160];
        assert_eq!(resample(&x, 8_000, 48_000).len(), 960);
        assert_eq!(resample(&x, 8_000, 16_000).len(), 320);
        assert_eq!(resample(&vec![1i16; 960], 48_000, 8_000).len(), 160);
        assert_eq!(resample(&x, 8_000, 8_000), x);
        assert!(resample(&[], 8_000, 48_000).is_empty());
    }

    #[test]
    fn interpolates_between_samples() {
        assert_eq!(resample(&[0, 100], 8_000, 16_000), vec![0, 50, 100, 100]);
    }
}
