//! Firehose frames to stream events: decode, validate, filter, and count each outcome.
//!
//! Nothing here fails: a malformed frame, an error frame or an invalid operation is counted in
//! `ingester_errors_total`, logged, and skipped, and the next frame is decoded as usual.

use rsky_atproto::cbor::record_cbor_to_json;
use rsky_atproto::firehose::{decode_repo_frame, CommitEvent, FrameError, OpAction, RepoFrame};
use rsky_atproto::syntax::{is_forwarded_collection, split_repo_path, validate_did};
use rsky_common::event::{AccountEvent, DeleteEvent, IdentityEvent, RecordEvent, StreamEvent};
use rsky_metrics_runtime::counted;

use crate::metrics::IngesterMetrics;

/// What one frame became.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Decoded {
    /// The frame's seq, when it had one (the cursor advances past it even when it yields no
    /// event, e.g. a commit whose ops were all filtered, or a `#sync`).
    pub seq: Option<i64>,
    /// The events to write, in order.
    pub events: Vec<StreamEvent>,
    /// Whether the frame was a `FutureCursor` error: the relay's sequence is behind the cursor
    /// asked for (see the README's FutureCursor rule).
    pub future_cursor: bool,
}

/// The error a relay or labeler sends for a cursor ahead of its sequence.
pub const FUTURE_CURSOR: &str = "FutureCursor";

/// Decodes one `subscribeRepos` binary message; `time` is the ingest time written on events.
#[counted(metrics = metrics, events = firehose_events)]
pub fn decode_frame(frame: &[u8], time: &str, metrics: &IngesterMetrics) -> Decoded {
    match decode_repo_frame(frame) {
        Ok(RepoFrame::Commit(commit)) => Decoded {
            seq: Some(commit.seq),
            events: commit_events(&commit, time, metrics),
            future_cursor: false,
        },
        Ok(RepoFrame::Identity(identity)) => Decoded {
            seq: Some(identity.seq),
            events: valid_did(&identity.did, "#identity", metrics)
                .then(|| {
                    StreamEvent::Identity(IdentityEvent {
                        seq: identity.seq,
                        time: time.to_owned(),
                        did: identity.did,
                        handle: identity.handle,
                    })
                })
                .into_iter()
                .collect(),
            future_cursor: false,
        },
        Ok(RepoFrame::Account(account)) => Decoded {
            seq: Some(account.seq),
            events: valid_did(&account.did, "#account", metrics)
                .then(|| {
                    StreamEvent::Account(AccountEvent {
                        seq: account.seq,
                        time: time.to_owned(),
                        did: account.did,
                        active: account.active,
                        status: account.status,
                    })
                })
                .into_iter()
                .collect(),
            future_cursor: false,
        },
        Ok(RepoFrame::Sync(sync)) => {
            tracing::debug!(seq = sync.seq, did = %sync.did, "#sync skipped");
            Decoded {
                seq: Some(sync.seq),
                events: Vec::new(),
                future_cursor: false,
            }
        }
        Ok(RepoFrame::Info(info)) => {
            tracing::info!(name = %info.name, message = ?info.message, "#info from the relay");
            Decoded::default()
        }
        Ok(RepoFrame::Error(error)) => {
            metrics.errors[crate::metrics::ErrorKind::ErrorFrame].inc();
            tracing::warn!(error = %error.error, message = ?error.message, "error frame from the relay");
            Decoded {
                future_cursor: error.error == FUTURE_CURSOR,
                ..Decoded::default()
            }
        }
        Err(FrameError::UnknownType(t)) => {
            tracing::debug!(%t, "frame of an unknown type skipped");
            Decoded::default()
        }
        Err(err) => {
            metrics.errors[crate::metrics::ErrorKind::Decode].inc();
            tracing::warn!(error = %err, bytes = frame.len(), "malformed frame skipped");
            Decoded::default()
        }
    }
}

fn valid_did(did: &str, what: &str, metrics: &IngesterMetrics) -> bool {
    match validate_did(did) {
        Ok(()) => true,
        Err(err) => {
            metrics.errors[crate::metrics::ErrorKind::InvalidInput].inc();
            tracing::warn!(error = %err, "{what} with an invalid DID skipped");
            false
        }
    }
}

/// The create/update/delete events of a commit; invalid ops are counted and skipped one by one.
fn commit_events(commit: &CommitEvent, time: &str, metrics: &IngesterMetrics) -> Vec<StreamEvent> {
    if !valid_did(&commit.repo, "#commit", metrics) {
        return Vec::new();
    }
    // Only read the blocks when some op needs a record.
    let needs_blocks = commit.ops.iter().any(|op| op.action != OpAction::Delete);
    let blocks = if needs_blocks {
        match commit.block_map() {
            Ok(blocks) => blocks,
            Err(err) => {
                metrics.errors[crate::metrics::ErrorKind::Decode].inc();
                tracing::warn!(seq = commit.seq, did = %commit.repo, error = %err, "#commit with unreadable blocks skipped");
                return Vec::new();
            }
        }
    } else {
        Default::default()
    };
    let commit_cid = commit.commit.to_string();
    let mut events = Vec::with_capacity(commit.ops.len());
    for op in &commit.ops {
        let (collection, rkey) = match split_repo_path(&op.path) {
            Ok(parts) => parts,
            Err(err) => {
                metrics.errors[crate::metrics::ErrorKind::InvalidInput].inc();
                tracing::warn!(seq = commit.seq, did = %commit.repo, error = %err, "operation with an invalid path skipped");
                continue;
            }
        };
        if !is_forwarded_collection(collection) {
            metrics.firehose_filtered_operations.inc();
            continue;
        }
        let (action, cid) = match (op.action, op.cid) {
            (OpAction::Delete, _) => {
                metrics.firehose_delete_events.inc();
                events.push(StreamEvent::Delete(DeleteEvent {
                    seq: commit.seq,
                    time: time.to_owned(),
                    did: commit.repo.clone(),
                    commit: commit_cid.clone(),
                    rev: commit.rev.clone(),
                    collection: collection.to_owned(),
                    rkey: rkey.to_owned(),
                }));
                continue;
            }
            (action, Some(cid)) => (action, cid),
            (action, None) => {
                metrics.errors[crate::metrics::ErrorKind::InvalidInput].inc();
                tracing::warn!(seq = commit.seq, path = %op.path, "{} without a record CID skipped", action.as_str());
                continue;
            }
        };
        let record = match blocks.get(&cid).map(|block| record_cbor_to_json(block)) {
            Some(Ok(record)) => record,
            Some(Err(err)) => {
                metrics.errors[crate::metrics::ErrorKind::Decode].inc();
                tracing::warn!(seq = commit.seq, path = %op.path, error = %err, "invalid record skipped");
                continue;
            }
            None => {
                metrics.errors[crate::metrics::ErrorKind::InvalidInput].inc();
                tracing::warn!(seq = commit.seq, path = %op.path, %cid, "record missing from the commit blocks; skipped");
                continue;
            }
        };
        let event = RecordEvent {
            seq: commit.seq,
            time: time.to_owned(),
            did: commit.repo.clone(),
            commit: commit_cid.clone(),
            rev: commit.rev.clone(),
            collection: collection.to_owned(),
            rkey: rkey.to_owned(),
            cid: cid.to_string(),
            record,
        };
        events.push(if action == OpAction::Create {
            metrics.firehose_create_events.inc();
            StreamEvent::Create(event)
        } else {
            metrics.firehose_update_events.inc();
            StreamEvent::Update(event)
        });
    }
    events
}
