//! The call's audio: a source asked for a frame every 20 ms, the encoder, RFC 4733 tones
//! out, and on the way in the jitter buffer, decoders (and concealment) per codec, the sink,
//! and tones heard. The same for both transports; only the last step of sending differs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::format::Codec;
use str0m::media::{Frequency, MediaTime, Mid, Pt, TelephoneEvent};

use super::RtcSession;
use crate::audio::jitter::{JitterBuffer, Playout};
use crate::audio::{AudioCodec, AudioFrame, Decoder, Encoder, FRAME, Silence, frame_samples};

/// The audio half of a session, once negotiated.
pub(super) struct Audio {
    /// str0m's media line; none on the plain RTP path.
    pub(super) mid: Option<Mid>,
    /// The payload type and codec we send with (the first the peer accepted).
    send: Option<(Pt, AudioCodec)>,
    encoder: Option<Encoder>,
    decoders: HashMap<AudioCodec, Decoder>,
    /// RTP time of the next frame, at the send codec's rate.
    rtp_time: u64,
    payload: Vec<u8>,
    pcm: Vec<i16>,
    frame: Vec<i16>,
    /// What we received, waiting for its 20 ms slot.
    jitter: JitterBuffer,
}

impl RtcSession {
    pub(super) fn tele_pt(&mut self) -> Option<Pt> {
        if let Some(p) = &self.plain {
            return p.tone_pt().map(Pt::from);
        }
        let audio = self.audio.as_ref()?;
        let (_, codec) = audio.send?;
        // Events run at the audio's RTP clock (8 kHz for G.722).
        let rate = codec.clock_rate();
        let writer = self.rtc.writer(audio.mid?)?;
        writer
            .payload_params()
            .find(|p| p.spec().codec == Codec::Tele && p.spec().clock_rate.get() == rate)
            .map(|p| p.pt())
    }

    /// Picks the send codec after a negotiation: the first audio payload the peer took.
    pub(super) fn negotiated(&mut self) {
        let Some(audio) = self.audio.as_mut() else {
            return;
        };
        let send = match (&self.plain, audio.mid) {
            (Some(p), _) => p.send_codec().map(|(pt, c)| (Pt::from(pt), c)),
            (None, Some(mid)) => {
                let Some(writer) = self.rtc.writer(mid) else {
                    return;
                };
                writer.payload_params().find_map(|p| {
                    let codec = match p.spec().codec {
                        Codec::Opus => AudioCodec::Opus,
                        Codec::PCMU => AudioCodec::Pcmu,
                        Codec::PCMA => AudioCodec::Pcma,
                        Codec::G722 => AudioCodec::G722,
                        _ => return None,
                    };
                    codec.available().then_some((p.pt(), codec))
                })
            }
            (None, None) => return,
        };
        if send.map(|s| s.1) != audio.send.map(|s| s.1) {
            audio.encoder = send.and_then(|(_, c)| Encoder::new(c).ok());
            audio.rtp_time = 0;
        }
        audio.send = send;
        self.stats.codec = send.map(|s| s.1);
    }

    pub(super) fn send_frame(&mut self, now: Instant) {
        let Some(at) = self.next_frame else {
            return;
        };
        // Late by more than a few frames (a stalled runtime): skip ahead rather than burst.
        self.next_frame = Some(if now.saturating_duration_since(at) > FRAME * 5 {
            now + FRAME
        } else {
            at + FRAME
        });
        self.play_frame();
        let tele = if self.dtmf_next.is_none_or(|t| now >= t) {
            self.next_tone(now)
        } else {
            None
        };
        if self.audio.as_ref().is_some_and(|a| a.send.is_none()) {
            // The answerer learns its audio m-line only after the answer went out.
            self.negotiated();
        }
        // Plain RTP has no handshake: it sends from the offer/answer on.
        let sends = self.direction.sends() && (self.connected || self.plain.is_some());
        let Some(audio) = self.audio.as_mut() else {
            return;
        };
        let Some((pt, codec)) = audio.send else {
            return;
        };
        let n = frame_samples(codec.rate());
        audio.frame.resize(n, 0);
        if !self.source.fill(codec.rate(), &mut audio.frame) {
            // The source ended: silence from now on.
            self.source = Box::new(Silence);
        }
        if self.muted {
            audio.frame.fill(0);
        }
        let rtp_time = audio.rtp_time;
        audio.rtp_time += n as u64;
        if !sends {
            return;
        }
        let Some(encoder) = audio.encoder.as_mut() else {
            return;
        };
        if encoder.encode(&audio.frame, &mut audio.payload).is_err() {
            return;
        }
        let len = audio.payload.len() as u64;
        if let Some(p) = self.plain.as_mut() {
            if let Some(ev) = tele {
                let length = (ev.duration.as_secs_f64() * f64::from(codec.rate())) as u64;
                p.start_tone(ev.event, rtp_time, length);
                self.stats.dtmf_sent += 1;
            }
            p.send_audio(now, rtp_time, &audio.payload);
            self.stats.packets_sent += 1;
            self.stats.bytes_sent += len;
            self.drain_plain();
            return;
        }
        let payload: Arc<[u8]> = audio.payload.as_slice().into();
        let Some(mid) = audio.mid else {
            return;
        };
        let Some(mut writer) = self.rtc.writer(mid) else {
            return;
        };
        if let Some(ev) = tele {
            writer = writer.telephone_event(ev);
        }
        let time = MediaTime::new(
            rtp_time,
            Frequency::new(codec.rate()).unwrap_or(Frequency::EIGHT_KHZ),
        );
        match writer.write(pt, now, time, payload) {
            Ok(()) => {
                self.stats.packets_sent += 1;
                self.stats.bytes_sent += len;
                if tele.is_some() {
                    self.stats.dtmf_sent += 1;
                }
            }
            Err(e) => tracing::debug!(error = %e, "audio write failed"),
        }
        self.drain();
    }

    /// The next RFC 4733 event to start now, if one is queued and negotiated.
    fn next_tone(&mut self, now: Instant) -> Option<TelephoneEvent> {
        let tone = *self.dtmf_out.front()?;
        if tone == ',' {
            self.dtmf_out.pop_front();
            self.dtmf_next = Some(now + Duration::from_secs(2));
            return None;
        }
        self.tele_pt()?;
        self.dtmf_out.pop_front();
        let event = event_of(tone)?;
        let duration = self.config.dtmf_duration;
        self.dtmf_next = Some(now + duration + self.config.dtmf_gap.max(Duration::from_millis(50)));
        Some(TelephoneEvent {
            event,
            end: true,
            volume: 10,
            duration,
        })
    }

    /// An RFC 4733 event ended: a tone heard (its retransmitted end packets are not new).
    pub(super) fn on_tone(&mut self, start: u64, event: u8, duration: Duration) {
        if self.last_tele != Some(start) {
            self.last_tele = Some(start);
            if let Some(tone) = tone_of(event) {
                self.stats.dtmf_received += 1;
                self.dtmf_in.push_back((tone, duration));
            }
        }
    }

    /// An audio payload arrived: into the jitter buffer, to be played in its slot.
    pub(super) fn on_audio(&mut self, codec: AudioCodec, timestamp: u32, data: &[u8]) {
        if !self.direction.receives() {
            return;
        }
        let Some(audio) = self.audio.as_mut() else {
            return;
        };
        self.stats.packets_received += 1;
        self.stats.bytes_received += data.len() as u64;
        audio.jitter.push(self.now, codec, timestamp, data);
    }

    /// Plays one 20 ms frame into the sink: the next packet decoded, a missing one
    /// concealed, or silence while the stream pauses (hold, silence suppression).
    fn play_frame(&mut self) {
        let Some(audio) = self.audio.as_mut() else {
            return;
        };
        let playout = audio.jitter.pop();
        let jitter = audio.jitter.stats();
        self.stats.concealed = jitter.concealed;
        self.stats.late = jitter.late;
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        let (codec, decoded) = match playout {
            Playout::Idle => return,
            Playout::Silence => {
                let Some(codec) = audio.jitter.codec() else {
                    return;
                };
                audio.pcm.clear();
                audio.pcm.resize(frame_samples(codec.rate()), 0);
                (codec, Ok(()))
            }
            Playout::Packet { codec, payload } => {
                let Some(decoder) = decoder(&mut audio.decoders, codec) else {
                    return;
                };
                (codec, decoder.decode(&payload, &mut audio.pcm))
            }
            Playout::Missing { codec, next } => {
                let Some(decoder) = decoder(&mut audio.decoders, codec) else {
                    return;
                };
                let n = frame_samples(codec.rate());
                (codec, decoder.conceal(n, next.as_deref(), &mut audio.pcm))
            }
        };
        if decoded.is_ok() {
            let frame = AudioFrame {
                rate: codec.rate(),
                samples: std::mem::take(&mut audio.pcm),
            };
            sink.write(&frame);
            audio.pcm = frame.samples;
        }
    }

    /// The call's first audio m-line carries its audio.
    pub(super) fn add_audio(&mut self, mid: Option<Mid>) {
        if self.audio.is_none() {
            self.audio = Some(Audio {
                mid,
                send: None,
                encoder: None,
                decoders: HashMap::new(),
                rtp_time: 0,
                payload: Vec::with_capacity(256),
                pcm: Vec::with_capacity(960),
                frame: Vec::with_capacity(960),
                jitter: JitterBuffer::new(),
            });
        }
    }
}

/// The call's decoder for `codec`, made on first use.
fn decoder(decoders: &mut HashMap<AudioCodec, Decoder>, codec: AudioCodec) -> Option<&mut Decoder> {
    match decoders.entry(codec) {
        std::collections::hash_map::Entry::Occupied(o) => Some(o.into_mut()),
        std::collections::hash_map::Entry::Vacant(v) => {
            Decoder::new(codec).ok().map(|d| v.insert(d))
        }
    }
}

/// RFC 4733 §3.2: the event code of a DTMF tone, and back.
pub(super) fn event_of(tone: char) -> Option<u8> {
    Some(match tone.to_ascii_uppercase() {
        '0'..='9' => tone as u8 - b'0',
        '*' => 10,
        '#' => 11,
        t @ 'A'..='D' => t as u8 - b'A' + 12,
        _ => return None,
    })
}

fn tone_of(event: u8) -> Option<char> {
    Some(match event {
        0..=9 => (b'0' + event) as char,
        10 => '*',
        11 => '#',
        12..=15 => (b'A' + event - 12) as char,
        _ => return None,
    })
}
