//! Sans-IO throughput on one thread, no sockets (issue 6, part 2): digest registrations
//! (REGISTER → 401 → REGISTER with credentials → 200: two transactions) through the
//! embedded registrar, and whole calls (INVITE, 100, 180, 200, ACK, BYE, 200) between two
//! user agents. Messages are handed from one machine to the other as bytes over reliable
//! (TCP) flows, so nothing is lost and no retransmission timer is left running.
//!
//! `cargo bench -p sansip-core --bench throughput`; criterion reports elements per second
//! (transactions, calls). The aims are 400 000 transactions/s and 100 000 calls/s.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

#[path = "support/pair.rs"]
mod pair;

use pair::{CallPair, RegisterPair, one_call};

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sans-io");
    g.throughput(Throughput::Elements(2));
    let mut reg = RegisterPair::new();
    g.bench_function("register_digest_transactions", |b| {
        b.iter(|| black_box(reg.register()))
    });
    g.throughput(Throughput::Elements(1));
    let mut calls = CallPair::new();
    g.bench_function("calls", |b| b.iter(|| black_box(one_call(&mut calls))));
    g.finish();
    // Nothing may be left behind by a finished exchange (the INVITE transactions once
    // their 32 s are up).
    assert_eq!(reg.ua.transactions(), 0, "register transactions left");
    let later = calls.now + Duration::from_secs(40);
    calls.alice.handle_timeout(later);
    calls.bob.handle_timeout(later);
    assert_eq!(calls.alice.transactions() + calls.bob.transactions(), 0);
    assert_eq!(calls.alice.call_states() + calls.bob.call_states(), 0);
}

criterion_group!(benches, bench);
criterion_main!(benches);
