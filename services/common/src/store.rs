//! Redis helpers: connecting, atomic XADD pipelines that carry their cursor, cursors and XLEN.

use redis::aio::ConnectionManager;
use redis::RedisError;

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

/// Connects to `url` (`redis://host:port/db`).
pub async fn connect(url: &str) -> Result<Connection, StoreError> {
    let fail = |source| StoreError::Connect {
        url: redact_url(url),
        source,
    };
    let client = redis::Client::open(url).map_err(fail)?;
    ConnectionManager::new(client).await.map_err(fail)
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
