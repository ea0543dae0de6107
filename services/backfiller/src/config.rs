//! The backfiller's configuration: one `clap` derive, every setting a flag and an environment
//! variable. `backfiller --help` and the service's README list each with its default; a bad
//! value stops start-up with one line naming the variable, the value and what was expected.

use std::time::Duration;

pub use rsky_common::config::ConfigError;
use rsky_common::config::{
    at_least, boolean, default_consumer_name, millis_at_least, seconds_at_least, Settings,
};
use rsky_common::streams::{Streams, PREFIX_ENV};
use rsky_common::worker::RetryPolicy;

/// The consumer group that every backfiller joins on `repo_backfill`.
pub const GROUP: &str = "repo_backfill_group";

/// How many `create` events go into one atomic pipeline.
pub const CHUNK_SIZE: usize = 500;

/// Everything the backfiller reads from its settings: every field a flag and an environment
/// variable (`backfiller --help`). `METRICS_ADDR` and `METRICS_PORT` are the runner's.
#[derive(Clone, Debug, PartialEq, clap::Args)]
pub struct Config {
    /// The Redis that holds the streams and the DID cache.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// This process's name in the consumer group [default: backfiller-{host}-{pid}-{random}:
    /// unique per process]
    #[arg(long, env = "BACKFILLER_CONSUMER", default_value_t = default_consumer_name("backfiller"), hide_default_value = true)]
    pub consumer: String,
    /// Repositories processed at the same time.
    #[arg(long, env = "BACKFILLER_CONCURRENCY", default_value = "50", value_parser = at_least(1usize))]
    pub concurrency: usize,
    /// Retries after the first failed attempt before dead-lettering.
    #[arg(long, env = "BACKFILLER_MAX_RETRIES", default_value = "3", value_parser = at_least(0u32))]
    pub max_retries: u32,
    /// Reading waits while `firehose_backfill` is this long.
    #[arg(long, env = "BACKFILLER_HIGH_WATER_MARK", default_value = "500000", value_parser = at_least(1usize))]
    pub high_water_mark: usize,
    /// The PLC directory that resolves `did:plc` DIDs.
    #[arg(long, env = "BACKFILLER_PLC_URL", default_value = "https://plc.directory", value_parser = http_url)]
    pub plc_url: String,
    /// Fetch `did:web` documents over plain HTTP (tests on loopback).
    #[arg(long, env = "BACKFILLER_DID_WEB_INSECURE", default_value = "false", value_parser = boolean, action = clap::ArgAction::Set)]
    pub did_web_insecure: bool,
    /// Prepended to every stream and key name (tests use their own).
    #[arg(long = "redis-key-prefix", env = PREFIX_ENV, default_value = "", hide_default_value = true)]
    pub key_prefix: String,
    /// The whole `getRepo` request, download included (ms).
    #[arg(long = "fetch-timeout-ms", env = "BACKFILLER_FETCH_TIMEOUT_MS", default_value = "120000", value_parser = millis_at_least(0))]
    pub fetch_timeout: Duration,
    /// The largest repository (getRepo body) read, in bytes; a larger one is dead-lettered.
    #[arg(long, env = "BACKFILLER_MAX_REPO_BYTES", default_value = "268435456", value_parser = at_least(1u64))]
    pub max_repo_bytes: u64,
    /// The largest DID document read, in bytes; a larger one is dead-lettered.
    #[arg(long, env = "BACKFILLER_MAX_DID_DOCUMENT_BYTES", default_value = "65536", value_parser = at_least(1u64))]
    pub max_did_document_bytes: u64,
    /// One DID document request (ms).
    #[arg(long = "resolve-timeout-ms", env = "BACKFILLER_RESOLVE_TIMEOUT_MS", default_value = "10000", value_parser = millis_at_least(0))]
    pub resolve_timeout: Duration,
    /// How long a resolved PDS and key stay cached (seconds).
    #[arg(long = "did-cache-ttl-seconds", env = "BACKFILLER_DID_CACHE_TTL_SECONDS", default_value = "86400", value_parser = seconds_at_least(1))]
    pub did_cache_ttl: Duration,
    /// Entries idle this long in another consumer are taken over (ms).
    #[arg(long = "reclaim-idle-ms", env = "BACKFILLER_RECLAIM_IDLE_MS", default_value = "300000", value_parser = millis_at_least(0))]
    pub reclaim_idle: Duration,
    /// The wait before the first retry; it doubles each retry (ms).
    #[arg(long = "retry-backoff-ms", env = "BACKFILLER_RETRY_BACKOFF_MS", default_value = "1000", value_parser = millis_at_least(0))]
    pub retry_backoff: Duration,
    /// The longest wait between retries (ms).
    #[arg(long = "retry-backoff-max-ms", env = "BACKFILLER_RETRY_BACKOFF_MAX_MS", default_value = "60000", value_parser = millis_at_least(0))]
    pub retry_backoff_max: Duration,
    /// How long one read waits for new entries (ms).
    #[arg(long = "read-block-ms", env = "BACKFILLER_READ_BLOCK_MS", default_value = "5000", value_parser = millis_at_least(0))]
    pub read_block: Duration,
    /// How often a full output stream is checked again (ms).
    #[arg(long = "backpressure-poll-ms", env = "BACKFILLER_BACKPRESSURE_POLL_MS", default_value = "1000", value_parser = millis_at_least(0))]
    pub backpressure_poll: Duration,
    /// How often the input stream is trimmed (ms).
    #[arg(long = "trim-interval-ms", env = "BACKFILLER_TRIM_INTERVAL_MS", default_value = "60000", value_parser = millis_at_least(0))]
    pub trim_interval: Duration,
    /// How often the stream-length gauges are sampled (ms).
    #[arg(long = "sample-interval-ms", env = "BACKFILLER_SAMPLE_INTERVAL_MS", default_value = "10000", value_parser = millis_at_least(0))]
    pub sample_interval: Duration,
}

impl Settings for Config {}

/// The backfiller's `/metrics` port unless `METRICS_PORT` says otherwise.
pub const DEFAULT_METRICS_PORT: u16 = 9090;

fn http_url(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.starts_with("http://") || value.starts_with("https://") {
        Ok(value.trim_end_matches('/').to_owned())
    } else {
        Err("expected an http:// or https:// URL such as https://plc.directory".to_owned())
    }
}

impl Config {
    /// The shared retry rule: `BACKFILLER_MAX_RETRIES` retries after the first attempt are
    /// `max_retries + 1` deliveries.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_deliveries: u64::from(self.max_retries) + 1,
            backoff: self.retry_backoff,
            backoff_max: self.retry_backoff_max,
        }
    }

    /// The stream and key names, with this configuration's prefix.
    pub fn keys(&self) -> Keys {
        Keys::new(&self.key_prefix)
    }
}

/// The Redis names the backfiller reads and writes, each with the configured prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    streams: Streams,
    /// The input stream (`repo_backfill`).
    pub repo_backfill: String,
    /// The output stream (`firehose_backfill`).
    pub firehose_backfill: String,
    /// The dead-letter stream (`repo_backfill_dlq`).
    pub dead_letter: String,
}

impl Keys {
    /// The names under `prefix` (empty for the production names).
    pub fn new(prefix: &str) -> Self {
        let streams = Streams::new(prefix);
        Keys {
            repo_backfill: streams.repo_backfill.clone(),
            firehose_backfill: streams.firehose_backfill.clone(),
            dead_letter: streams.repo_backfill_dlq.clone(),
            streams,
        }
    }

    /// The cached PDS endpoint of `did`: `did:pds:{did}`.
    pub fn did_pds(&self, did: &str) -> String {
        self.streams.key(&format!("did:pds:{did}"))
    }

    /// The cached signing key (`did:key:...`) of `did`: `did:key:{did}`.
    pub fn did_key(&self, did: &str) -> String {
        self.streams.key(&format!("did:key:{did}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_pairs(vars.iter().copied())
    }

    #[test]
    fn defaults_follow_the_spec() {
        let config = config(&[]).unwrap();
        assert_eq!(config.concurrency, 50);
        assert_eq!(config.max_retries, 3);
        assert_eq!(config.high_water_mark, 500_000);
        assert_eq!(config.did_cache_ttl, Duration::from_secs(24 * 3600));
        assert_eq!(config.reclaim_idle, Duration::from_secs(300));
        assert_eq!(config.keys().repo_backfill, "repo_backfill");
        assert_eq!(config.keys().did_pds("did:plc:a"), "did:pds:did:plc:a");
    }

    #[test]
    fn without_a_consumer_name_a_backfiller_takes_the_unique_default() {
        // clap computes the default once per process; uniqueness between processes (the random
        // suffix) is tested with `default_consumer_name` in rsky-pipeline-common.
        let a = config(&[]).unwrap();
        assert!(a.consumer.starts_with("backfiller-"), "{}", a.consumer);
        let pid = format!("-{}-", std::process::id());
        assert!(a.consumer.contains(&pid), "{}", a.consumer);
        let named = config(&[("BACKFILLER_CONSUMER", "b1")]).unwrap();
        assert_eq!(named.consumer, "b1");
    }

    #[test]
    fn a_bad_value_names_the_variable_and_what_was_expected() {
        let err = config(&[("BACKFILLER_CONCURRENCY", "lots")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid BACKFILLER_CONCURRENCY="lots": expected a non-negative whole number"#
        );
        let err = config(&[("BACKFILLER_CONCURRENCY", "0")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid BACKFILLER_CONCURRENCY="0": must be at least 1"#
        );
        let err = config(&[("BACKFILLER_PLC_URL", "plc.directory")]).unwrap_err();
        assert_eq!(err.var, "BACKFILLER_PLC_URL");
    }

    #[test]
    fn the_prefix_applies_to_streams_and_cache_keys() {
        let keys = config(&[("REDIS_KEY_PREFIX", "t1:")]).unwrap().keys();
        assert_eq!(keys.firehose_backfill, "t1:firehose_backfill");
        assert_eq!(keys.dead_letter, "t1:repo_backfill_dlq");
        assert_eq!(keys.did_key("did:web:a"), "t1:did:key:did:web:a");
    }
}
