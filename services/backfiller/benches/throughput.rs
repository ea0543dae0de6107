//! Backfiller throughput: repositories of 10,000 records, backfilled end to end (loopback test
//! PDS and PLC, real Redis), in repos per second and records per second. Not a criterion bench:
//! one run moves tens of thousands of records and prints what it measured.
//!
//! ```text
//! cargo bench -p rsky-backfiller --bench throughput
//! BACKFILL_BENCH_REPOS=16 BACKFILL_BENCH_RECORDS=10000 cargo bench -p rsky-backfiller --bench throughput
//! ```
//!
//! Under `cargo test` (no `--bench` argument) it runs one small repository, as a check that the
//! measurement still works. Needs the tests' Redis (`TEST_REDIS_URL`, default 127.0.0.1:6379);
//! writes under its own key prefix.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::{Running, World};

fn setting(var: &str, default: usize) -> usize {
    match std::env::var(var) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{var}={value:?} is not a whole number")),
        Err(_) => default,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let measuring = std::env::args().any(|arg| arg == "--bench");
    let (repos, records) = if measuring {
        (
            setting("BACKFILL_BENCH_REPOS", 8),
            setting("BACKFILL_BENCH_RECORDS", 10_000),
        )
    } else {
        (1, 200)
    };
    let mut world = World::new("throughput").await;
    world.add_served("throughput", repos, records).await;
    let started = Instant::now();
    let running = Running::start(world.config("bench", &[])).await;
    world.wait_drained(Duration::from_secs(600)).await;
    let elapsed = started.elapsed();
    let metrics = running.stop().await;
    assert_eq!(metrics.repos_processed.get(), repos as u64);
    let seen = metrics.records_extracted.get() + metrics.records_filtered.get();
    assert_eq!(seen, (repos * records) as u64);
    let secs = elapsed.as_secs_f64();
    println!(
        "backfilled {repos} repos x {records} records in {secs:.2} s: {:.2} repos/s, {:.0} records/s ({} written as creates)",
        repos as f64 / secs,
        seen as f64 / secs,
        metrics.records_extracted.get()
    );
    world.cleanup().await;
}
