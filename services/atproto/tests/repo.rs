//! Signed repositories: build a CAR, load and verify it, and every failure mode.

use std::collections::BTreeMap;

use rsky_atproto::car::{read_car, write_car};
use rsky_atproto::cbor::{encode_block, from_dag_cbor, json_to_ipld, Ipld};
use rsky_atproto::crypto::{Curve, SigningKey};
use rsky_atproto::mst::build_mst;
use rsky_atproto::repo::{build_repo, build_repo_car, load_repo_car, Commit, RepoError};
use rsky_atproto::Cid;
use serde_json::json;

const DID: &str = "did:plc:w4xbfzo7kqfes5zb7r6qv3rw";
const REV: &str = "3l6sjhvqonco2";

fn records() -> Vec<(String, String, Ipld)> {
    let post = json!({
        "$type": "app.bsky.feed.post",
        "text": "hello world",
        "createdAt": "2024-01-01T00:00:00.000Z",
        "embed": {"$type": "app.bsky.embed.images", "images": [{"alt": "", "image": {
            "$type": "blob",
            "ref": {"$link": "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity"},
            "mimeType": "image/jpeg", "size": 10000}}]}
    });
    let like = json!({
        "$type": "app.bsky.feed.like",
        "subject": {"uri": "at://did:plc:abc/app.bsky.feed.post/3l6sjhvqonco2",
                    "cid": "bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454"},
        "createdAt": "2024-01-01T00:00:00.000Z"
    });
    let profile = json!({"$type": "app.bsky.actor.profile", "displayName": "Alice",
                         "sig": {"$bytes": "nFERjvLLiw9qm45JrqH9QTzyC2Lu1Xb4ne6+sBrCzI0"}});
    vec![
        (
            "app.bsky.feed.post".into(),
            "3l6sjhvqonco2".into(),
            json_to_ipld(&post).unwrap(),
        ),
        (
            "app.bsky.feed.like".into(),
            "3l6sjhvqoncp2".into(),
            json_to_ipld(&like).unwrap(),
        ),
        (
            "app.bsky.actor.profile".into(),
            "self".into(),
            json_to_ipld(&profile).unwrap(),
        ),
    ]
}

fn key(curve: Curve) -> SigningKey {
    SigningKey::from_bytes(curve, &[42u8; 32]).unwrap()
}

#[test]
fn build_then_load_round_trips_on_both_curves() {
    for curve in [Curve::Secp256k1, Curve::P256] {
        let key = key(curve);
        let did_key = key.public_key().to_did_key();
        let repo = build_repo(DID, &key, REV, records()).unwrap();
        let car = repo.to_car().unwrap();

        let parsed = read_car(&car).unwrap();
        assert_eq!(parsed.roots, vec![repo.commit_cid]);
        assert_eq!(parsed.blocks[0].0, repo.commit_cid, "commit block first");
        assert_eq!(parsed.blocks.len(), 1 + repo.mst.blocks.len() + 3);

        let loaded = load_repo_car(&car, DID, &did_key).unwrap();
        assert_eq!(loaded.commit_cid, repo.commit_cid);
        assert_eq!(loaded.commit.did, DID);
        assert_eq!(loaded.commit.version, 3);
        assert_eq!(loaded.commit.rev, REV);
        assert_eq!(loaded.commit.data, repo.mst.root);
        assert_eq!(loaded.commit.prev, None);
        let got: Vec<(String, String)> = loaded
            .records
            .iter()
            .map(|r| (r.collection.clone(), r.rkey.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("app.bsky.actor.profile".to_string(), "self".to_string()),
                ("app.bsky.feed.like".into(), "3l6sjhvqoncp2".into()),
                ("app.bsky.feed.post".into(), "3l6sjhvqonco2".into()),
            ]
        );
        for r in &loaded.records {
            let (_, _, original) = records()
                .into_iter()
                .find(|(c, k, _)| *c == r.collection && *k == r.rkey)
                .unwrap();
            assert_eq!(json_to_ipld(&r.record).unwrap(), original);
            assert_eq!(encode_block(&original).unwrap().0, r.cid);
        }
        let post = &loaded.records[2].record;
        assert_eq!(post["text"], "hello world");
        assert_eq!(
            post["embed"]["images"][0]["image"]["ref"]["$link"],
            "bafkreiccldh766hwcnuxnf2wh6jgzepf2nlu2lvcllt63eww5p6chi4ity"
        );
    }
}

#[test]
fn commit_block_shape_and_determinism() {
    let key = key(Curve::Secp256k1);
    let a = build_repo_car(DID, &key, REV, records()).unwrap();
    let b = build_repo_car(DID, &key, REV, records().into_iter().rev()).unwrap();
    assert_eq!(
        a, b,
        "RFC 6979 signatures and the MST make CARs deterministic"
    );

    let car = read_car(&a).unwrap();
    let commit: Ipld = from_dag_cbor(&car.blocks[0].1).unwrap();
    let Ipld::Map(m) = commit else {
        panic!("commit is a map")
    };
    assert_eq!(
        m.keys().map(String::as_str).collect::<Vec<_>>(),
        ["data", "did", "prev", "rev", "sig", "version"]
    );
    assert_eq!(m["prev"], Ipld::Null);
    assert_eq!(m["version"], Ipld::Integer(3));
    let Ipld::Bytes(sig) = &m["sig"] else {
        panic!("sig is bytes")
    };
    assert_eq!(sig.len(), 64);
}

#[test]
fn empty_repo() {
    let key = key(Curve::P256);
    let car = build_repo_car(DID, &key, REV, Vec::new()).unwrap();
    let loaded = load_repo_car(&car, DID, &key.public_key().to_did_key()).unwrap();
    assert!(loaded.records.is_empty());
    assert_eq!(
        loaded.commit.data.to_string(),
        "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
    );
}

#[test]
fn load_errors_are_distinct() {
    let key = key(Curve::Secp256k1);
    let did_key = key.public_key().to_did_key();
    let repo = build_repo(DID, &key, REV, records()).unwrap();
    let car = repo.to_car().unwrap();

    // Truncated CAR.
    assert!(matches!(
        load_repo_car(&car[..car.len() - 5], DID, &did_key),
        Err(RepoError::Car(_))
    ));
    // DID mismatch.
    match load_repo_car(&car, "did:plc:someoneelse", &did_key) {
        Err(RepoError::DidMismatch { expected, found }) => {
            assert_eq!(expected, "did:plc:someoneelse");
            assert_eq!(found, DID);
        }
        other => panic!("{other:?}"),
    }
    // Signature from another key.
    let other = SigningKey::from_bytes(Curve::Secp256k1, &[43u8; 32]).unwrap();
    assert!(matches!(
        load_repo_car(&car, DID, &other.public_key().to_did_key()),
        Err(RepoError::BadSignature(_))
    ));
    // Unparseable key.
    assert!(matches!(
        load_repo_car(&car, DID, "did:web:example.com"),
        Err(RepoError::BadKey(_))
    ));

    // Missing record block.
    let parsed = read_car(&car).unwrap();
    let record_cid = *repo.records.keys().next().unwrap();
    let without = |drop: &Cid| {
        write_car(
            &parsed.roots,
            parsed
                .blocks
                .iter()
                .filter(|(c, _)| c != drop)
                .map(|(c, b)| (c, b.as_slice())),
        )
        .unwrap()
    };
    match load_repo_car(&without(&record_cid), DID, &did_key) {
        Err(RepoError::MissingBlock { what, cid }) => {
            assert_eq!(what, "record");
            assert_eq!(cid, record_cid);
        }
        other => panic!("{other:?}"),
    }
    // Missing MST root.
    match load_repo_car(&without(&repo.mst.root), DID, &did_key) {
        Err(RepoError::MissingBlock { what, cid }) => {
            assert_eq!(what, "MST node");
            assert_eq!(cid, repo.mst.root);
        }
        other => panic!("{other:?}"),
    }
    // Missing commit.
    assert!(matches!(
        load_repo_car(&without(&repo.commit_cid), DID, &did_key),
        Err(RepoError::MissingBlock { what: "commit", .. })
    ));
}

/// A correctly signed repo whose only record is `record` at `path`.
fn repo_with_raw_record(key: &SigningKey, path: &str, record: &Ipld) -> Vec<u8> {
    let (rcid, rbytes) = encode_block(record).unwrap();
    let mst = build_mst(&BTreeMap::from([(path.to_string(), rcid)])).unwrap();
    let commit = Commit::sign(DID, mst.root, REV, key).unwrap();
    let (ccid, cbytes) = commit.to_block().unwrap();
    let mut blocks: Vec<(Cid, Vec<u8>)> = vec![(ccid, cbytes), (rcid, rbytes)];
    blocks.extend(mst.blocks);
    write_car(&[ccid], blocks.iter().map(|(c, b)| (c, b.as_slice()))).unwrap()
}

#[test]
fn bad_records_are_reported_with_their_path() {
    let key = key(Curve::Secp256k1);
    let did_key = key.public_key().to_did_key();

    let not_a_map = repo_with_raw_record(&key, "app.bsky.feed.post/abc", &Ipld::String("x".into()));
    match load_repo_car(&not_a_map, DID, &did_key) {
        Err(RepoError::BadRecord { path, .. }) => assert_eq!(path, "app.bsky.feed.post/abc"),
        other => panic!("{other:?}"),
    }
    let float = Ipld::Map(BTreeMap::from([("a".to_string(), Ipld::Float(1.5))]));
    let with_float = repo_with_raw_record(&key, "app.bsky.feed.post/abc", &float);
    assert!(matches!(
        load_repo_car(&with_float, DID, &did_key),
        Err(RepoError::BadRecord { .. })
    ));
    let bad_path = repo_with_raw_record(&key, "not-a-path", &Ipld::Map(BTreeMap::new()));
    assert!(matches!(
        load_repo_car(&bad_path, DID, &did_key),
        Err(RepoError::BadRecord { .. })
    ));
}

#[test]
fn build_rejects_bad_input() {
    let key = key(Curve::Secp256k1);
    assert!(matches!(
        build_repo("not-a-did", &key, REV, records()),
        Err(RepoError::InvalidInput(_))
    ));
    assert!(matches!(
        build_repo(DID, &key, "bad-rev", records()),
        Err(RepoError::InvalidInput(_))
    ));
    assert!(matches!(
        build_repo(
            DID,
            &key,
            REV,
            vec![("bad".into(), "x".into(), Ipld::Map(BTreeMap::new()))]
        ),
        Err(RepoError::InvalidInput(_))
    ));
    assert!(matches!(
        build_repo(
            DID,
            &key,
            REV,
            vec![("app.bsky.feed.post".into(), "x".into(), Ipld::Integer(1))]
        ),
        Err(RepoError::BadRecord { .. })
    ));
}

#[test]
fn diff_car_has_commit_and_only_new_blocks() {
    let key = key(Curve::Secp256k1);
    let v1 = build_repo(DID, &key, REV, records()).unwrap();
    let mut more = records();
    let new_post = json_to_ipld(&json!({"$type": "app.bsky.feed.post", "text": "second",
                                        "createdAt": "2024-01-02T00:00:00.000Z"}))
    .unwrap();
    more.push((
        "app.bsky.feed.post".into(),
        "3l6sjhvqoncq2".into(),
        new_post.clone(),
    ));
    let v2 = build_repo(DID, &key, "3l6sjhvqoncr2", more).unwrap();

    let diff = read_car(&v2.diff_car(Some(&v1)).unwrap()).unwrap();
    assert_eq!(diff.roots, vec![v2.commit_cid]);
    let map = diff.block_map();
    assert!(map.contains_key(&v2.commit_cid));
    assert!(map.contains_key(&v2.mst.root));
    assert!(map.contains_key(&encode_block(&new_post).unwrap().0));
    for old in v1.records.keys() {
        assert!(!map.contains_key(old), "unchanged record resent");
    }
    assert!(map.len() < v2.blocks().unwrap().len());
}
