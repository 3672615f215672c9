//! HTTP Digest authentication for SIP (RFC 3261 §22, RFC 2617, RFC 7616).
//!
//! A registrar or proxy that wants to know who is asking answers a request with 401
//! (WWW-Authenticate) or 407 (Proxy-Authenticate). Each challenge names a *realm* (which
//! user table to use), a *nonce* (the server's random value), an algorithm (MD5, SHA-256,
//! SHA-512-256, each also as `-sess`) and the protections on offer (`qop`: `auth`, or
//! `auth-int` which also covers the body). The client resends the request with an
//! Authorization (or Proxy-Authorization) header whose `response` is a hash over the user's
//! password, the nonce, a client nonce, a nonce count, the method and the Request-URI:
//!
//! ```text
//!   HA1      = H(username ":" realm ":" password)          -sess: H(HA1 ":" nonce ":" cnonce)
//!   HA2      = H(method ":" uri)                        auth-int: H(method ":" uri ":" H(body))
//!   response = H(HA1 ":" nonce ":" nc ":" cnonce ":" qop ":" HA2)     no qop: H(HA1 ":" nonce ":" HA2)
//! ```
//!
//! The password never crosses the wire, and the server can store HA1 instead of it.
//!
//! This module holds both sides, over one implementation of that arithmetic:
//!
//! - [`Authenticator`], the client a user agent keeps per registration or dialog: it answers
//!   challenges, reuses nonces with a counted `nc` so refreshes are not challenged again, and
//!   stops with [`AuthError::Rejected`] when the server refuses an answer (its loop guard).
//! - [`challenge`] and [`verify`], for the embedded registrar: write a challenge, check an
//!   answer.
//! - [`DigestCredentials`], a user name with a password or precomputed HA1 values, never
//!   printed.
//!
//! Like the rest of the crate it does no IO and reads no clock or random source: the client
//! nonce is an argument (take it from [`IdGenerator::cnonce`](crate::ids::IdGenerator::cnonce)).
//! Challenges and credentials are parsed and written by
//! [`message::Challenge`](crate::message::Challenge) and
//! [`message::Credentials`](crate::message::Credentials).
//!
//! Not here: Basic (RFC 3261 §22.1 forbids it), AKA (3GPP), the `username*` form for
//! non-ASCII user names (RFC 7616 §3.4.4; use `userhash` or ASCII), and nonce issuing and
//! replay tracking on the server, which need state and a clock the registrar owns.

mod client;
mod credentials;
mod digest;
mod error;
mod server;

pub use client::Authenticator;
pub use credentials::DigestCredentials;
pub use digest::{DigestAlgorithm, DigestQop, HashFunction, ha1};
pub use error::AuthError;
pub use server::{challenge, verify};

#[cfg(test)]
mod tests;
