//! Why a request could not be authorized.
//!
//! The cases lead to different outcomes for a user agent, so one opaque "auth failed" would
//! not do: [`AuthError::Rejected`] means the user's credentials are wrong (registration
//! failed or call failed with an authentication cause, and no retry), the offered-but-unusable
//! cases mean this stack and the server have nothing in common, and the last variants are the
//! caller's mistakes. None of them becomes a SIP response: this is the client side.

/// Why [`Authenticator`](super::Authenticator) could not add credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The response is not a 401 or 407, so it carries no challenge to answer.
    #[error("status {status} is not a challenge")]
    NotAChallenge {
        /// The response's status code.
        status: u16,
    },
    /// A 401 without a usable WWW-Authenticate, or a 407 without a usable
    /// Proxy-Authenticate (RFC 3261 §22.2, §22.3 make them mandatory).
    #[error("no digest challenge in {status}")]
    NoChallenge {
        /// 401 or 407.
        status: u16,
    },
    /// Every challenge uses a scheme, algorithm or qop this stack cannot compute (for
    /// example `Digest algorithm=AKAv1-MD5` or `Basic`, which RFC 3261 §22.1 forbids).
    #[error("unsupported challenge ({offered})")]
    Unsupported {
        /// What was offered, e.g. `Digest AKAv1-MD5, Basic`; truncated when long.
        offered: String,
    },
    /// Only realms without matching credentials were challenged (a realm-bound or HA1
    /// credential for another realm, or an HA1 for another hash function).
    #[error("no credentials for realm {realm}")]
    NoCredentials {
        /// The (first) realm that was challenged, as received.
        realm: String,
    },
    /// The server challenged a realm again after we answered it, without `stale=true`: the
    /// credentials were refused (RFC 7616 §3.4.5, RFC 3261 §22.1). Also returned when the
    /// server keeps declaring our nonce stale or keeps challenging new realms, so
    /// authentication can never loop (the rule is on [`Authenticator`](super::Authenticator)).
    #[error("credentials rejected by realm {realm} ({status})")]
    Rejected {
        /// 401 or 407.
        status: u16,
        /// The realm that refused, as received.
        realm: String,
    },
    /// A cnonce that is empty or holds `"`, `\` or a control character; it goes inside a
    /// quoted-string. Use [`IdGenerator::cnonce`](crate::ids::IdGenerator::cnonce).
    #[error("invalid cnonce")]
    InvalidCnonce,
    /// A precomputed HA1 that is not hex of the hash function's length.
    #[error("invalid ha1 for {hash:?}")]
    InvalidHa1 {
        /// The hash function the HA1 was given for.
        hash: super::HashFunction,
    },
}
