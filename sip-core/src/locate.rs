//! Locating SIP servers (RFC 3263 §4), as a plan that asks DNS questions and reads answers.
//!
//! The policy lives here; the lookups do not. A [`ServerLocator`] is made from the URI to
//! reach, hands out one [`DnsQuery`] at a time, takes each answer, and ends with the servers
//! to try, best first:
//!
//! - a numeric host, or an explicit port, goes straight to addresses (§4.1, §4.2);
//! - otherwise, unless the URI names a transport, NAPTR picks the transports (§4.1);
//! - without usable NAPTR records, SRV for each transport we may use (`_sips._tcp` only for
//!   `sips:`), and the domain's own address on the default port when no SRV record exists.
//!
//! SRV records are tried by priority, and within a priority by weight, heaviest first: one
//! client with a handful of records gains nothing from RFC 2782's weighted draw, and a fixed
//! order makes a run replay exactly.
//!
//! ```
//! use std::net::IpAddr;
//! use sansip_core::locate::{DnsQuery, ServerLocator, SrvRecord};
//! use sansip_core::transport::Transport;
//!
//! let mut locator = ServerLocator::new("sip:example.com;transport=tcp").unwrap();
//! assert_eq!(locator.poll_query(), Some(DnsQuery::Srv("_sip._tcp.example.com".into())));
//! locator.handle_srv(&[SrvRecord { priority: 0, weight: 5, port: 5070, target: "pbx.example.com".into() }]);
//! assert_eq!(locator.poll_query(), Some(DnsQuery::Addresses("pbx.example.com".into())));
//! locator.handle_addresses(&["192.0.2.7".parse::<IpAddr>().unwrap()]);
//! assert_eq!(locator.poll_query(), None);
//! let servers = locator.into_servers();
//! assert_eq!(servers[0].transport, Transport::Tcp);
//! assert_eq!(servers[0].addr.to_string(), "192.0.2.7:5070");
//! // TLS would verify the URI's domain, not the SRV target (RFC 5922 §4).
//! assert_eq!(servers[0].host, "example.com");
//! ```

use std::net::{IpAddr, SocketAddr};

use crate::message::{Host, Scheme, Uri};
use crate::transport::Transport;

/// A URI that names no SIP server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LocateError {
    /// Not a URI at all, or not a `sip:`/`sips:` one.
    #[error("{uri}: not a sip: or sips: URI ({reason})")]
    NotSip {
        /// The text given.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `transport` parameter we cannot use.
    #[error("{uri}: unknown transport {transport:?}")]
    UnknownTransport {
        /// The text given.
        uri: String,
        /// The parameter's value.
        transport: String,
    },
}

/// A DNS question the locator needs answered next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsQuery {
    /// NAPTR records of a domain; answer with [`ServerLocator::handle_naptr`].
    Naptr(String),
    /// SRV records of a service name (`_sip._udp.example.com`); answer with
    /// [`ServerLocator::handle_srv`].
    Srv(String),
    /// The A and AAAA addresses of a host (the hosts file counts); answer with
    /// [`ServerLocator::handle_addresses`].
    Addresses(String),
}

/// One NAPTR record (RFC 3403), as much of it as RFC 3263 reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NaptrRecord {
    /// Lower is tried first.
    pub order: u16,
    /// Lower is tried first among equal orders.
    pub preference: u16,
    /// `s`: the replacement is an SRV name; other flags are not for SIP.
    pub flags: String,
    /// `SIP+D2U`, `SIP+D2T`, `SIPS+D2T`, …
    pub services: String,
    /// The SRV name to look up next.
    pub replacement: String,
}

/// One SRV record (RFC 2782).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    /// Lower is tried first.
    pub priority: u16,
    /// Heavier is tried first among equal priorities.
    pub weight: u16,
    /// The server's port.
    pub port: u16,
    /// The server's host name; `.` means the service is not offered.
    pub target: String,
}

/// A server to try: how, where, and which name its TLS certificate must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// The transport to reach it by.
    pub transport: Transport,
    /// Its address.
    pub addr: SocketAddr,
    /// The URI's host: what a TLS certificate is checked against (RFC 5922 §4).
    pub host: String,
}

/// What to do when the step is reached.
#[derive(Debug)]
enum Step {
    Naptr,
    Srv {
        name: String,
        transport: Transport,
    },
    Addresses {
        host: String,
        port: u16,
        transport: Transport,
    },
    /// §4.1: no NAPTR led anywhere: SRV for each transport we may use.
    SrvFallback,
    /// §4.2: no SRV record at all: the domain itself, on the default port.
    AddressFallback,
}

/// RFC 3263 server location for one URI; see the [module documentation](self).
#[derive(Debug)]
pub struct ServerLocator {
    host: String,
    secure: bool,
    transport: Option<Transport>,
    /// Steps still to take, the next one last: each answer pushes the steps it leads to
    /// in front of the ones already waiting, so servers come out in preference order.
    steps: Vec<Step>,
    /// The step whose question is out.
    asked: Option<Step>,
    /// Whether any SRV record named a server (then §4.2's fallback does not apply).
    srv_found: bool,
    found: Vec<Server>,
}

impl ServerLocator {
    /// Plans the lookups for `uri` (`sip:host[:port][;transport=…][;maddr=…]` or `sips:…`).
    pub fn new(uri: &str) -> Result<Self, LocateError> {
        let not_sip = |reason: String| LocateError::NotSip {
            uri: uri.to_string(),
            reason,
        };
        let parsed = Uri::parse(uri).map_err(|e| not_sip(e.to_string()))?;
        let secure = match parsed.scheme() {
            Scheme::Sip => false,
            Scheme::Sips => true,
            other => return Err(not_sip(format!("scheme {}", other.as_str()))),
        };
        let transport = match parsed.transport() {
            None => None,
            Some(t) => Some(match t.to_ascii_lowercase().as_str() {
                "udp" => Transport::Udp,
                "tcp" if secure => Transport::Tls,
                "tcp" => Transport::Tcp,
                "tls" => Transport::Tls,
                _ => {
                    return Err(LocateError::UnknownTransport {
                        uri: uri.to_string(),
                        transport: t.to_string(),
                    });
                }
            }),
        };
        // §4: maddr, when present, names the server in place of the host.
        let maddr = parsed.params().get("maddr").flatten();
        let host = match maddr {
            Some(m) => Host::parse(m).map_err(|e| not_sip(format!("maddr: {e}")))?,
            None => parsed
                .host()
                .ok_or_else(|| not_sip("no host".to_string()))?,
        };
        let numeric = host.domain().is_none();
        let name = match host {
            Host::Domain(d) => d.trim_end_matches('.').to_string(),
            Host::Ipv4(a) => a.to_string(),
            Host::Ipv6(a) => a.to_string(),
        };
        let mut locator = ServerLocator {
            host: name.clone(),
            secure,
            transport,
            steps: Vec::new(),
            asked: None,
            srv_found: false,
            found: Vec::new(),
        };
        // §4.1–4.2: a numeric address or an explicit port means no NAPTR or SRV.
        if numeric || parsed.port().is_some() {
            let t = locator.default_transport();
            let port = parsed.port().unwrap_or_else(|| default_port(t));
            locator.steps.push(Step::Addresses {
                host: name,
                port,
                transport: t,
            });
        } else if transport.is_some() {
            locator.steps.push(Step::AddressFallback);
            locator.steps.push(Step::SrvFallback);
        } else {
            locator.steps.push(Step::AddressFallback);
            locator.steps.push(Step::SrvFallback);
            locator.steps.push(Step::Naptr);
        }
        Ok(locator)
    }

    /// The next question to answer, or `None` when the plan is complete.
    pub fn poll_query(&mut self) -> Option<DnsQuery> {
        if self.asked.is_some() {
            return None;
        }
        while let Some(step) = self.steps.pop() {
            let query = match &step {
                Step::Naptr => DnsQuery::Naptr(self.host.clone()),
                Step::Srv { name, .. } => DnsQuery::Srv(name.clone()),
                Step::Addresses { host, .. } => match host.parse::<IpAddr>() {
                    Ok(ip) => {
                        self.asked = Some(step);
                        self.handle_addresses(&[ip]);
                        continue;
                    }
                    Err(_) => DnsQuery::Addresses(host.clone()),
                },
                Step::SrvFallback => {
                    if self.found.is_empty() {
                        self.push_srv_fallback();
                    }
                    continue;
                }
                Step::AddressFallback => {
                    if self.found.is_empty() && !self.srv_found {
                        let t = self.default_transport();
                        self.steps.push(Step::Addresses {
                            host: self.host.clone(),
                            port: default_port(t),
                            transport: t,
                        });
                    }
                    continue;
                }
            };
            self.asked = Some(step);
            return Some(query);
        }
        None
    }

    /// The NAPTR records of the domain ([`DnsQuery::Naptr`]); none on NXDOMAIN or error.
    pub fn handle_naptr(&mut self, records: &[NaptrRecord]) {
        if !matches!(self.asked, Some(Step::Naptr)) {
            return;
        }
        self.asked = None;
        let mut usable: Vec<(u16, u16, Transport, String)> = records
            .iter()
            .filter(|n| n.flags.eq_ignore_ascii_case("s"))
            .filter_map(|n| {
                let t = match n.services.to_ascii_uppercase().as_str() {
                    "SIP+D2U" => Transport::Udp,
                    "SIP+D2T" => Transport::Tcp,
                    "SIPS+D2T" => Transport::Tls,
                    _ => return None,
                };
                // §4.1: a sips URI may only be reached over TLS.
                (!self.secure || t == Transport::Tls).then(|| {
                    let name = n.replacement.trim_end_matches('.').to_string();
                    (n.order, n.preference, t, name)
                })
            })
            .collect();
        usable.sort_by_key(|n| (n.0, n.1));
        for (_, _, transport, name) in usable.into_iter().rev() {
            self.steps.push(Step::Srv { name, transport });
        }
    }

    /// The SRV records of the service name asked ([`DnsQuery::Srv`]); none on NXDOMAIN.
    pub fn handle_srv(&mut self, records: &[SrvRecord]) {
        let Some(Step::Srv { transport, .. }) = self.asked else {
            return;
        };
        self.asked = None;
        let mut records: Vec<&SrvRecord> = records.iter().collect();
        records.sort_by_key(|s| (s.priority, std::cmp::Reverse(s.weight)));
        let mut next = Vec::new();
        for s in records {
            let target = s.target.trim_end_matches('.');
            // "." says the service is decidedly not available at this domain.
            if target.is_empty() {
                continue;
            }
            self.srv_found = true;
            next.push(Step::Addresses {
                host: target.to_string(),
                port: s.port,
                transport,
            });
        }
        self.steps.extend(next.into_iter().rev());
    }

    /// The addresses of the host asked ([`DnsQuery::Addresses`]); none if it has none.
    pub fn handle_addresses(&mut self, ips: &[IpAddr]) {
        let Some(Step::Addresses {
            port, transport, ..
        }) = self.asked
        else {
            return;
        };
        self.asked = None;
        for ip in ips {
            let server = Server {
                transport,
                addr: SocketAddr::new(*ip, port),
                host: self.host.clone(),
            };
            if !self.found.contains(&server) {
                self.found.push(server);
            }
        }
    }

    /// The servers found, best first (empty if none was).
    pub fn into_servers(self) -> Vec<Server> {
        self.found
    }

    fn default_transport(&self) -> Transport {
        match self.transport {
            Some(t) => t,
            None if self.secure => Transport::Tls,
            None => Transport::Udp,
        }
    }

    fn push_srv_fallback(&mut self) {
        let transports: &[Transport] = match self.transport {
            Some(Transport::Tls) => &[Transport::Tls],
            Some(Transport::Tcp) => &[Transport::Tcp],
            Some(_) => &[Transport::Udp],
            None if self.secure => &[Transport::Tls],
            None => &[Transport::Udp, Transport::Tcp, Transport::Tls],
        };
        for &transport in transports.iter().rev() {
            let prefix = match transport {
                Transport::Tls => "_sips._tcp",
                Transport::Tcp => "_sip._tcp",
                _ => "_sip._udp",
            };
            self.steps.push(Step::Srv {
                name: format!("{prefix}.{}", self.host),
                transport,
            });
        }
    }
}

fn default_port(t: Transport) -> u16 {
    if t == Transport::Tls { 5061 } else { 5060 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the plan against a table of answers; unknown questions get empty answers.
    fn run(
        uri: &str,
        naptr: &[NaptrRecord],
        srv: &[(&str, SrvRecord)],
    ) -> (Vec<DnsQuery>, Vec<Server>) {
        let mut l = ServerLocator::new(uri).unwrap();
        let mut asked = Vec::new();
        while let Some(q) = l.poll_query() {
            asked.push(q.clone());
            match q {
                DnsQuery::Naptr(_) => l.handle_naptr(naptr),
                DnsQuery::Srv(name) => {
                    let r: Vec<SrvRecord> = srv
                        .iter()
                        .filter(|(n, _)| *n == name)
                        .map(|(_, r)| r.clone())
                        .collect();
                    l.handle_srv(&r);
                }
                DnsQuery::Addresses(host) => {
                    let ip: IpAddr = match host.as_str() {
                        "a.example.com" => "192.0.2.1".parse().unwrap(),
                        "b.example.com" => "192.0.2.2".parse().unwrap(),
                        "example.com" => "192.0.2.9".parse().unwrap(),
                        _ => {
                            l.handle_addresses(&[]);
                            continue;
                        }
                    };
                    l.handle_addresses(&[ip]);
                }
            }
        }
        (asked, l.into_servers())
    }

    fn naptr(order: u16, services: &str, replacement: &str) -> NaptrRecord {
        NaptrRecord {
            order,
            preference: 10,
            flags: "s".into(),
            services: services.into(),
            replacement: replacement.into(),
        }
    }

    fn srv(priority: u16, weight: u16, port: u16, target: &str) -> SrvRecord {
        SrvRecord {
            priority,
            weight,
            port,
            target: target.into(),
        }
    }

    fn summary(servers: &[Server]) -> Vec<String> {
        servers
            .iter()
            .map(|s| format!("{} {}", s.transport.via_token(), s.addr))
            .collect()
    }

    #[test]
    fn naptr_order_then_srv_priority_then_addresses() {
        let (asked, found) = run(
            "sip:example.com",
            &[
                naptr(20, "SIP+D2U", "_sip._udp.example.com."),
                naptr(10, "SIP+D2T", "_sip._tcp.example.com."),
                naptr(5, "E2U+sip", "ignored.example.com"),
            ],
            &[
                ("_sip._tcp.example.com", srv(10, 1, 5070, "b.example.com")),
                ("_sip._tcp.example.com", srv(0, 1, 5071, "a.example.com.")),
                ("_sip._udp.example.com", srv(0, 1, 5060, "a.example.com")),
            ],
        );
        assert_eq!(
            summary(&found),
            [
                "TCP 192.0.2.1:5071",
                "TCP 192.0.2.2:5070",
                "UDP 192.0.2.1:5060"
            ]
        );
        assert_eq!(asked[0], DnsQuery::Naptr("example.com".into()));
        assert_eq!(asked[1], DnsQuery::Srv("_sip._tcp.example.com".into()));
    }

    #[test]
    fn without_naptr_every_transport_by_srv_and_then_the_domain_itself() {
        let (asked, found) = run(
            "sip:example.com",
            &[],
            &[("_sip._tcp.example.com", srv(0, 1, 5070, "a.example.com"))],
        );
        assert_eq!(summary(&found), ["TCP 192.0.2.1:5070"]);
        assert_eq!(asked.len(), 5, "{asked:?}"); // NAPTR, 3 × SRV, A/AAAA
        let (_, found) = run("sip:example.com", &[], &[]);
        assert_eq!(summary(&found), ["UDP 192.0.2.9:5060"]);
        let (asked, found) = run("sips:example.com", &[], &[]);
        assert_eq!(summary(&found), ["TLS 192.0.2.9:5061"]);
        assert_eq!(asked[1], DnsQuery::Srv("_sips._tcp.example.com".into()));
    }

    #[test]
    fn sips_takes_only_tls_from_naptr_and_verifies_the_uri_domain() {
        let (_, found) = run(
            "sips:example.com",
            &[
                naptr(10, "SIP+D2U", "_sip._udp.example.com"),
                naptr(20, "SIPS+D2T", "_sips._tcp.example.com"),
            ],
            &[
                ("_sip._udp.example.com", srv(0, 1, 5060, "a.example.com")),
                ("_sips._tcp.example.com", srv(0, 1, 5061, "b.example.com")),
            ],
        );
        assert_eq!(summary(&found), ["TLS 192.0.2.2:5061"]);
        assert_eq!(found[0].host, "example.com");
    }

    #[test]
    fn a_transport_parameter_skips_naptr_and_an_srv_dot_means_no_service() {
        let (asked, found) = run(
            "sip:example.com;transport=TCP",
            &[naptr(10, "SIP+D2U", "_sip._udp.example.com")],
            &[("_sip._tcp.example.com", srv(0, 0, 0, "."))],
        );
        assert_eq!(asked[0], DnsQuery::Srv("_sip._tcp.example.com".into()));
        assert_eq!(summary(&found), ["TCP 192.0.2.9:5060"]);
    }

    #[test]
    fn numeric_hosts_and_explicit_ports_need_no_naptr_or_srv() {
        let (asked, found) = run("sip:192.0.2.5;transport=tcp", &[], &[]);
        assert!(asked.is_empty());
        assert_eq!(summary(&found), ["TCP 192.0.2.5:5060"]);
        let (asked, found) = run("sips:[2001:db8::1]", &[], &[]);
        assert!(asked.is_empty());
        assert_eq!(summary(&found), ["TLS [2001:db8::1]:5061"]);
        let (asked, found) = run("sip:example.com:5099", &[], &[]);
        assert_eq!(asked, [DnsQuery::Addresses("example.com".into())]);
        assert_eq!(summary(&found), ["UDP 192.0.2.9:5099"]);
        let (_, found) = run("sip:example.com;maddr=192.0.2.44", &[], &[]);
        assert_eq!(summary(&found), ["UDP 192.0.2.44:5060"]);
    }

    #[test]
    fn bad_uris_are_named() {
        for bad in ["http://example.com", "example.com", "sip:", "tel:+4600"] {
            let e = ServerLocator::new(bad).unwrap_err();
            assert!(matches!(e, LocateError::NotSip { .. }), "{bad}: {e}");
        }
        let e = ServerLocator::new("sip:example.com;transport=sctp").unwrap_err();
        assert_eq!(
            e.to_string(),
            "sip:example.com;transport=sctp: unknown transport \"sctp\""
        );
    }

    #[test]
    fn answers_to_questions_not_asked_are_ignored() {
        let mut l = ServerLocator::new("sip:example.com").unwrap();
        l.handle_srv(&[srv(0, 0, 5060, "a.example.com")]);
        l.handle_addresses(&["192.0.2.1".parse().unwrap()]);
        assert_eq!(l.poll_query(), Some(DnsQuery::Naptr("example.com".into())));
        assert_eq!(l.poll_query(), None, "one question at a time");
        l.handle_naptr(&[]);
        assert_eq!(
            l.poll_query(),
            Some(DnsQuery::Srv("_sip._udp.example.com".into()))
        );
    }
}
