//! Writing to Redis: each batch is one MULTI/EXEC with all its XADDs and its cursor; writing
//! waits (never drops) while the output stream is at its high-water mark; stream lengths are
//! sampled into gauges.

use std::time::Duration;

use rsky_common::shutdown::Shutdown;
use rsky_common::store::{read_cursor, stream_len, AtomicBatch, Connection, StoreError};
use rsky_common::streams::{Streams, EVENT_FIELD};
use rsky_metrics_runtime::counted;

use crate::batch::Batch;
use crate::metrics::IngesterMetrics;
use crate::source::sleep_or_shutdown;

/// Delay between attempts when Redis refuses a write.
const RETRY_DELAY: Duration = Duration::from_millis(500);
/// Attempts at flushing a batch once shutdown has begun (Redis may be gone for good).
const SHUTDOWN_ATTEMPTS: u32 = 5;

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
        let mut waiting = false;
        loop {
            match stream_len(&mut self.conn, &self.streams.firehose_live).await {
                Ok(len) if len < self.high_water_mark => break,
                Ok(len) => {
                    if !waiting {
                        tracing::warn!(stream = %self.streams.firehose_live, len, high_water_mark = self.high_water_mark, "backpressure: waiting for consumers to drain the stream");
                        waiting = true;
                        self.metrics.backpressure_active.set(1);
                    }
                }
                Err(err) => {
                    self.metrics.errors[crate::metrics::ErrorKind::Redis].inc();
                    tracing::warn!(error = %err, "cannot check the stream length; retrying");
                }
            }
            if sleep_or_shutdown(self.poll, shutdown).await {
                break;
            }
        }
        if waiting {
            tracing::info!(stream = %self.streams.firehose_live, "backpressure released");
        }
        self.metrics.backpressure_active.set(0);
    }

    /// Writes `batch` and its cursor atomically, retrying until it is written. After shutdown
    /// began it gives up after a few attempts and says how many events were not written.
    pub async fn write(&mut self, batch: &Batch, cursor_key: &str, shutdown: &Shutdown) -> bool {
        if batch.events.is_empty() && batch.cursor.is_none() {
            return true;
        }
        let payloads: Vec<String> = batch
            .events
            .iter()
            .filter_map(|event| match serde_json::to_string(event) {
                Ok(json) => Some(json),
                Err(err) => {
                    // Values that came from DAG-CBOR always serialize; count it if one does not.
                    self.metrics.errors[crate::metrics::ErrorKind::Serialize].inc();
                    tracing::error!(error = %err, seq = event.seq(), "cannot serialize an event");
                    None
                }
            })
            .collect();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            match self.write_once(&payloads, batch.cursor, cursor_key).await {
                Ok(()) => {
                    self.metrics.stream_events.inc_by(payloads.len() as u64);
                    self.metrics.events_in_memory.sub(batch.events.len() as i64);
                    return true;
                }
                Err(err) => {
                    if shutdown.is_cancelled() && attempts >= SHUTDOWN_ATTEMPTS {
                        tracing::error!(error = %err, events = payloads.len(), cursor = ?batch.cursor, "shutting down without writing the last batch: Redis refused it {attempts} times");
                        return false;
                    }
                    tracing::warn!(error = %err, events = payloads.len(), "batch not written; retrying");
                    tokio::time::sleep(RETRY_DELAY).await;
                }
            }
        }
    }

    /// One MULTI/EXEC: every XADD of the batch, then the cursor SET.
    #[counted(metrics = self.metrics, events = batch_writes, errors = errors, duration = batch_write_seconds)]
    async fn write_once(
        &mut self,
        payloads: &[String],
        cursor: Option<i64>,
        cursor_key: &str,
    ) -> Result<(), StoreError> {
        let mut pipeline = AtomicBatch::new();
        for payload in payloads {
            pipeline.xadd(&self.streams.firehose_live, &[(EVENT_FIELD, payload)]);
        }
        if let Some(cursor) = cursor {
            pipeline.set(cursor_key, &cursor.to_string());
        }
        pipeline.commit(&mut self.conn).await.map(|_| ())
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
