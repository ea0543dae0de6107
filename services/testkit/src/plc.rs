//! The test PLC directory: `GET /{did}` answers a DID document, on loopback.
//!
//! Documents are the shape the real directory serves: an `#atproto` verification method
//! (`Multikey`, `publicKeyMultibase`) and an `#atproto_pds` service (`AtprotoPersonalDataServer`).

use crate::lock;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rsky_atproto::crypto::PublicKey;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A DID document naming `signing_key` as the `#atproto` key and `pds` as the PDS endpoint.
pub fn did_document(did: &str, handle: &str, signing_key: &PublicKey, pds: &str) -> Value {
    json!({
        "@context": [
            "https://www.w3.org/ns/did/v1",
            "https://w3id.org/security/multikey/v1",
            "https://w3id.org/security/suites/secp256k1-2019/v1"
        ],
        "id": did,
        "alsoKnownAs": [format!("at://{handle}")],
        "verificationMethod": [{
            "id": format!("{did}#atproto"),
            "type": "Multikey",
            "controller": did,
            "publicKeyMultibase": signing_key.to_multibase(),
        }],
        "service": [{
            "id": "#atproto_pds",
            "type": "AtprotoPersonalDataServer",
            "serviceEndpoint": pds,
        }]
    })
}

/// A syntactically valid `did:plc` derived from `seed`: 24 base32 (`a-z2-7`) characters, as the
/// real directory derives them from a hash.
pub fn plc_did(seed: &str) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let digest = Sha256::digest(seed.as_bytes());
    let id: String = digest
        .iter()
        .take(24)
        .map(|b| ALPHABET[(*b & 31) as usize] as char)
        .collect();
    format!("did:plc:{id}")
}

struct Shared {
    documents: Mutex<HashMap<String, Value>>,
    requests: AtomicUsize,
}

/// A running test PLC directory. Dropping it stops the server.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
/// use rsky_testkit::plc::{did_document, plc_did, TestPlc};
/// use rsky_atproto::crypto::{Curve, SigningKey};
///
/// let plc = TestPlc::start().await?;
/// let did = plc_did("alice");
/// let key = SigningKey::generate(Curve::Secp256k1).unwrap().public_key();
/// plc.set_document(&did, did_document(&did, "alice.test", &key, "http://127.0.0.1:1"));
/// assert_eq!(plc.document_url(&did), format!("{}/{did}", plc.url()));
/// # Ok(()) }
/// ```
pub struct TestPlc {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl Drop for TestPlc {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestPlc {
    /// Starts a directory on `127.0.0.1` on a free port.
    pub async fn start() -> std::io::Result<TestPlc> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts a directory on `addr` (port 0: a free port; [`TestPlc::url`] tells which).
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<TestPlc> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            documents: Mutex::new(HashMap::new()),
            requests: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/{did}", get(resolve))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                tracing::error!(error = %err, "test PLC stopped");
            }
        });
        Ok(TestPlc {
            addr,
            shared,
            server,
        })
    }

    /// `http://127.0.0.1:PORT`: the PLC URL to configure a resolver with.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The URL of the document of `did`.
    pub fn document_url(&self, did: &str) -> String {
        format!("{}/{did}", self.url())
    }

    /// Publishes (or replaces) the document of `did`.
    pub fn set_document(&self, did: &str, document: Value) {
        lock(&self.shared.documents).insert(did.to_owned(), document);
    }

    /// Unpublishes `did`: its document answers 404 from now on.
    pub fn remove_document(&self, did: &str) {
        lock(&self.shared.documents).remove(did);
    }

    /// How many documents were requested (a cache in front of the directory keeps this low).
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }
}

async fn resolve(State(shared): State<Arc<Shared>>, Path(did): Path<String>) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    match lock(&shared.documents).get(&did) {
        Some(document) => Json(document.clone()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"message": format!("DID not registered: {did}")})),
        )
            .into_response(),
    }
}
