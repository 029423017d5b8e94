//! The LTX header (100 bytes) and trailer (16 bytes), big-endian, with the validity rules of
//! ltx v0.5.2 (spec §2.1, §2.4).
//!
//! What must stay true: [`Header::parse`] accepts exactly what ltx v0.5.2's `Header.Validate`
//! accepts (magic `LTX1`, flags ⊆ {0x2}, page size a power of two in 512..=65536, TXIDs ≠ 0 and
//! min ≤ max, the pre-apply checksum rule, the WAL field rules); the reserved bytes and the node
//! ID are not checked.

use super::{CHECKSUM_FLAG, ErrorKind, FLAG_NO_CHECKSUM};

pub const HEADER_SIZE: usize = 100;
pub const TRAILER_SIZE: usize = 16;
pub const MAGIC: &[u8; 4] = b"LTX1";

/// The fields of an LTX header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    pub flags: u32,
    pub page_size: u32,
    /// Database size in pages after applying this file.
    pub commit: u32,
    pub min_txid: u64,
    pub max_txid: u64,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    pub pre_apply_checksum: u64,
    pub wal_offset: i64,
    pub wal_size: i64,
    pub wal_salt1: u32,
    pub wal_salt2: u32,
    pub node_id: u64,
}

/// The fields of an LTX trailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    pub post_apply_checksum: u64,
    pub file_checksum: u64,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

impl Header {
    /// Decodes and validates a header.
    pub fn parse(b: &[u8; HEADER_SIZE]) -> Result<Header, ErrorKind> {
        if &b[0..4] != MAGIC {
            return Err(ErrorKind::Magic([b[0], b[1], b[2], b[3]]));
        }
        let h = Header {
            flags: u32_at(b, 4),
            page_size: u32_at(b, 8),
            commit: u32_at(b, 12),
            min_txid: u64_at(b, 16),
            max_txid: u64_at(b, 24),
            timestamp_ms: u64_at(b, 32) as i64,
            pre_apply_checksum: u64_at(b, 40),
            wal_offset: u64_at(b, 48) as i64,
            wal_size: u64_at(b, 56) as i64,
            wal_salt1: u32_at(b, 64),
            wal_salt2: u32_at(b, 68),
            node_id: u64_at(b, 72),
        };
        h.validate()?;
        Ok(h)
    }

    /// The 100 bytes of this header (reserved bytes zero).
    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[0..4].copy_from_slice(MAGIC);
        b[4..8].copy_from_slice(&self.flags.to_be_bytes());
        b[8..12].copy_from_slice(&self.page_size.to_be_bytes());
        b[12..16].copy_from_slice(&self.commit.to_be_bytes());
        b[16..24].copy_from_slice(&self.min_txid.to_be_bytes());
        b[24..32].copy_from_slice(&self.max_txid.to_be_bytes());
        b[32..40].copy_from_slice(&self.timestamp_ms.to_be_bytes());
        b[40..48].copy_from_slice(&self.pre_apply_checksum.to_be_bytes());
        b[48..56].copy_from_slice(&self.wal_offset.to_be_bytes());
        b[56..64].copy_from_slice(&self.wal_size.to_be_bytes());
        b[64..68].copy_from_slice(&self.wal_salt1.to_be_bytes());
        b[68..72].copy_from_slice(&self.wal_salt2.to_be_bytes());
        b[72..80].copy_from_slice(&self.node_id.to_be_bytes());
        b
    }

    /// True when the file carries no database checksums (flag 0x2).
    pub fn no_checksum(&self) -> bool {
        self.flags & FLAG_NO_CHECKSUM != 0
    }

    fn validate(&self) -> Result<(), ErrorKind> {
        if self.flags & !FLAG_NO_CHECKSUM != 0 {
            return Err(ErrorKind::Flags(self.flags));
        }
        let ps = self.page_size;
        if !ps.is_power_of_two() || !(512..=65536).contains(&ps) {
            return Err(ErrorKind::PageSize(ps));
        }
        if self.min_txid == 0 || self.max_txid == 0 {
            return Err(ErrorKind::Header("transaction id is zero"));
        }
        if self.min_txid > self.max_txid {
            return Err(ErrorKind::Header("min transaction id above max"));
        }
        self.validate_pre_apply()?;
        self.validate_wal_fields()
    }

    fn validate_pre_apply(&self) -> Result<(), ErrorKind> {
        let must_be_zero = self.min_txid == 1 || self.no_checksum();
        match (must_be_zero, self.pre_apply_checksum) {
            (true, 0) => Ok(()),
            (true, _) => Err(ErrorKind::Header("pre-apply checksum must be zero")),
            (false, c) if c & CHECKSUM_FLAG == 0 => {
                Err(ErrorKind::Header("invalid pre-apply checksum"))
            }
            (false, _) => Ok(()),
        }
    }

    fn validate_wal_fields(&self) -> Result<(), ErrorKind> {
        if self.wal_offset < 0 {
            return Err(ErrorKind::Header("negative WAL offset"));
        }
        if self.wal_size < 0 {
            return Err(ErrorKind::Header("negative WAL size"));
        }
        let wal_used = self.wal_salt1 != 0 || self.wal_salt2 != 0 || self.wal_size != 0;
        if wal_used && self.wal_offset == 0 {
            return Err(ErrorKind::Header(
                "WAL offset required with WAL salts or size",
            ));
        }
        Ok(())
    }
}

impl Trailer {
    pub fn parse(b: &[u8; TRAILER_SIZE]) -> Trailer {
        Trailer {
            post_apply_checksum: u64_at(b, 0),
            file_checksum: u64_at(b, 8),
        }
    }

    /// Checks the trailer against its header (the file checksum itself is compared by the
    /// reader).
    pub fn validate(&self, header: &Header) -> Result<(), ErrorKind> {
        if header.no_checksum() && self.post_apply_checksum != 0 {
            return Err(ErrorKind::Trailer("post-apply checksum not allowed"));
        }
        if !header.no_checksum() && self.post_apply_checksum & CHECKSUM_FLAG == 0 {
            return Err(ErrorKind::Trailer("invalid post-apply checksum"));
        }
        if self.file_checksum & CHECKSUM_FLAG == 0 {
            return Err(ErrorKind::Trailer("invalid file checksum"));
        }
        Ok(())
    }
}
