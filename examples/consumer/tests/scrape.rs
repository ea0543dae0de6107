//! The shop service's `/metrics`, scraped over HTTP as Prometheus scrapes it, in a crate built
//! outside the rsky-metrics workspace with prometheus' default features (`protobuf` on).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};

use rsky_metrics_consumer::{
    take_order, Cache, FailureKind, OrderError, Request, Route, ShopMetrics,
};
use rsky_metrics_runtime::{testing, Encoder, MetricsServer, Registry, TextEncoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What Prometheus sends (without `Accept-Encoding: gzip`, to read the body as it is).
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

struct Response {
    head: String,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// One HTTP/1.1 GET on its own connection; a chunked body is put back together.
async fn get(addr: SocketAddr, path: &str, accept: Option<&str>) -> Response {
    let mut stream = TcpStream::connect(addr).await.expect("connect to /metrics");
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: shop\r\n{accept}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let raw = String::from_utf8(raw).expect("a UTF-8 response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a complete response");
    let mut response = Response {
        head: head.to_owned(),
        body: body.to_owned(),
    };
    if response.header("transfer-encoding") == Some("chunked") {
        response.body = dechunk(body);
    }
    response
}

fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").expect("a chunk size line");
        let size = usize::from_str_radix(size.trim(), 16).expect("a hexadecimal chunk size");
        if size == 0 {
            return body;
        }
        body.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
}

/// Every sample of a text body: `name{labels}` -> value.
fn parse_samples(body: &str) -> HashMap<String, f64> {
    body.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let value = value
                .parse()
                .unwrap_or_else(|_| panic!("a number in {line:?}"));
            (series.to_owned(), value)
        })
        .collect()
}

/// `name{b="1",a="2"}` as `name{a="2",b="1"}` (the label values here hold no commas).
fn sorted_labels(series: &str) -> String {
    let Some((name, labels)) = series.split_once('{') else {
        return series.to_owned();
    };
    let mut pairs: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
    pairs.sort_unstable();
    format!("{name}{{{}}}", pairs.join(","))
}

fn assert_sample(samples: &HashMap<String, f64>, series: &str, expected: f64) {
    assert_eq!(
        samples.get(series),
        Some(&expected),
        "{series}; the samples: {samples:#?}"
    );
}

async fn work() {
    let metrics = ShopMetrics::global();
    assert_eq!(take_order("fr", 10.0, 5).await, Ok(10.0));
    assert_eq!(take_order("fr", 5.5, 5).await, Ok(5.5));
    assert_eq!(
        take_order("de", 2000.0, 5).await,
        Err(OrderError::PaymentDeclined)
    );
    assert_eq!(take_order("it", 1.0, 0).await, Err(OrderError::OutOfStock));
    metrics.reserved_ratio.set(0.25);
    metrics.requests[Request {
        route: Route::Home,
        cache: Cache::Hit,
    }]
    .inc_by(2);
    metrics.request_seconds[Route::Search].observe(0.05);
    metrics.parcels.with_label_values(&["lyon"]).inc_by(3);
    metrics
        .parcel_weight_grams
        .with_label_values(&["post"])
        .observe(1.5);
}

#[tokio::test]
async fn a_scrape_shows_every_family_with_its_help_and_its_values() {
    ShopMetrics::global();
    // A collector registered the prometheus way, in prometheus' default registry, which the
    // runtime's default registry wraps: served beside the derived families.
    let jobs = prometheus::register_int_counter!(
        "shop_legacy_jobs_total",
        "Jobs counted with prometheus' own macro"
    )
    .unwrap();
    jobs.inc_by(2);
    work().await;

    let server = MetricsServer::for_set::<ShopMetrics>()
        .listen(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .version("1.2.3")
        .bind()
        .await
        .expect("bind the /metrics server")
        .spawn();
    let text = get(server.local_addr(), "/metrics", None).await;
    let openmetrics = get(server.local_addr(), "/metrics", Some(PROMETHEUS_ACCEPT)).await;
    server.shutdown().await.unwrap();

    assert!(text.head.starts_with("HTTP/1.1 200"), "{}", text.head);
    assert_eq!(
        text.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let body = &text.body;
    for desc in ShopMetrics::METRICS {
        let help = format!("# HELP {} {}\n", desc.name, desc.help);
        let kind = format!("# TYPE {} {}\n", desc.name, desc.kind);
        assert!(body.contains(&help), "{help:?} in\n{body}");
        assert!(body.contains(&kind), "{kind:?} in\n{body}");
    }
    let samples = parse_samples(body);
    assert_sample(&samples, "shop_orders_total", 4.0);
    assert_sample(&samples, "shop_revenue_total", 15.5);
    assert_sample(&samples, "shop_orders_in_flight", 0.0);
    assert_sample(&samples, "shop_reserved_ratio", 0.25);
    assert_sample(&samples, "shop_order_seconds_count", 4.0);
    assert_sample(
        &samples,
        r#"shop_order_failures_total{kind="out_of_stock"}"#,
        1.0,
    );
    assert_sample(
        &samples,
        r#"shop_order_failures_total{kind="payment_declined"}"#,
        1.0,
    );
    assert_sample(&samples, r#"shop_order_failures_total{kind="panic"}"#, 0.0);
    assert_sample(
        &samples,
        r#"shop_requests_total{route="/",cache="hit"}"#,
        2.0,
    );
    // Every combination of a typed family is a series from the first scrape.
    assert_sample(
        &samples,
        r#"shop_requests_total{route="/search",cache="miss"}"#,
        0.0,
    );
    assert_sample(
        &samples,
        r#"shop_request_seconds_count{route="/search"}"#,
        1.0,
    );
    assert_sample(
        &samples,
        r#"shop_request_seconds_bucket{route="/search",le="+Inf"}"#,
        1.0,
    );
    assert_sample(&samples, r#"shop_request_seconds_count{route="/"}"#, 0.0);
    assert_sample(
        &samples,
        r#"shop_orders_by_country_total{country="fr"}"#,
        2.0,
    );
    assert_sample(
        &samples,
        r#"shop_orders_by_country_total{country="it"}"#,
        1.0,
    );
    assert_sample(&samples, r#"shop_parcels_total{warehouse="lyon"}"#, 3.0);
    assert_sample(
        &samples,
        r#"shop_parcel_weight_grams_sum{carrier="post"}"#,
        1.5,
    );
    assert_sample(
        &samples,
        r#"shop_parcel_weight_grams_count{carrier="post"}"#,
        1.0,
    );
    assert_sample(&samples, r#"shop_build_info{version="1.2.3"}"#, 1.0);
    assert_sample(&samples, "shop_legacy_jobs_total", 2.0);
    testing::assert_exposition_clean(body);
    testing::assert_promtool_clean(body);

    assert!(
        openmetrics.head.starts_with("HTTP/1.1 200"),
        "{}",
        openmetrics.head
    );
    assert_eq!(
        openmetrics.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let body = &openmetrics.body;
    assert!(body.ends_with("# EOF\n"), "{body}");
    assert!(body.contains("# TYPE shop_orders counter\n"), "{body}");
    assert!(
        body.contains("# UNIT shop_reserved_ratio ratio\n"),
        "{body}"
    );
    let samples = parse_samples(body);
    assert_sample(&samples, "shop_orders_total", 4.0);
    assert_sample(&samples, "shop_legacy_jobs_total", 2.0);
}

#[test]
fn gather_and_prometheus_text_encoder_see_the_derived_families() {
    let registry = Registry::new();
    let metrics = ShopMetrics::register(&registry).unwrap();
    metrics.orders.inc();
    metrics.order_failures[FailureKind::Panic].inc();
    metrics.request_seconds[Route::Home].observe(0.5);
    metrics.orders_by_country.with_label_values(&["nl"]).inc();
    metrics.parcels.with_label_values(&["gent"]).inc();

    // prometheus' records are protobuf messages here: gather() builds them for every family.
    let families = registry.gather();
    let mut theirs = Vec::new();
    TextEncoder::new().encode(&families, &mut theirs).unwrap();
    let theirs = parse_samples(&String::from_utf8(theirs).unwrap());
    let ours = parse_samples(&rsky_metrics_runtime::encode_text(&registry));

    assert_sample(&theirs, "shop_orders_total", 1.0);
    assert_sample(&theirs, r#"shop_order_failures_total{kind="panic"}"#, 1.0);
    assert_sample(&theirs, r#"shop_request_seconds_sum{route="/"}"#, 0.5);
    assert_sample(
        &theirs,
        r#"shop_orders_by_country_total{country="nl"}"#,
        1.0,
    );
    assert_sample(&theirs, r#"shop_parcels_total{warehouse="gent"}"#, 1.0);
    // The same series and values either way: prometheus sorts a series' labels by name and each
    // writes bucket bounds its own way, so compare with sorted labels and without buckets.
    let comparable = |samples: HashMap<String, f64>| -> HashMap<String, f64> {
        samples
            .into_iter()
            .filter(|(series, _)| !series.contains("_bucket"))
            .map(|(series, value)| (sorted_labels(&series), value))
            .collect()
    };
    assert_eq!(comparable(theirs), comparable(ours));
}
