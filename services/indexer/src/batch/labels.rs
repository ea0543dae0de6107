//! Label entries as sets: the labels of several entries in two statements.
//!
//! Entry by entry ([`crate::labels`]), a label is upserted and a negation deletes its label, in
//! order; so a label key (src, uri, cid, val) ends as its last operation in the batch left it.
//! The batch keeps the last operation per key: one `DELETE ... USING unnest(...)` for the keys
//! that end negated, one `INSERT ... SELECT FROM unnest(...) ON CONFLICT DO UPDATE` for the keys
//! that end labelled (with the last label's `cts`). The keys of the two sets are disjoint, so
//! their order does not matter.

use std::collections::HashMap;
use std::marker::PhantomData;

use deadpool_postgres::Transaction;
use rsky_common::event::Label;

use crate::index::IndexError;
use crate::labels::LabelsWritten;

/// Writes batches of label entries (of labels borrowed for `'l`).
#[derive(Default)]
pub(crate) struct LabelWriter<'l>(PhantomData<&'l Label>);

/// (src, uri, cid, val).
type Key<'a> = (&'a str, &'a str, &'a str, &'a str);

impl LabelWriter<'_> {
    /// Writes the (valid) labels of `entries` (in stream order) inside `tx`; one result per
    /// entry, counted as entry by entry: every label added, every negation applied.
    pub(crate) async fn write(
        &self,
        tx: &Transaction<'_>,
        entries: &[&Vec<&Label>],
    ) -> Result<Vec<LabelsWritten>, IndexError> {
        let mut last: HashMap<Key<'_>, &Label> = HashMap::new();
        let mut written = Vec::with_capacity(entries.len());
        for labels in entries {
            let mut counts = LabelsWritten::default();
            for label in labels.iter() {
                let key = (
                    label.src.as_str(),
                    label.uri.as_str(),
                    label.cid.as_deref().unwrap_or(""),
                    label.val.as_str(),
                );
                last.insert(key, label);
                if label.neg.unwrap_or(false) {
                    counts.removed += 1;
                } else {
                    counts.added += 1;
                }
            }
            written.push(counts);
        }
        let mut keys: Vec<(Key<'_>, &Label)> = last.into_iter().collect();
        keys.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let (negated, added): (Vec<_>, Vec<_>) = keys
            .into_iter()
            .partition(|(_, label)| label.neg.unwrap_or(false));
        let columns = |rows: &[(Key<'_>, &Label)]| -> [Vec<String>; 4] {
            let mut cols: [Vec<String>; 4] = Default::default();
            for ((src, uri, cid, val), _) in rows {
                cols[0].push((*src).to_owned());
                cols[1].push((*uri).to_owned());
                cols[2].push((*cid).to_owned());
                cols[3].push((*val).to_owned());
            }
            cols
        };
        if !negated.is_empty() {
            let [src, uri, cid, val] = columns(&negated);
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
            let [src, uri, cid, val] = columns(&added);
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
