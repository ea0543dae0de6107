//! The database schema, created and upgraded by the indexer's own migrations.
//!
//! The tables follow the AppView layout (camelCase columns quoted). Each migration runs once, in
//! its own transaction, recorded in `indexer_migration`; an advisory lock keeps two indexers that
//! start together from migrating at the same time.

use deadpool_postgres::Pool;

use crate::db::DbError;

/// One schema change.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    /// Applied in increasing order; never reuse or reorder a version.
    pub version: i32,
    /// What it does.
    pub name: &'static str,
    /// The statements.
    pub sql: &'static str,
}

/// Every migration, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "record, actor, actor_sync and the six collection tables",
        sql: r#"
CREATE TABLE IF NOT EXISTS record (
    uri text PRIMARY KEY,
    cid text NOT NULL,
    did text NOT NULL,
    json text NOT NULL,
    "indexedAt" text NOT NULL,
    rev text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS record_did_idx ON record (did);
CREATE TABLE IF NOT EXISTS actor (
    did text PRIMARY KEY,
    handle text,
    "indexedAt" text NOT NULL,
    "upstreamStatus" text
);
CREATE TABLE IF NOT EXISTS actor_sync (
    did text PRIMARY KEY,
    "commitCid" text NOT NULL,
    "repoRev" text NOT NULL
);
CREATE TABLE IF NOT EXISTS post (
    uri text PRIMARY KEY,
    cid text NOT NULL,
    creator text NOT NULL,
    text text NOT NULL,
    "replyRoot" text,
    "replyRootCid" text,
    "replyParent" text,
    "replyParentCid" text,
    "createdAt" text NOT NULL,
    "indexedAt" text NOT NULL
);
CREATE INDEX IF NOT EXISTS post_creator_idx ON post (creator);
CREATE TABLE IF NOT EXISTS "like" (
    uri text PRIMARY KEY,
    cid text NOT NULL,
    creator text NOT NULL,
    subject text NOT NULL,
    "subjectCid" text NOT NULL,
    "createdAt" text NOT NULL,
    "indexedAt" text NOT NULL
);
CREATE INDEX IF NOT EXISTS like_subject_idx ON "like" (subject);
CREATE TABLE IF NOT EXISTS repost (
    uri text PRIMARY KEY,
    cid text NOT NULL,
    creator text NOT NULL,
    subject text NOT NULL,
    "subjectCid" text NOT NULL,
    "createdAt" text NOT NULL,
    "indexedAt" text NOT NULL
);
CREATE TABLE IF NOT EXISTS follow (
    uri text PRIMARY KEY,
    cid text NOT NULL,
    creator text NOT NULL,
    "subjectDid" text NOT NULL,
    "createdAt" text NOT NULL,
    "indexedAt" text NOT NULL
);
CREATE INDEX IF NOT EXISTS follow_subject_idx ON follow ("subjectDid");
CREATE TABLE IF NOT EXISTS actor_block (
    uri text PRIMARY KEY,
    cid text NOT NULL,
    creator text NOT NULL,
    "subjectDid" text NOT NULL,
    "createdAt" text NOT NULL,
    "indexedAt" text NOT NULL
);
CREATE TABLE IF NOT EXISTS profile (
    uri text PRIMARY KEY,
    cid text NOT NULL,
    creator text NOT NULL,
    "displayName" text,
    description text,
    "avatarCid" text,
    "bannerCid" text,
    "indexedAt" text NOT NULL
);
"#,
    },
    Migration {
        version: 2,
        name: "label",
        sql: r#"
CREATE TABLE IF NOT EXISTS label (
    src text NOT NULL,
    uri text NOT NULL,
    cid text NOT NULL DEFAULT '',
    val text NOT NULL,
    neg boolean NOT NULL DEFAULT false,
    cts text NOT NULL,
    PRIMARY KEY (src, uri, cid, val)
);
CREATE INDEX IF NOT EXISTS label_uri_idx ON label (uri);
"#,
    },
    Migration {
        version: 3,
        name: "order guards: actor account/identity seq, label_state",
        // The seq of the last account and identity event applied per DID (NULL: none yet), and
        // per label key the last operation applied (add or negation, with its cts), so a late
        // older event changes nothing. `cts` is compared byte-wise (COLLATE "C"). The labels
        // already stored become the state of their keys.
        sql: r#"
ALTER TABLE actor ADD COLUMN IF NOT EXISTS "accountSeq" bigint;
ALTER TABLE actor ADD COLUMN IF NOT EXISTS "identitySeq" bigint;
CREATE TABLE IF NOT EXISTS label_state (
    src text NOT NULL,
    uri text NOT NULL,
    cid text NOT NULL DEFAULT '',
    val text NOT NULL,
    neg boolean NOT NULL,
    cts text COLLATE "C" NOT NULL,
    PRIMARY KEY (src, uri, cid, val)
);
INSERT INTO label_state (src, uri, cid, val, neg, cts)
    SELECT src, uri, cid, val, false, cts FROM label
    ON CONFLICT (src, uri, cid, val) DO NOTHING;
"#,
    },
];

/// Any number; it only has to be the same in every indexer.
const MIGRATION_LOCK: i64 = 0x7273_6b79_6978; // "rskyix"

/// Applies the migrations the database has not seen yet; returns the versions applied now.
pub async fn migrate(pool: &Pool) -> Result<Vec<i32>, DbError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        r#"CREATE TABLE IF NOT EXISTS indexer_migration (
            version integer PRIMARY KEY,
            name text NOT NULL,
            "appliedAt" timestamptz NOT NULL DEFAULT now()
        )"#,
    )
    .await?;
    let done: Vec<i32> = tx
        .query("SELECT version FROM indexer_migration", &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut applied = Vec::new();
    for migration in MIGRATIONS {
        if done.contains(&migration.version) {
            continue;
        }
        tx.batch_execute(migration.sql)
            .await
            .map_err(|source| DbError::Migration {
                version: migration.version,
                name: migration.name,
                source,
            })?;
        tx.execute(
            "INSERT INTO indexer_migration (version, name) VALUES ($1, $2)",
            &[&migration.version, &migration.name],
        )
        .await?;
        applied.push(migration.version);
    }
    tx.commit().await?;
    if !applied.is_empty() {
        tracing::info!(?applied, "database migrations applied");
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase_strictly() {
        assert!(MIGRATIONS.windows(2).all(|w| w[0].version < w[1].version));
    }
}
