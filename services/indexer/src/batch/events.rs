//! Firehose events as sets: what a batch of events does to the database, with the result the
//! per-event path ([`crate::index`]) gives for the same events in the same order.
//!
//! - `record` and the six collection tables, in rounds. The events of one record (one AT-URI) in
//!   a batch are first reduced to those the rev guard can let through, in stream order: an event
//!   with an older rev than an earlier one of the same record is never applied, nor is one after
//!   the last event of the highest rev; an event repeating the one before it (same kind, rev, CID
//!   and record) does what that one did. What remains has non-decreasing revs (almost always one
//!   event). Round `k` writes the `k`-th remaining event of every record: one `record` upsert
//!   under the rev guard (`WHERE record.rev <= excluded.rev`, tombstones for deletes) returning
//!   the URIs it applied, then per table one `DELETE ... WHERE uri = ANY($1)` for the applied
//!   updates and deletes and one `INSERT ... SELECT FROM unnest(...) ON CONFLICT (uri) DO
//!   NOTHING` for the applied creates and updates. Each round holds one event per record, so it
//!   does what those events do one by one, and rounds keep their order.
//! - `actor_sync`: one upsert, per DID the first commit event of the highest rev (later ones of
//!   the same rev do not replace it, as one by one).
//! - `actor`: account events set the status and `"accountSeq"`, identity events the handle and
//!   `"identitySeq"`, each under the seq guard of [`crate::index`] (applied when the seq is not
//!   below the stored one). Per kind: one `SELECT` of the stored seqs of the batch's DIDs (to
//!   tell, as one by one, which events are applied), then one upsert of per DID the winner (the
//!   last event whose seq is not below any before it) `WHERE "...Seq" IS NULL OR "...Seq" <=
//!   excluded."...Seq" RETURNING did`.

use std::collections::{HashMap, HashSet};

use deadpool_postgres::Transaction;
use rsky_common::event::StreamEvent;
use tokio_postgres::types::ToSql;
use tokio_postgres::Statement;

use crate::decode::{record_uri, Collection, CollectionRecord};
use crate::index::{account_status, EventKind, IndexError, Indexed, Prepared};

/// Writes batches of firehose events with `now` as their `"indexedAt"`.
pub(crate) struct EventWriter<'n> {
    pub now: &'n str,
}

/// A create, update or delete, with what its statements need.
struct RecordOp<'a> {
    /// Its position in the batch.
    index: usize,
    kind: EventKind,
    uri: String,
    did: &'a str,
    rev: &'a str,
    cid: &'a str,
    record: Option<&'a serde_json::Value>,
    fields: Option<&'a (Collection, CollectionRecord)>,
    /// The table the event touches.
    collection: Option<Collection>,
}

impl RecordOp<'_> {
    /// Whether `self` does exactly what `other` does to `record` and the collection tables.
    fn repeats(&self, other: &RecordOp<'_>) -> bool {
        self.kind == other.kind
            && self.rev == other.rev
            && self.cid == other.cid
            && self.record == other.record
    }
}

impl EventWriter<'_> {
    /// Writes `events` (in stream order) inside `tx`; one result per event.
    pub(crate) async fn write(
        &self,
        tx: &Transaction<'_>,
        events: &[&Prepared],
    ) -> Result<Vec<Indexed>, IndexError> {
        let mut indexed: Vec<Indexed> = events
            .iter()
            .map(|p| Indexed {
                kind: p.kind(),
                collection: match p.event() {
                    StreamEvent::Create(e) | StreamEvent::Update(e) => {
                        Collection::of(&e.collection)
                    }
                    StreamEvent::Delete(e) => Collection::of(&e.collection),
                    _ => None,
                },
                // Record events are applied when their round says so, account and identity
                // events when their seq guard does; repo events always are.
                applied: p.kind() == EventKind::Repo,
            })
            .collect();

        let (rounds, repeats) = record_rounds(events);
        for round in &rounds {
            let applied = self.write_round(tx, round).await?;
            for (op, applied) in round.iter().zip(applied) {
                indexed[op.index].applied = applied;
            }
        }
        for (repeat, original) in repeats {
            indexed[repeat].applied = indexed[original].applied;
        }
        self.advance_sync(tx, events).await?;
        for (index, applied) in self.write_actors(tx, events).await? {
            indexed[index].applied = applied;
        }
        Ok(indexed)
    }

    /// One round (at most one event per record); returns whether each event was applied.
    async fn write_round(
        &self,
        tx: &Transaction<'_>,
        round: &[RecordOp<'_>],
    ) -> Result<Vec<bool>, IndexError> {
        let mut order: Vec<usize> = (0..round.len()).collect();
        order.sort_by(|&a, &b| round[a].uri.cmp(&round[b].uri));
        let jsons: Vec<String> = round
            .iter()
            .map(|op| match op.record {
                Some(record) => record.to_string(),
                None => "{}".to_owned(),
            })
            .collect();
        let uris: Vec<&str> = order.iter().map(|&i| round[i].uri.as_str()).collect();
        let cids: Vec<&str> = order.iter().map(|&i| round[i].cid).collect();
        let dids: Vec<&str> = order.iter().map(|&i| round[i].did).collect();
        let json: Vec<&str> = order.iter().map(|&i| jsons[i].as_str()).collect();
        let revs: Vec<&str> = order.iter().map(|&i| round[i].rev).collect();
        let statement = tx
            .prepare_cached(
                r#"INSERT INTO record (uri, cid, did, json, "indexedAt", rev)
                   SELECT uri, cid, did, json, $6::text, rev
                   FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
                       AS t(uri, cid, did, json, rev)
                   ORDER BY uri
                   ON CONFLICT (uri) DO UPDATE SET cid = excluded.cid, did = excluded.did,
                       json = excluded.json, "indexedAt" = excluded."indexedAt", rev = excluded.rev
                   WHERE record.rev <= excluded.rev
                   RETURNING uri"#,
            )
            .await?;
        let rows = tx
            .query(&statement, &[&uris, &cids, &dids, &json, &revs, &self.now])
            .await?;
        let applied_uris: std::collections::HashSet<String> =
            rows.iter().map(|row| row.get(0)).collect();
        let applied: Vec<bool> = round
            .iter()
            .map(|op| applied_uris.contains(&op.uri))
            .collect();

        // Updates replace their row and deletes remove it: delete first, then insert.
        let mut removed: HashMap<Collection, Vec<&str>> = HashMap::new();
        let mut inserted: HashMap<Collection, Vec<&RecordOp<'_>>> = HashMap::new();
        for &i in &order {
            let op = &round[i];
            if !applied[i] {
                continue;
            }
            if let (Some(collection), EventKind::Update | EventKind::Delete) =
                (op.collection, op.kind)
            {
                removed.entry(collection).or_default().push(&op.uri);
            }
            if let Some((collection, _)) = op.fields {
                inserted.entry(*collection).or_default().push(op);
            }
        }
        // Prepared first (cached per connection), then sent together: the statements of a
        // round are pipelined on the connection and run in this order (deletes before inserts).
        let mut deletes = Vec::new();
        for collection in ALL_COLLECTIONS {
            if let Some(uris) = removed.get(&collection) {
                let sql = format!(
                    r#"DELETE FROM "{}" WHERE uri = ANY($1::text[])"#,
                    collection.table()
                );
                deletes.push((tx.prepare_cached(&sql).await?, uris));
            }
        }
        let mut inserts = Vec::new();
        for collection in ALL_COLLECTIONS {
            if let Some(ops) = inserted.get(&collection) {
                inserts.push(self.collection_insert(tx, collection, ops).await?);
            }
        }
        let delete_params: Vec<[&(dyn ToSql + Sync); 1]> = deletes
            .iter()
            .map(|(_, uris)| [*uris as &(dyn ToSql + Sync)])
            .collect();
        let insert_params: Vec<Vec<&(dyn ToSql + Sync)>> = inserts
            .iter()
            .map(|(_, values)| {
                let mut params: Vec<&(dyn ToSql + Sync)> =
                    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
                params.push(&self.now);
                params
            })
            .collect();
        let pending: Vec<_> = deletes
            .iter()
            .zip(&delete_params)
            .map(|((statement, _), params)| tx.execute(statement, &params[..]))
            .chain(
                inserts
                    .iter()
                    .zip(&insert_params)
                    .map(|((statement, _), params)| tx.execute(statement, &params[..])),
            )
            .collect();
        futures::future::try_join_all(pending).await?;
        Ok(applied)
    }

    /// One `INSERT ... SELECT FROM unnest(...) ON CONFLICT (uri) DO NOTHING` into the table of
    /// `collection` (`ops` sorted by URI, each with fields of that collection): the statement and
    /// its arrays (the last parameter, `"indexedAt"`, is `now`).
    async fn collection_insert<'o>(
        &self,
        tx: &Transaction<'_>,
        collection: Collection,
        ops: &[&'o RecordOp<'o>],
    ) -> Result<(Statement, Vec<Vec<Option<&'o str>>>), IndexError> {
        let columns = table_columns(collection);
        let mut values: Vec<Vec<Option<&str>>> = vec![Vec::with_capacity(ops.len()); columns.len()];
        for op in ops {
            let Some((_, record)) = op.fields else {
                continue;
            };
            let row = [Some(op.uri.as_str()), Some(op.cid), Some(op.did)]
                .into_iter()
                .chain(record_values(record));
            for (column, value) in values.iter_mut().zip(row) {
                column.push(value);
            }
        }
        let names: Vec<String> = columns.iter().map(|c| format!(r#""{c}""#)).collect();
        let arrays: Vec<String> = (1..=columns.len())
            .map(|n| format!("${n}::text[]"))
            .collect();
        let aliases: Vec<String> = (0..columns.len()).map(|n| format!("c{n}")).collect();
        let sql = format!(
            r#"INSERT INTO "{table}" ({names}, "indexedAt")
               SELECT {aliases}, ${now}::text FROM unnest({arrays}) AS t({aliases})
               ORDER BY c0
               ON CONFLICT (uri) DO NOTHING"#,
            table = collection.table(),
            names = names.join(", "),
            aliases = aliases.join(", "),
            arrays = arrays.join(", "),
            now = columns.len() + 1,
        );
        Ok((tx.prepare_cached(&sql).await?, values))
    }

    /// Advances `actor_sync` for every commit event: per DID the first event of the highest rev.
    async fn advance_sync(
        &self,
        tx: &Transaction<'_>,
        events: &[&Prepared],
    ) -> Result<(), IndexError> {
        let mut newest: HashMap<&str, (&str, &str)> = HashMap::new();
        for p in events {
            let (did, commit, rev) = match p.event() {
                StreamEvent::Create(e) | StreamEvent::Update(e) => (&e.did, &e.commit, &e.rev),
                StreamEvent::Delete(e) => (&e.did, &e.commit, &e.rev),
                StreamEvent::Repo(e) => (&e.did, &e.commit, &e.rev),
                _ => continue,
            };
            let entry = newest.entry(did).or_insert((commit, rev));
            if entry.1 < rev.as_str() {
                *entry = (commit, rev);
            }
        }
        if newest.is_empty() {
            return Ok(());
        }
        let mut rows: Vec<(&str, &str, &str)> = newest
            .into_iter()
            .map(|(did, (commit, rev))| (did, commit, rev))
            .collect();
        rows.sort_unstable();
        let dids: Vec<&str> = rows.iter().map(|r| r.0).collect();
        let commits: Vec<&str> = rows.iter().map(|r| r.1).collect();
        let revs: Vec<&str> = rows.iter().map(|r| r.2).collect();
        let statement = tx
            .prepare_cached(
                r#"INSERT INTO actor_sync (did, "commitCid", "repoRev")
                   SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
                   ON CONFLICT (did) DO UPDATE SET "commitCid" = excluded."commitCid",
                       "repoRev" = excluded."repoRev"
                   WHERE actor_sync."repoRev" < excluded."repoRev""#,
            )
            .await?;
        tx.execute(&statement, &[&dids, &commits, &revs]).await?;
        Ok(())
    }

    /// Account events set the status, identity events the handle, each under its seq guard;
    /// returns (event index, applied) for each of them.
    async fn write_actors(
        &self,
        tx: &Transaction<'_>,
        events: &[&Prepared],
    ) -> Result<Vec<(usize, bool)>, IndexError> {
        let mut accounts: Vec<ActorOp<'_>> = Vec::new();
        let mut identities: Vec<ActorOp<'_>> = Vec::new();
        for (index, p) in events.iter().enumerate() {
            match p.event() {
                StreamEvent::Account(e) => accounts.push(ActorOp {
                    index,
                    did: &e.did,
                    seq: e.seq,
                    value: account_status(e).map(str::to_owned),
                }),
                StreamEvent::Identity(e) => identities.push(ActorOp {
                    index,
                    did: &e.did,
                    seq: e.seq,
                    value: e.handle.as_ref().map(|h| h.to_ascii_lowercase()),
                }),
                _ => {}
            }
        }
        self.lock_actors(tx, &accounts, &identities).await?;
        let mut applied = self.write_actor_column(tx, ACCOUNT, accounts).await?;
        applied.extend(self.write_actor_column(tx, IDENTITY, identities).await?);
        Ok(applied)
    }

    /// Takes the row lock of every `actor` row the account and identity events touch, in one
    /// order (sorted DIDs), before either kind is written: two batches, one with account events
    /// for DIDs A and identity events for DIDs B and the other the reverse, would otherwise lock
    /// A then B and B then A, and deadlock. Missing rows are created first, also in DID order
    /// (a concurrent insert of the same DID waits on the index entry, which is a lock too); the
    /// guarded upserts then find every row and the same final values as without this step.
    async fn lock_actors(
        &self,
        tx: &Transaction<'_>,
        accounts: &[ActorOp<'_>],
        identities: &[ActorOp<'_>],
    ) -> Result<(), IndexError> {
        let mut dids: Vec<&str> = accounts.iter().chain(identities).map(|op| op.did).collect();
        if dids.is_empty() {
            return Ok(());
        }
        dids.sort_unstable();
        dids.dedup();
        let create = tx
            .prepare_cached(
                r#"INSERT INTO actor (did, "indexedAt")
                   SELECT did, $2::text FROM unnest($1::text[]) AS t(did)
                   ORDER BY did
                   ON CONFLICT (did) DO NOTHING"#,
            )
            .await?;
        tx.execute(&create, &[&dids, &self.now]).await?;
        let lock = tx
            .prepare_cached(
                "SELECT did FROM actor WHERE did = ANY($1::text[]) ORDER BY did FOR UPDATE",
            )
            .await?;
        tx.query(&lock, &[&dids]).await?;
        Ok(())
    }

    /// The events of one kind (account or identity), as the per-event path applies them one by
    /// one: per DID the winner (the last event whose seq is not below any before it) in one
    /// guarded upsert; an event is applied when it is not below any earlier one of the batch
    /// nor the stored seq (read first), and its DID's winner was applied.
    async fn write_actor_column(
        &self,
        tx: &Transaction<'_>,
        column: ActorColumn,
        ops: Vec<ActorOp<'_>>,
    ) -> Result<Vec<(usize, bool)>, IndexError> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let mut by_did: HashMap<&str, Vec<ActorOp<'_>>> = HashMap::new();
        for op in ops {
            by_did.entry(op.did).or_default().push(op);
        }
        let mut dids: Vec<&str> = by_did.keys().copied().collect();
        dids.sort_unstable();
        let ActorColumn { value, seq } = column;

        let statement = tx
            .prepare_cached(&format!(
                r#"SELECT did, "{seq}" FROM actor WHERE did = ANY($1::text[])"#
            ))
            .await?;
        let stored: HashMap<String, Option<i64>> = tx
            .query(&statement, &[&dids])
            .await?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();

        // Per DID: which events are not below any earlier one, and the winner.
        let mut flags: HashMap<&str, Vec<bool>> = HashMap::with_capacity(dids.len());
        let mut winners: Vec<&ActorOp<'_>> = Vec::with_capacity(dids.len());
        for did in &dids {
            let Some(did_ops) = by_did.get(did) else {
                continue;
            };
            let mut newest: Option<i64> = None;
            let mut winner = &did_ops[0];
            let ok: Vec<bool> = did_ops
                .iter()
                .map(|op| {
                    let ok = newest.is_none_or(|n| op.seq >= n);
                    if ok {
                        newest = Some(op.seq);
                        winner = op;
                    }
                    ok
                })
                .collect();
            flags.insert(did, ok);
            winners.push(winner);
        }

        let winner_dids: Vec<&str> = winners.iter().map(|w| w.did).collect();
        let values: Vec<Option<&str>> = winners.iter().map(|w| w.value.as_deref()).collect();
        let seqs: Vec<i64> = winners.iter().map(|w| w.seq).collect();
        let statement = tx
            .prepare_cached(&format!(
                r#"INSERT INTO actor (did, "{value}", "{seq}", "indexedAt")
                   SELECT did, value, seq, $4::text
                   FROM unnest($1::text[], $2::text[], $3::int8[]) AS t(did, value, seq)
                   ON CONFLICT (did) DO UPDATE SET "{value}" = excluded."{value}",
                       "{seq}" = excluded."{seq}", "indexedAt" = excluded."indexedAt"
                   WHERE actor."{seq}" IS NULL OR actor."{seq}" <= excluded."{seq}"
                   RETURNING did"#
            ))
            .await?;
        let applied_dids: HashSet<String> = tx
            .query(&statement, &[&winner_dids, &values, &seqs, &self.now])
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();

        let mut applied = Vec::new();
        for did in &dids {
            let (Some(did_ops), Some(ok)) = (by_did.get(did), flags.get(did)) else {
                continue;
            };
            let winner_applied = applied_dids.contains(*did);
            let stored_seq = stored.get(*did).copied().flatten();
            for (op, &ok) in did_ops.iter().zip(ok) {
                let not_older = stored_seq.is_none_or(|s| op.seq >= s);
                applied.push((op.index, winner_applied && ok && not_older));
            }
        }
        Ok(applied)
    }
}

/// An account or identity event: the value it sets and its seq.
struct ActorOp<'a> {
    /// Its position in the batch.
    index: usize,
    did: &'a str,
    seq: i64,
    /// The status (account) or the lower-cased handle (identity).
    value: Option<String>,
}

/// The `actor` columns one kind of event sets: its value and its seq.
#[derive(Clone, Copy)]
struct ActorColumn {
    value: &'static str,
    seq: &'static str,
}

const ACCOUNT: ActorColumn = ActorColumn {
    value: "upstreamStatus",
    seq: "accountSeq",
};

const IDENTITY: ActorColumn = ActorColumn {
    value: "handle",
    seq: "identitySeq",
};

/// The six collections, in the order their statements run.
const ALL_COLLECTIONS: [Collection; 6] = [
    Collection::Post,
    Collection::Like,
    Collection::Repost,
    Collection::Follow,
    Collection::Block,
    Collection::Profile,
];

/// The columns of a collection table, before `"indexedAt"`.
fn table_columns(collection: Collection) -> &'static [&'static str] {
    match collection {
        Collection::Post => &[
            "uri",
            "cid",
            "creator",
            "text",
            "replyRoot",
            "replyRootCid",
            "replyParent",
            "replyParentCid",
            "createdAt",
        ],
        Collection::Like | Collection::Repost => &[
            "uri",
            "cid",
            "creator",
            "subject",
            "subjectCid",
            "createdAt",
        ],
        Collection::Follow | Collection::Block => {
            &["uri", "cid", "creator", "subjectDid", "createdAt"]
        }
        Collection::Profile => &[
            "uri",
            "cid",
            "creator",
            "displayName",
            "description",
            "avatarCid",
            "bannerCid",
        ],
    }
}

/// A record's values for the columns after uri, cid and creator.
fn record_values(record: &CollectionRecord) -> Vec<Option<&str>> {
    match record {
        CollectionRecord::Post {
            text,
            reply_root,
            reply_parent,
            created_at,
        } => vec![
            Some(text),
            reply_root.as_ref().map(|r| r.uri.as_str()),
            reply_root.as_ref().map(|r| r.cid.as_str()),
            reply_parent.as_ref().map(|r| r.uri.as_str()),
            reply_parent.as_ref().map(|r| r.cid.as_str()),
            Some(created_at),
        ],
        CollectionRecord::Like {
            subject,
            created_at,
        }
        | CollectionRecord::Repost {
            subject,
            created_at,
        } => vec![Some(&subject.uri), Some(&subject.cid), Some(created_at)],
        CollectionRecord::Follow {
            subject_did,
            created_at,
        }
        | CollectionRecord::Block {
            subject_did,
            created_at,
        } => vec![Some(subject_did), Some(created_at)],
        CollectionRecord::Profile {
            display_name,
            description,
            avatar_cid,
            banner_cid,
        } => vec![
            display_name.as_deref(),
            description.as_deref(),
            avatar_cid.as_deref(),
            banner_cid.as_deref(),
        ],
    }
}

/// The record events of a batch in rounds (see the module docs), and the repeated events as
/// (repeat, the event it repeats).
fn record_rounds<'a>(events: &[&'a Prepared]) -> (Vec<Vec<RecordOp<'a>>>, Vec<(usize, usize)>) {
    let mut by_uri: HashMap<String, Vec<RecordOp<'a>>> = HashMap::new();
    let mut uris: Vec<String> = Vec::new();
    for (index, p) in events.iter().enumerate() {
        let op = match p.event() {
            StreamEvent::Create(e) | StreamEvent::Update(e) => RecordOp {
                index,
                kind: p.kind(),
                uri: record_uri(&e.did, &e.collection, &e.rkey),
                did: &e.did,
                rev: &e.rev,
                cid: &e.cid,
                record: Some(&e.record),
                fields: p.fields(),
                collection: Collection::of(&e.collection),
            },
            StreamEvent::Delete(e) => RecordOp {
                index,
                kind: EventKind::Delete,
                uri: record_uri(&e.did, &e.collection, &e.rkey),
                did: &e.did,
                rev: &e.rev,
                cid: "",
                record: None,
                fields: None,
                collection: Collection::of(&e.collection),
            },
            _ => continue,
        };
        let ops = by_uri.entry(op.uri.clone()).or_insert_with(|| {
            uris.push(op.uri.clone());
            Vec::new()
        });
        ops.push(op);
    }
    let mut rounds: Vec<Vec<RecordOp<'a>>> = Vec::new();
    let mut repeats = Vec::new();
    for uri in uris {
        let Some(ops) = by_uri.remove(&uri) else {
            continue;
        };
        for (k, op) in reduce(ops, &mut repeats).into_iter().enumerate() {
            if rounds.len() == k {
                rounds.push(Vec::new());
            }
            rounds[k].push(op);
        }
    }
    (rounds, repeats)
}

/// The events of one record (stream order) that can change it, in order; repeats are noted in
/// `repeats`, events the rev guard must refuse are left out (they are not applied).
fn reduce<'a>(ops: Vec<RecordOp<'a>>, repeats: &mut Vec<(usize, usize)>) -> Vec<RecordOp<'a>> {
    let Some(max) = ops.iter().map(|op| op.rev).max() else {
        return Vec::new();
    };
    let last_of_max = ops.iter().rposition(|op| op.rev == max).unwrap_or(0);
    let mut kept: Vec<RecordOp<'a>> = Vec::new();
    let mut running: Option<&str> = None;
    for op in ops.into_iter().take(last_of_max + 1) {
        if running.is_some_and(|r| op.rev < r) {
            // An earlier event of this batch has a newer rev: the guard refuses this one.
            continue;
        }
        running = Some(op.rev);
        match kept.last() {
            Some(previous) if op.repeats(previous) => repeats.push((op.index, previous.index)),
            _ => kept.push(op),
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsky_common::event::{DeleteEvent, RecordEvent};
    use serde_json::json;

    const CID: &str = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm";

    fn rev(n: u64) -> String {
        rsky_atproto::syntax::tid_from_parts(1_700_000_000_000_000 + n * 1000, 7)
    }

    fn record(kind: &str, rkey: &str, n: u64, text: &str) -> Prepared {
        let e = RecordEvent {
            seq: 1,
            time: "t".into(),
            did: "did:plc:a".into(),
            commit: CID.into(),
            rev: rev(n),
            collection: "app.bsky.feed.post".into(),
            rkey: rkey.into(),
            cid: CID.into(),
            record: json!({"text": text, "createdAt": "t"}),
        };
        let event = match kind {
            "create" => StreamEvent::Create(e),
            "update" => StreamEvent::Update(e),
            _ => StreamEvent::Delete(DeleteEvent {
                seq: 1,
                time: "t".into(),
                did: e.did,
                commit: e.commit,
                rev: e.rev,
                collection: e.collection,
                rkey: e.rkey,
            }),
        };
        Prepared::new(event).expect("valid")
    }

    fn indices(rounds: &[Vec<RecordOp<'_>>]) -> Vec<Vec<usize>> {
        rounds
            .iter()
            .map(|r| r.iter().map(|op| op.index).collect())
            .collect()
    }

    #[test]
    fn one_event_per_record_is_one_round() {
        let events = [record("create", "a", 1, "x"), record("create", "b", 1, "y")];
        let refs: Vec<&Prepared> = events.iter().collect();
        let (rounds, repeats) = record_rounds(&refs);
        assert_eq!(indices(&rounds), [vec![0, 1]]);
        assert!(repeats.is_empty());
    }

    #[test]
    fn older_revs_and_events_after_the_newest_are_left_out() {
        // update r5, create r3 (older: refused), delete r5 (same rev: applied), create r4 (after
        // the last of the highest rev: refused).
        let events = [
            record("update", "a", 5, "x"),
            record("create", "a", 3, "y"),
            record("delete", "a", 5, ""),
            record("create", "a", 4, "z"),
        ];
        let refs: Vec<&Prepared> = events.iter().collect();
        let (rounds, _) = record_rounds(&refs);
        assert_eq!(indices(&rounds), [vec![0], vec![2]]);
    }

    #[test]
    fn a_repeated_event_is_written_once_and_shares_the_outcome() {
        let events = [
            record("create", "a", 1, "x"),
            record("create", "a", 1, "x"),
            record("create", "a", 1, "other"),
        ];
        let refs: Vec<&Prepared> = events.iter().collect();
        let (rounds, repeats) = record_rounds(&refs);
        assert_eq!(indices(&rounds), [vec![0], vec![2]]);
        assert_eq!(repeats, [(1, 0)]);
    }
}
