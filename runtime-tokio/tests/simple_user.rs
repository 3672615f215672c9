//! `SimpleUser` on tokio, against the embedded registrar on loopback: the delegate sees the
//! whole life of a call, and a second call while busy is refused.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sansip_tokio::core::auth::DigestCredentials;
use sansip_tokio::core::registrar::RegistrarConfig;
use sansip_tokio::core::session::{CallEnd, FakeSdp};
use sansip_tokio::core::ua::UaConfig;
use sansip_tokio::prelude::IncomingAction;
use sansip_tokio::{PhoneConfig, RegistrarServer, SimpleUser, SimpleUserDelegate, TokioRuntime};

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, s: String) {
        self.0.lock().unwrap().push(s);
    }
    fn has(&self, s: &str) -> bool {
        self.0.lock().unwrap().iter().any(|x| x == s)
    }
    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl SimpleUserDelegate for Log {
    fn on_call_received(&mut self, _from: &str) -> IncomingAction {
        self.push("received".into());
        IncomingAction::Ring
    }
    fn on_call_created(&mut self) {
        self.push("created".into());
    }
    fn on_call_progress(&mut self, status: u16, _early: bool) {
        self.push(format!("progress {status}"));
    }
    fn on_call_answered(&mut self) {
        self.push("answered".into());
    }
    fn on_call_hangup(&mut self, end: &CallEnd) {
        self.push(format!("hangup {}", end.cause));
    }
    fn on_call_hold(&mut self, held: bool, remote: bool) {
        self.push(format!("hold {held} {remote}"));
    }
    fn on_call_dtmf_received(&mut self, tone: char, _d: Option<Duration>) {
        self.push(format!("dtmf {tone}"));
    }
    fn on_message_received(&mut self, _from: &str, body: &str) {
        self.push(format!("message {body}"));
    }
    fn on_registered(&mut self) {
        self.push("registered".into());
    }
    fn on_server_connect(&mut self) {
        self.push("connect".into());
    }
}

async fn until(log: &Log, what: &str) {
    for _ in 0..200 {
        if log.has(what) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("never saw {what:?}: {:?}", log.all());
}

async fn user(server: &RegistrarServer, name: &str, log: &Log) -> SimpleUser<FakeSdp> {
    let mut ua = UaConfig::new(format!("sip:{name}@example.com"));
    ua.credentials = Some(DigestCredentials::new(name, format!("{name}-pw")));
    let config = PhoneConfig::new(ua, server.local_addr());
    let u = SimpleUser::start(Arc::new(TokioRuntime), config, log.clone())
        .await
        .unwrap();
    u.connect().await.unwrap();
    u.register(600).await.unwrap();
    u
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simple_user_call_from_ring_to_hangup() {
    let mut config = RegistrarConfig::new("example.com");
    config.users = ["alice", "bob", "carol"]
        .iter()
        .map(|u| (u.to_string(), format!("{u}-pw")))
        .collect();
    let server = RegistrarServer::start(
        Arc::new(TokioRuntime),
        "127.0.0.1:0".parse().unwrap(),
        config,
        11,
    )
    .unwrap();
    let (a, b, c) = (Log::default(), Log::default(), Log::default());
    let alice = user(&server, "alice", &a).await;
    let bob = user(&server, "bob", &b).await;
    let carol = user(&server, "carol", &c).await;
    assert!(a.has("connect") && a.has("registered"));

    alice.call("bob").await.unwrap();
    assert!(alice.call("carol").await.is_err(), "one call at a time");
    until(&b, "received").await;
    until(&a, "progress 180").await;
    bob.answer().await.unwrap();
    until(&a, "answered").await;
    until(&b, "answered").await;

    // Busy: carol's call to bob is refused with 486 while bob talks to alice.
    carol.call("bob").await.unwrap();
    until(&c, "hangup busy").await;
    assert_eq!(b.all().iter().filter(|x| *x == "received").count(), 1);

    let held = alice.hold().await.unwrap();
    assert!(held.local && alice.is_held().await.unwrap());
    until(&b, "hold false true").await;
    alice.unhold().await.unwrap();
    until(&b, "hold false false").await;
    alice.mute().await.unwrap();
    assert!(alice.is_muted().await.unwrap());
    alice.unmute().await.unwrap();
    alice.send_dtmf("5").await.unwrap();
    until(&b, "dtmf 5").await;
    bob.message("alice", "hello").await.unwrap();
    until(&a, "message hello").await;
    bob.hangup().await.unwrap();
    until(&a, "hangup bye").await;
    until(&b, "hangup bye").await;
    assert!(alice.hangup().await.is_err(), "no call left");
    let order: Vec<String> = a
        .all()
        .into_iter()
        .filter(|x| ["created", "progress 180", "answered", "hangup bye"].contains(&x.as_str()))
        .collect();
    assert_eq!(order, ["created", "progress 180", "answered", "hangup bye"]);
}

/// A delegate that answers every call from its callback.
#[cfg(feature = "media")]
struct Answering(Log);

#[cfg(feature = "media")]
impl SimpleUserDelegate for Answering {
    fn on_call_received(&mut self, _from: &str) -> IncomingAction {
        IncomingAction::Answer
    }
    fn on_call_answered(&mut self) {
        self.0.push("answered".into());
    }
    fn on_call_hangup(&mut self, end: &CallEnd) {
        self.0.push(format!("hangup {}", end.cause));
    }
}

/// Real media: alice's SimpleUser plays a tone from a queue another task feeds; bob's
/// delegate answers from its callback and his calls record into a shared recorder.
#[cfg(feature = "media")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simple_user_plays_and_records_real_audio() {
    use sansip_tokio::media::RtcSession;
    use sansip_tokio::media::audio::{
        AudioFrame, AudioSource, FrameQueue, Recorder, Tone, analysis,
    };
    use sansip_tokio::prelude::SimpleMedia;

    let mut config = RegistrarConfig::new("example.com");
    config.users = vec![
        ("alice".into(), "alice-pw".into()),
        ("bob".into(), "bob-pw".into()),
    ];
    let server = RegistrarServer::start(
        Arc::new(TokioRuntime),
        "127.0.0.1:0".parse().unwrap(),
        config,
        12,
    )
    .unwrap();
    let config = |name: &str| {
        let mut ua = UaConfig::new(format!("sip:{name}@example.com"));
        ua.credentials = Some(DigestCredentials::new(name, format!("{name}-pw")));
        PhoneConfig::new(ua, server.local_addr())
    };
    let (a, b) = (Log::default(), Log::default());
    let alice: SimpleUser<RtcSession> =
        SimpleUser::start(Arc::new(TokioRuntime), config("alice"), a.clone())
            .await
            .unwrap();
    let bob: SimpleUser<RtcSession> =
        SimpleUser::start(Arc::new(TokioRuntime), config("bob"), Answering(b.clone()))
            .await
            .unwrap();
    alice.register(300).await.unwrap();
    bob.register(300).await.unwrap();

    // Alice's audio: a queue fed with a 900 Hz tone, 20 ms at a time, from another task.
    let queue = Arc::new(Mutex::new(FrameQueue::new(2)));
    let feeder = queue.clone();
    alice.set_media(SimpleMedia::new().play(move || Box::new(feeder.clone())));
    let feeding = tokio::spawn(async move {
        let mut tone = Tone::new(900.0);
        for _ in 0..250 {
            let mut samples = vec![0i16; 320];
            tone.fill(16_000, &mut samples);
            queue.lock().unwrap().push(&AudioFrame {
                rate: 16_000,
                samples,
            });
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let heard = Arc::new(Mutex::new(Recorder::default()));
    let ear = heard.clone();
    bob.set_media(SimpleMedia::new().record(move || Box::new(ear.clone())));

    alice.call("bob").await.unwrap();
    until(&b, "answered").await;
    until(&a, "answered").await;
    assert!(alice.current_call().await.is_some());
    tokio::time::sleep(Duration::from_secs(3)).await;
    alice.hangup().await.unwrap();
    until(&b, "hangup bye").await;
    feeding.abort();

    let (rate, samples) = heard.lock().unwrap().samples();
    assert!(samples.len() > rate as usize, "{} samples", samples.len());
    let last = &samples[samples.len() - rate as usize..];
    let hz = analysis::dominant_frequency(last, rate);
    assert!(hz.is_some_and(|f| (f - 900.0).abs() < 10.0), "heard {hz:?}");
    assert!(alice.current_call().await.is_none());
}
