//! Two media phones through the embedded registrar in the simulator, with real str0m media
//! over the simulated network: ICE and DTLS connect, audio flows both ways (each side
//! hears the other's tone), hold stops the flow in the held direction and unhold resumes
//! it, RFC 4733 DTMF arrives, and hang-up reports the media totals. At 0 % and 5 % loss.
#![cfg(feature = "rtc")]
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sansip_media::audio::{Recorder, Tone, analysis};
use sansip_media::core::auth::DigestCredentials;
use sansip_media::core::registrar::{Registrar, RegistrarConfig};
use sansip_media::core::session::{CallHandle, EndCause, Originator};
use sansip_media::core::sim::{LinkConfig, Network, Node, RegistrarNode, Sim};
use sansip_media::core::transport::{FlowId, FlowInfo, Transport};
use sansip_media::core::ua::{CallOptions, Event, Input, OfferMethod, Output, UaConfig};
use sansip_media::video::{VideoCodec, VideoFrame, VideoSink};
use sansip_media::{MediaAgent, MediaConfig, MediaEvent, MediaFailure, MediaProfile, is_media};

const REGISTRAR: &str = "127.0.0.1:5060";

#[allow(clippy::disallowed_methods)]
fn origin() -> Instant {
    Instant::now()
}

/// A phone whose SIP and media share one address (told apart by the first byte).
struct MediaNode {
    addr: SocketAddr,
    phone: MediaAgent,
    flow: FlowId,
    events: Vec<Event>,
    media_events: Vec<MediaEvent>,
    pending: Vec<(SocketAddr, Bytes)>,
    heard: Arc<Mutex<Recorder>>,
    /// Drops every media datagram that reaches it: a peer no media gets through to.
    deaf: bool,
    /// Every SIP message that reached it, to read the descriptions in them.
    sip_in: Vec<Bytes>,
}

impl MediaNode {
    fn with(name: &str, port: u16, now: Instant, seed: u64, media: MediaConfig) -> Self {
        Self::with_ua(name, port, now, seed, media, |_| {})
    }

    /// A phone whose user agent's settings `edit` changed.
    fn with_ua(
        name: &str,
        port: u16,
        now: Instant,
        seed: u64,
        media: MediaConfig,
        edit: impl FnOnce(&mut UaConfig),
    ) -> Self {
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut c = UaConfig::new(format!("sip:{name}@example.com"));
        c.credentials = Some(DigestCredentials::new(name, format!("{name}-pw")));
        edit(&mut c);
        let mut phone = MediaAgent::new(c, media, vec![addr], now, seed).unwrap();
        let flow = phone.ua_mut().add_flow(FlowInfo {
            transport: Transport::Udp,
            local: addr,
            remote: REGISTRAR.parse().unwrap(),
        });
        phone.ua_mut().set_outbound_flow(flow);
        Self {
            addr,
            phone,
            flow,
            events: Vec::new(),
            media_events: Vec::new(),
            pending: Vec::new(),
            heard: Arc::default(),
            deaf: false,
            sip_in: Vec::new(),
        }
    }

    fn drain(&mut self) {
        while let Some(o) = self.phone.poll_output() {
            match o {
                Output::Transmit { bytes, .. } => {
                    self.pending.push((REGISTRAR.parse().unwrap(), bytes))
                }
                Output::Event(e) => self.events.push(e),
                _ => {}
            }
        }
        while let Some(t) = self.phone.poll_media() {
            assert_eq!(t.source, self.addr);
            self.pending.push((t.destination, t.contents));
        }
        while let Some(e) = self.phone.poll_media_event() {
            self.media_events.push(e);
        }
    }

    fn received(&self, call: CallHandle) -> u64 {
        self.phone.media_stats(call).unwrap().packets_received
    }

    fn dtmf(&self) -> String {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::DtmfReceived { tone, .. } => Some(*tone),
                _ => None,
            })
            .collect()
    }

    /// The dominant frequency of the last second heard, and its level.
    fn hears(&self) -> (Option<f64>, f64) {
        let (rate, samples) = self.heard.lock().unwrap().samples();
        let tail = &samples[samples.len().saturating_sub(rate as usize)..];
        (
            analysis::dominant_frequency(tail, rate),
            analysis::rms(tail),
        )
    }
}

impl Node for MediaNode {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: Bytes) {
        if is_media(&bytes) {
            if self.deaf {
                return;
            }
            self.phone.handle_media(now, from, self.addr, &bytes);
        } else {
            self.sip_in.push(bytes.clone());
            let flow = self.flow;
            self.phone
                .handle_input(now, Input::Received { flow, bytes });
        }
        self.drain();
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.phone.handle_timeout(now);
        self.drain();
    }
    fn poll_transmit(&mut self) -> Option<(SocketAddr, Bytes)> {
        (!self.pending.is_empty()).then(|| self.pending.remove(0))
    }
    fn poll_timeout(&self) -> Option<Instant> {
        self.phone.poll_timeout()
    }
}

/// A STUN server behind which every client seems to sit behind a NAT: it answers each
/// Binding request with the sender's port on [`PUBLIC`] (RFC 8489 §14.2).
struct StunNode {
    addr: SocketAddr,
    out: Vec<(SocketAddr, Bytes)>,
}

const PUBLIC: [u8; 4] = [203, 0, 113, 5];

impl Node for StunNode {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn handle_datagram(&mut self, _now: Instant, from: SocketAddr, bytes: Bytes) {
        if bytes.len() < 20 || bytes[..2] != [0x00, 0x01] {
            return;
        }
        let cookie = [0x21, 0x12, 0xA4, 0x42];
        let mut a = vec![0x01, 0x01, 0x00, 0x0c];
        a.extend_from_slice(&bytes[4..20]);
        a.extend_from_slice(&[0x00, 0x20, 0x00, 0x08, 0x00, 0x01]);
        a.extend_from_slice(&(from.port() ^ 0x2112).to_be_bytes());
        a.extend(PUBLIC.iter().zip(cookie).map(|(b, m)| b ^ m));
        self.out.push((from, Bytes::from(a)));
    }
    fn handle_timeout(&mut self, _now: Instant) {}
    fn poll_transmit(&mut self) -> Option<(SocketAddr, Bytes)> {
        (!self.out.is_empty()).then(|| self.out.remove(0))
    }
    fn poll_timeout(&self) -> Option<Instant> {
        None
    }
}

struct World {
    sim: Sim,
    proxy: RegistrarNode,
    stun: StunNode,
    alice: MediaNode,
    bob: MediaNode,
    label: String,
}

impl World {
    fn new(seed: u64, loss: f32) -> Self {
        Self::with(seed, loss, MediaConfig::default())
    }

    fn with(seed: u64, loss: f32, media: MediaConfig) -> Self {
        Self::pair(seed, loss, media.clone(), media)
    }

    /// Alice and bob with media configurations of their own.
    fn pair(seed: u64, loss: f32, alice: MediaConfig, bob: MediaConfig) -> Self {
        let link = LinkConfig {
            latency: Duration::from_millis(20),
            jitter: Duration::from_millis(2),
            loss,
            duplicate: 0.0,
        };
        Self::over(seed, link, alice, bob)
    }

    fn over(seed: u64, link: LinkConfig, alice: MediaConfig, bob: MediaConfig) -> Self {
        let loss = link.loss;
        let sim = Sim::new(origin(), Network::new(seed, link));
        let mut rc = RegistrarConfig::new("example.com");
        rc.users = vec![
            ("alice".into(), "alice-pw".into()),
            ("bob".into(), "bob-pw".into()),
        ];
        let proxy = RegistrarNode::new(REGISTRAR.parse().unwrap(), Registrar::new(rc, seed));
        let now = sim.now();
        Self {
            sim,
            proxy,
            stun: StunNode {
                addr: "127.0.0.9:3478".parse().unwrap(),
                out: Vec::new(),
            },
            alice: MediaNode::with("alice", 5071, now, seed ^ 1, alice),
            bob: MediaNode::with("bob", 5072, now, seed ^ 2, bob),
            label: format!("seed {seed} loss {loss}"),
        }
    }

    /// Steps until `until` holds or `limit` more virtual time has passed; whether it held.
    fn run(&mut self, limit: Duration, until: impl Fn(&MediaNode, &MediaNode) -> bool) -> bool {
        let deadline = self.sim.now() + limit;
        while self.sim.now() < deadline {
            if until(&self.alice, &self.bob) {
                return true;
            }
            let mut nodes: [&mut dyn Node; 4] = [
                &mut self.proxy,
                &mut self.stun,
                &mut self.alice,
                &mut self.bob,
            ];
            if !self.sim.step(&mut nodes) {
                break;
            }
        }
        until(&self.alice, &self.bob)
    }

    fn wait(&mut self, secs: u64, what: &str, until: impl Fn(&MediaNode, &MediaNode) -> bool) {
        assert!(
            self.run(Duration::from_secs(secs), until),
            "{}: {what} did not happen within {secs} s",
            self.label
        );
    }

    fn pass(&mut self, d: Duration) {
        self.run(d, |_, _| false);
    }

    /// Both register; alice calls bob, who answers: the two ends of the call.
    fn answered_call(&mut self) -> (CallHandle, CallHandle) {
        let (call, theirs) = self.ringing_call();
        let now = self.sim.now();
        self.bob.phone.answer(now, theirs).unwrap();
        (call, theirs)
    }

    /// Both register; alice calls bob, whose phone rings: the two ends of the call.
    fn ringing_call(&mut self) -> (CallHandle, CallHandle) {
        let now = self.sim.now();
        self.alice.phone.ua_mut().register(now, 3600).unwrap();
        self.bob.phone.ua_mut().register(now, 3600).unwrap();
        self.alice.drain();
        self.bob.drain();
        self.wait(30, "registration", |a, b| {
            a.phone.ua().is_registered() && b.phone.ua().is_registered()
        });
        let now = self.sim.now();
        let call = self
            .alice
            .phone
            .call(now, "bob", CallOptions::default())
            .unwrap();
        self.alice.drain();
        let incoming = |b: &MediaNode| {
            b.events.iter().find_map(|e| match e {
                Event::IncomingCall { call, .. } => Some(*call),
                _ => None,
            })
        };
        self.wait(30, "the incoming call", |_, b| incoming(b).is_some());
        (call, incoming(&self.bob).unwrap())
    }
}

fn call_with_media(seed: u64, loss: f32) {
    call_with(World::new(seed, loss));
}

/// Alice offers with `profile`; bob, set for WebRTC, answers in kind.
fn call_with_profile(seed: u64, loss: f32, profile: MediaProfile) {
    let alice = MediaConfig {
        offer_profile: profile,
        ..MediaConfig::default()
    };
    let w = call_with(World::pair(seed, loss, alice, MediaConfig::default()));
    let proto = match profile {
        MediaProfile::Plain => "RTP/AVP",
        MediaProfile::Sdes => "RTP/SAVP",
        _ => "UDP/TLS/RTP/SAVPF",
    };
    // The offer bob received and the answer alice received are both of the profile.
    for (who, node) in [("bob", &w.bob), ("alice", &w.alice)] {
        let sdp = node
            .sip_in
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .find(|m| m.contains("m=audio"))
            .unwrap();
        assert!(
            sdp.contains(&format!("m=audio {} {proto} ", node_port(&w, who))),
            "{who} got: {sdp}"
        );
        assert_eq!(sdp.contains("a=crypto:"), profile == MediaProfile::Sdes);
        assert!(!sdp.contains("a=fingerprint"), "{sdp}");
    }
    // Our RTCP reported both ways: loss each way, and a round-trip time near the link's
    // 2 × 20 ms.
    for (who, node) in [("alice", &w.alice), ("bob", &w.bob)] {
        let s = node
            .media_events
            .iter()
            .find_map(|e| match e {
                MediaEvent::Ended { stats, .. } => Some(*stats),
                _ => None,
            })
            .unwrap();
        assert!(s.loss.is_some() && s.remote_loss.is_some(), "{who}: {s:?}");
        let rtt = s.rtt.unwrap_or_else(|| panic!("{who}: {s:?}"));
        assert!(
            rtt >= Duration::from_millis(35) && rtt < Duration::from_millis(200),
            "{who}: {s:?}"
        );
    }
}

/// The media port of the other party, which `who` received a description from.
fn node_port(w: &World, who: &str) -> u16 {
    match who {
        "bob" => w.alice.addr.port(),
        _ => w.bob.addr.port(),
    }
}

fn call_with(mut w: World) -> World {
    let (call, theirs) = w.answered_call();
    w.alice
        .phone
        .set_source(call, Box::new(Tone::new(1_000.0)))
        .unwrap();
    w.alice
        .phone
        .set_sink(call, Box::new(w.alice.heard.clone()))
        .unwrap();
    w.alice.drain();
    w.bob
        .phone
        .set_source(theirs, Box::new(Tone::new(600.0)))
        .unwrap();
    w.bob
        .phone
        .set_sink(theirs, Box::new(w.bob.heard.clone()))
        .unwrap();
    w.bob.drain();
    let connected = |n: &MediaNode| {
        n.media_events
            .iter()
            .any(|e| matches!(e, MediaEvent::Connected { .. }))
    };
    w.wait(30, "ICE and DTLS", |a, b| connected(a) && connected(b));

    // Audio both ways: each hears the other's tone.
    w.pass(Duration::from_secs(2));
    for (who, node, expected) in [("alice", &w.alice, 600.0), ("bob", &w.bob, 1_000.0)] {
        let (hz, level) = node.hears();
        assert!(
            hz.is_some_and(|f| (f - expected).abs() < 10.0) && level > 1_000.0,
            "{}: {who} heard {hz:?} Hz at {level}",
            w.label
        );
    }

    // alice holds bob: bob stops sending to alice, alice keeps sending (sendonly).
    let now = w.sim.now();
    w.alice.phone.ua_mut().hold(now, call).unwrap();
    w.alice.drain();
    w.wait(30, "hold", |a, _| {
        a.events
            .iter()
            .any(|e| matches!(e, Event::HoldChanged { local: true, .. }))
    });
    w.pass(Duration::from_millis(300));
    let (a0, b0) = (w.alice.received(call), w.bob.received(theirs));
    w.pass(Duration::from_secs(2));
    let (a1, b1) = (w.alice.received(call), w.bob.received(theirs));
    assert_eq!(a1, a0, "{}: alice received while holding", w.label);
    // 50 packets a second are sent; loss and str0m's reordering buffer make it bursty.
    assert!(
        b1 - b0 >= 50,
        "{}: bob got {} packets while held",
        w.label,
        b1 - b0
    );

    // Unhold: both directions again.
    let now = w.sim.now();
    w.alice.phone.ua_mut().unhold(now, call).unwrap();
    w.alice.drain();
    w.wait(30, "unhold", |a, _| {
        a.events
            .iter()
            .filter(|e| matches!(e, Event::HoldChanged { local: false, .. }))
            .count()
            >= 1
    });
    w.pass(Duration::from_millis(300));
    let a0 = w.alice.received(call);
    w.pass(Duration::from_secs(2));
    assert!(
        w.alice.received(call) - a0 >= 50,
        "{}: no audio after unhold: alice {:?} {:?}, bob {:?} {:?} sent {:?}",
        w.label,
        w.alice.phone.ua().hold_state(call),
        w.alice.phone.ua().sdp_handler(call).map(|s| s.direction()),
        w.bob.phone.ua().hold_state(theirs),
        w.bob
            .phone
            .ua()
            .sdp_handler(theirs)
            .map(|s| (s.direction(), s.is_connected())),
        w.bob.phone.media_stats(theirs),
    );

    // RFC 4733 DTMF, which both phones negotiated.
    let now = w.sim.now();
    w.alice.phone.send_dtmf(now, call, "159#").unwrap();
    w.alice.drain();
    w.wait(30, "dtmf", |_, b| b.dtmf().len() >= 4);
    assert_eq!(w.bob.dtmf(), "159#", "{}", w.label);
    assert_eq!(w.bob.phone.media_stats(theirs).unwrap().dtmf_received, 4);

    // Hang-up: both sides end and report their totals.
    let now = w.sim.now();
    w.bob.phone.ua_mut().hangup(now, theirs).unwrap();
    w.bob.drain();
    let ended = |n: &MediaNode| {
        n.media_events.iter().find_map(|e| match e {
            MediaEvent::Ended { stats, .. } => Some(*stats),
            _ => None,
        })
    };
    w.wait(30, "hang-up", |a, b| {
        ended(a).is_some() && ended(b).is_some()
    });
    let (sa, sb) = (ended(&w.alice).unwrap(), ended(&w.bob).unwrap());
    assert!(
        sa.packets_sent > 200 && sb.packets_sent > 150,
        "{}: {sa:?} {sb:?}",
        w.label
    );
    assert!(sb.packets_received > 0 && sa.packets_received > 0);
    assert!(
        w.alice.phone.ua().calls().next().is_none() && w.bob.phone.ua().calls().next().is_none()
    );
    // Media that connected never counts as failed, however long the call.
    for n in [&w.alice, &w.bob] {
        assert!(
            !n.media_events
                .iter()
                .any(|e| matches!(e, MediaEvent::Failed { .. })),
            "{}",
            w.label
        );
    }
    w
}

#[test]
fn media_that_never_connects_is_reported_and_ends_the_call_when_asked() {
    let media = MediaConfig {
        connect_timeout: Duration::from_secs(3),
        end_call_on_failure: true,
        ..MediaConfig::default()
    };
    let mut w = World::with(11, 0.0, media);
    // Signalling gets through; bob's media does not (a firewall, a wrong address).
    w.bob.deaf = true;
    let (call, theirs) = w.answered_call();
    let failed = |n: &MediaNode| {
        n.media_events.iter().find_map(|e| match e {
            MediaEvent::Failed { call, failure } => Some((*call, *failure)),
            _ => None,
        })
    };
    let ended = |n: &MediaNode| {
        n.events.iter().find_map(|e| match e {
            Event::CallEnded { end, .. } => Some((end.cause, end.originator)),
            _ => None,
        })
    };
    w.wait(30, "the failure", |a, b| {
        ended(a).is_some() && ended(b).is_some()
    });
    // Bob's clock started at his answer, alice's at the 200 a moment later: bob gives up,
    // and alice either hears his BYE or gives up herself first.
    let not_connected = MediaFailure::NotConnected {
        after: Duration::from_secs(3),
    };
    assert_eq!(failed(&w.bob), Some((theirs, not_connected)));
    assert_eq!(
        ended(&w.bob),
        Some((EndCause::MediaFailed, Originator::Local))
    );
    match ended(&w.alice) {
        Some((EndCause::Bye, Originator::Remote)) => assert!(failed(&w.alice).is_none()),
        Some((EndCause::MediaFailed, Originator::Local)) => {
            assert_eq!(failed(&w.alice), Some((call, not_connected)))
        }
        other => panic!("alice: {other:?}"),
    }
    assert!(
        w.alice.phone.ua().calls().next().is_none() && w.bob.phone.ua().calls().next().is_none()
    );
}

/// Bob sends early media in a reliable 183 (PRACKed by alice): alice hears bob's tone
/// before the call is answered, then bob accepts and the same media goes on.
fn early_media(seed: u64, loss: f32) {
    let mut w = World::new(seed, loss);
    let (call, theirs) = w.ringing_call();
    w.alice
        .phone
        .set_sink(call, Box::new(w.alice.heard.clone()))
        .unwrap();
    w.alice.drain();
    let now = w.sim.now();
    w.bob.phone.progress(now, theirs, true).unwrap();
    w.bob
        .phone
        .set_source(theirs, Box::new(Tone::new(600.0)))
        .unwrap();
    w.bob.drain();
    let early = |a: &MediaNode| {
        a.events.iter().any(|e| {
            matches!(
                e,
                Event::CallProgress {
                    status: 183,
                    early_media: true,
                    ..
                }
            )
        })
    };
    let connected = |n: &MediaNode| {
        n.media_events
            .iter()
            .any(|e| matches!(e, MediaEvent::Connected { .. }))
    };
    w.wait(30, "early media", |a, _| early(a) && connected(a));
    w.pass(Duration::from_secs(2));
    let answered = |n: &MediaNode| {
        n.events
            .iter()
            .any(|e| matches!(e, Event::CallAnswered { .. }))
    };
    assert!(!answered(&w.alice), "{}: not answered yet", w.label);
    let (hz, rms) = w.alice.hears();
    assert_eq!(
        hz,
        Some(600.0),
        "{}: alice hears bob's early media (rms {rms})",
        w.label
    );
    assert!(w.alice.received(call) > 50, "{}", w.label);
    let now = w.sim.now();
    w.bob.phone.accept(now, theirs).unwrap();
    w.bob.drain();
    w.wait(30, "the answer", |a, b| answered(a) && answered(b));
    w.pass(Duration::from_secs(1));
    assert_eq!(
        w.alice.hears().0,
        Some(600.0),
        "{}: the media goes on",
        w.label
    );
    let pracks = w
        .bob
        .sip_in
        .iter()
        .filter(|m| m.starts_with(b"PRACK "))
        .count();
    assert!(pracks > 0, "{}: the 183 was PRACKed", w.label);
}

#[test]
fn early_media_in_a_reliable_183_is_heard_before_the_answer() {
    early_media(1, 0.0);
    early_media(2, 0.05);
}

#[test]
fn media_flows_holds_and_carries_dtmf_without_loss() {
    call_with_media(1, 0.0);
}

/// Not with the `openssl` feature: OpenSSL times its DTLS retransmissions by the system
/// clock, which does not move while the simulator's virtual seconds pass, so a lost flight
/// is never sent again here (it is, in real time).
#[test]
#[cfg(not(feature = "openssl"))]
fn media_flows_holds_and_carries_dtmf_at_5_percent_loss() {
    for seed in 1..=3 {
        call_with_media(seed, 0.05);
    }
}

/// Collects received video frames.
#[derive(Clone, Default)]
struct Frames(Arc<Mutex<Vec<VideoFrame>>>);

impl VideoSink for Frames {
    fn write(&mut self, frame: &VideoFrame) {
        self.0.lock().unwrap().push(frame.clone());
    }
}

#[test]
fn vp8_frames_cross_when_both_phones_take_video() {
    let media = MediaConfig {
        video: true,
        ..MediaConfig::default()
    };
    let mut w = World::with(7, 0.0, media);
    let (call, theirs) = w.answered_call();
    let seen = Frames::default();
    w.bob
        .phone
        .set_video_sink(theirs, Box::new(seen.clone()))
        .unwrap();
    w.bob.drain();
    w.wait(30, "ICE and DTLS", |a, _| a.phone.is_media_connected(call));
    // Ten frames at 30 fps: a VP8 key frame's first bytes, then filler.
    for i in 0..10u64 {
        let mut data = vec![0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00];
        data.extend((0..1_500).map(|k| (k as u64 * 7 + i) as u8));
        let frame = VideoFrame {
            codec: VideoCodec::Vp8,
            rtp_time: i * 3_000,
            data,
        };
        let now = w.sim.now();
        assert!(
            w.alice.phone.send_video(now, call, &frame).unwrap(),
            "frame {i} not sent"
        );
        w.alice.drain();
        w.pass(Duration::from_millis(33));
    }
    w.pass(Duration::from_millis(500));
    let got = seen.0.lock().unwrap();
    assert!(got.len() >= 9, "bob got {} of 10 frames", got.len());
    assert!(
        got.iter()
            .all(|f| f.codec == VideoCodec::Vp8 && f.data.len() == 1_510)
    );
    assert_eq!(
        w.alice.phone.media_stats(call).unwrap().video_frames_sent,
        10
    );
}

#[test]
fn a_stun_server_adds_a_server_reflexive_candidate_which_becomes_the_default() {
    let mut w = World::new(5, 0.0);
    let now = w.sim.now();
    let stun = w.stun.addr;
    w.alice.phone.set_stun_servers(now, &[stun], 99);
    w.alice.drain();
    w.wait(10, "the STUN answer", |a, _| !a.phone.is_gathering());
    w.answered_call();
    let invite = w
        .bob
        .sip_in
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .find(|m| m.starts_with("INVITE "))
        .unwrap();
    // alice's media socket is 127.0.0.1:5071; the "NAT" maps it to 203.0.113.5:5071.
    // str0m writes raddr 0.0.0.0: it does not disclose the base.
    assert!(invite.contains(" 203.0.113.5 5071 typ srflx"), "{invite}");
    assert!(invite.contains("m=audio 5071 "), "{invite}");
    assert!(invite.contains("c=IN IP4 203.0.113.5\r\n"), "{invite}");
    assert!(invite.contains(" 127.0.0.1 5071 typ host"), "{invite}");
    // The peer cannot reach 203.0.113.5 here; ICE pairs the host candidates and media flows.
    let connected = |n: &MediaNode| {
        n.media_events
            .iter()
            .any(|e| matches!(e, MediaEvent::Connected { .. }))
    };
    w.wait(30, "ICE and DTLS", |a, b| connected(a) && connected(b));
}

#[test]
fn plain_rtp_flows_holds_and_carries_dtmf_at_5_percent_loss() {
    call_with_profile(21, 0.05, MediaProfile::Plain);
}

#[test]
fn sdes_srtp_flows_holds_and_carries_dtmf_at_5_percent_loss() {
    call_with_profile(22, 0.05, MediaProfile::Sdes);
}

#[test]
fn plain_rtp_without_loss() {
    call_with_profile(23, 0.0, MediaProfile::Plain);
}

/// §3 of issue 13: at 5 % loss and 40 ms of jitter the recording has no gaps (its length is
/// the time the media ran), its tone is right, and the stats count what was concealed.
fn jitter_and_loss_leave_no_gaps(profile: MediaProfile) {
    let link = LinkConfig {
        latency: Duration::from_millis(30),
        jitter: Duration::from_millis(40),
        loss: 0.05,
        duplicate: 0.0,
    };
    let media = MediaConfig {
        offer_profile: profile,
        audio_codecs: vec![sansip_media::audio::AudioCodec::Pcmu],
        ..MediaConfig::default()
    };
    let mut w = World::over(31, link, media.clone(), media);
    w.label = format!("{profile:?} at 5 % loss, 40 ms jitter");
    let (call, theirs) = w.answered_call();
    w.alice
        .phone
        .set_sink(call, Box::new(w.alice.heard.clone()))
        .unwrap();
    w.alice.drain();
    w.bob
        .phone
        .set_source(theirs, Box::new(Tone::new(700.0)))
        .unwrap();
    w.bob.drain();
    w.wait(30, "the first audio", |a, _| {
        !a.heard.lock().unwrap().samples().1.is_empty()
    });
    let start = w.sim.now();
    w.pass(Duration::from_secs(8));
    let ran = (w.sim.now() - start).as_secs_f64();
    let (rate, samples) = w.alice.heard.lock().unwrap().samples();
    let recorded = samples.len() as f64 / f64::from(rate);
    assert!(
        (recorded - ran).abs() < 0.1,
        "{}: recorded {recorded:.2} s of {ran:.2} s",
        w.label
    );
    // Every second of it carries the tone: no gap went silent.
    for (i, second) in samples.chunks(rate as usize).enumerate() {
        if second.len() < rate as usize {
            break;
        }
        let hz = analysis::dominant_frequency(second, rate);
        assert!(
            hz.is_some_and(|f| (f - 700.0).abs() < 10.0) && analysis::rms(second) > 1_000.0,
            "{}: second {i}: {hz:?} Hz",
            w.label
        );
    }
    let stats = w.alice.phone.media_stats(call).unwrap();
    // 5 % of 400 frames lost, plus the frames the buffer stretched while it learned the
    // jitter (str0m's own reordering makes its path burstier).
    assert!(
        stats.concealed > 0 && stats.concealed < 80,
        "{}: {stats:?}",
        w.label
    );
    println!("{}: {stats:?}", w.label);
}

#[test]
fn the_jitter_buffer_fills_gaps_on_the_webrtc_path() {
    jitter_and_loss_leave_no_gaps(MediaProfile::WebRtc);
}

#[test]
fn the_jitter_buffer_fills_gaps_on_the_plain_rtp_path() {
    jitter_and_loss_leave_no_gaps(MediaProfile::Plain);
}

/// G.722 alone, on the WebRTC path (str0m clocks it) and on ours (RFC 3551's 8 kHz clock
/// for a 16 kHz codec): tones, hold and DTMF as with any codec.
#[test]
fn g722_calls_on_both_paths() {
    for profile in [MediaProfile::WebRtc, MediaProfile::Plain] {
        let media = MediaConfig {
            audio_codecs: vec![sansip_media::audio::AudioCodec::G722],
            offer_profile: profile,
            ..MediaConfig::default()
        };
        let w = call_with(World::pair(24, 0.0, media.clone(), media));
        let sdp = w
            .bob
            .sip_in
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .find(|m| m.contains("m=audio"))
            .unwrap();
        assert!(sdp.contains("a=rtpmap:9 G722/8000"), "{profile:?}: {sdp}");
        let stats = w
            .alice
            .media_events
            .iter()
            .find_map(|e| match e {
                MediaEvent::Ended { stats, .. } => Some(*stats),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            stats.codec,
            Some(sansip_media::audio::AudioCodec::G722),
            "{profile:?}"
        );
    }
}

/// A VP8 frame: a key frame (frame tag bit 0 clear) or an inter frame, and `n` to tell
/// them apart.
fn vp8(key: bool, n: u8, rtp_time: u64) -> VideoFrame {
    let mut data = vec![if key { 0x10 } else { 0x11 }, n, 0x00, 0x9d, 0x01, 0x2a];
    data.extend(std::iter::repeat_n(n, 600));
    VideoFrame {
        codec: VideoCodec::Vp8,
        rtp_time,
        data,
    }
}

#[test]
fn a_recording_starts_at_a_keyframe_and_a_keyframe_request_is_answered_with_the_last_one() {
    let media = MediaConfig {
        video: true,
        ..MediaConfig::default()
    };
    let mut w = World::with(8, 0.0, media);
    let (call, theirs) = w.answered_call();
    let first = Frames::default();
    w.bob
        .phone
        .set_video_sink(theirs, Box::new(first.clone()))
        .unwrap();
    w.bob.drain();
    w.wait(30, "ICE and DTLS", |a, b| {
        a.phone.is_media_connected(call) && b.phone.is_media_connected(theirs)
    });
    let mut t = 0;
    let mut send = |w: &mut World, key: bool, n: u8| {
        let now = w.sim.now();
        assert!(
            w.alice
                .phone
                .send_video(now, call, &vp8(key, n, t))
                .unwrap()
        );
        t += 3_000;
        w.alice.drain();
        w.pass(Duration::from_millis(33));
    };
    // Inter frames first: bob drops them and asks for a keyframe, which alice has not got.
    for n in 0..3 {
        send(&mut w, false, n);
    }
    w.pass(Duration::from_millis(300));
    assert!(first.0.lock().unwrap().is_empty());
    let asked = |n: &MediaNode| {
        n.media_events
            .iter()
            .filter(|e| matches!(e, MediaEvent::KeyframeRequested { .. }))
            .count()
    };
    assert!(asked(&w.alice) >= 1, "no keyframe request reached alice");
    // Then a keyframe and inter frames: the recording starts at the keyframe.
    send(&mut w, true, 10);
    for n in 11..14 {
        send(&mut w, false, n);
    }
    w.pass(Duration::from_millis(300));
    let got: Vec<u8> = first.0.lock().unwrap().iter().map(|f| f.data[1]).collect();
    assert_eq!(got, [10, 11, 12, 13]);
    // A new recording asks again, and alice answers with her last keyframe.
    let before = asked(&w.alice);
    let second = Frames::default();
    w.bob
        .phone
        .set_video_sink(theirs, Box::new(second.clone()))
        .unwrap();
    w.bob.drain();
    send(&mut w, false, 20);
    w.pass(Duration::from_millis(300));
    send(&mut w, false, 21);
    w.pass(Duration::from_millis(300));
    assert!(asked(&w.alice) > before);
    let got: Vec<(bool, u8)> = second
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|f| (f.is_keyframe(), f.data[1]))
        .collect();
    assert_eq!(got.first(), Some(&(true, 10)), "{got:?}");
    assert_eq!(got.last(), Some(&(false, 21)), "{got:?}");
    let stats = w.alice.phone.media_stats(call).unwrap();
    assert!(stats.video_keyframe_requests >= 2, "{stats:?}");
}

/// The `a=ice-ufrag` of the description in the first SIP message `node` received that
/// starts with `start`.
fn ufrag_in(node: &MediaNode, start: &str) -> String {
    let m = node
        .sip_in
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .find(|m| m.starts_with(start))
        .unwrap_or_else(|| panic!("no {start}"));
    m.lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .unwrap()
        .to_string()
}

#[test]
fn video_added_mid_call_then_an_ice_restart_by_update_and_the_call_goes_on() {
    let mut w = World::with(3, 0.0, MediaConfig::default());
    let (call, theirs) = w.answered_call();
    let now = w.sim.now();
    w.alice
        .phone
        .set_source(call, Box::new(Tone::new(1_000.0)))
        .unwrap();
    w.alice.drain();
    w.wait(30, "ICE and DTLS", |a, b| {
        a.phone.is_media_connected(call) && b.phone.is_media_connected(theirs)
    });
    assert!(!w.alice.phone.ua().sdp_handler(call).unwrap().has_video());
    // Both applications turn their cameras on; alice offers the video by re-INVITE.
    w.bob.phone.set_video(theirs, true).unwrap();
    w.alice.phone.set_video(call, true).unwrap();
    w.alice
        .phone
        .renegotiate(now, call, OfferMethod::Invite)
        .unwrap();
    w.alice.drain();
    let renegotiated = |n: &MediaNode, by: Originator| {
        n.events
            .iter()
            .filter(|e| matches!(e, Event::Renegotiated { originator, .. } if *originator == by))
            .count()
    };
    w.wait(30, "video added", |a, b| {
        renegotiated(a, Originator::Local) == 1 && renegotiated(b, Originator::Remote) == 1
    });
    assert!(w.alice.phone.ua().sdp_handler(call).unwrap().has_video());
    assert!(w.bob.phone.ua().sdp_handler(theirs).unwrap().has_video());
    let seen = Frames::default();
    w.bob
        .phone
        .set_video_sink(theirs, Box::new(seen.clone()))
        .unwrap();
    w.pass(Duration::from_millis(500));
    for i in 0..10u64 {
        let now = w.sim.now();
        w.alice
            .phone
            .send_video(now, call, &vp8(i == 0, i as u8, i * 3_000))
            .unwrap();
        w.alice.drain();
        w.pass(Duration::from_millis(33));
    }
    w.pass(Duration::from_millis(500));
    let frames = seen.0.lock().unwrap().len();
    assert!(frames >= 9, "bob got {frames} of 10 frames");

    // An ICE restart by UPDATE: new credentials, and the audio keeps flowing.
    let now = w.sim.now();
    w.alice.phone.restart_ice(call).unwrap();
    w.alice
        .phone
        .renegotiate(now, call, OfferMethod::Update)
        .unwrap();
    w.alice.drain();
    w.wait(30, "ICE restarted", |a, _| {
        renegotiated(a, Originator::Local) == 2
    });
    assert_ne!(ufrag_in(&w.bob, "INVITE "), ufrag_in(&w.bob, "UPDATE "));
    w.pass(Duration::from_secs(1));
    let before = w.bob.received(theirs);
    w.pass(Duration::from_secs(2));
    let after = w.bob.received(theirs);
    assert!(after - before >= 90, "bob got {} packets", after - before);
    assert!(w.alice.phone.is_media_connected(call));
    assert!(w.alice.phone.ua().sdp_handler(call).unwrap().has_video());
}

#[test]
fn the_caller_hears_a_local_ringback_tone_until_the_answer() {
    use sansip_media::audio::Ringback;
    let alice = MediaConfig {
        ringback: Some(Ringback::Europe),
        ..MediaConfig::default()
    };
    let mut w = World::pair(5, 0.0, alice, MediaConfig::default());
    let (call, theirs) = w.ringing_call();
    w.alice
        .phone
        .set_sink(call, Box::new(w.alice.heard.clone()))
        .unwrap();
    w.alice.drain();
    w.wait(10, "ringing", |a, _| {
        a.events
            .iter()
            .any(|e| matches!(e, Event::CallProgress { status: 180, .. }))
    });
    w.pass(Duration::from_millis(1_500));
    let (hz, level) = w.alice.hears();
    assert!(
        hz.is_some_and(|f| (f - 425.0).abs() < 10.0) && level > 1_000.0,
        "alice heard {hz:?} Hz at {level} while bob's phone rang"
    );
    assert!(
        w.alice
            .phone
            .ua()
            .sdp_handler(call)
            .unwrap()
            .is_ringback_playing()
    );
    // Bob answers: the tone stops and bob's voice takes its place.
    let now = w.sim.now();
    w.bob.phone.answer(now, theirs).unwrap();
    w.bob
        .phone
        .set_source(theirs, Box::new(Tone::new(600.0)))
        .unwrap();
    w.bob.drain();
    w.wait(30, "media", |a, _| a.phone.is_media_connected(call));
    assert!(
        !w.alice
            .phone
            .ua()
            .sdp_handler(call)
            .unwrap()
            .is_ringback_playing()
    );
    w.pass(Duration::from_secs(2));
    let (hz, level) = w.alice.hears();
    assert!(
        hz.is_some_and(|f| (f - 600.0).abs() < 10.0) && level > 1_000.0,
        "alice heard {hz:?} Hz at {level} after the answer"
    );
}

/// The amplitude of `hz` in the last `secs` seconds `node` heard.
fn tone_in_tail(node: &MediaNode, hz: f64, secs: f64) -> f64 {
    let (rate, samples) = node.heard.lock().unwrap().samples();
    let n = (secs * f64::from(rate)) as usize;
    let tail = &samples[samples.len().saturating_sub(n)..];
    2.0 * analysis::goertzel(tail, rate, hz).sqrt()
}

fn group_events(node: &MediaNode, kind: &str) -> usize {
    node.events.iter().filter(|e| e.name() == kind).count()
}

/// Issue 17 §3 in the simulator: four media phones join group "g" through the embedded
/// registrar and a group server (a user agent with `serve_groups`, registered as the
/// focus). Two join, then two more at the same instant; each places a call to every
/// member listed before it, so the six pairs have one call each and nobody calls twice.
/// Each phone's mix holds the three others' tones and not its own; one leaves, the three
/// others are told and keep hearing each other, and no longer hear it.
#[test]
fn four_phones_in_a_group_hear_each_other_and_three_go_on_when_one_leaves() {
    let seed = 17;
    let link = LinkConfig {
        latency: Duration::from_millis(15),
        jitter: Duration::from_millis(2),
        loss: 0.0,
        duplicate: 0.0,
    };
    let mut sim = Sim::new(origin(), Network::new(seed, link));
    let names = ["a", "b", "c", "d"];
    let tones = [500.0, 800.0, 1300.0, 2000.0];
    let mut rc = RegistrarConfig::new("example.com");
    rc.users = names
        .iter()
        .chain(&["focus"])
        .map(|n| (n.to_string(), format!("{n}-pw")))
        .collect();
    rc.conference_user = Some("focus".into());
    let mut proxy = RegistrarNode::new(REGISTRAR.parse().unwrap(), Registrar::new(rc, seed));
    let now = sim.now();
    let mut server = MediaNode::with_ua("focus", 5080, now, seed, MediaConfig::default(), |c| {
        c.serve_groups = true
    });
    let mut phones: Vec<MediaNode> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            MediaNode::with(
                n,
                5081 + i as u16,
                now,
                seed + i as u64,
                MediaConfig::default(),
            )
        })
        .collect();

    fn run(
        sim: &mut Sim,
        proxy: &mut RegistrarNode,
        server: &mut MediaNode,
        phones: &mut [MediaNode],
        limit: Duration,
        until: impl Fn(&[MediaNode]) -> bool,
    ) -> bool {
        let deadline = sim.now() + limit;
        while sim.now() < deadline {
            if until(phones) {
                return true;
            }
            let [a, b, c, d] = phones else { unreachable!() };
            let mut nodes: [&mut dyn Node; 6] = [proxy, server, a, b, c, d];
            if !sim.step(&mut nodes) {
                break;
            }
        }
        until(phones)
    }

    // Steps the six nodes until `until` holds or `limit` has passed.
    macro_rules! run {
        ($limit:expr, $until:expr $(,)?) => {
            run(
                &mut sim,
                &mut proxy,
                &mut server,
                &mut phones,
                $limit,
                $until,
            )
        };
    }
    server.phone.ua_mut().register(now, 3600).unwrap();
    server.drain();
    for p in &mut phones {
        p.phone.ua_mut().register(now, 3600).unwrap();
        p.drain();
    }
    let registered = run!(Duration::from_secs(10), |ps| ps
        .iter()
        .all(|p| p.phone.ua().is_registered()),);
    assert!(registered && server.phone.ua().is_registered());

    let join = |p: &mut MediaNode, now: Instant, hz: f64| {
        let heard = p.heard.clone();
        p.phone
            .call_group(now, "g", Box::new(Tone::new(hz)), Box::new(heard))
            .unwrap();
        p.drain();
    };
    for i in 0..2 {
        let now = sim.now();
        join(&mut phones[i], now, tones[i]);
        let ready = run!(Duration::from_secs(10), |ps| group_events(
            &ps[i],
            "group_local_media_ready"
        ) == 1,);
        assert!(ready, "{} is listed", names[i]);
    }
    let now = sim.now();
    join(&mut phones[2], now, tones[2]);
    join(&mut phones[3], now, tones[3]);
    let meshed = run!(Duration::from_secs(20), |ps| {
        ps.iter()
            .all(|p| group_events(p, "group_member_added") == 3)
    },);
    let added: Vec<usize> = phones
        .iter()
        .map(|p| group_events(p, "group_member_added"))
        .collect();
    assert!(meshed, "every phone hears three members: {added:?}");
    // Each pair has one call: the phones placed 0 + 1 + 2 + 3 calls between them.
    let placed: usize = phones
        .iter()
        .map(|p| {
            p.events
                .iter()
                .filter(|e| matches!(e, Event::CallAnswered { .. }))
                .count()
        })
        .sum();
    assert_eq!(placed, 12, "six legs, each answered at both ends");
    for (i, p) in phones.iter().enumerate() {
        let members = p.phone.group_members("g");
        assert_eq!(members.len(), 3, "{}: {members:?}", names[i]);
        assert!(
            !p.events
                .iter()
                .any(|e| matches!(e, Event::IncomingCall { .. })),
            "{}: the group's legs are the group's, not incoming calls for the user",
            names[i]
        );
    }

    // Each stream is also there on its own: a's leg with b.
    let b_alone = Arc::new(Mutex::new(Recorder::default()));
    let (_, leg) = phones[0]
        .phone
        .group_members("g")
        .into_iter()
        .find(|(m, _)| m == "sip:b@example.com")
        .unwrap();
    phones[0]
        .phone
        .set_group_member_sink(leg, Box::new(b_alone.clone()))
        .unwrap();
    run!(Duration::from_secs(3), |_| false,);
    let (rate, alone) = b_alone.lock().unwrap().samples();
    let alone = &alone[alone.len() - rate as usize..];
    let level = |hz| 2.0 * analysis::goertzel(alone, rate, hz).sqrt();
    assert!(level(800.0) > 5_000.0, "b on its own: {:.0}", level(800.0));
    for hz in [500.0, 1300.0, 2000.0] {
        assert!(level(hz) < 100.0, "only b on b's stream, not {hz} Hz");
    }
    for (i, p) in phones.iter().enumerate() {
        for (j, hz) in tones.iter().enumerate() {
            let level = tone_in_tail(p, *hz, 2.0);
            if i == j {
                assert!(level < 100.0, "{} hears itself at {level:.0}", names[i]);
            } else {
                assert!(
                    level > 5_000.0,
                    "{} hears {} at only {level:.0}",
                    names[i],
                    names[j]
                );
            }
        }
    }

    // d leaves: its three legs end, the three others are told.
    let now = sim.now();
    phones[3].phone.leave_group(now, "g").unwrap();
    phones[3].drain();
    let left = run!(Duration::from_secs(10), |ps| {
        ps[..3]
            .iter()
            .all(|p| group_events(p, "group_member_removed") == 1)
            && group_events(&ps[3], "group_left") == 1
    },);
    assert!(left, "d's leaving reached everyone");
    run!(Duration::from_secs(2), |_| false,);
    for (i, p) in phones[..3].iter().enumerate() {
        assert_eq!(p.phone.group_members("g").len(), 2);
        for (j, hz) in tones.iter().enumerate() {
            let level = tone_in_tail(p, *hz, 1.5);
            match j {
                3 => assert!(level < 100.0, "{} still hears d at {level:.0}", names[i]),
                j if j == i => assert!(level < 100.0, "{} hears itself", names[i]),
                _ => assert!(
                    level > 5_000.0,
                    "{} hears {} at only {level:.0}",
                    names[i],
                    names[j]
                ),
            }
        }
    }
}
