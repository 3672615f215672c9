//! DTLS for every call: str0m's own DTLS (dimpl) on aws-lc-rs, which also takes a peer
//! whose certificate is RSA.
//!
//! dimpl verifies only ECDSA signatures, as browsers' certificates are. Desk-phone stacks
//! present RSA certificates (linphone 5.1 through mbedTLS), so a call with them never got
//! past the peer's `CertificateVerify`. Everything here is dimpl's and str0m's own
//! provider, except the signature verifier, which adds RSA PKCS #1 v1.5 (RFC 5246 §7.4.8)
//! and hands every other signature to dimpl's.
//!
//! One limit remains inside dimpl: as a server it asks only for `ecdsa_sign` client
//! certificates, and OpenSSL clients (baresip 1.0) then send none at all; as a client it
//! offers no ECDHE_RSA suite. With the `openssl` feature, the system OpenSSL runs every
//! handshake instead ([`openssl`]), which has neither limit.

#[cfg(feature = "openssl")]
mod openssl;

use std::sync::Arc;
use std::time::Instant;

use aws_lc_rs::signature::{self, UnparsedPublicKey};
use dimpl::CryptoError as SigError;
use dimpl::crypto::{HashAlgorithm, SignatureAlgorithm, SignatureVerifier};
use str0m::crypto::CryptoProvider;
use str0m::crypto::dtls::{
    DtlsCert, DtlsImplError, DtlsInstance, DtlsOutput, DtlsProvider, DtlsVersion, ProtocolVersion,
};
use str0m_proto::crypto::CryptoError;
use x509_cert::der::Decode;

/// str0m's aws-lc-rs provider with our DTLS in place of its own.
pub(crate) fn provider() -> CryptoProvider {
    static DTLS: Dtls = Dtls;
    CryptoProvider {
        dtls_provider: &DTLS,
        ..str0m::crypto::from_feature_flags()
    }
}

/// dimpl's aws-lc-rs crypto, with [`RsaOrDefault`] verifying signatures.
fn dimpl_crypto() -> dimpl::crypto::CryptoProvider {
    static VERIFIER: RsaOrDefault = RsaOrDefault;
    dimpl::crypto::CryptoProvider {
        signature_verification: &VERIFIER,
        ..dimpl::crypto::aws_lc_rs::default_provider()
    }
}

/// RSA PKCS #1 v1.5 signatures ourselves, everything else by dimpl's verifier.
#[derive(Debug)]
struct RsaOrDefault;

impl SignatureVerifier for RsaOrDefault {
    fn verify_signature(
        &self,
        cert_der: &[u8],
        data: &[u8],
        signature: &[u8],
        hash_alg: HashAlgorithm,
        sig_alg: SignatureAlgorithm,
    ) -> Result<(), SigError> {
        if sig_alg != SignatureAlgorithm::RSA {
            return dimpl::crypto::aws_lc_rs::default_provider()
                .signature_verification
                .verify_signature(cert_der, data, signature, hash_alg, sig_alg);
        }
        let algorithm: &dyn signature::VerificationAlgorithm = match hash_alg {
            HashAlgorithm::SHA256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            HashAlgorithm::SHA384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            HashAlgorithm::SHA512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            // Still what some stacks sign DTLS 1.2 handshakes with.
            HashAlgorithm::SHA1 => &signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
            _ => return Err(SigError::UnsupportedSignatureAlgorithm(sig_alg)),
        };
        let cert = x509_cert::Certificate::from_der(cert_der)
            .map_err(|_| SigError::CertificateParseFailed)?;
        // For RSA the bit string is the DER RSAPublicKey aws-lc-rs takes.
        let key = cert
            .tbs_certificate()
            .subject_public_key_info()
            .subject_public_key
            .as_bytes()
            .ok_or(SigError::InvalidSubjectPublicKey)?;
        UnparsedPublicKey::new(algorithm, key)
            .verify(data, signature)
            .map_err(|_| SigError::InvalidSignatureFormat)
    }
}

#[derive(Debug)]
struct Dtls;

impl DtlsProvider for Dtls {
    fn generate_certificate(&self) -> Option<DtlsCert> {
        dimpl::certificate::generate_self_signed_certificate().ok()
    }

    fn new_dtls(
        &self,
        cert: &DtlsCert,
        now: Instant,
        dtls_version: DtlsVersion,
        mtu: Option<usize>,
    ) -> Result<Box<dyn DtlsInstance>, CryptoError> {
        #[cfg(feature = "openssl")]
        {
            // OpenSSL speaks DTLS 1.2 whatever was asked: it is what every SIP peer speaks.
            let _ = dtls_version;
            Ok(Box::new(openssl::Instance::new(cert, now, mtu)?))
        }
        #[cfg(not(feature = "openssl"))]
        self.new_dimpl(cert, now, dtls_version, mtu)
    }
}

impl Dtls {
    #[cfg_attr(feature = "openssl", allow(dead_code))]
    fn new_dimpl(
        &self,
        cert: &DtlsCert,
        now: Instant,
        dtls_version: DtlsVersion,
        mtu: Option<usize>,
    ) -> Result<Box<dyn DtlsInstance>, CryptoError> {
        // ICE has checked return routability already: no cookie exchange (as str0m does).
        let mut builder = dimpl::Config::builder()
            .use_server_cookie(false)
            .with_crypto_provider(dimpl_crypto());
        if let Some(mtu) = mtu {
            builder = builder.mtu(mtu);
        }
        let config = Arc::new(
            builder
                .build()
                .map_err(|e| CryptoError::Other(format!("dimpl config: {e}")))?,
        );
        let cert = cert.clone();
        let dtls = match dtls_version {
            DtlsVersion::Dtls12 => dimpl::Dtls::new_12(config, cert, now),
            DtlsVersion::Dtls13 => dimpl::Dtls::new_13(config, cert, now),
            DtlsVersion::Auto => dimpl::Dtls::new_auto(config, cert, now),
            v => return Err(CryptoError::Other(format!("DTLS version {v}"))),
        };
        Ok(Box::new(Instance(dtls)))
    }
}

struct Instance(dimpl::Dtls);

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Instance")
    }
}

impl DtlsInstance for Instance {
    fn set_active(&mut self, active: bool) {
        self.0.set_active(active);
    }
    fn handle_packet(&mut self, packet: &[u8]) -> Result<(), DtlsImplError> {
        self.0.handle_packet(packet)
    }
    fn poll_output<'a>(&mut self, buf: &'a mut [u8]) -> DtlsOutput<'a> {
        self.0.poll_output(buf)
    }
    fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsImplError> {
        self.0.handle_timeout(now)
    }
    fn send_application_data(&mut self, data: &[u8]) -> Result<usize, DtlsImplError> {
        self.0.send_application_data(data)
    }
    fn is_active(&self) -> bool {
        self.0.is_active()
    }
    fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.0.protocol_version()
    }
    fn is_closing(&self) -> bool {
        self.0.is_closing()
    }
    fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
    fn close(&mut self) -> Result<(), DtlsImplError> {
        self.0.close()
    }
}
