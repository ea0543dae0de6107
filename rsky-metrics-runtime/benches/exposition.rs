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

use axum::routing::get;
use criterion::{criterion_group, criterion_main, Criterion};
use measured::text::BufferedTextEncoder;
use measured::{LabelGroup, MetricGroup};
use prometheus_client::encoding::EncodeLabelSet;
use rsky_metrics_runtime::exposition::{self, Format};
use rsky_metrics_runtime::{Encoder, IntCounterVec, Metrics, MetricsServer, Registry, TextEncoder};

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

fn http_scrape(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let registry = filled_registry();
    let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let (ours, theirs) = runtime.block_on(async {
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
        (ours, theirs)
    });
    let client = reqwest::Client::new();
    let scrape = |addr: SocketAddr, headers: &'static [(&'static str, &'static str)]| {
        let client = client.clone();
        async move {
            let mut request = client.get(format!("http://{addr}/metrics"));
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            let body = request
                .send()
                .await
                .expect("scrape")
                .bytes()
                .await
                .expect("body");
            assert!(body.len() > 100_000 || !headers.is_empty());
            body
        }
    };
    // Same families either way.
    let (a, b) = runtime.block_on(async { (scrape(ours, &[]).await, scrape(theirs, &[]).await) });
    assert_eq!(a.len(), b.len(), "both routes serve the same text");

    let mut group = c.benchmark_group("scrape_http_10k_series");
    group.sample_size(30);
    group.bench_function("metrics_server", |bench| {
        bench
            .to_async(&runtime)
            .iter(|| async { black_box(scrape(ours, &[]).await) })
    });
    group.bench_function("prometheus_gather_text_encoder_axum", |bench| {
        bench
            .to_async(&runtime)
            .iter(|| async { black_box(scrape(theirs, &[]).await) })
    });
    group.bench_function("metrics_server_openmetrics_gzip", |bench| {
        const PROMETHEUS: &[(&str, &str)] = &[
            ("Accept", "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
            ("Accept-Encoding", "gzip"),
        ];
        bench
            .to_async(&runtime)
            .iter(|| async { black_box(scrape(ours, PROMETHEUS).await) })
    });
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
