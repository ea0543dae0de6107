//! The backfiller's configuration: one `clap` derive, every setting a flag and an environment
//! variable. `backfiller --help` and the service's README list each with its default; a bad
//! value stops start-up with one line naming the variable, the value and what was expected.

use std::time::Duration;

pub use rsky_common::config::ConfigError;
use rsky_common::config::{
    at_least, boolean, default_consumer_name, millis_at_least, seconds_at_least, Renamed, Settings,
};
use rsky_common::pipeline::{PipelineSettings, WorkerSettings};
use rsky_common::streams::Streams;

/// The consumer group that every backfiller joins on `repo_backfill`.
pub const GROUP: &str = "repo_backfill_group";

/// How many `create` events go into one atomic pipeline.
pub const CHUNK_SIZE: usize = 500;

/// Everything the backfiller reads from its settings: every field a flag and an environment
/// variable (`backfiller --help`). `METRICS_ADDR` and `METRICS_PORT` are the runner's.
#[derive(Clone, Debug, PartialEq, clap::Args)]
pub struct Config {
    /// Redis, the stream names and their prefix, shared by every service.
    #[command(flatten)]
    pub pipeline: PipelineSettings,
    /// The stream worker's settings, shared with the indexer.
    #[command(flatten)]
    pub worker: WorkerSettings,
    /// This process's name in the consumer group [default: backfiller-{host}-{pid}-{random}:
    /// unique per process]
    #[arg(long, env = "BACKFILLER_CONSUMER", default_value_t = default_consumer_name("backfiller"), hide_default_value = true)]
    pub consumer: String,
    /// Repositories processed at the same time.
    #[arg(long, env = "BACKFILLER_CONCURRENCY", default_value = "50", value_parser = at_least(1usize))]
    pub concurrency: usize,
    /// Reading waits while `firehose_backfill` is this long.
    #[arg(long, env = "BACKFILLER_HIGH_WATER_MARK", default_value = "500000", value_parser = at_least(1u64))]
    pub high_water_mark: u64,
    /// The PLC directory that resolves `did:plc` DIDs.
    #[arg(long, env = "BACKFILLER_PLC_URL", default_value = "https://plc.directory", value_parser = http_url)]
    pub plc_url: String,
    /// Fetch `did:web` documents over plain HTTP (tests on loopback).
    #[arg(long, env = "BACKFILLER_DID_WEB_INSECURE", default_value = "false", value_parser = boolean, action = clap::ArgAction::Set)]
    pub did_web_insecure: bool,
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
}

impl Settings for Config {
    const RENAMED: &'static [Renamed] = WorkerSettings::RENAMED_BACKFILLER;
}

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
    /// The stream and key names, with this configuration's prefix.
    pub fn streams(&self) -> &Streams {
        &self.pipeline.streams
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
        assert_eq!(config.worker.max_deliveries, 5);
        assert_eq!(config.high_water_mark, 500_000);
        assert_eq!(config.did_cache_ttl, Duration::from_secs(24 * 3600));
        assert_eq!(config.worker.claim_idle, Duration::from_secs(300));
        assert_eq!(config.streams().repo_backfill, "repo_backfill");
        assert_eq!(config.streams().did_pds("did:plc:a"), "did:pds:did:plc:a");
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
    fn max_retries_r_is_still_read_as_r_plus_one_deliveries() {
        let config = config(&[("BACKFILLER_MAX_RETRIES", "3")]).unwrap();
        let policy = config.worker.retry_policy();
        // Deliveries 1..=3 are the first attempt and two retries; the fourth is the third retry,
        // after which the entry is dead-lettered.
        assert!(!policy.exhausted(3));
        assert!(policy.exhausted(4));
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
        let config = config(&[("REDIS_KEY_PREFIX", "t1:")]).unwrap();
        let keys = config.streams();
        assert_eq!(keys.firehose_backfill, "t1:firehose_backfill");
        assert_eq!(keys.repo_backfill_dlq, "t1:repo_backfill_dlq");
        assert_eq!(keys.did_key("did:web:a"), "t1:did:key:did:web:a");
    }
}
