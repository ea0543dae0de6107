//! What every test of the pipeline shares, written once: the Redis and PostgreSQL servers the
//! tests use (`TEST_REDIS_URL`, `TEST_DATABASE_URL`), names no other test uses, one
//! [`wait_until`], a database per test ([`TestDb`]), stream names per test ([`TestStreams`]),
//! and a TCP fault proxy that a test can stall, cut and resume ([`TcpProxy`]).
//!
//! Test code: it panics with a message naming what is missing (a server, a database) rather
//! than returning errors, since a test cannot go on without it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rsky_common::event::{Label, LabelsEvent, StreamEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The Redis the tests use: `TEST_REDIS_URL` (`./scripts/test-all.sh` sets it to its throwaway
/// server), or `redis://127.0.0.1:6379`.
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned())
}

/// The Redis server's address (for a [`TcpProxy`] in front of it).
pub fn redis_addr() -> SocketAddr {
    let url = redis_url();
    let rest = url
        .strip_prefix("redis://")
        .unwrap_or_else(|| panic!("TEST_REDIS_URL={url:?} is not a redis:// URL"));
    let authority = rest.rsplit_once('@').map_or(rest, |(_, a)| a);
    let authority = authority.split('/').next().unwrap_or(authority);
    resolve(authority, 6379, "TEST_REDIS_URL")
}

/// A multiplexed connection to the tests' Redis.
pub async fn redis() -> redis::aio::MultiplexedConnection {
    let url = redis_url();
    redis::Client::open(url.as_str())
        .unwrap_or_else(|err| panic!("TEST_REDIS_URL={url:?}: {err}"))
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|err| panic!("the tests need Redis at {url}: {err}"))
}

/// Deletes every key that starts with `prefix` (the tests' Redis is shared).
///
/// # Panics
/// On an empty prefix, which would delete every key.
pub async fn delete_prefix<C: redis::aio::ConnectionLike + Send>(conn: &mut C, prefix: &str) {
    assert!(!prefix.is_empty(), "refusing to delete every key");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(conn)
        .await
        .unwrap_or_default();
    if !keys.is_empty() {
        let _: Result<(), _> = redis::cmd("DEL").arg(&keys).query_async(conn).await;
    }
}

/// Deletes every key under `prefix` with a blocking connection (for `Drop`).
pub fn delete_prefix_blocking(prefix: &str) {
    if prefix.is_empty() {
        return;
    }
    if let Ok(client) = redis::Client::open(redis_url().as_str()) {
        if let Ok(mut conn) = client.get_connection() {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{prefix}*"))
                .query(&mut conn)
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: Result<(), _> = redis::cmd("DEL").arg(keys).query(&mut conn);
            }
        }
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name no other test (or test run) uses: `{tag}_{pid}_{n}_{nanos}`, only ASCII letters,
/// digits and `_` when `tag` is (a valid PostgreSQL database name).
pub fn unique_name(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{tag}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A Redis key prefix no other test uses: `t:{tag}:{pid}:{n}:{nanos}:`.
pub fn unique_prefix(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "t:{tag}:{}:{}:{nanos}:",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Polls `check` every 20 ms until it holds; panics naming `what` once `within` has passed.
pub async fn wait_until<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        if Instant::now() > deadline {
            panic!("timed out after {within:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The tests' PostgreSQL admin URL: `TEST_DATABASE_URL` (such as
/// `postgres://postgres:secret@127.0.0.1:5432/postgres`; `./scripts/test-all.sh` sets it to its
/// throwaway server), or the local trust-auth server `postgres://postgres@127.0.0.1:5432/postgres`.
pub fn pg_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// The tests' PostgreSQL server, as `(user[:password], host, port)`, from [`pg_admin_url`].
pub fn pg_server() -> (String, String, u16) {
    let url = pg_admin_url();
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .unwrap_or_else(|| panic!("TEST_DATABASE_URL={url:?} is not a postgres:// URL"));
    let (credentials, rest) = rest
        .rsplit_once('@')
        .unwrap_or_else(|| panic!("TEST_DATABASE_URL={url:?} names no user"));
    let authority = rest.split('/').next().unwrap_or(rest);
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse()
                .unwrap_or_else(|_| panic!("TEST_DATABASE_URL={url:?} has a bad port")),
        ),
        None => (authority, 5432),
    };
    (credentials.to_owned(), host.to_owned(), port)
}

/// The URL of database `name` on the tests' server, reached through `port` (the server's own
/// port, or a proxy's).
pub fn pg_url(name: &str, port: u16) -> String {
    let (credentials, host, _) = pg_server();
    format!("postgres://{credentials}@{host}:{port}/{name}")
}

/// The PostgreSQL server's address (for a [`TcpProxy`] in front of it).
pub fn pg_addr() -> SocketAddr {
    let (_, host, port) = pg_server();
    resolve(&format!("{host}:{port}"), port, "TEST_DATABASE_URL")
}

fn resolve(authority: &str, default_port: u16, var: &str) -> SocketAddr {
    use std::net::ToSocketAddrs;
    let with_port = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:{default_port}")
    };
    with_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .unwrap_or_else(|| panic!("{var}: cannot resolve {with_port}"))
}

/// A database of its own on the tests' server, dropped (with its connections) when the test
/// ends.
pub struct TestDb {
    /// The database's name.
    pub name: String,
}

impl TestDb {
    /// Creates a database named after `tag` and a unique suffix.
    pub async fn create(tag: &str) -> TestDb {
        let name = unique_name(tag);
        let admin = pg_url("postgres", pg_server().2);
        let (client, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|err| panic!("the tests need PostgreSQL at {admin}: {err}"));
        tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|err| panic!("create the test database {name}: {err}"));
        TestDb { name }
    }

    /// Its URL on the server's own port.
    pub fn url(&self) -> String {
        self.url_on(pg_server().2)
    }

    /// Its URL through `port` (a proxy's).
    pub fn url_on(&self, port: u16) -> String {
        pg_url(&self.name, port)
    }

    /// A direct connection (not through any proxy) for assertions.
    pub async fn client(&self) -> tokio_postgres::Client {
        let url = self.url();
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|err| panic!("connect to the test database {url}: {err}"));
        tokio::spawn(conn);
        client
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // psql takes the admin URL as it is, password included.
        let _ = std::process::Command::new("psql")
            .arg(pg_url("postgres", pg_server().2))
            .args(["-q", "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .output();
    }
}

/// Stream names under a prefix of their own on the tests' Redis, deleted when the test ends.
pub struct TestStreams {
    /// The prefix, ending in `:`.
    pub prefix: String,
}

impl Default for TestStreams {
    fn default() -> Self {
        Self::new()
    }
}

impl TestStreams {
    /// A fresh prefix.
    pub fn new() -> TestStreams {
        TestStreams {
            prefix: unique_prefix("streams"),
        }
    }

    /// `base` under the prefix.
    pub fn name(&self, base: &str) -> String {
        format!("{}{base}", self.prefix)
    }

    /// A connection to the tests' Redis.
    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis().await
    }

    /// Adds `event` to `stream` under the field `event`.
    pub async fn xadd_event(&self, stream: &str, event: &StreamEvent) -> String {
        let json = serde_json::to_string(event).expect("a stream event serializes");
        self.xadd_raw(stream, "event", &json).await
    }

    /// Adds `events` to `firehose_live`, in order.
    pub async fn xadd_live(&self, events: impl IntoIterator<Item = StreamEvent>) {
        for event in events {
            self.xadd_event("firehose_live", &event).await;
        }
    }

    /// Adds one entry `{field: value}` to `stream`; returns its id.
    pub async fn xadd_raw(&self, stream: &str, field: &str, value: &str) -> String {
        let mut conn = self.conn().await;
        redis::cmd("XADD")
            .arg(self.name(stream))
            .arg("*")
            .arg(field)
            .arg(value)
            .query_async(&mut conn)
            .await
            .expect("XADD")
    }

    /// Adds a `labels` entry to `label_live`.
    pub async fn xadd_labels(&self, labels: Vec<Label>) -> String {
        let json =
            serde_json::to_string(&LabelsEvent { seq: 1, labels }).expect("labels serialize");
        self.xadd_raw("label_live", "labels", &json).await
    }

    /// The length of `stream`.
    pub async fn xlen(&self, stream: &str) -> u64 {
        let mut conn = self.conn().await;
        redis::cmd("XLEN")
            .arg(self.name(stream))
            .query_async(&mut conn)
            .await
            .expect("XLEN")
    }

    /// Entries delivered to `group` on `stream` and not acknowledged.
    pub async fn pending(&self, stream: &str, group: &str) -> u64 {
        let mut conn = self.conn().await;
        let reply: redis::Value = redis::cmd("XPENDING")
            .arg(self.name(stream))
            .arg(group)
            .query_async(&mut conn)
            .await
            .expect("XPENDING");
        match reply {
            redis::Value::Array(parts) => match parts.first() {
                Some(redis::Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
                _ => 0,
            },
            _ => 0,
        }
    }

    /// The entries of `stream`, as (id, fields sorted by name).
    pub async fn entries(&self, stream: &str) -> Vec<(String, Vec<(String, String)>)> {
        let mut conn = self.conn().await;
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(self.name(stream))
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await
            .expect("XRANGE");
        reply
            .ids
            .into_iter()
            .map(|id| {
                let mut fields: Vec<(String, String)> = id
                    .map
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            redis::from_redis_value_ref::<String>(v).unwrap_or_default(),
                        )
                    })
                    .collect();
                fields.sort();
                (id.id, fields)
            })
            .collect()
    }
}

impl Drop for TestStreams {
    fn drop(&mut self) {
        delete_prefix_blocking(&self.prefix);
    }
}

/// A TCP fault proxy on a loopback port in front of `target` (a relay, Redis, PostgreSQL): it
/// forwards both ways until a test injects a fault.
///
/// - [`TcpProxy::stall`]: stop forwarding, keep every connection open (a peer that hangs: a
///   silent relay, a stuck database); new connections are accepted and held the same way;
/// - [`TcpProxy::cut`]: close every connection and stop listening, so the port refuses new
///   connections (a peer that died);
/// - [`TcpProxy::resume`]: forward again, listening again on the same port after a cut.
///
/// Bytes read during a stall are held, not dropped, and so is a side's close: after a resume
/// both sides see the stream they would have seen, only late; during the stall neither sees the
/// other (a websocket's pings and pongs, a close) at all.
pub struct TcpProxy {
    /// The loopback port it listens on.
    pub port: u16,
    target: SocketAddr,
    state: Arc<Mutex<ProxyState>>,
    flow: watch::Sender<Flow>,
}

/// Whether the links forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Forward,
    Stall,
}

struct ProxyState {
    accept: Option<JoinHandle<()>>,
    links: Vec<JoinHandle<()>>,
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards every connection to `target`.
    pub async fn start(target: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().expect("the proxy's address").port();
        let proxy = TcpProxy {
            port,
            target,
            state: Arc::new(Mutex::new(ProxyState {
                accept: None,
                links: Vec::new(),
            })),
            flow: watch::Sender::new(Flow::Forward),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let state = self.state.clone();
        let target = self.target;
        let flow = self.flow.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    return;
                };
                let flow = flow.subscribe();
                let link = tokio::spawn(async move {
                    let Ok(Ok(outbound)) =
                        tokio::time::timeout(PROXY_CONNECT_TIMEOUT, TcpStream::connect(target))
                            .await
                    else {
                        return;
                    };
                    let (from_client, to_client) = inbound.into_split();
                    let (from_target, to_target) = outbound.into_split();
                    tokio::join!(
                        pump(from_client, to_target, flow.clone()),
                        pump(from_target, to_client, flow),
                    );
                });
                let mut state = crate::lock(&state);
                state.links.retain(|link| !link.is_finished());
                state.links.push(link);
            }
        });
        crate::lock(&self.state).accept = Some(accept);
    }

    /// Stops forwarding in both directions; connections stay open and new ones are accepted
    /// and held, until [`TcpProxy::resume`].
    pub fn stall(&self) {
        self.flow.send_replace(Flow::Stall);
    }

    /// Closes every open connection and stops listening: the port refuses connections until
    /// [`TcpProxy::resume`].
    pub async fn cut(&self) {
        let (accept, links) = {
            let mut state = crate::lock(&self.state);
            (state.accept.take(), std::mem::take(&mut state.links))
        };
        if let Some(accept) = accept {
            accept.abort();
            let _ = accept.await;
        }
        for link in links {
            link.abort();
            let _ = link.await;
        }
    }

    /// Forwards again after a [`TcpProxy::stall`] (held bytes go on), and after a
    /// [`TcpProxy::cut`] listens again on the same port.
    pub async fn resume(&self) {
        let listening = crate::lock(&self.state).accept.is_some();
        if !listening {
            let listener = TcpListener::bind(("127.0.0.1", self.port))
                .await
                .unwrap_or_else(|err| panic!("rebind the proxy port {}: {err}", self.port));
            self.serve(listener);
        }
        self.flow.send_replace(Flow::Forward);
    }

    /// [`TcpProxy::resume`] (the name the first fault tests used).
    pub async fn restore(&self) {
        self.resume().await;
    }

    /// Connections open through the proxy now.
    pub fn connections(&self) -> usize {
        crate::lock(&self.state)
            .links
            .iter()
            .filter(|link| !link.is_finished())
            .count()
    }
}

/// How long the proxy waits for its target to accept a connection.
const PROXY_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Copies `from` to `to` while the flow is `Forward`; a chunk read during a stall is held until
/// the resume. At the end of `from`, shuts `to` down for writing (a half-close, passed on, and
/// held by a stall like the bytes: a silent peer does not see the other side leave either).
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut flow: watch::Receiver<Flow>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if flow.wait_for(|f| *f == Flow::Forward).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                if flow.wait_for(|f| *f == Flow::Forward).await.is_ok() {
                    let _ = to.shutdown().await;
                }
                return;
            }
            Ok(n) => n,
        };
        if flow.wait_for(|f| *f == Flow::Forward).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An echo server on a free loopback port.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = socket.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn echo(stream: &mut TcpStream, message: &[u8]) -> Vec<u8> {
        stream.write_all(message).await.unwrap();
        read_exactly(stream, message.len()).await
    }

    async fn read_exactly(stream: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut buf))
            .await
            .expect("an answer within 5 s")
            .unwrap();
        buf
    }

    /// No byte arrives on `stream` for a while (how a stalled proxy looks from outside).
    async fn assert_silent(stream: &mut TcpStream) {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_millis(300), stream.read(&mut byte)).await;
        assert!(read.is_err(), "expected silence, got {read:?}");
    }

    #[tokio::test]
    async fn the_proxy_forwards_both_ways() {
        let proxy = TcpProxy::start(echo_server().await).await;
        let mut client = TcpStream::connect(("127.0.0.1", proxy.port)).await.unwrap();
        assert_eq!(echo(&mut client, b"ping").await, b"ping");
        assert_eq!(proxy.connections(), 1);
    }

    #[tokio::test]
    async fn a_stall_holds_bytes_on_open_connections_until_the_resume() {
        let proxy = TcpProxy::start(echo_server().await).await;
        let mut client = TcpStream::connect(("127.0.0.1", proxy.port)).await.unwrap();
        assert_eq!(echo(&mut client, b"before").await, b"before");
        proxy.stall();
        client.write_all(b"during").await.unwrap();
        assert_silent(&mut client).await;
        // A connection made during the stall is accepted and held too.
        let mut late = TcpStream::connect(("127.0.0.1", proxy.port)).await.unwrap();
        late.write_all(b"late").await.unwrap();
        assert_silent(&mut late).await;
        assert_eq!(proxy.connections(), 2, "both connections kept");
        proxy.resume().await;
        assert_eq!(
            read_exactly(&mut client, 6).await,
            b"during",
            "held, not lost"
        );
        assert_eq!(read_exactly(&mut late, 4).await, b"late");
        assert_eq!(echo(&mut client, b"after").await, b"after");
    }

    #[tokio::test]
    async fn a_stall_holds_a_half_close_until_the_resume() {
        let proxy = TcpProxy::start(echo_server().await).await;
        let mut client = TcpStream::connect(("127.0.0.1", proxy.port)).await.unwrap();
        assert_eq!(echo(&mut client, b"x").await, b"x");
        proxy.stall();
        client.shutdown().await.unwrap();
        // Passed on, the half-close would make the echo server close its side too.
        assert_silent(&mut client).await;
        proxy.resume().await;
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut rest))
            .await
            .expect("the close passed on after the resume")
            .unwrap();
        assert!(rest.is_empty());
    }

    #[tokio::test]
    async fn a_cut_closes_every_connection_and_refuses_new_ones_until_the_resume() {
        let proxy = TcpProxy::start(echo_server().await).await;
        let mut client = TcpStream::connect(("127.0.0.1", proxy.port)).await.unwrap();
        assert_eq!(echo(&mut client, b"x").await, b"x");
        proxy.cut().await;
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf))
            .await
            .expect("the cut connection ends at once");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        let refused = TcpStream::connect(("127.0.0.1", proxy.port)).await;
        assert!(refused.is_err(), "a cut proxy refuses connections");
        assert_eq!(proxy.connections(), 0);
        proxy.resume().await;
        let mut again = TcpStream::connect(("127.0.0.1", proxy.port)).await.unwrap();
        assert_eq!(echo(&mut again, b"back").await, b"back");
    }

    #[tokio::test]
    async fn a_cut_during_a_stall_resumes_forwarding_on_new_connections() {
        let proxy = TcpProxy::start(echo_server().await).await;
        proxy.stall();
        proxy.cut().await;
        proxy.resume().await;
        let mut client = TcpStream::connect(("127.0.0.1", proxy.port)).await.unwrap();
        assert_eq!(echo(&mut client, b"ok").await, b"ok");
    }

    #[test]
    fn unique_names_differ_and_suit_postgres() {
        let (a, b) = (unique_name("db"), unique_name("db"));
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        assert!(unique_prefix("x").ends_with(':'));
    }

    #[tokio::test]
    async fn wait_until_returns_once_the_check_holds_and_panics_naming_what_it_waited_for() {
        let mut n = 0;
        wait_until(Duration::from_secs(1), "three polls", || {
            n += 1;
            let done = n >= 3;
            async move { done }
        })
        .await;
        assert_eq!(n, 3);
        let waited = tokio::spawn(wait_until(Duration::from_millis(50), "never", || async {
            false
        }))
        .await
        .unwrap_err();
        let message = waited.into_panic();
        let message = message
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(message.contains("waiting for: never"), "{message}");
    }
}
