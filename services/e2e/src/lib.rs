//! End-to-end tests of the pipeline, across services, on real sockets, Redis and PostgreSQL.
//! The tests are in `tests/`: `pipeline.rs` (test relay -> ingester -> indexer),
//! `backfill_pipeline.rs` (test PLC and PDS -> backfiller -> indexer) and `chaos.rs` (the first
//! pipeline through fault proxies while the relay stalls, PostgreSQL is cut, an indexer process
//! is SIGKILLed and Redis is restarted; it builds the `indexer` binary and needs `redis-server`
//! on PATH). Each service's own tests
//! stay in its crate; shared test support is `rsky_testkit::support`, the indexer's fixtures `rsky_testkit::indexer`.
