//! The ingester's configuration, read from the environment in one place.
//!
//! Every variable, its default and its meaning are listed in the service's README.

use std::time::Duration;

use rsky_common::config::{choice_or, list_or, string_or, var_at_least, ConfigError, Env};
use rsky_common::streams::{Streams, PREFIX_ENV};

/// Which parts of the ingester run (`INGESTER_MODE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Firehose, plus listRepos backfill, plus labelers when `INGESTER_LABELER_HOSTS` is set.
    All,
    /// `subscribeRepos` into `firehose_live` only.
    Firehose,
    /// `listRepos` into `repo_backfill` only.
    Backfill,
    /// `subscribeLabels` into `label_live` only.
    Labeler,
}

impl Mode {
    /// Whether the firehose runs.
    pub fn firehose(self) -> bool {
        matches!(self, Mode::All | Mode::Firehose)
    }

    /// Whether listRepos backfill runs.
    pub fn backfill(self) -> bool {
        matches!(self, Mode::All | Mode::Backfill)
    }

    /// Whether labelers are followed.
    pub fn labeler(self) -> bool {
        matches!(self, Mode::All | Mode::Labeler)
    }
}

/// A relay or labeler: where to connect, and the name its cursors are stored under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Host {
    /// `ws://` or `wss://` base URL, for subscriptions.
    pub ws_base: String,
    /// `http://` or `https://` base URL, for XRPC queries (listRepos).
    pub http_base: String,
    /// `host[:port]`: the `{host}` of cursor keys.
    pub name: String,
}

impl Host {
    /// Parses `bsky.network` (wss/https), `ws://127.0.0.1:2470`, `wss://...`, `http://...` or
    /// `https://...`; a path or trailing slash is dropped.
    pub fn parse(var: &str, value: &str) -> Result<Host, ConfigError> {
        let value = value.trim();
        let (secure, rest) = match value.split_once("://") {
            None => (true, value),
            Some(("wss" | "https", rest)) => (true, rest),
            Some(("ws" | "http", rest)) => (false, rest),
            Some((scheme, _)) => {
                return Err(ConfigError::new(
                    var,
                    value,
                    format!("unsupported scheme {scheme:?}: use a host name, ws://, wss://, http:// or https://"),
                ))
            }
        };
        let name = rest.split('/').next().unwrap_or_default();
        if name.is_empty() || name.contains(char::is_whitespace) || name.contains('@') {
            return Err(ConfigError::new(
                var,
                value,
                "expected a host such as bsky.network or ws://127.0.0.1:2470",
            ));
        }
        let (ws, http) = if secure {
            ("wss", "https")
        } else {
            ("ws", "http")
        };
        Ok(Host {
            ws_base: format!("{ws}://{name}"),
            http_base: format!("{http}://{name}"),
            name: name.to_owned(),
        })
    }
}

/// The ingester's configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// `REDIS_URL`.
    pub redis_url: String,
    /// `INGESTER_RELAY_HOSTS`: relays to subscribe to and to list repositories from.
    pub relay_hosts: Vec<Host>,
    /// `INGESTER_LABELER_HOSTS`: labelers to subscribe to.
    pub labeler_hosts: Vec<Host>,
    /// `INGESTER_MODE`.
    pub mode: Mode,
    /// `INGESTER_BATCH_SIZE`: events per Redis write at most.
    pub batch_size: usize,
    /// `INGESTER_BATCH_TIMEOUT_MS`: how long a partial batch waits for more events.
    pub batch_timeout: Duration,
    /// `INGESTER_HIGH_WATER_MARK`: `firehose_live` length at which writing pauses.
    pub high_water_mark: u64,
    /// `INGESTER_BACKPRESSURE_POLL_MS`: how often a paused writer checks the length again.
    pub backpressure_poll: Duration,
    /// `INGESTER_CHANNEL_CAPACITY`: decoded frames buffered between a socket and its writer.
    pub channel_capacity: usize,
    /// `INGESTER_SAMPLE_INTERVAL_MS`: how often stream lengths are sampled.
    pub sample_interval: Duration,
    /// `INGESTER_RECONNECT_MIN_MS`: first reconnect delay (doubles up to the max).
    pub reconnect_min: Duration,
    /// `INGESTER_RECONNECT_MAX_MS`: longest reconnect delay.
    pub reconnect_max: Duration,
    /// `INGESTER_LIST_REPOS_LIMIT`: repositories per listRepos page.
    pub list_repos_limit: u32,
    /// `REDIS_KEY_PREFIX`: stream and key names.
    pub streams: Streams,
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from(&Env::process())
    }

    /// Reads the configuration from `env`.
    pub fn from(env: &Env) -> Result<Config, ConfigError> {
        let hosts = |var: &str, default: &[&str]| -> Result<Vec<Host>, ConfigError> {
            list_or(env, var, default)?
                .iter()
                .map(|h| Host::parse(var, h))
                .collect()
        };
        let millis = |var: &str, default: u64, min: u64| -> Result<Duration, ConfigError> {
            var_at_least(env, var, default, min).map(Duration::from_millis)
        };
        let mode = match choice_or(
            env,
            "INGESTER_MODE",
            "all",
            &["all", "firehose", "backfill", "labeler"],
        )?
        .as_str()
        {
            "firehose" => Mode::Firehose,
            "backfill" => Mode::Backfill,
            "labeler" => Mode::Labeler,
            _ => Mode::All,
        };
        let labeler_hosts = match env.get("INGESTER_LABELER_HOSTS") {
            None => Vec::new(),
            Some(_) => hosts("INGESTER_LABELER_HOSTS", &[])?,
        };
        if mode == Mode::Labeler && labeler_hosts.is_empty() {
            return Err(ConfigError::new(
                "INGESTER_LABELER_HOSTS",
                "",
                "INGESTER_MODE=labeler needs at least one labeler host",
            ));
        }
        let reconnect_min = millis("INGESTER_RECONNECT_MIN_MS", 1_000, 1)?;
        let reconnect_max = millis("INGESTER_RECONNECT_MAX_MS", 30_000, 1)?;
        if reconnect_max < reconnect_min {
            return Err(ConfigError::new(
                "INGESTER_RECONNECT_MAX_MS",
                &reconnect_max.as_millis().to_string(),
                format!(
                    "must be at least INGESTER_RECONNECT_MIN_MS ({})",
                    reconnect_min.as_millis()
                ),
            ));
        }
        let list_repos_limit = var_at_least(env, "INGESTER_LIST_REPOS_LIMIT", 1000u32, 1)?;
        if list_repos_limit > 1000 {
            return Err(ConfigError::new(
                "INGESTER_LIST_REPOS_LIMIT",
                &list_repos_limit.to_string(),
                "listRepos serves at most 1000 repositories per page",
            ));
        }
        Ok(Config {
            redis_url: string_or(env, "REDIS_URL", "redis://127.0.0.1:6379"),
            relay_hosts: hosts("INGESTER_RELAY_HOSTS", &["bsky.network"])?,
            labeler_hosts,
            mode,
            batch_size: var_at_least(env, "INGESTER_BATCH_SIZE", 500usize, 1)?,
            batch_timeout: millis("INGESTER_BATCH_TIMEOUT_MS", 1_000, 1)?,
            high_water_mark: var_at_least(env, "INGESTER_HIGH_WATER_MARK", 100_000u64, 1)?,
            backpressure_poll: millis("INGESTER_BACKPRESSURE_POLL_MS", 1_000, 1)?,
            channel_capacity: var_at_least(env, "INGESTER_CHANNEL_CAPACITY", 1_000usize, 1)?,
            sample_interval: millis("INGESTER_SAMPLE_INTERVAL_MS", 10_000, 1)?,
            reconnect_min,
            reconnect_max,
            list_repos_limit,
            streams: Streams::new(string_or(env, PREFIX_ENV, "")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_spec() {
        let config = Config::from(&Env::from_pairs::<&str, &str>([])).unwrap();
        assert_eq!(config.redis_url, "redis://127.0.0.1:6379");
        assert_eq!(
            config.relay_hosts,
            [Host::parse("x", "bsky.network").unwrap()]
        );
        assert_eq!(config.relay_hosts[0].ws_base, "wss://bsky.network");
        assert_eq!(config.batch_size, 500);
        assert_eq!(config.batch_timeout, Duration::from_millis(1000));
        assert_eq!(config.high_water_mark, 100_000);
        assert_eq!(config.sample_interval, Duration::from_secs(10));
        assert_eq!(config.mode, Mode::All);
        assert!(config.labeler_hosts.is_empty());
        assert_eq!(config.streams, Streams::default());
    }

    #[test]
    fn loopback_hosts_keep_ws_and_name_cursors_by_host_and_port() {
        let host = Host::parse("H", "ws://127.0.0.1:2470/").unwrap();
        assert_eq!(host.ws_base, "ws://127.0.0.1:2470");
        assert_eq!(host.http_base, "http://127.0.0.1:2470");
        assert_eq!(host.name, "127.0.0.1:2470");
    }

    #[test]
    fn a_bad_value_gives_one_line_naming_the_variable() {
        let cases = [
            ("INGESTER_BATCH_SIZE", "0", "must be at least 1"),
            (
                "INGESTER_BATCH_TIMEOUT_MS",
                "soon",
                "expected a non-negative whole number",
            ),
            (
                "INGESTER_HIGH_WATER_MARK",
                "-5",
                "expected a non-negative whole number",
            ),
            (
                "INGESTER_MODE",
                "both",
                "expected one of all | firehose | backfill | labeler",
            ),
            (
                "INGESTER_RELAY_HOSTS",
                "ftp://relay",
                "unsupported scheme \"ftp\"",
            ),
        ];
        for (var, value, reason) in cases {
            let err = Config::from(&Env::from_pairs([(var, value)])).unwrap_err();
            let line = err.to_string();
            assert!(line.starts_with(&format!("invalid {var}=")), "{line}");
            assert!(line.contains(reason), "{line}");
            assert!(!line.contains('\n'), "{line}");
        }
    }

    #[test]
    fn labeler_mode_needs_labeler_hosts() {
        let err = Config::from(&Env::from_pairs([("INGESTER_MODE", "labeler")])).unwrap_err();
        assert_eq!(err.var, "INGESTER_LABELER_HOSTS");
    }

    #[test]
    fn the_prefix_applies_to_every_stream() {
        let config = Config::from(&Env::from_pairs([("REDIS_KEY_PREFIX", "t7:")])).unwrap();
        assert_eq!(config.streams.firehose_live, "t7:firehose_live");
    }
}
