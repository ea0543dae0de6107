//! The JSON payloads of the Redis streams.
//!
//! `firehose_live` and `firehose_backfill` entries hold a [`StreamEvent`] under the field `event`,
//! tagged by `"type"`. Records are AT Protocol JSON: CID links as `{"$link": "<cid>"}` and bytes as
//! `{"$bytes": "<base64>"}`.

use serde::{Deserialize, Serialize};

/// One event of a `firehose_*` stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum StreamEvent {
    /// A record was created.
    Create(RecordEvent),
    /// A record was replaced.
    Update(RecordEvent),
    /// A record was deleted.
    Delete(DeleteEvent),
    /// A repository's commit as a whole (the backfiller writes one after a repo's records).
    Repo(RepoEvent),
    /// An account's hosting status changed.
    Account(AccountEvent),
    /// A DID's handle or identity changed.
    Identity(IdentityEvent),
}

/// A created or updated record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecordEvent {
    /// Firehose sequence number; -1 for backfilled events.
    pub seq: i64,
    /// Ingest time, RFC 3339.
    pub time: String,
    /// The repository's DID.
    pub did: String,
    /// CID of the commit that carried the operation.
    pub commit: String,
    /// Revision (TID) of that commit.
    pub rev: String,
    /// The record's collection (NSID).
    pub collection: String,
    /// The record key.
    pub rkey: String,
    /// CID of the record.
    pub cid: String,
    /// The record as AT Protocol JSON.
    pub record: serde_json::Value,
}

/// A deleted record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeleteEvent {
    /// Firehose sequence number.
    pub seq: i64,
    /// Ingest time, RFC 3339.
    pub time: String,
    /// The repository's DID.
    pub did: String,
    /// CID of the commit that carried the operation.
    pub commit: String,
    /// Revision (TID) of that commit.
    pub rev: String,
    /// The record's collection (NSID).
    pub collection: String,
    /// The record key.
    pub rkey: String,
}

/// A repository commit as a whole.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepoEvent {
    /// Firehose sequence number; -1 for backfilled events.
    pub seq: i64,
    /// Ingest time, RFC 3339.
    pub time: String,
    /// The repository's DID.
    pub did: String,
    /// CID of the commit.
    pub commit: String,
    /// Revision (TID) of the commit.
    pub rev: String,
}

/// An account status change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccountEvent {
    /// Firehose sequence number.
    pub seq: i64,
    /// Ingest time, RFC 3339.
    pub time: String,
    /// The account's DID.
    pub did: String,
    /// Whether the account is active.
    pub active: bool,
    /// Why it is not active (`takendown`, `suspended`, `deleted`, `deactivated`, ...).
    #[serde(default)]
    pub status: Option<String>,
}

/// An identity change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IdentityEvent {
    /// Firehose sequence number.
    pub seq: i64,
    /// Ingest time, RFC 3339.
    pub time: String,
    /// The DID.
    pub did: String,
    /// The current handle, if any.
    #[serde(default)]
    pub handle: Option<String>,
}

/// A repository to backfill: the payload of `repo_backfill` entries (field `repo`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackfillEvent {
    /// The repository's DID.
    pub did: String,
    /// The host that listed it.
    pub host: String,
    /// Its latest revision, as listed.
    #[serde(default)]
    pub rev: Option<String>,
    /// Its hosting status, as listed.
    #[serde(default)]
    pub status: Option<String>,
    /// Whether it is active, as listed.
    #[serde(default = "default_true")]
    pub active: bool,
}

fn default_true() -> bool {
    true
}

/// A batch of labels: the payload of `label_live` entries (field `labels`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LabelsEvent {
    /// The labeler's sequence number.
    pub seq: i64,
    /// The labels.
    pub labels: Vec<Label>,
}

/// One label (`com.atproto.label.defs#label`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Label {
    /// DID of the labeler.
    pub src: String,
    /// AT-URI or DID of the labeled subject.
    pub uri: String,
    /// CID of the labeled record version, when the label is for one version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
    /// The label value.
    pub val: String,
    /// Whether this label negates an earlier one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neg: Option<bool>,
    /// Creation time, RFC 3339.
    pub cts: String,
}

impl StreamEvent {
    /// The DID the event is about.
    pub fn did(&self) -> &str {
        match self {
            StreamEvent::Create(e) | StreamEvent::Update(e) => &e.did,
            StreamEvent::Delete(e) => &e.did,
            StreamEvent::Repo(e) => &e.did,
            StreamEvent::Account(e) => &e.did,
            StreamEvent::Identity(e) => &e.did,
        }
    }

    /// The firehose sequence number (-1 for backfilled events).
    pub fn seq(&self) -> i64 {
        match self {
            StreamEvent::Create(e) | StreamEvent::Update(e) => e.seq,
            StreamEvent::Delete(e) => e.seq,
            StreamEvent::Repo(e) => e.seq,
            StreamEvent::Account(e) => e.seq,
            StreamEvent::Identity(e) => e.seq,
        }
    }

    /// The `type` tag: `create`, `update`, `delete`, `repo`, `account` or `identity`.
    pub fn kind(&self) -> &'static str {
        match self {
            StreamEvent::Create(_) => "create",
            StreamEvent::Update(_) => "update",
            StreamEvent::Delete(_) => "delete",
            StreamEvent::Repo(_) => "repo",
            StreamEvent::Account(_) => "account",
            StreamEvent::Identity(_) => "identity",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn create_event_is_tagged_by_type_with_the_original_field_names() {
        let event = StreamEvent::Create(RecordEvent {
            seq: 42,
            time: "2024-01-01T00:00:00.000Z".into(),
            did: "did:plc:abc".into(),
            commit: "bafycommit".into(),
            rev: "3kabc".into(),
            collection: "app.bsky.feed.post".into(),
            rkey: "3kxyz".into(),
            cid: "bafyrecord".into(),
            record: json!({"$type": "app.bsky.feed.post", "text": "hi"}),
        });
        let value = serde_json::to_value(&event).unwrap();
        assert_eq!(
            value,
            json!({"type": "create", "seq": 42, "time": "2024-01-01T00:00:00.000Z", "did": "did:plc:abc",
                   "commit": "bafycommit", "rev": "3kabc", "collection": "app.bsky.feed.post",
                   "rkey": "3kxyz", "cid": "bafyrecord", "record": {"$type": "app.bsky.feed.post", "text": "hi"}})
        );
        assert_eq!(serde_json::from_value::<StreamEvent>(value).unwrap(), event);
    }

    #[test]
    fn account_and_identity_events_read_missing_optionals_as_none() {
        let account: StreamEvent = serde_json::from_str(
            r#"{"type":"account","seq":1,"time":"t","did":"did:plc:a","active":true}"#,
        )
        .unwrap();
        assert!(matches!(
            account,
            StreamEvent::Account(AccountEvent {
                status: None,
                active: true,
                ..
            })
        ));
        let identity: StreamEvent =
            serde_json::from_str(r#"{"type":"identity","seq":2,"time":"t","did":"did:plc:a"}"#)
                .unwrap();
        assert!(matches!(
            identity,
            StreamEvent::Identity(IdentityEvent { handle: None, .. })
        ));
    }

    #[test]
    fn unknown_type_is_an_error_that_names_it() {
        let err = serde_json::from_str::<StreamEvent>(r#"{"type":"rebase","seq":1}"#).unwrap_err();
        assert!(err.to_string().contains("rebase"), "{err}");
    }

    #[test]
    fn label_omits_absent_cid_and_neg() {
        let label = Label {
            src: "did:plc:labeler".into(),
            uri: "at://did:plc:a/app.bsky.feed.post/1".into(),
            cid: None,
            val: "spam".into(),
            neg: None,
            cts: "2024-01-01T00:00:00Z".into(),
        };
        assert_eq!(
            serde_json::to_value(&label).unwrap(),
            json!({"src": "did:plc:labeler", "uri": "at://did:plc:a/app.bsky.feed.post/1", "val": "spam", "cts": "2024-01-01T00:00:00Z"})
        );
    }
}
