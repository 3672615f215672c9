//! # sansip-core: sans-IO SIP signalling
//!
//! sansip-core implements the layers of RFC 3261 as deterministic state machines that never
//! touch a socket or a clock:
//!
//! ```text
//!   application                       commands ↓      ↑ events
//!   ───────────────────────────────────────────────────────────────
//!   registration (§10), auth (§22)    Registration, Authenticator
//!   dialog layer       (§12)          Dialog: ids, route sets, CSeq, target refresh
//!   transaction layer  (§17)          TransactionLayer: four machines, timers A–M
//!   message layer      (§7, §20, §25) Message: framing, header index, typed views, writer
//!   ───────────────────────────────────────────────────────────────
//!   runtime (not here)                bytes in ↑      ↓ bytes out, on a FlowId
//! ```
//!
//! [`ua::UserAgent`] ties the layers together: it owns the flows, the transaction layer,
//! the registration and the calls ([`session`]: INVITE sessions with offer/answer through
//! an [`session::SdpHandler`], hold, glare, DTMF), answers what a UA answers by itself, and
//! reports [`ua::Event`]s. Beside them: [`registrar`] (the embedded demo registrar and
//! proxy), [`ids`] (seeded branches, tags and Call-IDs) and, behind the `sim` feature, the
//! deterministic simulator.
//!
//! ## The drive loop
//!
//! Every state machine here is driven the same way, in the style of str0m and quinn-proto:
//! feed it one input (`handle_*`), then **drain `poll_output` until it returns `None`**, then
//! read `poll_timeout` and call `handle_timeout` no later than that instant. Time enters only
//! as an `Instant` argument and randomness only from a seed given at construction, so the same
//! inputs replay to the same bytes.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use sansip_core::message::{HeaderName, Method, Request};
//! use sansip_core::transaction::{TimerConfig, TransactionLayer, TxOutput};
//! use sansip_core::transport::{Flow, FlowId, Transport};
//!
//! let start = Instant::now(); // the caller owns the clock
//! let mut layer = TransactionLayer::new(TimerConfig::default());
//! let flow = Flow { id: FlowId(1), transport: Transport::Udp };
//!
//! let mut req = Request::new(Method::Options, "sip:bob@example.com");
//! let h = req.headers_mut();
//! h.push(HeaderName::Via, "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKa7c6a8dlze");
//! h.push(HeaderName::From, "<sip:alice@example.com>;tag=88sja8x");
//! h.push(HeaderName::To, "<sip:bob@example.com>");
//! h.push(HeaderName::CallId, "987asjd97y7atg");
//! h.push(HeaderName::CSeq, "1 OPTIONS");
//! let tx = layer.send_request(start, flow, req).unwrap();
//!
//! // The request goes out now...
//! assert!(matches!(layer.poll_output(), Some(TxOutput::Transmit { .. })));
//! assert!(layer.poll_output().is_none());
//! // ...and timer E asks to be woken at T1 to retransmit it over UDP.
//! assert_eq!(layer.poll_timeout(), Some(start + Duration::from_millis(500)));
//! layer.handle_timeout(start + Duration::from_millis(500));
//! assert!(matches!(layer.poll_output(), Some(TxOutput::Transmit { .. })));
//! # let _ = tx;
//! ```
//!
//! ## Bugs versus bad input
//!
//! Nothing that arrives from the network can make this crate panic. A request that fails to
//! parse yields a [`message::ParseError`] whose [`status`](message::ParseError::status) and
//! text make the 400 (or 505, 513) to send; a bad response is dropped and counted. A command
//! the caller should not have given returns a typed error. A panic is a bug in sansip.
//!
//! ## What this crate does not do
//!
//! No IO, no threads, no clock, no DNS, no media. The runtime crates (`sansip-tokio`,
//! `sansip-smol`) move the bytes; `sansip-media` brings WebRTC media.
//!
//! ## Crate features
//!
//! - `sim`: the deterministic simulator (the `sim` module) — a virtual clock and a seeded lossy
//!   network — for tests and benchmarks.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod auth;
pub mod conference;
pub mod dialog;
pub mod e164;
mod flows;
pub mod group;
mod handles;
pub mod ids;
pub mod locate;
pub mod message;
mod peer_map;
pub mod publication;
pub mod registrar;
pub mod registration;
#[cfg(feature = "serde")]
mod serde_impls;
pub mod session;
pub mod subscription;
#[cfg(test)]
mod test_clock;
pub mod trace;
pub mod transaction;
pub mod transport;
pub mod ua;
mod usage;

#[cfg(feature = "sim")]
pub mod sim;
