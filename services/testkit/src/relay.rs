//! The test relay: a loopback server speaking `com.atproto.sync.subscribeRepos`,
//! `com.atproto.sync.listRepos` and `com.atproto.label.subscribeLabels`, serving frames from
//! in-memory logs, with knobs for the failures a consumer must survive: disconnects, failing
//! listRepos pages, a relay that stalls ([`Stall`]) and one that answers `FutureCursor`.

use crate::lock;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::log::{FrameLog, Item};

/// How a stalled relay treats new websocket connections ([`TestRelay::set_stall`]); both hold
/// the connection until [`TestRelay::drop_connections`] or the relay is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stall {
    /// The HTTP upgrade request is read and never answered.
    Upgrade,
    /// The upgrade completes, then the relay neither sends nor reads anything (so pings are
    /// never answered).
    AfterUpgrade,
}

/// Frames kept per log unless [`TestRelay::start_with_capacity`] says otherwise.
pub const DEFAULT_LOG_CAPACITY: usize = 1_000_000;

/// A repository as `listRepos` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedRepo {
    /// The account DID.
    pub did: String,
    /// CID of the repository's current commit.
    pub head: String,
    /// Revision of that commit.
    pub rev: String,
    /// Whether the account is active.
    pub active: bool,
    /// Why it is not active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

struct Shared {
    repos: FrameLog,
    labels: FrameLog,
    listed: Mutex<Vec<ListedRepo>>,
    disconnect_after: Mutex<VecDeque<usize>>,
    repo_cursors: Mutex<Vec<Option<i64>>>,
    label_cursors: Mutex<Vec<Option<i64>>>,
    list_failures: AtomicUsize,
    stall: Mutex<Option<Stall>>,
    reject_future_cursors: AtomicBool,
    list_requests: AtomicUsize,
    open_connections: AtomicUsize,
    frames_sent: AtomicUsize,
    /// Bumped to close every open connection at once.
    generation: watch::Sender<u64>,
}

/// A running test relay. Dropping it stops the server.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
/// use rsky_testkit::{FirehoseScript, TestRelay};
///
/// let relay = TestRelay::start().await?;
/// let mut script = FirehoseScript::new(1);
/// script.identity("did:plc:alice", Some("alice.test")).unwrap();
/// relay.push(script.take_items());
/// assert!(relay.ws_url().starts_with("ws://127.0.0.1:"));
/// assert_eq!(relay.last_seq(), Some(1));
/// # Ok(()) }
/// ```
pub struct TestRelay {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        self.shared.generation.send_modify(|g| *g += 1);
        self.server.abort();
    }
}

impl TestRelay {
    /// Starts a relay on `127.0.0.1` on a free port.
    pub async fn start() -> std::io::Result<TestRelay> {
        Self::start_with_capacity(SocketAddr::from(([127, 0, 0, 1], 0)), DEFAULT_LOG_CAPACITY).await
    }

    /// Starts a relay on `addr`, keeping at most `capacity` frames per log.
    pub async fn start_with_capacity(
        addr: SocketAddr,
        capacity: usize,
    ) -> std::io::Result<TestRelay> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            repos: FrameLog::new(capacity),
            labels: FrameLog::new(capacity),
            listed: Mutex::new(Vec::new()),
            disconnect_after: Mutex::new(VecDeque::new()),
            repo_cursors: Mutex::new(Vec::new()),
            label_cursors: Mutex::new(Vec::new()),
            list_failures: AtomicUsize::new(0),
            stall: Mutex::new(None),
            reject_future_cursors: AtomicBool::new(false),
            list_requests: AtomicUsize::new(0),
            open_connections: AtomicUsize::new(0),
            frames_sent: AtomicUsize::new(0),
            generation: watch::Sender::new(0),
        });
        let app = Router::new()
            .route(
                "/xrpc/com.atproto.sync.subscribeRepos",
                get(subscribe_repos),
            )
            .route(
                "/xrpc/com.atproto.label.subscribeLabels",
                get(subscribe_labels),
            )
            .route("/xrpc/com.atproto.sync.listRepos", get(list_repos))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                tracing::error!(error = %err, "test relay stopped");
            }
        });
        tracing::debug!(%addr, "test relay listening");
        Ok(TestRelay {
            addr,
            shared,
            server,
        })
    }

    /// The address the relay listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://127.0.0.1:PORT`: the host to give a firehose consumer.
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT`: the host to give a listRepos client.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Appends frames to the `subscribeRepos` log; subscribers receive them live.
    pub fn push(&self, items: impl IntoIterator<Item = Item>) {
        self.shared.repos.extend(items);
    }

    /// Appends frames to the `subscribeLabels` log.
    pub fn push_labels(&self, items: impl IntoIterator<Item = Item>) {
        self.shared.labels.extend(items);
    }

    /// The repositories `listRepos` pages through (sorted by DID when served).
    pub fn set_listed_repos(&self, repos: Vec<ListedRepo>) {
        let mut repos = repos;
        repos.sort_by(|a, b| a.did.cmp(&b.did));
        *lock(&self.shared.listed) = repos;
    }

    /// The next `subscribeRepos` connection is cut (TCP closed, no close frame) after `frames`
    /// frames. Calls queue up, one per future connection.
    pub fn disconnect_after(&self, frames: usize) {
        lock(&self.shared.disconnect_after).push_back(frames);
    }

    /// The next `times` `listRepos` requests fail with a 500.
    pub fn fail_list_repos(&self, times: usize) {
        self.shared.list_failures.store(times, Ordering::SeqCst);
    }

    /// Stalls the websocket connections that arrive from now on (`subscribeRepos` and
    /// `subscribeLabels`); `None` serves them again. Connections already stalled stay so.
    pub fn set_stall(&self, stall: Option<Stall>) {
        *lock(&self.shared.stall) = stall;
    }

    /// When `on`, a subscription whose cursor is ahead of its log's last seq (any cursor on an
    /// empty log) gets a `FutureCursor` error frame and a close, as the spec has relays answer.
    pub fn reject_future_cursors(&self, on: bool) {
        self.shared
            .reject_future_cursors
            .store(on, Ordering::SeqCst);
    }

    /// Cuts every open connection now.
    pub fn drop_connections(&self) {
        self.shared.generation.send_modify(|g| *g += 1);
    }

    /// The cursor of each `subscribeRepos` connection so far, in order.
    pub fn repo_cursors(&self) -> Vec<Option<i64>> {
        lock(&self.shared.repo_cursors).clone()
    }

    /// The cursor of each `subscribeLabels` connection so far, in order.
    pub fn label_cursors(&self) -> Vec<Option<i64>> {
        lock(&self.shared.label_cursors).clone()
    }

    /// How many `listRepos` requests were served (failures included).
    pub fn list_requests(&self) -> usize {
        self.shared.list_requests.load(Ordering::SeqCst)
    }

    /// Websocket connections open now.
    pub fn open_connections(&self) -> usize {
        self.shared.open_connections.load(Ordering::SeqCst)
    }

    /// Frames sent over all connections so far.
    pub fn frames_sent(&self) -> usize {
        self.shared.frames_sent.load(Ordering::SeqCst)
    }

    /// The highest seq in the `subscribeRepos` log.
    pub fn last_seq(&self) -> Option<i64> {
        self.shared.repos.last_seq()
    }
}

#[derive(Deserialize)]
struct CursorQuery {
    cursor: Option<i64>,
}

async fn subscribe_repos(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<CursorQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    lock(&shared.repo_cursors).push(query.cursor);
    let limit = lock(&shared.disconnect_after).pop_front();
    let log = shared.repos.clone();
    subscribe(
        shared,
        log,
        query.cursor,
        limit,
        ws,
        future_cursor_repo_frame,
    )
    .await
}

async fn subscribe_labels(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<CursorQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    lock(&shared.label_cursors).push(query.cursor);
    let log = shared.labels.clone();
    subscribe(
        shared,
        log,
        query.cursor,
        None,
        ws,
        future_cursor_label_frame,
    )
    .await
}

fn future_cursor_repo_frame() -> Option<Vec<u8>> {
    use rsky_atproto::firehose::{encode_repo_frame, ErrorFrame, RepoFrame};
    encode_repo_frame(&RepoFrame::Error(ErrorFrame {
        error: "FutureCursor".into(),
        message: Some("cursor is ahead of the relay's sequence".into()),
    }))
    .ok()
}

fn future_cursor_label_frame() -> Option<Vec<u8>> {
    use rsky_atproto::firehose::{encode_label_frame, ErrorFrame, LabelFrame};
    encode_label_frame(&LabelFrame::Error(ErrorFrame {
        error: "FutureCursor".into(),
        message: Some("cursor is ahead of the labeler's sequence".into()),
    }))
    .ok()
}

/// A subscription: stalled, rejected as a future cursor, or served from `log`.
async fn subscribe(
    shared: Arc<Shared>,
    log: FrameLog,
    cursor: Option<i64>,
    limit: Option<usize>,
    ws: WebSocketUpgrade,
    future_cursor_frame: fn() -> Option<Vec<u8>>,
) -> Response {
    let stall = *lock(&shared.stall);
    match stall {
        Some(Stall::Upgrade) => {
            // No response: the client waits for its upgrade until the relay cuts or drops it.
            let mut cut = shared.generation.subscribe();
            cut.mark_unchanged();
            let _ = cut.changed().await;
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        Some(Stall::AfterUpgrade) => return ws.on_upgrade(move |socket| hold(socket, shared)),
        None => {}
    }
    let future = shared.reject_future_cursors.load(Ordering::SeqCst)
        && cursor.is_some_and(|cursor| cursor > log.last_seq().unwrap_or(0));
    if future {
        return ws.on_upgrade(move |mut socket| async move {
            if let Some(frame) = future_cursor_frame() {
                let _ = socket.send(Message::Binary(frame.into())).await;
            }
            let _ = socket.send(Message::Close(None)).await;
        });
    }
    ws.on_upgrade(move |socket| serve_log(socket, shared, log, cursor, limit))
}

/// Holds an upgraded connection without reading or writing, until the relay cuts it.
async fn hold(socket: WebSocket, shared: Arc<Shared>) {
    shared.open_connections.fetch_add(1, Ordering::SeqCst);
    let mut cut = shared.generation.subscribe();
    cut.mark_unchanged();
    let _ = cut.changed().await;
    shared.open_connections.fetch_sub(1, Ordering::SeqCst);
    drop(socket);
}

/// Sends the log from the cursor on, then follows it live, until the consumer leaves, the
/// relay cuts the connection, or `limit` frames were sent (then the TCP connection is dropped
/// without a close frame: a mid-stream disconnect).
async fn serve_log(
    mut socket: WebSocket,
    shared: Arc<Shared>,
    log: FrameLog,
    cursor: Option<i64>,
    limit: Option<usize>,
) {
    shared.open_connections.fetch_add(1, Ordering::SeqCst);
    let mut cut = shared.generation.subscribe();
    cut.mark_unchanged();
    let mut pos = log.start_position(cursor);
    let mut sent = 0usize;
    'serve: loop {
        let (items, next) = log.read_from(pos, 256);
        if items.is_empty() {
            tokio::select! {
                _ = log.wait_beyond(pos) => continue,
                _ = cut.changed() => break 'serve,
                message = socket.recv() => match message {
                    // The consumer closed or the socket failed.
                    None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break 'serve,
                    Some(Ok(_)) => continue,
                },
            }
        }
        for item in items {
            if limit.is_some_and(|limit| sent >= limit) {
                break 'serve;
            }
            tokio::select! {
                result = socket.send(Message::Binary(item.frame)) => {
                    if result.is_err() {
                        break 'serve;
                    }
                }
                _ = cut.changed() => break 'serve,
            }
            sent += 1;
            shared.frames_sent.fetch_add(1, Ordering::Relaxed);
        }
        pos = next;
    }
    shared.open_connections.fetch_sub(1, Ordering::SeqCst);
    // Dropping the socket closes TCP without a close frame.
    drop(socket);
}

#[derive(Deserialize)]
struct ListReposQuery {
    cursor: Option<String>,
    limit: Option<i64>,
}

#[derive(Serialize)]
struct ListReposOutput {
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
    repos: Vec<ListedRepo>,
}

fn xrpc_error(status: StatusCode, error: &str, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({"error": error, "message": message})),
    )
        .into_response()
}

async fn list_repos(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<ListReposQuery>,
) -> Response {
    shared.list_requests.fetch_add(1, Ordering::SeqCst);
    let failing = shared
        .list_failures
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        return xrpc_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "scripted failure",
        );
    }
    let limit = query.limit.unwrap_or(500);
    if !(1..=1000).contains(&limit) {
        return xrpc_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "limit must be between 1 and 1000",
        );
    }
    let listed = lock(&shared.listed);
    let page: Vec<ListedRepo> = listed
        .iter()
        .filter(|repo| {
            query
                .cursor
                .as_ref()
                .is_none_or(|c| repo.did.as_str() > c.as_str())
        })
        .take(limit as usize)
        .cloned()
        .collect();
    // Like a PDS: a full page carries a cursor, even when nothing follows it.
    let cursor = (page.len() == limit as usize)
        .then(|| page.last().map(|r| r.did.clone()))
        .flatten();
    Json(ListReposOutput {
        cursor,
        repos: page,
    })
    .into_response()
}
