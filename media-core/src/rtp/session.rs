//! One call's plain RTP session (RFC 3550): our stream out, the peer's stream in, RTCP
//! reports both ways, optional SRTP (RFC 3711), and symmetric RTP.
//!
//! Symmetric RTP: a peer behind a NAT announces an address it cannot receive on. Like
//! Asterisk's `comedia`, the session sends to where the peer's first authentic packet came
//! from (it latches once; later packets from elsewhere are dropped, so a third party cannot
//! take the stream over). RTCP latches the same way, on its own.
//!
//! We receive RTP and RTCP on one port: our description's `a=rtcp` (RFC 3605) names that
//! port, and RFC 5761 tells the two apart by packet type. We send RTCP where the peer says
//! it listens: its RTP port when it muxes, else its `a=rtcp` port or the next port up.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::packet::{self, Header, ToneEvent};
use super::reception::Reception;
use super::rtcp::{self, ReportBlock, Sent};
use super::srtp::{Context, Suite};
use crate::stats::MediaTransmit;

/// RFC 3550 §6.2's fixed minimum report interval; a session may use less (its "reduced
/// minimum"), as WebRTC stacks do to keep statistics fresh.
pub(crate) const REPORT_INTERVAL: Duration = Duration::from_secs(5);

/// SRTP keys for both directions.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Keys {
    pub(crate) suite: Suite,
    /// Ours: what we protect with (and announced in our `a=crypto`).
    pub(crate) local: [u8; Suite::MASTER_LEN],
    /// The peer's, from its `a=crypto`.
    pub(crate) remote: [u8; Suite::MASTER_LEN],
}

/// Where the peer said it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Peer {
    pub(crate) rtp: SocketAddr,
    pub(crate) rtcp: SocketAddr,
}

/// An RTP packet received, decrypted and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Incoming<'a> {
    pub(crate) pt: u8,
    pub(crate) timestamp: u32,
    pub(crate) payload: &'a [u8],
}

/// What RTCP told us, for [`crate::MediaStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Reports {
    pub(crate) loss: Option<f32>,
    pub(crate) remote_loss: Option<f32>,
    /// Interarrival jitter of what we receive, in its timestamp units.
    pub(crate) jitter: Option<u32>,
    pub(crate) rtt: Option<Duration>,
}

/// An RFC 4733 event being sent: it takes the place of audio packets until it ends.
#[derive(Debug, Clone, Copy)]
struct ToneOut {
    pt: u8,
    event: u8,
    /// The RTP time of its first packet (every packet of the event carries it).
    start: u32,
    length: u32,
    first: bool,
}

/// The plain RTP session of one call; see the module docs.
pub(crate) struct RtpSession {
    local: SocketAddr,
    peer: Peer,
    latched: bool,
    rtcp_latched: bool,
    ssrc: u32,
    seq: u16,
    cname: String,
    keys: Option<Keys>,
    protect: Option<Context>,
    unprotect: Option<Context>,
    reception: Option<Reception>,
    /// The clock rate of what we receive, for jitter.
    receive_rate: u32,
    origin: Instant,
    packets_sent: u32,
    octets_sent: u32,
    /// Our last RTP packet: when, its timestamp and clock rate (for an SR's RTP time).
    last_sent: Option<(Instant, u32, u32)>,
    sent_since_report: bool,
    /// The peer's last SR: the middle of its NTP time, and when it came.
    last_sr: Option<(u32, Instant)>,
    next_report: Instant,
    report_interval: Duration,
    reports_sent: u32,
    tone: Option<ToneOut>,
    reports: Reports,
    buf: Vec<u8>,
    plain: Vec<u8>,
    transmits: VecDeque<MediaTransmit>,
}

impl std::fmt::Debug for RtpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtpSession")
            .field("local", &self.local)
            .field("peer", &self.peer)
            .field("srtp", &self.protect.is_some())
            .finish_non_exhaustive()
    }
}

impl RtpSession {
    /// A session at `local` towards `peer`, sending as `ssrc`.
    pub(crate) fn new(
        now: Instant,
        local: SocketAddr,
        peer: Peer,
        keys: Option<&Keys>,
        ssrc: u32,
    ) -> Self {
        let mut s = Self {
            local,
            peer,
            latched: false,
            rtcp_latched: false,
            ssrc,
            seq: (ssrc >> 16) as u16 & 0x7fff,
            cname: format!("sansip-{ssrc:08x}"),
            keys: None,
            protect: None,
            unprotect: None,
            reception: None,
            receive_rate: 8000,
            origin: now,
            packets_sent: 0,
            octets_sent: 0,
            last_sent: None,
            sent_since_report: false,
            last_sr: None,
            next_report: now,
            report_interval: REPORT_INTERVAL,
            reports_sent: 0,
            tone: None,
            reports: Reports::default(),
            buf: Vec::with_capacity(1500),
            plain: Vec::with_capacity(1500),
            transmits: VecDeque::new(),
        };
        s.set_keys(keys);
        // RFC 3550 §6.2: the first report may go after half the minimum interval.
        s.next_report = now + s.interval() / 2;
        s
    }

    /// New keys (a re-offer may change them), or none for plain RTP. The same keys again
    /// keep their contexts: rollover counters and the SRTCP index run on.
    pub(crate) fn set_keys(&mut self, keys: Option<&Keys>) {
        if self.keys.as_ref() == keys && (keys.is_none() || self.protect.is_some()) {
            return;
        }
        self.keys = keys.cloned();
        self.protect = keys.map(|k| Context::new(k.suite, &k.local));
        self.unprotect = keys.map(|k| Context::new(k.suite, &k.remote));
    }

    /// Where the peer now says it receives (a re-offer): latching starts over if it moved.
    pub(crate) fn set_peer(&mut self, peer: Peer) {
        if peer != self.peer {
            self.peer = peer;
            self.latched = false;
            self.rtcp_latched = false;
        }
    }

    /// Reports go out about every `interval` (the first after half of it).
    pub(crate) fn set_report_interval(&mut self, now: Instant, interval: Duration) {
        self.report_interval = interval.max(Duration::from_millis(100));
        self.next_report = self.next_report.min(now + self.report_interval / 2);
    }

    /// The clock rate of the stream we receive.
    pub(crate) fn set_receive_rate(&mut self, rate: u32) {
        self.receive_rate = rate;
    }

    /// Where our RTP goes.
    pub(crate) fn remote(&self) -> SocketAddr {
        self.peer.rtp
    }

    /// What RTCP has told us so far.
    pub(crate) fn reports(&self) -> Reports {
        self.reports
    }

    /// Whether a datagram from `source` to `destination` is this session's: to our address
    /// and from the peer, or RTP-looking from anywhere while we have not latched yet.
    pub(crate) fn accepts(&self, source: SocketAddr, destination: SocketAddr, data: &[u8]) -> bool {
        destination == self.local
            && (source == self.peer.rtp
                || source == self.peer.rtcp
                || (!self.latched && matches!(data.first(), Some(128..=191))))
    }

    /// Takes one datagram: RTCP is read for its reports, RTP comes back decrypted.
    pub(crate) fn handle_receive<'a>(
        &'a mut self,
        now: Instant,
        source: SocketAddr,
        datagram: &'a [u8],
    ) -> Option<Incoming<'a>> {
        if packet::is_rtcp(datagram) {
            self.receive_rtcp(now, source, datagram);
            return None;
        }
        let header_len = packet::header_len(datagram)?;
        if self.latched && source != self.peer.rtp {
            tracing::trace!(%source, "RTP from elsewhere than the latched peer dropped");
            return None;
        }
        let packet = match self.unprotect.as_mut() {
            Some(ctx) => {
                if let Err(e) = ctx.unprotect_rtp(datagram, header_len, &mut self.buf) {
                    tracing::debug!(error = %e, "SRTP packet refused");
                    return None;
                }
                &self.buf[..]
            }
            None => datagram,
        };
        if !self.latched {
            self.latched = true;
            if source != self.peer.rtp {
                tracing::debug!(announced = %self.peer.rtp, actual = %source, "symmetric RTP: latched");
                if self.peer.rtcp == self.peer.rtp {
                    self.peer.rtcp = source;
                }
                self.peer.rtp = source;
            }
        }
        // Decryption keeps the header and drops the tag: the header still describes it.
        let header = Header::parse(packet)?;
        let reception = match self.reception.as_mut() {
            Some(r) if r.ssrc == header.ssrc => r,
            _ => self
                .reception
                .insert(Reception::new(header.ssrc, header.seq, self.origin)),
        };
        if !reception.update(header.seq, header.timestamp, self.receive_rate, now) {
            return None;
        }
        self.reports.jitter = Some(reception.jitter());
        Some(Incoming {
            pt: header.pt,
            timestamp: header.timestamp,
            payload: header.payload(packet),
        })
    }

    fn receive_rtcp(&mut self, now: Instant, source: SocketAddr, datagram: &[u8]) {
        let data = match self.unprotect.as_mut() {
            Some(ctx) => {
                if let Err(e) = ctx.unprotect_rtcp(datagram, &mut self.buf) {
                    tracing::debug!(error = %e, "SRTCP packet refused");
                    return;
                }
                &self.buf[..]
            }
            None => datagram,
        };
        let Some(compound) = rtcp::parse(data) else {
            tracing::debug!("malformed RTCP dropped");
            return;
        };
        if !self.rtcp_latched {
            self.rtcp_latched = true;
            if source != self.peer.rtcp && self.peer.rtcp != self.peer.rtp {
                self.peer.rtcp = source;
            }
        }
        if let Some(sender) = compound.sender {
            self.last_sr = Some(((sender.ntp >> 16) as u32, now));
        }
        for block in compound.blocks.iter().filter(|b| b.ssrc == self.ssrc) {
            self.reports.remote_loss = Some(f32::from(block.fraction_lost) / 256.0);
            if block.last_sr != 0 {
                let mid = (self.ntp(now) >> 16) as u32;
                let rtt = mid.wrapping_sub(block.last_sr).wrapping_sub(block.delay);
                // Beyond a minute it is a clock or a report gone wrong.
                if rtt < 60 << 16 {
                    self.reports.rtt = Some(Duration::from_secs_f64(f64::from(rtt) / 65536.0));
                }
            }
        }
        if compound.bye {
            tracing::debug!("the peer said RTCP BYE");
        }
    }

    /// Sends an audio payload with RTP time `timestamp` at `rate` Hz; while an RFC 4733
    /// event plays, its packet goes instead.
    pub(crate) fn send_audio(
        &mut self,
        now: Instant,
        pt: u8,
        timestamp: u32,
        rate: u32,
        payload: &[u8],
    ) {
        let frame = rate / 50;
        if let Some(mut tone) = self.tone.take() {
            let elapsed = timestamp.wrapping_sub(tone.start) + frame;
            let end = elapsed >= tone.length;
            let event = ToneEvent {
                event: tone.event,
                end,
                volume: 10,
                duration: elapsed.min(tone.length).min(u32::from(u16::MAX)) as u16,
            };
            let mut body = Vec::with_capacity(4);
            event.write(&mut body);
            // RFC 4733 §2.5.1.4: the end packet goes three times.
            for _ in 0..if end { 3 } else { 1 } {
                self.send(now, tone.pt, tone.first, tone.start, rate, &body);
                tone.first = false;
            }
            if !end {
                self.tone = Some(tone);
            }
            return;
        }
        self.send(now, pt, false, timestamp, rate, payload);
    }

    /// Starts an RFC 4733 event (payload type `pt`) at RTP time `timestamp`, lasting
    /// `length` timestamp units.
    pub(crate) fn start_tone(&mut self, pt: u8, event: u8, timestamp: u32, length: u32) {
        self.tone = Some(ToneOut {
            pt,
            event,
            start: timestamp,
            length,
            first: true,
        });
    }

    fn send(
        &mut self,
        now: Instant,
        pt: u8,
        marker: bool,
        timestamp: u32,
        rate: u32,
        payload: &[u8],
    ) {
        let header = Header {
            marker,
            pt,
            seq: self.seq,
            timestamp,
            ssrc: self.ssrc,
            len: packet::FIXED,
            padding: 0,
        };
        self.seq = self.seq.wrapping_add(1);
        self.plain.clear();
        header.write(&mut self.plain);
        self.plain.extend_from_slice(payload);
        let contents = match self.protect.as_mut() {
            Some(ctx) => {
                let mut out = Vec::with_capacity(self.plain.len() + 10);
                ctx.protect_rtp(&self.plain, packet::FIXED, &mut out);
                out
            }
            None => self.plain.clone(),
        };
        self.packets_sent = self.packets_sent.wrapping_add(1);
        self.octets_sent = self.octets_sent.wrapping_add(payload.len() as u32);
        self.last_sent = Some((now, timestamp, rate));
        self.sent_since_report = true;
        self.transmits.push_back(MediaTransmit {
            source: self.local,
            destination: self.peer.rtp,
            contents: Bytes::from(contents),
        });
    }

    /// When the next report is due.
    pub(crate) fn poll_timeout(&self) -> Instant {
        self.next_report
    }

    /// Sends a report when one is due.
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if now < self.next_report {
            return;
        }
        self.report(now);
        self.next_report = now + self.interval();
    }

    /// RFC 3550 §6.3.1: the interval, spread over 0.5 to 1.5 times its value so that
    /// reports of many calls do not bunch up. The spread is a golden-ratio sequence
    /// started at the local port: calls on different ports differ, and a test replays.
    fn interval(&mut self) -> Duration {
        self.reports_sent = self.reports_sent.wrapping_add(1);
        let phase = (f64::from(self.local.port()) + f64::from(self.reports_sent)) * 0.618_034;
        self.report_interval.mul_f64(0.5 + phase.fract())
    }

    fn report(&mut self, now: Instant) {
        let ntp = self.ntp(now);
        let sent = self
            .last_sent
            .filter(|_| std::mem::take(&mut self.sent_since_report))
            .map(|(at, ts, rate)| Sent {
                ntp,
                rtp_time: ts.wrapping_add(
                    (now.saturating_duration_since(at).as_secs_f64() * f64::from(rate)) as u32,
                ),
                packets: self.packets_sent,
                octets: self.octets_sent,
            });
        let (last_sr, delay) = match self.last_sr {
            Some((mid, at)) => (
                mid,
                (now.saturating_duration_since(at).as_secs_f64() * 65536.0) as u32,
            ),
            None => (0, 0),
        };
        let block: Option<ReportBlock> = self.reception.as_mut().map(|r| {
            let (block, loss) = r.report(last_sr, delay);
            self.reports.loss = Some(loss);
            block
        });
        rtcp::write(
            self.ssrc,
            sent,
            block.as_ref(),
            &self.cname,
            &mut self.plain,
        );
        let contents = match self.protect.as_mut() {
            Some(ctx) => {
                let mut out = Vec::with_capacity(self.plain.len() + 14);
                ctx.protect_rtcp(&self.plain, &mut out);
                out
            }
            None => self.plain.clone(),
        };
        self.transmits.push_back(MediaTransmit {
            source: self.local,
            destination: self.peer.rtcp,
            contents: Bytes::from(contents),
        });
    }

    /// Our NTP-format clock (RFC 3550 §4), 32.32 fixed point. Only differences matter to
    /// the peer (round-trip times), so it counts from the session's start.
    fn ntp(&self, now: Instant) -> u64 {
        let d = now.saturating_duration_since(self.origin);
        (d.as_secs() << 32) | ((u64::from(d.subsec_nanos()) << 32) / 1_000_000_000)
    }

    /// The next datagram to send.
    pub(crate) fn poll_transmit(&mut self) -> Option<MediaTransmit> {
        self.transmits.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_clock::origin;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn keys(flip: bool) -> Keys {
        let (a, b) = ([1; 30], [2; 30]);
        Keys {
            suite: Suite::AesCm128HmacSha1_80,
            local: if flip { b } else { a },
            remote: if flip { a } else { b },
        }
    }

    /// Two sessions that name each other; `b` sits behind a NAT that rewrites its source.
    fn pair(srtp: bool, nat: Option<SocketAddr>) -> (RtpSession, RtpSession, SocketAddr) {
        let t0 = origin();
        let (a_addr, b_addr) = (addr("10.0.0.1:4000"), addr("10.0.0.2:5000"));
        let ka = keys(false);
        let kb = keys(true);
        let a = RtpSession::new(
            t0,
            a_addr,
            Peer {
                rtp: b_addr,
                rtcp: b_addr,
            },
            srtp.then_some(&ka),
            1,
        );
        let b = RtpSession::new(
            t0,
            b_addr,
            Peer {
                rtp: a_addr,
                rtcp: a_addr,
            },
            srtp.then_some(&kb),
            2,
        );
        (a, b, nat.unwrap_or(b_addr))
    }

    #[test]
    fn audio_crosses_with_and_without_srtp_and_latches_to_the_nat() {
        for srtp in [false, true] {
            let nat = addr("192.0.2.7:61000");
            let (mut a, mut b, b_seen_as) = pair(srtp, Some(nat));
            let t0 = a.origin;
            // b speaks first, from behind its NAT.
            b.send_audio(t0, 0, 0, 8000, b"hello");
            let t = b.poll_transmit().unwrap();
            assert_eq!(t.contents.len(), 12 + 5 + if srtp { 10 } else { 0 });
            let got = a.handle_receive(t0, b_seen_as, &t.contents).unwrap();
            assert_eq!((got.pt, got.payload), (0, &b"hello"[..]));
            // a answers to where it came from, not to the announced address.
            a.send_audio(t0, 8, 160, 8000, b"hi");
            let t = a.poll_transmit().unwrap();
            assert_eq!(t.destination, nat, "srtp {srtp}");
            assert_eq!(a.remote(), nat);
            let got = b.handle_receive(t0, t.source, &t.contents).unwrap();
            assert_eq!((got.pt, got.payload), (8, &b"hi"[..]));
            // Once latched, a stranger's packets are dropped.
            b.send_audio(t0, 0, 160, 8000, b"again");
            let t = b.poll_transmit().unwrap();
            assert!(
                a.handle_receive(t0, addr("203.0.113.9:1"), &t.contents)
                    .is_none()
            );
        }
    }

    #[test]
    fn a_tampered_srtp_packet_neither_plays_nor_latches() {
        let (mut a, mut b, b_addr) = pair(true, None);
        let t0 = a.origin;
        b.send_audio(t0, 0, 0, 8000, b"hello");
        let mut bad = b.poll_transmit().unwrap().contents.to_vec();
        *bad.last_mut().unwrap() ^= 1;
        assert!(a.handle_receive(t0, addr("203.0.113.9:1"), &bad).is_none());
        assert!(!a.latched);
        b.send_audio(t0, 0, 160, 8000, b"hello");
        let good = b.poll_transmit().unwrap().contents;
        assert!(a.handle_receive(t0, b_addr, &good).is_some());
    }

    #[test]
    fn reports_give_loss_and_round_trip_time() {
        for srtp in [false, true] {
            let (mut a, mut b, b_addr) = pair(srtp, None);
            let t0 = a.origin;
            let a_addr = b.remote();
            // 50 packets a second for 20 s each way, every tenth of b's lost; 30 ms each way.
            let mut now = t0;
            for i in 0..1000u32 {
                now = t0 + Duration::from_millis(20 * u64::from(i));
                a.send_audio(now, 0, 160 * i, 8000, &[0; 160]);
                b.send_audio(now, 0, 160 * i, 8000, &[0; 160]);
                a.handle_timeout(now);
                b.handle_timeout(now);
                let later = now + Duration::from_millis(30);
                while let Some(t) = a.poll_transmit() {
                    b.handle_receive(later, a_addr, &t.contents);
                }
                while let Some(t) = b.poll_transmit() {
                    if packet::is_rtcp(&t.contents) || i % 10 != 0 {
                        a.handle_receive(later, b_addr, &t.contents);
                    }
                }
            }
            let (ra, rb) = (a.reports(), b.reports());
            assert!(
                ra.loss.is_some_and(|l| l > 0.05 && l < 0.15),
                "{srtp}: {ra:?} at {now:?}"
            );
            assert_eq!(rb.loss, Some(0.0), "{srtp}: {rb:?}");
            assert!(rb.remote_loss.is_some_and(|l| l > 0.05), "{srtp}: {rb:?}");
            for r in [ra, rb] {
                let rtt = r.rtt.unwrap();
                assert!(
                    rtt >= Duration::from_millis(55) && rtt <= Duration::from_millis(65),
                    "{srtp}: {r:?}"
                );
            }
        }
    }

    #[test]
    fn a_tone_takes_the_place_of_audio_and_ends_three_times() {
        let (mut a, mut b, _) = pair(false, None);
        let t0 = a.origin;
        let a_addr = b.remote();
        a.start_tone(101, 5, 800, 800);
        let mut events = Vec::new();
        for i in 0..8u32 {
            a.send_audio(t0, 0, 800 + 160 * i, 8000, &[0xff; 160]);
            while let Some(t) = a.poll_transmit() {
                let p = b.handle_receive(t0, a_addr, &t.contents).unwrap();
                if p.pt == 101 {
                    events.push((p.timestamp, ToneEvent::parse(p.payload).unwrap()));
                }
            }
        }
        // 800 samples: four packets of 160… 800, the last one with E set, sent three times.
        let durations: Vec<(u16, bool)> = events.iter().map(|(_, e)| (e.duration, e.end)).collect();
        assert_eq!(
            durations,
            [
                (160, false),
                (320, false),
                (480, false),
                (640, false),
                (800, true),
                (800, true),
                (800, true)
            ]
        );
        assert!(events.iter().all(|(ts, e)| *ts == 800 && e.event == 5));
    }
}
