//! A user's secret: a password, or HA1 values so a configuration never holds the password.

use std::fmt;

use super::digest::{Ha1Set, ha1};
use super::{AuthError, HashFunction};

/// A user name with the secret that proves it: a password, or precomputed HA1 values for one
/// realm ("HA1 credentials", the `ha1` column of Kamailio's and Asterisk's user tables).
///
/// The secret never leaves this type: `Debug` shows only the user name, the realm and which
/// kind of secret it is, and nothing here implements `Display`.
///
/// ```
/// use sansip_core::auth::{ha1, DigestCredentials, HashFunction};
/// let alice = DigestCredentials::new("alice", "correct horse");
/// assert!(!format!("{alice:?}").contains("horse"));
///
/// // What a provisioning tool stores instead of the password:
/// let h = ha1(HashFunction::Sha256, "alice", "example.com", "correct horse");
/// let alice = DigestCredentials::from_ha1("alice", "example.com", HashFunction::Sha256, &h)?;
/// assert_eq!(alice.realm(), Some("example.com"));
/// # Ok::<(), sansip_core::auth::AuthError>(())
/// ```
#[derive(Clone)]
pub struct DigestCredentials {
    username: String,
    realm: Option<String>,
    secret: Secret,
}

#[derive(Clone)]
enum Secret {
    Password(String),
    Ha1(Ha1Set),
}

impl DigestCredentials {
    /// A user name and password, answering any realm (narrow it with
    /// [`for_realm`](Self::for_realm)). `username` is the plain value; it is escaped when
    /// written into a header.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            realm: None,
            secret: Secret::Password(password.into()),
        }
    }

    /// A user name and `H(username:realm:password)` for `realm`, as lowercase or uppercase hex
    /// (see [`ha1`](super::ha1)). An HA1 only answers its own realm and hash function; add
    /// the HA1 of another hash function with [`with_ha1`](Self::with_ha1).
    pub fn from_ha1(
        username: impl Into<String>,
        realm: impl Into<String>,
        hash: HashFunction,
        ha1_hex: &str,
    ) -> Result<Self, AuthError> {
        Self {
            username: username.into(),
            realm: Some(realm.into()),
            secret: Secret::Ha1(Ha1Set::default()),
        }
        .with_ha1(hash, ha1_hex)
    }

    /// Adds the HA1 for another hash function, so a server offering SHA-256 and MD5 can be
    /// answered with the stronger one. Password credentials need none and ignore it (after
    /// checking it).
    pub fn with_ha1(mut self, hash: HashFunction, ha1_hex: &str) -> Result<Self, AuthError> {
        if ha1_hex.len() != hash.hex_len() || !ha1_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(AuthError::InvalidHa1 { hash });
        }
        if let Secret::Ha1(set) = &mut self.secret {
            // Lowercase, because the next hash step hashes this text (RFC 7616 §3.4.1).
            set.set(hash, ha1_hex.to_ascii_lowercase());
        }
        Ok(self)
    }

    /// Restricts these credentials to one realm (RFC 3261 §22.1: the realm tells the user
    /// which credentials to use). HA1 credentials are always bound to theirs.
    pub fn for_realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Some(realm.into());
        self
    }

    /// The user name.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The realm these credentials are bound to, if any.
    pub fn realm(&self) -> Option<&str> {
        self.realm.as_deref()
    }

    /// Whether these credentials may answer `realm` (plain, unescaped).
    pub(crate) fn serves(&self, realm: &str) -> bool {
        self.realm.as_deref().is_none_or(|r| r == realm)
    }

    /// `H(username:realm:password)` for `realm`, or `None` when the realm is not ours or no
    /// HA1 was given for `hash`.
    pub(crate) fn ha1(&self, realm: &str, hash: HashFunction) -> Option<String> {
        if !self.serves(realm) {
            return None;
        }
        match &self.secret {
            Secret::Password(p) => Some(ha1(hash, &self.username, realm, p)),
            Secret::Ha1(set) => set.get(hash).map(str::to_owned),
        }
    }

    /// Whether an HA1 for `hash` and `realm` is available without computing it.
    pub(crate) fn can_answer(&self, realm: &str, hash: HashFunction) -> bool {
        self.serves(realm)
            && match &self.secret {
                Secret::Password(_) => true,
                Secret::Ha1(set) => set.get(hash).is_some(),
            }
    }
}

/// Written by hand so neither the password nor an HA1 (which is as good as the password for
/// its realm, RFC 7616 §5.2) can reach a log.
impl fmt::Debug for DigestCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Redacted<'a>(&'a Secret);
        impl fmt::Debug for Redacted<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.0 {
                    Secret::Password(_) => f.write_str("Password(<redacted>)"),
                    Secret::Ha1(set) => {
                        f.write_str("Ha1(")?;
                        f.debug_list().entries(set.hashes()).finish()?;
                        f.write_str(", <redacted>)")
                    }
                }
            }
        }
        f.debug_struct("DigestCredentials")
            .field("username", &self.username)
            .field("realm", &self.realm)
            .field("secret", &Redacted(&self.secret))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let p = DigestCredentials::new("alice", "s3cr3t-pw");
        let s = format!("{p:?} {p:#?}");
        assert!(!s.contains("s3cr3t-pw"), "{s}");
        assert!(s.contains("alice"));

        let h = ha1(HashFunction::Md5, "alice", "r", "s3cr3t-pw");
        let c = DigestCredentials::from_ha1("alice", "r", HashFunction::Md5, &h).unwrap();
        let s = format!("{c:?} {c:#?}");
        assert!(!s.contains(&h), "{s}");
        assert!(s.contains("Md5"), "{s}");
    }

    #[test]
    fn ha1_credentials_answer_only_their_realm_and_hash() {
        let h = ha1(HashFunction::Md5, "alice", "r", "pw");
        let c = DigestCredentials::from_ha1("alice", "r", HashFunction::Md5, &h.to_uppercase())
            .unwrap();
        assert_eq!(c.ha1("r", HashFunction::Md5), Some(h));
        assert_eq!(c.ha1("other", HashFunction::Md5), None);
        assert_eq!(c.ha1("r", HashFunction::Sha256), None);
        assert!(!c.can_answer("r", HashFunction::Sha256));
    }

    #[test]
    fn a_malformed_ha1_is_refused() {
        let e = DigestCredentials::from_ha1("a", "r", HashFunction::Sha256, "00ff").unwrap_err();
        assert_eq!(
            e,
            AuthError::InvalidHa1 {
                hash: HashFunction::Sha256
            }
        );
        let not_hex = "z".repeat(32);
        assert!(DigestCredentials::from_ha1("a", "r", HashFunction::Md5, &not_hex).is_err());
    }

    #[test]
    fn password_credentials_answer_any_realm_unless_bound() {
        let c = DigestCredentials::new("alice", "pw");
        assert!(c.can_answer("anything", HashFunction::Sha512_256));
        let c = c.for_realm("example.com");
        assert!(!c.serves("example.org"));
        assert_eq!(
            c.ha1("example.com", HashFunction::Md5),
            Some(ha1(HashFunction::Md5, "alice", "example.com", "pw"))
        );
    }
}
