//! The test PDS: `com.atproto.sync.listRepos` (paged) and `com.atproto.sync.getRepo` (a real
//! CARv1 of a signed commit and its Merkle Search Tree, built by `rsky-atproto`), the did:web
//! document of its own host, and the failures a backfiller must handle.
//!
//! Each hosted account has a [`Behaviour`]: served normally, or refused with `RepoNotFound`,
//! `RepoTakendown` or `RepoDeactivated` (HTTP 400, as a PDS answers), a 500, an answer that never
//! comes (a timeout for the client), a truncated CAR, a commit signed by a key other than the one
//! in the DID document, a commit for another DID, a body that never ends, or a repository with
//! one invalid record.

use crate::lock;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use rsky_atproto::cbor::{base64_encode, encode_block, ipld_to_json, json_to_ipld};
use rsky_atproto::crypto::{Curve, SigningKey};
use rsky_atproto::repo::{build_repo, RepoError};
use rsky_atproto::syntax::{is_forwarded_collection, tid_from_parts};
use rsky_atproto::Ipld;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::plc::{did_document, plc_did, TestPlc};
use crate::relay::ListedRepo;

/// How long a [`Behaviour::Timeout`] answer is held back: far beyond any client's timeout.
pub const HANG: Duration = Duration::from_secs(600);

/// What the PDS does when an account's repository is requested.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Serves the repository.
    Serve,
    /// HTTP 400 `RepoNotFound`.
    RepoNotFound,
    /// HTTP 400 `RepoTakendown` (listed as inactive, status `takendown`).
    RepoTakendown,
    /// HTTP 400 `RepoDeactivated` (listed as inactive, status `deactivated`).
    RepoDeactivated,
    /// HTTP 500 `InternalServerError`, every time.
    ServerError,
    /// Answers 500 this many times, then serves the repository.
    FailThenServe(usize),
    /// Never answers (within [`HANG`]).
    Timeout,
    /// Serves the first half of the CAR.
    TruncatedCar,
    /// Serves a commit signed by another key than the DID document's.
    BadSignature,
    /// Serves a commit that names another DID.
    DidMismatch,
    /// Answers 200 with a body that never ends (chunked, no `Content-Length`; 64 KiB chunks, up
    /// to 1 GiB): a client must refuse it while it streams.
    Endless,
    /// Serves the repository with one more record, [`INVALID_RECORD_RKEY`] in
    /// `app.bsky.feed.post`, whose block is valid DAG-CBOR but not a valid record (it holds a
    /// float, outside the AT Protocol data model); the account's own records are all valid.
    InvalidRecord,
}

/// The record key of the extra, invalid record of [`Behaviour::InvalidRecord`].
pub const INVALID_RECORD_RKEY: &str = "3zzzzzzzzzzzz";

/// Why an account could not be hosted.
#[derive(Debug, thiserror::Error)]
pub enum PdsError {
    /// The repository could not be built.
    #[error("cannot build the repository of {did}: {source}")]
    Repo {
        /// The account.
        did: String,
        /// What failed.
        source: Box<RepoError>,
    },
    /// A key could not be made.
    #[error("cannot make a signing key: {0}")]
    Key(String),
    /// A `did:web` account for another host than this PDS.
    #[error("{did} is not the did:web of this PDS ({expected}); a did:web document is served by its own host")]
    ForeignDidWeb {
        /// The DID.
        did: String,
        /// The did:web this PDS serves.
        expected: String,
    },
}

/// One record as a backfill should reproduce it.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpectedRecord {
    /// Collection NSID.
    pub collection: String,
    /// Record key.
    pub rkey: String,
    /// Record CID.
    pub cid: String,
    /// The record as AT Protocol JSON.
    pub record: Value,
}

/// An account and its records, deterministic for a seed.
#[derive(Clone, Debug)]
pub struct TestAccount {
    /// The DID.
    pub did: String,
    /// The handle in its DID document.
    pub handle: String,
    /// The key that signs its commits (secp256k1 or P-256, by seed).
    pub key: SigningKey,
    /// The revision of its commit.
    pub rev: String,
    /// Its records: `(collection, rkey, record)`.
    pub records: Vec<(String, String, Ipld)>,
}

impl TestAccount {
    /// A `did:plc` account derived from `seed`, with `records` records of several collections.
    pub fn plc(seed: &str, records: usize) -> Result<TestAccount, PdsError> {
        Self::with_did(&plc_did(seed), seed, records)
    }

    /// An account with `did`, its key and records derived from `seed`.
    pub fn with_did(did: &str, seed: &str, records: usize) -> Result<TestAccount, PdsError> {
        Ok(TestAccount {
            did: did.to_owned(),
            handle: format!("{}.test", sanitize(seed)),
            key: derived_key(seed)?,
            rev: tid_from_parts(1_720_000_000_000_000 + records as u64, 7),
            records: sample_records(seed, records),
        })
    }

    /// Every record with its CID and JSON, in repository (key) order.
    pub fn expected_records(&self) -> Vec<ExpectedRecord> {
        let mut out: Vec<ExpectedRecord> = self
            .records
            .iter()
            .map(|(collection, rkey, record)| ExpectedRecord {
                collection: collection.clone(),
                rkey: rkey.clone(),
                cid: encode_block(record)
                    .map(|(cid, _)| cid.to_string())
                    .unwrap_or_default(),
                record: ipld_to_json(record).unwrap_or(Value::Null),
            })
            .collect();
        out.sort_by(|a, b| (&a.collection, &a.rkey).cmp(&(&b.collection, &b.rkey)));
        out
    }

    /// The records a backfill forwards (collections under `app.bsky.` and `chat.bsky.`).
    pub fn forwarded_records(&self) -> Vec<ExpectedRecord> {
        self.expected_records()
            .into_iter()
            .filter(|r| is_forwarded_collection(&r.collection))
            .collect()
    }

    /// How many records a backfill filters out.
    pub fn filtered_count(&self) -> usize {
        self.records.len() - self.forwarded_records().len()
    }
}

fn sanitize(seed: &str) -> String {
    let s: String = seed
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches('-').to_owned();
    if s.is_empty() {
        "account".to_owned()
    } else {
        s
    }
}

fn derived_key(seed: &str) -> Result<SigningKey, PdsError> {
    let digest = Sha256::digest(format!("signing-key:{seed}").as_bytes());
    // Both curves appear, chosen by the seed.
    let curve = if digest[31] & 1 == 0 {
        Curve::Secp256k1
    } else {
        Curve::P256
    };
    SigningKey::from_bytes(curve, &digest).map_err(|e| PdsError::Key(e.to_string()))
}

/// Collections outside `app.bsky.`/`chat.bsky.`, as real repositories hold them.
const OTHER_COLLECTIONS: [&str; 3] = [
    "com.whtwnd.blog.entry",
    "fyi.unravel.frontpage.post",
    "sh.tangled.repo",
];

/// `n` records of several collections: a profile, a chat declaration, posts (some with an image
/// blob, some with bytes), likes, reposts, follows, blocks and records outside `app.bsky`.
pub fn sample_records(seed: &str, n: usize) -> Vec<(String, String, Ipld)> {
    let base = 1_710_000_000_000_000u64 + (Sha256::digest(seed.as_bytes())[0] as u64) * 1_000_000;
    let created_at = "2024-03-09T16:00:00.000Z";
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let rkey = tid_from_parts(base + i as u64, 3);
        let subject_did = plc_did(&format!("{seed}-friend-{}", i % 17));
        let subject_uri = format!(
            "at://{subject_did}/app.bsky.feed.post/{}",
            tid_from_parts(base - 1 - i as u64, 5)
        );
        let subject_cid = encode_block(&Ipld::String(format!("{seed}-{i}")))
            .map(|(cid, _)| cid.to_string())
            .unwrap_or_default();
        let (collection, rkey, record) = match (i, i % 10) {
            (0, _) => (
                "app.bsky.actor.profile".to_owned(),
                "self".to_owned(),
                json!({"$type": "app.bsky.actor.profile", "displayName": format!("Account {seed}"),
                       "description": "a test account", "createdAt": created_at}),
            ),
            (1, _) => (
                "chat.bsky.actor.declaration".to_owned(),
                "self".to_owned(),
                json!({"$type": "chat.bsky.actor.declaration", "allowIncoming": "following"}),
            ),
            (_, 0..=3) => {
                let mut post = json!({"$type": "app.bsky.feed.post", "text": format!("post {i} of {seed}"),
                                      "langs": ["en"], "createdAt": created_at});
                if i % 3 == 0 {
                    post["embed"] = json!({"$type": "app.bsky.embed.images", "images": [{
                        "alt": "", "image": {"$type": "blob", "ref": {"$link": subject_cid},
                        "mimeType": "image/jpeg", "size": 1000 + i}}]});
                }
                if i % 7 == 0 {
                    post["sig"] =
                        json!({"$bytes": base64_encode(&Sha256::digest(rkey.as_bytes()))});
                }
                ("app.bsky.feed.post".to_owned(), rkey, post)
            }
            (_, 4 | 5) => (
                "app.bsky.feed.like".to_owned(),
                rkey,
                json!({"$type": "app.bsky.feed.like", "subject": {"uri": subject_uri, "cid": subject_cid},
                       "createdAt": created_at}),
            ),
            (_, 6) => (
                "app.bsky.feed.repost".to_owned(),
                rkey,
                json!({"$type": "app.bsky.feed.repost", "subject": {"uri": subject_uri, "cid": subject_cid},
                       "createdAt": created_at}),
            ),
            (_, 7) => (
                "app.bsky.graph.follow".to_owned(),
                rkey,
                json!({"$type": "app.bsky.graph.follow", "subject": subject_did, "createdAt": created_at}),
            ),
            (_, 8) => (
                "app.bsky.graph.block".to_owned(),
                rkey,
                json!({"$type": "app.bsky.graph.block", "subject": subject_did, "createdAt": created_at}),
            ),
            _ => {
                let collection = OTHER_COLLECTIONS[(i / 10) % OTHER_COLLECTIONS.len()];
                (
                    collection.to_owned(),
                    rkey,
                    json!({"$type": collection, "title": format!("entry {i}"),
                           "blob": {"$bytes": base64_encode(format!("{seed}:{i}").as_bytes())},
                           "createdAt": created_at}),
                )
            }
        };
        // The JSON above is valid data model by construction.
        if let Ok(record) = json_to_ipld(&record) {
            out.push((collection, rkey, record));
        }
    }
    out
}

/// A hosted repository: what `listRepos` lists for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostedRepo {
    /// CID of the served commit.
    pub head: String,
    /// Its revision.
    pub rev: String,
}

struct Hosted {
    listed: ListedRepo,
    car: Arc<Vec<u8>>,
    behaviour: Behaviour,
    failures_left: usize,
}

struct Shared {
    accounts: Mutex<BTreeMap<String, Hosted>>,
    web_document: Mutex<Option<Value>>,
    get_repo_delay: Mutex<Duration>,
    get_repo_requests: Mutex<HashMap<String, usize>>,
}

/// A running test PDS. Dropping it stops the server.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use rsky_testkit::pds::{Behaviour, TestAccount, TestPds};
/// use rsky_testkit::plc::TestPlc;
///
/// let plc = TestPlc::start().await?;
/// let pds = TestPds::start().await?;
/// let alice = TestAccount::plc("alice", 20)?;
/// pds.host(&alice, Behaviour::Serve, &plc)?;
/// assert_eq!(pds.listed().len(), 1);
/// # Ok(()) }
/// ```
pub struct TestPds {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl Drop for TestPds {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestPds {
    /// Starts a PDS on `127.0.0.1` on a free port.
    pub async fn start() -> std::io::Result<TestPds> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts a PDS on `addr`.
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<TestPds> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            accounts: Mutex::new(BTreeMap::new()),
            web_document: Mutex::new(None),
            get_repo_delay: Mutex::new(Duration::ZERO),
            get_repo_requests: Mutex::new(HashMap::new()),
        });
        let app = Router::new()
            .route("/xrpc/com.atproto.sync.listRepos", get(list_repos))
            .route("/xrpc/com.atproto.sync.getRepo", get(get_repo))
            .route("/.well-known/did.json", get(web_document))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                tracing::error!(error = %err, "test PDS stopped");
            }
        });
        Ok(TestPds {
            addr,
            shared,
            server,
        })
    }

    /// The address the PDS listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the PDS endpoint in DID documents.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The `did:web` of this host, its port percent-encoded: `did:web:127.0.0.1%3APORT`.
    pub fn did_web(&self) -> String {
        format!("did:web:{}%3A{}", self.addr.ip(), self.addr.port())
    }

    /// Hosts `account` with `behaviour` and publishes its DID document: in `plc` for a
    /// `did:plc`, at this host's `/.well-known/did.json` for [`TestPds::did_web`].
    pub fn host(
        &self,
        account: &TestAccount,
        behaviour: Behaviour,
        plc: &TestPlc,
    ) -> Result<HostedRepo, PdsError> {
        let repo_err = |source| PdsError::Repo {
            did: account.did.clone(),
            source: Box::new(source),
        };
        let (commit_did, signer) = match behaviour {
            Behaviour::DidMismatch => (
                plc_did(&format!("{}-impostor", account.did)),
                account.key.clone(),
            ),
            Behaviour::BadSignature => (
                account.did.clone(),
                derived_key(&format!("{}-wrong-key", account.did))?,
            ),
            _ => (account.did.clone(), account.key.clone()),
        };
        let invalid = (behaviour == Behaviour::InvalidRecord).then(|| {
            (
                "app.bsky.feed.post".to_owned(),
                INVALID_RECORD_RKEY.to_owned(),
                Ipld::Map(BTreeMap::from([("n".to_owned(), Ipld::Float(1.5))])),
            )
        });
        let built = build_repo(
            &commit_did,
            &signer,
            &account.rev,
            account.records.iter().cloned().chain(invalid),
        )
        .map_err(repo_err)?;
        let mut car = built.to_car().map_err(repo_err)?;
        if behaviour == Behaviour::TruncatedCar {
            car.truncate(car.len() / 2);
        }
        let document = did_document(
            &account.did,
            &account.handle,
            &account.key.public_key(),
            &self.url(),
        );
        if account.did.starts_with("did:web:") {
            if account.did != self.did_web() {
                return Err(PdsError::ForeignDidWeb {
                    did: account.did.clone(),
                    expected: self.did_web(),
                });
            }
            *lock(&self.shared.web_document) = Some(document);
        } else {
            plc.set_document(&account.did, document);
        }
        let (active, status) = match behaviour {
            Behaviour::RepoTakendown => (false, Some("takendown".to_owned())),
            Behaviour::RepoDeactivated => (false, Some("deactivated".to_owned())),
            _ => (true, None),
        };
        let hosted = HostedRepo {
            head: built.commit_cid.to_string(),
            rev: account.rev.clone(),
        };
        lock(&self.shared.accounts).insert(
            account.did.clone(),
            Hosted {
                listed: ListedRepo {
                    did: account.did.clone(),
                    head: hosted.head.clone(),
                    rev: hosted.rev.clone(),
                    active,
                    status,
                },
                car: Arc::new(car),
                behaviour,
                failures_left: match behaviour {
                    Behaviour::FailThenServe(n) => n,
                    _ => 0,
                },
            },
        );
        Ok(hosted)
    }

    /// Every hosted repository, sorted by DID, as `listRepos` pages through them.
    pub fn listed(&self) -> Vec<ListedRepo> {
        lock(&self.shared.accounts)
            .values()
            .map(|h| h.listed.clone())
            .collect()
    }

    /// Pads the did:web document this host serves with a `padding` field of `bytes` bytes (a
    /// document too large for a client's limit); it stays a valid document.
    pub fn pad_web_document(&self, bytes: usize) {
        if let Some(Value::Object(document)) = lock(&self.shared.web_document).as_mut() {
            document.insert("padding".to_owned(), Value::String("x".repeat(bytes)));
        }
    }

    /// Holds every `getRepo` answer back by `delay` (to catch a client mid-batch).
    pub fn set_get_repo_delay(&self, delay: Duration) {
        *lock(&self.shared.get_repo_delay) = delay;
    }

    /// How many times the repository of `did` was requested.
    pub fn get_repo_requests(&self, did: &str) -> usize {
        lock(&self.shared.get_repo_requests)
            .get(did)
            .copied()
            .unwrap_or(0)
    }
}

/// The failures a backfiller must count, one account each after the served ones in
/// [`host_load_accounts`]: a bad signature, a truncated CAR, an HTTP 500 and a missing repository.
pub const LOAD_FAILURES: [Behaviour; 4] = [
    Behaviour::BadSignature,
    Behaviour::TruncatedCar,
    Behaviour::ServerError,
    Behaviour::RepoNotFound,
];

/// Hosts the accounts of a load test on `pds`, their DID documents in `plc`: `served` accounts
/// with `records` records each, then one account per [`LOAD_FAILURES`] (5 records each), named
/// `load_did(0)`, `load_did(1)`, ... ([`crate::load::load_did`]), keys and records derived from
/// the DID and `seed`. Returns each DID with its behaviour, in order.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use rsky_testkit::pds::{host_load_accounts, Behaviour, TestPds};
/// use rsky_testkit::plc::TestPlc;
///
/// let (pds, plc) = (TestPds::start().await?, TestPlc::start().await?);
/// let hosted = host_load_accounts(&pds, &plc, 2, 3, 1)?;
/// assert_eq!(hosted.len(), 6);
/// assert_eq!(hosted[5], ("did:plc:load00000000000000000005".to_owned(), Behaviour::RepoNotFound));
/// # Ok(()) }
/// ```
pub fn host_load_accounts(
    pds: &TestPds,
    plc: &TestPlc,
    served: usize,
    records: usize,
    seed: u64,
) -> Result<Vec<(String, Behaviour)>, PdsError> {
    let plan = std::iter::repeat_n((Behaviour::Serve, records), served)
        .chain(LOAD_FAILURES.iter().map(|b| (*b, 5)));
    let mut hosted = Vec::new();
    for (i, (behaviour, records)) in plan.enumerate() {
        let did = crate::load::load_did(i);
        let account = TestAccount::with_did(&did, &format!("{did}-{seed}"), records)?;
        pds.host(&account, behaviour, plc)?;
        hosted.push((did, behaviour));
    }
    Ok(hosted)
}

fn xrpc_error(status: StatusCode, error: &str, message: &str) -> Response {
    (status, Json(json!({"error": error, "message": message}))).into_response()
}

#[derive(Deserialize)]
struct ListReposQuery {
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Serialize)]
struct ListReposOutput {
    #[serde(skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
    repos: Vec<ListedRepo>,
}

async fn list_repos(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<ListReposQuery>,
) -> Response {
    let limit = query.limit.unwrap_or(500);
    if !(1..=1000).contains(&limit) {
        return xrpc_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "limit must be between 1 and 1000",
        );
    }
    let accounts = lock(&shared.accounts);
    let page: Vec<ListedRepo> = accounts
        .values()
        .filter(|h| {
            query
                .cursor
                .as_ref()
                .is_none_or(|c| h.listed.did.as_str() > c.as_str())
        })
        .take(limit as usize)
        .map(|h| h.listed.clone())
        .collect();
    let more = page
        .last()
        .is_some_and(|last| accounts.keys().any(|did| did.as_str() > last.did.as_str()));
    let cursor = more.then(|| page.last().map(|r| r.did.clone())).flatten();
    Json(ListReposOutput {
        cursor,
        repos: page,
    })
    .into_response()
}

#[derive(Deserialize)]
struct GetRepoQuery {
    did: Option<String>,
}

async fn get_repo(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<GetRepoQuery>,
) -> Response {
    let Some(did) = query.did else {
        return xrpc_error(StatusCode::BAD_REQUEST, "InvalidRequest", "did is required");
    };
    *lock(&shared.get_repo_requests)
        .entry(did.clone())
        .or_default() += 1;
    let delay = *lock(&shared.get_repo_delay);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let answer = {
        let mut accounts = lock(&shared.accounts);
        match accounts.get_mut(&did) {
            None => Err((
                StatusCode::BAD_REQUEST,
                "RepoNotFound",
                format!("Could not find repo for DID: {did}"),
            )),
            Some(hosted) => match hosted.behaviour {
                Behaviour::RepoNotFound => Err((
                    StatusCode::BAD_REQUEST,
                    "RepoNotFound",
                    format!("Could not find repo for DID: {did}"),
                )),
                Behaviour::RepoTakendown => Err((
                    StatusCode::BAD_REQUEST,
                    "RepoTakendown",
                    format!("Repo has been takendown: {did}"),
                )),
                Behaviour::RepoDeactivated => Err((
                    StatusCode::BAD_REQUEST,
                    "RepoDeactivated",
                    format!("Repo has been deactivated: {did}"),
                )),
                Behaviour::ServerError => Err((
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "InternalServerError",
                    "Internal Server Error".to_owned(),
                )),
                Behaviour::FailThenServe(_) if hosted.failures_left > 0 => {
                    hosted.failures_left -= 1;
                    Err((
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "InternalServerError",
                        "Internal Server Error".to_owned(),
                    ))
                }
                Behaviour::Timeout => Ok(None),
                Behaviour::Endless => return endless_body(),
                _ => Ok(Some(hosted.car.clone())),
            },
        }
    };
    match answer {
        Err((status, error, message)) => xrpc_error(status, error, &message),
        Ok(None) => {
            tokio::time::sleep(HANG).await;
            xrpc_error(
                StatusCode::GATEWAY_TIMEOUT,
                "Timeout",
                "held back on purpose",
            )
        }
        Ok(Some(car)) => (
            [(header::CONTENT_TYPE, "application/vnd.ipld.car")],
            car.as_ref().clone(),
        )
            .into_response(),
    }
}

/// 200 with a chunked body of 64 KiB chunks, up to 1 GiB: "never ends" for any sane client.
fn endless_body() -> Response {
    use futures::StreamExt;
    let chunk = axum::body::Bytes::from(vec![0u8; 64 * 1024]);
    let chunks = futures::stream::repeat(chunk)
        .take(16 * 1024)
        .map(Ok::<_, std::convert::Infallible>);
    (
        [(header::CONTENT_TYPE, "application/vnd.ipld.car")],
        axum::body::Body::from_stream(chunks),
    )
        .into_response()
}

async fn web_document(State(shared): State<Arc<Shared>>) -> Response {
    match lock(&shared.web_document).clone() {
        Some(document) => Json(document).into_response(),
        None => (StatusCode::NOT_FOUND, "no did:web account on this host\n").into_response(),
    }
}
