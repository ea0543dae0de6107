//! CARv1 reader/writer: round trips, exact bytes, truncated and garbled input.

use rsky_atproto::car::{read_car, write_car, CarError};
use rsky_atproto::cbor::{cid_for_cbor, cid_for_raw, encode_block, Ipld};
use rsky_atproto::Cid;

fn sample() -> (Vec<Cid>, Vec<(Cid, Vec<u8>)>) {
    let (c1, b1) = encode_block(&Ipld::String("hello".into())).unwrap();
    let (c2, b2) = encode_block(&Ipld::List(vec![Ipld::Link(c1), Ipld::Integer(7)])).unwrap();
    let raw = b"raw blob bytes".to_vec();
    let c3 = cid_for_raw(&raw);
    (vec![c2], vec![(c2, b2), (c1, b1), (c3, raw)])
}

fn write(roots: &[Cid], blocks: &[(Cid, Vec<u8>)]) -> Vec<u8> {
    write_car(roots, blocks.iter().map(|(c, b)| (c, b.as_slice()))).unwrap()
}

#[test]
fn round_trip_preserves_roots_blocks_and_order() {
    let (roots, blocks) = sample();
    let bytes = write(&roots, &blocks);
    let car = read_car(&bytes).unwrap();
    assert_eq!(car.roots, roots);
    assert_eq!(car.blocks, blocks);
    let map = car.block_map();
    assert_eq!(map.len(), 3);
    assert_eq!(map[&blocks[1].0], blocks[1].1);
}

#[test]
fn header_bytes_are_canonical() {
    let (c, _) = encode_block(&Ipld::Null).unwrap();
    let bytes = write(&[c], &[]);
    // varint(len) then {roots: [tag42 cid], version: 1} with keys sorted.
    let header_len = bytes[0] as usize;
    assert_eq!(bytes.len(), 1 + header_len);
    assert_eq!(bytes[1], 0xa2, "map of two entries");
    assert_eq!(&bytes[2..8], b"\x65roots");
    assert_eq!(&bytes[bytes.len() - 9..], b"\x67version\x01");
    let mut expected_cid = vec![0x00];
    expected_cid.extend(c.to_bytes());
    assert!(bytes.windows(expected_cid.len()).any(|w| w == expected_cid));
}

#[test]
fn every_truncation_is_an_error() {
    let (roots, blocks) = sample();
    let bytes = write(&roots, &blocks);
    // Cuts that fall exactly on a section boundary are valid shorter CARs.
    let mut boundaries = vec![];
    let mut acc = write(&roots, &[]).len();
    boundaries.push(acc);
    for i in 0..blocks.len() {
        acc = write(&roots, &blocks[..=i]).len();
        boundaries.push(acc);
    }
    for cut in 0..bytes.len() {
        let r = read_car(&bytes[..cut]);
        if boundaries.contains(&cut) {
            assert!(r.is_ok(), "cut {cut} at a boundary");
        } else {
            assert!(r.is_err(), "cut {cut} accepted");
        }
    }
    assert!(matches!(read_car(&[]), Err(CarError::Truncated(_))));
    assert!(matches!(
        read_car(&bytes[..bytes.len() - 1]),
        Err(CarError::Truncated(_))
    ));
}

#[test]
fn garbled_input_is_an_error_not_a_panic() {
    let (roots, blocks) = sample();
    let bytes = write(&roots, &blocks);
    // Flip each byte in turn: must never panic, and block bodies must fail the hash.
    for i in 0..bytes.len() {
        let mut g = bytes.clone();
        g[i] ^= 0x5a;
        let _ = read_car(&g);
    }
    // Corrupt the last byte (inside the raw block): hash mismatch.
    let mut g = bytes.clone();
    *g.last_mut().unwrap() ^= 1;
    assert_eq!(
        read_car(&g).unwrap_err(),
        CarError::HashMismatch { cid: blocks[2].0 }
    );
    // Overlong varint.
    assert!(matches!(
        read_car(&[0xff; 12]),
        Err(CarError::BadVarint { .. })
    ));
    // Header that is not a map.
    let mut not_header = vec![1u8, 0x01];
    not_header.extend([0u8; 0]);
    assert!(matches!(read_car(&not_header), Err(CarError::BadHeader(_))));
    // Version 2 header.
    let header = rsky_atproto::cbor::to_dag_cbor(&Ipld::Map(
        [
            ("version".to_string(), Ipld::Integer(2)),
            ("roots".to_string(), Ipld::List(vec![])),
        ]
        .into_iter()
        .collect(),
    ))
    .unwrap();
    let mut v2 = vec![header.len() as u8];
    v2.extend(header);
    assert_eq!(read_car(&v2).unwrap_err(), CarError::UnsupportedVersion(2));
    // A section whose CID is garbage.
    let mut bad_cid = write(&roots, &[]);
    bad_cid.extend([3, 0x01, 0xff, 0xff]);
    assert!(matches!(read_car(&bad_cid), Err(CarError::BadCid { .. })));
    // Error messages say what is wrong.
    let msg = read_car(&bytes[..bytes.len() - 3]).unwrap_err().to_string();
    assert!(msg.contains("truncated"), "{msg}");
}

#[test]
fn block_cids_are_checked() {
    let (roots, mut blocks) = sample();
    blocks[1].1 = b"\x64evil".to_vec();
    let bytes = write(&roots, &blocks);
    assert_eq!(
        read_car(&bytes).unwrap_err(),
        CarError::HashMismatch { cid: blocks[1].0 }
    );
    assert_ne!(cid_for_cbor(&blocks[1].1), blocks[1].0);
}
