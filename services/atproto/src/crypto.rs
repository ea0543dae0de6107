//! Signing keys, signatures and `did:key` encoding.
//!
//! AT Protocol signatures are ECDSA over the sha256 of the message, in the
//! 64-byte compact `r || s` form with low-S normalisation, on secp256k1
//! (`k256`) or NIST P-256 (`p256`). Public keys are published as `did:key`:
//! `did:key:z` + base58btc(multicodec varint ‖ compressed SEC1 point), with
//! multicodec `0xe7` (secp256k1-pub) or `0x1200` (p256-pub).

use k256::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier};
use sha2::{Digest, Sha256};

/// Multicodec varint prefix of a compressed secp256k1 public key (0xe7).
const SECP256K1_PREFIX: [u8; 2] = [0xe7, 0x01];
/// Multicodec varint prefix of a compressed P-256 public key (0x1200).
const P256_PREFIX: [u8; 2] = [0x80, 0x24];

/// Errors from key handling, `did:key` parsing and signature checks.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// The string is not of the form `did:key:z...`.
    #[error("not a did:key with base58btc multibase ('did:key:z...'): {0:?}")]
    NotDidKey(String),
    /// The multibase payload is not valid base58btc.
    #[error("did:key payload is not valid base58btc: {0}")]
    BadBase58(String),
    /// The multicodec prefix names an unsupported key type.
    #[error("unsupported did:key multicodec prefix {0:02x?} (expected secp256k1-pub 0xe7 or p256-pub 0x1200)")]
    UnsupportedKeyType(Vec<u8>),
    /// The public key bytes are not a valid curve point.
    #[error("invalid {curve} public key bytes")]
    BadPublicKey {
        /// Curve name.
        curve: &'static str,
    },
    /// The private key bytes are not a valid scalar.
    #[error("invalid {curve} private key bytes (need 32 bytes, non-zero, below the curve order)")]
    BadPrivateKey {
        /// Curve name.
        curve: &'static str,
    },
    /// A signature was not 64 bytes of `r || s`.
    #[error("signature must be 64 bytes (compact r||s), got {0}")]
    BadSignatureLength(usize),
    /// The signature uses a high S value (not allowed in atproto).
    #[error("signature is not low-S normalised")]
    HighS,
    /// The signature does not verify against the key.
    #[error("signature does not verify")]
    InvalidSignature,
    /// Signing failed.
    #[error("signing failed: {0}")]
    Signing(String),
    /// The OS random source failed.
    #[error("random source failed: {0}")]
    Random(String),
}

/// Which elliptic curve a key is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Curve {
    /// secp256k1 (`ES256K`).
    Secp256k1,
    /// NIST P-256 (`ES256`).
    P256,
}

impl Curve {
    fn name(self) -> &'static str {
        match self {
            Curve::Secp256k1 => "secp256k1",
            Curve::P256 => "p256",
        }
    }
}

/// A private signing key on one of the atproto curves.
#[derive(Clone)]
pub enum SigningKey {
    /// secp256k1 key.
    Secp256k1(k256::ecdsa::SigningKey),
    /// P-256 key.
    P256(p256::ecdsa::SigningKey),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.public_key().to_did_key())
    }
}

impl SigningKey {
    /// Load a key from its 32-byte big-endian private scalar.
    pub fn from_bytes(curve: Curve, bytes: &[u8]) -> Result<Self, KeyError> {
        let bad = KeyError::BadPrivateKey {
            curve: curve.name(),
        };
        if bytes.len() != 32 {
            return Err(bad);
        }
        Ok(match curve {
            Curve::Secp256k1 => {
                SigningKey::Secp256k1(k256::ecdsa::SigningKey::from_slice(bytes).map_err(|_| bad)?)
            }
            Curve::P256 => {
                SigningKey::P256(p256::ecdsa::SigningKey::from_slice(bytes).map_err(|_| bad)?)
            }
        })
    }

    /// Generate a fresh random key from the OS random source.
    pub fn generate(curve: Curve) -> Result<Self, KeyError> {
        loop {
            let mut seed = [0u8; 32];
            getrandom::getrandom(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
            if let Ok(key) = Self::from_bytes(curve, &seed) {
                return Ok(key);
            }
        }
    }

    /// The 32-byte private scalar.
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        match self {
            SigningKey::Secp256k1(k) => out.copy_from_slice(&k.to_bytes()),
            SigningKey::P256(k) => out.copy_from_slice(&k.to_bytes()),
        }
        out
    }

    /// The curve of this key.
    pub fn curve(&self) -> Curve {
        match self {
            SigningKey::Secp256k1(_) => Curve::Secp256k1,
            SigningKey::P256(_) => Curve::P256,
        }
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        match self {
            SigningKey::Secp256k1(k) => PublicKey::Secp256k1(*k.verifying_key()),
            SigningKey::P256(k) => PublicKey::P256(*k.verifying_key()),
        }
    }

    /// Sign `message` (hashed with sha256) returning the 64-byte low-S compact signature.
    pub fn sign(&self, message: &[u8]) -> Result<[u8; 64], KeyError> {
        let digest = Sha256::digest(message);
        let mut out = [0u8; 64];
        match self {
            SigningKey::Secp256k1(k) => {
                let sig: k256::ecdsa::Signature = k
                    .sign_prehash(&digest)
                    .map_err(|e| KeyError::Signing(e.to_string()))?;
                let sig = sig.normalize_s().unwrap_or(sig);
                out.copy_from_slice(&sig.to_bytes());
            }
            SigningKey::P256(k) => {
                let sig: p256::ecdsa::Signature = k
                    .sign_prehash(&digest)
                    .map_err(|e| KeyError::Signing(e.to_string()))?;
                let sig = sig.normalize_s().unwrap_or(sig);
                out.copy_from_slice(&sig.to_bytes());
            }
        }
        Ok(out)
    }
}

/// A public verification key on one of the atproto curves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicKey {
    /// secp256k1 key.
    Secp256k1(k256::ecdsa::VerifyingKey),
    /// P-256 key.
    P256(p256::ecdsa::VerifyingKey),
}

impl PublicKey {
    /// Parse a SEC1 (compressed or uncompressed) public key.
    pub fn from_sec1_bytes(curve: Curve, bytes: &[u8]) -> Result<Self, KeyError> {
        let bad = KeyError::BadPublicKey {
            curve: curve.name(),
        };
        Ok(match curve {
            Curve::Secp256k1 => PublicKey::Secp256k1(
                k256::ecdsa::VerifyingKey::from_sec1_bytes(bytes).map_err(|_| bad)?,
            ),
            Curve::P256 => {
                PublicKey::P256(p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes).map_err(|_| bad)?)
            }
        })
    }

    /// The curve of this key.
    pub fn curve(&self) -> Curve {
        match self {
            PublicKey::Secp256k1(_) => Curve::Secp256k1,
            PublicKey::P256(_) => Curve::P256,
        }
    }

    /// The 33-byte compressed SEC1 encoding.
    pub fn to_compressed(&self) -> Vec<u8> {
        match self {
            PublicKey::Secp256k1(k) => k.to_encoded_point(true).as_bytes().to_vec(),
            PublicKey::P256(k) => k.to_encoded_point(true).as_bytes().to_vec(),
        }
    }

    /// The multibase (base58btc, `z...`) multikey encoding, without `did:key:`.
    pub fn to_multibase(&self) -> String {
        let mut bytes = match self {
            PublicKey::Secp256k1(_) => SECP256K1_PREFIX.to_vec(),
            PublicKey::P256(_) => P256_PREFIX.to_vec(),
        };
        bytes.extend_from_slice(&self.to_compressed());
        format!("z{}", bs58::encode(bytes).into_string())
    }

    /// The `did:key:z...` form of this key.
    pub fn to_did_key(&self) -> String {
        format!("did:key:{}", self.to_multibase())
    }

    /// Parse a multibase multikey (`z...`).
    pub fn from_multibase(s: &str) -> Result<Self, KeyError> {
        let Some(b58) = s.strip_prefix('z') else {
            return Err(KeyError::NotDidKey(s.to_string()));
        };
        let bytes = bs58::decode(b58)
            .into_vec()
            .map_err(|e| KeyError::BadBase58(e.to_string()))?;
        if let Some(point) = bytes.strip_prefix(&SECP256K1_PREFIX) {
            Self::from_sec1_bytes(Curve::Secp256k1, point)
        } else if let Some(point) = bytes.strip_prefix(&P256_PREFIX) {
            Self::from_sec1_bytes(Curve::P256, point)
        } else {
            Err(KeyError::UnsupportedKeyType(
                bytes.iter().take(2).copied().collect(),
            ))
        }
    }

    /// Parse a `did:key:z...` string.
    pub fn from_did_key(did_key: &str) -> Result<Self, KeyError> {
        let Some(mb) = did_key.strip_prefix("did:key:") else {
            return Err(KeyError::NotDidKey(did_key.to_string()));
        };
        Self::from_multibase(mb).map_err(|e| match e {
            KeyError::NotDidKey(_) => KeyError::NotDidKey(did_key.to_string()),
            other => other,
        })
    }

    /// Verify a 64-byte compact low-S signature over sha256(`message`).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), KeyError> {
        if signature.len() != 64 {
            return Err(KeyError::BadSignatureLength(signature.len()));
        }
        let digest = Sha256::digest(message);
        match self {
            PublicKey::Secp256k1(k) => {
                let sig = k256::ecdsa::Signature::from_slice(signature)
                    .map_err(|_| KeyError::InvalidSignature)?;
                if sig.normalize_s().is_some() {
                    return Err(KeyError::HighS);
                }
                k.verify_prehash(&digest, &sig)
                    .map_err(|_| KeyError::InvalidSignature)
            }
            PublicKey::P256(k) => {
                let sig = p256::ecdsa::Signature::from_slice(signature)
                    .map_err(|_| KeyError::InvalidSignature)?;
                if sig.normalize_s().is_some() {
                    return Err(KeyError::HighS);
                }
                k.verify_prehash(&digest, &sig)
                    .map_err(|_| KeyError::InvalidSignature)
            }
        }
    }
}
