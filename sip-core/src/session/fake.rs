//! A session-description handler with no media behind it: real SDP text with a version
//! counter and directions, for the simulator, tests, and signalling-only use until a media
//! handler (`sansip-media`) is plugged in.

use bytes::Bytes;

use super::{Direction, SdpError, SdpHandler, sdp};

/// A stand-in for real media: it negotiates, but announces the documentation address
/// 192.0.2.1 and sends nothing. Offers are minimal valid SDP; it checks
/// that what it receives is SDP with an audio section and refuses offers whose audio uses a
/// profile other than `RTP/AVP` (so tests can provoke a 488). It remembers the directions
/// negotiated so tests can check who may send.
///
/// ```
/// use sansip_core::session::{Direction, FakeSdp, SdpHandler};
/// let (mut a, mut b) = (FakeSdp::new("alice"), FakeSdp::new("bob"));
/// let offer = a.create_offer(Direction::SendOnly).unwrap();
/// let answer = b.accept_offer(&offer, Direction::SendRecv).unwrap();
/// a.accept_answer(&answer).unwrap();
/// assert_eq!(a.local_direction(), Some(Direction::SendOnly));
/// assert_eq!(b.local_direction(), Some(Direction::RecvOnly));
/// ```
#[derive(Debug, Clone)]
pub struct FakeSdp {
    name: String,
    version: u32,
    /// Directions (ours, theirs) once a negotiation completed.
    current: Option<(Direction, Direction)>,
    /// Our offer in flight, and what `current` was before it.
    pending: Option<(Direction, Option<(Direction, Direction)>)>,
    /// Refuse this many of the peer's next offers as incompatible.
    refuse: u32,
    /// Offer video, and take it when offered.
    video: bool,
    /// Video in the last agreement.
    has_video: bool,
    /// Whether our offer in flight has video.
    offered_video: bool,
}

impl Default for FakeSdp {
    /// A handler whose SDP names `sansip` as origin user.
    fn default() -> Self {
        Self::new("sansip")
    }
}

impl FakeSdp {
    /// A handler whose SDP names `name` as origin user.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            version: 0,
            current: None,
            pending: None,
            refuse: 0,
            video: false,
            has_video: false,
            offered_video: false,
        }
    }

    /// Offers video from the next offer on, and takes it when offered (`false`: offers
    /// none and refuses it with port 0), as a real handler does when the application adds
    /// or removes a camera.
    pub fn set_video(&mut self, video: bool) {
        self.video = video;
    }

    /// Whether the last agreement has video both ways round.
    pub fn has_video(&self) -> bool {
        self.has_video
    }

    /// Makes the next `n` offers from the peer fail as incompatible, as a real handler
    /// does with a codec it lacks (tests use it to provoke a 488).
    pub fn refuse_offers(&mut self, n: u32) {
        self.refuse = n;
    }

    /// The direction we last agreed to, from our side.
    pub fn local_direction(&self) -> Option<Direction> {
        self.current.map(|c| c.0)
    }

    /// The peer's direction in the last agreement.
    pub fn remote_direction(&self) -> Option<Direction> {
        self.current.map(|c| c.1)
    }

    /// Our description; `video` says what its video section is: none, refused (port 0)
    /// or active.
    fn body(&mut self, direction: Direction, video: Option<bool>) -> Bytes {
        self.version += 1;
        let video = match video {
            None => String::new(),
            Some(false) => "m=video 0 RTP/AVP 96\r\n".into(),
            Some(true) => {
                format!("m=video 51372 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\na={direction}\r\n")
            }
        };
        Bytes::from(format!(
            "v=0\r\no={} 1 {} IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na={}\r\n{video}",
            self.name, self.version, direction
        ))
    }

    /// The description's video section: none, refused, or active.
    fn video_of(body: &[u8]) -> Option<bool> {
        let text = sdp::text(body);
        let line = super::sdp::lines(&text).find(|l| l.starts_with("m=video"))?;
        Some(line.split_whitespace().nth(1) != Some("0"))
    }

    fn read(body: &[u8]) -> Result<Direction, SdpError> {
        let text =
            std::str::from_utf8(body).map_err(|_| SdpError::Malformed("not utf-8".into()))?;
        if !text.starts_with("v=0") {
            return Err(SdpError::Malformed("no v=0 line".into()));
        }
        let audio = sdp::lines(text)
            .find(|l| l.starts_with("m=audio"))
            .ok_or_else(|| SdpError::Incompatible("no audio".into()))?;
        if audio.split_whitespace().nth(2) != Some("RTP/AVP") {
            return Err(SdpError::Incompatible("only RTP/AVP audio".into()));
        }
        sdp::media_direction(text).ok_or_else(|| SdpError::Incompatible("audio rejected".into()))
    }
}

impl SdpHandler for FakeSdp {
    fn create_offer(&mut self, direction: Direction) -> Result<Bytes, SdpError> {
        self.pending = Some((direction, self.current));
        self.offered_video = self.video;
        // Video once offered keeps its section, refused when no longer wanted (RFC 3264 §8).
        let video = (self.video || self.has_video).then_some(self.video);
        Ok(self.body(direction, video))
    }

    fn accept_offer(&mut self, offer: &[u8], direction: Direction) -> Result<Bytes, SdpError> {
        if self.refuse > 0 {
            self.refuse -= 1;
            return Err(SdpError::Incompatible("refused by the test".into()));
        }
        let theirs = Self::read(offer)?;
        let ours = Direction::answer(theirs, direction);
        self.current = Some((ours, theirs));
        let video = Self::video_of(offer).map(|v| v && self.video);
        self.has_video = video == Some(true);
        Ok(self.body(ours, video))
    }

    fn accept_answer(&mut self, answer: &[u8]) -> Result<(), SdpError> {
        let theirs = Self::read(answer)?;
        let (ours, _) = self
            .pending
            .take()
            .ok_or_else(|| SdpError::Malformed("an answer without an offer".into()))?;
        self.current = Some((ours, theirs));
        self.has_video = self.offered_video && Self::video_of(answer) == Some(true);
        Ok(())
    }

    fn rollback(&mut self) {
        if let Some((_, before)) = self.pending.take() {
            self.current = before;
        }
    }

    fn replace_answer(&mut self, answer: &[u8]) -> Result<(), SdpError> {
        let theirs = Self::read(answer)?;
        let (ours, _) = self
            .current
            .ok_or_else(|| SdpError::Malformed("no answer to replace".into()))?;
        self.current = Some((ours, theirs));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_hold_rolls_back_and_incompatible_offers_are_named() {
        let (mut a, mut b) = (FakeSdp::new("a"), FakeSdp::new("b"));
        let offer = a.create_offer(Direction::SendRecv).unwrap();
        a.accept_answer(&b.accept_offer(&offer, Direction::SendRecv).unwrap())
            .unwrap();
        let _hold = a.create_offer(Direction::SendOnly).unwrap();
        a.rollback();
        assert_eq!(a.local_direction(), Some(Direction::SendRecv));
        let savp = b"v=0\r\nm=audio 1 RTP/SAVP 0\r\n";
        assert!(matches!(
            b.accept_offer(savp, Direction::SendRecv),
            Err(SdpError::Incompatible(_))
        ));
        assert!(matches!(
            b.accept_offer(b"hello", Direction::SendRecv),
            Err(SdpError::Malformed(_))
        ));
    }
}
