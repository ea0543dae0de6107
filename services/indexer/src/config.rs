//! The indexer's configuration: one `clap` derive, every setting a flag and an environment
//! variable. `indexer --help` and the service's README list each with its default; a bad value
//! is one error line naming the variable, its value and what was expected.

use std::time::Duration;

use rsky_common::config::{at_least, list, millis_at_least, seconds_at_least, Renamed, Settings};
use rsky_common::pipeline::{PipelineSettings, WorkerSettings};
use rsky_common::streams::LABEL_LIVE;

/// Which streams an indexer process consumes (`INDEXER_MODE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// The firehose streams and the label stream.
    All,
    /// Only the firehose streams (`INDEXER_STREAMS`).
    Stream,
    /// Only the label stream.
    Label,
}

/// Everything the indexer needs to run: every field a flag and an environment variable
/// (`indexer --help`).
#[derive(Clone, Debug, PartialEq, clap::Args)]
pub struct Config {
    /// Redis, the stream names and their prefix, shared by every service.
    #[command(flatten)]
    pub pipeline: PipelineSettings,
    /// The stream workers' settings, shared with the backfiller.
    #[command(flatten)]
    pub worker: WorkerSettings,
    /// The PostgreSQL database (a libpq-style URL or key=value string).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/bsky"
    )]
    pub database_url: String,
    /// The firehose streams, without the prefix (comma-separated).
    #[arg(long, env = "INDEXER_STREAMS", default_value = "firehose_live,firehose_backfill", value_parser = list)]
    pub streams: ::std::vec::Vec<String>,
    /// The label stream, without the prefix.
    #[arg(long, env = "INDEXER_LABEL_STREAM", default_value = LABEL_LIVE)]
    pub label_stream: String,
    /// The consumer group on the firehose streams.
    #[arg(long, env = "INDEXER_GROUP", default_value = "firehose_group")]
    pub group: String,
    /// The consumer group on the label stream.
    #[arg(long, env = "INDEXER_LABEL_GROUP", default_value = "label_group")]
    pub label_group: String,
    /// This process's consumer name within the groups (default `indexer-{hostname}`).
    #[arg(long, env = "INDEXER_CONSUMER", default_value_t = default_consumer_name())]
    pub consumer: String,
    /// Which streams this process consumes.
    #[arg(
        long,
        env = "INDEXER_MODE",
        value_enum,
        default_value = "all",
        ignore_case = true
    )]
    pub mode: Mode,
    /// Per-event write path: events in flight per stream worker.
    #[arg(long, env = "INDEXER_CONCURRENCY", default_value = "32", value_parser = at_least(1usize))]
    pub concurrency: usize,
    /// Entries read per XREADGROUP.
    #[arg(long, env = "INDEXER_BATCH_SIZE", default_value = "500", value_parser = at_least(1usize))]
    pub batch_size: usize,
    /// Database connections at most.
    #[arg(long, env = "DB_POOL_MAX_SIZE", default_value = "20", value_parser = at_least(1usize))]
    pub db_pool_max_size: usize,
    /// The dead-letter stream of `s` is `s` + this suffix.
    #[arg(long, env = "INDEXER_DEAD_LETTER_SUFFIX", default_value = "_dlq")]
    pub dead_letter_suffix: String,
    /// How a read batch is written: `batched` (one transaction of set-based statements per
    /// batch) or `per-event` (one transaction per event, `INDEXER_CONCURRENCY` at a time).
    #[arg(
        long,
        env = "INDEXER_WRITE_PATH",
        value_enum,
        default_value = "batched",
        ignore_case = true
    )]
    pub write_path: WritePathSetting,
    /// `statement_timeout` of every database connection (ms; 0: none).
    #[arg(long = "db-statement-timeout-ms", env = "DB_STATEMENT_TIMEOUT_MS", default_value = "30000", value_parser = millis_at_least(0))]
    pub db_statement_timeout: Duration,
    /// `lock_timeout` of every database connection (ms; 0: none).
    #[arg(long = "db-lock-timeout-ms", env = "DB_LOCK_TIMEOUT_MS", default_value = "10000", value_parser = millis_at_least(0))]
    pub db_lock_timeout: Duration,
    /// Idle time before TCP keepalive probes on database connections (s).
    #[arg(long = "db-keepalive-idle-s", env = "DB_KEEPALIVE_IDLE_S", default_value = "30", value_parser = seconds_at_least(1))]
    pub db_keepalive_idle: Duration,
}

/// `INDEXER_WRITE_PATH`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum WritePathSetting {
    /// A read batch in one transaction of set-based statements (poison isolated by splitting).
    Batched,
    /// One transaction per event (the original path; kept for comparison).
    PerEvent,
}

impl Settings for Config {
    const RENAMED: &'static [Renamed] = WorkerSettings::RENAMED_INDEXER;
}

/// The default metrics port (`METRICS_PORT` overrides it).
pub const DEFAULT_METRICS_PORT: u16 = 9090;

impl Config {
    /// The stream names this process consumes, with the prefix, and the group of each.
    pub fn consumed_streams(&self) -> Vec<(String, String, StreamKind)> {
        let names = &self.pipeline.streams;
        let mut out = Vec::new();
        if self.mode != Mode::Label {
            for stream in &self.streams {
                out.push((names.key(stream), self.group.clone(), StreamKind::Firehose));
            }
        }
        if self.mode != Mode::Stream {
            out.push((
                names.key(&self.label_stream),
                self.label_group.clone(),
                StreamKind::Labels,
            ));
        }
        out
    }

    /// The database session settings of every connection.
    pub fn db_session(&self) -> crate::db::Session {
        crate::db::Session {
            statement_timeout: self.db_statement_timeout,
            lock_timeout: self.db_lock_timeout,
            keepalive_idle: self.db_keepalive_idle,
        }
    }

    /// The dead-letter stream of `stream` (already prefixed).
    pub fn dead_letter_stream(&self, stream: &str) -> String {
        format!("{stream}{}", self.dead_letter_suffix)
    }
}

/// What a stream carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamKind {
    /// [`rsky_common::event::StreamEvent`]s under the field `event`.
    Firehose,
    /// [`rsky_common::event::LabelsEvent`]s under the field `labels`.
    Labels,
}

/// `indexer-{hostname}` (stable across restarts of one host or container, so a restarted
/// process picks up its own pending entries), or `indexer-{pid}` without a hostname.
fn default_consumer_name() -> String {
    rsky_common::config::hostname()
        .map(|host| format!("indexer-{host}"))
        .unwrap_or_else(|| format!("indexer-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_original_indexer() {
        let config = Config::from_pairs([("INDEXER_CONSUMER", "c1")]).unwrap();
        assert_eq!(config.streams, ["firehose_live", "firehose_backfill"]);
        assert_eq!(config.group, "firehose_group");
        assert_eq!(config.batch_size, 500);
        assert_eq!(config.mode, Mode::All);
        assert_eq!(config.consumer, "c1");
        assert_eq!(config.write_path, WritePathSetting::Batched);
        assert_eq!(config.db_statement_timeout, Duration::from_secs(30));
        assert_eq!(config.db_lock_timeout, Duration::from_secs(10));
        assert_eq!(config.db_keepalive_idle, Duration::from_secs(30));
        let streams: Vec<String> = config
            .consumed_streams()
            .into_iter()
            .map(|(s, _, _)| s)
            .collect();
        assert_eq!(
            streams,
            ["firehose_live", "firehose_backfill", "label_live"]
        );
    }

    #[test]
    fn the_prefix_applies_to_every_consumed_stream_and_its_dead_letters() {
        let config =
            Config::from_pairs([("REDIS_KEY_PREFIX", "t7:"), ("INDEXER_MODE", "stream")]).unwrap();
        let streams = config.consumed_streams();
        assert_eq!(streams[0].0, "t7:firehose_live");
        assert_eq!(streams.len(), 2);
        assert_eq!(
            config.dead_letter_stream(&streams[0].0),
            "t7:firehose_live_dlq"
        );
    }

    #[test]
    fn the_old_worker_variables_are_still_read() {
        let config = Config::from_pairs([
            ("INDEXER_BLOCK_MS", "70"),
            ("INDEXER_CLAIM_IDLE_MS", "80"),
            ("INDEXER_MAX_DELIVERIES", "9"),
        ])
        .unwrap();
        assert_eq!(config.worker.block, Duration::from_millis(70));
        assert_eq!(config.worker.claim_idle, Duration::from_millis(80));
        assert_eq!(config.worker.max_deliveries, 9);
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let err = Config::from_pairs([("INDEXER_BATCH_SIZE", "0")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid INDEXER_BATCH_SIZE="0": must be at least 1"#
        );
        let err = Config::from_pairs([("INDEXER_MODE", "both")]).unwrap_err();
        assert!(
            err.to_string().starts_with("invalid INDEXER_MODE=\"both\""),
            "{err}"
        );
    }
}
