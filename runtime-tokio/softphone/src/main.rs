//! `softphone`: the command-line phone, and the project's demo.
//!
//! ```text
//! softphone demo [--json]
//! softphone [OPTIONS] register [--expires SECS]
//! softphone [OPTIONS] call TARGET [--for SECS] [--hold-after SECS] [--unhold-after SECS]
//!                                 [--dtmf DIGITS] [--message TEXT] [--header "Name: value"]...
//! softphone [OPTIONS] answer [--for SECS] [--calls N]
//! softphone [OPTIONS] message TARGET TEXT
//! softphone [OPTIONS] console
//! softphone load call TARGET [--rate CPS] [--calls N] [--hold-ms MS] [--engine E]
//! softphone load answer [--bind IP:PORT] [--calls N] [--engine E]
//! ```
//!
//! Signalling runs on UDP, TCP, TLS, WebSocket and secure WebSocket; calls carry real
//! WebRTC media (ICE, DTLS-SRTP; Opus, G.711; RFC 4733 DTMF) on a second UDP socket.
//! `call` and `answer` take `--play tone:HZ|FILE.wav`, `--record FILE.wav`,
//! `--play-video FILE.ivf` and `--record-video FILE.ivf`; a `media` event with the call's
//! statistics is printed when each call ends.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use futures::channel::mpsc;
use futures::{FutureExt, StreamExt};
use sansip_media::audio::{
    AudioFrame, AudioSink, AudioSource, Recorder, Ringback, Silence, Tone, WavSink, WavSource,
    analysis,
};
use sansip_media::core::auth::{AuthError, DigestCredentials};
use sansip_media::core::e164::DialPlan;
use sansip_media::core::message::HeaderName;
use sansip_media::core::registrar::RegistrarConfig;
use sansip_media::core::registration::RegistrationCause;
use sansip_media::core::session::{
    CallDetails, CallDirection, CallEnd, CallHandle, EndCause, Originator,
};
use sansip_media::core::subscription::SubState;
use sansip_media::core::subscription::dialog_info;
use sansip_media::core::subscription::message_summary::{self, MessageCounts, MessageSummary};
use sansip_media::core::subscription::pidf::{self, Presence};
use sansip_media::core::transport::Transport;
use sansip_media::core::ua::{
    CallOptions, Event, Gateway, NumberForm, OfferMethod, PublishOptions, RegisterOptions,
    SubscribeOptions, UaConfig, UaError,
};
use sansip_media::driver::{
    Focus, FocusConfig, Phone, PhoneBuilder, PhoneConfig, PhoneError, RegistrarServer, RoomEvent,
    Runtime, Target, TlsOptions, WeakPhone,
};
use sansip_media::video::{IvfReader, IvfWriter, VideoCodec};
use sansip_media::{DtmfMethod, IceServer, MediaProfile, MediaStats, RtcSession};
use serde_json::{Value, json};

mod load;

type Ph = Phone<RtcSession>;
type PhCall = sansip_media::driver::Call<RtcSession>;

#[derive(Parser, Debug)]
#[command(name = "softphone", version, about = "A SIP softphone on sansip")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Server: sip:host:port;transport=udp|tcp|tls, or ws://host:port/path, wss://….
    #[arg(long, global = true)]
    server: Option<String>,
    /// Our address-of-record, e.g. sip:alice@example.com.
    #[arg(long, global = true)]
    aor: Option<String>,
    /// Digest user name (default: the AOR's user).
    #[arg(long, global = true)]
    user: Option<String>,
    /// Digest password. A flag shows in `ps`: prefer --password-file, SANSIP_PASSWORD, or
    /// the prompt a terminal gets when neither is given.
    #[arg(long, global = true)]
    password: Option<String>,
    /// Read the digest password from the first line of this file.
    #[arg(long, global = true, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Async runtime to run on.
    #[arg(long, global = true, value_enum, default_value_t = RuntimeKind::Tokio)]
    runtime: RuntimeKind,
    /// One JSON object per line on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Print every SIP message sent and received on stderr (credentials redacted), as
    /// SIP.js's traceSip does.
    #[arg(long, global = true)]
    sip_trace: bool,
    /// Log level for stderr (error, warn, info, debug, trace, or a RUST_LOG-style filter);
    /// default: RUST_LOG, else warn.
    #[arg(long, global = true)]
    log: Option<String>,
    /// Accept any TLS certificate (tests only).
    #[arg(long, global = true)]
    insecure_tls: bool,
    /// Register as this instance (`urn:uuid:…`, RFC 5626 `+sip.instance`): a registrar
    /// then grants a GRUU (RFC 5627), which becomes our calls' Contact.
    #[arg(long, global = true, value_name = "URN")]
    instance_id: Option<String>,
    /// Trust this CA or certificate file for TLS.
    #[arg(long, global = true)]
    ca: Option<PathBuf>,
    /// DNS server (IP:PORT) for locating `sip:domain` servers by NAPTR/SRV (RFC 3263);
    /// default: the system's (/etc/resolv.conf, with /etc/hosts first).
    #[arg(long, global = true)]
    dns: Option<SocketAddr>,
    /// Seconds a call's media (ICE and DTLS) may take to connect after the answer; past
    /// that the call is hung up as "media failed" and the command fails.
    #[arg(long, global = true, default_value_t = 10, value_name = "SECS")]
    media_timeout: u64,
    /// A STUN server (`stun:host[:port]`) to learn our media address behind a NAT from;
    /// may be given more than once.
    #[arg(long = "stun", global = true, value_name = "URL")]
    stun: Vec<String>,
    /// A TURN server (`turn:host[:port]`, UDP) to relay our media through when no direct
    /// path exists; with --turn-user and --turn-password.
    #[arg(long = "turn", global = true, value_name = "URL")]
    turn: Option<String>,
    /// The TURN username.
    #[arg(long, global = true, requires = "turn")]
    turn_user: Option<String>,
    /// The TURN password.
    #[arg(long, global = true, requires = "turn")]
    turn_password: Option<String>,
    /// How DTMF is sent: RFC 4733 in the media when negotiated (auto), always RFC 4733,
    /// or SIP INFO.
    #[arg(long, global = true, value_enum, default_value_t = DtmfArg::Auto)]
    dtmf_method: DtmfArg,
    /// How our offers carry audio; an answer follows the peer's offer whatever this says.
    #[arg(long, global = true, value_enum, default_value_t = ProfileArg::Webrtc)]
    media_profile: ProfileArg,
    /// Play this ringback tone into the recording while the far end rings without early
    /// media.
    #[arg(long, global = true, value_enum, value_name = "COUNTRY")]
    ringback: Option<RingbackArg>,
    /// Share our calls with whoever subscribes to our `dialog` events (RFC 4235): the
    /// busy lamp of desk phones and operator consoles.
    #[arg(long, global = true)]
    share_calls: bool,
    /// A gateway to the telephone network (`sip:host[:port][;transport=…]`): `call` then
    /// takes phone numbers (`+46 8 123 456 78`, or national ones with --dial-plan), sent as
    /// `sip:+46812345678@host;user=phone` through the server.
    #[arg(long, global = true, value_name = "URI")]
    gateway: Option<String>,
    /// How dialled numbers become E.164: COUNTRY:NATIONAL:INTERNATIONAL prefixes, e.g.
    /// `46:0:00` (Sweden) or `1::011` (NANP).
    #[arg(long, global = true, requires = "gateway", value_name = "PLAN")]
    dial_plan: Option<String>,
    /// Send numbers as `tel:` URIs instead of `sip:…;user=phone`.
    #[arg(long, global = true, requires = "gateway")]
    gateway_tel: bool,
    /// The gateway's digest user name, when it is not the registrar's.
    #[arg(long, global = true, requires = "gateway")]
    gateway_user: Option<String>,
    /// The gateway's digest password.
    #[arg(long, global = true, requires = "gateway_user")]
    gateway_password: Option<String>,
    /// P-Asserted-Identity for calls through the gateway (RFC 3325), e.g.
    /// `<sip:+46812345678@example.com>`.
    #[arg(long, global = true, requires = "gateway", value_name = "URI")]
    asserted_identity: Option<String>,
    /// Privacy for calls through the gateway (RFC 3323), e.g. `id`.
    #[arg(long, global = true, requires = "gateway")]
    privacy: Option<String>,
}

/// The `--gateway` options as a [`Gateway`].
fn gateway(cli: &Cli) -> Result<Option<Gateway>, String> {
    let Some(uri) = &cli.gateway else {
        return Ok(None);
    };
    let mut gw = Gateway::new(uri.as_str());
    if let Some(plan) = &cli.dial_plan {
        let parts: Vec<&str> = plan.split(':').collect();
        let [cc, national, international] = parts[..] else {
            return Err(format!(
                "--dial-plan {plan:?}: expected COUNTRY:NATIONAL:INTERNATIONAL, e.g. 46:0:00"
            ));
        };
        if cc.is_empty() || !cc.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("--dial-plan {plan:?}: the country code is digits"));
        }
        gw = gw.with_dial_plan(DialPlan::national(cc, national, international));
    }
    if cli.gateway_tel {
        gw = gw.with_form(NumberForm::Tel);
    }
    if let Some(user) = &cli.gateway_user {
        let pw = cli.gateway_password.clone().unwrap_or_default();
        gw = gw.with_credentials(DigestCredentials::new(user.as_str(), pw));
    }
    if let Some(pai) = &cli.asserted_identity {
        gw = gw.with_asserted_identity(pai.as_str());
    }
    if let Some(privacy) = &cli.privacy {
        gw = gw.with_privacy(privacy.as_str());
    }
    Ok(Some(gw))
}

/// Whether a call target is a phone number rather than a SIP address: digits with an
/// optional leading `+` and visual separators, nothing else.
fn is_phone_number(target: &str) -> bool {
    let t = target.trim();
    let t = t.strip_prefix('+').unwrap_or(t);
    t.bytes().any(|b| b.is_ascii_digit())
        && t.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b' ' | b'-' | b'.' | b'(' | b')'))
}

/// Which national ringback tone (`Ringback`).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum RingbackArg {
    /// 425 Hz, 1 s on, 4 s off.
    Europe,
    /// 440 + 480 Hz, 2 s on, 4 s off.
    NorthAmerica,
    /// 400 + 450 Hz, double ring.
    Uk,
}

/// How our offers carry audio (`MediaProfile`).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum ProfileArg {
    /// WebRTC: ICE and DTLS-SRTP (`UDP/TLS/RTP/SAVPF`).
    Webrtc,
    /// SRTP keyed in the SDP (`RTP/SAVP` with `a=crypto`).
    Sdes,
    /// Plain RTP (`RTP/AVP`), as trunks and desk phones.
    Plain,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum DtmfArg {
    Auto,
    Rfc4733,
    Info,
}

/// What a call plays and records.
#[derive(clap::Args, Debug, Clone, Default)]
struct MediaArgs {
    /// Audio to send: `tone:HZ` or a 16-bit WAV file.
    #[arg(long)]
    play: Option<String>,
    /// Record received audio to this WAV file (16 kHz mono).
    #[arg(long)]
    record: Option<PathBuf>,
    /// Send what this microphone hears (`default`, or a name from `devices`).
    #[cfg(feature = "devices")]
    #[arg(long, value_name = "DEVICE", conflicts_with = "play")]
    mic: Option<String>,
    /// Play the call on this speaker (`default`, or a name from `devices`).
    #[cfg(feature = "devices")]
    #[arg(long, value_name = "DEVICE", conflicts_with = "record")]
    speaker: Option<String>,
    /// Send VP8 frames from this IVF file (offers video).
    #[arg(long)]
    play_video: Option<PathBuf>,
    /// Record received VP8 video to this IVF file (offers video).
    #[arg(long)]
    record_video: Option<PathBuf>,
}

impl MediaArgs {
    /// Fails on a source that cannot play, a recording that cannot be written, or a video
    /// file that cannot be read, before anything is sent.
    fn check(&self) -> Result<(), String> {
        if let Some(spec) = &self.play {
            source(spec)?;
        }
        if let Some(path) = &self.play_video {
            IvfReader::open(path).map_err(|e| format!("--play-video {}: {e}", path.display()))?;
        }
        for (flag, path) in [
            ("--record", &self.record),
            ("--record-video", &self.record_video),
        ] {
            let Some(path) = path else { continue };
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => std::path::Path::new("."),
            };
            if !dir.is_dir() {
                return Err(format!(
                    "{flag} {}: the directory {} does not exist",
                    path.display(),
                    dir.display()
                ));
            }
            if path.is_dir() {
                return Err(format!("{flag} {}: is a directory", path.display()));
            }
        }
        Ok(())
    }

    fn video(&self) -> bool {
        self.play_video.is_some() || self.record_video.is_some()
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum RuntimeKind {
    Tokio,
    Smol,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Two phones and the embedded registrar on loopback: register, call with audio both
    /// ways, hold, DTMF, messages, hang up, media statistics.
    Demo,
    /// The embedded server on its own: a registrar and proxy for the `--account`s (UDP, and
    /// WebSocket with --ws for browsers), with a conference focus that answers every
    /// `room-<id>` of the domain and mixes each room, and keeps the members of every
    /// `group-<name>` (whose phones call each other); prints who joins and leaves rooms.
    /// Runs until stdin closes, a signal arrives, or --for runs out.
    Serve {
        /// Where to take SIP over UDP.
        #[arg(long, default_value = "127.0.0.1:5060")]
        listen: SocketAddr,
        /// Where to take SIP over WebSocket too.
        #[arg(long, value_name = "ADDR")]
        ws: Option<SocketAddr>,
        /// The domain served (and the digest realm).
        #[arg(long, default_value = "example.com")]
        domain: String,
        /// An account allowed to register, NAME:PASSWORD; repeatable.
        #[arg(long = "account", value_name = "NAME:PASSWORD")]
        users: Vec<String>,
        /// Rooms open at once.
        #[arg(long, default_value_t = 16)]
        max_rooms: usize,
        /// Participants in one room.
        #[arg(long, default_value_t = 16)]
        max_participants: usize,
        /// Stop after this many seconds.
        #[arg(long = "for", value_name = "SECS")]
        duration: Option<u64>,
    },
    /// Register and stay registered until stdin closes or a signal arrives.
    Register {
        /// Requested expiry in seconds.
        #[arg(long, default_value_t = 600)]
        expires: u32,
    },
    /// Place a call.
    Call {
        /// A SIP URI, user@domain, a user, a tel: URI, or with --gateway a phone number.
        target: String,
        /// Hang up after this many seconds of talk.
        #[arg(long = "for", default_value_t = 10)]
        duration: u64,
        /// Hold after this many seconds from the answer.
        #[arg(long)]
        hold_after: Option<u64>,
        /// Resume after this many seconds from the answer.
        #[arg(long)]
        unhold_after: Option<u64>,
        /// DTMF digits to send after the answer.
        #[arg(long)]
        dtmf: Option<String>,
        /// A MESSAGE to send inside the call after the answer.
        #[arg(long)]
        message: Option<String>,
        /// Restart ICE after this many seconds from the answer: a new offer by UPDATE (by
        /// re-INVITE when the peer does not allow UPDATE).
        #[arg(long, value_name = "SECS")]
        ice_restart_after: Option<u64>,
        /// Extra INVITE header, "Name: value"; repeatable.
        #[arg(long = "header")]
        headers: Vec<String>,
        /// The target is a conference room's id: join `sip:room-<id>@<our domain>`.
        #[arg(long)]
        room: bool,
        /// The target is a group's name: join `sip:group-<name>@<our domain>` and call
        /// every member (an all-to-all call); --play goes to each, --record gets them all
        /// mixed; leave after --for seconds.
        #[arg(long, conflicts_with_all = ["room", "hold_after", "unhold_after", "dtmf", "message", "ice_restart_after"])]
        group: bool,
        #[command(flatten)]
        media: MediaArgs,
    },
    /// Register and answer incoming calls.
    Answer {
        /// Keep each call this many seconds (or until the caller hangs up).
        #[arg(long = "for", default_value_t = 10)]
        duration: u64,
        /// How many calls to answer before exiting.
        #[arg(long, default_value_t = 1)]
        calls: u32,
        /// Hold after this many seconds from the answer.
        #[arg(long)]
        hold_after: Option<u64>,
        /// Resume after this many seconds from the answer.
        #[arg(long)]
        unhold_after: Option<u64>,
        /// DTMF digits to send after the answer.
        #[arg(long)]
        dtmf: Option<String>,
        /// Send early media first: 183 with our answer (reliable when the caller supports
        /// 100rel), our audio playing, and answer after this many seconds.
        #[arg(long, value_name = "SECS")]
        early_media: Option<u64>,
        /// Transfer the caller to this target (RFC 3515 REFER) a second after answering.
        #[arg(long, value_name = "TARGET")]
        transfer_to: Option<String>,
        #[command(flatten)]
        media: MediaArgs,
    },
    /// Subscribe to someone's events (RFC 6665), print each NOTIFY, and unsubscribe after
    /// a while; fails if the subscription ends first.
    Subscribe {
        /// Who to subscribe to.
        target: String,
        /// The event package.
        #[arg(long, default_value = "message-summary")]
        event: String,
        /// Unsubscribe after this many seconds.
        #[arg(long = "for", default_value_t = 10)]
        duration: u64,
    },
    /// Publish our presence (RFC 3903, PIDF) to the server for a while, keep it fresh,
    /// and remove it at the end.
    Publish {
        /// Closed (away) instead of open.
        #[arg(long)]
        closed: bool,
        /// A note to show with it.
        #[arg(long)]
        note: Option<String>,
        /// An activity (RFC 4480), e.g. `on-the-phone`, `away`, `busy`.
        #[arg(long)]
        activity: Option<String>,
        /// Stop after this many seconds.
        #[arg(long = "for", default_value_t = 10)]
        duration: u64,
    },
    /// Serve voicemail waiting (RFC 3842): register, and answer every `message-summary`
    /// subscription with these counts, for a while.
    Mwi {
        /// New voice messages.
        #[arg(long, default_value_t = 0)]
        new: u32,
        /// Old voice messages.
        #[arg(long, default_value_t = 0)]
        old: u32,
        /// Stop after this many seconds.
        #[arg(long = "for", default_value_t = 30)]
        duration: u64,
    },
    /// Send one MESSAGE.
    Message {
        /// Who to send to.
        target: String,
        /// The text.
        text: String,
    },
    /// Interactive commands on stdin, one per line (`help` lists them).
    Console,
    /// List the audio devices `--mic` and `--speaker` take.
    #[cfg(feature = "devices")]
    Devices,
    /// Signalling-only calls per second over UDP, SIPp style, on the sans-IO user agent
    /// with no async runtime; prints one JSON report.
    #[command(subcommand)]
    Load(load::Load),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // --log wins, then RUST_LOG, then warnings only; --sip-trace adds the message trace.
    let mut filter = cli
        .log
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "warn".into());
    if cli.sip_trace {
        filter = format!("{filter},{}=debug", sansip_media::core::trace::TARGET);
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match (&cli.command, cli.runtime) {
        (Command::Load(l), _) => load::run(l),
        (_, RuntimeKind::Tokio) => match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(run(cli, Arc::new(sansip_tokio::TokioRuntime))),
            Err(e) => Err(format!("cannot start tokio: {e}")),
        },
        (_, RuntimeKind::Smol) => smol::block_on(run(cli, Arc::new(sansip_smol::SmolRuntime))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("softphone: {reason}");
            ExitCode::FAILURE
        }
    }
}

/// Prints events and steps, as text or JSON lines.
#[derive(Debug, Clone, Copy)]
struct Out {
    json: bool,
}

impl Out {
    fn emit(&self, who: &str, mut v: Value) {
        if let Value::Object(m) = &mut v {
            m.insert("who".into(), json!(who));
            // Seconds since the Unix epoch, to the microsecond: JSON lines from several
            // processes can be merged in order.
            let ts = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| (d.as_micros() as f64) / 1e6);
            m.insert("ts".into(), json!(ts));
        }
        if self.json {
            println!("{v}");
            return;
        }
        let Value::Object(m) = v else {
            return;
        };
        let kind = m
            .get("step")
            .or(m.get("event"))
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string();
        let rest: Vec<String> = m
            .iter()
            .filter(|(k, v)| !["event", "step", "who"].contains(&k.as_str()) && !v.is_null())
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect();
        println!("{who:>6}: {kind} {}", rest.join(" "));
    }

    fn step(&self, who: &str, step: &str, detail: Value) {
        // Steps are events too for scripts reading `--json`: `"event": "step"`.
        let mut v = json!({ "event": "step", "step": step });
        if let (Value::Object(m), Value::Object(d)) = (&mut v, detail) {
            m.extend(d);
        }
        self.emit(who, v);
    }

    /// Prints a call's details once it has ended: `"event": "details"`, its instants as
    /// Unix seconds, and the final response that ended it when there was one.
    fn details(&self, who: &str, d: &CallDetails) {
        // The core's instants are monotonic: place them on the wall clock from now.
        let (mono, wall) = (Instant::now(), std::time::SystemTime::now());
        let unix = |t: Instant| {
            let at = wall - mono.saturating_duration_since(t);
            at.duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| (d.as_micros() as f64) / 1e6)
        };
        let end = d.end.as_ref();
        let response = end.and_then(|e| e.response.as_deref());
        self.emit(
            who,
            json!({
                "event": "details",
                "call": d.call.to_string(),
                "direction": match d.direction {
                    CallDirection::Outgoing => "outgoing",
                    CallDirection::Incoming => "incoming",
                },
                "call_id": d.call_id,
                "local": d.local,
                "remote": d.remote,
                "asserted": d.asserted,
                "started": unix(d.started),
                "progressed": d.progressed.map(unix),
                "established": d.established.map(unix),
                "ended": d.ended.map(unix),
                "duration": d.duration(mono).as_secs_f64(),
                "cause": end.map(|e| e.cause.as_str()),
                "originator": end.map(|e| json!(e.originator)),
                "status": end.and_then(|e| e.status),
                "reason": response.map(|r| r.reason.as_str()),
                "warning": response.and_then(|r| r.warning.as_deref()),
                "retry_after": response.and_then(|r| r.retry_after),
                "headers": response.map(|r| {
                    r.headers.iter().map(|(n, v)| format!("{n}: {v}")).collect::<Vec<_>>()
                }),
            }),
        );
    }

    /// Prints an event; `call_id` is the SIP Call-ID of the call it is about, if known.
    fn event(&self, who: &str, e: &Event, call_id: Option<&str>) {
        let mut v = event_json(e);
        if let (Value::Object(m), Some(id)) = (&mut v, call_id) {
            m.insert("call_id".into(), json!(id));
        }
        self.emit(who, v);
    }
}

/// An event as its JSON line: sip-core's own serialization (feature `serde`).
fn event_json(e: &Event) -> Value {
    serde_json::to_value(e)
        .unwrap_or_else(|err| json!({"event": e.name(), "error": err.to_string()}))
}

async fn sleep(rt: &Arc<dyn Runtime>, d: Duration) {
    rt.sleep_until(rt.now() + d).await;
}

/// `fut`, or an error naming `what` after `secs` seconds.
async fn within<T>(
    rt: &Arc<dyn Runtime>,
    secs: u64,
    what: &str,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, String> {
    futures::select_biased! {
        v = fut.fuse() => Ok(v),
        () = sleep(rt, Duration::from_secs(secs)).fuse() => Err(format!("{what}: timed out after {secs} s")),
    }
}

/// Prints every event of `phone` and forwards it to the returned receiver; the returned
/// `Printed` completes once the phone has stopped and every event is printed.
async fn watch(
    rt: &Arc<dyn Runtime>,
    phone: &Ph,
    who: &'static str,
    out: Out,
) -> (mpsc::UnboundedReceiver<Event>, Printed) {
    let (tx, rx) = mpsc::unbounded();
    let (done_tx, done) = futures::channel::oneshot::channel();
    let mut events = phone.take_events().await;
    // Weak: the task must not keep the phone alive (its end ends the event stream).
    let weak = phone.downgrade();
    rt.spawn(Box::pin(async move {
        let mut call_ids: HashMap<CallHandle, String> = HashMap::new();
        if let Some(events) = events.as_mut() {
            while let Some(e) = events.next().await {
                let call_id = match e.call() {
                    Some(id) => {
                        if !call_ids.contains_key(&id)
                            && let Some(found) = sip_call_id(&weak, id, &e).await
                        {
                            call_ids.insert(id, found);
                        }
                        let known = call_ids.get(&id).cloned();
                        if matches!(e, Event::CallEnded { .. }) {
                            call_ids.remove(&id);
                        }
                        known
                    }
                    None => None,
                };
                out.event(who, &e, call_id.as_deref());
                if let Event::CallEnded { details, .. } = &e {
                    out.details(who, details);
                }
                let _ = tx.unbounded_send(e);
            }
        }
        let _ = done_tx.send(());
    }));
    (rx, Printed(done))
}

/// The SIP Call-ID of call `id`: from the INVITE's headers for an incoming call, else asked
/// of the user agent.
async fn sip_call_id(phone: &WeakPhone<RtcSession>, id: CallHandle, e: &Event) -> Option<String> {
    if let Event::IncomingCall { headers, .. } = e {
        return headers.get(HeaderName::CallId).map(str::to_string);
    }
    let phone = phone.upgrade()?;
    phone
        .with(move |ua, _| ua.sip_call_id(id).map(str::to_string).ok())
        .await
        .ok()
        .flatten()
}

/// Completes when a phone's events are all printed.
struct Printed(futures::channel::oneshot::Receiver<()>);

impl Printed {
    /// Stops `phone` and waits for the last of its events to be printed, so a command's
    /// output is complete when it exits.
    async fn finish(self, rt: &Arc<dyn Runtime>, phone: Ph) {
        // Ends what is left (calls, the registration) and gives TURN allocations back.
        if let Err(e) = phone.shutdown(Duration::from_secs(2)).await {
            tracing::debug!(error = %e, "shutdown");
        }
        drop(phone);
        let _ = within(rt, 5, "stop", self.0).await;
    }
}

/// The next event `f` picks out, within `secs`.
async fn expect<T>(
    rt: &Arc<dyn Runtime>,
    rx: &mut mpsc::UnboundedReceiver<Event>,
    secs: u64,
    what: &str,
    mut f: impl FnMut(&Event) -> Option<T>,
) -> Result<T, String> {
    within(rt, secs, what, async {
        while let Some(e) = rx.next().await {
            if let Some(v) = f(&e) {
                return Ok(v);
            }
        }
        Err(format!("{what}: the phone stopped"))
    })
    .await?
}

fn err(what: &str) -> impl Fn(PhoneError) -> String + '_ {
    move |e| format!("{what}: {e}")
}

async fn run(cli: Cli, rt: Arc<dyn Runtime>) -> Result<(), String> {
    let out = Out { json: cli.json };
    match &cli.command {
        Command::Demo => demo(rt, out).await,
        Command::Serve {
            listen,
            ws,
            domain,
            users,
            max_rooms,
            max_participants,
            duration,
        } => {
            let mut focus = FocusConfig::default();
            focus.max_rooms = *max_rooms;
            focus.max_participants = *max_participants;
            let site = Site {
                listen: *listen,
                ws: *ws,
                domain: domain.clone(),
                users: users.clone(),
                focus,
            };
            serve(rt, out, site, *duration).await
        }
        Command::Register { expires } => {
            let phone = connected(&cli, &rt).await?;
            let (_events, printed) = watch(&rt, &phone, "me", out).await;
            register(&rt, &phone, cli.instance_id.as_deref(), *expires).await?;
            shutdown_signal(true).await;
            let result = phone.unregister(false).await.map_err(err("unregister"));
            printed.finish(&rt, phone).await;
            result
        }
        Command::Call {
            target,
            duration,
            hold_after,
            unhold_after,
            dtmf,
            message,
            ice_restart_after,
            headers,
            room,
            group,
            media,
        } => {
            media.check()?;
            let phone = connected(&cli, &rt).await?;
            let (mut events, printed) = watch(&rt, &phone, "me", out).await;
            if *group {
                let result = in_group(
                    &rt,
                    &phone,
                    target,
                    *duration,
                    media,
                    cli.instance_id.as_deref(),
                )
                .await;
                printed.finish(&rt, phone).await;
                return result;
            }
            let result = async {
                let mut options = CallOptions::default();
                for h in headers {
                    let (name, value) = h
                        .split_once(':')
                        .ok_or_else(|| format!("--header {h:?}: expected \"Name: value\""))?;
                    options = options.header(name.trim(), value.trim());
                }
                let call = if *room {
                    phone.call_conference(target, options).await
                } else if cli.gateway.is_some() && is_phone_number(target) {
                    phone.call_phone_number(target, options).await
                } else {
                    phone.call(target, options).await
                }
                .map_err(err("call"))?;
                attach_media(&rt, &call, media).await?;
                match within(&rt, 120, "answer", call.answered()).await? {
                    Ok(()) => {}
                    Err(PhoneError::Ended(end)) => {
                        return Err(format!(
                            "call not answered: {}{}",
                            end.cause,
                            end.status.map(|s| format!(" ({s})")).unwrap_or_default()
                        ));
                    }
                    Err(e) => return Err(format!("call: {e}")),
                }
                let script = Script {
                    duration: *duration,
                    hold_after: *hold_after,
                    unhold_after: *unhold_after,
                    dtmf: dtmf.clone(),
                    message: message.clone(),
                    ice_restart_after: *ice_restart_after,
                    transfer_to: None,
                };
                talk(&rt, out, &call, &script).await?;
                // Transferred by the peer (RFC 3515): the phone placed the new call; go on
                // with it as with the first.
                let mut followed = None;
                while let Ok(e) = events.try_recv() {
                    if let Event::TransferAccepted { call: c, new_call } = e
                        && c == call.id()
                    {
                        followed = Some(new_call);
                    }
                }
                let Some(new_call) = followed else {
                    return Ok(());
                };
                let call = phone.call_handle(new_call).await.map_err(err("transfer"))?;
                attach_media(&rt, &call, media).await?;
                within(&rt, 120, "answer", call.answered())
                    .await?
                    .map_err(err("transferred call"))?;
                talk(&rt, out, &call, &script).await
            }
            .await;
            printed.finish(&rt, phone).await;
            result
        }
        Command::Answer {
            duration,
            calls,
            hold_after,
            unhold_after,
            dtmf,
            early_media,
            transfer_to,
            media,
        } => {
            media.check()?;
            let phone = connected(&cli, &rt).await?;
            let (mut events, printed) = watch(&rt, &phone, "me", out).await;
            let script = Script {
                duration: *duration,
                hold_after: *hold_after,
                unhold_after: *unhold_after,
                dtmf: dtmf.clone(),
                message: None,
                ice_restart_after: None,
                transfer_to: transfer_to.clone(),
            };
            let result = async {
            register(&rt, &phone, cli.instance_id.as_deref(), 600).await?;
            let (done_tx, mut done_rx) = mpsc::unbounded::<Result<(), String>>();
            let mut answered = 0;
            let mut finished = 0;
            let mut signal = Box::pin(shutdown_signal(false).fuse());
            while finished < *calls {
                futures::select_biased! {
                    () = signal => break,
                    done = done_rx.next() => {
                        finished += 1;
                        if let Some(Err(e)) = done {
                            return Err(format!("a call did not end cleanly: {e}"));
                        }
                    }
                    e = events.next() => match e {
                        Some(Event::IncomingCall { call, .. }) if answered < *calls => {
                            let call = phone.call_handle(call).await.map_err(err("incoming call"))?;
                            match early_media {
                                Some(_) => call.progress(true).await.map_err(err("progress"))?,
                                None => call.answer().await.map_err(err("answer"))?,
                            }
                            attach_media(&rt, &call, media).await?;
                            answered += 1;
                            let (rt2, script, tx) = (rt.clone(), script.clone(), done_tx.clone());
                            let early = *early_media;
                            rt.spawn(Box::pin(async move {
                                let done = async {
                                    if let Some(secs) = early {
                                        sleep(&rt2, Duration::from_secs(secs)).await;
                                        call.accept().await.map_err(err("accept"))?;
                                    }
                                    talk(&rt2, out, &call, &script).await
                                }
                                .await;
                                let _ = tx.unbounded_send(done);
                            }));
                        }
                        Some(Event::IncomingCall { call, .. }) => {
                            if let Ok(c) = phone.call_handle(call).await {
                                let _ = c.decline(Some(486)).await;
                            }
                        }
                        Some(_) => {}
                        None => return Err("the phone stopped".into()),
                    }
                }
            }
            let _ = phone.unregister(false).await;
            if answered >= *calls && finished >= *calls {
                Ok(())
            } else {
                Err(format!("answered {answered} of {calls} calls"))
            }
            }
            .await;
            printed.finish(&rt, phone).await;
            result
        }
        Command::Subscribe {
            target,
            event,
            duration,
        } => {
            let phone = connected(&cli, &rt).await?;
            let (mut events, printed) = watch(&rt, &phone, "me", out).await;
            let result = async {
                let mut options = SubscribeOptions::new(event.as_str()).expires(600);
                let accept = match event.as_str() {
                    "message-summary" => Some(message_summary::CONTENT_TYPE),
                    "presence" => Some(pidf::CONTENT_TYPE),
                    "dialog" => Some(dialog_info::CONTENT_TYPE),
                    _ => None,
                };
                if let Some(accept) = accept {
                    options = options.accept(accept);
                }
                let sub = phone
                    .subscribe(target, options)
                    .await
                    .map_err(err("subscribe"))?;
                let mut until = Box::pin(sleep(&rt, Duration::from_secs(*duration)).fuse());
                loop {
                    futures::select_biased! {
                        () = until => break,
                        e = events.next() => match e {
                            Some(Event::SubscriptionEnded { subscription, reason, status, .. })
                                if subscription == sub =>
                            {
                                return Err(format!(
                                    "subscription ended: {}{}",
                                    reason.unwrap_or_default(),
                                    status.map(|s| format!(" ({s})")).unwrap_or_default()
                                ));
                            }
                            Some(_) => {}
                            None => return Err("the phone stopped".into()),
                        }
                    }
                }
                within(&rt, 40, "unsubscribe", phone.unsubscribe(sub))
                    .await?
                    .map_err(err("unsubscribe"))
            }
            .await;
            printed.finish(&rt, phone).await;
            result
        }
        Command::Publish {
            closed,
            note,
            activity,
            duration,
        } => {
            let phone = connected(&cli, &rt).await?;
            let (_events, printed) = watch(&rt, &phone, "me", out).await;
            let result = async {
                let aor = cli.aor.clone().unwrap_or_default();
                let mut me = Presence::basic(aor, !*closed, note.as_deref());
                if let Some(a) = activity {
                    me = me.activity(a.as_str());
                }
                let options = PublishOptions::presence(&me).expires(600);
                let id = within(&rt, 40, "publish", phone.publish(options))
                    .await?
                    .map_err(err("publish"))?;
                sleep(&rt, Duration::from_secs(*duration)).await;
                within(&rt, 40, "unpublish", phone.unpublish(id))
                    .await?
                    .map_err(err("unpublish"))
            }
            .await;
            printed.finish(&rt, phone).await;
            result
        }
        Command::Mwi { new, old, duration } => {
            let phone = connected(&cli, &rt).await?;
            let (mut events, printed) = watch(&rt, &phone, "me", out).await;
            let result = async {
                register(&rt, &phone, cli.instance_id.as_deref(), 600).await?;
                let summary = MessageSummary {
                    waiting: *new > 0,
                    account: None,
                    counts: vec![MessageCounts {
                        class: "voice-message".into(),
                        new: *new,
                        old: *old,
                        new_urgent: None,
                        old_urgent: None,
                    }],
                };
                let body = summary.to_string().into_bytes();
                let mut until = Box::pin(sleep(&rt, Duration::from_secs(*duration)).fuse());
                loop {
                    futures::select_biased! {
                        () = until => break,
                        e = events.next() => match e {
                            Some(Event::SubscriptionRequested { subscription, .. }) => {
                                let body = Some((message_summary::CONTENT_TYPE.into(), body.clone()));
                                phone
                                    .notify(subscription, SubState::Active, body)
                                    .await
                                    .map_err(err("notify"))?;
                            }
                            Some(_) => {}
                            None => return Err("the phone stopped".into()),
                        }
                    }
                }
                let _ = phone.unregister(false).await;
                Ok(())
            }
            .await;
            printed.finish(&rt, phone).await;
            result
        }
        Command::Message { target, text } => {
            let phone = connected(&cli, &rt).await?;
            let (_events, printed) = watch(&rt, &phone, "me", out).await;
            let result = within(
                &rt,
                40,
                "message",
                phone.message(target, "text/plain", text),
            )
            .await
            .and_then(|r| r.map_err(err("message")));
            printed.finish(&rt, phone).await;
            result
        }
        // `main` runs it before any runtime starts; it never needs one.
        Command::Load(load) => load::run(load),
        #[cfg(feature = "devices")]
        Command::Devices => {
            let all = sansip_media::audio::devices::list().map_err(|e| e.to_string())?;
            for d in all {
                out.emit(
                    "me",
                    json!({"event": "device", "name": d.name, "description": d.description,
                           "input": d.input, "output": d.output}),
                );
            }
            Ok(())
        }
        Command::Console => {
            let phone = connected(&cli, &rt).await?;
            let (mut events, printed) = watch(&rt, &phone, "me", out).await;
            let result = console(&phone, &mut events, out).await;
            printed.finish(&rt, phone).await;
            result
        }
    }
}

/// What to do in an answered call, in seconds from the answer.
#[derive(Debug, Clone)]
struct Script {
    duration: u64,
    hold_after: Option<u64>,
    unhold_after: Option<u64>,
    dtmf: Option<String>,
    message: Option<String>,
    ice_restart_after: Option<u64>,
    /// Transfer the peer here a second after the answer.
    transfer_to: Option<String>,
}

/// Runs `script` on an answered call until it hangs up or the peer does; prints the
/// call's media statistics at the end. Ok when the call ended with a BYE from either side.
async fn talk(
    rt: &Arc<dyn Runtime>,
    out: Out,
    call: &PhCall,
    script: &Script,
) -> Result<(), String> {
    let result = async {
        if let Some(d) = &script.dtmf {
            call.send_dtmf(d).await.map_err(err("dtmf"))?;
        }
        if let Some(m) = &script.message {
            call.message("text/plain", m)
                .await
                .map_err(err("message"))?;
        }
        let mut plan: Vec<(u64, &str)> = vec![(script.duration, "hangup")];
        plan.extend(script.hold_after.map(|t| (t, "hold")));
        plan.extend(script.unhold_after.map(|t| (t, "unhold")));
        plan.extend(script.ice_restart_after.map(|t| (t, "ice-restart")));
        plan.extend(script.transfer_to.as_ref().map(|_| (1, "transfer")));
        plan.sort();
        let answered_at = rt.now();
        for (at, action) in plan {
            let wait = (answered_at + Duration::from_secs(at)).saturating_duration_since(rt.now());
            futures::select_biased! {
                end = call.ended().fuse() => {
                    let end = end.map_err(err("call"))?;
                    return ended_well(&end);
                }
                () = sleep(rt, wait).fuse() => {}
            }
            match action {
                "hold" => {
                    call.hold().await.map_err(err("hold"))?;
                }
                "unhold" => {
                    call.unhold().await.map_err(err("unhold"))?;
                }
                "transfer" => {
                    let target = script.transfer_to.as_deref().unwrap_or_default();
                    call.transfer(target).await.map_err(err("transfer"))?;
                    // Our call ends as transferred: the end below is that.
                    break;
                }
                "ice-restart" => {
                    call.restart_ice().await.map_err(err("ice restart"))?;
                    call.renegotiate(OfferMethod::Update)
                        .await
                        .map_err(err("ice restart"))?;
                }
                _ => match call.hangup().await {
                    // The peer's BYE crossed ours: the end below is its.
                    Err(PhoneError::Ua(UaError::NoSuchCall(_))) => {}
                    other => other.map_err(err("hangup"))?,
                },
            }
        }
        let end = within(rt, 40, "hangup", call.ended())
            .await?
            .map_err(err("call"))?;
        ended_well(&end)
    }
    .await;
    if let Ok(stats) = call.media_stats().await {
        out.emit("me", media_json(call.id(), &stats));
    }
    result
}

/// Ok for a call ended by a BYE from either side; else why it ended.
fn ended_well(end: &CallEnd) -> Result<(), String> {
    match end.cause {
        EndCause::Bye | EndCause::Transferred => Ok(()),
        EndCause::MediaFailed => Err(
            "call ended: media failed (ICE and DTLS did not connect, or the peer answered \
             a=ice-mismatch; --log info says which)"
                .into(),
        ),
        cause => Err(format!("call ended: {cause}")),
    }
}

/// The rate recordings are written at: wideband, whatever the codec.
const RECORD_RATE: u32 = 16_000;

/// `tone:HZ` or a WAV file.
fn source(spec: &str) -> Result<Box<dyn AudioSource>, String> {
    if let Some(hz) = spec.strip_prefix("tone:") {
        let hz: f64 = hz
            .parse()
            .ok()
            .filter(|h: &f64| *h > 0.0 && *h < 24_000.0)
            .ok_or_else(|| format!("--play {spec}: expected tone:HZ"))?;
        return Ok(Box::new(Tone::new(hz)));
    }
    WavSource::open(spec)
        .map(|w| Box::new(w) as Box<dyn AudioSource>)
        .map_err(|e| format!("--play {spec}: {e}"))
}

/// Joins group `name`, stays `secs` seconds, and leaves: `--play` goes to every member,
/// `--record` gets them all mixed. The phone's events (members added and removed) are
/// printed as they come.
async fn in_group(
    rt: &Arc<dyn Runtime>,
    phone: &Ph,
    name: &str,
    secs: u64,
    media: &MediaArgs,
    instance_id: Option<&str>,
) -> Result<(), String> {
    // The members who join after us call us at our address-of-record.
    register(rt, phone, instance_id, 600).await?;
    let said = match &media.play {
        Some(spec) => source(spec)?,
        None => Box::new(Silence),
    };
    let heard: Box<dyn AudioSink> = match &media.record {
        Some(path) => Box::new(
            WavSink::create(path, RECORD_RATE)
                .map_err(|e| format!("--record {}: {e}", path.display()))?,
        ),
        None => Box::new(Discard),
    };
    phone
        .call_group(name, said, heard)
        .await
        .map_err(err("group"))?;
    sleep(rt, Duration::from_secs(secs)).await;
    phone.leave_group(name).await.map_err(err("leave"))?;
    // The legs' BYEs and the final NOTIFY, before the phone shuts down.
    let settled = async {
        while phone.with(|ua, _| ua.calls().count()).await.unwrap_or(0) > 0 {
            sleep(rt, Duration::from_millis(50)).await;
        }
    };
    let _ = within(rt, 5, "leave", settled).await;
    Ok(())
}

/// A sink that keeps nothing: a group member with no `--record`.
struct Discard;

impl AudioSink for Discard {
    fn write(&mut self, _: &AudioFrame) {}
}

/// Starts what `media` asks for on `call`: a source, a WAV recording, video in and out.
async fn attach_media(
    rt: &Arc<dyn Runtime>,
    call: &PhCall,
    media: &MediaArgs,
) -> Result<(), String> {
    if let Some(spec) = &media.play {
        call.play(source(spec)?).await.map_err(err("play"))?;
    }
    if let Some(path) = &media.record {
        let sink = WavSink::create(path, RECORD_RATE)
            .map_err(|e| format!("--record {}: {e}", path.display()))?;
        call.record(sink).await.map_err(err("record"))?;
    }
    #[cfg(feature = "devices")]
    {
        use sansip_media::audio::devices::{Microphone, Speaker};
        let device = |n: &str| (n != "default").then(|| n.to_string());
        if let Some(name) = &media.mic {
            let mic = Microphone::open(device(name).as_deref())
                .map_err(|e| format!("--mic {name}: {e}"))?;
            call.play(mic).await.map_err(err("play"))?;
        }
        if let Some(name) = &media.speaker {
            let speaker = Speaker::open(device(name).as_deref())
                .map_err(|e| format!("--speaker {name}: {e}"))?;
            call.record(speaker).await.map_err(err("record"))?;
        }
    }
    if let Some(path) = &media.record_video {
        let sink = IvfWriter::create(path, VideoCodec::Vp8, 640, 480)
            .map_err(|e| format!("--record-video {}: {e}", path.display()))?;
        call.record_video(sink).await.map_err(err("record video"))?;
    }
    if let Some(path) = &media.play_video {
        let mut reader =
            IvfReader::open(path).map_err(|e| format!("--play-video {}: {e}", path.display()))?;
        let (rt2, call2) = (rt.clone(), call.clone());
        rt.spawn(Box::pin(async move {
            // Frames go out at their own pace once the media is up, until the file ends
            // or the call does.
            while !call2.is_media_connected().await.unwrap_or(true) {
                sleep(&rt2, Duration::from_millis(50)).await;
            }
            let start = rt2.now();
            while let Ok(Some(frame)) = reader.next_frame() {
                let at = start + Duration::from_micros(frame.rtp_time * 1_000 / 90);
                rt2.sleep_until(at).await;
                if call2.send_video(frame).await.is_err() {
                    break;
                }
            }
        }));
    }
    Ok(())
}

fn media_json(call: sansip_media::core::session::CallHandle, s: &MediaStats) -> Value {
    json!({
        "event": "media",
        "call": call.to_string(),
        "codec": s.codec.map(|c| c.to_string()),
        "remote": s.remote.map(|a| a.to_string()),
        "packets_sent": s.packets_sent,
        "bytes_sent": s.bytes_sent,
        "packets_received": s.packets_received,
        "bytes_received": s.bytes_received,
        "concealed": s.concealed,
        "late": s.late,
        "dtmf_sent": s.dtmf_sent,
        "dtmf_received": s.dtmf_received,
        "video_frames_sent": s.video_frames_sent,
        "video_keyframe_requests": s.video_keyframe_requests,
        "video_frames_received": s.video_frames_received,
        "loss": s.loss,
        "remote_loss": s.remote_loss,
        "jitter_ms": s.jitter.map(|d| d.as_secs_f64() * 1e3),
        "rtt_ms": s.rtt.map(|d| d.as_secs_f64() * 1e3),
    })
}

async fn register(
    rt: &Arc<dyn Runtime>,
    phone: &Ph,
    instance_id: Option<&str>,
    expires: u32,
) -> Result<u32, String> {
    let mut options = RegisterOptions::new(expires);
    if let Some(id) = instance_id {
        options = options.instance(id);
    }
    within(rt, 40, "register", phone.register_with(options))
        .await?
        .map_err(|e| match e {
            PhoneError::Registration(RegistrationCause::Authentication(
                AuthError::NoCredentials { realm },
            )) => format!(
                "register: the server asks for a password (realm {realm:?}) and none was given: \
                 use --password-file FILE, the SANSIP_PASSWORD environment variable, or --password"
            ),
            e => format!("register: {e}"),
        })
}

/// The digest password: --password, else --password-file, else SANSIP_PASSWORD, else a
/// prompt when stdin is a terminal; `None` when there is none (the server may not ask).
fn password(cli: &Cli) -> Result<Option<String>, String> {
    if let Some(pw) = &cli.password {
        return Ok(Some(pw.clone()));
    }
    if let Some(path) = &cli.password_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--password-file {}: {e}", path.display()))?;
        let line = text.lines().next().unwrap_or_default();
        if line.is_empty() {
            return Err(format!(
                "--password-file {}: the file is empty",
                path.display()
            ));
        }
        return Ok(Some(line.to_string()));
    }
    if let Ok(pw) = std::env::var("SANSIP_PASSWORD") {
        return Ok(Some(pw));
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        let aor = cli.aor.as_deref().unwrap_or("the server");
        let pw = rpassword::prompt_password(format!("Password for {aor}: "))
            .map_err(|e| format!("password prompt: {e}"))?;
        return Ok((!pw.is_empty()).then_some(pw));
    }
    Ok(None)
}

/// The phone the command line describes: the builder parses the AOR and locates the server.
async fn start(cli: &Cli, rt: &Arc<dyn Runtime>) -> Result<Ph, String> {
    let server = cli.server.as_deref().ok_or("--server is required")?;
    let aor = cli.aor.clone().ok_or("--aor is required")?;
    let mut builder = PhoneBuilder::new(aor)
        .server(server)
        .runtime(rt.clone())
        .tls(TlsOptions {
            ca_files: cli.ca.iter().cloned().collect(),
            insecure: cli.insecure_tls,
        });
    if let Some(dns) = cli.dns {
        builder = builder.dns_server(dns);
    }
    for url in &cli.stun {
        builder = builder.ice_server(IceServer::new(url));
    }
    if let Some(url) = &cli.turn {
        builder = builder.ice_server(IceServer::new(url).with_credentials(
            cli.turn_user.clone().unwrap_or_default(),
            cli.turn_password.clone().unwrap_or_default(),
        ));
    }
    if let Some(user) = &cli.user {
        builder = builder.username(user);
    }
    if let Some(pw) = password(cli)? {
        builder = builder.password(pw);
    }
    let dtmf = match cli.dtmf_method {
        DtmfArg::Auto => DtmfMethod::Auto,
        DtmfArg::Rfc4733 => DtmfMethod::Rfc4733,
        DtmfArg::Info => DtmfMethod::Info,
    };
    let media_timeout = Duration::from_secs(cli.media_timeout);
    let profile = match cli.media_profile {
        ProfileArg::Webrtc => MediaProfile::WebRtc,
        ProfileArg::Sdes => MediaProfile::Sdes,
        ProfileArg::Plain => MediaProfile::Plain,
    };
    let ringback = cli.ringback.map(|r| match r {
        RingbackArg::Europe => Ringback::Europe,
        RingbackArg::NorthAmerica => Ringback::NorthAmerica,
        RingbackArg::Uk => Ringback::Uk,
    });
    // The packages this phone serves as notifier.
    let packages: Vec<String> = match &cli.command {
        Command::Mwi { .. } => vec!["message-summary".into()],
        _ => Vec::new(),
    };
    let share_calls = cli.share_calls;
    let gateway = gateway(cli)?;
    let video = match &cli.command {
        Command::Call { media, .. } | Command::Answer { media, .. } => media.video(),
        _ => false,
    };
    builder
        .configure(move |c| {
            c.ua.user_agent = Some(format!("sansip-softphone/{}", env!("CARGO_PKG_VERSION")));
            c.media.dtmf = dtmf;
            c.media.video = video;
            c.media.connect_timeout = media_timeout;
            c.media.offer_profile = profile;
            c.media.ringback = ringback;
            c.ua.event_packages = packages.clone();
            c.ua.share_calls = share_calls;
            c.ua.gateway = gateway.clone();
            // Media that never connects must not pass for a good call.
            c.media.end_call_on_failure = true;
        })
        .start_with::<RtcSession>()
        .await
        .map_err(|e| e.to_string())
}

/// Starts the phone and waits for its connection to the server.
async fn connected(cli: &Cli, rt: &Arc<dyn Runtime>) -> Result<Ph, String> {
    let phone = start(cli, rt).await?;
    within(rt, 10, "connect", phone.connect())
        .await?
        .map_err(err("connect"))?;
    Ok(phone)
}

/// Resolves on SIGINT/SIGTERM, and when `stdin_eof`, also when stdin closes.
async fn shutdown_signal(stdin_eof: bool) {
    let (tx, mut rx) = mpsc::unbounded::<()>();
    let on_signal = tx.clone();
    // Only one handler per process; a second call fails harmlessly.
    let _ = ctrlc::set_handler(move || {
        let _ = on_signal.unbounded_send(());
    });
    if stdin_eof {
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
            let _ = tx.unbounded_send(());
        });
    }
    let _ = rx.next().await;
}

/// What `serve` serves.
struct Site {
    listen: SocketAddr,
    ws: Option<SocketAddr>,
    domain: String,
    users: Vec<String>,
    focus: FocusConfig,
}

/// The embedded registrar with a conference focus registered as its `focus` user.
async fn serve(
    rt: Arc<dyn Runtime>,
    out: Out,
    site: Site,
    duration: Option<u64>,
) -> Result<(), String> {
    const FOCUS: &str = "focus";
    let mut config = RegistrarConfig::new(site.domain.clone());
    for u in &site.users {
        let (name, password) = u
            .split_once(':')
            .ok_or_else(|| format!("--account {u:?}: expected NAME:PASSWORD"))?;
        config.users.push((name.into(), password.into()));
    }
    let focus_password = format!("{:016x}", fresh_seed());
    config.users.push((FOCUS.into(), focus_password.clone()));
    config.conference_user = Some(FOCUS.into());
    let streams: Vec<(SocketAddr, Transport)> =
        site.ws.iter().map(|a| (*a, Transport::Ws)).collect();
    let registrar =
        RegistrarServer::start_with(rt.clone(), site.listen, &streams, config, fresh_seed())
            .map_err(err("registrar"))?;
    let mut ua = UaConfig::new(format!("sip:{FOCUS}@{}", site.domain));
    ua.credentials = Some(DigestCredentials::new(FOCUS, focus_password));
    ua.user_agent = Some(format!("sansip-focus/{}", env!("CARGO_PKG_VERSION")));
    // Who is in each room, for whoever subscribes to it (RFC 4575); and groups, whose
    // members subscribe to them with the same package.
    ua.event_packages = vec!["conference".into()];
    ua.serve_groups = true;
    let target = Target::udp(registrar.local_addr());
    let phone: Ph = Phone::start(rt.clone(), PhoneConfig::with_targets(ua, vec![target]))
        .map_err(err("focus"))?;
    within(&rt, 10, "connect", phone.connect())
        .await?
        .map_err(err("connect"))?;
    register(&rt, &phone, None, 3600).await?;
    let mut focus = Focus::start(rt.clone(), phone.clone(), site.focus)
        .await
        .map_err(err("focus"))?;
    out.step(
        "server",
        "serving",
        json!({
            "udp": registrar.local_addr().to_string(),
            "ws": registrar.listener(Transport::Ws).map(|a| format!("ws://{a}/")),
            "domain": site.domain,
            "rooms": format!("sip:room-<id>@{}", site.domain),
            "groups": format!("sip:group-<name>@{}", site.domain),
        }),
    );
    let stop = async {
        match duration {
            Some(secs) => sleep(&rt, Duration::from_secs(secs)).await,
            None => shutdown_signal(true).await,
        }
    }
    .fuse();
    futures::pin_mut!(stop);
    loop {
        futures::select! {
            e = focus.next_event().fuse() => match e {
                Some(e) => out.emit("server", room_json(&e)),
                None => break,
            },
            () = stop => break,
        }
    }
    let _ = phone.shutdown(Duration::from_secs(2)).await;
    Ok(())
}

/// A room event as a JSON line.
fn room_json(e: &RoomEvent) -> Value {
    match e {
        RoomEvent::Joined {
            room,
            call,
            who,
            count,
        } => json!({"event": "joined", "room": room.as_str(), "call": call.to_string(),
            "participant": who, "count": count}),
        RoomEvent::Left {
            room,
            call,
            who,
            count,
        } => json!({"event": "left", "room": room.as_str(), "call": call.to_string(),
            "participant": who, "count": count}),
        RoomEvent::Refused { call, to, status } => {
            json!({"event": "refused", "call": call.to_string(), "to": to, "status": status})
        }
        _ => json!({"event": "room"}),
    }
}

/// Two phones and the embedded registrar on loopback, through every feature the signalling
/// has: the project's main job.
async fn demo(rt: Arc<dyn Runtime>, out: Out) -> Result<(), String> {
    let mut config = RegistrarConfig::new("example.com");
    config.users = vec![
        ("alice".into(), "alice-secret".into()),
        ("bob".into(), "bob-secret".into()),
    ];
    let loopback: SocketAddr = "127.0.0.1:0".parse().map_err(|_| "address")?;
    let registrar = RegistrarServer::start_with(
        rt.clone(),
        loopback,
        &[(loopback, Transport::Ws)],
        config,
        fresh_seed(),
    )
    .map_err(err("registrar"))?;
    let ws = registrar
        .listener(Transport::Ws)
        .ok_or("the registrar has no WebSocket listener")?;
    let ws_url = format!("ws://{ws}/");
    out.step(
        "demo",
        "registrar",
        json!({"udp": registrar.local_addr().to_string(), "ws": ws_url}),
    );
    // alice is a browser-style phone on WebSocket, bob a desk phone on UDP.
    let phone = |user: &str, target: Target| -> Result<Ph, String> {
        let mut ua = UaConfig::new(format!("sip:{user}@example.com"));
        ua.credentials = Some(DigestCredentials::new(user, format!("{user}-secret")));
        ua.user_agent = Some("sansip-demo".into());
        Phone::start(rt.clone(), PhoneConfig::with_targets(ua, vec![target])).map_err(err("phone"))
    };
    let alice = phone("alice", Target::ws(ws_url.clone(), ws))?;
    let bob = phone("bob", Target::udp(registrar.local_addr()))?;
    let (mut alice_events, alice_printed) = watch(&rt, &alice, "alice", out).await;
    let (mut bob_events, bob_printed) = watch(&rt, &bob, "bob", out).await;
    let result = async {
        for p in [&alice, &bob] {
            within(&rt, 10, "connect", p.connect())
                .await?
                .map_err(err("connect"))?;
        }
        register(&rt, &alice, None, 600).await?;
        register(&rt, &bob, None, 600).await?;

        let options = CallOptions::default().header("X-Demo", "sansip");
        let call = alice.call("bob", options).await.map_err(err("call"))?;
        let incoming = expect(&rt, &mut bob_events, 10, "incoming call", |e| match e {
            Event::IncomingCall { call, .. } => Some(*call),
            _ => None,
        })
        .await?;
        let bob_call = bob.call_handle(incoming).await.map_err(err("incoming"))?;
        bob_call.answer().await.map_err(err("answer"))?;
        within(&rt, 10, "answer", call.answered())
            .await?
            .map_err(err("answer"))?;

        // Audio both ways: alice plays 1 kHz, bob 600 Hz; each records what it hears.
        let alice_hears = Arc::new(std::sync::Mutex::new(Recorder::default()));
        let bob_hears = Arc::new(std::sync::Mutex::new(Recorder::default()));
        call.play(Tone::new(1_000.0)).await.map_err(err("play"))?;
        bob_call.play(Tone::new(600.0)).await.map_err(err("play"))?;
        call.record(alice_hears.clone()).await.map_err(err("record"))?;
        bob_call.record(bob_hears.clone()).await.map_err(err("record"))?;
        sleep(&rt, Duration::from_secs(2)).await;
        for (who, heard, expected) in [("alice", &alice_hears, 600.0), ("bob", &bob_hears, 1_000.0)] {
            let (rate, samples) = heard.lock().map_err(|_| "recorder")?.samples();
            // The last second: past the codec's and the connection's start.
            let tail = &samples[samples.len().saturating_sub(rate as usize)..];
            let hz = analysis::dominant_frequency(tail, rate);
            out.step(who, "heard", json!({
                "hz": hz,
                "rms": analysis::rms(tail).round(),
                "rate": rate,
                "seconds": samples.len() as f64 / f64::from(rate.max(1)),
            }));
            match hz {
                Some(f) if (f - expected).abs() < 20.0 => {}
                other => return Err(format!("{who} heard {other:?} Hz, expected {expected}")),
            }
        }

        let held = within(&rt, 10, "hold", call.hold())
            .await?
            .map_err(err("hold"))?;
        // While alice holds, bob must not send: her received count stands still.
        let during = received_in_a_second(&rt, &call).await?;
        out.step(
            "alice",
            "held",
            json!({"local": held.local, "remote": held.remote, "packets_received_while_held": during}),
        );
        if during > 0 {
            return Err(format!("bob sent {during} packets to alice while held"));
        }
        let resumed = within(&rt, 10, "unhold", call.unhold())
            .await?
            .map_err(err("unhold"))?;
        let after = received_in_a_second(&rt, &call).await?;
        out.step(
            "alice",
            "resumed",
            json!({"local": resumed.local, "remote": resumed.remote, "packets_received_per_second": after}),
        );
        if after < 25 {
            return Err(format!("after unhold alice got only {after} packets in a second"));
        }

        call.send_dtmf("1234#").await.map_err(err("dtmf"))?;
        let mut tones = String::new();
        while tones.len() < 5 {
            let t = expect(&rt, &mut bob_events, 15, "dtmf", |e| match e {
                Event::DtmfReceived { tone, .. } => Some(*tone),
                _ => None,
            })
            .await?;
            tones.push(t);
        }
        if tones != "1234#" {
            return Err(format!("dtmf arrived as {tones:?}"));
        }

        within(
            &rt,
            10,
            "message",
            call.message("text/plain", "hello from alice"),
        )
        .await?
        .map_err(err("message in call"))?;
        within(
            &rt,
            10,
            "message",
            bob.message("alice", "text/plain", "hi alice"),
        )
        .await?
        .map_err(err("message"))?;
        expect(&rt, &mut alice_events, 10, "message", |e| {
            matches!(e, Event::MessageReceived { call: None, .. }).then_some(())
        })
        .await?;

        bob_call.hangup().await.map_err(err("hangup"))?;
        let end = within(&rt, 10, "hangup", call.ended())
            .await?
            .map_err(err("hangup"))?;
        for (who, c) in [("alice", &call), ("bob", &bob_call)] {
            let stats = c.media_stats().await.map_err(err("stats"))?;
            out.emit(who, media_json(c.id(), &stats));
        }
        if (end.cause, end.originator) != (EndCause::Bye, Originator::Remote) {
            return Err(format!(
                "alice's call ended as {} ({})",
                end.cause, end.originator
            ));
        }
        alice.unregister(false).await.map_err(err("unregister"))?;
        bob.unregister(false).await.map_err(err("unregister"))?;
        Ok::<(), String>(())
    }
    .await;
    alice_printed.finish(&rt, alice).await;
    bob_printed.finish(&rt, bob).await;
    if result.is_ok() {
        out.step("demo", "passed", json!({}));
    }
    result
}

/// Audio packets `call` receives in one second, once a renegotiation has settled.
async fn received_in_a_second(rt: &Arc<dyn Runtime>, call: &PhCall) -> Result<u64, String> {
    sleep(rt, Duration::from_millis(300)).await;
    let before = call
        .media_stats()
        .await
        .map_err(err("stats"))?
        .packets_received;
    sleep(rt, Duration::from_secs(1)).await;
    Ok(call
        .media_stats()
        .await
        .map_err(err("stats"))?
        .packets_received
        - before)
}

fn fresh_seed() -> u64 {
    // The registrar's nonces and tags; any value works, a fresh one per run is nicer.
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

const CONSOLE_HELP: &str = "commands: register [SECS] | unregister | call TARGET | answer | decline | \
hangup | hold | unhold | mute | unmute | dtmf DIGITS | transfer TARGET | play tone:HZ|FILE.wav | \
record FILE.wav | stats | message TARGET TEXT | subscribe TARGET [PACKAGE] | status | quit";

/// The interactive console: one command per line on stdin; each prints `ok` or `error`,
/// events print as they come. Ends at `quit` or the end of stdin.
async fn console(
    phone: &Ph,
    events: &mut mpsc::UnboundedReceiver<Event>,
    out: Out,
) -> Result<(), String> {
    let (tx, mut lines) = mpsc::unbounded::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.unbounded_send(line).is_err() {
                break;
            }
        }
    });
    let mut current: Option<PhCall> = None;
    loop {
        futures::select_biased! {
            e = events.next() => match e {
                Some(Event::IncomingCall { call, .. }) if current.is_none() => {
                    current = phone.call_handle(call).await.ok();
                }
                Some(Event::CallEnded { call, .. }) if current.as_ref().is_some_and(|c| c.id() == call) => {
                    current = None;
                }
                // Transferred by the peer: the phone placed the new call; it is the current
                // one now.
                Some(Event::TransferAccepted { call, new_call }) if current.as_ref().is_some_and(|c| c.id() == call) => {
                    current = phone.call_handle(new_call).await.ok();
                }
                Some(_) => {}
                None => return Err("the phone stopped".into()),
            },
            line = lines.next() => {
                let Some(line) = line else { break };
                let words: Vec<&str> = line.split_whitespace().collect();
                let Some((&cmd, args)) = words.split_first() else { continue };
                if cmd == "quit" {
                    break;
                }
                let result = console_command(phone, &mut current, cmd, args, out).await;
                match result {
                    Ok(()) => out.step("me", "ok", json!({"command": cmd})),
                    Err(e) => out.step("me", "error", json!({"command": cmd, "error": e})),
                }
            }
        }
    }
    if phone.is_registered().await.unwrap_or(false) {
        let _ = phone.unregister(false).await;
    }
    Ok(())
}

async fn console_command(
    phone: &Ph,
    current: &mut Option<PhCall>,
    cmd: &str,
    args: &[&str],
    out: Out,
) -> Result<(), String> {
    let call = || current.as_ref().ok_or_else(|| "no call".to_string());
    let e = |e: PhoneError| e.to_string();
    match (cmd, args) {
        ("help", _) => {
            println!("{CONSOLE_HELP}");
            Ok(())
        }
        ("register", rest) => {
            let secs = rest
                .first()
                .map_or(Ok(600), |s| s.parse().map_err(|_| "expires: a number"))?;
            phone.register(secs).await.map(|_| ()).map_err(e)
        }
        ("unregister", _) => phone.unregister(false).await.map_err(e),
        ("call", [target]) => {
            if current.is_some() {
                return Err("a call is already up".into());
            }
            *current = Some(
                phone
                    .call(target, CallOptions::default())
                    .await
                    .map_err(e)?,
            );
            Ok(())
        }
        ("answer", _) => call()?.answer().await.map_err(e),
        ("decline", _) => call()?.decline(None).await.map_err(e),
        ("hangup", _) => call()?.hangup().await.map_err(e),
        ("hold", _) => call()?.hold().await.map(|_| ()).map_err(e),
        ("unhold", _) => call()?.unhold().await.map(|_| ()).map_err(e),
        ("mute", _) => call()?.mute().await.map_err(e),
        ("unmute", _) => call()?.unmute().await.map_err(e),
        ("dtmf", [digits]) => call()?.send_dtmf(digits).await.map_err(e),
        ("transfer", [target]) => call()?.transfer(target).await.map_err(e),
        ("subscribe", [target, package @ ..]) => {
            let package = package.first().copied().unwrap_or("message-summary");
            phone
                .subscribe(target, SubscribeOptions::new(package))
                .await
                .map(|_| ())
                .map_err(e)
        }
        ("play", [src]) => call()?.play(source(src)?).await.map_err(e),
        ("record", [path]) => {
            let sink = WavSink::create(path, RECORD_RATE).map_err(|x| format!("{path}: {x}"))?;
            call()?.record(sink).await.map_err(e)
        }
        ("stats", _) => {
            let stats = call()?.media_stats().await.map_err(e)?;
            out.emit("me", media_json(call()?.id(), &stats));
            Ok(())
        }
        ("message", [target, text @ ..]) if !text.is_empty() => phone
            .message(target, "text/plain", &text.join(" "))
            .await
            .map_err(e),
        ("status", _) => {
            let registered = phone.is_registered().await.map_err(e)?;
            let connected = phone.is_connected().await.map_err(e)?;
            println!(
                "connected={connected} registered={registered} call={}",
                current
                    .as_ref()
                    .map_or("none".into(), |c| c.id().to_string())
            );
            Ok(())
        }
        _ => Err(format!("unknown or incomplete command; {CONSOLE_HELP}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Clap's own checks of the command line (unique option names, valid defaults…), which
    /// otherwise only fail when the command that breaks them is run.
    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn numbers_go_through_the_gateway_and_names_do_not() {
        for number in ["+46 8 123", "070-123 45 67", "(201) 555-0123", "1234"] {
            assert!(is_phone_number(number), "{number}");
        }
        for name in ["bob", "sip:+4612@x", "+", "room-1", "12a", ""] {
            assert!(!is_phone_number(name), "{name}");
        }
    }
}
