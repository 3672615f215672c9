//! Stream framing: how the stream is split into reads does not change what `StreamFramer`
//! yields. Pushing the bytes in one read and pushing them in chunks (draining `poll()` after
//! each push) give the same events, compared up to and including the first error (after an
//! error the framer drops its buffer).
//!
//! Input: one byte `n`, then `n % 8` chunk sizes (each 1..=256, used in turn; with none the
//! stream is pushed a byte at a time), then the stream. Bit 3 of `n` picks the framer's role
//! (a connection we opened, or one we accepted), which decides what a `CRLF` means.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sansip_core::message::{Limits, ParseError, StreamEvent, StreamFramer};

type Events = Vec<Result<StreamEvent, ParseError>>;

fn drain(f: &mut StreamFramer, out: &mut Events) {
    while let Some(e) = f.poll() {
        out.push(e);
    }
}

/// Keeps the events up to and including the first error.
fn upto_error(mut v: Events) -> Events {
    if let Some(i) = v.iter().position(Result::is_err) {
        v.truncate(i + 1);
    }
    v
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (sizes, stream) = rest.split_at((n as usize % 8).min(rest.len()));

    let framer = || {
        if n & 8 == 0 {
            StreamFramer::new(Limits::default())
        } else {
            StreamFramer::accepted(Limits::default())
        }
    };
    let mut whole = framer();
    let mut one_read = Events::new();
    whole.push(stream);
    drain(&mut whole, &mut one_read);

    let mut chunked = framer();
    let mut many_reads = Events::new();
    let mut sizes = sizes.iter().map(|&s| s as usize + 1).cycle();
    let mut left = stream;
    while !left.is_empty() {
        let (chunk, tail) = left.split_at(sizes.next().unwrap_or(1).min(left.len()));
        chunked.push(chunk);
        drain(&mut chunked, &mut many_reads);
        left = tail;
    }

    assert_eq!(upto_error(many_reads), upto_error(one_read));
});
