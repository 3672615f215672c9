//! WebRTC media for sansip calls.
//!
//! Today it holds [`driver`]: the one runtime-independent driver loop, its transports, and the
//! async `Phone`/`Call`/`SimpleUser` API that `sansip-tokio` and `sansip-smol` share. The
//! str0m-backed `RtcSession` (sip-core's SDP handler), the SDP glue and the sans-IO media
//! `Phone` of DESIGN.md §4 are still to come; until then calls negotiate without media.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use sansip_core as core;

pub mod driver;
