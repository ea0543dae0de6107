//! Building `subscribeRepos` frames from real encoders: each simulated account keeps a real
//! repository (records, MST, signed commit), and each commit frame carries the CARv1 diff of
//! that repository, as a PDS would send it.

use std::collections::{BTreeMap, HashMap};

use rsky_atproto::car::write_car;
use rsky_atproto::cbor::{encode_block, json_to_ipld, Cid};
use rsky_atproto::crypto::{Curve, SigningKey};
use rsky_atproto::firehose::{
    encode_repo_frame, AccountEvent, CommitEvent, ErrorFrame, IdentityEvent, InfoEvent, OpAction,
    RepoFrame, RepoOp, SyncEvent,
};
use rsky_atproto::repo::{build_repo, BuiltRepo, Commit};
use rsky_atproto::syntax::tid_from_parts;
use rsky_atproto::Ipld;

use crate::log::Item;

/// Why a frame could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// A record is not valid AT Protocol JSON.
    #[error("record {path} is not valid AT Protocol JSON: {reason}")]
    Record {
        /// `collection/rkey`.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// The repository could not be built (bad DID, bad path...).
    #[error("cannot build the repository of {did}: {reason}")]
    Repo {
        /// The account.
        did: String,
        /// What was wrong.
        reason: String,
    },
    /// An update or delete names a record the repository does not hold.
    #[error("{action} of {path} in {did}: the repository has no such record")]
    NoSuchRecord {
        /// `update` or `delete`.
        action: &'static str,
        /// The account.
        did: String,
        /// `collection/rkey`.
        path: String,
    },
    /// Encoding the frame failed.
    #[error("cannot encode the frame: {0}")]
    Encode(String),
}

/// One record operation of a scripted commit.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Create `collection/rkey` holding `record` (AT Protocol JSON).
    Create {
        /// The collection NSID.
        collection: String,
        /// The record key.
        rkey: String,
        /// The record.
        record: serde_json::Value,
    },
    /// Replace `collection/rkey` with `record`.
    Update {
        /// The collection NSID.
        collection: String,
        /// The record key.
        rkey: String,
        /// The new record.
        record: serde_json::Value,
    },
    /// Delete `collection/rkey`.
    Delete {
        /// The collection NSID.
        collection: String,
        /// The record key.
        rkey: String,
    },
}

impl Op {
    /// A create.
    pub fn create(collection: &str, rkey: &str, record: serde_json::Value) -> Op {
        Op::Create {
            collection: collection.into(),
            rkey: rkey.into(),
            record,
        }
    }

    /// An update.
    pub fn update(collection: &str, rkey: &str, record: serde_json::Value) -> Op {
        Op::Update {
            collection: collection.into(),
            rkey: rkey.into(),
            record,
        }
    }

    /// A delete.
    pub fn delete(collection: &str, rkey: &str) -> Op {
        Op::Delete {
            collection: collection.into(),
            rkey: rkey.into(),
        }
    }

    fn path(&self) -> String {
        match self {
            Op::Create {
                collection, rkey, ..
            }
            | Op::Update {
                collection, rkey, ..
            }
            | Op::Delete { collection, rkey } => format!("{collection}/{rkey}"),
        }
    }
}

/// An op whose path is sent as given, unchecked: for invalid NSIDs, record keys or AT-URIs in
/// a commit. The record (if any) is put into the commit's blocks.
#[derive(Clone, Debug, PartialEq)]
pub struct RawOp {
    /// create, update or delete.
    pub action: OpAction,
    /// The path, sent as is.
    pub path: String,
    /// The record for creates and updates.
    pub record: Option<serde_json::Value>,
}

struct Account {
    key: SigningKey,
    records: BTreeMap<String, Ipld>,
    last: Option<BuiltRepo>,
}

/// A scripted firehose: frames in order, each sequenced event with the next `seq`.
///
/// ```
/// use rsky_testkit::firehose::{FirehoseScript, Op};
/// use serde_json::json;
///
/// let mut script = FirehoseScript::new(1);
/// let seq = script
///     .commit("did:plc:alice", &[Op::create("app.bsky.feed.post", "3kpost1", json!({"$type": "app.bsky.feed.post", "text": "hi", "createdAt": "2024-01-01T00:00:00Z"}))])
///     .unwrap();
/// assert_eq!(seq, 1);
/// script.identity("did:plc:alice", Some("alice.test")).unwrap();
/// assert_eq!(script.items().len(), 2);
/// ```
pub struct FirehoseScript {
    next_seq: i64,
    clock: u64,
    accounts: HashMap<String, Account>,
    items: Vec<Item>,
    time: String,
}

/// The TIDs of scripted commits start here (2023-11-14), one microsecond apart.
const FIRST_TID_MICROS: u64 = 1_700_000_000_000_000;

impl FirehoseScript {
    /// An empty script whose first sequenced event gets `first_seq`.
    pub fn new(first_seq: i64) -> Self {
        FirehoseScript {
            next_seq: first_seq,
            clock: FIRST_TID_MICROS,
            accounts: HashMap::new(),
            items: Vec::new(),
            time: rsky_common::time::now_rfc3339(),
        }
    }

    /// The `seq` the next sequenced event will get.
    pub fn next_seq(&self) -> i64 {
        self.next_seq
    }

    /// The frames so far.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// Takes the frames so far, leaving the script's state (accounts, seq) in place.
    pub fn take_items(&mut self) -> Vec<Item> {
        std::mem::take(&mut self.items)
    }

    fn take_seq(&mut self) -> i64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    fn next_rev(&mut self) -> String {
        self.clock += 1;
        tid_from_parts(self.clock, 0)
    }

    fn account(&mut self, did: &str) -> Result<&mut Account, ScriptError> {
        if !self.accounts.contains_key(did) {
            let key = SigningKey::generate(Curve::Secp256k1).map_err(|e| ScriptError::Repo {
                did: did.into(),
                reason: e.to_string(),
            })?;
            self.accounts.insert(
                did.to_owned(),
                Account {
                    key,
                    records: BTreeMap::new(),
                    last: None,
                },
            );
        }
        Ok(self.accounts.get_mut(did).expect("inserted above"))
    }

    fn push(&mut self, seq: Option<i64>, frame: &RepoFrame) -> Result<(), ScriptError> {
        let bytes = encode_repo_frame(frame).map_err(|e| ScriptError::Encode(e.to_string()))?;
        self.items.push(match seq {
            Some(seq) => Item::event(seq, bytes),
            None => Item::unsequenced(bytes),
        });
        Ok(())
    }

    /// A `#commit` of `did` applying `ops` to its repository; returns the event's `seq`.
    pub fn commit(&mut self, did: &str, ops: &[Op]) -> Result<i64, ScriptError> {
        let rev = self.next_rev();
        let time = self.time.clone();
        let account = self.account(did)?;
        let mut repo_ops = Vec::with_capacity(ops.len());
        for op in ops {
            let path = op.path();
            let to_ipld = |record: &serde_json::Value| {
                json_to_ipld(record).map_err(|e| ScriptError::Record {
                    path: path.clone(),
                    reason: e.to_string(),
                })
            };
            let previous = account.records.get(&path).cloned();
            let (action, record) = match op {
                Op::Create { record, .. } => (OpAction::Create, Some(to_ipld(record)?)),
                Op::Update { record, .. } => (OpAction::Update, Some(to_ipld(record)?)),
                Op::Delete { .. } => (OpAction::Delete, None),
            };
            if action != OpAction::Create && previous.is_none() {
                return Err(ScriptError::NoSuchRecord {
                    action: action.as_str(),
                    did: did.into(),
                    path,
                });
            }
            let prev = match &previous {
                Some(ipld) => Some(block_cid(ipld, &path)?),
                None => None,
            };
            let cid = match &record {
                Some(ipld) => {
                    let cid = block_cid(ipld, &path)?;
                    account.records.insert(path.clone(), ipld.clone());
                    Some(cid)
                }
                None => {
                    account.records.remove(&path);
                    None
                }
            };
            repo_ops.push(RepoOp {
                action,
                path,
                cid,
                prev,
            });
        }
        let records = account.records.iter().map(|(path, record)| {
            let (collection, rkey) = path.split_once('/').unwrap_or((path, ""));
            (collection.to_owned(), rkey.to_owned(), record.clone())
        });
        let built =
            build_repo(did, &account.key, &rev, records).map_err(|e| ScriptError::Repo {
                did: did.into(),
                reason: e.to_string(),
            })?;
        let blocks = built
            .diff_car(account.last.as_ref())
            .map_err(|e| ScriptError::Encode(e.to_string()))?;
        let since = account.last.as_ref().map(|b| b.commit.rev.clone());
        let prev_data = account.last.as_ref().map(|b| b.commit.data);
        let commit = built.commit_cid;
        account.last = Some(built);
        let seq = self.take_seq();
        self.push(
            Some(seq),
            &RepoFrame::Commit(Box::new(CommitEvent {
                seq,
                rebase: false,
                too_big: false,
                repo: did.into(),
                commit,
                rev,
                since,
                blocks,
                ops: repo_ops,
                blobs: vec![],
                time,
                prev_data,
            })),
        )?;
        Ok(seq)
    }

    /// A `#commit` whose ops are sent exactly as given (paths unchecked) and whose `repo` may be
    /// any string (an invalid DID too). The blocks hold a signed commit and the ops' records.
    pub fn raw_commit(&mut self, repo: &str, ops: &[RawOp]) -> Result<i64, ScriptError> {
        let rev = self.next_rev();
        let key = SigningKey::generate(Curve::Secp256k1).map_err(|e| ScriptError::Repo {
            did: repo.into(),
            reason: e.to_string(),
        })?;
        let mut blocks: Vec<(Cid, Vec<u8>)> = Vec::new();
        let mut repo_ops = Vec::new();
        for op in ops {
            let cid = match &op.record {
                Some(record) => {
                    let ipld = json_to_ipld(record).map_err(|e| ScriptError::Record {
                        path: op.path.clone(),
                        reason: e.to_string(),
                    })?;
                    let (cid, bytes) =
                        encode_block(&ipld).map_err(|e| ScriptError::Encode(e.to_string()))?;
                    blocks.push((cid, bytes));
                    Some(cid)
                }
                None => None,
            };
            repo_ops.push(RepoOp {
                action: op.action,
                path: op.path.clone(),
                cid,
                prev: None,
            });
        }
        // The commit points at an empty tree: these ops cannot be in a valid MST, and consumers
        // of the firehose read records from the blocks by CID, not through the tree.
        let empty =
            rsky_atproto::mst::build_mst(&BTreeMap::new()).map_err(|e| ScriptError::Repo {
                did: repo.into(),
                reason: e.to_string(),
            })?;
        blocks.extend(empty.blocks.iter().map(|(c, b)| (*c, b.clone())));
        let commit = Commit::sign(repo, empty.root, &rev, &key).map_err(|e| ScriptError::Repo {
            did: repo.into(),
            reason: e.to_string(),
        })?;
        let (commit_cid, commit_bytes) = commit
            .to_block()
            .map_err(|e| ScriptError::Encode(e.to_string()))?;
        let mut car_blocks: Vec<(&Cid, &[u8])> = vec![(&commit_cid, &commit_bytes)];
        car_blocks.extend(blocks.iter().map(|(c, b)| (c, b.as_slice())));
        let car =
            write_car(&[commit_cid], car_blocks).map_err(|e| ScriptError::Encode(e.to_string()))?;
        let seq = self.take_seq();
        let time = self.time.clone();
        self.push(
            Some(seq),
            &RepoFrame::Commit(Box::new(CommitEvent {
                seq,
                rebase: false,
                too_big: false,
                repo: repo.into(),
                commit: commit_cid,
                rev,
                since: None,
                blocks: car,
                ops: repo_ops,
                blobs: vec![],
                time,
                prev_data: None,
            })),
        )?;
        Ok(seq)
    }

    /// An `#identity` event.
    pub fn identity(&mut self, did: &str, handle: Option<&str>) -> Result<i64, ScriptError> {
        let seq = self.take_seq();
        let time = self.time.clone();
        self.push(
            Some(seq),
            &RepoFrame::Identity(IdentityEvent {
                seq,
                did: did.into(),
                time,
                handle: handle.map(str::to_owned),
            }),
        )?;
        Ok(seq)
    }

    /// An `#account` event.
    pub fn account_status(
        &mut self,
        did: &str,
        active: bool,
        status: Option<&str>,
    ) -> Result<i64, ScriptError> {
        let seq = self.take_seq();
        let time = self.time.clone();
        self.push(
            Some(seq),
            &RepoFrame::Account(AccountEvent {
                seq,
                did: did.into(),
                time,
                active,
                status: status.map(str::to_owned),
            }),
        )?;
        Ok(seq)
    }

    /// A `#sync` event carrying the account's current commit (the ingester skips these).
    pub fn sync(&mut self, did: &str) -> Result<i64, ScriptError> {
        let time = self.time.clone();
        let account = self.account(did)?;
        let (rev, blocks) = match &account.last {
            Some(built) => {
                let (cid, bytes) = built
                    .commit
                    .to_block()
                    .map_err(|e| ScriptError::Encode(e.to_string()))?;
                (
                    built.commit.rev.clone(),
                    write_car(&[cid], [(&cid, bytes.as_slice())])
                        .map_err(|e| ScriptError::Encode(e.to_string()))?,
                )
            }
            None => {
                return Err(ScriptError::Repo {
                    did: did.into(),
                    reason: "a #sync needs a commit of the account first".into(),
                })
            }
        };
        let seq = self.take_seq();
        self.push(
            Some(seq),
            &RepoFrame::Sync(SyncEvent {
                seq,
                did: did.into(),
                blocks,
                rev,
                time,
            }),
        )?;
        Ok(seq)
    }

    /// An `#info` frame (no seq).
    pub fn info(&mut self, name: &str, message: Option<&str>) -> Result<(), ScriptError> {
        self.push(
            None,
            &RepoFrame::Info(InfoEvent {
                name: name.into(),
                message: message.map(str::to_owned),
            }),
        )
    }

    /// An error frame (`op: -1`, no seq).
    pub fn error_frame(&mut self, error: &str, message: Option<&str>) -> Result<(), ScriptError> {
        self.push(
            None,
            &RepoFrame::Error(ErrorFrame {
                error: error.into(),
                message: message.map(str::to_owned),
            }),
        )
    }

    /// A frame of arbitrary bytes (no seq): for malformed input.
    pub fn raw_frame(&mut self, bytes: Vec<u8>) {
        self.items.push(Item::unsequenced(bytes));
    }

    /// A message frame of an unknown type `t` with a body that is valid DAG-CBOR.
    pub fn unknown_type(&mut self, t: &str) -> Result<(), ScriptError> {
        let header = rsky_atproto::firehose::FrameHeader {
            op: 1,
            t: Some(t.into()),
        };
        let body: BTreeMap<&str, i64> = BTreeMap::from([("seq", 0)]);
        let bytes = rsky_atproto::firehose::encode_frame(&header, &body)
            .map_err(|e| ScriptError::Encode(e.to_string()))?;
        self.items.push(Item::unsequenced(bytes));
        Ok(())
    }
}

fn block_cid(record: &Ipld, path: &str) -> Result<Cid, ScriptError> {
    encode_block(record)
        .map(|(cid, _)| cid)
        .map_err(|e| ScriptError::Record {
            path: path.into(),
            reason: e.to_string(),
        })
}

/// Malformed frames, one per way a frame can be broken: each must be counted as an error and
/// skipped by a consumer, never end the stream.
pub fn malformed_frames() -> Vec<(&'static str, Vec<u8>)> {
    let header = |t: &str| {
        rsky_atproto::cbor::to_dag_cbor(&rsky_atproto::firehose::FrameHeader {
            op: 1,
            t: Some(t.into()),
        })
        .unwrap_or_default()
    };
    let mut truncated_body = header("#commit");
    truncated_body.extend([0xa5, 0x63, b's', b'e']);
    let mut wrong_body = header("#identity");
    wrong_body.extend(rsky_atproto::cbor::to_dag_cbor(&vec![1, 2, 3]).unwrap_or_default());
    let missing_body = header("#account");
    let mut bad_op =
        rsky_atproto::cbor::to_dag_cbor(&BTreeMap::from([("op", 7)])).unwrap_or_default();
    bad_op
        .extend(rsky_atproto::cbor::to_dag_cbor(&BTreeMap::from([("seq", 1)])).unwrap_or_default());
    vec![
        ("empty frame", Vec::new()),
        ("not CBOR", b"this is not cbor".to_vec()),
        ("truncated body", truncated_body),
        ("body of the wrong shape", wrong_body),
        ("header without a body", missing_body),
        ("unknown op", bad_op),
    ]
}
