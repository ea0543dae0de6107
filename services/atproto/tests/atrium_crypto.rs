//! atrium-crypto, the kept atproto crypto crate (on the same k256/p256), run through the fixtures
//! of tests/crypto.rs, to decide whether it can replace `rsky_atproto::crypto`.
//!
//! It agrees on every signature and did:key fixture (spec did:keys, RFC 6979 signatures byte for
//! byte, high-S and DER refused, bad prefixes and points refused), but it panics on a did:key
//! whose multikey decodes to fewer than two bytes (`parse_multikey` slices `decoded[..2]`): a
//! PLC document or a firehose `#identity` controls that string, and the services must not panic
//! on input. So crypto.rs stays ours (services/atproto/README.md says so); the last test here
//! fails when atrium-crypto stops panicking, the signal to switch.

use atrium_crypto::did::{format_did_key, parse_did_key};
use atrium_crypto::keypair::{Did, Keypair};
use atrium_crypto::verify::Verifier;
use atrium_crypto::Algorithm;
use rsky_atproto::crypto::{Curve, KeyError, PublicKey, SigningKey};

const K256_DID_KEY: &str = "did:key:zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc";
const P256_DID_KEY: &str = "did:key:zDnaembgSGUhZULN2Caob4HLJPaxBh92N7rtH21TErzqf8HQo";

fn algorithm(curve: Curve) -> Algorithm {
    match curve {
        Curve::Secp256k1 => Algorithm::Secp256k1,
        Curve::P256 => Algorithm::P256,
    }
}

#[test]
fn both_parse_and_re_encode_the_spec_did_keys() {
    for (did_key, curve) in [
        (K256_DID_KEY, Curve::Secp256k1),
        (P256_DID_KEY, Curve::P256),
    ] {
        let (alg, key) = parse_did_key(did_key).unwrap();
        assert_eq!(alg, algorithm(curve));
        assert_eq!(format_did_key(alg, &key).unwrap(), did_key);
        let ours = PublicKey::from_did_key(did_key).unwrap();
        assert_eq!(ours.curve(), curve);
        assert_eq!(ours.to_did_key(), did_key);
    }
}

#[test]
fn both_sign_the_same_low_s_bytes_and_verify_each_other() {
    for curve in [Curve::Secp256k1, Curve::P256] {
        let ours = SigningKey::from_bytes(curve, &[7u8; 32]).unwrap();
        let our_sig = ours.sign(b"message").unwrap();
        let (their_sig, their_did) = match curve {
            Curve::Secp256k1 => {
                let k = Keypair::<k256::Secp256k1>::import(&[7u8; 32]).unwrap();
                (k.sign(b"message").unwrap(), k.did())
            }
            Curve::P256 => {
                let k = Keypair::<p256::NistP256>::import(&[7u8; 32]).unwrap();
                (k.sign(b"message").unwrap(), k.did())
            }
        };
        // RFC 6979: deterministic, so the same key and message give the same signature.
        assert_eq!(their_sig, our_sig.to_vec(), "{curve:?}");
        assert_eq!(their_did, ours.public_key().to_did_key());
        let (alg, key) = parse_did_key(&their_did).unwrap();
        Verifier::default()
            .verify(alg, &key, b"message", &our_sig)
            .unwrap();
        assert!(Verifier::default()
            .verify(alg, &key, b"other message", &our_sig)
            .is_err());
        ours.public_key().verify(b"message", &their_sig).unwrap();
    }
}

#[test]
fn both_refuse_high_s() {
    const K256_N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36,
        0x41, 0x41,
    ];
    let key = SigningKey::from_bytes(Curve::Secp256k1, &[9u8; 32]).unwrap();
    let sig = key.sign(b"msg").unwrap();
    let mut high = sig;
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let v = i16::from(K256_N[i]) - i16::from(sig[32 + i]) - borrow;
        borrow = i16::from(v < 0);
        high[32 + i] = v.rem_euclid(256) as u8;
    }
    assert_eq!(key.public_key().verify(b"msg", &high), Err(KeyError::HighS));
    let (alg, public) = parse_did_key(&key.public_key().to_did_key()).unwrap();
    assert!(matches!(
        Verifier::default().verify(alg, &public, b"msg", &high),
        Err(atrium_crypto::Error::LowSSignatureNotAllowed)
    ));
}

#[test]
fn both_refuse_bad_did_keys() {
    let ed25519 = format!(
        "did:key:z{}",
        bs58::encode([0xed, 0x01, 1, 2, 3]).into_string()
    );
    let bad_point = format!(
        "did:key:z{}",
        bs58::encode([0xe7, 0x01, 0x02, 0x00, 0x00]).into_string()
    );
    for did_key in ["did:plc:abc", "did:key:z0OIl", &ed25519, &bad_point] {
        assert!(parse_did_key(did_key).is_err(), "atrium accepted {did_key}");
        assert!(
            PublicKey::from_did_key(did_key).is_err(),
            "we accepted {did_key}"
        );
    }
}

#[test]
fn atrium_crypto_panics_on_a_truncated_did_key_where_ours_returns_an_error() {
    let one_byte = format!("did:key:z{}", bs58::encode([0xe7]).into_string());
    for did_key in ["did:key:z", one_byte.as_str()] {
        assert!(
            matches!(
                PublicKey::from_did_key(did_key),
                Err(KeyError::UnsupportedKeyType(_))
            ),
            "{did_key}"
        );
        let owned = did_key.to_owned();
        let result = std::panic::catch_unwind(move || parse_did_key(&owned).is_err());
        assert!(
            result.is_err(),
            "atrium-crypto no longer panics on {did_key:?}: it can replace crypto.rs (see the README)"
        );
    }
}
