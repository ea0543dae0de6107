//! Measures the indexer on this machine: events per second into PostgreSQL for a backlog, and
//! the latency from XADD to committed row under a steady stream.
//!
//! ```text
//! cargo run --release -p rsky-indexer --example throughput -- [batch sizes, default 1,100,500]
//! cargo run --release -p rsky-indexer --example throughput -- --direct [batch sizes, default 100,500,1000]
//! ```
//!
//! The first form runs the whole indexer (Redis stream, consumer group, stream worker), for each
//! batch size once per write path (`INDEXER_WRITE_PATH`; `THROUGHPUT_PATHS`, default
//! `per-event,batched`): the events/s draining the backlog, then the latency from XADD to the
//! committed row at a steady `THROUGHPUT_RATE`. `--direct` calls the write paths of `rsky_indexer::batch`
//! directly on batches of decoded events, without Redis: for each batch size the per-event path
//! (one transaction per event, 32 in flight, events of one DID in order) and the batched path
//! (one transaction of set-based statements per batch), each into a fresh database, the same
//! events, in the same run. Decoding happens before the clock starts (it is the same for both).
//!
//! Needs PostgreSQL on 127.0.0.1:5432 (user postgres) and Redis on 127.0.0.1:6379; each run uses
//! a database and a stream prefix of its own and removes them afterwards. `THROUGHPUT_EVENTS`
//! sets the backlog size (default 20000; a fifth of it for batch size 1), `THROUGHPUT_RATE` the
//! steady rate of the latency phase (events per second, default 500) and `THROUGHPUT_SECONDS`
//! its length (default 10).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rsky_common::config::Settings;
use rsky_common::event::{RecordEvent, StreamEvent};
use rsky_common::shutdown::Shutdown;
use rsky_indexer::batch::{write_events, Outcome, WritePath};
use rsky_indexer::decode::validate_event;
use rsky_indexer::index::Prepared;
use rsky_indexer::{Config, Indexer, IndexerMetrics};
use rsky_metrics_runtime::Registry;
use serde_json::json;

const CID: &str = "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm";
const COLLECTIONS: [&str; 4] = [
    "app.bsky.feed.post",
    "app.bsky.feed.like",
    "app.bsky.graph.follow",
    "app.bsky.feed.repost",
];

fn tid(n: u64) -> String {
    rsky_atproto::syntax::tid_from_parts(1_700_000_000_000_000 + n * 1000, 3)
}

/// A realistic mix over 1000 accounts: posts, likes, follows, reposts.
fn event(n: u64, created_at: &str) -> StreamEvent {
    let collection = COLLECTIONS[(n % 4) as usize];
    let did = format!("did:plc:bench{:015}", n % 1000);
    let subject = format!(
        "at://did:plc:bench{:015}/app.bsky.feed.post/{}",
        (n + 1) % 1000,
        tid(n)
    );
    let record = match collection {
        "app.bsky.feed.post" => {
            json!({"$type": collection, "text": format!("benchmark post {n}"), "createdAt": created_at})
        }
        "app.bsky.graph.follow" => {
            json!({"$type": collection, "subject": format!("did:plc:bench{:015}", (n + 7) % 1000), "createdAt": created_at})
        }
        _ => {
            json!({"$type": collection, "subject": {"uri": subject, "cid": CID}, "createdAt": created_at})
        }
    };
    StreamEvent::Create(RecordEvent {
        seq: n as i64,
        time: created_at.to_owned(),
        did,
        commit: CID.into(),
        rev: tid(n),
        collection: collection.into(),
        rkey: tid(n),
        cid: CID.into(),
        record,
    })
}

type Error = Box<dyn std::error::Error>;

/// (upper bound, cumulative count) of each bucket.
fn buckets(histogram: &rsky_metrics_runtime::Histogram) -> Vec<(f64, u64)> {
    use rsky_metrics_runtime::prometheus::core::Collector;
    histogram
        .collect()
        .first()
        .and_then(|family| family.get_metric().first())
        .map(|metric| {
            metric
                .get_histogram()
                .get_bucket()
                .iter()
                .map(|b| (b.upper_bound(), b.cumulative_count()))
                .collect()
        })
        .unwrap_or_default()
}

async fn admin() -> Result<tokio_postgres::Client, Error> {
    let (client, conn) = tokio_postgres::connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres",
        tokio_postgres::NoTls,
    )
    .await?;
    tokio::spawn(conn);
    Ok(client)
}

struct Run {
    events_per_second: f64,
    drained: u64,
    seconds: f64,
    rate: u64,
    p50_ms: f64,
    p99_ms: f64,
    p99_bucket: f64,
}

async fn measure(
    batch: usize,
    path: &str,
    backlog: u64,
    rate: u64,
    seconds: u64,
) -> Result<Run, Error> {
    let tag = &path[..1];
    let db = format!("indexer_bench_{}_{tag}{batch}", std::process::id());
    let prefix = format!("bench{}_{tag}{batch}:", std::process::id());
    let admin = admin().await?;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .await?;
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await?;
    let config = Config::from_pairs([
        (
            "DATABASE_URL",
            format!("postgres://postgres@127.0.0.1:5432/{db}"),
        ),
        ("REDIS_KEY_PREFIX", prefix.clone()),
        ("INDEXER_MODE", "stream".into()),
        ("INDEXER_BATCH_SIZE", batch.to_string()),
        ("INDEXER_CONSUMER", "bench".into()),
        ("STREAM_BLOCK_MS", "50".into()),
        ("INDEXER_WRITE_PATH", path.into()),
    ])?;
    let registry = Registry::new();
    let metrics = Arc::new(IndexerMetrics::register(&registry)?);
    let indexer = Indexer::connect(config, metrics.clone()).await?;

    let redis = redis::Client::open("redis://127.0.0.1:6379")?;
    let mut conn = redis.get_multiplexed_async_connection().await?;
    let stream = format!("{prefix}firehose_live");
    let now = rsky_common::time::now_rfc3339();
    for chunk in (0..backlog).collect::<Vec<_>>().chunks(1000) {
        let mut pipe = redis::pipe();
        for n in chunk {
            let json = serde_json::to_string(&event(*n, &now))?;
            pipe.cmd("XADD")
                .arg(&stream)
                .arg("*")
                .arg("event")
                .arg(json)
                .ignore();
        }
        pipe.query_async::<()>(&mut conn).await?;
    }

    // Phase 1: drain the backlog.
    let shutdown = Shutdown::new();
    let started = Instant::now();
    let task = tokio::spawn(indexer.run(shutdown.clone()));
    while metrics.events_processed.get() < backlog {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let drain = started.elapsed().as_secs_f64();

    // Phase 2: a steady stream; latency from the XADD to the committed row.
    let before = buckets(&metrics.stream_to_commit_seconds);
    let total = rate * seconds;
    let tick = Duration::from_secs_f64(1.0 / rate as f64);
    let mut next = Instant::now();
    for i in 0..total {
        let n = backlog + i;
        let json = serde_json::to_string(&event(n, &rsky_common::time::now_rfc3339()))?;
        redis::cmd("XADD")
            .arg(&stream)
            .arg("*")
            .arg("event")
            .arg(json)
            .query_async::<String>(&mut conn)
            .await?;
        next += tick;
        tokio::time::sleep_until(next.into()).await;
    }
    while metrics.events_processed.get() < backlog + total {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    shutdown.cancel();
    task.await??;

    // Exact percentiles from the rows: "indexedAt" is taken in the transaction, "createdAt" just
    // before the XADD (both in milliseconds).
    let (client, c) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port=5432 user=postgres dbname={db}"),
        tokio_postgres::NoTls,
    )
    .await?;
    tokio::spawn(c);
    let row = client
        .query_one(
            r#"SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)
               FROM (SELECT extract(epoch FROM ("indexedAt"::timestamptz - "createdAt"::timestamptz)) * 1000 AS ms
                     FROM post WHERE substring(text FROM 16)::bigint >= $1) s"#,
            &[&(backlog as i64)],
        )
        .await?;
    // The same from the indexer's own histogram (upper bound of the bucket holding the p99),
    // counting only the observations of phase 2.
    let after = buckets(&metrics.stream_to_commit_seconds);
    let phase: Vec<(f64, u64)> = after
        .iter()
        .zip(&before)
        .map(|((bound, a), (_, b))| (*bound, a - b))
        .collect();
    let observed = total as f64;
    let p99_bucket = phase
        .iter()
        .find(|(_, cumulative)| *cumulative as f64 >= 0.99 * observed)
        .map(|(bound, _)| *bound)
        .unwrap_or(f64::INFINITY);
    drop(client);
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await?;
    if !keys.is_empty() {
        redis::cmd("DEL")
            .arg(keys)
            .query_async::<()>(&mut conn)
            .await?;
    }
    Ok(Run {
        events_per_second: backlog as f64 / drain,
        drained: backlog,
        seconds: drain,
        rate,
        p50_ms: row.get::<_, Option<f64>>(0).unwrap_or(f64::NAN),
        p99_ms: row.get::<_, Option<f64>>(1).unwrap_or(f64::NAN),
        p99_bucket,
    })
}

/// Writes `events` along `path` in batches of `batch` into a fresh database; (seconds, events
/// committed).
async fn measure_direct(
    path: WritePath,
    batch: usize,
    events: &[Prepared],
) -> Result<(f64, u64), Error> {
    let tag = match path {
        WritePath::Batched => "b",
        WritePath::PerEvent { .. } => "e",
    };
    let db = format!("indexer_bench_{}_{tag}{batch}", std::process::id());
    let admin = admin().await?;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .await?;
    admin
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await?;
    let pool = rsky_indexer::db::pool(&format!("postgres://postgres@127.0.0.1:5432/{db}"), 20)?;
    rsky_indexer::schema::migrate(&pool).await?;
    let started = Instant::now();
    let mut committed = 0u64;
    for chunk in events.chunks(batch) {
        let now = rsky_common::time::now_rfc3339();
        let report = write_events(&pool, path, chunk, &now).await;
        committed += report
            .outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Committed(_)))
            .count() as u64;
    }
    let seconds = started.elapsed().as_secs_f64();
    drop(pool);
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .await?;
    Ok((seconds, committed))
}

/// `--direct`: both write paths on the same decoded events, per batch size.
async fn direct(batches: &[usize], events: u64) -> Result<(), Error> {
    let now = rsky_common::time::now_rfc3339();
    let prepared: Vec<Prepared> = (0..events)
        .map(|n| {
            // Through JSON and the indexer's validation, as a stream entry is decoded.
            let json = serde_json::to_string(&event(n, &now))?;
            let decoded: StreamEvent = serde_json::from_str(&json)?;
            validate_event(&decoded)?;
            Ok(Prepared::new(decoded)?)
        })
        .collect::<Result<_, Error>>()?;
    println!("| batch size | path | events | write time | events/s | batched / per-event |");
    println!("|---|---|---|---|---|---|");
    for &batch in batches {
        let per_event = WritePath::PerEvent { concurrency: 32 };
        let (e_secs, e_done) = measure_direct(per_event, batch, &prepared).await?;
        let (b_secs, b_done) = measure_direct(WritePath::Batched, batch, &prepared).await?;
        let (e_rate, b_rate) = (e_done as f64 / e_secs, b_done as f64 / b_secs);
        println!("| {batch} | per-event | {e_done} | {e_secs:.2} s | {e_rate:.0} | |");
        println!(
            "| {batch} | batched | {b_done} | {b_secs:.2} s | {b_rate:.0} | {:.1}x |",
            b_rate / e_rate
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let is_direct = args.first().is_some_and(|a| a == "--direct");
    if is_direct {
        args.remove(0);
    }
    let default = if is_direct {
        "100,500,1000"
    } else {
        "1,100,500"
    };
    let batches: Vec<usize> = args
        .first()
        .cloned()
        .unwrap_or_else(|| default.into())
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()
        .map_err(|_| "usage: throughput [--direct] [batch sizes, e.g. 1,100,500]")?;
    let number = |var: &str, default: u64| -> Result<u64, Error> {
        match std::env::var(var) {
            Ok(v) => v
                .parse()
                .map_err(|_| format!("{var}={v:?} is not a whole number").into()),
            Err(_) => Ok(default),
        }
    };
    let events = number("THROUGHPUT_EVENTS", 20_000)?;
    if is_direct {
        return direct(&batches, events).await;
    }
    let rate = number("THROUGHPUT_RATE", 500)?;
    let seconds = number("THROUGHPUT_SECONDS", 10)?;
    let paths = std::env::var("THROUGHPUT_PATHS").unwrap_or_else(|_| "per-event,batched".into());
    println!("| batch size | backlog | drain time | events/s | steady rate | p50 XADD->row | p99 XADD->row | p99 bucket (histogram) |");
    println!("|---|---|---|---|---|---|---|---|");
    for batch in batches {
        let backlog = if batch == 1 { events / 5 } else { events };
        for path in paths.split(',').map(str::trim) {
            let run = measure(batch, path, backlog, rate, seconds).await?;
            println!(
                "| {batch}, {path} | {} | {:.2} s | {:.0} | {}/s | {:.1} ms | {:.1} ms | <= {} s |",
                run.drained,
                run.seconds,
                run.events_per_second,
                run.rate,
                run.p50_ms,
                run.p99_ms,
                run.p99_bucket
            );
        }
    }
    Ok(())
}
