//! The `test-pds` and `test-relay` binaries as the local stack runs them: configured by
//! environment variables, serving on loopback, exiting 0 on SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use futures::StreamExt;
use rsky_atproto::firehose::{decode_label_frame, LabelFrame};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// A GET over plain HTTP/1.1 (the testkit has no HTTP client); the status and the body of a
/// response that is not chunked (binary bytes replaced).
async fn get(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    // A CAR body is binary: only its length matters here.
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

/// Sends SIGTERM and returns the exit code.
async fn terminate(mut child: Child) -> Option<i32> {
    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits within 10 s of SIGTERM")
        .unwrap();
    status.code()
}

#[tokio::test]
async fn test_pds_prints_its_urls_serves_the_served_and_failing_accounts_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_test-pds"))
        .env("TEST_PDS_ADDR", "127.0.0.1:0")
        .env("TEST_PDS_PLC_ADDR", "127.0.0.1:0")
        .env("TEST_PDS_ACCOUNTS", "3")
        .env("TEST_PDS_RECORDS", "4")
        .stdout(Stdio::piped())
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url_after = |prefix: &'static str, line: Option<String>| {
        line.and_then(|l| l.strip_prefix(prefix).map(str::to_owned))
            .unwrap_or_else(|| panic!("a line starting with {prefix:?}"))
    };
    let pds = url_after("test PDS ", lines.next_line().await.unwrap());
    let plc = url_after("test PLC ", lines.next_line().await.unwrap());
    let accounts = lines.next_line().await.unwrap().unwrap();
    assert!(accounts.starts_with("accounts 7 (3 served"), "{accounts}");

    let (status, body) = get(&format!("{pds}/xrpc/com.atproto.sync.listRepos")).await;
    assert_eq!(status, 200);
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    let dids: Vec<&str> = listed["repos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["did"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (0..7).map(rsky_testkit::load::load_did).collect();
    assert_eq!(dids, expected);

    let get_repo = |i: usize| {
        format!(
            "{pds}/xrpc/com.atproto.sync.getRepo?did={}",
            rsky_testkit::load::load_did(i)
        )
    };
    assert_eq!(get(&get_repo(2)).await.0, 200, "a served account");
    assert_eq!(get(&get_repo(5)).await.0, 500, "the HTTP 500 account");
    assert_eq!(get(&get_repo(6)).await.0, 400, "the not-found account");

    let (status, body) = get(&format!("{plc}/{}", rsky_testkit::load::load_did(0))).await;
    assert_eq!(status, 200);
    let document: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(document["service"][0]["serviceEndpoint"], pds.as_str());

    assert_eq!(terminate(child).await, Some(0));
}

#[tokio::test]
async fn test_pds_refuses_a_setting_that_is_not_a_number() {
    let output = Command::new(env!("CARGO_BIN_EXE_test-pds"))
        .env("TEST_PDS_ACCOUNTS", "many")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("TEST_PDS_ACCOUNTS"), "{stderr}");
}

#[tokio::test]
async fn test_relay_streams_labels_and_negations_on_its_listed_accounts() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_test-relay"))
        .env("TEST_RELAY_ADDR", format!("127.0.0.1:{port}"))
        .env("TEST_RELAY_RATE", "0")
        .env("TEST_RELAY_LIST_REPOS", "4")
        .env("TEST_RELAY_LABELS_RATE", "50")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("ws://127.0.0.1:{port}/xrpc/com.atproto.label.subscribeLabels?cursor=0");
    let mut ws = None;
    for _ in 0..100 {
        if let Ok((socket, _)) = tokio_tungstenite::connect_async(url.as_str()).await {
            ws = Some(socket);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut ws = ws.expect("test-relay listens within 5 s");
    let listed: Vec<String> = (0..4).map(rsky_testkit::load::load_did).collect();
    let (mut labels, mut negations) = (0, 0);
    for expected_seq in 1..=6 {
        let message = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a labels frame within 5 s")
            .unwrap()
            .unwrap();
        let LabelFrame::Labels(event) = decode_label_frame(&message.into_data()).unwrap() else {
            panic!("not a #labels frame");
        };
        assert_eq!(event.seq, expected_seq);
        for label in event.labels {
            assert!(listed.contains(&label.uri), "{} is not listed", label.uri);
            if label.neg == Some(true) {
                negations += 1;
            } else {
                labels += 1;
            }
        }
    }
    assert_eq!((labels, negations), (12, 2));
    assert_eq!(terminate(child).await, Some(0));
}
