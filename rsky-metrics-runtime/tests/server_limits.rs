//! The `/metrics` server's limits over real sockets on loopback: a client that never finishes
//! its request head is closed after the header read timeout, connections beyond the cap are
//! closed at once, and slow clients beyond the cap hold off a scrape no longer than the header
//! timeout.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use rsky_metrics_runtime::{MetricsServer, MetricsServerHandle, Registry};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Long enough for anything the server does at once on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(5);

async fn start(
    configure: impl FnOnce(
        rsky_metrics_runtime::MetricsServerBuilder,
    ) -> rsky_metrics_runtime::MetricsServerBuilder,
) -> MetricsServerHandle {
    let builder = MetricsServer::builder("limits")
        .registry(Registry::new())
        .process_metrics(false)
        .listen(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    configure(builder)
        .bind()
        .await
        .expect("bind an ephemeral port")
        .spawn()
}

/// A client that sends the start of a request head and no end to it.
async fn slow_client(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\n")
        .await
        .expect("send a partial head");
    stream
}

/// Whether the server closed `stream` within `wait` (EOF or reset), reading what it sends.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let read = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    timeout(wait, read).await.is_ok()
}

async fn scrape(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .expect("send a request");
    let mut raw = Vec::new();
    timeout(PATIENCE, stream.read_to_end(&mut raw))
        .await
        .expect("the scrape answers in time")
        .expect("read the response");
    String::from_utf8_lossy(&raw).into_owned()
}

#[tokio::test]
async fn a_client_that_never_finishes_its_head_is_closed_after_the_header_timeout() {
    let server = start(|b| b.header_read_timeout(Duration::from_millis(300))).await;
    let mut stream = slow_client(server.local_addr()).await;
    // A header line every 100 ms does not extend the limit.
    let trickle = async {
        for n in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if stream
                .write_all(format!("X-Slow-{n}: yes\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
    };
    let _ = timeout(Duration::from_secs(1), trickle).await;
    assert!(
        closed_within(&mut stream, PATIENCE).await,
        "a client still sending its head after the header timeout is closed"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_header_timeout() {
    let server = start(|b| b.header_read_timeout(Duration::from_millis(300))).await;
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    assert!(closed_within(&mut stream, PATIENCE).await);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let server = start(|b| b.idle_timeout(Duration::from_millis(300))).await;
    let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = timeout(PATIENCE, stream.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(
        closed_within(&mut stream, PATIENCE).await,
        "kept alive past the idle timeout"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_at_once_and_the_others_stay() {
    let server = start(|b| b.max_connections(4)).await;
    let addr = server.local_addr();
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(slow_client(addr).await);
    }
    // The server has taken the four before the fifth comes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut excess = slow_client(addr).await;
    assert!(
        closed_within(&mut excess, PATIENCE).await,
        "a fifth connection is closed at once"
    );
    for stream in &mut held {
        assert!(
            !closed_within(stream, Duration::from_millis(50)).await,
            "the connections under the cap stay open"
        );
    }
    // A slot freed is a slot taken again.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let body = scrape(addr).await;
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    server.shutdown().await.unwrap();
}

/// One scrape attempt on a fresh connection: the response when it is a 200, `None` when the
/// server closed the connection without one (as it does beyond the cap).
async fn try_scrape(addr: SocketAddr) -> Option<String> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut raw = Vec::new();
    timeout(PATIENCE, stream.read_to_end(&mut raw))
        .await
        .ok()?
        .ok()?;
    let response = String::from_utf8_lossy(&raw).into_owned();
    response.starts_with("HTTP/1.1 200").then_some(response)
}

#[tokio::test]
async fn slow_clients_beyond_the_cap_hold_off_a_scrape_no_longer_than_the_header_timeout() {
    let server = start(|b| {
        b.max_connections(4)
            .header_read_timeout(Duration::from_millis(300))
    })
    .await;
    let addr = server.local_addr();
    // More slow-loris clients than the cap: every slot is taken by one that never finishes.
    let mut slow = Vec::new();
    for _ in 0..10 {
        slow.push(slow_client(addr).await);
    }
    // A scraper that tries again (as Prometheus does at its next interval) gets its answer once
    // the header timeout has freed the slots; without that timeout it never would.
    let scrape = async {
        loop {
            if let Some(response) = try_scrape(addr).await {
                return response;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let response = timeout(PATIENCE, scrape)
        .await
        .expect("a scrape answers once the header timeout has freed the slots");
    assert!(response.contains("limits_build_info"), "{response}");
    for stream in &mut slow {
        assert!(
            closed_within(stream, PATIENCE).await,
            "every slow client is closed: at once beyond the cap, after the header timeout under it"
        );
    }
    server.shutdown().await.unwrap();
}
