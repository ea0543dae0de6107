//! `com.atproto.sync.getRepo`: downloading a repository's CAR from its PDS.

use std::time::Duration;

use serde::Deserialize;

use crate::body::{self, BodyError, TooLarge};

/// The most of an error answer's body that is read (for its XRPC error name).
const MAX_ERROR_BODY: u64 = 64 * 1024;

/// The XRPC errors after which a repository is acknowledged without retry: it will not come back.
pub const SKIP_ERRORS: [&str; 3] = ["RepoNotFound", "RepoTakendown", "RepoDeactivated"];

/// Why a repository could not be downloaded.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The PDS says the repository is gone for good (a 4xx with one of [`SKIP_ERRORS`]).
    #[error("{url} answered HTTP {status} {error}: the repository is not available, skipping it")]
    Unavailable {
        /// The request URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The XRPC error name.
        error: String,
    },
    /// The PDS answered with another error status.
    #[error("{url} answered HTTP {status}{}", error.as_deref().map(|e| format!(" {e}")).unwrap_or_default())]
    Status {
        /// The request URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The XRPC error name, when the body had one.
        error: Option<String>,
    },
    /// The request or download took longer than the timeout.
    #[error("{url} did not answer within {timeout:?}")]
    Timeout {
        /// The request URL.
        url: String,
        /// The timeout.
        timeout: Duration,
    },
    /// The CAR is larger than `BACKFILLER_MAX_REPO_BYTES`.
    #[error(transparent)]
    TooLarge(TooLarge),
    /// The connection failed or broke.
    #[error("requesting {url} failed: {source}")]
    Transport {
        /// The request URL.
        url: String,
        /// The transport error.
        source: reqwest::Error,
    },
}

impl FetchError {
    /// Whether the repository should be acknowledged without retry.
    pub fn is_skip(&self) -> bool {
        matches!(self, FetchError::Unavailable { .. })
    }
}

#[derive(Deserialize)]
struct XrpcError {
    error: Option<String>,
}

/// The getRepo URL of `did` on `pds`.
pub fn get_repo_url(pds: &str, did: &str) -> String {
    let did: String =
        percent_encoding::utf8_percent_encode(did, percent_encoding::NON_ALPHANUMERIC).collect();
    format!(
        "{}/xrpc/com.atproto.sync.getRepo?did={did}",
        pds.trim_end_matches('/')
    )
}

/// Downloads the whole repository of `did` from `pds` as CAR bytes, within `timeout` and at
/// most `limit` bytes (refused while streaming, see [`body`]).
pub async fn get_repo(
    http: &reqwest::Client,
    pds: &str,
    did: &str,
    timeout: Duration,
    limit: u64,
) -> Result<Vec<u8>, FetchError> {
    let url = get_repo_url(pds, did);
    let classify = |source: reqwest::Error, url: &str| {
        if source.is_timeout() {
            FetchError::Timeout {
                url: url.to_owned(),
                timeout,
            }
        } else {
            FetchError::Transport {
                url: url.to_owned(),
                source,
            }
        }
    };
    let response = http
        .get(&url)
        .timeout(timeout)
        .header(reqwest::header::ACCEPT, "application/vnd.ipld.car")
        .send()
        .await
        .map_err(|e| classify(e, &url))?;
    let status = response.status();
    if !status.is_success() {
        let body = body::read_limited(response, &url, MAX_ERROR_BODY, "an error answer")
            .await
            .unwrap_or_default();
        let error = serde_json::from_slice::<XrpcError>(&body)
            .ok()
            .and_then(|e| e.error);
        return Err(match error {
            Some(error) if status.is_client_error() && SKIP_ERRORS.contains(&error.as_str()) => {
                FetchError::Unavailable {
                    url,
                    status: status.as_u16(),
                    error,
                }
            }
            error => FetchError::Status {
                url,
                status: status.as_u16(),
                error,
            },
        });
    }
    body::read_limited(response, &url, limit, "BACKFILLER_MAX_REPO_BYTES")
        .await
        .map_err(|err| match err {
            BodyError::TooLarge(too_large) => FetchError::TooLarge(too_large),
            BodyError::Transport(source) => classify(source, &url),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_did_is_percent_encoded_in_the_query() {
        assert_eq!(
            get_repo_url("http://127.0.0.1:1/", "did:web:127.0.0.1%3A80"),
            "http://127.0.0.1:1/xrpc/com.atproto.sync.getRepo?did=did%3Aweb%3A127%2E0%2E0%2E1%253A80"
        );
    }
}
