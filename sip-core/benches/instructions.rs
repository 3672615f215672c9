//! The workloads whose instructions `scripts/bench-report.py` counts with callgrind
//! (issue 16): whole sans-IO calls between two user agents with the default settings
//! (INVITE, 100, a reliable 180 and its PRACK and 200, the 200 with a session timer, ACK,
//! BYE, 200, both sides: `calls`), the same call as SIPp's built-in scenarios make it
//! (no PRACK, no session timer: seven messages, `plain-calls`), and digest registrations
//! at the embedded registrar (two transactions each), and the transaction-ready parse of the
//! parser benchmark's four messages (`frame`: frame each and read the top Via, CSeq, Call-ID
//! and both tags), against the parser benchmark's floor (`line-scan`). Instruction counts
//! are deterministic, unlike times on a shared machine, so they are the report's headline
//! figure.
//!
//! ```sh
//! valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/deps/instructions-… calls 1000
//! ```
//!
//! The report runs each workload twice (N and 2N) and divides the difference by N, so the
//! set-up and the first-call warm-up fall out. Run by `cargo bench` without a workload, it
//! does a few of each and exits.

use std::hint::black_box;

use bytes::Bytes;
use sansip_core::message::Message;

#[path = "support/pair.rs"]
mod pair;

#[path = "support/messages.rs"]
mod messages;

use pair::{CallPair, RegisterPair, one_call};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let count = |i: usize| {
        args.get(i)
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(10)
    };
    match args.first().map(String::as_str) {
        Some("calls") => calls(CallPair::new(), count(1)),
        Some("plain-calls") => calls(CallPair::plain(), count(1)),
        Some("registers") => registers(count(1)),
        Some("frame") => frame(count(1)),
        Some("line-scan") => line_scan(count(1)),
        // `cargo bench` passes `--bench`: a smoke run of each.
        _ => {
            calls(CallPair::new(), 10);
            calls(CallPair::plain(), 10);
            registers(10);
            frame(10);
            line_scan(10);
        }
    }
}

fn calls(mut p: CallPair, n: u32) {
    let mut events = 0;
    for _ in 0..n {
        events += black_box(one_call(&mut p));
    }
    assert!(n == 0 || events > 0, "the calls did nothing");
}

fn registers(n: u32) {
    let mut r = RegisterPair::new();
    let mut events = 0;
    for _ in 0..n {
        events += black_box(r.register());
    }
    assert!(n == 0 || events > 0, "the registrations did nothing");
}

/// `n` rounds of the parser benchmark's floor over the four messages: every line end and
/// every header's colon found, the least a parser must do.
fn line_scan(n: u32) {
    let mut sum = 0;
    for _ in 0..n {
        for (_, text) in messages::MESSAGES {
            sum += messages::line_scan(black_box(text.as_bytes()));
        }
    }
    assert!(n == 0 || black_box(sum) > 0, "the scans read nothing");
}

/// `n` rounds of the four messages, each framed and its transaction keys read: one round is
/// four parses.
fn frame(n: u32) {
    let messages: Vec<Bytes> = messages::MESSAGES
        .iter()
        .map(|(_, text)| Bytes::from_static(text.as_bytes()))
        .collect();
    let mut sum = 0;
    for _ in 0..n {
        for b in &messages {
            let m = Message::frame(black_box(b.clone()), &Default::default()).expect("valid");
            let h = m.headers();
            let via = h.top_via().expect("via");
            sum += via.branch().map_or(0, str::len)
                + h.cseq().expect("cseq").seq as usize
                + h.call_id().expect("call-id").len()
                + h.from_tag().expect("from").map_or(0, str::len)
                + h.to_tag().expect("to").map_or(0, str::len)
                + m.body().len();
        }
    }
    assert!(n == 0 || black_box(sum) > 0, "the parses read nothing");
}
