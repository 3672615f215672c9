//! The workloads whose instructions `scripts/bench-report.py` counts with callgrind
//! (issue 16): whole sans-IO calls between two user agents with the default settings
//! (INVITE, 100, a reliable 180 and its PRACK and 200, the 200 with a session timer, ACK,
//! BYE, 200, both sides: `calls`), the same call as SIPp's built-in scenarios make it
//! (no PRACK, no session timer: seven messages, `plain-calls`), and digest registrations
//! at the embedded registrar (two transactions each). Instruction counts are deterministic, unlike times on a shared
//! machine, so they are the report's headline figure.
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

#[path = "support/pair.rs"]
mod pair;

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
        // `cargo bench` passes `--bench`: a smoke run of both.
        _ => {
            calls(CallPair::new(), 10);
            calls(CallPair::plain(), 10);
            registers(10);
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
