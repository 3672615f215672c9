//! What an application on either runtime needs in scope; `sansip_tokio::prelude` and
//! `sansip_smol::prelude` re-export it with their runtime's `builder`.

pub use super::{
    Call, CallMedia, EventStream, IncomingAction, Phone, PhoneBuilder, PhoneError, SimpleMedia,
    SimpleUser, SimpleUserDelegate,
};
#[cfg(feature = "rtc")]
pub use crate::audio::{AudioSink, AudioSource, FrameQueue, Recorder, Tone, WavSink, WavSource};
pub use futures::StreamExt;
pub use sansip_core::session::{CallEnd, EndCause, Originator};
pub use sansip_core::ua::{CallOptions, Event};
