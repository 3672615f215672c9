//! Heap per unit of state (issue 6, part 3), counted by a counting allocator: bytes per
//! registration binding in the location service (with its indexes and expiry timers) at
//! 100 000 and 1 000 000 bindings, bytes per confirmed call dialog with 100 000 dialogs in
//! one UA, and bytes per in-flight INVITE on a UA. Aims: ≤ 512 B, ≤ 2 KiB, ≤ 4 KiB.
//!
//! Then what a wake-up costs the UA at that size (issue 16): `poll_timeout` and a
//! `handle_timeout` with nothing due, timed with 1 000 dialogs and with all of them, so
//! the ratio shows whether a wake-up grows with the number of calls.
//!
//! `cargo bench -p sansip-core --bench memory` (add `-- --quick` for small counts, as CI
//! does). Prints two Markdown tables.

use std::alloc::System;
use std::hint::black_box;

use std::time::Duration;

use bytes::Bytes;
use sansip_core::message::{Message, Request};
use sansip_core::registrar::{ExpiryPolicy, LocationService};
use sansip_core::session::FakeSdp;
use sansip_core::transport::{FlowId, Transport};
use sansip_core::ua::CallOptions;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[path = "support/pair.rs"]
mod pair;

use pair::{BOB, CallPair, origin};

/// Net heap growth while `f` runs (what it allocated and kept).
///
/// `stats_alloc` already counts a reallocation's growth in `bytes_allocated` (and its
/// shrinking in `bytes_deallocated`); its `bytes_reallocated` is the same change again,
/// so adding it would count every buffer that grew, even one since freed.
fn kept<T>(f: impl FnOnce() -> T) -> (T, i64) {
    let region = Region::new(GLOBAL);
    let out = f();
    let s = region.change();
    let net = s.bytes_allocated as i64 - s.bytes_deallocated as i64;
    (out, net)
}

fn register_request(i: usize) -> Option<Request> {
    let text = format!(
        "REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.{}.{}.{}:5060;branch=z9hG4bK{i:x}\r\n\
Max-Forwards: 70\r\n\
From: <sip:user{i}@example.com>;tag={i:x}\r\n\
To: <sip:user{i}@example.com>\r\n\
Call-ID: reg{i}@10.0.0.1\r\n\
CSeq: 1 REGISTER\r\n\
Contact: <sip:user{i}@10.{}.{}.{}:5060>\r\n\
Expires: 3600\r\n\
Content-Length: 0\r\n\r\n",
        (i >> 16) & 255,
        (i >> 8) & 255,
        i & 255,
        (i >> 16) & 255,
        (i >> 8) & 255,
        i & 255,
    );
    match Message::parse(Bytes::from(text)) {
        Ok(Message::Request(r)) => Some(r),
        _ => None,
    }
}

fn bindings(n: usize) -> f64 {
    let now = origin();
    // Parse first: the request bytes are the input, not the binding's cost.
    let requests: Vec<Request> = (0..n).filter_map(register_request).collect();
    let (loc, bytes) = kept(|| {
        let mut loc = LocationService::new(ExpiryPolicy::default());
        for (i, r) in requests.iter().enumerate() {
            let _ = loc.register(now, r, Some(FlowId(i as u64)));
        }
        loc
    });
    assert_eq!(loc.len(), n);
    black_box(&loc);
    bytes as f64 / n as f64
}

/// Bytes per confirmed dialog, averaged over both ends of `n` established calls, once
/// their INVITE transactions have expired (only call state remains). A first batch of `n`
/// calls warms the transaction layer's tables up, so their high-water mark (the INVITE
/// transactions RFC 6026 keeps for 32 s) is not charged to the dialogs measured after.
fn dialogs(n: usize) -> (f64, CallPair) {
    let mut p = CallPair::new();
    establish(&mut p, n);
    let (_, bytes) = kept(|| establish(&mut p, n));
    assert_eq!(p.alice.calls().count(), 2 * n, "every call established");
    assert_eq!(p.alice.transactions() + p.bob.transactions(), 0);
    (bytes as f64 / (2 * n) as f64, p)
}

/// Nanoseconds per `poll_timeout` and per `handle_timeout` with nothing due, on the
/// caller's UA of `p` (the median of a few rounds of many calls each).
#[allow(clippy::disallowed_methods)] // a benchmark times itself with the wall clock
fn wake_cost(p: &mut CallPair) -> (f64, f64) {
    const ROUNDS: usize = 7;
    const PER_ROUND: u32 = 20_000;
    let now = p.now;
    let mut polls = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..ROUNDS {
        let t = std::time::Instant::now();
        for _ in 0..PER_ROUND {
            black_box(p.alice.poll_timeout());
        }
        polls.push(t.elapsed().as_nanos() as f64 / f64::from(PER_ROUND));
        let t = std::time::Instant::now();
        for _ in 0..PER_ROUND {
            p.alice.handle_timeout(black_box(now));
        }
        handles.push(t.elapsed().as_nanos() as f64 / f64::from(PER_ROUND));
    }
    assert!(
        p.alice.poll_output().is_none(),
        "nothing was due, nothing came out"
    );
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (median(&mut polls), median(&mut handles))
}

/// Places and answers `n` calls, then lets their INVITE transactions expire.
fn establish(p: &mut CallPair, n: usize) {
    for _ in 0..n {
        let _ = p
            .alice
            .call(p.now, BOB, CallOptions::default(), FakeSdp::new("a"));
        let events = p.pump();
        p.answer_all(&events);
        drop(p.pump());
    }
    // Past 64·T1, when RFC 6026 lets the INVITE transactions go.
    p.now += Duration::from_secs(40);
    p.alice.handle_timeout(p.now);
    p.bob.handle_timeout(p.now);
    drop(p.pump());
}

/// Bytes each UA keeps per call that has ended (INVITE…BYE 200 over UDP), before the
/// timers of RFC 3261 and RFC 6026 let its transactions go (32 s): what a load of R calls
/// a second carries, times 32·R. Measured from fresh user agents, so the transaction
/// tables' slots count (with their growth headroom): they are the lingering state.
fn ended_calls(n: usize) -> f64 {
    let mut p = CallPair::over(Transport::Udp);
    let (_, bytes) = kept(|| ended(&mut p, n));
    assert_eq!(p.alice.calls().count(), 0, "every call ended");
    bytes as f64 / (2 * n) as f64
}

/// `n` whole calls on `p`, at the same instant (their transactions all linger).
fn ended(p: &mut CallPair, n: usize) {
    for _ in 0..n {
        let Ok(id) = p
            .alice
            .call(p.now, BOB, CallOptions::default(), FakeSdp::new("a"))
        else {
            continue;
        };
        let events = p.pump();
        p.answer_all(&events);
        drop(p.pump());
        let _ = p.alice.hangup(p.now, id);
        drop(p.pump());
    }
}

/// Bytes per INVITE we sent that has no answer yet (call state, transaction, the request
/// kept for retransmission and authentication).
fn in_flight_invites(n: usize) -> f64 {
    let mut p = CallPair::new();
    let (_, bytes) = kept(|| {
        for _ in 0..n {
            let now = p.now;
            let _ = p
                .alice
                .call(now, BOB, CallOptions::default(), FakeSdp::new("a"));
            // The INVITE is on the wire; nobody answers.
            while p.alice.poll_output().is_some() {}
        }
    });
    assert_eq!(p.alice.transactions(), n);
    bytes as f64 / n as f64
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick" || a == "--test");
    let big = if quick { 10_000 } else { 1_000_000 };
    let mid = if quick { 10_000 } else { 100_000 };
    let calls = if quick { 2_000 } else { 100_000 };
    let small = 1_000;
    println!("| state | units | bytes per unit | aim | within aim |");
    println!("|---|---:|---:|---:|---|");
    let row = |what: &str, n: usize, per: f64, aim: f64| {
        if aim.is_finite() {
            let within = if per <= aim { "yes" } else { "no" };
            println!("| {what} | {n} | {per:.0} | {aim:.0} | {within} |");
        } else {
            println!("| {what} | {n} | {per:.0} | — | — |");
        }
    };
    row("registration binding", mid, bindings(mid), 512.0);
    if !quick {
        row("registration binding", big, bindings(big), 512.0);
    }
    let (per_dialog, mut big_ua) = dialogs(calls);
    row("confirmed call dialog (per UA)", calls, per_dialog, 2048.0);
    row(
        "ended call, lingering transactions over UDP (per UA)",
        calls,
        ended_calls(calls),
        f64::INFINITY,
    );
    row(
        "in-flight INVITE (per UA)",
        calls,
        in_flight_invites(calls),
        4096.0,
    );
    println!();
    // Dialogs are counted on the caller's UA (the pair's other UA holds the other ends).
    let (_, mut small_ua) = dialogs(small);
    let (poll_small, handle_small) = wake_cost(&mut small_ua);
    let (poll_big, handle_big) = wake_cost(&mut big_ua);
    let (n_small, n_big) = (small_ua.alice.calls().count(), big_ua.alice.calls().count());
    println!(
        "| a wake-up with nothing due, one UA | ns with {n_small} calls | ns with {n_big} calls | ratio |"
    );
    println!("|---|---:|---:|---:|");
    for (what, a, b) in [
        ("`poll_timeout()`", poll_small, poll_big),
        ("`handle_timeout(now)`", handle_small, handle_big),
    ] {
        println!("| {what} | {a:.1} | {b:.1} | {:.2}× |", b / a);
    }
}
