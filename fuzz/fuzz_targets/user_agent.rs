//! The user agent under arbitrary datagrams and commands: nothing panics, and once the
//! application has hung up every call and ten minutes of timers have run, no call,
//! dialog or transaction is left.
//!
//! Input: pieces separated by `\0`. A piece whose first byte is below 0x80 is a datagram on
//! the UDP flow. Otherwise the low three bits of the first byte pick a command: 0 place a
//! call; 1 answer the newest ringing call; 2 hang up the first call; 3 hold it; 4 unhold it;
//! 5 send DTMF `1#`; 6 advance the next byte × 100 ms; 7 a MESSAGE in the first call.
#![no_main]

use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sansip_core::session::FakeSdp;
use sansip_core::transport::{FlowInfo, Transport};
use sansip_core::ua::{CallOptions, Event, Input, Output, UaConfig, UserAgent};

fuzz_target!(|data: &[u8]| {
    #[allow(clippy::disallowed_methods)]
    let start = Instant::now();
    let mut now = start;
    let mut ua: UserAgent<FakeSdp> = UserAgent::new(UaConfig::new("sip:alice@example.com"), now, 1);
    let flow = ua.add_flow(FlowInfo {
        transport: Transport::Udp,
        local: "192.0.2.10:5060".parse().unwrap(),
        remote: "192.0.2.1:5060".parse().unwrap(),
    });
    ua.set_outbound_flow(flow);
    let mut ringing = Vec::new();
    let drain = |ua: &mut UserAgent<FakeSdp>, ringing: &mut Vec<_>| {
        while let Some(o) = ua.poll_output() {
            if let Output::Event(Event::IncomingCall { call, .. }) = o {
                ringing.push(call);
            }
        }
    };
    let advance = |ua: &mut UserAgent<FakeSdp>, now: &mut Instant, by: Duration| {
        let until = *now + by;
        while let Some(t) = ua.poll_timeout().filter(|t| *t <= until) {
            *now = t.max(*now);
            ua.handle_timeout(*now);
            while ua.poll_output().is_some() {}
        }
        *now = until;
    };
    for piece in data.split(|b| *b == 0) {
        let Some(&first) = piece.first() else {
            continue;
        };
        let first_call = ua.calls().min();
        if first < 0x80 {
            let bytes = Bytes::copy_from_slice(piece);
            ua.handle_input(now, Input::Received { flow, bytes });
        } else {
            let _ = match first & 7 {
                0 => ua
                    .call(now, "bob", CallOptions::default(), FakeSdp::new("a"))
                    .map(|_| ()),
                1 => match ringing.pop() {
                    Some(c) => ua.answer(now, c, FakeSdp::new("a")),
                    None => Ok(()),
                },
                2 => first_call.map_or(Ok(()), |c| ua.hangup(now, c)),
                3 => first_call.map_or(Ok(()), |c| ua.hold(now, c)),
                4 => first_call.map_or(Ok(()), |c| ua.unhold(now, c)),
                5 => first_call.map_or(Ok(()), |c| ua.send_dtmf(now, c, "1#")),
                6 => {
                    let steps = u64::from(piece.get(1).copied().unwrap_or(1));
                    advance(&mut ua, &mut now, Duration::from_millis(100 * steps));
                    Ok(())
                }
                _ => first_call.map_or(Ok(()), |c| {
                    ua.call_message(now, c, "text/plain", "x").map(|_| ())
                }),
            };
        }
        drain(&mut ua, &mut ringing);
    }
    let calls: Vec<_> = ua.calls().collect();
    for c in calls {
        ua.hangup(now, c).unwrap();
        drain(&mut ua, &mut ringing);
    }
    advance(&mut ua, &mut now, Duration::from_secs(600));
    assert_eq!(ua.call_states(), 0, "calls left after ten minutes");
    assert_eq!(ua.transactions(), 0, "transactions left after ten minutes");
});
