//! The ringback tone a caller hears while the far end rings and sends no early media
//! (ITU-T E.180 and its national variants). A plain source: the cadence is counted in
//! samples, so the tone is the same whatever clock or rate drives it.

use std::f64::consts::TAU;

use super::AudioSource;

/// A national ringback tone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Ringback {
    /// 425 Hz, 1 s on, 4 s off (ITU-T E.180's recommendation; most of Europe).
    Europe,
    /// 440 + 480 Hz, 2 s on, 4 s off (North America).
    NorthAmerica,
    /// 400 + 450 Hz, 0.4 s on, 0.2 s off, 0.4 s on, 2 s off (United Kingdom).
    Uk,
}

impl Ringback {
    /// The frequencies mixed while the tone sounds.
    fn frequencies(self) -> &'static [f64] {
        match self {
            Self::Europe => &[425.0],
            Self::NorthAmerica => &[440.0, 480.0],
            Self::Uk => &[400.0, 450.0],
        }
    }

    /// The cadence as alternating on and off periods in milliseconds, starting on.
    fn cadence(self) -> &'static [u32] {
        match self {
            Self::Europe => &[1_000, 4_000],
            Self::NorthAmerica => &[2_000, 4_000],
            Self::Uk => &[400, 200, 400, 2_000],
        }
    }

    /// Whether the tone sounds `ms` milliseconds into its cadence.
    fn sounds_at(self, ms: u64) -> bool {
        let cadence = self.cadence();
        let period: u64 = cadence.iter().map(|&p| u64::from(p)).sum();
        let mut at = ms % period;
        for (i, &p) in cadence.iter().enumerate() {
            if at < u64::from(p) {
                return i % 2 == 0;
            }
            at -= u64::from(p);
        }
        false
    }
}

/// A ringback tone as an endless [`AudioSource`], at about -16 dBFS per frequency.
#[derive(Debug, Clone)]
pub struct RingbackTone {
    kind: Ringback,
    /// Samples produced so far, and at what rate (a new rate starts the count over).
    samples: u64,
    rate: u32,
    phases: [f64; 2],
}

impl RingbackTone {
    /// The tone of `kind`, from the start of its cadence.
    pub fn new(kind: Ringback) -> Self {
        Self {
            kind,
            samples: 0,
            rate: 0,
            phases: [0.0; 2],
        }
    }
}

impl AudioSource for RingbackTone {
    fn fill(&mut self, rate: u32, out: &mut [i16]) -> bool {
        let rate = rate.max(1);
        if rate != self.rate {
            // Keep the place in the cadence across a change of rate.
            self.samples = self.samples * u64::from(rate) / u64::from(self.rate.max(1));
            self.rate = rate;
        }
        let frequencies = self.kind.frequencies();
        for s in out {
            let ms = self.samples * 1_000 / u64::from(rate);
            let mut v = 0.0;
            for (f, phase) in frequencies.iter().zip(&mut self.phases) {
                if self.kind.sounds_at(ms) {
                    v += phase.sin() * 5_000.0;
                }
                *phase = (*phase + TAU * f / f64::from(rate)) % TAU;
            }
            *s = v as i16;
            self.samples += 1;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::analysis;

    #[test]
    fn each_tone_sounds_its_frequencies_in_its_cadence() {
        let mut europe = RingbackTone::new(Ringback::Europe);
        let mut second = vec![0i16; 8_000];
        europe.fill(8_000, &mut second);
        let hz = analysis::dominant_frequency(&second, 8_000).unwrap();
        assert!((hz - 425.0).abs() < 5.0, "{hz}");
        // Then four seconds of silence, and the tone again.
        let mut off = vec![0i16; 32_000];
        europe.fill(8_000, &mut off);
        assert!(off.iter().all(|&s| s == 0));
        let mut again = vec![0i16; 800];
        europe.fill(8_000, &mut again);
        assert!(analysis::rms(&again) > 2_000.0);

        let mut uk = RingbackTone::new(Ringback::Uk);
        let mut burst = vec![0i16; 16_000];
        uk.fill(16_000, &mut burst);
        // 0.4 s on, 0.2 s off, 0.4 s on.
        assert!(analysis::rms(&burst[..6_400]) > 2_000.0);
        assert_eq!(analysis::rms(&burst[6_400..9_600]), 0.0);
        assert!(analysis::rms(&burst[9_600..]) > 2_000.0);
        assert!(
            Ringback::NorthAmerica.sounds_at(1_999) && !Ringback::NorthAmerica.sounds_at(2_000)
        );
    }
}
