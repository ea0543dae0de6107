//! Building `subscribeLabels` frames.

use rsky_atproto::firehose::{encode_label_frame, Label, LabelFrame, LabelsEvent};

use crate::firehose::ScriptError;
use crate::load::load_did;
use crate::log::Item;

/// The labeler DID that [`load_labels_frame`] labels as.
pub const LOAD_LABELER_DID: &str = "did:plc:labelerloadaaaaaaaaaaaaa";

/// Label values [`load_labels_frame`] cycles through.
const LOAD_LABEL_VALUES: [&str; 3] = ["spam", "porn", "!warn"];

/// Frame `seq` (from 1) of a steady label stream on `accounts` accounts named by
/// [`load_did`]: two labels on accounts `seq` and `seq + 1` (modulo `accounts`), and in every
/// third frame the negation of a label of frame `seq - 2`, so a consumer adds and removes labels.
///
/// ```
/// let frame = rsky_testkit::labels::load_labels_frame(3, 10).unwrap();
/// assert_eq!(frame.seq, Some(3));
/// ```
pub fn load_labels_frame(seq: i64, accounts: usize) -> Result<Item, ScriptError> {
    let account = |n: i64| load_did(n.unsigned_abs() as usize % accounts.max(1));
    let value = |n: i64| LOAD_LABEL_VALUES[n.unsigned_abs() as usize % LOAD_LABEL_VALUES.len()];
    let mut labels = vec![
        label(LOAD_LABELER_DID, &account(seq), value(seq), false),
        label(LOAD_LABELER_DID, &account(seq + 1), value(seq + 1), false),
    ];
    if seq % 3 == 0 {
        labels.push(label(
            LOAD_LABELER_DID,
            &account(seq - 2),
            value(seq - 2),
            true,
        ));
    }
    labels_frame(seq, labels)
}

/// A `#labels` frame with sequence number `seq`.
pub fn labels_frame(seq: i64, labels: Vec<Label>) -> Result<Item, ScriptError> {
    let bytes = encode_label_frame(&LabelFrame::Labels(LabelsEvent { seq, labels }))
        .map_err(|e| ScriptError::Encode(e.to_string()))?;
    Ok(Item::event(seq, bytes))
}

/// A label from `src` on `uri` with value `val` (negated when `neg`).
pub fn label(src: &str, uri: &str, val: &str, neg: bool) -> Label {
    Label {
        ver: Some(1),
        src: src.into(),
        uri: uri.into(),
        cid: None,
        val: val.into(),
        neg: neg.then_some(true),
        cts: rsky_common::time::now_rfc3339(),
        exp: None,
        sig: None,
    }
}
