//! SQLite WAL file format: header and frame types, the checksum chain, frame alignment and a
//! frame scanner that finds the last valid commit (spec §2). Pure and synchronous.
//!
//! What must stay true:
//! - Every multi-byte field is big-endian on disk; only the *checksum input words* follow the
//!   byte order selected by the magic's lowest bit.
//! - A frame counts only if its salts equal the header's and its checksum continues the chain;
//!   a transaction counts only once its commit frame is valid. Nothing after the first invalid
//!   frame is ever reported as valid.
//! - Nothing here writes to the application's WAL.

mod checksum;
mod header;
mod scan;
#[cfg(test)]
mod sqlite_tests;

pub use checksum::checksum;
pub use header::{FrameHeader, WalHeader, read_header};
pub use scan::{FrameScanner, ScanStop, ScanSummary, read_seed_checksum};

/// Size of the WAL file header.
pub const WAL_HEADER_SIZE: usize = 32;
/// Size of the header in front of every frame's page content.
pub const FRAME_HEADER_SIZE: usize = 24;
/// WAL magic selecting little-endian checksum words.
pub const WAL_MAGIC_LE: u32 = 0x377f_0682;
/// WAL magic selecting big-endian checksum words.
pub const WAL_MAGIC_BE: u32 = 0x377f_0683;
/// The only WAL format version SQLite writes.
pub const WAL_VERSION: u32 = 3_007_000;
/// Smallest valid page size.
pub const MIN_PAGE_SIZE: u32 = 512;
/// Largest valid page size.
pub const MAX_PAGE_SIZE: u32 = 65_536;

/// Size of one frame (header + page) for `page_size`.
pub fn frame_size(page_size: u32) -> u64 {
    FRAME_HEADER_SIZE as u64 + u64::from(page_size)
}

/// Rounds a WAL length down to a frame boundary:
/// `0 if n < 32 else 32 + ⌊(n−32)/FS⌋·FS`.
pub fn align(size: u64, page_size: u32) -> u64 {
    let header = WAL_HEADER_SIZE as u64;
    if size < header {
        return 0;
    }
    let fs = frame_size(page_size);
    header + (size - header) / fs * fs
}

/// Offset of frame number `n` (0-based) in a WAL with `page_size`.
pub fn frame_offset(n: u64, page_size: u32) -> u64 {
    WAL_HEADER_SIZE as u64 + n * frame_size(page_size)
}

/// Errors from parsing WAL headers and reading frames. Offsets are byte offsets in the WAL file.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("wal header: short read: {len} of {WAL_HEADER_SIZE} bytes")]
    ShortHeader { len: usize },
    #[error("wal header: bad magic {magic:#010x}")]
    BadMagic { magic: u32 },
    #[error("wal header: unsupported format version {version}")]
    BadVersion { version: u32 },
    #[error("wal header: invalid page size {page_size}")]
    BadPageSize { page_size: u32 },
    #[error(
        "wal header: checksum mismatch: stored {:08x} {:08x}, computed {:08x} {:08x}",
        stored.0, stored.1, computed.0, computed.1
    )]
    HeaderChecksum {
        stored: (u32, u32),
        computed: (u32, u32),
    },
    #[error("wal frame header at offset {offset}: short read: {len} of {FRAME_HEADER_SIZE} bytes")]
    ShortFrameHeader { offset: u64, len: usize },
    #[error("wal read at offset {offset}: {source}")]
    Io {
        offset: u64,
        #[source]
        source: std::io::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn align_matches_the_spec_formula() {
        let ps = 4096;
        let fs = frame_size(ps);
        assert_eq!(fs, 4120);
        let cases = [
            (0, 0),
            (31, 0),
            (32, 32),
            (33, 32),
            (32 + fs - 1, 32),
            (32 + fs, 32 + fs),
            (32 + 3 * fs + 17, 32 + 3 * fs),
        ];
        for (n, want) in cases {
            assert_eq!(align(n, ps), want, "align({n})");
        }
        assert_eq!(frame_offset(0, ps), 32);
        assert_eq!(frame_offset(4, ps), 16512);
        assert_eq!(align(16512, 4096), 16512);
    }

    #[test]
    fn frame_sizes_for_extreme_page_sizes() {
        assert_eq!(frame_size(MIN_PAGE_SIZE), 536);
        assert_eq!(frame_size(MAX_PAGE_SIZE), 65_560);
    }
}
