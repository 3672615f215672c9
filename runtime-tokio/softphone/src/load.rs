//! `softphone load call|answer`: calls per second over UDP, for the loopback benchmark
//! (`scripts/loopback-bench.py`) and for anyone who wants a SIPp-style load generator.
//!
//! Both sides run the sans-IO [`UserAgent`] on one UDP socket and `poll(2)`, with no async
//! runtime: the deployment a load generator or a gateway would pick, and the one that
//! shows what the stack itself costs. Datagrams move in batches, `recvmmsg(2)` and
//! `sendmmsg(2)`: one system call and one wake-up serve many messages. Calls are signalling only (SDP from [`FakeSdp`], no
//! media), like SIPp's built-in `uac` and `uas` scenarios, so either side can face SIPp.
//!
//! Every run is bounded by a call count and a time limit, and ends with one JSON report:
//! calls completed and failed, retransmissions sent, and CPU per call from `getrusage`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::Write;
use std::io::{IoSlice, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use bytes::Bytes;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg, setsockopt,
    sockopt,
};
use sansip_media::core::session::{EndCause, FakeSdp, Originator};
use sansip_media::core::transport::{FlowId, FlowInfo, Transport};
use sansip_media::core::ua::{CallHandle, CallOptions, Event, Input, Output, UaConfig, UserAgent};
use serde_json::{Value, json};

/// Socket buffer size asked for, as SIPp's `-buff_size 8388608`.
const SOCKET_BUFFER: usize = 8 * 1024 * 1024;

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
    },
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
        } => {
            if !(rate.is_finite() && *rate > 0.0) {
                return Err(format!("--rate must be a positive number, not {rate}"));
            }
            let remote = target_address(target)?;
            let mut caller = Caller {
                target: target.clone(),
                interval: Duration::from_secs_f64(1.0 / rate),
                calls: *calls,
                hold: Duration::from_millis(*hold_ms),
                placed: 0,
                start: None,
                hangups: BinaryHeap::new(),
            };
            let mut report = drive(&mut caller, *bind, Some(remote), *calls, *max_seconds)?;
            report["rate"] = json!(rate);
            report["placed"] = json!(caller.placed);
            report
        }
        Load::Answer {
            bind,
            calls,
            max_seconds,
        } => drive(&mut Callee, *bind, None, *calls, *max_seconds)?,
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

/// Datagrams one `recvmmsg` or `sendmmsg` call moves at most.
const BATCH: usize = 32;

/// Datagrams handed to the UA before the loop looks at its timers again.
const DRAIN: usize = 256;

/// The socket and the flows on it: one per peer address.
struct Udp {
    socket: UdpSocket,
    local: SocketAddr,
    by_addr: HashMap<SocketAddr, FlowId>,
    by_flow: HashMap<FlowId, SocketAddr>,
    /// One whole-datagram buffer per message of a batch.
    bufs: Vec<Vec<u8>>,
    /// Transmits waiting for the next `sendmmsg`.
    out: Vec<(Bytes, SockaddrStorage)>,
}

impl Udp {
    fn flow(&mut self, ua: &mut UserAgent<FakeSdp>, remote: SocketAddr) -> FlowId {
        if let Some(flow) = self.by_addr.get(&remote) {
            return *flow;
        }
        let flow = ua.add_accepted_flow(FlowInfo {
            transport: Transport::Udp,
            local: self.local,
            remote,
        });
        self.by_addr.insert(remote, flow);
        self.by_flow.insert(flow, remote);
        flow
    }

    /// Hands every datagram waiting on the socket to the UA, up to [`DRAIN`], reading
    /// [`BATCH`] per system call; returns how many there were. Draining before the next
    /// wait is what keeps a busy load cheap: one wake-up serves many messages.
    fn drain(&mut self, ua: &mut UserAgent<FakeSdp>) -> Result<usize, String> {
        let mut got = 0;
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
        while got < DRAIN {
            let mut received = [(0usize, None::<SocketAddr>); BATCH];
            let n = {
                let mut iovs: Vec<[IoSliceMut<'_>; 1]> =
                    self.bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
                let fd = self.socket.as_raw_fd();
                match recvmmsg(
                    fd,
                    &mut headers,
                    iovs.iter_mut(),
                    MsgFlags::MSG_DONTWAIT,
                    None,
                ) {
                    Ok(results) => {
                        let mut n = 0;
                        for (slot, msg) in received.iter_mut().zip(results) {
                            *slot = (msg.bytes, msg.address.and_then(socket_addr));
                            n += 1;
                        }
                        n
                    }
                    Err(Errno::EAGAIN) => break,
                    // ICMP port unreachable from a peer that is not up yet: the transaction
                    // layer's retransmissions take care of it.
                    Err(Errno::ECONNREFUSED | Errno::EINTR) => continue,
                    Err(e) => return Err(format!("receive: {e}")),
                }
            };
            for (i, (len, from)) in received.iter().take(n).enumerate() {
                let Some(from) = *from else { continue };
                let flow = self.flow(ua, from);
                let bytes = Bytes::copy_from_slice(&self.bufs[i][..*len]);
                ua.handle_input(clock(), Input::Received { flow, bytes });
            }
            got += n;
            if n < BATCH {
                break;
            }
        }
        Ok(got)
    }

    /// Queues a datagram for the next [`Udp::flush`].
    fn send(&mut self, bytes: Bytes, to: SocketAddr) {
        self.out.push((bytes, SockaddrStorage::from(to)));
    }

    /// Sends the queued datagrams, [`BATCH`] per system call. A full socket buffer loses
    /// the rest of a batch, as the network would; retransmission covers it and the report
    /// counts it.
    fn flush(&mut self) {
        let fd = self.socket.as_raw_fd();
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
        let no_cmsgs: [ControlMessage<'_>; 0] = [];
        for chunk in self.out.chunks(BATCH) {
            let iovs: Vec<[IoSlice<'_>; 1]> =
                chunk.iter().map(|(b, _)| [IoSlice::new(b)]).collect();
            let addrs: Vec<Option<SockaddrStorage>> = chunk.iter().map(|(_, a)| Some(*a)).collect();
            let mut sent = 0;
            while sent < chunk.len() {
                match sendmmsg(
                    fd,
                    &mut headers,
                    &iovs[sent..],
                    &addrs[sent..],
                    no_cmsgs,
                    MsgFlags::MSG_DONTWAIT,
                ) {
                    Ok(results) => sent += results.count().max(1),
                    Err(Errno::EINTR) => {}
                    // Full buffer, or a peer not up yet: skip this datagram.
                    Err(_) => sent += 1,
                }
            }
        }
        self.out.clear();
    }

    /// Sleeps until a datagram arrives or `deadline` passes. Rounded up to the next
    /// millisecond, so the loop never spins; calls due meanwhile go out together.
    fn wait(&self, deadline: Instant) -> Result<(), String> {
        let wait = deadline.saturating_duration_since(clock());
        if wait.is_zero() {
            return Ok(());
        }
        let ms = u16::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.socket.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(_) | Err(Errno::EINTR) => Ok(()),
            Err(e) => Err(format!("poll: {e}")),
        }
    }
}

/// The address a datagram came from, when it is an IP one.
fn socket_addr(a: SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

/// Tallies for the report.
#[derive(Default)]
struct Tally {
    completed: u64,
    failed: u64,
    failures: HashMap<String, u64>,
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
    let socket = UdpSocket::bind(bind).map_err(|e| format!("bind {bind}: {e}"))?;
    let local = socket.local_addr().map_err(|e| format!("socket: {e}"))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| format!("socket: {e}"))?;
    // What SIPp's -buff_size does: bursts wait in the kernel instead of being dropped.
    // The kernel caps the size at net.core.[rw]mem_max; a refusal leaves the default.
    let _ = setsockopt(&socket, sockopt::RcvBuf, &SOCKET_BUFFER);
    let _ = setsockopt(&socket, sockopt::SndBuf, &SOCKET_BUFFER);
    let start = clock();
    let cpu_start = cpu_time();
    let mut config = UaConfig::new(format!("sip:load@{}", local.ip()));
    config.user_agent = Some("sansip-load".into());
    let mut ua = UserAgent::<FakeSdp>::new(config, start, u64::from(local.port()));
    let mut udp = Udp {
        socket,
        local,
        by_addr: HashMap::new(),
        by_flow: HashMap::new(),
        bufs: vec![vec![0; 65_536]; BATCH],
        out: Vec::with_capacity(BATCH),
    };
    if let Some(remote) = remote {
        let flow = udp.flow(&mut ua, remote);
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
        }
        while let Some(output) = ua.poll_output() {
            match output {
                Output::Transmit { flow, bytes } => {
                    if let Some(&to) = udp.by_flow.get(&flow) {
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
        if udp.drain(&mut ua)? > 0 {
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
        }
    }
    let cpu = cpu_time().saturating_sub(cpu_start);
    let stats = ua.stats();
    let busy = last_end.saturating_duration_since(first_call.unwrap_or(start));
    let settled = tally.completed + tally.failed;
    Ok(json!({
        "load": R::NAME,
        "local": local.to_string(),
        "calls": calls,
        "completed": tally.completed,
        "failed": tally.failed,
        "unfinished": calls.saturating_sub(settled),
        "failures": tally.failures,
        "retransmissions": stats.retransmissions,
        "elapsed_s": busy.as_secs_f64(),
        "calls_per_s": if busy.is_zero() { 0.0 } else { settled as f64 / busy.as_secs_f64() },
        "cpu_s": cpu.as_secs_f64(),
        "cpu_us_per_call": if settled == 0 { 0.0 } else { cpu.as_secs_f64() * 1e6 / settled as f64 },
    }))
}
