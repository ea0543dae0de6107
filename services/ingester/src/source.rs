//! Websocket subscriptions (`subscribeRepos`, `subscribeLabels`): connect, hand each binary
//! message to a handler, and reconnect with backoff from the last seq handled.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use rsky_common::shutdown::Shutdown;
use tokio_tungstenite::tungstenite::Message;

use crate::config::Host;
use crate::metrics::IngesterMetrics;

/// What a subscription does with each frame.
pub trait FrameHandler: Send {
    /// Handles one binary message; returns the seq to resume after, if the frame had one.
    /// Waiting here (a full channel) stops reading from the socket: that is the backpressure.
    fn handle(&mut self, frame: Vec<u8>) -> impl Future<Output = Option<i64>> + Send;
}

/// Why a connection ended.
#[derive(PartialEq)]
enum Ended {
    /// The service is stopping.
    Shutdown,
    /// The server closed it, or it failed: reconnect.
    Lost,
}

/// Where and how to subscribe.
#[derive(Clone, Debug)]
pub struct Subscription {
    /// The relay or labeler.
    pub host: Host,
    /// `com.atproto.sync.subscribeRepos` or `com.atproto.label.subscribeLabels`.
    pub nsid: &'static str,
    /// First reconnect delay.
    pub reconnect_min: Duration,
    /// Longest reconnect delay.
    pub reconnect_max: Duration,
}

impl Subscription {
    /// The URL to connect to, resuming after `cursor`.
    pub fn url(&self, cursor: Option<i64>) -> String {
        let base = format!("{}/xrpc/{}", self.host.ws_base, self.nsid);
        match cursor {
            Some(cursor) => format!("{base}?cursor={cursor}"),
            None => base,
        }
    }
}

/// Follows `subscription` until `shutdown`, starting after `cursor` and resuming after the last
/// seq the handler returned on every reconnect.
pub async fn run<H: FrameHandler>(
    subscription: &Subscription,
    mut cursor: Option<i64>,
    handler: &mut H,
    metrics: &IngesterMetrics,
    shutdown: &Shutdown,
) {
    let mut delay = subscription.reconnect_min;
    while !shutdown.is_cancelled() {
        let url = subscription.url(cursor);
        let connected = tokio::select! {
            _ = shutdown.cancelled() => return,
            result = tokio_tungstenite::connect_async(url.as_str()) => result,
        };
        let mut socket = match connected {
            Ok((socket, _response)) => socket,
            Err(err) => {
                metrics.errors[crate::metrics::ErrorKind::Connection].inc();
                tracing::warn!(%url, error = %err, retry_in = ?delay, "cannot connect");
                if sleep_or_shutdown(delay, shutdown).await {
                    return;
                }
                delay = (delay * 2).min(subscription.reconnect_max);
                continue;
            }
        };
        tracing::info!(%url, "connected");
        metrics.websocket_connections.inc();
        let mut frames = 0u64;
        let ended = loop {
            let message = tokio::select! {
                _ = shutdown.cancelled() => break Ended::Shutdown,
                message = socket.next() => message,
            };
            match message {
                Some(Ok(Message::Binary(bytes))) => {
                    frames += 1;
                    if let Some(seq) = handler.handle(bytes.into()).await {
                        cursor = Some(seq);
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    tracing::info!(%url, ?frame, "the server closed the connection");
                    break Ended::Lost;
                }
                // Pings are answered by tungstenite; text frames are not part of the protocol.
                Some(Ok(Message::Text(text))) => {
                    metrics.errors[crate::metrics::ErrorKind::Decode].inc();
                    tracing::warn!(%url, len = text.len(), "unexpected text message skipped");
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => {
                    metrics.errors[crate::metrics::ErrorKind::Connection].inc();
                    tracing::warn!(%url, error = %err, "connection failed");
                    break Ended::Lost;
                }
                None => {
                    metrics.errors[crate::metrics::ErrorKind::Connection].inc();
                    tracing::warn!(%url, "connection ended without a close frame");
                    break Ended::Lost;
                }
            }
        };
        metrics.websocket_connections.dec();
        if ended == Ended::Shutdown {
            let _ = socket.close(None).await;
            return;
        }
        // A connection that delivered frames was healthy: start the backoff over.
        if frames > 0 {
            delay = subscription.reconnect_min;
        }
        tracing::info!(%url, ?cursor, retry_in = ?delay, "reconnecting");
        if sleep_or_shutdown(delay, shutdown).await {
            return;
        }
        delay = (delay * 2).min(subscription.reconnect_max);
    }
}

/// Sleeps for `delay`; returns true when shutdown came first.
pub(crate) async fn sleep_or_shutdown(delay: Duration, shutdown: &Shutdown) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => true,
        _ = tokio::time::sleep(delay) => false,
    }
}
