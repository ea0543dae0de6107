//! Identifier syntax checks against every line of the interop syntax fixtures.

use rsky_atproto::syntax::*;

type Check = fn(&str) -> Result<(), SyntaxError>;

fn lines(name: &str) -> Vec<String> {
    let path = format!(
        "{}/tests/fixtures/syntax/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).unwrap();
    text.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

fn check(kind: &str, f: Check) {
    let valid = lines(&format!("{kind}_syntax_valid.txt"));
    let invalid = lines(&format!("{kind}_syntax_invalid.txt"));
    assert!(!valid.is_empty() && !invalid.is_empty());
    for l in &valid {
        if let Err(e) = f(l) {
            panic!("{kind}: valid {l:?} rejected: {e}");
        }
    }
    for l in &invalid {
        assert!(f(l).is_err(), "{kind}: invalid {l:?} accepted");
    }
}

#[test]
fn did_fixtures() {
    check("did", validate_did);
}

#[test]
fn handle_fixtures() {
    check("handle", validate_handle);
}

#[test]
fn nsid_fixtures() {
    check("nsid", validate_nsid);
}

#[test]
fn aturi_fixtures() {
    check("aturi", validate_at_uri);
}

#[test]
fn recordkey_fixtures() {
    check("recordkey", validate_record_key);
}

#[test]
fn tid_fixtures() {
    check("tid", validate_tid);
}

#[test]
fn cid_fixtures() {
    check("cid", validate_cid_syntax);
}

#[test]
fn errors_name_the_problem() {
    let e = validate_did("did:METHOD:val").unwrap_err();
    assert_eq!(e.kind, "DID");
    assert!(e.to_string().contains("lowercase"), "{e}");
    let e = validate_handle("john.0").unwrap_err();
    assert!(e.to_string().contains("start with a letter"), "{e}");
}

#[test]
fn tid_generation_round_trips_and_sorts() {
    let t1 = tid_from_parts(1_700_000_000_000_000, 7);
    validate_tid(&t1).unwrap();
    assert_eq!(tid_parts(&t1).unwrap(), (1_700_000_000_000_000, 7));
    let t2 = tid_from_parts(1_700_000_000_000_001, 0);
    assert!(t2 > t1, "TIDs sort by time");
    assert_eq!(tid_from_parts(0, 0), "2222222222222");
    // Clock id is limited to 10 bits, timestamp to 53 bits.
    assert_eq!(tid_parts(&tid_from_parts(5, 0x7ff)).unwrap(), (5, 0x3ff));
    let now = tid_now(1);
    validate_tid(&now).unwrap();
    assert!(now > t1);
}

#[test]
fn repo_paths_and_forwarded_collections() {
    assert_eq!(
        split_repo_path("app.bsky.feed.post/3jzfcijpj2z2a").unwrap(),
        ("app.bsky.feed.post", "3jzfcijpj2z2a")
    );
    assert!(split_repo_path("app.bsky.feed.post").is_err());
    assert!(split_repo_path("app.bsky.feed.post/a/b").is_err());
    assert!(is_forwarded_collection("app.bsky.feed.post"));
    assert!(is_forwarded_collection("chat.bsky.actor.declaration"));
    assert!(!is_forwarded_collection("com.atproto.lexicon.schema"));
    assert!(!is_forwarded_collection("app.bskyx.feed.post"));
}
