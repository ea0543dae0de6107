//! Backfill mode: page `com.atproto.sync.listRepos` on each host into `repo_backfill`, one
//! transaction per page holding its entries and the cursor of the next page; `!ingester-done`
//! marks a host whose listing finished. Listing pauses while `repo_backfill` holds
//! `INGESTER_BACKFILL_HIGH_WATER_MARK` entries or more, as the firehose writer waits for room.

use std::sync::LazyLock;
use std::time::Duration;

use rsky_common::event::BackfillEvent;
use rsky_common::shutdown::Shutdown;
use rsky_common::store::{read_cursor, Connection, StoreError};
use rsky_common::streams::REPO_FIELD;
use rsky_metrics_runtime::counted;
use serde::Deserialize;

use crate::config::{Config, Host};
use crate::metrics::IngesterMetrics;
use crate::sink::wait_for_room;
use crate::source::sleep_or_shutdown;

/// The cursor value of a host whose listing finished.
pub const DONE: &str = "!ingester-done";

/// The listRepos method.
pub const LIST_REPOS: &str = "com.atproto.sync.listRepos";

#[derive(Deserialize)]
struct ListReposPage {
    #[serde(default)]
    cursor: Option<String>,
    repos: Vec<ListedRepo>,
}

#[derive(Deserialize)]
struct ListedRepo {
    did: String,
    #[serde(default)]
    rev: Option<String>,
    #[serde(default)]
    active: Option<bool>,
    #[serde(default)]
    status: Option<String>,
}

/// Why a listRepos page could not be fetched.
#[derive(Debug, thiserror::Error)]
enum FetchError {
    #[error("GET {url} failed: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("GET {url} answered {status}: {body}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
        body: String,
    },
    #[error("GET {url} answered a body that is not a listRepos page: {source}")]
    Body { url: String, source: reqwest::Error },
}

/// Lists every host's repositories into `repo_backfill`; sets `ingester_backfill_complete` to 1
/// when every host has finished. Returns early on shutdown.
pub async fn run_backfill(
    config: &Config,
    conn: Connection,
    metrics: &IngesterMetrics,
    shutdown: &Shutdown,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .user_agent(concat!("rsky-ingester/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default();
    for host in &config.relay_hosts {
        if !list_host(host, config, &client, conn.clone(), metrics, shutdown).await {
            return;
        }
    }
    metrics.backfill_complete.set(1);
    tracing::info!(
        hosts = config.relay_hosts.len(),
        "listRepos finished on every host"
    );
}

/// Lists one host; false when shutdown interrupted it.
async fn list_host(
    host: &Host,
    config: &Config,
    client: &reqwest::Client,
    mut conn: Connection,
    metrics: &IngesterMetrics,
    shutdown: &Shutdown,
) -> bool {
    let key = config
        .pipeline
        .streams
        .cursor_key(&config.pipeline.streams.repo_backfill, &host.name);
    let mut cursor = loop {
        match read_cursor(&mut conn, &key).await {
            Ok(cursor) => break cursor,
            Err(err) => {
                metrics.errors[crate::metrics::ErrorKind::Redis].inc();
                tracing::warn!(error = %err, "cannot read the listRepos cursor; retrying");
                if sleep_or_shutdown(config.reconnect_min, shutdown).await {
                    return false;
                }
            }
        }
    };
    if cursor.as_deref() == Some(DONE) {
        metrics.backfill_cursor_skips.inc();
        tracing::info!(host = %host.name, %key, "listRepos already finished on this host; skipped");
        return true;
    }
    let mut delay = config.reconnect_min;
    loop {
        // The backfiller drains repo_backfill far slower than listRepos fills it: without this
        // the whole network's repository list would sit in Redis.
        wait_for_room(
            &mut conn,
            &config.pipeline.streams.repo_backfill,
            config.backfill_high_water_mark,
            config.pipeline.backpressure_poll,
            &metrics.backfill_backpressure_active,
            metrics,
            shutdown,
        )
        .await;
        if shutdown.is_cancelled() {
            return false;
        }
        let mut url = format!(
            "{}/xrpc/{LIST_REPOS}?limit={}",
            host.http_base, config.list_repos_limit
        );
        if let Some(cursor) = &cursor {
            url.push_str("&cursor=");
            url.push_str(&encode_query_value(cursor));
        }
        let page = tokio::select! {
            _ = shutdown.cancelled() => return false,
            page = fetch_page(client, &url, metrics) => page,
        };
        let page = match page {
            Ok(page) => page,
            Err(err) => {
                metrics.errors[crate::metrics::ErrorKind::ListRepos].inc();
                tracing::warn!(error = %err, retry_in = ?delay, "listRepos page not fetched");
                if sleep_or_shutdown(delay, shutdown).await {
                    return false;
                }
                delay = (delay * 2).min(config.reconnect_max);
                continue;
            }
        };
        delay = config.reconnect_min;
        metrics
            .backfill_repos_fetched
            .inc_by(page.repos.len() as u64);
        let next = match page.cursor {
            Some(next) if !page.repos.is_empty() => next,
            _ => DONE.to_owned(),
        };
        let payloads: Vec<String> = page
            .repos
            .into_iter()
            .filter_map(|repo| {
                serde_json::to_string(&BackfillEvent {
                    did: repo.did,
                    host: host.name.clone(),
                    rev: repo.rev,
                    status: repo.status,
                    active: repo.active.unwrap_or(true),
                })
                .ok()
            })
            .collect();
        let written = loop {
            let page_write = write_page(
                &mut conn,
                &config.pipeline.streams.repo_backfill,
                &key,
                cursor.as_deref(),
                &next,
                &payloads,
            )
            .await;
            match page_write {
                Ok(written) => break written,
                Err(err) => {
                    metrics.errors[crate::metrics::ErrorKind::Redis].inc();
                    tracing::warn!(error = %err, "listRepos page not written; retrying");
                    if sleep_or_shutdown(config.reconnect_min, shutdown).await {
                        return false;
                    }
                }
            }
        };
        match written {
            PageWrite::Written(added) => metrics.backfill_repos_written.inc_by(added),
            PageWrite::AlreadyWritten => {
                tracing::info!(host = %host.name, cursor = %next, "listRepos page already written (a retry after a lost reply); not written again");
            }
            PageWrite::CursorMoved(stored) => {
                // Someone else (another ingester on this host) moved the cursor: follow it.
                tracing::warn!(host = %host.name, %key, ?stored, expected = ?cursor, "the listRepos cursor moved under this ingester; continuing from the stored one");
                if stored.as_deref() == Some(DONE) {
                    return true;
                }
                cursor = stored;
                continue;
            }
        }
        tracing::debug!(host = %host.name, repos = payloads.len(), cursor = %next, "listRepos page written");
        if next == DONE {
            tracing::info!(host = %host.name, "listRepos finished");
            return true;
        }
        cursor = Some(next);
    }
}

/// What writing a listRepos page did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PageWrite {
    /// The page's entries (this many) and its cursor were written.
    Written(u64),
    /// The stored cursor already is the page's: it was written before (a retry after a lost
    /// reply); nothing was added.
    AlreadyWritten,
    /// The stored cursor is neither the one the page was listed from nor the page's own;
    /// nothing was added.
    CursorMoved(Option<String>),
}

/// Adds a page's entries and moves the cursor from `KEYS[2] == ARGV[2]` to `ARGV[3]` in one
/// script, only while the stored cursor is still the one the page was listed from (empty for
/// none); else returns the stored cursor, adding nothing. KEYS: stream, cursor key. ARGV: field,
/// expected cursor, next cursor, then the payloads.
static PAGE_WRITE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local stored = redis.call('GET', KEYS[2]) or ''
if stored ~= ARGV[2] then
  return {0, stored}
end
for i = 4, #ARGV do
  redis.call('XADD', KEYS[1], '*', ARGV[1], ARGV[i])
end
redis.call('SET', KEYS[2], ARGV[3])
return {1, #ARGV - 3}
",
    )
});

/// Writes a listRepos page listed from `from` with its `next` cursor: a repeated write (its
/// first reply lost) adds nothing.
pub async fn write_page(
    conn: &mut Connection,
    stream: &str,
    key: &str,
    from: Option<&str>,
    next: &str,
    payloads: &[String],
) -> Result<PageWrite, StoreError> {
    let mut invocation = PAGE_WRITE.prepare_invoke();
    invocation
        .key(stream)
        .key(key)
        .arg(REPO_FIELD)
        .arg(from.unwrap_or_default())
        .arg(next);
    for payload in payloads {
        invocation.arg(payload);
    }
    let (written, value): (i64, redis::Value) =
        invocation
            .invoke_async(conn)
            .await
            .map_err(|source| StoreError::Command {
                what: format!(
                    "page write (script) of {} XADD to {stream} with {key}",
                    payloads.len()
                ),
                source,
            })?;
    if written == 1 {
        return Ok(PageWrite::Written(
            redis::from_redis_value::<u64>(value).unwrap_or_default(),
        ));
    }
    let stored = redis::from_redis_value::<String>(value).unwrap_or_default();
    Ok(if stored == next {
        PageWrite::AlreadyWritten
    } else if stored.is_empty() {
        PageWrite::CursorMoved(None)
    } else {
        PageWrite::CursorMoved(Some(stored))
    })
}

#[counted(metrics = metrics, events = list_repos_requests, errors = backfill_fetch_errors, duration = list_repos_seconds)]
async fn fetch_page(
    client: &reqwest::Client,
    url: &str,
    metrics: &IngesterMetrics,
) -> Result<ListReposPage, FetchError> {
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|source| FetchError::Http {
            url: url.to_owned(),
            source,
        })?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(FetchError::Status {
            url: url.to_owned(),
            status,
            body: body.chars().take(200).collect(),
        });
    }
    response.json().await.map_err(|source| FetchError::Body {
        url: url.to_owned(),
        source,
    })
}

/// Percent-encodes a query value (cursors are DIDs or opaque strings).
fn encode_query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn cursors_are_percent_encoded() {
        assert_eq!(
            super::encode_query_value("did:plc:a b"),
            "did%3Aplc%3Aa%20b"
        );
    }
}
