//! A media phone's group calls ([`sansip_core::group`]): the membership subscription,
//! the legs its [`Mesh`] asks for, and the audio [`Bridge`] that sends the local source to
//! every leg and mixes every leg into the local sink.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sansip_core::group::{GROUP_HEADER, GroupId, Mesh, MeshAction};
use sansip_core::message::Uri;
use sansip_core::session::CallHandle;
use sansip_core::subscription::SubscriptionHandle;
use sansip_core::subscription::conference_info::{CONTENT_TYPE, ConferenceInfo, PACKAGE};
use sansip_core::ua::{CallOptions, Event, Output, SubscribeOptions, UaError};

use super::MediaAgent;
use crate::audio::{AudioFrame, AudioSink, AudioSource, Mixer, ParticipantId, frame_samples};

/// How long a membership lasts between refreshes: a member that vanishes without leaving
/// is dropped by the server after at most this.
const MEMBERSHIP: Duration = Duration::from_secs(120);

/// The rate a member mixes its legs at (wideband voice).
const MIX_RATE: u32 = 16_000;

/// The most legs a member mixes (a mesh of 17).
const MAX_LEGS: usize = 16;

/// The groups a phone is in.
#[derive(Default)]
pub(super) struct Groups {
    groups: HashMap<SubscriptionHandle, Group>,
    /// Each leg's group.
    legs: HashMap<CallHandle, SubscriptionHandle>,
}

struct Group {
    mesh: Mesh,
    /// The group's URI, for the legs' [`GROUP_HEADER`].
    uri: String,
    bridge: Arc<Mutex<Bridge>>,
    /// Each leg's place in the bridge.
    parts: HashMap<CallHandle, ParticipantId>,
}

impl Groups {
    fn by_name(&self, group: &GroupId) -> Option<SubscriptionHandle> {
        self.groups
            .iter()
            .find(|(_, g)| g.mesh.group() == group)
            .map(|(s, _)| *s)
    }
}

/// A member's audio: one mix in which the local phone hears every leg, and each leg hears
/// the local phone only (the members hear each other over their own legs). The legs'
/// pulls drive it: whenever one finds its audio used up, 20 ms of the local source go in,
/// and 20 ms of the mix of every leg come out to the local sink.
struct Bridge {
    mixer: Mixer,
    local: ParticipantId,
    source: Box<dyn AudioSource>,
    sink: Box<dyn AudioSink>,
    /// The members' own streams, for an application that wants them apart.
    own: HashMap<ParticipantId, Box<dyn AudioSink>>,
    said: AudioFrame,
    heard: AudioFrame,
}

impl Bridge {
    fn new(source: Box<dyn AudioSource>, sink: Box<dyn AudioSink>) -> Option<Self> {
        let mut mixer = Mixer::new(MIX_RATE, MAX_LEGS + 1);
        let local = mixer.join().ok()?;
        let frame = |n| AudioFrame {
            rate: MIX_RATE,
            samples: vec![0; n],
        };
        Some(Self {
            mixer,
            local,
            source,
            sink,
            own: HashMap::new(),
            said: frame(frame_samples(MIX_RATE)),
            heard: frame(0),
        })
    }

    /// 20 ms of the local source into the mix, and what the legs said out of it.
    fn tick(&mut self) {
        if !self.source.fill(MIX_RATE, &mut self.said.samples) {
            self.said.samples.fill(0);
        }
        self.mixer.push(self.local, &self.said);
        self.mixer.tick();
        // A leg's first pull may have ticked once more by itself: take all there is.
        let queued = self.mixer.queued(self.local);
        self.heard.samples.resize(queued, 0);
        let n = self.mixer.take(self.local, &mut self.heard.samples);
        self.heard.samples.truncate(n);
        if n > 0 {
            self.sink.write(&self.heard);
        }
    }
}

/// What a leg sends: the local source, through the bridge.
struct LegSource {
    bridge: Arc<Mutex<Bridge>>,
    part: ParticipantId,
}

impl AudioSource for LegSource {
    fn fill(&mut self, rate: u32, out: &mut [i16]) -> bool {
        let mut b = self.bridge.lock().unwrap_or_else(PoisonError::into_inner);
        if b.mixer.queued(self.part) < frame_samples(MIX_RATE) {
            b.tick();
        }
        b.mixer.pull(self.part, rate, out)
    }
}

/// What a leg hears: into the local mix, and to the member's own sink if it has one.
struct LegSink {
    bridge: Arc<Mutex<Bridge>>,
    part: ParticipantId,
}

impl AudioSink for LegSink {
    fn write(&mut self, frame: &AudioFrame) {
        let mut b = self.bridge.lock().unwrap_or_else(PoisonError::into_inner);
        b.mixer.push(self.part, frame);
        if let Some(own) = b.own.get_mut(&self.part) {
            own.write(frame);
        }
    }
}

impl MediaAgent {
    /// Joins group `name` on our server (an all-to-all call, see
    /// [`sansip_core::group`]): subscribes to `sip:group-<name>@<our domain>`, calls every
    /// member listed before us and answers those after. `source` is what the other members
    /// hear; `sink` gets the mix of all of them (each one apart with
    /// [`MediaAgent::set_group_member_sink`]). Progress comes as
    /// [`Event::GroupLocalMediaReady`], [`Event::GroupMemberAdded`] and
    /// [`Event::GroupMemberRemoved`]; the legs are calls like any other. Register first:
    /// the members who join later call our address-of-record.
    pub fn call_group(
        &mut self,
        now: Instant,
        name: &str,
        source: Box<dyn AudioSource>,
        sink: Box<dyn AudioSink>,
    ) -> Result<(), UaError> {
        let group = GroupId::new(name)?;
        if self.groups.by_name(&group).is_some() {
            return Err(UaError::InvalidState("already in this group"));
        }
        let aor = self.ua.config().aor.clone();
        let host = Uri::parse(&aor)
            .ok()
            .and_then(|u| u.host().map(|h| h.to_string()))
            .ok_or_else(|| UaError::InvalidTarget(aor.clone()))?;
        let mesh = Mesh::new(group.clone(), &aor).ok_or(UaError::InvalidTarget(aor))?;
        let uri = format!("sip:{}@{host}", group.user());
        let options = SubscribeOptions::new(PACKAGE)
            .accept(CONTENT_TYPE)
            .expires(MEMBERSHIP.as_secs() as u32);
        let bridge =
            Bridge::new(source, sink).ok_or(UaError::InvalidState("the group's mix is full"))?;
        let sub = self.ua.subscribe(now, &uri, options)?;
        self.groups.groups.insert(
            sub,
            Group {
                mesh,
                uri,
                bridge: Arc::new(Mutex::new(bridge)),
                parts: HashMap::new(),
            },
        );
        Ok(())
    }

    /// Leaves group `name`: every leg is hung up and the membership ends.
    pub fn leave_group(&mut self, now: Instant, name: &str) -> Result<(), UaError> {
        let group = GroupId::new(name)?;
        let sub = self
            .groups
            .by_name(&group)
            .ok_or(UaError::InvalidState("not in this group"))?;
        self.end_group(now, sub, None);
        if let Err(error) = self.ua.unsubscribe(now, sub) {
            tracing::debug!(%error, "group: unsubscribe");
        }
        Ok(())
    }

    /// The members of group `name` we hear now, with their legs.
    pub fn group_members(&self, name: &str) -> Vec<(String, CallHandle)> {
        let Some(sub) = GroupId::new(name)
            .ok()
            .and_then(|g| self.groups.by_name(&g))
        else {
            return Vec::new();
        };
        self.groups.groups[&sub]
            .mesh
            .connected()
            .map(|(m, c)| (m.to_string(), c))
            .collect()
    }

    /// Sends what the member on leg `call` says to `sink` as well as into the group's mix.
    pub fn set_group_member_sink(
        &mut self,
        call: CallHandle,
        sink: Box<dyn AudioSink>,
    ) -> Result<(), UaError> {
        let g = self
            .groups
            .legs
            .get(&call)
            .and_then(|s| self.groups.groups.get(s))
            .ok_or(UaError::NoSuchCall(call))?;
        let part = *g.parts.get(&call).ok_or(UaError::NoSuchCall(call))?;
        g.bridge
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .own
            .insert(part, sink);
        Ok(())
    }

    /// Takes the user agent's output that concerns a group: its membership's NOTIFYs and
    /// end, a member's INVITE, a leg answered or ended. True when the output is the
    /// group's own and goes no further.
    pub(super) fn group_output(&mut self, out: &Output) -> bool {
        let Output::Event(e) = out else {
            return false;
        };
        if self.groups.groups.is_empty() && !matches!(e, Event::IncomingCall { .. }) {
            return false;
        }
        let now = self.now;
        match e {
            Event::Notified {
                subscription,
                content_type,
                body,
                ..
            } if self.groups.groups.contains_key(subscription) => {
                let info = content_type
                    .eq_ignore_ascii_case(CONTENT_TYPE)
                    .then(|| ConferenceInfo::parse(body).ok())
                    .flatten();
                if let Some(info) = info.filter(|i| i.full) {
                    let sub = *subscription;
                    let actions = match self.groups.groups.get_mut(&sub) {
                        Some(g) => g.mesh.update(&info.users),
                        None => Vec::new(),
                    };
                    self.run_mesh(now, sub, actions);
                }
                true
            }
            Event::SubscriptionEnded {
                subscription,
                reason,
                ..
            } if self.groups.groups.contains_key(subscription) => {
                self.end_group(now, *subscription, reason.clone());
                true
            }
            Event::IncomingCall {
                call,
                from,
                headers,
                ..
            } => {
                let Some((_, value)) = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(GROUP_HEADER))
                else {
                    return false;
                };
                // Another use of the header name: the application's.
                let Some(group) = GroupId::from_uri(value) else {
                    return false;
                };
                let Some(sub) = self.groups.by_name(&group) else {
                    // A member's call for a group we are not in (any more).
                    if let Err(error) = self.ua.decline(now, *call, Some(480)) {
                        tracing::debug!(%call, %error, "group: decline");
                    }
                    return true;
                };
                let actions = match self.groups.groups.get_mut(&sub) {
                    Some(g) => g.mesh.incoming(*call, from),
                    None => Vec::new(),
                };
                self.groups.legs.insert(*call, sub);
                self.run_mesh(now, sub, actions);
                true
            }
            Event::CallAnswered { call, .. } => {
                if let Some(&sub) = self.groups.legs.get(call) {
                    let added = self
                        .groups
                        .groups
                        .get_mut(&sub)
                        .and_then(|g| g.mesh.answered(*call));
                    self.run_mesh(now, sub, added.into_iter().collect());
                }
                false
            }
            Event::CallEnded { call, .. } => {
                if let Some(sub) = self.groups.legs.remove(call)
                    && let Some(g) = self.groups.groups.get_mut(&sub)
                {
                    if let Some(part) = g.parts.remove(call) {
                        let mut b = g.bridge.lock().unwrap_or_else(PoisonError::into_inner);
                        b.mixer.leave(part);
                        b.own.remove(&part);
                    }
                    let removed = g.mesh.ended(*call);
                    self.run_mesh(now, sub, removed.into_iter().collect());
                }
                false
            }
            _ => false,
        }
    }

    /// Carries out what a group's mesh asked.
    fn run_mesh(&mut self, now: Instant, sub: SubscriptionHandle, actions: Vec<MeshAction>) {
        for action in actions {
            let Some(g) = self.groups.groups.get_mut(&sub) else {
                return;
            };
            let group = g.mesh.group().to_string();
            match action {
                MeshAction::Ready => self.group_event(Event::GroupLocalMediaReady { group }),
                MeshAction::Call(member) => {
                    let options =
                        CallOptions::default().header(GROUP_HEADER, format!("<{}>", g.uri));
                    match self.call(now, &member, options) {
                        Ok(call) => {
                            if let Some(g) = self.groups.groups.get_mut(&sub) {
                                g.mesh.placed(&member, call);
                            }
                            self.groups.legs.insert(call, sub);
                            self.bridge_leg(sub, call);
                        }
                        Err(error) => {
                            tracing::debug!(%member, %error, "group: could not call a member");
                        }
                    }
                }
                MeshAction::Answer(call) => match self.answer(now, call) {
                    Ok(()) => self.bridge_leg(sub, call),
                    Err(error) => tracing::debug!(%call, %error, "group: could not answer"),
                },
                MeshAction::Hangup(call) => {
                    if let Err(error) = self.ua.hangup(now, call) {
                        tracing::debug!(%call, %error, "group: hangup");
                    }
                }
                MeshAction::Added { member, call } => {
                    self.group_event(Event::GroupMemberAdded {
                        group,
                        member,
                        call,
                    });
                }
                MeshAction::Removed { member, call } => {
                    self.group_event(Event::GroupMemberRemoved {
                        group,
                        member,
                        call,
                    });
                }
                _ => {}
            }
        }
    }

    /// Puts leg `call` into its group's bridge: it sends the local source and is heard in
    /// the mix.
    fn bridge_leg(&mut self, sub: SubscriptionHandle, call: CallHandle) {
        let Some(g) = self.groups.groups.get_mut(&sub) else {
            return;
        };
        let joined = {
            let mut b = g.bridge.lock().unwrap_or_else(PoisonError::into_inner);
            let local = b.local;
            b.mixer.join_hearing(local)
        };
        let Ok(part) = joined else {
            tracing::warn!(%call, "group: the mix is full; the leg is silent");
            return;
        };
        g.parts.insert(call, part);
        let bridge = g.bridge.clone();
        let source = LegSource {
            bridge: bridge.clone(),
            part,
        };
        let attached = self
            .set_source(call, Box::new(source))
            .and_then(|()| self.set_sink(call, Box::new(LegSink { bridge, part })));
        if let Err(error) = attached {
            tracing::debug!(%call, %error, "group: leg without audio");
        }
    }

    /// The group of membership `sub` is over for us: its legs are hung up.
    fn end_group(&mut self, now: Instant, sub: SubscriptionHandle, reason: Option<String>) {
        let Some(mut g) = self.groups.groups.remove(&sub) else {
            return;
        };
        for action in g.mesh.leave() {
            if let MeshAction::Hangup(call) = action
                && let Err(error) = self.ua.hangup(now, call)
            {
                tracing::debug!(%call, %error, "group: hangup");
            }
        }
        self.groups.legs.retain(|_, s| *s != sub);
        self.group_event(Event::GroupLeft {
            group: g.mesh.group().to_string(),
            reason,
        });
    }

    fn group_event(&mut self, e: Event) {
        self.extra.push_back(Output::Event(e));
    }
}
