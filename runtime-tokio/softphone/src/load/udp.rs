//! The load's UDP socket: datagrams in and out in batches (`recvmmsg(2)`, `sendmmsg(2)`),
//! and one `poll(2)` to wait. The SIP loop and the kernel-floor loop share it, so the floor
//! is the same socket work with the stack taken out.

use std::io::{IoSlice, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd};
use std::time::Instant;

use bytes::Bytes;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg, setsockopt,
    sockopt,
};

use super::clock;

/// Socket buffer size asked for, as SIPp's `-buff_size 8388608`.
const SOCKET_BUFFER: usize = 8 * 1024 * 1024;

/// Datagrams one `recvmmsg` or `sendmmsg` call moves at most.
const BATCH: usize = 32;

/// Datagrams handed on before the loop looks at its timers again.
const DRAIN: usize = 256;

/// A non-blocking UDP socket with its batch buffers.
pub(super) struct BatchSocket {
    socket: UdpSocket,
    local: SocketAddr,
    /// One whole-datagram buffer per message of a batch.
    bufs: Vec<Vec<u8>>,
    /// The headers `recvmmsg` and `sendmmsg` fill, kept from one call to the next.
    recv_headers: MultiHeaders<SockaddrStorage>,
    send_headers: MultiHeaders<SockaddrStorage>,
    /// Transmits waiting for the next `sendmmsg`.
    out: Vec<(Bytes, SockaddrStorage)>,
}

impl BatchSocket {
    /// Binds `bind`, non-blocking, with SIPp's socket buffer size.
    pub(super) fn bind(bind: SocketAddr) -> Result<Self, String> {
        let socket = UdpSocket::bind(bind).map_err(|e| format!("bind {bind}: {e}"))?;
        let local = socket.local_addr().map_err(|e| format!("socket: {e}"))?;
        socket
            .set_nonblocking(true)
            .map_err(|e| format!("socket: {e}"))?;
        // What SIPp's -buff_size does: bursts wait in the kernel instead of being dropped.
        // The kernel caps the size at net.core.[rw]mem_max; a refusal leaves the default.
        let _ = setsockopt(&socket, sockopt::RcvBuf, &SOCKET_BUFFER);
        let _ = setsockopt(&socket, sockopt::SndBuf, &SOCKET_BUFFER);
        Ok(Self {
            socket,
            local,
            bufs: vec![vec![0; 65_536]; BATCH],
            recv_headers: MultiHeaders::preallocate(BATCH, None),
            send_headers: MultiHeaders::preallocate(BATCH, None),
            out: Vec::with_capacity(BATCH),
        })
    }

    /// The address the socket is bound to.
    pub(super) fn local(&self) -> SocketAddr {
        self.local
    }

    /// Hands every datagram waiting on the socket to `each`, up to [`DRAIN`], reading
    /// [`BATCH`] per system call; returns how many there were. Draining before the next
    /// wait is what keeps a busy load cheap: one wake-up serves many messages.
    pub(super) fn drain(
        &mut self,
        mut each: impl FnMut(SocketAddr, &[u8]),
    ) -> Result<usize, String> {
        let mut got = 0;
        while got < DRAIN {
            let mut received = [(0usize, None::<SocketAddr>); BATCH];
            let n = {
                let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] = {
                    let mut bufs = self.bufs.iter_mut();
                    std::array::from_fn(|_| {
                        [IoSliceMut::new(
                            bufs.next().map_or(&mut [][..], |b| &mut b[..]),
                        )]
                    })
                };
                let fd = self.socket.as_raw_fd();
                match recvmmsg(
                    fd,
                    &mut self.recv_headers,
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
                if let Some(from) = *from {
                    each(from, &self.bufs[i][..*len]);
                }
            }
            got += n;
            if n < BATCH {
                break;
            }
        }
        Ok(got)
    }

    /// Queues a datagram for the next [`BatchSocket::flush`].
    pub(super) fn send(&mut self, bytes: Bytes, to: SocketAddr) {
        self.out.push((bytes, SockaddrStorage::from(to)));
    }

    /// Sends the queued datagrams, [`BATCH`] per system call. A full socket buffer loses
    /// the rest of a batch, as the network would; retransmission covers it and the report
    /// counts it.
    pub(super) fn flush(&mut self) {
        let fd = self.socket.as_raw_fd();
        let no_cmsgs: [ControlMessage<'_>; 0] = [];
        for chunk in self.out.chunks(BATCH) {
            let iovs: Vec<[IoSlice<'_>; 1]> =
                chunk.iter().map(|(b, _)| [IoSlice::new(b)]).collect();
            let addrs: Vec<Option<SockaddrStorage>> = chunk.iter().map(|(_, a)| Some(*a)).collect();
            let mut sent = 0;
            while sent < chunk.len() {
                match sendmmsg(
                    fd,
                    &mut self.send_headers,
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
    pub(super) fn wait(&self, deadline: Instant) -> Result<(), String> {
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
