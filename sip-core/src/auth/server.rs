//! The server side, for the embedded registrar: write a challenge, check an answer.
//!
//! Only the arithmetic lives here. Issuing nonces (and deciding when one is stale), refusing a
//! repeated nc, and checking that `uri` is the Request-URI are state the registrar keeps
//! (RFC 7616 §3.3, §3.4.5, §5.3); see [`verify`].

use super::digest::{DigestQop, ResponseInput, escape, hex_eq, unescape, user_hash};
use super::{DigestAlgorithm, DigestCredentials};
use crate::message::{Challenge, Credentials, Qop};

/// The value of a WWW-Authenticate (401) or Proxy-Authenticate (407) header offering
/// `algorithm` (RFC 7616 §3.3, RFC 3261 §22.1).
///
/// `realm`, `nonce` and `opaque` are plain values; quotes and backslashes in them are
/// escaped. `qop` lists the protections offered; empty means none, the RFC 2069 form, which
/// RFC 7616 deprecates but old SIP phones still answer. The algorithm is always written,
/// even MD5. To offer several algorithms, send one header per call (RFC 7616 §3.7: the
/// preferred one first).
///
/// ```
/// use sansip_core::auth::{challenge, DigestAlgorithm, DigestQop};
/// let v = challenge("example.com", "4cb9c8f7", DigestAlgorithm::SHA256, &[DigestQop::Auth], None, false);
/// assert_eq!(v, r#"Digest realm="example.com", nonce="4cb9c8f7", algorithm=SHA-256, qop="auth""#);
/// ```
#[must_use]
pub fn challenge(
    realm: &str,
    nonce: &str,
    algorithm: DigestAlgorithm,
    qop: &[DigestQop],
    opaque: Option<&str>,
    stale: bool,
) -> String {
    let realm = escape(realm);
    let nonce = escape(nonce);
    let opaque = opaque.map(escape);
    let qop = qop.iter().map(|q| q.as_str()).collect::<Vec<_>>().join(",");
    let mut c = Challenge::digest(&realm, &nonce);
    c.opaque = opaque.as_deref();
    c.stale = stale;
    c.algorithm = Some(algorithm.into());
    c.qop = (!qop.is_empty()).then_some(Qop(&qop));
    c.to_string()
}

/// Whether `credentials` (an Authorization or Proxy-Authorization value) prove that the
/// sender knows `user`'s secret, for a request with this `method` and `body`.
///
/// It recomputes `response` with the same code the client uses and compares it in constant
/// time. It checks the user name (or, with `userhash=true`, the RFC 7616 §3.4.4 hash of it),
/// that `user` may answer the realm, and that the parameters the algorithm and qop need are
/// present. It does **not** check what needs server state, which the caller must:
///
/// - that `nonce` is one it issued and still fresh (or answer 401 with `stale=true`);
/// - that `nc` grows for each nonce (RFC 7616 §3.4.5 replay protection);
/// - that `uri` is the Request-URI (RFC 3261 §22.4 and RFC 7616 §3.4.6);
/// - that `realm` is the realm it challenged with.
///
/// `method` is the request's method; a body matters only with `qop=auth-int`.
#[must_use]
pub fn verify(
    credentials: &Credentials<'_>,
    method: &str,
    body: &[u8],
    user: &DigestCredentials,
) -> bool {
    if !credentials.is_digest() {
        return false;
    }
    let (Some(username), Some(realm), Some(nonce), Some(uri), Some(response)) = (
        credentials.username,
        credentials.realm,
        credentials.nonce,
        credentials.uri,
        credentials.response,
    ) else {
        return false;
    };
    let Some(algorithm) = DigestAlgorithm::from_param(credentials.algorithm) else {
        return false;
    };
    let realm = unescape(realm);
    let qop = match credentials.qop {
        None => None,
        Some(q) => match DigestQop::from_credentials(q) {
            Some(q) => Some(q),
            None => return false,
        },
    };
    // RFC 7616 §3.4: with a qop, cnonce and nc are required; without one (RFC 2069) they are
    // meaningless, and -sess cannot be computed at all for want of a cnonce.
    let (cnonce, nc) = match (qop, credentials.cnonce, credentials.nc) {
        (Some(_), Some(c), Some(n)) => (unescape(c), n),
        (Some(_), _, _) => return false,
        (None, _, _) if algorithm.session => return false,
        (None, _, _) => (Default::default(), 0),
    };
    let name_ok = if credentials.userhash {
        hex_eq(
            username,
            &user_hash(algorithm.hash, user.username(), &realm),
        )
    } else {
        unescape(username) == user.username()
    };
    if !name_ok {
        return false;
    }
    let Some(ha1) = user.ha1(&realm, algorithm.hash) else {
        return false;
    };
    let expected = ResponseInput {
        algorithm,
        ha1: &ha1,
        nonce: &unescape(nonce),
        qop,
        cnonce: &cnonce,
        nc,
        method,
        uri: &unescape(uri),
        body,
    }
    .response();
    hex_eq(response, &expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{HashFunction, ha1};

    const RFC2617_AUTHORIZATION: &str = r#"Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41""#;

    fn mufasa() -> DigestCredentials {
        DigestCredentials::new("Mufasa", "Circle Of Life")
    }

    /// RFC 2617 §3.5's Authorization verifies with the password and with the HA1 alone.
    #[test]
    fn the_rfc_2617_example_verifies() {
        let c = Credentials::parse(RFC2617_AUTHORIZATION).unwrap();
        assert!(verify(&c, "GET", b"", &mufasa()));
        let h = ha1(
            HashFunction::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life",
        );
        let by_ha1 =
            DigestCredentials::from_ha1("Mufasa", "testrealm@host.com", HashFunction::Md5, &h)
                .unwrap();
        assert!(verify(&c, "GET", b"", &by_ha1));
    }

    /// RFC 7616 §3.9.1's SHA-256 Authorization (its password is "Circle of Life").
    #[test]
    fn the_rfc_7616_sha256_example_verifies() {
        let c = Credentials::parse(
            r#"Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#,
        )
        .unwrap();
        assert!(verify(
            &c,
            "GET",
            b"",
            &DigestCredentials::new("Mufasa", "Circle of Life")
        ));
        assert!(
            !verify(&c, "GET", b"", &mufasa()),
            "password is case-sensitive"
        );
    }

    #[test]
    fn anything_changed_fails() {
        let good = Credentials::parse(RFC2617_AUTHORIZATION).unwrap();
        assert!(!verify(&good, "POST", b"", &mufasa()), "method");
        assert!(!verify(
            &good,
            "GET",
            b"",
            &DigestCredentials::new("Mufasa", "wrong")
        ));
        assert!(!verify(
            &good,
            "GET",
            b"",
            &DigestCredentials::new("Simba", "Circle Of Life")
        ));
        assert!(
            !verify(&good, "GET", b"", &mufasa().for_realm("elsewhere")),
            "credentials bound to another realm"
        );
        let mut c = good;
        c.nc = Some(2);
        assert!(!verify(&c, "GET", b"", &mufasa()), "nc is covered");
        let mut c = good;
        c.cnonce = None;
        assert!(!verify(&c, "GET", b"", &mufasa()), "qop needs cnonce");
        let mut c = good;
        c.qop = Some(Qop("auth,auth-int"));
        assert!(!verify(&c, "GET", b"", &mufasa()), "one qop only");
        let mut c = good;
        c.algorithm = Some(crate::message::Algorithm::Other("AKAv1-MD5"));
        assert!(!verify(&c, "GET", b"", &mufasa()), "unknown algorithm");
        let mut c = good;
        c.scheme = "Basic";
        assert!(!verify(&c, "GET", b"", &mufasa()));
    }

    #[test]
    fn challenge_escapes_and_round_trips() {
        let v = challenge(
            r#"a "quoted" realm"#,
            "n",
            DigestAlgorithm::MD5_SESS,
            &[DigestQop::Auth, DigestQop::AuthInt],
            Some("op"),
            true,
        );
        assert_eq!(
            v,
            r#"Digest realm="a \"quoted\" realm", nonce="n", opaque="op", stale=true, algorithm=MD5-sess, qop="auth,auth-int""#
        );
        let c = Challenge::parse(&v).unwrap();
        assert_eq!(unescape(c.realm.unwrap()), r#"a "quoted" realm"#);
        assert!(c.stale && c.qop.unwrap().has_auth_int());
        let none = challenge("r", "n", DigestAlgorithm::MD5, &[], None, false);
        assert_eq!(none, r#"Digest realm="r", nonce="n", algorithm=MD5"#);
    }
}
