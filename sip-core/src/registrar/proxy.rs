//! The embedded registrar and its stateless proxy (RFC 3261 §10.3, §16.11).
//!
//! REGISTER requests for our domain are challenged with digest (a fixed user list), then
//! applied to the [`LocationService`]. Every other request is forwarded without transaction
//! state: to the flow of the binding its Request-URI names (the address-of-record for an
//! initial request, a registered contact for an in-dialog one), with our Via on top and, for
//! dialog-creating requests, our Record-Route so the dialog's requests pass through us.
//! Responses come back on our Via, whose branch names the flow the request came in on.
//!
//! Stateless forwarding is enough for a demo and for tests: retransmissions are forwarded
//! again and the user agents' transactions absorb them. It is not a production proxy (no
//! forking, no DNS, no authentication of requests other than REGISTER and PUBLISH).

use std::collections::{HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use bytes::Bytes;
use smol_str::SmolStr;

use super::compositor::Compositor;
use super::presence::{self, Env, PresenceAgent};
use super::{ExpiryPolicy, LocationService};
use crate::auth::{DigestAlgorithm, DigestCredentials, DigestQop, challenge, verify};
use crate::conference::ROOM_PREFIX;
use crate::flows::{Arrival, Flows};
use crate::group::GROUP_PREFIX;
use crate::ids::IdGenerator;
use crate::message::{
    Credentials, Event as EventHeader, HeaderName, Headers, Host, Limits, MaxForwards, Message,
    Method, NameAddr, Request, Response, StatusCode, Uri, Via,
};
use crate::transaction::{
    RequestOutcome, ResponseOutcome, TimerConfig, TransactionLayer, TxEvent, TxId, TxOutput,
};
use crate::transport::{Flow, FlowId, FlowInfo, Transport};
use crate::ua::{Input, Output};

/// The registrar's domain, users and policies.
#[derive(Debug, Clone)]
pub struct RegistrarConfig {
    /// The domain it serves, also the digest realm, e.g. `example.com`.
    pub domain: String,
    /// User names and passwords allowed to register.
    pub users: Vec<(String, String)>,
    /// Expiry bounds.
    pub policy: ExpiryPolicy,
    /// T1, T2, T4 for its REGISTER transactions.
    pub timers: TimerConfig,
    /// Parser bounds.
    pub limits: Limits,
    /// The user whose registration serves conference rooms (the focus, RFC 4579) and
    /// group memberships ([`crate::group`]): a request for a `room-…` or `group-…` user
    /// of our domain that nobody registered goes to its binding (default: none).
    pub conference_user: Option<String>,
}

impl RegistrarConfig {
    /// A registrar for `domain` with no users yet.
    pub fn new(domain: impl Into<String>) -> Self {
        Self {
            domain: domain.into(),
            users: Vec::new(),
            policy: ExpiryPolicy::default(),
            timers: TimerConfig::default(),
            limits: Limits::default(),
            conference_user: None,
        }
    }
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegistrarStats {
    /// Requests forwarded.
    pub forwarded_requests: u64,
    /// Responses forwarded.
    pub forwarded_responses: u64,
    /// Messages dropped: unparseable, not ours to route, or for a vanished flow.
    pub dropped: u64,
}

/// The branch prefix of our Via: the flow number follows, then a hash of the request.
const BRANCH_PREFIX: &str = "z9hG4bKsp";

/// The registrar and proxy; see the [module docs](crate::registrar).
#[derive(Debug)]
pub struct Registrar {
    config: RegistrarConfig,
    users: Vec<DigestCredentials>,
    ids: IdGenerator,
    tx: TransactionLayer,
    loc: LocationService,
    compositor: Compositor,
    presence: PresenceAgent,
    /// The presence agent's NOTIFYs that failed (timed out or not), for it to hear.
    failed: Vec<(TxId, bool)>,
    flows: Flows,
    /// Nonces issued, oldest first, and the same as a set: a REGISTER's nonce is looked
    /// up on every request, and a linear scan of a thousand made registrations cost more
    /// the longer the registrar ran.
    nonces: VecDeque<SmolStr>,
    nonce_set: HashSet<SmolStr>,
    out: VecDeque<Output>,
    stats: RegistrarStats,
}

/// Nonces issued and still honoured; older ones get a fresh challenge.
const NONCES_KEPT: usize = 1024;

impl Registrar {
    /// A registrar whose nonces come from `seed`.
    pub fn new(config: RegistrarConfig, seed: u64) -> Self {
        let users = config
            .users
            .iter()
            .map(|(u, p)| {
                DigestCredentials::new(u.clone(), p.clone()).for_realm(config.domain.clone())
            })
            .collect();
        Self {
            users,
            ids: IdGenerator::new(seed),
            tx: TransactionLayer::new(config.timers),
            loc: LocationService::new(config.policy),
            compositor: Compositor::default(),
            presence: PresenceAgent::new(&config.domain),
            failed: Vec::new(),
            flows: Flows::new(config.limits),
            nonces: VecDeque::new(),
            nonce_set: HashSet::new(),
            out: VecDeque::new(),
            stats: RegistrarStats::default(),
            config,
        }
    }

    /// The flow for this transport and peer: the one already known, or a new one (a UDP
    /// peer seen for the first time, an accepted connection).
    pub fn flow_for(&mut self, info: FlowInfo) -> FlowId {
        match self.flows.find(&info) {
            Some(id) => id,
            None => self.flows.add(info, true, None),
        }
    }

    /// The location service, for inspection.
    pub fn location(&self) -> &LocationService {
        &self.loc
    }

    /// Counters.
    pub fn stats(&self) -> RegistrarStats {
        self.stats
    }

    /// The state published (RFC 3903) for `aor` and `event` that has not expired: the
    /// content type and body of each publication.
    pub fn published(&self, now: Instant, aor: &str, event: &str) -> Vec<(String, Bytes)> {
        LocationService::aor_key(aor)
            .map(|key| self.compositor.state(now, &key, event))
            .unwrap_or_default()
    }

    /// Forgets every binding and every published state, as a restarted registrar would.
    pub fn forget_bindings(&mut self) {
        self.loc.clear();
        self.compositor = Compositor::default();
        self.presence = PresenceAgent::new(&self.config.domain);
    }

    /// Feeds one input.
    pub fn handle_input(&mut self, now: Instant, input: Input) {
        match input {
            Input::Received { flow, bytes } => {
                let Some(f) = self.flows.flow(flow) else {
                    return;
                };
                let mut next = self.flows.receive(flow, bytes);
                while let Some(arrival) = next {
                    if let Arrival::Message(m) = &arrival {
                        self.flows.trace_received(flow, m);
                    }
                    match arrival {
                        Arrival::Message(Message::Request(r)) => self.request(now, f, r),
                        Arrival::Message(Message::Response(r)) => self.response(now, r),
                        Arrival::Ping => self.out.push_back(Output::Transmit {
                            flow,
                            bytes: Bytes::from_static(b"\r\n"),
                        }),
                        Arrival::Pong => {}
                        Arrival::Garbage => self.stats.dropped += 1,
                    }
                    next = self.flows.next_arrival(flow);
                }
            }
            Input::FlowClosed { flow } => {
                if let Some(state) = self.flows.remove(flow) {
                    self.tx.handle_flow_closed(Flow {
                        id: flow,
                        transport: state.info.transport,
                    });
                    self.drain_tx();
                    self.notify_failures(now);
                }
            }
            // The registrar opens no flows of its own: it answers on the ones it is given.
            Input::FlowOpened { .. } | Input::ConnectFailed { .. } => {}
        }
    }

    /// Fires what is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tx.handle_timeout(now);
        self.loc.handle_timeout(now);
        self.drain_tx();
        for (aor, event) in self.compositor.expire(now) {
            self.published_changed(now, &aor, &event);
        }
        let env = Env {
            tx: &mut self.tx,
            ids: &mut self.ids,
            flows: &self.flows,
        };
        self.presence.handle_timeout(now, env);
        self.drain_tx();
        self.notify_failures(now);
    }

    /// Tells the presence agent which of its NOTIFYs failed.
    fn notify_failures(&mut self, now: Instant) {
        while let Some((tx, timed_out)) = self.failed.pop() {
            let env = Env {
                tx: &mut self.tx,
                ids: &mut self.ids,
                flows: &self.flows,
            };
            self.presence.failed(now, env, tx, timed_out);
            self.drain_tx();
        }
    }

    /// The next thing to do.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        let out = self.out.pop_front();
        if let Some(Output::Transmit { flow, bytes }) = &out {
            self.flows.trace_sent(*flow, bytes);
        }
        out
    }

    /// The earliest deadline.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.tx.poll_timeout(),
            self.loc.poll_timeout(),
            self.compositor.poll_timeout(),
            self.presence.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn request(&mut self, now: Instant, flow: Flow, req: Request) {
        if let Err(e) = req.validate().and_then(|()| req.check_required()) {
            if let Some(resp) = crate::ua::reject_response(&req, &e, &self.ids.tag()) {
                self.transmit(flow.id, resp.to_bytes());
            }
            return;
        }
        if self.presence.owns(&req) {
            self.presence_request(now, flow, req);
            return;
        }
        let ours = self.is_ours(&req);
        let presence = *req.method() == Method::Subscribe
            && req
                .headers()
                .get(HeaderName::Event)
                .and_then(|v| EventHeader::parse(v).ok())
                .is_some_and(|e| e.package.eq_ignore_ascii_case("presence"));
        if ours && (presence || matches!(req.method(), Method::Register | Method::Publish)) {
            self.serve(now, flow, req);
        } else {
            self.forward(now, flow, req);
        }
    }

    /// A REGISTER addressed to our domain.
    fn is_ours(&self, req: &Request) -> bool {
        req.parsed_uri()
            .ok()
            .and_then(|u| u.host().map(|h| h.to_string()))
            .is_some_and(|h| h.eq_ignore_ascii_case(&self.config.domain))
    }

    /// A REGISTER, PUBLISH or presence SUBSCRIBE for our domain, answered by us once
    /// authenticated.
    fn serve(&mut self, now: Instant, flow: Flow, req: Request) {
        let tx = match self.tx.handle_request(now, flow, req.clone()) {
            Ok(RequestOutcome::New(tx)) => tx,
            _ => {
                self.drain_tx();
                return;
            }
        };
        let authorized = self.authorized(&req);
        if authorized && *req.method() == Method::Subscribe {
            self.watch(now, flow, tx, req);
            return;
        }
        let resp = if !authorized {
            self.challenge(&req)
        } else if *req.method() == Method::Publish {
            let resp = self.compositor.publish(now, &req, &mut self.ids);
            if resp.status().is_success()
                && let (Some(aor), Some(event)) = (
                    LocationService::aor_key(req.uri()),
                    req.headers()
                        .get(HeaderName::Event)
                        .and_then(|v| EventHeader::parse(v).ok()),
                )
            {
                let event = event.package.to_string();
                let mut resp = resp;
                resp.set_to_tag(&self.ids.tag());
                let _ = self.tx.respond(now, tx, &resp);
                self.drain_tx();
                self.published_changed(now, &aor, &event);
                return;
            }
            resp
        } else {
            match self.loc.register(now, &req, Some(flow.id)) {
                Ok(aor) => self.loc.ok_response(now, &req, &aor),
                Err(e) => e.response(&req),
            }
        };
        let mut resp = resp;
        resp.set_to_tag(&self.ids.tag());
        let _ = self.tx.respond(now, tx, &resp);
        self.drain_tx();
    }

    /// An authenticated presence SUBSCRIBE: a watcher of the address-of-record its
    /// Request-URI names.
    fn watch(&mut self, now: Instant, flow: Flow, tx: TxId, req: Request) {
        let Some(aor) = LocationService::aor_key(req.uri()) else {
            let resp = Response::from_request(&req, StatusCode::new(404));
            let _ = self.tx.respond(now, tx, &resp);
            self.drain_tx();
            return;
        };
        let state = presence::compose(
            &format!("sip:{aor}"),
            &self.compositor.state(now, &aor, "presence"),
        );
        let env = Env {
            tx: &mut self.tx,
            ids: &mut self.ids,
            flows: &self.flows,
        };
        if let Err(code) = self
            .presence
            .subscribe(now, env, flow, tx, req.clone(), (aor, state))
        {
            let mut resp = Response::from_request(&req, StatusCode::new(code));
            resp.set_to_tag(&self.ids.tag());
            let _ = self.tx.respond(now, tx, &resp);
        }
        self.drain_tx();
    }

    /// A request in one of the presence agent's dialogs.
    fn presence_request(&mut self, now: Instant, flow: Flow, req: Request) {
        let tx = match self.tx.handle_request(now, flow, req.clone()) {
            Ok(RequestOutcome::New(tx)) => tx,
            _ => {
                self.drain_tx();
                return;
            }
        };
        let env = Env {
            tx: &mut self.tx,
            ids: &mut self.ids,
            flows: &self.flows,
        };
        self.presence.request_in(now, env, tx, &req);
        self.drain_tx();
    }

    /// What `aor` published for `event` changed: its presence watchers hear the new state.
    fn published_changed(&mut self, now: Instant, aor: &str, event: &str) {
        if !event.eq_ignore_ascii_case("presence") {
            return;
        }
        let state = presence::compose(
            &format!("sip:{aor}"),
            &self.compositor.state(now, aor, "presence"),
        );
        let env = Env {
            tx: &mut self.tx,
            ids: &mut self.ids,
            flows: &self.flows,
        };
        self.presence.changed(now, env, aor, &state);
        self.drain_tx();
    }

    /// A 401 with a fresh nonce.
    fn challenge(&mut self, req: &Request) -> Response {
        let nonce = self.ids.cnonce();
        self.nonces.push_back(nonce.clone());
        self.nonce_set.insert(nonce.clone());
        if self.nonces.len() > NONCES_KEPT
            && let Some(old) = self.nonces.pop_front()
        {
            self.nonce_set.remove(&old);
        }
        let mut r = Response::from_request(req, StatusCode::new(401));
        let value = challenge(
            &self.config.domain,
            &nonce,
            DigestAlgorithm::MD5,
            &[DigestQop::Auth],
            None,
            false,
        );
        r.headers_mut().push(HeaderName::WwwAuthenticate, &value);
        r
    }

    /// Digest credentials for one of our nonces and a known user (RFC 3261 §22.4).
    fn authorized(&self, req: &Request) -> bool {
        let Some(value) = req.headers().get(HeaderName::Authorization) else {
            return false;
        };
        let Ok(c) = Credentials::parse(value) else {
            return false;
        };
        let fresh = c.nonce.is_some_and(|n| self.nonce_set.contains(n));
        let Some(user) = self.users.iter().find(|u| Some(u.username()) == c.username) else {
            return false;
        };
        fresh && verify(&c, req.method().as_str(), req.body(), user)
    }

    /// Stateless forwarding (RFC 3261 §16.6, §16.11).
    fn forward(&mut self, now: Instant, inbound: Flow, mut req: Request) {
        let max = req
            .headers()
            .get(HeaderName::MaxForwards)
            .and_then(|v| MaxForwards::parse(v).ok())
            .map_or(70, |m| m.0);
        if max == 0 {
            self.reply(inbound, &req, 483);
            return;
        }
        // §16.4: a Route naming us has done its job.
        let ours = req
            .headers()
            .get(HeaderName::Route)
            .is_some_and(|r| self.is_our_route(r));
        if ours {
            remove_first_value(req.headers_mut(), HeaderName::Route, |line| {
                NameAddr::parse_list(line)
                    .skip(1)
                    .filter_map(Result::ok)
                    .map(|n| n.to_string())
                    .collect()
            });
        }
        let Some((target, out)) = self.target(now, &req) else {
            let code = if *req.method() == Method::Ack {
                0
            } else {
                self.unreachable_status(&req)
            };
            if code != 0 {
                self.reply(inbound, &req, code);
            }
            self.stats.dropped += u64::from(code == 0);
            return;
        };
        let Some(out_flow) = self.flows.get(out).map(|s| s.info) else {
            self.reply(inbound, &req, 480);
            return;
        };
        let branch = self.branch(inbound.id, &req);
        let dialog_creating = matches!(
            req.method(),
            Method::Invite | Method::Subscribe | Method::Refer
        );
        req.headers_mut()
            .set(HeaderName::MaxForwards, &(max - 1).to_string());
        if dialog_creating {
            let rr = format!("<sip:{};lr>", out_flow.local);
            req.headers_mut().insert_first(HeaderName::RecordRoute, &rr);
        }
        if let Some(t) = target {
            req.set_uri(&t);
        }
        let via = format!(
            "SIP/2.0/{} {};branch={branch}",
            out_flow.transport, out_flow.local
        );
        req.headers_mut().insert_first(HeaderName::Via, &via);
        self.stats.forwarded_requests += 1;
        self.transmit(out, req.to_bytes());
    }

    /// Where a request goes: a new Request-URI (for an address-of-record) and the flow, or
    /// just the flow (an in-dialog request to a registered contact).
    fn target(&self, now: Instant, req: &Request) -> Option<(Option<String>, FlowId)> {
        let uri = req.uri();
        if let Some(aor) = LocationService::aor_key(uri) {
            // The most recent binding wins: no forking here.
            let newest = |aor: &str| {
                self.loc
                    .lookup(now, aor)
                    .filter(|b| b.flow.is_some())
                    .max_by_key(|b| b.expires_at)
            };
            if let Some(b) = newest(&aor).or_else(|| newest(&self.focus_for(&aor)?)) {
                return Some((Some(b.uri.clone()), b.flow?));
            }
        }
        let parsed = Uri::parse(uri).ok()?;
        if let Some(flow) = self
            .loc
            .find_contact(now, &parsed.to_string())
            .and_then(|b| b.flow)
        {
            return Some((None, flow));
        }
        // A UA that never registered but made a dialog through us over UDP (a watcher's
        // SUBSCRIBE, a call): its Contact is the address it sent from.
        let ip = match parsed.host()? {
            Host::Ipv4(a) => IpAddr::V4(a),
            Host::Ipv6(a) => IpAddr::V6(a),
            Host::Domain(_) => return None,
        };
        if parsed
            .transport()
            .is_some_and(|t| !t.eq_ignore_ascii_case("udp"))
        {
            return None;
        }
        let remote = SocketAddr::new(ip, parsed.port().unwrap_or(5060));
        Some((None, self.flows.find_remote(Transport::Udp, remote)?))
    }

    /// The focus's address-of-record when `aor` is a room or a group of our domain.
    fn focus_for(&self, aor: &str) -> Option<SmolStr> {
        let focus = self.config.conference_user.as_deref()?;
        // The key's user is unescaped already: a room is any `room-…` user, a group any
        // `group-…` one.
        let (user, host) = aor.rsplit_once('@')?;
        let room = [ROOM_PREFIX, GROUP_PREFIX]
            .iter()
            .any(|p| user.len() > p.len() && user.starts_with(p));
        let domain = &self.config.domain;
        (room && host.eq_ignore_ascii_case(domain))
            .then(|| smol_str::format_smolstr!("{focus}@{}", domain.to_ascii_lowercase()))
    }

    /// 404 for a user we do not know, 480 for one who is not registered right now.
    fn unreachable_status(&self, req: &Request) -> u16 {
        let user = req
            .parsed_uri()
            .ok()
            .and_then(|u| u.user().map(str::to_string));
        match user {
            Some(u) if self.users.iter().any(|c| c.username() == u) => 480,
            _ => 404,
        }
    }

    fn is_our_route(&self, route: &str) -> bool {
        let Some(first) = NameAddr::parse_list(route).next().and_then(Result::ok) else {
            return false;
        };
        let uri = first.uri();
        let Some(host) = uri.host().map(|h| h.to_string()) else {
            return false;
        };
        let hostport = match uri.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        host.eq_ignore_ascii_case(&self.config.domain)
            || self.flows.any_local(|local| local.to_string() == hostport)
    }

    /// Our branch: the inbound flow, then a hash of the request's own branch so that a
    /// retransmission, its CANCEL and the ACK for a non-2xx all get the same one (§16.11).
    fn branch(&self, inbound: FlowId, req: &Request) -> String {
        let theirs = req
            .top_via()
            .ok()
            .and_then(|v| v.branch().map(str::to_string))
            .unwrap_or_default();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in theirs.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{BRANCH_PREFIX}{}x{h:016x}", inbound.0)
    }

    /// A response to something we forwarded: drop our Via and send it back on the flow its
    /// branch names.
    fn response(&mut self, now: Instant, mut resp: Response) {
        if resp.validate().is_err() {
            self.stats.dropped += 1;
            return;
        }
        // The presence agent's NOTIFYs are our own transactions.
        match self.tx.handle_response(now, &resp) {
            ResponseOutcome::Pass(tx) if self.presence.sent(tx) => {
                let env = Env {
                    tx: &mut self.tx,
                    ids: &mut self.ids,
                    flows: &self.flows,
                };
                self.presence.response(now, env, tx, &resp);
                self.drain_tx();
                return;
            }
            ResponseOutcome::Pass(_) | ResponseOutcome::Absorbed => {
                self.drain_tx();
                return;
            }
            ResponseOutcome::Stray => {}
        }
        let flow = resp
            .top_via()
            .ok()
            .and_then(|v| v.branch().map(str::to_string))
            .and_then(|b| {
                let rest = b.strip_prefix(BRANCH_PREFIX)?;
                rest.split('x').next()?.parse::<u64>().ok()
            });
        let Some(flow) = flow.map(FlowId) else {
            // A response to our own REGISTER transaction? We send none, so it is stray.
            self.stats.dropped += 1;
            return;
        };
        remove_first_value(resp.headers_mut(), HeaderName::Via, |line| {
            Via::parse_list(line)
                .skip(1)
                .filter_map(Result::ok)
                .map(|v| v.to_string())
                .collect()
        });
        self.stats.forwarded_responses += 1;
        self.transmit(flow, resp.to_bytes());
    }

    fn reply(&mut self, flow: Flow, req: &Request, code: u16) {
        if *req.method() == Method::Ack {
            return;
        }
        let mut r = Response::from_request(req, StatusCode::new(code));
        r.set_to_tag(&self.ids.tag());
        self.transmit(flow.id, r.to_bytes());
    }

    fn transmit(&mut self, flow: FlowId, bytes: Bytes) {
        if self.flows.get(flow).is_none() {
            self.stats.dropped += 1;
            return;
        }
        self.out.push_back(Output::Transmit { flow, bytes });
    }

    fn drain_tx(&mut self) {
        while let Some(o) = self.tx.poll_output() {
            match o {
                TxOutput::Transmit { flow, bytes } => self.out.push_back(Output::Transmit {
                    flow: flow.id,
                    bytes,
                }),
                TxOutput::Event(TxEvent::Timeout { tx, .. }) if self.presence.sent(tx) => {
                    self.failed.push((tx, true));
                }
                TxOutput::Event(TxEvent::TransportError { tx }) if self.presence.sent(tx) => {
                    self.failed.push((tx, false));
                }
                TxOutput::Event(_) => {}
            }
        }
    }
}

/// Removes the first value of a list header whose first line may hold several (RFC 3261
/// §7.3.1); `rest` lists the values of that line after the first.
fn remove_first_value(h: &mut Headers, name: HeaderName, rest: impl Fn(&str) -> Vec<String>) {
    let Some(line) = h.get(name).map(str::to_string) else {
        return;
    };
    let rest = rest(&line);
    h.remove_first(name);
    if !rest.is_empty() {
        h.insert_first(name, &rest.join(", "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A `tracing` writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // any instant will do
    fn the_sip_trace_shows_what_the_registrar_receives_and_sends() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let mut r = Registrar::new(crate::registrar::RegistrarConfig::new("example.com"), 1);
            let flow = r.flow_for(FlowInfo {
                transport: crate::transport::Transport::Udp,
                local: "127.0.0.1:5060".parse().unwrap(),
                remote: "127.0.0.1:5070".parse().unwrap(),
            });
            let register = "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\nMax-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=a\r\nTo: <sip:alice@example.com>\r\nCall-ID: trace-1\r\nCSeq: 1 REGISTER\r\nContact: <sip:alice@127.0.0.1:5070>\r\nAuthorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"n\", uri=\"sip:example.com\", response=\"0123456789abcdef0123456789abcdef\"\r\nContent-Length: 0\r\n\r\n";
            r.handle_input(
                crate::test_clock::origin(),
                Input::Received {
                    flow,
                    bytes: Bytes::from_static(register.as_bytes()),
                },
            );
            while r.poll_output().is_some() {}
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("REGISTER sip:example.com SIP/2.0"), "{text}");
        assert!(text.contains("SIP/2.0 401"), "{text}");
        assert!(
            text.contains("direction=\"received\"") && text.contains("direction=\"sent\""),
            "{text}"
        );
        assert!(!text.contains("0123456789abcdef"), "{text}");
    }
}
