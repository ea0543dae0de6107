//! Syntax validation of AT Protocol identifiers, and TID generation.
//!
//! Each `validate_*` function returns `Ok(())` or a [`SyntaxError`] naming the
//! kind of identifier and what was wrong. The rules follow the atproto specs
//! (checked against the interop test vectors).

/// A syntax validation failure.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("invalid {kind} {value:?}: {reason}")]
pub struct SyntaxError {
    /// Which identifier type was being validated (e.g. `"DID"`).
    pub kind: &'static str,
    /// The rejected input (truncated to 100 characters).
    pub value: String,
    /// What was wrong.
    pub reason: String,
}

fn err(kind: &'static str, value: &str, reason: impl Into<String>) -> SyntaxError {
    SyntaxError {
        kind,
        value: value.chars().take(100).collect(),
        reason: reason.into(),
    }
}

/// Validate a DID: `did:<method>:<identifier>`, at most 2048 characters.
pub fn validate_did(did: &str) -> Result<(), SyntaxError> {
    let e = |r: &str| err("DID", did, r);
    if did.len() > 2048 {
        return Err(e("longer than 2048 characters"));
    }
    let Some(rest) = did.strip_prefix("did:") else {
        return Err(e("must start with 'did:'"));
    };
    let Some((method, ident)) = rest.split_once(':') else {
        return Err(e("missing ':' after method"));
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(e("method must be lowercase letters"));
    }
    if ident.is_empty() {
        return Err(e("empty method-specific identifier"));
    }
    if !ident
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._:%-".contains(&b))
    {
        return Err(e("identifier has characters outside [a-zA-Z0-9._:%-]"));
    }
    if ident.ends_with(':') || ident.ends_with('%') {
        return Err(e("identifier must not end with ':' or '%'"));
    }
    Ok(())
}

fn check_label(label: &str) -> Result<(), &'static str> {
    if label.is_empty() {
        return Err("empty label");
    }
    if label.len() > 63 {
        return Err("label longer than 63 characters");
    }
    if !label
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err("label has characters outside [a-zA-Z0-9-]");
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err("label starts or ends with '-'");
    }
    Ok(())
}

/// Validate a handle (a DNS name with at least two labels whose last label
/// starts with a letter), at most 253 characters.
pub fn validate_handle(handle: &str) -> Result<(), SyntaxError> {
    let e = |r: &str| err("handle", handle, r);
    if handle.len() > 253 {
        return Err(e("longer than 253 characters"));
    }
    let labels: Vec<&str> = handle.split('.').collect();
    if labels.len() < 2 {
        return Err(e("needs at least two labels"));
    }
    for label in &labels {
        check_label(label).map_err(e)?;
    }
    let tld = labels[labels.len() - 1];
    if !tld.as_bytes()[0].is_ascii_alphabetic() {
        return Err(e("top-level label must start with a letter"));
    }
    Ok(())
}

/// Validate an NSID: reversed domain authority plus a name segment
/// (`com.example.fooBar`), at least three segments, at most 317 characters.
pub fn validate_nsid(nsid: &str) -> Result<(), SyntaxError> {
    let e = |r: &str| err("NSID", nsid, r);
    if nsid.len() > 317 {
        return Err(e("longer than 317 characters"));
    }
    let segments: Vec<&str> = nsid.split('.').collect();
    if segments.len() < 3 {
        return Err(e("needs at least three segments"));
    }
    let (name, authority) = segments.split_last().expect("at least three segments");
    for seg in authority {
        check_label(seg).map_err(e)?;
    }
    if !authority[0].as_bytes()[0].is_ascii_alphabetic() {
        return Err(e("first segment must start with a letter"));
    }
    if name.is_empty() || name.len() > 63 {
        return Err(e("name segment must be 1-63 characters"));
    }
    if !name.as_bytes()[0].is_ascii_alphabetic() {
        return Err(e("name segment must start with a letter"));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(e("name segment must be letters and digits only"));
    }
    Ok(())
}

/// Validate a record key: 1-512 characters of `[a-zA-Z0-9_~.:-]`, not `.` or `..`.
pub fn validate_record_key(rkey: &str) -> Result<(), SyntaxError> {
    let e = |r: &str| err("record key", rkey, r);
    if rkey.is_empty() || rkey.len() > 512 {
        return Err(e("must be 1-512 characters"));
    }
    if rkey == "." || rkey == ".." {
        return Err(e("'.' and '..' are not allowed"));
    }
    if !rkey
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_~.:-".contains(&b))
    {
        return Err(e("has characters outside [a-zA-Z0-9_~.:-]"));
    }
    Ok(())
}

/// Characters of the base32-sortable alphabet used by TIDs.
pub const TID_ALPHABET: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";

/// Validate a TID: 13 base32-sortable characters, first one in `[2-7a-j]`.
pub fn validate_tid(tid: &str) -> Result<(), SyntaxError> {
    let e = |r: &str| err("TID", tid, r);
    if tid.len() != 13 {
        return Err(e("must be exactly 13 characters"));
    }
    if !tid.bytes().all(|b| TID_ALPHABET.contains(&b)) {
        return Err(e("has characters outside base32-sortable [2-7a-z]"));
    }
    if !b"234567abcdefghij".contains(&tid.as_bytes()[0]) {
        return Err(e("high bit must be zero (first character in [2-7a-j])"));
    }
    Ok(())
}

/// Build a TID from a timestamp in microseconds since the Unix epoch (53 bits
/// used) and a clock identifier (10 bits used).
pub fn tid_from_parts(timestamp_micros: u64, clock_id: u16) -> String {
    let value = ((timestamp_micros & ((1 << 53) - 1)) << 10) | u64::from(clock_id & 0x3ff);
    let mut out = [0u8; 13];
    for (i, slot) in out.iter_mut().enumerate() {
        let shift = 5 * (12 - i);
        *slot = TID_ALPHABET[((value >> shift) & 0x1f) as usize];
    }
    String::from_utf8(out.to_vec()).expect("alphabet is ASCII")
}

/// Split a valid TID into `(timestamp_micros, clock_id)`.
pub fn tid_parts(tid: &str) -> Result<(u64, u16), SyntaxError> {
    validate_tid(tid)?;
    let mut value: u64 = 0;
    for b in tid.bytes() {
        let idx = TID_ALPHABET
            .iter()
            .position(|&c| c == b)
            .expect("validated") as u64;
        value = (value << 5) | idx;
    }
    Ok((value >> 10, (value & 0x3ff) as u16))
}

/// A TID for the current time with the given clock id.
pub fn tid_now(clock_id: u16) -> String {
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    tid_from_parts(micros, clock_id)
}

/// Validate an AT-URI: `at://<did or handle>[/<nsid>[/<record key>]]` with an
/// optional `#/...` fragment, at most 8192 characters.
pub fn validate_at_uri(uri: &str) -> Result<(), SyntaxError> {
    let e = |r: &str| err("AT-URI", uri, r);
    if uri.len() > 8192 {
        return Err(e("longer than 8192 characters"));
    }
    let Some(rest) = uri.strip_prefix("at://") else {
        return Err(e("must start with 'at://'"));
    };
    let (path, fragment) = match rest.split_once('#') {
        Some((p, f)) => (p, Some(f)),
        None => (rest, None),
    };
    if let Some(fragment) = fragment {
        if !fragment.starts_with('/') {
            return Err(e("fragment must start with '/'"));
        }
        if !fragment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._~:@!$&%')(*+,;=-[]/\\".contains(&b))
        {
            return Err(e("fragment has invalid characters"));
        }
    }
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() > 3 {
        return Err(e("path has more than collection and record key"));
    }
    let authority = parts[0];
    if authority.starts_with("did:") {
        validate_did(authority).map_err(|x| e(&format!("authority: {}", x.reason)))?;
    } else {
        validate_handle(authority).map_err(|x| e(&format!("authority: {}", x.reason)))?;
    }
    if let Some(collection) = parts.get(1) {
        validate_nsid(collection).map_err(|x| e(&format!("collection: {}", x.reason)))?;
    }
    if let Some(rkey) = parts.get(2) {
        validate_record_key(rkey).map_err(|x| e(&format!("record key: {}", x.reason)))?;
    }
    Ok(())
}

/// Loose CID string syntax check (as in the atproto reference validator):
/// 8-256 characters of `[a-zA-Z0-9+=]`, and not a CIDv0 (`Qmb...`).
/// Use [`crate::cbor::parse_cid`] to actually decode a CID.
pub fn validate_cid_syntax(cid: &str) -> Result<(), SyntaxError> {
    let e = |r: &str| err("CID", cid, r);
    if cid.len() < 8 || cid.len() > 256 {
        return Err(e("must be 8-256 characters"));
    }
    if !cid
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'=')
    {
        return Err(e("has characters outside [a-zA-Z0-9+=]"));
    }
    if cid.starts_with("Qmb") {
        return Err(e("CIDv0 is not supported"));
    }
    Ok(())
}

/// Split a repo path `collection/rkey`, validating both parts.
pub fn split_repo_path(path: &str) -> Result<(&str, &str), SyntaxError> {
    let Some((collection, rkey)) = path.split_once('/') else {
        return Err(err(
            "repo path",
            path,
            "must be '<collection>/<record key>'",
        ));
    };
    validate_nsid(collection)?;
    validate_record_key(rkey)?;
    Ok((collection, rkey))
}

/// True for collections whose records the pipeline forwards: NSIDs under
/// `app.bsky.` or `chat.bsky.`.
pub fn is_forwarded_collection(nsid: &str) -> bool {
    nsid.starts_with("app.bsky.") || nsid.starts_with("chat.bsky.")
}
