//! A call's plain RTP media as offer/answer sees it (RFC 3264): the description we send,
//! the codecs and keys both sides settled on, and the [`RtpSession`] that carries them.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sansip_core::session::SdpError;

use super::sdp::{self, Crypto, Local, Payload, PeerMedia};
use super::session::{Incoming, Keys, Peer, Reports, RtpSession};
use super::srtp::Suite;
use crate::audio::AudioCodec;
use crate::config::MediaConfig;

/// What our offers carry: SRTP with SDES keys, or nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protection {
    Plain,
    Sdes,
}

/// The payload types we offer each codec under (RFC 3551's static ones for G.711).
fn our_payloads(config: &MediaConfig) -> Vec<(u8, Payload)> {
    let mut out: Vec<(u8, Payload)> = config
        .audio_codecs
        .iter()
        .filter(|c| c.available())
        .map(|&c| {
            let pt = match c {
                AudioCodec::Pcmu => 0,
                AudioCodec::Pcma => 8,
                AudioCodec::G722 => 9,
                AudioCodec::Opus => 111,
            };
            (pt, Payload::Audio(c))
        })
        .collect();
    if config.telephone_event {
        if out
            .iter()
            .any(|(_, p)| *p == Payload::Audio(AudioCodec::Opus))
        {
            out.push((110, Payload::Tone(48_000)));
        }
        out.push((101, Payload::Tone(8_000)));
    }
    out
}

/// Samples at `codec`'s rate as RTP time (its clock), 32 bits as on the wire.
fn clock(codec: AudioCodec, samples: u64) -> u32 {
    (samples / u64::from(codec.rate() / codec.clock_rate())) as u32
}

/// A fresh master key and salt from the operating system's CSPRNG (RFC 4568 §6.1).
fn fresh_key() -> Result<[u8; Suite::MASTER_LEN], SdpError> {
    let mut key = [0; Suite::MASTER_LEN];
    getrandom::fill(&mut key).map_err(|e| SdpError::Incompatible(format!("no randomness: {e}")))?;
    Ok(key)
}

/// One call's plain RTP media; see the module docs.
#[derive(Debug)]
pub(crate) struct PlainMedia {
    /// The socket we use, and the address we announce for it (server-reflexive behind NAT).
    local: SocketAddr,
    announced: SocketAddr,
    session_id: u64,
    proto: String,
    /// Our `a=crypto` lines: every offered one until the answer picks, then that one.
    crypto: Vec<Crypto>,
    /// What we announce we receive, in our order.
    payloads: Vec<(u8, Payload)>,
    /// What the payload types we receive mean.
    receive: Vec<(u8, Payload)>,
    send: Option<(u8, AudioCodec)>,
    tone: Option<u8>,
    mux: bool,
    report_interval: Duration,
    rtp: Option<RtpSession>,
}

impl PlainMedia {
    /// Our first offer, and the media waiting for its answer.
    pub(crate) fn offer(
        local: SocketAddr,
        announced: SocketAddr,
        protection: Protection,
        config: &MediaConfig,
        session_id: u64,
    ) -> Result<(Self, String), SdpError> {
        let crypto = match protection {
            Protection::Plain => Vec::new(),
            Protection::Sdes => vec![
                Crypto {
                    tag: 1,
                    suite: Suite::AesCm128HmacSha1_80,
                    key: fresh_key()?,
                },
                Crypto {
                    tag: 2,
                    suite: Suite::AesCm128HmacSha1_32,
                    key: fresh_key()?,
                },
            ],
        };
        let payloads = our_payloads(config);
        let media = Self {
            local,
            announced,
            session_id,
            proto: match protection {
                Protection::Plain => "RTP/AVP",
                Protection::Sdes => "RTP/SAVP",
            }
            .into(),
            crypto,
            receive: payloads.clone(),
            payloads,
            send: None,
            tone: None,
            mux: true,
            report_interval: config.stats_interval,
            rtp: None,
        };
        let text = media.describe(None);
        Ok((media, text))
    }

    /// Our answer to a peer's first offer, and the media it sets up.
    pub(crate) fn answer(
        now: Instant,
        local: SocketAddr,
        announced: SocketAddr,
        offer: &[u8],
        config: &MediaConfig,
        session_id: u64,
    ) -> Result<(Self, String), SdpError> {
        let peer = sdp::parse(offer)?;
        let mut media = Self {
            local,
            announced,
            session_id,
            proto: peer.proto().to_string(),
            crypto: Vec::new(),
            payloads: Vec::new(),
            receive: Vec::new(),
            send: None,
            tone: None,
            mux: peer.mux,
            report_interval: config.stats_interval,
            rtp: None,
        };
        let text = media.answer_again(now, &peer, config)?;
        Ok((media, text))
    }

    /// Our answer to a re-offer in the same call (hold, a new address, new keys).
    pub(crate) fn accept_offer(
        &mut self,
        now: Instant,
        offer: &[u8],
        config: &MediaConfig,
    ) -> Result<String, SdpError> {
        let peer = sdp::parse(offer)?;
        if peer.secure() != (self.proto.contains("SAVP")) {
            return Err(SdpError::Incompatible(
                "a re-offer may not switch between RTP and SRTP".into(),
            ));
        }
        self.answer_again(now, &peer, config)
    }

    fn answer_again(
        &mut self,
        now: Instant,
        peer: &PeerMedia,
        config: &MediaConfig,
    ) -> Result<String, SdpError> {
        // The offer's payload types, those we do, in the order of our preference (RFC 3264
        // §6.1 lets the answerer order them).
        let mut payloads: Vec<(u8, Payload)> = Vec::new();
        for codec in config.audio_codecs.iter().filter(|c| c.available()) {
            if let Some(&(pt, p)) = peer
                .payloads
                .iter()
                .find(|(_, p)| *p == Payload::Audio(*codec))
            {
                payloads.push((pt, p));
            }
        }
        let send = payloads.first().and_then(|&(pt, p)| match p {
            Payload::Audio(c) => Some((pt, c)),
            Payload::Tone(_) => None,
        });
        let Some((_, codec)) = send else {
            return Err(SdpError::Incompatible(
                "no audio codec in common (PCMU, PCMA, G722, opus)".into(),
            ));
        };
        let tone = config
            .telephone_event
            .then(|| peer.tone_pt(codec.clock_rate()))
            .flatten();
        if let Some(pt) = tone {
            payloads.push((pt, Payload::Tone(codec.clock_rate())));
        }
        let keys = match peer.crypto.first() {
            Some(theirs) => {
                // Keep our key when the suite stays (a re-offer), else make one.
                let key = match self.crypto.first() {
                    Some(c) if c.suite == theirs.suite => c.key,
                    _ => fresh_key()?,
                };
                self.crypto = vec![Crypto {
                    tag: theirs.tag,
                    suite: theirs.suite,
                    key,
                }];
                Some(Keys {
                    suite: theirs.suite,
                    local: key,
                    remote: theirs.key,
                })
            }
            None => None,
        };
        self.mux = peer.mux;
        self.receive = payloads.clone();
        self.payloads = payloads;
        self.send = send;
        self.tone = tone;
        self.start(now, peer, keys.as_ref());
        Ok(self.describe(Some(peer)))
    }

    /// Takes the peer's answer to our offer.
    pub(crate) fn accept_answer(&mut self, now: Instant, answer: &[u8]) -> Result<(), SdpError> {
        let peer = sdp::parse(answer)?;
        if peer.secure() != self.proto.contains("SAVP") {
            return Err(SdpError::Incompatible(format!(
                "answered {} to our {}",
                peer.proto(),
                self.proto
            )));
        }
        let keys = match peer.crypto.first() {
            Some(theirs) => {
                let ours = self
                    .crypto
                    .iter()
                    .find(|c| c.tag == theirs.tag && c.suite == theirs.suite)
                    .cloned()
                    .ok_or_else(|| {
                        SdpError::Incompatible(
                            "the answer's a=crypto matches no offered tag".into(),
                        )
                    })?;
                self.crypto = vec![ours.clone()];
                Some(Keys {
                    suite: ours.suite,
                    local: ours.key,
                    remote: theirs.key,
                })
            }
            None if self.proto.contains("SAVP") => {
                return Err(SdpError::Incompatible(
                    "SRTP answered without a=crypto".into(),
                ));
            }
            None => None,
        };
        // The answer's first codec we do is what we send (RFC 3264 §6.1).
        self.send = peer.send_codec();
        let Some((_, codec)) = self.send else {
            return Err(SdpError::Incompatible("no audio codec in common".into()));
        };
        self.tone = peer.tone_pt(codec.clock_rate());
        // We receive with the payload types we offered, or (a peer that renumbered in its
        // answer) with its own.
        for &(pt, p) in &peer.payloads {
            if !self.receive.iter().any(|&(ours, _)| ours == pt) {
                self.receive.push((pt, p));
            }
        }
        self.mux = peer.mux;
        self.start(now, &peer, keys.as_ref());
        Ok(())
    }

    fn start(&mut self, now: Instant, peer: &PeerMedia, keys: Option<&Keys>) {
        let to = Peer {
            rtp: peer.rtp,
            rtcp: if peer.mux { peer.rtp } else { peer.rtcp },
        };
        let rate = self.send.map_or(8000, |(_, c)| c.clock_rate());
        match self.rtp.as_mut() {
            Some(rtp) => {
                rtp.set_peer(to);
                rtp.set_keys(keys);
            }
            None => {
                let mut ssrc = [0; 4];
                // A fixed SSRC would do too; random ones keep RFC 3550 §8's collisions rare.
                let _ = getrandom::fill(&mut ssrc);
                self.rtp = Some(RtpSession::new(
                    now,
                    self.local,
                    to,
                    keys,
                    u32::from_be_bytes(ssrc),
                ));
            }
        }
        if let Some(rtp) = self.rtp.as_mut() {
            rtp.set_receive_rate(rate);
            rtp.set_report_interval(now, self.report_interval);
        }
    }

    fn describe(&self, answering: Option<&PeerMedia>) -> String {
        sdp::write(&Local {
            addr: self.announced,
            session_id: self.session_id,
            proto: &self.proto,
            payloads: &self.payloads,
            crypto: &self.crypto,
            mux: self.mux,
            answering: answering.map(|p| (p.lines.as_slice(), p.audio)),
        })
    }

    /// The payload type and codec we send with, once negotiated.
    pub(crate) fn send_codec(&self) -> Option<(u8, AudioCodec)> {
        self.send
    }

    /// The telephone-event payload type at our send rate, once negotiated.
    pub(crate) fn tone_pt(&self) -> Option<u8> {
        self.tone
    }

    /// Whether `datagram` from `source` to `destination` belongs to this call.
    pub(crate) fn accepts(
        &self,
        source: SocketAddr,
        destination: SocketAddr,
        datagram: &[u8],
    ) -> bool {
        self.rtp
            .as_ref()
            .is_some_and(|r| r.accepts(source, destination, datagram))
    }

    /// Takes a datagram; an RTP packet comes back with what its payload type means.
    pub(crate) fn handle_receive<'a>(
        &'a mut self,
        now: Instant,
        source: SocketAddr,
        datagram: &'a [u8],
    ) -> Option<(Payload, Incoming<'a>)> {
        let receive = &self.receive;
        let mut incoming = self.rtp.as_mut()?.handle_receive(now, source, datagram)?;
        let payload = receive
            .iter()
            .find_map(|&(pt, p)| (pt == incoming.pt).then_some(p))?;
        if let Payload::Audio(codec) = payload {
            // Audio times run at the sample rate above this layer (G.722's RTP clock is
            // half its rate); a whole multiple keeps the 32-bit wrap consistent.
            incoming.timestamp = incoming
                .timestamp
                .wrapping_mul(codec.rate() / codec.clock_rate());
        }
        Some((payload, incoming))
    }

    /// Sends one encoded audio frame (or, while a tone plays, the tone's packet);
    /// `timestamp` counts samples at the codec's rate.
    pub(crate) fn send_audio(&mut self, now: Instant, timestamp: u64, payload: &[u8]) {
        if let (Some(rtp), Some((pt, codec))) = (self.rtp.as_mut(), self.send) {
            let ts = clock(codec, timestamp);
            rtp.send_audio(now, pt, ts, codec.clock_rate(), payload);
        }
    }

    /// Starts an RFC 4733 event now (`timestamp`), lasting `length`; both count samples at
    /// the send codec's rate.
    pub(crate) fn start_tone(&mut self, event: u8, timestamp: u64, length: u64) {
        if let (Some(rtp), Some(pt), Some((_, codec))) = (self.rtp.as_mut(), self.tone, self.send) {
            rtp.start_tone(pt, event, clock(codec, timestamp), clock(codec, length));
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.rtp.as_ref().map(RtpSession::poll_timeout)
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if let Some(rtp) = self.rtp.as_mut() {
            rtp.handle_timeout(now);
        }
    }

    pub(crate) fn poll_transmit(&mut self) -> Option<crate::MediaTransmit> {
        self.rtp.as_mut()?.poll_transmit()
    }

    /// What RTCP has told us, and where our media goes.
    pub(crate) fn reports(&self) -> Option<(Reports, SocketAddr)> {
        self.rtp.as_ref().map(|r| (r.reports(), r.remote()))
    }

    /// Whether the media runs (an answer or offer was taken).
    pub(crate) fn is_started(&self) -> bool {
        self.rtp.is_some()
    }
}
