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

/// The environment variable that holds the prefix of every stream and key name (default empty).
pub const PREFIX_ENV: &str = "REDIS_KEY_PREFIX";

/// The stream and key names one deployment uses: the standard names, each behind a prefix.
///
/// The prefix is empty in production, which keeps the names wire-compatible with the original
/// services. Tests give each test its own prefix so that tests sharing one Redis never see each
/// other's entries, and the ingester, backfiller and indexer of one test agree on the names.
///
/// ```
/// use rsky_common::streams::Streams;
///
/// let streams = Streams::new("test42:");
/// assert_eq!(streams.firehose_live, "test42:firehose_live");
/// assert_eq!(streams.cursor_key(&streams.firehose_live, "relay.local"), "test42:firehose_live:cursor:relay.local");
/// assert_eq!(Streams::default().firehose_live, "firehose_live");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Streams {
    /// The prefix every name below starts with.
    pub prefix: String,
    /// Live firehose events.
    pub firehose_live: String,
    /// Events of backfilled repositories.
    pub firehose_backfill: String,
    /// Repositories to backfill.
    pub repo_backfill: String,
    /// Repositories whose backfill failed for good.
    pub repo_backfill_dlq: String,
    /// Labels from labelers.
    pub label_live: String,
}

impl Streams {
    /// The names under `prefix` (pass `""` for the standard names).
    pub fn new(prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        let name = |base: &str| format!("{prefix}{base}");
        Streams {
            firehose_live: name(FIREHOSE_LIVE),
            firehose_backfill: name(FIREHOSE_BACKFILL),
            repo_backfill: name(REPO_BACKFILL),
            repo_backfill_dlq: name(REPO_BACKFILL_DLQ),
            label_live: name(LABEL_LIVE),
            prefix,
        }
    }

    /// The cursor key of `stream` (a name from this struct, so already prefixed) for `host`.
    pub fn cursor_key(&self, stream: &str, host: &str) -> String {
        cursor_key(stream, host)
    }

    /// Any other key of this deployment (caches, locks...), prefixed like the streams.
    pub fn key(&self, base: &str) -> String {
        format!("{}{base}", self.prefix)
    }

    /// The backfiller's cached PDS endpoint of `did`: `did:pds:{did}`.
    pub fn did_pds(&self, did: &str) -> String {
        self.key(&format!("did:pds:{did}"))
    }

    /// The backfiller's cached signing key (`did:key:...`) of `did`: `did:key:{did}`.
    pub fn did_key(&self, did: &str) -> String {
        self.key(&format!("did:key:{did}"))
    }
}

impl Default for Streams {
    fn default() -> Self {
        Streams::new("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_prefix_keeps_the_original_names() {
        let streams = Streams::default();
        assert_eq!(
            [
                streams.firehose_live.as_str(),
                &streams.firehose_backfill,
                &streams.repo_backfill,
                &streams.repo_backfill_dlq,
                &streams.label_live
            ],
            [
                FIREHOSE_LIVE,
                FIREHOSE_BACKFILL,
                REPO_BACKFILL,
                REPO_BACKFILL_DLQ,
                LABEL_LIVE
            ]
        );
    }

    #[test]
    fn prefix_applies_to_streams_cursors_and_other_keys() {
        let streams = Streams::new("t1:");
        assert_eq!(streams.label_live, "t1:label_live");
        assert_eq!(
            streams.cursor_key(&streams.repo_backfill, "pds.local"),
            "t1:repo_backfill:cursor:pds.local"
        );
        assert_eq!(streams.key("did:pds:did:plc:a"), "t1:did:pds:did:plc:a");
    }

    #[test]
    fn cursor_key_joins_stream_and_host() {
        assert_eq!(
            cursor_key(FIREHOSE_LIVE, "bsky.network"),
            "firehose_live:cursor:bsky.network"
        );
    }
}
