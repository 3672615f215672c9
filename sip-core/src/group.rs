//! All-to-all group calls (Sinch's `callGroup`): every member has a call with every other
//! member, a mesh, and no server mixes anything.
//!
//! # The mechanism, and why
//! A group is the SIP user `group-<name>` at the server's domain, served like a room by
//! the focus's user agent ([`UaConfig::serve_groups`](crate::ua::UaConfig::serve_groups)).
//! Joining is a SUBSCRIBE to the group with the `conference` event package (RFC 4575):
//! the subscription *is* the membership, so the server needs no new method, a member that
//! crashes leaves when its subscription expires, and every member learns who is in the
//! group from the same full documents, listed in the order they joined ([`Roster`]).
//!
//! Each member runs a [`Mesh`] over those documents. The rule that keeps exactly one call
//! per pair, with no glare: **a member calls everyone listed before it** and waits for
//! the calls of those listed after it. A newcomer is last, so it calls everyone already
//! there, and they answer, as in Sinch's groups. Its INVITEs carry the group's URI in the
//! [`GROUP_HEADER`], which is how a member tells a group leg (answered at once) from a
//! call for the user. A member that leaves the document is hung up on by everyone.
//!
//! RFC 4579's alternative, a focus that mixes, is what rooms ([`crate::conference`]) do;
//! a group costs the server only signalling, and each member hears each other one with
//! no server in the media path.
//!
//! ```
//! use sansip_core::group::{GroupId, Mesh, MeshAction};
//! use sansip_core::subscription::conference_info::ConferenceUser;
//!
//! let group = GroupId::new("friday").unwrap();
//! assert_eq!(group.user(), "group-friday");
//! let mut carol = Mesh::new(group, "sip:carol@example.com").unwrap();
//! let listed = ["alice", "bob", "carol"]
//!     .map(|u| ConferenceUser::connected(format!("sip:{u}@example.com"), None));
//! let actions = carol.update(&listed);
//! assert_eq!(
//!     actions,
//!     vec![
//!         MeshAction::Ready,
//!         MeshAction::Call("sip:alice@example.com".into()),
//!         MeshAction::Call("sip:bob@example.com".into()),
//!     ],
//!     "carol joined last: she calls the two before her"
//! );
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::conference::{RoomError, check_id, from_user_part, user_part};
use crate::message::NameAddr;
use crate::registrar::LocationService;
use crate::session::CallHandle;
use crate::subscription::SubscriptionHandle;
use crate::subscription::conference_info::{ConferenceInfo, ConferenceUser};

/// What starts the SIP user part of every group.
pub const GROUP_PREFIX: &str = "group-";

/// The header a member's INVITE to another member carries: the group's URI in `<>`.
pub const GROUP_HEADER: &str = "X-Group";

/// A group's name: the rules of a room id (1 to 64 characters, no control characters;
/// the rest is escaped in the URI).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(String);

impl GroupId {
    /// Checks `name`.
    pub fn new(name: &str) -> Result<GroupId, RoomError> {
        check_id(name).map(|()| GroupId(name.to_string()))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The SIP user part of the group: `group-` and the name, escaped where it must be.
    pub fn user(&self) -> String {
        user_part(GROUP_PREFIX, &self.0)
    }

    /// The group a SIP user part names, if it names one.
    pub fn from_user(user: &str) -> Option<GroupId> {
        GroupId::new(&from_user_part(GROUP_PREFIX, user)?).ok()
    }

    /// The group a URI (in `<>` or not, as a To header or [`GROUP_HEADER`] holds it)
    /// names, if it names one.
    pub fn from_uri(uri: &str) -> Option<GroupId> {
        let na = NameAddr::parse(uri.trim()).ok()?;
        GroupId::from_user(na.uri().user()?)
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who a URI is, for matching a document's entries with the From of a member's INVITE:
/// its address-of-record key, as the registrar keys bindings
/// ([`LocationService::aor_key`]: `user@host`, the host in lower case, parameters and
/// port left out).
fn member_key(uri: &str) -> Option<String> {
    LocationService::aor_key(uri.trim()).map(|k| k.to_string())
}

/// The server's side: who is in each group, in the order they joined, by their
/// subscriptions. Sans-IO: the user agent that serves groups feeds it subscriptions and
/// sends the documents it writes.
#[derive(Debug, Default)]
pub struct Roster {
    groups: BTreeMap<GroupId, Vec<Member>>,
    /// Each member's subscription → its group and the version of its last document.
    subs: HashMap<SubscriptionHandle, (GroupId, u32)>,
}

#[derive(Debug)]
struct Member {
    sub: SubscriptionHandle,
    uri: String,
    display: Option<String>,
}

/// What joining changed: whom to tell, and an older subscription of the same member that
/// the new one replaces (to be ended).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// Every member of the group, the newcomer included: each gets the new document.
    pub notify: Vec<SubscriptionHandle>,
    /// The member's earlier subscription, dropped from the group.
    pub replaced: Option<SubscriptionHandle>,
}

impl Roster {
    /// An empty roster.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `sub` is a membership.
    pub fn contains(&self, sub: SubscriptionHandle) -> bool {
        self.subs.contains_key(&sub)
    }

    /// How many members `group` has.
    pub fn len(&self, group: &GroupId) -> usize {
        self.groups.get(group).map_or(0, Vec::len)
    }

    /// Subscription `sub` of `uri` (its From) joins `group`, last in order. A member
    /// already in the group under another subscription (a phone that restarted) leaves
    /// its old place.
    pub fn join(
        &mut self,
        group: GroupId,
        sub: SubscriptionHandle,
        uri: &str,
        display: Option<String>,
    ) -> Joined {
        let key = member_key(uri);
        let members = self.groups.entry(group.clone()).or_default();
        let old = members
            .iter()
            .position(|m| m.sub == sub || (key.is_some() && member_key(&m.uri) == key));
        let replaced = old.map(|i| members.remove(i).sub).filter(|s| *s != sub);
        members.push(Member {
            sub,
            uri: uri.to_string(),
            display,
        });
        let notify = members.iter().map(|m| m.sub).collect();
        if let Some(r) = replaced {
            self.subs.remove(&r);
        }
        self.subs.insert(sub, (group, 0));
        Joined { notify, replaced }
    }

    /// Subscription `sub` ended: its member leaves. Returns the members left to tell.
    pub fn leave(&mut self, sub: SubscriptionHandle) -> Vec<SubscriptionHandle> {
        let Some((group, _)) = self.subs.remove(&sub) else {
            return Vec::new();
        };
        let Some(members) = self.groups.get_mut(&group) else {
            return Vec::new();
        };
        members.retain(|m| m.sub != sub);
        let rest: Vec<_> = members.iter().map(|m| m.sub).collect();
        if rest.is_empty() {
            self.groups.remove(&group);
        }
        rest
    }

    /// The next document for subscriber `sub`: its group's members in order, as the next
    /// version of its subscription; `domain` is the group's (ours).
    pub fn document(&mut self, sub: SubscriptionHandle, domain: &str) -> Option<String> {
        let (group, version) = self.subs.get_mut(&sub)?;
        *version += 1;
        let entity = format!("sip:{}@{domain}", group.user());
        let mut info = ConferenceInfo::new(entity, *version);
        info.subject = Some(group.to_string());
        for m in self.groups.get(group)? {
            info.users.push(ConferenceUser::connected(
                m.uri.clone(),
                m.display.as_deref(),
            ));
        }
        Some(info.to_xml())
    }
}

/// What a [`Mesh`] asks of the member's phone, and tells its application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MeshAction {
    /// We are in the group: the server listed us. Our local audio goes to every leg from
    /// now on (Sinch's `onGroupLocalMediaAdded`).
    Ready,
    /// Call this member (its URI, as listed), with [`GROUP_HEADER`]; tell the mesh the
    /// call's handle with [`Mesh::placed`].
    Call(String),
    /// Answer this member's call.
    Answer(CallHandle),
    /// Hang up this leg: its member left the group, or we are leaving.
    Hangup(CallHandle),
    /// A leg is up: we hear this member (Sinch's `onGroupRemoteCallAdded`).
    Added {
        /// The member, as listed or as its INVITE's From.
        member: String,
        /// The leg.
        call: CallHandle,
    },
    /// A leg that was up ended (Sinch's `onGroupRemoteCallRemoved`).
    Removed {
        /// The member.
        member: String,
        /// The leg.
        call: CallHandle,
    },
}

/// One member's side of a group: the legs it has, and what each new document asks.
/// See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Mesh {
    group: GroupId,
    me: String,
    /// The last document's members, by key, in order.
    listed: Vec<String>,
    ready: bool,
    legs: Vec<Leg>,
}

#[derive(Debug, Clone)]
struct Leg {
    key: String,
    member: String,
    call: Option<CallHandle>,
    /// Answered. A leg whose call failed or ended stays, with no call, while its member
    /// is listed: it is not called again until it leaves the group and comes back.
    up: bool,
}

impl Mesh {
    /// The mesh of `me` (our address-of-record) in `group`; `None` if `me` is no URI.
    pub fn new(group: GroupId, me: &str) -> Option<Mesh> {
        Some(Mesh {
            group,
            me: member_key(me)?,
            listed: Vec::new(),
            ready: false,
            legs: Vec::new(),
        })
    }

    /// The group.
    pub fn group(&self) -> &GroupId {
        &self.group
    }

    /// Whether `call` is one of our legs.
    pub fn owns(&self, call: CallHandle) -> bool {
        self.legs.iter().any(|l| l.call == Some(call))
    }

    /// The members we hear now, with their legs.
    pub fn connected(&self) -> impl Iterator<Item = (&str, CallHandle)> {
        self.legs
            .iter()
            .filter(|l| l.up)
            .filter_map(|l| Some((l.member.as_str(), l.call?)))
    }

    /// A full document of the group's members, in the order they joined.
    pub fn update(&mut self, users: &[ConferenceUser]) -> Vec<MeshAction> {
        let listed: Vec<(String, &str)> = users
            .iter()
            .filter(|u| u.status != "disconnected")
            .filter_map(|u| Some((member_key(&u.entity)?, u.entity.as_str())))
            .collect();
        let mut actions = Vec::new();
        let Some(mine) = listed.iter().position(|(k, _)| *k == self.me) else {
            // Not listed (yet, or any more): the server has not taken us.
            return actions;
        };
        if !self.ready {
            self.ready = true;
            actions.push(MeshAction::Ready);
        }
        for (key, uri) in &listed[..mine] {
            if !self.legs.iter().any(|l| l.key == *key) {
                self.legs.push(Leg {
                    key: key.clone(),
                    member: uri.to_string(),
                    call: None,
                    up: false,
                });
                actions.push(MeshAction::Call(uri.to_string()));
            }
        }
        let now_listed: Vec<String> = listed.into_iter().map(|(k, _)| k).collect();
        // Whoever left the document: their legs are hung up (and reported when they end),
        // and a failed call may be tried again once they come back.
        let was_listed = &self.listed;
        let mut hangups = Vec::new();
        self.legs.retain(|l| {
            if now_listed.contains(&l.key) || !was_listed.contains(&l.key) {
                return true;
            }
            match l.call {
                Some(call) => {
                    hangups.push(MeshAction::Hangup(call));
                    true
                }
                None => false,
            }
        });
        actions.extend(hangups);
        self.listed = now_listed;
        actions
    }

    /// The call asked for by [`MeshAction::Call`] to `member` was placed as `call`.
    pub fn placed(&mut self, member: &str, call: CallHandle) {
        let key = member_key(member);
        if let Some(l) = self.legs.iter_mut().find(|l| Some(&l.key) == key.as_ref()) {
            l.call = Some(call);
        }
    }

    /// A call for this group (it carries [`GROUP_HEADER`]) from `from` (its From): a
    /// member joining after us, or one whose document we have not seen yet. Answered.
    pub fn incoming(&mut self, call: CallHandle, from: &str) -> Vec<MeshAction> {
        let Some(key) = member_key(from) else {
            return Vec::new();
        };
        let member = NameAddr::parse(from)
            .map(|na| na.uri().to_string())
            .unwrap_or_else(|_| from.to_string());
        let mut actions = Vec::new();
        match self.legs.iter_mut().find(|l| l.key == key) {
            // Its earlier leg (a member that rejoined): replaced by this one.
            Some(l) => {
                if let Some(old) = l.call.replace(call) {
                    actions.push(MeshAction::Hangup(old));
                }
                l.up = false;
            }
            None => self.legs.push(Leg {
                key,
                member,
                call: Some(call),
                up: false,
            }),
        }
        actions.push(MeshAction::Answer(call));
        actions
    }

    /// Leg `call` is answered: media flows.
    pub fn answered(&mut self, call: CallHandle) -> Option<MeshAction> {
        let l = self.legs.iter_mut().find(|l| l.call == Some(call))?;
        l.up = true;
        Some(MeshAction::Added {
            member: l.member.clone(),
            call,
        })
    }

    /// Leg `call` ended, whoever ended it.
    pub fn ended(&mut self, call: CallHandle) -> Option<MeshAction> {
        let i = self.legs.iter().position(|l| l.call == Some(call))?;
        let leg = &mut self.legs[i];
        let was_up = leg.up;
        let member = leg.member.clone();
        if self.listed.contains(&leg.key) {
            // Still in the group: not called again until it leaves and comes back (or
            // calls us itself).
            leg.call = None;
            leg.up = false;
        } else {
            self.legs.remove(i);
        }
        was_up.then_some(MeshAction::Removed { member, call })
    }

    /// We leave: every leg is hung up.
    pub fn leave(&mut self) -> Vec<MeshAction> {
        self.ready = false;
        self.listed.clear();
        self.legs
            .drain(..)
            .filter_map(|l| l.call)
            .map(MeshAction::Hangup)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(names: &[&str]) -> Vec<ConferenceUser> {
        names
            .iter()
            .map(|u| ConferenceUser::connected(format!("sip:{u}@example.com"), None))
            .collect()
    }

    fn handle(n: u64) -> CallHandle {
        CallHandle(n)
    }

    #[test]
    fn each_pair_has_one_call_placed_by_whoever_joined_later() {
        let group = GroupId::new("g").unwrap();
        let names = ["a", "b", "c", "d"];
        let mut calls = Vec::new();
        for (i, me) in names.iter().enumerate() {
            let mut mesh = Mesh::new(group.clone(), &format!("sip:{me}@example.com")).unwrap();
            // Each sees the documents as members join, itself included from its turn on.
            for n in 1..=names.len() {
                for a in mesh.update(&users(&names[..n])) {
                    if let MeshAction::Call(to) = a {
                        calls.push((me.to_string(), to));
                    }
                }
            }
            assert!(mesh.ready, "{me} is listed from document {}", i + 1);
        }
        calls.sort();
        let want: Vec<(String, String)> = [
            ("b", "a"),
            ("c", "a"),
            ("c", "b"),
            ("d", "a"),
            ("d", "b"),
            ("d", "c"),
        ]
        .iter()
        .map(|(f, t)| (f.to_string(), format!("sip:{t}@example.com")))
        .collect();
        assert_eq!(calls, want, "six pairs, six calls, no glare");
    }

    #[test]
    fn legs_come_up_go_down_and_follow_the_documents() {
        let mut c = Mesh::new(GroupId::new("g").unwrap(), "<sip:c@Example.com>").unwrap();
        assert!(c.update(&users(&["a", "b"])).is_empty(), "not listed yet");
        let first = c.update(&users(&["a", "b", "c"]));
        assert_eq!(first.len(), 3);
        c.placed("sip:a@example.com", handle(1));
        c.placed("sip:b@example.com", handle(2));
        assert_eq!(
            c.answered(handle(1)),
            Some(MeshAction::Added {
                member: "sip:a@example.com".into(),
                call: handle(1)
            })
        );
        // b's call failed: not tried again while b stays listed.
        assert_eq!(c.ended(handle(2)), None);
        assert!(c.update(&users(&["a", "b", "c"])).is_empty());
        // d joins after us and calls; its INVITE may come before the document.
        assert_eq!(
            c.incoming(handle(3), "\"D\" <sip:d@example.com>;tag=x"),
            vec![MeshAction::Answer(handle(3))]
        );
        assert!(c.answered(handle(3)).is_some());
        assert!(c.update(&users(&["a", "b", "c", "d"])).is_empty());
        assert_eq!(c.connected().count(), 2);
        // a leaves the group: its leg is hung up; b leaves and comes back: called again.
        assert_eq!(
            c.update(&users(&["c", "d"])),
            vec![MeshAction::Hangup(handle(1))]
        );
        assert_eq!(
            c.ended(handle(1)),
            Some(MeshAction::Removed {
                member: "sip:a@example.com".into(),
                call: handle(1)
            })
        );
        assert!(
            c.update(&users(&["c", "d", "b"])).is_empty(),
            "b is after us now"
        );
        assert!(c.owns(handle(3)));
        assert_eq!(c.leave(), vec![MeshAction::Hangup(handle(3))]);
    }

    #[test]
    fn the_roster_keeps_join_order_and_replaces_a_restarted_member() {
        let g = GroupId::new("g").unwrap();
        let mut r = Roster::new();
        let s = |n| SubscriptionHandle(n);
        r.join(g.clone(), s(1), "sip:a@example.com", None);
        r.join(g.clone(), s(2), "sip:b@example.com", Some("Bob".into()));
        let j = r.join(g.clone(), s(3), "sip:a@example.com", None);
        assert_eq!(j.replaced, Some(s(1)));
        assert_eq!(j.notify, vec![s(2), s(3)]);
        let doc = r.document(s(3), "example.com").unwrap();
        let info = ConferenceInfo::parse(doc.as_bytes()).unwrap();
        let order: Vec<&str> = info.users.iter().map(|u| u.entity.as_str()).collect();
        assert_eq!(order, ["sip:b@example.com", "sip:a@example.com"]);
        assert_eq!(info.version, 1);
        assert_eq!(info.entity, "sip:group-g@example.com");
        assert_eq!(r.leave(s(2)), vec![s(3)]);
        assert_eq!(r.leave(s(3)), Vec::<SubscriptionHandle>::new());
        assert_eq!(r.len(&g), 0);
        assert!(!r.contains(s(1)));
    }

    #[test]
    fn names_and_uris() {
        let g = GroupId::new("team 7").unwrap();
        assert_eq!(g.user(), "group-team%207");
        assert_eq!(
            GroupId::from_uri("<sip:group-team%207@example.com>"),
            Some(g)
        );
        assert_eq!(GroupId::from_uri("sip:room-x@example.com"), None);
        assert_eq!(GroupId::new(""), Err(RoomError::Empty));
        assert_eq!(
            member_key("\"A\" <sip:a@EXAMPLE.com:5070;transport=tcp>;tag=1").as_deref(),
            Some("a@example.com")
        );
    }
}
