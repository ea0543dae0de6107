//! Names of the Redis streams and keys that join the services.

/// Live firehose events, written by the ingester.
pub const FIREHOSE_LIVE: &str = "firehose_live";
/// Events of backfilled repositories, written by the backfiller.
pub const FIREHOSE_BACKFILL: &str = "firehose_backfill";
/// Repositories to backfill, written by the ingester's backfill mode.
pub const REPO_BACKFILL: &str = "repo_backfill";
/// Repositories whose backfill failed for good.
pub const REPO_BACKFILL_DLQ: &str = "repo_backfill_dlq";
/// Labels from labelers, written by the ingester's labeler mode.
pub const LABEL_LIVE: &str = "label_live";

/// The field of a `firehose_*` entry that holds a [`crate::event::StreamEvent`].
pub const EVENT_FIELD: &str = "event";
/// The field of a `repo_backfill` entry that holds a [`crate::event::BackfillEvent`].
pub const REPO_FIELD: &str = "repo";
/// The field of a `label_live` entry that holds a [`crate::event::LabelsEvent`].
pub const LABELS_FIELD: &str = "labels";

/// The key holding the last fully written `seq` of `stream` from `host`: `{stream}:cursor:{host}`.
pub fn cursor_key(stream: &str, host: &str) -> String {
    format!("{stream}:cursor:{host}")
}

/// The sequence number of events that did not come from a firehose (the backfiller's).
pub const BACKFILL_SEQ: i64 = -1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_key_joins_stream_and_host() {
        assert_eq!(
            cursor_key(FIREHOSE_LIVE, "bsky.network"),
            "firehose_live:cursor:bsky.network"
        );
    }
}
