//! Labeler mode: `com.atproto.label.subscribeLabels` on each labeler into `label_live`, each
//! `#labels` frame written with its cursor in one guarded script (a repeated write adds nothing).

use rsky_atproto::firehose::{decode_label_frame, FrameError, LabelFrame};
use rsky_common::event::{Label, LabelsEvent};
use rsky_common::shutdown::Shutdown;
use rsky_common::store::Connection;
use rsky_common::streams::{Streams, LABELS_FIELD};
use rsky_metrics_runtime::counted;

use crate::config::{Config, Host};
use crate::decode::FUTURE_CURSOR;
use crate::metrics::IngesterMetrics;
use crate::sink::{guarded_write, stored_seq};
use crate::source::{self, sleep_or_shutdown, FrameHandler, Handled, Subscription};

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
    async fn handle(&mut self, frame: Vec<u8>) -> Handled {
        let event = match decode_label_frame(&frame) {
            Ok(LabelFrame::Labels(event)) => event,
            Ok(LabelFrame::Info(info)) => {
                tracing::info!(name = %info.name, message = ?info.message, "#info from the labeler");
                return Handled::Skipped;
            }
            Ok(LabelFrame::Error(error)) => {
                self.metrics.errors[crate::metrics::ErrorKind::ErrorFrame].inc();
                tracing::warn!(error = %error.error, message = ?error.message, "error frame from the labeler");
                if error.error == FUTURE_CURSOR {
                    return Handled::FutureCursor;
                }
                return Handled::Skipped;
            }
            Err(FrameError::UnknownType(t)) => {
                tracing::debug!(%t, "labeler frame of an unknown type skipped");
                return Handled::Skipped;
            }
            Err(err) => {
                self.metrics.errors[crate::metrics::ErrorKind::Decode].inc();
                tracing::warn!(error = %err, "malformed labeler frame skipped");
                return Handled::Skipped;
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
                return Handled::Seq(event.seq);
            }
        };
        // Never drop labels: retry until written, or until shutdown (then resume from the cursor).
        loop {
            let written = guarded_write(
                &mut self.conn,
                &self.streams.label_live,
                LABELS_FIELD,
                &[(event.seq, &json)],
                Some(event.seq),
                &self.cursor_key,
            )
            .await;
            match written {
                Ok(added) => {
                    if added > 0 {
                        self.metrics.labels_written.inc_by(count);
                    }
                    return Handled::Seq(event.seq);
                }
                Err(err) => {
                    self.metrics.errors[crate::metrics::ErrorKind::Redis].inc();
                    tracing::warn!(error = %err, seq = event.seq, "labels not written; retrying");
                    if sleep_or_shutdown(std::time::Duration::from_millis(500), self.shutdown).await
                    {
                        return Handled::Skipped;
                    }
                }
            }
        }
    }

    async fn drop_cursor(&mut self) {
        // Frames are written as they are handled: nothing is in flight before this.
        crate::sink::drop_cursor(
            &mut self.conn,
            &self.cursor_key,
            self.metrics,
            self.shutdown,
        )
        .await;
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
        .pipeline
        .streams
        .cursor_key(&config.pipeline.streams.label_live, &host.name);
    let cursor = stored_seq(&mut conn.clone(), &cursor_key, metrics, shutdown).await;
    let mut writer = LabelWriter {
        conn,
        streams: &config.pipeline.streams,
        cursor_key,
        metrics,
        shutdown,
    };
    let subscription = Subscription::new(host.clone(), SUBSCRIBE_LABELS, config);
    source::run(&subscription, cursor, &mut writer, metrics, shutdown).await;
}
