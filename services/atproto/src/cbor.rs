//! DAG-CBOR encoding, CID computation and the AT Protocol JSON form of data.
//!
//! Records and other data travel as DAG-CBOR ([`Ipld`] values). The AT Protocol
//! JSON form represents CID links as `{"$link": "<cid>"}` and byte strings as
//! `{"$bytes": "<base64, no padding>"}`; [`ipld_to_json`] and [`json_to_ipld`]
//! convert between the two, enforcing the data model rules (no floats, `$type`
//! must be a non-empty string, blobs must be well formed).

use std::collections::BTreeMap;

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use cid::multihash::Multihash;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use cid::Cid;
pub use ipld_core::ipld::Ipld;

/// Multicodec code of DAG-CBOR blocks.
pub const DAG_CBOR_CODEC: u64 = 0x71;
/// Multicodec code of raw blocks (blobs).
pub const RAW_CODEC: u64 = 0x55;
/// Multihash code of sha2-256.
pub const SHA2_256: u64 = 0x12;

/// Largest integer that JSON consumers can represent exactly (2^53 - 1).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Errors from DAG-CBOR encoding and decoding.
#[derive(Debug, thiserror::Error)]
pub enum CborError {
    /// The value could not be encoded as DAG-CBOR.
    #[error("DAG-CBOR encode failed: {0}")]
    Encode(String),
    /// The bytes are not valid DAG-CBOR for the expected type.
    #[error("DAG-CBOR decode failed: {0}")]
    Decode(String),
}

/// Errors from converting between the AT Protocol JSON form and [`Ipld`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DataModelError {
    /// A record (top-level value) must be a JSON object / CBOR map.
    #[error("top-level value must be an object, found {0}")]
    NotAnObject(&'static str),
    /// Floats are not part of the AT Protocol data model.
    #[error("float value {value} at {path} is not allowed (only integers)")]
    Float {
        /// JSON path of the value.
        path: String,
        /// The offending value.
        value: String,
    },
    /// Integer outside the range representable by the data model.
    #[error("integer at {path} is out of range")]
    IntegerOutOfRange {
        /// JSON path of the value.
        path: String,
    },
    /// `$type` is present but not a non-empty string.
    #[error("$type at {path} must be a non-empty string")]
    BadType {
        /// JSON path of the object.
        path: String,
    },
    /// A `$link` object is malformed.
    #[error("bad $link at {path}: {reason}")]
    BadLink {
        /// JSON path of the object.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// A `$bytes` object is malformed.
    #[error("bad $bytes at {path}: {reason}")]
    BadBytes {
        /// JSON path of the object.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// A blob object (`$type: "blob"`) is malformed.
    #[error("bad blob at {path}: {reason}")]
    BadBlob {
        /// JSON path of the object.
        path: String,
        /// What was wrong.
        reason: String,
    },
}

/// Encode any serializable value as canonical DAG-CBOR (map keys sorted).
pub fn to_dag_cbor<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CborError> {
    serde_ipld_dagcbor::to_vec(value).map_err(|e| CborError::Encode(e.to_string()))
}

/// Decode a single DAG-CBOR value occupying all of `bytes`.
pub fn from_dag_cbor<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CborError> {
    serde_ipld_dagcbor::from_slice(bytes).map_err(|e| CborError::Decode(e.to_string()))
}

/// Decode the first DAG-CBOR value in `bytes`, returning it and the number of
/// bytes it occupied (trailing data is allowed; used for firehose frames).
pub fn from_dag_cbor_prefix<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, usize), CborError> {
    let mut cursor = std::io::Cursor::new(bytes);
    let value = serde_ipld_dagcbor::de::from_reader_once(&mut cursor)
        .map_err(|e| CborError::Decode(e.to_string()))?;
    Ok((value, cursor.position() as usize))
}

/// sha2-256 multihash of `data`.
fn sha256_multihash(data: &[u8]) -> Multihash<64> {
    let digest = Sha256::digest(data);
    Multihash::<64>::wrap(SHA2_256, &digest).expect("32-byte digest fits in 64-byte multihash")
}

/// CIDv1 (dag-cbor, sha2-256) of an encoded DAG-CBOR block.
pub fn cid_for_cbor(block: &[u8]) -> Cid {
    Cid::new_v1(DAG_CBOR_CODEC, sha256_multihash(block))
}

/// CIDv1 (raw, sha2-256) of raw bytes such as a blob.
pub fn cid_for_raw(data: &[u8]) -> Cid {
    Cid::new_v1(RAW_CODEC, sha256_multihash(data))
}

/// Encode `value` as DAG-CBOR and return the block bytes with their CID.
pub fn encode_block<T: Serialize + ?Sized>(value: &T) -> Result<(Cid, Vec<u8>), CborError> {
    let bytes = to_dag_cbor(value)?;
    Ok((cid_for_cbor(&bytes), bytes))
}

/// Parse a CID from its string form (any multibase); CIDv0 is rejected.
pub fn parse_cid(s: &str) -> Result<Cid, String> {
    let cid = Cid::try_from(s).map_err(|e| format!("invalid CID {s:?}: {e}"))?;
    if cid.version() == cid::Version::V0 {
        return Err(format!("CIDv0 {s:?} is not supported"));
    }
    Ok(cid)
}

/// Check whether `block` hashes to `cid` (only sha2-256 CIDs can be checked;
/// other hash functions return `None`).
pub fn verify_block(cid: &Cid, block: &[u8]) -> Option<bool> {
    let mh = cid.hash();
    if mh.code() != SHA2_256 {
        return None;
    }
    Some(mh.digest() == &Sha256::digest(block)[..])
}

/// Base64 (standard alphabet) encoding without padding, as used by `$bytes`.
pub fn base64_encode(data: &[u8]) -> String {
    STANDARD_NO_PAD.encode(data)
}

/// Base64 (standard alphabet) decoding that accepts padded and unpadded input.
pub fn base64_decode(s: &str) -> Result<Vec<u8>, base64::DecodeError> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_encode_padding(false)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    LENIENT.decode(s)
}

fn kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// Convert an AT Protocol JSON record (must be an object) to [`Ipld`].
///
/// Validates the data model: integer-valued numbers only, `$link`/`$bytes`
/// objects with exactly one string field, `$type` non-empty string, and blobs
/// with `ref` link, `mimeType` string and integer `size`.
pub fn json_to_ipld(value: &serde_json::Value) -> Result<Ipld, DataModelError> {
    if !value.is_object() {
        return Err(DataModelError::NotAnObject(kind(value)));
    }
    json_value_to_ipld(value, "$")
}

/// Convert any AT Protocol JSON value (not necessarily an object) to [`Ipld`].
pub fn json_value_to_ipld(value: &serde_json::Value, path: &str) -> Result<Ipld, DataModelError> {
    use serde_json::Value;
    Ok(match value {
        Value::Null => Ipld::Null,
        Value::Bool(b) => Ipld::Bool(*b),
        Value::String(s) => Ipld::String(s.clone()),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ipld::Integer(i as i128)
            } else if let Some(u) = n.as_u64() {
                Ipld::Integer(u as i128)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.is_finite() && f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER {
                    Ipld::Integer(f as i128)
                } else {
                    return Err(DataModelError::Float {
                        path: path.to_string(),
                        value: n.to_string(),
                    });
                }
            }
        }
        Value::Array(items) => Ipld::List(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| json_value_to_ipld(v, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => {
            if let Some(link) = map.get("$link") {
                let link = link.as_str().ok_or_else(|| DataModelError::BadLink {
                    path: path.to_string(),
                    reason: format!("$link must be a string, found {}", kind(link)),
                })?;
                if map.len() != 1 {
                    return Err(DataModelError::BadLink {
                        path: path.to_string(),
                        reason: "$link object must have no other fields".into(),
                    });
                }
                let cid = parse_cid(link).map_err(|reason| DataModelError::BadLink {
                    path: path.to_string(),
                    reason,
                })?;
                return Ok(Ipld::Link(cid));
            }
            if let Some(bytes) = map.get("$bytes") {
                let b64 = bytes.as_str().ok_or_else(|| DataModelError::BadBytes {
                    path: path.to_string(),
                    reason: format!("$bytes must be a string, found {}", kind(bytes)),
                })?;
                if map.len() != 1 {
                    return Err(DataModelError::BadBytes {
                        path: path.to_string(),
                        reason: "$bytes object must have no other fields".into(),
                    });
                }
                let data = base64_decode(b64).map_err(|e| DataModelError::BadBytes {
                    path: path.to_string(),
                    reason: format!("invalid base64: {e}"),
                })?;
                return Ok(Ipld::Bytes(data));
            }
            let mut out = BTreeMap::new();
            for (k, v) in map {
                out.insert(k.clone(), json_value_to_ipld(v, &format!("{path}.{k}"))?);
            }
            check_object(&out, path)?;
            Ipld::Map(out)
        }
    })
}

/// Data model checks on a map: `$type` and blob shape.
fn check_object(map: &BTreeMap<String, Ipld>, path: &str) -> Result<(), DataModelError> {
    match map.get("$type") {
        None => Ok(()),
        Some(Ipld::String(t)) if !t.is_empty() => {
            if t == "blob" {
                let bad = |reason: &str| DataModelError::BadBlob {
                    path: path.to_string(),
                    reason: reason.to_string(),
                };
                match map.get("ref") {
                    Some(Ipld::Link(_)) => {}
                    Some(_) => return Err(bad("ref must be a CID link")),
                    None => return Err(bad("missing ref")),
                }
                match map.get("mimeType") {
                    Some(Ipld::String(_)) => {}
                    Some(_) => return Err(bad("mimeType must be a string")),
                    None => return Err(bad("missing mimeType")),
                }
                match map.get("size") {
                    Some(Ipld::Integer(_)) => {}
                    Some(_) => return Err(bad("size must be an integer")),
                    None => return Err(bad("missing size")),
                }
            }
            Ok(())
        }
        Some(_) => Err(DataModelError::BadType {
            path: path.to_string(),
        }),
    }
}

/// Convert an [`Ipld`] value to the AT Protocol JSON form.
///
/// Links become `{"$link": cid}` and bytes `{"$bytes": base64}`. Floats are
/// rejected, as are integers outside the JSON-safe range.
pub fn ipld_to_json(value: &Ipld) -> Result<serde_json::Value, DataModelError> {
    ipld_to_json_at(value, "$")
}

fn ipld_to_json_at(value: &Ipld, path: &str) -> Result<serde_json::Value, DataModelError> {
    use serde_json::Value;
    Ok(match value {
        Ipld::Null => Value::Null,
        Ipld::Bool(b) => Value::Bool(*b),
        Ipld::Integer(i) => {
            if let Ok(v) = i64::try_from(*i) {
                Value::from(v)
            } else if let Ok(v) = u64::try_from(*i) {
                Value::from(v)
            } else {
                return Err(DataModelError::IntegerOutOfRange {
                    path: path.to_string(),
                });
            }
        }
        Ipld::Float(f) => {
            return Err(DataModelError::Float {
                path: path.to_string(),
                value: f.to_string(),
            })
        }
        Ipld::String(s) => Value::String(s.clone()),
        Ipld::Bytes(b) => serde_json::json!({ "$bytes": base64_encode(b) }),
        Ipld::Link(c) => serde_json::json!({ "$link": c.to_string() }),
        Ipld::List(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| ipld_to_json_at(v, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Ipld::Map(map) => {
            check_object(map, path)?;
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                out.insert(k.clone(), ipld_to_json_at(v, &format!("{path}.{k}"))?);
            }
            Value::Object(out)
        }
    })
}

/// Decode a DAG-CBOR record block and convert it to AT Protocol JSON.
///
/// Fails if the bytes are not DAG-CBOR, the value is not a map, or it breaks
/// the data model.
pub fn record_cbor_to_json(block: &[u8]) -> Result<serde_json::Value, RecordError> {
    let ipld: Ipld = from_dag_cbor(block).map_err(RecordError::Cbor)?;
    if !matches!(ipld, Ipld::Map(_)) {
        return Err(RecordError::DataModel(DataModelError::NotAnObject(
            ipld_kind(&ipld),
        )));
    }
    ipld_to_json(&ipld).map_err(RecordError::DataModel)
}

/// Convert an AT Protocol JSON record to its DAG-CBOR block and CID.
pub fn record_json_to_cbor(value: &serde_json::Value) -> Result<(Cid, Vec<u8>), RecordError> {
    let ipld = json_to_ipld(value).map_err(RecordError::DataModel)?;
    encode_block(&ipld).map_err(RecordError::Cbor)
}

/// Errors converting a record between DAG-CBOR and JSON.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Not decodable/encodable as DAG-CBOR.
    #[error(transparent)]
    Cbor(CborError),
    /// Breaks the AT Protocol data model.
    #[error(transparent)]
    DataModel(DataModelError),
}

/// Short name of an [`Ipld`] value's kind, for error messages.
pub fn ipld_kind(value: &Ipld) -> &'static str {
    match value {
        Ipld::Null => "null",
        Ipld::Bool(_) => "boolean",
        Ipld::Integer(_) => "integer",
        Ipld::Float(_) => "float",
        Ipld::String(_) => "string",
        Ipld::Bytes(_) => "bytes",
        Ipld::List(_) => "list",
        Ipld::Map(_) => "map",
        Ipld::Link(_) => "link",
    }
}
