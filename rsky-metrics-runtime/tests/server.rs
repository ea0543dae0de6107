//! The `/metrics` server over real HTTP: routes, methods, content type, format and gzip
//! negotiation, the environment, and a scrape that `promtool check metrics` (and, in
//! OpenMetrics, Python's `prometheus_client` parser) accepts.

#[path = "support/exposition.rs"]
mod support;

use std::io::Read as _;

use std::net::{Ipv4Addr, SocketAddr};

use rsky_metrics_runtime::exposition::{self, Format};
use rsky_metrics_runtime::{
    testing, Error, Histogram, IntCounter, IntCounterVec, IntGauge, Metrics, MetricsServer,
    Registry, TextEncoder, CONTENT_TYPE,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Metrics of the demo service.
#[derive(Metrics)]
#[metrics(service = "demo")]
pub struct DemoMetrics {
    /// Requests handled
    pub requests: IntCounter,
    /// Items waiting in the queue
    pub queue_length: IntGauge,
    /// Time to handle one request
    #[metric(buckets = [0.001, 0.01, 0.1, 1.0])]
    pub handle_seconds: Histogram,
    /// Requests by outcome
    #[metric(labels = ["outcome"])]
    pub outcomes: IntCounterVec,
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    raw_body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request on a fresh connection, read to the end.
async fn request(addr: SocketAddr, method: &str, path: &str) -> Response {
    request_with(addr, method, path, &[]).await
}

/// One HTTP/1.1 request with extra headers.
async fn request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
) -> Response {
    let mut stream = TcpStream::connect(addr)
        .await
        .expect("connect to the metrics server");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response");
    let head = String::from_utf8(raw[..split].to_vec()).expect("a UTF-8 head");
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let raw_body = if chunked {
        dechunk(&raw[split + 4..])
    } else {
        raw[split + 4..].to_vec()
    };
    let body = String::from_utf8_lossy(&raw_body).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Response {
        status,
        headers,
        body,
        raw_body,
    }
}

/// The data of a body sent with `Transfer-Encoding: chunked`; panics unless it ends with the
/// last (empty) chunk, so a body cut short is a failure.
fn dechunk(mut framed: &[u8]) -> Vec<u8> {
    let mut data = Vec::new();
    loop {
        let line_end = framed
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size line");
        let size = std::str::from_utf8(&framed[..line_end]).expect("a chunk size");
        let size = usize::from_str_radix(size.trim(), 16).expect("a hex chunk size");
        let chunk = &framed[line_end + 2..];
        if size == 0 {
            return data;
        }
        assert!(chunk.len() >= size + 2, "a chunk cut short");
        data.extend_from_slice(&chunk[..size]);
        assert_eq!(&chunk[size..size + 2], b"\r\n", "a chunk ends with CRLF");
        framed = &chunk[size + 2..];
    }
}

async fn start(registry: &Registry) -> rsky_metrics_runtime::MetricsServerHandle {
    MetricsServer::builder("demo")
        .registry(registry.clone())
        .version("1.2.3")
        .listen(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .bind()
        .await
        .expect("bind an ephemeral port")
        .spawn()
}

/// Parses the text exposition into (sample name with labels, value) pairs.
fn samples(body: &str) -> Vec<(String, f64)> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("`series value`");
            (series.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

#[tokio::test]
async fn scrape_serves_every_declared_metric_in_the_text_format() {
    let registry = Registry::new();
    let metrics = DemoMetrics::register(&registry).unwrap();
    metrics.requests.inc_by(7);
    metrics.outcomes.with_label_values(&["ok"]).inc();
    let server = start(&registry).await;

    let response = request(server.local_addr(), "GET", "/metrics").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some(CONTENT_TYPE));
    let samples = samples(&response.body);
    let value = |name: &str| samples.iter().find(|(s, _)| s == name).map(|(_, v)| *v);
    assert_eq!(value("demo_requests_total"), Some(7.0));
    assert_eq!(value("demo_queue_length"), Some(0.0));
    assert_eq!(value("demo_handle_seconds_count"), Some(0.0));
    assert_eq!(value("demo_outcomes_total{outcome=\"ok\"}"), Some(1.0));
    assert_eq!(value("demo_build_info{version=\"1.2.3\"}"), Some(1.0));
    for process in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(
            value(process).is_some(),
            "missing {process} in:\n{}",
            response.body
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn promtool_finds_nothing_wrong_with_the_scrape() {
    let registry = Registry::new();
    let metrics = DemoMetrics::register(&registry).unwrap();
    metrics.handle_seconds.observe(0.02);
    metrics.outcomes.with_label_values(&["error"]).inc();
    let server = start(&registry).await;
    let body = request(server.local_addr(), "GET", "/metrics").await.body;
    server.shutdown().await.unwrap();

    testing::assert_promtool_clean(&body);
}

#[tokio::test]
async fn head_answers_like_get_without_a_body() {
    let registry = Registry::new();
    DemoMetrics::register(&registry).unwrap();
    let server = start(&registry).await;
    let response = request(server.local_addr(), "HEAD", "/metrics").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some(CONTENT_TYPE));
    assert!(
        response.body.is_empty(),
        "HEAD returned a body: {}",
        response.body
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn health_answers_ok() {
    let server = start(&Registry::new()).await;
    let response = request(server.local_addr(), "GET", "/health").await;
    assert_eq!((response.status, response.body.as_str()), (200, "ok\n"));
    assert_eq!(
        request(server.local_addr(), "HEAD", "/health").await.status,
        200
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn other_methods_are_not_allowed() {
    let server = start(&Registry::new()).await;
    for method in ["POST", "PUT", "DELETE"] {
        let response = request(server.local_addr(), method, "/metrics").await;
        assert_eq!(response.status, 405, "{method} /metrics");
        assert!(
            response.header("allow").is_some_and(|a| a.contains("GET")),
            "405 without Allow"
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn other_paths_are_not_found() {
    let server = start(&Registry::new()).await;
    for path in ["/", "/metric", "/metrics/extra"] {
        assert_eq!(
            request(server.local_addr(), "GET", path).await.status,
            404,
            "GET {path}"
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_stops_accepting_connections() {
    let server = start(&Registry::new()).await;
    let addr = server.local_addr();
    server.shutdown().await.unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}

fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        vars.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| (*v).to_owned())
    }
}

#[test]
fn address_defaults_to_all_interfaces_and_the_service_port() {
    let builder = MetricsServer::builder("demo").default_port(4100);
    assert_eq!(
        builder.resolve_addr_with(env(&[])).unwrap(),
        "0.0.0.0:4100".parse().unwrap()
    );
}

#[test]
fn port_and_address_come_from_the_environment() {
    let builder = MetricsServer::builder("demo").default_port(4100);
    let addr = builder
        .resolve_addr_with(env(&[
            ("METRICS_PORT", "9191"),
            ("METRICS_ADDR", "127.0.0.1"),
        ]))
        .unwrap();
    assert_eq!(addr, "127.0.0.1:9191".parse().unwrap());
    let custom = MetricsServer::builder("demo").port_env("INGESTER_METRICS_PORT");
    let addr = custom
        .resolve_addr_with(env(&[("INGESTER_METRICS_PORT", "4200")]))
        .unwrap();
    assert_eq!(addr.port(), 4200);
}

#[test]
fn bad_port_values_are_errors_naming_the_variable_and_value() {
    let builder = MetricsServer::builder("demo");
    for bad in ["abc", "0", "65536", "-1", "", "99999999999999999999"] {
        let err = builder
            .resolve_addr_with(env(&[("METRICS_PORT", bad)]))
            .unwrap_err();
        assert!(matches!(err, Error::InvalidEnv { .. }), "{bad:?}: {err}");
        let message = err.to_string();
        assert!(
            message.contains("METRICS_PORT") && message.contains(&format!("{bad:?}")),
            "{message}"
        );
    }
}

#[test]
fn bad_address_is_an_error_naming_the_variable() {
    let err = MetricsServer::builder("demo")
        .resolve_addr_with(env(&[("METRICS_ADDR", "localhost:80")]))
        .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("METRICS_ADDR") && message.contains("localhost:80"),
        "{message}"
    );
}

#[tokio::test]
async fn a_port_in_use_is_an_error_naming_the_address() {
    let taken = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = taken.local_addr().unwrap();
    let err = MetricsServer::builder("demo")
        .registry(Registry::new())
        .listen(addr)
        .bind()
        .await
        .err()
        .expect("binding a taken port must fail");
    assert!(matches!(err, Error::Bind { .. }));
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

/// What Prometheus sends.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

async fn start_quiet(registry: &Registry) -> rsky_metrics_runtime::MetricsServerHandle {
    // Without process metrics two scrapes are byte for byte the same.
    MetricsServer::builder("demo")
        .registry(registry.clone())
        .version("1.2.3")
        .process_metrics(false)
        .listen(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .bind()
        .await
        .expect("bind an ephemeral port")
        .spawn()
}

#[tokio::test]
async fn prometheus_accept_header_gets_openmetrics_that_python_parses() {
    let registry = Registry::new();
    let metrics = DemoMetrics::register(&registry).unwrap();
    metrics.requests.inc_by(3);
    metrics.handle_seconds.observe(0.05);
    metrics
        .outcomes
        .with_label_values(&["a \"quoted\"\nvalue"])
        .inc();
    let server = start(&registry).await;
    let response = request_with(
        server.local_addr(),
        "GET",
        "/metrics",
        &[("Accept", PROMETHEUS_ACCEPT)],
    )
    .await;
    server.shutdown().await.unwrap();

    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(response
        .header("vary")
        .is_some_and(|v| v.contains("Accept")));
    assert!(response.body.ends_with("# EOF\n"), "{}", response.body);
    assert!(response.body.contains("# TYPE demo_requests counter\n"));
    let families = support::python_openmetrics(&response.body).unwrap_or_else(|err| {
        panic!(
            "prometheus_client refused the body: {err}\n{}",
            response.body
        )
    });
    let names: Vec<&str> = families.iter().map(|f| f.name.as_str()).collect();
    for family in [
        "demo_requests",
        "demo_handle_seconds",
        "demo_outcomes",
        "demo_build_info",
        "process_cpu_seconds",
    ] {
        assert!(names.contains(&family), "{family} missing from {names:?}");
    }
    let parsed = support::parse(&response.body);
    assert_eq!(parsed.value("demo_requests_total", &[]), Some("3.0"));
    assert_eq!(
        parsed.value("demo_outcomes_total", &[("outcome", "a \"quoted\"\nvalue")]),
        Some("1.0")
    );
}

#[tokio::test]
async fn text_is_the_default_and_what_plain_text_asks_for() {
    let registry = Registry::new();
    DemoMetrics::register(&registry).unwrap();
    let server = start_quiet(&registry).await;
    for accept in [
        None,
        Some("text/plain;version=0.0.4"),
        Some("*/*"),
        Some("application/json"),
    ] {
        let extra: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
        let response = request_with(server.local_addr(), "GET", "/metrics", &extra).await;
        assert_eq!(
            response.header("content-type"),
            Some(CONTENT_TYPE),
            "{accept:?}"
        );
        assert!(!response.body.contains("# EOF"), "{accept:?}");
        assert_eq!(response.header("content-encoding"), None);
    }
    server.shutdown().await.unwrap();
}

fn gunzip(bytes: &[u8]) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_string(&mut text)
        .expect("a gzip body");
    text
}

#[tokio::test]
async fn gzip_when_accepted_decodes_to_the_plain_body() {
    let registry = Registry::new();
    let metrics = DemoMetrics::register(&registry).unwrap();
    for i in 0..200 {
        metrics
            .outcomes
            .with_label_values(&[format!("outcome {i}")])
            .inc();
    }
    let server = start_quiet(&registry).await;
    let addr = server.local_addr();
    for accept in [None, Some(PROMETHEUS_ACCEPT)] {
        let mut plain_headers: Vec<(&str, &str)> = Vec::new();
        if let Some(accept) = accept {
            plain_headers.push(("Accept", accept));
        }
        let plain = request_with(addr, "GET", "/metrics", &plain_headers).await;
        let mut gzip_headers = plain_headers.clone();
        gzip_headers.push(("Accept-Encoding", "gzip"));
        let gzipped = request_with(addr, "GET", "/metrics", &gzip_headers).await;
        assert_eq!(gzipped.status, 200);
        assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
        assert!(gzipped
            .header("vary")
            .is_some_and(|v| v.contains("Accept-Encoding")));
        assert_eq!(gzipped.header("content-type"), plain.header("content-type"));
        assert!(
            gzipped.raw_body.len() * 4 < plain.raw_body.len(),
            "gzip barely compressed"
        );
        assert_eq!(gunzip(&gzipped.raw_body), plain.body, "Accept: {accept:?}");
    }
    // As Prometheus sends it, with other codings and weights.
    for (accept_encoding, gzip) in [
        ("gzip, deflate, br", true),
        ("identity;q=1, gzip;q=0.5", true),
        ("*", true),
        ("gzip;q=0", false),
        ("identity", false),
        ("br, *;q=0", false),
        ("GZIP", true),
    ] {
        let response = request_with(
            addr,
            "GET",
            "/metrics",
            &[("Accept-Encoding", accept_encoding)],
        )
        .await;
        assert_eq!(
            response.header("content-encoding") == Some("gzip"),
            gzip,
            "Accept-Encoding: {accept_encoding}"
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_large_body_is_streamed_in_chunks_with_the_same_content() {
    let registry = Registry::new();
    let metrics = DemoMetrics::register(&registry).unwrap();
    // About 400 KB: encoded in chunks while the first ones are sent.
    for i in 0..8_000u64 {
        metrics
            .outcomes
            .with_label_values(&[format!("outcome \"{i}\"\\\n")])
            .inc_by(i);
    }
    let server = start_quiet(&registry).await;
    let addr = server.local_addr();
    // The first scrape learns the body's size; the next ones are streamed.
    let first = request(addr, "GET", "/metrics").await;
    assert!(first.header("content-length").is_some());
    for accept in [None, Some(PROMETHEUS_ACCEPT)] {
        let extra: Vec<(&str, &str)> = accept.map(|a| ("Accept", a)).into_iter().collect();
        let streamed = request_with(addr, "GET", "/metrics", &extra).await;
        assert_eq!(streamed.status, 200);
        assert_eq!(
            streamed.header("transfer-encoding"),
            Some("chunked"),
            "{accept:?}"
        );
        assert_eq!(streamed.header("content-length"), None);
        let format = if accept.is_some() {
            Format::OpenMetrics
        } else {
            Format::Text
        };
        assert_eq!(streamed.header("content-type"), Some(format.content_type()));
        assert_eq!(
            streamed.body,
            String::from_utf8(exposition::encode(&registry, format)).unwrap(),
            "{accept:?}"
        );
        if accept.is_none() {
            assert_eq!(streamed.body, first.body);
        }
    }
    // Values at scrape time, not a body kept from before.
    metrics.outcomes.with_label_values(&["late"]).inc();
    let later = request(addr, "GET", "/metrics").await;
    assert!(later
        .body
        .contains("demo_outcomes_total{outcome=\"late\"} 1\n"));
    server.shutdown().await.unwrap();
    let mut theirs = String::new();
    TextEncoder::new()
        .encode_utf8(&registry.gather(), &mut theirs)
        .unwrap();
    assert_eq!(support::parse(&later.body), support::parse(&theirs));
}

/// A collector that panics in `collect()` once armed.
struct PanicsWhenArmed {
    desc: prometheus::core::Desc,
    armed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl prometheus::core::Collector for PanicsWhenArmed {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        if self.armed.load(std::sync::atomic::Ordering::SeqCst) {
            panic!("a collector bug");
        }
        Vec::new()
    }
}

#[tokio::test]
async fn a_streamed_scrape_whose_encode_panics_is_never_a_complete_answer() {
    let registry = Registry::new();
    let metrics = DemoMetrics::register(&registry).unwrap();
    for i in 0..8_000u64 {
        metrics
            .outcomes
            .with_label_values(&[format!("outcome {i}")])
            .inc();
    }
    let armed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let desc = prometheus::core::Desc::new(
        "demo_broken".into(),
        "A collector with a bug".into(),
        vec![],
        Default::default(),
    )
    .unwrap();
    registry
        .register(Box::new(PanicsWhenArmed {
            desc,
            armed: armed.clone(),
        }))
        .unwrap();
    let server = start_quiet(&registry).await;
    let addr = server.local_addr();
    // The first scrape learns the size: the next one is streamed.
    assert_eq!(request(addr, "GET", "/metrics").await.status, 200);
    armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    // The server closes the connection either way; an error (reset) is fine too.
    let _ = stream.read_to_end(&mut raw).await;
    let complete_ok = raw.starts_with(b"HTTP/1.1 200") && raw.ends_with(b"\r\n0\r\n\r\n");
    assert!(
        !complete_ok,
        "a body cut short by a panic must not look complete ({} bytes)",
        raw.len()
    );
    armed.store(false, std::sync::atomic::Ordering::SeqCst);
    // And the server goes on serving.
    assert_eq!(request(addr, "GET", "/metrics").await.status, 200);
    server.shutdown().await.unwrap();
}
