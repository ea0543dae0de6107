//! Event-stream frames of `com.atproto.sync.subscribeRepos` (the firehose)
//! and `com.atproto.label.subscribeLabels`.
//!
//! A websocket binary message is a DAG-CBOR header `{op, t}` immediately
//! followed by a DAG-CBOR body. `op: 1` is a message whose type is `t`
//! (`#commit`, `#identity`, ...); `op: -1` is an error frame with body
//! `{error, message?}`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::car::{read_car, BlockMap, CarError};
use crate::cbor::{from_dag_cbor_prefix, record_cbor_to_json, to_dag_cbor, Cid};
use crate::syntax::split_repo_path;

/// Errors from decoding or encoding an event-stream frame.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The header is not a DAG-CBOR `{op, t}` map.
    #[error("invalid frame header: {0}")]
    Header(String),
    /// The header `op` is neither 1 (message) nor -1 (error).
    #[error("unknown frame op {0} (expected 1 or -1)")]
    UnknownOp(i64),
    /// A message frame (`op: 1`) without a `t` type.
    #[error("message frame header has no type 't'")]
    MissingType,
    /// The message type is not known for this stream.
    #[error("unknown message type {0:?}")]
    UnknownType(String),
    /// The body does not decode as the type named in the header.
    #[error("invalid {t} body: {reason}")]
    Body {
        /// Message type from the header (or `"error"`).
        t: String,
        /// What was wrong.
        reason: String,
    },
    /// Bytes remain after the body.
    #[error("{extra} trailing bytes after {t} body")]
    TrailingData {
        /// Message type from the header.
        t: String,
        /// Number of unexpected bytes.
        extra: usize,
    },
    /// Encoding a frame failed.
    #[error("frame encode failed: {0}")]
    Encode(String),
}

/// The frame header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameHeader {
    /// 1 for a message, -1 for an error.
    pub op: i64,
    /// Message type such as `#commit` (absent on error frames).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t: Option<String>,
}

/// Kind of a repository operation in a `#commit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpAction {
    /// A record was created.
    Create,
    /// A record was updated.
    Update,
    /// A record was deleted.
    Delete,
}

impl OpAction {
    /// Lowercase name (`create`, `update`, `delete`).
    pub fn as_str(self) -> &'static str {
        match self {
            OpAction::Create => "create",
            OpAction::Update => "update",
            OpAction::Delete => "delete",
        }
    }
}

/// One repository operation of a `#commit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoOp {
    /// create, update or delete.
    pub action: OpAction,
    /// `collection/rkey`.
    pub path: String,
    /// New record CID (null for deletes).
    pub cid: Option<Cid>,
    /// Previous record CID (sync v1.1; for updates and deletes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<Cid>,
}

/// `#commit`: a repository commit with its diff blocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitEvent {
    /// Stream sequence number.
    pub seq: i64,
    /// Deprecated; always false.
    #[serde(default)]
    pub rebase: bool,
    /// Deprecated; the diff was too large to include.
    #[serde(rename = "tooBig", default)]
    pub too_big: bool,
    /// Repository DID.
    pub repo: String,
    /// CID of the commit block.
    pub commit: Cid,
    /// Revision (TID) of this commit.
    pub rev: String,
    /// Revision of the previous commit, if any.
    #[serde(default)]
    pub since: Option<String>,
    /// CAR slice with the commit, changed MST nodes and new records.
    #[serde(with = "serde_bytes")]
    pub blocks: Vec<u8>,
    /// Record operations.
    pub ops: Vec<RepoOp>,
    /// Blob CIDs referenced by new records (deprecated).
    #[serde(default)]
    pub blobs: Vec<Cid>,
    /// Timestamp (RFC 3339) when the event was sequenced.
    pub time: String,
    /// MST root of the previous commit (sync v1.1).
    #[serde(rename = "prevData", default, skip_serializing_if = "Option::is_none")]
    pub prev_data: Option<Cid>,
}

/// `#identity`: the account's identity (handle/DID document) may have changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityEvent {
    /// Stream sequence number.
    pub seq: i64,
    /// Account DID.
    pub did: String,
    /// Timestamp (RFC 3339).
    pub time: String,
    /// Current handle, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
}

/// `#account`: the account's hosting status changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountEvent {
    /// Stream sequence number.
    pub seq: i64,
    /// Account DID.
    pub did: String,
    /// Timestamp (RFC 3339).
    pub time: String,
    /// Whether the account is active.
    pub active: bool,
    /// Reason when inactive (`takendown`, `suspended`, `deleted`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// `#sync`: the repository state was reset to the given commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncEvent {
    /// Stream sequence number.
    pub seq: i64,
    /// Account DID.
    pub did: String,
    /// CAR slice containing the commit block.
    #[serde(with = "serde_bytes")]
    pub blocks: Vec<u8>,
    /// Revision of the commit.
    pub rev: String,
    /// Timestamp (RFC 3339).
    pub time: String,
}

/// `#info`: an informational message (e.g. `OutdatedCursor`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfoEvent {
    /// Info name.
    pub name: String,
    /// Optional human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Error frame body (`op: -1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorFrame {
    /// Error name (e.g. `FutureCursor`, `ConsumerTooSlow`).
    pub error: String,
    /// Optional human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A label (`com.atproto.label.defs#label`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    /// Label format version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ver: Option<i64>,
    /// DID of the labeler.
    pub src: String,
    /// Subject URI (AT-URI or DID).
    pub uri: String,
    /// Optional CID (string) of the labelled record version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
    /// Label value.
    pub val: String,
    /// True if this label negates an earlier one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neg: Option<bool>,
    /// Creation timestamp.
    pub cts: String,
    /// Optional expiry timestamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<String>,
    /// Optional signature bytes.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_bytes")]
    pub sig: Option<Vec<u8>>,
}

/// `#labels`: labels from `subscribeLabels`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelsEvent {
    /// Stream sequence number.
    pub seq: i64,
    /// The labels.
    pub labels: Vec<Label>,
}

/// A decoded `subscribeRepos` frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoFrame {
    /// `#commit` (boxed: it is much larger than the other variants)
    Commit(Box<CommitEvent>),
    /// `#identity`
    Identity(IdentityEvent),
    /// `#account`
    Account(AccountEvent),
    /// `#sync`
    Sync(SyncEvent),
    /// `#info`
    Info(InfoEvent),
    /// Error frame (`op: -1`).
    Error(ErrorFrame),
}

impl RepoFrame {
    /// The header type (`#commit`, ...) or `"error"` for error frames.
    pub fn type_name(&self) -> &'static str {
        match self {
            RepoFrame::Commit(_) => "#commit",
            RepoFrame::Identity(_) => "#identity",
            RepoFrame::Account(_) => "#account",
            RepoFrame::Sync(_) => "#sync",
            RepoFrame::Info(_) => "#info",
            RepoFrame::Error(_) => "error",
        }
    }

    /// The sequence number, for frames that have one.
    pub fn seq(&self) -> Option<i64> {
        match self {
            RepoFrame::Commit(c) => Some(c.seq),
            RepoFrame::Identity(c) => Some(c.seq),
            RepoFrame::Account(c) => Some(c.seq),
            RepoFrame::Sync(c) => Some(c.seq),
            RepoFrame::Info(_) | RepoFrame::Error(_) => None,
        }
    }
}

/// A decoded `subscribeLabels` frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelFrame {
    /// `#labels`
    Labels(LabelsEvent),
    /// `#info`
    Info(InfoEvent),
    /// Error frame (`op: -1`).
    Error(ErrorFrame),
}

/// Decode only the header; returns it and the offset where the body starts.
pub fn decode_header(frame: &[u8]) -> Result<(FrameHeader, usize), FrameError> {
    if frame.is_empty() {
        return Err(FrameError::Header("empty frame".into()));
    }
    let (header, len): (FrameHeader, usize) =
        from_dag_cbor_prefix(frame).map_err(|e| FrameError::Header(e.to_string()))?;
    Ok((header, len))
}

fn decode_body<T: DeserializeOwned>(t: &str, body: &[u8]) -> Result<T, FrameError> {
    if body.is_empty() {
        return Err(FrameError::Body {
            t: t.to_string(),
            reason: "missing body".into(),
        });
    }
    let (value, len) = from_dag_cbor_prefix(body).map_err(|e| FrameError::Body {
        t: t.to_string(),
        reason: e.to_string(),
    })?;
    if len != body.len() {
        return Err(FrameError::TrailingData {
            t: t.to_string(),
            extra: body.len() - len,
        });
    }
    Ok(value)
}

/// Split a frame into `Ok(type, body)` for messages or `Err(Ok(error))` for
/// error frames.
fn split_frame(frame: &[u8]) -> Result<Result<(String, &[u8]), ErrorFrame>, FrameError> {
    let (header, offset) = decode_header(frame)?;
    let body = &frame[offset..];
    match header.op {
        1 => {
            let t = header.t.ok_or(FrameError::MissingType)?;
            Ok(Ok((t, body)))
        }
        -1 => Ok(Err(decode_body("error", body)?)),
        op => Err(FrameError::UnknownOp(op)),
    }
}

/// Decode a `subscribeRepos` frame.
pub fn decode_repo_frame(frame: &[u8]) -> Result<RepoFrame, FrameError> {
    let (t, body) = match split_frame(frame)? {
        Ok(x) => x,
        Err(e) => return Ok(RepoFrame::Error(e)),
    };
    Ok(match t.as_str() {
        "#commit" => RepoFrame::Commit(decode_body(&t, body)?),
        "#identity" => RepoFrame::Identity(decode_body(&t, body)?),
        "#account" => RepoFrame::Account(decode_body(&t, body)?),
        "#sync" => RepoFrame::Sync(decode_body(&t, body)?),
        "#info" => RepoFrame::Info(decode_body(&t, body)?),
        _ => return Err(FrameError::UnknownType(t)),
    })
}

/// Decode a `subscribeLabels` frame.
pub fn decode_label_frame(frame: &[u8]) -> Result<LabelFrame, FrameError> {
    let (t, body) = match split_frame(frame)? {
        Ok(x) => x,
        Err(e) => return Ok(LabelFrame::Error(e)),
    };
    Ok(match t.as_str() {
        "#labels" => LabelFrame::Labels(decode_body(&t, body)?),
        "#info" => LabelFrame::Info(decode_body(&t, body)?),
        _ => return Err(FrameError::UnknownType(t)),
    })
}

/// Encode a frame from a header and a serializable body.
pub fn encode_frame<T: Serialize>(header: &FrameHeader, body: &T) -> Result<Vec<u8>, FrameError> {
    let mut out = to_dag_cbor(header).map_err(|e| FrameError::Encode(e.to_string()))?;
    out.extend(to_dag_cbor(body).map_err(|e| FrameError::Encode(e.to_string()))?);
    Ok(out)
}

fn message_header(t: &str) -> FrameHeader {
    FrameHeader {
        op: 1,
        t: Some(t.to_string()),
    }
}

const ERROR_HEADER: FrameHeader = FrameHeader { op: -1, t: None };

/// Encode a `subscribeRepos` frame.
pub fn encode_repo_frame(frame: &RepoFrame) -> Result<Vec<u8>, FrameError> {
    let h = message_header(frame.type_name());
    match frame {
        RepoFrame::Commit(b) => encode_frame(&h, b),
        RepoFrame::Identity(b) => encode_frame(&h, b),
        RepoFrame::Account(b) => encode_frame(&h, b),
        RepoFrame::Sync(b) => encode_frame(&h, b),
        RepoFrame::Info(b) => encode_frame(&h, b),
        RepoFrame::Error(b) => encode_frame(&ERROR_HEADER, b),
    }
}

/// Encode a `subscribeLabels` frame.
pub fn encode_label_frame(frame: &LabelFrame) -> Result<Vec<u8>, FrameError> {
    match frame {
        LabelFrame::Labels(b) => encode_frame(&message_header("#labels"), b),
        LabelFrame::Info(b) => encode_frame(&message_header("#info"), b),
        LabelFrame::Error(b) => encode_frame(&ERROR_HEADER, b),
    }
}

/// Errors extracting records from a `#commit`'s blocks.
#[derive(Debug, thiserror::Error)]
pub enum CommitRecordsError {
    /// The `blocks` field is not a valid CAR.
    #[error("commit blocks: {0}")]
    Car(#[from] CarError),
    /// An op path is not `collection/rkey`.
    #[error("bad op path: {0}")]
    BadPath(String),
    /// A create/update op lacks a CID.
    #[error("{action} op {path} has no cid")]
    MissingCid {
        /// The op action.
        action: &'static str,
        /// The op path.
        path: String,
    },
    /// The record block for an op is not in the CAR.
    #[error("record block {cid} for {path} is missing from the commit blocks")]
    MissingBlock {
        /// The op path.
        path: String,
        /// The missing CID.
        cid: Cid,
    },
    /// A record block is not a valid record.
    #[error("record {path} is invalid: {reason}")]
    BadRecord {
        /// The op path.
        path: String,
        /// What was wrong.
        reason: String,
    },
}

/// A commit op joined with its record (for creates and updates).
#[derive(Debug, Clone, PartialEq)]
pub struct OpRecord {
    /// create, update or delete.
    pub action: OpAction,
    /// Collection NSID.
    pub collection: String,
    /// Record key.
    pub rkey: String,
    /// Record CID (None for deletes).
    pub cid: Option<Cid>,
    /// The record in AT Protocol JSON form (None for deletes).
    pub record: Option<serde_json::Value>,
}

impl CommitEvent {
    /// The commit's `blocks` CAR as a map `CID -> bytes`.
    pub fn block_map(&self) -> Result<BlockMap, CarError> {
        Ok(read_car(&self.blocks)?.into_block_map())
    }

    /// Each op with its record decoded to JSON from the commit's blocks.
    pub fn op_records(&self) -> Result<Vec<OpRecord>, CommitRecordsError> {
        let blocks = self.block_map()?;
        let mut out = Vec::with_capacity(self.ops.len());
        for op in &self.ops {
            let (collection, rkey) = split_repo_path(&op.path)
                .map_err(|e| CommitRecordsError::BadPath(e.to_string()))?;
            let (cid, record) = match op.action {
                OpAction::Delete => (op.cid, None),
                OpAction::Create | OpAction::Update => {
                    let cid = op.cid.ok_or_else(|| CommitRecordsError::MissingCid {
                        action: op.action.as_str(),
                        path: op.path.clone(),
                    })?;
                    let block =
                        blocks
                            .get(&cid)
                            .ok_or_else(|| CommitRecordsError::MissingBlock {
                                path: op.path.clone(),
                                cid,
                            })?;
                    let json =
                        record_cbor_to_json(block).map_err(|e| CommitRecordsError::BadRecord {
                            path: op.path.clone(),
                            reason: e.to_string(),
                        })?;
                    (Some(cid), Some(json))
                }
            };
            out.push(OpRecord {
                action: op.action,
                collection: collection.to_string(),
                rkey: rkey.to_string(),
                cid,
                record,
            });
        }
        Ok(out)
    }
}
