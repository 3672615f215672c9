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

use bytes::Bytes;

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
    /// Sends `datagrams` in order without waiting; returns how many went. A failure stops
    /// the batch: its error when nothing went, else the count so far (the next call meets
    /// it again).
    ///
    /// With `sendmmsg(2)` ([`send_batch`]) when the runtime hands out the socket's
    /// descriptor ([`UdpSocket::fd`]), else one at a time through
    /// [`UdpSocket::try_send_to`].
    fn try_send_batch(&self, datagrams: &[(Bytes, SocketAddr)]) -> io::Result<usize> {
        #[cfg(target_os = "linux")]
        if let Some(fd) = self.fd() {
            return send_batch(fd, datagrams);
        }
        for (i, (bytes, to)) in datagrams.iter().enumerate() {
            if let Err(e) = self.try_send_to(bytes, *to) {
                return if i == 0 { Err(e) } else { Ok(i) };
            }
        }
        Ok(datagrams.len())
    }
    /// The socket's descriptor, for sends in batches (see [`UdpSocket::try_send_batch`]);
    /// `None` sends one datagram at a time.
    #[cfg(target_os = "linux")]
    fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        None
    }
    /// Receives the datagrams waiting, as many as `batch` holds, or registers `cx` to be
    /// woken when one can be read; returns how many arrived (none when every one had a
    /// sender that is not an IP address).
    ///
    /// One at a time through [`UdpSocket::poll_recv_from`] unless the runtime overrides it
    /// (the tokio and smol runtimes read a batch with one `recvmmsg(2)` on Linux, through
    /// [`RecvBatch::recv`]), so that a busy phone wakes once per batch, not per message.
    fn poll_recv_batch(
        &self,
        cx: &mut Context<'_>,
        batch: &mut RecvBatch,
    ) -> Poll<io::Result<usize>> {
        batch.clear();
        match self.poll_recv_from(cx, batch.first()) {
            Poll::Ready(Ok((n, from))) => {
                batch.got.push((0, n, from));
                Poll::Ready(Ok(1))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Buffers for several datagrams read at once (see [`UdpSocket::poll_recv_batch`]).
///
/// ```
/// use sansip_media::driver::RecvBatch;
/// let batch = RecvBatch::new(32);
/// assert_eq!(batch.datagrams().count(), 0);
/// ```
#[derive(Debug)]
pub struct RecvBatch {
    /// One whole-datagram buffer per message of a batch.
    bufs: Vec<Vec<u8>>,
    /// The buffer, length and sender of each datagram of the last batch, in order.
    got: Vec<(usize, usize, SocketAddr)>,
}

/// The largest UDP payload: a datagram is never cut short.
const DATAGRAM: usize = 65_535;

impl RecvBatch {
    /// Room for `count` datagrams (at least one) of any size.
    pub fn new(count: usize) -> Self {
        Self {
            bufs: vec![vec![0; DATAGRAM]; count.max(1)],
            got: Vec::with_capacity(count.max(1)),
        }
    }

    /// Forgets the last batch.
    fn clear(&mut self) {
        self.got.clear();
    }

    /// The first buffer, for a receive of one datagram.
    fn first(&mut self) -> &mut [u8] {
        &mut self.bufs[0]
    }

    /// The datagrams of the last batch: sender and bytes, in the order they arrived.
    pub fn datagrams(&self) -> impl Iterator<Item = (SocketAddr, &[u8])> + '_ {
        self.got
            .iter()
            .map(|&(i, n, from)| (from, &self.bufs[i][..n]))
    }

    /// Reads what is waiting on the non-blocking UDP socket `fd` with one `recvmmsg(2)`,
    /// without blocking: how many datagrams arrived, or `WouldBlock` when none had.
    #[cfg(target_os = "linux")]
    pub fn recv(&mut self, fd: std::os::fd::BorrowedFd<'_>) -> io::Result<usize> {
        use nix::sys::socket::{MsgFlags, MultiHeaders, recvmmsg};
        use std::io::IoSliceMut;
        use std::os::fd::AsRawFd;

        self.got.clear();
        let (bufs, got) = (&mut self.bufs, &mut self.got);
        HEADERS.with_borrow_mut(|slot| {
            // Kept per thread rather than in `self`: they hold raw pointers, which would
            // make the driver's future neither Send nor Sync.
            if slot.as_ref().is_some_and(|(n, _)| *n < bufs.len()) {
                *slot = None;
            }
            let headers = &mut slot
                .get_or_insert_with(|| (bufs.len(), MultiHeaders::preallocate(bufs.len(), None)))
                .1;
            let mut iovs: Vec<[IoSliceMut<'_>; 1]> = bufs
                .iter_mut()
                .map(|b| [IoSliceMut::new(&mut b[..])])
                .collect();
            let received = recvmmsg(
                fd.as_raw_fd(),
                headers,
                iovs.iter_mut(),
                MsgFlags::MSG_DONTWAIT,
                None,
            )
            .map_err(io::Error::from)?;
            for (i, msg) in received.enumerate() {
                // A datagram without an IP sender cannot be answered: skipped.
                if let Some(from) = msg.address.and_then(socket_addr) {
                    got.push((i, msg.bytes, from));
                }
            }
            Ok(got.len())
        })
    }
}

/// Datagrams one `sendmmsg(2)` call sends at most.
#[cfg(target_os = "linux")]
const SEND_BATCH: usize = 32;

#[cfg(target_os = "linux")]
type Headers = nix::sys::socket::MultiHeaders<nix::sys::socket::SockaddrStorage>;

#[cfg(target_os = "linux")]
thread_local! {
    /// The headers `recvmmsg(2)` fills, and how many they hold, for [`RecvBatch::recv`].
    static HEADERS: std::cell::RefCell<Option<(usize, Headers)>> =
        const { std::cell::RefCell::new(None) };
    /// The headers `sendmmsg(2)` fills, for [`send_batch`].
    static SEND_HEADERS: std::cell::RefCell<Option<Headers>> =
        const { std::cell::RefCell::new(None) };
}

/// Sends `datagrams` in order on the non-blocking UDP socket `fd`, [`SEND_BATCH`] per
/// `sendmmsg(2)`, without blocking: how many went, or the error of the first (see
/// [`UdpSocket::try_send_batch`]).
#[cfg(target_os = "linux")]
pub fn send_batch(
    fd: std::os::fd::BorrowedFd<'_>,
    datagrams: &[(Bytes, SocketAddr)],
) -> io::Result<usize> {
    use nix::sys::socket::{ControlMessage, MsgFlags, SockaddrStorage, sendmmsg};
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;

    SEND_HEADERS.with_borrow_mut(|slot| {
        // Per thread, as for receiving: the headers hold raw pointers.
        let headers = slot.get_or_insert_with(|| Headers::preallocate(SEND_BATCH, None));
        let mut sent = 0;
        for chunk in datagrams.chunks(SEND_BATCH) {
            let iovs: Vec<[IoSlice<'_>; 1]> =
                chunk.iter().map(|(b, _)| [IoSlice::new(b)]).collect();
            let addrs: Vec<Option<SockaddrStorage>> = chunk
                .iter()
                .map(|(_, a)| Some(SockaddrStorage::from(*a)))
                .collect();
            let no_cmsgs: [ControlMessage<'_>; 0] = [];
            let n = match sendmmsg(
                fd.as_raw_fd(),
                headers,
                &iovs,
                &addrs,
                no_cmsgs,
                MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(results) => results.count(),
                Err(e) if sent == 0 => return Err(io::Error::from(e)),
                Err(_) => return Ok(sent),
            };
            sent += n;
            if n < chunk.len() {
                break;
            }
        }
        Ok(sent)
    })
}

/// The IP address of a socket address the kernel gave (`None` for other families).
#[cfg(target_os = "linux")]
fn socket_addr(a: nix::sys::socket::SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
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

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_batch_sent_together_arrives_in_order_each_with_its_sender() {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_nonblocking(true).unwrap();
        let to = b.local_addr().unwrap();
        let sent: Vec<(Bytes, SocketAddr)> = ["one", "two", "three"]
            .iter()
            .map(|s| (Bytes::from_static(s.as_bytes()), to))
            .collect();
        assert_eq!(send_batch(a.as_fd(), &sent).unwrap(), 3);
        let mut batch = RecvBatch::new(8);
        // Loopback delivers at once, but give the kernel a moment all the same.
        let mut got = Vec::new();
        for _ in 0..100 {
            match batch.recv(b.as_fd()) {
                Ok(_) => got.extend(batch.datagrams().map(|(f, d)| (f, d.to_vec()))),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
            if got.len() == 3 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let from = a.local_addr().unwrap();
        let expected: Vec<(SocketAddr, Vec<u8>)> = ["one", "two", "three"]
            .iter()
            .map(|s| (from, s.as_bytes().to_vec()))
            .collect();
        assert_eq!(got, expected, "in order, each with its sender");
        // Nothing left: the next receive would block, and says so.
        let e = batch.recv(b.as_fd()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(batch.datagrams().count(), 0);
    }
}
