//! What can go wrong, each saying what failed and where.

use std::path::PathBuf;

/// Why the stack could not start or stop.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// A binary is not built.
    #[error(
        "{path} is missing: build it with `cargo build {packages}` (the local-stack command does)"
    )]
    MissingBinary {
        /// The expected path.
        path: PathBuf,
        /// `-p ...` arguments that build it.
        packages: String,
    },
    /// A process could not be started.
    #[error("cannot start {name} ({program}): {source}")]
    Spawn {
        /// Its name in the stack.
        name: String,
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// A process exited, or never became ready.
    #[error("{name} {what}; the end of its log ({log}):\n{tail}")]
    NotRunning {
        /// Its name in the stack.
        name: String,
        /// What happened.
        what: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of the log.
        tail: String,
    },
    /// PostgreSQL refused the database set-up.
    #[error("cannot create database {database} through {url}: {message}")]
    Database {
        /// The database.
        database: String,
        /// The admin URL.
        url: String,
        /// The server's message.
        message: String,
    },
    /// The work directory could not be created.
    #[error("cannot create the work directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A process's log file could not be created.
    #[error("cannot create the log file {path}: {source}")]
    Log {
        /// The log file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A config file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No free loopback port could be found.
    #[error("cannot bind {addr} to find a free port: {source}")]
    Bind {
        /// The address asked for.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// `cargo build` of the services failed.
    #[error("`cargo build` of the services failed ({status}); its errors are above")]
    Build {
        /// cargo's exit status.
        status: std::process::ExitStatus,
    },
    /// Redis refused the clean-up of the stack's keys.
    #[error("cannot clear the Redis keys {prefix}* at {url}: {message}")]
    Redis {
        /// The key prefix.
        prefix: String,
        /// The Redis URL.
        url: String,
        /// The client's message.
        message: String,
    },
    /// The project's prometheus.yml could not be read.
    #[error(transparent)]
    Config(#[from] crate::Error),
    /// Prometheus is not installed.
    #[error(transparent)]
    Tool(#[from] crate::tool::ToolError),
}
