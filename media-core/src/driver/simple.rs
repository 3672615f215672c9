//! `SimpleUser`: one call at a time, driven by delegate callbacks — the shape of SIP.js's
//! `SimpleUser`, plus the progress and end-reason callbacks it lacks, a delegate that can
//! answer or decline from its callback, and audio wired to every call ([`SimpleMedia`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use sansip_core::session::{CallEnd, CallHandle, HoldState};
use sansip_core::ua::{AnswerOptions, CallOptions, Event, UaError};

use super::{Call, Phone, PhoneConfig, PhoneError, Runtime, Session, UaEngine, WeakPhone};
use crate::audio::{AudioSink, AudioSource};

/// What to do with a call that rings, returned by
/// [`SimpleUserDelegate::on_call_received`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum IncomingAction {
    /// Let it ring; answer or decline later through the [`SimpleUser`].
    #[default]
    Ring,
    /// Answer it now.
    Answer,
    /// Decline it with this status (486 busy, 603 decline…).
    Decline(u16),
}

type SourceFactory = Box<dyn FnMut() -> Box<dyn AudioSource> + Send>;
type SinkFactory = Box<dyn FnMut() -> Box<dyn AudioSink> + Send>;
/// One call's source and sink, when the application gave them.
type CallAudio = (Option<Box<dyn AudioSource>>, Option<Box<dyn AudioSink>>);

/// The audio of a [`SimpleUser`]'s calls: what each call plays and where what it hears
/// goes, made afresh for every call (as SIP.js's `SimpleUser` takes a local stream and a
/// remote audio element). Without media in the build, calls go on silent.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use sansip_media::audio::{FrameQueue, Recorder, Tone};
/// use sansip_media::driver::SimpleMedia;
///
/// let heard = Arc::new(Mutex::new(Recorder::default()));
/// let speaker = heard.clone();
/// let media = SimpleMedia::new()
///     .play(|| Box::new(Tone::new(440.0)))
///     .record(move || Box::new(speaker.clone()));
/// // Or feed frames from another task: a shared queue plays what is pushed into it.
/// let queue = Arc::new(Mutex::new(FrameQueue::new(2)));
/// let feeder = queue.clone();
/// let media = media.play(move || Box::new(feeder.clone()));
/// ```
#[derive(Default)]
pub struct SimpleMedia {
    source: Option<SourceFactory>,
    sink: Option<SinkFactory>,
}

impl std::fmt::Debug for SimpleMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimpleMedia")
            .field("plays", &self.source.is_some())
            .field("records", &self.sink.is_some())
            .finish()
    }
}

impl SimpleMedia {
    /// No audio: calls send silence and drop what they hear.
    pub fn new() -> Self {
        Self::default()
    }

    /// Each call plays what `source` makes (a tone, a WAV file, a shared frame queue).
    pub fn play(mut self, source: impl FnMut() -> Box<dyn AudioSource> + Send + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Each call sends what it hears to what `sink` makes (a WAV file, a recorder).
    pub fn record(mut self, sink: impl FnMut() -> Box<dyn AudioSink> + Send + 'static) -> Self {
        self.sink = Some(Box::new(sink));
        self
    }

    fn for_call(&mut self) -> CallAudio {
        (
            self.source.as_mut().map(|f| f()),
            self.sink.as_mut().map(|f| f()),
        )
    }
}

/// Callbacks of a [`SimpleUser`]; every method has an empty default. They run on the
/// driver's event task: keep them short, and send work elsewhere.
pub trait SimpleUserDelegate: Send + 'static {
    /// An incoming call rings. Return [`IncomingAction::Answer`] or
    /// [`IncomingAction::Decline`] to act at once, or let it ring (the default) and answer
    /// later with [`SimpleUser::answer`].
    fn on_call_received(&mut self, _from: &str) -> IncomingAction {
        IncomingAction::Ring
    }
    /// Our outgoing call was created (the INVITE went out).
    fn on_call_created(&mut self) {}
    /// A provisional response: 180 ringing, 183 progress (`early_media` with SDP).
    fn on_call_progress(&mut self, _status: u16, _early_media: bool) {}
    /// The call was answered.
    fn on_call_answered(&mut self) {}
    /// The call ended, and why.
    fn on_call_hangup(&mut self, _end: &CallEnd) {}
    /// Hold changed: `held` is whether we hold the peer; `remote` whether the peer holds us.
    fn on_call_hold(&mut self, _held: bool, _remote: bool) {}
    /// A DTMF tone arrived.
    fn on_call_dtmf_received(&mut self, _tone: char, _duration: Option<Duration>) {}
    /// A MESSAGE arrived (in the call or outside it).
    fn on_message_received(&mut self, _from: &str, _body: &str) {}
    /// Registered.
    fn on_registered(&mut self) {}
    /// Unregistered, or the registration failed.
    fn on_unregistered(&mut self) {}
    /// The connection to the server is up.
    fn on_server_connect(&mut self) {}
    /// The connection to the server failed or was lost (it is retried by itself).
    fn on_server_disconnect(&mut self, _reason: &str) {}
}

/// A phone with one call at a time and delegate callbacks, like SIP.js's `SimpleUser`.
/// A second incoming call while one is up is refused with 486 Busy Here.
///
/// ```no_run
/// # async fn run(runtime: std::sync::Arc<dyn sansip_media::driver::Runtime>, config: sansip_media::driver::PhoneConfig) -> Result<(), sansip_media::driver::PhoneError> {
/// use sansip_media::RtcSession;
/// use sansip_media::audio::{Tone, WavSink};
/// use sansip_media::driver::{IncomingAction, SimpleMedia, SimpleUser, SimpleUserDelegate};
///
/// /// Answers every call and says when it ends.
/// struct AutoAnswer;
/// impl SimpleUserDelegate for AutoAnswer {
///     fn on_call_received(&mut self, from: &str) -> IncomingAction {
///         println!("{from} calls");
///         IncomingAction::Answer
///     }
///     fn on_call_hangup(&mut self, end: &sansip_media::core::session::CallEnd) {
///         println!("call over: {}", end.cause);
///     }
/// }
///
/// let user: SimpleUser<RtcSession> = SimpleUser::start(runtime, config, AutoAnswer).await?;
/// user.set_media(
///     SimpleMedia::new()
///         .play(|| Box::new(Tone::new(440.0)))
///         .record(|| Box::new(WavSink::create("last-call.wav", 16_000).expect("writable"))),
/// );
/// user.register(600).await?;
/// # Ok(()) }
/// ```
pub struct SimpleUser<S: Session> {
    phone: Phone<S>,
    current: Arc<Mutex<Option<CallHandle>>>,
    delegate: Arc<Mutex<dyn SimpleUserDelegate>>,
    media: Arc<Mutex<SimpleMedia>>,
}

impl<S: Session> std::fmt::Debug for SimpleUser<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimpleUser")
            .field("phone", &self.phone)
            .finish_non_exhaustive()
    }
}

impl<S: Session> SimpleUser<S> {
    /// Starts the phone, with `delegate` receiving the callbacks.
    pub async fn start(
        runtime: Arc<dyn Runtime>,
        config: PhoneConfig,
        delegate: impl SimpleUserDelegate,
    ) -> Result<Self, PhoneError> {
        let phone = Phone::start(runtime.clone(), config)?;
        let current = Arc::new(Mutex::new(None));
        let delegate: Arc<Mutex<dyn SimpleUserDelegate>> = Arc::new(Mutex::new(delegate));
        let media = Arc::new(Mutex::new(SimpleMedia::new()));
        let events = phone.take_events().await;
        let task = dispatch(
            phone.downgrade(),
            Shared {
                current: current.clone(),
                delegate: delegate.clone(),
                media: media.clone(),
            },
            events,
        );
        runtime.spawn(Box::pin(task));
        Ok(Self {
            phone,
            current,
            delegate,
            media,
        })
    }

    /// Sets the audio of the calls from now on (see [`SimpleMedia`]); a call already up
    /// keeps what it has.
    pub fn set_media(&self, media: SimpleMedia) {
        *lock(&self.media) = media;
    }

    /// The call that is up or ringing, if any.
    pub async fn current_call(&self) -> Option<Call<S>> {
        let id = (*lock(&self.current))?;
        self.phone.call_handle(id).await.ok()
    }

    /// The phone underneath, for everything this facade does not wrap.
    pub fn phone(&self) -> &Phone<S> {
        &self.phone
    }

    /// Waits for the connection to the server.
    pub async fn connect(&self) -> Result<(), PhoneError> {
        self.phone.connect().await
    }

    /// Closes the connection and stops reconnecting.
    pub async fn disconnect(&self) -> Result<(), PhoneError> {
        self.phone.disconnect().await
    }

    /// Whether the connection is up.
    pub async fn is_connected(&self) -> Result<bool, PhoneError> {
        self.phone.is_connected().await
    }

    /// Registers for `expires` seconds.
    pub async fn register(&self, expires: u32) -> Result<u32, PhoneError> {
        self.phone.register(expires).await
    }

    /// Unregisters.
    pub async fn unregister(&self) -> Result<(), PhoneError> {
        self.phone.unregister(false).await
    }

    /// Calls `target`; fails with [`UaError::InvalidState`] while a call is up.
    pub async fn call(&self, target: &str) -> Result<(), PhoneError> {
        let (target, current) = (target.to_string(), self.current.clone());
        let delegate_cell = self.delegate.clone();
        self.phone
            .with_engine(move |e, now| {
                let mut slot = lock(&current);
                if slot.is_some() {
                    return Err(UaError::InvalidState("a call is already up"));
                }
                // Set in the same step as the INVITE, so its first event finds it; and told
                // to the delegate in that step too, before any event of the call can be.
                *slot = Some(e.call(now, &target, CallOptions::default())?);
                drop(slot);
                delegate(&delegate_cell).on_call_created();
                Ok(())
            })
            .await??;
        Ok(())
    }

    /// Answers the ringing call.
    pub async fn answer(&self) -> Result<(), PhoneError> {
        self.call_handle().await?.answer().await
    }

    /// Declines the ringing call (480).
    pub async fn decline(&self) -> Result<(), PhoneError> {
        self.call_handle().await?.decline(None).await
    }

    /// Hangs up (CANCEL, decline or BYE, as the call's state requires).
    pub async fn hangup(&self) -> Result<(), PhoneError> {
        self.call_handle().await?.hangup().await
    }

    /// Holds the peer; resolves when the re-INVITE is answered.
    pub async fn hold(&self) -> Result<HoldState, PhoneError> {
        self.call_handle().await?.hold().await
    }

    /// Resumes.
    pub async fn unhold(&self) -> Result<HoldState, PhoneError> {
        self.call_handle().await?.unhold().await
    }

    /// Whether we hold the peer.
    pub async fn is_held(&self) -> Result<bool, PhoneError> {
        Ok(self.call_handle().await?.hold_state().await?.local)
    }

    /// Mutes our audio (a flag only until media exists).
    pub async fn mute(&self) -> Result<(), PhoneError> {
        self.call_handle().await?.mute().await
    }

    /// Unmutes.
    pub async fn unmute(&self) -> Result<(), PhoneError> {
        self.call_handle().await?.unmute().await
    }

    /// Whether our audio is muted.
    pub async fn is_muted(&self) -> Result<bool, PhoneError> {
        self.call_handle().await?.is_muted().await
    }

    /// Sends DTMF tones in the call.
    pub async fn send_dtmf(&self, tones: &str) -> Result<(), PhoneError> {
        self.call_handle().await?.send_dtmf(tones).await
    }

    /// Sends a text MESSAGE out of dialog.
    pub async fn message(&self, target: &str, text: &str) -> Result<(), PhoneError> {
        self.phone.message(target, "text/plain", text).await
    }

    async fn call_handle(&self) -> Result<Call<S>, PhoneError> {
        let id = (*lock(&self.current)).ok_or(UaError::InvalidState("no call"))?;
        self.phone.call_handle(id).await
    }
}

/// What the locks hold is replaced whole, so a panic elsewhere cannot leave it torn.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the dispatch task shares with the [`SimpleUser`].
struct Shared {
    current: Arc<Mutex<Option<CallHandle>>>,
    delegate: Arc<Mutex<dyn SimpleUserDelegate>>,
    media: Arc<Mutex<SimpleMedia>>,
}

/// A panicking callback must not silence every later one.
fn delegate(
    m: &Mutex<dyn SimpleUserDelegate>,
) -> std::sync::MutexGuard<'_, dyn SimpleUserDelegate> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Turns the phone's events into callbacks. It holds the phone weakly (it only needs it
/// to act on calls), so dropping the `SimpleUser` stops everything.
async fn dispatch<S: Session>(
    phone: WeakPhone<S>,
    shared: Shared,
    events: Option<super::EventStream<Event>>,
) {
    let Some(mut events) = events else {
        return;
    };
    let Shared {
        current,
        delegate: delegate_cell,
        media,
    } = shared;
    while let Some(e) = events.next().await {
        let mine = |call: &CallHandle| *lock(&current) == Some(*call);
        // The delegate's lock is never held across an await.
        let act =
            |f: &mut dyn FnMut(&mut dyn SimpleUserDelegate)| f(&mut *delegate(&delegate_cell));
        match &e {
            Event::IncomingCall { call, from, .. } => {
                let id = *call;
                let busy = lock(&current).is_some();
                let action = if busy {
                    IncomingAction::Decline(486)
                } else {
                    *lock(&current) = Some(id);
                    let mut action = IncomingAction::Ring;
                    act(&mut |d| action = d.on_call_received(from));
                    action
                };
                let Some(p) = phone.upgrade() else { return };
                let done = match action {
                    IncomingAction::Ring => Ok(()),
                    IncomingAction::Answer => p
                        .with_engine(move |e, now| e.answer(now, id, AnswerOptions::default()))
                        .await
                        .and_then(|r| Ok(r?)),
                    IncomingAction::Decline(status) => p
                        .with(move |ua, now| ua.decline(now, id, Some(status)))
                        .await
                        .and_then(|r| Ok(r?)),
                };
                if let Err(e) = done {
                    tracing::debug!(call = %id, error = %e, "the delegate's answer could not be carried out");
                }
            }
            Event::CallProgress {
                call,
                status: status @ (180 | 183),
                early_media,
                ..
            } if mine(call) => act(&mut |d| d.on_call_progress(*status, *early_media)),
            Event::CallAnswered { call, .. } if mine(call) => {
                let id = *call;
                let (source, sink) = lock(&media).for_call();
                if (source.is_some() || sink.is_some())
                    && let Some(p) = phone.upgrade()
                {
                    let attached = p
                        .with_engine(move |e, _| e.set_audio(id, source, sink))
                        .await;
                    if !matches!(attached, Ok(Ok(_))) {
                        tracing::debug!(call = %id, "the call's audio could not be attached");
                    }
                }
                act(&mut |d| d.on_call_answered());
            }
            Event::CallEnded { call, end, .. } if mine(call) => {
                *lock(&current) = None;
                act(&mut |d| d.on_call_hangup(end));
            }
            Event::HoldChanged {
                call,
                local,
                remote,
            } if mine(call) => act(&mut |d| d.on_call_hold(*local, *remote)),
            Event::DtmfReceived {
                call,
                tone,
                duration,
            } if mine(call) => act(&mut |d| d.on_call_dtmf_received(*tone, *duration)),
            Event::MessageReceived { from, body, .. } => {
                act(&mut |d| d.on_message_received(from, &String::from_utf8_lossy(body)));
            }
            Event::Registered { .. } => act(&mut |d| d.on_registered()),
            Event::Unregistered { .. } | Event::RegistrationFailed { retry_in: None, .. } => {
                act(&mut |d| d.on_unregistered());
            }
            Event::Connected { .. } => act(&mut |d| d.on_server_connect()),
            Event::Disconnected { reason, .. } => act(&mut |d| d.on_server_disconnect(reason)),
            _ => {}
        }
    }
}
