//! AT Protocol encodings shared by the rsky pipeline services and test servers.
//!
//! - [`cbor`]: DAG-CBOR encode/decode, CIDs, and the atproto JSON form
//!   (`$link` / `$bytes`) of records.
//! - [`car`]: CARv1 reader and writer.
//! - [`firehose`]: `subscribeRepos` and `subscribeLabels` event-stream frames.
//! - [`mst`]: Merkle Search Tree construction and traversal.
//! - [`crypto`]: secp256k1 / P-256 signing keys, signatures and `did:key`.
//! - [`repo`]: signed commits, and building / loading whole repository CARs.
//! - [`syntax`]: validation of DIDs, handles, NSIDs, AT-URIs, record keys and
//!   TIDs, plus TID generation.
//!
//! Nothing here panics on malformed input: every decoder returns a
//! `thiserror` error that names what was wrong.
#![warn(missing_docs)]

pub mod car;
pub mod cbor;
pub mod crypto;
pub mod firehose;
pub mod mst;
pub mod repo;
pub mod syntax;

pub use cbor::{Cid, Ipld};
