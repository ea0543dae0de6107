//! The indexer's configuration, read from the environment in one place.
//!
//! Every variable, its default and its meaning are listed in the service's README. A bad value
//! is one error line naming the variable, its value and what was expected.

use std::time::Duration;

use rsky_common::config::{choice_or, list_or, string_or, var_at_least, ConfigError, Env};
use rsky_common::streams::{Streams, FIREHOSE_BACKFILL, FIREHOSE_LIVE, LABEL_LIVE, PREFIX_ENV};

/// Which streams an indexer process consumes (`INDEXER_MODE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The firehose streams and the label stream.
    All,
    /// Only the firehose streams (`INDEXER_STREAMS`).
    Stream,
    /// Only the label stream.
    Label,
}

/// Everything the indexer needs to run.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `REDIS_URL`.
    pub redis_url: String,
    /// `DATABASE_URL` (a libpq-style URL or key=value string).
    pub database_url: String,
    /// `REDIS_KEY_PREFIX`: prepended to every stream name (empty in production).
    pub prefix: String,
    /// `INDEXER_STREAMS`: the firehose streams, without the prefix.
    pub streams: Vec<String>,
    /// `INDEXER_LABEL_STREAM`: the label stream, without the prefix.
    pub label_stream: String,
    /// `INDEXER_GROUP`: the consumer group on the firehose streams.
    pub group: String,
    /// `INDEXER_LABEL_GROUP`: the consumer group on the label stream.
    pub label_group: String,
    /// `INDEXER_CONSUMER`: this process's consumer name within the groups.
    pub consumer: String,
    /// `INDEXER_MODE`.
    pub mode: Mode,
    /// `INDEXER_CONCURRENCY`: events indexed at the same time, over all streams.
    pub concurrency: usize,
    /// `INDEXER_BATCH_SIZE`: entries read per XREADGROUP.
    pub batch_size: usize,
    /// `DB_POOL_MAX_SIZE`: database connections at most.
    pub db_pool_max_size: usize,
    /// `INDEXER_MAX_DELIVERIES`: deliveries after which a failing entry is dead-lettered.
    pub max_deliveries: u64,
    /// `INDEXER_DEAD_LETTER_SUFFIX`: the dead-letter stream of `s` is `s` + this suffix.
    pub dead_letter_suffix: String,
    /// `INDEXER_BLOCK_MS`: how long one read waits for new entries.
    pub block: Duration,
    /// `INDEXER_CLAIM_IDLE_MS`: idle time after which another consumer's pending entry is claimed.
    pub claim_min_idle: Duration,
    /// `INDEXER_CLAIM_INTERVAL_MS`: how often stale entries are claimed.
    pub claim_interval: Duration,
    /// `INDEXER_TRIM_INTERVAL_MS`: how often streams are safely trimmed.
    pub trim_interval: Duration,
    /// `INDEXER_SAMPLE_INTERVAL_MS`: how often pending counts and pool gauges are sampled.
    pub sample_interval: Duration,
    /// `INDEXER_RETRY_BACKOFF_MS`: first pause after a failed batch (doubles up to 30 s).
    pub retry_backoff: Duration,
}

/// The default metrics port (`METRICS_PORT` overrides it).
pub const DEFAULT_METRICS_PORT: u16 = 9090;

fn millis(env: &Env, var: &str, default: u64, min: u64) -> Result<Duration, ConfigError> {
    var_at_least(env, var, default, min).map(Duration::from_millis)
}

impl Config {
    /// Reads the configuration from `env`.
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        let mode =
            match choice_or(env, "INDEXER_MODE", "all", &["all", "stream", "label"])?.as_str() {
                "stream" => Mode::Stream,
                "label" => Mode::Label,
                _ => Mode::All,
            };
        let consumer = match env.get("INDEXER_CONSUMER") {
            Some(name) => name.trim().to_owned(),
            None => default_consumer_name(),
        };
        Ok(Config {
            redis_url: string_or(env, "REDIS_URL", "redis://127.0.0.1:6379"),
            database_url: string_or(
                env,
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/bsky",
            ),
            prefix: string_or(env, PREFIX_ENV, ""),
            streams: list_or(env, "INDEXER_STREAMS", &[FIREHOSE_LIVE, FIREHOSE_BACKFILL])?,
            label_stream: string_or(env, "INDEXER_LABEL_STREAM", LABEL_LIVE),
            group: string_or(env, "INDEXER_GROUP", "firehose_group"),
            label_group: string_or(env, "INDEXER_LABEL_GROUP", "label_group"),
            consumer,
            mode,
            concurrency: var_at_least(env, "INDEXER_CONCURRENCY", 32usize, 1)?,
            batch_size: var_at_least(env, "INDEXER_BATCH_SIZE", 500usize, 1)?,
            db_pool_max_size: var_at_least(env, "DB_POOL_MAX_SIZE", 20usize, 1)?,
            max_deliveries: var_at_least(env, "INDEXER_MAX_DELIVERIES", 5u64, 1)?,
            dead_letter_suffix: string_or(env, "INDEXER_DEAD_LETTER_SUFFIX", "_dlq"),
            block: millis(env, "INDEXER_BLOCK_MS", 1000, 1)?,
            claim_min_idle: millis(env, "INDEXER_CLAIM_IDLE_MS", 300_000, 1)?,
            claim_interval: millis(env, "INDEXER_CLAIM_INTERVAL_MS", 30_000, 1)?,
            trim_interval: millis(env, "INDEXER_TRIM_INTERVAL_MS", 60_000, 1)?,
            sample_interval: millis(env, "INDEXER_SAMPLE_INTERVAL_MS", 5_000, 1)?,
            retry_backoff: millis(env, "INDEXER_RETRY_BACKOFF_MS", 200, 1)?,
        })
    }

    /// The stream names this process consumes, with the prefix, and the group of each.
    pub fn consumed_streams(&self) -> Vec<(String, String, StreamKind)> {
        let names = Streams::new(self.prefix.clone());
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
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
        })
        .map(|host| format!("indexer-{host}"))
        .unwrap_or_else(|| format!("indexer-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_original_indexer() {
        let config = Config::from_env(&Env::from_pairs([("INDEXER_CONSUMER", "c1")])).unwrap();
        assert_eq!(config.streams, ["firehose_live", "firehose_backfill"]);
        assert_eq!(config.group, "firehose_group");
        assert_eq!(config.batch_size, 500);
        assert_eq!(config.mode, Mode::All);
        assert_eq!(config.consumer, "c1");
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
        let config = Config::from_env(&Env::from_pairs([
            ("REDIS_KEY_PREFIX", "t7:"),
            ("INDEXER_MODE", "stream"),
        ]))
        .unwrap();
        let streams = config.consumed_streams();
        assert_eq!(streams[0].0, "t7:firehose_live");
        assert_eq!(streams.len(), 2);
        assert_eq!(
            config.dead_letter_stream(&streams[0].0),
            "t7:firehose_live_dlq"
        );
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let err = Config::from_env(&Env::from_pairs([("INDEXER_BATCH_SIZE", "0")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid INDEXER_BATCH_SIZE="0": must be at least 1"#
        );
        let err = Config::from_env(&Env::from_pairs([("INDEXER_MODE", "both")])).unwrap_err();
        assert!(
            err.to_string().starts_with("invalid INDEXER_MODE=\"both\""),
            "{err}"
        );
    }
}
