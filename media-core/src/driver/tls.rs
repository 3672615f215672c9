//! TLS for `transport=tls` and `wss://` links: rustls through futures-rustls, trusting the
//! system roots plus any CA files the application names, or — for tests only — anything.
//!
//! The crypto provider is aws-lc-rs when the `aws-lc-rs` feature is on (it is with `rtc`, so
//! DTLS-SRTP and TLS share one provider), else ring (feature `ring`); a build with neither
//! has no TLS links and says so when one is asked for.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use futures_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use futures_rustls::rustls::crypto::{self, CryptoProvider};
use futures_rustls::rustls::pki_types::pem::PemObject;
use futures_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use futures_rustls::rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::Stream;

/// Which server certificates a TLS link trusts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM files to trust besides the system roots: a private CA, or a self-signed server
    /// certificate.
    pub ca_files: Vec<PathBuf>,
    /// Trust any certificate, unverified. For tests against throwaway certificates only.
    pub insecure: bool,
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e.to_string())
}

/// The rustls client configuration for `options`.
pub(crate) fn client_config(options: &TlsOptions) -> io::Result<Arc<ClientConfig>> {
    let provider = Arc::new(provider()?);
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(invalid)?;
    if options.insecure {
        let verifier = Arc::new(AnyCertificate(provider));
        return Ok(Arc::new(
            builder
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth(),
        ));
    }
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for e in &native.errors {
        tracing::debug!(error = %e, "a system root certificate could not be read");
    }
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(added, "system root certificates");
    for file in &options.ca_files {
        let pem = std::fs::read(file)?;
        let mut any = false;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            roots.add(cert.map_err(invalid)?).map_err(invalid)?;
            any = true;
        }
        if !any {
            return Err(invalid(format!("{}: no certificate in it", file.display())));
        }
    }
    Ok(Arc::new(
        builder.with_root_certificates(roots).with_no_client_auth(),
    ))
}

#[cfg(feature = "aws-lc-rs")]
fn provider() -> io::Result<CryptoProvider> {
    Ok(crypto::aws_lc_rs::default_provider())
}

#[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
fn provider() -> io::Result<CryptoProvider> {
    Ok(crypto::ring::default_provider())
}

#[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
fn provider() -> io::Result<CryptoProvider> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "TLS links need a crypto provider: build sansip-media with the `rtc`, `aws-lc-rs` or `ring` feature",
    ))
}

/// Runs the TLS handshake for `host` over `stream`.
pub(crate) async fn wrap(
    config: Arc<ClientConfig>,
    host: &str,
    stream: Box<dyn Stream>,
) -> io::Result<Box<dyn Stream>> {
    let name = ServerName::try_from(host.to_string()).map_err(invalid)?;
    let tls = futures_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await?;
    Ok(Box::new(tls))
}

/// Accepts every certificate; signatures are still checked so the handshake is sound.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, futures_rustls::rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, futures_rustls::rustls::Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, futures_rustls::rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
