//! The ingester: AT Protocol relays' firehoses, their repository listings and labelers' label
//! streams, into Redis streams, with every step measured.
//!
//! One module per stage:
//! - [`config`]: the environment, read once;
//! - [`source`]: websocket subscriptions with reconnect and cursor resume;
//! - [`decode`]: frames to stream events (validate, filter, count);
//! - [`batch`]: events to batches by size and time;
//! - [`sink`]: atomic, repeatable writes with their cursor, backpressure, stream-length
//!   sampling;
//! - [`backfill`]: `listRepos` into `repo_backfill`;
//! - [`labeler`]: `subscribeLabels` into `label_live`;
//! - [`metrics`]: the metric set, [`IngesterMetrics`].
//!
//! The library takes its metric set by reference: `main` passes the process-wide set, tests a
//! set registered in a registry of their own.
#![warn(missing_docs)]

pub mod backfill;
pub mod batch;
pub mod config;
pub mod decode;
pub mod labeler;
pub mod metrics;
pub mod sink;
pub mod source;

use std::sync::Arc;

use rsky_common::shutdown::Shutdown;
use rsky_common::store::{self, Connection, StoreError};
use rsky_common::time::now_rfc3339;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

pub use config::{Config, Host, Mode};
pub use metrics::IngesterMetrics;

use crate::batch::Input;
use crate::decode::decode_frame;
use crate::sink::FirehoseSink;
use crate::source::{FrameHandler, Handled, Subscription};

/// The subscribeRepos method.
pub const SUBSCRIBE_REPOS: &str = "com.atproto.sync.subscribeRepos";

/// Why the ingester could not run.
#[derive(Debug, thiserror::Error)]
pub enum IngesterError {
    /// Redis cannot be reached.
    #[error(transparent)]
    Redis(#[from] StoreError),
}

/// Runs every stage `config.mode` asks for until `shutdown`; then flushes the batches in hand
/// with their cursors and returns.
pub async fn run(
    config: Config,
    metrics: Arc<IngesterMetrics>,
    shutdown: Shutdown,
) -> Result<(), IngesterError> {
    let conn = config.pipeline.connect().await?;
    tracing::info!(redis = %store::redact_url(&config.pipeline.redis_url), mode = ?config.mode, prefix = %config.pipeline.streams.prefix, "ingester starting");
    let config = Arc::new(config);
    let mut tasks = JoinSet::new();
    {
        let (config, conn, shutdown) = (config.clone(), conn.clone(), shutdown.clone());
        let metrics = metrics.clone();
        tasks.spawn(async move {
            sink::sample_stream_lengths(
                conn,
                &config.pipeline.streams,
                &metrics,
                config.sample_interval,
                &shutdown,
            )
            .await
        });
    }
    if config.mode.firehose() {
        for host in config.relay_hosts.clone() {
            let (config, conn, shutdown) = (config.clone(), conn.clone(), shutdown.clone());
            let metrics = metrics.clone();
            tasks.spawn(async move { run_firehose(host, config, conn, metrics, shutdown).await });
        }
    }
    if config.mode.backfill() {
        let (config, conn, shutdown) = (config.clone(), conn.clone(), shutdown.clone());
        let metrics = metrics.clone();
        tasks
            .spawn(async move { backfill::run_backfill(&config, conn, &metrics, &shutdown).await });
    }
    if config.mode.labeler() {
        for host in config.labeler_hosts.clone() {
            let (config, conn, shutdown) = (config.clone(), conn.clone(), shutdown.clone());
            let metrics = metrics.clone();
            tasks.spawn(async move {
                labeler::run_labeler(&host, &config, conn, &metrics, &shutdown).await
            });
        }
    }
    while let Some(joined) = tasks.join_next().await {
        if let Err(err) = joined {
            metrics.errors[crate::metrics::ErrorKind::Panic].inc();
            tracing::error!(error = %err, "an ingester task failed");
        }
    }
    tracing::info!("ingester stopped");
    Ok(())
}

/// Decodes frames on the socket's task and hands them to the writer through a bounded channel:
/// when the writer waits, `send` waits, and the socket is not read.
struct FirehoseReader {
    tx: mpsc::Sender<Input>,
    metrics: Arc<IngesterMetrics>,
}

impl FrameHandler for FirehoseReader {
    async fn handle(&mut self, frame: Vec<u8>) -> Handled {
        let decoded = decode_frame(&frame, &now_rfc3339(), &self.metrics);
        if decoded.future_cursor {
            return Handled::FutureCursor;
        }
        let Some(seq) = decoded.seq else {
            // Without a seq a frame yields no event (info, error, malformed, unknown).
            return Handled::Skipped;
        };
        let events = decoded.events.len() as i64;
        self.metrics.events_in_memory.add(events);
        if self.tx.send(Input::Frame(decoded)).await.is_err() {
            // The writer ended (on shutdown, or Redis refused a batch at shutdown): do not
            // advance past this frame.
            self.metrics.events_in_memory.sub(events);
            return Handled::Skipped;
        }
        Handled::Seq(seq)
    }

    async fn drop_cursor(&mut self) {
        // In order with the frames before it: the writer writes them, then deletes the cursor.
        let _ = self.tx.send(Input::DropCursor).await;
    }
}

/// One relay: its subscription and its writer, joined by a bounded channel.
pub async fn run_firehose(
    host: Host,
    config: Arc<Config>,
    conn: Connection,
    metrics: Arc<IngesterMetrics>,
    shutdown: Shutdown,
) {
    let cursor_key = config
        .pipeline
        .streams
        .cursor_key(&config.pipeline.streams.firehose_live, &host.name);
    let cursor = sink::stored_seq(&mut conn.clone(), &cursor_key, &metrics, &shutdown).await;
    tracing::info!(host = %host.name, ?cursor, "firehose starting");
    let (tx, rx) = mpsc::channel::<Input>(config.channel_capacity);
    let writer = {
        let (config, shutdown, metrics) = (config.clone(), shutdown.clone(), metrics.clone());
        tokio::spawn(async move {
            let sink = FirehoseSink {
                conn,
                streams: &config.pipeline.streams,
                metrics: &metrics,
                high_water_mark: config.high_water_mark,
                poll: config.pipeline.backpressure_poll,
            };
            write_batches(rx, sink, &config, &cursor_key, &shutdown).await;
        })
    };
    let subscription = Subscription::new(host, SUBSCRIBE_REPOS, &config);
    let mut reader = FirehoseReader {
        tx,
        metrics: metrics.clone(),
    };
    source::run(&subscription, cursor, &mut reader, &metrics, &shutdown).await;
    // Closing the channel lets the writer drain what is left, write it, and end.
    drop(reader);
    if let Err(err) = writer.await {
        metrics.errors[crate::metrics::ErrorKind::Panic].inc();
        tracing::error!(error = %err, "the firehose writer failed");
    }
}

/// The firehose writer: batches from `rx`, each written after waiting for room, until the
/// channel closes. A batch abandoned at shutdown (Redis refused it) ends the writer there:
/// writing a later batch would move the stored cursor past the abandoned events.
async fn write_batches(
    mut rx: mpsc::Receiver<Input>,
    mut sink: FirehoseSink<'_>,
    config: &Config,
    cursor_key: &str,
    shutdown: &Shutdown,
) {
    while let Some(batch) =
        batch::next_batch(&mut rx, config.batch_size, config.batch_timeout).await
    {
        sink.wait_for_room(shutdown).await;
        if !sink.write(&batch, cursor_key, shutdown).await {
            rx.close();
            let mut left = 0usize;
            while let Ok(input) = rx.try_recv() {
                if let Input::Frame(decoded) = input {
                    left += decoded.events.len();
                }
            }
            tracing::error!(
                abandoned = batch.events.len(),
                not_written_after_it = left,
                cursor_key,
                "the writer stops at the first batch it could not write; the stored cursor still covers only what was written"
            );
            return;
        }
        if batch.drop_cursor {
            tracing::warn!(cursor_key, "FutureCursor: deleting the stored cursor");
            if !sink::drop_cursor(&mut sink.conn, cursor_key, sink.metrics, shutdown).await {
                return;
            }
        }
    }
}
