//! From stream entries to validated events: JSON decoding, identifier syntax (DIDs, NSIDs,
//! record keys, TIDs, AT-URIs, CIDs) and the fields of the six indexed collections.
//!
//! Everything rejected here is an expected error: the input is wrong and retrying cannot help,
//! so the entry is counted and acknowledged.
//!
//! Bytes in records: the indexer stores the record JSON as it came, so both the AT Protocol
//! form (`{"$bytes": "<base64>"}`) and the original services' number arrays are accepted.

use rsky_atproto::syntax::{
    validate_at_uri, validate_cid_syntax, validate_did, validate_handle, validate_nsid,
    validate_record_key, validate_tid, SyntaxError,
};
use rsky_common::consumer::StreamEntry;
use rsky_common::event::{Label, LabelsEvent, StreamEvent};
use rsky_common::streams::{EVENT_FIELD, LABELS_FIELD};
use serde_json::Value;

/// Why an entry, event or label was rejected.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The entry lacks the field that holds its payload.
    #[error("entry {id} has no {field:?} field")]
    MissingField {
        /// The entry ID.
        id: String,
        /// The expected field.
        field: &'static str,
    },
    /// The payload is not the expected JSON.
    #[error("entry {id}: {reason}")]
    Json {
        /// The entry ID.
        id: String,
        /// serde_json's message.
        reason: String,
    },
    /// An identifier is malformed.
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
    /// A value legal in atproto that a btree index of the schema cannot hold (PostgreSQL
    /// refuses an index row over about 2,700 bytes, 54000): known before the write, so the
    /// entry is dead-lettered at once instead of failing a batch.
    #[error("unwritable record {uri}: {field} is {len} bytes, more than the {max} an indexed column holds")]
    Unindexable {
        /// The record's AT-URI.
        uri: String,
        /// The field.
        field: String,
        /// Its length in bytes.
        len: usize,
        /// [`INDEXED_MAX_BYTES`].
        max: usize,
    },
    /// A record lacks a field its collection requires, or has one of the wrong type.
    #[error("invalid record {uri}: {reason}")]
    InvalidRecord {
        /// The record's AT-URI.
        uri: String,
        /// What is wrong.
        reason: String,
    },
}

/// The longest value written to an indexed column (`like.subject`, `follow."subjectDid"`, ...):
/// PostgreSQL's btree refuses index rows over about 2,700 bytes (a third of a page); 2 KiB
/// leaves room for the row header. Checked before the write ([`DecodeError::Unindexable`]).
pub const INDEXED_MAX_BYTES: usize = 2048;

impl DecodeError {
    /// Whether the entry can never be written as it is (dead-letter it at once).
    pub fn is_unwritable(&self) -> bool {
        matches!(self, DecodeError::Unindexable { .. })
    }
}

/// Decodes and validates the `event` field of a firehose entry.
pub fn decode_event(entry: &StreamEntry) -> Result<StreamEvent, DecodeError> {
    let json = entry
        .field(EVENT_FIELD)
        .ok_or_else(|| DecodeError::MissingField {
            id: entry.id.clone(),
            field: EVENT_FIELD,
        })?;
    let event: StreamEvent = serde_json::from_str(json).map_err(|e| DecodeError::Json {
        id: entry.id.clone(),
        reason: e.to_string(),
    })?;
    validate_event(&event)?;
    Ok(event)
}

/// Checks the identifiers of an event (and that a record is a JSON object of its collection).
pub fn validate_event(event: &StreamEvent) -> Result<(), DecodeError> {
    validate_did(event.did())?;
    match event {
        StreamEvent::Create(e) | StreamEvent::Update(e) => {
            validate_tid(&e.rev)?;
            validate_nsid(&e.collection)?;
            validate_record_key(&e.rkey)?;
            validate_cid_syntax(&e.cid)?;
            let uri = record_uri(&e.did, &e.collection, &e.rkey);
            let invalid = |reason: String| DecodeError::InvalidRecord {
                uri: uri.clone(),
                reason,
            };
            let object = e
                .record
                .as_object()
                .ok_or_else(|| invalid("the record is not a JSON object".to_owned()))?;
            match object.get("$type") {
                None => {}
                Some(Value::String(t)) if *t == e.collection => {}
                Some(other) => {
                    return Err(invalid(format!(
                        "$type {other} does not match the collection {}",
                        e.collection
                    )))
                }
            }
        }
        StreamEvent::Delete(e) => {
            validate_tid(&e.rev)?;
            validate_nsid(&e.collection)?;
            validate_record_key(&e.rkey)?;
        }
        StreamEvent::Repo(e) => validate_tid(&e.rev)?,
        StreamEvent::Account(_) => {}
        StreamEvent::Identity(e) => {
            if let Some(handle) = &e.handle {
                validate_handle(handle)?;
            }
        }
    }
    Ok(())
}

/// Decodes the `labels` field of a label entry (the labels themselves are checked one by one
/// with [`validate_label`]).
pub fn decode_labels(entry: &StreamEntry) -> Result<LabelsEvent, DecodeError> {
    let json = entry
        .field(LABELS_FIELD)
        .ok_or_else(|| DecodeError::MissingField {
            id: entry.id.clone(),
            field: LABELS_FIELD,
        })?;
    serde_json::from_str(json).map_err(|e| DecodeError::Json {
        id: entry.id.clone(),
        reason: e.to_string(),
    })
}

/// Checks a label: a DID as its source, an AT-URI or DID as its subject, a value of 1 to 128
/// characters, a CID if one is given.
pub fn validate_label(label: &Label) -> Result<(), DecodeError> {
    validate_did(&label.src)?;
    if label.uri.starts_with("did:") {
        validate_did(&label.uri)?;
    } else {
        validate_at_uri(&label.uri)?;
    }
    if let Some(cid) = &label.cid {
        validate_cid_syntax(cid)?;
    }
    if label.val.is_empty() || label.val.chars().count() > 128 {
        return Err(DecodeError::InvalidRecord {
            uri: label.uri.clone(),
            reason: format!("label value {:?} must be 1 to 128 characters", label.val),
        });
    }
    Ok(())
}

/// `at://{did}/{collection}/{rkey}`.
pub fn record_uri(did: &str, collection: &str, rkey: &str) -> String {
    format!("at://{did}/{collection}/{rkey}")
}

/// A strong reference: the AT-URI and CID of another record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StrongRef {
    /// The record's AT-URI.
    pub uri: String,
    /// The record's CID.
    pub cid: String,
}

/// The fields the per-collection tables hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CollectionRecord {
    /// `app.bsky.feed.post`.
    Post {
        /// The text.
        text: String,
        /// The thread root, for a reply.
        reply_root: Option<StrongRef>,
        /// The post replied to.
        reply_parent: Option<StrongRef>,
        /// `createdAt`.
        created_at: String,
    },
    /// `app.bsky.feed.like`.
    Like {
        /// The liked record.
        subject: StrongRef,
        /// `createdAt`.
        created_at: String,
    },
    /// `app.bsky.feed.repost`.
    Repost {
        /// The reposted record.
        subject: StrongRef,
        /// `createdAt`.
        created_at: String,
    },
    /// `app.bsky.graph.follow`.
    Follow {
        /// The followed DID.
        subject_did: String,
        /// `createdAt`.
        created_at: String,
    },
    /// `app.bsky.graph.block`.
    Block {
        /// The blocked DID.
        subject_did: String,
        /// `createdAt`.
        created_at: String,
    },
    /// `app.bsky.actor.profile`.
    Profile {
        /// `displayName`.
        display_name: Option<String>,
        /// `description`.
        description: Option<String>,
        /// The avatar blob's CID.
        avatar_cid: Option<String>,
        /// The banner blob's CID.
        banner_cid: Option<String>,
    },
}

/// The six collections with their own table and counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Collection {
    /// `app.bsky.feed.post` -> `post`.
    Post,
    /// `app.bsky.feed.like` -> `like`.
    Like,
    /// `app.bsky.feed.repost` -> `repost`.
    Repost,
    /// `app.bsky.graph.follow` -> `follow`.
    Follow,
    /// `app.bsky.graph.block` -> `actor_block`.
    Block,
    /// `app.bsky.actor.profile` -> `profile`.
    Profile,
}

impl Collection {
    /// The collection of `nsid`, if it has its own table.
    pub fn of(nsid: &str) -> Option<Collection> {
        Some(match nsid {
            "app.bsky.feed.post" => Collection::Post,
            "app.bsky.feed.like" => Collection::Like,
            "app.bsky.feed.repost" => Collection::Repost,
            "app.bsky.graph.follow" => Collection::Follow,
            "app.bsky.graph.block" => Collection::Block,
            "app.bsky.actor.profile" => Collection::Profile,
            _ => return None,
        })
    }

    /// The table that holds it.
    pub fn table(self) -> &'static str {
        match self {
            Collection::Post => "post",
            Collection::Like => "like",
            Collection::Repost => "repost",
            Collection::Follow => "follow",
            Collection::Block => "actor_block",
            Collection::Profile => "profile",
        }
    }
}

/// What PostgreSQL's `text` cannot hold, in a derived text column: U+0000 (legal in an atproto
/// string, refused by PostgreSQL as 22021) becomes U+FFFD, the replacement character. The one
/// mapping of derived columns; the raw record (`record.json`) keeps every character, U+0000 as
/// the JSON escape `\u0000`, so nothing is lost and the original can be read back.
pub fn derived_text(value: &str) -> String {
    if value.contains('\u{0}') {
        value.replace('\u{0}', "\u{FFFD}")
    } else {
        value.to_owned()
    }
}

/// Refuses `value` of `field` (of the record `uri`) when an index cannot hold it.
fn indexable(uri: &str, field: &str, value: &str) -> Result<(), DecodeError> {
    if value.len() > INDEXED_MAX_BYTES {
        return Err(DecodeError::Unindexable {
            uri: uri.to_owned(),
            field: field.to_owned(),
            len: value.len(),
            max: INDEXED_MAX_BYTES,
        });
    }
    Ok(())
}

/// Extracts the table fields of a record of `collection` (`uri` names it in errors).
pub fn decode_record(
    collection: Collection,
    uri: &str,
    record: &Value,
) -> Result<CollectionRecord, DecodeError> {
    let invalid = |reason: String| DecodeError::InvalidRecord {
        uri: uri.to_owned(),
        reason,
    };
    let record_uri = uri;
    let string = |field: &str| -> Result<String, DecodeError> {
        match record.get(field) {
            Some(Value::String(s)) => Ok(derived_text(s)),
            Some(_) => Err(invalid(format!("{field} is not a string"))),
            None => Err(invalid(format!("{field} is missing"))),
        }
    };
    let optional = |field: &str| -> Result<Option<String>, DecodeError> {
        match record.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(derived_text(s))),
            Some(_) => Err(invalid(format!("{field} is not a string"))),
        }
    };
    let strong_ref = |value: Option<&Value>, field: &str| -> Result<StrongRef, DecodeError> {
        let value = value.ok_or_else(|| invalid(format!("{field} is missing")))?;
        let uri = value
            .get("uri")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("{field}.uri is missing or not a string")))?;
        let cid = value
            .get("cid")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(format!("{field}.cid is missing or not a string")))?;
        validate_at_uri(uri)?;
        validate_cid_syntax(cid)?;
        indexable(record_uri, &format!("{field}.uri"), uri)?;
        Ok(StrongRef {
            uri: uri.to_owned(),
            cid: cid.to_owned(),
        })
    };
    let subject_did = || -> Result<String, DecodeError> {
        let did = string("subject")?;
        indexable(uri, "subject", &did)?;
        validate_did(&did)?;
        Ok(did)
    };
    let blob_cid = |field: &str| -> Option<String> {
        let blob = record.get(field)?;
        blob.get("ref")
            .and_then(|r| r.get("$link"))
            .or_else(|| blob.get("cid"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Ok(match collection {
        Collection::Post => {
            let (reply_root, reply_parent) = match record.get("reply") {
                None | Some(Value::Null) => (None, None),
                Some(reply) => (
                    Some(strong_ref(reply.get("root"), "reply.root")?),
                    Some(strong_ref(reply.get("parent"), "reply.parent")?),
                ),
            };
            CollectionRecord::Post {
                text: string("text")?,
                reply_root,
                reply_parent,
                created_at: string("createdAt")?,
            }
        }
        Collection::Like => CollectionRecord::Like {
            subject: strong_ref(record.get("subject"), "subject")?,
            created_at: string("createdAt")?,
        },
        Collection::Repost => CollectionRecord::Repost {
            subject: strong_ref(record.get("subject"), "subject")?,
            created_at: string("createdAt")?,
        },
        Collection::Follow => CollectionRecord::Follow {
            subject_did: subject_did()?,
            created_at: string("createdAt")?,
        },
        Collection::Block => CollectionRecord::Block {
            subject_did: subject_did()?,
            created_at: string("createdAt")?,
        },
        Collection::Profile => CollectionRecord::Profile {
            display_name: optional("displayName")?,
            description: optional("description")?,
            avatar_cid: blob_cid("avatar"),
            banner_cid: blob_cid("banner"),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    fn entry(field: &str, value: &str) -> StreamEntry {
        StreamEntry {
            id: "1-0".into(),
            fields: HashMap::from([(field.to_owned(), value.to_owned())]),
            deliveries: 1,
        }
    }

    fn create(did: &str, record: Value) -> String {
        json!({"type": "create", "seq": 1, "time": "2024-01-01T00:00:00Z", "did": did,
               "commit": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm",
               "rev": "3jzfcijpj2z2a", "collection": "app.bsky.feed.like", "rkey": "3jzfcijpj2z2b",
               "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm", "record": record})
        .to_string()
    }

    #[test]
    fn a_valid_like_decodes_with_its_subject() {
        let subject = json!({"uri": "at://did:plc:bob/app.bsky.feed.post/3jzfcijpj2z2a",
                             "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"});
        let record = json!({"$type": "app.bsky.feed.like", "subject": subject, "createdAt": "2024-01-01T00:00:00Z"});
        let event =
            decode_event(&entry("event", &create("did:plc:alice", record.clone()))).unwrap();
        let StreamEvent::Create(e) = event else {
            panic!("not a create")
        };
        let like = decode_record(Collection::Like, "at://x", &e.record).unwrap();
        assert!(
            matches!(like, CollectionRecord::Like { subject, .. } if subject.uri.ends_with("3jzfcijpj2z2a"))
        );
    }

    #[test]
    fn a_bad_did_is_a_syntax_error() {
        let err = decode_event(&entry("event", &create("did:PLC:alice", json!({})))).unwrap_err();
        assert!(
            matches!(err, DecodeError::Syntax(ref s) if s.kind == "DID"),
            "{err}"
        );
    }

    #[test]
    fn a_record_of_another_type_is_invalid() {
        let err = decode_event(&entry(
            "event",
            &create("did:plc:alice", json!({"$type": "app.bsky.feed.post"})),
        ))
        .unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
    }

    #[test]
    fn a_missing_field_and_bad_json_name_the_entry() {
        let err = decode_event(&entry("other", "{}")).unwrap_err();
        assert_eq!(err.to_string(), r#"entry 1-0 has no "event" field"#);
        let err = decode_event(&entry("event", "{not json")).unwrap_err();
        assert!(err.to_string().starts_with("entry 1-0: "), "{err}");
    }

    #[test]
    fn a_like_with_a_bad_subject_uri_is_rejected() {
        let record = json!({"subject": {"uri": "at://did:plc:bob/app.bsky.feed.post/a/b/c", "cid": "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"}, "createdAt": "t"});
        let err = decode_record(Collection::Like, "at://x", &record).unwrap_err();
        assert!(
            matches!(err, DecodeError::Syntax(ref s) if s.kind == "AT-URI"),
            "{err}"
        );
    }

    #[test]
    fn a_label_needs_a_did_source_and_a_valid_subject() {
        let mut label = Label {
            src: "did:plc:labeler".into(),
            uri: "at://did:plc:a/app.bsky.feed.post/3jzfcijpj2z2a".into(),
            cid: None,
            val: "spam".into(),
            neg: None,
            cts: "2024-01-01T00:00:00Z".into(),
        };
        assert!(validate_label(&label).is_ok());
        label.uri = "did:plc:a".into();
        assert!(validate_label(&label).is_ok());
        label.src = "labeler".into();
        assert!(validate_label(&label).is_err());
    }
}
