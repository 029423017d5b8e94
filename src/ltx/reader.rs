//! Streaming LTX decoder: header, then pages one at a time, then end marker, page index and
//! trailer, with the file checksum computed as the bytes go by (spec §2.2–§2.5).
//!
//! What must stay true:
//! - Only one page (and one compressed page) is ever buffered; input is read through a small
//!   fixed buffer.
//! - Pages come out in strictly ascending page number, never the lock page, never above the
//!   header's commit size; each decompresses to exactly one page.
//! - Both page encodings are read: block (flags 0x1: u32 length + raw LZ4 block, Litestream
//!   v0.5.16+) and the legacy LZ4 frame (flags 0, v0.5.0–v0.5.15, bounded by the frame's end).
//! - [`Reader::finish`] only succeeds if the index length matches, the trailer is valid, the
//!   computed file checksum equals the stored one and nothing follows the trailer.

use std::io::{BufReader, ErrorKind as IoKind, Read};

use super::header::{HEADER_SIZE, Header, TRAILER_SIZE, Trailer};
use super::{CHECKSUM_FLAG, ErrorKind, LtxError, PAGE_FLAG_BLOCK, lock_page};
use crate::crc64::Crc64;
use crate::lz4::Decoder as FrameDecoder;

/// Size of the page header that precedes every page frame (pgno u32, flags u16).
const PAGE_HEADER_SIZE: usize = 6;
/// Read buffer size.
const READ_BUFFER: usize = 64 << 10;
/// Longest uvarint (64-bit values).
const MAX_VARINT_LEN: usize = 10;

/// Decodes one LTX file from `R`.
pub struct Reader<R: Read> {
    r: BufReader<R>,
    name: String,
    header: Header,
    crc: Crc64,
    page: Vec<u8>,
    compressed: Vec<u8>,
    prev: u32,
    lock: u32,
    pages_done: bool,
}

impl<R: Read> Reader<R> {
    /// Reads and validates the header. `name` is used in every error.
    pub fn new(r: R, name: &str) -> Result<Self, LtxError> {
        let mut r = BufReader::with_capacity(READ_BUFFER, r);
        let mut buf = [0u8; HEADER_SIZE];
        read_exact(&mut r, &mut buf, "header").map_err(|k| LtxError::new(name, k))?;
        let header = Header::parse(&buf).map_err(|k| LtxError::new(name, k))?;
        let mut crc = Crc64::new();
        crc.update(&buf);
        Ok(Reader {
            r,
            name: name.to_string(),
            lock: lock_page(header.page_size),
            page: vec![0u8; header.page_size as usize],
            compressed: Vec::new(),
            header,
            crc,
            prev: 0,
            pages_done: false,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The next page as (page number, page bytes), or `None` after the end marker.
    pub fn next_page(&mut self) -> Result<Option<(u32, &[u8])>, LtxError> {
        if self.pages_done {
            return Ok(None);
        }
        match self.read_page() {
            Ok(Some(pgno)) => Ok(Some((pgno, &self.page))),
            Ok(None) => {
                self.pages_done = true;
                Ok(None)
            }
            Err(kind) => Err(self.err(kind)),
        }
    }

    /// Skips any pages not yet read, then reads and checks the index and trailer.
    pub fn finish(mut self) -> Result<(Header, Trailer), LtxError> {
        while self.next_page()?.is_some() {}
        match self.read_tail() {
            Ok(trailer) => Ok((self.header, trailer)),
            Err(kind) => Err(self.err(kind)),
        }
    }

    fn err(&self, kind: ErrorKind) -> LtxError {
        LtxError::new(&self.name, kind)
    }

    fn read_page(&mut self) -> Result<Option<u32>, ErrorKind> {
        let mut ph = [0u8; PAGE_HEADER_SIZE];
        read_exact(&mut self.r, &mut ph, "page header")?;
        self.crc.update(&ph);
        let pgno = u32::from_be_bytes([ph[0], ph[1], ph[2], ph[3]]);
        let flags = u16::from_be_bytes([ph[4], ph[5]]);
        if pgno == 0 && flags == 0 {
            return Ok(None);
        }
        self.check_pgno(pgno)?;
        match flags {
            PAGE_FLAG_BLOCK => self.read_block_page(pgno)?,
            0 => self.read_frame_page(pgno)?,
            _ => return Err(ErrorKind::PageFlags { pgno, flags }),
        }
        self.crc.update(&self.page);
        self.prev = pgno;
        Ok(Some(pgno))
    }

    fn check_pgno(&self, pgno: u32) -> Result<(), ErrorKind> {
        if pgno <= self.prev {
            return Err(ErrorKind::PageOrder {
                pgno,
                prev: self.prev,
            });
        }
        if pgno == self.lock {
            return Err(ErrorKind::LockPage(pgno));
        }
        if pgno > self.header.commit {
            return Err(ErrorKind::PageBeyondCommit {
                pgno,
                commit: self.header.commit,
            });
        }
        Ok(())
    }

    /// Block encoding: u32 compressed length, then one raw LZ4 block of exactly one page.
    fn read_block_page(&mut self, pgno: u32) -> Result<(), ErrorKind> {
        let mut lb = [0u8; 4];
        read_exact(&mut self.r, &mut lb, "page")?;
        self.crc.update(&lb);
        let len = u32::from_be_bytes(lb);
        // LZ4's worst case for one page, with slack; anything larger is corrupt.
        let max = self.header.page_size as usize + self.header.page_size as usize / 255 + 64;
        if len == 0 || len as usize > max {
            return Err(ErrorKind::CompressedLength { pgno, len });
        }
        self.compressed.resize(len as usize, 0);
        read_exact(&mut self.r, &mut self.compressed, "page")?;
        let got =
            lz4_flex::block::decompress_into(&self.compressed, &mut self.page).map_err(|e| {
                ErrorKind::Lz4 {
                    pgno,
                    detail: e.to_string(),
                }
            })?;
        self.expect_full_page(pgno, got)
    }

    /// Legacy encoding: one complete LZ4 frame holding the page, fed a byte at a time so that
    /// nothing past the frame's end is consumed.
    fn read_frame_page(&mut self, pgno: u32) -> Result<(), ErrorKind> {
        let mut dec = FrameDecoder::new();
        let mut filled = 0usize;
        let mut byte = [0u8; 1];
        while dec.frames() == 0 {
            read_exact(&mut self.r, &mut byte, "page")?;
            let (_, block) = dec.feed(&byte).map_err(|e| ErrorKind::Lz4 {
                pgno,
                detail: e.to_string(),
            })?;
            if let Some(block) = block {
                let end = filled + block.len();
                if end > self.page.len() {
                    return Err(ErrorKind::PageLength {
                        pgno,
                        got: end,
                        want: self.header.page_size,
                    });
                }
                self.page[filled..end].copy_from_slice(&block);
                filled = end;
            }
        }
        self.expect_full_page(pgno, filled)
    }

    fn expect_full_page(&self, pgno: u32, got: usize) -> Result<(), ErrorKind> {
        if got != self.page.len() {
            return Err(ErrorKind::PageLength {
                pgno,
                got,
                want: self.header.page_size,
            });
        }
        Ok(())
    }

    /// Page index, its length, the trailer, the checksum and the end of the file.
    fn read_tail(&mut self) -> Result<Trailer, ErrorKind> {
        let index_len = self.read_index()?;
        let mut lb = [0u8; 8];
        read_exact(&mut self.r, &mut lb, "page index")?;
        self.crc.update(&lb);
        if u64::from_be_bytes(lb) != index_len {
            return Err(ErrorKind::Index("stored length does not match the index"));
        }
        let mut tb = [0u8; TRAILER_SIZE];
        read_exact(&mut self.r, &mut tb, "trailer")?;
        self.crc.update(&tb[..8]);
        let trailer = Trailer::parse(&tb);
        trailer.validate(&self.header)?;
        let computed = CHECKSUM_FLAG | self.crc.sum();
        if computed != trailer.file_checksum {
            return Err(ErrorKind::Checksum {
                stored: trailer.file_checksum,
                computed,
            });
        }
        let mut extra = [0u8; 1];
        match self.r.read(&mut extra) {
            Ok(0) => Ok(trailer),
            Ok(_) => Err(ErrorKind::TrailingData),
            Err(e) => Err(ErrorKind::Io(e)),
        }
    }

    /// Reads `(pgno, offset, size)` triples up to the terminating zero; returns the byte length.
    /// The contents are parsed, not checked (as Litestream's restore).
    fn read_index(&mut self) -> Result<u64, ErrorKind> {
        let mut len = 0u64;
        loop {
            let pgno = self.read_uvarint(&mut len)?;
            if pgno == 0 {
                return Ok(len);
            }
            self.read_uvarint(&mut len)?;
            self.read_uvarint(&mut len)?;
        }
    }

    fn read_uvarint(&mut self, len: &mut u64) -> Result<u64, ErrorKind> {
        let mut value = 0u64;
        for i in 0..MAX_VARINT_LEN {
            let mut b = [0u8; 1];
            read_exact(&mut self.r, &mut b, "page index")?;
            self.crc.update(&b);
            *len += 1;
            let bits = u64::from(b[0] & 0x7f);
            if i == MAX_VARINT_LEN - 1 && b[0] > 1 {
                return Err(ErrorKind::Index("varint overflows 64 bits"));
            }
            value |= bits << (7 * i);
            if b[0] & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ErrorKind::Index("varint overflows 64 bits"))
    }
}

/// `read_exact` with end of input reported as truncation of `what`.
fn read_exact(r: &mut impl Read, buf: &mut [u8], what: &'static str) -> Result<(), ErrorKind> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        IoKind::UnexpectedEof => ErrorKind::Truncated(what),
        _ => ErrorKind::Io(e),
    })
}
