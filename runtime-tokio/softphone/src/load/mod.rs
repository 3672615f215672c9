//! `softphone load call|answer`: calls per second over UDP, for the loopback benchmark
//! (`scripts/loopback-bench.py`) and for anyone who wants a SIPp-style load generator.
//!
//! Both sides run the sans-IO [`UserAgent`] on one UDP socket and `poll(2)`, with no async
//! runtime: the deployment a load generator or a gateway would pick, and the one that
//! shows what the stack itself costs. Datagrams move in batches, `recvmmsg(2)` and
//! `sendmmsg(2)`: one system call and one wake-up serve many messages. Calls are
//! signalling only (SDP from [`FakeSdp`], no media) and made as SIPp's built-in `uac` and
//! `uas` scenarios make them (no reliable provisionals, so no PRACK, and no session
//! timer), so either side can face SIPp and a pair of ours exchanges the same seven
//! messages a call.
//!
//! Every run is bounded by a call count and a time limit, and ends with one JSON report:
//! calls completed and failed, retransmissions sent, and CPU per call from `getrusage`.

mod floor;
mod phone;
mod udp;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use nix::sys::resource::{UsageWho, getrusage};
use sansip_media::core::session::{EndCause, FakeSdp, Originator};
use sansip_media::core::transport::{FlowId, FlowInfo, Transport};
use sansip_media::core::ua::{CallHandle, CallOptions, Event, Input, Output, UaConfig, UserAgent};
use serde_json::{Value, json};

/// How long the callee keeps answering once its calls are done and the line is quiet:
/// twice T1, so a BYE resent once still gets its 200.
const LINGER: Duration = Duration::from_secs(1);

/// What `softphone load` does.
#[derive(clap::Subcommand, Debug, Clone)]
pub(crate) enum Load {
    /// Place calls at a steady rate; each is hung up once answered (after `--hold-ms`).
    Call {
        /// Who to call, e.g. sip:load@127.0.0.1:5070 (its host and port are where the
        /// INVITEs go).
        target: String,
        /// Calls started per second.
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        /// How many calls to place.
        #[arg(long, default_value_t = 1000)]
        calls: u64,
        /// How long each call lasts once answered, in milliseconds.
        #[arg(long, default_value_t = 0)]
        hold_ms: u64,
        /// Local address to send from.
        #[arg(long, default_value = "127.0.0.1:0")]
        bind: SocketAddr,
        /// Give up after this many seconds, whatever is left.
        #[arg(long, default_value_t = 60)]
        max_seconds: u64,
        /// What runs the calls.
        #[arg(long, value_enum, default_value_t = Engine::SansIo)]
        engine: Engine,
    },
    /// Answer every call at once and count those the caller ends with BYE.
    Answer {
        /// Local address to listen on.
        #[arg(long, default_value = "127.0.0.1:5070")]
        bind: SocketAddr,
        /// Exit once this many calls have ended.
        #[arg(long, default_value_t = 1000)]
        calls: u64,
        /// Give up after this many seconds, whatever is left.
        #[arg(long, default_value_t = 60)]
        max_seconds: u64,
        /// What runs the calls (both sides of a load must use the same engine).
        #[arg(long, value_enum, default_value_t = Engine::SansIo)]
        engine: Engine,
    },
}

/// What runs the calls of a load.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Engine {
    /// The sans-IO `UserAgent` on one socket and `poll(2)`, no async runtime.
    SansIo,
    /// The async `Phone` on a one-thread tokio runtime: what the convenient API costs.
    Phone,
    /// No SIP at all: the same seven datagrams per call over the same batched socket
    /// (the kernel's floor, for the loopback benchmark).
    Floor,
}

/// Runs a load command to its end and prints its report as one JSON line.
pub(crate) fn run(load: &Load) -> Result<(), String> {
    let report = match load {
        Load::Call {
            target,
            rate,
            calls,
            hold_ms,
            bind,
            max_seconds,
            engine,
        } => {
            if !(rate.is_finite() && *rate > 0.0) {
                return Err(format!("--rate must be a positive number, not {rate}"));
            }
            let remote = target_address(target)?;
            let interval = Duration::from_secs_f64(1.0 / rate);
            let hold = Duration::from_millis(*hold_ms);
            let mut report = match engine {
                Engine::SansIo => {
                    let mut caller = Caller {
                        target: target.clone(),
                        interval,
                        calls: *calls,
                        hold,
                        placed: 0,
                        start: None,
                        hangups: BinaryHeap::new(),
                    };
                    drive(&mut caller, *bind, Some(remote), *calls, *max_seconds)?
                }
                Engine::Phone => {
                    phone::call(target, remote, interval, *calls, hold, *bind, *max_seconds)?
                }
                Engine::Floor => floor::call(remote, interval, *calls, *bind, *max_seconds)?,
            };
            report["rate"] = json!(rate);
            report
        }
        Load::Answer {
            bind,
            calls,
            max_seconds,
            engine,
        } => match engine {
            Engine::SansIo => drive(&mut Callee, *bind, None, *calls, *max_seconds)?,
            Engine::Phone => phone::answer(*bind, *calls, *max_seconds)?,
            Engine::Floor => floor::answer(*bind, *calls, *max_seconds)?,
        },
    };
    println!("{report}");
    // As SIPp does: a run with calls that did not complete exits non-zero.
    let completed = report["completed"].as_u64().unwrap_or(0);
    let calls = report["calls"].as_u64().unwrap_or(0);
    if completed < calls {
        return Err(format!(
            "{} of {calls} calls did not complete",
            calls - completed
        ));
    }
    Ok(())
}

/// The host and port of a `sip:` target: where the INVITEs go.
fn target_address(target: &str) -> Result<SocketAddr, String> {
    use sansip_media::core::message::{Host, Scheme, Uri};
    let uri = Uri::parse(target).map_err(|e| format!("{target:?}: {e}"))?;
    if !matches!(uri.scheme(), Scheme::Sip) {
        return Err(format!("{target:?}: the load target must be a sip: URI"));
    }
    let needs_ip_port = || format!("{target:?}: the load target needs an IP:port host");
    let ip = match uri.host() {
        Some(Host::Ipv4(a)) => std::net::IpAddr::V4(a),
        Some(Host::Ipv6(a)) => std::net::IpAddr::V6(a),
        _ => return Err(needs_ip_port()),
    };
    let port = uri.port().ok_or_else(needs_ip_port)?;
    Ok(SocketAddr::new(ip, port))
}

/// One side of the load: what to do when the clock or an event comes.
trait Role {
    const NAME: &'static str;
    /// The next instant this role wants the clock for, beyond the UA's own timers.
    fn next_wake(&self) -> Option<Instant>;
    /// Does what is due at `now` (place calls, hang up).
    fn tick(&mut self, ua: &mut UserAgent<FakeSdp>, now: Instant);
    /// Reacts to one event; returns whether it ended a call well (`Some(true)`) or badly.
    fn on_event(&mut self, ua: &mut UserAgent<FakeSdp>, now: Instant, event: Event)
    -> Option<bool>;
}

struct Caller {
    target: String,
    interval: Duration,
    calls: u64,
    hold: Duration,
    placed: u64,
    /// When the first call went out; the others are paced from it.
    start: Option<Instant>,
    /// Answered calls and when to hang each up.
    hangups: BinaryHeap<Reverse<(Instant, CallHandle)>>,
}

impl Caller {
    /// When the next call is due.
    fn due(&self) -> Option<Instant> {
        let start = self.start?;
        (self.placed < self.calls).then(|| start + self.interval.mul_f64(self.placed as f64))
    }
}

impl Role for Caller {
    const NAME: &'static str = "caller";

    fn next_wake(&self) -> Option<Instant> {
        let hangup = self.hangups.peek().map(|Reverse((at, _))| *at);
        [self.due(), hangup].into_iter().flatten().min()
    }

    fn tick(&mut self, ua: &mut UserAgent<FakeSdp>, now: Instant) {
        self.start.get_or_insert(now);
        while self.due().is_some_and(|at| at <= now) {
            self.placed += 1;
            // The target was checked up front, so a refusal here cannot happen; it would
            // show in the report as an unfinished call.
            let _ = ua.call(
                now,
                &self.target,
                CallOptions::default(),
                FakeSdp::new("load"),
            );
        }
        while let Some(Reverse((at, call))) = self.hangups.peek().copied() {
            if at > now {
                break;
            }
            self.hangups.pop();
            let _ = ua.hangup(now, call);
        }
    }

    fn on_event(
        &mut self,
        ua: &mut UserAgent<FakeSdp>,
        now: Instant,
        event: Event,
    ) -> Option<bool> {
        match event {
            Event::CallAnswered { call, .. } if self.hold.is_zero() => {
                let _ = ua.hangup(now, call);
                None
            }
            Event::CallAnswered { call, .. } => {
                self.hangups.push(Reverse((now + self.hold, call)));
                None
            }
            Event::CallEnded { end, .. } => {
                Some(end.cause == EndCause::Bye && end.originator == Originator::Local)
            }
            _ => None,
        }
    }
}

struct Callee;

impl Role for Callee {
    const NAME: &'static str = "callee";

    fn next_wake(&self) -> Option<Instant> {
        None
    }

    fn tick(&mut self, _: &mut UserAgent<FakeSdp>, _: Instant) {}

    fn on_event(
        &mut self,
        ua: &mut UserAgent<FakeSdp>,
        now: Instant,
        event: Event,
    ) -> Option<bool> {
        match event {
            Event::IncomingCall { call, .. } => {
                let _ = ua.answer(now, call, FakeSdp::new("load"));
                None
            }
            Event::CallEnded { end, .. } => {
                Some(end.cause == EndCause::Bye && end.originator == Originator::Remote)
            }
            _ => None,
        }
    }
}

/// The settings of a load's user agent: the calls SIPp's built-in `uac` and `uas` make (no
/// reliable provisionals, so no PRACK, and no session timer), so that either side can face
/// SIPp and a pair of ours exchanges the same seven messages a call.
fn load_config(local: SocketAddr) -> UaConfig {
    let mut config = UaConfig::new(format!("sip:load@{}", local.ip()));
    config.user_agent = Some("sansip-load".into());
    config.reliable_provisionals = false;
    config.session_expires = None;
    config
}

/// The UA's flows on the socket: one per peer address.
#[derive(Default)]
struct Flows {
    by_addr: HashMap<SocketAddr, FlowId>,
    by_flow: HashMap<FlowId, SocketAddr>,
}

impl Flows {
    fn flow(
        &mut self,
        ua: &mut UserAgent<FakeSdp>,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> FlowId {
        if let Some(flow) = self.by_addr.get(&remote) {
            return *flow;
        }
        let flow = ua.add_accepted_flow(FlowInfo {
            transport: Transport::Udp,
            local,
            remote,
        });
        self.by_addr.insert(remote, flow);
        self.by_flow.insert(flow, remote);
        flow
    }
}

/// Tallies for the report.
#[derive(Default)]
struct Tally {
    completed: u64,
    failed: u64,
    failures: HashMap<String, u64>,
    /// Times the loop slept in `poll(2)`, and times it woke for a timer of the UA's: what
    /// a call costs in wake-ups.
    waits: u64,
    timer_wakes: u64,
    /// Requests and responses the UA sent again.
    retransmissions: u64,
}

/// The wall clock: this is the I/O side of the stack, where time comes from.
#[allow(clippy::disallowed_methods)]
fn clock() -> Instant {
    Instant::now()
}

/// User plus system CPU time of this process so far.
fn cpu_time() -> Duration {
    let Ok(usage) = getrusage(UsageWho::RUSAGE_SELF) else {
        return Duration::ZERO;
    };
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec().max(0) as u64)
            + Duration::from_micros(t.tv_usec().max(0) as u64)
    };
    tv(usage.user_time()) + tv(usage.system_time())
}

/// Runs one role until `calls` calls ended or `max_seconds` passed, then reports.
fn drive<R: Role>(
    role: &mut R,
    bind: SocketAddr,
    remote: Option<SocketAddr>,
    calls: u64,
    max_seconds: u64,
) -> Result<Value, String> {
    let mut udp = udp::BatchSocket::bind(bind)?;
    let local = udp.local();
    let start = clock();
    let cpu_start = cpu_time();
    let config = load_config(local);
    let mut ua = UserAgent::<FakeSdp>::new(config, start, u64::from(local.port()));
    let mut flows = Flows::default();
    if let Some(remote) = remote {
        let flow = flows.flow(&mut ua, local, remote);
        ua.set_outbound_flow(flow);
    }
    if remote.is_none() {
        // Whoever starts the caller may have asked for port 0: say where we are.
        println!(
            "{}",
            json!({ "load": R::NAME, "listening": local.to_string() })
        );
        let _ = std::io::stdout().flush();
    }
    let give_up = start + Duration::from_secs(max_seconds);
    let mut tally = Tally::default();
    let mut first_call: Option<Instant> = None;
    let mut last_end = start;
    let mut last_heard = start;
    loop {
        let now = clock();
        role.tick(&mut ua, now);
        if ua.poll_timeout().is_some_and(|t| t <= now) {
            ua.handle_timeout(now);
            tally.timer_wakes += 1;
        }
        while let Some(output) = ua.poll_output() {
            match output {
                Output::Transmit { flow, bytes } => {
                    if let Some(&to) = flows.by_flow.get(&flow) {
                        udp.send(bytes, to);
                    }
                }
                Output::Event(event) => {
                    if matches!(
                        event,
                        Event::IncomingCall { .. } | Event::CallAnswered { .. }
                    ) {
                        first_call.get_or_insert(now);
                    }
                    let failure = match &event {
                        Event::CallEnded { end, .. } => Some(end.cause.as_str().to_string()),
                        _ => None,
                    };
                    match role.on_event(&mut ua, now, event) {
                        Some(true) => tally.completed += 1,
                        Some(false) => {
                            tally.failed += 1;
                            *tally
                                .failures
                                .entry(failure.unwrap_or_default())
                                .or_default() += 1;
                        }
                        None => {}
                    }
                    if tally.completed + tally.failed > 0 {
                        last_end = now;
                    }
                }
                _ => {}
            }
        }
        udp.flush();
        let ended = tally.completed + tally.failed >= calls;
        // The caller waits for its BYEs' answers. The callee stays a little longer, as
        // SIPp's uas does: if its 200 to the last BYE was lost, the caller resends the BYE
        // after T1, and an exited callee would leave it to time out.
        let done = match remote {
            Some(_) => ua.requests_in_flight() == 0,
            None => now.saturating_duration_since(last_heard) >= LINGER,
        };
        if (ended && done) || now >= give_up {
            break;
        }
        let got = udp.drain(|from, datagram| {
            let flow = flows.flow(&mut ua, local, from);
            let bytes = Bytes::copy_from_slice(datagram);
            ua.handle_input(clock(), Input::Received { flow, bytes });
        })?;
        if got > 0 {
            last_heard = now;
        } else {
            // The callee also wakes when its linger is over: its transactions' timers may
            // be far off (Timer J, 32 s), and it would otherwise sleep to `give_up`.
            let linger_over = remote.is_none().then_some(last_heard + LINGER);
            let deadline = [
                role.next_wake(),
                ua.poll_timeout(),
                linger_over,
                Some(give_up),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(give_up);
            udp.wait(deadline)?;
            tally.waits += 1;
        }
    }
    let busy = last_end.saturating_duration_since(first_call.unwrap_or(start));
    tally.retransmissions = ua.stats().retransmissions;
    Ok(report(
        R::NAME,
        Engine::SansIo,
        local,
        calls,
        &tally,
        busy,
        cpu_time().saturating_sub(cpu_start),
    ))
}

/// The JSON line a load ends with; `busy` is the time from the first call to the last end.
fn report(
    name: &str,
    engine: Engine,
    local: SocketAddr,
    calls: u64,
    tally: &Tally,
    busy: Duration,
    cpu: Duration,
) -> Value {
    let settled = tally.completed + tally.failed;
    json!({
        "load": name,
        // Its name on the command line.
        "engine": clap::ValueEnum::to_possible_value(&engine).map(|v| v.get_name().to_owned()),
        "local": local.to_string(),
        "calls": calls,
        "completed": tally.completed,
        "failed": tally.failed,
        "unfinished": calls.saturating_sub(settled),
        "failures": tally.failures,
        "retransmissions": tally.retransmissions,
        "waits": tally.waits,
        "timer_wakes": tally.timer_wakes,
        "elapsed_s": busy.as_secs_f64(),
        "calls_per_s": if busy.is_zero() { 0.0 } else { settled as f64 / busy.as_secs_f64() },
        "cpu_s": cpu.as_secs_f64(),
        "cpu_us_per_call": if settled == 0 { 0.0 } else { cpu.as_secs_f64() * 1e6 / settled as f64 },
    })
}
