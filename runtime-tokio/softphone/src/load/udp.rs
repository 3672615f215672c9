//! The load's UDP socket: datagrams in and out in batches (`recvmmsg(2)`, `sendmmsg(2)`),
//! and one `poll(2)` to wait. The SIP loop and the kernel-floor loop share it, so the floor
//! is the same socket work with the stack taken out.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::time::Instant;

use bytes::Bytes;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{setsockopt, sockopt};
use sansip_media::driver::{RecvBatch, send_batch};

use super::clock;

/// Socket buffer size asked for, as SIPp's `-buff_size 8388608`.
const SOCKET_BUFFER: usize = 8 * 1024 * 1024;

/// Datagrams one `recvmmsg` call reads at most (`sendmmsg` sends as many).
const BATCH: usize = 32;

/// Datagrams handed on before the loop looks at its timers again.
const DRAIN: usize = 256;

/// A non-blocking UDP socket with its batch buffers.
pub(super) struct BatchSocket {
    socket: UdpSocket,
    local: SocketAddr,
    /// What one `recvmmsg` reads.
    batch: RecvBatch,
    /// Transmits waiting for the next `sendmmsg`.
    out: Vec<(Bytes, SocketAddr)>,
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
            batch: RecvBatch::new(BATCH),
            out: Vec::with_capacity(BATCH),
        })
    }

    /// The address the socket is bound to.
    pub(super) fn local(&self) -> SocketAddr {
        self.local
    }

    /// Hands every datagram waiting on the socket to `each`, up to [`DRAIN`], reading
    /// [`BATCH`] per system call (the driver's [`RecvBatch`]); returns how many there were.
    /// Draining before the next wait is what keeps a busy load cheap: one wake-up serves
    /// many messages.
    pub(super) fn drain(
        &mut self,
        mut each: impl FnMut(SocketAddr, &[u8]),
    ) -> Result<usize, String> {
        let mut got = 0;
        while got < DRAIN {
            let n = match self.batch.recv(self.socket.as_fd()) {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // ICMP port unreachable from a peer that is not up yet: the transaction
                // layer's retransmissions take care of it.
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::ConnectionRefused | ErrorKind::Interrupted
                    ) =>
                {
                    continue;
                }
                Err(e) => return Err(format!("receive: {e}")),
            };
            for (from, bytes) in self.batch.datagrams() {
                each(from, bytes);
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
        self.out.push((bytes, to));
    }

    /// Sends the queued datagrams, [`BATCH`] per system call (the driver's
    /// [`send_batch`]). A full socket buffer loses a datagram, as the network would;
    /// retransmission covers it and the report counts it.
    pub(super) fn flush(&mut self) {
        let mut sent = 0;
        while sent < self.out.len() {
            match send_batch(self.socket.as_fd(), &self.out[sent..]) {
                Ok(n) => sent += n.max(1),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // Full buffer, or a peer not up yet: skip this datagram.
                Err(_) => sent += 1,
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
