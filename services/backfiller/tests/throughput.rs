//! Throughput: repositories of 10,000 records, backfilled end to end (loopback PDS, real Redis).
//!
//! ```text
//! cargo test --release -p rsky-backfiller --test throughput -- --ignored --nocapture
//! ```

mod support;

use std::time::{Duration, Instant};

use support::{Running, World};

const RECORDS: usize = 10_000;
const REPOS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run in release: see the module docs"]
async fn backfill_throughput_for_repos_of_10000_records() {
    let mut world = World::new("throughput").await;
    world.add_served("throughput", REPOS, RECORDS).await;
    let started = Instant::now();
    let running = Running::start(world.config("bench", &[])).await;
    world.wait_drained(Duration::from_secs(600)).await;
    let elapsed = started.elapsed();
    let metrics = running.stop().await;
    assert_eq!(metrics.repos_processed.get(), REPOS as u64);
    let records = metrics.records_extracted.get() + metrics.records_filtered.get();
    assert_eq!(records, (REPOS * RECORDS) as u64);
    let secs = elapsed.as_secs_f64();
    println!(
        "backfilled {REPOS} repos x {RECORDS} records in {secs:.2} s: {:.2} repos/s, {:.0} records/s ({} written as creates)",
        REPOS as f64 / secs,
        records as f64 / secs,
        metrics.records_extracted.get()
    );
    world.cleanup().await;
}
