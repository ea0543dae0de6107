//! Dead-letter streams: how an entry is written to one (bounded), and how an operator moves
//! dead-lettered entries back onto their stream (`<service> replay-dead-letters`).
//!
//! A dead letter is the failed entry's own fields plus two of its own: [`REASON_FIELD`] (why it
//! failed for good) and [`ATTEMPTS_FIELD`] (its delivery count). The dead-letter stream of `s` is
//! `s_dlq` (the indexer's suffix is configurable; the backfiller's is `repo_backfill_dlq`).
//!
//! **Bounded.** Every dead-letter `XADD` carries `MAXLEN ~ <DEAD_LETTER_MAX_LEN>` (default
//! [`DEFAULT_MAX_LEN`]): once a dead-letter stream is that long, its oldest entries are dropped
//! as new ones arrive (approximately: Redis trims whole internal nodes, so the length stays
//! within about a hundred entries above the bound). The services' `*_dead_lettered_total`
//! counters still count every dead letter. The bound is a field of each consumer's
//! [`crate::consumer::ConsumerConfig`] (`dead_letter_max_len`), from the service's
//! [`crate::pipeline::WorkerSettings`].
//!
//! **Replay.** [`replay`] walks a dead-letter stream from its oldest entry and moves each one
//! back: the original fields (without `reason` and `attempts`) are added to the target stream as
//! a new entry, which the consumer groups of that stream deliver as new work, and the dead
//! letter is deleted. The move is one Lua script, so it is atomic in Redis: the `XDEL` runs only
//! after the `XADD` succeeded (a failed `XADD`, e.g. a target key of another type, aborts the
//! script before it), and the script first checks that the dead letter is still there. So an
//! interrupted replay (a killed process, a lost connection, a reply that never came) neither
//! loses an entry nor adds it twice: each entry is either still in the dead-letter stream or
//! moved once, and running the replay again moves the rest. Two replays of the same stream at
//! once are safe for the same reason. Even a duplicate would be harmless downstream (the
//! indexer's writes are idempotent: `ON CONFLICT` and revision guards; a repository backfilled
//! twice writes the same rows), but there is none to absorb. Both keys must be in one Redis
//! (not a cluster with the two names in different slots).
//!
//! **A replay ends.** It stops at the last entry the dead-letter stream held when it started
//! (`--dry-run` too): entries dead-lettered again while it runs, because their cause is not
//! fixed, stay for the next replay instead of going round forever.

use std::time::Duration;

use redis::aio::ConnectionLike;
use redis::{RedisError, Value};

use crate::config::{at_least, millis_at_least};

/// The field of a dead letter that says why the entry failed for good.
pub const REASON_FIELD: &str = "reason";
/// The field of a dead letter that holds the entry's delivery count.
pub const ATTEMPTS_FIELD: &str = "attempts";
/// The suffix of a dead-letter stream's name (the indexer's default, the backfiller's).
pub const DEFAULT_SUFFIX: &str = "_dlq";
/// The length a dead-letter stream is trimmed to unless `DEAD_LETTER_MAX_LEN` says otherwise:
/// enough to keep days of a bad input's entries for inspection, small enough (a few hundred MB
/// at most with the largest entries) that a poison flood cannot fill Redis.
pub const DEFAULT_MAX_LEN: u64 = 100_000;

/// The fields of the dead letter of an entry with `fields`: its own, sorted by name, without any
/// of its own `reason` or `attempts` (the dead letter's are authoritative), then `reason` and
/// `attempts`.
pub fn letter_fields<'a>(
    fields: impl IntoIterator<Item = (&'a String, &'a String)>,
    reason: &str,
    attempts: u64,
) -> Vec<(String, String)> {
    let mut letter: Vec<(String, String)> = fields
        .into_iter()
        .filter(|(k, _)| !is_metadata(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    letter.sort();
    letter.push((REASON_FIELD.to_owned(), reason.to_owned()));
    letter.push((ATTEMPTS_FIELD.to_owned(), attempts.to_string()));
    letter
}

/// `XADD <stream> MAXLEN ~ <max_len> * <fields>`: a dead letter, trimming the oldest.
pub fn xadd(stream: &str, fields: &[(String, String)], max_len: u64) -> redis::Cmd {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(stream).arg("MAXLEN").arg("~").arg(max_len).arg("*");
    for (k, v) in fields {
        cmd.arg(k).arg(v);
    }
    cmd
}

fn describe(found: &str) -> String {
    if found == "none" {
        "does not exist".to_owned()
    } else {
        format!("is a {found}, not a stream")
    }
}

/// The examples under `<service> replay-dead-letters --help`.
pub fn examples(service: &str) -> String {
    format!(
        "Examples (STREAM_dlq is e.g. firehose_live_dlq or repo_backfill_dlq):\n  \
{service} replay-dead-letters --stream STREAM_dlq --dry-run\n  \
{service} replay-dead-letters --stream STREAM_dlq --count 100\n  \
{service} replay-dead-letters --stream STREAM_dlq --reason-contains timeout"
    )
}

fn is_metadata(field: &str) -> bool {
    field == REASON_FIELD || field == ATTEMPTS_FIELD
}

/// `replay-dead-letters`: what to move, from where to where.
#[derive(clap::Args, Clone, Debug, PartialEq, Eq)]
#[command(
    about = "Move dead-lettered entries back onto their stream (oldest first), or list them",
    long_about = "Move dead-lettered entries back onto their stream, oldest first: each \
entry's original fields (without `reason` and `attempts`) are added to the target stream as a \
new entry, which its consumer groups deliver as new work, and the dead letter is deleted in the \
same atomic step. Interrupting a replay loses nothing and duplicates nothing: run it again to \
move the rest. A replay stops at the last entry present when it started, so entries \
dead-lettered again meanwhile wait for the next one. Fix the cause first (see each entry's \
reason with --dry-run), or the entries come back."
)]
pub struct ReplayArgs {
    /// The dead-letter stream, its full name (with any REDIS_KEY_PREFIX).
    #[arg(long, value_name = "STREAM")]
    pub stream: String,
    /// The stream to move the entries to [default: --stream without its `_dlq` suffix].
    #[arg(long, value_name = "STREAM")]
    pub to: Option<String>,
    /// Move (or list) at most this many entries [default: all].
    #[arg(long, value_name = "N", value_parser = at_least(1u64))]
    pub count: Option<u64>,
    /// Only the entries whose reason contains this text (others stay).
    #[arg(long, value_name = "TEXT")]
    pub reason_contains: Option<String>,
    /// List what would be moved (id, delivery count, reason); change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The Redis holding both streams.
    #[arg(
        long,
        env = "REDIS_URL",
        value_name = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379"
    )]
    pub redis_url: String,
    /// How long to wait for Redis, to connect and for each answer.
    #[arg(long, value_name = "MS", default_value = "5000", value_parser = millis_at_least(1))]
    pub timeout_ms: Duration,
}

/// One dead letter, as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// Its ID in the dead-letter stream.
    pub id: String,
    /// Why it was dead-lettered (absent in an entry not written by a service).
    pub reason: Option<String>,
    /// Its delivery count when it was dead-lettered.
    pub attempts: Option<u64>,
    /// The original entry's fields, sorted by name.
    pub fields: Vec<(String, String)>,
}

/// What [`replay`] did with one dead letter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A dry run: it would be moved.
    WouldMove,
    /// Moved: the ID of the new entry on the target stream.
    Moved(String),
    /// Not moved: it has no field of its own (an entry deleted while pending), nothing to redo.
    NoFields,
    /// Not moved: someone else moved or deleted it since it was read.
    Gone,
}

/// What a whole [`replay`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// The target stream.
    pub target: String,
    /// Entries moved (or, in a dry run, that would be).
    pub moved: u64,
    /// Entries left in place (no field of their own, or gone meanwhile).
    pub skipped: u64,
}

/// Why a replay stopped. Entries moved before it stay moved; the others stay dead letters.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// No target: `--stream` does not end in `_dlq` and `--to` is not given.
    #[error("cannot tell the source stream of {0:?} (its name does not end in {DEFAULT_SUFFIX:?}): name it with --to")]
    NoTarget(String),
    /// The target is the dead-letter stream itself.
    #[error("--to {0:?} is the dead-letter stream itself")]
    SameStream(String),
    /// The target is missing or not a stream (a typo, most likely).
    #[error("the target {stream:?} {}: check the name (or --to)", describe(found))]
    BadTarget {
        /// The target.
        stream: String,
        /// What Redis holds under that name (`none`: nothing).
        found: String,
    },
    /// Redis refused a command or could not be reached.
    #[error("redis {op} on {stream:?} failed: {source}")]
    Redis {
        /// The command.
        op: &'static str,
        /// The stream it was about.
        stream: String,
        /// What Redis said.
        source: RedisError,
    },
    /// Redis answered with something unexpected.
    #[error("unexpected reply to {op} on {stream:?}: {detail}")]
    Reply {
        /// The command.
        op: &'static str,
        /// The stream.
        stream: String,
        /// What was wrong.
        detail: String,
    },
}

/// Moves one dead letter (`ARGV[1]`, in `KEYS[2]`) onto `KEYS[1]` without its metadata fields
/// (`ARGV[2..]`). Returns the new ID, 0 if the dead letter is gone, -1 if it has no field left.
/// A failing `XADD` raises, so the `XDEL` never runs without it.
const MOVE_SCRIPT: &str = r#"
local found = redis.call('XRANGE', KEYS[2], ARGV[1], ARGV[1])
if #found == 0 then return 0 end
local fields = found[1][2]
local keep = {}
for i = 1, #fields, 2 do
  local name = fields[i]
  local metadata = false
  for j = 2, #ARGV do
    if name == ARGV[j] then metadata = true end
  end
  if not metadata then
    keep[#keep + 1] = name
    keep[#keep + 1] = fields[i + 1]
  end
end
if #keep == 0 then return -1 end
local id = redis.call('XADD', KEYS[1], '*', unpack(keep))
redis.call('XDEL', KEYS[2], ARGV[1])
return id
"#;

/// Entries read from the dead-letter stream per `XRANGE`.
const PAGE: u64 = 100;

/// Connects to `args.redis_url` (with `args.timeout_ms` for the connection and each answer) and
/// runs [`replay`].
pub async fn replay_at(
    args: &ReplayArgs,
    report: impl FnMut(&DeadLetter, &Outcome),
) -> Result<Summary, ReplayError> {
    let redis_error = |source| ReplayError::Redis {
        op: "CONNECT",
        stream: args.stream.clone(),
        source,
    };
    let timeouts = crate::store::RedisTimeouts {
        redis_connect_timeout: args.timeout_ms,
        redis_response_timeout: args.timeout_ms,
    };
    let mut conn = crate::store::connect(&args.redis_url, timeouts)
        .await
        .map_err(|err| redis_error(err.into_redis()))?;
    replay(&mut conn, args, report).await
}

/// Moves (or, with `dry_run`, lists) the dead letters of `args.stream`, oldest first, calling
/// `report` for each one it looks at. See the module's documentation for the guarantees.
pub async fn replay<C: ConnectionLike + Send>(
    conn: &mut C,
    args: &ReplayArgs,
    mut report: impl FnMut(&DeadLetter, &Outcome),
) -> Result<Summary, ReplayError> {
    let target = target_of(args)?;
    let found: String = redis::cmd("TYPE")
        .arg(&target)
        .query_async(conn)
        .await
        .map_err(|source| ReplayError::Redis {
            op: "TYPE",
            stream: target.clone(),
            source,
        })?;
    if found != "stream" {
        return Err(ReplayError::BadTarget {
            stream: target,
            found,
        });
    }
    let script = redis::Script::new(MOVE_SCRIPT);
    let mut summary = Summary {
        target: target.clone(),
        ..Summary::default()
    };
    let limit = args.count.unwrap_or(u64::MAX);
    // Up to the last entry present now: entries dead-lettered again while the replay runs (a
    // cause not yet fixed) wait for the next replay instead of being moved round forever.
    let Some(end) = last_id(conn, &args.stream).await? else {
        return Ok(summary);
    };
    let mut start = "-".to_owned();
    while summary.moved < limit {
        let page = read_page(conn, &args.stream, &start, &end).await?;
        let Some(last) = page.last() else { break };
        start = format!("({}", last.id);
        for letter in page {
            if summary.moved >= limit {
                break;
            }
            let wanted = match (&args.reason_contains, &letter.reason) {
                (None, _) => true,
                (Some(text), Some(reason)) => reason.contains(text.as_str()),
                (Some(_), None) => false,
            };
            if !wanted {
                continue;
            }
            let outcome = if letter.fields.is_empty() {
                Outcome::NoFields
            } else if args.dry_run {
                Outcome::WouldMove
            } else {
                move_one(conn, &script, &target, &args.stream, &letter.id).await?
            };
            match outcome {
                Outcome::WouldMove | Outcome::Moved(_) => summary.moved += 1,
                Outcome::NoFields | Outcome::Gone => summary.skipped += 1,
            }
            report(&letter, &outcome);
        }
    }
    Ok(summary)
}

fn target_of(args: &ReplayArgs) -> Result<String, ReplayError> {
    let target = match &args.to {
        Some(to) => to.clone(),
        None => match args.stream.strip_suffix(DEFAULT_SUFFIX) {
            Some(source) if !source.is_empty() => source.to_owned(),
            _ => return Err(ReplayError::NoTarget(args.stream.clone())),
        },
    };
    if target == args.stream {
        return Err(ReplayError::SameStream(target));
    }
    Ok(target)
}

/// The ID of the last entry of `stream`, `None` when it is empty or missing.
async fn last_id<C: ConnectionLike + Send>(
    conn: &mut C,
    stream: &str,
) -> Result<Option<String>, ReplayError> {
    let reply: redis::streams::StreamRangeReply = redis::cmd("XREVRANGE")
        .arg(stream)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(conn)
        .await
        .map_err(|source| ReplayError::Redis {
            op: "XREVRANGE",
            stream: stream.to_owned(),
            source,
        })?;
    Ok(reply.ids.into_iter().next().map(|entry| entry.id))
}

async fn read_page<C: ConnectionLike + Send>(
    conn: &mut C,
    stream: &str,
    start: &str,
    end: &str,
) -> Result<Vec<DeadLetter>, ReplayError> {
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(stream)
        .arg(start)
        .arg(end)
        .arg("COUNT")
        .arg(PAGE)
        .query_async(conn)
        .await
        .map_err(|source| ReplayError::Redis {
            op: "XRANGE",
            stream: stream.to_owned(),
            source,
        })?;
    Ok(reply
        .ids
        .into_iter()
        .map(|entry| {
            let text = |value: &Value| redis::from_redis_value_ref::<String>(value).ok();
            let reason = entry.map.get(REASON_FIELD).and_then(text);
            let attempts = entry
                .map
                .get(ATTEMPTS_FIELD)
                .and_then(text)
                .and_then(|n| n.parse().ok());
            let mut fields: Vec<(String, String)> = entry
                .map
                .iter()
                .filter(|(k, _)| !is_metadata(k))
                .filter_map(|(k, v)| Some((k.clone(), text(v)?)))
                .collect();
            fields.sort();
            DeadLetter {
                id: entry.id,
                reason,
                attempts,
                fields,
            }
        })
        .collect())
}

async fn move_one<C: ConnectionLike + Send>(
    conn: &mut C,
    script: &redis::Script,
    target: &str,
    stream: &str,
    id: &str,
) -> Result<Outcome, ReplayError> {
    let reply: Value = script
        .key(target)
        .key(stream)
        .arg(id)
        .arg(REASON_FIELD)
        .arg(ATTEMPTS_FIELD)
        .invoke_async(conn)
        .await
        .map_err(|source| ReplayError::Redis {
            op: "XADD+XDEL (move script)",
            stream: target.to_owned(),
            source,
        })?;
    match reply {
        Value::Int(0) => Ok(Outcome::Gone),
        Value::Int(-1) => Ok(Outcome::NoFields),
        other => match redis::from_redis_value_ref::<String>(&other) {
            Ok(new_id) => Ok(Outcome::Moved(new_id)),
            Err(_) => Err(ReplayError::Reply {
                op: "move script",
                stream: stream.to_owned(),
                detail: format!("{other:?}"),
            }),
        },
    }
}

/// One line for an operator: `<id>  attempts=<n>  reason=<reason>  [-> <new id>]`.
pub fn report_line(letter: &DeadLetter, outcome: &Outcome) -> String {
    let attempts = letter
        .attempts
        .map_or_else(|| "?".to_owned(), |n| n.to_string());
    let reason = letter.reason.as_deref().unwrap_or("(none)");
    let outcome = match outcome {
        Outcome::WouldMove => String::new(),
        Outcome::Moved(new_id) => format!("  -> {new_id}"),
        Outcome::NoFields => "  (skipped: no fields of its own)".to_owned(),
        Outcome::Gone => "  (skipped: gone meanwhile)".to_owned(),
    };
    format!(
        "{}  attempts={attempts}  reason={reason:?}{outcome}",
        letter.id
    )
}

/// The last line of a replay for an operator.
pub fn summary_line(args: &ReplayArgs, summary: &Summary) -> String {
    let verb = if args.dry_run { "would move" } else { "moved" };
    format!(
        "{verb} {} entries from {} to {}; {} skipped",
        summary.moved, args.stream, summary.target, summary.skipped
    )
}
