//! [`Call`]: one call of a [`Phone`], its signalling and (with real media) its media commands.

use std::time::Instant;

use futures::channel::oneshot;
use sansip_core::session::{CallDetails, CallEnd, CallHandle, HoldState, Originator};
use sansip_core::ua::{AnswerOptions, Event, OfferMethod, UaError, UserAgent};

use super::events::{self, EventStream};
use super::phone::{completed, instant, wait_completed};
use super::{Phone, PhoneError, Session, UaEngine};

/// One call of a [`Phone`]. Dropping the handle leaves the call as it is.
///
/// Every method returns once its step is done, and none waits without a bound the
/// network sets: a request without an answer fails after 64 × T1 (32 s by default). Only
/// [`answered`](Self::answered) and [`ended`](Self::ended) wait on a person: a call may
/// ring as long as the callee lets it, so bound it with
/// [`CallOptions::no_answer_timeout`](sansip_core::ua::CallOptions::no_answer_timeout) or
/// with your runtime's timeout.
///
/// ```no_run
/// # async fn run(phone: sansip_media::driver::Phone<sansip_media::RtcSession>) -> Result<(), sansip_media::driver::PhoneError> {
/// use std::time::Duration;
/// use sansip_media::audio::Tone;
/// use sansip_media::core::ua::CallOptions;
///
/// let options = CallOptions::default().no_answer_timeout(Duration::from_secs(30));
/// let call = phone.call("sip:bob@example.com", options).await?;
/// call.answered().await?; // Err(PhoneError::Ended(..)) if bob declines or never answers
/// call.play(Tone::new(440.0)).await?;
/// call.send_dtmf("123#").await?;
/// call.hold().await?;
/// call.unhold().await?;
/// call.hangup().await?;
/// let end = call.ended().await?;
/// println!("ended: {} by {}", end.cause, end.originator);
/// # Ok(()) }
/// ```
pub struct Call<S: Session> {
    pub(super) phone: Phone<S>,
    pub(super) id: CallHandle,
    pub(super) ended: futures::future::Shared<oneshot::Receiver<Event>>,
}

impl<S: Session> Clone for Call<S> {
    fn clone(&self) -> Self {
        Self {
            phone: self.phone.clone(),
            id: self.id,
            ended: self.ended.clone(),
        }
    }
}

impl<S: Session> std::fmt::Debug for Call<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<S: Session> Call<S> {
    /// The call's id, as in its events.
    pub fn id(&self) -> CallHandle {
        self.id
    }

    /// A stream of this call's events from now on (progress, answer, hold, DTMF, messages
    /// in the call, its end), bounded like the phone's ([`EventStream`]). It ends after the
    /// call's [`Event::CallEnded`]; for a call that has already ended it is empty.
    pub async fn events(&self) -> Result<EventStream<Event>, PhoneError> {
        let (id, capacity) = (self.id, self.phone.shared.event_capacity);
        self.phone
            .exec(move |e, _, w| {
                let (tx, rx) = events::channel(capacity);
                if e.ua_mut().calls().any(|c| c == id) {
                    w.follow(id, tx);
                }
                rx
            })
            .await
    }

    /// Waits until the call is answered; fails with [`PhoneError::Ended`] if it ends first
    /// (declined, busy, canceled, no answer). It waits as long as the call rings: see the
    /// type's documentation for how to bound it.
    pub async fn answered(&self) -> Result<(), PhoneError> {
        let id = self.id;
        let e = self
            .phone
            .act_and_wait(move |e, _, w| {
                let ua = e.ua_mut();
                if ua.is_established(id) {
                    let (remote, asserted) = ua.remote_party(id)?;
                    return Ok(instant(Event::CallAnswered {
                        call: id,
                        remote: remote.to_string(),
                        asserted: asserted.map(str::to_string),
                    }));
                }
                if !ua.calls().any(|c| c == id) {
                    return Err(UaError::NoSuchCall(id));
                }
                Ok(w.wait(move |e| {
                    matches!(e, Event::CallAnswered { call, .. } | Event::CallEnded { call, .. } if *call == id)
                }))
            })
            .await;
        match e {
            Ok(Event::CallEnded { end, .. }) => Err(PhoneError::Ended(end)),
            Ok(_) => Ok(()),
            // It ended before we asked: say how.
            Err(PhoneError::Ua(UaError::NoSuchCall(_))) => {
                Err(PhoneError::Ended(self.ended().await?))
            }
            Err(e) => Err(e),
        }
    }

    /// Waits for the end of the call, however long it lasts.
    pub async fn ended(&self) -> Result<CallEnd, PhoneError> {
        match self.ended.clone().await {
            Ok(Event::CallEnded { end, .. }) => Ok(end),
            _ => Err(PhoneError::Stopped),
        }
    }

    /// Answers an incoming call.
    pub async fn answer(&self) -> Result<(), PhoneError> {
        self.answer_with(AnswerOptions::default()).await
    }

    /// Answers an incoming call with options: extra headers on the 2xx.
    pub async fn answer_with(&self, options: AnswerOptions) -> Result<(), PhoneError> {
        let id = self.id;
        Ok(self
            .phone
            .with_engine(move |e, now| e.answer(now, id, options))
            .await??)
    }

    /// Sends 183 Session Progress for an incoming call. With `early_media`, it carries our
    /// answer and media flows before the call is answered (give the call its audio now);
    /// answer it then with [`Call::accept`]. Reliable (RFC 3262) when the caller supports it.
    pub async fn progress(&self, early_media: bool) -> Result<(), PhoneError> {
        let id = self.id;
        Ok(self
            .phone
            .with_engine(move |e, now| e.progress(now, id, early_media))
            .await??)
    }

    /// Answers an incoming call that has early media ([`Call::progress`]).
    pub async fn accept(&self) -> Result<(), PhoneError> {
        self.accept_with(AnswerOptions::default()).await
    }

    /// [`Call::accept`] with options: extra headers on the 2xx.
    pub async fn accept_with(&self, options: AnswerOptions) -> Result<(), PhoneError> {
        let id = self.id;
        Ok(self
            .phone
            .with_engine(move |e, now| e.accept(now, id, options))
            .await??)
    }

    /// Declines an incoming call (480 when `status` is `None`).
    pub async fn decline(&self, status: Option<u16>) -> Result<(), PhoneError> {
        let id = self.id;
        Ok(self
            .phone
            .with(move |ua, now| ua.decline(now, id, status))
            .await??)
    }

    /// Ends the call: CANCEL, decline or BYE as its state requires.
    pub async fn hangup(&self) -> Result<(), PhoneError> {
        let id = self.id;
        Ok(self.phone.with(move |ua, now| ua.hangup(now, id)).await??)
    }

    /// Holds the peer and waits until the re-INVITE is answered.
    pub async fn hold(&self) -> Result<HoldState, PhoneError> {
        self.change_hold(true).await
    }

    /// Resumes the call and waits until the re-INVITE is answered.
    pub async fn unhold(&self) -> Result<HoldState, PhoneError> {
        self.change_hold(false).await
    }

    async fn change_hold(&self, hold: bool) -> Result<HoldState, PhoneError> {
        let id = self.id;
        let e = self
            .phone
            .act_and_wait(move |e, now, w| {
                let ua = e.ua_mut();
                if ua.hold_state(id)?.local == hold {
                    return Ok(instant(Event::HoldChanged {
                        call: id,
                        local: hold,
                        remote: ua.hold_state(id)?.remote,
                    }));
                }
                let rx = w.wait(move |e| match e {
                    Event::HoldChanged { call, local, .. } => *call == id && *local == hold,
                    Event::RenegotiationFailed { call, .. } | Event::CallEnded { call, .. } => {
                        *call == id
                    }
                    _ => false,
                });
                if hold {
                    ua.hold(now, id)?;
                } else {
                    ua.unhold(now, id)?;
                }
                Ok(rx)
            })
            .await?;
        match e {
            Event::HoldChanged { local, remote, .. } => Ok(HoldState { local, remote }),
            Event::RenegotiationFailed { status, .. } => Err(PhoneError::Renegotiation(status)),
            Event::CallEnded { end, .. } => Err(PhoneError::Ended(end)),
            _ => Err(PhoneError::Stopped),
        }
    }

    /// Offers the peer the call's changed media (video added or stopped, an ICE restart:
    /// see the media commands) by re-INVITE or UPDATE, and waits until it is accepted.
    pub async fn renegotiate(&self, method: OfferMethod) -> Result<(), PhoneError> {
        let id = self.id;
        let e = self
            .phone
            .act_and_wait(move |e, now, w| {
                let rx = w.wait(move |e| match e {
                    Event::Renegotiated { call, originator } => {
                        *call == id && *originator == Originator::Local
                    }
                    Event::RenegotiationFailed { call, .. } | Event::CallEnded { call, .. } => {
                        *call == id
                    }
                    _ => false,
                });
                e.ua_mut().renegotiate(now, id, method)?;
                Ok(rx)
            })
            .await?;
        match e {
            Event::Renegotiated { .. } => Ok(()),
            Event::RenegotiationFailed { status, .. } => Err(PhoneError::Renegotiation(status)),
            Event::CallEnded { end, .. } => Err(PhoneError::Ended(end)),
            _ => Err(PhoneError::Stopped),
        }
    }

    /// Answers the peer's offer that [`Event::ReofferReceived`] reported.
    pub async fn accept_reoffer(&self) -> Result<(), PhoneError> {
        let id = self.id;
        Ok(self
            .phone
            .with(move |ua, now| ua.accept_reoffer(now, id))
            .await??)
    }

    /// Refuses the peer's offer that [`Event::ReofferReceived`] reported (488 when `status`
    /// is `None`).
    pub async fn refuse_reoffer(&self, status: Option<u16>) -> Result<(), PhoneError> {
        let id = self.id;
        Ok(self
            .phone
            .with(move |ua, now| ua.refuse_reoffer(now, id, status))
            .await??)
    }

    /// Transfers the peer to `target` (RFC 3515 REFER) and waits for the outcome: `Ok`
    /// once the peer's new call is answered (our call then ends as `Transferred`), or the
    /// refusal or failure ([`PhoneError::Rejected`]); the call goes on after a failure.
    pub async fn transfer(&self, target: &str) -> Result<(), PhoneError> {
        let target = target.to_string();
        self.transfer_with(move |ua, now, id| ua.transfer(now, id, &target))
            .await
    }

    /// Attended transfer (RFC 5589): transfers the peer to the party of `other`, our
    /// established consultation call, whose dialog the peer's new INVITE replaces (RFC
    /// 3891); waits as [`transfer`](Self::transfer) does. The target then hangs `other` up.
    ///
    /// ```no_run
    /// # async fn run(phone: sansip_media::driver::Phone<sansip_media::RtcSession>,
    /// #     customer: sansip_media::driver::Call<sansip_media::RtcSession>)
    /// #     -> Result<(), sansip_media::driver::PhoneError> {
    /// use sansip_media::core::ua::CallOptions;
    ///
    /// customer.hold().await?;
    /// let colleague = phone.call("sip:carol@example.com", CallOptions::default()).await?;
    /// colleague.answered().await?; // "I have a customer for you"
    /// customer.transfer_to(&colleague).await?;
    /// # Ok(()) }
    /// ```
    pub async fn transfer_to(&self, other: &Call<S>) -> Result<(), PhoneError> {
        let to = other.id;
        self.transfer_with(move |ua, now, id| ua.transfer_to(now, id, to))
            .await
    }

    /// Starts a transfer with `start` and waits for its final NOTIFY or the call's end.
    async fn transfer_with(
        &self,
        start: impl FnOnce(&mut UserAgent<S>, Instant, CallHandle) -> Result<(), UaError>
        + Send
        + 'static,
    ) -> Result<(), PhoneError> {
        let id = self.id;
        let e = self
            .phone
            .act_and_wait(move |e, now, w| {
                let rx = w.wait(move |e| match e {
                    Event::TransferProgress { call, status, .. } => *call == id && *status >= 200,
                    Event::CallEnded { call, .. } => *call == id,
                    _ => false,
                });
                start(e.ua_mut(), now, id)?;
                Ok(rx)
            })
            .await?;
        match e {
            Event::TransferProgress { status, .. } if (200..300).contains(&status) => Ok(()),
            Event::TransferProgress { status, reason, .. } => {
                Err(PhoneError::Rejected { status, reason })
            }
            Event::CallEnded { end, .. } => Err(PhoneError::Ended(end)),
            _ => Err(PhoneError::Stopped),
        }
    }

    /// Accepts the transfer the peer asked of this call ([`Event::TransferRequested`]; a
    /// media phone accepts by itself unless told not to): the new call.
    pub async fn accept_transfer(&self) -> Result<Call<S>, PhoneError> {
        let id = self.id;
        let new = self
            .phone
            .with_engine(move |e, now| e.accept_transfer(now, id))
            .await??;
        self.phone.call_handle(new).await
    }

    /// Refuses the transfer the peer asked of this call: it hears 603, the call goes on.
    pub async fn refuse_transfer(&self) -> Result<(), PhoneError> {
        let id = self.id;
        Ok(self
            .phone
            .with(move |ua, now| ua.refuse_transfer(now, id))
            .await??)
    }

    /// The call's details: who, which way, its Call-ID, when it started, rang, was
    /// answered and ended, and why (see [`CallDetails`]). Fails with
    /// [`UaError::NoSuchCall`] once it has left the history ([`UaConfig::call_history`]).
    ///
    /// [`UaConfig::call_history`]: sansip_core::ua::UaConfig::call_history
    pub async fn details(&self) -> Result<CallDetails, PhoneError> {
        let id = self.id;
        Ok(self
            .phone
            .with(move |ua, _| ua.call_details(id).ok_or(UaError::NoSuchCall(id)))
            .await??)
    }

    /// Whether we hold the peer.
    pub async fn is_held(&self) -> Result<bool, PhoneError> {
        Ok(self.hold_state().await?.local)
    }

    /// Who holds whom.
    pub async fn hold_state(&self) -> Result<HoldState, PhoneError> {
        let id = self.id;
        Ok(self.phone.with(move |ua, _| ua.hold_state(id)).await??)
    }

    /// Stops sending our audio: silence goes out instead (media keeps flowing the other
    /// way; nothing is signalled). Without media, this only sets the flag.
    pub async fn mute(&self) -> Result<(), PhoneError> {
        let id = self.id;
        Ok(self
            .phone
            .with_engine(move |e, _| e.set_muted(id, true))
            .await??)
    }

    /// Resumes sending our audio.
    pub async fn unmute(&self) -> Result<(), PhoneError> {
        let id = self.id;
        Ok(self
            .phone
            .with_engine(move |e, _| e.set_muted(id, false))
            .await??)
    }

    /// Whether our audio is muted.
    pub async fn is_muted(&self) -> Result<bool, PhoneError> {
        let id = self.id;
        Ok(self.phone.with(move |ua, _| ua.is_muted(id)).await??)
    }

    /// Sends DTMF tones: by SIP INFO (see [`UserAgent::send_dtmf`]), or for a media phone
    /// the way its [`crate::DtmfMethod`] says (RFC 4733 when negotiated, by default).
    pub async fn send_dtmf(&self, tones: &str) -> Result<(), PhoneError> {
        let (id, tones) = (self.id, tones.to_string());
        Ok(self
            .phone
            .with_engine(move |e, now| e.send_dtmf(now, id, &tones))
            .await??)
    }

    /// Sends a MESSAGE inside the call and waits for its final response.
    pub async fn message(&self, content_type: &str, body: &str) -> Result<(), PhoneError> {
        let (id, ct, body) = (self.id, content_type.to_string(), body.to_string());
        let e = self
            .phone
            .act_and_wait(move |e, now, w| {
                let ua = e.ua_mut();
                let rid = ua.call_message(now, id, &ct, &body)?;
                Ok(wait_completed(w, rid))
            })
            .await?;
        completed(e)
    }
}

#[cfg(feature = "rtc")]
mod media {
    use super::*;
    use crate::RtcSession;
    use crate::audio::{AudioSink, AudioSource};
    use crate::stats::MediaStats;
    use crate::video::{VideoFrame, VideoSink};

    /// Media commands of a call with real media.
    impl Call<RtcSession> {
        /// Plays `source` into the call from the next 20 ms frame on (a tone, a WAV file,
        /// a [`crate::audio::FrameQueue`] the application feeds…).
        pub async fn play(&self, source: impl AudioSource + 'static) -> Result<(), PhoneError> {
            let id = self.id;
            let source: Box<dyn AudioSource> = Box::new(source);
            Ok(self
                .phone
                .with_engine(move |p, _| p.set_source(id, source))
                .await??)
        }

        /// Sends the call's decoded audio to `sink` (a WAV file, a
        /// [`crate::audio::Recorder`], a channel…).
        pub async fn record(&self, sink: impl AudioSink + 'static) -> Result<(), PhoneError> {
            let id = self.id;
            let sink: Box<dyn AudioSink> = Box::new(sink);
            Ok(self
                .phone
                .with_engine(move |p, _| p.set_sink(id, sink))
                .await??)
        }

        /// Sends the call's received video frames to `sink` (e.g. an
        /// [`crate::video::IvfWriter`]).
        pub async fn record_video(&self, sink: impl VideoSink + 'static) -> Result<(), PhoneError> {
            let id = self.id;
            let sink: Box<dyn VideoSink> = Box::new(sink);
            Ok(self
                .phone
                .with_engine(move |p, _| p.set_video_sink(id, sink))
                .await??)
        }

        /// Sends one encoded video frame; `false` when the call has no video to send on.
        pub async fn send_video(&self, frame: VideoFrame) -> Result<bool, PhoneError> {
            let id = self.id;
            Ok(self
                .phone
                .with_engine(move |p, now| p.send_video(now, id, &frame))
                .await??)
        }

        /// The call's media statistics (its totals once it has ended).
        pub async fn media_stats(&self) -> Result<MediaStats, PhoneError> {
            let id = self.id;
            self.phone
                .with_engine(move |p, _| p.media_stats(id))
                .await?
                .ok_or(PhoneError::Ua(UaError::NoSuchCall(id)))
        }

        /// Adds video to the call or stops it, from its next offer on; send that with
        /// [`Call::renegotiate`] (or accept the peer's with [`Call::accept_reoffer`]).
        pub async fn set_video(&self, video: bool) -> Result<(), PhoneError> {
            let id = self.id;
            Ok(self
                .phone
                .with_engine(move |p, _| p.set_video(id, video))
                .await??)
        }

        /// Has the call's next offer restart ICE; send it with [`Call::renegotiate`].
        pub async fn restart_ice(&self) -> Result<(), PhoneError> {
            let id = self.id;
            Ok(self
                .phone
                .with_engine(move |p, _| p.restart_ice(id))
                .await??)
        }

        /// Whether ICE and DTLS are up.
        pub async fn is_media_connected(&self) -> Result<bool, PhoneError> {
            let id = self.id;
            self.phone
                .with_engine(move |p, _| p.is_media_connected(id))
                .await
        }
    }
}
