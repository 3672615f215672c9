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

#[path = "support/messages.rs"]
mod messages;

use messages::{MESSAGES, line_scan};

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
