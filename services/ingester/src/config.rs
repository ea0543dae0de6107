//! The ingester's configuration: one `clap` derive, every setting a flag and an environment
//! variable. `ingester --help` and the service's README list each with its default.

use std::time::Duration;

use rsky_common::config::{at_least, list, millis_at_least, ConfigError, Renamed, Settings};
use rsky_common::pipeline::PipelineSettings;

/// Which parts of the ingester run (`INGESTER_MODE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
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

/// The ingester's configuration: every field a flag and an environment variable (`--help`).
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Redis, the stream names and their prefix, shared by every service.
    #[command(flatten)]
    pub pipeline: PipelineSettings,
    /// Relays to subscribe to and to list repositories from (comma-separated).
    #[arg(long, env = "INGESTER_RELAY_HOSTS", default_value = "bsky.network", value_parser = hosts)]
    pub relay_hosts: ::std::vec::Vec<Host>,
    /// Labelers to subscribe to (comma-separated; none by default).
    #[arg(long, env = "INGESTER_LABELER_HOSTS", default_value = "", hide_default_value = true, value_parser = hosts_or_none)]
    pub labeler_hosts: ::std::vec::Vec<Host>,
    /// Which parts run.
    #[arg(
        long,
        env = "INGESTER_MODE",
        value_enum,
        default_value = "all",
        ignore_case = true
    )]
    pub mode: Mode,
    /// Events per Redis write at most.
    #[arg(long, env = "INGESTER_BATCH_SIZE", default_value = "500", value_parser = at_least(1usize))]
    pub batch_size: usize,
    /// How long a partial batch waits for more events (ms).
    #[arg(long = "batch-timeout-ms", env = "INGESTER_BATCH_TIMEOUT_MS", default_value = "1000", value_parser = millis_at_least(1))]
    pub batch_timeout: Duration,
    /// `firehose_live` length at which writing pauses.
    #[arg(long, env = "INGESTER_HIGH_WATER_MARK", default_value = "100000", value_parser = at_least(1u64))]
    pub high_water_mark: u64,
    /// Decoded frames buffered between a socket and its writer.
    #[arg(long, env = "INGESTER_CHANNEL_CAPACITY", default_value = "1000", value_parser = at_least(1usize))]
    pub channel_capacity: usize,
    /// How often stream lengths are sampled (ms).
    #[arg(long = "sample-interval-ms", env = "INGESTER_SAMPLE_INTERVAL_MS", default_value = "10000", value_parser = millis_at_least(1))]
    pub sample_interval: Duration,
    /// First reconnect delay (ms; doubles up to the max).
    #[arg(long = "reconnect-min-ms", env = "INGESTER_RECONNECT_MIN_MS", default_value = "1000", value_parser = millis_at_least(1))]
    pub reconnect_min: Duration,
    /// Longest reconnect delay (ms).
    #[arg(long = "reconnect-max-ms", env = "INGESTER_RECONNECT_MAX_MS", default_value = "30000", value_parser = millis_at_least(1))]
    pub reconnect_max: Duration,
    /// Longest wait for a websocket to connect: TCP, TLS and the upgrade (ms).
    #[arg(long = "ws-connect-timeout-ms", env = "INGESTER_WS_CONNECT_TIMEOUT_MS", default_value = "10000", value_parser = millis_at_least(1))]
    pub ws_connect_timeout: Duration,
    /// A websocket on which nothing (frame, ping or pong) arrives for this long is dropped and
    /// dialed again (ms; more than the ping interval).
    #[arg(long = "ws-idle-timeout-ms", env = "INGESTER_WS_IDLE_TIMEOUT_MS", default_value = "30000", value_parser = millis_at_least(1))]
    pub ws_idle_timeout: Duration,
    /// How often a ping is sent on each websocket (ms); its pong keeps a quiet stream alive.
    #[arg(long = "ws-ping-interval-ms", env = "INGESTER_WS_PING_INTERVAL_MS", default_value = "10000", value_parser = millis_at_least(1))]
    pub ws_ping_interval: Duration,
    /// `repo_backfill` length at which listRepos pauses.
    #[arg(long, env = "INGESTER_BACKFILL_HIGH_WATER_MARK", default_value = "100000", value_parser = at_least(1u64))]
    pub backfill_high_water_mark: u64,
    /// Repositories per listRepos page (at most 1000).
    #[arg(long, env = "INGESTER_LIST_REPOS_LIMIT", default_value = "1000", value_parser = at_least(1u32))]
    pub list_repos_limit: u32,
}

fn hosts(value: &str) -> Result<Vec<Host>, String> {
    list(value)?
        .iter()
        .map(|h| Host::parse("", h).map_err(|err| err.reason))
        .collect()
}

fn hosts_or_none(value: &str) -> Result<Vec<Host>, String> {
    if value.trim().is_empty() {
        Ok(Vec::new())
    } else {
        hosts(value)
    }
}

impl Settings for Config {
    // The Redis timeouts are common settings now (`REDIS_*_TIMEOUT_MS`, every service).
    const RENAMED: &'static [Renamed] = &[
        Renamed::same(
            "INGESTER_REDIS_CONNECT_TIMEOUT_MS",
            "REDIS_CONNECT_TIMEOUT_MS",
        ),
        Renamed::same(
            "INGESTER_REDIS_RESPONSE_TIMEOUT_MS",
            "REDIS_RESPONSE_TIMEOUT_MS",
        ),
        Renamed::same("INGESTER_BACKPRESSURE_POLL_MS", "BACKPRESSURE_POLL_MS"),
    ];

    fn check(&self) -> Result<(), ConfigError> {
        if self.mode == Mode::Labeler && self.labeler_hosts.is_empty() {
            return Err(ConfigError::new(
                "INGESTER_LABELER_HOSTS",
                "",
                "INGESTER_MODE=labeler needs at least one labeler host",
            ));
        }
        if self.reconnect_max < self.reconnect_min {
            return Err(ConfigError::new(
                "INGESTER_RECONNECT_MAX_MS",
                &self.reconnect_max.as_millis().to_string(),
                format!(
                    "must be at least INGESTER_RECONNECT_MIN_MS ({})",
                    self.reconnect_min.as_millis()
                ),
            ));
        }
        if self.ws_idle_timeout <= self.ws_ping_interval {
            return Err(ConfigError::new(
                "INGESTER_WS_IDLE_TIMEOUT_MS",
                &self.ws_idle_timeout.as_millis().to_string(),
                format!(
                    "must be more than INGESTER_WS_PING_INTERVAL_MS ({}), or a quiet stream times out between pongs",
                    self.ws_ping_interval.as_millis()
                ),
            ));
        }
        if self.list_repos_limit > 1000 {
            return Err(ConfigError::new(
                "INGESTER_LIST_REPOS_LIMIT",
                &self.list_repos_limit.to_string(),
                "listRepos serves at most 1000 repositories per page",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_spec() {
        let config = Config::from_pairs::<&str, &str>([]).unwrap();
        assert_eq!(config.pipeline.redis_url, "redis://127.0.0.1:6379");
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
        assert_eq!(
            config.pipeline.streams,
            rsky_common::streams::Streams::default()
        );
        assert_eq!(config.ws_connect_timeout, Duration::from_secs(10));
        assert_eq!(config.ws_idle_timeout, Duration::from_secs(30));
        assert_eq!(config.ws_ping_interval, Duration::from_secs(10));
        assert_eq!(config.backfill_high_water_mark, 100_000);
    }

    #[test]
    fn the_idle_timeout_must_exceed_the_ping_interval() {
        let err = Config::from_pairs([
            ("INGESTER_WS_IDLE_TIMEOUT_MS", "1000"),
            ("INGESTER_WS_PING_INTERVAL_MS", "1000"),
        ])
        .unwrap_err();
        assert_eq!(err.var, "INGESTER_WS_IDLE_TIMEOUT_MS");
        assert!(err.reason.contains("INGESTER_WS_PING_INTERVAL_MS (1000)"));
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
            let err = Config::from_pairs([(var, value)]).unwrap_err();
            let line = err.to_string();
            assert!(line.starts_with(&format!("invalid {var}=")), "{line}");
            assert!(line.contains(reason), "{line}");
            assert!(!line.contains('\n'), "{line}");
        }
    }

    #[test]
    fn labeler_mode_needs_labeler_hosts() {
        let err = Config::from_pairs([("INGESTER_MODE", "labeler")]).unwrap_err();
        assert_eq!(err.var, "INGESTER_LABELER_HOSTS");
    }

    #[test]
    fn the_prefix_applies_to_every_stream() {
        let config = Config::from_pairs([("REDIS_KEY_PREFIX", "t7:")]).unwrap();
        assert_eq!(config.pipeline.streams.firehose_live, "t7:firehose_live");
    }
}
