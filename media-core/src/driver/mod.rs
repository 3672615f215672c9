//! The one driver loop every runtime shares (DESIGN.md §5): it owns a sans-IO [`Engine`],
//! moves datagrams between it and a UDP socket, fires its timer, runs commands from the
//! application, and forwards its events.
//!
//! It is written once over the small [`Runtime`] trait; `sansip-tokio` and `sansip-smol`
//! implement that trait and add nothing else of substance. The loop: drain
//! `poll_output` and do what it asks, then wait for the earliest of {the engine's
//! deadline, a datagram, a command}, feed that one input, repeat.
//!
//! Transports today: UDP. TCP, TLS and WebSocket flows, and the reconnection policy, are
//! not built yet.

mod engine;
mod phone;
mod runtime;

pub use engine::Engine;
pub use phone::{Call, Phone, PhoneConfig, PhoneError, RegistrarServer};
pub use runtime::{BoxFuture, Runtime, UdpSocket, bind_udp};

use std::collections::HashMap;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use bytes::Bytes;
use futures::channel::{mpsc, oneshot};
use futures::{FutureExt, StreamExt};
use sansip_core::transport::{FlowId, FlowInfo, Transport};
use sansip_core::ua::{Event, Input, Output};

/// Something to run on the engine, inside the driver task.
pub(crate) type Command<E> = Box<dyn FnOnce(&mut E, Instant, &mut Waiters) + Send>;

/// Who is waiting for which event: a command registers its waiter in the same step that
/// acts, so no event can slip between the two.
#[derive(Default)]
pub(crate) struct Waiters {
    list: Vec<(Matcher, oneshot::Sender<Event>)>,
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

    fn offer(&mut self, e: &Event) {
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

/// The driver task's state.
pub(crate) struct Driver<E> {
    pub(crate) runtime: Arc<dyn Runtime>,
    pub(crate) socket: Arc<dyn UdpSocket>,
    pub(crate) local: SocketAddr,
    pub(crate) engine: E,
    /// Where each flow's datagrams go.
    pub(crate) peers: HashMap<FlowId, SocketAddr>,
    pub(crate) commands: mpsc::UnboundedReceiver<Command<E>>,
    pub(crate) events: mpsc::UnboundedSender<Event>,
}

impl<E: Engine> Driver<E> {
    /// Runs until every command sender is gone.
    pub(crate) async fn run(mut self) {
        let mut waiters = Waiters::default();
        let mut buf = vec![0u8; 65_535];
        loop {
            self.flush(&mut waiters);
            let timer = match self.engine.poll_timeout() {
                Some(at) => self.runtime.sleep_until(at),
                None => Box::pin(futures::future::pending()),
            };
            let socket = self.socket.clone();
            let recv = poll_fn(|cx| match socket.poll_recv_from(cx, &mut buf) {
                Poll::Ready(Ok((n, from))) => {
                    Poll::Ready(Ok((Bytes::copy_from_slice(&buf[..n]), from)))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            });
            futures::select_biased! {
                cmd = self.commands.next() => match cmd {
                    Some(cmd) => cmd(&mut self.engine, self.runtime.now(), &mut waiters),
                    None => return,
                },
                received = recv.fuse() => match received {
                    Ok((bytes, from)) => self.received(bytes, from),
                    // ICMP port unreachable and the like: the transaction timers cover it.
                    Err(e) => tracing::debug!(error = %e, "udp receive failed"),
                },
                () = timer.fuse() => self.engine.handle_timeout(self.runtime.now()),
            }
        }
    }

    fn received(&mut self, bytes: Bytes, from: SocketAddr) {
        let flow = self.engine.flow_for(FlowInfo {
            transport: Transport::Udp,
            local: self.local,
            remote: from,
        });
        self.peers.insert(flow, from);
        let now = self.runtime.now();
        self.engine
            .handle_input(now, Input::Received { flow, bytes });
    }

    fn flush(&mut self, waiters: &mut Waiters) {
        while let Some(out) = self.engine.poll_output() {
            match out {
                Output::Transmit { flow, bytes } => match self.peers.get(&flow) {
                    Some(to) => {
                        if let Err(e) = self.socket.try_send_to(&bytes, *to) {
                            tracing::debug!(error = %e, %to, "udp send failed");
                        }
                    }
                    None => tracing::debug!(?flow, "transmit on an unknown flow dropped"),
                },
                Output::Event(e) => {
                    waiters.offer(&e);
                    // Nobody listening is fine: the application may not read events.
                    let _ = self.events.unbounded_send(e);
                }
                _ => {}
            }
        }
    }
}
