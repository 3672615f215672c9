//! The one driver loop every runtime shares (DESIGN.md §5): it owns a sans-IO [`Engine`],
//! moves datagrams between it and a UDP socket, fires its timer, runs commands from the
//! application, and forwards its events.
//!
//! It is written once over the small [`Runtime`] trait; `sansip-tokio` and `sansip-smol`
//! implement that trait and add nothing else of substance. The loop: drain
//! `poll_output` and do what it asks, then wait for the earliest of {the engine's
//! deadline, a datagram, a command}, feed that one input, repeat.
//!
//! Transports: UDP, TCP, TLS, WebSocket (`ws://`) and secure WebSocket (`wss://`). The
//! core decides when to connect and reconnect (`Output::OpenFlow`); the driver opens what
//! it is asked for.

mod builder;
mod call;
#[cfg(feature = "rtc")]
mod conference;
pub mod dns;
mod engine;
mod events;
#[cfg(feature = "rtc")]
mod group;
mod icmp;
mod links;
mod phone;
mod phone_events;
pub mod prelude;
mod registrar_server;
mod runtime;
mod simple;
mod tls;

pub use builder::{CallMedia, PhoneBuilder, locate};
pub use call::Call;
#[cfg(feature = "rtc")]
pub use conference::{Focus, FocusConfig, RoomEvent};
pub use engine::{DefaultSession, Engine, Session, UaEngine};
pub use events::{DEFAULT_EVENT_CAPACITY, EventStream};
pub use phone::{Phone, PhoneConfig, PhoneError, WeakPhone};
pub use registrar_server::RegistrarServer;
pub(crate) use runtime::bind_sip_udp;
#[cfg(target_os = "linux")]
pub use runtime::send_batch;
pub use runtime::{BoxFuture, Listener, RecvBatch, Runtime, Stream, UdpSocket, bind_udp};
pub use simple::{IncomingAction, SimpleMedia, SimpleUser, SimpleUserDelegate};
pub use tls::TlsOptions;

use std::collections::HashMap;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::Instant;

use bytes::Bytes;
use futures::channel::{mpsc, oneshot};
use futures::{FutureExt, StreamExt};
use sansip_core::session::CallHandle;
use sansip_core::transport::{FlowId, FlowInfo, Transport};
use sansip_core::ua::{Event, Input, Output, Server};

use crate::stats::{MediaEvent, StreamId, StreamOutput};
use links::NetEvent;

/// SIP datagrams one receive reads at most: a busy phone wakes once per batch.
const SIP_BATCH: usize = 32;

/// A server, resolved: what the driver opens when the core asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// How to reach it.
    pub transport: Transport,
    /// Its address.
    pub addr: SocketAddr,
    /// The `ws://` or `wss://` URL, for WebSocket.
    pub url: Option<String>,
    /// The host name TLS verifies the certificate for (an IP address works too).
    pub host: Option<String>,
}

impl Target {
    /// A UDP server.
    pub fn udp(addr: SocketAddr) -> Self {
        Self {
            transport: Transport::Udp,
            addr,
            url: None,
            host: None,
        }
    }

    /// A TCP server.
    pub fn tcp(addr: SocketAddr) -> Self {
        Self {
            transport: Transport::Tcp,
            addr,
            url: None,
            host: None,
        }
    }

    /// A TLS server named `host` (for the certificate), resolved to `addr`.
    pub fn tls(host: impl Into<String>, addr: SocketAddr) -> Self {
        Self {
            transport: Transport::Tls,
            addr,
            url: None,
            host: Some(host.into()),
        }
    }

    /// A WebSocket server at `url` (`ws://host:port/path`, or `wss://` for TLS), resolved
    /// to `addr`.
    pub fn ws(url: impl Into<String>, addr: SocketAddr) -> Self {
        let url = url.into();
        let secure = url.starts_with("wss://");
        let host = url
            .split_once("://")
            .map(|(_, rest)| rest.split(['/', '?']).next().unwrap_or_default())
            .and_then(|hostport| dns::split_host_port(hostport).ok())
            .map(|(host, _)| host);
        Self {
            transport: if secure {
                Transport::Wss
            } else {
                Transport::Ws
            },
            addr,
            url: Some(url),
            host,
        }
    }

    /// How the core names it.
    pub fn server(&self) -> Server {
        Server {
            transport: self.transport,
            address: self.url.clone().unwrap_or_else(|| self.addr.to_string()),
        }
    }
}

/// Something to run on the engine, inside the driver task.
pub(crate) type Command<E> = Box<dyn FnOnce(&mut E, Instant, &mut Waiters) + Send>;

/// Who is waiting for which event: a command registers its waiter in the same step that
/// acts, so no event can slip between the two. Calls' own event streams are here too.
#[derive(Default)]
pub(crate) struct Waiters {
    list: Vec<(Matcher, oneshot::Sender<Event>)>,
    calls: Vec<(CallHandle, events::EventSender<Event>)>,
}

type Matcher = Box<dyn Fn(&Event) -> bool + Send>;

impl Waiters {
    /// Delivers the first event matching `matches` to the returned receiver.
    pub(crate) fn wait(
        &mut self,
        matches: impl Fn(&Event) -> bool + Send + 'static,
    ) -> oneshot::Receiver<Event> {
        let (tx, rx) = oneshot::channel();
        self.list.push((Box::new(matches), tx));
        rx
    }

    /// Sends every later event about `call` to `tx`, until the call ends.
    pub(crate) fn follow(&mut self, call: CallHandle, tx: events::EventSender<Event>) {
        self.calls.push((call, tx));
    }

    fn offer(&mut self, e: &Event) {
        if let Some(call) = e.call() {
            let ended = matches!(e, Event::CallEnded { .. });
            // Ending the call drops its senders, which ends its streams once read.
            self.calls.retain(|(c, tx)| {
                if *c != call {
                    return !tx.is_abandoned();
                }
                tx.push(e.clone()) && !ended
            });
        }
        let mut i = 0;
        while i < self.list.len() {
            if (self.list[i].0)(e) {
                let (_, tx) = self.list.swap_remove(i);
                let _ = tx.send(e.clone());
            } else {
                i += 1;
            }
        }
    }
}

/// How bytes for a flow leave.
enum Link {
    /// On the shared UDP socket, to this address.
    Udp(SocketAddr),
    /// To a connection's writer task.
    Stream(mpsc::UnboundedSender<Bytes>),
}

/// The driver task's state.
pub(crate) struct Driver<E> {
    pub(crate) runtime: Arc<dyn Runtime>,
    pub(crate) socket: Arc<dyn UdpSocket>,
    /// The ICMP errors `socket` draws, where the system reports them.
    pub(crate) unreachable: Option<icmp::Unreachable>,
    pub(crate) local: SocketAddr,
    pub(crate) engine: E,
    /// What `Output::OpenFlow { server }` opens.
    pub(crate) targets: Vec<Target>,
    /// For TLS and WSS targets.
    pub(crate) tls: Option<Arc<futures_rustls::rustls::ClientConfig>>,
    /// Listeners for connections peers open to us, with the transport each serves.
    pub(crate) listeners: Vec<(Arc<dyn Listener>, Transport)>,
    pub(crate) commands: mpsc::UnboundedReceiver<Command<E>>,
    pub(crate) events: events::EventSender<Event>,
    /// The media sockets, for engines that carry media.
    pub(crate) media: Vec<Arc<dyn UdpSocket>>,
    pub(crate) media_events: events::EventSender<MediaEvent>,
}

impl<E: Engine> Driver<E> {
    /// Runs until every command sender is gone.
    pub(crate) async fn run(self) {
        let Driver {
            runtime,
            socket,
            unreachable,
            local,
            engine,
            targets,
            tls,
            listeners,
            mut commands,
            events,
            media,
            media_events,
        } = self;
        let media_local: Vec<SocketAddr> = media
            .iter()
            .map(|m| {
                m.local_addr()
                    .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
            })
            .collect();
        let (net_tx, mut net_rx) = mpsc::unbounded();
        let conn_ids = Arc::new(AtomicU64::new(1));
        for (listener, transport) in listeners {
            let task = links::serve(
                runtime.clone(),
                listener,
                transport,
                conn_ids.clone(),
                net_tx.clone(),
            );
            runtime.spawn(Box::pin(task));
        }
        let mut st = State {
            runtime,
            local,
            engine,
            targets,
            tls,
            links: HashMap::new(),
            udp_out: Vec::new(),
            unreachable,
            conns: HashMap::new(),
            conn_ids,
            net: net_tx,
            events,
            media_events,
            waiters: Waiters::default(),
            streams: HashMap::new(),
        };
        let mut batch = RecvBatch::new(SIP_BATCH);
        let mut media_buf = vec![0u8; 2_048];
        loop {
            st.flush(&socket, &media, &media_local);
            let timer = match st.engine.poll_timeout() {
                Some(at) => st.runtime.sleep_until(at),
                None => Box::pin(futures::future::pending()),
            };
            let udp = socket.clone();
            let recv = poll_fn(|cx| udp.poll_recv_batch(cx, &mut batch));
            // Every media socket registers for wake-up; the first with a datagram wins.
            let media_recv = poll_fn(|cx| {
                for (i, m) in media.iter().enumerate() {
                    if let Poll::Ready(r) = m.poll_recv_from(cx, &mut media_buf) {
                        return Poll::Ready(r.map(|(n, from)| (i, n, from)));
                    }
                }
                Poll::Pending
            });
            futures::select_biased! {
                cmd = commands.next() => match cmd {
                    Some(cmd) => cmd(&mut st.engine, st.runtime.now(), &mut st.waiters),
                    None => return,
                },
                ev = net_rx.next() => {
                    if let Some(ev) = ev {
                        st.net_event(ev);
                    }
                }
                received = media_recv.fuse() => match received {
                    Ok((i, n, from)) => {
                        let now = st.runtime.now();
                        st.engine.handle_media(now, from, media_local[i], &media_buf[..n]);
                    }
                    Err(e) => tracing::debug!(error = %e, "media receive failed"),
                },
                received = recv.fuse() => match received {
                    Ok(_) => {
                        for (from, bytes) in batch.datagrams() {
                            st.datagram(Bytes::copy_from_slice(bytes), from);
                        }
                    }
                    // An ICMP error is reported on the next receive: see which
                    // destinations it was about.
                    Err(e) => {
                        tracing::debug!(error = %e, "udp receive failed");
                        st.unreachable_destinations();
                    }
                },
                () = timer.fuse() => {
                    let now = st.runtime.now();
                    st.engine.handle_timeout(now);
                }
            }
        }
    }
}

struct State<E> {
    runtime: Arc<dyn Runtime>,
    local: SocketAddr,
    engine: E,
    targets: Vec<Target>,
    tls: Option<Arc<futures_rustls::rustls::ClientConfig>>,
    links: HashMap<FlowId, Link>,
    /// SIP datagrams waiting for the end of a flush (kept: no allocation per flush).
    udp_out: Vec<(Bytes, SocketAddr)>,
    unreachable: Option<icmp::Unreachable>,
    /// Connection task ids → their flows.
    conns: HashMap<u64, FlowId>,
    /// Shared with the listener tasks, which number the connections they accept.
    conn_ids: Arc<AtomicU64>,
    net: mpsc::UnboundedSender<NetEvent>,
    events: events::EventSender<Event>,
    media_events: events::EventSender<MediaEvent>,
    waiters: Waiters,
    /// The engine's media connections (TURN over TCP or TLS) that are up.
    streams: HashMap<StreamId, mpsc::UnboundedSender<Bytes>>,
}

impl<E: Engine> State<E> {
    fn datagram(&mut self, bytes: Bytes, from: SocketAddr) {
        let flow = self.engine.flow_for(FlowInfo {
            transport: Transport::Udp,
            local: self.local,
            remote: from,
        });
        self.links.insert(flow, Link::Udp(from));
        let now = self.runtime.now();
        self.engine
            .handle_input(now, Input::Received { flow, bytes });
    }

    /// Closes the UDP flows to every destination ICMP reported unreachable, which ends their
    /// transactions with a transport error (RFC 3261 §18.4) and, for the server's flow,
    /// fails over to the next server.
    fn unreachable_destinations(&mut self) {
        let Some(watch) = &self.unreachable else {
            return;
        };
        let now = self.runtime.now();
        for to in watch.drain() {
            tracing::info!(%to, "ICMP: destination unreachable");
            let mut flows: Vec<FlowId> = self
                .links
                .iter()
                .filter(|(_, l)| matches!(l, Link::Udp(a) if *a == to))
                .map(|(f, _)| *f)
                .collect();
            flows.sort();
            for flow in flows {
                self.links.remove(&flow);
                self.engine.handle_input(now, Input::FlowClosed { flow });
            }
        }
    }

    fn net_event(&mut self, ev: NetEvent) {
        let now = self.runtime.now();
        match ev {
            NetEvent::Connected {
                conn,
                accepted,
                info,
                writer,
            } => {
                let flow = if accepted {
                    self.engine.accept_flow(info)
                } else {
                    self.engine.flow_for(info)
                };
                self.links.insert(flow, Link::Stream(writer));
                self.conns.insert(conn, flow);
                if !accepted {
                    self.engine.handle_input(now, Input::FlowOpened { flow });
                }
            }
            NetEvent::ConnectFailed { server, reason } => {
                self.engine
                    .handle_input(now, Input::ConnectFailed { server, reason });
            }
            NetEvent::Data { conn, bytes } => {
                if let Some(&flow) = self.conns.get(&conn) {
                    self.engine
                        .handle_input(now, Input::Received { flow, bytes });
                }
            }
            NetEvent::Closed { conn } => {
                if let Some(flow) = self.conns.remove(&conn) {
                    self.links.remove(&flow);
                    self.engine.handle_input(now, Input::FlowClosed { flow });
                }
            }
            NetEvent::StreamConnected { id, local, writer } => {
                self.streams.insert(id, writer);
                self.engine.stream_connected(now, id, local);
            }
            NetEvent::StreamData { id, bytes } => {
                if self.streams.contains_key(&id) {
                    self.engine.handle_stream(now, id, &bytes);
                }
            }
            NetEvent::StreamClosed { id } => {
                self.streams.remove(&id);
                self.engine.stream_closed(now, id);
            }
        }
    }

    fn open(&mut self, server: usize) {
        let now = self.runtime.now();
        let Some(target) = self.targets.get(server).cloned() else {
            self.engine.handle_input(
                now,
                Input::ConnectFailed {
                    server,
                    reason: "no such server".into(),
                },
            );
            return;
        };
        if target.transport == Transport::Udp {
            let flow = self.engine.flow_for(FlowInfo {
                transport: Transport::Udp,
                local: self.local,
                remote: target.addr,
            });
            self.links.insert(flow, Link::Udp(target.addr));
            self.engine.handle_input(now, Input::FlowOpened { flow });
            return;
        }
        let conn = self.conn_ids.fetch_add(1, Ordering::Relaxed);
        let task = links::open(
            self.runtime.clone(),
            self.tls.clone(),
            target,
            server,
            conn,
            self.net.clone(),
        );
        self.runtime.spawn(Box::pin(task));
    }

    /// Sends the SIP datagrams `flush` collected, in order.
    fn send_udp(&mut self, socket: &Arc<dyn UdpSocket>) {
        let out = std::mem::take(&mut self.udp_out);
        let mut sent = 0;
        let mut read_icmp = self.unreachable.is_some();
        while sent < out.len() {
            match socket.try_send_batch(&out[sent..]) {
                Ok(n) => sent += n.max(1),
                // A pending ICMP error fails the next send, whatever its destination:
                // read it, then send again.
                Err(_) if std::mem::take(&mut read_icmp) => self.unreachable_destinations(),
                Err(e) => {
                    tracing::debug!(error = %e, to = %out[sent].1, "udp send failed");
                    sent += 1;
                    read_icmp = self.unreachable.is_some();
                }
            }
        }
        self.udp_out = out;
        self.udp_out.clear();
    }

    fn flush(
        &mut self,
        socket: &Arc<dyn UdpSocket>,
        media: &[Arc<dyn UdpSocket>],
        media_local: &[SocketAddr],
    ) {
        while let Some(out) = self.engine.poll_output() {
            match out {
                Output::Transmit { flow, bytes } => match self.links.get(&flow) {
                    // Sent together below: one system call for the lot.
                    Some(Link::Udp(to)) => self.udp_out.push((bytes, *to)),
                    Some(Link::Stream(writer)) => {
                        // A closed writer means the connection is going; Closed follows.
                        let _ = writer.unbounded_send(bytes);
                    }
                    None => tracing::debug!(?flow, "transmit on an unknown flow dropped"),
                },
                Output::Event(e) => {
                    self.waiters.offer(&e);
                    // Nobody listening is fine: the application may not read events.
                    self.events.push(e);
                }
                Output::OpenFlow { server, .. } => self.open(server),
                // Dropping the writer closes the connection; its reader reports Closed.
                Output::CloseFlow { flow } => {
                    self.links.remove(&flow);
                }
                _ => {}
            }
        }
        self.send_udp(socket);
        while let Some(t) = self.engine.poll_media() {
            // From the socket the session named as its source.
            let Some(m) = media_local
                .iter()
                .position(|a| *a == t.source)
                .and_then(|i| media.get(i))
                .or(media.first())
            else {
                continue;
            };
            if let Err(e) = m.try_send_to(&t.contents, t.destination) {
                tracing::trace!(error = %e, to = %t.destination, "media send failed");
            }
        }
        while let Some(out) = self.engine.poll_stream() {
            match out {
                StreamOutput::Connect { id, server } => {
                    let task =
                        links::open_stream(self.runtime.clone(), id, server, self.net.clone());
                    self.runtime.spawn(Box::pin(task));
                }
                StreamOutput::Write { id, bytes } => {
                    if let Some(w) = self.streams.get(&id) {
                        // A closed writer means the connection is going; StreamClosed follows.
                        let _ = w.unbounded_send(bytes);
                    }
                }
                // Dropping the writer closes the connection.
                StreamOutput::Close { id } => {
                    self.streams.remove(&id);
                }
            }
        }
        while let Some(e) = self.engine.poll_media_event() {
            self.media_events.push(e);
        }
    }
}
