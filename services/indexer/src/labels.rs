//! The label indexer: `label_live` -> `label`.
//!
//! A label is keyed on (src, uri, cid, val), with `cid = ''` for a label on a whole subject.
//! `label` holds the labels in force; `label_state` holds, per key, the last operation applied
//! (an add or a negation) with its `cts`, and guards the writes:
//!
//! - an operation is applied when its key has no state yet, or its `cts` is newer than the
//!   stored one, or equal and it is a negation or the stored operation is an add (on equal `cts`
//!   a negation wins; the same operation again is a replay and writes the same rows);
//! - an applied add upserts its label, an applied negation deletes it;
//! - anything else is stale and changes nothing: a late older add cannot resurrect a label
//!   negated later, a late older negation cannot remove a newer add.
//!
//! `cts` is compared byte-wise (`COLLATE "C"`, as Rust compares strings): right for the RFC 3339
//! UTC form labelers write (`YYYY-MM-DDTHH:MM:SS.sssZ`), and a key's operations all come from one
//! labeler (`src`), so from one format. One entry's valid labels are written in one transaction,
//! in order.

use std::cmp::Ordering;

use deadpool_postgres::Transaction;
use rsky_common::event::Label;

use crate::db::DbError;

/// What one entry's labels did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LabelsWritten {
    /// Labels upserted.
    pub added: u64,
    /// Negations applied.
    pub removed: u64,
    /// Adds and negations skipped as stale (an operation with a newer `cts` was already applied
    /// to their key): processed, not an error.
    pub stale: u64,
}

impl LabelsWritten {
    /// Counts `label` as applied or stale.
    pub(crate) fn count(&mut self, label: &Label, applied: bool) {
        match (applied, is_negation(label)) {
            (false, _) => self.stale += 1,
            (true, true) => self.removed += 1,
            (true, false) => self.added += 1,
        }
    }
}

/// Whether `label` is a negation.
pub(crate) fn is_negation(label: &Label) -> bool {
    label.neg.unwrap_or(false)
}

/// How two operations on one key order: by `cts` (byte-wise), then a negation after an add.
/// An operation is applied when it is not [`Ordering::Less`] than the stored one.
pub(crate) fn order(a: (&str, bool), b: (&str, bool)) -> Ordering {
    a.0.as_bytes().cmp(b.0.as_bytes()).then(a.1.cmp(&b.1))
}

/// The guarded upsert of a key's state, as SQL: applied exactly when [`order`] says the new
/// operation is not older than the stored one.
pub(crate) const STATE_GUARD: &str = r#"ON CONFLICT (src, uri, cid, val) DO UPDATE
    SET neg = excluded.neg, cts = excluded.cts
    WHERE label_state.cts < excluded.cts
       OR (label_state.cts = excluded.cts AND (excluded.neg OR NOT label_state.neg))"#;

/// Writes `labels` (already validated) inside `tx` (the caller commits).
pub async fn index_labels(
    tx: &Transaction<'_>,
    labels: &[&Label],
) -> Result<LabelsWritten, DbError> {
    let mut written = LabelsWritten::default();
    if labels.is_empty() {
        return Ok(written);
    }
    let guard = tx
        .prepare_cached(&format!(
            "INSERT INTO label_state (src, uri, cid, val, neg, cts) VALUES ($1, $2, $3, $4, $5, $6)
             {STATE_GUARD}"
        ))
        .await?;
    let upsert = tx
        .prepare_cached(
            "INSERT INTO label (src, uri, cid, val, neg, cts) VALUES ($1, $2, $3, $4, false, $5)
             ON CONFLICT (src, uri, cid, val) DO UPDATE SET cts = excluded.cts, neg = false",
        )
        .await?;
    let negate = tx
        .prepare_cached("DELETE FROM label WHERE src = $1 AND uri = $2 AND cid = $3 AND val = $4")
        .await?;
    for label in labels {
        let cid = label.cid.as_deref().unwrap_or("");
        let neg = is_negation(label);
        let applied = tx
            .execute(
                &guard,
                &[&label.src, &label.uri, &cid, &label.val, &neg, &label.cts],
            )
            .await?
            == 1;
        if applied {
            if neg {
                tx.execute(&negate, &[&label.src, &label.uri, &cid, &label.val])
                    .await?;
            } else {
                tx.execute(
                    &upsert,
                    &[&label.src, &label.uri, &cid, &label.val, &label.cts],
                )
                .await?;
            }
        }
        written.count(label, applied);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_negation_wins_on_equal_cts_and_newer_cts_wins_otherwise() {
        let (t1, t2) = ("2024-01-01T00:00:00.000Z", "2024-01-02T00:00:00.000Z");
        assert_eq!(order((t2, false), (t1, true)), Ordering::Greater);
        assert_eq!(order((t1, false), (t1, true)), Ordering::Less);
        assert_eq!(order((t1, true), (t1, false)), Ordering::Greater);
        assert_eq!(order((t1, true), (t1, true)), Ordering::Equal);
        assert_eq!(order((t1, true), (t2, false)), Ordering::Less);
    }
}
