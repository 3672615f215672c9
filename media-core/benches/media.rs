//! The media path against bare str0m (issue 6, part 5), in one process, no sockets.
//!
//! Two calls' worth of media is pushed 20 ms at a time: in the *bare* setting two str0m
//! `Rtc`s negotiated directly exchange PCMU packets (write, packetize, SRTP, deliver,
//! unprotect, depacketize); in the *phone* setting two sansip media `MediaAgent`s, which
//! negotiated the same call over SIP, do the same through the whole stack (the audio
//! clock, G.711 encoding and decoding into a sink, demultiplexing, the output queues).
//! Reported: CPU per audio packet for each and the phone's overhead as a ratio; concurrent
//! 50-packet/s calls one core can carry; heap per call (counting allocator); CPU to set up a
//! call's media (ICE, DTLS). Aims: ≤ 10 % overhead, ≥ 2 000 calls per core. The same phone
//! run over plain RTP and SDES-SRTP (our own RTP session, `rtp/`) is reported against the
//! same bare-str0m floor: that path has no ICE or DTLS, so it should cost no more.
//!
//! At scale (issue 16): 2,000 calls between two phones, all playing, against 2,000 bare
//! str0m pairs (neither fits in the caches any more), and what a wake-up with nothing due
//! costs a phone with 2,000 calls against one with a single call (the phone keeps its
//! calls' deadlines in a queue, so a wake-up does not visit every call), and the same for
//! a SIP message that concerns none of the calls (the phone reads again only the calls the
//! user agent stepped).
//!
//! `cargo bench -p sansip-media --bench media` (`-- --test` runs each case once, as CI does).

#![allow(clippy::unwrap_used)]

use std::alloc::System;
use std::collections::VecDeque;
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use sansip_media::audio::{AudioCodec, AudioFrame, AudioSink, Mixer, Silence};
use sansip_media::core::session::CallHandle;
use sansip_media::core::transport::{FlowId, FlowInfo, Transport};
use sansip_media::core::ua::{CallOptions, Event, Input, Output, UaConfig};
use sansip_media::{MediaAgent, MediaConfig, MediaProfile};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::{Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event as RtcEvent, Input as RtcInput, Output as RtcOutput, Rtc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const FRAME: Duration = Duration::from_millis(20);

#[allow(clippy::disallowed_methods)]
fn origin() -> Instant {
    Instant::now()
}

// ---------- bare str0m ----------

struct Bare {
    a: Rtc,
    b: Rtc,
    a_addr: SocketAddr,
    mid: Mid,
    pt: Pt,
    now: Instant,
    rtp: u64,
    received: u64,
}

fn bare_rtc(now: Instant, addr: SocketAddr) -> Rtc {
    let mut rtc = Rtc::builder()
        .clear_codecs()
        .enable_pcmu(true, false)
        .build(now);
    rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
    rtc
}

/// Drains `rtc`; datagrams go to `out`, media data is counted.
fn drain(
    rtc: &mut Rtc,
    out: &mut VecDeque<(SocketAddr, SocketAddr, Vec<u8>)>,
    got: &mut u64,
) -> (Instant, bool) {
    let mut connected = false;
    loop {
        match rtc.poll_output().unwrap() {
            RtcOutput::Timeout(t) => return (t, connected),
            RtcOutput::Transmit(t) => out.push_back((t.source, t.destination, t.contents.to_vec())),
            RtcOutput::Event(RtcEvent::Connected) => connected = true,
            RtcOutput::Event(RtcEvent::MediaData(d)) => {
                black_box(&d.data);
                *got += 1;
            }
            RtcOutput::Event(_) => {}
        }
    }
}

impl Bare {
    fn new() -> Self {
        let now = origin();
        let (a_addr, b_addr): (SocketAddr, SocketAddr) = (
            "127.0.0.1:10000".parse().unwrap(),
            "127.0.0.1:20000".parse().unwrap(),
        );
        let mut a = bare_rtc(now, a_addr);
        let mut b = bare_rtc(now, b_addr);
        let mut api = a.sdp_api();
        let mid = api.add_media(
            MediaKind::Audio,
            str0m::media::Direction::SendRecv,
            None,
            None,
            None,
        );
        let (offer, pending) = api.apply().unwrap();
        let offer = SdpOffer::from_sdp_string(&offer.to_sdp_string()).unwrap();
        let answer = b.sdp_api().accept_offer(offer).unwrap();
        let answer = SdpAnswer::from_sdp_string(&answer.to_sdp_string()).unwrap();
        a.sdp_api().accept_answer(pending, answer).unwrap();
        let pt = a.writer(mid).unwrap().payload_params().next().unwrap().pt();
        let mut s = Self {
            a,
            b,
            a_addr,
            mid,
            pt,
            now,
            rtp: 0,
            received: 0,
        };
        let (mut ua, mut ub) = (false, false);
        for _ in 0..2_000 {
            let (ca, cb) = s.exchange();
            ua |= ca;
            ub |= cb;
            if ua && ub {
                break;
            }
            s.now += Duration::from_millis(5);
            s.a.handle_input(RtcInput::Timeout(s.now)).unwrap();
            s.b.handle_input(RtcInput::Timeout(s.now)).unwrap();
        }
        assert!(ua && ub, "bare str0m pair did not connect");
        s
    }

    /// Delivers datagrams both ways until quiet; whether each side connected.
    fn exchange(&mut self) -> (bool, bool) {
        let mut q = VecDeque::new();
        let (mut ca, mut cb) = (false, false);
        loop {
            let (_, c) = drain(&mut self.a, &mut q, &mut self.received);
            ca |= c;
            let (_, c) = drain(&mut self.b, &mut q, &mut self.received);
            cb |= c;
            if q.is_empty() {
                return (ca, cb);
            }
            while let Some((src, dst, data)) = q.pop_front() {
                let target = if dst == self.a_addr {
                    &mut self.a
                } else {
                    &mut self.b
                };
                let r = Receive::new(Protocol::Udp, src, dst, &data).unwrap();
                target.handle_input(RtcInput::Receive(self.now, r)).unwrap();
            }
        }
    }

    /// One 20 ms frame each way.
    fn frame(&mut self, payload: &Arc<[u8]>) {
        self.now += FRAME;
        let t = MediaTime::new(self.rtp, Frequency::EIGHT_KHZ);
        self.rtp += 160;
        for rtc in [&mut self.a, &mut self.b] {
            rtc.handle_input(RtcInput::Timeout(self.now)).unwrap();
            rtc.writer(self.mid)
                .unwrap()
                .write(self.pt, self.now, t, payload.clone())
                .unwrap();
        }
        self.exchange();
    }
}

// ---------- two sansip MediaAgents ----------

struct Discard;

impl AudioSink for Discard {
    fn write(&mut self, frame: &AudioFrame) {
        black_box(&frame.samples);
    }
}

struct Phones {
    a: MediaAgent,
    b: MediaAgent,
    b_addr: SocketAddr,
    a_flow: FlowId,
    b_flow: FlowId,
    now: Instant,
    calls: Vec<(CallHandle, CallHandle)>,
    events: Vec<Event>,
}

fn phone(
    name: &str,
    addrs: Vec<SocketAddr>,
    now: Instant,
    seed: u64,
    profile: MediaProfile,
) -> MediaAgent {
    let media = MediaConfig {
        audio_codecs: vec![AudioCodec::Pcmu],
        telephone_event: false,
        offer_profile: profile,
        ..MediaConfig::default()
    };
    MediaAgent::new(
        UaConfig::new(format!("sip:{name}@{}", addrs[0])),
        media,
        addrs,
        now,
        seed,
    )
    .unwrap()
}

impl Phones {
    fn new() -> Self {
        Self::with(MediaProfile::WebRtc)
    }

    /// Two phones whose calls carry media the `profile` way.
    fn with(profile: MediaProfile) -> Self {
        Self::with_ports(profile, 1)
    }

    /// Two phones with `ports` media sockets each, one per call to come (two calls between
    /// the same two addresses cannot be told apart, see the note in `MediaAgent`).
    fn with_ports(profile: MediaProfile, ports: u16) -> Self {
        let now = origin();
        let addrs = |first: u16| -> Vec<SocketAddr> {
            (0..ports)
                .map(|i| SocketAddr::from(([127, 0, 0, 1], first + i)))
                .collect()
        };
        let (a_addrs, b_addrs) = (addrs(10_000), addrs(30_000));
        let (a_addr, b_addr) = (a_addrs[0], b_addrs[0]);
        let mut a = phone("alice", a_addrs, now, 1, profile);
        let mut b = phone("bob", b_addrs, now, 2, profile);
        let a_flow = a.ua_mut().add_flow(FlowInfo {
            transport: Transport::Udp,
            local: a_addr,
            remote: b_addr,
        });
        a.ua_mut().set_outbound_flow(a_flow);
        let b_flow = b.ua_mut().add_flow(FlowInfo {
            transport: Transport::Udp,
            local: b_addr,
            remote: a_addr,
        });
        Self {
            a,
            b,
            b_addr,
            a_flow,
            b_flow,
            now,
            calls: Vec::new(),
            events: Vec::new(),
        }
    }

    /// Moves SIP and media both ways until quiet.
    fn exchange(&mut self) {
        loop {
            let mut moved = false;
            for from_a in [true, false] {
                let (from, to, to_flow) = if from_a {
                    (&mut self.a, &mut self.b, self.b_flow)
                } else {
                    (&mut self.b, &mut self.a, self.a_flow)
                };
                let mut sip = Vec::new();
                while let Some(o) = from.poll_output() {
                    match o {
                        Output::Transmit { bytes, .. } => sip.push(bytes),
                        Output::Event(e) => self.events.push(e),
                        _ => {}
                    }
                }
                let mut media = Vec::new();
                while let Some(t) = from.poll_media() {
                    media.push(t);
                }
                moved |= !sip.is_empty() || !media.is_empty();
                for bytes in sip {
                    to.handle_input(
                        self.now,
                        Input::Received {
                            flow: to_flow,
                            bytes,
                        },
                    );
                }
                for t in media {
                    to.handle_media(self.now, t.source, t.destination, &t.contents);
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// Places and answers one call and waits until its media is up.
    fn add_call(&mut self) {
        let (call, theirs) = self.connect_call();
        self.play(call, theirs);
    }

    /// Silence played into both ends of a call, and what they hear discarded.
    fn play(&mut self, call: CallHandle, theirs: CallHandle) {
        self.a.set_source(call, Box::new(Silence)).unwrap();
        self.b.set_source(theirs, Box::new(Silence)).unwrap();
        self.a.set_sink(call, Box::new(Discard)).unwrap();
        self.b.set_sink(theirs, Box::new(Discard)).unwrap();
    }

    /// Places and answers one call, with no audio yet, and waits until its media is up.
    fn connect_call(&mut self) -> (CallHandle, CallHandle) {
        let target = format!("sip:bob@{}", self.b_addr);
        let call = self
            .a
            .call(self.now, &target, CallOptions::default())
            .unwrap();
        self.exchange();
        let theirs = self
            .events
            .iter()
            .rev()
            .find_map(|e| match e {
                Event::IncomingCall { call, .. } => Some(*call),
                _ => None,
            })
            .unwrap();
        self.b.answer(self.now, theirs).unwrap();
        self.exchange();
        for _ in 0..2_000 {
            if self.a.is_media_connected(call) && self.b.is_media_connected(theirs) {
                break;
            }
            self.now += Duration::from_millis(5);
            self.a.handle_timeout(self.now);
            self.b.handle_timeout(self.now);
            self.exchange();
        }
        assert!(
            self.a.is_media_connected(call),
            "the phones' media did not connect"
        );
        self.calls.push((call, theirs));
        self.events.clear();
        (call, theirs)
    }

    /// Two phones with `n` calls between them, every one playing.
    fn with_calls(profile: MediaProfile, n: u16) -> Self {
        let mut p = Self::with_ports(profile, n);
        // Connected first, played after: calls that play while later ones are set up
        // would make the set-up quadratic.
        for _ in 0..n {
            p.connect_call();
        }
        for (call, theirs) in p.calls.clone() {
            p.play(call, theirs);
        }
        p.exchange();
        p
    }

    /// Seconds per `poll_timeout` and `handle_timeout` pair on the caller's phone when
    /// nothing is due (the best of a few rounds).
    fn idle_wake(&mut self) -> f64 {
        // Just after a frame, every call's next tick is ahead.
        self.frame();
        let now = self.now;
        per_packet(5, 2_000, |n| {
            for _ in 0..n {
                black_box(self.a.poll_timeout());
                self.a.handle_timeout(now);
            }
            n
        })
    }

    /// Seconds per out-of-dialog OPTIONS the caller's phone takes in and answers (the best
    /// of a few rounds): a SIP message that concerns none of its calls.
    fn sip_wake(&mut self) -> f64 {
        let mut n = 0u64;
        let b_addr = self.b_addr;
        per_packet(5, 500, |count| {
            for _ in 0..count {
                n += 1;
                let options = format!(
                    "OPTIONS sip:alice@127.0.0.1:10000 SIP/2.0\r\n\
                     Via: SIP/2.0/UDP {b_addr};branch=z9hG4bK-wake-{n}\r\n\
                     Max-Forwards: 70\r\n\
                     From: <sip:bob@{b_addr}>;tag=wake\r\n\
                     To: <sip:alice@127.0.0.1:10000>\r\n\
                     Call-ID: wake-{n}\r\n\
                     CSeq: 1 OPTIONS\r\n\
                     Content-Length: 0\r\n\r\n"
                );
                self.a.handle_input(
                    self.now,
                    Input::Received {
                        flow: self.a_flow,
                        bytes: options.into_bytes().into(),
                    },
                );
                while let Some(o) = self.a.poll_output() {
                    black_box(o);
                }
            }
            count
        })
    }

    /// One 20 ms frame each way on every call.
    fn frame(&mut self) {
        self.now += FRAME;
        self.a.handle_timeout(self.now);
        self.b.handle_timeout(self.now);
        self.exchange();
    }

    fn received(&self) -> u64 {
        self.calls
            .iter()
            .map(|&(a, b)| {
                self.a.media_stats(a).unwrap().packets_received
                    + self.b.media_stats(b).unwrap().packets_received
            })
            .sum()
    }
}

// ---------- measurements ----------

/// The best of `rounds` timings of `frames` frames, in seconds per packet.
fn per_packet(rounds: usize, frames: u64, mut run: impl FnMut(u64) -> u64) -> f64 {
    (0..rounds)
        .map(|_| {
            let start = origin();
            let packets = run(frames);
            start.elapsed().as_secs_f64() / packets.max(1) as f64
        })
        .fold(f64::MAX, f64::min)
}

/// Net heap growth while `f` runs. `stats_alloc` counts a reallocation's growth in
/// `bytes_allocated` already; its `bytes_reallocated` would count it twice.
/// Seconds of CPU per participant per 20 ms of a conference room's mix: `n` participants
/// whose codecs run at `rate`, each pushing a frame and pulling its mix every tick (the
/// focus's work; their codecs and SRTP are the rows above).
fn mix_cost(n: usize, rate: u32, ticks: usize) -> f64 {
    let mut m = Mixer::new(16_000, n);
    let ids: Vec<_> = (0..n).filter_map(|_| m.join().ok()).collect();
    let len = (rate / 50) as usize;
    let frame = AudioFrame {
        rate,
        samples: (0..len).map(|i| ((i * 37) % 2000) as i16).collect(),
    };
    let mut out = vec![0i16; len];
    let start = origin();
    for _ in 0..ticks {
        for id in &ids {
            m.push(*id, black_box(&frame));
        }
        for id in &ids {
            m.pull(*id, rate, &mut out);
            black_box(&out);
        }
    }
    start.elapsed().as_secs_f64() / (ticks * n) as f64
}

fn heap<T>(f: impl FnOnce() -> T) -> (T, i64) {
    let region = Region::new(GLOBAL);
    let out = f();
    let s = region.change();
    (out, s.bytes_allocated as i64 - s.bytes_deallocated as i64)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--test" || a == "--quick");
    let (rounds, frames, calls) = if quick { (1, 20, 2) } else { (7, 500, 50) };
    let payload: Arc<[u8]> = vec![0xffu8; 160].into();

    let mut bare = Bare::new();
    let bare_cost = per_packet(rounds, frames, |n| {
        let before = bare.received;
        for _ in 0..n {
            bare.frame(&payload);
        }
        bare.received - before
    });
    let cost = |profile| {
        let mut phones = Phones::with(profile);
        phones.add_call();
        per_packet(rounds, frames, |n| {
            let before = phones.received();
            for _ in 0..n {
                phones.frame();
            }
            phones.received() - before
        })
    };
    let phone_cost = cost(MediaProfile::WebRtc);
    // The same packets with many calls in each phone: a wake-up visits the calls that are
    // due, not all of them.
    // `MEDIA_MANY=N` sets the count, e.g. a full count in a quick run.
    let many: u16 = std::env::var("MEDIA_MANY")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if quick { 20 } else { 2_000 });
    let many_frames = if quick { 5 } else { 25 };
    let mut many_phones = Phones::with_calls(MediaProfile::WebRtc, many);
    let many_cost = per_packet(rounds.min(3), many_frames, |n| {
        let before = many_phones.received();
        for _ in 0..n {
            many_phones.frame();
        }
        many_phones.received() - before
    });
    // The floor at that size: as many bare str0m pairs (their state no longer fits in the
    // caches either).
    let mut bares: Vec<Bare> = (0..many).map(|_| Bare::new()).collect();
    let many_bare_cost = per_packet(rounds.min(3), many_frames, |n| {
        let before: u64 = bares.iter().map(|b| b.received).sum();
        for _ in 0..n {
            for b in &mut bares {
                b.frame(&payload);
            }
        }
        bares.iter().map(|b| b.received).sum::<u64>() - before
    });
    drop(bares);
    // What a wake-up with nothing due costs a phone with one call and with `many`.
    let mut one_phones = Phones::new();
    one_phones.add_call();
    let (wake_one, wake_many) = (one_phones.idle_wake(), many_phones.idle_wake());
    let (sip_one, sip_many) = (one_phones.sip_wake(), many_phones.sip_wake());
    drop((one_phones, many_phones));
    let plain_cost = cost(MediaProfile::Plain);
    let sdes_cost = cost(MediaProfile::Sdes);

    // Setup and heap per call: `calls` more pairs of phones with one call each (one media
    // socket per phone: two calls between the same two addresses cannot be told apart, see
    // the note in `MediaAgent`), minus what the phones cost before their call.
    let (bare_phones, phones_heap) = heap(|| (0..calls).map(|_| Phones::new()).collect::<Vec<_>>());
    let start = origin();
    let (with_calls, all_heap) = heap(|| {
        (0..calls)
            .map(|_| {
                let mut p = Phones::new();
                p.add_call();
                p
            })
            .collect::<Vec<_>>()
    });
    let phone_setup = start.elapsed().as_secs_f64() / calls as f64;
    let call_heap = all_heap - phones_heap;
    black_box((&bare_phones, &with_calls));
    let start = origin();
    let (pairs, bare_heap) = heap(|| (0..calls).map(|_| Bare::new()).collect::<Vec<_>>());
    let bare_setup = start.elapsed().as_secs_f64() / calls as f64;
    black_box(&pairs);
    // Both sides of a call live here: halve for one side's share.
    let per_side = |total: i64| total as f64 / calls as f64 / 2.0;

    let us = |s: f64| s * 1e6;
    // A packet's cost here is its send on one phone plus its receipt on the other. One
    // phone with a 50 packet/s call sends 50 and receives 50 a second: 50 such costs.
    let calls_per_core = |cost: f64| 1.0 / (cost * 50.0);
    println!("\n| media (one thread, no sockets) | sansip MediaAgent | bare str0m | ratio | aim |");
    println!("|---|---:|---:|---:|---|");
    println!(
        "| CPU per audio packet (send + receive) | {:.2} µs | {:.2} µs | {:.2}× | ≤ 1.10× |",
        us(phone_cost),
        us(bare_cost),
        phone_cost / bare_cost
    );
    println!(
        "| CPU per audio packet, {many} concurrent calls in each phone | {:.2} µs | {:.2} µs | {:.2}× | ≤ 1.10× |",
        us(many_cost),
        us(bare_cost),
        many_cost / bare_cost
    );
    println!(
        "| the same against {many} bare str0m pairs | {:.2} µs | {:.2} µs | {:.2}× | ≤ 1.10× |",
        us(many_cost),
        us(many_bare_cost),
        many_cost / many_bare_cost
    );
    println!(
        "| a wake-up with nothing due (`poll_timeout` + `handle_timeout`), {many} calls against 1 | {:.2} µs | {:.2} µs (1 call) | {:.2}× | — |",
        us(wake_many),
        us(wake_one),
        wake_many / wake_one
    );
    println!(
        "| a SIP message for none of the calls (OPTIONS in, 200 out), {many} calls against 1 | {:.2} µs | {:.2} µs (1 call) | {:.2}× | — |",
        us(sip_many),
        us(sip_one),
        sip_many / sip_one
    );
    for (path, c) in [("plain RTP", plain_cost), ("SDES-SRTP", sdes_cost)] {
        println!(
            "| CPU per audio packet, {path} path (our RTP session) | {:.2} µs | {:.2} µs | {:.2}× | ≤ 1.00× |",
            us(c),
            us(bare_cost),
            c / bare_cost
        );
    }
    println!(
        "| concurrent 50 pps calls per core | {:.0} | {:.0} | {:.2}× | ≥ 2000 |",
        calls_per_core(phone_cost),
        calls_per_core(bare_cost),
        bare_cost / phone_cost
    );
    println!(
        "| heap per call, one side | {:.0} B | {:.0} B | {:.2}× | — |",
        per_side(call_heap),
        per_side(bare_heap),
        call_heap as f64 / bare_heap as f64
    );
    println!(
        "| CPU to set a call's media up (both sides) | {:.2} ms | {:.2} ms | {:.2}× | — |",
        phone_setup * 1e3,
        bare_setup * 1e3,
        phone_setup / bare_setup
    );
    drop((pairs, bare_phones, with_calls));

    // The conference focus's mixer (16 kHz mix): CPU per participant per 20 ms frame.
    let ticks = if quick { 10 } else { 500 };
    println!(
        "\n| conference mix (one room, 16 kHz) | 4 participants | 16 participants | 16: share of one core per participant |"
    );
    println!("|---|---:|---:|---:|");
    for (codec, rate) in [
        ("G.711 (8 kHz)", 8_000),
        ("G.722 (16 kHz)", 16_000),
        ("Opus (48 kHz)", 48_000),
    ] {
        let (four, sixteen) = (mix_cost(4, rate, ticks), mix_cost(16, rate, ticks));
        println!(
            "| participants on {codec}, µs per participant per 20 ms | {:.2} | {:.2} | {:.3} % |",
            us(four),
            us(sixteen),
            sixteen / 0.020 * 100.0
        );
    }

    if quick {
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("media_frame");
    g.throughput(Throughput::Elements(2));
    g.bench_function("bare_str0m", |b| b.iter(|| bare.frame(&payload)));
    let mut one = Phones::new();
    one.add_call();
    g.bench_function("sansip_phone", |b| b.iter(|| one.frame()));
    g.finish();
    c.final_summary();
}
