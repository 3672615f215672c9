//! The digest arithmetic of RFC 2617 §3.2.2 and RFC 7616 §3.4, written once and used by both
//! the client ([`Authenticator`](super::Authenticator)) and the server helper
//! ([`verify`](super::verify)).
//!
//! Every hash is rendered as lowercase hex (RFC 7616 §3.4.1: "the hexadecimal representation
//! ... using lowercase characters"), and the hex text, not the raw digest, is what the next
//! step hashes. Values taken from a header are hashed without their quotes and with
//! backslash escapes removed (RFC 7616 §3.4: `unq()`).

use std::borrow::Cow;

use md5::Md5;
use sha2::{Digest, Sha256, Sha512_256};

use crate::message::{Algorithm, Qop};

/// The hash function behind a digest algorithm (RFC 7616 §3.3, §6.1).
///
/// Ordered from weakest to strongest, which is the order a client prefers them in when a
/// server offers several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum HashFunction {
    /// MD5 (RFC 1321): RFC 2617 and every SIP server since RFC 3261.
    Md5,
    /// SHA-256 (RFC 7616 §3.3).
    Sha256,
    /// SHA-512/256, the SHA-512 compression function truncated to 256 bits (RFC 7616 §3.3).
    Sha512_256,
}

impl HashFunction {
    /// Length of a hex digest of this function.
    pub const fn hex_len(self) -> usize {
        match self {
            HashFunction::Md5 => 32,
            HashFunction::Sha256 | HashFunction::Sha512_256 => 64,
        }
    }

    /// `H(part₀ ":" part₁ ":" …)` as lowercase hex.
    pub(crate) fn hex(self, parts: &[&[u8]]) -> String {
        match self {
            HashFunction::Md5 => hash_hex::<Md5>(parts),
            HashFunction::Sha256 => hash_hex::<Sha256>(parts),
            HashFunction::Sha512_256 => hash_hex::<Sha512_256>(parts),
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

fn hash_hex<D: Digest>(parts: &[&[u8]]) -> String {
    let mut d = D::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            d.update(b":");
        }
        d.update(p);
    }
    to_hex(&d.finalize())
}

fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

/// A digest algorithm this crate can compute: a hash function, optionally in its `-sess`
/// form (RFC 7616 §3.4.2), where HA1 is bound to the server and client nonces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DigestAlgorithm {
    /// The hash function.
    pub hash: HashFunction,
    /// The `-sess` variant.
    pub session: bool,
}

impl DigestAlgorithm {
    /// `MD5`, the default when a challenge names no algorithm (RFC 7616 §3.3).
    pub const MD5: Self = Self::new(HashFunction::Md5, false);
    /// `MD5-sess`
    pub const MD5_SESS: Self = Self::new(HashFunction::Md5, true);
    /// `SHA-256`
    pub const SHA256: Self = Self::new(HashFunction::Sha256, false);
    /// `SHA-256-sess`
    pub const SHA256_SESS: Self = Self::new(HashFunction::Sha256, true);
    /// `SHA-512-256`
    pub const SHA512_256: Self = Self::new(HashFunction::Sha512_256, false);
    /// `SHA-512-256-sess`
    pub const SHA512_256_SESS: Self = Self::new(HashFunction::Sha512_256, true);

    /// An algorithm from its parts.
    pub const fn new(hash: HashFunction, session: bool) -> Self {
        Self { hash, session }
    }

    /// The algorithm a challenge or credentials name; an absent parameter means MD5
    /// (RFC 7616 §3.3), an unknown one (`AKAv1-MD5`, …) gives `None`.
    pub fn from_param(algorithm: Option<Algorithm<'_>>) -> Option<Self> {
        match algorithm {
            None => Some(Self::MD5),
            Some(a) => Self::try_from(a).ok(),
        }
    }
}

/// Fails, handing the name back, for an algorithm this crate cannot compute.
impl<'a> TryFrom<Algorithm<'a>> for DigestAlgorithm {
    type Error = Algorithm<'a>;

    fn try_from(a: Algorithm<'a>) -> Result<Self, Self::Error> {
        Ok(match a {
            Algorithm::Md5 => Self::MD5,
            Algorithm::Md5Sess => Self::MD5_SESS,
            Algorithm::Sha256 => Self::SHA256,
            Algorithm::Sha256Sess => Self::SHA256_SESS,
            Algorithm::Sha512_256 => Self::SHA512_256,
            Algorithm::Sha512_256Sess => Self::SHA512_256_SESS,
            Algorithm::Other(_) => return Err(a),
        })
    }
}

impl From<DigestAlgorithm> for Algorithm<'static> {
    fn from(a: DigestAlgorithm) -> Self {
        match (a.hash, a.session) {
            (HashFunction::Md5, false) => Algorithm::Md5,
            (HashFunction::Md5, true) => Algorithm::Md5Sess,
            (HashFunction::Sha256, false) => Algorithm::Sha256,
            (HashFunction::Sha256, true) => Algorithm::Sha256Sess,
            (HashFunction::Sha512_256, false) => Algorithm::Sha512_256,
            (HashFunction::Sha512_256, true) => Algorithm::Sha512_256Sess,
        }
    }
}

/// A quality of protection (RFC 7616 §3.3 `qop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DigestQop {
    /// `auth`: authentication of method and Request-URI.
    Auth,
    /// `auth-int`: `auth` plus integrity of the body (HA2 includes `H(body)`).
    AuthInt,
}

impl DigestQop {
    /// The token on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            DigestQop::Auth => "auth",
            DigestQop::AuthInt => "auth-int",
        }
    }

    /// The single qop named in credentials; `None` for anything else.
    pub(crate) fn from_credentials(q: Qop<'_>) -> Option<Self> {
        let mut it = q.iter();
        let one = it.next()?;
        if it.next().is_some() {
            return None;
        }
        if one.eq_ignore_ascii_case("auth") {
            Some(DigestQop::Auth)
        } else if one.eq_ignore_ascii_case("auth-int") {
            Some(DigestQop::AuthInt)
        } else {
            None
        }
    }
}

/// `HA1 = H(username ":" realm ":" password)` (RFC 7616 §3.4.2), lowercase hex.
///
/// This is what an HA1 configuration stores instead of the password (see
/// [`DigestCredentials::from_ha1`](super::DigestCredentials::from_ha1)); `username` and
/// `realm` are the plain values, not quoted or escaped.
///
/// ```
/// use sansip_core::auth::{ha1, HashFunction};
/// assert_eq!(
///     ha1(HashFunction::Md5, "Mufasa", "testrealm@host.com", "Circle Of Life"),
///     "939e7578ed9e3c518a452acee763bce9",
/// );
/// ```
#[must_use]
pub fn ha1(hash: HashFunction, username: &str, realm: &str, password: &str) -> String {
    hash.hex(&[username.as_bytes(), realm.as_bytes(), password.as_bytes()])
}

/// The RFC 7616 §3.4.4 user hash: `H(username ":" realm)`.
pub(crate) fn user_hash(hash: HashFunction, username: &str, realm: &str) -> String {
    hash.hex(&[username.as_bytes(), realm.as_bytes()])
}

/// Everything `response` (RFC 7616 §3.4.1) is computed from, plain values throughout.
#[derive(Clone, Copy)]
pub(crate) struct ResponseInput<'a> {
    pub(crate) algorithm: DigestAlgorithm,
    /// `H(username:realm:password)`, before any `-sess` step.
    pub(crate) ha1: &'a str,
    pub(crate) nonce: &'a str,
    /// `None` for the RFC 2069 form, where neither cnonce nor nc is sent.
    pub(crate) qop: Option<DigestQop>,
    pub(crate) cnonce: &'a str,
    pub(crate) nc: u32,
    pub(crate) method: &'a str,
    pub(crate) uri: &'a str,
    pub(crate) body: &'a [u8],
}

impl ResponseInput<'_> {
    /// The `response` value, lowercase hex.
    pub(crate) fn response(&self) -> String {
        let h = self.algorithm.hash;
        // RFC 7616 §3.4.2: for -sess, A1 appends the nonce and cnonce to H(user:realm:pw),
        // binding the session key to this nonce pair.
        let ha1: Cow<'_, str> = if self.algorithm.session {
            Cow::Owned(h.hex(&[
                self.ha1.as_bytes(),
                self.nonce.as_bytes(),
                self.cnonce.as_bytes(),
            ]))
        } else {
            Cow::Borrowed(self.ha1)
        };
        // RFC 7616 §3.4.3: A2 = method:uri, and for auth-int also H(entity-body); an
        // empty body hashes as the empty string.
        let ha2 = match self.qop {
            Some(DigestQop::AuthInt) => {
                let hbody = h.hex(&[self.body]);
                h.hex(&[
                    self.method.as_bytes(),
                    self.uri.as_bytes(),
                    hbody.as_bytes(),
                ])
            }
            _ => h.hex(&[self.method.as_bytes(), self.uri.as_bytes()]),
        };
        match self.qop {
            // RFC 7616 §3.4.1: KD(HA1, nonce:nc:cnonce:qop:HA2), nc as 8 lowercase hex digits.
            Some(q) => {
                let nc = format!("{:08x}", self.nc);
                h.hex(&[
                    ha1.as_bytes(),
                    self.nonce.as_bytes(),
                    nc.as_bytes(),
                    self.cnonce.as_bytes(),
                    q.as_str().as_bytes(),
                    ha2.as_bytes(),
                ])
            }
            // RFC 2617 §3.2.2.1: without qop, the RFC 2069 form KD(HA1, nonce:HA2).
            None => h.hex(&[ha1.as_bytes(), self.nonce.as_bytes(), ha2.as_bytes()]),
        }
    }
}

/// A set of precomputed HA1 values, one slot per hash function.
#[derive(Clone, Default)]
pub(crate) struct Ha1Set([Option<String>; 3]);

impl Ha1Set {
    pub(crate) fn get(&self, hash: HashFunction) -> Option<&str> {
        self.0.get(hash.index())?.as_deref()
    }

    pub(crate) fn set(&mut self, hash: HashFunction, ha1: String) {
        if let Some(slot) = self.0.get_mut(hash.index()) {
            *slot = Some(ha1);
        }
    }

    /// The hash functions present, for a redacted `Debug`.
    pub(crate) fn hashes(&self) -> impl Iterator<Item = HashFunction> + '_ {
        [
            HashFunction::Md5,
            HashFunction::Sha256,
            HashFunction::Sha512_256,
        ]
        .into_iter()
        .filter(|h| self.get(*h).is_some())
    }
}

/// `unq()` of RFC 7616 §3.4: the parser keeps quoted-pair escapes (`\"`), the hash wants the
/// plain text.
pub(crate) fn unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The inverse of [`unescape`]: a plain value made safe inside a quoted-string
/// (RFC 3261 §25.1 quoted-pair).
pub(crate) fn escape(s: &str) -> Cow<'_, str> {
    if !s.contains(['"', '\\']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// Compares two hex digests without an early exit, so a forged `response` learns nothing
/// from timing; case is ignored because RFC 7616 §3.4.1 only asks senders for lowercase.
pub(crate) fn hex_eq(a: &str, b: &str) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| {
        acc | (x.to_ascii_lowercase() ^ y.to_ascii_lowercase())
    }) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const MUFASA: &str = "Mufasa";
    const PASSWORD: &str = "Circle Of Life";

    fn input<'a>(
        algorithm: DigestAlgorithm,
        ha1: &'a str,
        nonce: &'a str,
        cnonce: &'a str,
    ) -> ResponseInput<'a> {
        ResponseInput {
            algorithm,
            ha1,
            nonce,
            qop: Some(DigestQop::Auth),
            cnonce,
            nc: 1,
            method: "GET",
            uri: "/dir/index.html",
            body: b"",
        }
    }

    /// RFC 2617 §3.5, the example every digest implementation starts from.
    #[test]
    fn rfc2617_section_3_5_example() {
        let realm = "testrealm@host.com";
        let h = ha1(HashFunction::Md5, MUFASA, realm, PASSWORD);
        let r = input(
            DigestAlgorithm::MD5,
            &h,
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            "0a4f113b",
        );
        assert_eq!(r.response(), "6629fae49393a05397450978507c4ef1");
    }

    const RFC7616_REALM: &str = "http-auth@example.org";
    /// RFC 7616 §3.9.1 spells the password with a lowercase "of", unlike RFC 2617 §3.5; the
    /// published responses only come out with that spelling.
    const RFC7616_PASSWORD: &str = "Circle of Life";
    const RFC7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    /// RFC 7616 §3.9.1, both the MD5 and the SHA-256 response.
    #[test]
    fn rfc7616_section_3_9_1_examples() {
        for (alg, expected) in [
            (DigestAlgorithm::MD5, "8ca523f5e9506fed4657c9700eebdbec"),
            (
                DigestAlgorithm::SHA256,
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
        ] {
            let h = ha1(alg.hash, MUFASA, RFC7616_REALM, RFC7616_PASSWORD);
            let r = input(alg, &h, RFC7616_NONCE, RFC7616_CNONCE);
            assert_eq!(r.response(), expected, "{alg:?}");
        }
    }

    // The following vectors were computed independently of this code with Python's hashlib:
    //
    // python3 -c '
    // import hashlib
    // H=lambda a,s: hashlib.new(a, s.encode()).hexdigest()
    // u,r,p="Mufasa","http-auth@example.org","Circle of Life"
    // n="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
    // c="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
    // def resp(a, sess=False, qop="auth", body=None, nc="00000001", m="GET", uri="/dir/index.html"):
    //     ha1=H(a, f"{u}:{r}:{p}")
    //     if sess: ha1=H(a, f"{ha1}:{n}:{c}")
    //     ha2=H(a, f"{m}:{uri}") if body is None else H(a, f"{m}:{uri}:{H(a, body)}")
    //     return H(a, f"{ha1}:{n}:{ha2}") if qop is None else H(a, f"{ha1}:{n}:{nc}:{c}:{qop}:{ha2}")
    // print(resp("sha512_256"))
    // print(resp("md5", sess=True))
    // print(resp("sha256", sess=True, nc="0000000a"))
    // print(resp("sha256", qop="auth-int", body="v=0\r\n"))
    // print(resp("md5", qop=None))
    // print(H("sha256", "Mufasa:http-auth@example.org"))'

    /// SHA-512-256, qop=auth, the RFC 7616 §3.9.1 inputs (hashlib vector above).
    #[test]
    fn sha512_256_matches_an_independent_computation() {
        let alg = DigestAlgorithm::SHA512_256;
        let h = ha1(alg.hash, MUFASA, RFC7616_REALM, RFC7616_PASSWORD);
        assert_eq!(h.len(), HashFunction::Sha512_256.hex_len());
        let r = input(alg, &h, RFC7616_NONCE, RFC7616_CNONCE);
        assert_eq!(r.response(), SHA512_256_AUTH);
    }

    /// MD5-sess and SHA-256-sess: HA1 is rehashed with nonce and cnonce (hashlib vectors).
    #[test]
    fn sess_variants_match_an_independent_computation() {
        let h = ha1(HashFunction::Md5, MUFASA, RFC7616_REALM, RFC7616_PASSWORD);
        let r = input(DigestAlgorithm::MD5_SESS, &h, RFC7616_NONCE, RFC7616_CNONCE);
        assert_eq!(r.response(), MD5_SESS_AUTH);

        let h = ha1(
            HashFunction::Sha256,
            MUFASA,
            RFC7616_REALM,
            RFC7616_PASSWORD,
        );
        let mut r = input(
            DigestAlgorithm::SHA256_SESS,
            &h,
            RFC7616_NONCE,
            RFC7616_CNONCE,
        );
        r.nc = 10;
        assert_eq!(r.response(), SHA256_SESS_AUTH_NC10);
    }

    /// qop=auth-int puts H(body) into HA2 (hashlib vector).
    #[test]
    fn auth_int_hashes_the_body() {
        let h = ha1(
            HashFunction::Sha256,
            MUFASA,
            RFC7616_REALM,
            RFC7616_PASSWORD,
        );
        let mut r = input(DigestAlgorithm::SHA256, &h, RFC7616_NONCE, RFC7616_CNONCE);
        r.qop = Some(DigestQop::AuthInt);
        r.body = b"v=0\r\n";
        assert_eq!(r.response(), SHA256_AUTH_INT);
        r.body = b"v=1\r\n";
        assert_ne!(r.response(), SHA256_AUTH_INT, "the body must be covered");
    }

    /// Without qop the RFC 2069 form is used: no nc, no cnonce (hashlib vector).
    #[test]
    fn no_qop_uses_the_rfc_2069_form() {
        let h = ha1(HashFunction::Md5, MUFASA, RFC7616_REALM, RFC7616_PASSWORD);
        let mut r = input(DigestAlgorithm::MD5, &h, RFC7616_NONCE, "ignored");
        r.qop = None;
        r.nc = 99;
        assert_eq!(r.response(), MD5_NO_QOP);
    }

    #[test]
    fn user_hash_matches_an_independent_computation() {
        assert_eq!(
            user_hash(HashFunction::Sha256, MUFASA, RFC7616_REALM),
            USERHASH_SHA256
        );
    }

    #[test]
    fn algorithms_map_both_ways() {
        for a in [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
            Algorithm::Sha512_256,
            Algorithm::Sha512_256Sess,
        ] {
            let d = DigestAlgorithm::try_from(a).unwrap();
            assert_eq!(Algorithm::from(d), a);
        }
        assert!(DigestAlgorithm::try_from(Algorithm::Other("AKAv1-MD5")).is_err());
        assert_eq!(
            DigestAlgorithm::from_param(None),
            Some(DigestAlgorithm::MD5)
        );
        assert!(HashFunction::Sha512_256 > HashFunction::Sha256);
        assert!(HashFunction::Sha256 > HashFunction::Md5);
    }

    #[test]
    fn escapes_round_trip_and_compare_ignores_case() {
        assert_eq!(unescape(r#"a\"b\\c"#), r#"a"b\c"#);
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(unescape(&escape(r#"x"\y"#)), r#"x"\y"#);
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert!(hex_eq("abcDEF", "ABCdef"));
        assert!(!hex_eq("abc", "abd"));
        assert!(!hex_eq("abc", "abcd"));
    }

    const SHA512_256_AUTH: &str =
        "430d05014cecc49cab6fbe03176d41a1da86cbfe24a16580e22aaad928d960d0";
    const MD5_SESS_AUTH: &str = "e783283f46242139c486a698fec7211d";
    const SHA256_SESS_AUTH_NC10: &str =
        "748317db84c65271b7674b657f77b6d9e80249588df09466740f18f44e8d43d2";
    const SHA256_AUTH_INT: &str =
        "385d2de062660ced11876f42d9497c69cacf5caaf3d951dd424aee9f7157d563";
    const MD5_NO_QOP: &str = "7b2cc3b30e75b4777ea31027084363fd";
    const USERHASH_SHA256: &str =
        "a947aad205e80e429958a387394944c6b496301e79f89d35a4cc23b6ee12b5b6";
}
