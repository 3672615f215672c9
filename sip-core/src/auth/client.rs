//! The client side: answer 401/407 challenges, reuse nonces, and stop when refused.

use std::borrow::Cow;

use bytes::Bytes;

use super::digest::{DigestQop, ResponseInput, escape, unescape, user_hash};
use super::{AuthError, DigestAlgorithm, DigestCredentials};
use crate::message::{Algorithm, Challenge, Credentials, HeaderName, Qop, Request, Response};

/// At most this many realms are remembered; further challenges in one response are ignored,
/// so a hostile response cannot grow our state (DESIGN.md §2: every resource is bounded).
const MAX_REALMS: usize = 8;

/// How many `stale=true` challenges for one realm are answered within one round (see
/// [`Authenticator`]). One is the normal case (the nonce we reused had expired); a second
/// covers a nonce that expired while our retry was in flight. More means the server is
/// refusing us in a way that will not end.
const MAX_STALE_RETRIES: u8 = 2;

/// How many challenges one round may answer in all, whatever their realms: a proxy and a
/// registrar each challenging once and each declaring a nonce stale twice stays well below.
/// It stops a server that names a new realm in every challenge.
const MAX_CHALLENGES_PER_ROUND: u8 = 8;

/// Longest [`AuthError::Unsupported`] description kept.
const MAX_OFFERED_LEN: usize = 120;

/// A digest client for one registration or dialog (RFC 3261 §22.2–§22.4, RFC 7616 §3.4).
///
/// It is sans-IO like the rest of the crate: it reads challenges out of a [`Response`] and
/// writes credentials into a [`Request`]; the client nonce comes from the caller (use
/// [`IdGenerator::cnonce`](crate::ids::IdGenerator::cnonce)) so runs are deterministic.
///
/// ## Use
///
/// - For every **new** request (first REGISTER, each refresh, an in-dialog request), call
///   [`preauthorize`](Self::preauthorize). Before any challenge it adds nothing; afterwards it
///   reuses each realm's last nonce with the next nonce count, so a refresh does not pay a
///   401 round trip (RFC 7616 §3.4.5). It also starts a new *round* for the loop guard.
/// - On a 401 or 407, build the retry (same request, **CSeq incremented and a new Via
///   branch**, which this type does not touch: RFC 3261 §22.2, §8.1.3.5), then call
///   [`authorize`](Self::authorize) on it with the challenge response and send it.
///   On `Err`, stop: do not resend.
///
/// ## What gets answered
///
/// Every challenge of the status's header is read: WWW-Authenticate for a 401, which is
/// answered in Authorization; Proxy-Authenticate for a 407, answered in Proxy-Authorization.
/// Per realm the strongest challenge this stack can answer with the credentials it holds is
/// chosen: SHA-512-256 over SHA-256 over MD5, plain over `-sess` at equal hash, qop `auth`
/// when offered, `auth-int` only when it is the only qop. Non-Digest schemes and unknown
/// algorithms are skipped. Credentials for realms answered earlier (a proxy and a registrar
/// both challenging, RFC 3261 §22.3) are kept in the request with their next nonce count.
///
/// ## The loop guard
///
/// A *round* begins with [`new`](Self::new), [`preauthorize`](Self::preauthorize) or
/// [`reset`](Self::reset). Within a round, per realm:
///
/// 1. the first challenge is answered;
/// 2. a later one is answered only if it has `stale=true`, a nonce other than the one we
///    used, and fewer than two stale challenges were answered in this round (RFC 7616
///    §3.3: stale means the nonce, not the password, was refused);
/// 3. anything else is [`AuthError::Rejected`]: the server has seen our answer and refused
///    it. The realm's nonce is forgotten, so a later round starts afresh.
///
/// And whatever the realms, a round answers at most eight challenges before returning
/// [`AuthError::Rejected`] too.
///
/// So a wrong password costs exactly one retry, and no server can keep us retrying.
///
/// ```
/// use sansip_core::auth::{Authenticator, DigestCredentials, AuthError};
/// use sansip_core::ids::IdGenerator;
/// use sansip_core::message::{HeaderName, Method, Request, Response, StatusCode};
///
/// let mut ids = IdGenerator::new(1);
/// let mut auth = Authenticator::new(DigestCredentials::new("alice", "secret"));
/// let mut register = Request::new(Method::Register, "sip:example.com");
/// register.headers_mut().push(HeaderName::CSeq, "1 REGISTER");
/// assert!(!auth.preauthorize(&mut register, &ids.cnonce())?); // nothing known yet
///
/// let mut challenge = Response::from_request(&register, StatusCode::new(401));
/// challenge.headers_mut().push(
///     HeaderName::WwwAuthenticate,
///     r#"Digest realm="example.com", nonce="abc", algorithm=SHA-256, qop="auth""#,
/// );
/// let mut retry = register.clone();
/// retry.headers_mut().set(HeaderName::CSeq, "2 REGISTER"); // and a new Via branch
/// auth.authorize(&challenge, &mut retry, &ids.cnonce())?;
/// let value = retry.headers().get(HeaderName::Authorization).unwrap();
/// assert!(value.contains("algorithm=SHA-256") && value.contains("nc=00000001"));
///
/// // Another 401 for the same realm, not stale: the password is wrong. No third try.
/// let mut again = retry.clone();
/// let err = auth.authorize(&challenge, &mut again, &ids.cnonce()).unwrap_err();
/// assert!(matches!(err, AuthError::Rejected { status: 401, .. }));
/// # Ok::<(), AuthError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Authenticator {
    credentials: Vec<DigestCredentials>,
    realms: Vec<RealmState>,
    /// Challenges answered in the current round.
    round_challenges: u8,
}

/// Which pair of headers a challenge came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// 401: WWW-Authenticate → Authorization (RFC 3261 §22.2).
    Www,
    /// 407: Proxy-Authenticate → Proxy-Authorization (RFC 3261 §22.3).
    Proxy,
}

impl Kind {
    fn from_status(code: u16) -> Option<Kind> {
        match code {
            401 => Some(Kind::Www),
            407 => Some(Kind::Proxy),
            _ => None,
        }
    }

    fn challenge_header(self) -> HeaderName {
        match self {
            Kind::Www => HeaderName::WwwAuthenticate,
            Kind::Proxy => HeaderName::ProxyAuthenticate,
        }
    }

    fn credentials_header(self) -> HeaderName {
        match self {
            Kind::Www => HeaderName::Authorization,
            Kind::Proxy => HeaderName::ProxyAuthorization,
        }
    }
}

/// What we remember about one challenged realm: enough to answer again without a new
/// challenge. Holds no secret (HA1 is recomputed from the credentials each time), so the
/// derived `Debug` is safe to log.
#[derive(Debug, Clone)]
struct RealmState {
    kind: Kind,
    /// As received, escapes kept: echoed verbatim, unescaped for hashing.
    realm: String,
    nonce: String,
    opaque: Option<String>,
    algorithm: DigestAlgorithm,
    /// Echo `algorithm=` only when the challenge named it; absent means MD5 to both sides.
    algorithm_named: bool,
    qop: Option<DigestQop>,
    userhash: bool,
    /// The last nonce count sent with `nonce`; 0 before the first.
    nc: u32,
    /// For -sess: the cnonce HA1 was bound to on first use of the nonce. RFC 2617 §3.2.2.2
    /// computes the session key once per nonce, so later requests reuse this cnonce, which
    /// servers that recompute per request accept as well.
    session_cnonce: Option<String>,
    /// Whether a challenge for this realm was answered in the current round.
    answered: bool,
    /// Stale challenges answered in the current round.
    stale_retries: u8,
}

/// The challenge chosen for one realm.
struct Pick<'a> {
    challenge: Challenge<'a>,
    realm: &'a str,
    nonce: &'a str,
    algorithm: DigestAlgorithm,
    qop: Option<DigestQop>,
}

/// Higher is preferred: hash strength, then plain over -sess.
fn rank(a: DigestAlgorithm) -> (super::HashFunction, bool) {
    (a.hash, !a.session)
}

impl Authenticator {
    /// An authenticator answering with `credentials`.
    pub fn new(credentials: DigestCredentials) -> Self {
        Self {
            credentials: vec![credentials],
            realms: Vec::new(),
            round_challenges: 0,
        }
    }

    /// Adds credentials for another realm (say, an outbound proxy's). For a realm, credentials
    /// bound to it ([`DigestCredentials::for_realm`], HA1 credentials) win over unbound ones.
    pub fn add_credentials(&mut self, credentials: DigestCredentials) {
        self.credentials.push(credentials);
    }

    /// Forgets every nonce and starts a new round: the next request goes out without
    /// credentials. For a new registration after the flow was lost, or new credentials.
    pub fn reset(&mut self) {
        self.realms.clear();
        self.round_challenges = 0;
    }

    /// Answers the challenges in `challenge` (a 401 or 407 to an earlier request) by adding
    /// Authorization or Proxy-Authorization headers to `request`, its retry.
    ///
    /// `request` must already be the retry: the caller increments CSeq and uses a new Via
    /// branch (RFC 3261 §22.2), before or after this call. Credentials are computed over its
    /// method, Request-URI (the `uri` parameter, RFC 3261 §22.4) and, for `auth-int`, body, so
    /// change none of those afterwards. Earlier credentials in `request` for the realms this
    /// authenticator knows are replaced; others are left alone.
    ///
    /// `cnonce` is a fresh client nonce, e.g. from
    /// [`IdGenerator::cnonce`](crate::ids::IdGenerator::cnonce).
    ///
    /// Errors: see [`AuthError`]; [`AuthError::Rejected`] comes from the loop guard described
    /// on [`Authenticator`]. On error `request` is unchanged.
    pub fn authorize(
        &mut self,
        challenge: &Response,
        request: &mut Request,
        cnonce: &str,
    ) -> Result<(), AuthError> {
        let status = challenge.status().code();
        let kind = Kind::from_status(status).ok_or(AuthError::NotAChallenge { status })?;
        check_cnonce(cnonce)?;
        let picks = self.choose(challenge, kind)?;
        if self.round_challenges >= MAX_CHALLENGES_PER_ROUND {
            let realm = picks
                .first()
                .map_or_else(String::new, |p| p.realm.to_owned());
            tracing::debug!(%realm, status, "too many digest challenges in one round");
            return Err(AuthError::Rejected { status, realm });
        }

        // The loop guard, checked for every realm before any state changes so an error
        // leaves the authenticator as it was (apart from forgetting the refused realm).
        for p in &picks {
            let Some(i) = self.position(kind, p.realm) else {
                continue;
            };
            let st = &self.realms[i];
            let stale_retry =
                p.challenge.stale && p.nonce != st.nonce && st.stale_retries < MAX_STALE_RETRIES;
            if st.answered && !stale_retry {
                tracing::debug!(realm = %p.realm, status, "digest credentials rejected");
                let realm = self.realms.remove(i).realm;
                return Err(AuthError::Rejected { status, realm });
            }
        }

        for p in picks {
            let fresh = RealmState {
                kind,
                realm: p.realm.to_owned(),
                nonce: p.nonce.to_owned(),
                opaque: p.challenge.opaque.map(str::to_owned),
                algorithm: p.algorithm,
                algorithm_named: p.challenge.algorithm.is_some(),
                qop: p.qop,
                userhash: p.challenge.userhash,
                nc: 0,
                session_cnonce: p.algorithm.session.then(|| cnonce.to_owned()),
                answered: true,
                stale_retries: u8::from(p.challenge.stale),
            };
            tracing::debug!(
                realm = %p.realm,
                algorithm = %Algorithm::from(p.algorithm),
                stale = p.challenge.stale,
                "answering digest challenge"
            );
            match self.position(kind, p.realm) {
                Some(i) => {
                    let st = &mut self.realms[i];
                    let stale_retries = st.stale_retries.saturating_add(fresh.stale_retries);
                    *st = RealmState {
                        stale_retries,
                        ..fresh
                    };
                }
                None => {
                    // Bounded across responses too: the oldest realm makes room.
                    if self.realms.len() >= MAX_REALMS {
                        self.realms.remove(0);
                    }
                    self.realms.push(fresh);
                }
            }
        }
        self.round_challenges += 1;
        self.write(request, cnonce);
        Ok(())
    }

    /// Adds credentials for every realm answered before, reusing its nonce with the next
    /// nonce count (RFC 7616 §3.4.5), so a refresh or an in-dialog request is not
    /// challenged again. Returns whether any were added (none before the first challenge).
    ///
    /// Call it on every new request, not on a retry: it starts a new round for the loop
    /// guard. A server that no longer likes a reused nonce answers 401 or 407 (normally
    /// `stale=true`), which [`authorize`](Self::authorize) answers like a first challenge.
    ///
    /// For a `-sess` nonce the client nonce of its first use is sent again and `cnonce` is
    /// not used (the session key is computed once per nonce, RFC 2617 §3.2.2.2).
    pub fn preauthorize(&mut self, request: &mut Request, cnonce: &str) -> Result<bool, AuthError> {
        check_cnonce(cnonce)?;
        self.round_challenges = 0;
        if self.realms.is_empty() {
            return Ok(false);
        }
        for st in &mut self.realms {
            st.answered = false;
            st.stale_retries = 0;
        }
        Ok(self.write(request, cnonce) > 0)
    }

    fn position(&self, kind: Kind, realm: &str) -> Option<usize> {
        self.realms
            .iter()
            .position(|s| s.kind == kind && s.realm == realm)
    }

    /// Picks the challenge to answer for each realm in `response`, or says why there is none.
    fn choose<'r>(&self, response: &'r Response, kind: Kind) -> Result<Vec<Pick<'r>>, AuthError> {
        let mut picks: Vec<Pick<'r>> = Vec::new();
        let mut offered = String::new();
        let mut no_credentials: Option<&str> = None;
        let note = |what: &str, offered: &mut String| {
            if offered.len() < MAX_OFFERED_LEN {
                if !offered.is_empty() {
                    offered.push_str(", ");
                }
                offered.extend(what.chars().take(MAX_OFFERED_LEN));
            }
        };
        let values = response.headers().get_all(kind.challenge_header());
        // A malformed challenge ends its own header line only (parse_list stops at the
        // error); others may still be usable.
        for c in values
            .flat_map(Challenge::parse_list)
            .filter_map(Result::ok)
        {
            if !c.is_digest() {
                note(c.scheme, &mut offered);
                continue;
            }
            // RFC 7616 §3.3: realm and nonce are mandatory; without them there is nothing
            // to compute.
            let (Some(realm), Some(nonce)) = (c.realm, c.nonce) else {
                continue;
            };
            let Some(algorithm) = DigestAlgorithm::from_param(c.algorithm) else {
                let name = c.algorithm.map_or("", |a| a.as_str());
                note(&format!("Digest {name}"), &mut offered);
                continue;
            };
            // RFC 7616 §3.3: prefer auth; auth-int only when it is all that is offered. A qop
            // list with neither cannot be answered.
            let qop = match c.qop {
                None => None,
                Some(q) if q.has_auth() => Some(DigestQop::Auth),
                Some(q) if q.has_auth_int() => Some(DigestQop::AuthInt),
                Some(q) => {
                    note(&format!("Digest qop={}", q.0), &mut offered);
                    continue;
                }
            };
            // RFC 2617 §3.2.2.2: -sess needs a cnonce, which is only sent with a qop.
            if algorithm.session && qop.is_none() {
                note(
                    &format!(
                        "Digest {} without qop",
                        c.algorithm.map_or("", |a| a.as_str())
                    ),
                    &mut offered,
                );
                continue;
            }
            let plain = unescape(realm);
            if !self
                .credentials
                .iter()
                .any(|k| k.can_answer(&plain, algorithm.hash))
            {
                no_credentials.get_or_insert(realm);
                continue;
            }
            let pick = Pick {
                challenge: c,
                realm,
                nonce,
                algorithm,
                qop,
            };
            // One answer per realm (RFC 3261 §22.3), the strongest; at equal rank the first
            // listed, which RFC 7616 §3.7 says is the server's preference.
            if let Some(p) = picks.iter_mut().find(|p| p.realm == realm) {
                if rank(algorithm) > rank(p.algorithm) {
                    *p = pick;
                }
            } else if picks.len() < MAX_REALMS {
                picks.push(pick);
            }
        }
        if !picks.is_empty() {
            return Ok(picks);
        }
        let status = response.status().code();
        Err(if let Some(realm) = no_credentials {
            AuthError::NoCredentials {
                realm: realm.to_owned(),
            }
        } else if !offered.is_empty() {
            AuthError::Unsupported { offered }
        } else {
            AuthError::NoChallenge { status }
        })
    }

    /// Writes credentials for every remembered realm into `request`, each with its next nonce
    /// count, replacing earlier ones for those realms. Returns how many were written.
    fn write(&mut self, request: &mut Request, cnonce: &str) -> usize {
        let method = request.method().as_str().to_owned();
        let uri = request.uri().to_owned();
        let body = request.body().clone();
        let credentials = &self.credentials;
        let mut lines = Vec::with_capacity(self.realms.len());
        self.realms.retain_mut(|st| {
            // RFC 7616 §3.4: nc counts requests on one nonce and must not wrap; forgetting
            // the nonce lets the server issue a new one.
            let Some(nc) = st.nc.checked_add(1) else {
                return false;
            };
            st.nc = nc;
            if let Some(v) = answer(credentials, st, &method, &uri, &body, cnonce) {
                lines.push((st.kind.credentials_header(), v));
            }
            true
        });

        for kind in [Kind::Www, Kind::Proxy] {
            let name = kind.credentials_header();
            let ours = |v: &str| {
                Credentials::parse(v).is_ok_and(|c| {
                    c.realm
                        .is_some_and(|r| self.realms.iter().any(|s| s.kind == kind && s.realm == r))
                })
            };
            let existing: Vec<&str> = request.headers().get_all(name).collect();
            if existing.iter().any(|v| ours(v)) {
                let kept: Vec<String> = existing
                    .into_iter()
                    .filter(|v| !ours(v))
                    .map(str::to_owned)
                    .collect();
                let h = request.headers_mut();
                h.remove(name);
                for v in &kept {
                    h.push(name, v);
                }
            }
        }
        let h = request.headers_mut();
        for (name, v) in &lines {
            h.push(*name, v);
        }
        lines.len()
    }
}

/// The Authorization value for one realm, or `None` when no credentials fit (cannot happen
/// for a realm chosen by `choose`, which checked).
fn answer(
    credentials: &[DigestCredentials],
    st: &RealmState,
    method: &str,
    uri: &str,
    body: &Bytes,
    cnonce: &str,
) -> Option<String> {
    let realm = unescape(&st.realm);
    let hash = st.algorithm.hash;
    // Credentials bound to this realm first, then any that answer every realm.
    let cred = credentials
        .iter()
        .find(|k| k.realm() == Some(&*realm) && k.can_answer(&realm, hash))
        .or_else(|| credentials.iter().find(|k| k.can_answer(&realm, hash)))?;
    let ha1 = cred.ha1(&realm, hash)?;
    let cnonce = st.session_cnonce.as_deref().unwrap_or(cnonce);
    let response = ResponseInput {
        algorithm: st.algorithm,
        ha1: &ha1,
        nonce: &unescape(&st.nonce),
        qop: st.qop,
        cnonce,
        nc: st.nc,
        method,
        uri,
        body,
    }
    .response();
    // RFC 7616 §3.4.4: with userhash the name is replaced by H(username:realm).
    let username: Cow<'_, str> = if st.userhash {
        Cow::Owned(user_hash(hash, cred.username(), &realm))
    } else {
        escape(cred.username())
    };
    let uri = escape(uri);
    let mut c = Credentials::digest(&username, &st.realm, &st.nonce, &uri, &response);
    c.algorithm = st.algorithm_named.then(|| st.algorithm.into());
    c.opaque = st.opaque.as_deref();
    c.userhash = st.userhash;
    if let Some(q) = st.qop {
        c.qop = Some(Qop(q.as_str()));
        c.cnonce = Some(cnonce);
        c.nc = Some(st.nc);
    }
    Some(c.to_string())
}

/// The cnonce is written inside a quoted-string and hashed as is, so it must need no escaping.
fn check_cnonce(cnonce: &str) -> Result<(), AuthError> {
    let ok = !cnonce.is_empty()
        && cnonce.len() <= 256
        && cnonce
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
    if ok {
        Ok(())
    } else {
        Err(AuthError::InvalidCnonce)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Method, StatusCode};

    fn challenged(realms: std::ops::Range<u32>) -> (Response, Request) {
        let req = Request::new(Method::Register, "sip:example.com");
        let mut resp = Response::from_request(&req, StatusCode::new(401));
        for r in realms {
            let v = format!(r#"Digest realm="r{r}", nonce="n", qop="auth""#);
            resp.headers_mut().push(HeaderName::WwwAuthenticate, &v);
        }
        (resp, req)
    }

    #[test]
    fn an_exhausted_nonce_count_forgets_the_nonce_instead_of_wrapping() {
        let mut auth = Authenticator::new(DigestCredentials::new("a", "pw"));
        let (resp, mut req) = challenged(0..1);
        auth.authorize(&resp, &mut req, "c").unwrap();
        auth.realms[0].nc = u32::MAX;
        let mut next = Request::new(Method::Register, "sip:example.com");
        assert!(!auth.preauthorize(&mut next, "c").unwrap());
        assert!(auth.realms.is_empty());
    }

    #[test]
    fn remembered_realms_are_bounded() {
        let mut auth = Authenticator::new(DigestCredentials::new("a", "pw"));
        let (resp, mut req) = challenged(0..20);
        auth.authorize(&resp, &mut req, "c").unwrap();
        assert_eq!(auth.realms.len(), MAX_REALMS, "one response");
        assert_eq!(req.headers().count(HeaderName::Authorization), MAX_REALMS);
        for round in 0..5 {
            let (resp, mut req) = challenged(100 + round * 8..108 + round * 8);
            auth.preauthorize(&mut req, "c").unwrap();
            auth.authorize(&resp, &mut req, "c").unwrap();
            assert!(auth.realms.len() <= MAX_REALMS, "across responses");
        }
    }

    #[test]
    fn a_new_realm_in_every_challenge_cannot_keep_us_retrying() {
        let mut auth = Authenticator::new(DigestCredentials::new("a", "pw"));
        let mut answered = 0;
        for r in 0..100 {
            let (resp, mut req) = challenged(r..r + 1);
            match auth.authorize(&resp, &mut req, "c") {
                Ok(()) => answered += 1,
                Err(e) => {
                    assert!(matches!(e, AuthError::Rejected { status: 401, .. }), "{e}");
                    break;
                }
            }
        }
        assert_eq!(answered, MAX_CHALLENGES_PER_ROUND);
        let (resp, mut req) = challenged(500..501);
        auth.preauthorize(&mut req, "c").unwrap();
        assert!(auth.authorize(&resp, &mut req, "c").is_ok(), "a new round");
    }
}
