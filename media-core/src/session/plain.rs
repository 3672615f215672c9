//! The plain RTP path of a call (`RTP/AVP`, SDES `RTP/SAVP`): its address, and datagrams
//! in and out of [`PlainMedia`](crate::rtp::PlainMedia).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sansip_core::session::SdpError;

use super::{RtcSession, incompatible};
use crate::audio::AudioCodec;
use crate::rtp::Payload;
use crate::rtp::packet::ToneEvent;

impl RtcSession {
    /// The socket plain RTP uses, and the address it announces for it: the
    /// server-reflexive one behind a NAT.
    pub(super) fn plain_address(&self) -> Result<(SocketAddr, SocketAddr), SdpError> {
        let local = *self
            .addrs
            .first()
            .ok_or_else(|| incompatible("no media address"))?;
        let announced = self
            .reflexive
            .iter()
            .find(|(_, base)| *base == local)
            .map_or(local, |(addr, _)| *addr);
        Ok((local, announced))
    }

    /// Feeds a datagram to the plain RTP path: audio to the sink, tones to the queue.
    pub(super) fn receive_plain(&mut self, now: Instant, source: SocketAddr, bytes: &[u8]) {
        // Out for the while: the packet borrows its buffer while the audio path runs.
        let Some(mut plain) = self.plain.take() else {
            return;
        };
        if let Some((payload, incoming)) = plain.handle_receive(now, source, bytes) {
            if !self.connected {
                self.connected = true;
                self.connect_by = None;
                self.connection_changes.push_back(true);
            }
            match payload {
                Payload::Audio(codec) => self.on_audio(codec, incoming.timestamp, incoming.payload),
                Payload::Tone(rate) => {
                    if let Some(ev) = ToneEvent::parse(incoming.payload)
                        && ev.end
                    {
                        let duration = Duration::from_secs_f64(
                            f64::from(ev.duration) / f64::from(rate.max(1)),
                        );
                        self.on_tone(u64::from(incoming.timestamp), ev.event, duration);
                    }
                }
            }
        }
        self.plain = Some(plain);
        self.drain_plain();
    }

    /// Moves the plain RTP path's datagrams to our queue and its reports to the stats.
    pub(super) fn drain_plain(&mut self) {
        let Some(plain) = self.plain.as_mut() else {
            return;
        };
        while let Some(t) = plain.poll_transmit() {
            self.transmits.push_back(t);
        }
        if let Some((r, remote)) = plain.reports() {
            self.stats.remote = Some(remote);
            self.stats.loss = r.loss.or(self.stats.loss);
            self.stats.remote_loss = r.remote_loss.or(self.stats.remote_loss);
            self.stats.rtt = r.rtt.or(self.stats.rtt);
            if let Some(j) = r.jitter {
                let rate = self.stats.codec.map_or(8_000, AudioCodec::rate);
                self.stats.jitter = Some(Duration::from_secs_f64(f64::from(j) / f64::from(rate)));
            }
        }
    }
}
