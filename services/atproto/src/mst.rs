//! Merkle Search Tree (MST), the key/value index of an atproto repository.
//!
//! Keys are repo paths (`collection/rkey`), values are record CIDs. A key's
//! height is the number of leading zero bits of `sha256(key)` divided by two
//! (fanout 4). A node is `{l: link|null, e: [{p, k, v, t}]}` where each entry
//! stores the length `p` of the prefix shared with the previous key of the
//! node, the remaining key bytes `k`, the value `v` and the subtree `t` of
//! keys between this entry and the next. The tree shape depends only on the
//! key set, so the root CID is a deterministic digest of the repository.

use std::collections::BTreeMap;

use crate::car::BlockMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cbor::{encode_block, from_dag_cbor, Cid};

/// Deepest node nesting accepted when walking (heights are at most 128).
const MAX_DEPTH: usize = 140;

/// Errors from building or walking an MST.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MstError {
    /// MST keys must be non-empty.
    #[error("MST key must not be empty")]
    EmptyKey,
    /// A node block referenced by the tree is not in the block map.
    #[error("MST node block {0} is missing")]
    MissingBlock(Cid),
    /// A node block does not decode as an MST node or is inconsistent.
    #[error("invalid MST node {cid}: {reason}")]
    BadNode {
        /// CID of the node.
        cid: Cid,
        /// What was wrong.
        reason: String,
    },
    /// Keys met during the walk are not strictly increasing.
    #[error("MST keys out of order: {prev:?} then {next:?}")]
    KeysOutOfOrder {
        /// Earlier key.
        prev: String,
        /// Later key that is not greater.
        next: String,
    },
    /// The tree nests deeper than any valid MST.
    #[error("MST nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// A node could not be encoded.
    #[error("MST node encode failed: {0}")]
    Encode(String),
}

/// One entry of an MST node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeEntry {
    /// Length of the prefix shared with the previous key in the node.
    pub p: usize,
    /// Key bytes after the shared prefix.
    #[serde(with = "serde_bytes")]
    pub k: Vec<u8>,
    /// Value (record CID).
    pub v: Cid,
    /// Subtree with keys between this entry and the next.
    pub t: Option<Cid>,
}

/// An MST node as stored in a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeData {
    /// Subtree with keys before the first entry.
    pub l: Option<Cid>,
    /// Entries in key order.
    pub e: Vec<TreeEntry>,
}

/// Height of a key: leading zero bits of sha256(key), counted in 2-bit chunks.
pub fn key_height(key: &[u8]) -> u32 {
    let digest = Sha256::digest(key);
    let mut zeros = 0;
    for byte in digest.iter() {
        if *byte == 0 {
            zeros += 8;
        } else {
            zeros += byte.leading_zeros();
            break;
        }
    }
    zeros / 2
}

/// Length of the common prefix of two byte strings.
pub fn common_prefix_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// A built MST: its root CID and every node block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mst {
    /// CID of the root node.
    pub root: Cid,
    /// All node blocks (`CID -> DAG-CBOR bytes`).
    pub blocks: BlockMap,
}

struct Leaf<'a> {
    key: &'a [u8],
    value: Cid,
    height: u32,
}

/// Build the MST for a set of `(key, value CID)` pairs and return the root
/// CID with all node blocks. Keys must be non-empty.
pub fn build_mst(entries: &BTreeMap<String, Cid>) -> Result<Mst, MstError> {
    let leaves: Vec<Leaf<'_>> = entries
        .iter()
        .map(|(k, v)| {
            if k.is_empty() {
                return Err(MstError::EmptyKey);
            }
            Ok(Leaf {
                key: k.as_bytes(),
                value: *v,
                height: key_height(k.as_bytes()),
            })
        })
        .collect::<Result<_, _>>()?;
    let top = leaves.iter().map(|l| l.height).max().unwrap_or(0);
    let mut blocks = BTreeMap::new();
    let root = build_node(&leaves, top, &mut blocks)?;
    Ok(Mst { root, blocks })
}

/// Build one node at `layer` from leaves whose heights are all `<= layer`.
fn build_node(leaves: &[Leaf<'_>], layer: u32, blocks: &mut BlockMap) -> Result<Cid, MstError> {
    let mut node = NodeData {
        l: None,
        e: Vec::new(),
    };
    let mut run_start = 0;
    let mut prev_key: &[u8] = b"";
    for (i, leaf) in leaves.iter().enumerate() {
        if leaf.height != layer {
            continue;
        }
        let subtree = build_subtree(&leaves[run_start..i], layer, blocks)?;
        match node.e.last_mut() {
            None => node.l = subtree,
            Some(last) => last.t = subtree,
        }
        let p = common_prefix_len(prev_key, leaf.key);
        node.e.push(TreeEntry {
            p,
            k: leaf.key[p..].to_vec(),
            v: leaf.value,
            t: None,
        });
        prev_key = leaf.key;
        run_start = i + 1;
    }
    let subtree = build_subtree(&leaves[run_start..], layer, blocks)?;
    match node.e.last_mut() {
        None => node.l = subtree,
        Some(last) => last.t = subtree,
    }
    let (cid, bytes) = encode_block(&node).map_err(|e| MstError::Encode(e.to_string()))?;
    blocks.insert(cid, bytes);
    Ok(cid)
}

fn build_subtree(
    run: &[Leaf<'_>],
    layer: u32,
    blocks: &mut BlockMap,
) -> Result<Option<Cid>, MstError> {
    if run.is_empty() || layer == 0 {
        return Ok(None);
    }
    build_node(run, layer - 1, blocks).map(Some)
}

/// Walk the MST rooted at `root` in key order, returning every `(key, value)`.
///
/// Errors on missing or malformed node blocks, invalid prefix compression,
/// non-UTF-8 keys and keys that are not strictly increasing.
pub fn walk_mst(root: &Cid, blocks: &BlockMap) -> Result<Vec<(String, Cid)>, MstError> {
    let mut out = Vec::new();
    walk_node(root, blocks, 0, &mut out)?;
    Ok(out)
}

/// Every node CID reachable from `root` (fails like [`walk_mst`]).
pub fn mst_node_cids(root: &Cid, blocks: &BlockMap) -> Result<Vec<Cid>, MstError> {
    fn visit(
        cid: &Cid,
        blocks: &BlockMap,
        depth: usize,
        out: &mut Vec<Cid>,
    ) -> Result<(), MstError> {
        if depth > MAX_DEPTH {
            return Err(MstError::TooDeep);
        }
        let node = load_node(cid, blocks)?;
        out.push(*cid);
        for sub in node
            .l
            .iter()
            .chain(node.e.iter().filter_map(|e| e.t.as_ref()))
        {
            visit(sub, blocks, depth + 1, out)?;
        }
        Ok(())
    }
    let mut out = Vec::new();
    visit(root, blocks, 0, &mut out)?;
    Ok(out)
}

fn load_node(cid: &Cid, blocks: &BlockMap) -> Result<NodeData, MstError> {
    let bytes = blocks.get(cid).ok_or(MstError::MissingBlock(*cid))?;
    from_dag_cbor(bytes).map_err(|e| MstError::BadNode {
        cid: *cid,
        reason: e.to_string(),
    })
}

fn push_leaf(out: &mut Vec<(String, Cid)>, key: String, value: Cid) -> Result<(), MstError> {
    if let Some((prev, _)) = out.last() {
        if *prev >= key {
            return Err(MstError::KeysOutOfOrder {
                prev: prev.clone(),
                next: key,
            });
        }
    }
    out.push((key, value));
    Ok(())
}

fn walk_node(
    cid: &Cid,
    blocks: &BlockMap,
    depth: usize,
    out: &mut Vec<(String, Cid)>,
) -> Result<(), MstError> {
    if depth > MAX_DEPTH {
        return Err(MstError::TooDeep);
    }
    let node = load_node(cid, blocks)?;
    if let Some(l) = &node.l {
        walk_node(l, blocks, depth + 1, out)?;
    }
    let mut prev_key: Vec<u8> = Vec::new();
    for entry in &node.e {
        if entry.p > prev_key.len() {
            return Err(MstError::BadNode {
                cid: *cid,
                reason: format!(
                    "prefix length {} exceeds previous key length {}",
                    entry.p,
                    prev_key.len()
                ),
            });
        }
        let mut key = prev_key[..entry.p].to_vec();
        key.extend_from_slice(&entry.k);
        if key.is_empty() {
            return Err(MstError::BadNode {
                cid: *cid,
                reason: "empty key".into(),
            });
        }
        let key_str = String::from_utf8(key.clone()).map_err(|_| MstError::BadNode {
            cid: *cid,
            reason: "key is not UTF-8".into(),
        })?;
        push_leaf(out, key_str, entry.v)?;
        if let Some(t) = &entry.t {
            walk_node(t, blocks, depth + 1, out)?;
        }
        prev_key = key;
    }
    Ok(())
}
