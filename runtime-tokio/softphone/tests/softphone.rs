//! The `softphone` binary end to end on loopback: the demo on both runtimes, and separate
//! processes registering, calling, answering and messaging through the embedded registrar.

#![allow(clippy::unwrap_used)]

use sansip_tokio::media::audio::analysis;
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use sansip_tokio::core::registrar::RegistrarConfig;
use sansip_tokio::core::subscription::conference_info::{CONTENT_TYPE, ConferenceInfo};
use sansip_tokio::core::subscription::pidf::Presence;
use sansip_tokio::{RegistrarServer, TokioRuntime};
use serde_json::Value;

mod common;
use common::{Recording, Running};

fn softphone() -> Command {
    Command::new(env!("CARGO_BIN_EXE_softphone"))
}

/// Held by the tests that run a room or a group: several phones with media each. Two such
/// at once on a two-core machine starve each other's media clocks, and their recordings
/// get gaps that no phone would have on its own.
static MEDIA_HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn media_heavy() -> std::sync::MutexGuard<'static, ()> {
    MEDIA_HEAVY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn wait(child: Child) -> Output {
    child.wait_with_output().unwrap()
}

#[test]
fn the_demo_passes_on_tokio_and_on_smol() {
    for runtime in ["tokio", "smol"] {
        let out = softphone()
            .args(["demo", "--json", "--runtime", runtime])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{runtime}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines = json_lines(&out);
        assert!(
            lines.iter().any(|l| l["step"] == "passed"),
            "{runtime}: the demo says it passed"
        );
        let tones: String = lines
            .iter()
            .filter(|l| l["event"] == "dtmf" && l["who"] == "bob")
            .map(|l| l["tone"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(tones, "1234#");
        assert!(
            lines
                .iter()
                .any(|l| l["event"] == "hold" && l["who"] == "bob" && l["remote"] == true)
        );
    }
}

/// The embedded registrar, served on loopback by a tokio runtime the test keeps alive.
fn registrar() -> (tokio::runtime::Runtime, SocketAddr) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut config = RegistrarConfig::new("example.com");
    config.users = ["alice", "bob", "carol"]
        .iter()
        .map(|u| (u.to_string(), format!("{u}-pw")))
        .collect();
    let server = rt.block_on(async {
        RegistrarServer::start(
            Arc::new(TokioRuntime),
            "127.0.0.1:0".parse().unwrap(),
            config,
            7,
        )
        .unwrap()
    });
    let addr = server.local_addr();
    // The server lives as long as its handle; park it in the runtime.
    rt.spawn(async move {
        let _keep = server;
        std::future::pending::<()>().await;
    });
    (rt, addr)
}

fn user(addr: SocketAddr, name: &str, runtime: &str) -> Command {
    let mut c = softphone();
    c.args([
        "--server",
        &format!("sip:{addr};transport=udp"),
        "--aor",
        &format!("sip:{name}@example.com"),
        "--password",
        &format!("{name}-pw"),
        "--runtime",
        runtime,
        "--json",
    ]);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

#[test]
fn separate_processes_call_answer_hold_dtmf_and_message() {
    let (_rt, addr) = registrar();
    for (caller_rt, callee_rt) in [("tokio", "smol"), ("smol", "tokio")] {
        let bob = Running::spawn(
            user(addr, "bob", callee_rt)
                .args(["answer", "--for", "30", "--calls", "1"])
                .stdin(Stdio::null()),
        )
        .registered();
        let alice = user(addr, "alice", caller_rt)
            .args([
                "call",
                "bob",
                "--for",
                "3",
                "--hold-after",
                "1",
                "--unhold-after",
                "2",
                "--dtmf",
                "42",
                "--message",
                "hi bob",
                "--header",
                "X-Test: yes",
            ])
            .output()
            .unwrap();
        let bob = bob.wait_with_output();
        assert!(
            alice.status.success(),
            "alice ({caller_rt}): {}",
            String::from_utf8_lossy(&alice.stderr)
        );
        assert!(
            bob.status.success(),
            "bob ({callee_rt}): {}",
            String::from_utf8_lossy(&bob.stderr)
        );
        let bob_lines = json_lines(&bob);
        let tones: String = bob_lines
            .iter()
            .filter(|l| l["event"] == "dtmf")
            .map(|l| l["tone"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(tones, "42");
        assert!(
            bob_lines
                .iter()
                .any(|l| l["event"] == "message" && l["body"] == "hi bob")
        );
        let holds: Vec<bool> = bob_lines
            .iter()
            .filter(|l| l["event"] == "hold")
            .map(|l| l["remote"].as_bool().unwrap())
            .collect();
        assert_eq!(holds, [true, false], "held, then resumed");
        assert!(
            bob_lines.iter().any(|l| l["event"] == "ended"
                && l["cause"] == "bye"
                && l["originator"] == "remote")
        );
        // Every line has a timestamp; both sides name the call by the same SIP Call-ID.
        let alice_lines = json_lines(&alice);
        assert!(
            bob_lines
                .iter()
                .chain(&alice_lines)
                .all(|l| l["ts"].as_f64().is_some_and(|t| t > 1e9))
        );
        let call_id = |lines: &[Value], event: &str| {
            lines
                .iter()
                .find(|l| l["event"] == event)
                .and_then(|l| l["call_id"].as_str())
                .map(str::to_string)
        };
        let theirs = call_id(&bob_lines, "incoming_call");
        assert!(theirs.is_some(), "{bob_lines:?}");
        assert_eq!(theirs, call_id(&alice_lines, "answered"));
        assert_eq!(theirs, call_id(&bob_lines, "ended"));
    }
}

/// End to end on loopback with real sockets: alice plays a 1 kHz tone, bob records; the
/// recording's dominant frequency is 1 kHz and it is not silence. Both runtimes, each way.
#[test]
fn a_tone_crosses_loopback_and_is_recorded() {
    let (_rt, addr) = registrar();
    let dir = std::env::temp_dir().join(format!("sansip-tone-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (caller_rt, callee_rt) in [("tokio", "smol"), ("smol", "tokio")] {
        let wav = dir.join(format!("{callee_rt}.wav"));
        let bob = Running::spawn(
            user(addr, "bob", callee_rt)
                .args(["answer", "--for", "30", "--calls", "1", "--record"])
                .arg(&wav)
                .stdin(Stdio::null()),
        )
        .registered();
        let alice = user(addr, "alice", caller_rt)
            .args(["call", "bob", "--for", "3", "--play", "tone:1000"])
            .env("RUST_LOG", "sansip::call=debug")
            .output()
            .unwrap();
        let bob = bob.wait_with_output();
        assert!(
            alice.status.success(),
            "{}",
            String::from_utf8_lossy(&alice.stderr)
        );
        // The call's span carries its handle and SIP Call-ID; its events and its media's
        // connection are logged inside it.
        let log = String::from_utf8_lossy(&alice.stderr);
        for want in [
            "call{handle=call1 call_id=",
            "event=\"call_answered\"",
            "media=\"connected\"",
            "event=\"call_ended\"",
        ] {
            assert!(log.contains(want), "{want}: {log}");
        }
        assert!(
            bob.status.success(),
            "{}",
            String::from_utf8_lossy(&bob.stderr)
        );
        let mut reader = hound::WavReader::open(&wav).unwrap();
        let rate = reader.spec().sample_rate;
        let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
        assert!(
            samples.len() as u32 > rate,
            "at least a second recorded: {}",
            samples.len()
        );
        // The middle second, away from the start of media and the hang-up.
        let mid = samples.len() / 2;
        let second = &samples[mid - rate as usize / 2..mid + rate as usize / 2];
        let hz = analysis::dominant_frequency(second, rate);
        let level = analysis::rms(second);
        eprintln!(
            "{caller_rt} -> {callee_rt}: recorded {:.2} s, dominant {hz:?} Hz, rms {level:.0}",
            samples.len() as f64 / f64::from(rate)
        );
        assert!(
            hz.is_some_and(|f| (f - 1_000.0).abs() < 10.0),
            "heard {hz:?} Hz"
        );
        assert!(level > 1_000.0, "the recording is silent: rms {level}");
        let media = json_lines(&bob)
            .into_iter()
            .find(|l| l["event"] == "media")
            .expect("a media event at hang-up");
        assert!(media["packets_received"].as_u64().unwrap() > 100, "{media}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn register_until_stdin_closes_and_receive_a_message() {
    let (_rt, addr) = registrar();
    let mut carol = Running::spawn(
        user(addr, "carol", "tokio")
            .arg("register")
            .stdin(Stdio::piped()),
    )
    .registered();
    let sent = user(addr, "alice", "smol")
        .args(["message", "carol", "hello carol"])
        .output()
        .unwrap();
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    drop(carol.take_stdin()); // EOF on carol's stdin: unregister and exit
    let carol = carol.wait_with_output();
    assert!(
        carol.status.success(),
        "{}",
        String::from_utf8_lossy(&carol.stderr)
    );
    let lines = json_lines(&carol);
    assert!(
        lines
            .iter()
            .any(|l| l["event"] == "message" && l["body"] == "hello carol")
    );
    assert!(lines.iter().any(|l| l["event"] == "unregistered"));
}

#[test]
fn the_load_pair_completes_every_call_and_reports_it() {
    // The sans-IO loop, the async Phone, and the kernel floor (no SIP, same datagrams).
    for engine in ["sans-io", "phone", "floor"] {
        load_pair(engine);
    }
    // A target the load cannot send to is refused up front.
    let out = softphone()
        .args(["load", "call", "sip:example.com", "--calls", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("IP:port"));
}

fn load_pair(engine: &str) {
    use std::io::{BufRead, BufReader};
    let mut callee = softphone()
        .args(["load", "answer", "--bind", "127.0.0.1:0", "--calls", "200"])
        .args(["--max-seconds", "30", "--engine", engine])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(callee.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let at = first["listening"].as_str().unwrap().to_string();
    let caller = softphone()
        .args(["load", "call", &format!("sip:load@{at}"), "--rate", "400"])
        .args(["--calls", "200", "--hold-ms", "20", "--max-seconds", "30"])
        .args(["--engine", engine])
        .output()
        .unwrap();
    assert!(caller.status.success(), "{engine}: {caller:?}");
    let report = &json_lines(&caller)[0];
    let callee_report: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert!(callee.wait().unwrap().success(), "{engine}");
    for r in [report, &callee_report] {
        assert_eq!(r["completed"], 200, "{engine}: {r}");
        assert_eq!(r["failed"], 0, "{engine}: {r}");
        assert!(
            r["cpu_us_per_call"].as_f64().unwrap() > 0.0,
            "{engine}: {r}"
        );
        assert_eq!(r["engine"], engine, "{r}");
    }
    assert_eq!(report["load"], "caller");
    assert_eq!(callee_report["load"], "callee");
}

#[test]
fn the_sip_trace_shows_every_message_and_no_credentials() {
    let (_rt, addr) = registrar();
    let out = user(addr, "alice", "tokio")
        .args(["--sip-trace", "register"])
        .env("RUST_LOG", "sansip::registration=debug")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    // The challenge and the authenticated retry, each way, plus the un-REGISTER at the end.
    assert!(
        err.matches("REGISTER sip:example.com SIP/2.0").count() >= 3,
        "{err}"
    );
    assert!(err.contains("SIP/2.0 401"), "{err}");
    assert!(err.contains("SIP/2.0 200"), "{err}");
    assert!(err.contains("Authorization: Digest <redacted>"), "{err}");
    assert!(
        !err.contains("response=") && !err.contains("alice-pw"),
        "{err}"
    );
    assert!(
        err.contains("direction") && err.contains("transport"),
        "{err}"
    );
    // RUST_LOG is honoured: the registration's span and its events.
    assert!(
        err.contains("registration{aor=sip:alice@example.com"),
        "{err}"
    );
    // stderr is not a terminal: no colour escapes.
    assert!(!err.contains('\u{1b}'), "{err}");
}

#[test]
fn the_password_comes_from_a_file_or_the_environment_and_its_absence_fails_at_once() {
    let (_rt, addr) = registrar();
    let base = |c: &mut Command| {
        c.args([
            "--server",
            &format!("sip:{addr}"),
            "--aor",
            "sip:carol@example.com",
        ])
        .env_remove("SANSIP_PASSWORD")
        .stdin(Stdio::null());
    };
    // None at all: the registrar's challenge fails the registration at once, saying how to
    // give one, instead of retrying for 40 s.
    let started = std::time::Instant::now();
    let mut c = softphone();
    base(&mut c);
    let out = c.arg("register").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("asks for a password (realm \"example.com\")")
            && err.contains("--password-file"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // From the environment.
    let mut c = softphone();
    base(&mut c);
    let out = c
        .arg("register")
        .env("SANSIP_PASSWORD", "carol-pw")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // From a file (its first line).
    let file = std::env::temp_dir().join(format!("sansip-pw-{}", std::process::id()));
    std::fs::write(&file, "carol-pw\nignored\n").unwrap();
    let mut c = softphone();
    base(&mut c);
    let out = c
        .arg("--password-file")
        .arg(&file)
        .arg("register")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(&file);
}

#[test]
fn failures_exit_non_zero_with_the_reason() {
    let (_rt, addr) = registrar();
    // Nobody is registered as bob: the registrar answers 480.
    let out = user(addr, "alice", "tokio")
        .args(["call", "bob", "--for", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unavailable") && err.contains("480"), "{err}");
    // A wrong password fails registration, once.
    let out = softphone()
        .args([
            "--server",
            &format!("sip:{addr}"),
            "--aor",
            "sip:bob@example.com",
            "--password",
            "wrong",
            "register",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("register"));
    // A bad audio source is refused before anything is sent.
    for (flag, play, says) in [
        ("--play", "tone:loud", "expected tone:HZ"),
        ("--play", "/nonexistent.wav", "nonexistent"),
        ("--record", "/nonexistent-dir/x.wav", "does not exist"),
        ("--record", "/tmp", "is a directory"),
    ] {
        let out = user(addr, "alice", "tokio")
            .args(["call", "bob", flag, play])
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{play}"
        );
    }
}

#[test]
fn the_console_drives_a_call_line_by_line() {
    use std::io::Write;
    let (_rt, addr) = registrar();
    let bob = Running::spawn(
        user(addr, "bob", "tokio")
            .args(["answer", "--for", "30", "--calls", "1"])
            .stdin(Stdio::null()),
    )
    .registered();
    let mut alice = user(addr, "alice", "smol")
        .arg("console")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = alice.stdin.take().unwrap();
    for (line, pause) in [
        ("register 300", 600),
        ("call bob", 1500),
        ("hold", 800),
        ("unhold", 800),
        ("dtmf 7", 1200),
        ("mute", 100),
        ("bogus", 100),
        ("hangup", 1000),
        ("quit", 0),
    ] {
        writeln!(stdin, "{line}").unwrap();
        std::thread::sleep(Duration::from_millis(pause));
    }
    drop(stdin);
    let alice = wait(alice);
    let bob = bob.wait_with_output();
    assert!(
        alice.status.success(),
        "{}",
        String::from_utf8_lossy(&alice.stderr)
    );
    assert!(
        bob.status.success(),
        "{}",
        String::from_utf8_lossy(&bob.stderr)
    );
    let lines = json_lines(&alice);
    let results: Vec<(String, String)> = lines
        .iter()
        .filter(|l| l["step"] == "ok" || l["step"] == "error")
        .map(|l| {
            (
                l["command"].as_str().unwrap().to_string(),
                l["step"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("register", "ok"),
        ("call", "ok"),
        ("hold", "ok"),
        ("unhold", "ok"),
        ("dtmf", "ok"),
        ("mute", "ok"),
        ("bogus", "error"),
        ("hangup", "ok"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(results, expected);
    let bob = json_lines(&bob);
    assert!(bob.iter().any(|l| l["event"] == "dtmf" && l["tone"] == "7"));
    assert!(
        bob.iter()
            .any(|l| l["event"] == "ended" && l["cause"] == "bye")
    );
}

#[test]
fn presence_published_to_the_embedded_server_reaches_a_watcher() {
    // The embedded registrar is the presence server: bob watches alice there; alice
    // publishes, and removes her state at the end.
    let (_rt, addr) = registrar();
    let bob = Running::spawn(
        user(addr, "bob", "tokio")
            .args(["subscribe", "alice", "--event", "presence", "--for", "6"])
            .stdin(Stdio::null()),
    );
    assert!(
        bob.wait_for("notify", Duration::from_secs(10)),
        "bob watches"
    );
    let alice = user(addr, "alice", "smol")
        .args(["publish", "--note", "In the lab", "--for", "2"])
        .output()
        .unwrap();
    assert!(alice.status.success(), "{alice:?}");
    let bob = bob.wait_with_output();
    assert!(bob.status.success(), "{bob:?}");
    let docs: Vec<Presence> = json_lines(&bob)
        .iter()
        .filter(|l| l["event"] == "notify" && l["state"] == "active")
        .filter_map(|l| Presence::parse(l["body"].as_str()?.as_bytes()).ok())
        .collect();
    let open = docs
        .iter()
        .position(|p| p.is_open() && p.note() == Some("In the lab"));
    assert!(open.is_some(), "{docs:?}");
    assert!(
        docs[open.unwrap()..].iter().any(|p| p.tuples.is_empty()),
        "the removal reached bob: {docs:?}"
    );
}

/// A softphone of user `who` (password `<who>-pw`) on the embedded server at `udp`, with
/// plain RTP, printing JSON lines.
fn user_of(udp: &str, who: &str) -> Command {
    let mut c = softphone();
    c.args(["--json", "--server", &format!("sip:{udp}"), "--password"])
        .arg(format!("{who}-pw"))
        .args(["--aor", &format!("sip:{who}@example.com")])
        .args(["--media-profile", "plain"]);
    c
}

/// The embedded server's conference focus (`softphone serve`): three phones join one room
/// with tones of 500, 800 and 1,300 Hz; each hears the two others and not itself; the
/// 500 Hz phone leaves after 4 s and the two others stop hearing it. A fourth phone
/// watches the room by the conference event package (RFC 4575) and sees each join and
/// leave.
#[test]
fn phones_in_a_room_hear_everyone_but_themselves_until_one_leaves() {
    let _heavy = media_heavy();
    let dir = std::env::temp_dir().join(format!("sansip-room-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let server = Running::spawn(softphone().args([
        "--json",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--account",
        "a:a-pw",
        "--account",
        "b:b-pw",
        "--account",
        "c:c-pw",
        "--account",
        "w:w-pw",
        "--max-participants",
        "3",
        "--for",
        "30",
    ]));
    let serving = server.serving();
    let udp = serving["udp"].as_str().unwrap().to_string();
    let watcher = softphone()
        .args([
            "--json",
            "--server",
            &format!("sip:{udp}"),
            "--password",
            "w-pw",
        ])
        .args(["--aor", "sip:w@example.com", "subscribe"])
        .args([
            "sip:room-weekly%20sync@example.com",
            "--event",
            "conference",
        ])
        .args(["--for", "18"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let join = |who: &str, hz: u32, secs: u32, room: &str| {
        user_of(&udp, who)
            .args(["call", room, "--room", "--for", &secs.to_string()])
            .args(["--play", &format!("tone:{hz}"), "--record"])
            .arg(dir.join(format!("{who}.wav")))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let phones = [("a", 500.0, 5), ("b", 800.0, 10), ("c", 1300.0, 10)];
    let running: Vec<Child> = phones
        .iter()
        .map(|(who, hz, secs)| {
            let c = join(who, *hz as u32, *secs, "weekly sync");
            std::thread::sleep(Duration::from_millis(300));
            c
        })
        .collect();
    // Once all three are in, a fourth is one too many for this room.
    let joined = || {
        let lines = server.lines();
        lines
            .iter()
            .filter(|l| l.contains("\"event\":\"joined\""))
            .count()
    };
    let start = std::time::Instant::now();
    while joined() < 3 && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(joined(), 3, "{:?}", server.lines());
    let full = softphone()
        .args([
            "--json",
            "--server",
            &format!("sip:{udp}"),
            "--password",
            "a-pw",
        ])
        .args([
            "--aor",
            "sip:a@example.com",
            "call",
            "weekly sync",
            "--room",
        ])
        .output()
        .unwrap();
    assert!(!full.status.success());
    assert!(
        String::from_utf8_lossy(&full.stderr).contains("486"),
        "{full:?}"
    );
    for (c, (who, _, _)) in running.into_iter().zip(phones) {
        let out = wait(c);
        assert!(
            out.status.success(),
            "{who}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Each hears the two others at once in some second, and never itself.
    let tones: Vec<f64> = phones.iter().map(|(_, hz, _)| *hz).collect();
    for (who, own, _) in phones {
        let rec = Recording::open(&dir.join(format!("{who}.wav")));
        rec.assert_mix(who, own, &tones, 2_000.0);
    }
    // a left after 5 s, b and c after 10: the end of their recordings (but its last
    // second, when one of them may have gone) has the other and not a.
    for (who, other) in [("b", 1300.0), ("c", 800.0)] {
        let rec = Recording::open(&dir.join(format!("{who}.wav")));
        let (from, to) = (rec.secs() - 2.5, rec.secs() - 1.0);
        let gone = rec.level(500.0, from, to);
        assert!(
            gone < 300.0,
            "{who} still hears a: {gone:.0} from {from:.1} s"
        );
        let still = rec.level(other, from, to);
        assert!(still > 2_000.0, "{who} lost the other: {still:.0}");
    }
    // Each document lists the room as it then was; versions grow one by one.
    let watched = wait(watcher);
    assert!(
        watched.status.success(),
        "{}",
        String::from_utf8_lossy(&watched.stderr)
    );
    let documents: Vec<ConferenceInfo> = json_lines(&watched)
        .iter()
        .filter(|l| l["event"] == "notify" && l["content_type"] == CONTENT_TYPE)
        // The final NOTIFY of our unsubscribe repeats the last document.
        .filter(|l| l["state"] != "terminated")
        .map(|l| ConferenceInfo::parse(l["body"].as_str().unwrap().as_bytes()).unwrap())
        .collect();
    let counts: Vec<u32> = documents.iter().map(|d| d.user_count.unwrap()).collect();
    assert_eq!(counts, [0, 1, 2, 3, 2, 1, 0], "{documents:?}");
    let versions: Vec<u32> = documents.iter().map(|d| d.version).collect();
    assert_eq!(versions, (1..=7).collect::<Vec<u32>>());
    assert_eq!(documents[0].entity, "sip:room-weekly%20sync@example.com");
    let three: Vec<&str> = documents[3]
        .users
        .iter()
        .map(|u| u.entity.as_str())
        .collect();
    assert_eq!(
        three,
        [
            "sip:a@example.com",
            "sip:b@example.com",
            "sip:c@example.com"
        ]
    );
    assert!(
        !documents[4]
            .users
            .iter()
            .any(|u| u.entity == "sip:a@example.com")
    );

    let events: Vec<Value> = server
        .lines()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| ["joined", "left", "refused"].contains(&l["event"].as_str().unwrap_or("")))
        .map(|l| serde_json::json!([l["event"], l["count"], l["status"]]))
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        events,
        serde_json::json!([
            ["joined", 1, null],
            ["joined", 2, null],
            ["joined", 3, null],
            ["refused", null, 486],
            ["left", 2, null],
            ["left", 1, null],
            ["left", 0, null]
        ])
        .as_array()
        .unwrap()
        .clone()
    );
}

/// Issue 17 §3 over loopback sockets: four softphones join group "friday" on the embedded
/// server (`softphone serve` keeps the members; the phones call each other directly, a
/// mesh of six calls), with tones of 500, 800, 1,300 and 2,000 Hz. Each one's recording,
/// the mix of its legs, holds the three others' tones and not its own. The 2,000 Hz phone
/// leaves after 7 s: the three others are told which member went, stop hearing it, and
/// keep hearing each other.
#[test]
fn four_softphones_in_a_group_call_each_other_and_three_go_on_when_one_leaves() {
    let _heavy = media_heavy();
    let dir = std::env::temp_dir().join(format!("sansip-group-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let phones = [
        ("a", 500.0, 12),
        ("b", 800.0, 12),
        ("c", 1300.0, 12),
        ("d", 2000.0, 7),
    ];
    let mut args = vec!["--json", "serve", "--listen", "127.0.0.1:0", "--for", "40"];
    let accounts: Vec<String> = phones
        .iter()
        .map(|(w, _, _)| format!("{w}:{w}-pw"))
        .collect();
    for a in &accounts {
        args.extend(["--account", a]);
    }
    let server = Running::spawn(softphone().args(&args));
    let serving = server.serving();
    let udp = serving["udp"].as_str().unwrap().to_string();
    let running: Vec<Child> = phones
        .iter()
        .map(|(who, hz, secs)| {
            let c = user_of(&udp, who)
                .args(["call", "friday", "--group", "--for", &secs.to_string()])
                .args(["--play", &format!("tone:{hz}"), "--record"])
                .arg(dir.join(format!("{who}.wav")))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            std::thread::sleep(Duration::from_millis(300));
            c
        })
        .collect();
    let outputs: Vec<Vec<Value>> = running
        .into_iter()
        .zip(phones)
        .map(|(c, (who, _, _))| {
            let out = wait(c);
            assert!(
                out.status.success(),
                "{who}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            json_lines(&out)
        })
        .collect();
    let events = |i: usize, kind: &str| -> Vec<&Value> {
        outputs[i].iter().filter(|l| l["event"] == kind).collect()
    };
    for (i, (who, _, _)) in phones.iter().enumerate() {
        assert_eq!(events(i, "group_local_media_ready").len(), 1, "{who}");
        let added: Vec<&str> = events(i, "group_member_added")
            .iter()
            .map(|l| l["member"].as_str().unwrap())
            .collect();
        assert_eq!(added.len(), 3, "{who} hears three members: {added:?}");
        assert!(!added.iter().any(|m| m.contains(&format!("sip:{who}@"))));
        assert!(
            events(i, "incoming_call").is_empty(),
            "{who}: the legs are the group's own"
        );
    }
    for (i, (who, _, _)) in phones[..3].iter().enumerate() {
        let removed: Vec<&str> = events(i, "group_member_removed")
            .iter()
            .map(|l| l["member"].as_str().unwrap())
            .collect();
        assert!(
            removed.first() == Some(&"sip:d@example.com"),
            "{who}: {removed:?}"
        );
    }
    assert_eq!(events(3, "group_left").len(), 1);

    // Each hears the three others at once in some second, and never itself.
    let tones: Vec<f64> = phones.iter().map(|(_, hz, _)| *hz).collect();
    for (who, own, _) in phones {
        let rec = Recording::open(&dir.join(format!("{who}.wav")));
        rec.assert_mix(who, own, &tones, 2_000.0);
    }
    // d left after 7 s, the others after 12: the end of their recordings (but its last
    // second, when the first of them may have gone) has the two others and not d.
    for (who, own, _) in &phones[..3] {
        let rec = Recording::open(&dir.join(format!("{who}.wav")));
        let (from, to) = (rec.secs() - 2.5, rec.secs() - 1.0);
        for (other, hz, _) in phones {
            let level = rec.level(hz, from, to);
            match other {
                "d" => assert!(level < 300.0, "{who} still hears d: {level:.0}"),
                o if o == *who => assert!(level < 300.0, "{who} ({own} Hz) hears itself"),
                _ => assert!(
                    level > 2_000.0,
                    "{who} lost {other} once d left: {level:.0} from {from:.1} of {:.1} s",
                    rec.secs()
                ),
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
