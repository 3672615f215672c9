//! ICE servers as WebRTC's `RTCIceServer` (and so SIP.js and JsSIP) take them: URLs with
//! an optional username and credential. `stun:`/`stuns:` URIs are RFC 7064's, `turn:`/
//! `turns:` RFC 7065's (`?transport=udp|tcp`).
//!
//! ```
//! use sansip_media::{IceServer, IceUrl, IceScheme};
//!
//! let server = IceServer::new("stun:stun.example.com");
//! let url = IceUrl::parse(&server.urls[0]).unwrap();
//! assert_eq!((url.scheme, url.host.as_str(), url.port), (IceScheme::Stun, "stun.example.com", 3478));
//! let turn = IceUrl::parse("turns:[2001:db8::1]?transport=tcp").unwrap();
//! assert_eq!((turn.port, turn.host.as_str()), (5349, "2001:db8::1"));
//! assert!(IceUrl::parse("http://example.com").is_err());
//! ```

/// One ICE server: its URLs, and the long-term credentials TURN needs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IceServer {
    /// `stun:host[:port]`, `turn:host[:port][?transport=udp|tcp]`, `stuns:`, `turns:`.
    pub urls: Vec<String>,
    /// The TURN username.
    pub username: Option<String>,
    /// The TURN password.
    pub credential: Option<String>,
}

impl IceServer {
    /// A server at one URL, without credentials (STUN).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            urls: vec![url.into()],
            username: None,
            credential: None,
        }
    }

    /// With the username and password a TURN server asks for.
    pub fn with_credentials(
        mut self,
        username: impl Into<String>,
        credential: impl Into<String>,
    ) -> Self {
        self.username = Some(username.into());
        self.credential = Some(credential.into());
        self
    }
}

/// The kind of an ICE server URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceScheme {
    /// `stun:` (RFC 7064): Binding requests over UDP.
    Stun,
    /// `stuns:`: STUN over TLS.
    Stuns,
    /// `turn:` (RFC 7065): relayed candidates over UDP or TCP.
    Turn,
    /// `turns:`: TURN over TLS.
    Turns,
}

/// One parsed ICE server URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceUrl {
    /// Its scheme.
    pub scheme: IceScheme,
    /// The host name or address (without brackets).
    pub host: String,
    /// The port: the URL's, or 3478 (5349 for the TLS schemes).
    pub port: u16,
    /// `?transport=tcp` on a `turn:` URL.
    pub tcp: bool,
}

/// A URL that is no ICE server URL; the text says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url}: {reason}")]
pub struct IceUrlError {
    /// The URL given.
    pub url: String,
    /// What is wrong with it.
    pub reason: String,
}

impl IceUrl {
    /// Reads `stun:host[:port]`, `stuns:…`, `turn:host[:port][?transport=udp|tcp]`, `turns:…`.
    pub fn parse(url: &str) -> Result<Self, IceUrlError> {
        let bad = |reason: &str| IceUrlError {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = url.split_once(':').ok_or_else(|| bad("no scheme"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "stun" => IceScheme::Stun,
            "stuns" => IceScheme::Stuns,
            "turn" => IceScheme::Turn,
            "turns" => IceScheme::Turns,
            _ => return Err(bad("expected stun:, stuns:, turn: or turns:")),
        };
        let (hostport, query) = match rest.split_once('?') {
            Some((h, q)) => (h, Some(q)),
            None => (rest, None),
        };
        let tcp = match query {
            None => false,
            Some(q) if matches!(scheme, IceScheme::Turn | IceScheme::Turns) => {
                match q.to_ascii_lowercase().as_str() {
                    "transport=udp" => false,
                    "transport=tcp" => true,
                    _ => return Err(bad("the query may only be transport=udp or transport=tcp")),
                }
            }
            Some(_) => return Err(bad("a stun: URL takes no query")),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
            (h, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() || host.contains(['/', '@']) {
            return Err(bad("no host"));
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| bad("bad port"))?,
            None if matches!(scheme, IceScheme::Stuns | IceScheme::Turns) => 5349,
            None => 3478,
        };
        Ok(IceUrl {
            scheme,
            host: host.to_string(),
            port,
            tcp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_as_browsers_take_them() {
        let u = IceUrl::parse("STUN:192.0.2.1:19302").unwrap();
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port, u.tcp),
            (IceScheme::Stun, "192.0.2.1", 19302, false)
        );
        let u = IceUrl::parse("turn:turn.example.com?transport=tcp").unwrap();
        assert_eq!((u.scheme, u.port, u.tcp), (IceScheme::Turn, 3478, true));
        let u = IceUrl::parse("turns:turn.example.com:443").unwrap();
        assert_eq!((u.scheme, u.port), (IceScheme::Turns, 443));
        for bad in [
            "stun:",
            "stun:host:99999",
            "stun:host?transport=tcp",
            "turn:host?transport=sctp",
            "stun://host",
            "turn:[::1",
            "host:3478",
        ] {
            assert!(IceUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
