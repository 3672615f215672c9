//! The WebRTC path of a call: str0m's candidates, output and events, and video.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use str0m::format::{Codec, CodecExtra};
use str0m::media::{Frequency, MediaData, MediaKind};
use str0m::{Candidate, Event, IceConnectionState, Output};

use super::RtcSession;
use crate::audio::AudioCodec;
use crate::stats::MediaTransmit;
use crate::video::{VideoCodec, VideoFrame};

impl RtcSession {
    /// Empties str0m's output into our queues (the single-mutation rule).
    pub(super) fn drain(&mut self) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.timeout = t;
                    return;
                }
                Ok(Output::Transmit(t)) => {
                    // STUN checks go to every candidate; once connected, media goes to
                    // the nominated pair only.
                    if self.connected && !crate::stats::is_stun(&t.contents) {
                        self.stats.remote = Some(t.destination);
                    }
                    self.transmits.push_back(MediaTransmit {
                        source: t.source,
                        destination: t.destination,
                        contents: Bytes::copy_from_slice(&t.contents),
                    })
                }
                Ok(Output::Event(e)) => self.on_event(e),
                Err(e) => {
                    tracing::debug!(error = %e, "media session failed");
                    // Nothing more will come; wake up rarely.
                    self.timeout = self.now + Duration::from_secs(3600);
                    return;
                }
            }
        }
    }

    fn on_event(&mut self, e: Event) {
        match e {
            Event::Connected => {
                self.connected = true;
                self.connect_by = None;
                self.connection_changes.push_back(true);
                if self.next_frame.is_none() {
                    self.next_frame = Some(self.now);
                }
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) if self.connected => {
                self.connected = false;
                self.connection_changes.push_back(false);
            }
            Event::MediaAdded(m) => match m.kind {
                MediaKind::Audio => self.add_audio(Some(m.mid)),
                MediaKind::Video => self.video = self.video.or(Some(m.mid)),
            },
            Event::MediaData(d) => self.on_media(d),
            Event::MediaIngressStats(s) => {
                self.stats.loss = s.loss.or(self.stats.loss);
                let rate = self.stats.codec.map_or(8_000, AudioCodec::rate);
                self.stats.jitter = Some(Duration::from_secs_f64(
                    f64::from(s.jitter) / f64::from(rate),
                ));
                self.stats.rtt = s.rtt.or(self.stats.rtt);
            }
            Event::MediaEgressStats(s) => {
                self.stats.remote_loss = s.loss.or(self.stats.remote_loss);
                self.stats.rtt = s.rtt.or(self.stats.rtt);
            }
            Event::PeerStats(s) => self.stats.rtt = s.rtt.or(self.stats.rtt),
            Event::KeyframeRequest(r) if Some(r.mid) == self.video => {
                self.on_keyframe_request();
            }
            _ => {}
        }
    }

    fn on_media(&mut self, d: MediaData) {
        if Some(d.mid) == self.video {
            let codec = match d.params.spec().codec {
                Codec::Vp8 => VideoCodec::Vp8,
                Codec::H264 => VideoCodec::H264,
                _ => return,
            };
            let frame = VideoFrame {
                codec,
                rtp_time: d.time.rebase(Frequency::NINETY_KHZ).numer(),
                data: d.data.to_vec(),
            };
            self.on_video(&frame);
            return;
        }
        if self.audio.as_ref().is_none_or(|a| a.mid != Some(d.mid)) {
            return;
        }
        if let CodecExtra::Tele(ev) = d.codec_extra {
            if ev.end {
                self.on_tone(d.time.numer(), ev.event, ev.duration);
            }
            return;
        }
        let codec = match d.params.spec().codec {
            Codec::Opus => AudioCodec::Opus,
            Codec::PCMU => AudioCodec::Pcmu,
            Codec::PCMA => AudioCodec::Pcma,
            Codec::G722 => AudioCodec::G722,
            _ => return,
        };
        self.on_audio(codec, d.time.numer() as u32, &d.data);
    }

    /// Offers `addr`, the server-reflexive address of our local `base` (one of the
    /// session's addresses), as an ICE candidate too.
    pub(crate) fn add_reflexive(&mut self, addr: SocketAddr, base: SocketAddr) {
        self.reflexive.push((addr, base));
        self.add_candidate(Candidate::server_reflexive(addr, base, "udp"), addr);
    }

    /// Offers `addr`, relayed for us by a TURN server from our local `base`, as an ICE
    /// candidate too.
    pub(crate) fn add_relayed(&mut self, addr: SocketAddr, base: SocketAddr) {
        self.add_candidate(Candidate::relayed(addr, base, "udp"), addr);
    }

    pub(super) fn add_candidate(
        &mut self,
        candidate: Result<Candidate, impl std::fmt::Display>,
        addr: SocketAddr,
    ) {
        match candidate {
            Ok(c) => {
                if self.rtc.add_local_candidate(c).is_none() {
                    tracing::debug!(%addr, "candidate not taken");
                }
            }
            Err(e) => tracing::debug!(%addr, error = %e, "bad candidate"),
        }
    }
}
