//! Label entries as sets: the labels of several entries in a few statements, with the rows and
//! counts the entry-by-entry path ([`crate::labels`]) gives.
//!
//! Entry by entry, an operation (add or negation) is applied when it is not older than the last
//! one applied to its key (src, uri, cid, val), by `cts` then a negation after an add (see
//! [`crate::labels`]). Per key, the batch's operations in stream order are reduced to the
//! winner, the last one not older than any before it: the state the key ends in.
//!
//! 1. `SELECT ... FROM label_state JOIN unnest(...)`: the stored state of the batch's keys, to
//!    count each operation as entry by entry would (applied or stale);
//! 2. one `INSERT INTO label_state ... SELECT FROM unnest(...) ON CONFLICT DO UPDATE ... WHERE`
//!    (the `cts` guard) `RETURNING` the keys whose winner was applied;
//! 3. for those keys, one `DELETE FROM label USING unnest(...)` (winner a negation) and one
//!    `INSERT INTO label ... SELECT FROM unnest(...) ON CONFLICT DO UPDATE` (winner an add).
//!
//! Keys are sorted, so concurrent batches take row locks in one order. A winner the guard
//! refuses (a concurrent writer stored a newer operation between 1 and 2) makes every operation
//! of its key stale.

use std::collections::{HashMap, HashSet};
use std::marker::PhantomData;

use deadpool_postgres::Transaction;
use rsky_common::event::Label;

use crate::index::IndexError;
use crate::labels::{is_negation, order, LabelsWritten, STATE_GUARD};

/// Writes batches of label entries (of labels borrowed for `'l`).
#[derive(Default)]
pub(crate) struct LabelWriter<'l>(PhantomData<&'l Label>);

/// (src, uri, cid, val).
type Key<'a> = (&'a str, &'a str, &'a str, &'a str);

/// Owned (src, uri, cid, val), as read back from the database.
type OwnedKey = (String, String, String, String);

fn key(label: &Label) -> Key<'_> {
    (
        label.src.as_str(),
        label.uri.as_str(),
        label.cid.as_deref().unwrap_or(""),
        label.val.as_str(),
    )
}

/// The four key columns of `keys`, as arrays.
fn key_columns(keys: &[Key<'_>]) -> [Vec<String>; 4] {
    let mut cols: [Vec<String>; 4] = Default::default();
    for (src, uri, cid, val) in keys {
        cols[0].push((*src).to_owned());
        cols[1].push((*uri).to_owned());
        cols[2].push((*cid).to_owned());
        cols[3].push((*val).to_owned());
    }
    cols
}

impl LabelWriter<'_> {
    /// Writes the (valid) labels of `entries` (in stream order) inside `tx`; one result per
    /// entry, counted as entry by entry: adds and negations applied, the rest stale.
    pub(crate) async fn write(
        &self,
        tx: &Transaction<'_>,
        entries: &[&Vec<&Label>],
    ) -> Result<Vec<LabelsWritten>, IndexError> {
        // Per key, its operations in stream order: (entry, label).
        let mut ops: HashMap<Key<'_>, Vec<(usize, &Label)>> = HashMap::new();
        for (entry, labels) in entries.iter().enumerate() {
            for label in labels.iter() {
                ops.entry(key(label)).or_default().push((entry, label));
            }
        }
        let mut written = vec![LabelsWritten::default(); entries.len()];
        if ops.is_empty() {
            return Ok(written);
        }
        let mut keys: Vec<Key<'_>> = ops.keys().copied().collect();
        keys.sort_unstable();

        // 1. The stored state of the keys.
        let [src, uri, cid, val] = key_columns(&keys);
        let statement = tx
            .prepare_cached(
                "SELECT src, uri, cid, val, s.neg, s.cts FROM label_state s
                 JOIN unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS k(src, uri, cid, val)
                     USING (src, uri, cid, val)",
            )
            .await?;
        let stored: HashMap<OwnedKey, (bool, String)> = tx
            .query(&statement, &[&src, &uri, &cid, &val])
            .await?
            .iter()
            .map(|row| {
                (
                    (row.get(0), row.get(1), row.get(2), row.get(3)),
                    (row.get(4), row.get(5)),
                )
            })
            .collect();

        // Per key, the winner and which operations are not older than every one before them.
        let mut winners: Vec<(Key<'_>, &Label)> = Vec::with_capacity(keys.len());
        let mut in_order: HashMap<Key<'_>, Vec<bool>> = HashMap::with_capacity(keys.len());
        for k in &keys {
            let Some(key_ops) = ops.get(k) else { continue };
            let mut newest: Option<(&str, bool)> = None;
            let mut winner = key_ops[0].1;
            let flags: Vec<bool> = key_ops
                .iter()
                .map(|(_, label)| {
                    let rank = (label.cts.as_str(), is_negation(label));
                    let ok = newest.is_none_or(|n| order(rank, n).is_ge());
                    if ok {
                        newest = Some(rank);
                        winner = label;
                    }
                    ok
                })
                .collect();
            winners.push((*k, winner));
            in_order.insert(*k, flags);
        }

        // 2. The guarded state upsert of the winners.
        let winner_keys: Vec<Key<'_>> = winners.iter().map(|(k, _)| *k).collect();
        let [src, uri, cid, val] = key_columns(&winner_keys);
        let negs: Vec<bool> = winners.iter().map(|(_, l)| is_negation(l)).collect();
        let cts: Vec<&str> = winners.iter().map(|(_, l)| l.cts.as_str()).collect();
        let statement = tx
            .prepare_cached(&format!(
                "INSERT INTO label_state (src, uri, cid, val, neg, cts)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bool[],
                     $6::text[])
                 {STATE_GUARD}
                 RETURNING src, uri, cid, val"
            ))
            .await?;
        let applied: HashSet<OwnedKey> = tx
            .query(&statement, &[&src, &uri, &cid, &val, &negs, &cts])
            .await?
            .iter()
            .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
            .collect();
        let owned = |k: &Key<'_>| -> OwnedKey {
            (
                k.0.to_owned(),
                k.1.to_owned(),
                k.2.to_owned(),
                k.3.to_owned(),
            )
        };

        // Counts, as entry by entry.
        for (k, _) in &winners {
            let owned_key = owned(k);
            let winner_applied = applied.contains(&owned_key);
            let state = stored.get(&owned_key);
            let (Some(key_ops), Some(flags)) = (ops.get(k), in_order.get(k)) else {
                continue;
            };
            for ((entry, label), &ok) in key_ops.iter().zip(flags) {
                let rank = (label.cts.as_str(), is_negation(label));
                let not_older = state.is_none_or(|(neg, cts)| order(rank, (cts, *neg)).is_ge());
                written[*entry].count(label, winner_applied && ok && not_older);
            }
        }

        // 3. `label` for the keys whose winner was applied.
        let (negated, added): (Vec<_>, Vec<_>) = winners
            .into_iter()
            .filter(|(k, _)| applied.contains(&owned(k)))
            .partition(|(_, label)| is_negation(label));
        if !negated.is_empty() {
            let keys: Vec<Key<'_>> = negated.iter().map(|(k, _)| *k).collect();
            let [src, uri, cid, val] = key_columns(&keys);
            let statement = tx
                .prepare_cached(
                    "DELETE FROM label USING unnest($1::text[], $2::text[], $3::text[], $4::text[])
                         AS n(src, uri, cid, val)
                     WHERE label.src = n.src AND label.uri = n.uri AND label.cid = n.cid
                         AND label.val = n.val",
                )
                .await?;
            tx.execute(&statement, &[&src, &uri, &cid, &val]).await?;
        }
        if !added.is_empty() {
            let keys: Vec<Key<'_>> = added.iter().map(|(k, _)| *k).collect();
            let [src, uri, cid, val] = key_columns(&keys);
            let cts: Vec<&str> = added.iter().map(|(_, label)| label.cts.as_str()).collect();
            let statement = tx
                .prepare_cached(
                    "INSERT INTO label (src, uri, cid, val, neg, cts)
                     SELECT src, uri, cid, val, false, cts
                     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
                         AS t(src, uri, cid, val, cts)
                     ON CONFLICT (src, uri, cid, val) DO UPDATE SET cts = excluded.cts, neg = false",
                )
                .await?;
            tx.execute(&statement, &[&src, &uri, &cid, &val, &cts])
                .await?;
        }
        Ok(written)
    }
}
