//! `INDEXER_WRITE_PATH`: the per-event path stays selectable, and both paths leave the same rows
//! through the whole indexer.

use std::time::Duration;

use rsky_testkit::indexer::*;
use serde_json::json;

const POST: &str = "app.bsky.feed.post";

/// Creates, an update, a create and delete of one record, a late older create, repo, account and
/// identity events, over a few DIDs.
fn events() -> Vec<rsky_common::event::StreamEvent> {
    let text = |t: &str| json!({"text": t, "createdAt": "2024-01-01T00:00:00.000Z"});
    let mut events = Vec::new();
    for n in 0..30u64 {
        events.push(create(&did(n % 5), POST, &rev(n), &rev(n), text("p")));
    }
    events.push(update(&did(1), POST, &rev(1), &rev(100), text("edited")));
    events.push(delete(&did(2), POST, &rev(2), &rev(101)));
    events.push(create(&did(2), POST, &rev(2), &rev(2), text("late older")));
    events.push(repo(&did(3), &rev(102), 7));
    events.push(account(&did(4), false, Some("takendown")));
    events.push(identity(&did(4), Some("Four.example.com")));
    events
}

async fn rows_after(path: &str) -> (Vec<String>, u64) {
    let (db, streams, indexer) = start_indexer(&[("INDEXER_WRITE_PATH", path)]).await;
    let events = events();
    let total = events.len() as u64;
    streams.xadd_live(events).await;
    wait_until(
        Duration::from_secs(30),
        "every event acknowledged",
        || async { streams.xlen("firehose_live").await == 0 },
    )
    .await;
    let processed = indexer.metrics.events_processed.get();
    assert_eq!(processed, total, "{path}");
    let client = db.client().await;
    let mut rows = Vec::new();
    for sql in [
        "SELECT uri || ' ' || cid || ' ' || json::text || ' ' || rev FROM record ORDER BY uri",
        "SELECT uri || ' ' || text FROM post ORDER BY uri",
        r#"SELECT did || ' ' || "repoRev" FROM actor_sync ORDER BY did"#,
        r#"SELECT did || ' ' || coalesce(handle, '-') || ' ' || coalesce("upstreamStatus", '-') FROM actor ORDER BY did"#,
    ] {
        for row in client.query(sql, &[]).await.unwrap() {
            rows.push(row.get(0));
        }
    }
    indexer.stop().await;
    (rows, processed)
}

#[tokio::test]
async fn the_per_event_and_batched_paths_leave_the_same_rows_through_the_indexer() {
    let (per_event, _) = rows_after("per-event").await;
    let (batched, _) = rows_after("batched").await;
    assert!(per_event.len() > 30);
    assert_eq!(batched, per_event);
}
