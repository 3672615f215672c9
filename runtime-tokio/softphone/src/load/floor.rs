//! `softphone load … --engine floor`: the kernel's floor for the loopback benchmark. The
//! seven datagrams of a call (INVITE, 100, 180, 200, ACK, BYE, 200), each the size of the
//! real one, go back and forth in the order a call sends them, over the same batched socket
//! the SIP load uses, with no SIP at all: what is left is the kernel's and the loop's cost,
//! which no SIP stack can go below on this machine.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};

use super::udp::BatchSocket;
use super::{Engine, Tally, clock, cpu_time, report};

/// A call's datagrams in order, with the size of the message each stands for (the sansip
/// load pair's own, rounded): who sends it is the caller for INVITE, ACK and BYE.
const INVITE: u8 = 0;
const TRYING: u8 = 1;
const RINGING: u8 = 2;
const OK_INVITE: u8 = 3;
const ACK: u8 = 4;
const BYE: u8 = 5;
const OK_BYE: u8 = 6;
const SIZES: [usize; 7] = [560, 300, 330, 480, 340, 340, 300];

/// One floor datagram: its kind, the call's number, and padding to the message's size.
fn datagram(kind: u8, call: u64) -> Bytes {
    let mut d = vec![0u8; SIZES[usize::from(kind)]];
    d[0] = kind;
    d[1..9].copy_from_slice(&call.to_le_bytes());
    Bytes::from(d)
}

/// The kind and call number of a floor datagram; `None` for anything else.
fn read(datagram: &[u8]) -> Option<(u8, u64)> {
    let kind = *datagram.first()?;
    let call = u64::from_le_bytes(datagram.get(1..9)?.try_into().ok()?);
    (usize::from(kind) < SIZES.len()).then_some((kind, call))
}

/// The caller's half: starts a call every `interval`, sends ACK and BYE on the 200, and
/// counts the call done on the 200 to the BYE.
pub(super) fn call(
    remote: SocketAddr,
    interval: Duration,
    calls: u64,
    bind: SocketAddr,
    max_seconds: u64,
) -> Result<Value, String> {
    let mut udp = BatchSocket::bind(bind)?;
    let start = clock();
    let cpu_start = cpu_time();
    let give_up = start + Duration::from_secs(max_seconds);
    let mut tally = Tally::default();
    let mut placed = 0u64;
    let mut last_end = start;
    loop {
        let now = clock();
        while placed < calls && start + interval.mul_f64(placed as f64) <= now {
            udp.send(datagram(INVITE, placed), remote);
            placed += 1;
        }
        udp.flush();
        if tally.completed >= calls || now >= give_up {
            break;
        }
        let mut answers = Vec::new();
        let got = udp.drain(|from, d| match read(d) {
            Some((OK_INVITE, call)) => answers.push((from, call)),
            Some((OK_BYE, _)) => tally.completed += 1,
            _ => {}
        })?;
        for (from, call) in answers {
            udp.send(datagram(ACK, call), from);
            udp.send(datagram(BYE, call), from);
        }
        if got > 0 {
            last_end = now;
        } else {
            let due = (placed < calls).then(|| start + interval.mul_f64(placed as f64));
            udp.wait(due.unwrap_or(give_up).min(give_up))?;
            tally.waits += 1;
        }
    }
    let report = report(
        "caller",
        Engine::Floor,
        udp.local(),
        calls,
        &tally,
        last_end.saturating_duration_since(start),
        cpu_time().saturating_sub(cpu_start),
    );
    Ok(report)
}

/// The callee's half: 100, 180 and 200 to an INVITE, 200 to a BYE.
pub(super) fn answer(bind: SocketAddr, calls: u64, max_seconds: u64) -> Result<Value, String> {
    let mut udp = BatchSocket::bind(bind)?;
    println!(
        "{}",
        json!({ "load": "callee", "listening": udp.local().to_string() })
    );
    let start = clock();
    let cpu_start = cpu_time();
    let give_up = start + Duration::from_secs(max_seconds);
    let mut tally = Tally::default();
    let mut first: Option<Instant> = None;
    let mut last_end = start;
    let mut replies = Vec::new();
    while tally.completed < calls && clock() < give_up {
        let got = udp.drain(|from, d| match read(d) {
            Some((INVITE, call)) => {
                replies.extend([TRYING, RINGING, OK_INVITE].map(|k| (k, call, from)))
            }
            Some((BYE, call)) => replies.push((OK_BYE, call, from)),
            _ => {}
        })?;
        for (kind, call, to) in replies.drain(..) {
            if kind == OK_BYE {
                tally.completed += 1;
                last_end = clock();
            }
            first.get_or_insert_with(clock);
            udp.send(datagram(kind, call), to);
        }
        udp.flush();
        if got == 0 {
            udp.wait(give_up)?;
            tally.waits += 1;
        }
    }
    let report = report(
        "callee",
        Engine::Floor,
        udp.local(),
        calls,
        &tally,
        last_end.saturating_duration_since(first.unwrap_or(start)),
        cpu_time().saturating_sub(cpu_start),
    );
    Ok(report)
}
