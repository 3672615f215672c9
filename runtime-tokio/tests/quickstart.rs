//! The README's quick start (`examples/quickstart.rs`) run as a user would run it: its own
//! process, against the embedded registrar, calling a phone that answers and records. The
//! callee must hear the WAV file the example plays, and the example must end the call and
//! exit cleanly.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sansip_tokio::core::auth::DigestCredentials;
use sansip_tokio::core::registrar::RegistrarConfig;
use sansip_tokio::core::ua::UaConfig;
use sansip_tokio::media::RtcSession;
use sansip_tokio::media::audio::{Recorder, analysis};
use sansip_tokio::prelude::*;
use sansip_tokio::{PhoneConfig, RegistrarServer};

/// The example's binary, built by `cargo test` beside the tests; built here when missing
/// (`cargo test --test quickstart` alone does not build examples).
fn example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    let path = dir.join(format!("quickstart{}", std::env::consts::EXE_SUFFIX));
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "sansip-tokio", "--example", "quickstart"])
            .status()
            .unwrap();
        assert!(status.success());
    }
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quick_start_calls_and_plays_a_wav_file() {
    let mut rc = RegistrarConfig::new("example.com");
    rc.users = vec![
        ("alice".into(), "alice-pw".into()),
        ("bob".into(), "bob-pw".into()),
    ];
    let server = RegistrarServer::start(
        Arc::new(TokioRuntime),
        "127.0.0.1:0".parse().unwrap(),
        rc,
        9,
    )
    .unwrap();
    let mut ua = UaConfig::new("sip:bob@example.com");
    ua.credentials = Some(DigestCredentials::new("bob", "bob-pw"));
    let bob: Phone<RtcSession> =
        sansip_tokio::phone(PhoneConfig::new(ua, server.local_addr())).unwrap();
    bob.register(300).await.unwrap();

    let dir = std::env::temp_dir().join(format!("sansip-quickstart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wav = dir.join("hello.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&wav, spec).unwrap();
    let mut tone = vec![0i16; 16_000 * 3];
    Tone::new(700.0).fill(16_000, &mut tone);
    for s in tone {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();

    let mut child = tokio::process::Command::new(example())
        .args([
            "sip:alice@example.com",
            &format!("sip:{}", server.local_addr()),
        ])
        .args(["sip:bob@example.com", wav.to_str().unwrap()])
        .env("SANSIP_PASSWORD", "alice-pw")
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let incoming = loop {
        if let Some(Event::IncomingCall { call, .. }) = bob.next_event().await {
            break call;
        }
    };
    let call = bob.call_handle(incoming).await.unwrap();
    call.answer().await.unwrap();
    let rec = Arc::new(Mutex::new(Recorder::default()));
    call.record(rec.clone()).await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(20), call.ended())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(end.originator, Originator::Remote, "{end:?}");
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");

    let (rate, samples) = rec.lock().unwrap().samples();
    let heard = &samples[samples.len() / 3..samples.len() * 2 / 3];
    let hz = analysis::dominant_frequency(heard, rate);
    assert!(hz.is_some_and(|f| (f - 700.0).abs() < 10.0), "heard {hz:?}");
    assert!(analysis::rms(heard) > 1_000.0);
    let _ = std::fs::remove_dir_all(dir);
}
