//! A small sans-IO registrar, for the embedded demo and for tests — never for production,
//! where Kamailio, FreeSWITCH or Asterisk do this job (DESIGN.md §3).
//!
//! [`Registrar`] challenges REGISTER with digest for a fixed user list, keeps bindings in the
//! [`LocationService`] (RFC 3261 §10.3, RFC 5626), keeps the state its users PUBLISH
//! (RFC 3903, `compositor.rs`) and tells it to their presence watchers (RFC 3856,
//! `presence.rs`), and forwards everything else statelessly between registered users,
//! across flows and transports.

mod compositor;
mod location;
mod presence;
mod proxy;

pub use location::{Binding, ExpiryPolicy, LocationService, RegisterError};
pub use proxy::{Registrar, RegistrarConfig, RegistrarStats};
