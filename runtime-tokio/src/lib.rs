//! Runs sansip on tokio.
//!
//! [`TokioRuntime`] implements the driver's [`Runtime`] trait (clock, timer, spawning, UDP);
//! the driver, the async [`Phone`] API and the registrar server are shared with
//! `sansip-smol` and live in `sansip_media::driver`.
//!
//! Features: `media` (default) gives calls real WebRTC media (str0m, Opus in pure Rust,
//! G.711); without it the crate is signalling only and compiles no str0m, aws-lc or codec.
//! `tls-ring` adds TLS links to a signalling-only build; `libopus` swaps in the system
//! libopus. The `softphone` command line is a package of its own (`sansip-softphone`), so
//! none of its dependencies reach a library user.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sansip_tokio::PhoneError> {
//! use sansip_tokio::core::session::FakeSdp;
//! use sansip_tokio::core::ua::UaConfig;
//! use sansip_tokio::PhoneConfig;
//!
//! let server = "127.0.0.1:5060".parse().unwrap();
//! let phone = sansip_tokio::phone::<FakeSdp>(PhoneConfig::new(UaConfig::new("sip:alice@example.com"), server))?;
//! phone.register(600).await?;
//! phone.message("bob", "text/plain", "hello").await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use sansip_media as media;
pub use sansip_media::core;
pub use sansip_media::driver::{
    Call, CallMedia, EventStream, Phone, PhoneBuilder, PhoneConfig, PhoneError, RegistrarServer,
    Runtime, Session, SimpleUser, SimpleUserDelegate, Target, TlsOptions,
};

/// Everything the quick start needs: `use sansip_tokio::prelude::*;`.
pub mod prelude {
    pub use crate::{TokioRuntime, builder};
    pub use sansip_media::driver::prelude::*;
}

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use sansip_media::driver::{BoxFuture, Listener, Stream, UdpSocket};
use tokio_util::compat::TokioAsyncReadCompatExt;

/// The tokio implementation of the driver's [`Runtime`]. Use it inside a tokio runtime
/// with the I/O and time drivers enabled.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioRuntime;

impl Runtime for TokioRuntime {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()> {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }

    fn spawn(&self, future: BoxFuture<()>) {
        tokio::spawn(future);
    }

    fn wrap_udp(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn UdpSocket>> {
        Ok(Arc::new(TokioUdp(tokio::net::UdpSocket::from_std(socket)?)))
    }

    fn connect_tcp(
        &self,
        addr: SocketAddr,
    ) -> BoxFuture<io::Result<(Box<dyn Stream>, SocketAddr)>> {
        Box::pin(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let local = stream.local_addr()?;
            // tokio's I/O traits to the futures-io ones the shared driver speaks.
            Ok((Box::new(stream.compat()) as Box<dyn Stream>, local))
        })
    }

    fn bind_tcp(&self, addr: SocketAddr) -> io::Result<Arc<dyn Listener>> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(Arc::new(TokioListener(tokio::net::TcpListener::from_std(
            listener,
        )?)))
    }
}

#[derive(Debug)]
struct TokioListener(tokio::net::TcpListener);

impl Listener for TokioListener {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Box<dyn Stream>, SocketAddr)>> {
        match self.0.poll_accept(cx) {
            Poll::Ready(Ok((stream, peer))) => {
                stream.set_nodelay(true)?;
                Poll::Ready(Ok((Box::new(stream.compat()), peer)))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[derive(Debug)]
struct TokioUdp(tokio::net::UdpSocket);

impl UdpSocket for TokioUdp {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        let mut rb = tokio::io::ReadBuf::new(buf);
        match self.0.poll_recv_from(cx, &mut rb) {
            Poll::Ready(Ok(from)) => Poll::Ready(Ok((rb.filled().len(), from))),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn try_send_to(&self, buf: &[u8], target: SocketAddr) -> io::Result<usize> {
        self.0.try_send_to(buf, target)
    }

    #[cfg(target_os = "linux")]
    fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        Some(self.0.as_fd())
    }

    #[cfg(target_os = "linux")]
    fn poll_recv_batch(
        &self,
        cx: &mut Context<'_>,
        batch: &mut sansip_media::driver::RecvBatch,
    ) -> Poll<io::Result<usize>> {
        use std::os::fd::AsFd;
        loop {
            std::task::ready!(self.0.poll_recv_ready(cx))?;
            // `try_io` clears the readiness when the batch finds nothing after all.
            match self
                .0
                .try_io(tokio::io::Interest::READABLE, || batch.recv(self.0.as_fd()))
            {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => return Poll::Ready(other),
            }
        }
    }
}

/// A [`PhoneBuilder`] whose phone runs on tokio: the shortest way to a phone.
///
/// ```no_run
/// # async fn run() -> Result<(), sansip_tokio::PhoneError> {
/// let phone = sansip_tokio::builder("sip:alice@example.com")
///     .password("secret")
///     .server("sip:sip.example.com;transport=tcp")
///     .start()
///     .await?;
/// phone.register(600).await?;
/// # Ok(()) }
/// ```
pub fn builder(aor: impl Into<String>) -> PhoneBuilder {
    PhoneBuilder::new(aor).runtime(Arc::new(TokioRuntime))
}

/// Starts a [`Phone`] on the current tokio runtime.
pub fn phone<S: Session>(config: PhoneConfig) -> Result<Phone<S>, PhoneError> {
    Phone::start(Arc::new(TokioRuntime), config)
}
