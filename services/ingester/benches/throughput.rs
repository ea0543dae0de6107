//! Ingester throughput: events per second from the test relay, through the ingester, into
//! Redis, on this machine. Not a criterion bench: one run moves tens of thousands of events
//! through real sockets and a real Redis, and prints what it measured.
//!
//! ```text
//! cargo bench -p rsky-ingester --bench throughput
//! THROUGHPUT_EVENTS=100000 cargo bench -p rsky-ingester --bench throughput
//! ```
//!
//! Needs Redis: `REDIS_URL`, else the tests' (`TEST_REDIS_URL`, default 127.0.0.1:6379); writes
//! under a unique key prefix and deletes what it wrote.
//!
//! To profile only the ingest (not the frame generation before it), run the binary under
//! `perf record --control fifo:CTL -D -1` with `PERF_CTL_FIFO=CTL`: the bench enables perf when
//! the ingester starts and disables it when the last event is written (see BENCHMARKS.md).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rsky_common::config::Settings;
use rsky_common::shutdown::Shutdown;
use rsky_common::store::{self, read_cursor, stream_len};
use rsky_ingester::decode::decode_frame;
use rsky_ingester::{Config, IngesterMetrics};
use rsky_metrics_runtime::Registry;
use rsky_testkit::load::LoadGenerator;
use rsky_testkit::TestRelay;

/// CPU time (user + system) this process used so far, from /proc/self/stat.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // Fields after the command: state is index 0, utime 11, stime 12 (clock ticks of 10 ms).
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// Sends `command` (`enable` / `disable`) to perf's control FIFO, when profiling.
fn perf_control(command: &str) {
    if let Ok(path) = std::env::var("PERF_CTL_FIFO") {
        if let Err(err) = std::fs::write(&path, format!("{command}\n")) {
            eprintln!("cannot write {command} to {path}: {err}");
        }
    }
}

/// Redis's own CPU time so far (`INFO cpu`: used_cpu_user + used_cpu_sys).
async fn redis_cpu(conn: &mut store::Connection) -> Duration {
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query_async(conn)
        .await
        .unwrap_or_default();
    let seconds: f64 = info
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| *k == "used_cpu_user" || *k == "used_cpu_sys")
        .filter_map(|(_, v)| v.trim().parse::<f64>().ok())
        .sum();
    Duration::from_secs_f64(seconds)
}

#[tokio::main]
async fn main() {
    let events: usize = std::env::var("THROUGHPUT_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let redis_url =
        std::env::var("REDIS_URL").unwrap_or_else(|_| rsky_testkit::support::redis_url());

    let generating = Instant::now();
    let mut load = LoadGenerator::new(1000, 1);
    let items = load
        .next_items(events)
        .expect("the load generator builds frames");
    let last_seq = items.iter().filter_map(|i| i.seq).max().unwrap_or_default();
    let bytes: usize = items.iter().map(|i| i.frame.len()).sum();
    println!(
        "generated {events} frames ({:.1} MB, {:.0} B/frame) in {:.1?}",
        bytes as f64 / 1e6,
        bytes as f64 / events as f64,
        generating.elapsed()
    );
    // The CPU ceiling of the ingester's own work: decode and serialize every frame on one
    // thread, with no socket and no Redis.
    let scratch = IngesterMetrics::register(&Registry::new()).expect("a fresh registry");
    let decoding = Instant::now();
    let mut json_bytes = 0usize;
    for item in &items {
        let decoded = decode_frame(&item.frame, "2024-01-01T00:00:00.000Z", &scratch);
        for event in &decoded.events {
            json_bytes += serde_json::to_string(event).map(|j| j.len()).unwrap_or(0);
        }
    }
    let decode_time = decoding.elapsed();
    println!(
        "decode + JSON only, one thread: {:.0} frames/s ({:.1} µs per frame, {:.1} MB of JSON)",
        events as f64 / decode_time.as_secs_f64(),
        decode_time.as_secs_f64() * 1e6 / events as f64,
        json_bytes as f64 / 1e6
    );
    let relay = TestRelay::start().await.expect("the relay starts");
    relay.push(items);

    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let prefix = format!("bench:{nanos}:");
    let config = Config::from_pairs([
        ("REDIS_URL", redis_url.as_str()),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
        ("INGESTER_MODE", "firehose"),
        ("INGESTER_RELAY_HOSTS", relay.ws_url().as_str()),
        ("INGESTER_HIGH_WATER_MARK", "100000000"),
    ])
    .expect("valid configuration");
    let streams = config.pipeline.streams.clone();
    let cursor_key = streams.cursor_key(&streams.firehose_live, &relay.addr().to_string());
    let registry = Registry::new();
    let metrics = Arc::new(IngesterMetrics::register(&registry).expect("a fresh registry"));
    let mut conn = store::connect(&redis_url, store::RedisTimeouts::DEFAULT)
        .await
        .expect("Redis is reachable");

    let shutdown = Shutdown::new();
    let cpu_before = process_cpu();
    let redis_before = redis_cpu(&mut conn).await;
    perf_control("enable");
    let started = Instant::now();
    let task = tokio::spawn(rsky_ingester::run(
        config,
        metrics.clone(),
        shutdown.clone(),
    ));
    let target = last_seq.to_string();
    loop {
        if read_cursor(&mut conn, &cursor_key)
            .await
            .ok()
            .flatten()
            .as_deref()
            == Some(target.as_str())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    perf_control("disable");
    let cpu = process_cpu().saturating_sub(cpu_before);
    let redis = redis_cpu(&mut conn).await.saturating_sub(redis_before);
    shutdown.cancel();
    let _ = task.await;

    let written = stream_len(&mut conn, &streams.firehose_live)
        .await
        .unwrap_or(0);
    println!(
        "ingested {events} frames -> {written} stream entries in {:.2?}: {:.0} frames/s, {:.0} entries/s",
        elapsed,
        events as f64 / elapsed.as_secs_f64(),
        written as f64 / elapsed.as_secs_f64()
    );
    println!(
        "process CPU (ingester + relay in this process) {:.2?} = {:.0}% of one core; {:.1} µs CPU per frame",
        cpu,
        100.0 * cpu.as_secs_f64() / elapsed.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / events as f64
    );
    println!(
        "Redis server CPU {:.2?} = {:.0}% of one core",
        redis,
        100.0 * redis.as_secs_f64() / elapsed.as_secs_f64()
    );
    println!(
        "counters: firehose_events={} creates={} updates={} deletes={} filtered={} errors={} batch_writes={}",
        metrics.firehose_events.get(),
        metrics.firehose_create_events.get(),
        metrics.firehose_update_events.get(),
        metrics.firehose_delete_events.get(),
        metrics.firehose_filtered_operations.get(),
        metrics.errors.iter().map(|(_, c)| c.get()).sum::<u64>(),
        metrics.batch_writes.get()
    );
    let _: Result<(), _> = redis::cmd("DEL")
        .arg(&streams.firehose_live)
        .arg(&cursor_key)
        .query_async(&mut conn)
        .await;
}
