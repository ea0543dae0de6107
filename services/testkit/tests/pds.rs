//! The test PDS and PLC: what they serve is what rsky-atproto (checked against the interop
//! fixtures) reads back.

use rsky_atproto::repo::load_repo_car;
use rsky_testkit::pds::{Behaviour, TestAccount, TestPds};
use rsky_testkit::plc::TestPlc;

/// A minimal HTTP/1.1 GET over TCP (the testkit has no HTTP client dependency).
async fn get(url: &str) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    stream
        .write_all(
            format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap().trim(), 16)
                    .unwrap();
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
            rest = &rest[line_end + 2 + size + 2..];
        }
        body = out;
    }
    (status, body)
}

#[tokio::test]
async fn get_repo_serves_a_signed_car_whose_records_load_back_exactly() {
    let plc = TestPlc::start().await.unwrap();
    let pds = TestPds::start().await.unwrap();
    let account = TestAccount::plc("roundtrip", 120).unwrap();
    let hosted = pds.host(&account, Behaviour::Serve, &plc).unwrap();
    let (status, car) = get(&format!(
        "{}/xrpc/com.atproto.sync.getRepo?did={}",
        pds.url(),
        account.did
    ))
    .await;
    assert_eq!(status, 200);
    let loaded = load_repo_car(&car, &account.did, &account.key.public_key().to_did_key()).unwrap();
    assert_eq!(loaded.commit_cid.to_string(), hosted.head);
    let got: Vec<_> = loaded
        .records
        .iter()
        .map(|r| {
            (
                r.collection.clone(),
                r.rkey.clone(),
                r.cid.to_string(),
                r.record.clone(),
            )
        })
        .collect();
    let expected: Vec<_> = account
        .expected_records()
        .into_iter()
        .map(|r| (r.collection, r.rkey, r.cid, r.record))
        .collect();
    assert_eq!(got, expected);
    assert!(
        account.filtered_count() > 0,
        "some collections are outside app.bsky"
    );
}

#[tokio::test]
async fn the_plc_and_the_did_web_host_serve_documents_with_key_and_pds() {
    let plc = TestPlc::start().await.unwrap();
    let pds = TestPds::start().await.unwrap();
    let alice = TestAccount::plc("alice", 3).unwrap();
    let web = TestAccount::with_did(&pds.did_web(), "web", 3).unwrap();
    pds.host(&alice, Behaviour::Serve, &plc).unwrap();
    pds.host(&web, Behaviour::Serve, &plc).unwrap();
    for (url, account) in [
        (plc.document_url(&alice.did), &alice),
        (format!("{}/.well-known/did.json", pds.url()), &web),
    ] {
        let (status, body) = get(&url).await;
        assert_eq!(status, 200);
        let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(doc["id"], account.did.as_str());
        assert_eq!(
            doc["verificationMethod"][0]["publicKeyMultibase"],
            account.key.public_key().to_multibase()
        );
        assert_eq!(doc["service"][0]["serviceEndpoint"], pds.url());
    }
    assert_eq!(
        get(&plc.document_url("did:plc:unknownunknownunknown00"))
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn failure_behaviours_answer_as_a_pds_would() {
    let plc = TestPlc::start().await.unwrap();
    let pds = TestPds::start().await.unwrap();
    let cases = [
        (Behaviour::RepoNotFound, 400, Some("RepoNotFound")),
        (Behaviour::RepoTakendown, 400, Some("RepoTakendown")),
        (Behaviour::RepoDeactivated, 400, Some("RepoDeactivated")),
        (Behaviour::ServerError, 500, Some("InternalServerError")),
        (Behaviour::TruncatedCar, 200, None),
        (Behaviour::BadSignature, 200, None),
        (Behaviour::DidMismatch, 200, None),
    ];
    for (i, (behaviour, status, error)) in cases.into_iter().enumerate() {
        let account = TestAccount::plc(&format!("case-{i}"), 10).unwrap();
        pds.host(&account, behaviour, &plc).unwrap();
        let (got, body) = get(&format!(
            "{}/xrpc/com.atproto.sync.getRepo?did={}",
            pds.url(),
            account.did
        ))
        .await;
        assert_eq!(got, status, "{behaviour:?}");
        if let Some(error) = error {
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["error"], error);
        } else {
            // Each broken repository fails to load, each for its own reason.
            let err = load_repo_car(&body, &account.did, &account.key.public_key().to_did_key())
                .unwrap_err();
            let text = err.to_string();
            match behaviour {
                Behaviour::TruncatedCar => assert!(text.contains("CAR"), "{text}"),
                Behaviour::BadSignature => assert!(text.contains("signature"), "{text}"),
                _ => assert!(text.contains("does not match"), "{text}"),
            }
        }
    }
}

#[tokio::test]
async fn list_repos_pages_through_every_account_with_a_cursor() {
    let plc = TestPlc::start().await.unwrap();
    let pds = TestPds::start().await.unwrap();
    for i in 0..7 {
        pds.host(
            &TestAccount::plc(&format!("list-{i}"), 1).unwrap(),
            Behaviour::Serve,
            &plc,
        )
        .unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{}/xrpc/com.atproto.sync.listRepos?limit=3", pds.url());
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let (status, body) = get(&url).await;
        assert_eq!(status, 200);
        let page: serde_json::Value = serde_json::from_slice(&body).unwrap();
        for repo in page["repos"].as_array().unwrap() {
            seen.push(repo["did"].as_str().unwrap().to_owned());
        }
        match page["cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let expected: Vec<String> = pds.listed().into_iter().map(|r| r.did).collect();
    assert_eq!(seen, expected);
    assert_eq!(seen.len(), 7);
}
