//! A small sans-IO registrar, for the embedded demo and for tests — never for production,
//! where Kamailio, FreeSWITCH or Asterisk do this job (DESIGN.md §3).
//!
//! Today it holds the location service (RFC 3261 §10.3, RFC 5626 bindings); the digest
//! challenges and the forwarding proxy build on it.

mod location;

pub use location::{Binding, ExpiryPolicy, LocationService, RegisterError};
