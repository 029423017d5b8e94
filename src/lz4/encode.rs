//! LZ4 frame writer producing Litestream v0.3.13's exact framing (spec §1.3).
//!
//! What must stay true: output = [`FRAME_HEADER`], then one block per 4 MiB of input (raw when
//! compression does not shrink it), then the end mark and the xxHash32 of all input. The encoder
//! never holds more than one block of input.

use std::hash::Hasher as _;

use bytes::Bytes;
use twox_hash::XxHash32;

use super::{BLOCK_SIZE, FRAME_HEADER};

/// High bit of a block size word: the block is stored uncompressed.
pub(super) const RAW_BLOCK_FLAG: u32 = 0x8000_0000;

/// Incremental LZ4 frame encoder: feed input with [`Encoder::write`], forward what it returns,
/// end with [`Encoder::finish`]. Holds at most one 4 MiB block of input.
pub struct Encoder {
    /// Input of the block being filled (`< BLOCK_SIZE` bytes between calls).
    pending: Vec<u8>,
    /// Compression output buffer, reused across blocks.
    scratch: Vec<u8>,
    hasher: XxHash32,
    header_written: bool,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    /// A fresh encoder; buffers are allocated on first use.
    pub fn new() -> Self {
        Encoder {
            pending: Vec::new(),
            scratch: Vec::new(),
            hasher: XxHash32::with_seed(0),
            header_written: false,
        }
    }

    /// Number of input bytes held and not yet emitted (always `< BLOCK_SIZE` after a call).
    pub fn buffered(&self) -> usize {
        self.pending.len()
    }

    /// Consumes `input`; returns the frame bytes completed so far (possibly empty). Output is
    /// produced each time 4 MiB of input have accumulated.
    pub fn write(&mut self, mut input: &[u8]) -> Bytes {
        self.hasher.write(input);
        let mut out = Vec::new();
        while !input.is_empty() {
            if self.pending.is_empty() && input.len() >= BLOCK_SIZE {
                // Whole block available in the caller's buffer: compress it without copying.
                let (block, rest) = input.split_at(BLOCK_SIZE);
                self.emit_block(block, &mut out);
                input = rest;
                continue;
            }
            let take = (BLOCK_SIZE - self.pending.len()).min(input.len());
            if self.pending.capacity() == 0 {
                self.pending.reserve_exact(BLOCK_SIZE);
            }
            self.pending.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.pending.len() == BLOCK_SIZE {
                let block = std::mem::take(&mut self.pending);
                self.emit_block(&block, &mut out);
                self.pending = block;
                self.pending.clear();
            }
        }
        Bytes::from(out)
    }

    /// Emits the last partial block, the end mark and the content checksum.
    pub fn finish(mut self) -> Bytes {
        let mut out = Vec::new();
        let block = std::mem::take(&mut self.pending);
        if !block.is_empty() {
            self.emit_block(&block, &mut out);
        }
        self.write_header(&mut out);
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&self.hasher.finish_32().to_le_bytes());
        Bytes::from(out)
    }

    fn write_header(&mut self, out: &mut Vec<u8>) {
        if !self.header_written {
            out.extend_from_slice(&FRAME_HEADER);
            self.header_written = true;
        }
    }

    /// Appends one block (size word + data) for `src` (≤ BLOCK_SIZE bytes) to `out`.
    fn emit_block(&mut self, src: &[u8], out: &mut Vec<u8>) {
        self.write_header(out);
        let max = lz4_flex::block::get_maximum_output_size(src.len());
        if self.scratch.len() < max {
            // vec! of zeros is calloc: no up-front memset of the whole buffer.
            self.scratch = vec![0; max];
        }
        match lz4_flex::block::compress_into(src, &mut self.scratch) {
            Ok(n) if n < src.len() => {
                out.reserve(4 + n);
                out.extend_from_slice(&(n as u32).to_le_bytes());
                out.extend_from_slice(&self.scratch[..n]);
            }
            // Did not shrink (or could not be compressed): store raw, as the lz4 library does.
            _ => {
                out.reserve(4 + src.len());
                out.extend_from_slice(&(src.len() as u32 | RAW_BLOCK_FLAG).to_le_bytes());
                out.extend_from_slice(src);
            }
        }
    }
}

/// Compresses an in-memory buffer into one frame.
pub(super) fn compress_all(data: &[u8]) -> Vec<u8> {
    let mut enc = Encoder::new();
    let mut out = Vec::from(enc.write(data));
    out.extend_from_slice(&enc.finish());
    out
}
