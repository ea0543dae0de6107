//! What every test of the pipeline shares, written once: the Redis and PostgreSQL servers the
//! tests use (`TEST_REDIS_URL`, `TEST_DATABASE_URL`), names no other test uses, one
//! [`wait_until`], a database per test ([`TestDb`]), stream names per test ([`TestStreams`]),
//! and a TCP proxy that a test can cut ([`TcpProxy`]).
//!
//! Test code: it panics with a message naming what is missing (a server, a database) rather
//! than returning errors, since a test cannot go on without it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rsky_common::event::{Label, LabelsEvent, StreamEvent};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The Redis the tests use: `TEST_REDIS_URL`, or `redis://127.0.0.1:6379`.
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

/// The tests' PostgreSQL server, as `(user[:password], host, port)`: from `TEST_DATABASE_URL`
/// (an admin URL such as `postgres://postgres:secret@127.0.0.1:5432/postgres`), or the local
/// trust-auth server `postgres://postgres@127.0.0.1:5432/postgres`.
pub fn pg_server() -> (String, String, u16) {
    let url = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
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

/// A TCP proxy to `target` that a test can cut (refusing and dropping every connection) and
/// restore on the same port.
pub struct TcpProxy {
    /// The loopback port it listens on.
    pub port: u16,
    target: SocketAddr,
    state: Arc<Mutex<ProxyState>>,
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
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let state = self.state.clone();
        let target = self.target;
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let link = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                crate::lock(&state).links.push(link);
            }
        });
        crate::lock(&self.state).accept = Some(accept);
    }

    /// Stops listening and drops every open connection: the port refuses connections.
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
        }
    }

    /// Listens again on the same port.
    pub async fn restore(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("rebind the proxy port");
        self.serve(listener);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
