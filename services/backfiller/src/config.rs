//! The backfiller's configuration, read from the environment in one place.
//!
//! Every variable, its default and its meaning is listed in the service's README. A bad value
//! stops start-up with one line naming the variable, the value and what was expected.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use rsky_common::streams::{Streams, PREFIX_ENV};

/// The consumer group that every backfiller joins on `repo_backfill`.
pub const GROUP: &str = "repo_backfill_group";

/// How many `create` events go into one atomic pipeline.
pub const CHUNK_SIZE: usize = 500;

/// A variable that is set to something the backfiller cannot use.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{var}={value:?} is invalid: {expected}")]
pub struct ConfigError {
    /// The environment variable.
    pub var: &'static str,
    /// Its value.
    pub value: String,
    /// What would have been accepted.
    pub expected: &'static str,
}

/// Everything the backfiller reads from its environment.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `REDIS_URL`: the Redis that holds the streams and the DID cache.
    pub redis_url: String,
    /// `BACKFILLER_CONSUMER`: this process's name in the consumer group.
    pub consumer: String,
    /// `BACKFILLER_CONCURRENCY`: repositories processed at the same time.
    pub concurrency: usize,
    /// `BACKFILLER_MAX_RETRIES`: retries after the first failed attempt before dead-lettering.
    pub max_retries: u32,
    /// `BACKFILLER_HIGH_WATER_MARK`: reading waits while `firehose_backfill` is this long.
    pub high_water_mark: usize,
    /// `BACKFILLER_PLC_URL`: the PLC directory that resolves `did:plc` DIDs.
    pub plc_url: String,
    /// `BACKFILLER_DID_WEB_INSECURE`: fetch `did:web` documents over plain HTTP (tests on loopback).
    pub did_web_insecure: bool,
    /// `REDIS_KEY_PREFIX`: prepended to every stream and key name (tests use their own).
    pub key_prefix: String,
    /// `METRICS_ADDR` and `METRICS_PORT`: where `/metrics` listens.
    pub metrics_addr: SocketAddr,
    /// `BACKFILLER_FETCH_TIMEOUT_MS`: the whole `getRepo` request, download included.
    pub fetch_timeout: Duration,
    /// `BACKFILLER_RESOLVE_TIMEOUT_MS`: one DID document request.
    pub resolve_timeout: Duration,
    /// `BACKFILLER_DID_CACHE_TTL_SECONDS`: how long a resolved PDS and key stay cached.
    pub did_cache_ttl: Duration,
    /// `BACKFILLER_RECLAIM_IDLE_MS`: entries idle this long in another consumer are taken over.
    pub reclaim_idle: Duration,
    /// `BACKFILLER_RETRY_BACKOFF_MS`: the wait before the first retry; it doubles each retry.
    pub retry_backoff: Duration,
    /// `BACKFILLER_RETRY_BACKOFF_MAX_MS`: the longest wait between retries.
    pub retry_backoff_max: Duration,
    /// `BACKFILLER_READ_BLOCK_MS`: how long one read waits for new entries.
    pub read_block: Duration,
    /// `BACKFILLER_BACKPRESSURE_POLL_MS`: how often a full output stream is checked again.
    pub backpressure_poll: Duration,
    /// `BACKFILLER_TRIM_INTERVAL_MS`: how often the input stream is trimmed.
    pub trim_interval: Duration,
    /// `BACKFILLER_SAMPLE_INTERVAL_MS`: how often the stream-length gauges are sampled.
    pub sample_interval: Duration,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|var| std::env::var(var).ok())
    }

    /// Reads variables through `lookup` (tests pass a map). Unset and empty variables take
    /// their defaults.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let metrics_ip = env.parse("METRICS_ADDR", IpAddr::V4(Ipv4Addr::UNSPECIFIED), |v| {
            v.parse::<IpAddr>()
                .map_err(|_| "expected an IP address such as 0.0.0.0, 127.0.0.1 or ::")
        })?;
        let metrics_port = env.parse("METRICS_PORT", 9090u16, |v| match v.parse::<u16>() {
            Ok(0) | Err(_) => Err("expected a port number from 1 to 65535"),
            Ok(port) => Ok(port),
        })?;
        let plc_url = env.parse(
            "BACKFILLER_PLC_URL",
            "https://plc.directory".to_owned(),
            |v| {
                if v.starts_with("http://") || v.starts_with("https://") {
                    Ok(v.trim_end_matches('/').to_owned())
                } else {
                    Err("expected an http:// or https:// URL such as https://plc.directory")
                }
            },
        )?;
        Ok(Config {
            redis_url: env.string("REDIS_URL", "redis://127.0.0.1:6379"),
            consumer: env.string("BACKFILLER_CONSUMER", "backfiller"),
            concurrency: env.parse("BACKFILLER_CONCURRENCY", 50, positive)?,
            max_retries: env.parse("BACKFILLER_MAX_RETRIES", 3, |v| {
                v.parse::<u32>()
                    .map_err(|_| "expected a whole number, 0 or more")
            })?,
            high_water_mark: env.parse("BACKFILLER_HIGH_WATER_MARK", 500_000, positive)?,
            plc_url,
            did_web_insecure: env.parse("BACKFILLER_DID_WEB_INSECURE", false, boolean)?,
            key_prefix: env.string(PREFIX_ENV, ""),
            metrics_addr: SocketAddr::new(metrics_ip, metrics_port),
            fetch_timeout: env.millis("BACKFILLER_FETCH_TIMEOUT_MS", 120_000)?,
            resolve_timeout: env.millis("BACKFILLER_RESOLVE_TIMEOUT_MS", 10_000)?,
            did_cache_ttl: Duration::from_secs(env.parse(
                "BACKFILLER_DID_CACHE_TTL_SECONDS",
                86_400u64,
                |v| positive(v).map(|n: usize| n as u64),
            )?),
            reclaim_idle: env.millis("BACKFILLER_RECLAIM_IDLE_MS", 300_000)?,
            retry_backoff: env.millis("BACKFILLER_RETRY_BACKOFF_MS", 1_000)?,
            retry_backoff_max: env.millis("BACKFILLER_RETRY_BACKOFF_MAX_MS", 60_000)?,
            read_block: env.millis("BACKFILLER_READ_BLOCK_MS", 5_000)?,
            backpressure_poll: env.millis("BACKFILLER_BACKPRESSURE_POLL_MS", 1_000)?,
            trim_interval: env.millis("BACKFILLER_TRIM_INTERVAL_MS", 60_000)?,
            sample_interval: env.millis("BACKFILLER_SAMPLE_INTERVAL_MS", 10_000)?,
        })
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

struct Env<'a, F>(&'a F);

impl<F: Fn(&str) -> Option<String>> Env<'_, F> {
    fn get(&self, var: &str) -> Option<String> {
        (self.0)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn string(&self, var: &str, default: &str) -> String {
        self.get(var).unwrap_or_else(|| default.to_owned())
    }

    fn parse<T>(
        &self,
        var: &'static str,
        default: T,
        parse: impl Fn(&str) -> Result<T, &'static str>,
    ) -> Result<T, ConfigError> {
        match self.get(var) {
            None => Ok(default),
            Some(value) => parse(&value).map_err(|expected| ConfigError {
                var,
                value,
                expected,
            }),
        }
    }

    fn millis(&self, var: &'static str, default: u64) -> Result<Duration, ConfigError> {
        self.parse(var, default, |v| {
            v.parse::<u64>()
                .map_err(|_| "expected a whole number of milliseconds")
        })
        .map(Duration::from_millis)
    }
}

fn positive(v: &str) -> Result<usize, &'static str> {
    match v.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("expected a whole number, 1 or more"),
    }
}

fn boolean(v: &str) -> Result<bool, &'static str> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("expected true or false"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|var| map.get(var).cloned())
    }

    #[test]
    fn defaults_follow_the_spec() {
        let config = config(&[]).unwrap();
        assert_eq!(config.concurrency, 50);
        assert_eq!(config.max_retries, 3);
        assert_eq!(config.high_water_mark, 500_000);
        assert_eq!(config.metrics_addr.port(), 9090);
        assert_eq!(config.did_cache_ttl, Duration::from_secs(24 * 3600));
        assert_eq!(config.reclaim_idle, Duration::from_secs(300));
        assert_eq!(config.keys().repo_backfill, "repo_backfill");
        assert_eq!(config.keys().did_pds("did:plc:a"), "did:pds:did:plc:a");
    }

    #[test]
    fn a_bad_value_names_the_variable_and_what_was_expected() {
        let err = config(&[("BACKFILLER_CONCURRENCY", "lots")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "BACKFILLER_CONCURRENCY=\"lots\" is invalid: expected a whole number, 1 or more"
        );
        let err = config(&[("METRICS_PORT", "0")]).unwrap_err();
        assert_eq!(err.var, "METRICS_PORT");
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
