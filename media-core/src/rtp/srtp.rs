//! SRTP and SRTCP (RFC 3711) for the two SDES suites of RFC 4568 §6.2,
//! `AES_CM_128_HMAC_SHA1_80` and `AES_CM_128_HMAC_SHA1_32`: session keys derived from the
//! master key and salt (§4.3, key derivation rate 0), AES in counter mode (§4.1.1),
//! HMAC-SHA1 authentication (§4.2), the rollover counter guessed per §3.3.1 and Appendix A,
//! and replay windows (§3.3.2). The primitives are aws-lc-rs's, as str0m's own SRTP.

use std::collections::VecDeque;

use aws_lc_rs::cipher::{AES_128, EncryptingKey, EncryptionContext, UnboundCipherKey};
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;

/// An SDES crypto suite (RFC 4568 §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Suite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
}

impl Suite {
    /// A 16-byte master key and a 14-byte master salt.
    pub(crate) const MASTER_LEN: usize = 30;

    /// The suite's name in `a=crypto`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// The suite `name` stands for (RFC 4568 names are case-sensitive).
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32]
            .into_iter()
            .find(|s| s.name() == name)
    }

    /// The SRTP tag length; SRTCP's is 10 bytes for both (RFC 4568 §6.2.2).
    pub(crate) fn rtp_tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 => 10,
            Suite::AesCm128HmacSha1_32 => 4,
        }
    }
}

/// Why a protected packet was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SrtpError {
    #[error("packet too short")]
    Short,
    #[error("authentication failed")]
    Auth,
    #[error("replayed packet")]
    Replay,
}

const SRTCP_TAG: usize = 10;
/// How many sources a context keeps counters for: a hostile peer cannot grow it.
const MAX_SOURCES: usize = 16;

/// The keys of one of the two streams (RTP or RTCP).
struct Keys {
    cipher: EncryptingKey,
    auth: hmac::Key,
    salt: [u8; 14],
}

impl Keys {
    /// §4.3.1 with a key derivation rate of 0: `label` 0, 1, 2 for SRTP's cipher key, auth
    /// key and salt, 3, 4, 5 for SRTCP's.
    fn derive(master: &[u8; Suite::MASTER_LEN], first_label: u8) -> Self {
        let (key, salt) = master.split_at(16);
        let derive = |label: u8, out: &mut [u8]| {
            let mut iv = [0u8; 16];
            iv[..14].copy_from_slice(salt);
            iv[7] ^= label;
            keystream(key, iv, out);
        };
        let mut cipher = [0u8; 16];
        let mut auth = [0u8; 20];
        let mut session_salt = [0u8; 14];
        derive(first_label, &mut cipher);
        derive(first_label + 1, &mut auth);
        derive(first_label + 2, &mut session_salt);
        Self {
            cipher: aes_ctr(&cipher),
            auth: hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &auth),
            salt: session_salt,
        }
    }

    /// XORs the keystream for `ssrc` and packet `index` into `data` (§4.1.1).
    fn apply(&self, ssrc: u32, index: u64, data: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.salt);
        for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *b ^= s;
        }
        for (b, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *b ^= s;
        }
        // Counter mode cannot fail for a 16-byte IV and any length.
        let _ = self
            .cipher
            .less_safe_encrypt(data, EncryptionContext::Iv128(FixedLength::from(iv)));
    }

    fn tag(&self, parts: &[&[u8]]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.auth);
        for p in parts {
            ctx.update(p);
        }
        ctx.sign()
    }
}

fn aes_ctr(key: &[u8; 16]) -> EncryptingKey {
    // AES-128 takes any 16 bytes, and counter mode any AES key.
    #[allow(clippy::expect_used)]
    let unbound = UnboundCipherKey::new(&AES_128, key).expect("a 16-byte AES-128 key");
    #[allow(clippy::expect_used)]
    EncryptingKey::ctr(unbound).expect("AES-128 in counter mode")
}

/// The AES-CM keystream for `iv` under a raw key, into `out` (key derivation, tests).
fn keystream(key: &[u8], iv: [u8; 16], out: &mut [u8]) {
    let mut k = [0u8; 16];
    k.copy_from_slice(&key[..16]);
    out.fill(0);
    let _ = aes_ctr(&k).less_safe_encrypt(out, EncryptionContext::Iv128(FixedLength::from(iv)));
}

/// A 64-packet replay window below the highest index seen (§3.3.2).
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    highest: Option<u64>,
    bits: u64,
}

impl Window {
    fn check(&self, index: u64) -> Result<(), SrtpError> {
        match self.highest {
            Some(h) if index <= h => {
                let back = h - index;
                if back >= 64 || self.bits & (1 << back) != 0 {
                    Err(SrtpError::Replay)
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    fn accept(&mut self, index: u64) {
        match self.highest {
            Some(h) if index <= h => self.bits |= 1 << (h - index),
            Some(h) => {
                let shift = index - h;
                self.bits = if shift >= 64 { 0 } else { self.bits << shift };
                self.bits |= 1;
                self.highest = Some(index);
            }
            None => {
                self.bits = 1;
                self.highest = Some(index);
            }
        }
    }
}

/// What a context keeps per source.
#[derive(Debug, Clone, Copy, Default)]
struct Source {
    ssrc: u32,
    /// SRTP: the highest packet index sent or received (ROC · 2¹⁶ + SEQ).
    rtp: Window,
    /// SRTCP: the index of the next packet we send, and the window of those received.
    rtcp_next: u32,
    rtcp: Window,
}

/// One direction of SRTP and SRTCP: the keys derived from one master key and salt, plus
/// per-source rollover counters and replay windows.
pub(crate) struct Context {
    suite: Suite,
    rtp: Keys,
    rtcp: Keys,
    sources: VecDeque<Source>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys.
        f.debug_struct("Context")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl Context {
    pub(crate) fn new(suite: Suite, master: &[u8; Suite::MASTER_LEN]) -> Self {
        Self {
            suite,
            rtp: Keys::derive(master, 0),
            rtcp: Keys::derive(master, 3),
            sources: VecDeque::new(),
        }
    }

    fn source(&mut self, ssrc: u32) -> &mut Source {
        if let Some(i) = self.sources.iter().position(|s| s.ssrc == ssrc) {
            return &mut self.sources[i];
        }
        if self.sources.len() == MAX_SOURCES {
            self.sources.pop_front();
        }
        self.sources.push_back(Source {
            ssrc,
            ..Source::default()
        });
        let last = self.sources.len() - 1;
        &mut self.sources[last]
    }

    /// Encrypts and authenticates the RTP packet `packet` (its header is `header_len`
    /// bytes) into `out`.
    pub(crate) fn protect_rtp(&mut self, packet: &[u8], header_len: usize, out: &mut Vec<u8>) {
        out.clear();
        let Some((ssrc, seq)) = rtp_ids(packet).filter(|_| header_len <= packet.len()) else {
            return;
        };
        let source = self.source(ssrc);
        let index = guess_index(source.rtp.highest, seq);
        source.rtp.accept(index);
        out.extend_from_slice(packet);
        self.rtp.apply(ssrc, index, &mut out[header_len..]);
        let roc = ((index >> 16) as u32).to_be_bytes();
        let tag = self.rtp.tag(&[out, &roc]);
        out.extend_from_slice(&tag.as_ref()[..self.suite.rtp_tag_len()]);
    }

    /// Checks and decrypts an SRTP packet into `out` (the RTP packet, tag removed).
    pub(crate) fn unprotect_rtp(
        &mut self,
        packet: &[u8],
        header_len: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), SrtpError> {
        out.clear();
        let tag_len = self.suite.rtp_tag_len();
        if packet.len() < header_len + tag_len {
            return Err(SrtpError::Short);
        }
        let (ssrc, seq) = rtp_ids(packet).ok_or(SrtpError::Short)?;
        let (body, tag) = packet.split_at(packet.len() - tag_len);
        let highest = self
            .sources
            .iter()
            .find(|s| s.ssrc == ssrc)
            .and_then(|s| s.rtp.highest);
        let index = guess_index(highest, seq);
        if let Some(s) = self.sources.iter().find(|s| s.ssrc == ssrc) {
            s.rtp.check(index)?;
        }
        let roc = ((index >> 16) as u32).to_be_bytes();
        let expected = self.rtp.tag(&[body, &roc]);
        verify(&expected.as_ref()[..tag_len], tag)?;
        self.source(ssrc).rtp.accept(index);
        out.extend_from_slice(body);
        self.rtp.apply(ssrc, index, &mut out[header_len..]);
        Ok(())
    }

    /// SRTCP (§3.4): everything after the first 8 bytes encrypted, then E and the 31-bit
    /// index, then the 80-bit tag.
    pub(crate) fn protect_rtcp(&mut self, packet: &[u8], out: &mut Vec<u8>) {
        out.clear();
        let Some(ssrc) = rtcp_ssrc(packet) else {
            return;
        };
        let source = self.source(ssrc);
        let index = source.rtcp_next & 0x7fff_ffff;
        source.rtcp_next = source.rtcp_next.wrapping_add(1);
        out.extend_from_slice(packet);
        self.rtcp.apply(ssrc, u64::from(index), &mut out[8..]);
        out.extend_from_slice(&(index | 0x8000_0000).to_be_bytes());
        let tag = self.rtcp.tag(&[out]);
        out.extend_from_slice(&tag.as_ref()[..SRTCP_TAG]);
    }

    /// Checks an SRTCP packet, decrypts it when its E flag says so, and strips index and
    /// tag into `out`.
    pub(crate) fn unprotect_rtcp(
        &mut self,
        packet: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), SrtpError> {
        out.clear();
        if packet.len() < 8 + 4 + SRTCP_TAG {
            return Err(SrtpError::Short);
        }
        let ssrc = rtcp_ssrc(packet).ok_or(SrtpError::Short)?;
        let (signed, tag) = packet.split_at(packet.len() - SRTCP_TAG);
        let (body, e_index) = signed.split_at(signed.len() - 4);
        let e_index = u32::from_be_bytes([e_index[0], e_index[1], e_index[2], e_index[3]]);
        let index = u64::from(e_index & 0x7fff_ffff);
        if let Some(s) = self.sources.iter().find(|s| s.ssrc == ssrc) {
            s.rtcp.check(index)?;
        }
        let expected = self.rtcp.tag(&[signed]);
        verify(&expected.as_ref()[..SRTCP_TAG], tag)?;
        self.source(ssrc).rtcp.accept(index);
        out.extend_from_slice(body);
        if e_index & 0x8000_0000 != 0 {
            self.rtcp.apply(ssrc, index, &mut out[8..]);
        }
        Ok(())
    }
}

fn verify(expected: &[u8], got: &[u8]) -> Result<(), SrtpError> {
    aws_lc_rs::constant_time::verify_slices_are_equal(expected, got).map_err(|_| SrtpError::Auth)
}

fn rtp_ids(packet: &[u8]) -> Option<(u32, u16)> {
    let h = packet.get(..12)?;
    Some((
        u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
        u16::from_be_bytes([h[2], h[3]]),
    ))
}

fn rtcp_ssrc(packet: &[u8]) -> Option<u32> {
    let h = packet.get(..8)?;
    Some(u32::from_be_bytes([h[4], h[5], h[6], h[7]]))
}

/// The packet index of sequence number `seq`, given the highest index so far (RFC 3711
/// Appendix A): the rollover counter of the three nearest to it.
fn guess_index(highest: Option<u64>, seq: u16) -> u64 {
    let Some(highest) = highest else {
        return u64::from(seq);
    };
    let roc = highest >> 16;
    let s_l = (highest & 0xffff) as u16;
    let v = if s_l < 0x8000 {
        if seq > s_l && seq - s_l > 0x8000 {
            roc.saturating_sub(1)
        } else {
            roc
        }
    } else if s_l - 0x8000 > seq {
        roc + 1
    } else {
        roc
    };
    (v << 16) | u64::from(seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn master(s: &str) -> [u8; 30] {
        hex(s).try_into().unwrap()
    }

    #[test]
    fn rfc3711_b2_aes_cm_keystream() {
        let key = hex("2B7E151628AED2A6ABF7158809CF4F3C");
        let iv: [u8; 16] = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000").try_into().unwrap();
        let mut out = [0u8; 48];
        keystream(&key, iv, &mut out);
        assert_eq!(
            out.to_vec(),
            hex(
                "E03EAD0935C95E80E166B16DD92B4EB4 D23513162B02D0F72A43A2FE4A5F97AB \
                 41E95B3BB0A2E8DD477901E4FCA894C0"
            )
        );
    }

    #[test]
    fn rfc3711_b3_key_derivation() {
        let m = master("E1F97A0D3E018BE0D64FA32C06DE4139 0EC675AD498AFEEBB6960B3AABE6");
        let (key, salt) = m.split_at(16);
        let derive = |label: u8, n: usize| {
            let mut iv = [0u8; 16];
            iv[..14].copy_from_slice(salt);
            iv[7] ^= label;
            let mut out = vec![0u8; n];
            keystream(key, iv, &mut out);
            out
        };
        assert_eq!(derive(0, 16), hex("C61E7A93744F39EE10734AFE3FF7A087"));
        assert_eq!(derive(2, 14), hex("30CBBC08863D8C85D49DB34A9AE1"));
        assert_eq!(
            derive(1, 20),
            hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")
        );
    }

    /// libsrtp's `srtp_validate` known answer (AES_CM_128_HMAC_SHA1_80).
    const LIBSRTP_KEY: &str = "e1f97a0d3e018be0d64fa32c06de41390ec675ad498afeebb6960b3aabe6";
    const PLAIN: &str = "800f1234decafbadcafebabe abababababababababababababababab";
    const PROTECTED: &str = "800f1234decafbadcafebabe 4e55dc4ce79978d88ca4d215949d2402 \
                             b78d6acc99ea179b8dbb";

    #[test]
    fn libsrtp_known_answer() {
        let mut tx = Context::new(Suite::AesCm128HmacSha1_80, &master(LIBSRTP_KEY));
        let mut out = Vec::new();
        tx.protect_rtp(&hex(PLAIN), 12, &mut out);
        assert_eq!(out, hex(PROTECTED));
        let mut rx = Context::new(Suite::AesCm128HmacSha1_80, &master(LIBSRTP_KEY));
        let mut back = Vec::new();
        rx.unprotect_rtp(&out, 12, &mut back).unwrap();
        assert_eq!(back, hex(PLAIN));
    }

    fn rtp(seq: u16) -> Vec<u8> {
        let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 160, 0, 0, 0, 42];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(b"some audio payload");
        p
    }

    #[test]
    fn both_suites_round_trip_across_the_sequence_wrap_and_out_of_order() {
        for suite in [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32] {
            let key = [9u8; 30];
            let (mut tx, mut rx) = (Context::new(suite, &key), Context::new(suite, &key));
            let mut sent = Vec::new();
            for seq in (65_530u16..=65_535).chain(0..6) {
                let mut out = Vec::new();
                tx.protect_rtp(&rtp(seq), 12, &mut out);
                assert_eq!(out.len(), rtp(seq).len() + suite.rtp_tag_len());
                sent.push((seq, out));
            }
            // Two swapped across the wrap.
            sent.swap(5, 6);
            for (seq, packet) in &sent {
                let mut back = Vec::new();
                rx.unprotect_rtp(packet, 12, &mut back)
                    .unwrap_or_else(|e| panic!("{suite:?} seq {seq}: {e}"));
                assert_eq!(back, rtp(*seq));
            }
            // Replayed, and tampered.
            let mut back = Vec::new();
            assert_eq!(
                rx.unprotect_rtp(&sent[3].1, 12, &mut back),
                Err(SrtpError::Replay)
            );
            let mut bad = sent[11].1.clone();
            bad[14] ^= 1;
            let mut fresh = Context::new(suite, &key);
            assert_eq!(
                fresh.unprotect_rtp(&bad, 12, &mut back),
                Err(SrtpError::Auth)
            );
        }
    }

    #[test]
    fn srtcp_round_trips_and_refuses_replays_and_tampering() {
        let key = [3u8; 30];
        let (mut tx, mut rx) = (
            Context::new(Suite::AesCm128HmacSha1_32, &key),
            Context::new(Suite::AesCm128HmacSha1_32, &key),
        );
        let report = [0x80, 201, 0, 1, 0, 0, 0, 7, 1, 2, 3, 4];
        let mut first = Vec::new();
        tx.protect_rtcp(&report, &mut first);
        assert_eq!(first.len(), report.len() + 4 + 10);
        assert_ne!(&first[8..12], &report[8..12], "encrypted");
        let mut back = Vec::new();
        rx.unprotect_rtcp(&first, &mut back).unwrap();
        assert_eq!(back, report);
        assert_eq!(rx.unprotect_rtcp(&first, &mut back), Err(SrtpError::Replay));
        let mut second = Vec::new();
        tx.protect_rtcp(&report, &mut second);
        second[9] ^= 0x10;
        assert_eq!(rx.unprotect_rtcp(&second, &mut back), Err(SrtpError::Auth));
    }

    #[test]
    fn garbage_never_panics() {
        let mut rx = Context::new(Suite::AesCm128HmacSha1_80, &[1; 30]);
        let mut out = Vec::new();
        for n in 0..64usize {
            let junk: Vec<u8> = (0..n).map(|i| (i * 31 + n) as u8).collect();
            for header in [0, 12, 40, 100] {
                let _ = rx.unprotect_rtp(&junk, header, &mut out);
                rx.protect_rtp(&junk, header, &mut out);
            }
            let _ = rx.unprotect_rtcp(&junk, &mut out);
            rx.protect_rtcp(&junk, &mut out);
        }
    }

    #[test]
    fn the_index_guess_follows_appendix_a() {
        assert_eq!(guess_index(None, 5), 5);
        assert_eq!(guess_index(Some(65_535), 0), 65_536, "wrapped forward");
        assert_eq!(
            guess_index(Some(65_536 + 2), 65_534),
            65_534,
            "just before the wrap"
        );
        assert_eq!(guess_index(Some(65_536 * 3 + 100), 90), 65_536 * 3 + 90);
    }
}
