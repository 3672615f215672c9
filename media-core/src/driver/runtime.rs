//! What the driver needs from an async runtime: a clock, a timer, spawning and UDP sockets.
//! `sansip-tokio` and `sansip-smol` each implement it once; everything else is shared.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

/// A boxed future the driver can hold across runtimes.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// An async runtime, in the manner of quinn's `Runtime` trait: the small surface the driver
/// uses, so one driver serves every runtime.
pub trait Runtime: Send + Sync + fmt::Debug + 'static {
    /// The current instant. The sans-IO layers never read the clock themselves; the driver
    /// reads it here and passes it in.
    fn now(&self) -> Instant;
    /// A future that completes at `deadline`.
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()>;
    /// Runs `future` in the background.
    fn spawn(&self, future: BoxFuture<()>);
    /// Wraps a bound, non-blocking std socket for this runtime.
    fn wrap_udp(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn UdpSocket>>;
    /// Opens a TCP connection; returns the stream and its local address.
    fn connect_tcp(&self, addr: SocketAddr)
    -> BoxFuture<io::Result<(Box<dyn Stream>, SocketAddr)>>;
    /// Listens for TCP connections on `addr`.
    fn bind_tcp(&self, addr: SocketAddr) -> io::Result<Arc<dyn Listener>>;
}

/// A TCP listener registered with a runtime.
pub trait Listener: Send + Sync + fmt::Debug {
    /// The address it listens on.
    fn local_addr(&self) -> io::Result<SocketAddr>;
    /// Accepts one connection (the stream and the peer's address), or registers `cx` to be
    /// woken when one is waiting.
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(Box<dyn Stream>, SocketAddr)>>;
}

/// A byte stream (TCP, or TLS over it) in the `futures-io` traits, which async-tungstenite
/// and futures-rustls build on whatever the runtime.
pub trait Stream:
    futures::io::AsyncRead + futures::io::AsyncWrite + Send + Unpin + 'static
{
}

impl<T: futures::io::AsyncRead + futures::io::AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// A UDP socket registered with a runtime.
pub trait UdpSocket: Send + Sync + fmt::Debug {
    /// The address it is bound to.
    fn local_addr(&self) -> io::Result<SocketAddr>;
    /// Receives one datagram, or registers `cx` to be woken when one can be read.
    fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>>;
    /// Sends one datagram without waiting; a full socket buffer drops it, as the network
    /// may (SIP's retransmissions cover both).
    fn try_send_to(&self, buf: &[u8], target: SocketAddr) -> io::Result<usize>;
}

/// Binds a UDP socket on `addr` for `runtime`.
pub fn bind_udp(runtime: &dyn Runtime, addr: SocketAddr) -> io::Result<Arc<dyn UdpSocket>> {
    let socket = std::net::UdpSocket::bind(addr)?;
    socket.set_nonblocking(true)?;
    runtime.wrap_udp(socket)
}

/// [`bind_udp`] for SIP: the socket, and the watch on the ICMP errors it draws.
pub(crate) fn bind_sip_udp(
    runtime: &dyn Runtime,
    addr: SocketAddr,
) -> io::Result<(Arc<dyn UdpSocket>, Option<super::icmp::Unreachable>)> {
    let socket = std::net::UdpSocket::bind(addr)?;
    socket.set_nonblocking(true)?;
    grow_buffers(&socket);
    let unreachable = super::icmp::Unreachable::watch(&socket);
    Ok((runtime.wrap_udp(socket)?, unreachable))
}

/// The socket buffers the SIP socket asks for. The default (about 200 KiB) holds a few
/// hundred messages: a burst of calls, or a moment when the runtime is busy elsewhere,
/// overflows it, and every datagram lost costs a retransmission 500 ms later. SIP servers
/// and SIPp ask for more; the kernel caps the request at `net.core.rmem_max` and
/// `net.core.wmem_max`.
const SIP_SOCKET_BUFFER: usize = 4 * 1024 * 1024;

fn grow_buffers(socket: &std::net::UdpSocket) {
    #[cfg(target_os = "linux")]
    {
        use nix::sys::socket::{setsockopt, sockopt};
        // A refusal leaves the default, which works, only with less room.
        let _ = setsockopt(socket, sockopt::RcvBuf, &SIP_SOCKET_BUFFER);
        let _ = setsockopt(socket, sockopt::SndBuf, &SIP_SOCKET_BUFFER);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (socket, SIP_SOCKET_BUFFER);
}
