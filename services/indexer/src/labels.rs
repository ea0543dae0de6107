//! The label indexer: `label_live` -> `label`.
//!
//! A label is keyed on (src, uri, cid, val), with `cid = ''` for a label on a whole subject. A
//! label is upserted; a negation (`neg: true`) deletes the label it negates. One entry's valid
//! labels are written in one transaction, in order, so a label and its later negation in the
//! same entry end with the label removed.

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
}

/// Writes `labels` (already validated) inside `tx` (the caller commits).
pub async fn index_labels(
    tx: &Transaction<'_>,
    labels: &[&Label],
) -> Result<LabelsWritten, DbError> {
    let mut written = LabelsWritten::default();
    if labels.is_empty() {
        return Ok(written);
    }
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
        if label.neg.unwrap_or(false) {
            tx.execute(&negate, &[&label.src, &label.uri, &cid, &label.val])
                .await?;
            written.removed += 1;
        } else {
            tx.execute(
                &upsert,
                &[&label.src, &label.uri, &cid, &label.val, &label.cts],
            )
            .await?;
            written.added += 1;
        }
    }
    Ok(written)
}
