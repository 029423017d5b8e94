//! LZ4 frame reader: an incremental (push) parser for any standard frame, and a `Read` adapter.
//!
//! What must stay true: the decoder buffers at most one unit of input (a frame descriptor, one
//! block with its checksum, or the end mark with the content checksum); every checksum present
//! in the frame is verified before the data it covers is returned — except the content checksum,
//! which can only be checked at the end mark, after the blocks were handed out; callers must
//! treat the data as unconfirmed until the stream ended without error. Input that stops anywhere
//! except right after an end mark is `Truncated`.

use std::hash::Hasher as _;
use std::io::{self, Read};

use bytes::Bytes;
use twox_hash::XxHash32;

use super::encode::RAW_BLOCK_FLAG;
use super::pool::BlockPool;
use super::{Lz4Error, MAGIC};

const LEGACY_MAGIC: u32 = 0x184C_2102;
const SKIPPABLE_MAGIC: std::ops::RangeInclusive<u32> = 0x184D_2A50..=0x184D_2A5F;
/// LZ4 match distance limit: linked blocks may reference this much previous output.
const WINDOW: usize = 64 * 1024;
const FLG_VERSION_MASK: u8 = 0b1100_0000;
const FLG_VERSION_01: u8 = 0b0100_0000;
const FLG_INDEPENDENT: u8 = 0b0010_0000;
const FLG_BLOCK_CHECKSUM: u8 = 0b0001_0000;
const FLG_CONTENT_SIZE: u8 = 0b0000_1000;
const FLG_CONTENT_CHECKSUM: u8 = 0b0000_0100;
const FLG_RESERVED: u8 = 0b0000_0010;
const FLG_DICT_ID: u8 = 0b0000_0001;
const BD_RESERVED: u8 = 0b1000_1111;

/// What the buffered bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Magic,
    Descriptor,
    /// Blocks of a frame whose descriptor was parsed.
    Block(FrameDesc),
    SkipSize,
    Skip {
        remaining: u64,
    },
}

/// Settings of the frame being decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FrameDesc {
    linked: bool,
    block_checksum: bool,
    content_checksum: bool,
    content_size: Option<u64>,
    max_block: usize,
}

/// Incremental LZ4 frame decoder. Push input with [`Decoder::feed`] until it is used up, then
/// call [`Decoder::finish`] to check that the input ended at the end of a frame.
pub struct Decoder {
    state: State,
    /// Bytes of the unit being assembled.
    buf: Vec<u8>,
    /// Input offset of `buf[0]`.
    offset: u64,
    hasher: XxHash32,
    content_len: u64,
    /// Linked mode: the last ≤ 64 KiB of this frame's output.
    window: Vec<u8>,
    /// Where decoded blocks are built (see [`Decoder::with_pool`]).
    pool: BlockPool,
    frames: u64,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder with a pool of its own (one idle block buffer, reused across blocks).
    pub fn new() -> Self {
        Self::with_pool(BlockPool::new(1))
    }

    /// A decoder that decodes full blocks straight into buffers from `pool` (which several
    /// decoders may share) and hands those on without a copy; they return to the pool when the
    /// caller drops the block. Partial blocks are copied out of the buffer.
    pub fn with_pool(pool: BlockPool) -> Self {
        Decoder {
            state: State::Magic,
            buf: Vec::new(),
            offset: 0,
            hasher: XxHash32::with_seed(0),
            content_len: 0,
            window: Vec::new(),
            pool,
            frames: 0,
        }
    }

    /// Compressed bytes held while waiting for the rest of a unit (≤ one block + 8).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Number of frames fully decoded and verified so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Consumes a prefix of `input`; returns how many bytes were consumed and, when a block was
    /// completed, its decompressed bytes. Call again with the rest until it is empty.
    pub fn feed(&mut self, input: &[u8]) -> Result<(usize, Option<Bytes>), Lz4Error> {
        let mut used = 0;
        loop {
            if let State::Skip { remaining } = self.state {
                let n = remaining.min((input.len() - used) as u64);
                used += n as usize;
                self.offset += n;
                self.state = match remaining - n {
                    0 => State::Magic,
                    remaining => State::Skip { remaining },
                };
                if used == input.len() {
                    return Ok((used, None));
                }
                continue;
            }
            let need = self.need()?;
            if self.buf.len() < need {
                let take = (need - self.buf.len()).min(input.len() - used);
                if take == 0 {
                    return Ok((used, None));
                }
                self.buf.extend_from_slice(&input[used..used + take]);
                used += take;
                continue;
            }
            let out = self.process_unit()?;
            self.offset += self.buf.len() as u64;
            self.buf.clear();
            if let Some(out) = out.filter(|b| !b.is_empty()) {
                return Ok((used, Some(out)));
            }
        }
    }

    /// Checks that the input ended right after a complete frame.
    pub fn finish(&self) -> Result<(), Lz4Error> {
        let at_boundary = self.state == State::Magic && self.buf.is_empty();
        if at_boundary && self.frames > 0 {
            Ok(())
        } else {
            Err(Lz4Error::Truncated {
                offset: self.offset + self.buf.len() as u64,
            })
        }
    }

    /// Total length of the unit being assembled, as far as the buffered prefix tells.
    fn need(&self) -> Result<usize, Lz4Error> {
        Ok(match self.state {
            State::Magic | State::SkipSize => 4,
            State::Descriptor => match self.buf.first() {
                None => 3,
                Some(&flg) => {
                    let size = if flg & FLG_CONTENT_SIZE != 0 { 8 } else { 0 };
                    let dict = if flg & FLG_DICT_ID != 0 { 4 } else { 0 };
                    3 + size + dict
                }
            },
            State::Block(_) if self.buf.len() < 4 => 4,
            State::Block(frame) => self.block_unit_len(frame)?,
            State::Skip { .. } => 0,
        })
    }

    /// Length of a block unit (size word, data, optional checksum) or of the end-mark unit.
    fn block_unit_len(&self, frame: FrameDesc) -> Result<usize, Lz4Error> {
        let word = le_u32(&self.buf[..4]);
        if word == 0 {
            return Ok(4 + if frame.content_checksum { 4 } else { 0 });
        }
        let size = (word & !RAW_BLOCK_FLAG) as usize;
        if size > frame.max_block {
            return Err(Lz4Error::BlockTooBig {
                offset: self.offset,
                size,
                max: frame.max_block,
            });
        }
        Ok(4 + size + if frame.block_checksum { 4 } else { 0 })
    }

    /// Acts on a complete unit in `buf`; returns decoded bytes for data blocks.
    fn process_unit(&mut self) -> Result<Option<Bytes>, Lz4Error> {
        match self.state {
            State::Magic => self.on_magic().map(|()| None),
            State::SkipSize => {
                self.state = State::Skip {
                    remaining: u64::from(le_u32(&self.buf)),
                };
                Ok(None)
            }
            State::Descriptor => self.on_descriptor().map(|()| None),
            State::Block(frame) if le_u32(&self.buf[..4]) == 0 => {
                self.on_end_mark(frame).map(|()| None)
            }
            State::Block(frame) => self.on_block(frame).map(Some),
            State::Skip { .. } => Ok(None),
        }
    }

    fn on_magic(&mut self) -> Result<(), Lz4Error> {
        let found = le_u32(&self.buf);
        self.state = match found {
            MAGIC => State::Descriptor,
            m if SKIPPABLE_MAGIC.contains(&m) => State::SkipSize,
            LEGACY_MAGIC => {
                return Err(Lz4Error::Unsupported {
                    offset: self.offset,
                    what: "legacy frame format",
                });
            }
            _ => {
                return Err(Lz4Error::BadMagic {
                    offset: self.offset,
                    found,
                });
            }
        };
        Ok(())
    }

    fn on_descriptor(&mut self) -> Result<(), Lz4Error> {
        let offset = self.offset;
        let d = &self.buf;
        let (flg, bd) = (d[0], d[1]);
        let bad = |reason| Lz4Error::BadDescriptor { offset, reason };
        if flg & FLG_VERSION_MASK != FLG_VERSION_01 {
            return Err(Lz4Error::Unsupported {
                offset,
                what: "frame version",
            });
        }
        if flg & FLG_RESERVED != 0 || bd & BD_RESERVED != 0 {
            return Err(bad("reserved bit set"));
        }
        let max_block = match bd >> 4 {
            4 => 64 << 10,
            5 => 256 << 10,
            6 => 1 << 20,
            7 => 4 << 20,
            _ => return Err(bad("invalid block size code")),
        };
        let hc_at = d.len() - 1;
        let expected = (XxHash32::oneshot(0, &d[..hc_at]) >> 8) as u8;
        if d[hc_at] != expected {
            return Err(Lz4Error::HeaderChecksum {
                offset,
                expected,
                actual: d[hc_at],
            });
        }
        if flg & FLG_DICT_ID != 0 {
            return Err(Lz4Error::Unsupported {
                offset,
                what: "dictionary id",
            });
        }
        let content_size = (flg & FLG_CONTENT_SIZE != 0).then(|| le_u64(&d[2..10]));
        let frame = FrameDesc {
            linked: flg & FLG_INDEPENDENT == 0,
            block_checksum: flg & FLG_BLOCK_CHECKSUM != 0,
            content_checksum: flg & FLG_CONTENT_CHECKSUM != 0,
            content_size,
            max_block,
        };
        self.hasher = XxHash32::with_seed(0);
        self.content_len = 0;
        self.window.clear();
        self.state = State::Block(frame);
        Ok(())
    }

    fn on_end_mark(&mut self, frame: FrameDesc) -> Result<(), Lz4Error> {
        if let Some(expected) = frame.content_size
            && expected != self.content_len
        {
            return Err(Lz4Error::ContentSize {
                expected,
                actual: self.content_len,
            });
        }
        if frame.content_checksum {
            let expected = le_u32(&self.buf[4..8]);
            let actual = self.hasher.finish_32();
            if expected != actual {
                return Err(Lz4Error::ContentChecksum { expected, actual });
            }
        }
        self.frames += 1;
        self.state = State::Magic;
        Ok(())
    }

    fn on_block(&mut self, frame: FrameDesc) -> Result<Bytes, Lz4Error> {
        let offset = self.offset;
        let word = le_u32(&self.buf[..4]);
        let size = (word & !RAW_BLOCK_FLAG) as usize;
        let data = &self.buf[4..4 + size];
        if frame.block_checksum {
            let expected = le_u32(&self.buf[4 + size..]);
            let actual = XxHash32::oneshot(0, data);
            if expected != actual {
                return Err(Lz4Error::BlockChecksum {
                    offset,
                    expected,
                    actual,
                });
            }
        }
        let out = if word & RAW_BLOCK_FLAG != 0 {
            Bytes::copy_from_slice(data)
        } else {
            let mut buf = self.pool.take(frame.max_block);
            match decompress_block(data, &mut buf, frame.linked, &self.window, offset) {
                Ok(n) => self.pool.finish_block(buf, n),
                Err(e) => {
                    self.pool.give(buf);
                    return Err(e);
                }
            }
        };
        self.hasher.write(&out);
        self.content_len += out.len() as u64;
        if frame.linked {
            slide_window(&mut self.window, &out);
        }
        Ok(out)
    }
}

/// Decodes one compressed block into `out` (linked blocks may refer back into `window`);
/// returns the decoded length.
fn decompress_block(
    data: &[u8],
    out: &mut [u8],
    linked: bool,
    window: &[u8],
    offset: u64,
) -> Result<usize, Lz4Error> {
    if linked {
        lz4_flex::block::decompress_into_with_dict(data, out, window)
    } else {
        lz4_flex::block::decompress_into(data, out)
    }
    .map_err(|e| Lz4Error::CorruptBlock {
        offset,
        reason: e.to_string(),
    })
}

/// Keeps the last `WINDOW` bytes of output in `window`.
fn slide_window(window: &mut Vec<u8>, out: &[u8]) {
    if out.len() >= WINDOW {
        window.clear();
        window.extend_from_slice(&out[out.len() - WINDOW..]);
        return;
    }
    let excess = (window.len() + out.len()).saturating_sub(WINDOW);
    window.drain(..excess);
    window.extend_from_slice(out);
    debug_assert!(window.len() <= WINDOW);
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn le_u64(b: &[u8]) -> u64 {
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// Size of the chunks a [`FrameReader`] reads from its source.
const READ_CHUNK: usize = 64 * 1024;

/// A `Read` adapter yielding the decompressed content of the LZ4 frame(s) read from `R`.
/// Errors are `io::Error`s carrying an [`Lz4Error`] (recover it with [`Lz4Error::from_io`]).
pub struct FrameReader<R> {
    inner: R,
    dec: Decoder,
    input: Vec<u8>,
    in_pos: usize,
    in_len: usize,
    out: Bytes,
    done: bool,
}

/// Wraps `r` in a decompressing reader (see [`FrameReader`]).
pub fn decoder<R: Read>(r: R) -> FrameReader<R> {
    FrameReader {
        inner: r,
        dec: Decoder::new(),
        input: vec![0; READ_CHUNK],
        in_pos: 0,
        in_len: 0,
        out: Bytes::new(),
        done: false,
    }
}

impl<R> FrameReader<R> {
    /// The decoder state (e.g. to inspect how much it buffers).
    pub fn decoder_state(&self) -> &Decoder {
        &self.dec
    }

    /// The underlying reader.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for FrameReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if !self.out.is_empty() {
                let n = self.out.len().min(buf.len());
                buf[..n].copy_from_slice(&self.out.split_to(n));
                return Ok(n);
            }
            if self.done || buf.is_empty() {
                return Ok(0);
            }
            if self.in_pos == self.in_len {
                let n = match self.inner.read(&mut self.input) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                if n == 0 {
                    self.dec.finish()?;
                    self.done = true;
                    return Ok(0);
                }
                (self.in_pos, self.in_len) = (0, n);
            }
            let (used, out) = self.dec.feed(&self.input[self.in_pos..self.in_len])?;
            self.in_pos += used;
            if let Some(out) = out {
                self.out = out;
            }
        }
    }
}
