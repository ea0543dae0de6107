//! Signed repository commits, and whole-repository CAR export/import.
//!
//! A commit is `{did, version: 3, data, rev, prev: null, sig}` where `data` is
//! the MST root and `sig` signs the DAG-CBOR of the commit without `sig`.
//! A repository CAR has the commit CID as its single root and contains the
//! commit block, every MST node and every record block.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::car::{read_car, write_car, BlockMap, CarError};
use crate::cbor::{encode_block, from_dag_cbor, record_cbor_to_json, to_dag_cbor, Cid, Ipld};
use crate::crypto::{KeyError, PublicKey, SigningKey};
use crate::mst::{build_mst, walk_mst, Mst, MstError};
use crate::syntax::{split_repo_path, validate_did, validate_tid};

/// Current repository format version.
pub const REPO_VERSION: i64 = 3;

/// Errors from building or loading repositories and commits.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The CAR is truncated or malformed.
    #[error("invalid repo CAR: {0}")]
    Car(#[from] CarError),
    /// A block referenced by the commit or MST is not in the CAR.
    #[error("missing {what} block {cid}")]
    MissingBlock {
        /// What the block should have been (commit, MST node, record).
        what: &'static str,
        /// The missing CID.
        cid: Cid,
    },
    /// The commit names a different DID than expected.
    #[error("commit DID {found:?} does not match expected {expected:?}")]
    DidMismatch {
        /// The DID the caller expected.
        expected: String,
        /// The DID in the commit.
        found: String,
    },
    /// The verification key could not be parsed.
    #[error("bad verification key: {0}")]
    BadKey(KeyError),
    /// The commit signature does not verify.
    #[error("bad commit signature: {0}")]
    BadSignature(KeyError),
    /// The commit block is malformed.
    #[error("invalid commit: {0}")]
    InvalidCommit(String),
    /// The MST is malformed.
    #[error("invalid MST: {0}")]
    InvalidMst(MstError),
    /// A record (or its path) is invalid.
    #[error("bad record {path}: {reason}")]
    BadRecord {
        /// Repo path `collection/rkey`.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// An input argument (DID, rev, path) is invalid.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Encoding failed.
    #[error("encode failed: {0}")]
    Encode(String),
}

/// A commit without its signature: the bytes that get signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsignedCommit {
    /// Repository DID.
    pub did: String,
    /// Repo format version (3).
    pub version: i64,
    /// MST root CID.
    pub data: Cid,
    /// Revision TID.
    pub rev: String,
    /// Previous commit (always null in v3, but present).
    pub prev: Option<Cid>,
}

/// A signed commit block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    /// Repository DID.
    pub did: String,
    /// Repo format version (3).
    pub version: i64,
    /// MST root CID.
    pub data: Cid,
    /// Revision TID.
    pub rev: String,
    /// Previous commit (always null in v3, but present).
    pub prev: Option<Cid>,
    /// 64-byte compact ECDSA signature.
    #[serde(with = "serde_bytes")]
    pub sig: Vec<u8>,
}

impl Commit {
    /// Create and sign a v3 commit.
    pub fn sign(did: &str, data: Cid, rev: &str, key: &SigningKey) -> Result<Commit, RepoError> {
        let unsigned = UnsignedCommit {
            did: did.to_string(),
            version: REPO_VERSION,
            data,
            rev: rev.to_string(),
            prev: None,
        };
        let bytes = to_dag_cbor(&unsigned).map_err(|e| RepoError::Encode(e.to_string()))?;
        let sig = key.sign(&bytes).map_err(RepoError::BadKey)?;
        Ok(Commit {
            did: unsigned.did,
            version: unsigned.version,
            data,
            rev: unsigned.rev,
            prev: None,
            sig: sig.to_vec(),
        })
    }

    /// The commit without `sig`.
    pub fn unsigned(&self) -> UnsignedCommit {
        UnsignedCommit {
            did: self.did.clone(),
            version: self.version,
            data: self.data,
            rev: self.rev.clone(),
            prev: self.prev,
        }
    }

    /// Verify the signature with `key`.
    pub fn verify(&self, key: &PublicKey) -> Result<(), RepoError> {
        let bytes = to_dag_cbor(&self.unsigned()).map_err(|e| RepoError::Encode(e.to_string()))?;
        key.verify(&bytes, &self.sig)
            .map_err(RepoError::BadSignature)
    }

    /// Encode as a block, returning its CID and bytes.
    pub fn to_block(&self) -> Result<(Cid, Vec<u8>), RepoError> {
        encode_block(self).map_err(|e| RepoError::Encode(e.to_string()))
    }
}

/// A repository built in memory.
#[derive(Debug, Clone)]
pub struct BuiltRepo {
    /// The signed commit.
    pub commit: Commit,
    /// CID of the commit block.
    pub commit_cid: Cid,
    /// The MST (root CID is `commit.data`) with its node blocks.
    pub mst: Mst,
    /// Record blocks (`CID -> DAG-CBOR`).
    pub records: BlockMap,
    /// Record CIDs by path (`collection/rkey`).
    pub paths: BTreeMap<String, Cid>,
}

impl BuiltRepo {
    /// Every block of the repository: commit, MST nodes and records.
    pub fn blocks(&self) -> Result<BlockMap, RepoError> {
        let mut all = self.mst.blocks.clone();
        all.extend(self.records.iter().map(|(k, v)| (*k, v.clone())));
        let (cid, bytes) = self.commit.to_block()?;
        all.insert(cid, bytes);
        Ok(all)
    }

    /// The whole repository as a CAR (root = commit; commit block first).
    pub fn to_car(&self) -> Result<Vec<u8>, RepoError> {
        self.diff_car(None)
    }

    /// A CAR with the commit block plus every block not present in
    /// `previous` (all blocks if `None`), as sent in a `#commit` event.
    pub fn diff_car(&self, previous: Option<&BuiltRepo>) -> Result<Vec<u8>, RepoError> {
        let (commit_cid, commit_bytes) = self.commit.to_block()?;
        let mut ordered: Vec<(&Cid, &[u8])> = vec![(&commit_cid, &commit_bytes)];
        let is_new = |cid: &Cid| match previous {
            None => true,
            Some(p) => !p.mst.blocks.contains_key(cid) && !p.records.contains_key(cid),
        };
        for (cid, bytes) in self.mst.blocks.iter().chain(self.records.iter()) {
            if is_new(cid) {
                ordered.push((cid, bytes));
            }
        }
        Ok(write_car(&[commit_cid], ordered)?)
    }
}

/// Build and sign a repository from `(collection, rkey, record)` triples.
///
/// Validates the DID, the rev (a TID) and each path; records must be maps.
/// A later record with the same path replaces an earlier one.
pub fn build_repo<I>(
    did: &str,
    key: &SigningKey,
    rev: &str,
    records: I,
) -> Result<BuiltRepo, RepoError>
where
    I: IntoIterator<Item = (String, String, Ipld)>,
{
    validate_did(did).map_err(|e| RepoError::InvalidInput(e.to_string()))?;
    validate_tid(rev).map_err(|e| RepoError::InvalidInput(e.to_string()))?;
    let mut paths = BTreeMap::new();
    let mut blocks = BTreeMap::new();
    for (collection, rkey, record) in records {
        let path = format!("{collection}/{rkey}");
        split_repo_path(&path).map_err(|e| RepoError::InvalidInput(e.to_string()))?;
        if !matches!(record, Ipld::Map(_)) {
            return Err(RepoError::BadRecord {
                path,
                reason: "record must be a map".into(),
            });
        }
        let (cid, bytes) = encode_block(&record).map_err(|e| RepoError::BadRecord {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        blocks.insert(cid, bytes);
        paths.insert(path, cid);
    }
    // Drop blocks of records that were replaced by a later duplicate path.
    blocks.retain(|cid, _| paths.values().any(|c| c == cid));
    let mst = build_mst(&paths).map_err(RepoError::InvalidMst)?;
    let commit = Commit::sign(did, mst.root, rev, key)?;
    let (commit_cid, _) = commit.to_block()?;
    Ok(BuiltRepo {
        commit,
        commit_cid,
        mst,
        records: blocks,
        paths,
    })
}

/// Build a whole repository CAR (see [`build_repo`]).
pub fn build_repo_car<I>(
    did: &str,
    key: &SigningKey,
    rev: &str,
    records: I,
) -> Result<Vec<u8>, RepoError>
where
    I: IntoIterator<Item = (String, String, Ipld)>,
{
    build_repo(did, key, rev, records)?.to_car()
}

/// One record of a loaded repository.
#[derive(Debug, Clone, PartialEq)]
pub struct RepoRecord {
    /// Collection NSID.
    pub collection: String,
    /// Record key.
    pub rkey: String,
    /// Record CID.
    pub cid: Cid,
    /// The record in AT Protocol JSON form.
    pub record: serde_json::Value,
}

/// A repository loaded from a CAR and verified.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedRepo {
    /// CID of the commit.
    pub commit_cid: Cid,
    /// The verified commit.
    pub commit: Commit,
    /// Every record in key order.
    pub records: Vec<RepoRecord>,
}

/// The commit of a repository CAR with all of the CAR's blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoCommit {
    /// CID of the commit (the CAR root).
    pub cid: Cid,
    /// The decoded commit (signature not yet checked).
    pub commit: Commit,
    /// Every block of the CAR.
    pub blocks: BlockMap,
}

/// Parse the commit at the single root of a repository CAR, without checks
/// beyond decoding (version 2 or 3).
pub fn read_repo_commit(car: &[u8]) -> Result<RepoCommit, RepoError> {
    let car = read_car(car)?;
    let root = match car.roots.as_slice() {
        [root] => *root,
        roots => {
            return Err(RepoError::InvalidCommit(format!(
                "repo CAR must have exactly one root, has {}",
                roots.len()
            )))
        }
    };
    let blocks = car.into_block_map();
    let bytes = blocks.get(&root).ok_or(RepoError::MissingBlock {
        what: "commit",
        cid: root,
    })?;
    let commit: Commit =
        from_dag_cbor(bytes).map_err(|e| RepoError::InvalidCommit(e.to_string()))?;
    if commit.version != 2 && commit.version != REPO_VERSION {
        return Err(RepoError::InvalidCommit(format!(
            "unsupported repo version {}",
            commit.version
        )));
    }
    Ok(RepoCommit {
        cid: root,
        commit,
        blocks,
    })
}

/// Load a repository CAR: check the commit's DID equals `expected_did`,
/// verify its signature with `did_key` (`did:key:z...`), walk the MST and
/// decode every record to JSON.
pub fn load_repo_car(
    car: &[u8],
    expected_did: &str,
    did_key: &str,
) -> Result<LoadedRepo, RepoError> {
    let RepoCommit {
        cid: commit_cid,
        commit,
        blocks,
    } = read_repo_commit(car)?;
    if commit.did != expected_did {
        return Err(RepoError::DidMismatch {
            expected: expected_did.to_string(),
            found: commit.did.clone(),
        });
    }
    let key = PublicKey::from_did_key(did_key).map_err(RepoError::BadKey)?;
    commit.verify(&key)?;
    let leaves = walk_mst(&commit.data, &blocks).map_err(|e| match e {
        MstError::MissingBlock(cid) => RepoError::MissingBlock {
            what: "MST node",
            cid,
        },
        other => RepoError::InvalidMst(other),
    })?;
    let mut records = Vec::with_capacity(leaves.len());
    for (path, cid) in leaves {
        let (collection, rkey) = split_repo_path(&path).map_err(|e| RepoError::BadRecord {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let bytes = blocks.get(&cid).ok_or(RepoError::MissingBlock {
            what: "record",
            cid,
        })?;
        let record = record_cbor_to_json(bytes).map_err(|e| RepoError::BadRecord {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        records.push(RepoRecord {
            collection: collection.to_string(),
            rkey: rkey.to_string(),
            cid,
            record,
        });
    }
    Ok(LoadedRepo {
        commit_cid,
        commit,
        records,
    })
}
