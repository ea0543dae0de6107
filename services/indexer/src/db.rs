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

/// How a failure should be handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureClass {
    /// The input is wrong (a data exception or a constraint violation): count it, acknowledge it.
    Expected,
    /// The database cannot be reached or asked to retry (connection lost, pool timeout,
    /// shutdown, serialization failure): retry later; never the entry's fault, never dead-lettered.
    Unavailable,
    /// The database refused this entry for another reason: retry, and dead-letter it after
    /// too many deliveries.
    Unexpected,
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

    /// Classifies the failure by its SQLSTATE class.
    pub fn class(&self) -> FailureClass {
        match self.sqlstate() {
            None => FailureClass::Unavailable,
            Some(code) => match &code[..2] {
                // 22: data exception (bad text, out of range); 23: integrity constraint violation.
                "22" | "23" => FailureClass::Expected,
                // 08: connection exception; 40: transaction rollback (deadlock, serialization);
                // 53: insufficient resources; 57: operator intervention (shutdown); 58: system error.
                "08" | "40" | "53" | "57" | "58" => FailureClass::Unavailable,
                _ => FailureClass::Unexpected,
            },
        }
    }
}

/// Creates the pool (connections are opened on demand, so this does not reach the database).
pub fn pool(database_url: &str, max_size: usize) -> Result<Pool, DbError> {
    // sslmode and sslrootcert are read as libpq reads them (see the tls module).
    let (mut config, tls) = crate::tls::parse(database_url).map_err(|e| DbError::Config {
        reason: e.to_string(),
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
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
