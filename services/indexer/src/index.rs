//! Per-event handlers: what one firehose event does to the database, in one transaction.
//!
//! - create/update: `record` is upserted only when the event's rev is not older than the stored
//!   one; when it was, the collection table gets the row (create: insert, nothing on conflict;
//!   update: replace). An older event changes nothing.
//! - delete: `record` becomes a tombstone (`json = '{}'`, `cid = ''`) under the same rev rule,
//!   so an older create arriving later cannot resurrect it; the collection row is deleted.
//! - every commit event (create, update, delete, repo) advances `actor_sync` when its rev is newer.
//! - account and identity events set the actor's upstream status and handle, each only when
//!   the event's seq is not older than the seq of the last one of its kind applied to that DID
//!   (`actor."accountSeq"`, `actor."identitySeq"`; NULL: none yet). So
//!   - a late older event (a reclaimed entry replayed after a newer one) changes nothing;
//!   - a replay of the same event (equal seq) writes the same values again: idempotent;
//!   - an unsequenced event (seq -1: backfilled or synthesised) is applied only while no
//!     sequenced event of its kind has been, and never overrides one.
//!
//!   Seqs are one relay's: after switching to a relay with a lower sequence, clear the stored
//!   seqs (`UPDATE actor SET "accountSeq" = NULL, "identitySeq" = NULL`).

use deadpool_postgres::{GenericClient, Transaction};
use rsky_common::event::{AccountEvent, DeleteEvent, IdentityEvent, RecordEvent, StreamEvent};
use tokio_postgres::types::ToSql;

use crate::db::{DbError, FailureClass};
use crate::decode::{decode_record, record_uri, Collection, CollectionRecord, DecodeError};

/// Why an event was not indexed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The event is invalid.
    #[error(transparent)]
    Invalid(#[from] DecodeError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<tokio_postgres::Error> for IndexError {
    fn from(e: tokio_postgres::Error) -> Self {
        IndexError::Db(DbError::Postgres(e))
    }
}

impl From<deadpool_postgres::PoolError> for IndexError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        IndexError::Db(DbError::Pool(e))
    }
}

impl IndexError {
    /// Whether this failure may be the work's own size or content rather than the database's
    /// state: a statement timeout or cancel (57014), a program limit exceeded (class 54: an
    /// index row too large, a statement too complex), or a connection closed under the
    /// statement (an oversized message). Classed unavailable, but when the database still
    /// answers, the writer splits the work like a poison instead of waiting for it.
    pub fn may_be_the_work(&self) -> bool {
        let IndexError::Db(err) = self else {
            return false;
        };
        match err.sqlstate() {
            Some(code) => code == "57014" || code.starts_with("54"),
            None => matches!(err, DbError::Postgres(e) if e.is_closed()),
        }
    }

    /// Whether the database refused the entry for a program limit (class 54) it will exceed
    /// however often it is tried.
    pub fn over_a_limit(&self) -> bool {
        matches!(self, IndexError::Db(err) if err.sqlstate().is_some_and(|c| c.starts_with("54")))
    }

    /// Expected (bad input), unavailable (retry, the database's fault) or unexpected.
    pub fn class(&self) -> FailureClass {
        match self {
            IndexError::Invalid(_) => FailureClass::Expected,
            IndexError::Db(e) => e.class(),
        }
    }
}

/// What an indexed event was, for the counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Indexed {
    /// The event's `type`.
    pub kind: EventKind,
    /// The collection, when it has its own table.
    pub collection: Option<Collection>,
    /// Whether the event was applied: false when a newer one was already there (records: a
    /// newer rev in `record`; account and identity events: a greater seq of the same kind). A
    /// stale event is still processed and acknowledged; it is not an error.
    pub applied: bool,
}

/// The `type` of a firehose event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// `create`.
    Create,
    /// `update`.
    Update,
    /// `delete`.
    Delete,
    /// `repo`.
    Repo,
    /// `account`.
    Account,
    /// `identity`.
    Identity,
}

/// A validated event with its collection fields already extracted, ready for the database.
#[derive(Clone, Debug)]
pub struct Prepared {
    event: StreamEvent,
    fields: Option<(Collection, CollectionRecord)>,
}

impl Prepared {
    /// Extracts the collection fields of a (syntax-checked) event; a record missing what its
    /// collection requires is rejected here, before any database work.
    pub fn new(event: StreamEvent) -> Result<Prepared, DecodeError> {
        let fields = match &event {
            StreamEvent::Create(e) | StreamEvent::Update(e) => {
                match Collection::of(&e.collection) {
                    Some(collection) => {
                        let uri = record_uri(&e.did, &e.collection, &e.rkey);
                        Some((collection, decode_record(collection, &uri, &e.record)?))
                    }
                    None => None,
                }
            }
            _ => None,
        };
        Ok(Prepared { event, fields })
    }

    /// The DID the event is about.
    pub fn did(&self) -> &str {
        self.event.did()
    }

    /// The validated event.
    pub fn event(&self) -> &StreamEvent {
        &self.event
    }

    /// The collection and its table fields, for a create or update of one of the six
    /// collections.
    pub fn fields(&self) -> Option<&(Collection, CollectionRecord)> {
        self.fields.as_ref()
    }

    /// The event's kind.
    pub fn kind(&self) -> EventKind {
        match &self.event {
            StreamEvent::Create(_) => EventKind::Create,
            StreamEvent::Update(_) => EventKind::Update,
            StreamEvent::Delete(_) => EventKind::Delete,
            StreamEvent::Repo(_) => EventKind::Repo,
            StreamEvent::Account(_) => EventKind::Account,
            StreamEvent::Identity(_) => EventKind::Identity,
        }
    }
}

/// Indexes one event inside `tx` (the caller commits).
pub async fn index_event(
    tx: &Transaction<'_>,
    prepared: &Prepared,
    now: &str,
) -> Result<Indexed, IndexError> {
    let fields = prepared.fields.as_ref();
    Ok(match &prepared.event {
        StreamEvent::Create(e) => Indexed {
            kind: EventKind::Create,
            collection: fields.map(|f| f.0),
            applied: upsert_record(tx, e, fields, false, now).await?,
        },
        StreamEvent::Update(e) => Indexed {
            kind: EventKind::Update,
            collection: fields.map(|f| f.0),
            applied: upsert_record(tx, e, fields, true, now).await?,
        },
        StreamEvent::Delete(e) => Indexed {
            kind: EventKind::Delete,
            collection: Collection::of(&e.collection),
            applied: delete_record(tx, e, now).await?,
        },
        StreamEvent::Repo(e) => {
            advance_sync(tx, &e.did, &e.commit, &e.rev).await?;
            Indexed {
                kind: EventKind::Repo,
                collection: None,
                applied: true,
            }
        }
        StreamEvent::Account(e) => Indexed {
            kind: EventKind::Account,
            collection: None,
            applied: account(tx, e, now).await?,
        },
        StreamEvent::Identity(e) => Indexed {
            kind: EventKind::Identity,
            collection: None,
            applied: identity(tx, e, now).await?,
        },
    })
}

async fn execute(
    tx: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, tokio_postgres::Error> {
    let statement = tx.prepare_cached(sql).await?;
    tx.execute(&statement, params).await
}

async fn upsert_record(
    tx: &Transaction<'_>,
    e: &RecordEvent,
    fields: Option<&(Collection, CollectionRecord)>,
    replace: bool,
    now: &str,
) -> Result<bool, IndexError> {
    let uri = record_uri(&e.did, &e.collection, &e.rkey);
    let json = e.record.to_string();
    let applied = execute(
        tx,
        r#"INSERT INTO record (uri, cid, did, json, "indexedAt", rev) VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (uri) DO UPDATE SET cid = excluded.cid, did = excluded.did, json = excluded.json,
               "indexedAt" = excluded."indexedAt", rev = excluded.rev
           WHERE record.rev <= excluded.rev"#,
        &[&uri, &e.cid, &e.did, &json, &now, &e.rev],
    )
    .await?
        == 1;
    if applied {
        if let Some((collection, record)) = fields {
            if replace {
                delete_collection_row(tx, *collection, &uri).await?;
            }
            insert_collection_row(tx, &uri, &e.cid, &e.did, record, now).await?;
        }
    }
    advance_sync(tx, &e.did, &e.commit, &e.rev).await?;
    Ok(applied)
}

async fn delete_record(
    tx: &Transaction<'_>,
    e: &DeleteEvent,
    now: &str,
) -> Result<bool, IndexError> {
    let uri = record_uri(&e.did, &e.collection, &e.rkey);
    let applied = execute(
        tx,
        r#"INSERT INTO record (uri, cid, did, json, "indexedAt", rev) VALUES ($1, '', $2, '{}', $3, $4)
           ON CONFLICT (uri) DO UPDATE SET cid = '', json = '{}', "indexedAt" = excluded."indexedAt",
               rev = excluded.rev
           WHERE record.rev <= excluded.rev"#,
        &[&uri, &e.did, &now, &e.rev],
    )
    .await?
        == 1;
    if applied {
        if let Some(collection) = Collection::of(&e.collection) {
            delete_collection_row(tx, collection, &uri).await?;
        }
    }
    advance_sync(tx, &e.did, &e.commit, &e.rev).await?;
    Ok(applied)
}

async fn delete_collection_row(
    tx: &Transaction<'_>,
    collection: Collection,
    uri: &str,
) -> Result<(), tokio_postgres::Error> {
    let sql = format!(r#"DELETE FROM "{}" WHERE uri = $1"#, collection.table());
    execute(tx, &sql, &[&uri]).await.map(drop)
}

async fn insert_collection_row(
    tx: &Transaction<'_>,
    uri: &str,
    cid: &str,
    creator: &str,
    record: &CollectionRecord,
    now: &str,
) -> Result<(), tokio_postgres::Error> {
    match record {
        CollectionRecord::Post {
            text,
            reply_root,
            reply_parent,
            created_at,
        } => {
            let root_uri = reply_root.as_ref().map(|r| r.uri.as_str());
            let root_cid = reply_root.as_ref().map(|r| r.cid.as_str());
            let parent_uri = reply_parent.as_ref().map(|r| r.uri.as_str());
            let parent_cid = reply_parent.as_ref().map(|r| r.cid.as_str());
            execute(
                tx,
                r#"INSERT INTO post (uri, cid, creator, text, "replyRoot", "replyRootCid", "replyParent",
                       "replyParentCid", "createdAt", "indexedAt")
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (uri) DO NOTHING"#,
                &[
                    &uri,
                    &cid,
                    &creator,
                    text,
                    &root_uri,
                    &root_cid,
                    &parent_uri,
                    &parent_cid,
                    created_at,
                    &now,
                ],
            )
            .await
        }
        CollectionRecord::Like {
            subject,
            created_at,
        }
        | CollectionRecord::Repost {
            subject,
            created_at,
        } => {
            let sql = if matches!(record, CollectionRecord::Like { .. }) {
                r#"INSERT INTO "like" (uri, cid, creator, subject, "subjectCid", "createdAt", "indexedAt")
                   VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (uri) DO NOTHING"#
            } else {
                r#"INSERT INTO repost (uri, cid, creator, subject, "subjectCid", "createdAt", "indexedAt")
                   VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (uri) DO NOTHING"#
            };
            execute(
                tx,
                sql,
                &[
                    &uri,
                    &cid,
                    &creator,
                    &subject.uri,
                    &subject.cid,
                    created_at,
                    &now,
                ],
            )
            .await
        }
        CollectionRecord::Follow {
            subject_did,
            created_at,
        }
        | CollectionRecord::Block {
            subject_did,
            created_at,
        } => {
            let sql = if matches!(record, CollectionRecord::Follow { .. }) {
                r#"INSERT INTO follow (uri, cid, creator, "subjectDid", "createdAt", "indexedAt")
                   VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (uri) DO NOTHING"#
            } else {
                r#"INSERT INTO actor_block (uri, cid, creator, "subjectDid", "createdAt", "indexedAt")
                   VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (uri) DO NOTHING"#
            };
            execute(
                tx,
                sql,
                &[&uri, &cid, &creator, subject_did, created_at, &now],
            )
            .await
        }
        CollectionRecord::Profile {
            display_name,
            description,
            avatar_cid,
            banner_cid,
        } => {
            execute(
                tx,
                r#"INSERT INTO profile (uri, cid, creator, "displayName", description, "avatarCid",
                       "bannerCid", "indexedAt")
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (uri) DO NOTHING"#,
                &[
                    &uri,
                    &cid,
                    &creator,
                    display_name,
                    description,
                    avatar_cid,
                    banner_cid,
                    &now,
                ],
            )
            .await
        }
    }
    .map(drop)
}

async fn advance_sync(
    tx: &Transaction<'_>,
    did: &str,
    commit: &str,
    rev: &str,
) -> Result<(), tokio_postgres::Error> {
    execute(
        tx,
        r#"INSERT INTO actor_sync (did, "commitCid", "repoRev") VALUES ($1, $2, $3)
           ON CONFLICT (did) DO UPDATE SET "commitCid" = excluded."commitCid", "repoRev" = excluded."repoRev"
           WHERE actor_sync."repoRev" < excluded."repoRev""#,
        &[&did, &commit, &rev],
    )
    .await
    .map(drop)
}

/// The status an account event sets: an active account has none; an inactive one without a
/// reason is deactivated.
pub fn account_status(e: &AccountEvent) -> Option<&str> {
    if e.active {
        None
    } else {
        Some(e.status.as_deref().unwrap_or("deactivated"))
    }
}

async fn account(
    tx: &Transaction<'_>,
    e: &AccountEvent,
    now: &str,
) -> Result<bool, tokio_postgres::Error> {
    let status = account_status(e);
    Ok(execute(
        tx,
        r#"INSERT INTO actor (did, "indexedAt", "upstreamStatus", "accountSeq") VALUES ($1, $2, $3, $4)
           ON CONFLICT (did) DO UPDATE SET "upstreamStatus" = excluded."upstreamStatus",
               "indexedAt" = excluded."indexedAt", "accountSeq" = excluded."accountSeq"
           WHERE actor."accountSeq" IS NULL OR actor."accountSeq" <= excluded."accountSeq""#,
        &[&e.did, &now, &status, &e.seq],
    )
    .await?
        == 1)
}

async fn identity(
    tx: &Transaction<'_>,
    e: &IdentityEvent,
    now: &str,
) -> Result<bool, tokio_postgres::Error> {
    let handle = e.handle.as_ref().map(|h| h.to_ascii_lowercase());
    Ok(execute(
        tx,
        r#"INSERT INTO actor (did, handle, "indexedAt", "identitySeq") VALUES ($1, $2, $3, $4)
           ON CONFLICT (did) DO UPDATE SET handle = excluded.handle,
               "indexedAt" = excluded."indexedAt", "identitySeq" = excluded."identitySeq"
           WHERE actor."identitySeq" IS NULL OR actor."identitySeq" <= excluded."identitySeq""#,
        &[&e.did, &handle, &now, &e.seq],
    )
    .await?
        == 1)
}
