//! Writing a repository to `firehose_backfill`: its records as `create` events in chunks of
//! [`CHUNK_SIZE`], each chunk one atomic pipeline (MULTI/EXEC), then one `repo` event.
//!
//! The last pipeline also acknowledges and deletes the input entry, so a repository's `repo`
//! event and its acknowledgement are written together or not at all. A crash between two chunks
//! leaves the entry pending: it is processed again and its first chunks are written twice, which
//! the indexer tolerates (at-least-once).

use redis::aio::ConnectionManager;
use rsky_common::consumer::GroupConsumer;
use rsky_common::event::{RecordEvent, RepoEvent, StreamEvent};
use rsky_common::streams::{BACKFILL_SEQ, EVENT_FIELD};

use crate::config::CHUNK_SIZE;
use crate::repo::Repo;

/// The input entry to acknowledge (XACK + XDEL) with the last pipeline: the consumer of its
/// group and the entry ID.
pub type Ack<'a> = (&'a GroupConsumer, &'a str);

/// What was written for one repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    /// `create` events written.
    pub creates: u64,
    /// Pipelines used (chunks, the last one carrying the `repo` event).
    pub pipelines: u64,
}

/// Writes `repo` to `output` with ingest time `time` (RFC 3339) and acknowledges `ack`.
pub async fn write_repo(
    redis: &mut ConnectionManager,
    output: &str,
    repo: Repo,
    time: &str,
    ack: Option<Ack<'_>>,
) -> Result<Written, redis::RedisError> {
    let Repo {
        did,
        commit,
        rev,
        records,
        ..
    } = repo;
    let total = records.len();
    let mut records = records.into_iter();
    let mut written = Written {
        creates: 0,
        pipelines: 0,
    };
    loop {
        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut in_chunk = 0;
        for record in records.by_ref().take(CHUNK_SIZE) {
            let event = StreamEvent::Create(RecordEvent {
                seq: BACKFILL_SEQ,
                time: time.to_owned(),
                did: did.clone(),
                commit: commit.clone(),
                rev: rev.clone(),
                collection: record.collection,
                rkey: record.rkey,
                cid: record.cid,
                record: record.record,
            });
            pipe.xadd(output, "*", &[(EVENT_FIELD, to_json(&event)?)])
                .ignore();
            in_chunk += 1;
        }
        written.creates += in_chunk;
        let last = written.creates as usize == total;
        if last {
            let event = StreamEvent::Repo(RepoEvent {
                seq: BACKFILL_SEQ,
                time: time.to_owned(),
                did: did.clone(),
                commit: commit.clone(),
                rev: rev.clone(),
            });
            pipe.xadd(output, "*", &[(EVENT_FIELD, to_json(&event)?)])
                .ignore();
            if let Some((consumer, id)) = ack {
                consumer.add_ack(&mut pipe, &[id]);
            }
        }
        pipe.exec_async(redis).await?;
        written.pipelines += 1;
        if last {
            return Ok(written);
        }
    }
}

fn to_json(event: &StreamEvent) -> Result<String, redis::RedisError> {
    serde_json::to_string(event).map_err(|e| {
        redis::RedisError::from((
            redis::ErrorKind::Client,
            "cannot serialize a stream event",
            e.to_string(),
        ))
    })
}
