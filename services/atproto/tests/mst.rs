//! MST construction against the interop MST and commit-proof fixtures.

use std::collections::{BTreeMap, BTreeSet};

use rsky_atproto::cbor::parse_cid;
use rsky_atproto::mst::{
    build_mst, common_prefix_len, key_height, mst_node_cids, walk_mst, MstError, NodeData,
};
use rsky_atproto::Cid;
use serde_json::Value;

fn fixture(path: &str) -> Value {
    let path = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn key_heights_match_fixture() {
    let cases = fixture("mst/key_heights.json");
    for c in cases.as_array().unwrap() {
        let key = c["key"].as_str().unwrap();
        assert_eq!(
            u64::from(key_height(key.as_bytes())),
            c["height"].as_u64().unwrap(),
            "height of {key:?}"
        );
    }
}

#[test]
fn common_prefix_matches_fixture() {
    let cases = fixture("mst/common_prefix.json");
    for c in cases.as_array().unwrap() {
        let (l, r) = (c["left"].as_str().unwrap(), c["right"].as_str().unwrap());
        assert_eq!(
            common_prefix_len(l.as_bytes(), r.as_bytes()) as u64,
            c["len"].as_u64().unwrap(),
            "{l:?} vs {r:?}"
        );
    }
}

fn tree(keys: &BTreeSet<String>, leaf: Cid) -> BTreeMap<String, Cid> {
    keys.iter().map(|k| (k.clone(), leaf)).collect()
}

#[test]
fn commit_proof_roots_are_reproduced() {
    let cases = fixture("firehose/commit-proof-fixtures.json");
    let cases = cases.as_array().unwrap();
    assert!(cases.len() >= 6);
    for c in cases {
        let name = c["comment"].as_str().unwrap();
        let leaf = parse_cid(c["leafValue"].as_str().unwrap()).unwrap();
        let strs = |f: &str| -> Vec<String> {
            c[f].as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap().to_string())
                .collect()
        };
        let mut keys: BTreeSet<String> = strs("keys").into_iter().collect();
        let before = build_mst(&tree(&keys, leaf)).unwrap();
        assert_eq!(
            before.root.to_string(),
            c["rootBeforeCommit"].as_str().unwrap(),
            "{name}: root before"
        );
        for k in strs("adds") {
            keys.insert(k);
        }
        for k in strs("dels") {
            keys.remove(&k);
        }
        let after = build_mst(&tree(&keys, leaf)).unwrap();
        assert_eq!(
            after.root.to_string(),
            c["rootAfterCommit"].as_str().unwrap(),
            "{name}: root after"
        );

        // Every block of the fixture's proof is a node of one of the two trees.
        for b in strs("blocksInProof") {
            let cid = parse_cid(&b).unwrap();
            assert!(
                before.blocks.contains_key(&cid) || after.blocks.contains_key(&cid),
                "{name}: proof block {b} not produced"
            );
        }

        // Walking the built tree yields exactly the key set, in order.
        let walked = walk_mst(&after.root, &after.blocks).unwrap();
        let walked_keys: Vec<&String> = walked.iter().map(|(k, _)| k).collect();
        assert_eq!(walked_keys, keys.iter().collect::<Vec<_>>(), "{name}");
        assert!(walked.iter().all(|(_, v)| *v == leaf));
        let nodes = mst_node_cids(&after.root, &after.blocks).unwrap();
        assert_eq!(nodes.len(), after.blocks.len(), "{name}: no stray blocks");
    }
}

#[test]
fn empty_tree_has_known_root() {
    let mst = build_mst(&BTreeMap::new()).unwrap();
    // {l: null, e: []}
    assert_eq!(
        mst.root.to_string(),
        "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
    );
    assert!(walk_mst(&mst.root, &mst.blocks).unwrap().is_empty());
}

#[test]
fn large_tree_walks_back_and_is_order_independent() {
    let path = format!(
        "{}/tests/fixtures/mst/example_keys.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    let keys: Vec<String> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    assert!(keys.len() > 100);
    let leaf = parse_cid("bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454").unwrap();
    let all: BTreeMap<String, Cid> = keys.iter().map(|k| (k.clone(), leaf)).collect();
    let mst = build_mst(&all).unwrap();
    let walked = walk_mst(&mst.root, &mst.blocks).unwrap();
    assert_eq!(walked.len(), all.len());
    assert!(walked.iter().map(|(k, _)| k).eq(all.keys()));

    // Removing then re-adding a key gives the same root.
    let mut fewer = all.clone();
    fewer.remove(&keys[keys.len() / 2]);
    let smaller = build_mst(&fewer).unwrap();
    assert_ne!(smaller.root, mst.root);
    fewer.insert(keys[keys.len() / 2].clone(), leaf);
    assert_eq!(build_mst(&fewer).unwrap().root, mst.root);
}

#[test]
fn walk_reports_missing_and_garbled_nodes() {
    let leaf = parse_cid("bafyreie5cvv4h45feadgeuwhbcutmh6t2ceseocckahdoe6uat64zmz454").unwrap();
    let keys: BTreeMap<String, Cid> = ["A0/374913", "B1/986427", "C0/451630", "D2/269196"]
        .iter()
        .map(|k| (k.to_string(), leaf))
        .collect();
    let mst = build_mst(&keys).unwrap();
    assert!(mst.blocks.len() > 1);

    // Drop a non-root node: the walk names the missing block.
    let child = *mst.blocks.keys().find(|c| **c != mst.root).unwrap();
    let mut missing = mst.blocks.clone();
    missing.remove(&child);
    assert_eq!(
        walk_mst(&mst.root, &missing).unwrap_err(),
        MstError::MissingBlock(child)
    );

    // Replace the root with garbage.
    let mut garbled = mst.blocks.clone();
    garbled.insert(mst.root, vec![0xa1, 0x61]);
    assert!(matches!(
        walk_mst(&mst.root, &garbled).unwrap_err(),
        MstError::BadNode { .. }
    ));

    // A node whose prefix length points past the previous key.
    let bad = NodeData {
        l: None,
        e: vec![rsky_atproto::mst::TreeEntry {
            p: 3,
            k: b"x".to_vec(),
            v: leaf,
            t: None,
        }],
    };
    let (cid, bytes) = rsky_atproto::cbor::encode_block(&bad).unwrap();
    let blocks = BTreeMap::from([(cid, bytes)]);
    assert!(matches!(
        walk_mst(&cid, &blocks).unwrap_err(),
        MstError::BadNode { .. }
    ));

    // Out-of-order keys within a node.
    let unordered = NodeData {
        l: None,
        e: vec![
            rsky_atproto::mst::TreeEntry {
                p: 0,
                k: b"b".to_vec(),
                v: leaf,
                t: None,
            },
            rsky_atproto::mst::TreeEntry {
                p: 0,
                k: b"a".to_vec(),
                v: leaf,
                t: None,
            },
        ],
    };
    let (cid, bytes) = rsky_atproto::cbor::encode_block(&unordered).unwrap();
    let blocks = BTreeMap::from([(cid, bytes)]);
    assert!(matches!(
        walk_mst(&cid, &blocks).unwrap_err(),
        MstError::KeysOutOfOrder { .. }
    ));

    assert_eq!(
        build_mst(&BTreeMap::from([(String::new(), leaf)])).unwrap_err(),
        MstError::EmptyKey
    );
}
