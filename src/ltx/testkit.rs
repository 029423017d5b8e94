//! An unchecked LTX encoder for unit tests: like [`super::writer::Writer`] but it writes whatever
//! it is given (pages out of order, short pages, the lock page, legacy LZ4 frames), so the
//! decoder's refusals can be tested. Valid block-encoded files come from the real writer.
//!
//! What must stay true: for valid input its output equals [`super::writer::Writer`]'s byte for
//! byte (`writer_tests.rs` checks it); `tests.rs` decodes real v0.5.17 files and round-trips
//! them through this encoder.

use super::header::Header;
use super::writer::put_uvarint;
use super::{CHECKSUM_FLAG, PAGE_FLAG_BLOCK};
use crate::crc64::Crc64;

/// Encodes an LTX file. `legacy` writes each page as an LZ4 frame (flags 0) instead of a block.
pub fn encode(header: &Header, pages: &[(u32, Vec<u8>)], legacy: bool) -> Vec<u8> {
    let mut out = header.encode().to_vec();
    let mut crc = Crc64::new();
    crc.update(&out);
    let mut index = Vec::new();
    for (pgno, data) in pages {
        let offset = out.len();
        let flags = if legacy { 0 } else { PAGE_FLAG_BLOCK };
        let mut ph = pgno.to_be_bytes().to_vec();
        ph.extend_from_slice(&flags.to_be_bytes());
        out.extend_from_slice(&ph);
        crc.update(&ph);
        if legacy {
            out.extend_from_slice(&crate::lz4::compress(data));
        } else {
            let block = lz4_flex::block::compress(data);
            let len = (block.len() as u32).to_be_bytes();
            out.extend_from_slice(&len);
            crc.update(&len);
            out.extend_from_slice(&block);
        }
        crc.update(data);
        put_uvarint(&mut index, u64::from(*pgno));
        put_uvarint(&mut index, offset as u64);
        put_uvarint(&mut index, (out.len() - offset) as u64);
    }
    out.extend_from_slice(&[0u8; 6]);
    crc.update(&[0u8; 6]);
    put_uvarint(&mut index, 0);
    let mut tail = index.clone();
    tail.extend_from_slice(&(index.len() as u64).to_be_bytes());
    tail.extend_from_slice(&0u64.to_be_bytes());
    crc.update(&tail);
    out.extend_from_slice(&tail);
    out.extend_from_slice(&(CHECKSUM_FLAG | crc.sum()).to_be_bytes());
    out
}

/// A header as Litestream v0.5 writes it (flags 0x2, no checksums, WAL fields zero).
pub fn header(min: u64, max: u64, commit: u32, page_size: u32, ts_ms: i64) -> Header {
    Header {
        flags: super::FLAG_NO_CHECKSUM,
        page_size,
        commit,
        min_txid: min,
        max_txid: max,
        timestamp_ms: ts_ms,
        ..Header::default()
    }
}
