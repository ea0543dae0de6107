//! Building `subscribeLabels` frames.

use rsky_atproto::firehose::{encode_label_frame, Label, LabelFrame, LabelsEvent};

use crate::firehose::ScriptError;
use crate::log::Item;

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
