//! DID resolution: a DID's PDS endpoint and its atproto signing key, from the PLC directory
//! (`did:plc`) or the DID's own web host (`did:web`), cached in Redis as `did:pds:{did}` and
//! `did:key:{did}`. A cached answer that looks stale (the PDS says the repository is not there
//! or deactivated; the commit does not verify with the key) is replaced once by a fresh
//! resolution ([`Resolver::refresh`]) before the repository is skipped or retried.
//!
//! `did:web:host%3Aport` names a host with a port (the colon percent-encoded, as the did:web
//! specification says); its document is `https://host:port/.well-known/did.json`, or `http://`
//! when `BACKFILLER_DID_WEB_INSECURE` is set, which lets tests serve documents on loopback.

use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::AsyncCommands;
use serde::Deserialize;

use crate::body::{self, BodyError, TooLarge};
use crate::config::Config;
use crate::metrics::BackfillerMetrics;
use rsky_common::streams::Streams;

/// Where a repository lives and which key signs its commits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedDid {
    /// The PDS endpoint, such as `https://pds.example.com` (no trailing slash).
    pub pds: String,
    /// The atproto signing key as `did:key:z...`.
    pub signing_key: String,
}

/// Why a DID could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The DID method is neither `plc` nor `web`, or the DID is malformed.
    #[error("cannot resolve {did:?}: {reason}")]
    Unsupported {
        /// The DID.
        did: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The request for the DID document failed.
    #[error("fetching the DID document of {did} from {url} failed: {source}")]
    Http {
        /// The DID.
        did: String,
        /// The document URL.
        url: String,
        /// The transport error.
        source: reqwest::Error,
    },
    /// The directory or host answered with an error status.
    #[error("the DID document of {did} at {url} answered HTTP {status}")]
    Status {
        /// The DID.
        did: String,
        /// The document URL.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The document is larger than `BACKFILLER_MAX_DID_DOCUMENT_BYTES`.
    #[error("the DID document of {did}: {source}")]
    TooLarge {
        /// The DID.
        did: String,
        /// The limit and the URL.
        source: TooLarge,
    },
    /// The document is not JSON or lacks a PDS service or an atproto key.
    #[error("the DID document of {did} is unusable: {reason}")]
    Document {
        /// The DID.
        did: String,
        /// What is missing or wrong.
        reason: String,
    },
    /// The Redis cache could not be read or written.
    #[error("the DID cache in Redis failed for {did}: {source}")]
    Cache {
        /// The DID.
        did: String,
        /// The Redis error.
        source: redis::RedisError,
    },
}

/// Resolves DIDs, through the Redis cache.
#[derive(Clone)]
pub struct Resolver {
    http: reqwest::Client,
    redis: ConnectionManager,
    keys: Streams,
    plc_url: String,
    did_web_insecure: bool,
    timeout: Duration,
    max_document_bytes: u64,
    ttl_seconds: u64,
}

impl Resolver {
    /// A resolver with the settings of `config`.
    pub fn new(config: &Config, http: reqwest::Client, redis: ConnectionManager) -> Self {
        Resolver {
            http,
            redis,
            keys: config.streams().clone(),
            plc_url: config.plc_url.clone(),
            did_web_insecure: config.did_web_insecure,
            timeout: config.resolve_timeout,
            max_document_bytes: config.max_did_document_bytes,
            ttl_seconds: config.did_cache_ttl.as_secs().max(1),
        }
    }

    /// The PDS and signing key of `did`, from the cache when both are there; `true` with
    /// them when they came from the cache (and so may be stale).
    pub async fn resolve(
        &self,
        did: &str,
        metrics: &BackfillerMetrics,
    ) -> Result<(ResolvedDid, bool), ResolveError> {
        let mut redis = self.redis.clone();
        let (pds, key): (Option<String>, Option<String>) = redis
            .mget(&[self.keys.did_pds(did), self.keys.did_key(did)])
            .await
            .map_err(|source| ResolveError::Cache {
                did: did.to_owned(),
                source,
            })?;
        if let (Some(pds), Some(signing_key)) = (pds, key) {
            metrics.did_cache_hits.inc();
            return Ok((ResolvedDid { pds, signing_key }, true));
        }
        Ok((self.refresh(did).await?, false))
    }

    /// Resolves `did` without the cache and caches the answer, replacing what was cached; when
    /// the resolution fails, the cached entry is removed, so no later attempt uses it again.
    /// Used when the cached PDS or key may be stale: the PDS no longer has the repository (the
    /// account migrated), or the commit does not verify with the key (the key rotated).
    pub async fn refresh(&self, did: &str) -> Result<ResolvedDid, ResolveError> {
        let mut redis = self.redis.clone();
        let cache_err = |source| ResolveError::Cache {
            did: did.to_owned(),
            source,
        };
        let resolved = match self.resolve_uncached(did).await {
            Ok(resolved) => resolved,
            Err(err) => {
                let _: () = redis
                    .del(&[self.keys.did_pds(did), self.keys.did_key(did)])
                    .await
                    .map_err(cache_err)?;
                return Err(err);
            }
        };
        redis::pipe()
            .set_ex(self.keys.did_pds(did), &resolved.pds, self.ttl_seconds)
            .ignore()
            .set_ex(
                self.keys.did_key(did),
                &resolved.signing_key,
                self.ttl_seconds,
            )
            .ignore()
            .exec_async(&mut redis)
            .await
            .map_err(cache_err)?;
        Ok(resolved)
    }

    /// Fetches and reads the DID document, without the cache.
    pub async fn resolve_uncached(&self, did: &str) -> Result<ResolvedDid, ResolveError> {
        let url = document_url(did, &self.plc_url, self.did_web_insecure)?;
        let response = self
            .http
            .get(&url)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|source| ResolveError::Http {
                did: did.to_owned(),
                url: url.clone(),
                source,
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(ResolveError::Status {
                did: did.to_owned(),
                url,
                status: status.as_u16(),
            });
        }
        let limit = self.max_document_bytes;
        let body = body::read_limited(response, &url, limit, "BACKFILLER_MAX_DID_DOCUMENT_BYTES")
            .await
            .map_err(|err| match err {
                BodyError::TooLarge(source) => ResolveError::TooLarge {
                    did: did.to_owned(),
                    source,
                },
                BodyError::Transport(source) => ResolveError::Http {
                    did: did.to_owned(),
                    url: url.clone(),
                    source,
                },
            })?;
        read_document(did, &body)
    }
}

/// The URL of the DID document of `did`.
pub fn document_url(
    did: &str,
    plc_url: &str,
    did_web_insecure: bool,
) -> Result<String, ResolveError> {
    let unsupported = |reason| ResolveError::Unsupported {
        did: did.to_owned(),
        reason,
    };
    if let Some(id) = did.strip_prefix("did:plc:") {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(unsupported(
                "a did:plc identifier is base32 letters and digits",
            ));
        }
        Ok(format!("{}/{did}", plc_url.trim_end_matches('/')))
    } else if let Some(host) = did.strip_prefix("did:web:") {
        if host.is_empty() || host.contains(':') {
            // A path-based did:web (`did:web:host:path`) is not allowed for atproto.
            return Err(unsupported(
                "atproto allows did:web only for a host name (with an optional %3A port), not a path",
            ));
        }
        let host = percent_encoding::percent_decode_str(host)
            .decode_utf8()
            .map_err(|_| unsupported("the did:web host is not valid percent-encoded UTF-8"))?;
        if host.contains(['/', '?', '#', '@']) {
            return Err(unsupported("the did:web host contains a URL delimiter"));
        }
        let scheme = if did_web_insecure { "http" } else { "https" };
        Ok(format!("{scheme}://{host}/.well-known/did.json"))
    } else {
        Err(unsupported("only did:plc and did:web are supported"))
    }
}

#[derive(Deserialize)]
struct DidDocument {
    #[serde(default)]
    id: String,
    #[serde(default, rename = "verificationMethod")]
    verification_method: Vec<VerificationMethod>,
    #[serde(default)]
    service: Vec<Service>,
}

#[derive(Deserialize)]
struct VerificationMethod {
    id: String,
    #[serde(default, rename = "publicKeyMultibase")]
    public_key_multibase: Option<String>,
}

#[derive(Deserialize)]
struct Service {
    id: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default, rename = "serviceEndpoint")]
    endpoint: serde_json::Value,
}

/// Reads the PDS endpoint (service `#atproto_pds`) and signing key (`#atproto`) of a DID document.
pub fn read_document(did: &str, body: &[u8]) -> Result<ResolvedDid, ResolveError> {
    let bad = |reason: String| ResolveError::Document {
        did: did.to_owned(),
        reason,
    };
    let doc: DidDocument =
        serde_json::from_slice(body).map_err(|e| bad(format!("not a DID document: {e}")))?;
    if doc.id != did {
        return Err(bad(format!("the document is for {:?}", doc.id)));
    }
    let is_fragment = |id: &str, fragment: &str| id == fragment || id == format!("{did}{fragment}");
    let multibase = doc
        .verification_method
        .iter()
        .find(|m| is_fragment(&m.id, "#atproto"))
        .and_then(|m| m.public_key_multibase.as_deref())
        .ok_or_else(|| bad("no #atproto verification method with a publicKeyMultibase".into()))?;
    let signing_key = format!("did:key:{multibase}");
    rsky_atproto::crypto::PublicKey::from_did_key(&signing_key)
        .map_err(|e| bad(format!("the #atproto key is not usable: {e}")))?;
    let pds = doc
        .service
        .iter()
        .find(|s| is_fragment(&s.id, "#atproto_pds") && s.kind == "AtprotoPersonalDataServer")
        .and_then(|s| s.endpoint.as_str())
        .ok_or_else(|| bad("no #atproto_pds service of type AtprotoPersonalDataServer".into()))?;
    if !(pds.starts_with("http://") || pds.starts_with("https://")) {
        return Err(bad(format!(
            "the PDS endpoint {pds:?} is not an http(s) URL"
        )));
    }
    Ok(ResolvedDid {
        pds: pds.trim_end_matches('/').to_owned(),
        signing_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_plc_documents_come_from_the_plc_url() {
        assert_eq!(
            document_url(
                "did:plc:ewvi7nxzyoun6zhxrhs64oiz",
                "http://127.0.0.1:7000/",
                false
            )
            .unwrap(),
            "http://127.0.0.1:7000/did:plc:ewvi7nxzyoun6zhxrhs64oiz"
        );
    }

    #[test]
    fn did_web_with_an_encoded_port_is_fetched_over_http_when_insecure() {
        assert_eq!(
            document_url("did:web:127.0.0.1%3A8080", "", true).unwrap(),
            "http://127.0.0.1:8080/.well-known/did.json"
        );
        assert_eq!(
            document_url("did:web:example.com", "", false).unwrap(),
            "https://example.com/.well-known/did.json"
        );
    }

    #[test]
    fn path_based_did_web_and_other_methods_are_refused() {
        assert!(document_url("did:web:example.com:user", "", false).is_err());
        assert!(document_url("did:key:zQ3sh", "", false).is_err());
    }

    #[test]
    fn a_document_yields_its_pds_and_key() {
        let key =
            rsky_atproto::crypto::SigningKey::generate(rsky_atproto::crypto::Curve::Secp256k1)
                .unwrap()
                .public_key();
        let doc = serde_json::json!({
            "id": "did:plc:abc",
            "verificationMethod": [{"id": "did:plc:abc#atproto", "type": "Multikey",
                "controller": "did:plc:abc", "publicKeyMultibase": key.to_multibase()}],
            "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                "serviceEndpoint": "https://pds.example/"}]
        });
        let resolved = read_document("did:plc:abc", doc.to_string().as_bytes()).unwrap();
        assert_eq!(resolved.pds, "https://pds.example");
        assert_eq!(resolved.signing_key, key.to_did_key());
    }

    #[test]
    fn a_document_without_a_pds_is_an_error_that_says_so() {
        let doc = serde_json::json!({"id": "did:plc:abc", "verificationMethod": [], "service": []});
        let err = read_document("did:plc:abc", doc.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("#atproto"), "{err}");
    }
}
