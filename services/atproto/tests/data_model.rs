//! DAG-CBOR / CID / JSON conversion against the interop data-model fixtures.

use rsky_atproto::cbor::{
    base64_decode, cid_for_cbor, cid_for_raw, from_dag_cbor, ipld_to_json, json_to_ipld, parse_cid,
    record_cbor_to_json, record_json_to_cbor, to_dag_cbor, DataModelError, Ipld,
};
use serde_json::Value;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/data-model/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn fixtures_json_cbor_cid_agree() {
    let vectors = fixture("data-model-fixtures.json");
    let vectors = vectors.as_array().unwrap();
    assert!(vectors.len() >= 3);
    for v in vectors {
        let json = &v["json"];
        let cbor = base64_decode(v["cbor_base64"].as_str().unwrap()).unwrap();
        let cid = v["cid"].as_str().unwrap();

        // JSON -> IPLD -> DAG-CBOR matches the fixture bytes and CID.
        let ipld = json_to_ipld(json).unwrap();
        let encoded = to_dag_cbor(&ipld).unwrap();
        assert_eq!(encoded, cbor, "cbor for {json}");
        assert_eq!(cid_for_cbor(&encoded).to_string(), cid);

        // DAG-CBOR -> IPLD -> JSON gives the fixture JSON back.
        let decoded: Ipld = from_dag_cbor(&cbor).unwrap();
        assert_eq!(decoded, ipld);
        assert_eq!(&ipld_to_json(&decoded).unwrap(), json);
        assert_eq!(&record_cbor_to_json(&cbor).unwrap(), json);

        let (rcid, rbytes) = record_json_to_cbor(json).unwrap();
        assert_eq!(rcid.to_string(), cid);
        assert_eq!(rbytes, cbor);
    }
}

#[test]
fn valid_documents_are_accepted_and_round_trip() {
    let docs = fixture("data-model-valid.json");
    for doc in docs.as_array().unwrap() {
        let ipld =
            json_to_ipld(&doc["json"]).unwrap_or_else(|e| panic!("{} rejected: {e}", doc["note"]));
        let bytes = to_dag_cbor(&ipld).unwrap();
        let back: Ipld = from_dag_cbor(&bytes).unwrap();
        assert_eq!(back, ipld, "{}", doc["note"]);
        // Integer-like floats become integers; everything else is unchanged.
        let json = ipld_to_json(&back).unwrap();
        assert_eq!(json_to_ipld(&json).unwrap(), ipld);
    }
    let float_like = docs
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["note"] == "float, but integer-like")
        .unwrap();
    let ipld = json_to_ipld(&float_like["json"]).unwrap();
    let Ipld::Map(top) = ipld else { panic!() };
    let Ipld::Map(rcrd) = &top["rcrd"] else {
        panic!()
    };
    assert_eq!(rcrd["a"], Ipld::Integer(123));
}

#[test]
fn invalid_documents_are_rejected() {
    let docs = fixture("data-model-invalid.json");
    let docs = docs.as_array().unwrap();
    assert!(docs.len() >= 10);
    for doc in docs {
        let result = json_to_ipld(&doc["json"]);
        assert!(result.is_err(), "{} accepted", doc["note"]);
    }
}

#[test]
fn invalid_documents_report_the_right_problem() {
    let docs = fixture("data-model-invalid.json");
    let find = |note: &str| {
        let doc = docs
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["note"] == note)
            .unwrap();
        json_to_ipld(&doc["json"]).unwrap_err()
    };
    assert_eq!(
        find("top-level not an object"),
        DataModelError::NotAnObject("string")
    );
    assert!(matches!(find("float"), DataModelError::Float { .. }));
    assert!(matches!(
        find("record with $type null"),
        DataModelError::BadType { .. }
    ));
    assert!(matches!(
        find("blob with missing key"),
        DataModelError::BadBlob { .. }
    ));
    assert!(matches!(
        find("bytes with extra fields"),
        DataModelError::BadBytes { .. }
    ));
    assert!(matches!(
        find("link with bogus CID"),
        DataModelError::BadLink { .. }
    ));
    let msg = find("float").to_string();
    assert!(msg.contains("123.456") && msg.contains("rcrd.a"), "{msg}");
}

#[test]
fn ipld_float_is_not_valid_json_form() {
    let ipld = Ipld::Map([("a".to_string(), Ipld::Float(1.5))].into_iter().collect());
    assert!(matches!(
        ipld_to_json(&ipld),
        Err(DataModelError::Float { .. })
    ));
}

#[test]
fn raw_cid_and_parse() {
    let cid = cid_for_raw(b"hello world");
    assert_eq!(cid.codec(), 0x55);
    assert_eq!(
        cid.to_string(),
        "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
    );
    assert_eq!(parse_cid(&cid.to_string()).unwrap(), cid);
    assert!(parse_cid("QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR").is_err());
    assert!(parse_cid("not a cid").is_err());
}

#[test]
fn garbled_cbor_is_an_error() {
    let vectors = fixture("data-model-fixtures.json");
    let cbor = base64_decode(vectors[1]["cbor_base64"].as_str().unwrap()).unwrap();
    for cut in 0..cbor.len() {
        assert!(from_dag_cbor::<Ipld>(&cbor[..cut]).is_err(), "prefix {cut}");
    }
    let mut trailing = cbor.clone();
    trailing.push(0);
    assert!(from_dag_cbor::<Ipld>(&trailing).is_err());
    assert!(record_cbor_to_json(&[0xff, 0x00]).is_err());
    // A CBOR string is not a record.
    assert!(record_cbor_to_json(&to_dag_cbor("x").unwrap()).is_err());
}

#[test]
fn deeply_nested_input_is_an_error_not_a_stack_overflow() {
    let mut lists = vec![0x81u8; 200_000];
    lists.push(0);
    assert!(from_dag_cbor::<Ipld>(&lists).is_err());
    let mut maps = [0xa1u8, 0x61, b'a'].repeat(100_000);
    maps.push(0);
    assert!(record_cbor_to_json(&maps).is_err());
}
