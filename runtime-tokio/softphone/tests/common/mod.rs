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
