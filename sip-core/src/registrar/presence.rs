//! The embedded server's presence agent (RFC 3856 §6.6): it answers `presence`
//! subscriptions to its users with what they PUBLISH (the [`Compositor`]'s state), and
//! notifies every change — a new publication, a modification, a removal, an expiry.
//!
//! Each watcher is a notifier [`Subscription`], the same machine a phone runs; the agent
//! only carries out what it asks (its 200, its NOTIFYs, its timers) on the registrar's
//! transaction layer. Every watcher is allowed: there are no authorization rules here,
//! as there are none in Kamailio's `presence_xml` with `force_active`.
//!
//! [`Compositor`]: super::compositor::Compositor

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use smol_str::SmolStr;

use crate::dialog::{Dialog, DialogId, DialogState, Local};
use crate::flows::Flows;
use crate::ids::IdGenerator;
use crate::message::{Request, Response};
use crate::peer_map::{PeerMap, pair, peer_map};
use crate::subscription::pidf::{self, Presence};
use crate::subscription::{
    Action, Ctx, SubRequest, SubState, SubTimer, SubscribeIn, Subscription, SubscriptionHandle,
};
use crate::transaction::{TransactionLayer, TxId};
use crate::transport::{Flow, FlowId};
use crate::ua::UaConfig;
use crate::usage::Deadlines;

/// Watchers kept at most, so a flood of SUBSCRIBEs costs bounded memory.
const MAX_WATCHERS: usize = 10_000;

/// What a step of the agent borrows from the registrar.
pub(crate) struct Env<'a> {
    pub(crate) tx: &'a mut TransactionLayer,
    pub(crate) ids: &'a mut IdGenerator,
    pub(crate) flows: &'a Flows,
}

/// One watcher: its subscription, and whose presence it watches.
#[derive(Debug)]
struct Watcher {
    sub: Box<Subscription>,
    aor: SmolStr,
}

/// The presence agent; see the module docs.
#[derive(Debug)]
pub(crate) struct PresenceAgent {
    /// What the notifier machines read: the timers, and how we name ourselves.
    config: UaConfig,
    watchers: HashMap<SubscriptionHandle, Watcher>,
    /// Call-ID and our tag → the watcher.
    dialogs: PeerMap<(SmolStr, SmolStr), SubscriptionHandle>,
    /// Our NOTIFYs in flight → their watcher.
    notifies: HashMap<TxId, SubscriptionHandle>,
    timers: Deadlines<SubscriptionHandle, SubTimer>,
    next: u64,
}

/// Our Via and Contact on `flow`.
fn local(flows: &Flows, flow: FlowId) -> Local {
    let Some(info) = flows.get(flow).map(|f| f.info) else {
        return Local::none();
    };
    let t = info.transport;
    Local {
        via: format!("SIP/2.0/{t} {}", info.local).into(),
        contact: format!(
            "<sip:presence@{};transport={}>",
            info.local,
            t.to_string().to_ascii_lowercase()
        )
        .into(),
    }
}

/// The document a watcher of `aor` gets: the tuples, notes and activities of every live
/// publication (RFC 3903 §6 leaves composition to the server; this one unions them), or
/// a document without tuples when there is none.
pub(crate) fn compose(aor: &str, published: &[(String, Bytes)]) -> Bytes {
    let mut doc = Presence {
        entity: aor.to_string(),
        ..Presence::default()
    };
    for (_, body) in published {
        if let Ok(p) = Presence::parse(body) {
            doc.tuples.extend(p.tuples);
            doc.notes.extend(p.notes);
            doc.activities.extend(p.activities);
        }
    }
    Bytes::from(doc.to_xml())
}

impl PresenceAgent {
    pub(crate) fn new(domain: &str) -> Self {
        let mut config = UaConfig::new(format!("sip:presence@{domain}"));
        config.user_agent = Some("sansip-registrar".into());
        config.event_packages = vec!["presence".into()];
        Self {
            config,
            watchers: HashMap::new(),
            dialogs: peer_map(),
            notifies: HashMap::new(),
            timers: Deadlines::new(),
            next: 0,
        }
    }

    /// Whether `req` (with a To tag) belongs to one of our watchers' dialogs.
    pub(crate) fn owns(&self, req: &Request) -> bool {
        DialogId::parts_of_incoming(req)
            .ok()
            .flatten()
            .is_some_and(|(call_id, local, _)| self.dialogs.contains_key(pair(&(call_id, local))))
    }

    /// Whether `tx` is one of our NOTIFYs.
    pub(crate) fn sent(&self, tx: TxId) -> bool {
        self.notifies.contains_key(&tx)
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// A new `presence` SUBSCRIBE for `aor` on server transaction `tx`: 200, and the
    /// state at once (`active`, RFC 3856 §6.6 once authorized).
    pub(crate) fn subscribe(
        &mut self,
        now: Instant,
        env: Env<'_>,
        flow: Flow,
        tx: TxId,
        req: Request,
        (aor, state): (SmolStr, Bytes),
    ) -> Result<(), u16> {
        if self.watchers.len() >= MAX_WATCHERS {
            return Err(503);
        }
        let tag = env.ids.tag();
        let seq = env.ids.initial_cseq();
        let dialog =
            Dialog::uas(&req, &tag, seq, DialogState::Confirmed).map_err(|e| e.status())?;
        self.next += 1;
        let id = SubscriptionHandle(self.next);
        let mut out = VecDeque::new();
        let mut ctx = Ctx {
            now,
            ids: env.ids,
            config: &self.config,
            local: local(env.flows, flow.id),
            reliable: flow.transport.is_reliable(),
            out: &mut out,
        };
        let mut sub = Subscription::incoming(
            &mut ctx,
            SubscribeIn {
                id,
                flow: flow.id,
                tx,
                request: req,
                dialog,
            },
        );
        if !sub.is_finished() {
            sub.notify(
                &mut ctx,
                SubState::Active,
                Some((pidf::CONTENT_TYPE.into(), state)),
            );
        }
        self.dialogs.insert(sub.key().clone(), id);
        self.watchers.insert(
            id,
            Watcher {
                sub: Box::new(sub),
                aor,
            },
        );
        self.run(now, env.tx, env.flows, id, out);
        Ok(())
    }

    /// A request in a watcher's dialog (a refresh, an unsubscribe) on transaction `tx`.
    pub(crate) fn request_in(&mut self, now: Instant, env: Env<'_>, tx: TxId, req: &Request) {
        let id = DialogId::parts_of_incoming(req)
            .ok()
            .flatten()
            .and_then(|(call_id, local, _)| self.dialogs.get(pair(&(call_id, local))).copied());
        if let Some(id) = id {
            self.step(now, env, id, |s, ctx| s.handle_request(ctx, tx, req));
        }
    }

    /// The final response to our NOTIFY `tx`.
    pub(crate) fn response(&mut self, now: Instant, env: Env<'_>, tx: TxId, resp: &Response) {
        if resp.status().code() < 200 {
            return;
        }
        if let Some(id) = self.notifies.remove(&tx) {
            self.step(now, env, id, |s, ctx| {
                s.handle_response(ctx, SubRequest::Notify, resp)
            });
        }
    }

    /// Our NOTIFY `tx` got no answer, or its flow broke.
    pub(crate) fn failed(&mut self, now: Instant, env: Env<'_>, tx: TxId, timed_out: bool) {
        if let Some(id) = self.notifies.remove(&tx) {
            self.step(now, env, id, |s, ctx| s.request_failed(ctx, timed_out));
        }
    }

    /// `aor`'s state is now `state`: every watcher of it hears.
    pub(crate) fn changed(&mut self, now: Instant, env: Env<'_>, aor: &str, state: &Bytes) {
        let ids: Vec<SubscriptionHandle> = self
            .watchers
            .iter()
            .filter(|(_, w)| w.aor == aor)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let body = Some((pidf::CONTENT_TYPE.to_string(), state.clone()));
            let env = Env {
                tx: &mut *env.tx,
                ids: &mut *env.ids,
                flows: env.flows,
            };
            self.step(now, env, id, |s, ctx| s.notify(ctx, SubState::Active, body));
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant, env: Env<'_>) {
        while let Some((at, id, kind)) = self.timers.pop_due(now) {
            if self
                .watchers
                .get(&id)
                .is_some_and(|w| w.sub.timer(kind) == Some(at))
            {
                let env = Env {
                    tx: &mut *env.tx,
                    ids: &mut *env.ids,
                    flows: env.flows,
                };
                self.step(now, env, id, |s, ctx| s.handle_timeout(ctx, kind, at));
            }
        }
    }

    fn step(
        &mut self,
        now: Instant,
        env: Env<'_>,
        id: SubscriptionHandle,
        f: impl FnOnce(&mut Subscription, &mut Ctx<'_>),
    ) {
        let Some(w) = self.watchers.get_mut(&id) else {
            return;
        };
        let flow = w.sub.flow();
        let reliable = env
            .flows
            .get(flow)
            .is_some_and(|f| f.info.transport.is_reliable());
        let mut out = VecDeque::new();
        let mut ctx = Ctx {
            now,
            ids: env.ids,
            config: &self.config,
            local: local(env.flows, flow),
            reliable,
            out: &mut out,
        };
        f(&mut w.sub, &mut ctx);
        self.run(now, env.tx, env.flows, id, out);
    }

    /// Carries out what watcher `id` asked, and lets it go once it is over.
    fn run(
        &mut self,
        now: Instant,
        tx: &mut TransactionLayer,
        flows: &Flows,
        id: SubscriptionHandle,
        actions: VecDeque<Action>,
    ) {
        let Some(flow) = self.watchers.get(&id).map(|w| w.sub.flow()) else {
            return;
        };
        let flow = flows.get(flow).map(|f| Flow {
            id: flow,
            transport: f.info.transport,
        });
        for action in actions {
            match action {
                Action::Send(req, _) => {
                    let sent = flow.and_then(|f| tx.send_request(now, f, req).ok());
                    if let Some(t) = sent {
                        self.notifies.insert(t, id);
                    }
                }
                Action::Respond(t, resp) => {
                    let _ = tx.respond(now, t, &resp);
                }
                Action::Timer(at, kind) => self.timers.push(at, id, kind),
                // Nobody reads the agent's events; it sends nothing outside transactions.
                Action::Event(_)
                | Action::Transmit { .. }
                | Action::Cancel(..)
                | Action::Abandon(_) => {}
            }
        }
        if self.watchers.get(&id).is_some_and(|w| w.sub.is_finished())
            && let Some(w) = self.watchers.remove(&id)
        {
            self.dialogs.remove(w.sub.key());
            self.notifies.retain(|_, s| *s != id);
        }
    }
}
