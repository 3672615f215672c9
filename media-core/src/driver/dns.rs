//! DNS for the driver: hickory-resolver answers the questions of sip-core's RFC 3263
//! [`ServerLocator`], which holds the policy (NAPTR, then SRV, then A/AAAA).
//!
//! The resolver reads the system's configuration (`/etc/resolv.conf`: every name server,
//! search domains, `ndots`; `/etc/hosts` first), retries over TCP when a UDP answer comes
//! back truncated, and runs on a thread of its own with a small tokio runtime, so the lookup
//! is the same on every runtime the driver runs on and never blocks the caller's.

use std::io;
use std::net::{IpAddr, SocketAddr};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use sansip_core::locate::{DnsQuery, NaptrRecord, Server, ServerLocator, SrvRecord};
use sansip_core::transport::Transport;

use super::Target;

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e.to_string())
}

/// The servers for `uri` (`sip:host[:port][;transport=…]` or `sips:…`), best first, by
/// RFC 3263. `dns` overrides the system's name servers.
///
/// This blocks while it asks; async code calls [`resolve_async`].
pub fn resolve(uri: &str, dns: Option<SocketAddr>) -> io::Result<Vec<Target>> {
    let mut locator = ServerLocator::new(uri).map_err(invalid)?;
    // Numeric hosts ask nothing, so the resolver is only built for the first question.
    let mut resolver: Option<Resolver> = None;
    let mut failure = None;
    while let Some(query) = locator.poll_query() {
        let r = match &mut resolver {
            Some(r) => r,
            None => resolver.insert(Resolver::new(dns)?),
        };
        match query {
            DnsQuery::Naptr(name) => {
                let records = r.naptr(&name).unwrap_or_else(|e| noted(e, &mut failure));
                locator.handle_naptr(&records);
            }
            DnsQuery::Srv(name) => {
                let records = r.srv(&name).unwrap_or_else(|e| noted(e, &mut failure));
                locator.handle_srv(&records);
            }
            DnsQuery::Addresses(host) => {
                let ips = r
                    .addresses(&host)
                    .unwrap_or_else(|e| noted(e, &mut failure));
                locator.handle_addresses(&ips);
            }
        }
    }
    let servers = locator.into_servers();
    match failure {
        // A server that did not answer is worth naming when nothing was found.
        Some(e) if servers.is_empty() => Err(e),
        _ => Ok(servers.into_iter().map(Target::from).collect()),
    }
}

/// A failed question counts as an empty answer, so the plan goes on to its fallbacks;
/// the failure is kept in case nothing is found at all.
fn noted<T>(e: io::Error, failure: &mut Option<io::Error>) -> Vec<T> {
    *failure = Some(e);
    Vec::new()
}

impl From<Server> for Target {
    fn from(s: Server) -> Self {
        match s.transport {
            Transport::Tcp => Target::tcp(s.addr),
            Transport::Tls => Target::tls(s.host, s.addr),
            _ => Target::udp(s.addr),
        }
    }
}

/// [`resolve`] on a thread of its own, so an async caller's runtime never blocks on DNS.
pub async fn resolve_async(uri: &str, dns: Option<SocketAddr>) -> io::Result<Vec<Target>> {
    let uri = uri.to_string();
    on_thread(move || resolve(&uri, dns)).await
}

/// The first address of `host` (the hosts file, then A, then AAAA), on a thread of its own.
/// `dns` overrides the system's name servers.
pub async fn lookup_host(host: &str, port: u16, dns: Option<SocketAddr>) -> io::Result<SocketAddr> {
    if let Ok(ip) = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Ok(SocketAddr::new(ip, port));
    }
    let host = host.to_string();
    on_thread(move || {
        let ips = Resolver::new(dns)?.addresses(&host)?;
        ips.first()
            .map(|ip| SocketAddr::new(*ip, port))
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{host}: no address")))
    })
    .await
}

async fn on_thread<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    let (tx, rx) = futures::channel::oneshot::channel();
    std::thread::Builder::new()
        .name("sansip-dns".into())
        .spawn(move || {
            let _ = tx.send(f());
        })?;
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

/// hickory's resolver and the runtime its queries run on; one per lookup, which only happens
/// when a phone starts or reconnects.
struct Resolver {
    runtime: tokio::runtime::Runtime,
    resolver: TokioResolver,
}

impl Resolver {
    fn new(dns: Option<SocketAddr>) -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let provider = TokioRuntimeProvider::default();
        let (config, mut options) = match dns {
            Some(server) => {
                let mut ns = NameServerConfig::udp_and_tcp(server.ip());
                for c in &mut ns.connections {
                    c.port = server.port();
                }
                (
                    ResolverConfig::from_parts(None, Vec::new(), vec![ns]),
                    ResolverOpts::default(),
                )
            }
            None => hickory_resolver::system_conf::read_system_conf().unwrap_or_else(|e| {
                // Without a resolv.conf, the hosts file can still answer (`localhost`).
                tracing::debug!(target: "sansip::dns", error = %e, "no system DNS configuration");
                (
                    ResolverConfig::from_parts(None, Vec::new(), Vec::new()),
                    ResolverOpts::default(),
                )
            }),
        };
        options.use_hosts_file = ResolveHosts::Always;
        let resolver = TokioResolver::builder_with_config(config, provider)
            .with_options(options)
            .build()
            .map_err(io::Error::other)?;
        Ok(Resolver { runtime, resolver })
    }

    fn naptr(&self, name: &str) -> io::Result<Vec<NaptrRecord>> {
        Ok(self
            .records(name, RecordType::NAPTR)?
            .into_iter()
            .filter_map(|d| match d {
                RData::NAPTR(n) => Some(NaptrRecord {
                    order: n.order,
                    preference: n.preference,
                    flags: String::from_utf8_lossy(&n.flags).into_owned(),
                    services: String::from_utf8_lossy(&n.services).into_owned(),
                    replacement: n.replacement.to_ascii(),
                }),
                _ => None,
            })
            .collect())
    }

    fn srv(&self, name: &str) -> io::Result<Vec<SrvRecord>> {
        Ok(self
            .records(name, RecordType::SRV)?
            .into_iter()
            .filter_map(|d| match d {
                RData::SRV(s) => Some(SrvRecord {
                    priority: s.priority,
                    weight: s.weight,
                    port: s.port,
                    target: s.target.to_ascii(),
                }),
                _ => None,
            })
            .collect())
    }

    fn addresses(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        match self.runtime.block_on(self.resolver.lookup_ip(host)) {
            // IPv4 first, as the resolver's own A-then-AAAA strategy orders DNS answers: the
            // hosts file names `localhost` `::1` first, where most SIP servers do not listen.
            Ok(found) => {
                let (mut v4, v6): (Vec<IpAddr>, Vec<IpAddr>) =
                    found.iter().partition(IpAddr::is_ipv4);
                v4.extend(v6);
                Ok(v4)
            }
            Err(e) => absent_or(e, host),
        }
    }

    fn records(&self, name: &str, kind: RecordType) -> io::Result<Vec<RData>> {
        // A trailing dot: the name is absolute, so search domains are not tried on it.
        let fqdn = format!("{}.", name.trim_end_matches('.'));
        match self.runtime.block_on(self.resolver.lookup(fqdn, kind)) {
            Ok(found) => Ok(found.answers().iter().map(|r| r.data.clone()).collect()),
            Err(e) => absent_or(e, name),
        }
    }
}

/// "No such record" is an empty answer, which RFC 3263 plans for; anything else (no answer,
/// a refusal) is a failure of the lookup.
fn absent_or<T>(e: NetError, name: &str) -> io::Result<Vec<T>> {
    if e.is_no_records_found() {
        Ok(Vec::new())
    } else {
        Err(io::Error::other(format!("DNS lookup of {name}: {e}")))
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
