//! The async API over the driver: [`Phone`], in the shape SIP.js users know.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use futures::channel::{mpsc, oneshot};
use futures::lock::Mutex;
use sansip_core::registration::RegistrationCause;
use sansip_core::session::{CallDetails, CallEnd, CallHandle};
use sansip_core::ua::{
    CallOptions, Event, RegisterOptions, RequestId, UaConfig, UaError, UserAgent,
};

use super::Call;
use super::events::{self, EventStream};
use super::{
    Command, Driver, Runtime, Session, Target, TlsOptions, UaEngine, Waiters, bind_sip_udp,
    bind_udp,
};
use crate::config::MediaConfig;
use crate::stats::MediaEvent;
use sansip_core::transport::Transport;

/// Why a phone command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PhoneError {
    /// The driver task is gone (the phone was shut down).
    #[error("the phone has stopped")]
    Stopped,
    /// The user agent refused the command (no such call, wrong state, bad target…).
    #[error(transparent)]
    Ua(#[from] UaError),
    /// The registrar did not take our registration.
    #[error("registration failed: {0}")]
    Registration(RegistrationCause),
    /// A request was answered with a failure.
    #[error("rejected: {status} {reason}")]
    Rejected {
        /// The final status.
        status: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// The call ended before the awaited step happened.
    #[error("call ended: {} ({})", .0.cause, .0.originator)]
    Ended(CallEnd),
    /// The request got no response in time (its transaction timed out, or a 408).
    #[error("timed out")]
    TimedOut,
    /// A renegotiation (hold, unhold) was refused; the call goes on as before.
    #[error("renegotiation refused with {0}")]
    Renegotiation(u16),
    /// A socket could not be opened.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The configuration cannot work (an AOR that is not a SIP URI, a server that is not a
    /// URI or domain, no runtime); the message says which.
    #[error("{0}")]
    Config(String),
    /// A DNS lookup failed: for the server's name, or RFC 3263's NAPTR/SRV/A queries.
    #[error("DNS lookup of {name} failed: {reason}")]
    Lookup {
        /// The name or URI looked up.
        name: String,
        /// What went wrong.
        reason: String,
    },
    /// The connection to the server failed; the next attempt is `retry_in` away (`None`:
    /// no more attempts).
    #[error("not connected: {reason}{}", retry_note(*.retry_in))]
    Disconnected {
        /// Time to the next attempt.
        retry_in: Option<std::time::Duration>,
        /// What failed.
        reason: String,
    },
}

fn retry_note(retry_in: Option<std::time::Duration>) -> String {
    match retry_in {
        Some(d) => format!(" (next attempt in {:.1} s)", d.as_secs_f64()),
        None => " (no more attempts)".into(),
    }
}

/// Settings of a [`Phone`].
#[derive(Debug, Clone)]
pub struct PhoneConfig {
    /// The user agent's settings (AOR, credentials, timers, reconnect policy…). Its
    /// `servers` are filled from `targets`.
    pub ua: UaConfig,
    /// The registrar or outbound proxy, in order of preference (failover).
    pub targets: Vec<Target>,
    /// The local address of the UDP socket; port 0 picks one.
    pub bind: SocketAddr,
    /// The seed of every identifier (tags, Call-IDs, branches, cnonces); `None`, the default,
    /// draws one from the operating system's CSPRNG. Set it only for reproducible tests.
    pub seed: Option<u64>,
    /// Certificates trusted by TLS and WSS targets.
    pub tls: TlsOptions,
    /// Also accept TCP connections here, for peers that reach us directly (port 0 picks
    /// one).
    pub listen_tcp: Option<SocketAddr>,
    /// The media side (codecs, video, DTMF method), for phones whose calls carry media.
    pub media: MediaConfig,
    /// Where the media sockets bind: `None` picks ephemeral ports on the address SIP uses
    /// towards the first server; a port other than 0 is the first of
    /// [`PhoneConfig::media_ports`] consecutive ones.
    pub media_bind: Option<SocketAddr>,
    /// How many media sockets (ports) to bind. Each call holds one of its own while one is
    /// free, as desk phones do; calls beyond that share them.
    pub media_ports: u16,
    /// How many events the phone's event stream (and each call's) holds before it drops the
    /// oldest ([`EventStream`]); [`super::DEFAULT_EVENT_CAPACITY`] by default.
    pub event_capacity: usize,
    /// STUN servers by address, asked for the media sockets' server-reflexive addresses
    /// ([`super::PhoneBuilder`] fills it from `media.ice_servers`, and waits for the answers
    /// before it hands the phone over; a call placed before they come offers host
    /// candidates only).
    pub stun_servers: Vec<SocketAddr>,
    /// TURN servers (UDP) with their credentials, for relayed candidates (the builder fills
    /// it from the `turn:` URLs of `media.ice_servers`).
    #[cfg(feature = "rtc")]
    pub turn_servers: Vec<crate::turn::TurnServer>,
}

impl PhoneConfig {
    /// A phone for `ua` talking to `server` over UDP.
    pub fn new(ua: UaConfig, server: SocketAddr) -> Self {
        Self::with_targets(ua, vec![Target::udp(server)])
    }

    /// A phone for `ua` with these servers; the UDP socket is bound to an ephemeral port
    /// on loopback when the first server is on loopback, else on the wildcard address.
    pub fn with_targets(ua: UaConfig, targets: Vec<Target>) -> Self {
        let first = targets
            .first()
            .map_or(SocketAddr::from(([127, 0, 0, 1], 0)), |t| t.addr);
        let bind = if first.ip().is_loopback() {
            SocketAddr::new(first.ip(), 0)
        } else if first.is_ipv4() {
            SocketAddr::from(([0, 0, 0, 0], 0))
        } else {
            SocketAddr::from(([0u16; 8], 0))
        };
        Self {
            ua,
            targets,
            bind,
            seed: None,
            tls: TlsOptions::default(),
            listen_tcp: None,
            media: MediaConfig::default(),
            media_bind: None,
            media_ports: 8,
            event_capacity: super::DEFAULT_EVENT_CAPACITY,
            stun_servers: Vec::new(),
            #[cfg(feature = "rtc")]
            turn_servers: Vec::new(),
        }
    }
}

pub(super) struct Shared<S: Session> {
    runtime: Arc<dyn Runtime>,
    commands: mpsc::UnboundedSender<Command<S::Engine>>,
    events: Mutex<Option<EventStream<Event>>>,
    media_events: Mutex<Option<EventStream<MediaEvent>>>,
    pub(super) event_capacity: usize,
    local: SocketAddr,
    media_local: Vec<SocketAddr>,
}

/// A SIP phone on an async runtime: the [`UserAgent`] in a driver task, commanded through
/// async methods. Cheap to clone; every clone commands the same phone, and the phone stops
/// when the last clone is dropped.
///
/// `S` is the kind of call session: `sansip_core::session::FakeSdp` negotiates without
/// media (signalling only), `NoMedia` refuses calls, and [`crate::RtcSession`] carries
/// real media (ICE, DTLS-SRTP, audio, DTMF, video) on a second UDP socket.
pub struct Phone<S: Session> {
    pub(super) shared: Arc<Shared<S>>,
}

/// A [`Phone`] reference that does not keep the phone running.
pub struct WeakPhone<S: Session> {
    shared: std::sync::Weak<Shared<S>>,
}

impl<S: Session> WeakPhone<S> {
    /// The phone, while some [`Phone`] clone still exists.
    pub fn upgrade(&self) -> Option<Phone<S>> {
        self.shared.upgrade().map(|shared| Phone { shared })
    }
}

impl<S: Session> Clone for Phone<S> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<S: Session> std::fmt::Debug for Phone<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Phone")
            .field("local", &self.shared.local)
            .finish_non_exhaustive()
    }
}

impl<S: Session> Phone<S> {
    /// Binds the socket and starts the driver task on `runtime`.
    pub fn start(runtime: Arc<dyn Runtime>, config: PhoneConfig) -> Result<Self, PhoneError> {
        let (socket, unreachable) = bind_sip_udp(runtime.as_ref(), config.bind)?;
        let local = socket.local_addr()?;
        let targets = reachable_over_udp(local, config.targets.clone());
        // A wildcard is no address for Via and Contact (peers saw `sip:alice@0.0.0.0`): the
        // one the system sends from towards the first server is.
        let local = if local.ip().is_unspecified() {
            SocketAddr::new(routed_ip(local, &targets)?, local.port())
        } else {
            local
        };
        let secure = config
            .targets
            .iter()
            .any(|t| matches!(t.transport, Transport::Tls | Transport::Wss));
        let tls = if secure {
            Some(super::tls::client_config(&config.tls)?)
        } else {
            None
        };
        let listeners = match config.listen_tcp {
            Some(addr) => vec![(runtime.bind_tcp(addr)?, Transport::Tcp)],
            None => Vec::new(),
        };
        let mut media = Vec::new();
        if S::MEDIA_SOCKET {
            let first = match config.media_bind {
                Some(b) => b,
                None => SocketAddr::new(routed_ip(local, &targets)?, 0),
            };
            for i in 0..config.media_ports.max(1) {
                let port = match first.port() {
                    0 => 0,
                    p => p
                        .checked_add(i)
                        .ok_or_else(|| io::Error::other("media ports overflow"))?,
                };
                media.push(bind_udp(
                    runtime.as_ref(),
                    SocketAddr::new(first.ip(), port),
                )?);
            }
        }
        let media_local = media
            .iter()
            .map(|m| m.local_addr())
            .collect::<io::Result<Vec<_>>>()?;
        let seed = match config.seed {
            Some(seed) => seed,
            None => {
                getrandom::u64().map_err(|e| io::Error::other(format!("no OS randomness: {e}")))?
            }
        };
        let mut ua_config = config.ua.clone();
        ua_config.servers = targets.iter().map(Target::server).collect();
        let now = runtime.now();
        let mut ua = UserAgent::new(ua_config, now, seed);
        ua.connect(now);
        let engine = S::engine(ua, &config, &media_local)?;
        let (commands, command_rx) = mpsc::unbounded();
        let (event_tx, events) = events::channel(config.event_capacity);
        let (media_tx, media_events) = events::channel(config.event_capacity);
        let driver = Driver {
            runtime: runtime.clone(),
            socket,
            unreachable,
            local,
            engine,
            targets,
            tls,
            listeners,
            commands: command_rx,
            events: event_tx,
            media,
            media_events: media_tx,
        };
        runtime.spawn(Box::pin(driver.run()));
        Ok(Self {
            shared: Arc::new(Shared {
                runtime,
                commands,
                events: Mutex::new(Some(events)),
                media_events: Mutex::new(Some(media_events)),
                event_capacity: config.event_capacity,
                local,
                media_local,
            }),
        })
    }

    /// A reference that does not keep the phone running.
    pub fn downgrade(&self) -> WeakPhone<S> {
        WeakPhone {
            shared: Arc::downgrade(&self.shared),
        }
    }

    /// The local address of the phone's socket.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local
    }

    /// The local addresses of the media sockets (none for a phone without media).
    pub fn media_addrs(&self) -> &[SocketAddr] {
        &self.shared.media_local
    }

    /// The runtime the phone runs on.
    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.shared.runtime
    }

    /// Runs `f` on the user agent inside the driver task and returns its result: the escape
    /// hatch to every [`UserAgent`] command this API does not wrap.
    pub async fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut UserAgent<S>, Instant) -> R + Send + 'static,
    ) -> Result<R, PhoneError> {
        self.exec(move |e, now, _| f(e.ua_mut(), now)).await
    }

    /// Runs `f` on the whole engine (for a media phone, the sans-IO [`crate::MediaAgent`]).
    pub async fn with_engine<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut S::Engine, Instant) -> R + Send + 'static,
    ) -> Result<R, PhoneError> {
        self.exec(move |e, now, _| f(e, now)).await
    }

    pub(super) async fn exec<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut S::Engine, Instant, &mut Waiters) -> R + Send + 'static,
    ) -> Result<R, PhoneError> {
        let (tx, rx) = oneshot::channel();
        let cmd: Command<S::Engine> = Box::new(move |ua, now, w| {
            let _ = tx.send(f(ua, now, w));
        });
        self.shared
            .commands
            .unbounded_send(cmd)
            .map_err(|_| PhoneError::Stopped)?;
        rx.await.map_err(|_| PhoneError::Stopped)
    }

    /// Runs `f`, which starts something and registers a waiter, then awaits that event.
    pub(super) async fn act_and_wait(
        &self,
        f: impl FnOnce(
            &mut S::Engine,
            Instant,
            &mut Waiters,
        ) -> Result<oneshot::Receiver<Event>, UaError>
        + Send
        + 'static,
    ) -> Result<Event, PhoneError> {
        let rx = self.exec(f).await??;
        rx.await.map_err(|_| PhoneError::Stopped)
    }

    /// Takes the event stream out of the phone, e.g. for a task that must end when the
    /// phone does (the stream ends once every clone of the phone is dropped and the
    /// driver has stopped). [`Phone::next_event`] returns `None` afterwards. Dropping the
    /// stream tells the phone to stop queueing events.
    pub async fn take_events(&self) -> Option<EventStream<Event>> {
        self.shared.events.lock().await.take()
    }

    /// The next media event (connected, disconnected, a call's totals at its end). `None`
    /// once the phone has stopped; never anything for a phone without media.
    pub async fn next_media_event(&self) -> Option<MediaEvent> {
        match self.shared.media_events.lock().await.as_mut() {
            Some(rx) => rx.next().await,
            None => None,
        }
    }

    /// The next event (every event, including those a method here also awaited). `None`
    /// once the phone has stopped, or its events were taken.
    pub async fn next_event(&self) -> Option<Event> {
        match self.shared.events.lock().await.as_mut() {
            Some(rx) => rx.next().await,
            None => None,
        }
    }

    /// Waits until the connection to a server is up (the phone connects by itself when it
    /// starts, and reconnects after losses). Fails with [`PhoneError::Disconnected`] when an
    /// attempt fails first; attempts go on in the background.
    pub async fn connect(&self) -> Result<(), PhoneError> {
        let e = self
            .act_and_wait(|e, now, w| {
                let ua = e.ua_mut();
                if ua.is_connected() {
                    return Ok(instant(Event::Connected {
                        flow: sansip_core::transport::FlowId(0),
                    }));
                }
                let rx =
                    w.wait(|e| matches!(e, Event::Connected { .. } | Event::Disconnected { .. }));
                ua.connect(now);
                Ok(rx)
            })
            .await?;
        match e {
            Event::Disconnected { retry_in, reason } => {
                Err(PhoneError::Disconnected { retry_in, reason })
            }
            _ => Ok(()),
        }
    }

    /// Closes the connection and stops reconnecting.
    pub async fn disconnect(&self) -> Result<(), PhoneError> {
        self.with(|ua, now| ua.disconnect(now)).await
    }

    /// Whether the connection to the server is up.
    pub async fn is_connected(&self) -> Result<bool, PhoneError> {
        self.with(|ua, _| ua.is_connected()).await
    }

    /// Registers for `expires` seconds and resolves on the first outcome: `Ok` with the
    /// granted expiry on a 2xx; `Err` when the registrar refuses (403, 404, 5xx, credentials
    /// it keeps rejecting: [`PhoneError::Registration`]), when nothing answers within the
    /// transaction timeout (64 × T1, 32 s by default: [`PhoneError::TimedOut`]), or when the
    /// connection to the server fails first ([`PhoneError::Disconnected`]). The phone goes on
    /// retrying in the background where the failure allows it, and keeps a binding fresh
    /// once it has one; [`Phone::next_event`] reports both.
    pub async fn register(&self, expires: u32) -> Result<u32, PhoneError> {
        self.register_with(RegisterOptions::new(expires)).await
    }

    /// [`Phone::register`] with options: extra headers and Contact parameters, an instance
    /// id (`+sip.instance`, for which a registrar grants a GRUU, RFC 5627) and outbound.
    pub async fn register_with(&self, options: RegisterOptions) -> Result<u32, PhoneError> {
        let e = self
            .act_and_wait(move |e, now, w| {
                let ua = e.ua_mut();
                ua.register_with(now, options)?;
                Ok(w.wait(|e| {
                    matches!(
                        e,
                        Event::Registered { .. }
                            | Event::RegistrationFailed { .. }
                            | Event::Disconnected { .. }
                    )
                }))
            })
            .await?;
        match e {
            Event::Registered { expires, .. } => Ok(expires),
            Event::RegistrationFailed {
                cause: RegistrationCause::RequestTimeout,
                ..
            } => Err(PhoneError::TimedOut),
            Event::RegistrationFailed { cause, .. } => Err(PhoneError::Registration(cause)),
            Event::Disconnected { retry_in, reason } => {
                Err(PhoneError::Disconnected { retry_in, reason })
            }
            _ => Err(PhoneError::Stopped),
        }
    }

    /// Removes our binding (or all of the AOR's with `all`) and waits for the answer.
    pub async fn unregister(&self, all: bool) -> Result<(), PhoneError> {
        let e = self
            .act_and_wait(move |e, now, w| {
                let ua = e.ua_mut();
                ua.unregister(now, all)?;
                Ok(w.wait(|e| {
                    matches!(
                        e,
                        Event::Unregistered { .. } | Event::RegistrationFailed { .. }
                    )
                }))
            })
            .await?;
        match e {
            Event::RegistrationFailed {
                cause: RegistrationCause::RequestTimeout,
                ..
            } => Err(PhoneError::TimedOut),
            Event::RegistrationFailed { cause, .. } => Err(PhoneError::Registration(cause)),
            _ => Ok(()),
        }
    }

    /// Ends the phone cleanly, as a desk phone does when it is switched off: hangs up every
    /// call (BYE, CANCEL or a decline, as each call's state requires), removes our
    /// registration, closes the connection and stops the phone. It waits at most `bound`
    /// for the calls' ends and the un-REGISTER's answer (a server that does not answer
    /// cannot hold it up), and returns how many calls it ended. Every clone of the phone
    /// is stopped; their commands fail with [`PhoneError::Stopped`] afterwards.
    pub async fn shutdown(&self, bound: std::time::Duration) -> Result<usize, PhoneError> {
        let waits = self
            .exec(|e, now, w| {
                let ua = e.ua_mut();
                let calls: Vec<CallHandle> = ua.calls().collect();
                let mut waits = Vec::new();
                for &id in &calls {
                    waits.push(
                        w.wait(move |e| matches!(e, Event::CallEnded { call, .. } if *call == id)),
                    );
                    if let Err(e) = ua.hangup(now, id) {
                        tracing::debug!(call = ?id, error = %e, "shutdown: hangup refused");
                    }
                }
                if ua.is_registered() && ua.unregister(now, false).is_ok() {
                    waits.push(w.wait(|e| {
                        matches!(
                            e,
                            Event::Unregistered { .. } | Event::RegistrationFailed { .. }
                        )
                    }));
                }
                (calls.len(), waits)
            })
            .await;
        let (ended, waits) = waits?;
        let deadline = self.shared.runtime.now() + bound;
        let all = futures::future::join_all(waits);
        let timer = self.shared.runtime.sleep_until(deadline);
        futures::pin_mut!(all);
        if let futures::future::Either::Right(_) = futures::future::select(all, timer).await {
            tracing::debug!("shutdown: bound reached before every call and the registration ended");
        }
        // Give TURN allocations back and wait (within the bound, at most a second) for the
        // servers to confirm; send the disconnect's output, then let the driver return.
        let _ = self
            .with_engine(|e: &mut S::Engine, now| super::Engine::release_servers(e, now))
            .await;
        let rt = &self.shared.runtime;
        let release_by = deadline.min(rt.now() + std::time::Duration::from_secs(1));
        while rt.now() < release_by
            && self
                .with_engine(|e: &mut S::Engine, _| super::Engine::is_releasing(e))
                .await
                .unwrap_or(false)
        {
            rt.sleep_until(rt.now() + std::time::Duration::from_millis(20))
                .await;
        }
        let _ = self.with(|ua, now| ua.disconnect(now)).await;
        self.shared.commands.close_channel();
        Ok(ended)
    }

    /// Whether the registration is live.
    pub async fn is_registered(&self) -> Result<bool, PhoneError> {
        self.with(|ua, _| ua.is_registered()).await
    }

    /// Places a call; the returned handle awaits its answer and end.
    pub async fn call(&self, target: &str, options: CallOptions) -> Result<Call<S>, PhoneError> {
        let target = target.to_string();
        self.place(move |e, now| e.call(now, &target, options))
            .await
    }

    /// Calls a phone number through the gateway ([`UaConfig::gateway`]): `dialled` is made
    /// E.164 by its dial plan, or refused with [`UaError::InvalidNumber`] saying why. See
    /// [`UserAgent::call_phone_number`](crate::core::ua::UserAgent::call_phone_number).
    pub async fn call_phone_number(
        &self,
        dialled: &str,
        options: CallOptions,
    ) -> Result<Call<S>, PhoneError> {
        let dialled = dialled.to_string();
        self.place(move |e, now| e.call_phone_number(now, &dialled, options))
            .await
    }

    /// The details of the calls that ended, oldest first (at most
    /// [`UaConfig::call_history`] of them).
    pub async fn call_history(&self) -> Result<Vec<CallDetails>, PhoneError> {
        self.with(|ua, _| ua.call_history().cloned().collect())
            .await
    }

    /// Joins conference room `room` on our server (`sip:room-<id>@<our domain>`, which a
    /// [`Focus`](super::Focus) answers); an unusable id is refused with
    /// [`UaError::InvalidRoom`].
    pub async fn call_conference(
        &self,
        room: &str,
        options: CallOptions,
    ) -> Result<Call<S>, PhoneError> {
        let room = room.to_string();
        self.place(move |e, now| e.call_conference(now, &room, options))
            .await
    }

    async fn place(
        &self,
        call: impl FnOnce(&mut S::Engine, Instant) -> Result<CallHandle, UaError> + Send + 'static,
    ) -> Result<Call<S>, PhoneError> {
        let (id, ended) = self
            .exec(move |e, now, w| {
                let id = call(e, now)?;
                Ok::<_, UaError>((id, watch_end(w, id)))
            })
            .await??;
        Ok(Call {
            phone: self.clone(),
            id,
            ended,
        })
    }

    /// A handle for a call the UA knows, e.g. from [`Event::IncomingCall`]. Fails with
    /// [`UaError::NoSuchCall`] once the call has ended.
    pub async fn call_handle(&self, id: CallHandle) -> Result<Call<S>, PhoneError> {
        let ended = self
            .exec(move |e, _, w| {
                let ua = e.ua_mut();
                if ua.calls().any(|c| c == id) {
                    Ok(watch_end(w, id))
                } else {
                    Err(UaError::NoSuchCall(id))
                }
            })
            .await??;
        Ok(Call {
            phone: self.clone(),
            id,
            ended,
        })
    }

    /// Sends a MESSAGE out of dialog and waits for its final response (2xx is success).
    pub async fn message(
        &self,
        target: &str,
        content_type: &str,
        body: &str,
    ) -> Result<(), PhoneError> {
        let (target, ct, body) = (
            target.to_string(),
            content_type.to_string(),
            body.to_string(),
        );
        let e = self
            .act_and_wait(move |e, now, w| {
                let ua = e.ua_mut();
                let id = ua.message(now, &target, &ct, &body, &[])?;
                Ok(wait_completed(w, id))
            })
            .await?;
        completed(e)
    }
}

pub(super) fn watch_end(
    w: &mut Waiters,
    id: CallHandle,
) -> futures::future::Shared<oneshot::Receiver<Event>> {
    use futures::FutureExt;
    w.wait(move |e| matches!(e, Event::CallEnded { call, .. } if *call == id))
        .shared()
}

pub(super) fn wait_completed(w: &mut Waiters, id: RequestId) -> oneshot::Receiver<Event> {
    w.wait(move |e| matches!(e, Event::RequestCompleted { id: x, .. } if *x == id))
}

pub(super) fn completed(e: Event) -> Result<(), PhoneError> {
    match e {
        Event::RequestCompleted { status, .. } if (200..300).contains(&status) => Ok(()),
        // The UA reports a transaction that got no answer as 408 (RFC 3261 §8.1.3.1).
        Event::RequestCompleted { status: 408, .. } => Err(PhoneError::TimedOut),
        Event::RequestCompleted { status, reason, .. } => {
            Err(PhoneError::Rejected { status, reason })
        }
        _ => Err(PhoneError::Stopped),
    }
}

/// A receiver that already holds `e`.
pub(super) fn instant(e: Event) -> oneshot::Receiver<Event> {
    let (tx, rx) = oneshot::channel();
    let _ = tx.send(e);
    rx
}

/// `targets` without the UDP ones an IPv4 socket cannot send to (`localhost` is `::1` as
/// well as `127.0.0.1`), unless that would leave none.
fn reachable_over_udp(local: SocketAddr, targets: Vec<Target>) -> Vec<Target> {
    let unreachable =
        |t: &Target| t.transport == Transport::Udp && local.is_ipv4() && t.addr.is_ipv6();
    if targets.iter().all(unreachable) {
        return targets;
    }
    targets.into_iter().filter(|t| !unreachable(t)).collect()
}

/// A concrete local address: the SIP socket's, or when that is a wildcard the one the system
/// routes from towards the first server (found with a connected UDP socket, which sends
/// nothing). Via, Contact and ICE candidates need one.
fn routed_ip(sip_local: SocketAddr, targets: &[Target]) -> io::Result<std::net::IpAddr> {
    if !sip_local.ip().is_unspecified() {
        return Ok(sip_local.ip());
    }
    let towards = targets
        .first()
        .map_or(SocketAddr::from(([127, 0, 0, 1], 5060)), |t| t.addr);
    let probe = std::net::UdpSocket::bind(SocketAddr::new(sip_local.ip(), 0))?;
    probe.connect(towards)?;
    Ok(probe.local_addr()?.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv4_socket_drops_ipv6_udp_servers_unless_none_would_be_left() {
        let v4: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let v6: SocketAddr = "[::1]:5060".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let kept = reachable_over_udp(
            local,
            vec![Target::udp(v6), Target::udp(v4), Target::tcp(v6)],
        );
        assert_eq!(kept, [Target::udp(v4), Target::tcp(v6)]);
        let kept = reachable_over_udp(local, vec![Target::udp(v6)]);
        assert_eq!(kept, [Target::udp(v6)]);
        let wildcard6: SocketAddr = "[::]:40000".parse().unwrap();
        assert_eq!(
            reachable_over_udp(wildcard6, vec![Target::udp(v4)]).len(),
            1
        );
    }
}
