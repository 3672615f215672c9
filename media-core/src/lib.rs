//! WebRTC media for sansip calls.
//!
//! This crate will hold the str0m-backed `RtcSession` (sip-core's SDP handler), the SDP glue
//! and the sans-IO `Phone` (DESIGN.md §4). Today it only re-exports the signalling core, so the
//! crates above it can already depend on the layering they will keep.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use sansip_core as core;

pub mod driver;
