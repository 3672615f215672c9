//! Parser benchmark (issue: sip-core foundation §7; the suite issue extends it).
//!
//! Four messages, each measured five ways in one run so the figures can be read as ratios:
//! - `floor/line_scan`: memchr over every line plus the colon of each header — the least any
//!   parser must do to find the headers;
//! - `sansip/transaction_ready`: frame the message and read what the transaction layer keys
//!   on: top Via (typed), CSeq, Call-ID, From and To tags (read with `tag_param`, which skips
//!   the address), body;
//! - `sansip/full_typed`: validate, then parse every header the dialog layer reads;
//! - `sansip/write`: serialize the parsed message (unedited headers copied as received);
//! - `rsip/transaction_ready`: rsip 0.4 parsing the same bytes and reading the same keys.
//!
//! Run `cargo bench -p sansip-core --bench parser`; the allocation counts per operation are
//! printed before the timings. `cargo bench ... -- --test` runs each once (CI uses that).

use std::alloc::System;
use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group};
use rsip::prelude::*;
use sansip_core::message::{Contact, ContentType, HeaderName, Message, NameAddr};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com;transport=udp>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\"\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, MESSAGE, UPDATE, REFER, NOTIFY\r\n\
Supported: timer, replaces, outbound, 100rel\r\n\
User-Agent: sansip-bench/0.1\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 375\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com\r\n\
s=-\r\n\
c=IN IP4 192.0.2.101\r\n\
t=0 0\r\n\
m=audio 49172 UDP/TLS/RTP/SAVPF 111 0 8 101\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ice-ufrag:8hhY\r\n\
a=ice-pwd:asd88fgpdd777uzjYhagZg\r\n\
a=fingerprint:sha-256 12:DF:3E:5D:49:6B:19:E5:7C:AB:4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:4A:AD\r\n\
a=setup:actpass\r\n\
a=mid:0\r\n\
a=sendrecv\r\n";

const OK: &str = "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP server10.biloxi.example.com;branch=z9hG4bK4b43c2ff8.1;received=192.0.2.3\r\n\
Via: SIP/2.0/UDP bigbox3.site3.atlanta.example.com;branch=z9hG4bK77ef4c2312983.1;received=192.0.2.2\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;received=192.0.2.1\r\n\
Record-Route: <sip:server10.biloxi.example.com;lr>, <sip:bigbox3.site3.atlanta.example.com;lr>\r\n\
To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:bob@192.0.2.4>\r\n\
Content-Length: 0\r\n\
\r\n";

const REGISTER: &str = "REGISTER sip:registrar.biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP bobspc.biloxi.example.com:5060;branch=z9hG4bKnashds7\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Bob <sip:bob@biloxi.example.com>;tag=456248\r\n\
Call-ID: 843817637684230@998sdasdh09\r\n\
CSeq: 1826 REGISTER\r\n\
Contact: <sip:bob@192.0.2.4>\r\n\
Authorization: Digest username=\"bob\", realm=\"biloxi.example.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"sip:registrar.biloxi.example.com\", qop=auth, nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\", algorithm=MD5\r\n\
Expires: 7200\r\n\
Content-Length: 0\r\n\
\r\n";

const BYE: &str = "BYE sip:alice@pc33.atlanta.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKnashds10\r\n\
Max-Forwards: 70\r\n\
From: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n\
To: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 231 BYE\r\n\
Content-Length: 0\r\n\
\r\n";

const MESSAGES: [(&str, &str); 4] = [
    ("invite_sdp", INVITE),
    ("ok_200", OK),
    ("register_auth", REGISTER),
    ("bye", BYE),
];

/// The floor: find every line end and every header's colon.
fn line_scan(b: &[u8]) -> usize {
    let mut n = 0;
    let mut start = 0;
    for lf in memchr::memchr_iter(b'\n', b) {
        let line = &b[start..lf];
        if line.len() <= 1 {
            break;
        }
        n += memchr::memchr(b':', line).unwrap_or(0);
        start = lf + 1;
    }
    n + start
}

/// What the transaction layer reads from every message.
fn transaction_ready(b: &Bytes) -> usize {
    let m = Message::frame(b.clone(), &Default::default()).expect("valid");
    let h = m.headers();
    let via = h.top_via().expect("via");
    let cseq = h.cseq().expect("cseq");
    let from_tag = h.from_tag().expect("from");
    let to_tag = h.to_tag().expect("to");
    via.branch().map_or(0, str::len)
        + cseq.seq as usize
        + h.call_id().expect("call-id").len()
        + from_tag.map_or(0, str::len)
        + to_tag.map_or(0, str::len)
        + m.body().len()
}

/// Validation plus every header the dialog layer reads.
fn full_typed(b: &Bytes) -> usize {
    let m = Message::parse(b.clone()).expect("valid");
    let h = m.headers();
    let mut n = transaction_ready_of(&m);
    for v in h.vias() {
        n += v.expect("via").port().unwrap_or(0) as usize;
    }
    for c in h.get_all(HeaderName::Contact) {
        n += Contact::parse(c).expect("contact").iter().count();
    }
    for name in [HeaderName::RecordRoute, HeaderName::Route] {
        for v in h.get_all(name) {
            n += NameAddr::parse_list(v).filter(Result::is_ok).count();
        }
    }
    if let Some(ct) = h.get(HeaderName::ContentType) {
        n += ContentType::parse(ct).expect("content-type").subtype.len();
    }
    for t in h
        .get_all(HeaderName::Supported)
        .chain(h.get_all(HeaderName::Allow))
    {
        n += sansip_core::message::parse_token_list(t).count();
    }
    if let Some(a) = h.get(HeaderName::Authorization) {
        n += sansip_core::message::Credentials::parse(a)
            .expect("auth")
            .username
            .map_or(0, str::len);
    }
    n
}

fn transaction_ready_of(m: &Message) -> usize {
    let h = m.headers();
    h.top_via()
        .ok()
        .and_then(|v| v.branch())
        .map_or(0, str::len)
        + h.call_id().map_or(0, str::len)
        + h.from().ok().and_then(|f| f.tag()).map_or(0, str::len)
}

fn rsip_ready(b: &Bytes) -> usize {
    let m = rsip::SipMessage::try_from(b.clone()).expect("rsip parses the bench messages");
    let via = m.via_header().expect("via").typed().expect("typed via");
    let cseq = m.cseq_header().expect("cseq").typed().expect("typed cseq");
    let from = m.from_header().expect("from").tag().expect("from tag");
    let to = m.to_header().expect("to").tag().expect("to tag");
    via.branch().map_or(0, |b| b.to_string().len())
        + cseq.seq as usize
        + m.call_id_header().expect("call-id").value().len()
        + from.map_or(0, |t| t.value().len())
        + to.map_or(0, |t| t.value().len())
        + m.body().len()
}

fn allocations(f: impl Fn() -> usize) -> usize {
    let region = Region::new(GLOBAL);
    black_box(f());
    region.change().allocations
}

fn report_allocations() {
    println!("allocations per operation (counting allocator):");
    println!(
        "{:<15} {:>9} {:>18} {:>11} {:>6} {:>15}",
        "message", "floor", "transaction_ready", "full_typed", "write", "rsip_ready"
    );
    for (name, text) in MESSAGES {
        let b = Bytes::from_static(text.as_bytes());
        let parsed = Message::parse(b.clone()).expect("valid");
        println!(
            "{:<15} {:>9} {:>18} {:>11} {:>6} {:>15}",
            name,
            allocations(|| line_scan(&b)),
            allocations(|| transaction_ready(&b)),
            allocations(|| full_typed(&b)),
            allocations(|| parsed.to_bytes().len()),
            allocations(|| rsip_ready(&b)),
        );
    }
}

fn parser(c: &mut Criterion) {
    for (name, text) in MESSAGES {
        let b = Bytes::from_static(text.as_bytes());
        let parsed = Message::parse(b.clone()).expect("valid");
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Bytes(b.len() as u64));
        g.bench_function("floor/line_scan", |x| x.iter(|| line_scan(black_box(&b))));
        g.bench_function("sansip/transaction_ready", |x| {
            x.iter(|| transaction_ready(black_box(&b)))
        });
        g.bench_function("sansip/full_typed", |x| {
            x.iter(|| full_typed(black_box(&b)))
        });
        g.bench_function("sansip/write", |x| x.iter(|| black_box(&parsed).to_bytes()));
        g.bench_function("floor/memcpy", |x| x.iter(|| black_box(b.to_vec())));
        g.bench_function("rsip/transaction_ready", |x| {
            x.iter(|| rsip_ready(black_box(&b)))
        });
        g.finish();
    }
}

criterion_group!(benches, parser);

fn main() {
    report_allocations();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
