//! What the three pipeline services share, written once: the Redis stream names and event
//! formats (wire-compatible with the original rsky services), and the helpers around them.
//!
//! - [`event`]: the JSON payloads of the streams.
//! - [`streams`]: stream names, fields, cursor keys, and [`streams::Streams`] (names under a prefix).
//! - [`store`]: Redis helpers: connecting, atomic XADD pipelines with their cursor, cursors, XLEN.
//! - [`pipeline`]: the pipeline context: the settings every service shares about Redis and the
//!   streams ([`pipeline::PipelineSettings`]) and those of a stream worker
//!   ([`pipeline::WorkerSettings`]), one vocabulary; the one backpressure wait.
//! - [`runner`]: the one service skeleton: command line, settings, logs, `/metrics`, signals,
//!   exit codes and the `health` subcommand; a `main.rs` is one call to [`runner::main`].
//! - [`config`]: settings (one `clap` derive per service), value parsers, one clear error per bad
//!   variable.
//! - [`shutdown`]: SIGINT/SIGTERM handling as a cancellation token.
//! - [`time`]: RFC 3339 timestamps for the `time` field of events.
//! - [`worker`]: the one stream worker: read a batch, hand it to a [`worker::Processor`], settle
//!   each entry (ack, retry, pause, defer, dead-letter), one [`worker::RetryPolicy`], one
//!   housekeeping schedule (claim stale entries, safe trimming, sampling).
//! - [`consumer`]: consumer groups: pending-first reads, XAUTOCLAIM, ack (XACK + XDEL), dead letters, safe trim.
//! - [`dead_letter`]: bounded dead-letter streams and the `replay-dead-letters` command.

pub mod config;
pub mod consumer;
pub mod dead_letter;
pub mod event;
pub mod pipeline;
pub mod runner;
pub mod shutdown;
pub mod store;
pub mod streams;
pub mod time;
pub mod worker;
