//! What the async API promises, on real loopback sockets: `register()` resolves on the first
//! outcome, `shutdown()` hangs up and unregisters within its bound, event streams stay
//! bounded when nobody reads them, and the builder takes a server the way a person writes it.

#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sansip_tokio::core::auth::DigestCredentials;
use sansip_tokio::core::registrar::RegistrarConfig;
use sansip_tokio::core::registration::RegistrationCause;
use sansip_tokio::core::session::{EndCause, FakeSdp, Originator};
use sansip_tokio::core::transaction::TimerConfig;
use sansip_tokio::core::ua::{CallOptions, Event, UaConfig};
use sansip_tokio::prelude::*;
use sansip_tokio::{PhoneConfig, RegistrarServer};

fn registrar() -> RegistrarServer {
    let mut rc = RegistrarConfig::new("example.com");
    rc.users = vec![
        ("alice".into(), "alice-pw".into()),
        ("bob".into(), "bob-pw".into()),
        ("carol".into(), "carol-pw".into()),
    ];
    RegistrarServer::start(
        Arc::new(TokioRuntime),
        "127.0.0.1:0".parse().unwrap(),
        rc,
        3,
    )
    .unwrap()
}

fn phone(server: SocketAddr, name: &str) -> Phone<FakeSdp> {
    let mut ua = UaConfig::new(format!("sip:{name}@example.com"));
    ua.credentials = Some(DigestCredentials::new(name, format!("{name}-pw")));
    // A short T1 keeps "no answer" (64 × T1) quick.
    ua.timers = TimerConfig::default().set_t1(Duration::from_millis(50));
    sansip_tokio::phone(PhoneConfig::new(ua, server)).unwrap()
}

/// Alice and bob, registered at `server`.
async fn registered_pair(server: &RegistrarServer) -> (Phone<FakeSdp>, Phone<FakeSdp>) {
    let (alice, bob) = (
        phone(server.local_addr(), "alice"),
        phone(server.local_addr(), "bob"),
    );
    alice.register(300).await.unwrap();
    bob.register(300).await.unwrap();
    (alice, bob)
}

/// A UDP "registrar" that answers every request with `status` (copying the headers a
/// response needs), or never answers when `status` is `None`.
fn scripted_server(status: Option<u16>) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let Some(status) = status else { continue };
            let text = String::from_utf8_lossy(&buf[..n]);
            let mut resp = format!("SIP/2.0 {status} Scripted\r\n");
            for line in text.split("\r\n") {
                let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
                if ["via", "from", "call-id", "cseq"].contains(&name.as_str()) {
                    resp += line;
                    resp += "\r\n";
                } else if name == "to" {
                    resp += line;
                    resp += ";tag=scripted\r\n";
                }
            }
            resp += "Content-Length: 0\r\n\r\n";
            let _ = socket.send_to(resp.as_bytes(), from);
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_fails_at_once_on_a_refusal_and_within_a_bound_on_silence() {
    for status in [403, 404, 503] {
        let p = phone(scripted_server(Some(status)), "alice");
        let started = Instant::now();
        let err = p.register(600).await.unwrap_err();
        match &err {
            PhoneError::Registration(RegistrationCause::Rejected { status: s, .. }) => {
                assert_eq!(*s, status)
            }
            other => panic!("{status}: {other:?}"),
        }
        assert!(err.to_string().contains(&status.to_string()), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5), "{status}");
    }
    // Nothing answers: timer F (64 × T1 = 3.2 s here) ends it.
    let p = phone(scripted_server(None), "alice");
    let started = Instant::now();
    assert!(matches!(p.register(600).await, Err(PhoneError::TimedOut)));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg(target_os = "linux")]
async fn an_icmp_port_unreachable_fails_registration_at_once() {
    // A port that was just free: nobody listens, so the kernel answers ICMP port unreachable.
    let closed = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    // Default timers: without the ICMP error, timer F would take 32 s and say TimedOut.
    let mut ua = UaConfig::new("sip:alice@example.com");
    ua.credentials = Some(DigestCredentials::new("alice", "alice-pw"));
    let p: Phone<FakeSdp> = sansip_tokio::phone(PhoneConfig::new(ua, closed)).unwrap();
    let err = p.register(600).await.unwrap_err();
    assert!(
        matches!(
            err,
            PhoneError::Registration(RegistrationCause::ConnectionError)
        ),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_fails_registration_instead_of_hanging() {
    let server = registrar();
    let mut ua = UaConfig::new("sip:alice@example.com");
    ua.credentials = Some(DigestCredentials::new("alice", "wrong"));
    let p: Phone<FakeSdp> = sansip_tokio::phone(PhoneConfig::new(ua, server.local_addr())).unwrap();
    let err = tokio::time::timeout(Duration::from_secs(5), p.register(600))
        .await
        .expect("register() must resolve")
        .unwrap_err();
    assert!(
        matches!(
            err,
            PhoneError::Registration(RegistrationCause::Authentication(_))
        ),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_hangs_up_unregisters_and_stops() {
    let server = registrar();
    let (alice, bob) = registered_pair(&server).await;
    let mut bob_events = bob.take_events().await.unwrap();
    let call = alice.call("bob", CallOptions::default()).await.unwrap();
    let incoming = loop {
        if let Some(Event::IncomingCall { call, .. }) = bob_events.next().await {
            break call;
        }
    };
    bob.call_handle(incoming)
        .await
        .unwrap()
        .answer()
        .await
        .unwrap();
    call.answered().await.unwrap();

    let ended = alice.shutdown(Duration::from_secs(5)).await.unwrap();
    assert_eq!(ended, 1);
    let end = loop {
        match bob_events.next().await {
            Some(Event::CallEnded { end, .. }) => break end,
            Some(_) => {}
            None => panic!("bob stopped"),
        }
    };
    assert_eq!(
        (end.cause, end.originator),
        (EndCause::Bye, Originator::Remote)
    );
    // Alice's binding is gone: a call to her fails.
    let to_alice = bob.call("alice", CallOptions::default()).await.unwrap();
    assert!(
        matches!(to_alice.answered().await, Err(PhoneError::Ended(e)) if e.status == Some(404) || e.status == Some(480))
    );
    // And alice's phone is stopped.
    assert!(matches!(
        alice.is_registered().await,
        Err(PhoneError::Stopped)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_event_stream_stays_bounded() {
    let server = registrar();
    let mut config = PhoneConfig::new(UaConfig::new("sip:bob@example.com"), server.local_addr());
    config.ua.credentials = Some(DigestCredentials::new("bob", "bob-pw"));
    config.event_capacity = 64;
    let bob: Phone<FakeSdp> = sansip_tokio::phone(config).unwrap();
    bob.register(300).await.unwrap();
    // 10,000 MESSAGEs straight at bob's socket, which nobody reads events from; sent in
    // batches, each answered before the next goes, so no datagram is lost to a full socket.
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let me = sender.local_addr().unwrap();
    let to = bob.local_addr();
    let mut buf = [0u8; 2048];
    let mut answered = 0;
    for batch in 0..200u32 {
        for j in 0..50u32 {
            let i = batch * 50 + j;
            let msg = format!(
                "MESSAGE sip:bob@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK-m{i}\r\nMax-Forwards: 70\r\nFrom: <sip:flood@example.com>;tag=f{i}\r\nTo: <sip:bob@example.com>\r\nCall-ID: flood-{i}\r\nCSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
            );
            sender.send_to(msg.as_bytes(), to).unwrap();
        }
        let target = (batch + 1) * 50;
        while answered < target {
            let (n, _) = tokio::task::block_in_place(|| sender.recv_from(&mut buf))
                .unwrap_or_else(|e| panic!("{answered} answered, then {e}"));
            if buf[..n].starts_with(b"SIP/2.0 200") {
                answered += 1;
            } else {
                panic!("{}", String::from_utf8_lossy(&buf[..n]));
            }
        }
    }
    assert_eq!(answered, 10_000);
    let events = bob.take_events().await.unwrap();
    assert_eq!(events.len(), 64);
    // Every MESSAGE, plus the connection and the registration.
    assert_eq!(events.dropped() + 64, 10_000 + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_builder_takes_a_server_as_a_person_writes_it() {
    let server = registrar();
    let port = server.local_addr().port();
    for written in [
        format!("sip:127.0.0.1:{port}"),
        format!("sip:localhost:{port};transport=udp"),
        format!("127.0.0.1:{port}"),
    ] {
        let phone = sansip_tokio::builder("sip:alice@example.com")
            .password("alice-pw")
            .server(written.as_str())
            .start_with::<FakeSdp>()
            .await
            .unwrap();
        assert_eq!(phone.register(60).await.unwrap(), 60, "{written}");
        phone.shutdown(Duration::from_secs(2)).await.unwrap();
    }
    let bad = sansip_tokio::builder("alice").start_with::<FakeSdp>().await;
    assert!(matches!(bad, Err(PhoneError::Config(_))));
    let bad = sansip_tokio::builder("sip:alice@example.com")
        .server("http://example.com")
        .start_with::<FakeSdp>()
        .await;
    assert!(matches!(bad, Err(PhoneError::Config(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_has_its_own_event_stream() {
    let server = registrar();
    let (alice, bob) = registered_pair(&server).await;
    let call = alice.call("bob", CallOptions::default()).await.unwrap();
    let mut events = call.events().await.unwrap();
    let incoming = loop {
        if let Some(Event::IncomingCall { call, .. }) = bob.next_event().await {
            break call;
        }
    };
    let theirs = bob.call_handle(incoming).await.unwrap();
    theirs.answer().await.unwrap();
    call.answered().await.unwrap();
    theirs.hangup().await.unwrap();
    let mut seen = Vec::new();
    while let Some(e) = events.next().await {
        assert_eq!(e.call(), Some(call.id()));
        seen.push(e);
    }
    // The 180 may come before the stream exists (it starts "from now on"); the answer
    // cannot, since bob answers only after the stream is set up.
    let answered = seen
        .iter()
        .position(|e| matches!(e, Event::CallAnswered { .. }))
        .expect("the answer is in the call's stream");
    assert!(
        seen[answered..]
            .iter()
            .all(|e| !matches!(e, Event::CallProgress { .. })),
        "{seen:?}"
    );
    assert!(
        matches!(seen.last(), Some(Event::CallEnded { .. })),
        "{seen:?}"
    );
}

/// The next incoming call on `phone`, and what it replaces.
async fn next_incoming(phone: &Phone<FakeSdp>) -> (sansip_tokio::core::session::CallHandle, bool) {
    loop {
        if let Some(Event::IncomingCall { call, replaces, .. }) = phone.next_event().await {
            return (call, replaces.is_some());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attended_transfer_through_the_async_api() {
    // Alice talks to bob; bob consults carol and hands alice over to her (RFC 5589):
    // alice's new call replaces bob's call with carol (RFC 3891), and bob is left with
    // no call.
    let server = registrar();
    let (alice, bob) = registered_pair(&server).await;
    let carol = phone(server.local_addr(), "carol");
    carol.register(300).await.unwrap();
    let customer = alice.call("bob", CallOptions::default()).await.unwrap();
    let (incoming, _) = next_incoming(&bob).await;
    let at_bob = bob.call_handle(incoming).await.unwrap();
    at_bob.answer().await.unwrap();
    customer.answered().await.unwrap();
    at_bob.hold().await.unwrap();
    let consult = bob.call("carol", CallOptions::default()).await.unwrap();
    let (incoming, replacing) = next_incoming(&carol).await;
    assert!(!replacing);
    let at_carol = carol.call_handle(incoming).await.unwrap();
    at_carol.answer().await.unwrap();
    consult.answered().await.unwrap();

    let transfer = {
        let at_bob = at_bob.clone();
        let consult = consult.clone();
        tokio::spawn(async move { at_bob.transfer_to(&consult).await })
    };
    // Alice is asked, and follows.
    let new_call = loop {
        if let Some(Event::TransferRequested { call, target, .. }) = alice.next_event().await {
            assert_eq!(call, customer.id());
            assert_eq!(target, "sip:carol@example.com");
            break customer.accept_transfer().await.unwrap();
        }
    };
    let (incoming, replacing) = next_incoming(&carol).await;
    assert!(replacing, "carol sees the new call replace bob's");
    carol
        .call_handle(incoming)
        .await
        .unwrap()
        .answer()
        .await
        .unwrap();
    new_call.answered().await.unwrap();
    transfer.await.unwrap().unwrap();
    assert_eq!(at_bob.ended().await.unwrap().cause, EndCause::Transferred);
    assert_eq!(at_carol.ended().await.unwrap().cause, EndCause::Replaced);
    consult.ended().await.unwrap();
    new_call.hangup().await.unwrap();
    assert_eq!(bob.with(|ua, _| ua.calls().count()).await.unwrap(), 0);
}
