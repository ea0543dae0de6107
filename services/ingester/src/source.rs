//! Websocket subscriptions (`subscribeRepos`, `subscribeLabels`): connect within a timeout,
//! ping on an interval, hand each binary message to a handler, drop a connection on which
//! nothing arrives for the idle timeout, and reconnect with backoff from the last seq handled.
//!
//! `FutureCursor`: when a server answers that the cursor is ahead of its sequence and then
//! ends the connection, the cursor is dropped (here and, through the handler, in Redis) and the
//! next connection starts live, without one. See the README for what that may miss.

use std::future::Future;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rsky_common::shutdown::Shutdown;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use crate::config::{Config, Host};
use crate::metrics::{ErrorKind, IngesterMetrics};

/// What a handler made of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handled {
    /// Nothing to resume after (no seq, a skipped frame, or not handled at shutdown).
    Skipped,
    /// Handled: resume after this seq.
    Seq(i64),
    /// A `FutureCursor` error frame: the server's sequence is behind the cursor.
    FutureCursor,
}

/// What a subscription does with each frame.
pub trait FrameHandler: Send {
    /// Handles one binary message. Waiting here (a full channel) stops reading from the socket:
    /// that is the backpressure.
    fn handle(&mut self, frame: Vec<u8>) -> impl Future<Output = Handled> + Send;

    /// The subscription dropped its cursor after a `FutureCursor`: forget the stored cursor
    /// too, after everything handled before.
    fn drop_cursor(&mut self) -> impl Future<Output = ()> + Send;
}

/// Why a connection ended.
#[derive(PartialEq)]
enum Ended {
    /// The service is stopping.
    Shutdown,
    /// The server closed it, it failed or it went quiet: reconnect.
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
    /// Longest wait for TCP, TLS and the websocket upgrade together.
    pub connect_timeout: Duration,
    /// A connection on which nothing arrives (frame, ping or pong) for this long is dropped.
    pub idle_timeout: Duration,
    /// How often a ping is sent.
    pub ping_interval: Duration,
}

impl Subscription {
    /// `nsid` on `host`, with the reconnect and timeout settings of `config`.
    pub fn new(host: Host, nsid: &'static str, config: &Config) -> Self {
        Subscription {
            host,
            nsid,
            reconnect_min: config.reconnect_min,
            reconnect_max: config.reconnect_max,
            connect_timeout: config.ws_connect_timeout,
            idle_timeout: config.ws_idle_timeout,
            ping_interval: config.ws_ping_interval,
        }
    }

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
            result = tokio::time::timeout(
                subscription.connect_timeout,
                tokio_tungstenite::connect_async(url.as_str()),
            ) => result,
        };
        let failure = match connected {
            Ok(Ok((socket, _response))) => Ok(socket),
            Ok(Err(err)) => Err((ErrorKind::Connection, err.to_string())),
            Err(_) => Err((
                ErrorKind::Timeout,
                format!(
                    "no websocket (TCP, TLS and upgrade) within {:?}",
                    subscription.connect_timeout
                ),
            )),
        };
        let mut socket = match failure {
            Ok(socket) => socket,
            Err((kind, error)) => {
                metrics.errors[kind].inc();
                tracing::warn!(%url, %error, retry_in = ?delay, "cannot connect");
                if sleep_or_shutdown(delay, shutdown).await {
                    return;
                }
                delay = (delay * 2).min(subscription.reconnect_max);
                continue;
            }
        };
        tracing::info!(%url, "connected");
        metrics.websocket_connections.inc();
        let mut pings = tokio::time::interval_at(
            Instant::now() + subscription.ping_interval,
            subscription.ping_interval,
        );
        pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // The last time anything arrived (or the handler finished: time spent waiting on the
        // writer is backpressure, not silence).
        let mut heard = Instant::now();
        let mut frames = 0u64;
        let mut future_cursor = false;
        let ended = loop {
            let message = tokio::select! {
                _ = shutdown.cancelled() => break Ended::Shutdown,
                _ = tokio::time::sleep_until(heard + subscription.idle_timeout) => {
                    metrics.errors[ErrorKind::Timeout].inc();
                    tracing::warn!(%url, idle_timeout = ?subscription.idle_timeout, "nothing received (no frame, ping or pong) within the idle timeout");
                    break Ended::Lost;
                }
                _ = pings.tick() => {
                    let sent = tokio::time::timeout(
                        subscription.idle_timeout,
                        socket.send(Message::Ping(Default::default())),
                    )
                    .await;
                    match sent {
                        Ok(Ok(())) => continue,
                        Ok(Err(err)) => {
                            metrics.errors[ErrorKind::Connection].inc();
                            tracing::warn!(%url, error = %err, "cannot send a ping");
                        }
                        Err(_) => {
                            metrics.errors[ErrorKind::Timeout].inc();
                            tracing::warn!(%url, "a ping could not be sent within the idle timeout");
                        }
                    }
                    break Ended::Lost;
                }
                message = socket.next() => message,
            };
            heard = Instant::now();
            match message {
                Some(Ok(Message::Binary(bytes))) => {
                    frames += 1;
                    match handler.handle(bytes.into()).await {
                        Handled::Seq(seq) => {
                            cursor = Some(seq);
                            future_cursor = false;
                        }
                        Handled::FutureCursor => future_cursor = true,
                        Handled::Skipped => {}
                    }
                    heard = Instant::now();
                }
                Some(Ok(Message::Close(frame))) => {
                    tracing::info!(%url, ?frame, "the server closed the connection");
                    break Ended::Lost;
                }
                // Pings are answered by tungstenite; text frames are not part of the protocol.
                Some(Ok(Message::Text(text))) => {
                    metrics.errors[ErrorKind::Decode].inc();
                    tracing::warn!(%url, len = text.len(), "unexpected text message skipped");
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => {
                    metrics.errors[ErrorKind::Connection].inc();
                    tracing::warn!(%url, error = %err, "connection failed");
                    break Ended::Lost;
                }
                None => {
                    metrics.errors[ErrorKind::Connection].inc();
                    tracing::warn!(%url, "connection ended without a close frame");
                    break Ended::Lost;
                }
            }
        };
        metrics.websocket_connections.dec();
        if ended == Ended::Shutdown {
            let _ = tokio::time::timeout(subscription.connect_timeout, socket.close(None)).await;
            return;
        }
        if future_cursor && cursor.is_some() {
            // The server's sequence is behind ours (it was reset, or another server answers
            // under this name): our cursor means nothing there, and asking again with it is
            // answered the same way forever. Resume live; see the README's FutureCursor rule.
            tracing::error!(%url, ?cursor, "the server answered FutureCursor: dropping the cursor and resuming live; events it sequenced before this reconnect are not read");
            handler.drop_cursor().await;
            cursor = None;
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
