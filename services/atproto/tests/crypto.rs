//! Keys, signatures and did:key.

use rsky_atproto::crypto::{Curve, KeyError, PublicKey, SigningKey};

// Published did:key examples from the atproto cryptography spec.
const K256_DID_KEY: &str = "did:key:zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc";
const P256_DID_KEY: &str = "did:key:zDnaembgSGUhZULN2Caob4HLJPaxBh92N7rtH21TErzqf8HQo";

#[test]
fn parses_spec_did_keys_and_re_encodes_them() {
    let k = PublicKey::from_did_key(K256_DID_KEY).unwrap();
    assert_eq!(k.curve(), Curve::Secp256k1);
    assert_eq!(k.to_did_key(), K256_DID_KEY);
    assert_eq!(k.to_compressed().len(), 33);
    let p = PublicKey::from_did_key(P256_DID_KEY).unwrap();
    assert_eq!(p.curve(), Curve::P256);
    assert_eq!(p.to_did_key(), P256_DID_KEY);
}

#[test]
fn sign_and_verify_both_curves() {
    for curve in [Curve::Secp256k1, Curve::P256] {
        let key = SigningKey::from_bytes(curve, &[7u8; 32]).unwrap();
        let public = key.public_key();
        let did_key = public.to_did_key();
        assert!(did_key.starts_with(match curve {
            Curve::Secp256k1 => "did:key:zQ3s",
            Curve::P256 => "did:key:zDna",
        }));
        let parsed = PublicKey::from_did_key(&did_key).unwrap();
        assert_eq!(parsed, public);

        let sig = key.sign(b"message").unwrap();
        parsed.verify(b"message", &sig).unwrap();
        assert_eq!(
            parsed.verify(b"other message", &sig),
            Err(KeyError::InvalidSignature)
        );
        assert_eq!(
            parsed.verify(b"message", &sig[..63]),
            Err(KeyError::BadSignatureLength(63))
        );
        let other = SigningKey::generate(curve).unwrap();
        assert_eq!(
            other.public_key().verify(b"message", &sig),
            Err(KeyError::InvalidSignature)
        );
        // Private key bytes round trip.
        let again = SigningKey::from_bytes(curve, &key.to_bytes()).unwrap();
        assert_eq!(again.public_key(), public);
    }
}

#[test]
fn high_s_signatures_are_rejected() {
    // n - s turns a low-S signature into the equivalent high-S one.
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
}

#[test]
fn bad_did_keys_are_errors() {
    assert!(matches!(
        PublicKey::from_did_key("did:plc:abc"),
        Err(KeyError::NotDidKey(_))
    ));
    assert!(matches!(
        PublicKey::from_did_key("did:key:Q3shqwJEJ"),
        Err(KeyError::NotDidKey(_))
    ));
    assert!(matches!(
        PublicKey::from_did_key("did:key:z0OIl"),
        Err(KeyError::BadBase58(_))
    ));
    // ed25519-pub (0xed) is not supported.
    let ed = format!(
        "did:key:z{}",
        bs58::encode([0xed, 0x01, 1, 2, 3]).into_string()
    );
    assert!(matches!(
        PublicKey::from_did_key(&ed),
        Err(KeyError::UnsupportedKeyType(_))
    ));
    // Truncated: fewer bytes than a multicodec prefix (atrium-crypto panics here).
    for truncated in ["did:key:z", "did:key:z2h"] {
        assert!(
            matches!(
                PublicKey::from_did_key(truncated),
                Err(KeyError::UnsupportedKeyType(_))
            ),
            "{truncated}"
        );
    }
    // Right prefix, wrong point.
    let bad_point = format!(
        "did:key:z{}",
        bs58::encode([0xe7, 0x01, 0x02, 0x00, 0x00]).into_string()
    );
    assert_eq!(
        PublicKey::from_did_key(&bad_point),
        Err(KeyError::BadPublicKey { curve: "secp256k1" })
    );
    assert!(matches!(
        SigningKey::from_bytes(Curve::P256, &[0u8; 32]),
        Err(KeyError::BadPrivateKey { .. })
    ));
    assert!(SigningKey::from_bytes(Curve::Secp256k1, &[1u8; 31]).is_err());
}
