//! TLS 1.3 with raw public keys (RFC 7250): each device presents its ed25519 device key itself,
//! no certificate chain, and each side pins the other's key against the allow-list.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls13_signature_with_raw_key};
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, SubjectPublicKeyInfoDer, UnixTime,
};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};

/// DER prefix of an ed25519 SubjectPublicKeyInfo; the 32-byte key follows.
const SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
/// DER prefix of a PKCS#8 v1 ed25519 private key; the 32-byte seed follows.
const PKCS8_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

/// The ed25519 key inside a raw-public-key "certificate", if it is exactly one.
pub fn key_of(spki: &[u8]) -> Option<[u8; 32]> {
    let key = spki.strip_prefix(&SPKI_PREFIX)?;
    <[u8; 32]>::try_from(key).ok()
}

fn spki_of(key: &[u8; 32]) -> Vec<u8> {
    [&SPKI_PREFIX[..], key].concat()
}

/// Decides which device keys may connect; shared with the node so the allow-list can change.
pub type Allow = Arc<dyn Fn(&[u8; 32]) -> bool + Send + Sync>;

/// Verifies the peer's raw public key: well-formed, allowed, and (for dials) the expected one.
#[derive(Clone)]
pub struct PeerVerifier {
    allow: Allow,
    expected: Option<[u8; 32]>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl std::fmt::Debug for PeerVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerVerifier")
    }
}

impl PeerVerifier {
    fn check(&self, end_entity: &CertificateDer<'_>) -> Result<(), Error> {
        let key = key_of(end_entity).ok_or(Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if self.expected.is_some_and(|e| e != key) || !(self.allow)(&key) {
            return Err(Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure));
        }
        Ok(())
    }

    fn signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature_with_raw_key(
            message,
            &SubjectPublicKeyInfoDer::from(cert.as_ref()),
            dss,
            &self.algorithms,
        )
    }
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        self.check(end_entity).map(|()| ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(Error::General("TLS 1.2 is not used".into()))
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.signature(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

impl ClientCertVerifier for PeerVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        self.check(end_entity).map(|()| ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        Err(Error::General("TLS 1.2 is not used".into()))
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.signature(m, c, d)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certified_key(seed: &[u8; 32], public: &[u8; 32]) -> Result<Arc<rustls::sign::CertifiedKey>, Error> {
    let pkcs8 = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from([&PKCS8_PREFIX[..], seed].concat()));
    let signer = provider().key_provider.load_private_key(pkcs8)?;
    Ok(Arc::new(rustls::sign::CertifiedKey::new(vec![CertificateDer::from(spki_of(public))], signer)))
}

fn verifier(allow: Allow, expected: Option<[u8; 32]>) -> Arc<PeerVerifier> {
    Arc::new(PeerVerifier { allow, expected, algorithms: provider().signature_verification_algorithms })
}

/// Decides whether the server name a client sent is a knock for us (spec/sync.md, section
/// 3.2a); None when it sent none.
pub type KnockCheck = Arc<dyn Fn(Option<&str>) -> bool + Send + Sync>;

/// Presents our key only to a client whose server name passes the knock check; to anyone else
/// the handshake ends before the server's Certificate, so a scan learns no key.
struct KnockResolver {
    key: Arc<rustls::sign::CertifiedKey>,
    check: KnockCheck,
}

impl std::fmt::Debug for KnockResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KnockResolver")
    }
}

impl rustls::server::ResolvesServerCert for KnockResolver {
    fn resolve(&self, hello: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        (self.check)(hello.server_name()).then(|| self.key.clone())
    }
    fn only_raw_public_keys(&self) -> bool {
        true
    }
}

/// The TLS configuration for accepting connections as `device` (secret seed, public key), from
/// clients that knock (`knock`). `alpns` are the protocols the router serves.
pub fn server_config(
    seed: &[u8; 32],
    public: &[u8; 32],
    allow: Allow,
    knock: KnockCheck,
    alpns: Vec<Vec<u8>>,
) -> Result<rustls::ServerConfig, Error> {
    let mut c = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier(allow, None))
        .with_cert_resolver(Arc::new(KnockResolver { key: certified_key(seed, public)?, check: knock }));
    c.alpn_protocols = alpns;
    Ok(c)
}

/// A server that accepts only the client `expected`, whatever its server name: a session
/// relayed to us for a known peer, whose relay is a contact that knows our key anyway.
pub fn server_config_expecting(
    seed: &[u8; 32],
    public: &[u8; 32],
    allow: Allow,
    expected: Option<[u8; 32]>,
    alpns: Vec<Vec<u8>>,
) -> Result<rustls::ServerConfig, Error> {
    let mut c = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier(allow, expected))
        .with_cert_resolver(Arc::new(rustls::server::AlwaysResolvesServerRawPublicKeys::new(certified_key(
            seed, public,
        )?)));
    c.alpn_protocols = alpns;
    Ok(c)
}

/// The TLS configuration for dialing `expected` (or any allowed device) as `device`.
pub fn client_config(
    seed: &[u8; 32],
    public: &[u8; 32],
    allow: Allow,
    expected: Option<[u8; 32]>,
    alpn: &[u8],
) -> Result<rustls::ClientConfig, Error> {
    let mut c = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier(allow, expected))
        .with_client_cert_resolver(Arc::new(rustls::client::AlwaysResolvesClientRawPublicKeys::new(certified_key(
            seed, public,
        )?)));
    c.alpn_protocols = vec![alpn.to_vec()];
    Ok(c)
}

/// The protocol the handshake agreed on.
pub fn alpn_of(conn: &quinn::Connection) -> Option<Vec<u8>> {
    let data = conn.handshake_data()?;
    data.downcast::<quinn::crypto::rustls::HandshakeData>().ok()?.protocol
}

/// The server name to dial `server` with now: a fresh knock (spec/sync.md, section 3.2a), with
/// `invite`'s tag if the dialer holds one.
pub fn knock_name(server: &[u8; 32], invite: Option<&[u8; 16]>) -> String {
    let mut random = [0u8; 24];
    // Without randomness the knock is still valid; it only repeats within the hour.
    let _ = getrandom::fill(&mut random);
    crate::knock::Knock::new(server, invite, crate::knock::epoch_of(crate::clock::wall_ms()), random).server_name()
}

/// The server name the client sent (its knock), on the server's side of a connection.
pub fn server_name_of(conn: &quinn::Connection) -> Option<String> {
    let data = conn.handshake_data()?;
    data.downcast::<quinn::crypto::rustls::HandshakeData>().ok()?.server_name
}

/// The peer's device key in a TLS session over a byte stream.
pub fn stream_peer_key(conn: &rustls::CommonState) -> Option<[u8; 32]> {
    conn.peer_certificates().and_then(|c| c.first()).and_then(|c| key_of(c))
}

/// The peer's device key of an established QUIC connection.
pub fn peer_key(conn: &quinn::Connection) -> Option<[u8; 32]> {
    let id = conn.peer_identity()?;
    let certs = id.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    certs.first().and_then(|c| key_of(c))
}
