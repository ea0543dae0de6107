//! Loading a downloaded repository: read the CAR, check the commit's DID, verify its signature,
//! walk every MST leaf and decode the records of the forwarded collections.
//!
//! The stages fail with different errors because they mean different things to an operator: a
//! CAR that cannot be read ([`LoadError::Parse`]) is usually a broken download or PDS, a commit
//! that does not verify ([`LoadError::Verification`]) is a wrong key, a wrong DID or tampering.
//! One record that cannot be decoded is not the repository's failure: it is left out and
//! reported in [`Repo::invalid`].

use rsky_atproto::cbor::record_cbor_to_json;
use rsky_atproto::crypto::PublicKey;
use rsky_atproto::mst::{walk_mst, MstError};
use rsky_atproto::repo::{read_repo_commit, RepoCommit, RepoError};
use rsky_atproto::syntax::{is_forwarded_collection, split_repo_path};

/// Why a repository CAR was refused.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The CAR, an MST node or a record could not be read.
    #[error("cannot read the repository of {did}: {source}")]
    Parse {
        /// The DID being backfilled.
        did: String,
        /// What was wrong.
        source: Box<RepoError>,
    },
    /// The commit is for another DID, or its signature does not verify with the DID's key.
    #[error("the repository of {did} does not verify: {source}")]
    Verification {
        /// The DID being backfilled.
        did: String,
        /// What was wrong.
        source: Box<RepoError>,
    },
}

/// One forwarded record of a repository.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Collection NSID.
    pub collection: String,
    /// Record key.
    pub rkey: String,
    /// Record CID, as a string.
    pub cid: String,
    /// The record as AT Protocol JSON (`$link`, `$bytes`).
    pub record: serde_json::Value,
}

/// A verified repository, its forwarded records decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct Repo {
    /// The repository's DID (equal to the commit's).
    pub did: String,
    /// CID of the signed commit.
    pub commit: String,
    /// Revision of the commit.
    pub rev: String,
    /// The forwarded records, in key order.
    pub records: Vec<Record>,
    /// How many records were left out because of their collection.
    pub filtered: u64,
    /// The records left out because they are invalid: the path and why.
    pub invalid: Vec<(String, String)>,
}

/// Reads and verifies the repository CAR of `did`, signed by `signing_key` (`did:key:...`).
/// The CAR is taken by value and freed once its blocks are read, so that the download and the
/// decoded records are not held at the same time.
pub fn load(car: Vec<u8>, did: &str, signing_key: &str) -> Result<Repo, LoadError> {
    let parse = |source| LoadError::Parse {
        did: did.to_owned(),
        source: Box::new(source),
    };
    let verification = |source| LoadError::Verification {
        did: did.to_owned(),
        source: Box::new(source),
    };
    let RepoCommit {
        cid: commit_cid,
        commit,
        blocks,
    } = read_repo_commit(&car).map_err(parse)?;
    drop(car);
    if commit.did != did {
        return Err(verification(RepoError::DidMismatch {
            expected: did.to_owned(),
            found: commit.did.clone(),
        }));
    }
    let key =
        PublicKey::from_did_key(signing_key).map_err(|e| verification(RepoError::BadKey(e)))?;
    commit.verify(&key).map_err(verification)?;
    let leaves = walk_mst(&commit.data, &blocks).map_err(|e| {
        parse(match e {
            MstError::MissingBlock(cid) => RepoError::MissingBlock {
                what: "MST node",
                cid,
            },
            other => RepoError::InvalidMst(other),
        })
    })?;
    let mut records = Vec::with_capacity(leaves.len());
    let mut filtered = 0;
    // One invalid record is skipped (and reported), as the ingester skips a bad operation; the
    // rest of the repository is still written. A missing block is a broken CAR, not a bad record.
    let mut invalid = Vec::new();
    for (path, cid) in leaves {
        let (collection, rkey) = match split_repo_path(&path) {
            Ok(parts) => parts,
            Err(e) => {
                invalid.push((path.clone(), e.to_string()));
                continue;
            }
        };
        if !is_forwarded_collection(collection) {
            filtered += 1;
            continue;
        }
        let bytes = blocks.get(&cid).ok_or_else(|| {
            parse(RepoError::MissingBlock {
                what: "record",
                cid,
            })
        })?;
        let record = match record_cbor_to_json(bytes) {
            Ok(record) => record,
            Err(e) => {
                invalid.push((path.clone(), e.to_string()));
                continue;
            }
        };
        records.push(Record {
            collection: collection.to_owned(),
            rkey: rkey.to_owned(),
            cid: cid.to_string(),
            record,
        });
    }
    Ok(Repo {
        did: did.to_owned(),
        commit: commit_cid.to_string(),
        rev: commit.rev,
        records,
        filtered,
        invalid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsky_atproto::crypto::{Curve, SigningKey};
    use rsky_atproto::repo::build_repo_car;
    use rsky_atproto::Ipld;
    use std::collections::BTreeMap;

    const DID: &str = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa";
    const REV: &str = "3jzfcijpj2z2a";

    fn record(text: &str) -> Ipld {
        Ipld::Map(BTreeMap::from([(
            "text".to_owned(),
            Ipld::String(text.to_owned()),
        )]))
    }

    fn car(key: &SigningKey, did: &str) -> Vec<u8> {
        build_repo_car(
            did,
            key,
            REV,
            [
                (
                    "app.bsky.feed.post".into(),
                    "3jzfcijpj2z2b".into(),
                    record("a"),
                ),
                (
                    "chat.bsky.actor.declaration".into(),
                    "self".into(),
                    record("b"),
                ),
                (
                    "com.example.thing".into(),
                    "3jzfcijpj2z2c".into(),
                    record("c"),
                ),
            ],
        )
        .unwrap()
    }

    #[test]
    fn forwards_app_and_chat_bsky_and_counts_the_rest_as_filtered() {
        let key = SigningKey::generate(Curve::Secp256k1).unwrap();
        let repo = load(car(&key, DID), DID, &key.public_key().to_did_key()).unwrap();
        let collections: Vec<_> = repo.records.iter().map(|r| r.collection.as_str()).collect();
        assert_eq!(
            collections,
            ["app.bsky.feed.post", "chat.bsky.actor.declaration"]
        );
        assert_eq!(repo.filtered, 1);
        assert_eq!(repo.rev, REV);
        assert_eq!(repo.records[0].record, serde_json::json!({"text": "a"}));
    }

    #[test]
    fn a_commit_for_another_did_is_a_verification_error() {
        let key = SigningKey::generate(Curve::P256).unwrap();
        let err = load(
            car(&key, "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"),
            DID,
            &key.public_key().to_did_key(),
        )
        .unwrap_err();
        assert!(matches!(err, LoadError::Verification { .. }), "{err}");
    }

    #[test]
    fn a_signature_by_another_key_is_a_verification_error() {
        let key = SigningKey::generate(Curve::Secp256k1).unwrap();
        let other = SigningKey::generate(Curve::Secp256k1).unwrap();
        let err = load(car(&key, DID), DID, &other.public_key().to_did_key()).unwrap_err();
        assert!(matches!(err, LoadError::Verification { .. }), "{err}");
    }

    #[test]
    fn an_invalid_record_is_left_out_and_reported_and_the_rest_is_loaded() {
        let key = SigningKey::generate(Curve::Secp256k1).unwrap();
        let car = build_repo_car(
            DID,
            &key,
            REV,
            [
                (
                    "app.bsky.feed.post".into(),
                    "3jzfcijpj2z2b".into(),
                    record("a"),
                ),
                (
                    "app.bsky.feed.post".into(),
                    "3jzfcijpj2z2c".into(),
                    // Valid DAG-CBOR, outside the AT Protocol data model (no floats).
                    Ipld::Map(BTreeMap::from([("n".to_owned(), Ipld::Float(1.5))])),
                ),
            ],
        )
        .unwrap();
        let repo = load(car, DID, &key.public_key().to_did_key()).unwrap();
        assert_eq!(repo.records.len(), 1);
        assert_eq!(repo.records[0].rkey, "3jzfcijpj2z2b");
        assert_eq!(repo.invalid.len(), 1);
        assert_eq!(repo.invalid[0].0, "app.bsky.feed.post/3jzfcijpj2z2c");
    }

    #[test]
    fn a_truncated_car_is_a_parse_error() {
        let key = SigningKey::generate(Curve::Secp256k1).unwrap();
        let car = car(&key, DID);
        let err = load(
            car[..car.len() - 10].to_vec(),
            DID,
            &key.public_key().to_did_key(),
        )
        .unwrap_err();
        assert!(matches!(err, LoadError::Parse { .. }), "{err}");
    }
}
