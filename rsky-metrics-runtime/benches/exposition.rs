//! The cost of a scrape of 10,000 series in one string-labeled family declared by a derive.
//!
//! (a) Over loopback HTTP: `MetricsServer` (the fast exposition) vs prometheus' `gather()` +
//!     `TextEncoder` behind a plain axum route, on the same registry, with the same client.
//! (b) In process: `exposition::encode` vs prometheus (`gather()` + `TextEncoder`),
//!     prometheus-client (`Family<Labels, Counter>` + `encoding::text::encode`) and measured
//!     (`CounterVec` with a lasso-interned dynamic label + `BufferedTextEncoder`), each holding
//!     the same 10,000 counters.
//!
//! `cargo bench -p rsky-metrics-runtime --bench exposition`

use std::hint::black_box;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Instant;

use axum::routing::get;
use criterion::{criterion_group, criterion_main, Criterion};
use measured::text::BufferedTextEncoder;
use measured::{LabelGroup, MetricGroup};
use prometheus_client::encoding::EncodeLabelSet;
use rsky_metrics_runtime::exposition::{self, Format};
use rsky_metrics_runtime::{Encoder, IntCounterVec, Metrics, MetricsServer, Registry, TextEncoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SERIES: usize = 10_000;

/// Metrics of the bench service.
#[derive(Metrics)]
#[metrics(service = "bench")]
pub struct ScrapeMetrics {
    /// Requests by peer
    #[metric(labels = ["peer"])]
    pub requests: IntCounterVec,
}

fn peer(i: usize) -> String {
    format!("did:plc:peer{i:06}")
}

fn filled_registry() -> Registry {
    let registry = Registry::new();
    let metrics = ScrapeMetrics::register(&registry).expect("registered");
    for i in 0..SERIES {
        metrics
            .requests
            .with_label_values(&[peer(i)])
            .inc_by(i as u64 + 1);
    }
    registry
}

fn prometheus_text(registry: &Registry) -> Vec<u8> {
    let mut body = Vec::with_capacity(1 << 20);
    TextEncoder::new()
        .encode(&registry.gather(), &mut body)
        .expect("prometheus encodes its own families");
    body
}

/// Extra request headers.
type Headers = &'static [(&'static str, &'static str)];

/// A keep-alive HTTP/1.1 connection that reads each response into one reused buffer: the
/// scraper's own cost stays out of the comparison (Prometheus' client is not Rust anyway). It
/// reads a body sent with a `Content-Length` or in chunks (`Transfer-Encoding: chunked`) alike,
/// whichever the server chose, for every row.
struct Conn {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Conn {
    async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Self {
            stream,
            buffer: Vec::with_capacity(1 << 20),
        }
    }

    /// Reads more of the response into the buffer.
    async fn fill(&mut self) {
        self.buffer.reserve(256 * 1024);
        let n = self.stream.read_buf(&mut self.buffer).await.expect("read");
        assert!(n > 0, "the server closed the connection");
    }

    /// GETs /metrics; returns the body's length.
    async fn get(&mut self, headers: &[(&str, &str)]) -> usize {
        let mut request = String::from("GET /metrics HTTP/1.1\r\nHost: bench\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        self.stream
            .write_all(request.as_bytes())
            .await
            .expect("send");
        self.buffer.clear();
        let (head_end, length) = loop {
            self.fill().await;
            if let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buffer[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map(|n| n.trim().parse::<usize>().expect("a number"));
                break (end + 4, length);
            }
        };
        match length {
            Some(length) => {
                while self.buffer.len() < head_end + length {
                    self.fill().await;
                }
                length
            }
            None => self.read_chunks(head_end).await,
        }
    }

    /// Reads a chunked body starting at `at`; returns the length of its data.
    async fn read_chunks(&mut self, mut at: usize) -> usize {
        let mut length = 0;
        loop {
            let line_end = loop {
                if let Some(end) = self.buffer[at..].windows(2).position(|w| w == b"\r\n") {
                    break at + end;
                }
                self.fill().await;
            };
            let size_text = std::str::from_utf8(&self.buffer[at..line_end]).expect("a chunk size");
            let size = usize::from_str_radix(size_text.trim(), 16).expect("a hex chunk size");
            // The data and its CRLF (the last chunk, of size 0, has no trailers here: just CRLF).
            let next = line_end + 2 + size + 2;
            while self.buffer.len() < next {
                self.fill().await;
            }
            length += size;
            at = next;
            if size == 0 {
                return length;
            }
        }
    }
}

fn http_scrape(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let registry = filled_registry();
    let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let (ours, theirs, floor) = runtime.block_on(async {
        let server = MetricsServer::builder("bench")
            .registry(registry.clone())
            .process_metrics(false)
            .listen(loopback)
            .bind()
            .await
            .expect("bind");
        let ours = server.local_addr();
        std::mem::forget(server.spawn());
        let plain = registry.clone();
        let app = axum::Router::new().route(
            "/metrics",
            get(move || {
                let plain = plain.clone();
                async move { prometheus_text(&plain) }
            }),
        );
        let listener = tokio::net::TcpListener::bind(loopback).await.expect("bind");
        let theirs = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        // The transport alone: the same body, encoded once, served again and again.
        let body = bytes::Bytes::from(exposition::encode(&registry, Format::Text));
        let floor_app = axum::Router::new().route(
            "/metrics",
            get(move || {
                let body = body.clone();
                async move { body }
            }),
        );
        let listener = tokio::net::TcpListener::bind(loopback).await.expect("bind");
        let floor = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, floor_app).await });
        (ours, theirs, floor)
    });
    // Same families either way.
    let (a, b) = runtime.block_on(async {
        let a = Conn::connect(ours).await.get(&[]).await;
        let b = Conn::connect(theirs).await.get(&[]).await;
        (a, b)
    });
    assert!(a > 100_000, "a 10,000-series body");
    assert_eq!(a, b, "both routes serve bodies of the same size");

    let mut group = c.benchmark_group("scrape_http_10k_series");
    group.sample_size(30);
    const PROMETHEUS: &[(&str, &str)] = &[
        ("Accept", "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
        ("Accept-Encoding", "gzip"),
    ];
    let cases: [(&str, SocketAddr, Headers); 4] = [
        ("metrics_server", ours, &[]),
        ("http_floor_pre_encoded_body", floor, &[]),
        ("prometheus_gather_text_encoder_axum", theirs, &[]),
        ("metrics_server_openmetrics_gzip", ours, PROMETHEUS),
    ];
    for (name, addr, headers) in cases {
        group.bench_function(name, |bench| {
            bench.iter_custom(|iters| {
                runtime.block_on(async {
                    let mut conn = Conn::connect(addr).await;
                    let start = Instant::now();
                    for _ in 0..iters {
                        black_box(conn.get(headers).await);
                    }
                    start.elapsed()
                })
            })
        });
    }
    group.finish();
}

#[derive(MetricGroup)]
struct MeasuredMetrics {
    /// Requests by peer
    requests: measured::CounterVec<PeerSet>,
}

#[derive(Clone, Copy, PartialEq, Debug, LabelGroup)]
#[label(set = PeerSet)]
struct Peer<'a> {
    #[label(dynamic_with = lasso::ThreadedRodeo)]
    peer: &'a str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabels {
    peer: String,
}

fn in_process(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_10k_series");

    let registry = filled_registry();
    let mut buffer = Vec::new();
    group.bench_function("rsky_metrics_fast", |bench| {
        bench.iter(|| {
            exposition::encode_into(&registry, Format::Text, &mut buffer);
            black_box(buffer.len())
        })
    });
    group.bench_function("rsky_metrics_fast_openmetrics", |bench| {
        bench.iter(|| {
            exposition::encode_into(&registry, Format::OpenMetrics, &mut buffer);
            black_box(buffer.len())
        })
    });

    let plain = prometheus::Registry::new();
    let vec = prometheus::IntCounterVec::new(
        prometheus::Opts::new("bench_requests_total", "Requests by peer"),
        &["peer"],
    )
    .expect("a valid family");
    plain.register(Box::new(vec.clone())).expect("registered");
    for i in 0..SERIES {
        vec.with_label_values(&[peer(i)]).inc_by(i as u64 + 1);
    }
    let mut text = String::new();
    group.bench_function("prometheus_gather_text_encoder", |bench| {
        bench.iter(|| {
            text.clear();
            TextEncoder::new()
                .encode_utf8(&plain.gather(), &mut text)
                .expect("encodes");
            black_box(text.len())
        })
    });

    let mut client_registry = <prometheus_client::registry::Registry>::default();
    let family = prometheus_client::metrics::family::Family::<
        PeerLabels,
        prometheus_client::metrics::counter::Counter,
    >::default();
    client_registry.register("bench_requests", "Requests by peer", family.clone());
    for i in 0..SERIES {
        family
            .get_or_create(&PeerLabels { peer: peer(i) })
            .inc_by(i as u64 + 1);
    }
    group.bench_function("prometheus_client", |bench| {
        bench.iter(|| {
            text.clear();
            prometheus_client::encoding::text::encode(&mut text, &client_registry)
                .expect("encodes");
            black_box(text.len())
        })
    });

    let measured_metrics = MeasuredMetrics {
        requests: measured::CounterVec::with_label_set(PeerSet {
            peer: lasso::ThreadedRodeo::new(),
        }),
    };
    for i in 0..SERIES {
        let name = peer(i);
        measured_metrics
            .requests
            .inc_by(Peer { peer: &name }, i as u64 + 1);
    }
    let mut encoder = BufferedTextEncoder::new();
    group.bench_function("measured", |bench| {
        bench.iter(|| {
            measured_metrics
                .collect_group_into(&mut encoder)
                .expect("encodes");
            black_box(encoder.finish().len())
        })
    });
    group.finish();
}

criterion_group!(benches, in_process, http_scrape);
criterion_main!(benches);
