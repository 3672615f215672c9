//! Datagram parsing: `Message::frame` and `Message::parse` never panic, `parse` is `frame`
//! then `validate`, and a framed message survives the writer: `Message::frame(m.to_bytes())`
//! succeeds and yields a message equal to `m` (the message's `PartialEq`: start line, header
//! names and values in order, body) — plus, when `m` has no Content-Length, the
//! `Content-Length` line `to_bytes` documents appending after the other headers.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sansip_core::message::{HeaderName, Limits, Message};

/// `m` as the writer promises to write it: with a Content-Length when it had none.
fn expected(m: &Message) -> Message {
    let mut e = m.clone();
    if !m.headers().contains(HeaderName::ContentLength) {
        let len = m.body().len().to_string();
        match &mut e {
            Message::Request(r) => r.headers_mut().push(HeaderName::ContentLength, &len),
            Message::Response(r) => r.headers_mut().push(HeaderName::ContentLength, &len),
        }
    }
    e
}

fuzz_target!(|data: &[u8]| {
    let src = Bytes::copy_from_slice(data);
    let parsed = Message::parse(src.clone());
    let Ok(m) = Message::frame(src, &Limits::default()) else {
        assert!(parsed.is_err(), "parse accepted what frame refused");
        return;
    };
    assert_eq!(
        parsed.is_ok(),
        m.validate().is_ok(),
        "parse != frame + validate"
    );

    let h = m.headers();
    let _ = (h.top_via(), h.cseq(), h.call_id(), h.from(), h.to());
    let _ = h.vias().count();

    let wire = m.to_bytes();
    match Message::frame(wire.clone(), &Limits::default()) {
        Ok(again) => assert_eq!(again, expected(&m), "rewritten as {wire:?}"),
        Err(e) => panic!("rewritten message does not frame: {e:?}\nrewritten as {wire:?}"),
    }
});
