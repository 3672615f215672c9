//! The RTP fixed header (RFC 3550 §5.1), read and written, and RFC 4733 telephone-event
//! payloads (§2.3).

/// The fields of an RTP header this stack acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) marker: bool,
    pub(crate) pt: u8,
    pub(crate) seq: u16,
    pub(crate) timestamp: u32,
    pub(crate) ssrc: u32,
    /// Bytes before the payload: 12, the CSRCs and the header extension.
    pub(crate) len: usize,
    /// Padding bytes at the end of the packet (counted in the last byte when P is set).
    pub(crate) padding: usize,
}

/// The length of the fixed header.
pub(crate) const FIXED: usize = 12;

impl Header {
    /// Reads the header of an RTP packet; `None` for anything that is not RTP version 2
    /// or whose lengths do not fit the datagram.
    pub(crate) fn parse(packet: &[u8]) -> Option<Self> {
        let len = header_len(packet)?;
        let fixed = &packet[..FIXED];
        let padding = if fixed[0] & 0x20 != 0 {
            usize::from(*packet.last()?)
        } else {
            0
        };
        if len + padding > packet.len() {
            return None;
        }
        Some(Self {
            marker: fixed[1] & 0x80 != 0,
            pt: fixed[1] & 0x7f,
            seq: u16::from_be_bytes([fixed[2], fixed[3]]),
            timestamp: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
            ssrc: u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]),
            len,
            padding,
        })
    }

    /// The payload of `packet`, whose header this is.
    pub(crate) fn payload<'a>(&self, packet: &'a [u8]) -> &'a [u8] {
        packet
            .get(self.len..packet.len() - self.padding)
            .unwrap_or(&[])
    }

    /// Appends a fixed header (no CSRCs, no extension, no padding) to `out`.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.push(0x80);
        out.push(u8::from(self.marker) << 7 | (self.pt & 0x7f));
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
    }
}

/// The length of an RTP packet's header (fixed part, CSRCs, extension), read before SRTP
/// decryption: the padding count at the end is still encrypted then.
pub(crate) fn header_len(packet: &[u8]) -> Option<usize> {
    let first = *packet.first()?;
    if first >> 6 != 2 || packet.len() < FIXED {
        return None;
    }
    let mut len = FIXED + 4 * usize::from(first & 0x0f);
    if first & 0x10 != 0 {
        let ext = packet.get(len..len + 4)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    }
    (len <= packet.len()).then_some(len)
}

/// Whether a datagram on a muxed port is RTCP rather than RTP (RFC 5761 §4): RTCP packet
/// types 192–223 sit where RTP would have a marker bit and payload types 64–95, which
/// dynamic RTP payloads avoid.
pub(crate) fn is_rtcp(datagram: &[u8]) -> bool {
    datagram.len() >= 8 && datagram[0] >> 6 == 2 && (192..=223).contains(&datagram[1])
}

/// An RFC 4733 named event (§2.3): a DTMF tone and how long it has lasted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ToneEvent {
    pub(crate) event: u8,
    pub(crate) end: bool,
    pub(crate) volume: u8,
    /// In RTP timestamp units.
    pub(crate) duration: u16,
}

impl ToneEvent {
    pub(crate) fn parse(payload: &[u8]) -> Option<Self> {
        let p = payload.get(..4)?;
        Some(Self {
            event: p[0],
            end: p[1] & 0x80 != 0,
            volume: p[1] & 0x3f,
            duration: u16::from_be_bytes([p[2], p[3]]),
        })
    }

    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        out.push(self.event);
        out.push(u8::from(self.end) << 7 | (self.volume & 0x3f));
        out.extend_from_slice(&self.duration.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_reads_back_what_was_written() {
        let h = Header {
            marker: true,
            pt: 101,
            seq: 65535,
            timestamp: 0xdead_beef,
            ssrc: 7,
            len: FIXED,
            padding: 0,
        };
        let mut p = Vec::new();
        h.write(&mut p);
        p.extend_from_slice(b"data");
        let back = Header::parse(&p).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.payload(&p), b"data");
    }

    #[test]
    fn csrcs_extensions_and_padding_are_skipped() {
        // V=2 P=1 X=1 CC=1; one CSRC; a one-word extension; 2 bytes of payload; padding 2.
        let mut p = vec![0xb1, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9];
        p.extend_from_slice(&[0, 0, 0, 1]); // CSRC
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // extension
        p.extend_from_slice(b"hi");
        p.extend_from_slice(&[0, 2]);
        let h = Header::parse(&p).unwrap();
        assert_eq!(h.len, 24);
        assert_eq!(h.payload(&p), b"hi");
    }

    #[test]
    fn what_is_not_rtp_is_refused_without_panicking() {
        assert!(Header::parse(&[0x80; 11]).is_none());
        assert!(Header::parse(&[0x40; 12]).is_none(), "version 1");
        // Padding longer than the packet.
        let mut p = vec![0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 200];
        assert!(Header::parse(&p).is_none());
        p[0] = 0x9f; // 15 CSRCs that are not there
        assert!(Header::parse(&p).is_none());
        for n in 0..40u8 {
            let junk: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37) ^ 0x90).collect();
            let _ = Header::parse(&junk).map(|h| h.payload(&junk).len());
            let _ = ToneEvent::parse(&junk);
        }
    }

    #[test]
    fn rtcp_is_told_from_rtp_by_its_packet_type() {
        assert!(is_rtcp(&[0x80, 200, 0, 6, 0, 0, 0, 1]));
        assert!(is_rtcp(&[0x81, 201, 0, 7, 0, 0, 0, 1]));
        assert!(!is_rtcp(&[0x80, 0, 0, 6, 0, 0, 0, 1]), "PCMU");
        assert!(!is_rtcp(&[0x80, 0xe5, 0, 6, 0, 0, 0, 1]), "marker + PT 101");
    }

    #[test]
    fn tone_events_round_trip() {
        let e = ToneEvent {
            event: 11,
            end: true,
            volume: 10,
            duration: 800,
        };
        let mut p = Vec::new();
        e.write(&mut p);
        assert_eq!(p, [11, 0x8a, 3, 32]);
        assert_eq!(ToneEvent::parse(&p), Some(e));
    }
}
