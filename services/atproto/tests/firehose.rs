//! Event-stream frames: exact header bytes, round trips, decode errors.

use std::collections::BTreeMap;

use rsky_atproto::cbor::{json_to_ipld, to_dag_cbor, Ipld};
use rsky_atproto::crypto::{Curve, SigningKey};
use rsky_atproto::firehose::*;
use rsky_atproto::repo::build_repo;
use serde_json::json;

const DID: &str = "did:plc:w4xbfzo7kqfes5zb7r6qv3rw";

fn commit_event() -> CommitEvent {
    let key = SigningKey::from_bytes(Curve::Secp256k1, &[5u8; 32]).unwrap();
    let post = json_to_ipld(&json!({"$type": "app.bsky.feed.post", "text": "hi",
                                    "createdAt": "2024-01-01T00:00:00.000Z"}))
    .unwrap();
    let repo = build_repo(
        DID,
        &key,
        "3l6sjhvqonco2",
        vec![("app.bsky.feed.post".into(), "3l6sjhvqonco2".into(), post)],
    )
    .unwrap();
    let rcid = *repo.paths.values().next().unwrap();
    CommitEvent {
        seq: 42,
        rebase: false,
        too_big: false,
        repo: DID.into(),
        commit: repo.commit_cid,
        rev: "3l6sjhvqonco2".into(),
        since: None,
        blocks: repo.to_car().unwrap(),
        ops: vec![
            RepoOp {
                action: OpAction::Create,
                path: "app.bsky.feed.post/3l6sjhvqonco2".into(),
                cid: Some(rcid),
                prev: None,
            },
            RepoOp {
                action: OpAction::Delete,
                path: "app.bsky.feed.like/3l6sjhvqoncp2".into(),
                cid: None,
                prev: Some(rcid),
            },
        ],
        blobs: vec![],
        time: "2024-01-01T00:00:00.000Z".into(),
        prev_data: None,
    }
}

#[test]
fn commit_frame_header_bytes_and_round_trip() {
    let event = commit_event();
    let frame = RepoFrame::Commit(Box::new(event.clone()));
    let bytes = encode_repo_frame(&frame).unwrap();
    // {"t": "#commit", "op": 1}: keys in DAG-CBOR order (shorter first).
    let header = b"\xa2\x61t\x67#commit\x62op\x01";
    assert_eq!(&bytes[..header.len()], header);
    let (h, off) = decode_header(&bytes).unwrap();
    assert_eq!(
        h,
        FrameHeader {
            op: 1,
            t: Some("#commit".into())
        }
    );
    assert_eq!(off, header.len());

    let decoded = decode_repo_frame(&bytes).unwrap();
    assert_eq!(decoded, frame);
    assert_eq!(decoded.seq(), Some(42));
    assert_eq!(decoded.type_name(), "#commit");

    // Body field names follow the lexicon.
    let body: Ipld = rsky_atproto::cbor::from_dag_cbor(&bytes[off..]).unwrap();
    let Ipld::Map(m) = body else { panic!() };
    for k in [
        "seq", "rebase", "tooBig", "repo", "commit", "rev", "since", "blocks", "ops", "blobs",
        "time",
    ] {
        assert!(m.contains_key(k), "missing {k}");
    }
    assert_eq!(m["since"], Ipld::Null);
    assert!(!m.contains_key("prevData"));
    assert!(matches!(m["blocks"], Ipld::Bytes(_)));
    assert!(matches!(m["commit"], Ipld::Link(_)));
}

#[test]
fn commit_op_records_resolve_from_blocks() {
    let event = commit_event();
    let records = event.op_records().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].action, OpAction::Create);
    assert_eq!(records[0].collection, "app.bsky.feed.post");
    assert_eq!(records[0].rkey, "3l6sjhvqonco2");
    assert_eq!(records[0].record.as_ref().unwrap()["text"], "hi");
    assert_eq!(records[1].action, OpAction::Delete);
    assert!(records[1].record.is_none());

    let mut missing = event.clone();
    missing.ops[0].cid = Some(missing.commit);
    missing.blocks = rsky_atproto::car::write_car(&[], []).unwrap();
    assert!(matches!(
        missing.op_records(),
        Err(CommitRecordsError::MissingBlock { .. })
    ));
    let mut bad_car = event.clone();
    bad_car.blocks.truncate(10);
    assert!(matches!(
        bad_car.op_records(),
        Err(CommitRecordsError::Car(_))
    ));
    let mut no_cid = event;
    no_cid.ops[0].cid = None;
    assert!(matches!(
        no_cid.op_records(),
        Err(CommitRecordsError::MissingCid { .. })
    ));
}

#[test]
fn other_repo_frames_round_trip() {
    let frames = vec![
        RepoFrame::Identity(IdentityEvent {
            seq: 1,
            did: DID.into(),
            time: "2024-01-01T00:00:00Z".into(),
            handle: Some("alice.test".into()),
        }),
        RepoFrame::Account(AccountEvent {
            seq: 2,
            did: DID.into(),
            time: "2024-01-01T00:00:00Z".into(),
            active: false,
            status: Some("takendown".into()),
        }),
        RepoFrame::Sync(SyncEvent {
            seq: 3,
            did: DID.into(),
            blocks: commit_event().blocks,
            rev: "3l6sjhvqonco2".into(),
            time: "2024-01-01T00:00:00Z".into(),
        }),
        RepoFrame::Info(InfoEvent {
            name: "OutdatedCursor".into(),
            message: None,
        }),
        RepoFrame::Error(ErrorFrame {
            error: "FutureCursor".into(),
            message: Some("cursor in the future".into()),
        }),
    ];
    for f in frames {
        let bytes = encode_repo_frame(&f).unwrap();
        assert_eq!(decode_repo_frame(&bytes).unwrap(), f);
    }
    let err = encode_repo_frame(&RepoFrame::Error(ErrorFrame {
        error: "X".into(),
        message: None,
    }))
    .unwrap();
    assert_eq!(&err[..5], b"\xa1\x62op\x20", "error header is {{op: -1}}");
}

#[test]
fn label_frames_round_trip() {
    let frame = LabelFrame::Labels(LabelsEvent {
        seq: 9,
        labels: vec![
            Label {
                ver: Some(1),
                src: "did:plc:labeler".into(),
                uri: "at://did:plc:abc/app.bsky.feed.post/3l6sjhvqonco2".into(),
                cid: Some("bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454".into()),
                val: "spam".into(),
                neg: Some(false),
                cts: "2024-01-01T00:00:00Z".into(),
                exp: None,
                sig: Some(vec![1; 64]),
            },
            Label {
                ver: None,
                src: "did:plc:labeler".into(),
                uri: "did:plc:abc".into(),
                cid: None,
                val: "!hide".into(),
                neg: None,
                cts: "2024-01-01T00:00:00Z".into(),
                exp: Some("2025-01-01T00:00:00Z".into()),
                sig: None,
            },
        ],
    });
    let bytes = encode_label_frame(&frame).unwrap();
    assert_eq!(decode_label_frame(&bytes).unwrap(), frame);
    // A label frame on the repo stream is an unknown type there.
    assert!(matches!(
        decode_repo_frame(&bytes),
        Err(FrameError::UnknownType(t)) if t == "#labels"
    ));
}

fn raw_frame(header: Ipld, body: Ipld) -> Vec<u8> {
    let mut out = to_dag_cbor(&header).unwrap();
    out.extend(to_dag_cbor(&body).unwrap());
    out
}

fn map(entries: &[(&str, Ipld)]) -> Ipld {
    Ipld::Map(
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
    )
}

#[test]
fn decode_errors_are_distinguished() {
    // Header errors.
    assert!(matches!(decode_repo_frame(&[]), Err(FrameError::Header(_))));
    assert!(matches!(
        decode_repo_frame(&[0xff, 0x00]),
        Err(FrameError::Header(_))
    ));
    assert!(matches!(
        decode_repo_frame(&to_dag_cbor("just a string").unwrap()),
        Err(FrameError::Header(_))
    ));
    let body = map(&[("name", Ipld::String("x".into()))]);
    assert!(matches!(
        decode_repo_frame(&raw_frame(map(&[("op", Ipld::Integer(2))]), body.clone())),
        Err(FrameError::UnknownOp(2))
    ));
    assert!(matches!(
        decode_repo_frame(&raw_frame(map(&[("op", Ipld::Integer(1))]), body.clone())),
        Err(FrameError::MissingType)
    ));
    // Unknown type: the body is not even looked at.
    let unknown = raw_frame(
        map(&[
            ("op", Ipld::Integer(1)),
            ("t", Ipld::String("#future".into())),
        ]),
        Ipld::Null,
    );
    assert!(
        matches!(decode_repo_frame(&unknown), Err(FrameError::UnknownType(t)) if t == "#future")
    );
    // Body errors.
    let commit_header = map(&[
        ("op", Ipld::Integer(1)),
        ("t", Ipld::String("#commit".into())),
    ]);
    match decode_repo_frame(&raw_frame(commit_header.clone(), body)) {
        Err(FrameError::Body { t, reason }) => {
            assert_eq!(t, "#commit");
            assert!(!reason.is_empty());
        }
        other => panic!("{other:?}"),
    }
    let header_only = to_dag_cbor(&commit_header).unwrap();
    assert!(matches!(
        decode_repo_frame(&header_only),
        Err(FrameError::Body { .. })
    ));
    let mut trailing = encode_repo_frame(&RepoFrame::Info(InfoEvent {
        name: "x".into(),
        message: None,
    }))
    .unwrap();
    trailing.push(0x00);
    assert!(matches!(
        decode_repo_frame(&trailing),
        Err(FrameError::TrailingData { extra: 1, .. })
    ));
}

#[test]
fn every_truncation_of_a_commit_frame_is_an_error() {
    let bytes = encode_repo_frame(&RepoFrame::Commit(Box::new(commit_event()))).unwrap();
    for cut in 0..bytes.len() {
        assert!(decode_repo_frame(&bytes[..cut]).is_err(), "cut {cut}");
    }
    for i in (0..bytes.len()).step_by(7) {
        let mut g = bytes.clone();
        g[i] ^= 0xa5;
        let _ = decode_repo_frame(&g); // must not panic
    }
}

#[test]
fn decodes_commit_from_another_encoder_with_extra_fields() {
    // Older relays send a deprecated `prev` field, and newer ones `prevData`;
    // unknown fields are ignored.
    let event = commit_event();
    let body = map(&[
        ("seq", Ipld::Integer(7)),
        ("rebase", Ipld::Bool(false)),
        ("tooBig", Ipld::Bool(false)),
        ("repo", Ipld::String(DID.into())),
        ("commit", Ipld::Link(event.commit)),
        ("prev", Ipld::Null),
        ("rev", Ipld::String("3l6sjhvqonco2".into())),
        ("since", Ipld::String("3l6sjhvqonca2".into())),
        ("blocks", Ipld::Bytes(event.blocks.clone())),
        (
            "ops",
            Ipld::List(vec![map(&[
                ("action", Ipld::String("update".into())),
                (
                    "path",
                    Ipld::String("app.bsky.feed.post/3l6sjhvqonco2".into()),
                ),
                ("cid", Ipld::Link(event.ops[0].cid.unwrap())),
            ])]),
        ),
        ("blobs", Ipld::List(vec![])),
        ("time", Ipld::String("2024-01-01T00:00:00.000Z".into())),
        ("prevData", Ipld::Link(event.commit)),
        ("futureField", Ipld::Integer(1)),
    ]);
    let header = map(&[
        ("op", Ipld::Integer(1)),
        ("t", Ipld::String("#commit".into())),
    ]);
    let RepoFrame::Commit(c) = decode_repo_frame(&raw_frame(header.clone(), body)).unwrap() else {
        panic!("not a commit")
    };
    assert_eq!(c.seq, 7);
    assert_eq!(c.since.as_deref(), Some("3l6sjhvqonca2"));
    assert_eq!(c.ops[0].action, OpAction::Update);
    assert_eq!(c.prev_data, Some(event.commit));

    // An unknown op action is a body error.
    let bad_action = map(&[
        ("seq", Ipld::Integer(7)),
        ("repo", Ipld::String(DID.into())),
        ("commit", Ipld::Link(event.commit)),
        ("rev", Ipld::String("3l6sjhvqonco2".into())),
        ("blocks", Ipld::Bytes(vec![])),
        (
            "ops",
            Ipld::List(vec![map(&[
                ("action", Ipld::String("explode".into())),
                ("path", Ipld::String("a.b.c/d".into())),
                ("cid", Ipld::Null),
            ])]),
        ),
        ("time", Ipld::String("t".into())),
    ]);
    assert!(matches!(
        decode_repo_frame(&raw_frame(header, bad_action)),
        Err(FrameError::Body { .. })
    ));
}
