//! Locating SIP servers (RFC 3263 §4): a `sip:`/`sips:` URI that names only a domain is
//! looked up by NAPTR, then SRV, then A/AAAA; an explicit port or IP address skips
//! straight to A/AAAA. The result is an ordered list of [`Target`]s, which the core fails
//! over across.
//!
//! The queries are plain DNS over UDP (hickory-proto builds and reads the messages) to the
//! first `nameserver` of `/etc/resolv.conf`, or to a server the caller names — run on a
//! thread, so the lookup is the same on every runtime.

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use sansip_core::transport::Transport;

use super::Target;

/// How long to wait for an answer before asking again, and how many times to ask
/// (UDP loses queries too; RFC 1035 §4.2.1 leaves retransmission to the client).
const QUERY_TIMEOUT: Duration = Duration::from_millis(700);
const QUERY_TRIES: usize = 3;

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e.to_string())
}

/// The servers for `uri` (`sip:host[:port][;transport=…]` or `sips:…`), best first.
/// `dns` overrides the system's name server.
pub fn resolve(uri: &str, dns: Option<SocketAddr>) -> io::Result<Vec<Target>> {
    let (secure, rest) = if let Some(r) = uri.strip_prefix("sips:") {
        (true, r)
    } else if let Some(r) = uri.strip_prefix("sip:") {
        (false, r)
    } else {
        return Err(invalid(format!("{uri}: not a sip: or sips: URI")));
    };
    let mut parts = rest.split(';');
    let hostport = parts.next().unwrap_or_default();
    let hostport = hostport.rsplit('@').next().unwrap_or(hostport);
    let mut transport = None;
    for p in parts {
        if let Some(t) = p.strip_prefix("transport=") {
            transport = Some(match t.to_ascii_lowercase().as_str() {
                "udp" => Transport::Udp,
                "tcp" if secure => Transport::Tls,
                "tcp" => Transport::Tcp,
                "tls" => Transport::Tls,
                other => return Err(invalid(format!("{uri}: unknown transport {other}"))),
            });
        }
    }
    let (host, port) = split_host_port(hostport)?;
    let lookup = Lookup { dns };
    // §4.1–4.2: a numeric address or an explicit port means no NAPTR or SRV.
    if host.parse::<IpAddr>().is_ok() || port.is_some() {
        let t = transport.unwrap_or(if secure {
            Transport::Tls
        } else {
            Transport::Udp
        });
        let port = port.unwrap_or(if t == Transport::Tls { 5061 } else { 5060 });
        return lookup.addresses(&host, port, t);
    }
    // §4.1: NAPTR picks the transport when the URI does not.
    if transport.is_none() {
        let mut naptr = lookup.naptr(&host)?;
        naptr.sort_by_key(|n| (n.0, n.1));
        let mut found = Vec::new();
        for (_, _, t, srv) in naptr {
            if secure && t != Transport::Tls {
                continue;
            }
            found.extend(lookup.srv(&srv, t)?);
        }
        if !found.is_empty() {
            return Ok(found);
        }
    }
    // §4.1: no NAPTR — SRV for each transport we can use (or the one asked for).
    let candidates: Vec<Transport> = match transport {
        Some(t) => vec![t],
        None if secure => vec![Transport::Tls],
        None => vec![Transport::Udp, Transport::Tcp, Transport::Tls],
    };
    let mut found = Vec::new();
    for t in &candidates {
        let prefix = match t {
            Transport::Tls => "_sips._tcp",
            Transport::Tcp => "_sip._tcp",
            _ => "_sip._udp",
        };
        found.extend(lookup.srv(&format!("{prefix}.{host}"), *t)?);
    }
    if !found.is_empty() {
        return Ok(found);
    }
    // §4.2: no SRV either — the domain's own address, on the default port.
    let t = candidates[0];
    lookup.addresses(&host, if t == Transport::Tls { 5061 } else { 5060 }, t)
}

/// [`resolve`] on a thread of its own, so an async caller's runtime never blocks on DNS.
pub async fn resolve_async(uri: &str, dns: Option<SocketAddr>) -> io::Result<Vec<Target>> {
    let (tx, rx) = futures::channel::oneshot::channel();
    let uri = uri.to_string();
    std::thread::spawn(move || {
        let _ = tx.send(resolve(&uri, dns));
    });
    rx.await
        .unwrap_or_else(|_| Err(io::Error::other("the DNS thread died")))
}

/// The first address of `host` (A, then AAAA, then the hosts file), on a thread of its own.
/// `dns` overrides the system's name server.
pub async fn lookup_host(host: &str, port: u16, dns: Option<SocketAddr>) -> io::Result<SocketAddr> {
    let (tx, rx) = futures::channel::oneshot::channel();
    let host = host.to_string();
    std::thread::spawn(move || {
        let found = Lookup { dns }
            .addresses(&host, port, Transport::Tcp)
            .and_then(|t| {
                t.first().map(|t| t.addr).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::NotFound, format!("{host}: no address"))
                })
            });
        let _ = tx.send(found);
    });
    rx.await
        .unwrap_or_else(|_| Err(io::Error::other("the DNS thread died")))
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; a port that is not a number from 0 to
/// 65535 is refused by name.
pub(crate) fn split_host_port(s: &str) -> io::Result<(String, Option<u16>)> {
    let port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| invalid(format!("{s}: bad port {p:?}")))
    };
    if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| invalid(format!("{s}: unclosed [")))?;
        let port = after.strip_prefix(':').map(port).transpose()?;
        return Ok((h.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) => Ok((h.to_string(), Some(port(p)?))),
        None => Ok((s.to_string(), None)),
    }
}

fn system_name_server() -> io::Result<SocketAddr> {
    let conf = std::fs::read_to_string("/etc/resolv.conf")?;
    conf.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|ip| ip.trim().parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no nameserver in /etc/resolv.conf"))
}

struct Lookup {
    /// `None`: the system's, read when the first query needs it (numeric hosts need none).
    dns: Option<SocketAddr>,
}

impl Lookup {
    fn query(&self, name: &str, kind: RecordType) -> io::Result<Vec<RData>> {
        let name = Name::from_ascii(name).map_err(invalid)?;
        let id = fastrand::u16(..);
        let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
        msg.metadata.recursion_desired = true;
        msg.add_query(Query::query(name, kind));
        let bytes = msg.to_vec().map_err(invalid)?;
        let dns = match self.dns {
            Some(d) => d,
            None => system_name_server()?,
        };
        let bind: SocketAddr = if dns.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let socket = UdpSocket::bind(bind)?;
        socket.set_read_timeout(Some(QUERY_TIMEOUT))?;
        let mut buf = [0u8; 4096];
        let mut last = io::Error::new(io::ErrorKind::TimedOut, "no answer");
        for _ in 0..QUERY_TRIES {
            socket.send_to(&bytes, dns)?;
            loop {
                let (n, from) = match socket.recv_from(&mut buf) {
                    Ok(r) => r,
                    Err(e) => {
                        last = e;
                        break;
                    }
                };
                if from != dns {
                    continue;
                }
                let reply = Message::from_vec(&buf[..n]).map_err(invalid)?;
                if reply.metadata.id != id {
                    continue;
                }
                return Ok(reply.answers.into_iter().map(|r| r.data).collect());
            }
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no answer from the DNS server {dns}: {last}"),
        ))
    }

    /// (order, preference, transport, SRV name) for the SIP services we can use.
    fn naptr(&self, host: &str) -> io::Result<Vec<(u16, u16, Transport, String)>> {
        let mut out = Vec::new();
        for data in self.query(host, RecordType::NAPTR)? {
            let RData::NAPTR(n) = data else { continue };
            if !n.flags.eq_ignore_ascii_case(b"s") {
                continue;
            }
            let t = match n.services.to_ascii_uppercase().as_slice() {
                b"SIP+D2U" => Transport::Udp,
                b"SIP+D2T" => Transport::Tcp,
                b"SIPS+D2T" => Transport::Tls,
                _ => continue,
            };
            out.push((n.order, n.preference, t, n.replacement.to_ascii()));
        }
        Ok(out)
    }

    /// Targets from the SRV records at `name`: lowest priority first, then highest weight
    /// (deterministic rather than the weighted draw of RFC 2782: one client, few records).
    fn srv(&self, name: &str, t: Transport) -> io::Result<Vec<Target>> {
        let mut records: Vec<_> = self
            .query(name, RecordType::SRV)?
            .into_iter()
            .filter_map(|d| match d {
                RData::SRV(s) => Some(s),
                _ => None,
            })
            .collect();
        records.sort_by_key(|s| (s.priority, std::cmp::Reverse(s.weight)));
        let mut out = Vec::new();
        for s in records {
            let target = s.target.to_ascii();
            let target = target.trim_end_matches('.');
            if target.is_empty() {
                continue; // "." means the service is decidedly not available here
            }
            out.extend(self.addresses(target, s.port, t)?);
        }
        Ok(out)
    }

    fn addresses(&self, host: &str, port: u16, t: Transport) -> io::Result<Vec<Target>> {
        let host = host.trim_end_matches('.');
        let ips: Vec<IpAddr> = if let Ok(ip) = host.parse::<IpAddr>() {
            vec![ip]
        } else {
            let mut ips = Vec::new();
            for kind in [RecordType::A, RecordType::AAAA] {
                for d in self.query(host, kind)? {
                    match d {
                        RData::A(a) => ips.push(IpAddr::V4(a.0)),
                        RData::AAAA(a) => ips.push(IpAddr::V6(a.0)),
                        _ => {}
                    }
                }
            }
            if ips.is_empty() {
                // Names the DNS server does not know may still be in /etc/hosts.
                ips = (host, port)
                    .to_socket_addrs()
                    .map(|it| it.map(|a| a.ip()).collect())
                    .unwrap_or_default();
            }
            ips
        };
        Ok(ips
            .into_iter()
            .map(|ip| {
                let addr = SocketAddr::new(ip, port);
                match t {
                    Transport::Tcp => Target::tcp(addr),
                    Transport::Tls => Target::tls(host, addr),
                    _ => Target::udp(addr),
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_forms() {
        assert_eq!(
            split_host_port("example.com").unwrap(),
            ("example.com".into(), None)
        );
        assert_eq!(
            split_host_port("example.com:5070").unwrap(),
            ("example.com".into(), Some(5070))
        );
        assert_eq!(
            split_host_port("[::1]:5061").unwrap(),
            ("::1".into(), Some(5061))
        );
        assert_eq!(split_host_port("[::1]").unwrap(), ("::1".into(), None));
        assert!(split_host_port("host:notaport").is_err());
        let e = split_host_port("host:99999").unwrap_err().to_string();
        assert!(e.contains("bad port \"99999\""), "{e}");
    }

    #[test]
    fn numeric_hosts_need_no_dns() {
        let dns = Some("127.0.0.1:9".parse().unwrap());
        let t = resolve("sip:127.0.0.1:5070;transport=tcp", dns).unwrap();
        assert_eq!(t, [Target::tcp("127.0.0.1:5070".parse().unwrap())]);
        let t = resolve("sips:127.0.0.1", dns).unwrap();
        assert_eq!(t[0].transport, Transport::Tls);
        assert_eq!(t[0].addr.port(), 5061);
        assert!(resolve("http://x", dns).is_err());
    }
}
