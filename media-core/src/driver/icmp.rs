//! ICMP errors on the shared SIP UDP socket.
//!
//! RFC 3261 §18.4 treats an ICMP port, host or network unreachable as a transport failure
//! of the transaction that caused it, so a REGISTER to a server that is down fails at once
//! instead of after 32 s of retransmissions. An unconnected socket never hears of those
//! errors unless it asks: on Linux `IP_RECVERR` (`IPV6_RECVERR`) queues each one with the
//! destination of the datagram that drew it, which [`Unreachable::drain`] reads. Elsewhere
//! the watch is off and the transaction timers decide, as before.

use std::net::SocketAddr;

/// The error queue of the driver's UDP socket (a duplicate of its descriptor).
#[derive(Debug)]
pub(crate) struct Unreachable {
    #[cfg(target_os = "linux")]
    socket: std::net::UdpSocket,
}

impl Unreachable {
    /// Asks the kernel to queue ICMP errors on `socket`; `None` where it cannot.
    pub(crate) fn watch(socket: &std::net::UdpSocket) -> Option<Self> {
        #[cfg(target_os = "linux")]
        {
            use nix::sys::socket::{setsockopt, sockopt};
            let set = if socket.local_addr().ok()?.is_ipv4() {
                setsockopt(socket, sockopt::Ipv4RecvErr, &true)
            } else {
                setsockopt(socket, sockopt::Ipv6RecvErr, &true)
            };
            if let Err(e) = set {
                tracing::debug!(error = %e, "ICMP errors will not be reported");
                return None;
            }
            Some(Unreachable {
                socket: socket.try_clone().ok()?,
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = socket;
            None
        }
    }

    /// The destinations that ICMP said cannot be reached since the last call, in order,
    /// each once. Other queued errors (a path MTU report, say) are read and dropped.
    pub(crate) fn drain(&self) -> Vec<SocketAddr> {
        let mut gone = Vec::new();
        #[cfg(target_os = "linux")]
        while let Some(found) = self.next_error() {
            if let Some(addr) = found
                && !gone.contains(&addr)
            {
                gone.push(addr);
            }
        }
        gone
    }

    /// One queued error: `None` when the queue is empty, `Some(None)` for an error that
    /// is not an unreachable destination.
    #[cfg(target_os = "linux")]
    fn next_error(&self) -> Option<Option<SocketAddr>> {
        use nix::errno::Errno;
        use nix::libc;
        use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg};
        use std::os::fd::AsRawFd;

        let mut buf = [0u8; 64];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!(libc::sock_extended_err, libc::sockaddr_in6);
        let msg = recvmsg::<SockaddrStorage>(
            self.socket.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_ERRQUEUE | MsgFlags::MSG_DONTWAIT,
        )
        .ok()?;
        // The name is the destination of the datagram the error is about.
        let to = msg.address.and_then(|a| {
            a.as_sockaddr_in()
                .map(|v4| SocketAddr::from(std::net::SocketAddrV4::from(*v4)))
                .or_else(|| {
                    a.as_sockaddr_in6()
                        .map(|v6| SocketAddr::from(std::net::SocketAddrV6::from(*v6)))
                })
        });
        let unreachable = msg.cmsgs().ok()?.any(|c| {
            let e = match c {
                ControlMessageOwned::Ipv4RecvErr(e, _)
                    if e.ee_origin == libc::SO_EE_ORIGIN_ICMP =>
                {
                    e
                }
                ControlMessageOwned::Ipv6RecvErr(e, _)
                    if e.ee_origin == libc::SO_EE_ORIGIN_ICMP6 =>
                {
                    e
                }
                _ => return false,
            };
            [Errno::ECONNREFUSED, Errno::EHOSTUNREACH, Errno::ENETUNREACH]
                .contains(&Errno::from_raw(e.ee_errno as i32))
        });
        Some(to.filter(|_| unreachable))
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_closed_port_is_reported_with_its_address() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let watch = Unreachable::watch(&socket).unwrap();
        // A port that was just free: nobody listens there.
        let closed = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        socket.send_to(b"OPTIONS", closed).unwrap();
        // The ICMP reply comes back through loopback; wait for it without a fixed sleep.
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 16];
        let e = socket.recv_from(&mut buf).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(nix::libc::ECONNREFUSED), "{e}");
        assert_eq!(watch.drain(), [closed]);
        assert!(watch.drain().is_empty());
    }
}
