//! ITU-T G.711 companding: µ-law (PCMU, payload type 0) and A-law (PCMA, payload type 8).
//!
//! Written from the recommendation's segment tables rather than taken from a crate, because
//! the codec is a dozen lines and every SIP peer in the field speaks it. Both directions are
//! bit-exact with the ITU reference implementation (G.191 `g711.c`); the tests check the
//! decoding tables at their segment boundaries and every encode/decode round trip.

const ULAW_BIAS: i32 = 0x84;
const ULAW_CLIP: i32 = 32_635;

/// Encodes one 16-bit linear sample to µ-law.
pub fn ulaw_encode(sample: i16) -> u8 {
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(ULAW_CLIP) + ULAW_BIAS;
    // The segment is the position of the highest set bit above bit 7.
    let exponent = (31 - (s as u32).leading_zeros()).saturating_sub(7).min(7) as i32;
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// Decodes one µ-law byte to a 16-bit linear sample.
pub fn ulaw_decode(byte: u8) -> i16 {
    let b = !byte;
    let exponent = i32::from((b >> 4) & 0x07);
    let mantissa = i32::from(b & 0x0F);
    let magnitude = (((mantissa << 3) + ULAW_BIAS) << exponent) - ULAW_BIAS;
    if b & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// Encodes one 16-bit linear sample to A-law.
pub fn alaw_encode(sample: i16) -> u8 {
    // A-law works on 13 bits: drop the three low bits first, as G.711 does.
    let mut s = i32::from(sample) >> 3;
    let sign = if s >= 0 {
        0x80
    } else {
        s = -s - 1;
        0
    };
    let (exponent, mantissa) = if s < 32 {
        (0, s >> 1)
    } else {
        let exponent = (31 - (s as u32).leading_zeros()) as i32 - 4;
        if exponent > 7 {
            (7, 0x0F)
        } else {
            (exponent, (s >> exponent) & 0x0F)
        }
    };
    (sign | (exponent << 4) as u8 | mantissa as u8) ^ 0x55
}

/// Decodes one A-law byte to a 16-bit linear sample.
pub fn alaw_decode(byte: u8) -> i16 {
    let b = byte ^ 0x55;
    let exponent = i32::from((b >> 4) & 0x07);
    let mantissa = i32::from(b & 0x0F);
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    if b & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Decoded values of G.711 Table 2a (µ-law) and Table 1a (A-law) at each segment's first
    // and last code, as the ITU reference decoder produces them.
    const ULAW: &[(u8, i16)] = &[
        (0x00, -32_124),
        (0x0F, -16_764),
        (0x10, -15_996),
        (0x20, -7_932),
        (0x30, -3_900),
        (0x40, -1_884),
        (0x50, -876),
        (0x60, -372),
        (0x70, -120),
        (0x7E, -8),
        (0x7F, 0),
        (0x80, 32_124),
        (0xC0, 1_884),
        (0xF0, 120),
        (0xFF, 0),
    ];

    const ALAW: &[(u8, i16)] = &[
        (0x00, -5_504),
        (0x2A, -32_256),
        (0x55, -8),
        (0x7F, -848),
        (0x80, 5_504),
        (0xAA, 32_256),
        (0xD4, 24),
        (0xD5, 8),
    ];

    #[test]
    fn ulaw_decoding_matches_the_reference_table() {
        for &(code, linear) in ULAW {
            assert_eq!(ulaw_decode(code), linear, "µ-law {code:#04x}");
        }
    }

    #[test]
    fn alaw_decoding_matches_the_reference_table() {
        for &(code, linear) in ALAW {
            assert_eq!(alaw_decode(code), linear, "A-law {code:#04x}");
        }
    }

    #[test]
    fn every_code_survives_decode_then_encode() {
        for code in 0..=255u8 {
            // µ-law has two zeros (0xFF and 0x7F); both decode to 0, which encodes to 0xFF.
            let back = ulaw_encode(ulaw_decode(code));
            if code == 0x7F {
                assert_eq!(back, 0xFF);
            } else {
                assert_eq!(back, code, "µ-law {code:#04x}");
            }
            assert_eq!(alaw_encode(alaw_decode(code)), code, "A-law {code:#04x}");
        }
    }

    #[test]
    fn encoding_is_monotonic_and_close() {
        let mut last_u = ulaw_decode(ulaw_encode(i16::MIN));
        let mut last_a = alaw_decode(alaw_encode(i16::MIN));
        for s in (i16::MIN..=i16::MAX).step_by(7) {
            let u = ulaw_decode(ulaw_encode(s));
            let a = alaw_decode(alaw_encode(s));
            assert!(u >= last_u && a >= last_a, "not monotonic at {s}");
            // The quantization step is at most 1/16 of the segment, so the error stays
            // within about 3 % of the value (plus the step at zero).
            let tol = |x: i16| i32::from(x).abs() / 16 + 16;
            assert!(
                (i32::from(u) - i32::from(s)).abs() <= tol(s).max(1024),
                "µ-law {s}->{u}"
            );
            assert!(
                (i32::from(a) - i32::from(s)).abs() <= tol(s).max(1024),
                "A-law {s}->{a}"
            );
            last_u = u;
            last_a = a;
        }
    }

    #[test]
    fn known_encodings() {
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_encode(-1), 0x7F);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
    }
}
