//! Redis helpers: connecting with timeouts sized to the work, atomic XADD pipelines that carry
//! their cursor, cursors and XLEN.
//!
//! **Timeouts.** Every connection a service opens is made by [`connect`] (the consumer groups'
//! too), with the connect and response timeouts it is given: the service's
//! `REDIS_CONNECT_TIMEOUT_MS` and `REDIS_RESPONSE_TIMEOUT_MS`
//! ([`crate::pipeline::PipelineSettings`]). The client's defaults do not fit the work: its 500 ms
//! response timeout fails writes of hundreds of entries queued behind other tasks on a shared
//! connection (and a write that ran and timed out is then retried as a duplicate), and its six
//! reconnect attempts hold each command about 9.5 s while Redis is down. Here a reply may take
//! 10 s, a connection 5 s, and a command fails after two reconnect attempts (the callers retry
//! on their own). A blocking read (`XREADGROUP BLOCK`) waits its block time on top of the
//! response timeout ([`RedisTimeouts::for_blocking`]), so a wait for new entries is never
//! taken for a dead server.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::RedisError;

use crate::config::millis_at_least;

/// A Redis connection that reconnects by itself (cheap to clone: clones share one connection).
pub type Connection = ConnectionManager;

/// A failed Redis operation, naming what was being done.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `REDIS_URL` cannot be parsed or the server cannot be reached.
    #[error(
        "cannot connect to Redis at {url}: {source} (check REDIS_URL and that Redis is running)"
    )]
    Connect {
        /// The URL, with any password hidden.
        url: String,
        /// What went wrong.
        source: RedisError,
    },
    /// A command failed.
    #[error("Redis {what} failed: {source}")]
    Command {
        /// The command and its key, e.g. `XLEN firehose_live`.
        what: String,
        /// What went wrong.
        source: RedisError,
    },
}

impl StoreError {
    /// The Redis error underneath.
    pub fn into_redis(self) -> RedisError {
        match self {
            StoreError::Connect { source, .. } | StoreError::Command { source, .. } => source,
        }
    }
}

/// How long a Redis connection and a Redis reply may take: the common settings
/// `REDIS_CONNECT_TIMEOUT_MS` and `REDIS_RESPONSE_TIMEOUT_MS` of every service.
#[derive(clap::Args, Clone, Copy, Debug, PartialEq, Eq)]
pub struct RedisTimeouts {
    /// Longest wait for a Redis connection (ms).
    #[arg(long = "redis-connect-timeout-ms", env = "REDIS_CONNECT_TIMEOUT_MS", default_value = "5000", value_parser = millis_at_least(1))]
    pub redis_connect_timeout: Duration,
    /// Longest wait for a Redis reply (ms): sized for a write of a full batch on a busy server,
    /// queued behind the other tasks sharing the connection. Blocking reads wait their block
    /// time on top of it.
    #[arg(long = "redis-response-timeout-ms", env = "REDIS_RESPONSE_TIMEOUT_MS", default_value = "10000", value_parser = millis_at_least(1))]
    pub redis_response_timeout: Duration,
}

impl RedisTimeouts {
    /// The defaults: 5 s to connect, 10 s for a reply.
    pub const DEFAULT: RedisTimeouts = RedisTimeouts {
        redis_connect_timeout: Duration::from_secs(5),
        redis_response_timeout: Duration::from_secs(10),
    };

    /// Reconnect attempts a connection makes before a command fails (the client's default, six,
    /// holds a command about 9.5 s while Redis is down; the callers retry on their own).
    pub const RECONNECT_ATTEMPTS: usize = 2;

    /// The timeouts of a connection whose commands block up to `block` (`XREADGROUP BLOCK`):
    /// the reply may take the response timeout after the block time.
    pub fn for_blocking(self, block: Duration) -> RedisTimeouts {
        RedisTimeouts {
            redis_response_timeout: self.redis_response_timeout.saturating_add(block),
            ..self
        }
    }

    /// The connection manager's settings for these timeouts.
    pub fn manager_config(&self) -> ConnectionManagerConfig {
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.redis_connect_timeout))
            .set_response_timeout(Some(self.redis_response_timeout))
            .set_number_of_retries(Self::RECONNECT_ATTEMPTS)
            .set_min_delay(Duration::from_millis(100))
            .set_max_delay(Duration::from_secs(1))
    }
}

impl Default for RedisTimeouts {
    fn default() -> Self {
        RedisTimeouts::DEFAULT
    }
}

/// Connects to `url` with `timeouts`, and checks that Redis answers (`PING`): a server that
/// accepts and says nothing is an error after the timeouts, not a hang.
pub async fn connect(url: &str, timeouts: RedisTimeouts) -> Result<Connection, StoreError> {
    let fail = |source| StoreError::Connect {
        url: redact_url(url),
        source,
    };
    let client = redis::Client::open(url).map_err(fail)?;
    let mut conn = ConnectionManager::new_with_config(client, timeouts.manager_config())
        .await
        .map_err(fail)?;
    redis::cmd("PING")
        .query_async::<()>(&mut conn)
        .await
        .map_err(fail)?;
    Ok(conn)
}

/// `url` with its password, if any, replaced by `***` (for logs and errors).
///
/// ```
/// assert_eq!(rsky_common::store::redact_url("redis://:secret@h:6379/0"), "redis://:***@h:6379/0");
/// assert_eq!(rsky_common::store::redact_url("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// Entries and keys written together in one MULTI/EXEC transaction, so a cursor never runs
/// ahead of the entries it covers: if the connection fails before EXEC nothing is written, and
/// no client ever sees some of the entries without the others or without the cursor. (Redis does
/// not roll back a transaction whose command fails at run time, e.g. XADD to a key of the wrong
/// type; `commit` then returns that command's error.)
///
/// ```no_run
/// # async fn demo(conn: &mut rsky_common::store::Connection) -> Result<(), rsky_common::store::StoreError> {
/// use rsky_common::store::AtomicBatch;
///
/// let mut batch = AtomicBatch::new();
/// batch.xadd("firehose_live", &[("event", r#"{"type":"identity","seq":7,"time":"t","did":"did:plc:a"}"#)]);
/// batch.set("firehose_live:cursor:bsky.network", "7");
/// let ids = batch.commit(conn).await?;
/// assert_eq!(ids.len(), 1);
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct AtomicBatch {
    pipeline: redis::Pipeline,
    entries: usize,
    first_stream: Option<String>,
}

impl AtomicBatch {
    /// An empty batch.
    pub fn new() -> Self {
        let mut pipeline = redis::pipe();
        pipeline.atomic();
        AtomicBatch {
            pipeline,
            entries: 0,
            first_stream: None,
        }
    }

    /// Appends `XADD stream * field value ...`.
    pub fn xadd(&mut self, stream: &str, fields: &[(&str, &str)]) -> &mut Self {
        let cmd = self.pipeline.cmd("XADD").arg(stream).arg("*");
        for (field, value) in fields {
            cmd.arg(*field).arg(*value);
        }
        self.entries += 1;
        if self.first_stream.is_none() {
            self.first_stream = Some(stream.to_owned());
        }
        self
    }

    /// Appends `SET key value` (e.g. a cursor).
    pub fn set(&mut self, key: &str, value: &str) -> &mut Self {
        self.pipeline.cmd("SET").arg(key).arg(value).ignore();
        self
    }

    /// How many entries the batch adds.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// Whether the batch adds no entries.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Runs the transaction; returns the IDs of the added entries, in order.
    pub async fn commit(self, conn: &mut Connection) -> Result<Vec<String>, StoreError> {
        let what = format!(
            "MULTI/EXEC of {} XADD to {}",
            self.entries,
            self.first_stream.as_deref().unwrap_or("(no stream)")
        );
        self.pipeline
            .query_async(conn)
            .await
            .map_err(|source| StoreError::Command { what, source })
    }
}

/// The value of a cursor key, if set.
pub async fn read_cursor(conn: &mut Connection, key: &str) -> Result<Option<String>, StoreError> {
    redis::cmd("GET")
        .arg(key)
        .query_async(conn)
        .await
        .map_err(|source| StoreError::Command {
            what: format!("GET {key}"),
            source,
        })
}

/// The number of entries in `stream` (0 when it does not exist).
pub async fn stream_len(conn: &mut Connection, stream: &str) -> Result<u64, StoreError> {
    redis::cmd("XLEN")
        .arg(stream)
        .query_async(conn)
        .await
        .map_err(|source| StoreError::Command {
            what: format!("XLEN {stream}"),
            source,
        })
}
