//! The test relay speaks the protocol with real encodings: what it sends decodes with the
//! reference decoders, records hash to the CIDs the ops name, commits verify, cursors resume.

use std::time::Duration;

use futures::StreamExt;
use rsky_atproto::cbor::{base64_decode, cid_for_cbor, parse_cid};
use rsky_atproto::firehose::{decode_repo_frame, OpAction, RepoFrame};
use rsky_testkit::firehose::{malformed_frames, FirehoseScript, Op};
use rsky_testkit::relay::ListedRepo;
use rsky_testkit::TestRelay;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

async fn frames(url: &str, n: usize) -> Vec<Vec<u8>> {
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
            Ok(Some(Ok(Message::Binary(bytes)))) => out.push(bytes.to_vec()),
            Ok(Some(Ok(_))) => {}
            other => panic!("expected {n} frames, got {} then {other:?}", out.len()),
        }
    }
    out
}

fn post(text: &str) -> serde_json::Value {
    json!({"$type": "app.bsky.feed.post", "text": text, "createdAt": "2024-01-01T00:00:00Z"})
}

#[tokio::test]
async fn commit_frames_carry_car_blocks_whose_records_hash_to_the_op_cids() {
    let relay = TestRelay::start().await.unwrap();
    let mut script = FirehoseScript::new(10);
    script
        .commit(
            "did:plc:alice",
            &[Op::create("app.bsky.feed.post", "3kaaa", post("one"))],
        )
        .unwrap();
    script
        .commit(
            "did:plc:alice",
            &[
                Op::update("app.bsky.feed.post", "3kaaa", post("two")),
                Op::create("com.example.other", "3kbbb", json!({"x": 1})),
            ],
        )
        .unwrap();
    script
        .commit(
            "did:plc:alice",
            &[Op::delete("app.bsky.feed.post", "3kaaa")],
        )
        .unwrap();
    relay.push(script.take_items());

    let got = frames(
        &format!("{}/xrpc/com.atproto.sync.subscribeRepos", relay.ws_url()),
        3,
    )
    .await;
    let commits: Vec<_> = got
        .iter()
        .map(|f| match decode_repo_frame(f).unwrap() {
            RepoFrame::Commit(c) => c,
            other => panic!("expected a commit, got {other:?}"),
        })
        .collect();
    assert_eq!(
        commits.iter().map(|c| c.seq).collect::<Vec<_>>(),
        [10, 11, 12]
    );
    let actions: Vec<Vec<OpAction>> = commits
        .iter()
        .map(|c| c.ops.iter().map(|o| o.action).collect())
        .collect();
    assert_eq!(
        actions,
        [
            vec![OpAction::Create],
            vec![OpAction::Update, OpAction::Create],
            vec![OpAction::Delete]
        ]
    );
    for commit in &commits[..2] {
        let blocks = commit.block_map().unwrap();
        assert!(
            blocks.contains_key(&commit.commit),
            "the commit block is in the CAR"
        );
        for op in commit.ops.iter().filter(|o| o.action != OpAction::Delete) {
            let cid = op.cid.unwrap();
            assert_eq!(
                cid_for_cbor(&blocks[&cid]),
                cid,
                "the block hashes to its CID"
            );
        }
    }
    let records = commits[1].op_records().unwrap();
    assert_eq!(records[0].record.as_ref().unwrap()["text"], "two");
    assert_eq!(commits[1].since.as_deref(), Some(commits[0].rev.as_str()));
}

#[tokio::test]
async fn record_blocks_match_the_data_model_fixtures() {
    let fixtures: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../atproto/tests/fixtures/data-model/data-model-fixtures.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut script = FirehoseScript::new(1);
    for (i, fixture) in fixtures.iter().enumerate() {
        let rkey = format!("fixture{i}");
        script
            .commit(
                "did:plc:fixtures",
                &[Op::create(
                    "app.bsky.test.fixture",
                    &rkey,
                    fixture["json"].clone(),
                )],
            )
            .unwrap();
    }
    for (item, fixture) in script.items().iter().zip(&fixtures) {
        let RepoFrame::Commit(commit) = decode_repo_frame(&item.frame).unwrap() else {
            panic!("expected a commit");
        };
        let cid = commit.ops[0].cid.unwrap();
        assert_eq!(cid, parse_cid(fixture["cid"].as_str().unwrap()).unwrap());
        let expected = base64_decode(fixture["cbor_base64"].as_str().unwrap()).unwrap();
        assert_eq!(commit.block_map().unwrap()[&cid], expected);
    }
}

#[tokio::test]
async fn identity_account_error_and_malformed_frames_keep_their_place() {
    let relay = TestRelay::start().await.unwrap();
    let mut script = FirehoseScript::new(1);
    script.identity("did:plc:bob", Some("bob.test")).unwrap();
    script
        .error_frame("ConsumerTooSlow", Some("scripted"))
        .unwrap();
    script
        .account_status("did:plc:bob", false, Some("takendown"))
        .unwrap();
    for (_, bytes) in malformed_frames() {
        script.raw_frame(bytes);
    }
    relay.push(script.take_items());
    let n = 3 + malformed_frames().len();
    let got = frames(
        &format!("{}/xrpc/com.atproto.sync.subscribeRepos", relay.ws_url()),
        n,
    )
    .await;
    assert!(
        matches!(decode_repo_frame(&got[0]).unwrap(), RepoFrame::Identity(e) if e.handle.as_deref() == Some("bob.test"))
    );
    assert!(
        matches!(decode_repo_frame(&got[1]).unwrap(), RepoFrame::Error(e) if e.error == "ConsumerTooSlow")
    );
    assert!(matches!(decode_repo_frame(&got[2]).unwrap(), RepoFrame::Account(e) if !e.active));
    for (frame, (what, _)) in got[3..].iter().zip(malformed_frames()) {
        assert!(decode_repo_frame(frame).is_err(), "{what} must not decode");
    }
}

#[tokio::test]
async fn a_cursor_resumes_after_the_last_event_it_covers() {
    let relay = TestRelay::start().await.unwrap();
    let mut script = FirehoseScript::new(1);
    for i in 0..5 {
        script.identity(&format!("did:plc:u{i}"), None).unwrap();
    }
    relay.push(script.take_items());
    let got = frames(
        &format!(
            "{}/xrpc/com.atproto.sync.subscribeRepos?cursor=3",
            relay.ws_url()
        ),
        2,
    )
    .await;
    let seqs: Vec<_> = got
        .iter()
        .map(|f| decode_repo_frame(f).unwrap().seq())
        .collect();
    assert_eq!(seqs, [Some(4), Some(5)]);
    assert_eq!(relay.repo_cursors(), [Some(3)]);
}

#[tokio::test]
async fn a_scripted_disconnect_cuts_the_connection_after_n_frames() {
    let relay = TestRelay::start().await.unwrap();
    let mut script = FirehoseScript::new(1);
    for i in 0..5 {
        script.identity(&format!("did:plc:u{i}"), None).unwrap();
    }
    relay.push(script.take_items());
    relay.disconnect_after(2);
    let url = format!("{}/xrpc/com.atproto.sync.subscribeRepos", relay.ws_url());
    let (mut socket, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap();
    let mut binary = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Binary(_))) => binary += 1,
            Some(Ok(Message::Close(_))) => panic!("a cut is not a clean close"),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
    assert_eq!(binary, 2);
    // The next connection is not cut.
    assert_eq!(frames(&url, 5).await.len(), 5);
}

#[tokio::test]
async fn list_repos_pages_by_did_with_a_cursor() {
    let relay = TestRelay::start().await.unwrap();
    relay.set_listed_repos(
        (0..5)
            .map(|i| ListedRepo {
                did: format!("did:plc:r{i}"),
                head: "bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454".into(),
                rev: "3kabcabcabcab".into(),
                active: true,
                status: None,
            })
            .collect(),
    );
    let get = |query: String| {
        let url = format!(
            "{}/xrpc/com.atproto.sync.listRepos?{query}",
            relay.http_url()
        );
        async move {
            let addr = url
                .trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap()
                .to_owned();
            let path = &url[url.find("/xrpc").unwrap()..];
            http_get(&addr, path).await
        }
    };
    let first: serde_json::Value = serde_json::from_str(&get("limit=2".into()).await).unwrap();
    assert_eq!(first["repos"].as_array().unwrap().len(), 2);
    assert_eq!(first["cursor"], "did:plc:r1");
    let last: serde_json::Value =
        serde_json::from_str(&get("limit=4&cursor=did:plc:r1".into()).await).unwrap();
    assert_eq!(last["repos"].as_array().unwrap().len(), 3);
    assert!(last.get("cursor").is_none());
}

async fn http_get(addr: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: relay\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response.split_once("\r\n\r\n").unwrap().1.to_owned()
}

#[test]
fn the_load_mix_has_every_kind_of_event_and_other_namespaces() {
    use std::collections::BTreeMap;
    let mut load = rsky_testkit::load::LoadGenerator::new(50, 3);
    let items = load.next_items(2000).unwrap();
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    let mut seqs = Vec::new();
    for item in &items {
        let frame = decode_repo_frame(&item.frame).unwrap();
        seqs.push(frame.seq().unwrap());
        match frame {
            RepoFrame::Commit(commit) => {
                for op in &commit.ops {
                    let kind = match (op.action, op.path.starts_with("app.bsky.")) {
                        (_, false) => "other namespace",
                        (OpAction::Create, true) => "create",
                        (OpAction::Update, true) => "update",
                        (OpAction::Delete, true) => "delete",
                    };
                    *kinds.entry(kind).or_default() += 1;
                }
                commit.op_records().unwrap();
            }
            RepoFrame::Identity(_) => *kinds.entry("identity").or_default() += 1,
            RepoFrame::Account(_) => *kinds.entry("account").or_default() += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    for kind in [
        "create",
        "update",
        "delete",
        "identity",
        "account",
        "other namespace",
    ] {
        assert!(
            kinds.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} in {kinds:?}"
        );
    }
    assert!(kinds["create"] > kinds["delete"], "{kinds:?}");
    assert_eq!(seqs, (1..=2000).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_relay_stalled_at_the_upgrade_never_answers_it() {
    let relay = TestRelay::start().await.unwrap();
    relay.set_stall(Some(rsky_testkit::relay::Stall::Upgrade));
    let url = format!("{}/xrpc/com.atproto.sync.subscribeRepos", relay.ws_url());
    let connect = tokio_tungstenite::connect_async(url.as_str());
    assert!(
        tokio::time::timeout(Duration::from_millis(500), connect)
            .await
            .is_err(),
        "no upgrade answer"
    );
    assert_eq!(relay.repo_cursors(), [None], "the request was received");
    relay.set_stall(None);
    let connected = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::connect_async(url.as_str()),
    )
    .await;
    assert!(matches!(connected, Ok(Ok(_))), "served again");
}

#[tokio::test]
async fn a_relay_stalled_after_the_upgrade_sends_nothing_and_answers_no_ping() {
    let relay = TestRelay::start().await.unwrap();
    let mut script = FirehoseScript::new(1);
    script.identity("did:plc:alice", None).unwrap();
    relay.push(script.take_items());
    relay.set_stall(Some(rsky_testkit::relay::Stall::AfterUpgrade));
    let url = format!("{}/xrpc/com.atproto.sync.subscribeRepos", relay.ws_url());
    let (mut socket, _) = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::connect_async(url.as_str()),
    )
    .await
    .unwrap()
    .unwrap();
    use futures::SinkExt;
    socket
        .send(Message::Ping(Default::default()))
        .await
        .unwrap();
    let next = tokio::time::timeout(Duration::from_millis(500), socket.next()).await;
    assert!(next.is_err(), "nothing arrives, not even a pong: {next:?}");
    assert_eq!(relay.open_connections(), 1);
    relay.drop_connections();
}

#[tokio::test]
async fn a_cursor_ahead_of_the_log_gets_future_cursor_then_a_close() {
    let relay = TestRelay::start().await.unwrap();
    let mut script = FirehoseScript::new(1);
    script.identity("did:plc:alice", None).unwrap();
    relay.push(script.take_items());
    relay.reject_future_cursors(true);
    let base = format!("{}/xrpc/com.atproto.sync.subscribeRepos", relay.ws_url());
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("{base}?cursor=5"))
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .unwrap();
    let Some(Ok(Message::Binary(bytes))) = first else {
        panic!("expected an error frame, got {first:?}");
    };
    match decode_repo_frame(&bytes).unwrap() {
        RepoFrame::Error(error) => assert_eq!(error.error, "FutureCursor"),
        other => panic!("expected FutureCursor, got {other:?}"),
    }
    let second = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .unwrap();
    assert!(
        matches!(second, Some(Ok(Message::Close(_))) | None),
        "{second:?}"
    );
    // A cursor the log covers is served as before.
    assert_eq!(frames(&format!("{base}?cursor=0"), 1).await.len(), 1);
}
