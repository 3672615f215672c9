//! Media through the async API on real loopback sockets: two calls at once between the
//! same two phones, each with its own tone, each heard on its own call (every call holds a
//! media port of its own, so the two are told apart).

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sansip_tokio::core::auth::DigestCredentials;
use sansip_tokio::core::registrar::RegistrarConfig;
use sansip_tokio::core::ua::{CallOptions, Event, UaConfig};
use sansip_tokio::media::RtcSession;
use sansip_tokio::media::audio::{Recorder, Tone, analysis};
use sansip_tokio::{Phone, PhoneConfig, RegistrarServer, TokioRuntime};

fn phone(server: &RegistrarServer, name: &str) -> Phone<RtcSession> {
    let mut ua = UaConfig::new(format!("sip:{name}@example.com"));
    ua.credentials = Some(DigestCredentials::new(name, format!("{name}-pw")));
    sansip_tokio::phone(PhoneConfig::new(ua, server.local_addr())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_calls_between_the_same_phones_keep_their_audio_apart() {
    let mut rc = RegistrarConfig::new("example.com");
    rc.users = vec![
        ("alice".into(), "alice-pw".into()),
        ("bob".into(), "bob-pw".into()),
    ];
    let server = RegistrarServer::start(
        Arc::new(TokioRuntime),
        "127.0.0.1:0".parse().unwrap(),
        rc,
        3,
    )
    .unwrap();
    let (alice, bob) = (phone(&server, "alice"), phone(&server, "bob"));
    for p in [&alice, &bob] {
        p.connect().await.unwrap();
        p.register(600).await.unwrap();
    }
    let mut heard = Vec::new();
    for hz in [500.0, 1_300.0] {
        let call = alice.call("bob", CallOptions::default()).await.unwrap();
        call.play(Tone::new(hz)).await.unwrap();
        let incoming = loop {
            if let Some(Event::IncomingCall { call, .. }) = bob.next_event().await {
                break call;
            }
        };
        let theirs = bob.call_handle(incoming).await.unwrap();
        theirs.answer().await.unwrap();
        let rec = Arc::new(Mutex::new(Recorder::default()));
        theirs.record(rec.clone()).await.unwrap();
        call.answered().await.unwrap();
        heard.push((hz, call, theirs, rec));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (hz, _, theirs, rec) in &heard {
        let (rate, samples) = rec.lock().unwrap().samples();
        let tail = &samples[samples.len().saturating_sub(rate as usize)..];
        let got = analysis::dominant_frequency(tail, rate);
        assert!(
            got.is_some_and(|f| (f - hz).abs() < 10.0),
            "call playing {hz} Hz was heard as {got:?} Hz"
        );
        assert!(theirs.media_stats().await.unwrap().packets_received > 50);
    }
    for (_, call, _, _) in &heard {
        call.hangup().await.unwrap();
        call.ended().await.unwrap();
    }
}
