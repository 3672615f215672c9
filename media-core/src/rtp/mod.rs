//! Plain RTP (RFC 3550) and SDES-SRTP (RFC 3711, RFC 4568) for peers that do not speak
//! WebRTC: trunks, PBXs, desk phones. str0m does not do plain RTP, so this is our own small
//! RTP session, sans-IO like the rest: datagrams in, datagrams out, one deadline.
//!
//! - [`call`]: offer/answer for one call ([`call::PlainMedia`]).
//! - [`sdp`]: reading and writing `RTP/AVP` and `RTP/SAVP` descriptions.
//! - [`session`]: the RTP session: packets, reports, SRTP, symmetric RTP.
//! - [`packet`], [`rtcp`], [`reception`], [`srtp`]: the wire formats and statistics.

pub(crate) mod call;
pub(crate) mod packet;
pub(crate) mod reception;
pub(crate) mod rtcp;
pub(crate) mod sdp;
pub(crate) mod session;
pub(crate) mod srtp;

pub(crate) use call::{PlainMedia, Protection};
pub(crate) use sdp::{Payload, is_plain};
