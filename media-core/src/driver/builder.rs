//! [`PhoneBuilder`]: a phone from what a person has — an address of record, a password, and
//! a server written the way SIP.js, JsSIP or a desk phone takes it.

use std::net::SocketAddr;
use std::sync::Arc;

use sansip_core::auth::DigestCredentials;
use sansip_core::message::Uri;
use sansip_core::ua::UaConfig;

use super::{Phone, PhoneConfig, PhoneError, Runtime, Session, Target, TlsOptions, dns};
use crate::ice_server::{IceScheme, IceServer, IceUrl};
#[cfg(feature = "rtc")]
use crate::turn::TurnTransport;

/// The call session a [`PhoneBuilder`] starts phones with: real media when this build has it
/// (feature `rtc`), else none (incoming calls are refused, outgoing ones cannot be placed).
#[cfg(feature = "rtc")]
pub type CallMedia = crate::RtcSession;
/// The call session a [`PhoneBuilder`] starts phones with: real media when this build has it
/// (feature `rtc`), else none (incoming calls are refused, outgoing ones cannot be placed).
#[cfg(not(feature = "rtc"))]
pub type CallMedia = sansip_core::session::NoMedia;

/// Builds and starts a [`Phone`].
///
/// ```no_run
/// # async fn run(runtime: std::sync::Arc<dyn sansip_media::driver::Runtime>) -> Result<(), sansip_media::driver::PhoneError> {
/// use sansip_media::driver::PhoneBuilder;
///
/// let phone = PhoneBuilder::new("sip:alice@example.com")
///     .password("secret")
///     .server("wss://sip.example.com/ws") // or "sip:example.com;transport=tcp", or "example.com"
///     .runtime(runtime)
///     .start()
///     .await?;
/// phone.register(600).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use = "a builder does nothing until started"]
pub struct PhoneBuilder {
    aor: String,
    username: Option<String>,
    password: Option<String>,
    credentials: Option<DigestCredentials>,
    display_name: Option<String>,
    server: Option<String>,
    dns: Option<SocketAddr>,
    tls: TlsOptions,
    runtime: Option<Arc<dyn Runtime>>,
    tweak: Option<Tweak>,
    ice_servers: Vec<IceServer>,
}

/// A last adjustment of the configuration, from [`PhoneBuilder::configure`].
type Tweak = Arc<dyn Fn(&mut PhoneConfig) + Send + Sync>;

impl std::fmt::Debug for PhoneBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("PhoneBuilder")
            .field("aor", &self.aor)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl PhoneBuilder {
    /// A phone for the address of record `aor` (`sip:alice@example.com`).
    pub fn new(aor: impl Into<String>) -> Self {
        Self {
            aor: aor.into(),
            username: None,
            password: None,
            credentials: None,
            display_name: None,
            server: None,
            dns: None,
            tls: TlsOptions::default(),
            runtime: None,
            tweak: None,
            ice_servers: Vec::new(),
        }
    }

    /// The digest password. The user name is the AOR's user part unless
    /// [`username`](Self::username) says otherwise.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// An ICE server, as SIP.js's `iceServers` take them (`stun:stun.example.com`): its
    /// host is looked up when the phone starts, and the first call waits (briefly) for
    /// its answer so the offer carries our server-reflexive address. `turn:` over UDP
    /// (with username and credential) gives relayed candidates the same way; `turns:` and
    /// `?transport=tcp` are not supported yet and are skipped with a warning.
    pub fn ice_server(mut self, server: IceServer) -> Self {
        self.ice_servers.push(server);
        self
    }

    /// The user name for digest authentication, when it is not the AOR's user part.
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// Credentials of any other kind (an HA1 instead of the password, a realm binding).
    pub fn credentials(mut self, credentials: DigestCredentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// The display name in From and Contact.
    pub fn display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }

    /// The registrar or outbound proxy: a WebSocket URL (`wss://host/path`), a SIP URI
    /// (`sip:host[:port][;transport=udp|tcp|tls]`, `sips:host`), or a bare domain or
    /// address. SIP URIs and domains are located by RFC 3263 (NAPTR, SRV, A/AAAA), which
    /// can yield several servers to fail over across. Without a server, the AOR's domain is
    /// located the same way.
    pub fn server(mut self, server: impl Into<String>) -> Self {
        self.server = Some(server.into());
        self
    }

    /// The DNS server for RFC 3263 lookups, instead of the system's.
    pub fn dns_server(mut self, dns: SocketAddr) -> Self {
        self.dns = Some(dns);
        self
    }

    /// Which certificates TLS and WSS servers may present.
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = tls;
        self
    }

    /// The runtime the phone runs on (`sansip_tokio` and `sansip_smol` set theirs).
    pub fn runtime(mut self, runtime: Arc<dyn Runtime>) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Adjusts the full [`PhoneConfig`] just before the phone starts: timers, media
    /// settings, ports, event capacity, everything the builder has no method for.
    pub fn configure(mut self, f: impl Fn(&mut PhoneConfig) + Send + Sync + 'static) -> Self {
        self.tweak = Some(Arc::new(f));
        self
    }

    /// The configuration this builder describes, with the server located. Fails with
    /// [`PhoneError::Config`] for an AOR or server that cannot work and
    /// [`PhoneError::Io`] when the server cannot be found.
    pub async fn config(&self) -> Result<PhoneConfig, PhoneError> {
        let aor = Uri::parse(&self.aor).map_err(|_| bad_aor(&self.aor))?;
        let (Some(user), Some(host)) = (aor.user(), aor.host()) else {
            return Err(bad_aor(&self.aor));
        };
        let server = match &self.server {
            Some(s) => s.clone(),
            None => format!("sip:{host}"),
        };
        let targets = locate(&server, self.dns).await?;
        let mut ua = UaConfig::new(self.aor.clone());
        ua.display_name = self.display_name.clone();
        ua.credentials = match (&self.credentials, &self.password) {
            (Some(c), _) => Some(c.clone()),
            (None, Some(pw)) => Some(DigestCredentials::new(
                self.username.as_deref().unwrap_or(user),
                pw.clone(),
            )),
            (None, None) => None,
        };
        let mut config = PhoneConfig::with_targets(ua, targets);
        config.tls = self.tls.clone();
        config
            .media
            .ice_servers
            .extend(self.ice_servers.iter().cloned());
        if let Some(tweak) = &self.tweak {
            tweak(&mut config);
        }
        for server in config.media.ice_servers.clone() {
            for url in &server.urls {
                let url = IceUrl::parse(url).map_err(|e| PhoneError::Config(e.to_string()))?;
                #[cfg(feature = "rtc")]
                let turn = match url.scheme {
                    IceScheme::Stun => None,
                    IceScheme::Turn if url.tcp => Some(TurnTransport::Tcp),
                    IceScheme::Turn => Some(TurnTransport::Udp),
                    IceScheme::Turns => Some(TurnTransport::Tls {
                        name: url.host.clone(),
                    }),
                    IceScheme::Stuns => {
                        tracing::warn!(host = %url.host, "stuns: is not supported; skipped");
                        continue;
                    }
                };
                // Without media there is nothing to relay.
                #[cfg(not(feature = "rtc"))]
                if url.scheme != IceScheme::Stun {
                    continue;
                }
                let addr = dns::lookup_host(&url.host, url.port, self.dns)
                    .await
                    .map_err(|e| PhoneError::Lookup {
                        name: url.host.clone(),
                        reason: e.to_string(),
                    })?;
                #[cfg(feature = "rtc")]
                if let Some(transport) = turn {
                    config.turn_servers.push(crate::turn::TurnServer {
                        addr,
                        transport,
                        username: server.username.clone().unwrap_or_default(),
                        credential: server.credential.clone().unwrap_or_default(),
                    });
                    continue;
                }
                config.stun_servers.push(addr);
            }
        }
        Ok(config)
    }

    /// Locates the server and starts the phone with media ([`CallMedia`]); it connects by
    /// itself. Register with [`Phone::register`].
    pub async fn start(self) -> Result<Phone<CallMedia>, PhoneError> {
        self.start_with::<CallMedia>().await
    }

    /// [`start`](Self::start) with another kind of call session, e.g.
    /// `sansip_core::session::FakeSdp` for signalling-only tests.
    pub async fn start_with<S: Session>(self) -> Result<Phone<S>, PhoneError> {
        let runtime = self.runtime.clone().ok_or_else(|| {
            PhoneError::Config(
                "no runtime: use sansip_tokio or sansip_smol, or call .runtime()".into(),
            )
        })?;
        let config = self.config().await?;
        let phone = Phone::start(runtime.clone(), config)?;
        // The first offer should carry the server-reflexive candidates: wait for the STUN
        // answers, which the gatherer bounds (3.5 s for a server that never answers).
        let give_up = runtime.now() + std::time::Duration::from_secs(5);
        while phone
            .with_engine(|e: &mut S::Engine, _| super::Engine::is_gathering(e))
            .await?
            && runtime.now() < give_up
        {
            runtime
                .sleep_until(runtime.now() + std::time::Duration::from_millis(20))
                .await;
        }
        Ok(phone)
    }
}

fn bad_aor(aor: &str) -> PhoneError {
    PhoneError::Config(format!(
        "{aor:?} is not an address of record: expected a SIP URI like sip:alice@example.com"
    ))
}

/// The servers `server` names, best first: a `ws://`/`wss://` URL by its host's address, a
/// `sip:`/`sips:` URI or a bare host by RFC 3263.
pub async fn locate(
    server: &str,
    dns_server: Option<SocketAddr>,
) -> Result<Vec<Target>, PhoneError> {
    for (scheme, port) in [("ws://", 80), ("wss://", 443)] {
        if let Some(rest) = server.strip_prefix(scheme) {
            let hostport = rest.split(['/', '?']).next().unwrap_or_default();
            let (host, explicit) = dns::split_host_port(hostport)
                .map_err(|e| PhoneError::Config(format!("{server}: {e}")))?;
            let port = explicit.unwrap_or(port);
            let addr = dns::lookup_host(&host, port, dns_server)
                .await
                .map_err(|e| PhoneError::Lookup {
                    name: host.clone(),
                    reason: e.to_string(),
                })?;
            return Ok(vec![Target::ws(server, addr)]);
        }
    }
    let uri = if server.starts_with("sip:") || server.starts_with("sips:") {
        server.to_string()
    } else if server.contains("://") {
        return Err(PhoneError::Config(format!(
            "{server}: expected sip:host[:port][;transport=udp|tcp|tls], sips:host, ws(s)://host[:port]/path or a domain"
        )));
    } else {
        format!("sip:{server}")
    };
    let targets = dns::resolve_async(&uri, dns_server)
        .await
        .map_err(|e| PhoneError::Lookup {
            name: uri.clone(),
            reason: e.to_string(),
        })?;
    if targets.is_empty() {
        return Err(PhoneError::Lookup {
            name: uri,
            reason: "no server found".into(),
        });
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use sansip_core::transport::Transport;

    #[test]
    fn websocket_urls_name_their_host_and_port() {
        let at = |s: &str| block_on(locate(s, None)).map(|t| (t[0].addr, t[0].transport));
        let v6 = at("wss://[::1]/ws").unwrap();
        assert_eq!(v6, ("[::1]:443".parse().unwrap(), Transport::Wss));
        let v6 = at("ws://[::1]:8080").unwrap();
        assert_eq!(v6, ("[::1]:8080".parse().unwrap(), Transport::Ws));
        let v4 = at("ws://127.0.0.1:5066/sip?x=1").unwrap();
        assert_eq!(v4, ("127.0.0.1:5066".parse().unwrap(), Transport::Ws));
        for bad in ["ws://127.0.0.1:99999/", "ws://[::1/", "http://example.com"] {
            assert!(matches!(at(bad), Err(PhoneError::Config(_))), "{bad}");
        }
    }
}
