//! A conference focus (RFC 4579's role): a phone that answers calls to rooms
//! (`sip:room-<id>@domain`, see [`sansip_core::conference`]) and bridges each room's
//! participants through a [`Mixer`], so that each hears everyone but themselves. Register
//! it as the embedded registrar's [`conference_user`] and every room of the domain reaches
//! it; rooms come and go with their participants.
//!
//! When the phone serves the `conference` event package ([`UaConfig::event_packages`]),
//! a SUBSCRIBE to a room gets its participants (RFC 4575), and a new full document each
//! time someone joins or leaves.
//!
//! [`conference_user`]: sansip_core::registrar::RegistrarConfig::conference_user
//! [`UaConfig::event_packages`]: sansip_core::ua::UaConfig::event_packages

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures::StreamExt;
use futures::channel::mpsc;
use sansip_core::conference::RoomId;
use sansip_core::message::NameAddr;
use sansip_core::session::CallHandle;
use sansip_core::subscription::conference_info::{
    self, CONTENT_TYPE, ConferenceInfo, ConferenceUser,
};
use sansip_core::subscription::{SubState, SubscriptionHandle};
use sansip_core::ua::Event;

use super::{Phone, PhoneError, Runtime};
use crate::RtcSession;
use crate::audio::{AudioFrame, AudioSink, AudioSource, Mixer, ParticipantId};

/// How big a focus may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FocusConfig {
    /// Rooms open at once; a call that would open one more gets 503 (default 16).
    pub max_rooms: usize,
    /// Participants in one room; one more gets 486 (default 16).
    pub max_participants: usize,
    /// The rate rooms mix at (default 16 kHz: wideband voice).
    pub mix_rate: u32,
}

impl Default for FocusConfig {
    fn default() -> Self {
        Self {
            max_rooms: 16,
            max_participants: 16,
            mix_rate: 16_000,
        }
    }
}

/// What happens in the focus's rooms.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RoomEvent {
    /// A participant's call was answered and joined the mix.
    Joined {
        /// The room.
        room: RoomId,
        /// The participant's call on the focus.
        call: CallHandle,
        /// Who (From of their INVITE).
        who: String,
        /// Participants in the room now.
        count: usize,
    },
    /// A participant's call ended: nobody hears them any more.
    Left {
        /// The room.
        room: RoomId,
        /// Their call on the focus.
        call: CallHandle,
        /// Who.
        who: String,
        /// Participants left in the room.
        count: usize,
    },
    /// A call the focus refused: not a room (404), a full room (486), too many rooms
    /// (503), or an answer that failed (500: declined, or hung up when it was answered
    /// but its media could not join the mix).
    Refused {
        /// The call.
        call: CallHandle,
        /// What it asked for (To of its INVITE).
        to: String,
        /// The status it got.
        status: u16,
    },
}

/// A running focus; dropping it leaves it running with its phone (stop the phone to stop
/// it).
#[derive(Debug)]
pub struct Focus {
    events: mpsc::UnboundedReceiver<RoomEvent>,
}

impl Focus {
    /// Serves rooms on `phone` (connected, and registered where callers' rooms are routed
    /// to it); takes the phone's events.
    pub async fn start(
        runtime: Arc<dyn Runtime>,
        phone: Phone<RtcSession>,
        config: FocusConfig,
    ) -> Result<Focus, PhoneError> {
        let mut calls = phone.take_events().await.ok_or(PhoneError::Stopped)?;
        let (tx, events) = mpsc::unbounded();
        runtime.spawn(Box::pin(async move {
            let mut rooms = Rooms {
                config,
                rooms: HashMap::new(),
                calls: HashMap::new(),
                watchers: HashMap::new(),
            };
            while let Some(e) = calls.next().await {
                for out in rooms.step(&phone, e).await {
                    // Nobody listening is fine: the rooms work all the same.
                    let _ = tx.unbounded_send(out);
                }
            }
        }));
        Ok(Focus { events })
    }

    /// The next thing that happened in a room; `None` once the phone has stopped.
    pub async fn next_event(&mut self) -> Option<RoomEvent> {
        self.events.next().await
    }
}

/// One room: its mix and who is in it.
struct Room {
    mixer: Arc<Mutex<Mixer>>,
    members: usize,
}

/// The focus's state: rooms by id, and each call's room and place in its mix.
struct Rooms {
    config: FocusConfig,
    rooms: HashMap<RoomId, Room>,
    calls: HashMap<CallHandle, (RoomId, ParticipantId, String)>,
    /// Subscribers to a room's participants (RFC 4575): the room, its URI, and the version
    /// of the last document sent.
    watchers: HashMap<SubscriptionHandle, (RoomId, String, u32)>,
}

impl Rooms {
    async fn step(&mut self, phone: &Phone<RtcSession>, e: Event) -> Vec<RoomEvent> {
        let changed = match e {
            Event::IncomingCall { call, from, to, .. } => {
                vec![self.join(phone, call, from, to).await]
            }
            Event::CallEnded { call, .. } => self.leave(call).into_iter().collect(),
            Event::SubscriptionRequested {
                subscription,
                to,
                package,
                ..
            } => {
                self.watch(phone, subscription, &to, &package).await;
                return Vec::new();
            }
            Event::SubscriptionEnded { subscription, .. } => {
                self.watchers.remove(&subscription);
                return Vec::new();
            }
            _ => return Vec::new(),
        };
        for e in &changed {
            if let RoomEvent::Joined { room, .. } | RoomEvent::Left { room, .. } = e {
                self.tell_watchers(phone, room).await;
            }
        }
        changed
    }

    /// A subscription to a room's participants: active at once, with who is in it.
    async fn watch(
        &mut self,
        phone: &Phone<RtcSession>,
        id: SubscriptionHandle,
        to: &str,
        package: &str,
    ) {
        let ours = package
            .split(';')
            .next()
            .is_some_and(|p| p.trim().eq_ignore_ascii_case(conference_info::PACKAGE));
        let target = NameAddr::parse(to).ok().and_then(|na| {
            let uri = na.uri();
            let room = uri.user().and_then(RoomId::from_user)?;
            Some((
                room,
                format!("{}:{}@{}", uri.scheme().as_str(), uri.user()?, uri.host()?),
            ))
        });
        let Some((room, uri)) = target.filter(|_| ours) else {
            let refused = phone
                .with(move |ua, now| ua.terminate_subscription(now, id, "noresource"))
                .await;
            tracing::debug!(?refused, "focus: a subscription to no room");
            return;
        };
        self.watchers.insert(id, (room.clone(), uri, 0));
        self.notify(phone, id).await;
    }

    async fn tell_watchers(&mut self, phone: &Phone<RtcSession>, room: &RoomId) {
        let ids: Vec<SubscriptionHandle> = self
            .watchers
            .iter()
            .filter(|(_, (r, _, _))| r == room)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.notify(phone, id).await;
        }
    }

    /// Sends subscriber `id` the room's participants, as the next version.
    async fn notify(&mut self, phone: &Phone<RtcSession>, id: SubscriptionHandle) {
        let Some((room, uri, version)) = self.watchers.get_mut(&id) else {
            return;
        };
        *version += 1;
        let mut info = ConferenceInfo::new(uri.clone(), *version);
        info.subject = Some(room.to_string());
        let room = room.clone();
        let mut members: Vec<(&CallHandle, &String)> = self
            .calls
            .iter()
            .filter(|(_, (r, _, _))| *r == room)
            .map(|(call, (_, _, who))| (call, who))
            .collect();
        members.sort();
        for (_, who) in members {
            let user = match NameAddr::parse(who) {
                Ok(na) => {
                    ConferenceUser::connected(na.uri().to_string(), na.display_name().as_deref())
                }
                Err(_) => ConferenceUser::connected(who.clone(), None),
            };
            info.users.push(user);
        }
        let body = info.to_xml();
        let sent = phone
            .with(move |ua, now| {
                ua.notify(
                    now,
                    id,
                    SubState::Active,
                    Some((CONTENT_TYPE, body.as_bytes())),
                )
            })
            .await;
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(subscription = %id, error = %e, "focus: notify"),
            Err(e) => tracing::debug!(subscription = %id, error = %e, "focus: notify"),
        }
    }

    async fn join(
        &mut self,
        phone: &Phone<RtcSession>,
        call: CallHandle,
        from: String,
        to: String,
    ) -> RoomEvent {
        let refused = |status: u16, to: String| RoomEvent::Refused { call, to, status };
        let room = NameAddr::parse(&to)
            .ok()
            .and_then(|na| na.uri().user().and_then(RoomId::from_user));
        let Some(room) = room else {
            return self.decline(phone, call, 404, refused(404, to)).await;
        };
        if !self.rooms.contains_key(&room) && self.rooms.len() >= self.config.max_rooms {
            return self.decline(phone, call, 503, refused(503, to)).await;
        }
        let (rate, capacity) = (self.config.mix_rate, self.config.max_participants);
        let entry = self.rooms.entry(room.clone()).or_insert_with(|| Room {
            mixer: Arc::new(Mutex::new(Mixer::new(rate, capacity))),
            members: 0,
        });
        let mixer = entry.mixer.clone();
        let joined = mixer.lock().unwrap_or_else(PoisonError::into_inner).join();
        let Ok(participant) = joined else {
            self.close_if_empty(&room);
            return self.decline(phone, call, 486, refused(486, to)).await;
        };
        entry.members += 1;
        self.calls
            .insert(call, (room.clone(), participant, from.clone()));
        let c = match phone.call_handle(call).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(%call, room = %room, error = %e, "focus: the call is gone");
                self.leave(call);
                return refused(500, to);
            }
        };
        if let Err(e) = c.answer().await {
            tracing::warn!(%call, room = %room, error = %e, "focus: could not answer");
            self.leave(call);
            return self.decline(phone, call, 500, refused(500, to)).await;
        }
        let mixed = async {
            c.play(MixSource {
                mixer: mixer.clone(),
                participant,
            })
            .await?;
            c.record(MixSink {
                mixer: mixer.clone(),
                participant,
            })
            .await
        };
        if let Err(e) = mixed.await {
            // Answered already: a decline would be too late, the call is hung up.
            tracing::warn!(%call, room = %room, error = %e, "focus: no media for the call");
            self.leave(call);
            if let Err(e) = c.hangup().await {
                tracing::debug!(%call, error = %e, "focus: hangup");
            }
            return refused(500, to);
        }
        let count = self.rooms.get(&room).map_or(0, |r| r.members);
        tracing::info!(%call, room = %room, count, "focus: joined");
        RoomEvent::Joined {
            room,
            call,
            who: from,
            count,
        }
    }

    async fn decline(
        &mut self,
        phone: &Phone<RtcSession>,
        call: CallHandle,
        status: u16,
        event: RoomEvent,
    ) -> RoomEvent {
        if let Ok(c) = phone.call_handle(call).await
            && let Err(e) = c.decline(Some(status)).await
        {
            tracing::debug!(%call, error = %e, "focus: decline");
        }
        event
    }

    fn leave(&mut self, call: CallHandle) -> Option<RoomEvent> {
        let (room, participant, who) = self.calls.remove(&call)?;
        let r = self.rooms.get_mut(&room)?;
        r.mixer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .leave(participant);
        r.members -= 1;
        let count = r.members;
        self.close_if_empty(&room);
        tracing::info!(%call, room = %room, count, "focus: left");
        Some(RoomEvent::Left {
            room,
            call,
            who,
            count,
        })
    }

    fn close_if_empty(&mut self, room: &RoomId) {
        if self.rooms.get(room).is_some_and(|r| r.members == 0) {
            self.rooms.remove(room);
        }
    }
}

/// What a participant hears: its mix.
struct MixSource {
    mixer: Arc<Mutex<Mixer>>,
    participant: ParticipantId,
}

impl AudioSource for MixSource {
    fn fill(&mut self, rate: u32, out: &mut [i16]) -> bool {
        let mut m = self.mixer.lock().unwrap_or_else(PoisonError::into_inner);
        m.pull(self.participant, rate, out)
    }
}

/// What a participant says: into the mix.
struct MixSink {
    mixer: Arc<Mutex<Mixer>>,
    participant: ParticipantId,
}

impl AudioSink for MixSink {
    fn write(&mut self, frame: &AudioFrame) {
        let mut m = self.mixer.lock().unwrap_or_else(PoisonError::into_inner);
        m.push(self.participant, frame);
    }
}
