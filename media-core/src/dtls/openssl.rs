//! DTLS through the system OpenSSL (feature `openssl`), for peers whose certificate is RSA.
//!
//! dimpl asks a DTLS client only for `ecdsa_sign` certificates and, as a client, offers no
//! ECDHE_RSA suite. Endpoints that make RSA certificates (baresip 1.0, FreeSWITCH, Janus in
//! its default setup) therefore never finish a handshake with it. OpenSSL takes either.
//!
//! OpenSSL runs over an in-memory datagram queue, so nothing here touches a socket. One
//! thing is not ours to drive: OpenSSL times its handshake retransmissions with the system
//! clock. [`Instance`] asks to be woken every [`HANDSHAKE_TICK`] while the handshake runs
//! and lets OpenSSL retransmit whatever is due then; a simulated clock does not move it.
//! The default backend (dimpl) keeps scenarios replayable.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use dimpl::{CertificateError, Error as DtlsImplError, KeyingMaterial, SecurityError, SrtpProfile};
use openssl::pkey::PKey;
use openssl::srtp::SrtpProfileId;
use openssl::ssl::{
    ErrorCode, Ssl, SslContext, SslMethod, SslOptions, SslStream, SslVerifyMode, SslVersion,
};
use openssl::x509::X509;
use str0m::crypto::dtls::{DtlsCert, DtlsInstance, DtlsOutput, ProtocolVersion};
use str0m_proto::crypto::CryptoError;

/// How often a handshake in progress is polled for retransmissions (OpenSSL's first
/// retransmission comes after one second, then doubles).
pub(super) const HANDSHAKE_TICK: Duration = Duration::from_millis(250);

/// RFC 5764 §4.1.2 profiles, in our order of preference, as OpenSSL names them.
const SRTP_PROFILES: &str = "SRTP_AEAD_AES_128_GCM:SRTP_AEAD_AES_256_GCM:SRTP_AES128_CM_SHA1_80";

/// RFC 5705 label for DTLS-SRTP keys (RFC 5764 §4.2).
const EXPORTER_LABEL: &str = "EXTRACTOR-dtls_srtp";

/// TLS alert `handshake_failure`, what a failed OpenSSL handshake is reported as.
const HANDSHAKE_FAILURE: u8 = 40;

/// Datagrams in and out of OpenSSL: every read hands it one whole datagram, every write
/// it makes is one record to send.
#[derive(Debug, Default)]
struct Datagrams {
    incoming: VecDeque<Vec<u8>>,
    outgoing: VecDeque<Vec<u8>>,
}

impl Read for Datagrams {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(datagram) = self.incoming.pop_front() else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        // A datagram longer than OpenSSL's buffer is cut, as a UDP socket would cut it.
        let n = datagram.len().min(buf.len());
        buf[..n].copy_from_slice(&datagram[..n]);
        Ok(n)
    }
}

impl Write for Datagrams {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.outgoing.push_back(buf.to_vec());
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What the handshake produced and str0m has not polled yet, in the order it wants them.
#[derive(Debug)]
enum Event {
    PeerCert(Vec<u8>),
    Keys(Vec<u8>, SrtpProfile),
    Connected,
    Data(Vec<u8>),
    CloseNotify,
}

/// Where the connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No role yet: str0m has not said whether we are client or server.
    Idle,
    Handshaking,
    Connected,
    Closed,
}

/// One DTLS association on OpenSSL.
pub(super) struct Instance {
    stream: SslStream<Datagrams>,
    phase: Phase,
    active: bool,
    events: VecDeque<Event>,
    now: Instant,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("phase", &self.phase)
            .field("active", &self.active)
            .finish()
    }
}

impl Instance {
    pub(super) fn new(
        cert: &DtlsCert,
        now: Instant,
        mtu: Option<usize>,
    ) -> Result<Self, CryptoError> {
        let ssl = ssl(cert, mtu).map_err(|e| CryptoError::Other(format!("OpenSSL DTLS: {e}")))?;
        let stream = SslStream::new(ssl, Datagrams::default())
            .map_err(|e| CryptoError::Other(format!("OpenSSL DTLS: {e}")))?;
        Ok(Instance {
            stream,
            phase: Phase::Idle,
            active: false,
            events: VecDeque::new(),
            now,
        })
    }

    /// Moves the handshake on, or reads records once connected; OpenSSL retransmits a
    /// flight here when its timer has run out.
    fn drive(&mut self) -> Result<(), DtlsImplError> {
        match self.phase {
            Phase::Idle | Phase::Closed => Ok(()),
            // SSL_connect and SSL_accept pick the role, then carry on where they were.
            Phase::Handshaking => match if self.active {
                self.stream.connect()
            } else {
                self.stream.accept()
            } {
                Ok(()) => {
                    self.connected()?;
                    self.read_records()
                }
                Err(e) if e.code() == ErrorCode::WANT_READ => Ok(()),
                Err(e) => {
                    tracing::warn!(error = %e, "DTLS handshake failed (OpenSSL)");
                    self.phase = Phase::Closed;
                    Err(DtlsImplError::SecurityError(SecurityError::FatalAlert {
                        description: HANDSHAKE_FAILURE,
                    }))
                }
            },
            Phase::Connected => self.read_records(),
        }
    }

    fn connected(&mut self) -> Result<(), DtlsImplError> {
        let ssl = self.stream.ssl();
        let cert = ssl.peer_certificate().and_then(|c| c.to_der().ok()).ok_or(
            DtlsImplError::CertificateError(if self.active {
                CertificateError::NoServerCertificateReceived
            } else {
                CertificateError::NoClientCertificateReceived
            }),
        )?;
        let profile = match ssl.selected_srtp_profile().map(|p| p.id()) {
            Some(SrtpProfileId::SRTP_AEAD_AES_128_GCM) => SrtpProfile::AEAD_AES_128_GCM,
            Some(SrtpProfileId::SRTP_AEAD_AES_256_GCM) => SrtpProfile::AEAD_AES_256_GCM,
            Some(SrtpProfileId::SRTP_AES128_CM_SHA1_80) => SrtpProfile::AES128_CM_SHA1_80,
            // RFC 5764 §4.1.1: no use_srtp agreement means no keys for media.
            _ => {
                self.phase = Phase::Closed;
                return Err(DtlsImplError::SecurityError(SecurityError::FatalAlert {
                    description: HANDSHAKE_FAILURE,
                }));
            }
        };
        let mut keys = vec![0; keying_material_len(profile)];
        ssl.export_keying_material(&mut keys, EXPORTER_LABEL, None)
            .map_err(|e| {
                tracing::warn!(error = %e, "DTLS-SRTP key export failed (OpenSSL)");
                DtlsImplError::SecurityError(SecurityError::FatalAlert {
                    description: HANDSHAKE_FAILURE,
                })
            })?;
        tracing::debug!(
            version = ssl.version_str(),
            ?profile,
            "DTLS connected (OpenSSL)"
        );
        self.events.push_back(Event::PeerCert(cert));
        self.events.push_back(Event::Keys(keys, profile));
        self.events.push_back(Event::Connected);
        self.phase = Phase::Connected;
        Ok(())
    }

    fn read_records(&mut self) -> Result<(), DtlsImplError> {
        let mut buf = [0; 2048];
        loop {
            match self.stream.ssl_read(&mut buf) {
                Ok(n) => self.events.push_back(Event::Data(buf[..n].to_vec())),
                Err(e) if e.code() == ErrorCode::WANT_READ => return Ok(()),
                Err(e) if e.code() == ErrorCode::ZERO_RETURN => {
                    self.phase = Phase::Closed;
                    self.events.push_back(Event::CloseNotify);
                    return Ok(());
                }
                // A record that does not decrypt is dropped, as on any datagram transport.
                Err(e) if e.code() == ErrorCode::SSL => {
                    tracing::debug!(error = %e, "DTLS record dropped (OpenSSL)");
                    return Ok(());
                }
                Err(e) => {
                    tracing::debug!(error = %e, "DTLS read (OpenSSL)");
                    return Ok(());
                }
            }
        }
    }
}

/// One OpenSSL DTLS connection with our certificate, asking the peer for theirs (any key
/// type: the SDP fingerprint, which str0m checks, is what authenticates it).
fn ssl(cert: &DtlsCert, mtu: Option<usize>) -> Result<Ssl, openssl::error::ErrorStack> {
    let mut ctx = SslContext::builder(SslMethod::dtls())?;
    ctx.set_min_proto_version(Some(SslVersion::DTLS1_2))?;
    let certificate = X509::from_der(&cert.certificate)?;
    let key = PKey::private_key_from_der(&cert.private_key)?;
    ctx.set_certificate(&certificate)?;
    ctx.set_private_key(&key)?;
    ctx.check_private_key()?;
    ctx.set_tlsext_use_srtp(SRTP_PROFILES)?;
    ctx.set_verify_callback(
        SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
        |_, _| true,
    );
    // Our datagram queue cannot answer OpenSSL's path-MTU query; the MTU is str0m's.
    ctx.set_options(SslOptions::NO_QUERY_MTU);
    let mut ssl = Ssl::new(&ctx.build())?;
    if let Some(mtu) = mtu {
        ssl.set_mtu(u32::try_from(mtu).unwrap_or(u32::MAX))?;
    }
    Ok(ssl)
}

/// Two keys and two salts (RFC 5764 §4.2), sized by the profile (RFC 3711, RFC 7714).
fn keying_material_len(profile: SrtpProfile) -> usize {
    match profile {
        SrtpProfile::AES128_CM_SHA1_80 => 2 * (16 + 14),
        SrtpProfile::AEAD_AES_256_GCM => 2 * (32 + 12),
        // AEAD_AES_128_GCM; `selected_profile` makes no other.
        _ => 2 * (16 + 12),
    }
}

impl DtlsInstance for Instance {
    fn set_active(&mut self, active: bool) {
        if self.phase != Phase::Idle {
            return;
        }
        self.active = active;
        self.phase = Phase::Handshaking;
        // The client's first flight goes out now; a server only waits.
        if let Err(e) = self.drive() {
            tracing::debug!(error = %e, "DTLS start (OpenSSL)");
        }
    }

    fn handle_packet(&mut self, packet: &[u8]) -> Result<(), DtlsImplError> {
        if self.phase == Phase::Closed {
            return Err(DtlsImplError::ConnectionClosed);
        }
        // str0m hands an empty packet to a new client to start it: OpenSSL would read an
        // empty datagram as the end of the stream.
        if !packet.is_empty() {
            self.stream.get_mut().incoming.push_back(packet.to_vec());
        }
        self.drive()
    }

    fn poll_output<'a>(&mut self, buf: &'a mut [u8]) -> DtlsOutput<'a> {
        if let Some(datagram) = self.stream.get_mut().outgoing.pop_front() {
            if datagram.len() > buf.len() {
                let needed = datagram.len();
                self.stream.get_mut().outgoing.push_front(datagram);
                return DtlsOutput::BufferTooSmall { needed };
            }
            buf[..datagram.len()].copy_from_slice(&datagram);
            return DtlsOutput::Packet(&buf[..datagram.len()]);
        }
        let Some(event) = self.events.pop_front() else {
            return DtlsOutput::Timeout(match self.phase {
                Phase::Handshaking => self.now + HANDSHAKE_TICK,
                // Nothing to time: a day stands for never.
                _ => self.now + Duration::from_secs(86_400),
            });
        };
        if let Event::PeerCert(bytes) | Event::Data(bytes) = &event
            && bytes.len() > buf.len()
        {
            let needed = bytes.len();
            self.events.push_front(event);
            return DtlsOutput::BufferTooSmall { needed };
        }
        match event {
            Event::PeerCert(der) => DtlsOutput::PeerCert(copy_out(buf, &der)),
            Event::Keys(keys, profile) => {
                DtlsOutput::KeyingMaterial(KeyingMaterial::new(&keys), profile)
            }
            Event::Connected => DtlsOutput::Connected,
            Event::Data(data) => DtlsOutput::ApplicationData(copy_out(buf, &data)),
            Event::CloseNotify => DtlsOutput::CloseNotify,
        }
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsImplError> {
        self.now = now;
        self.drive()
    }

    fn send_application_data(&mut self, data: &[u8]) -> Result<usize, DtlsImplError> {
        if self.phase != Phase::Connected {
            return Ok(0);
        }
        match self.stream.ssl_write(data) {
            Ok(n) => Ok(n),
            Err(e) if e.code() == ErrorCode::WANT_READ || e.code() == ErrorCode::WANT_WRITE => {
                Ok(0)
            }
            Err(e) => {
                tracing::debug!(error = %e, "DTLS write (OpenSSL)");
                Err(DtlsImplError::ConnectionClosed)
            }
        }
    }

    fn is_active(&self) -> bool {
        self.active
    }

    fn protocol_version(&self) -> Option<ProtocolVersion> {
        (self.phase == Phase::Connected).then_some(ProtocolVersion::DTLS1_2)
    }

    fn is_closing(&self) -> bool {
        self.phase == Phase::Closed && !self.stream.get_ref().outgoing.is_empty()
    }

    fn is_closed(&self) -> bool {
        self.phase == Phase::Closed && self.stream.get_ref().outgoing.is_empty()
    }

    fn close(&mut self) -> Result<(), DtlsImplError> {
        if self.phase == Phase::Connected {
            // close_notify goes into the outgoing queue; the peer's answer is not awaited.
            let _ = self.stream.shutdown();
        }
        self.phase = Phase::Closed;
        Ok(())
    }
}

/// Hands out `bytes` through the caller's buffer, which the caller made sure is big enough.
fn copy_out<'a>(buf: &'a mut [u8], bytes: &[u8]) -> &'a [u8] {
    buf[..bytes.len()].copy_from_slice(bytes);
    &buf[..bytes.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_clock::origin;
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::hash::MessageDigest;
    use openssl::rsa::Rsa;
    use openssl::x509::X509NameBuilder;

    /// A self-signed RSA certificate, as baresip 1.0 makes for every call.
    fn rsa_cert() -> DtlsCert {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "dtls@baresip").unwrap();
        let name = name.build();
        let mut x = X509::builder().unwrap();
        x.set_version(2).unwrap();
        x.set_serial_number(&BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap())
            .unwrap();
        x.set_subject_name(&name).unwrap();
        x.set_issuer_name(&name).unwrap();
        x.set_pubkey(&key).unwrap();
        x.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        x.set_not_after(&Asn1Time::days_from_now(30).unwrap())
            .unwrap();
        x.sign(&key, MessageDigest::sha256()).unwrap();
        DtlsCert {
            certificate: x.build().to_der().unwrap(),
            private_key: key.private_key_to_der().unwrap(),
        }
    }

    fn ecdsa_cert() -> DtlsCert {
        super::super::provider()
            .dtls_provider
            .generate_certificate()
            .unwrap()
    }

    /// What one side reported once connected.
    #[derive(Debug, Default)]
    struct Seen {
        peer_cert: Option<Vec<u8>>,
        keys: Option<(Vec<u8>, SrtpProfile)>,
        connected: bool,
        data: Vec<Vec<u8>>,
    }

    /// Drains `from`, delivering its datagrams to `to`; false when it had nothing to say.
    fn pump(from: &mut dyn DtlsInstance, to: &mut dyn DtlsInstance, seen: &mut Seen) -> bool {
        let mut buf = vec![0; 2048];
        let mut said = false;
        loop {
            match from.poll_output(&mut buf) {
                DtlsOutput::Packet(p) => {
                    said = true;
                    let _ = to.handle_packet(p);
                }
                DtlsOutput::PeerCert(der) => seen.peer_cert = Some(der.to_vec()),
                DtlsOutput::KeyingMaterial(k, p) => seen.keys = Some((k.to_vec(), p)),
                DtlsOutput::Connected => seen.connected = true,
                DtlsOutput::ApplicationData(d) => seen.data.push(d.to_vec()),
                DtlsOutput::Timeout(_) => return said,
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    fn handshake(client: &mut dyn DtlsInstance, server: &mut dyn DtlsInstance) -> (Seen, Seen) {
        let now = origin();
        server.set_active(false);
        client.set_active(true);
        let (mut c, mut s) = (Seen::default(), Seen::default());
        for _ in 0..20 {
            client.handle_timeout(now).unwrap();
            server.handle_timeout(now).unwrap();
            let said = pump(client, server, &mut c) | pump(server, client, &mut s);
            if !said && c.connected && s.connected {
                break;
            }
        }
        (c, s)
    }

    fn openssl(cert: &DtlsCert) -> Instance {
        Instance::new(cert, origin(), Some(1150)).unwrap()
    }

    #[test]
    fn an_rsa_client_and_an_rsa_server_agree_on_srtp_keys() {
        let (client_cert, server_cert) = (rsa_cert(), rsa_cert());
        let mut client = openssl(&client_cert);
        let mut server = openssl(&server_cert);
        let (c, s) = handshake(&mut client, &mut server);
        assert!(c.connected && s.connected, "{c:?} {s:?}");
        assert_eq!(c.peer_cert.as_deref(), Some(&server_cert.certificate[..]));
        assert_eq!(s.peer_cert.as_deref(), Some(&client_cert.certificate[..]));
        let (keys, profile) = c.keys.unwrap();
        assert_eq!(profile, SrtpProfile::AEAD_AES_128_GCM);
        assert_eq!(keys.len(), 56);
        assert_eq!(Some((keys, profile)), s.keys);
        assert_eq!(client.protocol_version(), Some(ProtocolVersion::DTLS1_2));
    }

    /// A browser's side (dimpl with an ECDSA certificate, as str0m and Chromium make) still
    /// talks to OpenSSL, in both roles.
    #[test]
    fn dimpl_and_openssl_connect_either_way_round() {
        for openssl_is_client in [true, false] {
            let (ours, theirs) = (ecdsa_cert(), ecdsa_cert());
            let mut a: Box<dyn DtlsInstance> = Box::new(openssl(&ours));
            let mut b = super::super::Dtls
                .new_dimpl(
                    &theirs,
                    origin(),
                    str0m::crypto::dtls::DtlsVersion::Dtls12,
                    Some(1150),
                )
                .unwrap();
            let (c, s) = if openssl_is_client {
                handshake(&mut *a, &mut *b)
            } else {
                handshake(&mut *b, &mut *a)
            };
            assert!(c.connected && s.connected, "client {c:?} server {s:?}");
            assert_eq!(c.keys, s.keys);
            assert!(c.keys.is_some());
        }
    }

    #[test]
    fn application_data_flows_and_close_notify_ends_it() {
        let mut client = openssl(&rsa_cert());
        let mut server = openssl(&ecdsa_cert());
        handshake(&mut client, &mut server);
        assert_eq!(client.send_application_data(b"sctp").unwrap(), 4);
        let mut s = Seen::default();
        pump(&mut client, &mut server, &mut Seen::default());
        pump(&mut server, &mut client, &mut s);
        assert_eq!(s.data, vec![b"sctp".to_vec()]);
        client.close().unwrap();
        pump(&mut client, &mut server, &mut Seen::default());
        let mut buf = [0; 64];
        assert!(matches!(
            server.poll_output(&mut buf),
            DtlsOutput::CloseNotify
        ));
        assert!(server.is_closed() && client.is_closed());
    }

    #[test]
    fn junk_fails_the_handshake_without_a_panic() {
        let mut server = openssl(&rsa_cert());
        server.set_active(false);
        // Records of every length, with a DTLS 1.2 handshake header half the time.
        for n in 0..400u32 {
            let mut junk: Vec<u8> = (0..n % 200)
                .map(|i| (i.wrapping_mul(31) ^ n) as u8)
                .collect();
            if n % 2 == 0 && junk.len() > 3 {
                junk[..3].copy_from_slice(&[22, 0xfe, 0xfd]);
            }
            let _ = server.handle_packet(&junk);
            let mut buf = [0; 2048];
            while let DtlsOutput::Packet(_) = server.poll_output(&mut buf) {}
        }
    }
}
