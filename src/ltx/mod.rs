//! Litestream v0.5 LTX files (superfly/ltx v0.5.2, magic `LTX1`; spec
//! `litestream-v0.5-format.md` §2): the 100-byte header, page frames, end marker, page index and
//! trailer, read as a stream with every rule checked.
//!
//! Pieces: [`header`] (header and trailer fields and their validity rules), [`reader`] (the
//! streaming decoder: pages one at a time, then the index and trailer, then the file checksum),
//! [`writer`] (the streaming encoder replicas use: block-encoded pages, index, trailer).
//!
//! What must stay true:
//! - Reading and writing never hold more than one page (plus one compressed page and a small read buffer):
//!   memory is flat in the size of the file and of the database.
//! - Every error names the object it came from ([`LtxError::name`]) and says what was wrong.
//! - The file checksum is CRC-64/ISO (Go's `crc64.ISO`) over the header, each page's 6-byte
//!   header, its 4-byte length (block encoding only) and its *uncompressed* bytes, the end
//!   marker, the index with its length, and the post-apply field (§2.5); bit 63 is set.
//! - A file is only accepted if it ends exactly after its trailer.

pub mod header;
pub mod reader;
#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;
pub mod writer;
#[cfg(test)]
mod writer_tests;

pub use header::{HEADER_SIZE, Header, TRAILER_SIZE, Trailer};
pub use reader::Reader;
pub use writer::{WriteError, Writer};

/// Header flag: the file carries no database checksums (Litestream v0.5 always sets it).
pub const FLAG_NO_CHECKSUM: u32 = 0x2;
/// Page flag: the page is one raw LZ4 block preceded by its u32 length (ltx ≥ v0.5.2).
pub const PAGE_FLAG_BLOCK: u16 = 0x1;
/// Bit 63, set in every checksum an LTX file stores.
pub const CHECKSUM_FLAG: u64 = 1 << 63;

/// An LTX problem, naming the object it was found in.
#[derive(Debug, thiserror::Error)]
#[error("ltx file {name}: {kind}")]
pub struct LtxError {
    pub name: String,
    pub kind: ErrorKind,
}

/// What was wrong with an LTX file.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    #[error("invalid magic {0:02x?} (not an LTX file)")]
    Magic([u8; 4]),
    #[error("invalid header flags {0:#x}")]
    Flags(u32),
    #[error("invalid page size {0}")]
    PageSize(u32),
    #[error("invalid header: {0}")]
    Header(&'static str),
    #[error("page {pgno}: page numbers must ascend (previous page {prev})")]
    PageOrder { pgno: u32, prev: u32 },
    #[error("page {pgno} is above the commit size of {commit} pages")]
    PageBeyondCommit { pgno: u32, commit: u32 },
    #[error("page {0} is the lock page, which is never stored")]
    LockPage(u32),
    #[error("page {pgno}: invalid page flags {flags:#x}")]
    PageFlags { pgno: u32, flags: u16 },
    #[error("page {pgno}: compressed length {len} is out of range")]
    CompressedLength { pgno: u32, len: u32 },
    #[error("page {pgno}: LZ4 data is corrupt: {detail}")]
    Lz4 { pgno: u32, detail: String },
    #[error("page {pgno}: decompresses to {got} bytes, not the page size {want}")]
    PageLength { pgno: u32, got: usize, want: u32 },
    #[error("invalid page index: {0}")]
    Index(&'static str),
    #[error("invalid trailer: {0}")]
    Trailer(&'static str),
    #[error("file checksum mismatch: stored {stored:016x}, computed {computed:016x}")]
    Checksum { stored: u64, computed: u64 },
    #[error("truncated: the file ends inside the {0}")]
    Truncated(&'static str),
    #[error("unexpected bytes after the trailer")]
    TrailingData,
    #[error("read: {0}")]
    Io(std::io::Error),
}

impl LtxError {
    pub fn new(name: &str, kind: ErrorKind) -> Self {
        LtxError {
            name: name.to_string(),
            kind,
        }
    }
}

/// The lock page of a database with `page_size`-byte pages (the page holding byte 2^30).
pub fn lock_page(page_size: u32) -> u32 {
    0x4000_0000 / page_size + 1
}

/// `MIN-MAX.ltx` with both TXIDs as 16 lowercase hex digits.
pub fn file_name(min: u64, max: u64) -> String {
    format!("{min:016x}-{max:016x}.ltx")
}

/// Parses a file name exactly as v0.5.17 accepts it (`^[0-9a-f]{16}-[0-9a-f]{16}\.ltx$`).
pub fn parse_file_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(".ltx")?;
    let (min, max) = stem.split_once('-')?;
    Some((parse_txid(min)?, parse_txid(max)?))
}

/// A TXID as written in names and on the command line: exactly 16 lowercase hex digits.
pub fn parse_txid(s: &str) -> Option<u64> {
    let lower_hex = s
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if s.len() != 16 || !lower_hex {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// A TXID in its 16-hex-digit form.
pub fn format_txid(txid: u64) -> String {
    format!("{txid:016x}")
}
