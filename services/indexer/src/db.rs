//! The PostgreSQL connection pool, and how database failures are classified.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};

/// A database failure.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// `DATABASE_URL` cannot be parsed.
    #[error("invalid DATABASE_URL: {reason} (expected e.g. postgres://user@127.0.0.1:5432/bsky)")]
    Config {
        /// Why.
        reason: String,
    },
    /// No connection could be had from the pool.
    #[error("no database connection: {0}")]
    Pool(#[from] PoolError),
    /// A statement or the transaction failed.
    #[error("database error: {}", describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// A migration failed.
    #[error("migration {version} ({name}) failed: {}", describe(.source))]
    Migration {
        /// Its version.
        version: i32,
        /// Its name.
        name: &'static str,
        /// The database's error.
        source: tokio_postgres::Error,
    },
}

/// The server's message and SQLSTATE when it answered, else the client's error and its cause
/// (tokio-postgres alone says only "db error" or "error connecting to server").
pub fn describe(err: &tokio_postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        return format!("{} (SQLSTATE {})", db.message(), db.code().code());
    }
    match std::error::Error::source(err) {
        Some(cause) => format!("{err}: {cause}"),
        None => err.to_string(),
    }
}

/// How a failure should be handled (the [`SQLSTATES`] table maps the server's codes here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureClass {
    /// Invalid input (a data exception, SQLSTATE class 22): count it, acknowledge it; retrying
    /// cannot help.
    Expected,
    /// Systemic: the database cannot be reached, or it or its setup is wrong (a standby, a
    /// missing table, a missing privilege, a lock or statement timeout, a full disk). Never the
    /// entry's fault: the worker pauses and retries the batch without dead-lettering anything.
    Unavailable,
    /// The database refused this entry for another reason: retry, and dead-letter it after
    /// too many deliveries.
    Unexpected,
}

/// The SQLSTATE table: an exact code (5 characters) or a class (its first 2), the class of
/// failure, and why. An exact code wins over its class; a code in neither is an entry failure
/// ([`FailureClass::Unexpected`]: retried, then dead-lettered). The indexer's statements bind
/// every value as a parameter and use its own schema with `ON CONFLICT` clauses, so the only
/// error an entry's content can cause is a data exception (class 22) or a limit it exceeds
/// (class 54, e.g. an index row too large); anything else means the database or its setup is
/// wrong, for every entry alike.
pub const SQLSTATES: &[(&str, FailureClass, &str)] = &[
    ("08", FailureClass::Unavailable, "connection exception"),
    ("22", FailureClass::Expected, "data exception: the entry's values are invalid"),
    ("23", FailureClass::Unavailable, "integrity constraint violation: with the indexer's schema and ON CONFLICT clauses, a schema that differs"),
    ("25006", FailureClass::Unavailable, "read-only transaction: connected to a standby or a read-only database"),
    ("25P03", FailureClass::Unavailable, "idle-in-transaction session timeout"),
    ("25P04", FailureClass::Unavailable, "transaction timeout"),
    ("28", FailureClass::Unavailable, "invalid authorization (wrong password, role may not log in)"),
    ("3D", FailureClass::Unavailable, "the database does not exist"),
    ("3F", FailureClass::Unavailable, "the schema does not exist"),
    ("40", FailureClass::Unavailable, "transaction rollback (deadlock, serialization failure), after the writer's own retries"),
    ("42", FailureClass::Unavailable, "syntax error or access rule violation: a missing table, column or privilege"),
    ("53", FailureClass::Unavailable, "insufficient resources (disk full, out of memory, too many connections)"),
    ("55", FailureClass::Unavailable, "object not in prerequisite state (55P03: lock_timeout; 55006: object in use)"),
    ("57", FailureClass::Unavailable, "operator intervention (57014: statement_timeout or a cancel; shutdown; database dropped)"),
    ("58", FailureClass::Unavailable, "system error (I/O error)"),
    ("F0", FailureClass::Unavailable, "configuration file error"),
    ("XX", FailureClass::Unavailable, "internal error (corrupted data or index)"),
];

/// The class of a failure with SQLSTATE `code`, by the [`SQLSTATES`] table.
pub fn classify(code: &str) -> FailureClass {
    let exact = SQLSTATES.iter().find(|(c, _, _)| *c == code);
    let class = || {
        SQLSTATES
            .iter()
            .find(|(c, _, _)| c.len() == 2 && code.get(..2) == Some(*c))
    };
    exact
        .or_else(class)
        .map(|(_, class, _)| *class)
        .unwrap_or(FailureClass::Unexpected)
}

impl DbError {
    /// The SQLSTATE the server answered with, if it answered.
    pub fn sqlstate(&self) -> Option<&str> {
        let source = match self {
            DbError::Postgres(e) | DbError::Migration { source: e, .. } => e,
            DbError::Pool(PoolError::Backend(e)) => e,
            _ => return None,
        };
        source.code().map(|c| c.code())
    }

    /// Classifies the failure by the [`SQLSTATES`] table; a failure without an answer from the
    /// server (connection lost or refused, pool timeout) is [`FailureClass::Unavailable`].
    pub fn class(&self) -> FailureClass {
        match self.sqlstate() {
            None => FailureClass::Unavailable,
            Some(code) => classify(code),
        }
    }
}

/// What every database connection is set up with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Session {
    /// `statement_timeout` (zero: none): a statement that runs longer is cancelled (57014).
    pub statement_timeout: Duration,
    /// `lock_timeout` (zero: none): a lock wait that lasts longer fails (55P03).
    pub lock_timeout: Duration,
    /// TCP keepalive idle time: a peer that vanished is noticed after this plus a few probes,
    /// not after the system's default of two hours.
    pub keepalive_idle: Duration,
}

impl Default for Session {
    /// 30 s statements, 10 s lock waits, keepalives after 30 s idle (the indexer's defaults).
    fn default() -> Self {
        Session {
            statement_timeout: Duration::from_secs(30),
            lock_timeout: Duration::from_secs(10),
            keepalive_idle: Duration::from_secs(30),
        }
    }
}

impl Session {
    /// No statement or lock timeout (migrations: building an index may take long).
    pub fn unbounded() -> Self {
        Session {
            statement_timeout: Duration::ZERO,
            lock_timeout: Duration::ZERO,
            ..Session::default()
        }
    }

    /// Applies the settings to a connection configuration: the timeouts as startup options
    /// (after any `options` of the URL, so these win), keepalives on the socket.
    fn apply(&self, config: &mut tokio_postgres::Config) {
        let mut options = config.get_options().unwrap_or_default().to_owned();
        for (name, value) in [
            ("statement_timeout", self.statement_timeout),
            ("lock_timeout", self.lock_timeout),
        ] {
            if !options.is_empty() {
                options.push(' ');
            }
            options.push_str(&format!("-c {name}={}", value.as_millis()));
        }
        config.options(&options);
        config.keepalives(true);
        config.keepalives_idle(self.keepalive_idle);
        config.keepalives_interval(Duration::from_secs(10));
        config.keepalives_retries(3);
    }
}

/// Creates the pool with the default [`Session`] (connections are opened on demand, so this
/// does not reach the database).
pub fn pool(database_url: &str, max_size: usize) -> Result<Pool, DbError> {
    pool_with(database_url, max_size, &Session::default())
}

/// Creates the pool; every connection is set up with `session`.
pub fn pool_with(database_url: &str, max_size: usize, session: &Session) -> Result<Pool, DbError> {
    // sslmode and sslrootcert are read as libpq reads them (see the tls module).
    let (mut config, tls) = crate::tls::parse(database_url).map_err(|e| DbError::Config {
        reason: e.to_string(),
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    session.apply(&mut config);
    let manager = Manager::from_config(
        config,
        tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(max_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .build()
        .map_err(|e| DbError::Config {
            reason: e.to_string(),
        })
}

/// Whether a connection can be had and answers `SELECT 1`.
pub async fn is_reachable(pool: &Pool) -> bool {
    match pool.get().await {
        Ok(client) => client.simple_query("SELECT 1").await.is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code the table names, and codes it does not, as the tests against the server
    /// cannot provoke them all.
    #[test]
    fn the_sqlstate_table_classifies_codes_exactly_then_by_class() {
        use FailureClass::*;
        for (code, class) in [
            ("08006", Unavailable), // connection failure
            ("08001", Unavailable), // cannot connect
            ("22001", Expected),    // string too long
            ("22P02", Expected),    // invalid text representation
            ("22021", Expected),    // character not in repertoire (a NUL byte)
            ("23505", Unavailable), // unique violation
            ("23502", Unavailable), // not-null violation
            ("23503", Unavailable), // foreign key violation
            ("23514", Unavailable), // check violation
            ("25006", Unavailable), // read-only transaction
            ("25001", Unexpected),  // active SQL transaction: not in the table
            ("25P03", Unavailable),
            ("25P04", Unavailable),
            ("28P01", Unavailable), // wrong password
            ("28000", Unavailable), // role may not log in
            ("3D000", Unavailable),
            ("3F000", Unavailable),
            ("40001", Unavailable),
            ("40P01", Unavailable),
            ("42501", Unavailable),
            ("42P01", Unavailable),
            ("42703", Unavailable),
            ("42601", Unavailable),
            ("53100", Unavailable), // disk full
            ("53300", Unavailable), // too many connections
            ("54000", Unexpected),  // program limit (index row too large): the entry
            ("55P03", Unavailable),
            ("55006", Unavailable),
            ("57014", Unavailable),
            ("57P01", Unavailable),
            ("57P03", Unavailable),
            ("58030", Unavailable),
            ("F0000", Unavailable),
            ("XX000", Unavailable),
            ("XX001", Unavailable),
            ("21000", Unexpected), // cardinality violation
            ("P0001", Unexpected), // RAISE EXCEPTION in a trigger
            ("2BP01", Unexpected),
            ("", Unexpected),
            ("9", Unexpected),
        ] {
            assert_eq!(classify(code), class, "SQLSTATE {code}");
        }
    }

    #[test]
    fn every_table_entry_is_a_class_or_a_code() {
        for (code, _, why) in SQLSTATES {
            assert!(code.len() == 2 || code.len() == 5, "{code}: {why}");
        }
    }

    #[test]
    fn the_session_sets_timeouts_after_the_urls_own_options_and_keepalives() {
        let mut config: tokio_postgres::Config =
            "host=h user=u options='-c search_path=x'".parse().unwrap();
        Session::default().apply(&mut config);
        assert_eq!(
            config.get_options(),
            Some("-c search_path=x -c statement_timeout=30000 -c lock_timeout=10000")
        );
        assert!(config.get_keepalives());
        assert_eq!(config.get_keepalives_idle(), Duration::from_secs(30));
    }
}
