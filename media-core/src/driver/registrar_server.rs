//! [`RegistrarServer`]: the embedded registrar and proxy on its sockets.

use std::net::SocketAddr;
use std::sync::Arc;

use futures::channel::mpsc;
use sansip_core::registrar::{Registrar, RegistrarConfig};
use sansip_core::transport::Transport;

use super::events;
use super::{Command, Driver, PhoneError, Runtime, bind_udp};

/// The embedded registrar and proxy (`sansip_core::registrar`) on a UDP socket: for the
/// demo and for tests, never for production.
#[derive(Debug)]
pub struct RegistrarServer {
    local: SocketAddr,
    streams: Vec<(SocketAddr, Transport)>,
    // Dropping the sender ends the driver task.
    _stop: mpsc::UnboundedSender<Command<Registrar>>,
}

impl RegistrarServer {
    /// Binds `bind` (UDP) and serves `config` there.
    pub fn start(
        runtime: Arc<dyn Runtime>,
        bind: SocketAddr,
        config: RegistrarConfig,
        seed: u64,
    ) -> Result<Self, PhoneError> {
        Self::start_with(runtime, bind, &[], config, seed)
    }

    /// Binds `udp`, and listens for TCP or WebSocket connections on each of `streams`
    /// (port 0 picks one; [`RegistrarServer::listener`] tells which).
    pub fn start_with(
        runtime: Arc<dyn Runtime>,
        udp: SocketAddr,
        streams: &[(SocketAddr, Transport)],
        config: RegistrarConfig,
        seed: u64,
    ) -> Result<Self, PhoneError> {
        let socket = bind_udp(runtime.as_ref(), udp)?;
        let local = socket.local_addr()?;
        let mut listeners = Vec::new();
        let mut bound = Vec::new();
        for &(addr, transport) in streams {
            let l = runtime.bind_tcp(addr)?;
            bound.push((l.local_addr()?, transport));
            listeners.push((l, transport));
        }
        let (stop, commands) = mpsc::unbounded();
        // Nobody reads a registrar's events: streams dropped at once take nothing.
        let (events, _) = events::channel(1);
        let (media_events, _) = events::channel(1);
        let driver = Driver {
            runtime: runtime.clone(),
            socket,
            // A registrar answers whoever asks; a vanished contact is the proxy's timers' to find.
            unreachable: None,
            local,
            engine: Registrar::new(config, seed),
            targets: Vec::new(),
            tls: None,
            listeners,
            commands,
            events,
            media: Vec::new(),
            media_events,
        };
        runtime.spawn(Box::pin(driver.run()));
        Ok(Self {
            local,
            streams: bound,
            _stop: stop,
        })
    }

    /// Where it listens for UDP.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Where it listens for `transport` connections, if it does.
    pub fn listener(&self, transport: Transport) -> Option<SocketAddr> {
        self.streams
            .iter()
            .find(|(_, t)| *t == transport)
            .map(|(a, _)| *a)
    }
}
