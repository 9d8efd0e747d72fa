//! TLS for the API endpoint: a CA and a server certificate for
//! 127.0.0.1/localhost, made for a new cluster (and kept in its state
//! directory, see [`crate::database`]). kubectl sends credentials only to
//! https servers, so the kubeconfig names this CA and an https URL.

use std::sync::Arc;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::database::Identity;

pub struct Tls {
    /// The CA certificate (PEM) clients trust.
    pub ca_pem: String,
    pub acceptor: tokio_rustls::TlsAcceptor,
}

/// A fresh CA, a server certificate it signs and a token: a new
/// cluster's identity.
pub fn new_identity(token: String) -> anyhow::Result<Identity> {
    let ca_key = KeyPair::generate().context("cannot generate a key")?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "kubesh-local-ca");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate()?;
    let mut leaf =
        CertificateParams::new(vec!["localhost".to_string(), "kubesh-local".to_string()])?;
    leaf.subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::V4(
            std::net::Ipv4Addr::LOCALHOST,
        )));
    leaf.distinguished_name
        .push(DnType::CommonName, "kubesh-local");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;
    Ok(Identity {
        token,
        ca_pem: ca_cert.pem(),
        ca_der: ca_cert.der().to_vec(),
        cert_der: leaf_cert.der().to_vec(),
        key_der: leaf_key.serialize_der(),
    })
}

/// The TLS configuration serving an identity's certificate.
pub fn from_identity(identity: &Identity) -> anyhow::Result<Tls> {
    let chain = vec![
        CertificateDer::from(identity.cert_der.clone()),
        CertificateDer::from(identity.ca_der.clone()),
    ];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key_der.clone()));
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .context("cannot build the TLS configuration")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Tls {
        ca_pem: identity.ca_pem.clone(),
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    })
}
