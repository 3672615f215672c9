//! RTCP sender and receiver reports (RFC 3550 §6.4) with a CNAME (§6.5), written as one
//! compound packet, and the report blocks read back from a peer's compound packets.

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ReportBlock {
    pub(crate) ssrc: u32,
    /// Loss since the previous report, in 1/256.
    pub(crate) fraction_lost: u8,
    /// Cumulative loss (24 bits, signed).
    pub(crate) lost: i32,
    pub(crate) highest_seq: u32,
    /// Interarrival jitter, in RTP timestamp units.
    pub(crate) jitter: u32,
    /// The middle 32 bits of the NTP time of the last sender report received (LSR).
    pub(crate) last_sr: u32,
    /// Since then, in 1/65536 s (DLSR).
    pub(crate) delay: u32,
}

/// What a sender report says about its sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SenderInfo {
    pub(crate) ssrc: u32,
    /// The NTP timestamp, 32.32 fixed point.
    pub(crate) ntp: u64,
}

/// What one compound packet told us.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Compound {
    pub(crate) sender: Option<SenderInfo>,
    pub(crate) blocks: Vec<ReportBlock>,
    /// A BYE named at least one source.
    pub(crate) bye: bool,
}

const SR: u8 = 200;
const RR: u8 = 201;
const SDES: u8 = 202;
const BYE: u8 = 203;

/// Reads a compound RTCP packet (already decrypted). Packets of types we do not use are
/// skipped; `None` when the lengths do not add up or the first packet is not a report.
pub(crate) fn parse(mut data: &[u8]) -> Option<Compound> {
    let mut out = Compound::default();
    let mut first = true;
    while !data.is_empty() {
        let head = data.get(..4)?;
        if head[0] >> 6 != 2 {
            return None;
        }
        let count = usize::from(head[0] & 0x1f);
        let len = 4 * (usize::from(u16::from_be_bytes([head[2], head[3]])) + 1);
        let packet = data.get(..len)?;
        let pt = head[1];
        if first && pt != SR && pt != RR {
            return None;
        }
        first = false;
        match pt {
            SR => {
                let body = packet.get(4..28)?;
                let ssrc = be32(&body[0..4]);
                let ntp = u64::from(be32(&body[4..8])) << 32 | u64::from(be32(&body[8..12]));
                out.sender = Some(SenderInfo { ssrc, ntp });
                blocks(packet.get(28..)?, count, &mut out.blocks)?;
            }
            RR => blocks(packet.get(8..)?, count, &mut out.blocks)?,
            BYE => out.bye |= count > 0,
            _ => {}
        }
        data = &data[len..];
    }
    Some(out)
}

fn blocks(mut data: &[u8], count: usize, out: &mut Vec<ReportBlock>) -> Option<()> {
    for _ in 0..count {
        let b = data.get(..24)?;
        let lost = i32::from_be_bytes([b[5], b[6], b[7], 0]) >> 8;
        out.push(ReportBlock {
            ssrc: be32(&b[0..4]),
            fraction_lost: b[4],
            lost,
            highest_seq: be32(&b[8..12]),
            jitter: be32(&b[12..16]),
            last_sr: be32(&b[16..20]),
            delay: be32(&b[20..24]),
        });
        data = &data[24..];
    }
    Some(())
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// What we have sent, for the sender-info part of an SR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sent {
    pub(crate) ntp: u64,
    pub(crate) rtp_time: u32,
    pub(crate) packets: u32,
    pub(crate) octets: u32,
}

/// Writes a compound packet into `out` (cleared first): an SR when we have sent since the
/// last report (else an RR), with at most one report block, then an SDES with our CNAME.
pub(crate) fn write(
    ssrc: u32,
    sent: Option<Sent>,
    block: Option<&ReportBlock>,
    cname: &str,
    out: &mut Vec<u8>,
) {
    out.clear();
    let count = u8::from(block.is_some());
    let words = match sent {
        Some(_) => 6 + 6 * u16::from(count),
        None => 1 + 6 * u16::from(count),
    };
    out.push(0x80 | count);
    out.push(if sent.is_some() { SR } else { RR });
    out.extend_from_slice(&words.to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    if let Some(s) = sent {
        out.extend_from_slice(&s.ntp.to_be_bytes());
        out.extend_from_slice(&s.rtp_time.to_be_bytes());
        out.extend_from_slice(&s.packets.to_be_bytes());
        out.extend_from_slice(&s.octets.to_be_bytes());
    }
    if let Some(b) = block {
        out.extend_from_slice(&b.ssrc.to_be_bytes());
        out.push(b.fraction_lost);
        out.extend_from_slice(&b.lost.clamp(-0x80_0000, 0x7f_ffff).to_be_bytes()[1..]);
        out.extend_from_slice(&b.highest_seq.to_be_bytes());
        out.extend_from_slice(&b.jitter.to_be_bytes());
        out.extend_from_slice(&b.last_sr.to_be_bytes());
        out.extend_from_slice(&b.delay.to_be_bytes());
    }
    // SDES: one chunk, CNAME item, then a null item padding the chunk to a word.
    let cname = &cname.as_bytes()[..cname.len().min(255)];
    let chunk = 4 + 2 + cname.len() + 1;
    let padded = chunk.div_ceil(4) * 4;
    out.push(0x81);
    out.push(SDES);
    out.extend_from_slice(&(padded as u16 / 4).to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.push(1);
    out.push(cname.len() as u8);
    out.extend_from_slice(cname);
    out.resize(out.len() + padded - chunk + 1, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sender_report_reads_back() {
        let block = ReportBlock {
            ssrc: 9,
            fraction_lost: 64,
            lost: -3,
            highest_seq: 70_000,
            jitter: 12,
            last_sr: 0x1234_5678,
            delay: 65_536,
        };
        let sent = Sent {
            ntp: 0x0102_0304_0506_0708,
            rtp_time: 160,
            packets: 5,
            octets: 800,
        };
        let mut out = Vec::new();
        write(7, Some(sent), Some(&block), "sansip", &mut out);
        assert_eq!(out.len() % 4, 0);
        let c = parse(&out).unwrap();
        assert_eq!(
            c.sender,
            Some(SenderInfo {
                ssrc: 7,
                ntp: sent.ntp
            })
        );
        assert_eq!(c.blocks, vec![block]);
        assert!(!c.bye);
    }

    #[test]
    fn a_receiver_report_without_blocks_is_still_a_report() {
        for cname in ["", "a", "ab", "abc", "abcd"] {
            let mut out = Vec::new();
            write(1, None, None, cname, &mut out);
            assert_eq!(out.len() % 4, 0, "{cname:?}");
            let c = parse(&out).unwrap();
            assert_eq!(c, Compound::default());
        }
    }

    #[test]
    fn broken_compounds_are_refused_without_panicking() {
        let mut out = Vec::new();
        write(1, None, None, "x", &mut out);
        for n in 0..out.len() {
            let _ = parse(&out[..n]);
        }
        assert!(
            parse(&[0x80, SDES, 0, 0]).is_none(),
            "must start with a report"
        );
        // A report block count the length cannot hold.
        assert!(parse(&[0x9f, RR, 0, 1, 0, 0, 0, 1]).is_none());
        for seed in 0..200u32 {
            let junk: Vec<u8> = (0..64u32)
                .map(|i| (i.wrapping_mul(seed).wrapping_add(seed) % 251) as u8)
                .collect();
            let _ = parse(&junk);
        }
    }
}
