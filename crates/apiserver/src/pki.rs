//! The server's identity in its data directory: a CA, a serving certificate signed by it, and
//! the bearer token that clients present.
//!
//! [`Identity::load_or_create`] makes them on the first start and reuses them after, so that
//! a kubeconfig written once keeps working across restarts. The serving certificate is issued
//! again (by the same CA key) only when the names it must cover change, for instance when the
//! server is told to listen on another address.
//!
//! Files, all in the data directory: `ca.crt`, `ca.key`, `server.crt`, `server.key`,
//! `server.names` (the SANs the certificate was issued for, one a line) and `token`. Keys and
//! the token are written with mode 0600.

use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use ring::rand::SecureRandom;

/// Why the identity could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("generating the {what}")]
    Generate {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    #[error("generating the bearer token: the system random source failed")]
    Random,
    #[error("{path} holds no usable {what}")]
    Parse { path: PathBuf, what: &'static str },
}

/// The CA, serving certificate and token of one data directory.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The CA certificate, PEM: what clients trust.
    pub ca_pem: String,
    /// The serving certificate chain, PEM.
    pub cert_pem: String,
    /// The serving key, PEM (PKCS#8).
    pub key_pem: String,
    /// The bearer token.
    pub token: String,
}

const CA_NAME: &str = "hoist-ca";

impl Identity {
    /// Loads the identity from `dir`, making what is missing. `names` are the DNS names and IP
    /// addresses the serving certificate must cover.
    pub fn load_or_create(dir: &Path, names: &[String]) -> Result<Identity, PkiError> {
        let (ca_pem, ca_key) = load_or_create_ca(dir)?;
        let token = load_or_create_token(dir)?;

        let names_file = dir.join("server.names");
        let wanted = names.join("\n");
        let cert_path = dir.join("server.crt");
        let key_path = dir.join("server.key");
        let have = std::fs::read_to_string(&names_file).ok();
        let (cert_pem, key_pem) = if have.as_deref() == Some(wanted.as_str())
            && cert_path.exists()
            && key_path.exists()
        {
            (read(&cert_path)?, read(&key_path)?)
        } else {
            tracing::debug!(names = %wanted.replace('\n', ","), "issuing a serving certificate");
            let (cert, key) = issue_serving(&ca_key, names)?;
            write(&cert_path, &cert, 0o644)?;
            write(&key_path, &key, 0o600)?;
            write(&names_file, &wanted, 0o644)?;
            (cert, key)
        };
        Ok(Identity {
            ca_pem,
            cert_pem,
            key_pem,
            token,
        })
    }

    /// A rustls server configuration that serves this certificate with ALPN `h2` and
    /// `http/1.1`.
    pub fn server_config(&self) -> Result<rustls::ServerConfig, PkiError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};

        let bad = |what| PkiError::Parse {
            path: PathBuf::from("server.crt"),
            what,
        };
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|_| bad("certificate"))?;
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).map_err(|_| bad("key"))?;
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|_| bad("protocol version"))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|_| bad("certificate and key pair"))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

fn load_or_create_ca(dir: &Path) -> Result<(String, KeyPair), PkiError> {
    let cert_path = dir.join("ca.crt");
    let key_path = dir.join("ca.key");
    if cert_path.exists() && key_path.exists() {
        let key = KeyPair::from_pem(&read(&key_path)?).map_err(|_| PkiError::Parse {
            path: key_path.clone(),
            what: "CA key",
        })?;
        return Ok((read(&cert_path)?, key));
    }

    tracing::debug!(dir = %dir.display(), "generating a CA");
    let key = KeyPair::generate().map_err(|source| PkiError::Generate {
        what: "CA key",
        source,
    })?;
    let cert = ca_params()
        .self_signed(&key)
        .map_err(|source| PkiError::Generate {
            what: "CA certificate",
            source,
        })?;
    write(&key_path, &key.serialize_pem(), 0o600)?;
    write(&cert_path, &cert.pem(), 0o644)?;
    Ok((cert.pem(), key))
}

// The issuer of a serving certificate is rebuilt from these parameters and the stored key:
// the subject and key identifier then match the stored CA certificate's.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, CA_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn issue_serving(ca_key: &KeyPair, names: &[String]) -> Result<(String, String), PkiError> {
    let generate = |what| move |source| PkiError::Generate { what, source };
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "hoist-apiserver");
    for name in names {
        let san = match name.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                name.clone()
                    .try_into()
                    .map_err(generate("certificate name"))?,
            ),
        };
        params.subject_alt_names.push(san);
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let key = KeyPair::generate().map_err(generate("serving key"))?;
    let ca_key = KeyPair::from_pem(&ca_key.serialize_pem()).map_err(generate("CA key copy"))?;
    let issuer = Issuer::new(ca_params(), ca_key);
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(generate("serving certificate"))?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn load_or_create_token(dir: &Path) -> Result<String, PkiError> {
    let path = dir.join("token");
    if path.exists() {
        let token = read(&path)?.trim().to_string();
        if !token.is_empty() {
            return Ok(token);
        }
    }
    let token = random_token()?;
    write(&path, &token, 0o600)?;
    Ok(token)
}

/// 32 random bytes as URL-safe base64: a bearer token.
pub fn random_token() -> Result<String, PkiError> {
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| PkiError::Random)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn read(path: &Path) -> Result<String, PkiError> {
    std::fs::read_to_string(path).map_err(|source| PkiError::Read {
        path: path.to_owned(),
        source,
    })
}

// Written to a temporary name and renamed, so a crash never leaves half a key behind.
fn write(path: &Path, text: &str, mode: u32) -> Result<(), PkiError> {
    use std::io::Write;
    let err = |source| PkiError::Write {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_reuses_the_identity_and_reissues_for_new_names() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let a = Identity::load_or_create(dir.path(), &names).unwrap();
        let b = Identity::load_or_create(dir.path(), &names).unwrap();
        assert_eq!(a.ca_pem, b.ca_pem);
        assert_eq!(a.cert_pem, b.cert_pem);
        assert_eq!(a.token, b.token);
        a.server_config().unwrap();

        let more = vec!["localhost".to_string(), "10.1.2.3".to_string()];
        let c = Identity::load_or_create(dir.path(), &more).unwrap();
        assert_eq!(a.ca_pem, c.ca_pem);
        assert_eq!(a.token, c.token);
        assert_ne!(a.cert_pem, c.cert_pem);
    }
}
