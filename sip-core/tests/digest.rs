//! Digest authentication end to end: a client [`Authenticator`] against a small registrar
//! built on [`challenge`] and [`verify`], over real `Request` and `Response` values.
//!
//! The registrar keeps what `verify` leaves to its caller (RFC 7616 §3.4.5, §5.3): the nonces
//! it issued, which of them expired, and the last nc seen per nonce, so nonce reuse and
//! stale handling are exercised for real.

use std::collections::HashMap;

use sansip_core::auth::{
    AuthError, Authenticator, DigestAlgorithm, DigestCredentials, DigestQop, HashFunction,
    challenge, ha1, verify,
};
use sansip_core::ids::IdGenerator;
use sansip_core::message::{Credentials, HeaderName, Method, Request, Response, StatusCode};

const REALM: &str = "example.com";
const URI: &str = "sip:example.com";

/// A registrar with one user table, answering 200 or a challenge.
struct Registrar {
    users: Vec<DigestCredentials>,
    /// Offered in this order, one header line each.
    algorithms: Vec<DigestAlgorithm>,
    qop: Vec<DigestQop>,
    /// 401 (registrar) or 407 (proxy).
    status: u16,
    /// Issued and still fresh nonces, with the last nc accepted for each.
    nonces: HashMap<String, u32>,
    /// Issued nonces that have expired: a correct answer with one gets stale=true.
    expired: Vec<String>,
    next_nonce: u32,
    /// Every credentials value that verified, as (nonce, nc).
    accepted: Vec<(String, u32)>,
}

impl Registrar {
    fn new(user: DigestCredentials) -> Self {
        Self {
            users: vec![user],
            algorithms: vec![DigestAlgorithm::SHA256],
            qop: vec![DigestQop::Auth],
            status: 401,
            nonces: HashMap::new(),
            expired: Vec::new(),
            next_nonce: 0,
            accepted: Vec::new(),
        }
    }

    fn expire_all_nonces(&mut self) {
        self.expired.extend(self.nonces.drain().map(|(n, _)| n));
    }

    fn credentials_header(&self) -> HeaderName {
        if self.status == 407 {
            HeaderName::ProxyAuthorization
        } else {
            HeaderName::Authorization
        }
    }

    fn handle(&mut self, req: &Request) -> Response {
        let mut stale = false;
        let value = req
            .headers()
            .get(self.credentials_header())
            .map(str::to_owned);
        if let Some(value) = value {
            let c = Credentials::parse(&value).expect("the client writes parseable credentials");
            let user = self.users.iter().find(|u| Some(u.username()) == c.username);
            let good = user.is_some_and(|u| verify(&c, req.method().as_str(), req.body(), u))
                && c.uri == Some(req.uri())
                && c.realm == Some(REALM);
            let nonce = c.nonce.unwrap_or_default().to_owned();
            let nc = c.nc.unwrap_or(0);
            match self.nonces.get_mut(&nonce) {
                // RFC 7616 §3.4.5: a nonce count must grow, or it is a replay.
                Some(last) if good && nc > *last => {
                    *last = nc;
                    self.accepted.push((nonce, nc));
                    return Response::from_request(req, StatusCode::new(200));
                }
                // RFC 7616 §3.3: right password, old nonce → stale=true.
                None if good && self.expired.contains(&nonce) => stale = true,
                _ => {}
            }
        }
        self.next_nonce += 1;
        let nonce = format!("nonce-{}", self.next_nonce);
        self.nonces.insert(nonce.clone(), 0);
        let mut resp = Response::from_request(req, StatusCode::new(self.status));
        let name = if self.status == 407 {
            HeaderName::ProxyAuthenticate
        } else {
            HeaderName::WwwAuthenticate
        };
        for alg in &self.algorithms {
            let v = challenge(REALM, &nonce, *alg, &self.qop, Some("opaque-1"), stale);
            resp.headers_mut().push(name, &v);
        }
        resp
    }
}

/// The user agent side: REGISTER requests with fresh CSeq and branch for every send.
struct Ua {
    auth: Authenticator,
    ids: IdGenerator,
    cseq: u32,
    /// Requests sent, to count round trips.
    sent: usize,
}

impl Ua {
    fn new(credentials: DigestCredentials) -> Self {
        Self {
            auth: Authenticator::new(credentials),
            ids: IdGenerator::new(42),
            cseq: 0,
            sent: 0,
        }
    }

    fn register_request(&mut self) -> Request {
        let mut r = Request::new(Method::Register, URI);
        let h = r.headers_mut();
        h.push(
            HeaderName::Via,
            &format!("SIP/2.0/UDP 192.0.2.1;branch={}", self.ids.branch()),
        );
        h.push(HeaderName::From, "<sip:alice@example.com>;tag=a1");
        h.push(HeaderName::To, "<sip:alice@example.com>");
        h.push(HeaderName::CallId, "reg-1");
        self.cseq += 1;
        h.push(HeaderName::CSeq, &format!("{} REGISTER", self.cseq));
        r
    }

    /// The retry RFC 3261 §22.2 asks for: same request, CSeq + 1, new branch.
    fn retry_of(&mut self, req: &Request) -> Request {
        let mut r = req.clone();
        self.cseq += 1;
        let branch = self.ids.branch();
        let h = r.headers_mut();
        h.set(HeaderName::CSeq, &format!("{} REGISTER", self.cseq));
        h.set(
            HeaderName::Via,
            &format!("SIP/2.0/UDP 192.0.2.1;branch={branch}"),
        );
        r
    }

    /// One registration as a UA runs it: preauthorize, send, answer challenges until a
    /// non-challenge or an error. Bounded, so a loop-guard bug fails instead of hanging.
    fn register(&mut self, server: &mut Registrar) -> Result<Response, AuthError> {
        let mut req = self.register_request();
        let cnonce = self.ids.cnonce();
        self.auth.preauthorize(&mut req, &cnonce)?;
        for _ in 0..10 {
            self.sent += 1;
            let resp = server.handle(&req);
            if !matches!(resp.status().code(), 401 | 407) {
                return Ok(resp);
            }
            let mut retry = self.retry_of(&req);
            let cnonce = self.ids.cnonce();
            self.auth.authorize(&resp, &mut retry, &cnonce)?;
            req = retry;
        }
        panic!("the client kept retrying: the loop guard failed");
    }
}

fn alice() -> DigestCredentials {
    DigestCredentials::new("alice", "wonderland")
}

#[test]
fn the_first_request_is_challenged_and_the_authorized_retry_verifies() {
    let mut server = Registrar::new(alice());
    let mut ua = Ua::new(alice());
    let resp = ua.register(&mut server).unwrap();
    assert_eq!(resp.status().code(), 200);
    assert_eq!(ua.sent, 2, "one 401, then the authorized retry");
    assert_eq!(server.accepted, [("nonce-1".to_owned(), 1)]);
}

#[test]
fn a_refresh_with_preauthorize_verifies_with_nc_2_and_no_new_challenge() {
    let mut server = Registrar::new(alice());
    let mut ua = Ua::new(alice());
    ua.register(&mut server).unwrap();
    let before = ua.sent;

    let mut refresh = ua.register_request();
    assert!(
        ua.auth
            .preauthorize(&mut refresh, &ua.ids.cnonce())
            .unwrap()
    );
    let value = refresh.headers().get(HeaderName::Authorization).unwrap();
    assert!(value.contains("nc=00000002"), "{value}");
    assert_eq!(server.handle(&refresh).status().code(), 200);

    ua.register(&mut server).unwrap();
    assert_eq!(
        ua.sent - before,
        1,
        "the nonce is reused: no 401 round trip"
    );
    assert_eq!(
        server.accepted,
        [
            ("nonce-1".to_owned(), 1),
            ("nonce-1".to_owned(), 2),
            ("nonce-1".to_owned(), 3)
        ]
    );
}

/// The loop guard: a second 401 for a realm we answered, without stale=true, is a refusal.
#[test]
fn a_wrong_password_ends_in_rejected_on_the_second_401() {
    let mut server = Registrar::new(alice());
    let mut ua = Ua::new(DigestCredentials::new("alice", "looking-glass"));
    let err = ua.register(&mut server).unwrap_err();
    assert_eq!(
        err,
        AuthError::Rejected {
            status: 401,
            realm: REALM.into()
        }
    );
    assert_eq!(
        ua.sent, 2,
        "exactly one authorized attempt, never an endless retry"
    );
    assert!(server.accepted.is_empty());
}

#[test]
fn a_stale_nonce_on_refresh_is_retried_once_and_not_counted_as_a_rejection() {
    let mut server = Registrar::new(alice());
    let mut ua = Ua::new(alice());
    ua.register(&mut server).unwrap();
    server.expire_all_nonces();

    let before = ua.sent;
    let resp = ua.register(&mut server).unwrap();
    assert_eq!(resp.status().code(), 200);
    assert_eq!(
        ua.sent - before,
        2,
        "the reused nonce got stale=true, one retry"
    );
    assert_eq!(server.accepted.last(), Some(&("nonce-2".to_owned(), 1)));
}

/// A reused nonce the server has forgotten may come back without stale=true; that is a new
/// round's first challenge (the round began with `preauthorize`), not a rejection.
#[test]
fn a_forgotten_nonce_on_refresh_is_a_new_challenge_not_a_rejection() {
    let mut server = Registrar::new(alice());
    let mut ua = Ua::new(alice());
    ua.register(&mut server).unwrap();
    server.nonces.clear();

    let before = ua.sent;
    assert_eq!(ua.register(&mut server).unwrap().status().code(), 200);
    assert_eq!(ua.sent - before, 2);
}

#[test]
fn a_nonce_that_goes_stale_during_the_retry_is_answered_again() {
    let mut server = Registrar::new(alice());
    let mut ua = Ua::new(alice());
    let first = ua.register_request();
    let challenge = server.handle(&first);
    let mut second = ua.retry_of(&first);
    ua.auth
        .authorize(&challenge, &mut second, &ua.ids.cnonce())
        .unwrap();

    // The nonce expires while the retry is in flight.
    server.expire_all_nonces();
    let stale = server.handle(&second);
    assert_eq!(stale.status().code(), 401);
    assert!(
        stale
            .headers()
            .get(HeaderName::WwwAuthenticate)
            .unwrap()
            .contains("stale=true")
    );
    let mut third = ua.retry_of(&second);
    ua.auth
        .authorize(&stale, &mut third, &ua.ids.cnonce())
        .expect("stale=true is not a rejection");
    assert_eq!(server.handle(&third).status().code(), 200);
}

#[test]
fn with_md5_and_sha256_offered_in_two_headers_sha256_is_chosen() {
    let mut server = Registrar::new(alice());
    server.algorithms = vec![DigestAlgorithm::MD5, DigestAlgorithm::SHA256];
    let mut ua = Ua::new(alice());
    let first = ua.register_request();
    let ch = server.handle(&first);
    assert_eq!(ch.headers().count(HeaderName::WwwAuthenticate), 2);
    let mut retry = ua.retry_of(&first);
    ua.auth
        .authorize(&ch, &mut retry, &ua.ids.cnonce())
        .unwrap();
    let value = retry.headers().get(HeaderName::Authorization).unwrap();
    assert!(value.contains("algorithm=SHA-256,"), "{value}");
    assert_eq!(server.handle(&retry).status().code(), 200);
}

#[test]
fn sha512_256_sess_with_auth_int_round_trips() {
    let mut server = Registrar::new(alice());
    server.algorithms = vec![DigestAlgorithm::SHA512_256_SESS];
    server.qop = vec![DigestQop::AuthInt];
    let mut ua = Ua::new(alice());
    assert_eq!(ua.register(&mut server).unwrap().status().code(), 200);
    assert_eq!(ua.register(&mut server).unwrap().status().code(), 200);
    assert_eq!(ua.sent, 3, "the -sess nonce is reused too");
}

#[test]
fn a_407_is_answered_in_proxy_authorization() {
    let mut server = Registrar::new(alice());
    server.status = 407;
    let mut ua = Ua::new(alice());
    let first = ua.register_request();
    let ch = server.handle(&first);
    let mut retry = ua.retry_of(&first);
    ua.auth
        .authorize(&ch, &mut retry, &ua.ids.cnonce())
        .unwrap();
    assert!(retry.headers().get(HeaderName::Authorization).is_none());
    assert!(retry.headers().contains(HeaderName::ProxyAuthorization));
    assert_eq!(server.handle(&retry).status().code(), 200);

    // A wrong proxy password is refused the same way, with the 407 in the error.
    let mut server = Registrar::new(alice());
    server.status = 407;
    let mut ua = Ua::new(DigestCredentials::new("alice", "nope"));
    assert!(matches!(
        ua.register(&mut server),
        Err(AuthError::Rejected { status: 407, .. })
    ));
}

#[test]
fn ha1_only_credentials_work_on_both_sides() {
    let md5 = ha1(HashFunction::Md5, "alice", REALM, "wonderland");
    let sha = ha1(HashFunction::Sha256, "alice", REALM, "wonderland");
    // The client config holds only HA1 values, and so does the registrar's user table.
    let client = DigestCredentials::from_ha1("alice", REALM, HashFunction::Md5, &md5)
        .unwrap()
        .with_ha1(HashFunction::Sha256, &sha)
        .unwrap();
    let table = DigestCredentials::from_ha1("alice", REALM, HashFunction::Sha256, &sha).unwrap();
    assert!(!format!("{client:?}{table:?}").contains(&sha));

    let mut server = Registrar::new(table);
    server.algorithms = vec![DigestAlgorithm::MD5, DigestAlgorithm::SHA256];
    let mut ua = Ua::new(client);
    assert_eq!(ua.register(&mut server).unwrap().status().code(), 200);
    assert_eq!(ua.register(&mut server).unwrap().status().code(), 200);
}
