//! CARv1 (Content Addressable aRchive) reading and writing.
//!
//! Layout: `varint(len) | DAG-CBOR header {version: 1, roots: [cid]}` followed
//! by sections `varint(len) | CID bytes | block bytes`. The reader works on a
//! whole in-memory buffer (firehose frames and repo exports arrive whole) and
//! checks that every sha2-256 block matches its CID.

use std::collections::BTreeMap;
use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::cbor::{from_dag_cbor, to_dag_cbor, verify_block, Cid};

/// Errors from reading or writing a CAR file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CarError {
    /// The input ended inside a varint, header or section.
    #[error("truncated CAR: {0}")]
    Truncated(String),
    /// A length prefix is not a valid unsigned varint.
    #[error("invalid varint at byte {offset}")]
    BadVarint {
        /// Byte offset of the varint.
        offset: usize,
    },
    /// The header is not a DAG-CBOR `{version, roots}` map.
    #[error("invalid CAR header: {0}")]
    BadHeader(String),
    /// The header version is not 1.
    #[error("unsupported CAR version {0} (only 1)")]
    UnsupportedVersion(u64),
    /// A section does not start with a valid CID.
    #[error("invalid CID in section at byte {offset}: {reason}")]
    BadCid {
        /// Byte offset of the section.
        offset: usize,
        /// What was wrong.
        reason: String,
    },
    /// A block's bytes do not hash to its CID.
    #[error("block {cid} does not match its hash")]
    HashMismatch {
        /// The CID given for the block.
        cid: Cid,
    },
    /// The header could not be encoded.
    #[error("CAR header encode failed: {0}")]
    Encode(String),
}

/// Blocks keyed by CID.
pub type BlockMap = BTreeMap<Cid, Vec<u8>>;

#[derive(Serialize, Deserialize)]
struct Header {
    version: u64,
    roots: Vec<Cid>,
}

/// A parsed CAR file: roots and blocks in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Car {
    /// Root CIDs from the header.
    pub roots: Vec<Cid>,
    /// Blocks in the order they appear.
    pub blocks: Vec<(Cid, Vec<u8>)>,
}

impl Car {
    /// The blocks as a map `CID -> bytes` (a later duplicate wins).
    pub fn block_map(&self) -> BlockMap {
        self.blocks.iter().cloned().collect()
    }

    /// Consume into a map `CID -> bytes`.
    pub fn into_block_map(self) -> BlockMap {
        self.blocks.into_iter().collect()
    }
}

/// Read an unsigned LEB128 varint at `*pos`, advancing it.
pub(crate) fn read_varint(data: &[u8], pos: &mut usize) -> Result<u64, CarError> {
    let start = *pos;
    let mut value: u64 = 0;
    for i in 0..10 {
        let Some(&byte) = data.get(*pos) else {
            return Err(CarError::Truncated(format!(
                "input ended inside varint at byte {start}"
            )));
        };
        *pos += 1;
        let bits = u64::from(byte & 0x7f);
        if i == 9 && byte > 1 {
            return Err(CarError::BadVarint { offset: start });
        }
        value |= bits << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(CarError::BadVarint { offset: start })
}

/// Append an unsigned LEB128 varint.
pub(crate) fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Read the length-prefixed chunk at `*pos`.
fn read_chunk<'a>(data: &'a [u8], pos: &mut usize, what: &str) -> Result<&'a [u8], CarError> {
    let start = *pos;
    let len = read_varint(data, pos)?;
    let remaining = (data.len() - *pos) as u64;
    if len > remaining {
        return Err(CarError::Truncated(format!(
            "{what} at byte {start} declares {len} bytes but only {remaining} remain"
        )));
    }
    let chunk = &data[*pos..*pos + len as usize];
    *pos += len as usize;
    Ok(chunk)
}

/// Parse a whole CARv1 buffer, validating header, sections and block hashes.
pub fn read_car(data: &[u8]) -> Result<Car, CarError> {
    let mut pos = 0;
    if data.is_empty() {
        return Err(CarError::Truncated("empty input".into()));
    }
    let header_bytes = read_chunk(data, &mut pos, "header")?;
    if header_bytes.is_empty() {
        return Err(CarError::BadHeader("header has zero length".into()));
    }
    let header: Header =
        from_dag_cbor(header_bytes).map_err(|e| CarError::BadHeader(e.to_string()))?;
    if header.version != 1 {
        return Err(CarError::UnsupportedVersion(header.version));
    }
    let mut blocks = Vec::new();
    while pos < data.len() {
        let offset = pos;
        let section = read_chunk(data, &mut pos, "section")?;
        if section.is_empty() {
            return Err(CarError::BadCid {
                offset,
                reason: "empty section".into(),
            });
        }
        let mut cursor = Cursor::new(section);
        let cid = Cid::read_bytes(&mut cursor).map_err(|e| CarError::BadCid {
            offset,
            reason: e.to_string(),
        })?;
        if cid.version() == cid::Version::V0 {
            return Err(CarError::BadCid {
                offset,
                reason: "CIDv0 is not supported".into(),
            });
        }
        let block = &section[cursor.position() as usize..];
        if verify_block(&cid, block) == Some(false) {
            return Err(CarError::HashMismatch { cid });
        }
        blocks.push((cid, block.to_vec()));
    }
    Ok(Car {
        roots: header.roots,
        blocks,
    })
}

/// Write a CARv1 file with the given roots and blocks (in the given order).
pub fn write_car<'a, I>(roots: &[Cid], blocks: I) -> Result<Vec<u8>, CarError>
where
    I: IntoIterator<Item = (&'a Cid, &'a [u8])>,
{
    let header = to_dag_cbor(&Header {
        version: 1,
        roots: roots.to_vec(),
    })
    .map_err(|e| CarError::Encode(e.to_string()))?;
    let mut out = Vec::with_capacity(header.len() + 16);
    write_varint(&mut out, header.len() as u64);
    out.extend_from_slice(&header);
    for (cid, block) in blocks {
        let cid_bytes = cid.to_bytes();
        write_varint(&mut out, (cid_bytes.len() + block.len()) as u64);
        out.extend_from_slice(&cid_bytes);
        out.extend_from_slice(block);
    }
    Ok(out)
}
