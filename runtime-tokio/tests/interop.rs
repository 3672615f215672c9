//! Interop with real peers on 127.0.0.1: Kamailio 5.6 as registrar and proxy with digest
//! auth over UDP, TCP, TLS, WebSocket and secure WebSocket, SIPp 3.6 as caller and callee,
//! and JsSIP 3.13.8 in Node over WebSocket. `#[ignore]`d in a plain `cargo test` (they need
//! the Debian packages `kamailio` and `sip-tester`); `.ci/run` installs those and runs
//! them with `--ignored`.

#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::Running;

fn here() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// A port nobody uses right now on 127.0.0.1, for UDP and TCP both.
fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Kamailio with `tests/interop/kamailio.cfg`, killed on drop.
struct Kamailio {
    child: Child,
    /// UDP and TCP.
    addr: SocketAddr,
    /// WebSocket (HTTP upgrade).
    ws: SocketAddr,
    /// TLS and secure WebSocket.
    tls: SocketAddr,
    dir: TempDir,
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "sansip-{tag}-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Kamailio {
    fn start() -> Self {
        let dir = TempDir::new("kamailio");
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let ws: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let tls: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        make_certificates(&dir.0);
        let child = Self::spawn(addr, ws, tls, &dir);
        let k = Kamailio {
            child,
            addr,
            ws,
            tls,
            dir,
        };
        k.wait_ready();
        k
    }

    fn spawn(addr: SocketAddr, ws: SocketAddr, tls: SocketAddr, dir: &TempDir) -> Child {
        let tls_cfg = dir.0.join("tls.cfg");
        Command::new("kamailio")
            .arg("-f")
            .arg(here().join("kamailio.cfg"))
            .args(["-DD", "-E", "-m", "64", "-M", "8"])
            .args(["-A", "WITH_TLS"])
            .args(["-A", &format!("TLS_CONFIG=\"{}\"", tls_cfg.display())])
            .args(["-l", &format!("udp:{addr}")])
            .args(["-l", &format!("tcp:{addr}")])
            .args(["-l", &format!("tcp:{ws}")])
            .args(["-l", &format!("tls:{tls}")])
            .arg("-w")
            .arg(&dir.0)
            .arg("-P")
            .arg(dir.0.join("kamailio.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("kamailio is installed (Debian package kamailio)")
    }

    /// Kills Kamailio and starts it again on the same ports: every binding and
    /// connection is lost.
    fn restart(&mut self) {
        stop(&mut self.child);
        // The workers may outlive the main process for a moment, holding the sockets.
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10)
            && (UdpSocket::bind(self.addr).is_err()
                || std::net::TcpListener::bind(self.tls).is_err())
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child = Self::spawn(self.addr, self.ws, self.tls, &self.dir);
        self.wait_ready();
    }

    /// Probes with OPTIONS until Kamailio answers anything.
    fn wait_ready(&self) {
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        probe
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let local = probe.local_addr().unwrap();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            let msg = format!(
                "OPTIONS sip:{addr} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bKprobe{n}\r\n\
Max-Forwards: 70\r\nFrom: <sip:probe@{local}>;tag=p\r\nTo: <sip:{addr}>\r\n\
Call-ID: probe@{local}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
                addr = self.addr,
                n = start.elapsed().as_millis()
            );
            probe.send_to(msg.as_bytes(), self.addr).unwrap();
            let mut buf = [0u8; 2048];
            if probe.recv_from(&mut buf).is_ok() {
                return;
            }
        }
        panic!("kamailio did not start on {}", self.addr);
    }

    fn server(&self) -> String {
        format!("sip:{};transport=udp", self.addr)
    }

    fn server_on(&self, transport: &str) -> String {
        match transport {
            "ws" => format!("ws://{}/", self.ws),
            "wss" => format!("wss://{}/", self.tls),
            "tls" => format!("sip:{};transport=tls", self.tls),
            t => format!("sip:{};transport={t}", self.addr),
        }
    }

    /// The CA that signed Kamailio's certificate.
    fn ca(&self) -> String {
        self.dir.0.join("ca.pem").display().to_string()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// A test CA and a certificate it signs for 127.0.0.1 and localhost (rustls refuses a
/// self-signed CA certificate as the server's own), plus Kamailio's tls.cfg.
fn make_certificates(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        let ok = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl is installed")
            .success();
        assert!(ok, "openssl {args:?}");
    };
    let ca = "/CN=sansip test CA";
    run(&[
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
    ]
    .into_iter()
    .chain(["-out", "ca.pem", "-days", "2", "-subj", ca])
    .collect::<Vec<_>>());
    run(&[
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "req.csr",
    ]
    .into_iter()
    .chain(["-subj", "/CN=localhost"])
    .collect::<Vec<_>>());
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "x509", "-req", "-in", "req.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
    ]
    .into_iter()
    .chain([
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ])
    .collect::<Vec<_>>());
    let cfg = format!(
        "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n\
private_key = {}\ncertificate = {}\n",
        dir.join("key.pem").display(),
        dir.join("cert.pem").display()
    );
    std::fs::write(dir.join("tls.cfg"), cfg).unwrap();
}

/// Stops Kamailio with SIGTERM, which makes the main process take its forked workers down
/// too (SIGKILL would leave them holding the sockets).
fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn softphone(server: &str, user: &str, password: &str, runtime: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_softphone"));
    c.args([
        "--server",
        server,
        "--aor",
        &format!("sip:{user}@example.com"),
        "--password",
        password,
        "--runtime",
        runtime,
        "--json",
    ]);
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn ok(who: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{who} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Starts `softphone answer` and waits until it has registered.
fn answering(k: &Kamailio, user: &str, runtime: &str, calls: u32) -> Running {
    answering_on(k, "udp", user, runtime, calls)
}

fn answering_on(k: &Kamailio, transport: &str, user: &str, runtime: &str, calls: u32) -> Running {
    Running::spawn(
        softphone(
            &k.server_on(transport),
            user,
            &format!("{user}-pw"),
            runtime,
        )
        .args(["--ca", &k.ca()])
        .args(["answer", "--for", "30", "--calls", &calls.to_string()]),
    )
    .registered()
}

#[test]
#[ignore = "needs kamailio (run by .ci/run)"]
fn softphones_call_through_kamailio_with_digest_auth() {
    let k = Kamailio::start();
    for (caller, callee) in [("tokio", "smol"), ("smol", "tokio")] {
        let bob = answering(&k, "bob", callee, 1);
        let alice = softphone(&k.server(), "alice", "alice-pw", caller)
            .args([
                "call",
                "bob",
                "--for",
                "4",
                "--hold-after",
                "1",
                "--unhold-after",
                "2",
                "--dtmf",
                "159#",
                "--message",
                "through kamailio",
            ])
            .output()
            .unwrap();
        let bob = bob.wait_with_output();
        ok("alice", &alice);
        ok("bob", &bob);
        let bob = lines(&bob);
        let tones: String = bob
            .iter()
            .filter(|l| l["event"] == "dtmf")
            .filter_map(|l| l["tone"].as_str())
            .collect();
        assert_eq!(tones, "159#");
        let holds: Vec<&Value> = bob
            .iter()
            .filter(|l| l["event"] == "hold")
            .map(|l| &l["remote"])
            .collect();
        assert_eq!(holds, [&Value::Bool(true), &Value::Bool(false)]);
        assert!(
            bob.iter()
                .any(|l| l["event"] == "message" && l["body"] == "through kamailio")
        );
        assert!(
            bob.iter()
                .any(|l| l["event"] == "ended" && l["cause"] == "bye")
        );
    }
}

#[test]
#[ignore = "needs kamailio and sipp (run by .ci/run)"]
fn sipp_calls_a_softphone_registered_at_kamailio() {
    let k = Kamailio::start();
    let bob = answering(&k, "bob", "tokio", 1);
    let port = free_port().to_string();
    let sipp = Command::new("sipp")
        .arg("-sf")
        .arg(here().join("uac_rr.xml"))
        .arg(k.addr.to_string())
        .args(["-s", "bob", "-m", "1", "-i", "127.0.0.1", "-p", &port])
        .args(["-nostdin", "-timeout", "30s", "-timeout_error"])
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("sipp is installed (Debian package sip-tester)");
    let bob = bob.wait_with_output();
    assert!(
        sipp.status.success(),
        "sipp: {}",
        String::from_utf8_lossy(&sipp.stderr)
    );
    ok("bob", &bob);
    let bob = lines(&bob);
    assert!(
        bob.iter()
            .any(|l| l["event"] == "ended" && l["cause"] == "bye" && l["originator"] == "remote")
    );
}

/// Runs SIPp with `scenario` from tests/interop on `port`, for one call.
fn sipp(scenario: &str, port: u16, extra: &[&str]) -> Command {
    let mut c = Command::new("sipp");
    c.arg("-sf")
        .arg(here().join(scenario))
        .args(extra)
        .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-m", "1"])
        .args(["-nostdin", "-timeout", "30s", "-timeout_error"])
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

fn sipp_ok(out: &Output) {
    assert!(
        out.status.success(),
        "sipp failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "needs sipp (run by .ci/run)"]
fn sipp_as_callee_holds_us_and_our_answers_follow_rfc_6337() {
    let port = free_port();
    // The scenario fails the call unless our answer to its sendonly hold is recvonly (or
    // inactive), and our answer to its resume is sendrecv.
    let sipp = sipp("uas_hold.xml", port, &[])
        .spawn()
        .expect("sipp is installed (Debian package sip-tester)");
    std::thread::sleep(Duration::from_millis(500));
    let server = format!("sip:127.0.0.1:{port}");
    let alice = softphone(&server, "alice", "unused", "smol")
        .args([
            "call",
            &format!("sip:service@127.0.0.1:{port}"),
            "--for",
            "3",
        ])
        .output()
        .unwrap();
    let sipp = sipp.wait_with_output().unwrap();
    ok("alice", &alice);
    sipp_ok(&sipp);
    let holds: Vec<bool> = lines(&alice)
        .iter()
        .filter(|l| l["event"] == "hold")
        .map(|l| l["remote"].as_bool().unwrap())
        .collect();
    assert_eq!(holds, [true, false], "held by SIPp, then resumed");
}

#[test]
#[ignore = "needs kamailio and sipp (run by .ci/run)"]
fn sipp_registers_through_kamailio_and_takes_our_call() {
    let k = Kamailio::start();
    let port = free_port();
    let registered = sipp("register.xml", port, &[])
        .arg(k.addr.to_string())
        .args(["-s", "dave", "-au", "dave", "-ap", "dave-pw"])
        .output()
        .expect("sipp is installed (Debian package sip-tester)");
    sipp_ok(&registered);
    let callee = sipp("uas_rr.xml", port, &[]).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let alice = softphone(&k.server(), "alice", "alice-pw", "tokio")
        .args(["call", "dave", "--for", "2"])
        .output()
        .unwrap();
    ok("alice", &alice);
    sipp_ok(&callee.wait_with_output().unwrap());
}

#[test]
#[ignore = "needs kamailio (run by .ci/run)"]
fn messages_and_a_wrong_password_at_kamailio() {
    let k = Kamailio::start();
    let carol = Running::spawn(
        softphone(&k.server(), "carol", "carol-pw", "smol")
            .arg("register")
            .stdin(Stdio::piped()),
    )
    .registered();
    let sent = softphone(&k.server(), "alice", "alice-pw", "tokio")
        .args(["message", "carol", "hello via kamailio"])
        .output()
        .unwrap();
    ok("alice", &sent);
    let mut carol = carol;
    drop(carol.take_stdin());
    let carol = carol.wait_with_output();
    ok("carol", &carol);
    assert!(
        lines(&carol)
            .iter()
            .any(|l| l["event"] == "message" && l["body"] == "hello via kamailio")
    );
    // Kamailio refuses a wrong password: one failure, no endless retry.
    let wrong = softphone(&k.server(), "bob", "not-bobs", "tokio")
        .arg("register")
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("Authentication"));
    // A message to someone not registered: Kamailio's 480 reaches the sender.
    let nobody = softphone(&k.server(), "alice", "alice-pw", "tokio")
        .args(["message", "bob", "anyone?"])
        .output()
        .unwrap();
    assert!(!nobody.status.success());
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("480"));
}

#[test]
#[ignore = "needs kamailio (run by .ci/run)"]
fn calls_across_tcp_and_websocket_through_kamailio() {
    let k = Kamailio::start();
    // (caller's transport, callee's, runtime, who hangs up)
    for (caller, callee, runtime, callee_hangs_up) in [
        ("ws", "tcp", "tokio", false),
        ("tcp", "ws", "smol", true),
        ("ws", "udp", "smol", false),
        ("udp", "ws", "tokio", true),
    ] {
        let label = format!("{caller}→{callee}");
        let (talk, keep) = if callee_hangs_up {
            ("20", "4")
        } else {
            ("4", "30")
        };
        let bob = Running::spawn(
            softphone(&k.server_on(callee), "bob", "bob-pw", runtime)
                .args(["--ca", &k.ca()])
                .args(["answer", "--for", keep, "--calls", "1"]),
        )
        .registered();
        let alice = softphone(&k.server_on(caller), "alice", "alice-pw", runtime)
            .args([
                "call",
                "bob",
                "--for",
                talk,
                "--hold-after",
                "1",
                "--unhold-after",
                "2",
            ])
            .args(["--dtmf", "7", "--message", "over streams"])
            .output()
            .unwrap();
        let bob = bob.wait_with_output();
        ok(&format!("alice on {caller}"), &alice);
        ok(&format!("bob on {callee}"), &bob);
        let bob = lines(&bob);
        assert!(
            bob.iter().any(|l| l["event"] == "dtmf" && l["tone"] == "7"),
            "{label}"
        );
        assert!(
            bob.iter()
                .any(|l| l["event"] == "message" && l["body"] == "over streams"),
            "{label}"
        );
        assert_eq!(
            bob.iter().filter(|l| l["event"] == "hold").count(),
            2,
            "{label}: held and resumed"
        );
        let originator = if callee_hangs_up { "local" } else { "remote" };
        assert!(
            bob.iter().any(|l| l["event"] == "ended"
                && l["cause"] == "bye"
                && l["originator"] == originator),
            "{label}: bob's call ended by {originator} BYE"
        );
    }
}

#[test]
#[ignore = "needs kamailio (run by .ci/run)"]
fn a_websocket_phone_reconnects_and_registers_again_after_a_server_restart() {
    let mut k = Kamailio::start();
    let carol = Running::spawn(
        softphone(&k.server_on("ws"), "carol", "carol-pw", "tokio")
            .arg("register")
            .stdin(Stdio::piped()),
    )
    .registered();
    k.restart();
    // The reconnect backoff starts at 1–2 s; give it the first attempt and a register.
    let start = Instant::now();
    let mut delivered = false;
    while start.elapsed() < Duration::from_secs(20) && !delivered {
        std::thread::sleep(Duration::from_millis(1000));
        let sent = softphone(&k.server(), "alice", "alice-pw", "tokio")
            .args(["message", "carol", "after the restart"])
            .output()
            .unwrap();
        delivered = sent.status.success();
    }
    let mut carol = carol;
    drop(carol.take_stdin());
    let carol = carol.wait_with_output();
    ok("carol", &carol);
    let carol = lines(&carol);
    assert!(
        delivered,
        "the message reached carol after the restart: {carol:?}"
    );
    assert!(carol.iter().any(|l| l["event"] == "disconnected"));
    assert!(carol.iter().filter(|l| l["event"] == "registered").count() >= 2);
    assert!(
        carol
            .iter()
            .any(|l| l["event"] == "message" && l["body"] == "after the restart")
    );
}

#[test]
#[ignore = "needs kamailio with TLS (run by .ci/run)"]
fn calls_over_tls_and_secure_websocket_verify_the_server() {
    let k = Kamailio::start();
    for (caller, callee, runtime) in [("tls", "wss", "tokio"), ("wss", "tls", "smol")] {
        let bob = answering_on(&k, callee, "bob", runtime, 1);
        let alice = softphone(&k.server_on(caller), "alice", "alice-pw", runtime)
            .args(["--ca", &k.ca()])
            .args([
                "call",
                "bob",
                "--for",
                "2",
                "--hold-after",
                "1",
                "--dtmf",
                "3",
            ])
            .output()
            .unwrap();
        let bob = bob.wait_with_output();
        ok(&format!("alice on {caller}"), &alice);
        ok(&format!("bob on {callee}"), &bob);
        let bob = lines(&bob);
        assert!(bob.iter().any(|l| l["event"] == "dtmf" && l["tone"] == "3"));
        assert!(
            bob.iter()
                .any(|l| l["event"] == "hold" && l["remote"] == true)
        );
    }
    // Without the test CA the certificate does not verify, and the phone says so.
    let refused = softphone(&k.server_on("tls"), "alice", "alice-pw", "tokio")
        .args(["message", "bob", "hi"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("certificate"), "{err}");
    // --insecure-tls skips verification (tests only). Nobody is registered as carol, so
    // Kamailio's 480 coming back proves the TLS link carried the request.
    let insecure = softphone(&k.server_on("wss"), "alice", "alice-pw", "tokio")
        .args(["--insecure-tls", "message", "carol", "anyone?"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&insecure.stderr);
    assert!(err.contains("480"), "{err}");
}

#[test]
#[ignore = "needs kamailio, node and `npm install` in tests/interop/node (run by .ci/run)"]
fn jssip_and_a_softphone_exchange_messages_through_kamailio() {
    let node_dir = here().join("node");
    assert!(
        node_dir.join("node_modules/jssip").exists(),
        "run `npm install` in {}",
        node_dir.display()
    );
    let k = Kamailio::start();
    let bob = Running::spawn(
        softphone(&k.server(), "bob", "bob-pw", "tokio")
            .arg("register")
            .stdin(Stdio::piped()),
    )
    .registered();
    let jssip = Command::new("node")
        .arg("jssip_messages.mjs")
        .arg(format!("ws://{}/", k.ws))
        .args(["carol", "carol-pw", "bob", "from jssip"])
        .current_dir(&node_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node is installed");
    // JsSIP registers, sends its MESSAGE, then waits for ours.
    let start = Instant::now();
    let mut sent = false;
    while !sent && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(500));
        let out = softphone(&k.server(), "bob", "bob-pw", "smol")
            .args(["message", "carol", "from sansip"])
            .output()
            .unwrap();
        sent = out.status.success();
    }
    let jssip = jssip.wait_with_output().unwrap();
    let mut bob = bob;
    drop(bob.take_stdin());
    let bob = bob.wait_with_output();
    ok("jssip", &jssip);
    ok("bob", &bob);
    assert!(sent, "our MESSAGE reached JsSIP");
    assert!(
        lines(&jssip)
            .iter()
            .any(|l| l["event"] == "message" && l["body"] == "from sansip")
    );
    assert!(
        lines(&bob)
            .iter()
            .any(|l| l["event"] == "message" && l["body"] == "from jssip")
    );
}

#[test]
#[ignore = "needs kamailio (run by .ci/run)"]
fn a_call_over_udp_survives_a_kamailio_restart() {
    let mut k = Kamailio::start();
    let bob = answering(&k, "bob", "tokio", 1);
    let alice = softphone(&k.server(), "alice", "alice-pw", "smol")
        .args([
            "call",
            "bob",
            "--for",
            "8",
            "--hold-after",
            "5",
            "--unhold-after",
            "6",
        ])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    // Mid-call: Kamailio loses every binding and transaction. Record-Route routing is
    // stateless, so the hold, resume and BYE after the restart still get through.
    k.restart();
    let alice = alice.wait_with_output().unwrap();
    let bob = bob.wait_with_output();
    ok("alice", &alice);
    ok("bob", &bob);
    let holds: Vec<bool> = lines(&bob)
        .iter()
        .filter(|l| l["event"] == "hold")
        .map(|l| l["remote"].as_bool().unwrap())
        .collect();
    assert_eq!(holds, [true, false]);
}

#[test]
#[ignore = "needs kamailio and dnsmasq (run by .ci/run)"]
fn a_server_named_only_by_its_domain_is_found_by_naptr_and_srv() {
    let k = Kamailio::start();
    let port = free_port();
    // DNS for the test domain: NAPTR → SRV over TCP → Kamailio on 127.0.0.1.
    let mut dns = Command::new("dnsmasq")
        .args([
            "--no-daemon",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
        ])
        .arg(format!("--port={port}"))
        .args([
            "--no-resolv",
            "--no-hosts",
            "--conf-file=/dev/null",
            "--user=root",
        ])
        .arg(format!(
            "--pid-file={}",
            k.dir.0.join("dnsmasq.pid").display()
        ))
        .arg("--naptr-record=sip.test,10,10,s,SIP+D2T,,_sip._tcp.sip.test")
        .arg(format!(
            "--srv-host=_sip._tcp.sip.test,proxy.sip.test,{},0,5",
            k.addr.port()
        ))
        .arg("--host-record=proxy.sip.test,127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dnsmasq is installed (Debian package dnsmasq-base)");
    // Wait until dnsmasq answers.
    let server: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    for _ in 0..50 {
        if sansip_tokio::media::driver::dns::resolve("sip:sip.test", Some(server))
            .is_ok_and(|t| !t.is_empty())
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = softphone("sip:sip.test", "alice", "alice-pw", "tokio")
        .args(["--dns", &format!("127.0.0.1:{port}")])
        .args(["message", "alice", "am I here?"])
        .output()
        .unwrap();
    let _ = dns.kill();
    let _ = dns.wait();
    // Nobody is registered as alice, so Kamailio answers the MESSAGE 480: which proves the
    // phone found Kamailio (over TCP) through NAPTR and SRV, and authenticated there.
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("480"), "{err}");
}
