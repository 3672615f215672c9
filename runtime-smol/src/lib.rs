//! Runs sansip on smol.
//!
//! This crate will hold the smol implementation of the runtime trait that the shared driver is
//! generic over (DESIGN.md §5): sockets, the timer and spawning. Today it only re-exports the
//! layers below it.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use sansip_media as media;
