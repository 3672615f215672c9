//! The registerer against a small registrar made of the real location service and digest
//! verification, exchanging parsed wire bytes.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use sansip_core::auth::{
    AuthError, DigestAlgorithm, DigestCredentials, DigestQop, challenge, verify,
};
use sansip_core::dialog::Local;
use sansip_core::ids::IdGenerator;
use sansip_core::message::{Credentials, HeaderName, Message, Request, Response, StatusCode};
use sansip_core::registrar::{ExpiryPolicy, LocationService};
use sansip_core::registration::{
    Registration, RegistrationCause, RegistrationConfig, RegistrationEvent,
};

const REALM: &str = "example.com";

/// Any instant works as the origin: the tests only add to it.
#[allow(clippy::disallowed_methods)]
fn start() -> Instant {
    Instant::now()
}

fn local() -> Local {
    Local {
        via: "SIP/2.0/UDP 192.0.2.10:5060".into(),
        contact: "<sip:alice@192.0.2.10:5060>".into(),
    }
}

/// A registrar: digest check (a fresh nonce per challenge), then the location service.
struct TestRegistrar {
    loc: LocationService,
    user: DigestCredentials,
    nonces: u32,
    /// Answer every REGISTER with this instead, when set.
    canned: Option<Response>,
    challenges: u32,
}

impl TestRegistrar {
    fn new(policy: ExpiryPolicy) -> Self {
        Self {
            loc: LocationService::new(policy),
            user: DigestCredentials::new("alice", "secret").for_realm(REALM),
            nonces: 0,
            canned: None,
            challenges: 0,
        }
    }

    fn handle(&mut self, now: Instant, req: &Request) -> Response {
        // Through the wire and back, as a real registrar would see it.
        let Message::Request(req) = Message::parse(req.to_bytes()).expect("our REGISTER parses")
        else {
            panic!("a request")
        };
        if let Some(c) = &self.canned {
            let mut r = Response::from_request(&req, c.status().clone());
            for (n, v) in c.headers().iter() {
                r.headers_mut().push_named(n, v).unwrap();
            }
            return r;
        }
        let authorized = req
            .headers()
            .get(HeaderName::Authorization)
            .and_then(|v| Credentials::parse(v).ok())
            .is_some_and(|c| verify(&c, "REGISTER", req.body(), &self.user));
        if !authorized {
            self.nonces += 1;
            self.challenges += 1;
            let mut r = Response::from_request(&req, StatusCode::new(401));
            let value = challenge(
                REALM,
                &format!("n{}", self.nonces),
                DigestAlgorithm::SHA256,
                &[DigestQop::Auth],
                None,
                false,
            );
            r.headers_mut().push(HeaderName::WwwAuthenticate, &value);
            r.set_to_tag("reg");
            return r;
        }
        let mut r = match self.loc.register(now, &req, None) {
            Ok(aor) => self.loc.ok_response(now, &req, &aor),
            Err(e) => e.response(&req),
        };
        r.set_to_tag("reg");
        r
    }
}

struct Client {
    reg: Registration,
    ids: IdGenerator,
}

impl Client {
    fn new(expires: u32, password: &str) -> Self {
        let mut ids = IdGenerator::new(7);
        let mut config = RegistrationConfig::new("sip:example.com", "sip:alice@example.com");
        config.expires = expires;
        let reg = Registration::new(
            config,
            Some(DigestCredentials::new("alice", password)),
            &mut ids,
        );
        Self { reg, ids }
    }

    /// Sends `req` and every immediate retry, answering each with the registrar; returns how
    /// many REGISTERs went out.
    fn exchange(&mut self, now: Instant, registrar: &mut TestRegistrar, req: Request) -> u32 {
        let mut sent = 1;
        let mut next = Some(req);
        while let Some(r) = next.take() {
            let resp = registrar.handle(now, &r);
            next = self
                .reg
                .handle_response(now, &resp, &local(), &mut self.ids);
            sent += u32::from(next.is_some());
            assert!(sent < 10, "no endless retry");
        }
        sent
    }

    fn events(&mut self) -> Vec<RegistrationEvent> {
        std::iter::from_fn(|| self.reg.poll_event()).collect()
    }
}

#[test]
fn registers_through_a_challenge_and_refreshes_without_one() {
    let now = start();
    let mut registrar = TestRegistrar::new(ExpiryPolicy::default());
    let mut c = Client::new(600, "secret");
    let first = c.reg.register(&local(), &mut c.ids);
    let first_cseq = first.cseq().unwrap().seq;
    assert_eq!(
        first.uri(),
        "sip:example.com",
        "no user part in the registrar URI"
    );
    assert_eq!(
        c.exchange(now, &mut registrar, first),
        2,
        "REGISTER, 401, REGISTER"
    );
    assert_eq!(
        c.events(),
        [RegistrationEvent::Registered {
            expires: 600,
            gruu: None
        }]
    );
    assert!(c.reg.is_registered(now));
    assert_eq!(registrar.loc.lookup(now, "alice@example.com").count(), 1);

    // The refresh falls between 50 % and 70 % of 600 s.
    let at = c.reg.poll_timeout().expect("a refresh is scheduled");
    assert!(
        at >= now + Duration::from_secs(300) && at <= now + Duration::from_secs(420),
        "{:?}",
        at - now
    );
    assert!(
        c.reg
            .handle_timeout(at - Duration::from_millis(1), &local(), &mut c.ids)
            .is_none()
    );
    let refresh = c
        .reg
        .handle_timeout(at, &local(), &mut c.ids)
        .expect("refresh due");
    assert_eq!(
        refresh.call_id().unwrap(),
        c.reg.call_id(),
        "same Call-ID across refreshes"
    );
    assert!(
        refresh.cseq().unwrap().seq > first_cseq + 1,
        "CSeq keeps rising"
    );
    assert!(
        refresh.headers().contains(HeaderName::Authorization),
        "nonce reused"
    );
    let challenges = registrar.challenges;
    assert_eq!(
        c.exchange(at, &mut registrar, refresh),
        1,
        "the refresh pays no new 401"
    );
    assert_eq!(registrar.challenges, challenges);
    assert!(matches!(
        c.events()[..],
        [
            RegistrationEvent::Expiring { .. },
            RegistrationEvent::Registered { expires: 600, .. }
        ]
    ));
}

#[test]
fn a_wrong_password_fails_once_and_does_not_retry() {
    let now = start();
    let mut registrar = TestRegistrar::new(ExpiryPolicy::default());
    let mut c = Client::new(600, "wrong");
    let req = c.reg.register(&local(), &mut c.ids);
    assert_eq!(c.exchange(now, &mut registrar, req), 2);
    let events = c.events();
    assert!(
        matches!(
            &events[..],
            [RegistrationEvent::Failed {
                cause: RegistrationCause::Authentication(AuthError::Rejected { status: 401, .. }),
                retry_in: None
            }]
        ),
        "{events:?}"
    );
    assert_eq!(
        c.reg.poll_timeout(),
        None,
        "nothing scheduled: no endless retry"
    );
    assert!(!c.reg.is_registered(now));
}

#[test]
fn interval_too_brief_is_retried_with_min_expires() {
    let now = start();
    let mut registrar = TestRegistrar::new(ExpiryPolicy {
        min: 1200,
        ..ExpiryPolicy::default()
    });
    let mut c = Client::new(600, "secret");
    let req = c.reg.register(&local(), &mut c.ids);
    assert_eq!(
        c.exchange(now, &mut registrar, req),
        3,
        "401, 423, then accepted"
    );
    assert_eq!(
        c.events(),
        [RegistrationEvent::Registered {
            expires: 1200,
            gruu: None
        }]
    );
}

#[test]
fn service_unavailable_waits_for_retry_after() {
    let now = start();
    let mut registrar = TestRegistrar::new(ExpiryPolicy::default());
    let mut busy = Response::new(StatusCode::new(503));
    busy.headers_mut().push(HeaderName::RetryAfter, "120");
    registrar.canned = Some(busy);
    let mut c = Client::new(600, "secret");
    let req = c.reg.register(&local(), &mut c.ids);
    c.exchange(now, &mut registrar, req);
    let events = c.events();
    assert!(
        matches!(
            &events[..],
            [RegistrationEvent::Failed { cause: RegistrationCause::Rejected { status: 503, .. }, retry_in: Some(d) }] if *d == Duration::from_secs(120)
        ),
        "{events:?}"
    );
    assert_eq!(c.reg.poll_timeout(), Some(now + Duration::from_secs(120)));
    registrar.canned = None;
    let retry = c
        .reg
        .handle_timeout(now + Duration::from_secs(120), &local(), &mut c.ids)
        .unwrap();
    c.exchange(now + Duration::from_secs(120), &mut registrar, retry);
    assert!(matches!(
        c.events()[..],
        [RegistrationEvent::Registered { .. }]
    ));
}

#[test]
fn timeouts_back_off_exponentially_with_jitter() {
    let now = start();
    let mut c = Client::new(600, "secret");
    let _ = c.reg.register(&local(), &mut c.ids);
    let mut t = now;
    let mut ceilings = Vec::new();
    for _ in 0..8 {
        c.reg.handle_failure(t, true, &mut c.ids);
        let next = c.reg.poll_timeout().unwrap();
        ceilings.push((next - t).as_secs_f64());
        t = next;
        let _ = c.reg.handle_timeout(t, &local(), &mut c.ids).unwrap();
    }
    // Each wait is half to all of 30 s · 2ⁿ, capped at 1800 s.
    for (n, wait) in ceilings.iter().enumerate() {
        let ceiling = (30.0 * f64::from(1u32 << n)).min(1800.0);
        assert!(
            *wait >= ceiling / 2.0 && *wait <= ceiling,
            "attempt {n}: {wait} s vs ceiling {ceiling}"
        );
    }
    assert!(c.events().iter().all(|e| matches!(
        e,
        RegistrationEvent::Failed {
            cause: RegistrationCause::RequestTimeout,
            retry_in: Some(_)
        }
    )));
}

#[test]
fn unregister_and_unregister_all() {
    let now = start();
    let mut registrar = TestRegistrar::new(ExpiryPolicy::default());
    let mut c = Client::new(600, "secret");
    let req = c.reg.register(&local(), &mut c.ids);
    c.exchange(now, &mut registrar, req);
    c.events();
    let bye = c.reg.unregister(false, &local(), &mut c.ids);
    assert_eq!(bye.headers().get(HeaderName::Expires), Some("0"));
    c.exchange(now, &mut registrar, bye);
    assert_eq!(
        c.events(),
        [RegistrationEvent::Unregistered {
            cause: RegistrationCause::Unregistered
        }]
    );
    assert!(registrar.loc.is_empty());
    assert_eq!(c.reg.poll_timeout(), None, "no refresh after unregistering");

    let req = c.reg.register(&local(), &mut c.ids);
    c.exchange(now, &mut registrar, req);
    let all = c.reg.unregister(true, &local(), &mut c.ids);
    assert_eq!(all.headers().get(HeaderName::Contact), Some("*"));
    c.exchange(now, &mut registrar, all);
    assert!(registrar.loc.is_empty());
}

#[test]
fn the_granted_expiry_is_read_from_our_own_contact() {
    let now = start();
    let mut c = Client::new(600, "secret");
    let req = c.reg.register(&local(), &mut c.ids);
    let mut ok = Response::from_request(&req, StatusCode::new(200));
    ok.headers_mut()
        .push(HeaderName::Contact, "<sip:alice@198.51.100.1>;expires=3600");
    ok.headers_mut().push(
        HeaderName::Contact,
        "<sip:alice@192.0.2.10:5060>;expires=120;pub-gruu=\"sip:alice@example.com;gr=urn:uuid:1\"",
    );
    ok.headers_mut().push(HeaderName::Expires, "900");
    assert!(
        c.reg
            .handle_response(now, &ok, &local(), &mut c.ids)
            .is_none()
    );
    assert_eq!(
        c.events(),
        [RegistrationEvent::Registered {
            expires: 120,
            gruu: Some("sip:alice@example.com;gr=urn:uuid:1".into())
        }]
    );
}

#[test]
fn a_binding_whose_refreshes_fail_until_it_expires_is_reported_unregistered() {
    let now = start();
    let mut registrar = TestRegistrar::new(ExpiryPolicy::default());
    let mut c = Client::new(600, "secret");
    let first = c.reg.register(&local(), &mut c.ids);
    c.exchange(now, &mut registrar, first);
    c.events();
    // Every refresh from now on times out; the binding lapses at 600 s.
    let mut t = now;
    let mut lapsed_at = None;
    while t < now + Duration::from_secs(3600) && lapsed_at.is_none() {
        let Some(next) = c.reg.poll_timeout() else {
            break;
        };
        t = next;
        if c.reg.handle_timeout(t, &local(), &mut c.ids).is_some() {
            c.reg.handle_failure(t, true, &mut c.ids);
        }
        if c.events().iter().any(|e| {
            matches!(
                e,
                RegistrationEvent::Unregistered {
                    cause: RegistrationCause::RequestTimeout
                }
            )
        }) {
            lapsed_at = Some(t);
        }
    }
    let lapsed_at = lapsed_at.expect("the lapse is reported");
    assert!(
        lapsed_at >= now + Duration::from_secs(600),
        "{:?}",
        lapsed_at - now
    );
    assert!(!c.reg.is_registered(lapsed_at));
    // Reported once; the retries go on.
    assert!(c.reg.poll_timeout().is_some());
}
