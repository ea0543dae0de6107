//! The body cut into chunks while it is encoded, so a server sends the first chunks while the
//! rest is written.

use super::{encode_with, Format};
use crate::Registry;

/// Hands a buffer holding at least `at` bytes on as one chunk, and goes on in a fresh one.
pub(crate) struct Flush {
    pub(super) at: usize,
    emit: Box<dyn FnMut(Vec<u8>)>,
}

impl Flush {
    pub(super) fn emit(&mut self, out: &mut Vec<u8>) {
        let full = std::mem::replace(out, chunk_buffer(self.at));
        (self.emit)(full);
    }
}

/// A buffer for one chunk of `at` bytes: the series that crosses `at` still fits.
fn chunk_buffer(at: usize) -> Vec<u8> {
    Vec::with_capacity(at + at / 8)
}

/// [`encode`] in chunks of about `chunk` bytes, each ending with a whole line: `emit` gets every
/// full chunk as soon as it is written (so a server can send it while the rest is encoded);
/// the last, shorter one is returned.
pub(crate) fn encode_chunked(
    registry: &Registry,
    format: Format,
    chunk: usize,
    emit: impl FnMut(Vec<u8>) + 'static,
) -> Vec<u8> {
    let mut out = chunk_buffer(chunk);
    let flush = Flush {
        at: chunk,
        emit: Box::new(emit),
    };
    encode_with(registry, format, &mut out, Some(flush));
    out
}
