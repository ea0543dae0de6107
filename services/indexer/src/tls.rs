//! TLS to PostgreSQL with rustls, configured as libpq is: from the connection string's
//! `sslmode` and `sslrootcert`.
//!
//! tokio-postgres itself knows only `disable`, `prefer` and `require` and refuses `sslrootcert`,
//! so [`parse`] takes both parameters out of the string, hands tokio-postgres the rest, and
//! builds the rustls connector ([`tokio_postgres_rustls::MakeRustlsConnect`]) that enforces them:
//!
//! | `sslmode` | TLS | the server's certificate |
//! |---|---|---|
//! | `disable` | never | - |
//! | `prefer` (default, as libpq) | if the server offers it | not checked |
//! | `require` | always | not checked; checked as `verify-ca` when `sslrootcert` is given (as libpq) |
//! | `verify-ca` | always | signed by a trusted CA |
//! | `verify-full` | always | signed by a trusted CA and issued for the host connected to |
//!
//! The trusted CAs are those in the PEM file `sslrootcert` names, else (or with
//! `sslrootcert=system`) the Mozilla roots bundled in the binary (`webpki-roots`): no system
//! certificate store is read, so the image needs no `ca-certificates`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

/// How much TLS a connection asks for: libpq's `sslmode` values (`allow` excepted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS when the server offers it; the certificate is not checked.
    Prefer,
    /// TLS always; the certificate is not checked (unless `sslrootcert` is given).
    Require,
    /// TLS always; the certificate must chain to a trusted CA.
    VerifyCa,
    /// TLS always; the certificate must chain to a trusted CA and name the host.
    VerifyFull,
}

impl FromStr for SslMode {
    type Err = TlsError;

    fn from_str(s: &str) -> Result<Self, TlsError> {
        match s {
            "disable" => Ok(SslMode::Disable),
            "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            other => Err(TlsError::SslMode(other.to_owned())),
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        })
    }
}

/// Why the TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// `sslmode` has a value this client does not know.
    #[error(
        "sslmode={0} is not supported (expected disable, prefer, require, verify-ca or verify-full)"
    )]
    SslMode(String),
    /// The `sslrootcert` file cannot be read or holds no certificate.
    #[error("sslrootcert={path}: {reason}")]
    RootCert {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The rest of the connection string is not valid for tokio-postgres.
    #[error("{0}")]
    Config(String),
}

/// A connection string's TLS settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    /// `sslmode` (default `prefer`, as libpq).
    pub mode: SslMode,
    /// `sslrootcert`: a PEM file of trusted CAs; `None` (or `system`) for the bundled Mozilla roots.
    pub root_cert: Option<PathBuf>,
}

/// Splits `sslmode` and `sslrootcert` out of a connection string (URL or `key=value` form):
/// the string left for tokio-postgres, and the settings.
pub fn split(database_url: &str) -> Result<(String, TlsSettings), TlsError> {
    let mut mode = None;
    let mut root_cert = None;
    let mut take = |key: &str, value: &str| -> Result<bool, TlsError> {
        match key {
            "sslmode" => mode = Some(value.parse::<SslMode>()?),
            "sslrootcert" => root_cert = (value != "system").then(|| PathBuf::from(value)),
            _ => return Ok(false),
        }
        Ok(true)
    };
    let rest =
        if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
            match database_url.split_once('?') {
                None => database_url.to_owned(),
                Some((base, query)) => {
                    // The other parameters are kept as written (re-encoding would turn %20
                    // into +, which tokio-postgres does not decode).
                    let mut kept = Vec::new();
                    for raw in query.split('&').filter(|p| !p.is_empty()) {
                        let ours = match form_urlencoded::parse(raw.as_bytes()).next() {
                            Some((key, value)) => take(&key, &value)?,
                            None => false,
                        };
                        if !ours {
                            kept.push(raw);
                        }
                    }
                    if kept.is_empty() {
                        base.to_owned()
                    } else {
                        format!("{base}?{}", kept.join("&"))
                    }
                }
            }
        } else {
            let mut kept = Vec::new();
            for token in database_url.split_whitespace() {
                let taken = match token.split_once('=') {
                    Some((key, value)) => take(key, value.trim_matches('\''))?,
                    None => false,
                };
                if !taken {
                    kept.push(token);
                }
            }
            kept.join(" ")
        };
    let settings = TlsSettings {
        mode: mode.unwrap_or(SslMode::Prefer),
        root_cert,
    };
    Ok((rest, settings))
}

/// Parses a connection string: tokio-postgres's configuration (with its TLS mode set) and the
/// rustls connector that checks the server's certificate as `sslmode` asks.
pub fn parse(database_url: &str) -> Result<(tokio_postgres::Config, MakeRustlsConnect), TlsError> {
    let (rest, settings) = split(database_url)?;
    let mut config =
        tokio_postgres::Config::from_str(&rest).map_err(|e| TlsError::Config(e.to_string()))?;
    config.ssl_mode(match settings.mode {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
            tokio_postgres::config::SslMode::Require
        }
    });
    Ok((config, connector(&settings)?))
}

/// The rustls connector for these settings.
pub fn connector(settings: &TlsSettings) -> Result<MakeRustlsConnect, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    // As libpq: `require` with a root certificate checks the chain, as `verify-ca` does.
    let mode = match (settings.mode, &settings.root_cert) {
        (SslMode::Require, Some(_)) => SslMode::VerifyCa,
        (mode, _) => mode,
    };
    let config = match mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate { provider }))
            .with_no_client_auth(),
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let (roots, source) = match &settings.root_cert {
                Some(path) => (load_roots(path)?, format!("sslrootcert={}", path.display())),
                None => (
                    RootCertStore {
                        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                    },
                    "the bundled Mozilla roots (set sslrootcert to the server's CA)".to_owned(),
                ),
            };
            let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::Config(format!("certificate verifier: {e}")))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Verified {
                    inner,
                    check_name: mode == SslMode::VerifyFull,
                    source,
                    mode,
                }))
                .with_no_client_auth()
        }
    };
    Ok(MakeRustlsConnect::new(config))
}

fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let error = |reason: String| TlsError::RootCert {
        path: path.to_owned(),
        reason,
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| error(e.to_string()))? {
        let cert = cert.map_err(|e| error(format!("not a PEM certificate file: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| error(format!("unusable certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(error("no certificate in the file".to_owned()));
    }
    Ok(roots)
}

/// `prefer` and `require`: encrypted, the server's certificate unchecked (the handshake's
/// signatures still are).
#[derive(Debug)]
struct AnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `verify-ca` and `verify-full`: webpki's checks, the host name skipped for `verify-ca`, and a
/// refusal that names the mode and the trusted CAs.
#[derive(Debug)]
struct Verified {
    inner: Arc<WebPkiServerVerifier>,
    check_name: bool,
    source: String,
    mode: SslMode,
}

impl ServerCertVerifier for Verified {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => Ok(verified),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            Err(rustls::Error::InvalidCertificate(cause)) => {
                let why = match &cause {
                    CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                        format!("it is not signed by a CA in {}", self.source)
                    }
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. } => format!(
                        "it is not issued for the host {} (sslmode=verify-ca skips this check)",
                        server_name.to_str()
                    ),
                    _ => "it is not valid".to_owned(),
                };
                Err(rustls::Error::General(format!(
                    "sslmode={}: the server's certificate is refused: {why} ({cause:?})",
                    self.mode
                )))
            }
            Err(other) => Err(other),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parameters_are_taken_out_and_the_rest_kept() {
        let (rest, s) =
            split("postgres://u:p@db:5432/bsky?sslmode=verify-full&application_name=ix&sslrootcert=%2Fca%2Froot.pem")
                .unwrap();
        assert_eq!(rest, "postgres://u:p@db:5432/bsky?application_name=ix");
        assert_eq!(s.mode, SslMode::VerifyFull);
        assert_eq!(s.root_cert, Some(PathBuf::from("/ca/root.pem")));

        let (rest, _) =
            split("postgres://db/bsky?options=-c%20search_path%3Dx&sslmode=require").unwrap();
        assert_eq!(rest, "postgres://db/bsky?options=-c%20search_path%3Dx");

        let (rest, s) = split("postgres://db/bsky?sslmode=require").unwrap();
        assert_eq!(rest, "postgres://db/bsky");
        assert_eq!(s.mode, SslMode::Require);

        let (rest, s) = split("postgres://db/bsky").unwrap();
        assert_eq!(rest, "postgres://db/bsky");
        assert_eq!(s.mode, SslMode::Prefer);
        assert_eq!(s.root_cert, None);

        let (_, s) = split("postgres://db/bsky?sslmode=verify-ca&sslrootcert=system").unwrap();
        assert_eq!(s.root_cert, None);
    }

    #[test]
    fn key_value_strings_are_split_too() {
        let (rest, s) = split("host=db user=u sslmode=verify-ca sslrootcert=/ca.pem").unwrap();
        assert_eq!(rest, "host=db user=u");
        assert_eq!(s.mode, SslMode::VerifyCa);
        assert_eq!(s.root_cert, Some(PathBuf::from("/ca.pem")));
    }

    #[test]
    fn unknown_modes_are_refused_with_the_accepted_ones() {
        let err = split("postgres://db/bsky?sslmode=allow").unwrap_err();
        assert_eq!(
            err.to_string(),
            "sslmode=allow is not supported (expected disable, prefer, require, verify-ca or verify-full)"
        );
    }

    #[test]
    fn a_missing_or_empty_root_certificate_file_is_named() {
        let err = parse("postgres://db/bsky?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .starts_with("sslrootcert=/nonexistent/ca.pem: "),
            "{err}"
        );
        let empty = std::env::temp_dir().join(format!("rsky-empty-ca-{}.pem", std::process::id()));
        std::fs::write(&empty, "").unwrap();
        let err = parse(&format!(
            "postgres://db/bsky?sslmode=verify-ca&sslrootcert={}",
            empty.display()
        ))
        .err()
        .unwrap();
        let _ = std::fs::remove_file(&empty);
        assert!(
            err.to_string().ends_with("no certificate in the file"),
            "{err}"
        );
    }
}
