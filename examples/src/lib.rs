//! Runnable examples of rsky-metrics live beside this file: `cargo run --example quickstart`.
