//! Interop with WebRTC-profile phones that are not browsers: baresip 1.0 and linphonec 5.1
//! (Debian), both with DTLS-SRTP and ICE, registered at Kamailio beside our softphone. Each
//! peer calls the softphone and is called by it; audio must cross both ways, as the tone
//! each side records proves (ours plays 440 Hz, the peer 880 Hz).
//!
//! Everything runs in a network namespace the test creates (`ip netns`), where `lo` also
//! carries 198.18.0.1: baresip will not work on 127.0.0.1 alone. The peers' configuration
//! templates and their quirks are in `tests/interop/peers/`. `#[ignore]`d in a plain
//! `cargo test` (they need root and the Debian packages `baresip-core`, `linphone-cli`
//! and `kamailio`); `.ci/run` installs those and runs them.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

mod common;
use common::{Running, TempDir, analyse, lines, stop, tone_wav};

/// The namespace's own address, on its `lo`.
const HOST: &str = "198.18.0.1";
const REGISTRAR: &str = "198.18.0.1:5060";
const PEER_PORT: u16 = 5062;
const OUR_TONE: f64 = 440.0;
const PEER_TONE: f64 = 880.0;

fn here() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// A network namespace of our own, deleted on drop (and its processes with it, as long as
/// they were started through [`Netns::cmd`] and killed by their owners).
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Netns {
        let ns = Netns::bare();
        ns.sh(&format!(
            "ip addr add {HOST}/32 dev lo && ip route add default dev lo src {HOST}"
        ));
        ns
    }

    /// A namespace with only `lo` up.
    fn bare() -> Netns {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "sansip-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("iproute2 is installed");
        assert!(ok.success(), "ip netns add needs root");
        let ns = Netns { name };
        ns.sh("ip link set lo up");
        ns
    }

    /// Runs `script` with `sh` in the namespace; it must succeed.
    fn sh(&self, script: &str) {
        let out = self.cmd("sh").args(["-c", script]).output().unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `program`, to be run inside the namespace.
    fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Waits until something listens on UDP `port` in the namespace.
    fn wait_udp(&self, port: u16) {
        self.wait_listening("-Hlun", "UDP", port);
    }

    fn wait_tcp(&self, port: u16) {
        self.wait_listening("-Hltn", "TCP", port);
    }

    /// Waits until `ss flags` lists a socket on `port`.
    fn wait_listening(&self, flags: &str, what: &str, port: u16) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            let out = self
                .cmd("ss")
                .args([flags, &format!("sport = :{port}")])
                .output()
                .unwrap();
            if !out.stdout.is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("nothing listens on {what} {port} in {}", self.name);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Kamailio with `tests/interop/kamailio.cfg` on 198.18.0.1:5060 in `ns`.
struct Kamailio(Child);

impl Kamailio {
    fn start(ns: &Netns, dir: &Path) -> Kamailio {
        Self::start_on(ns, dir, REGISTRAR)
    }

    fn start_on(ns: &Netns, dir: &Path, addr: &str) -> Kamailio {
        Self::start_multi(ns, dir, &[addr])
    }

    /// On several addresses at once, sending from the one that faces each destination.
    fn start_multi(ns: &Netns, dir: &Path, addrs: &[&str]) -> Kamailio {
        let addr = addrs[0];
        let mut c = ns.cmd("kamailio");
        c.arg("-f")
            .arg(here().join("kamailio.cfg"))
            .args(["-DD", "-E", "-m", "64", "-M", "8"]);
        if addrs.len() > 1 {
            c.args(["-A", "WITH_MHOMED"]);
        }
        for a in addrs {
            c.args(["-l", &format!("udp:{a}")]);
        }
        let child = c
            .arg("-w")
            .arg(dir)
            .arg("-P")
            .arg(dir.join("kamailio.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("kamailio is installed (Debian package kamailio)");
        ns.wait_udp(addr.rsplit(':').next().unwrap().parse().unwrap());
        Kamailio(child)
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        stop(&mut self.0);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Baresip,
    Linphone,
}

/// How the peer carries media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Media {
    /// `UDP/TLS/RTP/SAVPF` with ICE and DTLS-SRTP.
    DtlsIce,
    /// Plain `RTP/AVP`, no ICE.
    Plain,
    /// `RTP/SAVP` with SDES keys (baresip's `mediaenc=srtp-mand`).
    Sdes,
    /// Plain `RTP/AVP` with G.722 as the peer's only codec.
    PlainG722,
}

impl Media {
    /// The softphone's arguments for calling with this profile.
    fn ours(self) -> &'static [&'static str] {
        match self {
            Media::DtlsIce => &[],
            Media::Plain | Media::PlainG722 => &["--media-profile", "plain"],
            Media::Sdes => &["--media-profile", "sdes"],
        }
    }
}

/// baresip or linphonec as `bob` at Kamailio, playing [`PEER_TONE`], auto-answering.
struct Peer {
    kind: Kind,
    child: Child,
    /// linphonec's commands; it exits when its stdin closes.
    stdin: Option<ChildStdin>,
    dir: PathBuf,
}

impl Peer {
    /// Starts the peer; with `dial`, it calls that URI at once (baresip) or once registered
    /// (linphonec).
    fn start(ns: &Netns, kind: Kind, media: Media, dir: &Path, dial: Option<&str>) -> Peer {
        let tone = tone_wav(dir, PEER_TONE, 30);
        let (baresip_media, encryption, avpf, nat) = match media {
            Media::DtlsIce => (";mediaenc=dtls_srtp;medianat=ice", "dtls", "1", "ice_only"),
            Media::Plain | Media::PlainG722 => ("", "none", "0", "no_ice"),
            Media::Sdes => (";mediaenc=srtp-mand", "srtp", "0", "no_ice"),
        };
        let fill = |template: &str| {
            template
                .replace("@PORT@", &PEER_PORT.to_string())
                .replace("@DIR@", &dir.display().to_string())
                .replace("@TONE@", &tone.display().to_string())
                .replace("@CTRLPORT@", "4444")
                .replace("@RTPPORT@", "16000")
                .replace("@RTPPORTEND@", "16099")
                .replace("@USER@", "bob")
                .replace("@PASSWORD@", "bob-pw")
                .replace("@DOMAIN@", HOST)
                .replace("@REGISTRAR@", REGISTRAR)
                .replace(
                    "@AUDIO_CODECS@",
                    if media == Media::PlainG722 {
                        "g722/16000/1"
                    } else {
                        "opus/48000/2,pcmu"
                    },
                )
                .replace("@DEFAULT_PROXY@", "0")
                .replace("@OPUS@", "1")
                .replace("@MEDIA@", baresip_media)
                .replace("@ENCRYPTION@", encryption)
                .replace(
                    "@MANDATORY@",
                    if matches!(media, Media::Plain | Media::PlainG722) {
                        "0"
                    } else {
                        "1"
                    },
                )
                .replace("@AVPF@", avpf)
                .replace("@NAT_POLICY@", nat)
        };
        let template =
            |name: &str| std::fs::read_to_string(here().join("peers").join(name)).unwrap();
        let log = std::fs::File::create(dir.join("peer.log")).unwrap();
        let mut peer = match kind {
            Kind::Baresip => {
                std::fs::write(dir.join("config"), fill(&template("baresip/config"))).unwrap();
                std::fs::write(
                    dir.join("accounts"),
                    fill(&template("baresip/accounts.registrar")),
                )
                .unwrap();
                let mut c = ns.cmd("baresip");
                // -s: its SIP trace in the log, for when a test fails.
                c.arg("-f").arg(dir).args(["-s", "-t", "40"]);
                if let Some(uri) = dial {
                    c.args(["-e", &format!("/dial {uri}")]);
                }
                let child = c
                    .stdin(Stdio::null())
                    .stdout(log.try_clone().unwrap())
                    .stderr(log)
                    .spawn()
                    .expect("baresip is installed (Debian package baresip-core)");
                Peer {
                    kind,
                    child,
                    stdin: None,
                    dir: dir.to_path_buf(),
                }
            }
            Kind::Linphone => {
                // Without it liblinphone never opens its SIP port (README quirk 1).
                std::fs::create_dir_all(dir.join(".local/share/linphone")).unwrap();
                let rc = fill(&template("linphone/linphonerc"))
                    + &fill(&template("linphone/linphonerc.proxy"));
                std::fs::write(dir.join("linphonerc"), rc).unwrap();
                let mut child = ns
                    .cmd("env")
                    .arg(format!("HOME={}", dir.display()))
                    .arg("linphonec")
                    .arg("-c")
                    .arg(dir.join("linphonerc"))
                    .arg("-a")
                    // Its stdout is block-buffered into a file: the log says when it registered.
                    .args(["-d", "6", "-l"])
                    .arg(dir.join("linphone.log"))
                    .stdin(Stdio::piped())
                    .stdout(log.try_clone().unwrap())
                    .stderr(log)
                    .spawn()
                    .expect("linphonec is installed (Debian package linphone-cli)");
                let mut stdin = child.stdin.take();
                if let Some(s) = stdin.as_mut() {
                    writeln!(s, "soundcard use files").unwrap();
                    writeln!(s, "play {}", tone.display()).unwrap();
                    writeln!(s, "record {}", dir.join("rec.wav").display()).unwrap();
                }
                Peer {
                    kind,
                    child,
                    stdin,
                    dir: dir.to_path_buf(),
                }
            }
        };
        peer.wait_registered();
        if let (Some(uri), Some(s)) = (dial, peer.stdin.as_mut()) {
            writeln!(s, "call {uri}").unwrap();
        }
        peer
    }

    fn log(&self) -> String {
        let name = match self.kind {
            Kind::Baresip => "peer.log",
            Kind::Linphone => "linphone.log",
        };
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    fn wait_registered(&self) {
        let done = match self.kind {
            Kind::Baresip => "200 OK",
            Kind::Linphone => "to [LinphoneRegistrationOk]",
        };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if self.log().contains(done) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("{:?} did not register:\n{}", self.kind, self.log());
    }

    /// Ends the peer; the path of what it heard.
    fn finish(mut self) -> PathBuf {
        if let Some(mut s) = self.stdin.take() {
            let _ = writeln!(s, "terminate");
            std::thread::sleep(Duration::from_millis(500));
            let _ = writeln!(s, "quit");
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        stop(&mut self.child);
        match self.kind {
            Kind::Linphone => self.dir.join("rec.wav"),
            // sndfile writes what it decoded as dump-<time>-dec.wav.
            Kind::Baresip => std::fs::read_dir(&self.dir)
                .unwrap()
                .filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| p.to_string_lossy().ends_with("-dec.wav"))
                .unwrap_or_else(|| panic!("baresip recorded nothing:\n{}", self.log())),
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Our softphone as `alice` at Kamailio, inside `ns`, playing [`OUR_TONE`].
fn softphone(ns: &Netns) -> Command {
    let mut c = ns.cmd(env!("CARGO_BIN_EXE_softphone"));
    c.args(["--server", &format!("sip:{REGISTRAR}")])
        .args(["--aor", &format!("sip:alice@{HOST}")])
        .args(["--password", "alice-pw", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Checks both recordings and the softphone's own report of the call; prints the figures.
fn check(label: &str, out: &Output, ours: &Path, theirs: &Path, peer_log: &str) {
    assert!(
        out.status.success(),
        "{label}: the softphone failed: {}\n{}\npeer:\n{peer_log}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let lines = lines(out);
    let media = lines
        .iter()
        .find(|l| l["event"] == "media")
        .unwrap_or_else(|| panic!("{label}: no media line: {lines:?}"));
    let (hz_us, rms_us, _) = analyse(ours);
    let (hz_peer, rms_peer, _) = analyse(theirs);
    println!(
        "{label}: we heard {hz_us:?} Hz rms {rms_us:.0}, the peer heard {hz_peer:?} Hz rms {rms_peer:.0}; codec {}, packets sent {} received {}",
        media["codec"], media["packets_sent"], media["packets_received"]
    );
    let near = |hz: Option<f64>, want: f64| hz.is_some_and(|h| (h - want).abs() < 15.0);
    assert!(
        near(hz_us, PEER_TONE) && rms_us > 500.0,
        "{label}: we heard {hz_us:?} Hz rms {rms_us}"
    );
    assert!(
        near(hz_peer, OUR_TONE) && rms_peer > 500.0,
        "{label}: the peer heard {hz_peer:?} Hz rms {rms_peer}\n{peer_log}"
    );
}

/// One call between the softphone and a peer, both registered at Kamailio in a namespace of
/// their own; the softphone hangs up after `secs` (or when its media fails).
struct Call {
    label: String,
    media: Media,
    out: Output,
    /// What we recorded.
    ours: PathBuf,
    peer: Option<Peer>,
    peer_log: String,
    _dir: TempDir,
    _kamailio: Kamailio,
    _ns: Netns,
}

impl Call {
    /// With `peer_calls` the peer calls `sip:alice@…` and the softphone answers; else the
    /// peer waits and the softphone calls `sip:bob@…`.
    fn run(kind: Kind, media: Media, peer_calls: bool, secs: u32, extra: &[&str]) -> Call {
        let ns = Netns::new();
        let dir = TempDir::new("peers");
        let kamailio = Kamailio::start(&ns, &dir.0);
        let ours = dir.0.join("ours.wav");
        let peer_dir = dir.0.join("peer");
        std::fs::create_dir_all(&peer_dir).unwrap();
        let mut us = softphone(&ns);
        us.args(extra).args(media.ours());
        let (peer, out, label) = if peer_calls {
            us.args(["answer", "--for", &secs.to_string()]);
            let running = Running::spawn(with_audio(&mut us, &ours)).registered();
            let peer = Peer::start(
                &ns,
                kind,
                media,
                &peer_dir,
                Some(&format!("sip:alice@{HOST}")),
            );
            (
                peer,
                running.wait_with_output(),
                format!("{kind:?} calls us ({media:?})"),
            )
        } else {
            let peer = Peer::start(&ns, kind, media, &peer_dir, None);
            us.args([
                "call",
                &format!("sip:bob@{HOST}"),
                "--for",
                &secs.to_string(),
            ]);
            let out = with_audio(&mut us, &ours).output().unwrap();
            (peer, out, format!("we call {kind:?} ({media:?})"))
        };
        Call {
            label,
            media,
            out,
            ours,
            peer_log: peer.log(),
            peer: Some(peer),
            _dir: dir,
            _kamailio: kamailio,
            _ns: ns,
        }
    }

    /// Audio crossed both ways: each side heard the other's tone; and the descriptions the
    /// peer logged were of the profile asked for.
    fn check_audio(&mut self) {
        let log = &self.peer_log;
        let wanted: &[&str] = match self.media {
            Media::DtlsIce => &["UDP/TLS/RTP/SAVPF", "a=fingerprint:"],
            Media::Plain => &[" RTP/AVP "],
            Media::PlainG722 => &[" RTP/AVP ", "G722/8000"],
            Media::Sdes => &[" RTP/SAVP ", "a=crypto:"],
        };
        for w in wanted {
            assert!(
                log.contains(w),
                "{}: no {w:?} in the peer's log:\n{log}",
                self.label
            );
        }
        if self.media != Media::DtlsIce {
            assert!(!log.contains("a=fingerprint:"), "{}", self.label);
        }
        let theirs = self.peer.take().unwrap().finish();
        check(&self.label, &self.out, &self.ours, &theirs, &self.peer_log);
    }
}

fn with_audio<'a>(c: &'a mut Command, record: &Path) -> &'a mut Command {
    c.args(["--play", &format!("tone:{OUR_TONE}")])
        .arg("--record")
        .arg(record)
}

#[test]
#[ignore = "needs root, kamailio and linphone-cli (run by .ci/run)"]
fn linphonec_calls_our_softphone_with_dtls_srtp_and_ice() {
    Call::run(Kind::Linphone, Media::DtlsIce, true, 5, &[]).check_audio();
}

#[test]
#[ignore = "needs root, kamailio and linphone-cli (run by .ci/run)"]
fn our_softphone_calls_linphonec_with_dtls_srtp_and_ice() {
    Call::run(Kind::Linphone, Media::DtlsIce, false, 5, &[]).check_audio();
}

/// baresip 1.0 presents an RSA certificate. As the DTLS server, dimpl 0.9 (str0m's DTLS,
/// our default) asks only for `ecdsa_sign` certificates, so OpenSSL in baresip sends none and
/// the handshake fails (as a DTLS client we would need ECDHE_RSA suites, which dimpl lacks),
/// and baresip hangs up. Built with the `openssl` feature, the softphone does DTLS through
/// OpenSSL and the call has audio; without it, this checks what must hold: ICE completes
/// (no `a=ice-mismatch`: our default candidate is in `c=`/`m=`), the failure is DTLS's, and
/// no media is counted as received.
fn baresip_with_dtls_srtp_and_ice(peer_calls: bool) {
    if cfg!(feature = "openssl") {
        Call::run(Kind::Baresip, Media::DtlsIce, peer_calls, 5, &[]).check_audio();
        return;
    }
    let call = Call::run(
        Kind::Baresip,
        Media::DtlsIce,
        peer_calls,
        15,
        &["--media-timeout", "3"],
    );
    let log = &call.peer_log;
    assert!(
        log.contains("connectivity check is complete") && !log.contains("ice-mismatch"),
        "{}: ICE did not complete:\n{log}",
        call.label
    );
    assert!(
        log.contains("alert handshake failure"),
        "{}: {log}",
        call.label
    );
    let lines = lines(&call.out);
    let media = lines
        .iter()
        .find(|l| l["event"] == "media")
        .unwrap_or_else(|| panic!("{}: no media line: {lines:?}", call.label));
    assert_eq!(media["packets_received"], 0, "{}", call.label);
    println!(
        "{}: ICE completed, DTLS refused (RSA client certificate; build with `openssl`)",
        call.label
    );
}

#[test]
#[ignore = "needs root, kamailio and baresip-core (run by .ci/run)"]
fn baresip_calls_our_softphone_with_dtls_srtp_and_ice() {
    baresip_with_dtls_srtp_and_ice(true);
}

#[test]
#[ignore = "needs root, kamailio and baresip-core (run by .ci/run)"]
fn our_softphone_calls_baresip_with_dtls_srtp_and_ice() {
    baresip_with_dtls_srtp_and_ice(false);
}

#[test]
#[ignore = "needs root, kamailio and baresip-core (run by .ci/run)"]
fn baresip_calls_our_softphone_with_plain_rtp() {
    Call::run(Kind::Baresip, Media::Plain, true, 5, &[]).check_audio();
}

#[test]
#[ignore = "needs root, kamailio and baresip-core (run by .ci/run)"]
fn our_softphone_calls_baresip_with_plain_rtp() {
    Call::run(Kind::Baresip, Media::Plain, false, 5, &[]).check_audio();
}

#[test]
#[ignore = "needs root, kamailio and baresip-core (run by .ci/run)"]
fn baresip_calls_our_softphone_with_sdes_srtp() {
    Call::run(Kind::Baresip, Media::Sdes, true, 5, &[]).check_audio();
}

#[test]
#[ignore = "needs root, kamailio and baresip-core (run by .ci/run)"]
fn our_softphone_calls_baresip_with_sdes_srtp() {
    Call::run(Kind::Baresip, Media::Sdes, false, 5, &[]).check_audio();
}

#[test]
#[ignore = "needs root, kamailio and baresip-core (run by .ci/run)"]
fn baresip_calls_our_softphone_with_g722() {
    let call = Call::run(Kind::Baresip, Media::PlainG722, true, 5, &[]);
    g722_check(call);
}

#[test]
#[ignore = "needs root, kamailio and baresip-core (run by .ci/run)"]
fn our_softphone_calls_baresip_with_g722() {
    let call = Call::run(Kind::Baresip, Media::PlainG722, false, 5, &[]);
    g722_check(call);
}

/// Audio both ways, and G.722 is what we sent with.
fn g722_check(mut call: Call) {
    let media = lines(&call.out)
        .into_iter()
        .find(|l| l["event"] == "media")
        .unwrap();
    assert_eq!(media["codec"], "G722", "{}", call.label);
    call.check_audio();
}

#[test]
#[ignore = "needs root, kamailio and linphone-cli (run by .ci/run)"]
fn linphonec_calls_our_softphone_with_plain_rtp() {
    Call::run(Kind::Linphone, Media::Plain, true, 5, &[]).check_audio();
}

#[test]
#[ignore = "needs root, kamailio and linphone-cli (run by .ci/run)"]
fn our_softphone_calls_linphonec_with_plain_rtp() {
    Call::run(Kind::Linphone, Media::Plain, false, 5, &[]).check_audio();
}

/// Three namespaces in a row: `left` (L.2) — `middle` (L.1 and R.1) — `right` (R.2), for
/// /24 networks L and R. `left` routes everything through `middle`; `right` does so only
/// with `right_routes`. `middle_setup` runs in `middle`, with `{left}` and `{right}`
/// standing for its two links.
struct Lab {
    left: Netns,
    middle: Netns,
    right: Netns,
}

impl Lab {
    fn new(l: &str, r: &str, right_routes: bool, middle_setup: &str) -> Lab {
        static N: AtomicU32 = AtomicU32::new(0);
        let (left, middle, right) = (Netns::bare(), Netns::bare(), Netns::bare());
        let tag = format!(
            "s{}{}",
            std::process::id() % 10_000,
            N.fetch_add(1, Ordering::Relaxed)
        );
        let wire = |outer: &Netns, side: &str| {
            let (a, b) = (format!("{tag}{side}o"), format!("{tag}{side}m"));
            for args in [
                vec!["link", "add", &a, "type", "veth", "peer", "name", &b],
                vec!["link", "set", &a, "netns", &outer.name],
                vec!["link", "set", &b, "netns", &middle.name],
            ] {
                let ok = Command::new("ip").args(&args).status().unwrap();
                assert!(ok.success(), "ip {args:?}");
            }
            (a, b)
        };
        let (l0, l1) = wire(&left, "l");
        let (r0, r1) = wire(&right, "r");
        left.sh(&format!(
            "ip addr add {l}.2/24 dev {l0} && ip link set {l0} up && ip route add default via {l}.1"
        ));
        let route = if right_routes {
            format!(" && ip route add default via {r}.1")
        } else {
            String::new()
        };
        right.sh(&format!(
            "ip addr add {r}.2/24 dev {r0} && ip link set {r0} up{route}"
        ));
        middle.sh(&format!(
            "ip addr add {l}.1/24 dev {l1} && ip link set {l1} up && \
             ip addr add {r}.1/24 dev {r1} && ip link set {r1} up"
        ));
        middle.sh(&middle_setup.replace("{left}", &l1).replace("{right}", &r1));
        Lab {
            left,
            middle,
            right,
        }
    }

    /// A home network behind a NAT: `left` (192.168.7.2) routes through `middle`, which
    /// masquerades (nftables) what leaves towards `right` (10.9.0.0/24), where Kamailio, a
    /// STUN server (coturn) and the callee sit at 10.9.0.2. Nothing on the right can reach
    /// the left.
    ///
    /// The router drops what the right sends it unasked, as home routers do. Without that, the
    /// callee's first ICE checks to our server-reflexive address (they come before ours reach
    /// it) leave a conntrack entry that our own later packets to the callee collide with, and
    /// Linux maps them to another port: the call then runs on a peer-reflexive pair.
    fn nat() -> Lab {
        Lab::new(
            "192.168.7",
            "10.9.0",
            false,
            "sysctl -qw net.ipv4.ip_forward=1 && nft add table ip nat && \
             nft 'add chain ip nat post { type nat hook postrouting priority 100; }' && \
             nft add rule ip nat post oifname {right} masquerade && \
             nft add table ip filter && \
             nft 'add chain ip filter input { type filter hook input priority 0; }' && \
             nft add rule ip filter input iifname {right} ct state new drop",
        )
    }

    /// Two networks that cannot reach each other, `left` (10.1.0.2) and `right` (10.2.0.2),
    /// and between them `middle` (no forwarding) with Kamailio and a TURN server (coturn):
    /// the relay is the only path media can take.
    fn relay() -> Lab {
        Lab::new("10.1.0", "10.2.0", true, "sysctl -qw net.ipv4.ip_forward=0")
    }
}

/// The softphone as `user`@10.9.0.2 in `ns`, with Kamailio on the right as its server.
fn nat_phone(ns: &Netns, user: &str) -> Command {
    let mut c = ns.cmd(env!("CARGO_BIN_EXE_softphone"));
    c.args(["--server", "sip:10.9.0.2:5060"])
        .args(["--aor", &format!("sip:{user}@10.9.0.2")])
        .args(["--password", &format!("{user}-pw"), "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

#[test]
#[ignore = "needs root, nftables, coturn and kamailio (run by .ci/run)"]
fn behind_a_nat_the_server_reflexive_candidate_carries_the_call() {
    let lab = Lab::nat();
    let dir = TempDir::new("nat");
    let _k = Kamailio::start_on(&lab.right, &dir.0, "10.9.0.2:5060");
    let mut stun = lab
        .right
        .cmd("turnserver")
        .args(["--listening-ip", "10.9.0.2", "--listening-port", "3478"])
        .args(["--stun-only", "--no-cli", "--no-tls", "--no-dtls"])
        .args(["--log-file", "stdout"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("coturn is installed (Debian package coturn)");
    lab.right.wait_udp(3478);
    let (ours, theirs) = (dir.0.join("alice.wav"), dir.0.join("bob.wav"));
    let bob = Running::spawn(
        nat_phone(&lab.right, "bob")
            .args([
                "answer",
                "--for",
                "20",
                "--play",
                &format!("tone:{PEER_TONE}"),
            ])
            .arg("--record")
            .arg(&theirs),
    )
    .registered();
    let alice = nat_phone(&lab.left, "alice")
        .args(["--stun", "stun:10.9.0.2:3478", "--sip-trace"])
        .args(["call", "sip:bob@10.9.0.2", "--for", "5"])
        .args(["--play", &format!("tone:{OUR_TONE}")])
        .arg("--record")
        .arg(&ours)
        .output()
        .unwrap();
    let bob = bob.wait_with_output();
    stop(&mut stun);
    let trace = String::from_utf8_lossy(&alice.stderr);
    assert!(alice.status.success(), "alice: {trace}");
    assert!(
        bob.status.success(),
        "bob: {}",
        String::from_utf8_lossy(&bob.stderr)
    );
    // alice's offer has a server-reflexive candidate on the router's outside address, and
    // names it as the default.
    let invite = trace.split("INVITE sip:bob@").nth(1).unwrap();
    let srflx = invite
        .lines()
        .find(|l| l.contains("typ srflx"))
        .unwrap_or_else(|| panic!("no srflx candidate: {invite}"));
    let f: Vec<&str> = srflx.split_whitespace().collect();
    let reflexive = format!("{}:{}", f[4], f[5]);
    assert!(reflexive.starts_with("10.9.0.1:"), "{srflx}");
    assert!(invite.contains("c=IN IP4 10.9.0.1"), "{invite}");
    // bob sends to it: the nominated pair's remote end is alice's server-reflexive address.
    let media = lines(&bob)
        .into_iter()
        .find(|l| l["event"] == "media")
        .unwrap();
    assert_eq!(media["remote"], reflexive.as_str(), "{media}");
    let (hz_alice, rms_alice, _) = analyse(&ours);
    let (hz_bob, rms_bob, _) = analyse(&theirs);
    println!(
        "behind a NAT: alice's srflx {reflexive}; alice heard {hz_alice:?} Hz rms {rms_alice:.0}, bob heard {hz_bob:?} Hz rms {rms_bob:.0}"
    );
    let near = |hz: Option<f64>, want: f64| hz.is_some_and(|h| (h - want).abs() < 15.0);
    assert!(near(hz_alice, PEER_TONE) && rms_alice > 500.0);
    assert!(near(hz_bob, OUR_TONE) && rms_bob > 500.0);
}

/// How the phones reach the TURN server.
#[derive(Debug, Clone, Copy, PartialEq)]
enum TurnOver {
    Udp,
    Tcp,
    Tls,
}

#[test]
#[ignore = "needs root, coturn and kamailio (run by .ci/run)"]
fn when_only_a_turn_relay_joins_the_two_phones_the_call_goes_through_it() {
    through_turn(TurnOver::Udp);
}

#[test]
#[ignore = "needs root, coturn and kamailio (run by .ci/run)"]
fn turn_over_tcp_relays_the_call_as_well() {
    through_turn(TurnOver::Tcp);
}

#[test]
#[ignore = "needs root, coturn, openssl and kamailio (run by .ci/run)"]
fn turns_over_tls_relays_the_call_as_well() {
    through_turn(TurnOver::Tls);
}

/// Two phones that cannot reach each other, a TURN server (coturn) both can reach `over`
/// UDP, TCP or TLS: the call's audio must cross both ways through the relay.
fn through_turn(over: TurnOver) {
    let lab = Lab::relay();
    let dir = TempDir::new("relay");
    let _k = Kamailio::start_multi(&lab.middle, &dir.0, &["10.1.0.1:5060", "10.2.0.1:5060"]);
    let mut turn = lab.middle.cmd("turnserver");
    turn.args(["--listening-ip", "10.1.0.1", "--listening-ip", "10.2.0.1"])
        .args(["--relay-ip", "10.1.0.1", "--listening-port", "3478"])
        .args(["--lt-cred-mech", "--realm", "sansip.test"])
        .args(["--user", "alice:alice-turn", "--user", "bob:bob-turn"])
        .args(["--no-cli", "--no-dtls", "--log-file", "stdout"]);
    if over == TurnOver::Tls {
        common::certificates(&dir.0, "IP:10.1.0.1,IP:10.2.0.1");
        turn.args(["--tls-listening-port", "5349", "--cert"])
            .arg(dir.0.join("cert.pem"))
            .arg("--pkey")
            .arg(dir.0.join("key.pem"));
    } else {
        turn.arg("--no-tls");
    }
    let mut turn = turn
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("coturn is installed (Debian package coturn)");
    lab.middle.wait_udp(3478);
    match over {
        TurnOver::Udp => {}
        TurnOver::Tcp => lab.middle.wait_tcp(3478),
        TurnOver::Tls => lab.middle.wait_tcp(5349),
    }
    let ca = dir.0.join("ca.pem");
    let phone = |ns: &Netns, user: &str, side: &str| {
        let mut c = ns.cmd(env!("CARGO_BIN_EXE_softphone"));
        c.args(["--server", &format!("sip:{side}:5060")])
            .args(["--aor", &format!("sip:{user}@example.com")])
            .args(["--password", &format!("{user}-pw"), "--json"])
            .args(["--log", "sansip_media::turn=debug"]);
        match over {
            TurnOver::Udp => c.args(["--turn", &format!("turn:{side}:3478")]),
            TurnOver::Tcp => c.args(["--turn", &format!("turn:{side}:3478?transport=tcp")]),
            TurnOver::Tls => c
                .args(["--turn", &format!("turns:{side}:5349"), "--ca"])
                .arg(&ca),
        };
        c.args([
            "--turn-user",
            user,
            "--turn-password",
            &format!("{user}-turn"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        c
    };
    let (ours, theirs) = (dir.0.join("alice.wav"), dir.0.join("bob.wav"));
    let bob = Running::spawn(
        phone(&lab.right, "bob", "10.2.0.1")
            .args([
                "answer",
                "--for",
                "20",
                "--play",
                &format!("tone:{PEER_TONE}"),
            ])
            .arg("--record")
            .arg(&theirs),
    )
    .registered();
    let alice = phone(&lab.left, "alice", "10.1.0.1")
        .args(["--sip-trace", "call", "sip:bob@example.com", "--for", "5"])
        .args(["--play", &format!("tone:{OUR_TONE}")])
        .arg("--record")
        .arg(&ours)
        .output()
        .unwrap();
    let bob = bob.wait_with_output();
    stop(&mut turn);
    let trace = String::from_utf8_lossy(&alice.stderr);
    // Each phone gave its allocation back at its end, and coturn confirmed it.
    for (who, err) in [("alice", &alice.stderr), ("bob", &bob.stderr)] {
        let err = String::from_utf8_lossy(err);
        assert!(
            err.contains("TURN allocation released"),
            "{who}: no confirmed release: {err}"
        );
        // The allocation was made over the transport asked for.
        let made = err
            .lines()
            .find(|l| l.contains("TURN allocation") && l.contains("relayed="))
            .unwrap_or_else(|| panic!("{who}: no allocation: {err}"));
        assert!(
            made.contains(&format!("transport={over:?}")),
            "{who}: {made}"
        );
    }
    assert!(alice.status.success(), "alice: {trace}");
    assert!(
        bob.status.success(),
        "bob: {}",
        String::from_utf8_lossy(&bob.stderr)
    );
    let invite = trace.split("INVITE sip:bob@").nth(1).unwrap();
    assert!(invite.contains("typ relay"), "{invite}");
    assert!(
        invite.contains("c=IN IP4 10.1.0.1"),
        "the relayed one is the default: {invite}"
    );
    let (hz_alice, rms_alice, _) = analyse(&ours);
    let (hz_bob, rms_bob, _) = analyse(&theirs);
    let media = lines(&bob)
        .into_iter()
        .find(|l| l["event"] == "media")
        .unwrap();
    println!(
        "through TURN over {over:?}: alice heard {hz_alice:?} Hz rms {rms_alice:.0}, bob heard {hz_bob:?} Hz rms {rms_bob:.0}; bob sent to {}",
        media["remote"]
    );
    let near = |hz: Option<f64>, want: f64| hz.is_some_and(|h| (h - want).abs() < 15.0);
    assert!(near(hz_alice, PEER_TONE) && rms_alice > 500.0);
    assert!(near(hz_bob, OUR_TONE) && rms_bob > 500.0);
}
