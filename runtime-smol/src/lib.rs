//! Runs sansip on smol.
//!
//! [`SmolRuntime`] implements the driver's [`Runtime`] trait (clock, timer, spawning, UDP)
//! with `async-io` and smol's global executor; the driver, the async [`Phone`] API and the
//! registrar server are shared with `sansip-tokio` and live in `sansip_media::driver`.
//!
//! ```no_run
//! use sansip_smol::core::session::FakeSdp;
//! use sansip_smol::core::ua::UaConfig;
//! use sansip_smol::PhoneConfig;
//!
//! smol::block_on(async {
//!     let server = "127.0.0.1:5060".parse().unwrap();
//!     let config = PhoneConfig::new(UaConfig::new("sip:alice@example.com"), server);
//!     let phone = sansip_smol::phone::<FakeSdp>(config)?;
//!     phone.register(600).await?;
//!     Ok::<_, sansip_smol::PhoneError>(())
//! })
//! .unwrap();
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use sansip_media as media;
pub use sansip_media::core;
pub use sansip_media::driver::{
    Call, CallMedia, EventStream, Phone, PhoneBuilder, PhoneConfig, PhoneError, RegistrarServer,
    Runtime, Session, SimpleUser, SimpleUserDelegate, Target, TlsOptions,
};

/// Everything the quick start needs: `use sansip_smol::prelude::*;`.
pub mod prelude {
    pub use crate::{SmolRuntime, builder};
    pub use sansip_media::driver::prelude::*;
}

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use sansip_media::driver::{BoxFuture, Listener, Stream, UdpSocket};
use smol::Async;

/// The smol implementation of the driver's [`Runtime`]: tasks on smol's global executor,
/// timers and sockets from `async-io`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SmolRuntime;

impl Runtime for SmolRuntime {
    fn now(&self) -> Instant {
        // The one clock read of the stack; the sans-IO layers get it as an argument.
        #[allow(clippy::disallowed_methods)]
        Instant::now()
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        Box::pin(async move {
            smol::Timer::at(deadline).await;
        })
    }

    fn spawn(&self, future: BoxFuture<()>) {
        smol::spawn(future).detach();
    }

    fn wrap_udp(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn UdpSocket>> {
        Ok(Arc::new(SmolUdp(Async::new(socket)?)))
    }

    fn connect_tcp(
        &self,
        addr: SocketAddr,
    ) -> BoxFuture<io::Result<(Box<dyn Stream>, SocketAddr)>> {
        Box::pin(async move {
            let stream = Async::<std::net::TcpStream>::connect(addr).await?;
            stream.get_ref().set_nodelay(true)?;
            let local = stream.get_ref().local_addr()?;
            Ok((Box::new(stream) as Box<dyn Stream>, local))
        })
    }

    fn bind_tcp(&self, addr: SocketAddr) -> io::Result<Arc<dyn Listener>> {
        Ok(Arc::new(SmolListener(
            Async::<std::net::TcpListener>::bind(addr)?,
        )))
    }
}

#[derive(Debug)]
struct SmolListener(Async<std::net::TcpListener>);

impl Listener for SmolListener {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().local_addr()
    }

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Box<dyn Stream>, SocketAddr)>> {
        loop {
            match self.0.get_ref().accept() {
                Ok((stream, peer)) => {
                    stream.set_nodelay(true)?;
                    return Poll::Ready(Ok((Box::new(Async::new(stream)?), peer)));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.0.poll_readable(cx))?;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

#[derive(Debug)]
struct SmolUdp(Async<std::net::UdpSocket>);

impl UdpSocket for SmolUdp {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().local_addr()
    }

    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        loop {
            match self.0.get_ref().recv_from(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.0.poll_readable(cx))?;
                }
                other => return Poll::Ready(other),
            }
        }
    }

    fn try_send_to(&self, buf: &[u8], target: SocketAddr) -> io::Result<usize> {
        self.0.get_ref().send_to(buf, target)
    }

    #[cfg(target_os = "linux")]
    fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        Some(self.0.get_ref().as_fd())
    }

    #[cfg(target_os = "linux")]
    fn poll_recv_batch(
        &self,
        cx: &mut Context<'_>,
        batch: &mut sansip_media::driver::RecvBatch,
    ) -> Poll<io::Result<usize>> {
        use std::os::fd::AsFd;
        loop {
            match batch.recv(self.0.get_ref().as_fd()) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.0.poll_readable(cx))?;
                }
                other => return Poll::Ready(other),
            }
        }
    }
}

/// A [`PhoneBuilder`] whose phone runs on smol: the shortest way to a phone.
///
/// ```no_run
/// # async fn run() -> Result<(), sansip_smol::PhoneError> {
/// let phone = sansip_smol::builder("sip:alice@example.com")
///     .password("secret")
///     .server("sip:sip.example.com;transport=tcp")
///     .start()
///     .await?;
/// phone.register(600).await?;
/// # Ok(()) }
/// ```
pub fn builder(aor: impl Into<String>) -> PhoneBuilder {
    PhoneBuilder::new(aor).runtime(Arc::new(SmolRuntime))
}

/// Starts a [`Phone`] on smol.
pub fn phone<S: Session>(config: PhoneConfig) -> Result<Phone<S>, PhoneError> {
    Phone::start(Arc::new(SmolRuntime), config)
}
