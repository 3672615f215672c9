//! A softphone child process whose JSON lines are read as they come, so a test can wait for
//! an event (say `registered`) instead of sleeping and hoping.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub(crate) struct Running {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: JoinHandle<()>,
}

impl Running {
    /// Starts `cmd` with its stdout read line by line in the background.
    pub(crate) fn spawn(cmd: &mut Command) -> Running {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("the command starts");
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        Running {
            child,
            lines,
            reader,
        }
    }

    /// Waits (up to `timeout`) until a JSON line with `"event": event` has been printed.
    pub(crate) fn wait_for(&self, event: &str, timeout: Duration) -> bool {
        let needle = format!("\"event\":\"{event}\"");
        let step = Duration::from_millis(50);
        let mut waited = Duration::ZERO;
        while waited < timeout {
            if self
                .lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains(&needle))
            {
                return true;
            }
            std::thread::sleep(step);
            waited += step;
        }
        false
    }

    /// Waits for `registered`, failing the test if it does not come within 20 s.
    pub(crate) fn registered(self) -> Running {
        assert!(
            self.wait_for("registered", Duration::from_secs(20)),
            "the phone never registered: {:?}",
            self.lines.lock().unwrap()
        );
        self
    }

    /// What `softphone serve` printed once it serves (its `serving` step: addresses,
    /// domain), failing the test if that does not come within 20 s.
    pub(crate) fn serving(&self) -> serde_json::Value {
        assert!(
            self.wait_for("step", Duration::from_secs(20)),
            "{:?}",
            self.lines()
        );
        self.lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|l| l["step"] == "serving")
            .expect("the server prints where it serves")
    }

    /// Every line printed so far.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The child's stdin, when it was piped.
    pub(crate) fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.child.stdin.take()
    }

    /// Waits for the child to exit; stdout is every line it printed.
    pub(crate) fn wait_with_output(mut self) -> Output {
        let mut stderr = Vec::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_end(&mut stderr);
        }
        let status = self.child.wait().unwrap();
        let _ = self.reader.join();
        let mut stdout = self.lines.lock().unwrap().join("\n").into_bytes();
        stdout.push(b'\n');
        Output {
            status,
            stdout,
            stderr,
        }
    }
}

/// A directory under the system's temporary one, removed on drop (kept when `SANSIP_KEEP`
/// is set, to look at after a failure).
pub(crate) struct TempDir(pub(crate) std::path::PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "sansip-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("SANSIP_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Stops a child with SIGTERM, which makes Kamailio take its forked workers down too
/// (SIGKILL would leave them holding the sockets), then for sure.
pub(crate) fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The JSON lines a softphone printed.
pub(crate) fn lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// A `secs`-second 48 kHz mono 16-bit WAV of a `hz` tone: Chromium's fake microphone,
/// baresip's and linphone's (baresip's file source does not loop: make it outlast the call).
pub(crate) fn tone_wav(dir: &std::path::Path, hz: f64, secs: u32) -> std::path::PathBuf {
    let path = dir.join(format!("tone-{hz}.wav"));
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for i in 0..48_000 * secs {
        let t = f64::from(i) / 48_000.0;
        w.write_sample((f64::sin(std::f64::consts::TAU * hz * t) * 10_000.0) as i16)
            .unwrap();
    }
    w.finalize().unwrap();
    path
}

/// The dominant frequency and level of the loudest second of a recording's first channel
/// (holds make parts of it silent), and its length in seconds. Reads up to the first bad
/// sample: linphone's WAV header claims 44 bytes too many.
pub(crate) fn analyse(path: &std::path::Path) -> (Option<f64>, f64, f64) {
    use sansip_tokio::media::audio::analysis;
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = r.spec();
    let rate = spec.sample_rate as usize;
    let s: Vec<i16> = r
        .samples::<i16>()
        .map_while(Result::ok)
        .step_by(usize::from(spec.channels))
        .collect();
    let loudest = (0..s.len().saturating_sub(rate))
        .step_by(rate / 2)
        .map(|at| &s[at..at + rate])
        .max_by(|a, b| analysis::rms(a).total_cmp(&analysis::rms(b)))
        .unwrap_or(&s[..]);
    (
        analysis::dominant_frequency(loudest, rate as u32),
        analysis::rms(loudest),
        s.len() as f64 / rate as f64,
    )
}

/// A WAV recording, read whole. Its tests read it by what it holds, not by wall-clock
/// instants: a loaded machine's media clocks slip, and a recording may hold less time
/// than its phone ran.
pub(crate) struct Recording {
    rate: u32,
    samples: Vec<i16>,
}

impl Recording {
    pub(crate) fn open(path: &std::path::Path) -> Self {
        let mut r =
            hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let rate = r.spec().sample_rate;
        let samples = r.samples::<i16>().map_while(Result::ok).collect();
        Self { rate, samples }
    }

    pub(crate) fn secs(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.rate)
    }

    /// The amplitude of `hz` from `from` to `to` seconds.
    pub(crate) fn level(&self, hz: f64, from: f64, to: f64) -> f64 {
        let at = |t: f64| ((t.max(0.0) * f64::from(self.rate)) as usize).min(self.samples.len());
        2.0 * sansip_tokio::media::audio::analysis::goertzel(
            &self.samples[at(from)..at(to)],
            self.rate,
            hz,
        )
        .sqrt()
    }

    /// The start of each second of the recording, a quarter of a second apart.
    pub(crate) fn seconds(&self) -> impl Iterator<Item = f64> + '_ {
        (0..)
            .map(|k| f64::from(k) * 0.25)
            .take_while(|t| t + 1.0 <= self.secs())
    }

    /// Whether some second holds every tone of `heard` (above `min`) and none of `not`
    /// (below 300).
    pub(crate) fn some_second_with(&self, heard: &[f64], min: f64, not: &[f64]) -> bool {
        self.seconds().any(|t| {
            heard.iter().all(|hz| self.level(*hz, t, t + 1.0) > min)
                && not.iter().all(|hz| self.level(*hz, t, t + 1.0) < 300.0)
        })
    }

    /// Asserts what a participant `who` sending `own` hears in a mix of `tones`: some
    /// second holds every other tone (above `min`) and none of its own, and no second
    /// holds its own.
    pub(crate) fn assert_mix(&self, who: &str, own: f64, tones: &[f64], min: f64) {
        let others: Vec<f64> = tones.iter().copied().filter(|hz| *hz != own).collect();
        assert!(
            self.some_second_with(&others, min, &[own]),
            "{who} ({own} Hz) never hears {others:?} together in {:.1} s",
            self.secs()
        );
        let itself = self.loudest(own);
        assert!(itself < 300.0, "{who} hears itself: {itself:.0}");
    }

    /// The loudest second of `hz`, anywhere in the recording.
    pub(crate) fn loudest(&self, hz: f64) -> f64 {
        self.seconds()
            .map(|t| self.level(hz, t, t + 1.0))
            .fold(0.0, f64::max)
    }
}

/// A test CA (`ca.pem`) and a certificate it signs (`cert.pem`, key `key.pem`) for the
/// subject alternative names `alt_names` (`IP:127.0.0.1,DNS:localhost`), written to `dir`
/// by the `openssl` command. rustls refuses a self-signed CA certificate as the server's
/// own, hence the two.
pub(crate) fn certificates(dir: &std::path::Path, alt_names: &str) {
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
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=sansip test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "key.pem",
        "-out",
        "req.csr",
        "-subj",
        "/CN=sansip test server",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        format!("subjectAltName={alt_names}\nbasicConstraints=CA:FALSE\n"),
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "req.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
}
