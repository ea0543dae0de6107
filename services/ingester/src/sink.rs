//! Writing to Redis: each batch is one Lua script that adds its events and moves its cursor
//! atomically, skipping events the cursor already covers, so a write repeated after a lost reply
//! adds nothing; writing waits (never drops) while the output stream is at its high-water mark;
//! stream lengths are sampled into gauges.

use std::sync::LazyLock;
use std::time::Duration;

use rsky_common::shutdown::Shutdown;
use rsky_common::store::{read_cursor, stream_len, Connection, StoreError};
use rsky_common::streams::{Streams, EVENT_FIELD};
use rsky_metrics_runtime::{counted, IntGauge};

use crate::batch::Batch;
use crate::metrics::IngesterMetrics;
use crate::source::sleep_or_shutdown;

/// Delay between attempts when Redis refuses a write.
const RETRY_DELAY: Duration = Duration::from_millis(500);
/// Attempts at flushing a batch once shutdown has begun (Redis may be gone for good).
const SHUTDOWN_ATTEMPTS: u32 = 5;

/// Adds a batch's events to a stream and moves its cursor, as one atomic script. An event whose
/// seq is not above the stored cursor was written before (a write whose reply was lost, then
/// retried), so it is skipped; the cursor only moves forward. Entry IDs stay `*`: their
/// millisecond part is still the time of the XADD, which the indexer's latency histogram reads.
///
/// KEYS: stream, cursor key. ARGV: field, the batch's cursor (empty for none), then seq and
/// payload per event.
static GUARDED_WRITE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local stored = tonumber(redis.call('GET', KEYS[2]) or '')
local added = 0
for i = 3, #ARGV, 2 do
  if stored == nil or tonumber(ARGV[i]) > stored then
    redis.call('XADD', KEYS[1], '*', ARGV[1], ARGV[i + 1])
    added = added + 1
  end
end
local cursor = tonumber(ARGV[2])
if cursor ~= nil and (stored == nil or cursor > stored) then
  redis.call('SET', KEYS[2], ARGV[2])
end
return added
",
    )
});

/// Writes `(seq, payload)` entries under `field` to `stream` and `cursor` to `cursor_key`
/// with [`GUARDED_WRITE`]; returns how many entries were added (the others were written
/// before).
pub async fn guarded_write(
    conn: &mut Connection,
    stream: &str,
    field: &str,
    entries: &[(i64, &str)],
    cursor: Option<i64>,
    cursor_key: &str,
) -> Result<u64, StoreError> {
    let mut invocation = GUARDED_WRITE.prepare_invoke();
    invocation
        .key(stream)
        .key(cursor_key)
        .arg(field)
        .arg(cursor.map(|c| c.to_string()).unwrap_or_default());
    for (seq, payload) in entries {
        invocation.arg(seq).arg(*payload);
    }
    invocation
        .invoke_async(conn)
        .await
        .map_err(|source| StoreError::Command {
            what: format!(
                "guarded write (script) of {} XADD to {stream} with {cursor_key}",
                entries.len()
            ),
            source,
        })
}

/// Deletes the cursor under `key`, retrying until done; false when shutdown came first.
pub async fn drop_cursor(
    conn: &mut Connection,
    key: &str,
    metrics: &IngesterMetrics,
    shutdown: &Shutdown,
) -> bool {
    loop {
        let result: Result<(), _> = redis::cmd("DEL").arg(key).query_async(conn).await;
        match result {
            Ok(()) => return true,
            Err(err) => {
                metrics.errors[crate::metrics::ErrorKind::Redis].inc();
                tracing::warn!(%key, error = %err, "cannot delete the stored cursor; retrying");
                if sleep_or_shutdown(RETRY_DELAY, shutdown).await {
                    return false;
                }
            }
        }
    }
}

/// Waits while `stream` holds `high_water_mark` entries or more, with `gauge` at 1
/// ([`rsky_common::pipeline::wait_for_room`]); a failed length read counts as a Redis error.
/// Returns early on shutdown.
pub async fn wait_for_room(
    conn: &mut Connection,
    stream: &str,
    high_water_mark: u64,
    poll: Duration,
    gauge: &IntGauge,
    metrics: &IngesterMetrics,
    shutdown: &Shutdown,
) {
    rsky_common::pipeline::wait_for_room(
        conn,
        stream,
        high_water_mark,
        poll,
        gauge,
        shutdown,
        |len| {
            if len.is_err() {
                metrics.errors[crate::metrics::ErrorKind::Redis].inc();
            }
        },
    )
    .await;
}

/// Writes firehose batches to `firehose_live`.
pub struct FirehoseSink<'a> {
    /// The Redis connection.
    pub conn: Connection,
    /// The stream names.
    pub streams: &'a Streams,
    /// The metrics.
    pub metrics: &'a IngesterMetrics,
    /// Length of `firehose_live` at which writing waits.
    pub high_water_mark: u64,
    /// How often a waiting writer checks the length again.
    pub poll: Duration,
}

impl FirehoseSink<'_> {
    /// Waits while `firehose_live` holds `high_water_mark` entries or more, with the
    /// backpressure gauge at 1. Returns early on shutdown so the batch in hand is flushed.
    pub async fn wait_for_room(&mut self, shutdown: &Shutdown) {
        wait_for_room(
            &mut self.conn,
            &self.streams.firehose_live,
            self.high_water_mark,
            self.poll,
            &self.metrics.backpressure_active,
            self.metrics,
            shutdown,
        )
        .await;
    }

    /// Writes `batch` and its cursor atomically, retrying until it is written (a retry of a
    /// write that ran adds nothing). After shutdown began it gives up after a few attempts,
    /// says how many events were not written, and returns false: the caller must then write
    /// nothing more, so the stored cursor never passes an unwritten event.
    pub async fn write(&mut self, batch: &Batch, cursor_key: &str, shutdown: &Shutdown) -> bool {
        if batch.events.is_empty() && batch.cursor.is_none() {
            return true;
        }
        let payloads: Vec<(i64, String)> = batch
            .events
            .iter()
            .filter_map(|event| match serde_json::to_string(event) {
                Ok(json) => Some((event.seq(), json)),
                Err(err) => {
                    // Values that came from DAG-CBOR always serialize; count it if one does not.
                    self.metrics.errors[crate::metrics::ErrorKind::Serialize].inc();
                    tracing::error!(error = %err, seq = event.seq(), "cannot serialize an event");
                    None
                }
            })
            .collect();
        let entries: Vec<(i64, &str)> = payloads
            .iter()
            .map(|(seq, json)| (*seq, json.as_str()))
            .collect();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            match self.write_once(&entries, batch.cursor, cursor_key).await {
                Ok(added) => {
                    if added < entries.len() as u64 {
                        tracing::info!(
                            skipped = entries.len() as u64 - added,
                            "events the stored cursor already covers were not written again"
                        );
                    }
                    self.metrics.stream_events.inc_by(added);
                    self.metrics.events_in_memory.sub(batch.events.len() as i64);
                    return true;
                }
                Err(err) => {
                    if shutdown.is_cancelled() && attempts >= SHUTDOWN_ATTEMPTS {
                        tracing::error!(error = %err, events = entries.len(), cursor = ?batch.cursor, "shutting down without writing this batch or any after it: Redis refused it {attempts} times; the stored cursor makes the next start read them again");
                        return false;
                    }
                    tracing::warn!(error = %err, events = entries.len(), "batch not written; retrying");
                    tokio::time::sleep(RETRY_DELAY).await;
                }
            }
        }
    }

    /// One run of the guarded write script: the batch's XADDs, then its cursor.
    #[counted(metrics = self.metrics, events = batch_writes, errors = errors, duration = batch_write_seconds)]
    async fn write_once(
        &mut self,
        entries: &[(i64, &str)],
        cursor: Option<i64>,
        cursor_key: &str,
    ) -> Result<u64, StoreError> {
        guarded_write(
            &mut self.conn,
            &self.streams.firehose_live,
            EVENT_FIELD,
            entries,
            cursor,
            cursor_key,
        )
        .await
    }
}

/// Samples the length of the four streams into their gauges every `interval`, until shutdown.
pub async fn sample_stream_lengths(
    mut conn: Connection,
    streams: &Streams,
    metrics: &IngesterMetrics,
    interval: Duration,
    shutdown: &Shutdown,
) {
    let gauges = [
        (&streams.firehose_live, &metrics.firehose_live_length),
        (
            &streams.firehose_backfill,
            &metrics.firehose_backfill_length,
        ),
        (&streams.label_live, &metrics.label_live_length),
        (&streams.repo_backfill, &metrics.repo_backfill_length),
    ];
    loop {
        for (stream, gauge) in gauges {
            match stream_len(&mut conn, stream).await {
                Ok(len) => gauge.set(len as i64),
                Err(err) => {
                    metrics.errors[crate::metrics::ErrorKind::Redis].inc();
                    tracing::warn!(error = %err, "cannot sample the length of {stream}");
                }
            }
        }
        if sleep_or_shutdown(interval, shutdown).await {
            return;
        }
    }
}

/// The seq stored under `key`. A non-numeric cursor counts as an error and starts without one;
/// a failed read is retried (starting without the cursor would skip events) until shutdown.
pub async fn stored_seq(
    conn: &mut Connection,
    key: &str,
    metrics: &IngesterMetrics,
    shutdown: &Shutdown,
) -> Option<i64> {
    loop {
        match read_cursor(conn, key).await {
            Ok(None) => return None,
            Ok(Some(value)) => match value.parse() {
                Ok(seq) => return Some(seq),
                Err(_) => {
                    metrics.errors[crate::metrics::ErrorKind::InvalidInput].inc();
                    tracing::warn!(%key, %value, "the stored cursor is not a sequence number; starting without one");
                    return None;
                }
            },
            Err(err) => {
                metrics.errors[crate::metrics::ErrorKind::Redis].inc();
                tracing::warn!(error = %err, "cannot read the stored cursor; retrying");
                if sleep_or_shutdown(RETRY_DELAY, shutdown).await {
                    return None;
                }
            }
        }
    }
}
