//! Client choices and edge cases; the request/response loop against `verify` is in
//! `tests/digest.rs`.

use super::*;
use crate::message::{Algorithm, Credentials, HeaderName, Method, Request, Response, StatusCode};

const CNONCE: &str = "0a4f113b";

fn request(method: Method) -> Request {
    let mut r = Request::new(method, "sip:example.com");
    let h = r.headers_mut();
    h.push(HeaderName::Via, "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx1");
    h.push(HeaderName::From, "<sip:alice@example.com>;tag=1");
    h.push(HeaderName::To, "<sip:alice@example.com>");
    h.push(HeaderName::CallId, "c1");
    h.push(HeaderName::CSeq, "1 REGISTER");
    r
}

fn challenged(req: &Request, code: u16, values: &[&str]) -> Response {
    let mut r = Response::from_request(req, StatusCode::new(code));
    let name = if code == 407 {
        HeaderName::ProxyAuthenticate
    } else {
        HeaderName::WwwAuthenticate
    };
    for v in values {
        r.headers_mut().push(name, v);
    }
    r
}

fn authorization(req: &Request) -> Credentials<'_> {
    let mut all = req.headers().get_all(HeaderName::Authorization);
    let v = all.next().expect("an Authorization header");
    assert!(all.next().is_none(), "exactly one Authorization");
    Credentials::parse(v).unwrap()
}

fn alice() -> DigestCredentials {
    DigestCredentials::new("alice", "pw")
}

/// Authorizes a fresh REGISTER against `values` and returns it.
fn answer(auth: &mut Authenticator, values: &[&str]) -> Result<Request, AuthError> {
    let first = request(Method::Register);
    let mut retry = first.clone();
    auth.authorize(&challenged(&first, 401, values), &mut retry, CNONCE)?;
    Ok(retry)
}

#[test]
fn the_strongest_algorithm_of_a_realm_is_chosen_from_one_header_line() {
    let mut auth = Authenticator::new(alice());
    let r = answer(
        &mut auth,
        &[
            r#"Digest realm="r", nonce="1", algorithm=MD5, qop="auth", Digest realm="r", nonce="2", algorithm=SHA-256-sess, qop="auth", Digest realm="r", nonce="3", algorithm=SHA-512-256, qop="auth""#,
        ],
    )
    .unwrap();
    let c = authorization(&r);
    assert_eq!(c.algorithm, Some(Algorithm::Sha512_256));
    assert_eq!(c.nonce, Some("3"));
    assert!(verify(&c, "REGISTER", b"", &alice()));
}

#[test]
fn plain_wins_over_sess_at_equal_hash_and_sess_is_used_when_alone() {
    let mut auth = Authenticator::new(alice());
    let r = answer(
        &mut auth,
        &[
            r#"Digest realm="r", nonce="1", algorithm=SHA-256-sess, qop="auth""#,
            r#"Digest realm="r", nonce="2", algorithm=SHA-256, qop="auth""#,
        ],
    )
    .unwrap();
    assert_eq!(authorization(&r).algorithm, Some(Algorithm::Sha256));

    let mut auth = Authenticator::new(alice());
    let r = answer(
        &mut auth,
        &[r#"Digest realm="r", nonce="1", algorithm=MD5-sess, qop="auth""#],
    )
    .unwrap();
    let c = authorization(&r);
    assert_eq!(c.algorithm, Some(Algorithm::Md5Sess));
    assert!(verify(&c, "REGISTER", b"", &alice()));
}

#[test]
fn auth_is_preferred_and_auth_int_used_only_when_it_is_the_only_qop() {
    let mut auth = Authenticator::new(alice());
    let r = answer(
        &mut auth,
        &[r#"Digest realm="r", nonce="1", qop="auth-int,auth""#],
    )
    .unwrap();
    assert_eq!(authorization(&r).qop, Some(crate::message::Qop("auth")));

    let mut auth = Authenticator::new(alice());
    let first = request(Method::Message);
    let mut retry = first.clone();
    retry.set_body("text/plain", bytes::Bytes::from_static(b"hello"));
    let ch = challenged(
        &first,
        401,
        &[r#"Digest realm="r", nonce="1", qop="auth-int""#],
    );
    auth.authorize(&ch, &mut retry, CNONCE).unwrap();
    let c = authorization(&retry);
    assert_eq!(c.qop, Some(crate::message::Qop("auth-int")));
    assert!(verify(&c, "MESSAGE", b"hello", &alice()));
    assert!(
        !verify(&c, "MESSAGE", b"HELLO", &alice()),
        "auth-int covers the body"
    );
}

#[test]
fn without_qop_the_rfc_2069_form_is_sent() {
    let mut auth = Authenticator::new(alice());
    let r = answer(&mut auth, &[r#"Digest realm="r", nonce="1""#]).unwrap();
    let c = authorization(&r);
    assert_eq!(
        (c.qop, c.cnonce, c.nc, c.algorithm),
        (None, None, None, None)
    );
    assert!(verify(&c, "REGISTER", b"", &alice()));
}

#[test]
fn only_unsupported_challenges_are_an_error_that_names_them() {
    let mut auth = Authenticator::new(alice());
    let e = answer(
        &mut auth,
        &[
            r#"Digest realm="r", nonce="1", algorithm=AKAv1-MD5"#,
            r#"Basic realm="r""#,
            r#"Digest realm="r", nonce="2", qop="auth-conf""#,
            r#"Digest realm="r", nonce="3", algorithm=MD5-sess"#,
        ],
    )
    .unwrap_err();
    assert_eq!(
        e,
        AuthError::Unsupported {
            offered: "Digest AKAv1-MD5, Basic, Digest qop=auth-conf, Digest MD5-sess without qop"
                .into()
        }
    );
    assert!(e.to_string().starts_with("unsupported challenge ("));
}

#[test]
fn a_malformed_line_does_not_hide_a_good_one() {
    let mut auth = Authenticator::new(alice());
    let r = answer(
        &mut auth,
        &[
            r#"Digest realm="r", nonce="#,
            r#"Digest nonce="no realm""#,
            r#"Digest realm="r", nonce="ok", qop="auth""#,
        ],
    )
    .unwrap();
    assert_eq!(authorization(&r).nonce, Some("ok"));
}

#[test]
fn statuses_and_headers_that_are_not_challenges() {
    let mut auth = Authenticator::new(alice());
    let first = request(Method::Register);
    let mut retry = first.clone();
    let ok = challenged(&first, 403, &[]);
    assert_eq!(
        auth.authorize(&ok, &mut retry, CNONCE),
        Err(AuthError::NotAChallenge { status: 403 })
    );
    let bare = challenged(&first, 401, &[]);
    assert_eq!(
        auth.authorize(&bare, &mut retry, CNONCE),
        Err(AuthError::NoChallenge { status: 401 })
    );
    // A 407 is read from Proxy-Authenticate only.
    let mut wrong_header = challenged(&first, 407, &[]);
    wrong_header.headers_mut().push(
        HeaderName::WwwAuthenticate,
        r#"Digest realm="r", nonce="1""#,
    );
    assert_eq!(
        auth.authorize(&wrong_header, &mut retry, CNONCE),
        Err(AuthError::NoChallenge { status: 407 })
    );
    assert_eq!(retry, first, "a failed authorize leaves the request alone");
}

#[test]
fn a_cnonce_must_fit_in_a_quoted_string() {
    let mut auth = Authenticator::new(alice());
    for bad in ["", "a\"b", "a\\b", "a b", "ä"] {
        let first = request(Method::Register);
        let mut retry = first.clone();
        let ch = challenged(&first, 401, &[r#"Digest realm="r", nonce="1""#]);
        assert_eq!(
            auth.authorize(&ch, &mut retry, bad),
            Err(AuthError::InvalidCnonce),
            "{bad:?}"
        );
    }
}

#[test]
fn ha1_credentials_answer_the_hash_they_have_even_when_a_stronger_one_is_offered() {
    let h = ha1(HashFunction::Md5, "alice", "r", "pw");
    let creds = DigestCredentials::from_ha1("alice", "r", HashFunction::Md5, &h).unwrap();
    let mut auth = Authenticator::new(creds.clone());
    let r = answer(
        &mut auth,
        &[
            r#"Digest realm="r", nonce="1", algorithm=SHA-256, qop="auth""#,
            r#"Digest realm="r", nonce="2", algorithm=MD5, qop="auth""#,
        ],
    )
    .unwrap();
    let c = authorization(&r);
    assert_eq!(c.algorithm, Some(Algorithm::Md5));
    assert!(verify(&c, "REGISTER", b"", &alice()));
    assert!(verify(&c, "REGISTER", b"", &creds));

    let mut auth = Authenticator::new(creds);
    let e = answer(
        &mut auth,
        &[r#"Digest realm="other", nonce="1", qop="auth""#],
    )
    .unwrap_err();
    assert_eq!(
        e,
        AuthError::NoCredentials {
            realm: "other".into()
        }
    );
}

#[test]
fn realm_bound_credentials_win_over_unbound_ones() {
    let mut auth = Authenticator::new(DigestCredentials::new("anyone", "x"));
    auth.add_credentials(DigestCredentials::new("bob", "pw").for_realm("r"));
    let r = answer(&mut auth, &[r#"Digest realm="r", nonce="1", qop="auth""#]).unwrap();
    let c = authorization(&r);
    assert_eq!(c.username, Some("bob"));
    assert!(verify(
        &c,
        "REGISTER",
        b"",
        &DigestCredentials::new("bob", "pw")
    ));
}

#[test]
fn userhash_sends_the_hashed_name() {
    let mut auth = Authenticator::new(alice());
    let r = answer(
        &mut auth,
        &[r#"Digest realm="r", nonce="1", algorithm=SHA-256, qop="auth", userhash=true"#],
    )
    .unwrap();
    let c = authorization(&r);
    assert!(c.userhash);
    assert_eq!(
        c.username.map(str::len),
        Some(64),
        "H(username:realm), not the name"
    );
    let value = r.headers().get(HeaderName::Authorization).unwrap();
    assert!(!value.contains("alice"), "{value}");
    assert!(verify(&c, "REGISTER", b"", &alice()));
}

#[test]
fn quotes_in_realm_and_user_name_are_escaped_and_hashed_plain() {
    let user = DigestCredentials::new(r#"al"ice"#, "pw");
    let mut auth = Authenticator::new(user.clone());
    let r = answer(
        &mut auth,
        &[r#"Digest realm="the \"r\" realm", nonce="1", qop="auth""#],
    )
    .unwrap();
    let c = authorization(&r);
    assert_eq!(c.username, Some(r#"al\"ice"#));
    assert_eq!(c.realm, Some(r#"the \"r\" realm"#));
    assert!(verify(&c, "REGISTER", b"", &user));
    assert!(verify(
        &c,
        "REGISTER",
        b"",
        &user.for_realm(r#"the "r" realm"#)
    ));
}

#[test]
fn a_sess_nonce_is_reused_with_its_first_cnonce() {
    let mut auth = Authenticator::new(alice());
    let _ = answer(
        &mut auth,
        &[r#"Digest realm="r", nonce="1", algorithm=SHA-256-sess, qop="auth""#],
    )
    .unwrap();
    let mut refresh = request(Method::Register);
    assert!(auth.preauthorize(&mut refresh, "fresh").unwrap());
    let c = authorization(&refresh);
    assert_eq!((c.cnonce, c.nc), (Some(CNONCE), Some(2)));
    assert!(verify(&c, "REGISTER", b"", &alice()));
}

#[test]
fn stale_challenges_are_answered_at_most_twice_per_round() {
    let mut auth = Authenticator::new(alice());
    let ch = |nonce: &str, stale: bool| {
        challenge(
            "r",
            nonce,
            DigestAlgorithm::MD5,
            &[DigestQop::Auth],
            None,
            stale,
        )
    };
    answer(&mut auth, &[&ch("n1", false)]).unwrap();
    answer(&mut auth, &[&ch("n2", true)]).unwrap();
    answer(&mut auth, &[&ch("n3", true)]).unwrap();
    assert_eq!(
        answer(&mut auth, &[&ch("n4", true)]),
        Err(AuthError::Rejected {
            status: 401,
            realm: "r".into()
        }),
        "a server that calls every nonce stale must not keep us looping"
    );

    // stale=true repeating the nonce we just used is a refusal, not a fresh nonce.
    let mut auth = Authenticator::new(alice());
    answer(&mut auth, &[&ch("n1", false)]).unwrap();
    assert!(matches!(
        answer(&mut auth, &[&ch("n1", true)]),
        Err(AuthError::Rejected { .. })
    ));
}

#[test]
fn a_rejected_realm_is_forgotten() {
    let mut auth = Authenticator::new(alice());
    let ch = r#"Digest realm="r", nonce="1", qop="auth""#;
    answer(&mut auth, &[ch]).unwrap();
    assert!(matches!(
        answer(&mut auth, &[ch]),
        Err(AuthError::Rejected { .. })
    ));
    let mut next = request(Method::Register);
    assert!(
        !auth.preauthorize(&mut next, CNONCE).unwrap(),
        "no credentials known to be bad"
    );
    assert!(next.headers().get(HeaderName::Authorization).is_none());
}

#[test]
fn preauthorize_replaces_earlier_credentials_and_keeps_foreign_ones() {
    let mut auth = Authenticator::new(alice());
    let mut req = answer(&mut auth, &[r#"Digest realm="r", nonce="1", qop="auth""#]).unwrap();
    req.headers_mut().push(
        HeaderName::Authorization,
        r#"Digest username="x", realm="elsewhere", nonce="z", uri="sip:x", response="0""#,
    );
    for expected_nc in 2..=4 {
        assert!(auth.preauthorize(&mut req, CNONCE).unwrap());
        let all: Vec<_> = req
            .headers()
            .get_all(HeaderName::Authorization)
            .map(|v| Credentials::parse(v).unwrap())
            .collect();
        assert_eq!(all.len(), 2, "one per realm");
        assert_eq!(all[0].realm, Some("elsewhere"));
        assert_eq!(all[1].nc, Some(expected_nc));
    }
    auth.reset();
    let mut fresh = request(Method::Register);
    assert!(!auth.preauthorize(&mut fresh, CNONCE).unwrap());
}

#[test]
fn a_registrar_challenge_after_a_proxy_challenge_keeps_the_proxy_credentials() {
    // RFC 3261 §22.3: the UAC resends credentials for every realm that challenged it.
    let mut auth = Authenticator::new(alice());
    let first = request(Method::Register);
    let mut second = first.clone();
    let proxy = challenged(
        &first,
        407,
        &[r#"Digest realm="proxy", nonce="p", qop="auth""#],
    );
    auth.authorize(&proxy, &mut second, CNONCE).unwrap();
    let mut third = second.clone();
    let registrar = challenged(
        &second,
        401,
        &[r#"Digest realm="reg", nonce="r", qop="auth""#],
    );
    auth.authorize(&registrar, &mut third, CNONCE).unwrap();

    let p: Vec<_> = third
        .headers()
        .get_all(HeaderName::ProxyAuthorization)
        .collect();
    assert_eq!(p.len(), 1);
    let p = Credentials::parse(p[0]).unwrap();
    assert_eq!((p.realm, p.nc), (Some("proxy"), Some(2)));
    let a = authorization(&third);
    assert_eq!((a.realm, a.nc), (Some("reg"), Some(1)));
    assert!(verify(&p, "REGISTER", b"", &alice()) && verify(&a, "REGISTER", b"", &alice()));
}

#[test]
fn error_messages_are_short_and_lowercase() {
    let e = AuthError::Rejected {
        status: 401,
        realm: "example.com".into(),
    };
    assert_eq!(
        e.to_string(),
        "credentials rejected by realm example.com (401)"
    );
    assert_eq!(AuthError::InvalidCnonce.to_string(), "invalid cnonce");
}
