//! Streaming LTX encoder (spec §2, §7.1): header, block-encoded pages, end marker, page index,
//! trailer with the file checksum, written to any [`Write`] sink as the pages arrive.
//!
//! What must stay true:
//! - Output is what ltx v0.5.2 writes for the same header and pages (only the LZ4 bytes may
//!   differ between compressors): every page is one raw LZ4 block (page flag 0x1, u32 length),
//!   the index is uvarint triples `(pgno, offset, size)` ended by 0, then its u64 length, then
//!   the post-apply field and the file checksum (`1<<63 | CRC-64/ISO` over the header, each page
//!   header, length and *uncompressed* page, the end marker, the index with its length and the
//!   post-apply field).
//! - The header is refused unless v0.5.17's restore accepts it: flags exactly 0x2 (no database
//!   checksums), pre-apply 0, commit ≠ 0, and the header validity rules of [`Header::parse`].
//! - Pages are refused unless strictly ascending, never the lock page, never above the commit
//!   size, and exactly one page long; [`Writer::finish`] refuses a file without pages.
//! - Memory: one compressed page plus the encoded index (a few bytes per page).

use std::io::Write;

use super::header::{HEADER_SIZE, Header};
use super::{CHECKSUM_FLAG, FLAG_NO_CHECKSUM, PAGE_FLAG_BLOCK, lock_page};
use crate::crc64::Crc64;

/// Size of the page header before every page frame (pgno u32, flags u16).
const PAGE_HEADER_SIZE: usize = 6;

/// Why a file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("ltx header refused: {0}")]
    Header(String),
    #[error("ltx page {pgno}: {reason}")]
    Page { pgno: u32, reason: &'static str },
    #[error("ltx file has no pages")]
    Empty,
    #[error("write ltx: {0}")]
    Io(#[from] std::io::Error),
}

/// Encodes one LTX file into `W`.
pub struct Writer<W: Write> {
    w: W,
    header: Header,
    crc: Crc64,
    index: Vec<u8>,
    /// Bytes written so far (the offset of the next page frame).
    offset: u64,
    prev: u32,
    lock: u32,
    compressed: Vec<u8>,
}

impl<W: Write> Writer<W> {
    /// Checks `header` and writes it.
    pub fn new(mut w: W, header: Header) -> Result<Self, WriteError> {
        check_header(&header)?;
        let bytes = header.encode();
        w.write_all(&bytes)?;
        let mut crc = Crc64::new();
        crc.update(&bytes);
        Ok(Writer {
            w,
            lock: lock_page(header.page_size),
            header,
            crc,
            index: Vec::new(),
            offset: HEADER_SIZE as u64,
            prev: 0,
            compressed: Vec::new(),
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Bytes handed to the sink so far (header and page frames).
    pub fn bytes_written(&self) -> u64 {
        self.offset
    }

    /// Appends page `pgno` (exactly one page of bytes), compressed here.
    pub fn write_page(&mut self, pgno: u32, data: &[u8]) -> Result<(), WriteError> {
        self.check_page(pgno, data)?;
        let max = lz4_flex::block::get_maximum_output_size(data.len());
        let mut compressed = std::mem::take(&mut self.compressed);
        compressed.resize(max, 0);
        let result = match lz4_flex::block::compress_into(data, &mut compressed) {
            Ok(n) => self.put_frame(pgno, data, &compressed[..n]),
            Err(_) => Err(WriteError::Page {
                pgno,
                reason: "LZ4 compression failed",
            }),
        };
        self.compressed = compressed;
        result
    }

    /// Appends page `pgno` whose raw LZ4 block the caller already has (copied from another LTX
    /// file): `block` must decompress to exactly `data`, which is what the checksum covers.
    pub fn write_page_block(
        &mut self,
        pgno: u32,
        data: &[u8],
        block: &[u8],
    ) -> Result<(), WriteError> {
        self.check_page(pgno, data)?;
        self.put_frame(pgno, data, block)
    }

    fn put_frame(&mut self, pgno: u32, data: &[u8], block: &[u8]) -> Result<(), WriteError> {
        let mut head = [0u8; PAGE_HEADER_SIZE + 4];
        head[0..4].copy_from_slice(&pgno.to_be_bytes());
        head[4..6].copy_from_slice(&PAGE_FLAG_BLOCK.to_be_bytes());
        head[6..10].copy_from_slice(&(block.len() as u32).to_be_bytes());
        self.w.write_all(&head)?;
        self.w.write_all(block)?;
        self.crc.update(&head);
        self.crc.update(data);
        let size = (head.len() + block.len()) as u64;
        put_uvarint(&mut self.index, u64::from(pgno));
        put_uvarint(&mut self.index, self.offset);
        put_uvarint(&mut self.index, size);
        self.offset += size;
        self.prev = pgno;
        Ok(())
    }

    /// Writes the end marker, index and trailer; returns the sink and the file checksum.
    pub fn finish(mut self) -> Result<(W, u64), WriteError> {
        if self.prev == 0 {
            return Err(WriteError::Empty);
        }
        let end = [0u8; PAGE_HEADER_SIZE];
        self.w.write_all(&end)?;
        self.crc.update(&end);
        put_uvarint(&mut self.index, 0);
        let len = (self.index.len() as u64).to_be_bytes();
        let post_apply = 0u64.to_be_bytes();
        for part in [&self.index[..], &len, &post_apply] {
            self.w.write_all(part)?;
            self.crc.update(part);
        }
        let checksum = CHECKSUM_FLAG | self.crc.sum();
        self.w.write_all(&checksum.to_be_bytes())?;
        self.w.flush()?;
        Ok((self.w, checksum))
    }

    fn check_page(&self, pgno: u32, data: &[u8]) -> Result<(), WriteError> {
        let reason = if pgno <= self.prev {
            "page numbers must ascend"
        } else if pgno == self.lock {
            "the lock page is never stored"
        } else if pgno > self.header.commit {
            "above the commit size"
        } else if data.len() != self.header.page_size as usize {
            "not exactly one page long"
        } else {
            return Ok(());
        };
        Err(WriteError::Page { pgno, reason })
    }
}

/// The header rules of [`Header::parse`] plus what v0.5.17's restore needs (§7.1).
fn check_header(h: &Header) -> Result<(), WriteError> {
    if h.flags != FLAG_NO_CHECKSUM {
        return Err(WriteError::Header(format!(
            "flags {:#x}: only 0x2 (no checksums) is written",
            h.flags
        )));
    }
    if h.commit == 0 {
        return Err(WriteError::Header("commit size 0".into()));
    }
    Header::parse(&h.encode())
        .map(|_| ())
        .map_err(|e| WriteError::Header(e.to_string()))
}

pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Encodes a whole file in memory (small files and tests).
pub fn encode_to_vec(header: Header, pages: &[(u32, &[u8])]) -> Result<Vec<u8>, WriteError> {
    let mut w = Writer::new(Vec::new(), header)?;
    for (pgno, data) in pages {
        w.write_page(*pgno, data)?;
    }
    Ok(w.finish()?.0)
}
