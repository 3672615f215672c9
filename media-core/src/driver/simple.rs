//! `SimpleUser`: one call at a time, driven by delegate callbacks — the shape of SIP.js's
//! `SimpleUser`, plus the progress and end-reason callbacks it lacks.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use sansip_core::session::{CallEnd, CallId, HoldState};
use sansip_core::ua::{CallOptions, Event, UaError};

use super::{Call, Phone, PhoneConfig, PhoneError, Runtime, Session, UaEngine, WeakPhone};

/// Callbacks of a [`SimpleUser`]; every method has an empty default. They run on the
/// driver's event task: keep them short, and send work elsewhere.
pub trait SimpleUserDelegate: Send + 'static {
    /// An incoming call rings; answer with [`SimpleUser::answer`].
    fn on_call_received(&mut self, _from: &str) {}
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
pub struct SimpleUser<S: Session> {
    phone: Phone<S>,
    current: Arc<Mutex<Option<CallId>>>,
    delegate: Arc<Mutex<dyn SimpleUserDelegate>>,
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
        let events = phone.take_events().await;
        let task = dispatch(phone.downgrade(), current.clone(), events, delegate.clone());
        runtime.spawn(Box::pin(task));
        Ok(Self {
            phone,
            current,
            delegate,
        })
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
        self.phone
            .with_engine(move |e, now| {
                let mut slot = lock(&current);
                if slot.is_some() {
                    return Err(UaError::InvalidState("a call is already up"));
                }
                // Set in the same step as the INVITE, so its first event finds it.
                *slot = Some(e.call(now, &target, CallOptions::default())?);
                Ok(())
            })
            .await??;
        delegate(&self.delegate).on_call_created();
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

    fn current_call(&self) -> Option<CallId> {
        *lock(&self.current)
    }

    async fn call_handle(&self) -> Result<Call<S>, PhoneError> {
        let id = self
            .current_call()
            .ok_or(UaError::InvalidState("no call"))?;
        self.phone.call_handle(id).await
    }
}

/// The lock holds only an `Option<CallId>`, so a panic elsewhere cannot leave it torn.
fn lock(m: &Mutex<Option<CallId>>) -> std::sync::MutexGuard<'_, Option<CallId>> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A panicking callback must not silence every later one.
fn delegate(
    m: &Mutex<dyn SimpleUserDelegate>,
) -> std::sync::MutexGuard<'_, dyn SimpleUserDelegate> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Turns the phone's events into callbacks. It holds the phone weakly (it only needs it
/// to refuse a second call), so dropping the `SimpleUser` stops everything.
async fn dispatch<S: Session>(
    phone: WeakPhone<S>,
    current: Arc<Mutex<Option<CallId>>>,
    events: Option<super::EventStream<Event>>,
    delegate_cell: Arc<Mutex<dyn SimpleUserDelegate>>,
) {
    let Some(mut events) = events else {
        return;
    };
    while let Some(e) = events.next().await {
        let mut d = delegate(&delegate_cell);
        let mine = |call: &CallId| *lock(&current) == Some(*call);
        match &e {
            Event::IncomingCall { call, from, .. } => {
                let busy = lock(&current).is_some();
                if busy {
                    drop(d);
                    if let Some(p) = phone.upgrade() {
                        let id = *call;
                        let _ = p.with(move |ua, now| ua.decline(now, id, Some(486))).await;
                    }
                    continue;
                } else {
                    *lock(&current) = Some(*call);
                    d.on_call_received(from);
                }
            }
            Event::CallProgress {
                call,
                status: status @ (180 | 183),
                early_media,
                ..
            } if mine(call) => d.on_call_progress(*status, *early_media),
            Event::CallAnswered { call } if mine(call) => d.on_call_answered(),
            Event::CallEnded { call, end } if mine(call) => {
                *lock(&current) = None;
                d.on_call_hangup(end);
            }
            Event::HoldChanged {
                call,
                local,
                remote,
            } if mine(call) => d.on_call_hold(*local, *remote),
            Event::DtmfReceived {
                call,
                tone,
                duration,
            } if mine(call) => d.on_call_dtmf_received(*tone, *duration),
            Event::MessageReceived { from, body, .. } => {
                d.on_message_received(from, &String::from_utf8_lossy(body));
            }
            Event::Registered { .. } => d.on_registered(),
            Event::Unregistered { .. } | Event::RegistrationFailed { retry_in: None, .. } => {
                d.on_unregistered();
            }
            Event::Connected { .. } => d.on_server_connect(),
            Event::Disconnected { reason, .. } => d.on_server_disconnect(reason),
            _ => {}
        }
    }
}
