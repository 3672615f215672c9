//! The registerer (RFC 3261 §10.2): keeps one contact bound at a registrar, refreshes it
//! before it lapses, answers digest challenges, and backs off when the registrar fails.
//!
//! A [`Registration`] builds REGISTER requests and reads their final responses; the caller
//! sends each request on a client transaction and feeds back the final response, or the
//! transaction's timeout or transport error. Refreshes and retries come out of
//! [`Registration::handle_timeout`] at [`Registration::poll_timeout`].
//!
//! Behaviour, where RFC 3261 leaves room:
//! - one Call-ID for the life of the registration and a CSeq that rises with every REGISTER
//!   (§10.2.4), so the registrar can order refreshes;
//! - the granted expiry is our own Contact's `expires` in the 200, else its Expires header,
//!   else what we asked for (§10.2.4);
//! - refresh at a random point between 50 % and 70 % of the granted time: well before the
//!   binding lapses even for short expiries, and spread so that many clients do not refresh
//!   together;
//! - 423 is retried at once with the registrar's Min-Expires (§10.2.8); 500 and 503 with
//!   Retry-After wait as told (§21.5); other failures, timeouts and lost connections are
//!   retried after a jittered exponential backoff (30 s doubling to 30 min, as RFC 5626 §4.5
//!   suggests); a refused password is final until the application registers again — never
//!   an endless retry.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use smol_str::SmolStr;

use crate::auth::{AuthError, Authenticator, DigestCredentials};
use crate::dialog::{Local, RequestHead};
use crate::ids::IdGenerator;
use crate::message::{
    Contact, Expires, HeaderName, Method, NameAddr, Request, Response, RetryAfter,
};

/// What to register and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationConfig {
    /// The registrar's Request-URI: the domain, no user part (§10.2), e.g. `sip:example.com`.
    pub registrar: String,
    /// Our address-of-record, e.g. `sip:alice@example.com`.
    pub aor: String,
    /// Requested expiry in seconds.
    pub expires: u32,
    /// RFC 5626 instance id (`urn:uuid:…`), sent as `+sip.instance`; with `reg_id` it makes
    /// the binding an outbound flow.
    pub instance_id: Option<String>,
    /// RFC 5626 `reg-id`.
    pub reg_id: Option<u32>,
    /// Extra headers for every REGISTER, e.g. `X-Tenant: blue`.
    pub extra_headers: Vec<(String, String)>,
    /// Extra Contact parameters, e.g. `+sip.ice` or `expires=300`, written as given after
    /// a `;`.
    pub contact_params: Vec<String>,
}

impl RegistrationConfig {
    /// Registering `aor` at the domain of its URI for 600 s.
    pub fn new(registrar: impl Into<String>, aor: impl Into<String>) -> Self {
        Self {
            registrar: registrar.into(),
            aor: aor.into(),
            expires: 600,
            instance_id: None,
            reg_id: None,
            extra_headers: Vec::new(),
            contact_params: Vec::new(),
        }
    }
}

/// Why a registration failed or ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistrationCause {
    /// The registrar answered with this final status.
    Rejected {
        /// The status code.
        status: u16,
        /// Its reason phrase.
        reason: String,
    },
    /// Our credentials were refused (a second challenge for an answered realm) or could not
    /// answer the challenge.
    Authentication(AuthError),
    /// No final response in time (timer F).
    RequestTimeout,
    /// The flow carrying the REGISTER failed.
    ConnectionError,
    /// The application unregistered.
    Unregistered,
}

impl std::fmt::Display for RegistrationCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RegistrationCause::Rejected { status, reason } => write!(f, "{status} {reason}"),
            RegistrationCause::Authentication(e) => write!(f, "authentication failed: {e}"),
            RegistrationCause::RequestTimeout => f.write_str("no response from the registrar"),
            RegistrationCause::ConnectionError => f.write_str("the connection failed"),
            RegistrationCause::Unregistered => f.write_str("unregistered"),
        }
    }
}

/// News for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistrationEvent {
    /// Bound, for this many seconds; `gruu` is the public GRUU the registrar assigned
    /// (RFC 5627), if any.
    Registered {
        /// Granted expiry in seconds.
        expires: u32,
        /// `pub-gruu` from our Contact in the 200.
        gruu: Option<String>,
    },
    /// No longer bound.
    Unregistered {
        /// Why.
        cause: RegistrationCause,
    },
    /// The binding is due for its refresh, which is going out now; it lapses in
    /// `expires_in` unless that refresh succeeds.
    Expiring {
        /// Time left on the current binding.
        expires_in: Duration,
    },
    /// A REGISTER failed; `retry_in` says when it is tried again, if ever.
    Failed {
        /// Why.
        cause: RegistrationCause,
        /// When the next attempt goes out by itself.
        retry_in: Option<Duration>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Registering,
    Unregistering { all: bool },
}

/// The registerer for one address-of-record and contact; see the [module docs](self).
#[derive(Debug)]
pub struct Registration {
    config: RegistrationConfig,
    call_id: SmolStr,
    from_tag: SmolStr,
    cseq: u32,
    requested: u32,
    phase: Phase,
    registered_until: Option<Instant>,
    next_attempt: Option<Instant>,
    failures: u32,
    /// Why the last attempt failed, for the Unregistered of a binding that lapses before
    /// a retry succeeds.
    last_failure: Option<RegistrationCause>,
    auth: Option<Authenticator>,
    events: VecDeque<RegistrationEvent>,
    /// The last REGISTER sent, for retries after a challenge or 423.
    last: Option<Request>,
    /// The public GRUU of the current binding (RFC 5627).
    gruu: Option<String>,
}

/// Shortest and longest backoff after a failure (RFC 5626 §4.5 uses 30 s base, 1800 s max).
const BACKOFF_BASE: u64 = 30;
const BACKOFF_MAX: u64 = 1800;

impl Registration {
    /// A registration that is not yet registered. `credentials` answer digest challenges.
    pub fn new(
        config: RegistrationConfig,
        credentials: Option<DigestCredentials>,
        ids: &mut IdGenerator,
    ) -> Self {
        Self {
            requested: config.expires,
            config,
            call_id: ids.call_id(),
            from_tag: ids.tag(),
            cseq: ids.initial_cseq(),
            phase: Phase::Idle,
            registered_until: None,
            next_attempt: None,
            failures: 0,
            last_failure: None,
            auth: credentials.map(Authenticator::new),
            events: VecDeque::new(),
            last: None,
            gruu: None,
        }
    }

    /// The public GRUU the registrar assigned to our live binding (RFC 5627), if any: the
    /// Contact our dialogs should carry (§4.3), since it reaches this instance even when
    /// our address does not.
    pub fn gruu(&self, now: Instant) -> Option<&str> {
        self.gruu.as_deref().filter(|_| self.is_registered(now))
    }

    /// Whether a binding is believed to be live at `now`.
    pub fn is_registered(&self, now: Instant) -> bool {
        self.registered_until.is_some_and(|t| t > now)
    }

    /// Starts (or restarts) registering: the REGISTER to send now.
    pub fn register(&mut self, local: &Local, ids: &mut IdGenerator) -> Request {
        self.phase = Phase::Registering;
        self.failures = 0;
        self.last_failure = None;
        self.next_attempt = None;
        self.build(local, ids, self.requested, false)
    }

    /// Removes our binding (`all`: every binding of the address-of-record, `Contact: *`,
    /// §10.2.2): the REGISTER to send now. Refreshes stop.
    pub fn unregister(&mut self, all: bool, local: &Local, ids: &mut IdGenerator) -> Request {
        self.phase = Phase::Unregistering { all };
        self.next_attempt = None;
        self.build(local, ids, 0, all)
    }

    /// Feeds the final response to the last REGISTER. Returns the REGISTER to send at once,
    /// if the response asks for one (a digest challenge, or 423 with Min-Expires).
    pub fn handle_response(
        &mut self,
        now: Instant,
        response: &Response,
        local: &Local,
        ids: &mut IdGenerator,
    ) -> Option<Request> {
        let code = response.status().code();
        if code < 200 || self.phase == Phase::Idle {
            return None;
        }
        match code {
            200..=299 => {
                self.on_success(now, response, local, ids);
                None
            }
            401 | 407 => self.on_challenge(now, response, ids),
            423 => self.on_too_brief(now, response, local, ids),
            _ => {
                let cause = RegistrationCause::Rejected {
                    status: code,
                    reason: response.status().reason().to_string(),
                };
                let retry_after = match code {
                    500 | 503 => response
                        .headers()
                        .get(HeaderName::RetryAfter)
                        .and_then(|v| RetryAfter::parse(v).ok())
                        .map(|r| Duration::from_secs(u64::from(r.seconds))),
                    _ => None,
                };
                self.fail(now, cause, retry_after, ids);
                None
            }
        }
    }

    /// The REGISTER's transaction ended without a final response: timer F, or the flow
    /// failed.
    pub fn handle_failure(&mut self, now: Instant, timed_out: bool, ids: &mut IdGenerator) {
        if self.phase == Phase::Idle {
            return;
        }
        let cause = if timed_out {
            RegistrationCause::RequestTimeout
        } else {
            RegistrationCause::ConnectionError
        };
        self.fail(now, cause, None, ids);
    }

    /// The flow to the registrar came back after a loss: register again now, as the old
    /// binding may point at a dead flow (RFC 5626 §4.4.1). `None` when not registering.
    pub fn reconnected(&mut self, local: &Local, ids: &mut IdGenerator) -> Option<Request> {
        (self.phase != Phase::Idle || self.registered_until.is_some())
            .then(|| self.register(local, ids))
    }

    /// Sends the refresh or retry that is due, if any.
    pub fn handle_timeout(
        &mut self,
        now: Instant,
        local: &Local,
        ids: &mut IdGenerator,
    ) -> Option<Request> {
        self.lapse(now);
        let due = self.next_attempt.is_some_and(|t| t <= now);
        if !due {
            return None;
        }
        self.next_attempt = None;
        if let Some(until) = self.registered_until
            && until > now
        {
            self.events.push_back(RegistrationEvent::Expiring {
                expires_in: until - now,
            });
        }
        self.phase = Phase::Registering;
        Some(self.build(local, ids, self.requested, false))
    }

    /// When [`Registration::handle_timeout`] has something to send, or the binding lapses
    /// while refreshes are failing.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let lapse = self.last_failure.as_ref().and(self.registered_until);
        [self.next_attempt, lapse].into_iter().flatten().min()
    }

    /// A binding whose refreshes failed until it expired is gone: say so once.
    fn lapse(&mut self, now: Instant) {
        if self.registered_until.is_some_and(|until| until <= now)
            && let Some(cause) = self.last_failure.clone()
        {
            self.registered_until = None;
            self.events
                .push_back(RegistrationEvent::Unregistered { cause });
        }
    }

    /// The next event for the application.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<RegistrationEvent> {
        self.events.pop_front()
    }

    /// The Call-ID every REGISTER of this registration carries.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    fn build(&mut self, local: &Local, ids: &mut IdGenerator, expires: u32, all: bool) -> Request {
        self.cseq += 1;
        let to = format!("<{}>", self.config.aor);
        let from = format!("<{}>;tag={}", self.config.aor, self.from_tag);
        let mut r = RequestHead {
            method: Method::Register,
            uri: &self.config.registrar,
            routes: &[],
            from: &from,
            to: &to,
            call_id: &self.call_id,
            cseq: self.cseq,
        }
        .build(local, ids);
        let h = r.headers_mut();
        if all {
            h.push(HeaderName::Contact, "*");
        } else {
            h.push(HeaderName::Contact, &self.contact(local));
        }
        h.push(HeaderName::Expires, &expires.to_string());
        let mut supported = String::from("path, gruu");
        if self.config.reg_id.is_some() {
            supported.push_str(", outbound");
        }
        h.push(HeaderName::Supported, &supported);
        for (name, value) in &self.config.extra_headers {
            // A bad header is skipped rather than sent; the UA checks them when the
            // application configures them, so only direct users of this type can get here.
            if h.push_named(name, value).is_err() {
                tracing::warn!(header = %name, "skipping an invalid REGISTER header");
            }
        }
        if let Some(auth) = &mut self.auth {
            // Reuse the nonce of the last challenge so a refresh is not challenged again.
            let _ = auth.preauthorize(&mut r, &ids.cnonce());
        }
        self.last = Some(r.clone());
        r
    }

    fn contact(&self, local: &Local) -> String {
        let mut c = local.contact.to_string();
        if let Some(id) = &self.config.instance_id {
            c.push_str(&format!(";+sip.instance=\"<{id}>\""));
        }
        if let Some(id) = self.config.reg_id {
            c.push_str(&format!(";reg-id={id}"));
        }
        for p in &self.config.contact_params {
            c.push(';');
            c.push_str(p);
        }
        c
    }

    fn on_success(
        &mut self,
        now: Instant,
        response: &Response,
        local: &Local,
        ids: &mut IdGenerator,
    ) {
        self.failures = 0;
        self.last_failure = None;
        if let Phase::Unregistering { .. } = self.phase {
            self.phase = Phase::Idle;
            self.registered_until = None;
            self.next_attempt = None;
            self.events.push_back(RegistrationEvent::Unregistered {
                cause: RegistrationCause::Unregistered,
            });
            return;
        }
        let (granted, gruu) = self.granted(response, local);
        if granted == 0 {
            // The registrar kept nothing for us: not registered, and nothing to refresh.
            self.phase = Phase::Idle;
            self.registered_until = None;
            self.events.push_back(RegistrationEvent::Unregistered {
                cause: RegistrationCause::Rejected {
                    status: response.status().code(),
                    reason: "no binding granted".into(),
                },
            });
            return;
        }
        let lifetime = Duration::from_secs(u64::from(granted));
        self.registered_until = Some(now + lifetime);
        // Refresh between 50 % and 70 % of the granted time.
        let ms = lifetime.as_millis() as u64;
        let at = ms / 2 + ids.below(ms / 5 + 1);
        self.next_attempt = Some(now + Duration::from_millis(at));
        self.gruu.clone_from(&gruu);
        self.events.push_back(RegistrationEvent::Registered {
            expires: granted,
            gruu,
        });
    }

    /// Our binding's expiry and GRUU in a 200: the Contact that is ours (by instance id when
    /// we sent one, else by URI), else the Expires header, else what we asked for.
    fn granted(&self, response: &Response, local: &Local) -> (u32, Option<String>) {
        let h = response.headers();
        let ours = NameAddr::parse(&local.contact)
            .ok()
            .map(|n| n.uri().to_string());
        for line in h.get_all(HeaderName::Contact) {
            let Ok(contact) = Contact::parse(line) else {
                continue;
            };
            for na in contact.iter() {
                let params = na.params();
                let mine = match &self.config.instance_id {
                    Some(id) => params
                        .get("+sip.instance")
                        .flatten()
                        .is_some_and(|v| v.trim_matches(['"', '<', '>']) == id),
                    None => ours.as_deref() == Some(na.uri().to_string().as_str()),
                };
                if mine && let Some(e) = na.expires() {
                    let gruu = params
                        .get("pub-gruu")
                        .flatten()
                        .map(|g| g.trim_matches('"').to_string());
                    return (e, gruu);
                }
            }
        }
        let header = h
            .get(HeaderName::Expires)
            .and_then(|v| Expires::parse(v).ok())
            .map(|e| e.0);
        (header.unwrap_or(self.requested), None)
    }

    fn on_challenge(
        &mut self,
        now: Instant,
        response: &Response,
        ids: &mut IdGenerator,
    ) -> Option<Request> {
        let mut retry = self.last.clone()?;
        let Some(auth) = &mut self.auth else {
            // Name the realm that asked, so "give a password for example.com" can be said.
            let realm = [HeaderName::WwwAuthenticate, HeaderName::ProxyAuthenticate]
                .into_iter()
                .flat_map(|name| response.headers().get_all(name))
                .flat_map(crate::message::Challenge::parse_list)
                .find_map(|c| c.ok().and_then(|c| c.realm).map(str::to_string))
                .unwrap_or_default();
            let cause = RegistrationCause::Authentication(AuthError::NoCredentials { realm });
            self.fail(now, cause, None, ids);
            return None;
        };
        self.cseq += 1;
        crate::dialog::rebranch(&mut retry, self.cseq, ids);
        match auth.authorize(response, &mut retry, &ids.cnonce()) {
            Ok(()) => {
                self.last = Some(retry.clone());
                Some(retry)
            }
            Err(e) => {
                // A refused password is final: no automatic retry (the loop guard's point).
                self.phase = Phase::Idle;
                self.registered_until = None;
                self.next_attempt = None;
                self.events.push_back(RegistrationEvent::Failed {
                    cause: RegistrationCause::Authentication(e),
                    retry_in: None,
                });
                None
            }
        }
    }

    fn on_too_brief(
        &mut self,
        now: Instant,
        response: &Response,
        local: &Local,
        ids: &mut IdGenerator,
    ) -> Option<Request> {
        let min = response
            .headers()
            .get(HeaderName::MinExpires)
            .and_then(|v| Expires::parse(v).ok())
            .map(|e| e.0);
        match min {
            // Only retry when the registrar asks for more than we asked; otherwise it is
            // confused and retrying would loop.
            Some(min) if min > self.requested => {
                self.requested = min;
                Some(self.build(local, ids, min, false))
            }
            _ => {
                let cause = RegistrationCause::Rejected {
                    status: 423,
                    reason: response.status().reason().to_string(),
                };
                self.fail(now, cause, None, ids);
                None
            }
        }
    }

    fn fail(
        &mut self,
        now: Instant,
        cause: RegistrationCause,
        retry_after: Option<Duration>,
        ids: &mut IdGenerator,
    ) {
        let unregistering = matches!(self.phase, Phase::Unregistering { .. });
        self.last_failure = (!unregistering).then(|| cause.clone());
        if unregistering && now >= self.registered_until.unwrap_or(now) {
            self.registered_until = None;
        }
        let retry_in = if unregistering {
            // Removing a binding is not worth retrying: it lapses by itself.
            self.phase = Phase::Idle;
            None
        } else {
            let backoff = retry_after.unwrap_or_else(|| {
                let ceiling = BACKOFF_BASE
                    .saturating_mul(1 << self.failures.min(10))
                    .min(BACKOFF_MAX);
                // Half to all of the ceiling, so clients that failed together spread out.
                let ms = ceiling * 1000;
                Duration::from_millis(ms / 2 + ids.below(ms / 2 + 1))
            });
            self.failures += 1;
            self.next_attempt = Some(now + backoff);
            Some(backoff)
        };
        self.events
            .push_back(RegistrationEvent::Failed { cause, retry_in });
        self.lapse(now);
    }
}
