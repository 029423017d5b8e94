//! LZ4 frame codec for every snapshot and WAL segment (spec §1.3).
//!
//! Writer ([`Encoder`], [`compress`], [`compress_stream`]): emits exactly Litestream v0.3.13's
//! frame — FLG `0x64`, BD `0x70` (independent 4 MiB blocks, content checksum, no block checksum,
//! no content size, no dictionary), so every output starts with `04 22 4D 18 64 70 B9`; a block
//! that does not shrink is stored raw.
//!
//! Reader ([`Decoder`], [`decoder`], [`decompress`], [`decompress_stream`]): accepts any standard
//! LZ4 frame (linked or independent blocks, 64 KiB–4 MiB blocks, with or without block checksums,
//! content size and content checksum; concatenated frames; skippable frames) and verifies every
//! checksum present. Input that ends before a frame's end mark is [`Lz4Error::Truncated`].
//!
//! What must stay true: memory is bounded by about one block per direction (the encoder holds at
//! most one 4 MiB input block; the decoder at most one compressed block plus one decoded block
//! and a 64 KiB window), never by the size of the file. Blocks are compressed with
//! `lz4_flex::block`; the frame format around them is written and parsed here (lz4_flex's
//! `FrameDecoder` treats a frame cut at a block boundary as complete, which we must reject).

mod decode;
mod encode;
mod pool;
mod stream;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_compat;

use std::io;

pub use decode::{Decoder, FrameReader, decoder};
pub use encode::Encoder;
pub use pool::BlockPool;
pub use stream::{compress_stream, decompress_stream};

/// LZ4 frame magic number (little-endian on disk: `04 22 4D 18`).
pub const MAGIC: u32 = 0x184D_2204;
/// Uncompressed size of each block we write (BD code 7).
pub const BLOCK_SIZE: usize = 4 << 20;
/// The 7 header bytes every frame we write starts with (magic, FLG, BD, header checksum).
pub const FRAME_HEADER: [u8; 7] = [0x04, 0x22, 0x4D, 0x18, 0x64, 0x70, 0xB9];

/// Compresses a small buffer into one frame (same bytes as [`Encoder`] would produce).
pub fn compress(data: &[u8]) -> Vec<u8> {
    encode::compress_all(data)
}

/// Decompresses a whole in-memory buffer holding one or more complete frames.
pub fn decompress(data: &[u8]) -> Result<Vec<u8>, Lz4Error> {
    decompress_pieces(std::iter::once(data))
}

/// Decompresses frames delivered in arbitrary pieces (as a network read would split them); the
/// result does not depend on where the pieces are cut.
pub fn decompress_pieces<'a>(
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>, Lz4Error> {
    let mut dec = Decoder::new();
    let mut out = Vec::new();
    for piece in pieces {
        let mut rest = piece;
        while !rest.is_empty() {
            let (n, block) = dec.feed(rest)?;
            rest = &rest[n..];
            if let Some(block) = block {
                out.extend_from_slice(&block);
            }
        }
    }
    dec.finish()?;
    Ok(out)
}

/// Errors from reading LZ4 frames. `offset` is the byte offset in the compressed input where
/// the offending field or block starts.
#[derive(Debug, thiserror::Error)]
pub enum Lz4Error {
    #[error("lz4: bad magic number {found:#010x} at offset {offset}")]
    BadMagic { offset: u64, found: u32 },
    #[error("lz4: unsupported {what} at offset {offset}")]
    Unsupported { offset: u64, what: &'static str },
    #[error("lz4: invalid frame descriptor at offset {offset}: {reason}")]
    BadDescriptor { offset: u64, reason: &'static str },
    #[error(
        "lz4: invalid header checksum at offset {offset}: expected {expected:02x}, got {actual:02x}"
    )]
    HeaderChecksum {
        offset: u64,
        expected: u8,
        actual: u8,
    },
    #[error("lz4: block at offset {offset} is {size} bytes, larger than the frame's {max}")]
    BlockTooBig {
        offset: u64,
        size: usize,
        max: usize,
    },
    #[error("lz4: corrupt block at offset {offset}: {reason}")]
    CorruptBlock { offset: u64, reason: String },
    #[error(
        "lz4: invalid block checksum at offset {offset}: expected {expected:08x}, got {actual:08x}"
    )]
    BlockChecksum {
        offset: u64,
        expected: u32,
        actual: u32,
    },
    #[error("lz4: content checksum mismatch: expected {expected:08x}, got {actual:08x}")]
    ContentChecksum { expected: u32, actual: u32 },
    #[error("lz4: content size mismatch: frame header says {expected} bytes, frame holds {actual}")]
    ContentSize { expected: u64, actual: u64 },
    #[error("lz4: truncated frame: input ends at offset {offset}")]
    Truncated { offset: u64 },
    #[error("lz4: read input: {0}")]
    Io(#[from] io::Error),
}

impl Lz4Error {
    /// Recovers the `Lz4Error` carried by an `io::Error` returned from [`FrameReader`]'s `Read`
    /// impl; any other I/O error becomes [`Lz4Error::Io`].
    pub fn from_io(e: io::Error) -> Lz4Error {
        if !e.get_ref().is_some_and(|inner| inner.is::<Lz4Error>()) {
            return Lz4Error::Io(e);
        }
        let kind = e.kind();
        match e.into_inner().map(|inner| inner.downcast::<Lz4Error>()) {
            Some(Ok(lz4)) => *lz4,
            Some(Err(other)) => Lz4Error::Io(io::Error::new(kind, other)),
            None => Lz4Error::Io(kind.into()),
        }
    }
}

impl From<Lz4Error> for io::Error {
    fn from(e: Lz4Error) -> io::Error {
        match e {
            Lz4Error::Io(inner) => inner,
            Lz4Error::Truncated { .. } => io::Error::new(io::ErrorKind::UnexpectedEof, e),
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}
