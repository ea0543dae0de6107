//! Consumer-group machinery for the services that work through a Redis stream (the indexer on
//! `firehose_*` and `label_live`, the backfiller on `repo_backfill`).
//!
//! The rules, written once:
//! - the group is created with `MKSTREAM` at start (an existing group is fine);
//! - a consumer reads its own pending entries first (what it was given and did not acknowledge,
//!   e.g. before a crash), then new ones; re-reading a pending entry counts as a delivery;
//! - entries idle too long in another consumer's pending list are taken over with `XAUTOCLAIM`;
//! - an entry that failed stays pending and is read again (a delivery that Redis counts), so the
//!   count survives a restart;
//! - an entry is acknowledged only once its work is done, with `XACK` and `XDEL` in one atomic
//!   pipeline (the caller's own, when its last writes must go with the acknowledgement), so a
//!   done entry never stays in the stream and an undone one is never dropped;
//! - an entry that keeps failing goes to a dead-letter stream with its fields, the reason and the
//!   number of attempts (and is acknowledged in the same pipeline);
//! - trimming never removes an entry that is pending in, or not yet delivered to, any group.
//!
//! [`GroupConsumer`] holds its own connection: a blocking `XREADGROUP` holds a Redis connection
//! for its whole wait, so one consumer must not share its connection with other work. A clone
//! shares the connection: clone a consumer that never blocks (e.g. one that acknowledges for
//! many tasks), not the one that does the blocking reads.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{RedisError, Value};

/// A failure of a consumer-group operation, naming the stream, the group and the operation.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// Redis refused the command or could not be reached.
    #[error("redis {op} on stream {stream:?} (group {group:?}) failed: {source}")]
    Redis {
        /// The command, e.g. `XREADGROUP`.
        op: &'static str,
        /// The stream.
        stream: String,
        /// The consumer group.
        group: String,
        /// What Redis said.
        source: RedisError,
    },
    /// Redis answered with something this module does not understand.
    #[error("unexpected reply to {op} on stream {stream:?}: {detail}")]
    Reply {
        /// The command.
        op: &'static str,
        /// The stream.
        stream: String,
        /// What was wrong with the reply.
        detail: String,
    },
}

impl ConsumerError {
    /// Whether the failure is a lost or refused connection (as opposed to a refused command).
    pub fn is_connection_error(&self) -> bool {
        match self {
            ConsumerError::Redis { source, .. } => {
                source.is_io_error()
                    || source.is_connection_dropped()
                    || source.is_connection_refusal()
                    || source.is_timeout()
            }
            ConsumerError::Reply { .. } => false,
        }
    }

    /// Whether Redis answered `NOGROUP`: the consumer group (or the whole stream) is gone, e.g.
    /// Redis restarted without persistence or someone deleted the stream or the group.
    pub fn is_no_group(&self) -> bool {
        matches!(self, ConsumerError::Redis { source, .. } if source.code() == Some("NOGROUP"))
    }
}

/// Where and as whom a [`GroupConsumer`] reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// The stream to read.
    pub stream: String,
    /// The consumer group, shared by every process that splits the stream's work.
    pub group: String,
    /// This consumer's name, unique within the group (a restarted process should reuse its name
    /// to pick up its own pending entries at once).
    pub consumer: String,
    /// Where entries go after too many deliveries.
    pub dead_letter_stream: String,
    /// The dead-letter stream is trimmed to about this many entries (`DEAD_LETTER_MAX_LEN`).
    pub dead_letter_max_len: u64,
    /// How long `XREADGROUP` waits for new entries.
    pub block: Duration,
    /// How long an entry must sit unacknowledged in another consumer's pending list before
    /// [`GroupConsumer::claim_stale`] takes it over.
    pub claim_min_idle: Duration,
}

/// One entry read from the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamEntry {
    /// The entry ID, `<milliseconds>-<sequence>`.
    pub id: String,
    /// The entry's fields. Empty when the entry was deleted from the stream while pending.
    pub fields: HashMap<String, String>,
    /// How many times the group delivered this entry, this delivery included.
    pub deliveries: u64,
}

impl StreamEntry {
    /// The value of `field`, if the entry has it.
    pub fn field(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }

    /// When Redis added the entry, in milliseconds since the Unix epoch (the ID's first part).
    pub fn added_at_ms(&self) -> Option<u64> {
        self.id.split_once('-')?.0.parse().ok()
    }
}

/// What one [`GroupConsumer::read`] returned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// Entries delivered before and not yet acknowledged (retries), oldest first.
    pub pending: Vec<StreamEntry>,
    /// Entries delivered for the first time, oldest first.
    pub new: Vec<StreamEntry>,
}

impl Batch {
    /// Every entry of the batch: retries first.
    pub fn entries(&self) -> impl Iterator<Item = &StreamEntry> {
        self.pending.iter().chain(self.new.iter())
    }

    /// How many entries the batch holds.
    pub fn len(&self) -> usize {
        self.pending.len() + self.new.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A consumer in a Redis consumer group, on its own connection (which its clones share).
#[derive(Clone)]
pub struct GroupConsumer {
    conn: ConnectionManager,
    config: Arc<ConsumerConfig>,
}

impl GroupConsumer {
    /// Connects to Redis at `url` for this consumer ([`crate::store::connect`]), with
    /// `timeouts` and the block time on top of the response timeout. The connection reconnects
    /// by itself after a failure.
    pub async fn connect(
        url: &str,
        timeouts: crate::store::RedisTimeouts,
        config: ConsumerConfig,
    ) -> Result<Self, ConsumerError> {
        // A blocking read holds the connection for `block`: the response timeout outlasts it.
        let conn = crate::store::connect(url, timeouts.for_blocking(config.block))
            .await
            .map_err(|err| ConsumerError::Redis {
                op: "CONNECT",
                stream: config.stream.clone(),
                group: config.group.clone(),
                source: err.into_redis(),
            })?;
        Ok(GroupConsumer {
            conn,
            config: Arc::new(config),
        })
    }

    /// The configuration this consumer was made with.
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    fn redis_error(&self, op: &'static str) -> impl FnOnce(RedisError) -> ConsumerError + '_ {
        move |source| ConsumerError::Redis {
            op,
            stream: self.config.stream.clone(),
            group: self.config.group.clone(),
            source,
        }
    }

    fn reply_error(&self, op: &'static str, detail: impl Into<String>) -> ConsumerError {
        ConsumerError::Reply {
            op,
            stream: self.config.stream.clone(),
            detail: detail.into(),
        }
    }

    /// Creates the group at the start of the stream (and the stream if missing); an existing
    /// group is left as it is. At the start (`0`), not at the end (`$`): entries are deleted
    /// once acknowledged, so whatever is in the stream is unfinished work, also when the group
    /// is created again after Redis lost it (see [`ConsumerError::is_no_group`]).
    pub async fn create_group(&mut self) -> Result<(), ConsumerError> {
        let result: Result<Value, RedisError> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.config.stream)
            .arg(&self.config.group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut self.conn)
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if err.code() == Some("BUSYGROUP") => Ok(()),
            Err(err) => Err(self.redis_error("XGROUP CREATE")(err)),
        }
    }

    /// Reads up to `count` entries: this consumer's pending entries first; if there is room
    /// left, new entries (waiting up to `block` for them only when there is no pending entry).
    pub async fn read(&mut self, count: usize) -> Result<Batch, ConsumerError> {
        let pending = self.read_pending(count).await?;
        let room = count.saturating_sub(pending.len());
        let new = if room == 0 {
            Vec::new()
        } else {
            let block = pending.is_empty().then_some(self.config.block);
            self.read_new(room, block).await?
        };
        Ok(Batch { pending, new })
    }

    /// Reads up to `count` of this consumer's own pending entries, with their delivery counts
    /// (this read counts as a delivery).
    pub async fn read_pending(&mut self, count: usize) -> Result<Vec<StreamEntry>, ConsumerError> {
        let mut entries = self.xreadgroup("0", count, None).await?;
        self.fill_delivery_counts(&mut entries).await?;
        Ok(entries)
    }

    /// Reads up to `count` entries never delivered to the group, waiting up to `block` when
    /// there are none (`None`: do not wait).
    pub async fn read_new(
        &mut self,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<StreamEntry>, ConsumerError> {
        self.xreadgroup(">", count, block).await
    }

    async fn xreadgroup(
        &mut self,
        from: &str,
        count: usize,
        block: Option<Duration>,
    ) -> Result<Vec<StreamEntry>, ConsumerError> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.config.group)
            .arg(&self.config.consumer)
            .arg("COUNT")
            .arg(count.max(1));
        if let Some(block) = block {
            cmd.arg("BLOCK").arg(block.as_millis().max(1) as u64);
        }
        cmd.arg("STREAMS").arg(&self.config.stream).arg(from);
        let reply: Value = cmd
            .query_async(&mut self.conn)
            .await
            .map_err(self.redis_error("XREADGROUP"))?;
        parse_read_reply(reply).map_err(|detail| self.reply_error("XREADGROUP", detail))
    }

    /// Sets the delivery count of each of `entries` (this consumer's pending entries, in ID
    /// order) from `XPENDING`, paging through the range they span, which may hold other pending
    /// entries of this consumer too.
    async fn fill_delivery_counts(
        &mut self,
        entries: &mut [StreamEntry],
    ) -> Result<(), ConsumerError> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(());
        };
        let last_id = last.id.clone();
        let page = entries.len().max(10);
        let mut start = first.id.clone();
        let mut counts = HashMap::new();
        while counts.len() < entries.len() {
            let reply: redis::streams::StreamPendingCountReply = redis::cmd("XPENDING")
                .arg(&self.config.stream)
                .arg(&self.config.group)
                .arg(&start)
                .arg(&last_id)
                .arg(page)
                .arg(&self.config.consumer)
                .query_async(&mut self.conn)
                .await
                .map_err(self.redis_error("XPENDING"))?;
            let full = reply.ids.len() == page;
            let Some(next) = reply.ids.last().map(|p| format!("({}", p.id)) else {
                break;
            };
            counts.extend(
                reply
                    .ids
                    .into_iter()
                    .map(|p| (p.id, p.times_delivered as u64)),
            );
            if !full {
                break;
            }
            start = next;
        }
        for entry in entries {
            entry.deliveries = counts.get(&entry.id).copied().unwrap_or(1);
        }
        Ok(())
    }

    /// Takes over entries that sat unacknowledged longer than `claim_min_idle` in any consumer's
    /// pending list (a consumer that died); they become this consumer's pending entries, read
    /// by the next [`GroupConsumer::read`]. Returns how many were claimed.
    pub async fn claim_stale(&mut self, count: usize) -> Result<usize, ConsumerError> {
        let mut claimed = 0;
        self.autoclaim(count, |part| match part {
            Value::Array(ids) => {
                claimed += ids.len();
                Ok(())
            }
            _ => Err("the claimed IDs are not an array".to_owned()),
        })
        .await?;
        Ok(claimed)
    }

    /// Runs `XAUTOCLAIM` from the start of the pending list to its end, `count` at a time,
    /// handing the claimed IDs of each reply to `claimed`.
    async fn autoclaim(
        &mut self,
        count: usize,
        mut claimed: impl FnMut(Value) -> Result<(), String>,
    ) -> Result<(), ConsumerError> {
        let mut start = "0-0".to_owned();
        loop {
            let mut cmd = redis::cmd("XAUTOCLAIM");
            cmd.arg(&self.config.stream)
                .arg(&self.config.group)
                .arg(&self.config.consumer)
                .arg(self.config.claim_min_idle.as_millis() as u64)
                .arg(&start)
                .arg("COUNT")
                .arg(count.max(1))
                .arg("JUSTID");
            let reply: Value = cmd
                .query_async(&mut self.conn)
                .await
                .map_err(self.redis_error("XAUTOCLAIM"))?;
            let Value::Array(mut parts) = reply else {
                return Err(self.reply_error("XAUTOCLAIM", "not an array"));
            };
            let next = parts
                .first()
                .and_then(value_string)
                .ok_or_else(|| self.reply_error("XAUTOCLAIM", "no next start ID in the reply"))?;
            if parts.len() > 1 {
                claimed(parts.swap_remove(1))
                    .map_err(|detail| self.reply_error("XAUTOCLAIM", detail))?;
            }
            if next == "0-0" {
                return Ok(());
            }
            start = next;
        }
    }

    /// Acknowledges and deletes `ids` (`XACK` + `XDEL` in one atomic pipeline).
    pub async fn ack(&mut self, ids: &[String]) -> Result<(), ConsumerError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        self.add_ack(&mut pipe, ids);
        pipe.query_async::<()>(&mut self.conn)
            .await
            .map_err(self.redis_error("XACK+XDEL"))
    }

    /// Adds the acknowledgement of `ids` (`XACK` + `XDEL`, replies ignored) to the caller's
    /// pipeline, for a caller whose last writes and the acknowledgement must happen together:
    /// make the pipeline atomic and run it on any connection to the same Redis.
    pub fn add_ack<I: redis::ToRedisArgs>(&self, pipe: &mut redis::Pipeline, ids: &[I]) {
        if ids.is_empty() {
            return;
        }
        pipe.cmd("XACK")
            .arg(&self.config.stream)
            .arg(&self.config.group)
            .arg(ids)
            .ignore()
            .cmd("XDEL")
            .arg(&self.config.stream)
            .arg(ids)
            .ignore();
    }

    /// Moves `entry` to the dead-letter stream with its fields plus `reason` and `attempts`,
    /// and acknowledges and deletes it, all in one atomic pipeline. The dead-letter stream is
    /// bounded (`MAXLEN ~`, [`ConsumerConfig::dead_letter_max_len`]): its oldest entries go first.
    pub async fn dead_letter(
        &mut self,
        entry: &StreamEntry,
        reason: &str,
    ) -> Result<(), ConsumerError> {
        let fields = crate::dead_letter::letter_fields(&entry.fields, reason, entry.deliveries);
        let xadd = crate::dead_letter::xadd(
            &self.config.dead_letter_stream,
            &fields,
            self.config.dead_letter_max_len,
        );
        let mut pipe = redis::pipe();
        pipe.atomic().add_command(xadd).ignore();
        self.add_ack(&mut pipe, std::slice::from_ref(&entry.id));
        pipe.query_async::<()>(&mut self.conn)
            .await
            .map_err(self.redis_error("XADD(dead letter)+XACK+XDEL"))
    }

    /// Sets the delivery count of each of this consumer's pending entries `(id, count)`
    /// (`XCLAIM ... RETRYCOUNT count JUSTID`, which counts no delivery itself), e.g. to give
    /// back the delivery of an entry that was not tried. IDs no longer pending are ignored.
    pub async fn set_deliveries(&mut self, counts: &[(&str, u64)]) -> Result<(), ConsumerError> {
        if counts.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (id, count) in counts {
            pipe.cmd("XCLAIM")
                .arg(&self.config.stream)
                .arg(&self.config.group)
                .arg(&self.config.consumer)
                .arg(0)
                .arg(*id)
                .arg("RETRYCOUNT")
                .arg(*count)
                .arg("JUSTID")
                .ignore();
        }
        pipe.query_async::<()>(&mut self.conn)
            .await
            .map_err(self.redis_error("XCLAIM RETRYCOUNT"))
    }

    /// How many entries of the group (every consumer) are delivered and not acknowledged.
    pub async fn pending_count(&mut self) -> Result<u64, ConsumerError> {
        let reply: Value = redis::cmd("XPENDING")
            .arg(&self.config.stream)
            .arg(&self.config.group)
            .query_async(&mut self.conn)
            .await
            .map_err(self.redis_error("XPENDING"))?;
        match reply {
            Value::Array(parts) => Ok(parts.first().and_then(value_u64).unwrap_or(0)),
            _ => Err(self.reply_error("XPENDING", "not an array")),
        }
    }

    /// How many entries of the stream were never delivered to this group: the stream's length
    /// minus the group's pending entries. Exact when acknowledged entries are deleted (as
    /// [`GroupConsumer::ack`] does); entries acknowledged and left in the stream count as
    /// undelivered until trimmed.
    pub async fn undelivered_count(&mut self) -> Result<u64, ConsumerError> {
        let (length, groups): (u64, redis::streams::StreamInfoGroupsReply) = redis::pipe()
            .cmd("XLEN")
            .arg(&self.config.stream)
            .cmd("XINFO")
            .arg("GROUPS")
            .arg(&self.config.stream)
            .query_async(&mut self.conn)
            .await
            .map_err(self.redis_error("XLEN+XINFO GROUPS"))?;
        let pending = groups
            .groups
            .iter()
            .find(|g| g.name == self.config.group)
            .map_or(0, |g| g.pending as u64);
        Ok(length.saturating_sub(pending))
    }

    /// Trims the stream below the oldest entry that any group still needs: for each group, its
    /// oldest pending entry, or if it has none, the first entry after its last delivered one.
    /// Without a group nothing is trimmed. Returns how many entries were removed.
    pub async fn trim_safe(&mut self) -> Result<u64, ConsumerError> {
        match safe_trim_floor(&mut self.conn, &self.config.stream).await {
            Ok(None) => Ok(0),
            Ok(Some(floor)) => redis::cmd("XTRIM")
                .arg(&self.config.stream)
                .arg("MINID")
                .arg(&floor)
                .query_async(&mut self.conn)
                .await
                .map_err(self.redis_error("XTRIM")),
            Err(err) => Err(match err {
                FloorError::Redis(op, source) => ConsumerError::Redis {
                    op,
                    stream: self.config.stream.clone(),
                    group: self.config.group.clone(),
                    source,
                },
                FloorError::Reply(op, detail) => self.reply_error(op, detail),
            }),
        }
    }
}

enum FloorError {
    Redis(&'static str, RedisError),
    Reply(&'static str, String),
}

/// The lowest entry ID that some group of `stream` still needs, or `None` without groups.
async fn safe_trim_floor(
    conn: &mut ConnectionManager,
    stream: &str,
) -> Result<Option<String>, FloorError> {
    let groups: redis::streams::StreamInfoGroupsReply = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(stream)
        .query_async(conn)
        .await
        .map_err(|e| FloorError::Redis("XINFO GROUPS", e))?;
    // Last-delivered IDs first: an entry delivered after this read has a greater ID, so it is
    // above the floor even when the pending summaries below, read later, do not list it.
    let mut floor: Option<(u64, u64)> = None;
    for group in groups.groups {
        let oldest_pending = if group.pending > 0 {
            let reply: Value = redis::cmd("XPENDING")
                .arg(stream)
                .arg(&group.name)
                .query_async(conn)
                .await
                .map_err(|e| FloorError::Redis("XPENDING", e))?;
            match reply {
                Value::Array(parts) => {
                    let count = parts.first().and_then(value_u64).unwrap_or(0);
                    match parts.get(1).and_then(value_string) {
                        Some(oldest) if count > 0 => Some(oldest),
                        // Everything pending was acknowledged since the XINFO.
                        _ => None,
                    }
                }
                _ => return Err(FloorError::Reply("XPENDING", "not an array".to_owned())),
            }
        } else {
            None
        };
        let needed = match oldest_pending {
            Some(oldest) => parse_id(&oldest)
                .ok_or_else(|| FloorError::Reply("XPENDING", format!("bad entry ID {oldest:?}")))?,
            None => {
                let (ms, seq) = parse_id(&group.last_delivered_id).ok_or_else(|| {
                    FloorError::Reply(
                        "XINFO GROUPS",
                        format!("bad last-delivered-id {:?}", group.last_delivered_id),
                    )
                })?;
                successor(ms, seq)
            }
        };
        floor = Some(match floor {
            Some(current) if current <= needed => current,
            _ => needed,
        });
    }
    Ok(floor.map(|(ms, seq)| format!("{ms}-{seq}")))
}

fn successor(ms: u64, seq: u64) -> (u64, u64) {
    match seq.checked_add(1) {
        Some(next) => (ms, next),
        None => (ms.saturating_add(1), 0),
    }
}

/// Parses `<ms>-<seq>` into its two numbers.
pub fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

fn value_string(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

fn value_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Int(n) => u64::try_from(*n).ok(),
        other => value_string(other)?.parse().ok(),
    }
}

/// Parses an `XREADGROUP` reply for one stream: `[[key, [[id, [f, v, ...] | nil], ...]]]` (RESP2)
/// or a map of key to entries (RESP3); nil when nothing arrived.
fn parse_read_reply(reply: Value) -> Result<Vec<StreamEntry>, String> {
    let streams: Vec<Value> = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Array(mut pair) if pair.len() == 2 => Ok(pair.swap_remove(1)),
                _ => Err("a stream is not a [key, entries] pair".to_owned()),
            })
            .collect::<Result<_, _>>()?,
        Value::Map(pairs) => pairs.into_iter().map(|(_, v)| v).collect(),
        other => return Err(format!("expected an array, got {other:?}")),
    };
    let mut entries = Vec::new();
    for stream_entries in streams {
        entries.extend(parse_entries(stream_entries)?);
    }
    Ok(entries)
}

/// Parses a list of entries, `[[id, [f, v, ...] | nil], ...]` (one stream's part of
/// `XREADGROUP`), delivery counts at 1.
fn parse_entries(reply: Value) -> Result<Vec<StreamEntry>, String> {
    let items = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(items) => items,
        _ => return Err("a stream's entries are not an array".to_owned()),
    };
    let mut entries = Vec::new();
    for item in items {
        let Value::Array(parts) = item else {
            return Err("an entry is not an array".to_owned());
        };
        let id = parts
            .first()
            .and_then(value_string)
            .ok_or("an entry has no ID")?;
        let mut fields = HashMap::new();
        if let Some(Value::Array(kv)) = parts.get(1) {
            for pair in kv.chunks(2) {
                if let [k, v] = pair {
                    if let (Some(k), Some(v)) = (value_string(k), value_string(v)) {
                        fields.insert(k, v);
                    }
                }
            }
        }
        entries.push(StreamEntry {
            id,
            fields,
            deliveries: 1,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn a_read_reply_keeps_entry_order_and_fields() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("s"),
            Value::Array(vec![
                Value::Array(vec![
                    bulk("1-0"),
                    Value::Array(vec![bulk("event"), bulk("{}")]),
                ]),
                Value::Array(vec![bulk("2-0"), Value::Nil]),
            ]),
        ])]);
        let entries = parse_read_reply(reply).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].id, "1-0");
        assert_eq!(entries[0].field("event"), Some("{}"));
        assert!(
            entries[1].fields.is_empty(),
            "a deleted pending entry has no fields"
        );
    }

    #[test]
    fn a_timed_out_read_is_empty() {
        assert!(parse_read_reply(Value::Nil).unwrap().is_empty());
    }

    #[test]
    fn the_successor_of_an_id_is_the_next_sequence() {
        assert_eq!(successor(5, 7), (5, 8));
        assert_eq!(successor(5, u64::MAX), (6, 0));
        assert_eq!(parse_id("1700000000000-3"), Some((1_700_000_000_000, 3)));
        assert_eq!(parse_id("nope"), None);
    }

    #[test]
    fn the_entry_time_is_the_first_part_of_its_id() {
        let entry = StreamEntry {
            id: "1700000000123-4".into(),
            fields: HashMap::new(),
            deliveries: 1,
        };
        assert_eq!(entry.added_at_ms(), Some(1_700_000_000_123));
    }

    // Against the tests' Redis (`TEST_REDIS_URL`), each test under keys of its own.

    struct Keys {
        stream: String,
        dead_letter: String,
        other: String,
        conn: ConnectionManager,
    }

    impl Keys {
        async fn new(test: &str) -> Keys {
            let prefix = rsky_testkit::support::unique_prefix(&format!("consumer:{test}"));
            let client = redis::Client::open(rsky_testkit::support::redis_url()).unwrap();
            let conn = client.get_connection_manager().await.unwrap();
            Keys {
                stream: format!("{prefix}s"),
                dead_letter: format!("{prefix}s_dlq"),
                other: format!("{prefix}out"),
                conn,
            }
        }

        async fn consumer(&self, name: &str, claim_idle: Duration) -> GroupConsumer {
            let mut consumer = GroupConsumer::connect(
                &rsky_testkit::support::redis_url(),
                crate::store::RedisTimeouts::DEFAULT,
                ConsumerConfig {
                    stream: self.stream.clone(),
                    group: "g".into(),
                    consumer: name.into(),
                    dead_letter_stream: self.dead_letter.clone(),
                    dead_letter_max_len: crate::dead_letter::DEFAULT_MAX_LEN,
                    block: Duration::from_millis(50),
                    claim_min_idle: claim_idle,
                },
            )
            .await
            .unwrap();
            consumer.create_group().await.unwrap();
            consumer
        }

        async fn add(&mut self, stream: &str, value: &str) -> String {
            redis::cmd("XADD")
                .arg(stream)
                .arg("*")
                .arg("repo")
                .arg(value)
                .query_async(&mut self.conn)
                .await
                .unwrap()
        }

        async fn xlen(&mut self, stream: &str) -> u64 {
            redis::cmd("XLEN")
                .arg(stream)
                .query_async(&mut self.conn)
                .await
                .unwrap()
        }

        async fn cleanup(mut self) {
            let _: () = redis::cmd("DEL")
                .arg(&self.stream)
                .arg(&self.dead_letter)
                .arg(&self.other)
                .query_async(&mut self.conn)
                .await
                .unwrap();
        }
    }

    const LONG: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn each_read_of_a_pending_entry_counts_in_redis_until_it_is_acknowledged() {
        let mut keys = Keys::new("redeliver").await;
        let mut c = keys.consumer("c1", LONG).await;
        let stream = keys.stream.clone();
        let id = keys.add(&stream, "a").await;
        let read = c.read(10).await.unwrap();
        assert_eq!((read.new.len(), read.new[0].deliveries), (1, 1));
        let again = c.read(10).await.unwrap();
        assert_eq!(again.pending[0].id, id);
        assert_eq!(again.pending[0].deliveries, 2);
        c.ack(std::slice::from_ref(&id)).await.unwrap();
        assert!(c.read(10).await.unwrap().is_empty());
        keys.cleanup().await;
    }

    #[tokio::test]
    async fn an_ack_added_to_the_callers_pipeline_goes_with_its_writes() {
        let mut keys = Keys::new("pipeline-ack").await;
        let mut c = keys.consumer("c1", LONG).await;
        let (stream, other) = (keys.stream.clone(), keys.other.clone());
        let id = keys.add(&stream, "a").await;
        c.read_new(10, None).await.unwrap();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("XADD")
            .arg(&other)
            .arg("*")
            .arg("event")
            .arg("{}")
            .ignore();
        c.add_ack(&mut pipe, &[id.as_str()]);
        // Another connection to the same Redis, as a sink uses.
        pipe.exec_async(&mut keys.conn.clone()).await.unwrap();
        assert_eq!(keys.xlen(&other).await, 1);
        assert_eq!(keys.xlen(&stream).await, 0, "acknowledged and deleted");
        assert_eq!(c.pending_count().await.unwrap(), 0);
        keys.cleanup().await;
    }

    #[tokio::test]
    async fn stale_entries_are_claimed_and_read_with_their_fields_and_delivery_counts() {
        let mut keys = Keys::new("claim-entries").await;
        let mut dead = keys.consumer("dead", LONG).await;
        let stream = keys.stream.clone();
        let a = keys.add(&stream, "a").await;
        let b = keys.add(&stream, "b").await;
        assert_eq!(dead.read_new(10, None).await.unwrap().len(), 2);
        let mut live = keys.consumer("live", Duration::from_millis(20)).await;
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(
            live.claim_stale(1).await.unwrap(),
            2,
            "both, over pages of one"
        );
        let pending = live.read_pending(10).await.unwrap();
        let got: Vec<_> = pending
            .iter()
            .map(|e| (e.id.clone(), e.field("repo"), e.deliveries))
            .collect();
        assert_eq!(
            got,
            [(a, Some("a"), 2), (b, Some("b"), 2)],
            "read, claimed (JUSTID: not a delivery), read again"
        );
        assert_eq!(live.claim_stale(10).await.unwrap(), 0);
        keys.cleanup().await;
    }

    #[tokio::test]
    async fn undelivered_entries_are_those_neither_pending_nor_acknowledged() {
        let mut keys = Keys::new("undelivered").await;
        let mut c = keys.consumer("c1", LONG).await;
        let stream = keys.stream.clone();
        for value in ["a", "b", "c"] {
            keys.add(&stream, value).await;
        }
        assert_eq!(c.undelivered_count().await.unwrap(), 3);
        let read = c.read_new(1, None).await.unwrap();
        assert_eq!(c.undelivered_count().await.unwrap(), 2, "one pending");
        c.ack(&[read[0].id.clone()]).await.unwrap();
        assert_eq!(c.undelivered_count().await.unwrap(), 2, "one done");
        keys.cleanup().await;
    }
}
