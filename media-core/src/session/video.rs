//! Video as pre-encoded frames: sending them, answering the peer's keyframe requests
//! (RFC 4585 PLI, RFC 5104 FIR), and recording what arrives from a keyframe on.
//!
//! A file source cannot make a new keyframe, so a request is answered with the last one
//! sent, stamped as the next frame: the picture recovers at once (the frames after it
//! were coded against other references, so it may smear until the file's next keyframe).
//! A live source learns of the request through [`crate::MediaEvent::KeyframeRequested`].
//! A recording starts at a keyframe: frames before the first one are dropped, and the
//! peer is asked for one (a PLI, at most every [`ASK_EVERY`]).

use std::time::{Duration, Instant};

use str0m::format::Codec;
use str0m::media::{KeyframeRequestKind, MediaTime};

use super::RtcSession;
use crate::video::{VideoCodec, VideoFrame};

/// How often a recording asks the peer for a keyframe while it waits for one.
const ASK_EVERY: Duration = Duration::from_millis(500);

/// What the session keeps about video.
#[derive(Debug, Default)]
pub(super) struct Video {
    /// The last keyframe sent, for answering a keyframe request.
    keyframe: Option<VideoFrame>,
    /// The RTP time (90 kHz) of the last frame sent.
    sent_time: Option<u64>,
    /// A keyframe has reached the sink.
    recording: bool,
    /// When we last asked the peer for a keyframe.
    asked: Option<Instant>,
    /// Keyframe requests not yet told to the application.
    requested: u32,
}

impl RtcSession {
    /// Sends one pre-encoded video frame (no-op without negotiated video).
    pub fn send_video(&mut self, now: Instant, frame: &VideoFrame) -> bool {
        self.now = self.now.max(now);
        let ok = self.write_video(now, frame);
        if ok {
            if frame.is_keyframe() {
                self.video_state.keyframe = Some(frame.clone());
            }
            self.video_state.sent_time = Some(frame.rtp_time);
        }
        ok
    }

    fn write_video(&mut self, now: Instant, frame: &VideoFrame) -> bool {
        let Some(mid) = self.video else {
            return false;
        };
        if !self.connected || !self.direction.sends() {
            return false;
        }
        let want = match frame.codec {
            VideoCodec::Vp8 => Codec::Vp8,
            VideoCodec::H264 => Codec::H264,
        };
        let Some(writer) = self.rtc.writer(mid) else {
            return false;
        };
        let Some(pt) = writer
            .payload_params()
            .find(|p| p.spec().codec == want)
            .map(|p| p.pt())
        else {
            return false;
        };
        let ok = writer
            .write(
                pt,
                now,
                MediaTime::from_90khz(frame.rtp_time),
                frame.data.clone(),
            )
            .is_ok();
        if ok {
            self.stats.video_frames_sent += 1;
        }
        self.drain();
        ok
    }

    /// The peer asked for a keyframe: the last one goes again, one frame time (at 30
    /// frames a second) after the last frame sent.
    pub(super) fn on_keyframe_request(&mut self) {
        self.stats.video_keyframe_requests += 1;
        self.video_state.requested += 1;
        let (Some(mut frame), Some(last)) = (
            self.video_state.keyframe.clone(),
            self.video_state.sent_time,
        ) else {
            return;
        };
        frame.rtp_time = last + 3_000;
        let now = self.now;
        if self.write_video(now, &frame) {
            self.video_state.sent_time = Some(frame.rtp_time);
        }
    }

    /// Keyframe requests since the last call, for the application's live sources.
    pub(crate) fn poll_keyframe_request(&mut self) -> bool {
        std::mem::take(&mut self.video_state.requested) > 0
    }

    /// A video frame arrived: to the sink from the first keyframe on.
    pub(super) fn on_video(&mut self, frame: &VideoFrame) {
        self.stats.video_frames_received += 1;
        if !self.direction.receives() || self.video_sink.is_none() {
            return;
        }
        if !self.video_state.recording {
            if !frame.is_keyframe() {
                self.ask_keyframe();
                return;
            }
            self.video_state.recording = true;
        }
        if let Some(sink) = self.video_sink.as_mut() {
            sink.write(frame);
        }
    }

    /// Asks the peer for a keyframe (PLI), unless we did within [`ASK_EVERY`].
    fn ask_keyframe(&mut self) {
        let now = self.now;
        if self
            .video_state
            .asked
            .is_some_and(|at| now.saturating_duration_since(at) < ASK_EVERY)
        {
            return;
        }
        self.video_state.asked = Some(now);
        let Some(mid) = self.video else {
            return;
        };
        if let Some(mut writer) = self.rtc.writer(mid)
            && let Err(e) = writer.request_keyframe(None, KeyframeRequestKind::Pli)
        {
            tracing::debug!(error = %e, "keyframe request not sent");
        }
    }

    /// A new video sink starts at the next keyframe.
    pub(super) fn restart_recording(&mut self) {
        self.video_state.recording = false;
    }
}
