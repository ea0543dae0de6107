//! Reading an HTTP body with a size limit enforced while it streams in: a declared
//! `Content-Length` above the limit is refused before a byte is read, and an undeclared (chunked)
//! body is refused as soon as it passes the limit, so a PDS or a DID host cannot make the
//! backfiller hold more than the limit. The chunks are appended to one buffer (one copy).

/// A body that is larger than its limit.
#[derive(Debug, thiserror::Error)]
#[error("the body of {url} is larger than the limit of {limit} bytes ({setting}){}",
    declared.map(|n| format!(": it declares {n} bytes")).unwrap_or_default())]
pub struct TooLarge {
    /// The request URL.
    pub url: String,
    /// The limit in bytes.
    pub limit: u64,
    /// The setting that holds the limit, e.g. `BACKFILLER_MAX_REPO_BYTES`.
    pub setting: &'static str,
    /// The `Content-Length` of the answer, when it declared one above the limit.
    pub declared: Option<u64>,
}

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Larger than the limit.
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
    /// The connection failed, broke or timed out while reading.
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
}

/// Reads the body of `response` (for `url`) into one buffer, refusing it once it is larger than
/// `limit` bytes (the setting named `setting`).
pub async fn read_limited(
    mut response: reqwest::Response,
    url: &str,
    limit: u64,
    setting: &'static str,
) -> Result<Vec<u8>, BodyError> {
    let too_large = |declared| TooLarge {
        url: url.to_owned(),
        limit,
        setting,
        declared,
    };
    let declared = response.content_length();
    if let Some(length) = declared.filter(|&n| n > limit) {
        return Err(too_large(Some(length)).into());
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(chunk) = response.chunk().await? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(too_large(None).into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
