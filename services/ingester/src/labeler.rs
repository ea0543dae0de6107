//! Labeler mode: `com.atproto.label.subscribeLabels` on each labeler into `label_live`, each
//! `#labels` frame written with its cursor in one transaction.

use rsky_atproto::firehose::{decode_label_frame, FrameError, LabelFrame};
use rsky_common::event::{Label, LabelsEvent};
use rsky_common::shutdown::Shutdown;
use rsky_common::store::{AtomicBatch, Connection};
use rsky_common::streams::{Streams, LABELS_FIELD};
use rsky_metrics_runtime::counted;

use crate::config::{Config, Host};
use crate::metrics::IngesterMetrics;
use crate::sink::stored_seq;
use crate::source::{self, sleep_or_shutdown, FrameHandler, Subscription};

/// The subscribeLabels method.
pub const SUBSCRIBE_LABELS: &str = "com.atproto.label.subscribeLabels";

struct LabelWriter<'a> {
    conn: Connection,
    streams: &'a Streams,
    cursor_key: String,
    metrics: &'a IngesterMetrics,
    shutdown: &'a Shutdown,
}

impl FrameHandler for LabelWriter<'_> {
    #[counted(metrics = self.metrics, events = labeler_events)]
    async fn handle(&mut self, frame: Vec<u8>) -> Option<i64> {
        let event = match decode_label_frame(&frame) {
            Ok(LabelFrame::Labels(event)) => event,
            Ok(LabelFrame::Info(info)) => {
                tracing::info!(name = %info.name, message = ?info.message, "#info from the labeler");
                return None;
            }
            Ok(LabelFrame::Error(error)) => {
                self.metrics.errors[crate::metrics::ErrorKind::ErrorFrame].inc();
                tracing::warn!(error = %error.error, message = ?error.message, "error frame from the labeler");
                return None;
            }
            Err(FrameError::UnknownType(t)) => {
                tracing::debug!(%t, "labeler frame of an unknown type skipped");
                return None;
            }
            Err(err) => {
                self.metrics.errors[crate::metrics::ErrorKind::Decode].inc();
                tracing::warn!(error = %err, "malformed labeler frame skipped");
                return None;
            }
        };
        let payload = LabelsEvent {
            seq: event.seq,
            labels: event
                .labels
                .into_iter()
                .map(|l| Label {
                    src: l.src,
                    uri: l.uri,
                    cid: l.cid,
                    val: l.val,
                    neg: l.neg,
                    cts: l.cts,
                })
                .collect(),
        };
        let count = payload.labels.len() as u64;
        let json = match serde_json::to_string(&payload) {
            Ok(json) => json,
            Err(err) => {
                self.metrics.errors[crate::metrics::ErrorKind::Serialize].inc();
                tracing::error!(error = %err, seq = event.seq, "cannot serialize labels");
                return Some(event.seq);
            }
        };
        // Never drop labels: retry until written, or until shutdown (then resume from the cursor).
        loop {
            let mut batch = AtomicBatch::new();
            batch
                .xadd(&self.streams.label_live, &[(LABELS_FIELD, &json)])
                .set(&self.cursor_key, &event.seq.to_string());
            match batch.commit(&mut self.conn).await {
                Ok(_) => {
                    self.metrics.labels_written.inc_by(count);
                    return Some(event.seq);
                }
                Err(err) => {
                    self.metrics.errors[crate::metrics::ErrorKind::Redis].inc();
                    tracing::warn!(error = %err, seq = event.seq, "labels not written; retrying");
                    if sleep_or_shutdown(std::time::Duration::from_millis(500), self.shutdown).await
                    {
                        return None;
                    }
                }
            }
        }
    }
}

/// Follows one labeler until shutdown, resuming from its stored cursor.
pub async fn run_labeler(
    host: &Host,
    config: &Config,
    conn: Connection,
    metrics: &IngesterMetrics,
    shutdown: &Shutdown,
) {
    let cursor_key = config
        .streams
        .cursor_key(&config.streams.label_live, &host.name);
    let cursor = stored_seq(&mut conn.clone(), &cursor_key, metrics, shutdown).await;
    let mut writer = LabelWriter {
        conn,
        streams: &config.streams,
        cursor_key,
        metrics,
        shutdown,
    };
    let subscription = Subscription {
        host: host.clone(),
        nsid: SUBSCRIBE_LABELS,
        reconnect_min: config.reconnect_min,
        reconnect_max: config.reconnect_max,
    };
    source::run(&subscription, cursor, &mut writer, metrics, shutdown).await;
}
